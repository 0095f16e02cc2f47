//! The one-byte request type that follows the mux byte.

use crate::WireError;

/// The snapshotter mux header byte: the first byte of every connection.
pub const MUX_HEADER: u8 = 0x03;

/// Request type byte of snapshotd's acknowledged shard upload (extension, see
/// [`UploadHeader::acknowledged`](crate::UploadHeader)). Influx servers close on it with 0 bytes.
pub const SHARD_UPDATE_ACKED: u8 = 0x87;

/// Request types 0–7, numbered as influx declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum RequestType {
    /// 0: tar of a shard's files modified after `Since`.
    ShardBackup = 0,
    /// 1: the whole metastore as a meta-backup frame.
    MetastoreBackup = 1,
    /// 2: declared by influx but never implemented (influx closes with 0 bytes).
    SeriesFileBackup = 2,
    /// 3: shard paths of one or all databases.
    DatabaseInfo = 3,
    /// 4: shard paths of one retention policy.
    RetentionPolicyInfo = 4,
    /// 5: tar of a shard filtered by `ExportStart`/`ExportEnd`.
    ShardExport = 5,
    /// 6: metastore import; a payload of `UploadSize` bytes follows; reply is a shard-id map.
    MetaStoreUpdate = 6,
    /// 7: shard upload: 8-byte shard id, then a tar stream; no JSON, no reply.
    ShardUpdate = 7,
}

impl RequestType {
    /// Every request type in wire order.
    pub const ALL: [RequestType; 8] = [
        RequestType::ShardBackup,
        RequestType::MetastoreBackup,
        RequestType::SeriesFileBackup,
        RequestType::DatabaseInfo,
        RequestType::RetentionPolicyInfo,
        RequestType::ShardExport,
        RequestType::MetaStoreUpdate,
        RequestType::ShardUpdate,
    ];

    /// The wire byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether a JSON request follows the type byte (all but type 7).
    pub fn has_json(self) -> bool {
        self != RequestType::ShardUpdate
    }
}

impl TryFrom<u8> for RequestType {
    type Error = WireError;

    fn try_from(b: u8) -> Result<Self, WireError> {
        RequestType::ALL
            .get(usize::from(b))
            .copied()
            .ok_or(WireError::UnknownRequestType { found: b })
    }
}

impl From<RequestType> for u8 {
    fn from(t: RequestType) -> u8 {
        t.as_u8()
    }
}
