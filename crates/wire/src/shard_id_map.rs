//! The type-6 reply: old → new shard ids, and the client codec that reads it.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error_reply::{self, ErrorProbe};
use crate::magic::{BACKUP_MAGIC, be_u64, reserve_toward};
use crate::{Limits, RequestFrame, WireError};

/// `magic u64 | npairs u64 | npairs × (old u64 | new u64)`, then EOF.
///
/// Zero pairs means "nothing imported" (influx sends it when the blob does not decode or the
/// import fails, e.g. the database already exists). Pair order carries no meaning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardIdMap {
    /// `(old shard id, new shard id)` in wire order.
    pub pairs: Vec<(u64, u64)>,
}

impl ShardIdMap {
    /// Whether the server imported nothing.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The new id of `old`, if it was imported.
    pub fn new_id(&self, old: u64) -> Option<u64> {
        self.pairs.iter().find(|(o, _)| *o == old).map(|(_, n)| *n)
    }

    /// Encoded length: 16 × (pairs + 1).
    pub fn encoded_len(&self) -> usize {
        16 * (self.pairs.len() + 1)
    }

    /// Appends the frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_u64(BACKUP_MAGIC);
        dst.put_u64(self.pairs.len() as u64);
        for (o, n) in &self.pairs {
            dst.put_u64(*o);
            dst.put_u64(*n);
        }
    }
}

/// Client codec for a type-6 connection: encodes the request + payload, decodes the map.
///
/// The pair count is checked against [`Limits::max_id_map_pairs`] before reserving; bytes after
/// the `16 × (n + 1)` the header announces are [`WireError::TrailingBytes`].
#[derive(Debug, Clone, Default)]
pub struct ShardIdMapCodec {
    limits: Limits,
    done: bool,
}

impl ShardIdMapCodec {
    /// A codec with the given limits.
    pub fn new(limits: Limits) -> Self {
        ShardIdMapCodec {
            limits,
            done: false,
        }
    }
}

impl Decoder for ShardIdMapCodec {
    type Item = ShardIdMap;
    type Error = WireError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ShardIdMap>, WireError> {
        if self.done {
            return error_reply::trailing(buf, "shard-id map").map(|()| None);
        }
        if error_reply::probe(buf, &self.limits)? == ErrorProbe::NeedMore {
            return Ok(None);
        }
        let (Some(magic), Some(n)) = (be_u64(buf, 0), be_u64(buf, 8)) else {
            return Ok(None);
        };
        if magic != BACKUP_MAGIC {
            return Err(WireError::BadMagic {
                frame: "shard-id map",
                found: magic,
                expected: BACKUP_MAGIC,
            });
        }
        let too_many = WireError::TooManyPairs {
            pairs: n,
            limit: self.limits.max_id_map_pairs,
        };
        if n > self.limits.max_id_map_pairs {
            return Err(too_many);
        }
        let total = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_add(1)?.checked_mul(16))
            .ok_or(too_many)?;
        if buf.len() < total {
            reserve_toward(buf, total);
            return Ok(None);
        }
        let mut frame = buf.split_to(total);
        frame.advance(16);
        let pairs = frame
            .chunks_exact(16)
            .filter_map(|c| Some((be_u64(c, 0)?, be_u64(c, 8)?)))
            .collect();
        self.done = true;
        Ok(Some(ShardIdMap { pairs }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<ShardIdMap>, WireError> {
        match self.decode(buf)? {
            Some(f) => Ok(Some(f)),
            None if buf.is_empty() => Ok(None),
            None => Err(WireError::Truncated {
                frame: "shard-id map",
                buffered: buf.len(),
            }),
        }
    }
}

impl Encoder<RequestFrame> for ShardIdMapCodec {
    type Error = WireError;

    fn encode(&mut self, item: RequestFrame, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst)
    }
}
