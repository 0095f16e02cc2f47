//! Group commit: many threads saving to one WAL share fsyncs. A save still returns only
//! after an fsync that covers its records.
//!
//! Each save encodes its records into the writer's buffer under a short lock, and takes a
//! sequence number. One saver at a time is the *leader*: it notes the last sequence number
//! appended, writes every pending record to the file with one write, drops the lock, runs
//! one fdatasync and then marks everything up to that number durable and wakes the others. Savers that arrive while an fsync runs append and wait; when
//! it ends, the covered ones return and one of the rest leads the next fsync at once, for
//! everything that queued meanwhile. A failed fsync is handed to every saver not yet covered,
//! and latches the writer (no later append is accepted).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::fsutil::{datasync, prepare_sync_thread};
use crate::pb::{Entry, HardState, Snapshot};
use crate::wal::{Appended, Wal};

/// Counters of one [`SharedWal`] since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupCommitStats {
    /// Saves that had to be made durable (raft's `MustSync`) and were appended.
    pub saves: u64,
    /// Shared fdatasyncs started by a leader (cuts and snapshot saves sync on their own and
    /// are not counted; with `unsafe_no_fsync` the rounds are counted but skip the call).
    pub fsyncs: u64,
}

struct State {
    wal: Wal,
    /// Sequence number of the last save appended that needs an fsync (from 1).
    appended: u64,
    /// Every save up to this sequence number is durable.
    synced: u64,
    /// A leader is running an fsync without the lock.
    syncing: bool,
    /// Why the writer failed; handed to every saver not yet covered.
    failure: Option<Error>,
    stats: GroupCommitStats,
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
    /// Signalled when a leader's fsync ends (or the writer fails).
    done: Condvar,
    /// Threads inside `save_with`.
    active: AtomicUsize,
    /// Longest a leader waits for savers already inside `save_with` to append.
    commit_delay: Duration,
    /// Test hook run by the leader just before its fdatasync, without the lock; an error
    /// stands for a failed fsync.
    #[cfg(test)]
    before_sync: Option<Box<dyn Fn() -> io::Result<()> + Send + Sync>>,
}

/// Counts a thread inside `save_with` for as long as it is there.
struct Inside<'a>(&'a AtomicUsize);

impl<'a> Inside<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::AcqRel);
        Inside(n)
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for SharedWal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWal").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| Error::Poisoned)
}

/// A copy of `e` for the other savers of a failed batch (`Error` is not `Clone`).
fn share(e: &Error) -> Error {
    match e {
        Error::WriterFailed { first } => Error::WriterFailed {
            first: first.clone(),
        },
        Error::Poisoned => Error::Poisoned,
        Error::Io { context, source } => Error::Io {
            context: context.clone(),
            source: io::Error::new(source.kind(), source.to_string()),
        },
        other => Error::Io {
            context: "wal: group commit".into(),
            source: io::Error::other(other.to_string()),
        },
    }
}

impl SharedWal {
    /// Wraps a writer.
    pub fn new(wal: Wal) -> Self {
        SharedWal {
            state: Mutex::new(State {
                wal,
                appended: 0,
                synced: 0,
                syncing: false,
                failure: None,
                stats: GroupCommitStats::default(),
            }),
            done: Condvar::new(),
            active: AtomicUsize::new(0),
            commit_delay: Duration::ZERO,
            #[cfg(test)]
            before_sync: None,
        }
    }

    /// Opt-in commit delay: before its fsync, a leader waits — at most `max` — until every
    /// thread then inside a save has appended its records (or left), so one fsync covers
    /// them all. A lone saver never waits. Trades up to `max` of latency for larger groups
    /// (like PostgreSQL's `commit_delay` with `commit_siblings`): with 8 savers, about 7.5
    /// saves per fsync instead of 4 (docs/benchmarks.md). Behind the opt-in `tuning`
    /// feature: no production path uses it.
    #[cfg(feature = "tuning")]
    pub fn with_commit_delay(mut self, max: Duration) -> Self {
        self.commit_delay = max;
        self
    }

