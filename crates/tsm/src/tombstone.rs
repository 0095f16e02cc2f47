//! Tombstone files (`<gen>-<seq>.tombstone` next to a `.tsm`): deleted `(key, min, max)` time
//! ranges, inclusive. The first 4 bytes pick the version: `00 00 15 04` v4 (concatenated gzip
//! members of records), `00 00 15 03` v3 (one gzip stream), `00 00 15 02` v2 (raw records),
//! anything else v1 (one key per text line, deleted over all time). A record is `u32 key length,
//! key, i64 min, i64 max`, big-endian.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};

use flate2::read::{GzDecoder, MultiGzDecoder};

use crate::error::{Result, TsmError, corrupt, io};

/// Largest decompressed tombstone data accepted.
pub const MAX_TOMBSTONE_BYTES: u64 = 256 * 1024 * 1024;
/// Longest key accepted in a record.
const MAX_KEY: u32 = 1 << 20;
const V4: [u8; 4] = [0, 0, 0x15, 0x04];

/// Deleted time ranges per key of one TSM file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tombstones(BTreeMap<Vec<u8>, Vec<(i64, i64)>>);

impl Tombstones {
    /// Marks `key`'s points in `[min, max]` (inclusive) deleted.
    pub fn add(&mut self, key: &[u8], min: i64, max: i64) {
        self.0.entry(key.to_vec()).or_default().push((min, max));
    }

    /// Whether `key`'s point at time `t` is deleted.
    pub fn covers(&self, key: &[u8], t: i64) -> bool {
        self.ranges(key).iter().any(|(a, b)| *a <= t && t <= *b)
    }

    /// The deleted ranges of `key`.
    pub fn ranges(&self, key: &[u8]) -> &[(i64, i64)] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every `(key, min, max)` record, keys ascending.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], i64, i64)> {
        self.0
            .iter()
            .flat_map(|(k, rs)| rs.iter().map(move |(a, b)| (k.as_slice(), *a, *b)))
    }

    /// Reads a tombstone file of any version (sizes bounded before allocating).
    pub fn read(r: impl Read) -> Result<Self> {
        let mut r = BufReader::new(r).take(MAX_TOMBSTONE_BYTES);
        let mut head = Vec::with_capacity(4);
        (&mut r)
            .take(4)
            .read_to_end(&mut head)
            .map_err(io("read tombstone"))?;
        let mut out = Tombstones::default();
        match head.as_slice() {
            [0, 0, 0x15, 0x04] => {
                out.records(&mut MultiGzDecoder::new(r).take(MAX_TOMBSTONE_BYTES))?
            }
            [0, 0, 0x15, 0x03] => out.records(&mut GzDecoder::new(r).take(MAX_TOMBSTONE_BYTES))?,
            [0, 0, 0x15, 0x02] => out.records(&mut r)?,
            _ => {
                let mut text = head;
                r.read_to_end(&mut text).map_err(io("read tombstone"))?;
                for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    out.add(line, i64::MIN, i64::MAX);
                }
            }
        }
        Ok(out)
    }

    /// Reads records until a clean end of input.
    fn records(&mut self, r: &mut dyn Read) -> Result<()> {
        loop {
            let mut len = [0u8; 4];
            match r.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(corrupt(format!("tombstone: {e}"))),
            }
            let n = u32::from_be_bytes(len);
            if n > MAX_KEY {
                return Err(TsmError::LimitExceeded {
                    what: "tombstone key length",
                    limit: MAX_KEY.into(),
                    got: n.into(),
                });
            }
            let mut key = vec![0u8; n as usize];
            let mut times = [0u8; 16];
            r.read_exact(&mut key)
                .and_then(|()| r.read_exact(&mut times))
                .map_err(|e| corrupt(format!("tombstone record truncated: {e}")))?;
            let (a, b) = times.split_at(8);
            let min = i64::from_be_bytes(a.try_into().map_err(|_| corrupt("tombstone"))?);
            let max = i64::from_be_bytes(b.try_into().map_err(|_| corrupt("tombstone"))?);
            self.add(&key, min, max);
        }
    }

    /// Writes these tombstones as a new v4 file (header and one gzip member), as influx 1.6 does.
    pub fn write_v4(&self, mut w: impl Write) -> Result<()> {
        w.write_all(&V4).map_err(io("write tombstone"))?;
        self.append_v4_member(w)
    }

    /// Appends these tombstones as one more gzip member of an existing v4 file.
    pub fn append_v4_member(&self, w: impl Write) -> Result<()> {
        let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
        for (k, min, max) in self.iter() {
            let klen = u32::try_from(k.len())
                .map_err(|_| TsmError::Unsupported("tombstone key over 4 GiB".into()))?;
            gz.write_all(&klen.to_be_bytes())
                .map_err(io("write tombstone"))?;
            gz.write_all(k).map_err(io("write tombstone"))?;
            gz.write_all(&min.to_be_bytes())
                .map_err(io("write tombstone"))?;
            gz.write_all(&max.to_be_bytes())
                .map_err(io("write tombstone"))?;
        }
        gz.finish()
            .map_err(io("write tombstone"))?
            .flush()
            .map_err(io("write tombstone"))
    }
}
