//! The background compactor of the built-in store: a thread that compacts a shard when its
//! log passes the policy's entry or byte threshold (signalled by the write path) or has been
//! idle with uncompacted entries, and retries purges a live backup view held back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::compact::{self, Hook, Outcome};
use super::lowprio::Offload;
use super::merge::{self, Pick};
use super::{Slot, lock};
use crate::error::Result;

/// When the built-in store compacts shard logs into TSM files.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactionPolicy {
    /// Compact a shard once its log holds this many uncompacted entries (write batches).
    pub max_entries: u64,
    /// Compact a shard once this many log bytes were appended since its last compaction.
    pub max_bytes: u64,
    /// Compact a shard with uncompacted entries after this long without writes.
    pub idle: Duration,
    /// How often the compactor looks for idle shards.
    pub tick: Duration,
    /// Run the background compactor (off: only explicit and shutdown compactions).
    pub background: bool,
    /// Segment size of shard logs; purge deletes whole segments, so the log left after a
    /// compaction is at most about one segment.
    pub segment_bytes: u64,
    /// Merge a shard's TSM files once this many newer ones accumulate (see `with_merge_files`).
    pub merge_files: usize,
    /// How much lower than the store's the CPU priority of the background compaction's
    /// decoding, encoding and merging is (nice increment; 0 = the same), so writes win the
    /// CPU over them. Commits (under a shard's lock) keep the store's priority.
    pub nice: i32,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            max_entries: 4096,
            max_bytes: 64 * 1024 * 1024,
            idle: Duration::from_secs(30),
            tick: Duration::from_secs(1),
            background: true,
            segment_bytes: super::shard_log::SEGMENT_BYTES,
            merge_files: 4,
            nice: 10,
        }
    }
}

impl CompactionPolicy {
    /// Sets the entry and byte thresholds.
    pub fn with_thresholds(mut self, max_entries: u64, max_bytes: u64) -> Self {
        self.max_entries = max_entries.max(1);
        self.max_bytes = max_bytes.max(1);
        self
    }

    /// Sets the idle delay and the tick.
    pub fn with_idle(mut self, idle: Duration, tick: Duration) -> Self {
        self.idle = idle;
        self.tick = tick.max(Duration::from_millis(1));
        self
    }

    /// Sets the segment size of shard logs (at least 64 KiB).
    pub fn with_segment_bytes(mut self, n: u64) -> Self {
        self.segment_bytes = n.max(64 * 1024);
        self
    }

    /// Merges a shard's TSM files after a compaction once at least `n` (2 or more) of them
    /// qualify: the newest files, leaving out an oldest file larger than all newer ones
    /// together. An idle shard merges the same way with a threshold of 2 (so a shard keeps
    /// a few files of growing size, each rewritten a logarithmic number of times);
    /// `compact_all` merges all files into one.
    pub fn with_merge_files(mut self, n: usize) -> Self {
        self.merge_files = n.max(2);
        self
    }

    /// Sets how much lower the CPU priority of compaction encoding is (nice increment,
    /// 0..=39; 0 = the same as the store's, no worker thread).
    pub fn with_nice(mut self, n: i32) -> Self {
        self.nice = n.clamp(0, 39);
        self
    }

    /// Turns the background compactor on or off.
    pub fn with_background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }
}

/// What the compactor thread shares with the store.
#[derive(Clone)]
pub(crate) struct Shared {
    /// The store's shard slots.
    pub slots: Arc<Mutex<HashMap<u64, Slot>>>,
    /// Serialises compactions (background, explicit, shutdown).
    pub running: Arc<Mutex<()>>,
    /// Thresholds.
    pub policy: CompactionPolicy,
    /// Counters of compaction work.
    pub activity: Arc<Activity>,
    /// Where decoding, encoding and merging run (a low-priority thread when started).
    pub offload: Offload,
}

/// Counters of compaction work (see [`CompactionActivity`]).
#[derive(Debug, Default)]
pub(crate) struct Activity {
    started: AtomicU64,
    finished: AtomicU64,
    longest_hold_ns: AtomicU64,
    holds: AtomicU64,
}

impl Activity {
    /// Counts a commit that held a shard lock for `d`.
    fn held(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.longest_hold_ns.fetch_max(ns, Ordering::SeqCst);
        self.holds.fetch_add(1, Ordering::SeqCst);
    }

    /// A snapshot of the counters.
    pub(crate) fn get(&self) -> CompactionActivity {
        CompactionActivity {
            started: self.started.load(Ordering::SeqCst),
            finished: self.finished.load(Ordering::SeqCst),
            longest_lock_hold: Duration::from_nanos(self.longest_hold_ns.load(Ordering::SeqCst)),
            lock_holds: self.holds.load(Ordering::SeqCst),
        }
    }
}

/// Counters of the store's compaction work, to tell which writes overlapped one: a write
/// that saw `started != finished` when it began, or `started` change while it ran, did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionActivity {
    /// Compaction or merge runs begun.
    pub started: u64,
    /// Compaction or merge runs ended.
    pub finished: u64,
    /// Longest time a commit held a shard's lock (writes to that shard waited).
    pub longest_lock_hold: Duration,
    /// Commits that held a shard lock.
    pub lock_holds: u64,
}