    /// Like [`Wal::save`]: durable when it returns (if raft's `MustSync` asks for it).
    pub fn save(&self, hardstate: &HardState, entries: &[Entry]) -> Result<()> {
        self.save_with(|_| (*hardstate, entries.to_vec()))
    }

    /// Saves what `build` returns; `build` is called under the writer's lock with the index
    /// after the last one written, so concurrent savers can allocate contiguous indexes.
    pub fn save_with(&self, build: impl FnOnce(u64) -> (HardState, Vec<Entry>)) -> Result<()> {
        let _inside = Inside::enter(&self.active);
        let mut s = lock(&self.state)?;
        let (hs, ents) = build(s.wal.last_index() + 1);
        let mine = match s.wal.append(&hs, &ents)? {
            Appended::Nothing | Appended::Buffered { must_sync: false } => return Ok(()),
            Appended::Durable => {
                // The cut synced everything written so far, other savers' records included.
                s.appended += 1;
                s.stats.saves += 1;
                s.synced = s.appended;
                drop(s);
                self.done.notify_all();
                return Ok(());
            }
            Appended::Buffered { must_sync: true } => {
                // A lone `Wal::save` would flush here before its fsync: record that in etcd's
                // page-writer model, so cuts fall where a serial run of these saves puts
                // them; the leader writes the bytes, for many saves at once.
                s.wal.mark_flushed();
                s.appended += 1;
                s.stats.saves += 1;
                s.appended
            }
        };
        loop {
            if s.synced >= mine {
                return Ok(());
            }
            if let Some(e) = &s.failure {
                return Err(share(e));
            }
            if !s.syncing {
                return self.lead(s);
            }
            s = self.done.wait(s).map_err(|_| Error::Poisoned)?;
        }
    }

