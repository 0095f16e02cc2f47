//! Small file-system helpers: opening with modes, fsync with metrics, zeroing a tail.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result, io_err};
use crate::sys::{self, LockKind, TryLock};

/// Segment files are private to the owner.
pub(crate) const FILE_MODE: u32 = 0o600;
/// WAL directories are private to the owner.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Histogram of fdatasync/fsync durations (seconds).
pub const METRIC_FSYNC_SECONDS: &str = "snapshotd_wal_fsync_duration_seconds";
/// Gauge: index of the last entry saved.
pub const METRIC_LAST_INDEX: &str = "snapshotd_wal_last_index_saved";
/// Counter: bytes handed to segment files.
pub const METRIC_WRITE_BYTES: &str = "snapshotd_wal_write_bytes_total";

pub(crate) fn open_rw(path: &Path, create: bool, truncate: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(create).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, FILE_MODE);
    o.open(path).map_err(io_err("open", path))
}

pub(crate) fn open_ro(path: &Path) -> Result<File> {
    File::open(path).map_err(io_err("open", path))
}

/// Pauses before re-trying a busy lock. A process that forks (any thread spawning a child)
/// briefly shares every open file description with the child until it execs, so a lock that
/// was just released can look held for a moment; a real holder still fails within ~15 ms.
pub(crate) const LOCK_RETRY_PAUSES_MS: [u64; 2] = [3, 12];

/// Non-blocking exclusive OFD lock; busy → [`Error::Locked`].
pub(crate) fn try_lock_exclusive(file: &File, path: &Path) -> Result<()> {
    for pause in LOCK_RETRY_PAUSES_MS
        .iter()
        .map(|&ms| Some(ms))
        .chain([None])
    {
        match sys::try_lock(file, LockKind::Exclusive).map_err(io_err("lock", path))? {
            TryLock::Acquired => return Ok(()),
            TryLock::WouldBlock => match pause {
                Some(ms) => std::thread::sleep(std::time::Duration::from_millis(ms)),
                None => break,
            },
        }
    }
    Err(Error::Locked {
        path: path.to_path_buf(),
    })
}

/// Blocking exclusive OFD lock.
pub(crate) fn lock_exclusive(file: &File, path: &Path) -> Result<()> {
    sys::lock(file, LockKind::Exclusive).map_err(io_err("lock", path))
}

/// fdatasync with the duration recorded in [`METRIC_FSYNC_SECONDS`].
pub(crate) fn datasync(file: &File, path: &Path) -> Result<()> {
    let t = Instant::now();
    file.sync_data().map_err(io_err("fdatasync", path))?;
    observe_sync(t);
    Ok(())
}

/// Without the `tuning` feature no slice can be configured: nothing to do.
#[cfg(not(feature = "tuning"))]
pub(crate) fn prepare_sync_thread(_slice: Option<std::time::Duration>) {}

/// Applies the configured sync slice (`WalOptions::sync_slice`) to the calling thread, once
/// per thread.
#[cfg(feature = "tuning")]
pub(crate) fn prepare_sync_thread(slice: Option<std::time::Duration>) {
    thread_local! {
        static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    let Some(slice) = slice else {
        return;
    };
    if DONE.with(|d| d.replace(true)) {
        return;
    }
    let ns = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
    match sys::set_thread_slice(ns) {
        Ok(changed) => tracing::debug!(?slice, changed, "WAL sync thread slice"),
        Err(e) => tracing::debug!(error = %e, "cannot set the WAL sync thread's slice"),
    }
}

/// fsync of a directory (after renames).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let t = Instant::now();
    let f = File::open(dir).map_err(io_err("open directory", dir))?;
    f.sync_all().map_err(io_err("fsync directory", dir))?;
    observe_sync(t);
    Ok(())
}

pub(crate) fn observe_sync(t: Instant) {
    let took = t.elapsed();
    metrics::histogram!(METRIC_FSYNC_SECONDS).record(took.as_secs_f64());
    if took.as_secs() >= 1 {
        tracing::warn!(took = ?took, "slow fdatasync");
    }
}

/// Zeroes `file` from `off` to its current end, keeping the blocks allocated.
pub(crate) fn zero_to_end(file: &File, path: &Path, off: u64) -> Result<()> {
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    file.set_len(off).map_err(io_err("truncate", path))?;
    sys::preallocate(file, len).map_err(io_err("preallocate", path))
}

/// Creates a directory (and parents) with mode 0700.
pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, DIR_MODE);
    b.create(dir).map_err(io_err("create directory", dir))
}

#[cfg(test)]
#[cfg(all(target_os = "linux", feature = "tuning"))]
mod tests {
    use std::time::Duration;

    use crate::sys::thread_slice;
    use crate::{Entry, HardState, Wal, WalOptions};

    fn save_once(dir: &std::path::Path, opts: &WalOptions) {
        let mut w = Wal::create_with(dir, b"m", opts).expect("create");
        w.save(&HardState::new(1, 1, 1), &[Entry::new(1, 1, vec![1; 10])])
            .expect("save");
        w.close().expect("close");
    }

    #[test]
    fn sync_slice_is_opt_in_and_applies_to_the_saving_thread_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        // Fresh threads, so no earlier test on the same thread has set anything.
        let before = std::thread::scope(|s| {
            s.spawn(|| {
                let before = thread_slice().expect("getattr");
                save_once(&a, &WalOptions::default());
                assert_eq!(
                    thread_slice().expect("getattr"),
                    before,
                    "default: unchanged"
                );
                before
            })
            .join()
            .expect("join")
        });
        assert!(before > 150_000, "default slice {before} ns");
        let opts = WalOptions::default().sync_slice(Duration::from_micros(150));
        std::thread::scope(|s| {
            s.spawn(|| {
                save_once(&b, &opts);
                assert_eq!(thread_slice().expect("getattr"), 150_000);
            })
            .join()
            .expect("join")
        });
        let other = std::thread::scope(|s| s.spawn(|| thread_slice().expect("getattr")).join());
        assert_eq!(other.ok(), Some(before), "other threads keep theirs");
    }
}
