//! A shard restored from a chain of archives (a full run, then increments) is sent as one
//! tar stream: each archive oldest first, leaving out the entries a later archive of the
//! chain also holds (influx rewrites a file whole, so the later copy is the current one).
//! Both an overlaying server (influxd) and a replacing one (snapshotd serve) then hold the
//! union. Only the later archives' entry names are read beforehand, within bounds.

use std::collections::HashSet;
use std::io::{BufReader, Read};

use crate::error::{ClientError, Result};
use crate::layout::FileRecord;
use crate::storage::Storage;

/// Most entry names read from the later archives of one chain.
const MAX_NAMES: usize = 1 << 20;
/// Most bytes of those names together.
const MAX_NAME_BYTES: usize = 64 << 20;

/// Names (in the shard) held by each archive of a chain, for the archives after the first.
#[derive(Debug, Default)]
pub(super) struct Skips {
    /// `held[i]`: entry names of archive `i` (empty for the first archive).
    held: Vec<HashSet<String>>,
}

impl Skips {
    /// Reads the entry names of every archive of `chain` but the first; a chain of one
    /// archive reads nothing.
    pub(super) async fn read(src: &Storage, chain: &[FileRecord]) -> Result<Skips> {
        let mut held = vec![HashSet::new(); chain.len()];
        let mut left = Budget {
            names: MAX_NAMES,
            bytes: MAX_NAME_BYTES,
        };
        for (i, f) in chain.iter().enumerate().skip(1) {
            let reader = src.blocking_reader(&f.file_name).await?;
            let file = f.clone();
            let (names, rest) = tokio::task::spawn_blocking(move || {
                entry_names(&file, reader, left).map_err(|e| chain_error(&file, e))
            })
            .await
            .map_err(|e| {
                ClientError::worker(format!("list the entries of {}", f.file_name), e)
            })??;
            held[i] = names;
            left = rest;
        }
        Ok(Skips { held })
    }

    /// Whether an archive after archive `i` holds `name` (so archive `i`'s copy is left out).
    pub(super) fn later_holds(&self, i: usize, name: &str) -> bool {
        self.held.iter().skip(i + 1).any(|h| h.contains(name))
    }
}

/// What may still be read.
#[derive(Debug, Clone, Copy)]
struct Budget {
    names: usize,
    bytes: usize,
}

/// An archive whose names could not be read is reported as damaged (nothing was sent).
fn chain_error(f: &FileRecord, e: ClientError) -> ClientError {
    match e {
        ClientError::Io { source, .. } => ClientError::Integrity {
            file: f.file_name.clone(),
            detail: format!("not a complete gzipped tar ({source}); the shard was not installed"),
        },
        e => e,
    }
}

/// The validated entry names (what follows `db/rp/id/`) of archive `f`.
fn entry_names(
    f: &FileRecord,
    reader: Box<dyn Read + Send>,
    mut left: Budget,
) -> Result<(HashSet<String>, Budget)> {
    let io = |e: std::io::Error| ClientError::io(format!("{}: list entries", f.file_name), e);
    let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, reader));
    let mut archive = tar::Archive::new(gz);
    let mut names = HashSet::new();
    for entry in archive.entries().map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(rest) = super::renamed_rest(f, &name, entry.header().entry_type())? else {
            continue;
        };
        left.names = left.names.checked_sub(1).ok_or_else(|| too_many(f))?;
        left.bytes = left
            .bytes
            .checked_sub(rest.len())
            .ok_or_else(|| too_many(f))?;
        names.insert(rest);
    }
    Ok((names, left))
}

fn too_many(f: &FileRecord) -> ClientError {
    ClientError::Integrity {
        file: f.file_name.clone(),
        detail: format!(
            "the increments of shard {} hold more than {MAX_NAMES} entries or {MAX_NAME_BYTES} \
             bytes of names; the shard was not installed",
            f.shard_id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_later_archives_supersede() {
        let s = Skips {
            held: vec![
                HashSet::new(),
                HashSet::from(["1-2.tsm".to_string()]),
                HashSet::from(["2-1.tsm".to_string()]),
            ],
        };
        assert!(s.later_holds(0, "1-2.tsm"));
        assert!(s.later_holds(0, "2-1.tsm"));
        assert!(!s.later_holds(0, "1-1.tsm"));
        assert!(s.later_holds(1, "2-1.tsm"));
        assert!(!s.later_holds(1, "1-2.tsm"));
        assert!(!s.later_holds(2, "2-1.tsm"));
    }

    fn rec() -> FileRecord {
        FileRecord {
            db: "db".into(),
            rp: "rp".into(),
            shard_id: 7,
            file_name: "T.s7.tar.gz".into(),
            size: 0,
            sha256: None,
            bytes: None,
        }
    }

    fn targz(names: &[&str]) -> Box<dyn Read + Send> {
        let mut b = tar::Builder::new(Vec::new());
        for n in names {
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_cksum();
            b.append_data(&mut h, n, &b"x"[..]).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        Box::new(std::io::Cursor::new(gz.finish().unwrap()))
    }

    #[test]
    fn names_are_validated_and_bounded() {
        let two = ["db/rp/7/1-1.tsm", "db/rp/7/1-1.tombstone"];
        let ample = Budget {
            names: 10,
            bytes: 100,
        };
        let (names, left) = entry_names(&rec(), targz(&two), ample).unwrap();
        assert_eq!(
            names,
            HashSet::from(["1-1.tsm".into(), "1-1.tombstone".into()])
        );
        assert_eq!((left.names, left.bytes), (8, 100 - 7 - 13));
        let one = Budget {
            names: 1,
            bytes: 100,
        };
        let e = entry_names(&rec(), targz(&two), one).unwrap_err();
        assert!(e.to_string().contains("T.s7.tar.gz"), "{e}");
        let short = Budget {
            names: 10,
            bytes: 10,
        };
        assert!(entry_names(&rec(), targz(&two), short).is_err());
        // Another shard's entry is refused, as on the upload pass.
        assert!(entry_names(&rec(), targz(&["db/rp/8/1-1.tsm"]), ample).is_err());
        // A cut archive is damaged, not a failed upload.
        let mut cut = Vec::new();
        targz(&two).read_to_end(&mut cut).unwrap();
        cut.truncate(cut.len() / 2);
        let e = entry_names(&rec(), Box::new(std::io::Cursor::new(cut)), ample)
            .map_err(|e| chain_error(&rec(), e))
            .unwrap_err();
        assert!(matches!(e, ClientError::Integrity { .. }), "{e}");
    }
}
