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
