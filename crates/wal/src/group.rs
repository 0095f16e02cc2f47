//! Group commit: many threads saving to one WAL share fsyncs. A save still returns only
//! after an fsync that covers its records; concurrent saves that arrive while an fsync is
//! running are covered together by the next one.

use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::fsutil::datasync;
use crate::pb::{Entry, HardState, Snapshot};
use crate::wal::{Appended, Wal};

struct State {
    wal: Wal,
    /// Saves appended so far (sequence numbers from 1).
    appended: u64,
    /// Every save up to this sequence number is durable.
    synced: u64,
}

/// A [`Wal`] shared between threads with group commit.
///
/// ```
/// # fn main() -> Result<(), snapshotd_wal::Error> {
/// # let tmp = tempfile::tempdir().map_err(|e| snapshotd_wal::Error::Io { context: "tmp".into(), source: e })?;
/// use snapshotd_wal::{Entry, HardState, SharedWal, Wal};
/// let shared = std::sync::Arc::new(SharedWal::new(Wal::create(tmp.path().join("wal"), b"m")?));
/// let handles: Vec<_> = (0..4u64)
///     .map(|t| {
///         let w = shared.clone();
///         std::thread::spawn(move || w.save_with(|next| (HardState::new(1, 1, 0), vec![Entry::new(next, 1, vec![t as u8])])))
///     })
///     .collect();
/// for h in handles {
///     h.join().expect("thread")?;
/// }
/// # Ok(())
/// # }
/// ```
pub struct SharedWal {
    state: Mutex<State>,
    /// Held by the one thread currently running an fsync.
    sync_gate: Mutex<()>,
}

impl std::fmt::Debug for SharedWal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWal").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| Error::Poisoned)
}

impl SharedWal {
    /// Wraps a writer.
    pub fn new(wal: Wal) -> Self {
        SharedWal {
            state: Mutex::new(State {
                wal,
                appended: 0,
                synced: 0,
            }),
            sync_gate: Mutex::new(()),
        }
    }

    /// Like [`Wal::save`]: durable when it returns (if raft's `MustSync` asks for it).
    pub fn save(&self, hardstate: &HardState, entries: &[Entry]) -> Result<()> {
        self.save_with(|_| (*hardstate, entries.to_vec()))
    }

    /// Saves what `build` returns; `build` is called under the writer's lock with the index
    /// after the last one written, so concurrent savers can allocate contiguous indexes.
    pub fn save_with(&self, build: impl FnOnce(u64) -> (HardState, Vec<Entry>)) -> Result<()> {
        let mine = {
            let mut s = lock(&self.state)?;
            let (hs, ents) = build(s.wal.last_index() + 1);
            let done = s.wal.append(&hs, &ents)?;
            s.appended += 1;
            let seq = s.appended;
            match done {
                Appended::Buffered { must_sync: true } => seq,
                Appended::Durable => {
                    s.synced = s.synced.max(seq);
                    return Ok(());
                }
                Appended::Buffered { must_sync: false } | Appended::Nothing => return Ok(()),
            }
        };
        let _gate = lock(&self.sync_gate)?;
        let (target, file, path, skip) = {
            let mut s = lock(&self.state)?;
            if s.synced >= mine {
                return Ok(()); // someone else's fsync covered us
            }
            let (file, path) = s.wal.flush_for_sync()?;
            (s.appended, file, path, s.wal.no_fsync())
        };
        // The fsync runs without the writer's lock: other threads keep appending meanwhile.
        if !skip && let Err(e) = datasync(&file, &path) {
            lock(&self.state)?.wal.mark_failed();
            return Err(e);
        }
        let mut s = lock(&self.state)?;
        s.synced = s.synced.max(target);
        Ok(())
    }

    /// Appends a snapshot record and syncs.
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<()> {
        let mut s = lock(&self.state)?;
        s.wal.save_snapshot(snap)?;
        s.synced = s.appended;
        Ok(())
    }

    /// Releases old segment locks (see [`Wal::release_lock_to`]).
    pub fn release_lock_to(&self, index: u64) -> Result<()> {
        lock(&self.state)?.wal.release_lock_to(index)
    }

    /// Index of the last entry written.
    pub fn last_index(&self) -> Result<u64> {
        Ok(lock(&self.state)?.wal.last_index())
    }

    /// Unwraps the writer (e.g. to close it).
    pub fn into_inner(self) -> Result<Wal> {
        Ok(self.state.into_inner().map_err(|_| Error::Poisoned)?.wal)
    }
}
