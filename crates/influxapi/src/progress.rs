//! A merge's progress file: the backup shard IDs finished so far, one a line, each appended
//! and fsync'd before the shard counts as done, so a re-run after a crash or `kill -9`
//! skips them and rewrites only the unfinished ones.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{InfluxApiError, Result};
use crate::merge::DoneFn;

/// The progress of one merge (source, target, database), kept in one file or not at all.
#[derive(Debug, Clone)]
pub struct MergeProgress {
    path: Option<PathBuf>,
}

impl MergeProgress {
    /// Progress kept in `path` (created on the first finished shard); `None` keeps none.
    pub fn at(path: Option<PathBuf>) -> Self {
        MergeProgress { path }
    }

    /// The file, if progress is kept.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The shards finished by earlier runs (none when the file does not exist).
    pub fn done(&self) -> Result<HashSet<u64>> {
        let Some(p) = &self.path else {
            return Ok(HashSet::new());
        };
        match read_bounded(p) {
            Ok(t) => Ok(t.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
            Err(source) => Err(InfluxApiError::Io {
                context: format!("read the merge progress {}", p.display()),
                source,
            }),
        }
    }

    /// The [`DoneFn`] for [`crate::merge`]: appends the shard and syncs the file.
    pub fn recorder(&self) -> DoneFn {
        let file = self.path.clone();
        Arc::new(move |id| {
            let Some(p) = &file else { return Ok(()) };
            record(p, id).map_err(|source| InfluxApiError::Io {
                context: format!("record shard {id} as merged in {}", p.display()),
                source,
            })
        })
    }

    /// Removes the file after a complete merge.
    pub fn finish(&self) -> Result<()> {
        let Some(p) = &self.path else { return Ok(()) };
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(InfluxApiError::Io {
                context: format!("remove the merge progress {}", p.display()),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

fn record(p: &Path, id: u64) -> std::io::Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)?;
    writeln!(f, "{id}")?;
    f.sync_all()
}

/// Most bytes a progress file may hold (one short line per shard).
const MAX_PROGRESS_BYTES: u64 = 64 << 20;

/// The progress file's text, refused past [`MAX_PROGRESS_BYTES`] before it is read whole.
fn read_bounded(p: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(p)?
        .take(MAX_PROGRESS_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_PROGRESS_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 64 MiB, so not a merge progress file: remove it to merge from the start",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finished_shards_survive_a_reopen_and_finish_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("merge").join("x.done");
        let prog = MergeProgress::at(Some(p.clone()));
        assert!(prog.done().unwrap().is_empty());
        let rec = prog.recorder();
        rec(7).unwrap();
        rec(3).unwrap();
        let again = MergeProgress::at(Some(p.clone()));
        assert_eq!(again.done().unwrap(), HashSet::from([3, 7]));
        again.finish().unwrap();
        assert!(!p.exists());
        let none = MergeProgress::at(None);
        none.recorder()(1).unwrap();
        assert!(none.done().unwrap().is_empty());
    }

    #[test]
    fn an_oversized_progress_file_is_refused_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.done");
        std::fs::File::create(&p)
            .unwrap()
            .set_len(MAX_PROGRESS_BYTES + 1)
            .unwrap();
        let err = MergeProgress::at(Some(p)).done().unwrap_err();
        assert!(err.to_string().contains("merge progress"), "{err}");
    }
}
