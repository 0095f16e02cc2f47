//! Whole-file OFD record locks for other files of an etcd member dir (e.g. `.snap` files):
//! the same locks etcd's purge try-takes, so a shared lock held here stops its purge at
//! that file.

use std::fs::File;
use std::io;

use crate::sys::{self, LockKind, TryLock};

/// Tries a shared (read) lock on `file` (open for reading); `Ok(false)` when another open
/// file description holds an exclusive lock.
pub fn try_lock_shared(file: &File) -> io::Result<bool> {
    Ok(sys::try_lock(file, LockKind::Shared)? == TryLock::Acquired)
}

/// Tries an exclusive (write) lock on `file` (open for writing), as etcd's purge does;
/// `Ok(false)` when another open file description holds a lock.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    Ok(sys::try_lock(file, LockKind::Exclusive)? == TryLock::Acquired)
}
