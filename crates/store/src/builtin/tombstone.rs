//! TSM tombstone files (influx-tsm-format.md §5): v1 text, v2 raw records, v3 one gzip
//! stream, v4 concatenated gzip members. Sizes are bounded before allocating.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::{GzDecoder, MultiGzDecoder};

use crate::error::{Result, StoreError};

/// Largest decompressed tombstone data accepted.
const MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Longest key accepted in a record.
const MAX_KEY: u32 = 1 << 20;

/// Deleted (key → inclusive time ranges) of one TSM file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tombstones(HashMap<Vec<u8>, Vec<(i64, i64)>>);

impl Tombstones {
    /// Whether the value of `key` at `t` is deleted.
    pub(crate) fn covers(&self, key: &[u8], t: i64) -> bool {
        self.0
            .get(key)
            .is_some_and(|rs| rs.iter().any(|(a, b)| *a <= t && t <= *b))
    }
}

fn corrupt(path: &Path, msg: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("tombstone {}: {msg}", path.display()))
}

/// Reads a tombstone file from an open handle (`path` names it in errors).
pub(crate) fn read(file: &mut File, path: &str) -> Result<Tombstones> {
    let path = Path::new(path);
    let io_ctx = |e| StoreError::io(format!("read {}", path.display()), e);
    file.seek(SeekFrom::Start(0)).map_err(io_ctx)?;
    let mut file = BufReader::new(file).take(MAX_BYTES);
    let mut head = Vec::with_capacity(4);
    (&mut file).take(4).read_to_end(&mut head).map_err(io_ctx)?;
    let mut out = Tombstones::default();
    match head.as_slice() {
        [0, 0, 0x15, 0x04] => records(
            &mut MultiGzDecoder::new(file).take(MAX_BYTES),
            &mut out,
            path,
        )?,
        [0, 0, 0x15, 0x03] => records(&mut GzDecoder::new(file).take(MAX_BYTES), &mut out, path)?,
        [0, 0, 0x15, 0x02] => records(&mut file, &mut out, path)?,
        _ => {
            let mut text = head;
            file.read_to_end(&mut text).map_err(io_ctx)?;
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                out.0
                    .entry(line.to_vec())
                    .or_default()
                    .push((i64::MIN, i64::MAX));
            }
        }
    }
    Ok(out)
}

/// Reads `u32 keyLen, key, i64 min, i64 max` records (big-endian) until a clean EOF.
fn records(r: &mut dyn Read, out: &mut Tombstones, path: &Path) -> Result<()> {
    loop {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(corrupt(path, e)),
        }
        let n = u32::from_be_bytes(len);
        if n > MAX_KEY {
            return Err(corrupt(path, format!("key length {n}")));
        }
        let mut key = vec![0u8; n as usize];
        let mut times = [0u8; 16];
        r.read_exact(&mut key)
            .and_then(|()| r.read_exact(&mut times))
            .map_err(|e| corrupt(path, e))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&times[..8]);
        let min = i64::from_be_bytes(a);
        a.copy_from_slice(&times[8..]);
        let max = i64::from_be_bytes(a);
        out.0.entry(key).or_default().push((min, max));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn record(key: &[u8], min: i64, max: i64) -> Vec<u8> {
        let mut v = (key.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(key);
        v.extend_from_slice(&min.to_be_bytes());
        v.extend_from_slice(&max.to_be_bytes());
        v
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = e.write_all(data);
        e.finish().unwrap_or_default()
    }

    #[test]
    fn all_versions_parse() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
        let p = dir.path().join("t.tombstone");
        let w = |b: &[u8]| std::fs::write(&p, b).map_err(|e| StoreError::io("write", e));
        let read = |p: &std::path::Path| -> Result<Tombstones> {
            let mut f = File::open(p).map_err(|e| StoreError::io("open", e))?;
            super::read(&mut f, "t.tombstone")
        };
        // v4: two gzip members.
        let mut v4 = vec![0, 0, 0x15, 0x04];
        v4.extend(gz(&record(b"a#!~#f", 10, 20)));
        v4.extend(gz(&record(b"b#!~#f", 5, 5)));
        w(&v4)?;
        let t = read(&p)?;
        assert!(t.covers(b"a#!~#f", 10) && t.covers(b"a#!~#f", 20) && !t.covers(b"a#!~#f", 21));
        assert!(t.covers(b"b#!~#f", 5) && !t.covers(b"c#!~#f", 5));
        // v2: raw records; a truncated record is an error.
        let mut v2 = vec![0, 0, 0x15, 0x02];
        v2.extend(record(b"k", 1, 2));
        w(&v2)?;
        assert!(read(&p)?.covers(b"k", 2));
        v2.truncate(v2.len() - 3);
        w(&v2)?;
        assert!(read(&p).is_err());
        // v1 text and the empty file.
        w(b"cpu#!~#v\nmem#!~#x\n")?;
        assert!(read(&p)?.covers(b"mem#!~#x", i64::MIN));
        w(b"")?;
        assert_eq!(read(&p)?, Tombstones::default());
        // A hostile key length.
        let mut bad = vec![0, 0, 0x15, 0x02];
        bad.extend(u32::MAX.to_be_bytes());
        w(&bad)?;
        assert!(read(&p).is_err());
        Ok(())
    }
}
