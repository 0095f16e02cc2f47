//! Level compaction of a shard's TSM files: several files (each compaction of the log writes
//! one, with small blocks) become one file with full blocks, keys sorted, a later file's value
//! winning on equal timestamps, tombstoned values dropped and tombstone files removed.
//!
//! The merged file is written as `.<name>.tmp` and fsynced without the shard lock; the commit
//! (see `merge_marker`) runs under it. A backup opens its files under the same lock, so it
//! sees either the inputs or the output, and files it opened before the deletion stay
//! readable.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use snapshotd_tsm::{TsmReader, TsmWriter};

use super::lowprio::Offload;
use super::points_tsm::column;
use super::tombstone::{self, Tombstones};
use super::tsm::{points, tsm_err};
use super::{Slot, lock, marker, merge_marker};
use crate::error::{Result, StoreError};

/// Points of a merge where a test may simulate a crash (by returning an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The merged file is written and fsynced under its temporary name.
    Written,
    /// The merge marker is committed; nothing renamed or deleted yet.
    Committed,
    /// The merged file is in place; the inputs are not deleted yet.
    Installed,
}

/// Failpoint hook called at each [`Step`]; an error stops the merge there.
pub(crate) type Hook<'a> = &'a dyn Fn(Step) -> Result<()>;

/// Which files a merge takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// All files, when there are at least two.
    All,
    /// The newest files, dropping an oldest file larger than all newer ones together (so
    /// a large file is not rewritten for every small one), when at least this many remain.
    Tiered(usize),
}

/// What one merge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Merged {
    /// Input TSM files.
    pub inputs: usize,
    /// Bytes of the inputs.
    pub bytes_in: u64,
    /// Bytes of the output (0 when everything was deleted).
    pub bytes_out: u64,
    /// Field values written.
    pub values: u64,
    /// Time the shard lock was held to commit and install the merge.
    pub held: Duration,
}

/// A TSM file of the shard: (generation, sequence, name, size).
pub(crate) type TsmFile = (u64, u64, String, u64);

fn io(what: &str, p: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let ctx = format!("{what} {}", p.display());
    move |e| StoreError::io(ctx, e)
}

/// The shard's TSM files in (generation, sequence) order, i.e. oldest first.
pub(crate) fn tsm_files(dir: &Path) -> Result<Vec<TsmFile>> {
    let mut out = Vec::new();
    for ent in fs::read_dir(dir).map_err(io("read", dir))?.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Some((g, s)) = marker::parse_tsm_name(&name) {
            let len = ent.metadata().map_err(io("stat", &ent.path()))?.len();
            out.push((g, s, name, len));
        }
    }
    out.sort();
    Ok(out)
}

/// The files `pick` selects among `files` (empty when no merge is due).
fn select(mut files: Vec<TsmFile>, pick: Pick) -> Vec<TsmFile> {
    let min = match pick {
        Pick::All => 2,
        Pick::Tiered(n) => {
            while files.len() >= 2 {
                let newer: u64 = files.iter().skip(1).map(|f| f.3).sum();
                if files.first().is_none_or(|f| f.3 <= newer) {
                    break;
                }
                files.remove(0);
            }
            n.max(2)
        }
    };
    if files.len() < min { Vec::new() } else { files }
}

/// The name of the merged file: it sorts after every input (same generation as the newest,
/// next sequence), and before the files later compactions write (next generation).
fn output_name(files: &[TsmFile]) -> String {
    let (g, s) = files.iter().map(|f| (f.0, f.1)).max().unwrap_or((1, 0));
    format!("{g:09}-{:09}.tsm", s + 1)
}

/// Merges TSM files of the shard of `slot` when `pick` finds some; `None` when no merge was
/// due or the shard was closed or replaced meanwhile.
#[cfg(test)]
pub(crate) fn merge(slot: &Slot, pick: Pick, hook: Hook<'_>) -> Result<Option<Merged>> {
    merge_on(slot, pick, hook, &Offload::default())
}

