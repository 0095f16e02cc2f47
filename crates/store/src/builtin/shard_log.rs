//! The only place that talks to `snapshotd-wal`: a shard's write log under `<shard>/wal/`,
//! one WAL entry per write batch (term 1, consecutive indexes from 1).

use std::path::Path;
use std::time::SystemTime;

use snapshotd_wal::{Entry, HardState, ReadView, Snapshot, Wal, WalOptions};

use crate::error::{Result, StoreError};

/// Directory of the log inside a shard.
pub(crate) const DIR: &str = "wal";
/// Segment size of shard logs (etcd uses 64 MB; shards are many and small).
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Raft term of every entry we write.
const TERM: u64 = 1;

fn wal_err(e: snapshotd_wal::Error) -> StoreError {
    use snapshotd_wal::Error as W;
    match e {
        W::Locked { path } => StoreError::Locked(path.display().to_string()),
        W::Io { context, source } => StoreError::Io { context, source },
        W::RecordTooLarge { size, limit } => StoreError::LimitExceeded {
            what: "shard log record",
            limit,
            got: size,
        },
        W::Exist { dir } => StoreError::Conflict(format!("log exists in {}", dir.display())),
        other => StoreError::Corrupt(format!("shard log: {other}")),
    }
}

fn options() -> WalOptions {
    WalOptions::default().segment_size_bytes(SEGMENT_BYTES)
}

/// Whether a shard-relative path (components) names one of our WAL segments.
pub(crate) fn is_log_file(rel: &[String]) -> bool {
    match rel {
        [d, f] if d == DIR => snapshotd_wal::parse_segment_name(f).is_some(),
        _ => false,
    }
}

/// One segment of a [`LogView`] to ship.
pub(crate) struct Segment<'a> {
    /// Name relative to the shard directory.
    pub rel: String,
    /// Whole-record bytes.
    pub len: u64,
    /// Modification time.
    pub mtime: SystemTime,
    /// Reader over exactly `len` bytes.
    pub reader: Box<dyn std::io::Read + 'a>,
}

/// Whether the shard has a log.
pub(crate) fn exists(shard_dir: &Path) -> bool {
    snapshotd_wal::wal_exists(&shard_dir.join(DIR))
}

/// An open, writable shard log (holds the WAL's segment locks).
pub(crate) struct ShardLog {
    wal: Wal,
}

impl ShardLog {
    /// Opens the shard's log, creating it when absent; a torn tail left by a crash is
    /// repaired first (only unacknowledged bytes are dropped).
    pub(crate) fn open(shard_dir: &Path) -> Result<Self> {
        let dir = shard_dir.join(DIR);
        if !snapshotd_wal::wal_exists(&dir) {
            let wal =
                Wal::create_with(&dir, b"snapshotd shard log", &options()).map_err(wal_err)?;
            return Ok(ShardLog { wal });
        }
        let opened = Wal::open_with(&dir, Snapshot::default(), &options())
            .map_err(wal_err)?
            .into_writer();
        let (wal, _) = match opened {
            Ok(ok) => ok,
            Err(e) if e.is_unexpected_eof() => {
                tracing::warn!(dir = %dir.display(), "repairing torn shard log tail");
                snapshotd_wal::repair(&dir).map_err(wal_err)?;
                Wal::open_with(&dir, Snapshot::default(), &options())
                    .map_err(wal_err)?
                    .into_writer()
                    .map_err(wal_err)?
            }
            Err(e) => return Err(wal_err(e)),
        };
        Ok(ShardLog { wal })
    }

    /// Appends entries in one save; returns after they are durable.
    pub(crate) fn append(&mut self, entries: Vec<Vec<u8>>) -> Result<()> {
        let first = self.wal.last_index() + 1;
        let entries: Vec<Entry> = entries
            .into_iter()
            .zip(first..)
            .map(|(data, index)| Entry::new(index, TERM, data))
            .collect();
        let last = first + entries.len() as u64 - 1;
        self.wal
            .save(&HardState::new(TERM, 0, last), &entries)
            .map_err(wal_err)
    }
}

/// A point-in-time read-only view of a shard log: whole records only, segments share-locked
/// until dropped.
pub(crate) struct LogView {
    view: ReadView,
}

impl LogView {
    /// Opens the view, or `None` when the shard has no log.
    pub(crate) fn open(shard_dir: &Path) -> Result<Option<Self>> {
        let dir = shard_dir.join(DIR);
        if !snapshotd_wal::wal_exists(&dir) {
            return Ok(None);
        }
        let view = snapshotd_wal::open_for_read_with(&dir, Snapshot::default(), &options())
            .map_err(wal_err)?;
        Ok(Some(LogView { view }))
    }

    /// The segments to ship, each up to its last whole record, read through the handles
    /// opened with the view.
    pub(crate) fn segments(&self) -> Result<Vec<Segment<'_>>> {
        let mut out = Vec::new();
        for seg in self.view.segments() {
            let name = seg
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| StoreError::Corrupt("WAL segment name".into()))?;
            let mtime = std::fs::metadata(seg.path())
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            out.push(Segment {
                rel: format!("{DIR}/{name}"),
                len: seg.valid_len(),
                mtime,
                reader: Box::new(seg.reader()),
            });
        }
        Ok(out)
    }

    /// Entry payloads in log order, streamed one record at a time: memory is bounded by
    /// the largest record, not by the size of the log. Our logs never overwrite (term 1,
    /// consecutive indexes from 1), so the WAL's strict index check applies: a gap or a
    /// repeated index is corruption.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.view.entries().filter_map(|r| match r {
            Ok(e) => e.data.map(Ok),
            Err(e) => Some(Err(wal_err(e))),
        })
    }
}

/// A fresh log written entry by entry, one save per entry (scratch use: no fsync).
pub(crate) struct NewLog {
    wal: Wal,
}

impl NewLog {
    /// Creates the log in `shard_dir` (which must not hold one yet).
    pub(crate) fn create(shard_dir: &Path) -> Result<Self> {
        let opts = options().unsafe_no_fsync(true);
        let wal = Wal::create_with(shard_dir.join(DIR), b"snapshotd shard log", &opts)
            .map_err(wal_err)?;
        Ok(NewLog { wal })
    }

    /// Appends one entry at the next index.
    pub(crate) fn append(&mut self, data: Vec<u8>) -> Result<()> {
        let index = self.wal.last_index() + 1;
        self.wal
            .save(
                &HardState::new(TERM, 0, index),
                &[Entry::new(index, TERM, data)],
            )
            .map_err(wal_err)
    }

    /// Closes the log.
    pub(crate) fn finish(self) -> Result<()> {
        self.wal.close().map_err(wal_err)
    }
}
