//! A chunk: committed entries `first..=last` stored as one etcd-compatible WAL segment.
//!
//! The segment holds etcd's headers (crc, metadata, the `{0,0}` snapshot record), then a
//! snapshot record `{first-1, term of first-1}`, the entries and a hard state committing
//! `last`, so `snapshotd wal dump --index <first-1> --term <term> DIR` reads a chunk saved
//! as `DIR/0000000000000000-0000000000000000.wal`. Each chunk has its own CRC chain.

use std::path::Path;

use snapshotd_wal::{Entry, HardState, Snapshot, Wal, WalOptions, open_for_read, segment_name};

use crate::error::{Error, Result};

/// Encodes `entries` (consecutive, non-empty) with our etcd-compatible encoder.
/// `prev` is `(index, term)` of the entry before the first (`(0, 0)` at the log's start).
pub fn encode(metadata: &[u8], prev: (u64, u64), entries: &[Entry]) -> Result<Vec<u8>> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Err(Error::Corrupt {
            name: "chunk".into(),
            reason: "no entries to encode".into(),
        });
    };
    let tmp = tempfile::tempdir().map_err(Error::io("create temp dir", std::env::temp_dir()))?;
    let dir = tmp.path().join("wal");
    let payload: u64 = entries
        .iter()
        .map(|e| e.data.as_ref().map_or(0, |d| d.len() as u64) + 64)
        .sum();
    // One segment for the whole chunk: never cut in the middle.
    let opts = WalOptions::default()
        .segment_size_bytes(payload + metadata.len() as u64 + (1 << 20))
        .unsafe_no_fsync(true);
    let ctx = format!("encode chunk {}..={}", first.index, last.index);
    let mut wal = Wal::create_with(&dir, metadata, &opts).map_err(Error::wal(&ctx))?;
    if prev.0 > 0 {
        wal.save_snapshot(&Snapshot::new(prev.0, prev.1))
            .map_err(Error::wal(&ctx))?;
    }
    wal.save(&HardState::new(last.term, 0, last.index), entries)
        .map_err(Error::wal(&ctx))?;
    wal.close().map_err(Error::wal(&ctx))?;
    let view = open_for_read(&dir, Snapshot::new(0, 0)).map_err(Error::wal(&ctx))?;
    let [seg] = view.segments() else {
        return Err(Error::Corrupt {
            name: ctx,
            reason: format!(
                "encoder wrote {} segments, expected 1",
                view.segments().len()
            ),
        });
    };
    let mut bytes = std::fs::read(seg.path()).map_err(Error::io("read", seg.path()))?;
    bytes.truncate(seg.valid_len() as usize);
    Ok(bytes)
}

/// What a decoded chunk holds.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Metadata record of the chunk.
    pub metadata: Vec<u8>,
    /// The entries, consecutive.
    pub entries: Vec<Entry>,
}

/// Decodes a chunk's bytes (named `name` in errors), checking frames, CRCs, that entries
/// are exactly `first..=last` in order and that every term is at least the previous one.
pub fn decode(name: &str, bytes: &[u8], first: u64, last: u64) -> Result<Decoded> {
    let bad = |reason: String| Error::Corrupt {
        name: name.to_string(),
        reason,
    };
    let tmp = tempfile::tempdir().map_err(Error::io("create temp dir", std::env::temp_dir()))?;
    let path = tmp.path().join(segment_name(0, 0));
    std::fs::write(&path, bytes).map_err(Error::io("write", &path))?;
    decode_dir(tmp.path(), first, last).map_err(|e| match e {
        Error::Wal { source, .. } => bad(source.to_string()),
        Error::Corrupt { reason, .. } => bad(reason),
        other => other,
    })
}

fn decode_dir(dir: &Path, first: u64, last: u64) -> Result<Decoded> {
    let corrupt = |reason: String| Error::Corrupt {
        name: String::new(),
        reason,
    };
    let view = open_for_read(dir, Snapshot::new(0, 0)).map_err(Error::wal("open"))?;
    let mut stream = view.entries().raw_indexes();
    let mut entries: Vec<Entry> = Vec::new();
    for e in stream.by_ref() {
        let e = e.map_err(Error::wal("read"))?;
        let want = entries.last().map_or(first, |p| p.index + 1);
        if e.index != want {
            return Err(corrupt(format!(
                "entry {} where {want} was expected",
                e.index
            )));
        }
        if entries.last().is_some_and(|p| e.term < p.term) {
            return Err(corrupt(format!("entry {} goes back in term", e.index)));
        }
        entries.push(e);
    }
    if entries.last().map(|e| e.index) != Some(last) {
        return Err(corrupt(format!(
            "holds entries up to {:?}, its name says {last}",
            entries.last().map(|e| e.index)
        )));
    }
    if stream.hardstate().commit != last {
        return Err(corrupt(format!(
            "commits {}, expected {last}",
            stream.hardstate().commit
        )));
    }
    Ok(Decoded {
        metadata: stream.metadata().unwrap_or_default().to_vec(),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ents(a: u64, b: u64) -> Vec<Entry> {
        (a..=b).map(|i| Entry::new(i, 2, format!("v{i}"))).collect()
    }

    #[test]
    fn round_trip_and_damage() {
        let bytes = encode(b"meta", (4, 1), &ents(5, 9)).expect("encode");
        let d = decode("c", &bytes, 5, 9).expect("decode");
        assert_eq!(d.entries, ents(5, 9));
        assert_eq!(d.metadata, b"meta");
        assert!(decode("c", &bytes, 5, 10).is_err(), "wrong last accepted");
        assert!(decode("c", &bytes, 4, 9).is_err(), "wrong first accepted");
        let mut bad = bytes.clone();
        let n = bad.len() - 20;
        bad[n] ^= 0x40;
        assert!(decode("c", &bad, 5, 9).is_err(), "bit flip accepted");
        assert!(
            decode("c", &bytes[..bytes.len() - 9], 5, 9).is_err(),
            "truncation accepted"
        );
    }
}