    /// Runs one fdatasync covering every save appended so far, then releases the savers
    /// it covered (or, on failure, every saver still waiting) and returns its own result.
    fn lead<'a>(&'a self, mut s: MutexGuard<'a, State>) -> Result<()> {
        s = self.gather(s);
        if let Some(e) = &s.failure {
            return Err(share(e));
        }
        if s.synced >= s.appended {
            // A cut made while gathering synced everything, this leader's save included.
            return Ok(());
        }
        let target = s.appended;
        let (file, path) = match s.wal.flush().and_then(|()| s.wal.tail_for_sync()) {
            Ok(t) => t,
            Err(e) => {
                s.wal.mark_failed(&e);
                s.failure = Some(share(&e));
                drop(s);
                self.done.notify_all();
                return Err(e);
            }
        };
        let skip = s.wal.no_fsync();
        let slice = s.wal.sync_slice();
        s.syncing = true;
        s.stats.fsyncs += 1;
        drop(s);
        // The fsync runs without the lock: other savers keep appending meanwhile.
        let r = self.before_sync_hook().and_then(|()| {
            if skip {
                return Ok(());
            }
            prepare_sync_thread(slice);
            datasync(&file, &path)
        });
        // Always clear `syncing` and wake the waiters, even if another thread panicked
        // under the lock meanwhile (they then see the poison themselves).
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.syncing = false;
        let r = match r {
            Ok(()) => {
                s.synced = s.synced.max(target);
                Ok(())
            }
            Err(e) => {
                s.wal.mark_failed(&e);
                s.failure = Some(share(&e));
                Err(e)
            }
        };
        drop(s);
        self.done.notify_all();
        r
    }

    /// The commit delay: while some thread inside a save has not appended yet, lets it run
    /// (the lock is released between checks), up to [`SharedWal::with_commit_delay`].
    fn gather<'a>(&'a self, mut s: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        if self.commit_delay.is_zero() {
            return s;
        }
        // Other savers queue behind this leader meanwhile instead of leading themselves.
        s.syncing = true;
        let t = Instant::now();
        while s.failure.is_none()
            && s.synced < s.appended
            && usize::try_from(s.appended - s.synced).unwrap_or(usize::MAX)
                < self.active.load(Ordering::Acquire)
            && t.elapsed() < self.commit_delay
        {
            drop(s);
            std::thread::yield_now();
            s = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        s.syncing = false;
        s
    }

    #[cfg(test)]
    fn before_sync_hook(&self) -> Result<()> {
        match &self.before_sync {
            Some(f) => f().map_err(|source| Error::Io {
                context: "fdatasync (test hook)".into(),
                source,
            }),
            None => Ok(()),
        }
    }

    #[cfg(not(test))]
    fn before_sync_hook(&self) -> Result<()> {
        Ok(())
    }

    /// Appends a snapshot record and syncs.
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<()> {
        let mut s = lock(&self.state)?;
        match s.wal.save_snapshot(snap) {
            Ok(()) => {
                s.synced = s.appended;
                drop(s);
                self.done.notify_all();
                Ok(())
            }
            Err(e) => {
                s.failure = Some(share(&e));
                drop(s);
                self.done.notify_all();
                Err(e)
            }
        }
    }

    /// Releases old segment locks (see [`Wal::release_lock_to`]).
    pub fn release_lock_to(&self, index: u64) -> Result<()> {
        lock(&self.state)?.wal.release_lock_to(index)
    }

    /// Index of the last entry written.
    pub fn last_index(&self) -> Result<u64> {
        Ok(lock(&self.state)?.wal.last_index())
    }

    /// How many saves were made durable and how many shared fsyncs that took.
    pub fn stats(&self) -> Result<GroupCommitStats> {
        Ok(lock(&self.state)?.stats)
    }

    /// Unwraps the writer (e.g. to close it).
    pub fn into_inner(self) -> Result<Wal> {
        Ok(self.state.into_inner().map_err(|_| Error::Poisoned)?.wal)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, mpsc};

    use super::*;
    use crate::options::WalOptions;
    use crate::view::WalReader;

    /// Fsync gates: the shared fsyncs numbered in `held` (from 1) wait until the test
    /// releases them; from `fail_from` on, fsyncs fail.
    struct Gates {
        entered: mpsc::Receiver<u64>,
        release: HashMap<u64, mpsc::Sender<()>>,
    }

    impl Gates {
        fn install(shared: &mut SharedWal, held: &[u64], fail_from: Option<u64>) -> Gates {
            let (entered_tx, entered) = mpsc::channel();
            let mut release = HashMap::new();
            let mut waits = HashMap::new();
            for &k in held {
                let (tx, rx) = mpsc::channel::<()>();
                release.insert(k, tx);
                waits.insert(k, Mutex::new(rx));
            }
            let calls = AtomicU64::new(0);
            shared.before_sync = Some(Box::new(move || {
                let k = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(rx) = waits.get(&k) {
                    let _ = entered_tx.send(k);
                    let _ = rx.lock().map(|rx| rx.recv());
                }
                match fail_from {
                    Some(f) if k >= f => Err(io::Error::other("injected fsync failure")),
                    _ => Ok(()),
                }
            }));
            Gates { entered, release }
        }

        /// Waits until held fsync `k` has started.
        fn wait_entered(&self, k: u64) {
            assert_eq!(self.entered.recv().expect("fsync started"), k);
        }

        fn release(&self, k: u64) {
            self.release[&k].send(()).expect("release");
        }
    }

    /// Waits until `n` saves have been appended (each then waits for its fsync).
    fn wait_appended(shared: &SharedWal, n: u64) {
        while shared.stats().expect("stats").saves < n {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn spawn_save(shared: &Arc<SharedWal>, tag: u8) -> std::thread::JoinHandle<Result<()>> {
        let s = shared.clone();
        std::thread::spawn(move || save_one(&s, tag))
    }

    fn save_one(shared: &SharedWal, tag: u8) -> Result<()> {
        shared.save_with(|next| {
            (
                HardState::new(1, 1, next),
                vec![Entry::new(next, 1, vec![tag; 1024])],
            )
        })
    }

    /// Starts `n` savers while the first save's fsync is held, waits until all of them have
    /// appended (so all are queued behind that fsync), then releases it.
    fn queue_behind_slow_sync(
        shared: &Arc<SharedWal>,
        gates: &Gates,
        n: u8,
    ) -> Vec<std::thread::JoinHandle<Result<()>>> {
        let mut handles = vec![spawn_save(shared, 0)];
        gates.wait_entered(1);
        handles.extend((1..=n).map(|t| spawn_save(shared, t)));
        wait_appended(shared, u64::from(n) + 1);
        gates.release(1);
        handles
    }

    #[test]
    fn savers_queued_behind_a_slow_fsync_share_the_next_one() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("wal");
        let mut shared = SharedWal::new(Wal::create(&dir, b"g").expect("create"));
        let gates = Gates::install(&mut shared, &[1], None);
        let shared = Arc::new(shared);
        let n = 16u8;
        for h in queue_behind_slow_sync(&shared, &gates, n) {
            h.join().expect("join").expect("save");
        }
        let stats = shared.stats().expect("stats");
        assert_eq!(stats.saves, u64::from(n) + 1);
        // One fsync for the first save, one shared by the 16 that queued behind it.
        assert_eq!(stats.fsyncs, 2, "{stats:?}");
        let shared = Arc::try_unwrap(shared).expect("sole owner");
        shared.into_inner().expect("inner").close().expect("close");
        let c = WalReader::open(&dir, Snapshot::default())
            .expect("open")
            .read_all()
            .expect("read");
        assert_eq!(c.entries.len(), usize::from(n) + 1);
    }

    /// Savers covered by an fsync return as soon as it ends, even while the next fsync (for
    /// a save that queued meanwhile) is still running.
    #[test]
    fn covered_savers_do_not_wait_for_the_next_fsync() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut shared = SharedWal::new(Wal::create(tmp.path().join("wal"), b"g").expect("create"));
        let gates = Gates::install(&mut shared, &[1, 2, 3], None);
        let shared = Arc::new(shared);
        let n = 6u8;
        let mut queued = queue_behind_slow_sync(&shared, &gates, n);
        // Fsync 2 (one of the followers leading, for all of them) is running.
        gates.wait_entered(2);
        let first = queued.remove(0);
        first.join().expect("join").expect("first save");
        // A new save queues behind fsync 2; it will need fsync 3.
        let late = spawn_save(&shared, 100);
        wait_appended(&shared, u64::from(n) + 2);
        gates.release(2);
        gates.wait_entered(3);
        // Fsync 3 is held: the savers fsync 2 covered must all return meanwhile.
        for h in queued {
            h.join().expect("join").expect("covered save");
        }
        gates.release(3);
        late.join().expect("join").expect("late save");
        let stats = shared.stats().expect("stats");
        assert_eq!((stats.saves, stats.fsyncs), (u64::from(n) + 2, 3));
    }

    /// With a commit delay, a leader waits for a saver that is already inside `save_with`
    /// (here: blocked on the lock while the first saver builds its entries), so one fsync
    /// covers both; without it, the first save is synced alone.
    #[test]
    #[cfg(feature = "tuning")]
    fn commit_delay_waits_for_savers_already_inside() {
        for (delay, want_fsyncs) in [(Duration::from_secs(5), 1), (Duration::ZERO, 2)] {
            let tmp = tempfile::tempdir().expect("tmp");
            let shared = Arc::new(
                SharedWal::new(Wal::create(tmp.path().join("wal"), b"g").expect("create"))
                    .with_commit_delay(delay),
            );
            let (locked_tx, locked) = mpsc::channel::<()>();
            let first = {
                let s = shared.clone();
                std::thread::spawn(move || {
                    s.save_with(|next| {
                        // Under the lock: let the second saver enter save_with and block.
                        let _ = locked_tx.send(());
                        while s.active.load(Ordering::Acquire) < 2 {
                            std::thread::yield_now();
                        }
                        (
                            HardState::new(1, 1, next),
                            vec![Entry::new(next, 1, vec![1; 10])],
                        )
                    })
                })
            };
            // The second saver starts only once the first holds the lock, so it cannot lead.
            locked.recv().expect("first saver holds the lock");
            let second = {
                let s = shared.clone();
                std::thread::spawn(move || save_one(&s, 2))
            };
            first.join().expect("join").expect("first save");
            second.join().expect("join").expect("second save");
            let st = shared.stats().expect("stats");
            assert_eq!((st.saves, st.fsyncs), (2, want_fsyncs), "delay {delay:?}");
        }
        // A lone saver does not wait for the delay.
        let tmp = tempfile::tempdir().expect("tmp");
        let shared = SharedWal::new(Wal::create(tmp.path().join("wal"), b"g").expect("create"))
            .with_commit_delay(Duration::from_secs(30));
        let t = Instant::now();
        for k in 0..3 {
            save_one(&shared, k).expect("save");
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(shared.stats().expect("stats").fsyncs, 3);
    }

    #[test]
    fn a_failed_shared_fsync_fails_its_whole_batch_and_latches() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut shared = SharedWal::new(Wal::create(tmp.path().join("wal"), b"g").expect("create"));
        let gates = Gates::install(&mut shared, &[1], Some(2));
        let shared = Arc::new(shared);
        let n = 8u8;
        let results: Vec<_> = queue_behind_slow_sync(&shared, &gates, n)
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect();
        assert!(results[0].is_ok(), "the first save's fsync succeeded");
        for r in &results[1..] {
            match r {
                Err(Error::Io { source, .. }) => {
                    assert!(source.to_string().contains("injected"), "{source}")
                }
                other => panic!("expected the injected fsync error, got {other:?}"),
            }
        }
        assert_eq!(shared.stats().expect("stats").fsyncs, 2);
        assert!(matches!(
            save_one(&shared, 99),
            Err(Error::WriterFailed { .. })
        ));
    }

    /// Concurrent saves (some commit-only, so not synced) through tiny segments give the
    /// same files as the same saves made one by one with `Wal::save`.
    #[test]
    fn concurrent_saves_write_the_bytes_of_a_serial_run() {
        let tmp = tempfile::tempdir().expect("tmp");
        let opts = WalOptions::default().segment_size_bytes(16 * 1024);
        let shared_dir = tmp.path().join("shared");
        let shared = Arc::new(SharedWal::new(
            Wal::create_with(&shared_dir, b"m", &opts).expect("create"),
        ));
        let log = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = (0..6u8)
            .map(|t| {
                let (s, log) = (shared.clone(), log.clone());
                std::thread::spawn(move || {
                    for k in 0..60usize {
                        s.save_with(|next| {
                            let saved = if k % 3 == 2 {
                                // Commit-only: buffered, not synced (raft's MustSync false).
                                (HardState::new(1, 1, next - 1), Vec::new())
                            } else {
                                let size = 200 + (usize::from(t) * 131 + k * 977) % 3000;
                                (
                                    HardState::new(1, 1, next),
                                    vec![Entry::new(next, 1, vec![t; size])],
                                )
                            };
                            log.lock().expect("log").push(saved.clone());
                            saved
                        })
                        .expect("save");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("join");
        }
        Arc::try_unwrap(shared)
            .expect("sole owner")
            .into_inner()
            .expect("inner")
            .close()
            .expect("close");
        let serial_dir = tmp.path().join("serial");
        let mut w = Wal::create_with(&serial_dir, b"m", &opts).expect("create");
        for (hs, ents) in log.lock().expect("log").iter() {
            w.save(hs, ents).expect("save");
        }
        w.close().expect("close");
        let files = |d: &std::path::Path| {
            let mut v: Vec<_> = std::fs::read_dir(d)
                .expect("ls")
                .map(|e| e.expect("entry").path())
                .collect();
            v.sort();
            v.into_iter()
                .map(|p| {
                    (
                        p.file_name().map(|n| n.to_owned()),
                        std::fs::read(&p).expect("read"),
                    )
                })
                .collect::<Vec<_>>()
        };
        let (a, b) = (files(&shared_dir), files(&serial_dir));
        assert!(a.len() > 3, "cuts happened: {} files", a.len());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.0, y.0);
            assert!(x.1 == y.1, "{:?} differs", x.0);
        }
    }
}
