//! TSM1 index reading, the block-granular time filter used by export (blocks copied
//! verbatim, influx-tsm-format.md §1 and §6), and decoding a file into points (§3).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use super::tombstone::Tombstones;
use super::tsm_decode;
use super::write::Point;
use crate::error::{Result, StoreError};

const MAGIC: [u8; 4] = [0x16, 0xD1, 0x16, 0xD1];
const HEADER_LEN: u64 = 5;
const ENTRY_LEN: usize = 28;
/// Largest TSM index loaded into memory.
pub(crate) const MAX_INDEX_BYTES: u64 = 512 * 1024 * 1024;

/// One block's index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// First timestamp in the block.
    pub min: i64,
    /// Last timestamp in the block.
    pub max: i64,
    /// File offset of the block's CRC.
    pub offset: u64,
    /// CRC + data length.
    pub size: u32,
}

/// One key section of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeySection {
    /// Series key + `#!~#` + field.
    pub key: Vec<u8>,
    /// Block type byte.
    pub typ: u8,
    /// Blocks of the key, by min time.
    pub entries: Vec<Entry>,
}

/// A parsed TSM index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    /// Key sections in key order.
    pub keys: Vec<KeySection>,
    /// Smallest block min time (i64::MAX when empty).
    pub min: i64,
    /// Largest block max time (i64::MIN when empty).
    pub max: i64,
}

fn corrupt(name: &str, msg: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("TSM file {name}: {msg}"))
}

fn io_err(name: &str, e: io::Error) -> StoreError {
    StoreError::io(format!("read TSM file {name}"), e)
}

/// Reads and strictly validates the index of a TSM file of length `len`.
pub(crate) fn read_index(file: &mut File, len: u64, name: &str) -> Result<Index> {
    if len < HEADER_LEN + 8 {
        return Err(corrupt(name, "too short"));
    }
    let mut head = [0u8; 5];
    file.seek(SeekFrom::Start(0)).map_err(|e| io_err(name, e))?;
    file.read_exact(&mut head).map_err(|e| io_err(name, e))?;
    if head[..4] != MAGIC || head[4] != 1 {
        return Err(corrupt(name, "bad magic or version"));
    }
    let mut foot = [0u8; 8];
    file.seek(SeekFrom::Start(len - 8))
        .map_err(|e| io_err(name, e))?;
    file.read_exact(&mut foot).map_err(|e| io_err(name, e))?;
    let idx_ofs = u64::from_be_bytes(foot);
    if idx_ofs < HEADER_LEN || idx_ofs >= len - 8 {
        return Err(corrupt(name, format!("invalid index offset {idx_ofs}")));
    }
    let idx_len = len - 8 - idx_ofs;
    if idx_len > MAX_INDEX_BYTES {
        return Err(StoreError::LimitExceeded {
            what: "TSM index",
            limit: MAX_INDEX_BYTES,
            got: idx_len,
        });
    }
    let mut buf = Vec::with_capacity(idx_len as usize);
    file.seek(SeekFrom::Start(idx_ofs))
        .map_err(|e| io_err(name, e))?;
    (&mut *file)
        .take(idx_len)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(name, e))?;
    if buf.len() as u64 != idx_len {
        return Err(corrupt(name, "index truncated"));
    }
    parse_index(&buf, idx_ofs, name)
}

fn take<'a>(b: &mut &'a [u8], n: usize, name: &str) -> Result<&'a [u8]> {
    if b.len() < n {
        return Err(corrupt(name, "index truncated"));
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h)
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn parse_index(mut b: &[u8], idx_ofs: u64, name: &str) -> Result<Index> {
    let mut keys: Vec<KeySection> = Vec::new();
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    while !b.is_empty() {
        let klen = take(&mut b, 2, name)?;
        let klen = usize::from(u16::from_be_bytes([klen[0], klen[1]]));
        let key = take(&mut b, klen, name)?.to_vec();
        if let Some(prev) = keys.last()
            && prev.key >= key
        {
            return Err(corrupt(name, "index keys not strictly ascending"));
        }
        let typ = take(&mut b, 1, name)?[0];
        if typ > 4 {
            return Err(corrupt(name, format!("unknown block type {typ}")));
        }
        let cnt = take(&mut b, 2, name)?;
        let cnt = usize::from(u16::from_be_bytes([cnt[0], cnt[1]]));
        if cnt == 0 {
            return Err(corrupt(name, "key with no blocks"));
        }
        let raw = take(&mut b, cnt * ENTRY_LEN, name)?;
        let mut entries = Vec::with_capacity(cnt);
        for e in raw.chunks_exact(ENTRY_LEN) {
            let ent = Entry {
                min: be_u64(&e[0..]) as i64,
                max: be_u64(&e[8..]) as i64,
                offset: be_u64(&e[16..]),
                size: u32::from_be_bytes([e[24], e[25], e[26], e[27]]),
            };
            let end = ent.offset.checked_add(u64::from(ent.size));
            if ent.offset < HEADER_LEN || ent.size <= 4 || end.is_none_or(|x| x > idx_ofs) {
                return Err(corrupt(name, "index entry points outside the block area"));
            }
            if ent.min > ent.max {
                return Err(corrupt(name, "index entry with min > max"));
            }
            min = min.min(ent.min);
            max = max.max(ent.max);
            entries.push(ent);
        }
        keys.push(KeySection { key, typ, entries });
    }
    Ok(Index { keys, min, max })
}

/// Whether `[a, b]` intersects `[s, e]` (all inclusive).
pub(crate) fn overlaps(a: i64, b: i64, s: i64, e: i64) -> bool {
    a <= e && b >= s
}