/// Counts a run as started until dropped.
struct Running<'a>(&'a Activity);

impl<'a> Running<'a> {
    fn new(a: &'a Activity) -> Self {
        a.started.fetch_add(1, Ordering::SeqCst);
        Running(a)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// The running compactor thread.
pub(crate) struct Compactor {
    tx: SyncSender<u64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Compactor {
    /// Starts the thread.
    pub(crate) fn start(shared: Shared) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1024);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("snapshotd-compactor".into())
            .spawn(move || run(&shared, &rx, &flag))?;
        Ok(Compactor {
            tx,
            stop,
            handle: Some(handle),
        })
    }

    /// Asks for a compaction of shard `id` (dropped when the queue is full: the next
    /// threshold crossing or the idle scan asks again).
    pub(crate) fn request(&self, id: u64) {
        let _ = self.tx.try_send(id);
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.tx.try_send(0);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(shared: &Shared, rx: &Receiver<u64>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match rx.recv_timeout(shared.policy.tick) {
            Ok(id) => {
                let slot = lock(&shared.slots).get(&id).cloned();
                if let Some(slot) = slot {
                    report(id, shared.until_done(&slot, &|_| Ok(())));
                }
            }
            Err(RecvTimeoutError::Timeout) => shared.idle_pass(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}

fn report(id: u64, r: Result<Option<Outcome>>) {
    if let Err(e) = r {
        tracing::warn!(shard = id, error = %e, "compaction failed; will retry");
    }
}

impl Shared {
    /// Compacts a shard until nothing is pending (bounded number of passes).
    pub(crate) fn until_done(&self, slot: &Slot, hook: Hook<'_>) -> Result<Option<Outcome>> {
        let _one = lock(&self.running);
        let _run = Running::new(&self.activity);
        let mut total: Option<Outcome> = None;
        for _ in 0..64 {
            let Some(o) = compact::compact_on(slot, hook, &self.offload)? else {
                break;
            };
            if o.bytes > 0 {
                self.activity.held(o.held);
            }
            let t = total.get_or_insert_with(Outcome::default);
            t.through = o.through;
            t.values += o.values;
            t.bytes += o.bytes;
            t.purged += o.purged;
            t.pending = o.pending;
            // Merge as files accumulate, also while writes keep the log from emptying.
            if o.bytes > 0 {
                let pick = Pick::Tiered(self.policy.merge_files);
                if let Some(m) = merge::merge_on(slot, pick, &|_| Ok(()), &self.offload)? {
                    self.activity.held(m.held);
                    t.merged += m.inputs as u64;
                }
            }
            if o.pending == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// Merges the TSM files of the shard that `pick` selects.
    pub(crate) fn merge_now(&self, slot: &Slot, pick: Pick) -> Result<Option<merge::Merged>> {
        let _one = lock(&self.running);
        let _run = Running::new(&self.activity);
        let merged = merge::merge_on(slot, pick, &|_| Ok(()), &self.offload)?;
        if let Some(m) = &merged {
            self.activity.held(m.held);
        }
        if let Some(w) = lock(slot).as_mut() {
            w.merge_due = false;
        }
        Ok(merged)
    }

    /// Compacts idle shards and retries purges that a live view held back.
    fn idle_pass(&self) {
        let slots: Vec<(u64, Slot)> = lock(&self.slots)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (id, slot) in slots {
            let due = lock(&slot).as_ref().is_some_and(|w| {
                (w.pending() > 0 && w.last_write.elapsed() >= self.policy.idle)
                    || (w.purge_due && w.views.live() == 0)
            });
            if due {
                report(id, self.until_done(&slot, &|_| Ok(())));
            }
            let merge = lock(&slot).as_ref().is_some_and(|w| {
                w.merge_due && w.pending() == 0 && w.last_write.elapsed() >= self.policy.idle
            });
            if merge && let Err(e) = self.merge_now(&slot, Pick::Tiered(2)) {
                tracing::warn!(shard = id, error = %e, "merging TSM files failed; will retry");
            }
            self.close_if_cold(id, &slot);
        }
    }

    /// Closes the log of a shard quiet for twice the idle delay, giving its preallocated
    /// segment space back: an idle shard then holds its TSM files and one trimmed segment.
    fn close_if_cold(&self, id: u64, slot: &Slot) {
        let mut g = lock(slot);
        let cold = g
            .as_ref()
            .is_some_and(|w| w.is_quiet() && w.last_write.elapsed() >= self.policy.idle * 2);
        if let Some(w) = g.take_if(|_| cold)
            && let Err(e) = w.close_cold()
        {
            tracing::warn!(shard = id, error = %e, "closing an idle shard log failed");
        }
    }

    /// Whether a shard log passed a threshold.
    pub(crate) fn over(&self, pending: u64, bytes: u64) -> bool {
        pending >= self.policy.max_entries || bytes >= self.policy.max_bytes
    }
}
