//! Key bookkeeping and block output of [`TsmWriter`]: key order, per-key index entries, the
//! lazy header and the CRC in front of every block.

use std::io::Write;

use super::{Current, TsmWriter};
use crate::error::{Result, TsmError, io, show};
use crate::index::{self, HEADER_SIZE, IndexEntry, MAGIC, VERSION};
use crate::values::BlockType;

impl<W: Write> TsmWriter<W> {
    /// Makes `key` the current key (closing the previous one); returns the key's last time
    /// when it continues the current key.
    pub(super) fn start_key(&mut self, key: &[u8], typ: BlockType) -> Result<Option<i64>> {
        if let Some(c) = &self.cur {
            if c.key.as_slice() == key {
                if c.typ != typ {
                    return Err(TsmError::TypeMismatch {
                        key: show(key),
                        expected: c.typ,
                        got: typ,
                    });
                }
                return Ok(Some(c.last));
            }
            if key < c.key.as_slice() {
                return Err(TsmError::KeyOrder {
                    prev: show(&c.key),
                    key: show(key),
                });
            }
        }
        if key.len() > usize::from(u16::MAX) {
            return Err(TsmError::LimitExceeded {
                what: "TSM key length",
                limit: u64::from(u16::MAX),
                got: key.len() as u64,
            });
        }
        self.close_key()?;
        self.cur = Some(Current {
            key: key.to_vec(),
            typ,
            entries: Vec::new(),
            last: i64::MIN,
        });
        Ok(None)
    }

    pub(super) fn close_key(&mut self) -> Result<()> {
        if let Some(c) = self.cur.take()
            && !c.entries.is_empty()
        {
            index::write_key_section(&mut self.index, &c.key, c.typ, &c.entries)?;
        }
        Ok(())
    }

    pub(super) fn put_block(&mut self, min: i64, max: i64, data: &[u8]) -> Result<()> {
        let Some(cur) = self.cur.as_mut() else {
            return Err(TsmError::Unsupported("block written without a key".into()));
        };
        if cur.entries.len() >= usize::from(u16::MAX) {
            return Err(TsmError::LimitExceeded {
                what: "blocks per key",
                limit: u64::from(u16::MAX),
                got: cur.entries.len() as u64 + 1,
            });
        }
        let size = u32::try_from(data.len() + 4).map_err(|_| TsmError::LimitExceeded {
            what: "block size",
            limit: u64::from(u32::MAX),
            got: data.len() as u64 + 4,
        })?;
        if self.pos == 0 {
            self.w.write_all(&MAGIC).map_err(io("write TSM header"))?;
            self.w
                .write_all(&[VERSION])
                .map_err(io("write TSM header"))?;
            self.pos = HEADER_SIZE;
        }
        let crc = crc32fast::hash(data);
        self.w
            .write_all(&crc.to_be_bytes())
            .map_err(io("write TSM block"))?;
        self.w.write_all(data).map_err(io("write TSM block"))?;
        cur.entries.push(IndexEntry {
            min_time: min,
            max_time: max,
            offset: self.pos,
            size,
        });
        cur.last = cur.last.max(max);
        self.pos += u64::from(size);
        Ok(())
    }
}
