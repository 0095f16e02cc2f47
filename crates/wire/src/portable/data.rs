//! The `.meta` file: `backup_util.PortableData` wrapping the `meta.Data` blob.

use bytes::Bytes;
use prost::Message;

use crate::{Limits, WireError};

/// `PortableData { Data = 1 (bytes), MaxNodeID = 2 (uint64) }`, proto2 with both fields
/// required, so `MaxNodeID = 0` is written explicitly (`10 00`) exactly as influx does.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct PortableData {
    /// The raw `meta.Data` protobuf (what type 1 returns and type 6 uploads).
    #[prost(bytes = "bytes", required, tag = "1")]
    pub data: Bytes,
    /// Always 0 from influx OSS.
    #[prost(uint64, required, tag = "2")]
    pub max_node_id: u64,
}

impl PortableData {
    /// Wraps a meta blob with `MaxNodeID = 0`.
    pub fn new(data: Bytes) -> PortableData {
        PortableData {
            data,
            max_node_id: 0,
        }
    }

    /// The `.meta` file bytes.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Decodes a `.meta` file; the file (and so the blob) must be within
    /// [`Limits::max_meta_blob`] (plus the few wrapper bytes).
    pub fn from_file_bytes(file: &[u8], limits: &Limits) -> Result<PortableData, WireError> {
        let len = file.len() as u64;
        if len > limits.max_meta_blob.saturating_add(32) {
            return Err(WireError::MetaBlobTooLarge {
                len,
                limit: limits.max_meta_blob,
            });
        }
        PortableData::decode(file).map_err(|source| WireError::BadProtobuf {
            what: "PortableData",
            source,
        })
    }
}