/// Merges TSM files of the shard of `slot` when `pick` finds some, reading and writing them
/// on `off`; `None` when no merge was due or the shard was closed or replaced meanwhile.
pub(crate) fn merge_on(
    slot: &Slot,
    pick: Pick,
    hook: Hook<'_>,
    off: &Offload,
) -> Result<Option<Merged>> {
    let (dir, epoch) = match lock(slot).as_ref() {
        Some(w) => (w.shard_dir.clone(), w.epoch),
        None => return Ok(None),
    };
    let files = select(tsm_files(&dir)?, pick);
    if files.is_empty() {
        return Ok(None);
    }
    let name = output_name(&files);
    let tmp = dir.join(marker::tmp_name(&name));
    let job = (dir.clone(), files.clone(), tmp.clone(), name.clone());
    let written = off
        .run(move || write_merged(&job.0, &job.1, &job.2, &job.3))
        .and_then(|r| r);
    let (values, bytes_out) = match written {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    hook(Step::Written)?;
    merge_marker::prepare(&dir, &name, &merge_marker::doomed(&dir, &files))?;
    let g = lock(slot);
    let held = Instant::now();
    if g.as_ref().is_none_or(|w| w.epoch != epoch) {
        let _ = fs::remove_file(&tmp);
        merge_marker::discard(&dir);
        return Ok(None);
    }
    // Under the lock (writes and backups wait): a rename and two dir fsyncs.
    merge_marker::publish(&dir)?;
    hook(Step::Committed)?;
    merge_marker::finish(&dir, hook)?;
    drop(g);
    let merged = Merged {
        inputs: files.len(),
        bytes_in: files.iter().map(|f| f.3).sum(),
        bytes_out,
        values,
        held: held.elapsed(),
    };
    tracing::debug!(shard = %dir.display(), ?merged, "merged TSM files");
    Ok(Some(merged))
}

/// The tombstone file name of TSM file `name`.
pub(crate) fn tombstone_name(name: &str) -> String {
    format!("{}.tombstone", name.strip_suffix(".tsm").unwrap_or(name))
}

/// Opens TSM file `name` of `dir` and its tombstones (empty when it has none).
fn open_input(dir: &Path, name: &str) -> Result<(TsmReader<File>, Tombstones)> {
    let path = dir.join(name);
    let f = File::open(&path).map_err(io("open", &path))?;
    let r = TsmReader::open(f).map_err(|e| tsm_err(&path.display().to_string(), e))?;
    let tpath = dir.join(tombstone_name(name));
    let tombs = match File::open(&tpath) {
        Ok(mut t) => tombstone::read(&mut t, &tpath.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tombstones::default(),
        Err(e) => return Err(io("open", &tpath)(e)),
    };
    Ok((r, tombs))
}

/// Writes the merge of `files` to `tmp` (fsynced) unless no value survives; returns the
/// values and bytes written.
fn write_merged(dir: &Path, files: &[TsmFile], tmp: &Path, name: &str) -> Result<(u64, u64)> {
    let mut inputs = Vec::with_capacity(files.len());
    let mut keys = BTreeSet::new();
    for f in files {
        let (r, t) = open_input(dir, &f.2)?;
        keys.extend(r.keys().iter().map(|k| k.key.clone()));
        inputs.push((r, t, f.2.as_str()));
    }
    let ctx = |e| StoreError::io(format!("write {}", tmp.display()), e);
    let out = File::create(tmp).map_err(ctx)?;
    let mut w = TsmWriter::new(BufWriter::with_capacity(1 << 20, out));
    let (mut values, mut conflicts) = (0u64, 0u64);
    for key in keys {
        let mut vals = Vec::new();
        for (r, t, n) in &mut inputs {
            let got = r.read_key_filtered(&key, Some(t));
            if let Some(v) = got.map_err(|e| tsm_err(&dir.join(&**n).display().to_string(), e))? {
                vals.extend(points(v)); // oldest file first: a later file wins a time
            }
        }
        let col = column(vals, &mut conflicts);
        values += col.len() as u64;
        w.write(&key, &col).map_err(|e| tsm_err(name, e))?;
    }
    if conflicts > 0 {
        tracing::warn!(
            file = name,
            dropped = conflicts,
            "values of a conflicting type dropped"
        );
    }
    if values == 0 {
        drop(w);
        fs::remove_file(tmp).map_err(io("remove", tmp))?;
        return Ok((0, 0));
    }
    let mut buf = w.finish().map_err(|e| tsm_err(name, e))?;
    buf.flush().map_err(ctx)?;
    let f = buf.into_inner().map_err(|e| ctx(e.into_error()))?;
    f.sync_all().map_err(ctx)?;
    Ok((values, f.metadata().map_err(ctx)?.len()))
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
