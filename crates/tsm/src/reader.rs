//! Bounded TSM reader over any `Read + Seek`: the index is size-checked before it is loaded,
//! block sizes and value counts are bounded, every block's CRC is verified.

use std::io::{Read, Seek, SeekFrom};

use crate::block::decode_block;
use crate::error::{Result, TsmError, corrupt, io, show};
use crate::index::{FOOTER_SIZE, HEADER_SIZE, IndexEntry, KeyIndex, MAGIC, VERSION, parse_index};
use crate::tombstone::Tombstones;
use crate::values::{BlockType, Values};

/// Allocation bounds applied while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderLimits {
    /// Largest index loaded into memory.
    pub max_index_bytes: u64,
    /// Largest block (CRC included) read into memory.
    pub max_block_bytes: u32,
    /// Most points decoded from one block.
    pub max_block_values: usize,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            max_index_bytes: 512 * 1024 * 1024,
            max_block_bytes: 64 * 1024 * 1024,
            max_block_values: 1 << 20,
        }
    }
}

impl ReaderLimits {
    /// These limits with a different index bound.
    pub fn with_max_index_bytes(mut self, n: u64) -> Self {
        self.max_index_bytes = n;
        self
    }

    /// These limits with a different per-block value bound.
    pub fn with_max_block_values(mut self, n: usize) -> Self {
        self.max_block_values = n;
        self
    }
}

/// An open TSM file with its parsed, validated index.
pub struct TsmReader<R> {
    r: R,
    len: u64,
    index_offset: u64,
    keys: Vec<KeyIndex>,
    limits: ReaderLimits,
}

impl<R: Read + Seek> TsmReader<R> {
    /// Opens `r` with the default [`ReaderLimits`].
    pub fn open(r: R) -> Result<Self> {
        Self::open_with_limits(r, ReaderLimits::default())
    }

    /// Checks the header and footer and loads the index, refusing indexes over the limit.
    pub fn open_with_limits(mut r: R, limits: ReaderLimits) -> Result<Self> {
        let len = r.seek(SeekFrom::End(0)).map_err(io("seek TSM file"))?;
        if len < HEADER_SIZE + FOOTER_SIZE {
            return Err(corrupt(format!("file of {len} bytes is too short for TSM")));
        }
        let mut head = [0u8; 5];
        read_at(&mut r, 0, &mut head)?;
        if head[..4] != MAGIC || head[4] != VERSION {
            return Err(corrupt("bad magic or version: not a TSM1 file"));
        }
        let mut foot = [0u8; 8];
        read_at(&mut r, len - FOOTER_SIZE, &mut foot)?;
        let index_offset = u64::from_be_bytes(foot);
        if index_offset < HEADER_SIZE || index_offset >= len - FOOTER_SIZE {
            return Err(corrupt(format!(
                "index offset {index_offset} outside a {len}-byte file"
            )));
        }
        let idx_len = len - FOOTER_SIZE - index_offset;
        if idx_len > limits.max_index_bytes {
            return Err(TsmError::LimitExceeded {
                what: "TSM index",
                limit: limits.max_index_bytes,
                got: idx_len,
            });
        }
        let mut buf = vec![0u8; idx_len as usize];
        read_at(&mut r, index_offset, &mut buf)?;
        let keys = parse_index(&buf, index_offset)?;
        Ok(TsmReader {
            r,
            len,
            index_offset,
            keys,
            limits,
        })
    }

    /// The index, one section per key in ascending key order.
    pub fn keys(&self) -> &[KeyIndex] {
        &self.keys
    }

    /// The index section of `key`, found by binary search.
    pub fn key_index(&self, key: &[u8]) -> Option<&KeyIndex> {
        let i = self
            .keys
            .binary_search_by(|k| k.key.as_slice().cmp(key))
            .ok()?;
        self.keys.get(i)
    }

    /// File length in bytes.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Offset of the index (= end of the last block).
    pub fn index_offset(&self) -> u64 {
        self.index_offset
    }

