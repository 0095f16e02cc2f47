//! Segment names (`%016x-%016x.wal`) and the choice of files for a start snapshot.

use std::path::Path;

use crate::error::{Error, Result, io_err};

/// A segment file name split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentName {
    /// The file name, e.g. `0000000000000001-00000000000001a3.wal`.
    pub name: String,
    /// Sequence number (0 for the first file, +1 per cut).
    pub seq: u64,
    /// Raft index the writer expected to store first in this file.
    pub index: u64,
}

/// Formats the canonical name of a segment.
pub fn segment_name(seq: u64, index: u64) -> String {
    format!("{seq:016x}-{index:016x}.wal")
}

/// Parses a canonical segment name (16 lowercase hex digits each side); `None` otherwise.
pub fn parse_segment_name(name: &str) -> Option<SegmentName> {
    let stem = name.strip_suffix(".wal")?;
    let (a, b) = stem.split_once('-')?;
    let hex16 = |s: &str| {
        s.len() == 16
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    if !hex16(a) || !hex16(b) {
        return None;
    }
    Some(SegmentName {
        name: name.to_owned(),
        seq: u64::from_str_radix(a, 16).ok()?,
        index: u64::from_str_radix(b, 16).ok()?,
    })
}

/// Lists the segments of `dir` in name order. Other files are ignored (with a warning for
/// anything that does not end in `.tmp`). No segment at all is [`Error::FileNotFound`].
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentName>> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let ent = ent.map_err(io_err("read directory", dir))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(dir = %dir.display(), name = ?name, "ignored file in WAL directory");
            continue;
        };
        match parse_segment_name(name) {
            Some(s) => out.push(s),
            // Spare temp files and repair's `.broken` copies are expected here.
            None if name.ends_with(".tmp") || name.ends_with(".wal.broken") => {}
            None => tracing::warn!(dir = %dir.display(), name, "ignored file in WAL directory"),
        }
    }
    if out.is_empty() {
        return Err(Error::FileNotFound);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// True when `dir` holds at least one file ending in `.wal` (etcd's `Exist`).
pub fn wal_exists(dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        Path::new(&e.file_name())
            .extension()
            .is_some_and(|x| x == "wal")
    })
}

/// The files to read for a start snapshot at `index`: from the last file whose name index
/// is ≤ `index` to the end, with contiguous sequence numbers (etcd's check, which does not
/// look at the step after a file with seq 0).
pub fn select_segments(names: &[SegmentName], index: u64) -> Result<&[SegmentName]> {
    let start = names
        .iter()
        .rposition(|s| index >= s.index)
        .ok_or(Error::FileNotFound)?;
    let selected = &names[start..];
    let mut last: u64 = 0;
    for s in selected {
        if last != 0 && last.wrapping_add(1) != s.seq {
            return Err(Error::FileNotFound);
        }
        last = s.seq;
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(seq: u64, index: u64) -> SegmentName {
        parse_segment_name(&segment_name(seq, index)).expect("canonical")
    }

    #[test]
    fn names_round_trip() {
        let s = n(1, 0x1a3);
        assert_eq!(s.name, "0000000000000001-00000000000001a3.wal");
        assert_eq!((s.seq, s.index), (1, 0x1a3));
        assert!(parse_segment_name("0000000000000001-00000000000001A3.wal").is_none());
        assert!(parse_segment_name("1-2.wal").is_none());
        assert!(parse_segment_name("0000000000000001-00000000000001a3.wal.broken").is_none());
        assert!(parse_segment_name("0.tmp").is_none());
    }

    #[test]
    fn selection() {
        let v = [n(0, 0), n(1, 0x2b), n(2, 0x55), n(3, 0x76), n(4, 0x9b)];
        assert_eq!(select_segments(&v, 120).expect("sel")[0].seq, 3);
        assert_eq!(select_segments(&v, 0).expect("sel").len(), 5);
        assert_eq!(select_segments(&v, 0x9b).expect("sel").len(), 1);
        let gap = [n(1, 5), n(3, 9)];
        assert!(matches!(select_segments(&gap, 10), Ok(s) if s.len() == 1));
        assert!(matches!(select_segments(&gap, 6), Err(Error::FileNotFound)));
        assert!(matches!(select_segments(&gap, 4), Err(Error::FileNotFound)));
        // etcd skips the check right after seq 0.
        let quirk = [n(0, 0), n(5, 9)];
        assert!(select_segments(&quirk, 0).is_ok());
    }
}
