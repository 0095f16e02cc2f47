//! Compaction of one shard: the logged points through some index become a new TSM file
//! (written beside the log under a temporary name and fsynced, off the write path), the
//! compaction marker commits it, the file is renamed into place, the writer releases the
//! segments below and they are purged unless a read view is live.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::lowprio::Offload;
use super::points_tsm::PointSet;
use super::shard_log::{self, LogView, ShardLog};
use super::{Slot, lock, marker, write};
use crate::error::{Corruption, Result, StoreError};

/// Most field values one compaction gathers in memory (a longer log takes several).
pub(crate) const MAX_VALUES_PER_FILE: usize = 1_000_000;

/// Points of a compaction where a test may simulate a crash (by returning an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The TSM file is written and fsynced under its temporary name.
    TsmWritten,
    /// The marker is committed; the TSM file still has its temporary name.
    Committed,
    /// The TSM file is in place; nothing is purged yet.
    Installed,
    /// One segment was purged.
    Purged,
}

/// Failpoint hook called at each [`Step`]; an error stops the compaction there.
pub(crate) type Hook<'a> = &'a dyn Fn(Step) -> Result<()>;

/// What one compaction pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Index the log is now compacted through.
    pub through: u64,
    /// Field values written to TSM.
    pub values: u64,
    /// TSM bytes written.
    pub bytes: u64,
    /// Segments deleted.
    pub purged: usize,
    /// Entries still not compacted.
    pub pending: u64,
    /// TSM files merged by the level compaction that followed.
    pub merged: u64,
    /// Longest time the shard lock was held to commit (writes to the shard wait meanwhile).
    pub held: Duration,
}

/// What phase 1 captured under the slot lock.
struct Start {
    dir: std::path::PathBuf,
    epoch: u64,
    from: u64,
    last: u64,
}

/// What the encoding step wrote: the TSM file under its temporary name.
struct Encoded {
    name: String,
    tmp: std::path::PathBuf,
    through: u64,
    values: u64,
    bytes: u64,
}

/// `compact_on` run inline (tests).
#[cfg(test)]
pub(crate) fn compact(slot: &Slot, hook: Hook<'_>) -> Result<Option<Outcome>> {
    compact_on(slot, hook, &Offload::default())
}

/// Compacts the shard of `slot` once (at most [`MAX_VALUES_PER_FILE`] values), then purges,
/// with the log decoding and TSM encoding run by `off`. `None` when the shard has no open log.
pub(crate) fn compact_on(slot: &Slot, hook: Hook<'_>, off: &Offload) -> Result<Option<Outcome>> {
    let start = {
        let mut g = lock(slot);
        let Some(w) = g.as_mut() else {
            return Ok(None);
        };
        if w.pending() == 0 {
            let purged = purge_covered(w, hook)?;
            return Ok(Some(Outcome {
                through: w.compacted,
                purged,
                ..Outcome::default()
            }));
        }
        Start {
            dir: w.shard_dir.clone(),
            epoch: w.epoch,
            from: w.compacted,
            last: w.last_index(),
        }
    };
    let (dir, from, last) = (start.dir.clone(), start.from, start.last);
    let Encoded {
        name,
        tmp,
        through,
        values,
        bytes,
    } = off.run(move || encode(&dir, from, last))??;
    hook(Step::TsmWritten)?;
    marker::prepare(&start.dir, through, &name)?;
    let mut g = lock(slot);
    let held = Instant::now();
    let Some(w) = g.as_mut().filter(|w| w.epoch == start.epoch) else {
        let _ = std::fs::remove_file(&tmp);
        return Ok(None);
    };
    // Under the lock (writes wait): one WAL record, the marker rename and a dir fsync.
    w.mark_snapshot(through)?;
    marker::publish(&start.dir)?;
    hook(Step::Committed)?;
    marker::rename_into_place(&start.dir, &name)?;
    w.compacted = through;
    w.bytes_since = 0;
    w.merge_due |= bytes > 0;
    hook(Step::Installed)?;
    w.release_compacted()?;
    let purged = purge_covered(w, hook)?;
    let pending = w.pending();
    drop(g);
    let held = held.elapsed();
    tracing::debug!(shard = %start.dir.display(), through, values, bytes, purged, ?held, "compacted");
    Ok(Some(Outcome {
        through,
        values,
        bytes,
        purged,
        pending,
        merged: 0,
        held,
    }))
}

/// Reads the log entries after `from` through `last` (fewer when a file fills up) and writes
/// their points as a TSM file under its temporary name, fsynced. Runs without the shard lock:
/// entries up to `last` are durable and the writer's segment locks keep purges away.
fn encode(dir: &Path, from: u64, last: u64) -> Result<Encoded> {
    let view = LogView::open_at(dir, from)?.ok_or_else(|| Corruption::ShardLogMissing {
        dir: dir.join(shard_log::DIR),
    })?;
    let (set, through) = gather(&view, last)?;
    drop(view);
    let name = marker::next_tsm_name(dir)?;
    let tmp = dir.join(marker::tmp_name(&name));
    let values = set.len() as u64;
    let bytes = if set.is_empty() {
        0
    } else {
        write_file(set, &tmp, &name)?
    };
    Ok(Encoded {
        name,
        tmp,
        through,
        values,
        bytes,
    })
}

/// The points of the view's entries up to `last` (fewer when the set fills up) and the index
/// of the last entry gathered.
fn gather(view: &LogView, last: u64) -> Result<(PointSet, u64)> {
    let mut set = PointSet::default();
    let mut through = view.start;
    for entry in view.indexed() {
        let (index, data) = entry?;
        if index > last {
            break;
        }
        for p in write::decode_entry(&data, view.dir())? {
            set.add(p);
        }
        through = index;
        if set.len() >= MAX_VALUES_PER_FILE {
            break;
        }
    }
    Ok((set, through))
}

/// Writes `set` as a TSM file at `path` and fsyncs it; returns its size.
fn write_file(set: PointSet, path: &Path, name: &str) -> Result<u64> {
    let ctx = |e| StoreError::io(format!("write {}", path.display()), e);
    let f = File::create(path).map_err(ctx)?;
    let mut w = set.write_tsm(BufWriter::with_capacity(1 << 20, f), name)?;
    w.flush().map_err(ctx)?;
    let f = w.into_inner().map_err(|e| ctx(e.into_error()))?;
    f.sync_all().map_err(ctx)?;
    f.metadata().map(|m| m.len()).map_err(ctx)
}

/// Deletes the segments wholly below the compaction marker, oldest first, each only when
/// its lock can be taken; nothing while a read view of the shard is live.
pub(crate) fn purge_covered(w: &mut ShardLog, hook: Hook<'_>) -> Result<usize> {
    if w.compacted == 0 {
        return Ok(0);
    }
    w.purge_due = w.views.live() > 0;
    if w.purge_due {
        return Ok(0);
    }
    let dir = w.shard_dir.join(shard_log::DIR);
    let names = snapshotd_wal::list_segments(&dir).map_err(|e| shard_log::wal_err(&dir, e))?;
    let Some(keep_from) = names.iter().rposition(|s| s.index <= w.compacted) else {
        return Ok(0);
    };
    let mut purged = 0;
    for i in 0..keep_from {
        let left = names.len() - i - 1;
        let gone = snapshotd_wal::purge(&dir, left).map_err(|e| shard_log::wal_err(&dir, e))?;
        if gone.is_empty() {
            break;
        }
        purged += gone.len();
        hook(Step::Purged)?;
    }
    Ok(purged)
}

#[cfg(test)]
#[path = "compact_tests.rs"]
mod tests;
