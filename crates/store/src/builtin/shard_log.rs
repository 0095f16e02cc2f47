//! The only place that talks to `snapshotd-wal`: a shard's write log under `<shard>/wal/`,
//! one WAL entry per write batch (term 1, consecutive indexes from 1). Entries up to the
//! compaction marker live in TSM files; the log is opened at that index (only the tail is
//! replayed) and segments wholly below it are purged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use snapshotd_wal::{Entry, HardState, ReadView, Snapshot, Wal, WalOptions};

use crate::error::{Conflict, Corruption, Locked, Result, StoreError};

/// Directory of the log inside a shard.
pub(crate) const DIR: &str = "wal";
/// Default segment size of shard logs (etcd uses 64 MB; shards are many and small).
pub(crate) const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Raft term of every entry we write.
const TERM: u64 = 1;

/// The store error for a failure of the shard log in `dir`.
pub(crate) fn wal_err(dir: &Path, e: snapshotd_wal::Error) -> StoreError {
    use snapshotd_wal::Error as W;
    match e {
        W::Locked { path } => Locked::ShardLog { path }.into(),
        W::Io { context, source } => StoreError::Io { context, source },
        W::RecordTooLarge { size, limit } => StoreError::LimitExceeded {
            what: "shard log record",
            limit,
            got: size,
        },
        W::Exist { dir } => Conflict::ShardLog { dir }.into(),
        W::WriterFailed { first } => StoreError::Io {
            context: format!(
                "shard log: an earlier write or fsync failed ({first}); restart the server once \
                 the disk is fixed (the log is reopened and its tail repaired)"
            ),
            source: std::io::Error::other("the log refuses writes after a failed write"),
        },
        other => Corruption::ShardLog {
            dir: dir.to_path_buf(),
            detail: other.to_string(),
        }
        .into(),
    }
}

fn options() -> WalOptions {
    WalOptions::default()
}

/// Whether a shard-relative path (components) names one of our WAL segments.
pub(crate) fn is_log_file(rel: &[String]) -> bool {
    match rel {
        [d, f] if d == DIR => snapshotd_wal::parse_segment_name(f).is_some(),
        _ => false,
    }
}

/// Whether the shard has a log.
pub(crate) fn exists(shard_dir: &Path) -> bool {
    snapshotd_wal::wal_exists(&shard_dir.join(DIR))
}

/// The start snapshot of a log compacted through `index` (0 = never compacted).
pub(crate) fn start_at(index: u64) -> Snapshot {
    if index == 0 {
        Snapshot::default()
    } else {
        Snapshot::new(index, TERM)
    }
}

/// Distinguishes successive opens of shard logs (a compaction started under one open must
/// not commit into another, e.g. after a restore or DROP).
static EPOCH: AtomicU64 = AtomicU64::new(1);

/// Counts the live read views of a shard log; purge waits until none is left.
#[derive(Debug, Default, Clone)]
pub(crate) struct ViewCount(Arc<AtomicUsize>);

/// Keeps a view counted until dropped.
pub(crate) struct ViewGuard(Arc<AtomicUsize>);

