//! The crate's error type.

use crate::lock::LockInfo;
use snapshotd_sealed::CryptoError;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A destination URL or path could not be understood or opened.
    #[error("invalid destination {url:?}: {reason}")]
    InvalidDestination {
        /// The URL or path as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// An object-store operation failed.
    #[error("storage: {op} {path}: {source}")]
    Storage {
        /// The operation (put, get, list, delete, ...).
        op: &'static str,
        /// The object path.
        path: String,
        /// The underlying object_store error.
        #[source]
        source: object_store::Error,
    },
    /// Local file I/O failed (local lock helper, key files).
    #[error("I/O on {path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another live holder owns the lock.
    #[error(
        "destination {dest} is locked by {holder} (remove a stale lock with `snapshotd unlock {dest}`)"
    )]
    Locked {
        /// Destination as displayed to users.
        dest: String,
        /// Who holds the lock.
        holder: Box<LockInfo>,
    },
    /// This holder lost its lock (taken over, removed, or its lease lapsed): it must stop.
    #[error("lock on {dest} lost (fenced out at epoch {epoch}): {reason}")]
    Deposed {
        /// Destination as displayed to users.
        dest: String,
        /// Our epoch.
        epoch: u64,
        /// What happened.
        reason: String,
    },
    /// The backend cannot do the conditional writes the lock needs.
    #[error("destination {dest} does not support conditional writes: {reason}")]
    Unsupported {
        /// Destination as displayed to users.
        dest: String,
        /// Details.
        reason: String,
    },
    /// A resume was attempted with settings that differ from the stored checkpoint.
    #[error(
        "checkpoint at {dest} was made with different settings ({}); re-run with the original settings, or delete {dest}/checkpoints to start over",
        differences.join("; ")
    )]
    ConfigMismatch {
        /// Destination as displayed to users.
        dest: String,
        /// One human-readable line per differing setting.
        differences: Vec<String>,
    },
    /// A checkpoint object failed verification (and strict mode is on, or it is vital).
    #[error("corrupt checkpoint object {path}: {reason}")]
    Corrupt {
        /// The object path.
        path: String,
        /// What failed.
        reason: String,
    },
    /// A record handed to the runner is invalid (too large, empty key, ...).
    #[error("invalid record {key:?}: {reason}")]
    InvalidRecord {
        /// The record key (possibly truncated).
        key: String,
        /// Why.
        reason: String,
    },
    /// Key loading or encryption/decryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The runner already failed or finished.
    #[error("checkpoint runner stopped: {0}")]
    Stopped(StopCause),
    /// A background task (the flusher, a decryption worker) panicked or was cancelled.
    #[error("checkpoint runner stopped: {task} task failed: {source}")]
    TaskFailed {
        /// Which task.
        task: &'static str,
        /// Why it did not complete.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The lock object kept changing under a conditional write until the attempts ran out.
    #[error("could not {op} {dest}: {reason}")]
    LockContended {
        /// Destination as displayed to users.
        dest: String,
        /// What was attempted (`acquire lock on`, `unlock`).
        op: &'static str,
        /// What was seen.
        reason: &'static str,
    },
    /// A checkpoint object could not be encoded.
    #[error("cannot encode checkpoint {what}: {source}")]
    Encode {
        /// Which object (`data`, `fence`, `meta`, `lock`).
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
}

/// Why a [`crate::Checkpoint`] no longer takes records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StopCause {
    /// [`crate::Checkpoint::finish`] already ran.
    #[error("finished")]
    Finished,
    /// A flush failed earlier; the error itself went to the call that saw it, this is its
    /// message.
    #[error("{first_error}")]
    FlushFailed {
        /// The first failure's message.
        first_error: String,
    },
}

/// Shorthand result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<snapshotd_dest::Error> for Error {
    /// Keeps a destination's error in the variant of the same name.
    fn from(e: snapshotd_dest::Error) -> Self {
        match e {
            snapshotd_dest::Error::InvalidDestination { url, reason } => {
                Error::InvalidDestination { url, reason }
            }
            snapshotd_dest::Error::Io { path, source } => Error::Io { path, source },
            other => Error::InvalidDestination {
                url: String::new(),
                reason: other.to_string(),
            },
        }
    }
}

impl Error {
    /// Wraps an object_store error with the operation and path.
    pub(crate) fn storage(
        op: &'static str,
        path: &object_store::path::Path,
        source: object_store::Error,
    ) -> Self {
        Error::Storage {
            op,
            path: path.to_string(),
            source,
        }
    }

    /// Builds an [`Error::TaskFailed`] closure: `.map_err(Error::task_failed("flusher"))`.
    pub(crate) fn task_failed(task: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Self {
        move |source| Error::TaskFailed { task, source }
    }

    /// Encodes a checkpoint object (`what`: `data`, `fence`, `meta`) as JSON.
    pub(crate) fn json(what: &'static str, value: &impl serde::Serialize) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|source| Error::Encode { what, source })
    }

    /// Wraps an I/O error with a path.
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
