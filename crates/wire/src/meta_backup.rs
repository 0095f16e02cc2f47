//! The type-1 reply: the meta-backup frame, and the client codec that reads it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error_reply::{self, ErrorProbe};
use crate::magic::{BACKUP_MAGIC, be_u64, reserve_toward};
use crate::{Limits, RequestFrame, WireError};

/// The node JSON every influx OSS server sends (its node pointer is never set).
pub const NULL_NODE: &[u8] = b"null\n";

/// `magic u64 | metaLen u64 | meta blob | nodeLen u64 | node JSON`, then EOF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaBackup {
    /// The `meta.Data` protobuf (the whole metastore).
    pub meta: Bytes,
    /// The node JSON, including its trailing newline (`null\n` on influx OSS).
    pub node: Bytes,
}

impl MetaBackup {
    /// A frame carrying `meta` and influx's `null\n` node.
    pub fn new(meta: Bytes) -> MetaBackup {
        MetaBackup {
            meta,
            node: Bytes::from_static(NULL_NODE),
        }
    }

    /// Total encoded length.
    pub fn encoded_len(&self) -> usize {
        24 + self.meta.len() + self.node.len()
    }

    /// Appends the frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_u64(BACKUP_MAGIC);
        dst.put_u64(self.meta.len() as u64);
        dst.put_slice(&self.meta);
        dst.put_u64(self.node.len() as u64);
        dst.put_slice(&self.node);
    }

    /// Decodes a complete frame held in memory (e.g. a legacy `meta.NN` file).
    pub fn decode_exact(bytes: &[u8], limits: &Limits) -> Result<MetaBackup, WireError> {
        let mut buf = BytesMut::from(bytes);
        let mut codec = MetaBackupCodec::new(*limits);
        match codec.decode_eof(&mut buf)? {
            Some(frame) => {
                error_reply::trailing(&mut buf, "meta-backup frame")?;
                Ok(frame)
            }
            None => Err(WireError::Truncated {
                frame: "meta-backup frame",
                buffered: 0,
            }),
        }
    }
}

/// Client codec for a type-1 connection: encodes the request, decodes the [`MetaBackup`].
///
/// `metaLen` and `nodeLen` are checked against [`Limits`] before anything is reserved. An
/// opted-in server's [`ErrorReply`](crate::ErrorReply) surfaces as [`WireError::Remote`]. EOF
/// before the first byte yields `Ok(None)` (influx's silent close).
#[derive(Debug, Clone, Default)]
pub struct MetaBackupCodec {
    limits: Limits,
    done: bool,
}

impl MetaBackupCodec {
    /// A codec with the given limits.
    pub fn new(limits: Limits) -> Self {
        MetaBackupCodec {
            limits,
            done: false,
        }
    }
}

impl Decoder for MetaBackupCodec {
    type Item = MetaBackup;
    type Error = WireError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<MetaBackup>, WireError> {
        if self.done {
            return error_reply::trailing(buf, "meta-backup frame").map(|()| None);
        }
        if error_reply::probe(buf, &self.limits)? == ErrorProbe::NeedMore {
            return Ok(None);
        }
        let (Some(magic), Some(meta_len)) = (be_u64(buf, 0), be_u64(buf, 8)) else {
            return Ok(None);
        };
        if magic != BACKUP_MAGIC {
            return Err(WireError::BadMagic {
                frame: "meta-backup frame",
                found: magic,
                expected: BACKUP_MAGIC,
            });
        }
        if meta_len > self.limits.max_meta_blob {
            return Err(WireError::MetaBlobTooLarge {
                len: meta_len,
                limit: self.limits.max_meta_blob,
            });
        }
        let meta_end = 16 + meta_len as usize; // bounded by the limit
        let Some(node_len) = be_u64(buf, meta_end) else {
            reserve_toward(buf, meta_end + 8);
            return Ok(None);
        };
        if node_len > self.limits.max_node_json {
            return Err(WireError::NodeJsonTooLarge {
                len: node_len,
                limit: self.limits.max_node_json,
            });
        }
        let total = meta_end + 8 + node_len as usize;
        if buf.len() < total {
            reserve_toward(buf, total);
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        frame.advance(16);
        let meta = frame.split_to(meta_end - 16);
        frame.advance(8);
        self.done = true;
        Ok(Some(MetaBackup { meta, node: frame }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<MetaBackup>, WireError> {
        match self.decode(buf)? {
            Some(f) => Ok(Some(f)),
            None if buf.is_empty() => Ok(None),
            None => Err(WireError::Truncated {
                frame: "meta-backup frame",
                buffered: buf.len(),
            }),
        }
    }
}

impl Encoder<RequestFrame> for MetaBackupCodec {
    type Error = WireError;

    fn encode(&mut self, item: RequestFrame, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst)
    }
}