    /// Smallest and largest time over all blocks, `None` for a file without keys.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let min = self.keys.iter().filter_map(KeyIndex::min_time).min()?;
        let max = self.keys.iter().filter_map(KeyIndex::max_time).max()?;
        Some((min, max))
    }

    /// The block data (after the CRC) of `entry`, its CRC verified.
    pub fn read_block_data(&mut self, entry: &IndexEntry) -> Result<Vec<u8>> {
        if entry.size > self.limits.max_block_bytes {
            return Err(TsmError::LimitExceeded {
                what: "TSM block size",
                limit: u64::from(self.limits.max_block_bytes),
                got: u64::from(entry.size),
            });
        }
        let end = entry.offset.checked_add(u64::from(entry.size));
        if entry.size <= 4 || end.is_none_or(|e| e > self.index_offset) {
            return Err(corrupt(format!(
                "block at offset {} outside the block area",
                entry.offset
            )));
        }
        let mut crc = [0u8; 4];
        read_at(&mut self.r, entry.offset, &mut crc)?;
        let mut buf = vec![0u8; entry.size as usize - 4];
        self.r
            .read_exact(&mut buf)
            .map_err(|e| eof_is_corrupt(e, entry.offset))?;
        let stored = u32::from_be_bytes(crc);
        let computed = crc32fast::hash(&buf);
        if stored != computed {
            return Err(TsmError::Crc {
                offset: entry.offset,
                stored,
                computed,
            });
        }
        Ok(buf)
    }

    /// Decodes the block of `entry` (a block of type `typ`), checking its type, that its times
    /// strictly increase, and that its first and last times match the entry.
    pub fn read_block(&mut self, typ: BlockType, entry: &IndexEntry) -> Result<Values> {
        let data = self.read_block_data(entry)?;
        let vals = decode_block(&data, self.limits.max_block_values)?;
        let at = entry.offset;
        if vals.block_type() != typ {
            return Err(corrupt(format!(
                "block at {at} is {} but the index says {typ}",
                vals.block_type()
            )));
        }
        let n = vals.len();
        if n == 0
            || vals.time(0) != Some(entry.min_time)
            || vals.time(n - 1) != Some(entry.max_time)
        {
            return Err(corrupt(format!(
                "block at {at}: times do not match its index entry"
            )));
        }
        if (1..n).any(|i| vals.time(i) <= vals.time(i - 1)) {
            return Err(corrupt(format!(
                "block at {at}: times not strictly increasing"
            )));
        }
        Ok(vals)
    }

    /// Every point of `key` in time order, `None` when the file has no such key.
    pub fn read_key(&mut self, key: &[u8]) -> Result<Option<Values>> {
        self.read_key_filtered(key, None)
    }

    /// Like [`read_key`](Self::read_key), dropping the points `tombstones` delete.
    pub fn read_key_filtered(
        &mut self,
        key: &[u8],
        tombstones: Option<&Tombstones>,
    ) -> Result<Option<Values>> {
        let Some(ki) = self.key_index(key) else {
            return Ok(None);
        };
        let (typ, entries) = (ki.block_type, ki.entries.clone());
        let mut all = Values::empty(typ);
        for e in &entries {
            let mut v = self.read_block(typ, e)?;
            if let Some(t) = tombstones {
                v.retain_times(|time| !t.covers(key, time));
            }
            all.append(v)
                .map_err(|_| corrupt(format!("key {:?}: mixed block types", show(key))))?;
        }
        Ok(Some(all))
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.r
    }
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, buf: &mut [u8]) -> Result<()> {
    r.seek(SeekFrom::Start(at)).map_err(io("seek TSM file"))?;
    r.read_exact(buf).map_err(|e| eof_is_corrupt(e, at))
}

/// A short read means the file is truncated; other failures stay I/O errors.
fn eof_is_corrupt(e: std::io::Error, at: u64) -> TsmError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => corrupt(format!("file truncated at offset {at}")),
        _ => TsmError::Io {
            context: "read TSM file",
            source: e,
        },
    }
}
