//! The merge marker of a shard: `.merging` names a merge's output and the files it replaces.
//! Commit protocol: the marker is written as `.merging.tmp` and fsynced without the shard
//! lock; under the lock it is renamed into place and the directory fsynced (the commit
//! point), the output is renamed into place, the inputs and their tombstones deleted, the
//! directory fsynced and the marker removed. Recovery finishes a committed merge and throws
//! an uncommitted one away.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::marker;
use super::merge::{Hook, Step, TsmFile, tombstone_name};
use crate::error::{Corruption, MarkerKind, MarkerProblem, Result, StoreError};

/// Merge marker file name (dot-prefixed: never shipped by backups).
const MERGING: &str = ".merging";
const MERGING_TMP: &str = ".merging.tmp";
const HEADER: &str = "snapshotd merging v1";
/// Largest merge marker we read.
const MAX_MARKER_BYTES: u64 = 1 << 20;

/// The inputs and their tombstone files: what a merge of `files` deletes.
pub(crate) fn doomed(dir: &Path, files: &[TsmFile]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        out.push(f.2.clone());
        let ts = tombstone_name(&f.2);
        if dir.join(&ts).exists() {
            out.push(ts);
        }
    }
    out
}

/// Writes and fsyncs the temporary merge marker: output `name` replacing `doomed`.
pub(crate) fn prepare(dir: &Path, name: &str, doomed: &[String]) -> Result<()> {
    let tmp = dir.join(MERGING_TMP);
    let mut text = format!("{HEADER}\n{name}\n");
    for d in doomed {
        text.push_str(d);
        text.push('\n');
    }
    let mut f = File::create(&tmp).map_err(io("write", &tmp))?;
    f.write_all(text.as_bytes()).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("sync", &tmp))
}

/// The committed merge of `dir`: output name and the files it replaces.
fn read_marker(dir: &Path) -> Result<Option<(String, Vec<String>)>> {
    let path = dir.join(MERGING);
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("stat", &path)(e)),
    };
    let bad = |problem| Corruption::Marker {
        path: path.clone(),
        kind: MarkerKind::Merge,
        problem,
    };
    if len > MAX_MARKER_BYTES {
        return Err(bad(MarkerProblem::TooLarge { len }).into());
    }
    let bad = || StoreError::from(bad(MarkerProblem::Malformed));
    let text = fs::read_to_string(&path).map_err(io("read", &path))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(bad());
    }
    let name = lines.next().filter(|n| marker::parse_tsm_name(n).is_some());
    let name = name.ok_or_else(bad)?.to_string();
    let doomed: Vec<String> = lines.map(str::to_string).collect();
    let plain = |n: &String| !n.is_empty() && !n.starts_with('.') && !n.contains(['/', '\\']);
    if !doomed.iter().all(plain) || doomed.contains(&name) {
        return Err(bad());
    }
    Ok(Some((name, doomed)))
}

/// Finishes the committed merge of `dir`: output into place, inputs deleted, one dir fsync,
/// marker removed (a marker that reappears after a crash is finished again: a no-op).
pub(crate) fn finish(dir: &Path, hook: Hook<'_>) -> Result<()> {
    let Some((name, doomed)) = read_marker(dir)? else {
        return Ok(());
    };
    marker::rename_into_place(dir, &name)?;
    hook(Step::Installed)?;
    for d in &doomed {
        let p = dir.join(d);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &p)(e)),
        }
    }
    marker::sync_dir(dir)?;
    let m = dir.join(MERGING);
    fs::remove_file(&m).map_err(io("remove", &m))
}

/// At open: finishes a committed merge, drops the marker temp of an uncommitted one (its
/// output temp file is removed with the other stray temporaries).
pub(crate) fn recover(dir: &Path) -> Result<()> {
    let tmp = dir.join(MERGING_TMP);
    match fs::remove_file(&tmp) {
        Ok(()) => tracing::warn!(file = %tmp.display(), "removing an uncommitted merge"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove", &tmp)(e)),
    }
    finish(dir, &|_| Ok(()))
}

/// Renames the prepared marker into place and syncs the directory: the commit point.
pub(crate) fn publish(dir: &Path) -> Result<()> {
    let m = dir.join(MERGING);
    fs::rename(dir.join(MERGING_TMP), &m).map_err(io("rename", &m))?;
    marker::sync_dir(dir)
}

/// Removes a prepared marker that will not be committed.
pub(crate) fn discard(dir: &Path) {
    let _ = fs::remove_file(dir.join(MERGING_TMP));
}

fn io(what: &str, p: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let ctx = format!("{what} {}", p.display());
    move |e| StoreError::io(ctx, e)
}