/// Writes to `out` a TSM file holding only the blocks of `src` that intersect `[s, e]`,
/// copied verbatim, with the index rebuilt; returns the number of blocks kept (0 = nothing
/// written worth keeping: the caller drops the output).
pub(crate) fn filter(
    src: &mut File,
    index: &Index,
    s: i64,
    e: i64,
    out: File,
    name: &str,
) -> Result<(u64, File)> {
    let werr = |e: io::Error| StoreError::io(format!("write filtered TSM {name}"), e);
    let mut w = BufWriter::with_capacity(256 * 1024, out);
    w.write_all(&MAGIC).map_err(werr)?;
    w.write_all(&[1]).map_err(werr)?;
    let mut pos = HEADER_LEN;
    let mut kept: Vec<(&KeySection, Vec<Entry>)> = Vec::new();
    let mut blocks = 0u64;
    for ks in &index.keys {
        let mut new_entries = Vec::new();
        for ent in ks.entries.iter().filter(|x| overlaps(x.min, x.max, s, e)) {
            src.seek(SeekFrom::Start(ent.offset))
                .map_err(|e| io_err(name, e))?;
            let n = io::copy(&mut (&mut *src).take(u64::from(ent.size)), &mut w).map_err(werr)?;
            if n != u64::from(ent.size) {
                return Err(corrupt(name, "block truncated"));
            }
            new_entries.push(Entry {
                offset: pos,
                ..*ent
            });
            pos += u64::from(ent.size);
            blocks += 1;
        }
        if !new_entries.is_empty() {
            new_entries.sort_by_key(|x| x.min);
            kept.push((ks, new_entries));
        }
    }
    let idx_ofs = pos;
    for (ks, entries) in kept {
        let klen = u16::try_from(ks.key.len()).map_err(|_| corrupt(name, "key too long"))?;
        let cnt = u16::try_from(entries.len()).map_err(|_| corrupt(name, "too many blocks"))?;
        w.write_all(&klen.to_be_bytes()).map_err(werr)?;
        w.write_all(&ks.key).map_err(werr)?;
        w.write_all(&[ks.typ]).map_err(werr)?;
        w.write_all(&cnt.to_be_bytes()).map_err(werr)?;
        for ent in entries {
            w.write_all(&ent.min.to_be_bytes()).map_err(werr)?;
            w.write_all(&ent.max.to_be_bytes()).map_err(werr)?;
            w.write_all(&ent.offset.to_be_bytes()).map_err(werr)?;
            w.write_all(&ent.size.to_be_bytes()).map_err(werr)?;
        }
    }
    w.write_all(&idx_ofs.to_be_bytes()).map_err(werr)?;
    let file = w.into_inner().map_err(|e| werr(e.into_error()))?;
    Ok((blocks, file))
}

/// Decodes every point of a TSM file, one [`Point`] per (series, time) with its fields in key
/// order, values covered by `deleted` dropped.
pub(crate) fn read_points(
    file: &mut File,
    len: u64,
    name: &str,
    deleted: &Tombstones,
) -> Result<Vec<Point>> {
    let index = read_index(file, len, name)?;
    let mut rows: BTreeMap<(usize, i64), Point> = BTreeMap::new();
    let mut series_ids: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut buf = Vec::new();
    for ks in &index.keys {
        let (series, field) = split_key(&ks.key);
        let next = series_ids.len();
        let sid = *series_ids.entry(series.to_vec()).or_insert(next);
        let (measurement, tags) = parse_series(series, name)?;
        let field = String::from_utf8_lossy(field).into_owned();
        for ent in &ks.entries {
            buf.clear();
            file.seek(SeekFrom::Start(ent.offset + 4))
                .map_err(|e| io_err(name, e))?;
            let want = u64::from(ent.size - 4);
            (&mut *file)
                .take(want)
                .read_to_end(&mut buf)
                .map_err(|e| io_err(name, e))?;
            if buf.len() as u64 != want {
                return Err(corrupt(name, "block truncated"));
            }
            for (t, v) in tsm_decode::block(&buf)? {
                if deleted.covers(&ks.key, t) {
                    continue;
                }
                rows.entry((sid, t))
                    .or_insert_with(|| Point {
                        measurement: measurement.clone(),
                        tags: tags.clone(),
                        fields: Vec::new(),
                        time_ns: t,
                    })
                    .fields
                    .push((field.clone(), v));
            }
        }
    }
    Ok(rows.into_values().collect())
}

fn split_key(key: &[u8]) -> (&[u8], &[u8]) {
    const SEP: &[u8] = b"#!~#";
    match key.windows(SEP.len()).position(|w| w == SEP) {
        Some(i) => (&key[..i], &key[i + SEP.len()..]),
        None => (key, &[]),
    }
}

/// Measurement and tags of an escaped series key, parsed by the line-protocol parser.
fn parse_series(series: &[u8], name: &str) -> Result<(String, Vec<(String, String)>)> {
    let text = std::str::from_utf8(series).map_err(|_| corrupt(name, "series key not UTF-8"))?;
    let line = format!("{text} f=0i 0");
    let parsed = influxdb_line_protocol::parse_lines(&line)
        .next()
        .and_then(|r| r.ok())
        .ok_or_else(|| corrupt(name, format!("bad series key {text:?}")))?;
    let tags = parsed
        .series
        .tag_set
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string()))
        .collect();
    Ok((parsed.series.measurement.as_str().to_string(), tags))
}
