//! Streaming TSM writer: blocks go out as they are encoded, the index is kept in memory
//! (about 28 bytes per block plus each key once) and written by [`TsmWriter::finish`].

use std::collections::BTreeMap;
use std::io::Write;

use crate::block::encode_range;
use crate::error::{Result, TsmError, io, show};
use crate::index::{self, HEADER_SIZE, IndexEntry, MAGIC, VERSION};
use crate::values::{BlockType, Values};

/// Points per block influx writes (`tsdb.DefaultMaxPointsPerBlock`).
pub const DEFAULT_MAX_POINTS_PER_BLOCK: usize = 1000;

/// The key currently receiving blocks.
struct Current {
    key: Vec<u8>,
    typ: BlockType,
    entries: Vec<IndexEntry>,
    /// Largest time written so far for the key.
    last: i64,
}

/// Writes one TSM file to any [`Write`]: keys in strictly ascending byte order, each key's
/// points in strictly ascending time order (a key may take several `write` calls in a row), at
/// most [`DEFAULT_MAX_POINTS_PER_BLOCK`] points per block, CRC-32/IEEE per block, index and
/// footer last. Dropping it without [`finish`](Self::finish) leaves an incomplete file.
pub struct TsmWriter<W: Write> {
    w: W,
    pos: u64,
    index: Vec<u8>,
    cur: Option<Current>,
    max_points: usize,
    buf: Vec<u8>,
}

impl<W: Write> TsmWriter<W> {
    /// A writer emitting to `w` (wrap files in a `BufWriter`).
    pub fn new(w: W) -> Self {
        TsmWriter {
            w,
            pos: 0,
            index: Vec::new(),
            cur: None,
            max_points: DEFAULT_MAX_POINTS_PER_BLOCK,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sets the most points per block (at least 1).
    pub fn with_max_points_per_block(mut self, n: usize) -> Self {
        self.max_points = n.max(1);
        self
    }

    /// Bytes written so far (blocks; the index comes at `finish`).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Number of index bytes buffered so far (finished keys only).
    pub fn index_len(&self) -> usize {
        self.index.len()
    }

    /// Appends the points of `key`, cut into blocks. The key must not sort before the previous
    /// key; when it is the same key, the points must come after the ones already written.
    pub fn write(&mut self, key: &[u8], values: &Values) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let mut prev = self.start_key(key, values.block_type())?;
        for i in 0..values.len() {
            let t = values.time(i).unwrap_or(i64::MIN);
            if prev.is_some_and(|p| t <= p) {
                let prev = prev.unwrap_or(t);
                return Err(TsmError::TimeOrder {
                    key: show(key),
                    prev,
                    time: t,
                });
            }
            prev = Some(t);
        }
        let mut from = 0;
        while from < values.len() {
            let to = (from + self.max_points).min(values.len());
            let mut data = std::mem::take(&mut self.buf);
            data.clear();
            encode_range(values, from, to, &mut data)?;
            let (min, max) = (
                values.time(from).unwrap_or(0),
                values.time(to - 1).unwrap_or(0),
            );
            let r = self.put_block(min, max, &data);
            self.buf = data;
            r?;
            from = to;
        }
        Ok(())
    }

    /// Appends an already encoded block (data after the CRC, e.g. copied from another file)
    /// covering `[min_time, max_time]`. Its type byte must match the key's type, and its min
    /// time must not precede the key's previous block's.
    pub fn write_block(
        &mut self,
        key: &[u8],
        min_time: i64,
        max_time: i64,
        data: &[u8],
    ) -> Result<()> {
        let (typ, _, _) = crate::block::split_block(data)?;
        if min_time > max_time {
            return Err(crate::error::corrupt(format!(
                "key {:?}: block min time after max time",
                show(key)
            )));
        }
        self.start_key(key, typ)?;
        if let Some(c) = &self.cur
            && c.entries.last().is_some_and(|e| e.min_time > min_time)
        {
            let prev = c.entries.last().map_or(min_time, |e| e.min_time);
            return Err(TsmError::TimeOrder {
                key: show(key),
                prev,
                time: min_time,
            });
        }
        self.put_block(min_time, max_time, data)
    }

    /// Makes `key` the current key (closing the previous one); returns the key's last time
    /// when it continues the current key.
    fn start_key(&mut self, key: &[u8], typ: BlockType) -> Result<Option<i64>> {
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

    fn close_key(&mut self) -> Result<()> {
        if let Some(c) = self.cur.take()
            && !c.entries.is_empty()
        {
            index::write_key_section(&mut self.index, &c.key, c.typ, &c.entries)?;
        }
        Ok(())
    }

    fn put_block(&mut self, min: i64, max: i64, data: &[u8]) -> Result<()> {
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

    /// Abandons the file (no index, no footer) and returns the inner writer as it is.
    pub fn into_inner(self) -> W {
        self.w
    }

    /// Writes the index and footer, flushes, and returns the inner writer. Fails with
    /// [`TsmError::Empty`] when no block was written (influx refuses such files).
    pub fn finish(mut self) -> Result<W> {
        self.close_key()?;
        if self.pos == 0 {
            return Err(TsmError::Empty);
        }
        self.w
            .write_all(&self.index)
            .map_err(io("write TSM index"))?;
        self.w
            .write_all(&self.pos.to_be_bytes())
            .map_err(io("write TSM footer"))?;
        self.w.flush().map_err(io("flush TSM file"))?;
        Ok(self.w)
    }
}

/// Writes a whole TSM file holding every key of `data` (keys sort as the map does) to `w` and
/// returns `w` flushed.
pub fn write_values<W: Write>(w: W, data: &BTreeMap<Vec<u8>, Values>) -> Result<W> {
    let mut tw = TsmWriter::new(w);
    for (k, v) in data {
        tw.write(k, v)?;
    }
    tw.finish()
}
