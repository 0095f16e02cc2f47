//! Reading blocks and keys of an open [`TsmReader`]: bounded, CRC-checked, strictly validated.

use std::io::{Read, Seek};

use super::{TsmReader, eof_is_corrupt, read_at};
use crate::block::decode_block;
use crate::error::{Result, TsmError, corrupt, show};
use crate::index::IndexEntry;
use crate::tombstone::Tombstones;
use crate::values::{BlockType, Values};

impl<R: Read + Seek> TsmReader<R> {
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
}