impl Drop for ViewGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ViewCount {
    /// Counts one more live view.
    pub(crate) fn hold(&self) -> ViewGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ViewGuard(self.0.clone())
    }

    /// Number of live views.
    pub(crate) fn live(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// An open, writable shard log (holds the WAL's segment locks).
pub(crate) struct ShardLog {
    wal: Wal,
    /// The shard directory.
    pub shard_dir: PathBuf,
    /// Index through which entries are in TSM files.
    pub compacted: u64,
    /// Identity of this open.
    pub epoch: u64,
    /// Live read views of this shard's log.
    pub views: ViewCount,
    /// When the last append landed.
    pub last_write: Instant,
    /// Bytes appended since the last compaction (approximate).
    pub bytes_since: u64,
    /// A purge was held back by a live view.
    pub purge_due: bool,
    /// TSM files may be worth merging once the shard is idle (set by each compaction).
    pub merge_due: bool,
}

impl ShardLog {
    /// Opens the shard's log at its compaction marker (finishing or undoing a compaction
    /// interrupted by a crash), creating it when absent; a torn tail left by a crash is
    /// repaired first (only unacknowledged bytes are dropped).
    pub(crate) fn open(shard_dir: &Path, segment_bytes: u64) -> Result<Self> {
        let compacted = super::marker::recover(shard_dir)?;
        let dir = shard_dir.join(DIR);
        let opts = options().segment_size_bytes(segment_bytes);
        let wal = if snapshotd_wal::wal_exists(&dir) {
            open_writer(&dir, start_at(compacted), &opts)?
        } else {
            Wal::create_with(&dir, b"snapshotd shard log", &opts).map_err(|e| wal_err(&dir, e))?
        };
        Ok(ShardLog {
            wal,
            shard_dir: shard_dir.to_path_buf(),
            compacted,
            epoch: EPOCH.fetch_add(1, Ordering::SeqCst),
            views: ViewCount::default(),
            last_write: Instant::now(),
            bytes_since: 0,
            purge_due: false,
            merge_due: true,
        })
    }

    /// The store error for a failure of this shard's log.
    fn err(&self, e: snapshotd_wal::Error) -> StoreError {
        wal_err(&self.shard_dir.join(DIR), e)
    }

    /// Index of the last entry written (a log reopened at its marker may hold no entry
    /// after it: the WAL then knows no index, the marker does).
    pub(crate) fn last_index(&self) -> u64 {
        self.wal.last_index().max(self.compacted)
    }

    /// Entries not yet compacted.
    pub(crate) fn pending(&self) -> u64 {
        self.last_index().saturating_sub(self.compacted)
    }

    /// Records (durably) that a compaction through `index` may be committed: a log reopened
    /// at `index` needs this snapshot record. When the compaction caught up with every
    /// entry, the record opens a new segment named at `index`, so the segment that held the
    /// last entries is purged too and an idle shard keeps no entry on disk.
    pub(crate) fn mark_snapshot(&mut self, index: u64) -> Result<()> {
        let snap = Snapshot::new(index, TERM);
        if index == self.last_index() && self.wal.cut_at_snapshot(&snap).map_err(|e| self.err(e))? {
            return Ok(());
        }
        self.wal.save_snapshot(&snap).map_err(|e| self.err(e))
    }

    /// Releases the writer's locks on segments wholly below `compacted`.
    pub(crate) fn release_compacted(&mut self) -> Result<()> {
        self.wal
            .release_lock_to(self.compacted + 1)
            .map_err(|e| self.err(e))
    }

    /// Closes the log of a shard that went cold: the tail segment is trimmed to its last
    /// record and the spare segment deleted, so an idle shard holds no preallocated space
    /// (the next write or backup opens it again).
    pub(crate) fn close_cold(self) -> Result<()> {
        let dir = self.shard_dir.join(DIR);
        self.wal.close_trimmed().map_err(|e| wal_err(&dir, e))
    }

    /// Whether nothing is pending, due or watching: the log can be closed.
    pub(crate) fn is_quiet(&self) -> bool {
        self.pending() == 0 && !self.merge_due && !self.purge_due && self.views.live() == 0
    }

    /// A read view at the compaction marker, counted in [`ShardLog::views`].
    pub(crate) fn view(&self) -> Result<Option<LogView>> {
        let mut v = LogView::open_at(&self.shard_dir, self.compacted)?;
        if let Some(v) = v.as_mut() {
            v.guard = Some(self.views.hold());
        }
        Ok(v)
    }

    /// Appends entries in one save; returns after they are durable.
    pub(crate) fn append(&mut self, entries: Vec<Vec<u8>>) -> Result<()> {
        self.last_write = Instant::now();
        self.bytes_since += entries.iter().map(|e| e.len() as u64).sum::<u64>();
        let first = self.last_index() + 1;
        let entries: Vec<Entry> = entries
            .into_iter()
            .zip(first..)
            .map(|(data, index)| Entry::new(index, TERM, data))
            .collect();
        let last = first + entries.len() as u64 - 1;
        self.wal
            .save(&HardState::new(TERM, 0, last), &entries)
            .map_err(|e| self.err(e))
    }
}

/// Opens the writer at `start`, repairing a torn tail first when needed.
fn open_writer(dir: &Path, start: Snapshot, opts: &WalOptions) -> Result<Wal> {
    let opened = Wal::open_with(dir, start, opts)
        .map_err(|e| wal_err(dir, e))?
        .into_writer();
    let (wal, _) = match opened {
        Ok(ok) => ok,
        Err(e) if e.is_unexpected_eof() => {
            tracing::warn!(dir = %dir.display(), "repairing torn shard log tail");
            snapshotd_wal::repair(dir).map_err(|e| wal_err(dir, e))?;
            Wal::open_with(dir, start, opts)
                .map_err(|e| wal_err(dir, e))?
                .into_writer()
                .map_err(|e| wal_err(dir, e))?
        }
        Err(e) => return Err(wal_err(dir, e)),
    };
    Ok(wal)
}

/// A point-in-time read-only view of a shard log: whole records only, segments share-locked
/// (or counted as a live view of the writer) until dropped.
pub(crate) struct LogView {
    view: ReadView,
    /// The log directory.
    dir: PathBuf,
    /// Index the view starts after (entries up to it are in TSM files).
    pub start: u64,
    guard: Option<ViewGuard>,
}

impl LogView {
    /// Opens the view after entry `start`, or `None` when the shard has no log.
    pub(crate) fn open_at(shard_dir: &Path, start: u64) -> Result<Option<Self>> {
        let dir = shard_dir.join(DIR);
        if !snapshotd_wal::wal_exists(&dir) {
            return Ok(None);
        }
        let view = snapshotd_wal::open_for_read_with(&dir, start_at(start), &options())
            .map_err(|e| wal_err(&dir, e))?;
        Ok(Some(LogView {
            view,
            dir,
            start,
            guard: None,
        }))
    }

    /// (index, payload) of the entries after the view's start, in log order.
    pub(crate) fn indexed(&self) -> impl Iterator<Item = Result<(u64, Vec<u8>)>> + '_ {
        self.view.entries().filter_map(|r| match r {
            Ok(e) => e.data.map(|d| Ok((e.index, d))),
            Err(e) => Some(Err(wal_err(&self.dir, e))),
        })
    }

    /// The log directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Modification time of the newest segment of the view.
    pub(crate) fn newest_mtime(&self) -> Option<SystemTime> {
        self.view
            .segments()
            .iter()
            .filter_map(|s| std::fs::metadata(s.path()).and_then(|m| m.modified()).ok())
            .max()
    }

    /// Entry payloads in log order, streamed one record at a time: memory is bounded by
    /// the largest record, not by the size of the log. Our logs never overwrite (term 1,
    /// consecutive indexes from 1), so the WAL's strict index check applies: a gap or a
    /// repeated index is corruption.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.view.entries().filter_map(|r| match r {
            Ok(e) => e.data.map(Ok),
            Err(e) => Some(Err(wal_err(&self.dir, e))),
        })
    }
}
