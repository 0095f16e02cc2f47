//! The index: per key (ascending bytes) a section `u16 key length, key, u8 type, u16 count`,
//! then `count` entries of `i64 min time, i64 max time, u64 block offset, u32 block size`
//! (big-endian, sorted by min time). The 8-byte footer holds the index offset.

use crate::error::{Result, TsmError, corrupt, show};
use crate::values::BlockType;

/// Size of one serialised index entry.
pub const ENTRY_SIZE: usize = 28;
/// The 4 magic bytes opening every TSM file.
pub const MAGIC: [u8; 4] = [0x16, 0xD1, 0x16, 0xD1];
/// The format version byte following the magic.
pub const VERSION: u8 = 1;
/// Header length (magic + version).
pub const HEADER_SIZE: u64 = 5;
/// Footer length (index offset).
pub const FOOTER_SIZE: u64 = 8;

/// Where one block is and which times it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Time of the block's first point.
    pub min_time: i64,
    /// Time of the block's last point.
    pub max_time: i64,
    /// File offset of the block's CRC.
    pub offset: u64,
    /// CRC (4 bytes) plus block data length.
    pub size: u32,
}

/// The index section of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIndex {
    /// The TSM key (series key + `#!~#` + field).
    pub key: Vec<u8>,
    /// Type of every block of the key.
    pub block_type: BlockType,
    /// The key's blocks, by min time.
    pub entries: Vec<IndexEntry>,
}

impl KeyIndex {
    /// Smallest min time of the key's blocks.
    pub fn min_time(&self) -> Option<i64> {
        self.entries.iter().map(|e| e.min_time).min()
    }

    /// Largest max time of the key's blocks.
    pub fn max_time(&self) -> Option<i64> {
        self.entries.iter().map(|e| e.max_time).max()
    }
}

/// Appends one key section to `out`.
pub fn write_key_section(
    out: &mut Vec<u8>,
    key: &[u8],
    typ: BlockType,
    entries: &[IndexEntry],
) -> Result<()> {
    let klen = u16::try_from(key.len()).map_err(|_| TsmError::LimitExceeded {
        what: "TSM key length",
        limit: u64::from(u16::MAX),
        got: key.len() as u64,
    })?;
    let cnt = u16::try_from(entries.len()).map_err(|_| TsmError::LimitExceeded {
        what: "blocks per key",
        limit: u64::from(u16::MAX),
        got: entries.len() as u64,
    })?;
    out.extend_from_slice(&klen.to_be_bytes());
    out.extend_from_slice(key);
    out.push(typ.byte());
    out.extend_from_slice(&cnt.to_be_bytes());
    for e in entries {
        out.extend_from_slice(&e.min_time.to_be_bytes());
        out.extend_from_slice(&e.max_time.to_be_bytes());
        out.extend_from_slice(&e.offset.to_be_bytes());
        out.extend_from_slice(&e.size.to_be_bytes());
    }
    Ok(())
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if b.len() < n {
        return Err(corrupt("index truncated"));
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h)
}

fn be64(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |a, x| (a << 8) | u64::from(*x))
}

/// Parses and strictly checks index bytes whose blocks must lie in `[5, idx_ofs)`: keys
/// strictly ascending, known types, at least one entry per key, entries inside the block area,
/// min <= max, entries sorted by min time.
pub fn parse_index(mut b: &[u8], idx_ofs: u64) -> Result<Vec<KeyIndex>> {
    let mut keys: Vec<KeyIndex> = Vec::new();
    while !b.is_empty() {
        let klen = take(&mut b, 2)?;
        let key = take(&mut b, usize::from(u16::from_be_bytes([klen[0], klen[1]])))?.to_vec();
        if let Some(prev) = keys.last()
            && prev.key >= key
        {
            return Err(corrupt(format!(
                "index key {:?} does not follow {:?}",
                show(&key),
                show(&prev.key)
            )));
        }
        let t = take(&mut b, 1)?[0];
        let block_type = BlockType::from_byte(t)
            .ok_or_else(|| corrupt(format!("key {:?}: unknown block type {t}", show(&key))))?;
        let cnt = take(&mut b, 2)?;
        let cnt = usize::from(u16::from_be_bytes([cnt[0], cnt[1]]));
        if cnt == 0 {
            return Err(corrupt(format!("key {:?} has no blocks", show(&key))));
        }
        let raw = take(&mut b, cnt * ENTRY_SIZE)?;
        let mut entries = Vec::with_capacity(cnt);
        for e in raw.chunks_exact(ENTRY_SIZE) {
            let ent = IndexEntry {
                min_time: be64(&e[0..]) as i64,
                max_time: be64(&e[8..]) as i64,
                offset: be64(&e[16..]),
                size: u32::from_be_bytes([e[24], e[25], e[26], e[27]]),
            };
            let end = ent.offset.checked_add(u64::from(ent.size));
            if ent.offset < HEADER_SIZE || ent.size <= 4 || end.is_none_or(|x| x > idx_ofs) {
                return Err(corrupt(format!(
                    "key {:?}: block entry outside the block area",
                    show(&key)
                )));
            }
            if ent.min_time > ent.max_time {
                return Err(corrupt(format!(
                    "key {:?}: block with min time > max time",
                    show(&key)
                )));
            }
            if entries
                .last()
                .is_some_and(|p: &IndexEntry| p.min_time > ent.min_time)
            {
                return Err(corrupt(format!(
                    "key {:?}: blocks not sorted by time",
                    show(&key)
                )));
            }
            entries.push(ent);
        }
        keys.push(KeyIndex {
            key,
            block_type,
            entries,
        });
    }
    Ok(keys)
}
