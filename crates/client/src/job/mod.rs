//! Jobs as the CLI runs them: the backup and restore orchestrators under their checkpoint
//! (destination lock, resume records, lease watch, fencing), and `forget` under the lock.
//! The binary only parses flags, prints and picks exit codes.

pub mod backup;
pub mod forget;
mod lease;
pub mod readers;
pub mod restore;

use std::time::Duration;

pub use lease::{FORGET_HINT, discard_checkpoint, lock_options, open_checkpoint, with_lock};

/// How a job uses its checkpoint.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Keep a checkpoint (lock + records) so an interrupted run resumes; `false` writes none.
    pub resume: bool,
    /// Lease of the lock.
    pub lock_ttl: Duration,
    /// Forget an interrupted run (even one with other settings) and start a new one.
    pub restart: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            resume: true,
            lock_ttl: Duration::from_secs(60),
            restart: false,
        }
    }
}
