//! Bounded TSM reader over any `Read + Seek`: the index is size-checked before it is loaded,
//! block sizes and value counts are bounded, every block's CRC is verified.

use std::io::{Read, Seek, SeekFrom};

mod blocks;
mod limits;

pub use limits::ReaderLimits;

use crate::error::{Result, TsmError, corrupt, io};
use crate::index::{FOOTER_SIZE, HEADER_SIZE, KeyIndex, MAGIC, VERSION, parse_index};

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
