//! The compaction marker of a shard: `.compacted` names the last log index whose points are
//! in TSM files and the TSM file that compaction wrote. Committing the marker (temp + fsync +
//! rename + dir fsync) is the commit point of a compaction: the TSM file is first written as
//! `.<name>.tmp`, then the marker, then the TSM file is renamed into place. Recovery rolls a
//! committed compaction forward and throws an uncommitted one away, so every logged point
//! is read exactly once (from the TSM file or from the log, never both).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{Corruption, MarkerKind, MarkerProblem, Result, StoreError};

/// Marker file name (dot-prefixed: never shipped by backups).
pub(crate) const MARKER: &str = ".compacted";
const MARKER_TMP: &str = ".compacted.tmp";
const HEADER: &str = "snapshotd compacted v1";
/// Largest marker file we read.
const MAX_MARKER_BYTES: u64 = 4096;

fn io(what: &str, p: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let ctx = format!("{what} {}", p.display());
    move |e| StoreError::io(ctx, e)
}

/// The temporary name a compaction writes TSM file `name` under.
pub(crate) fn tmp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Syncs a directory so renames in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", dir))
}

/// The committed marker: (index, TSM file name), or `None` when never compacted.
pub(crate) fn read(shard_dir: &Path) -> Result<Option<(u64, String)>> {
    let path = shard_dir.join(MARKER);
    let bad = |problem| -> StoreError {
        Corruption::Marker {
            path: path.clone(),
            kind: MarkerKind::Compaction,
            problem,
        }
        .into()
    };
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("stat", &path)(e)),
    };
    if len > MAX_MARKER_BYTES {
        return Err(bad(MarkerProblem::TooLarge { len }));
    }
    let text = fs::read_to_string(&path).map_err(io("read", &path))?;
    let malformed = || bad(MarkerProblem::Malformed);
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(malformed());
    }
    let (index, name) = lines
        .next()
        .and_then(|l| l.split_once(' '))
        .ok_or_else(malformed)?;
    let index: u64 = index.parse().map_err(|_| malformed())?;
    if parse_tsm_name(name).is_none() {
        return Err(malformed());
    }
    Ok(Some((index, name.to_string())))
}

/// Commits a compaction through `index` that wrote TSM file `name` (still under its
/// temporary name).
#[cfg(test)]
pub(crate) fn commit(shard_dir: &Path, index: u64, name: &str) -> Result<()> {
    prepare(shard_dir, index, name)?;
    publish(shard_dir)
}

/// Writes and fsyncs the marker's temporary file (no lock needed: one compaction at a time).
pub(crate) fn prepare(shard_dir: &Path, index: u64, name: &str) -> Result<()> {
    let tmp = shard_dir.join(MARKER_TMP);
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(format!("{HEADER}\n{index} {name}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("write", &tmp))
}

/// Renames the prepared marker into place and syncs the directory: the commit point.
pub(crate) fn publish(shard_dir: &Path) -> Result<()> {
    let tmp = shard_dir.join(MARKER_TMP);
    let dst = shard_dir.join(MARKER);
    fs::rename(&tmp, &dst).map_err(io("rename", &tmp))?;
    sync_dir(shard_dir)
}

/// Moves the committed TSM file from its temporary name into place (no-op when done).
pub(crate) fn install(shard_dir: &Path, name: &str) -> Result<()> {
    if rename_into_place(shard_dir, name)? {
        sync_dir(shard_dir)?;
    }
    Ok(())
}

/// Renames `.<name>.tmp` to `name` without syncing the directory (a committed file left
/// under its temporary name by a crash is renamed again at recovery); false when absent.
pub(crate) fn rename_into_place(shard_dir: &Path, name: &str) -> Result<bool> {
    let tmp = shard_dir.join(tmp_name(name));
    match fs::rename(&tmp, shard_dir.join(name)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("rename", &tmp)(e)),
    }
}

/// Finishes a committed compaction interrupted by a crash, removes the leftovers of an
/// uncommitted one, and returns the index the log is compacted through.
pub(crate) fn recover(shard_dir: &Path) -> Result<u64> {
    let marker = read(shard_dir)?;
    if let Some((_, name)) = &marker {
        install(shard_dir, name)?;
    }
    super::merge_marker::recover(shard_dir)?;
    let entries = match fs::read_dir(shard_dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io("read", shard_dir)(e)),
    };
    for ent in entries.filter_map(|e| e.ok()) {
        let n = ent.file_name().to_string_lossy().into_owned();
        if n == MARKER_TMP || (n.starts_with('.') && n.ends_with(".tsm.tmp")) {
            tracing::warn!(file = %ent.path().display(), "removing an uncommitted compaction");
            fs::remove_file(ent.path()).map_err(io("remove", &ent.path()))?;
        }
    }
    Ok(marker.map_or(0, |(i, _)| i))
}

/// (generation, sequence) of an influx TSM file name `<gen>-<seq>.tsm`.
pub(crate) fn parse_tsm_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".tsm")?;
    let (g, s) = stem.split_once('-')?;
    Some((g.parse().ok()?, s.parse().ok()?))
}

/// The highest TSM generation among `names` (0 when none).
pub(crate) fn max_generation<'a>(names: impl IntoIterator<Item = &'a str>) -> u64 {
    names
        .into_iter()
        .filter_map(parse_tsm_name)
        .map(|(g, _)| g)
        .max()
        .unwrap_or(0)
}

/// The influx name of a fresh (level-1) TSM file of generation `gen`.
pub(crate) fn tsm_name(generation: u64) -> String {
    format!("{generation:09}-{:09}.tsm", 1)
}

/// The name of the next TSM file a compaction of `shard_dir` writes.
pub(crate) fn next_tsm_name(shard_dir: &Path) -> Result<String> {
    let names: Vec<String> = fs::read_dir(shard_dir)
        .map_err(io("read", shard_dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    Ok(tsm_name(
        max_generation(names.iter().map(String::as_str)) + 1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_recovery_rolls_forward() -> Result<()> {
        let d = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
        assert_eq!(recover(d.path())?, 0);
        let name = next_tsm_name(d.path())?;
        assert_eq!(name, "000000001-000000001.tsm");
        fs::write(d.path().join(tmp_name(&name)), b"x").map_err(|e| StoreError::io("w", e))?;
        commit(d.path(), 42, &name)?;
        assert_eq!(read(d.path())?, Some((42, name.clone())));
        assert_eq!(recover(d.path())?, 42);
        assert!(d.path().join(&name).exists());
        assert_eq!(next_tsm_name(d.path())?, "000000002-000000001.tsm");
        let stray = tmp_name("000000002-000000001.tsm");
        fs::write(d.path().join(&stray), b"y").map_err(|e| StoreError::io("w", e))?;
        assert_eq!(recover(d.path())?, 42);
        assert!(!d.path().join(&stray).exists());
        fs::write(d.path().join(MARKER), b"junk").map_err(|e| StoreError::io("w", e))?;
        assert!(matches!(read(d.path()), Err(StoreError::Corrupt(_))));
        Ok(())
    }
}
