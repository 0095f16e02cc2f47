//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while archiving, inspecting or restoring. Wrapping
/// variants name the operation; the cause is their `source()` (print the chain).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a WAL (the member's or ours) failed.
    #[error("{context}")]
    Wal {
        /// What was being done, naming the file or directory.
        context: String,
        /// The WAL error.
        #[source]
        source: snapshotd_wal::Error,
    },
    /// The destination (lock, records, objects) failed.
    #[error("{context}")]
    Checkpoint {
        /// What was being done.
        context: String,
        /// The checkpoint / storage error.
        #[source]
        source: Box<snapshotd_checkpoint::Error>,
    },
    /// An object-store operation on an archive object failed.
    #[error("storage: {op} {path}")]
    Storage {
        /// The operation.
        op: &'static str,
        /// The object path.
        path: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// Local file I/O failed.
    #[error("{op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The data dir is not an etcd member dir.
    #[error("{path} is not an etcd data dir: {reason}")]
    NotADataDir {
        /// The directory given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// An archived object is damaged (checksum, decode, index order).
    #[error("archive object {name} is damaged: {reason}")]
    Corrupt {
        /// The object.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Nothing in the archive can produce the requested point.
    #[error("cannot restore to {target}: {reason}")]
    NotRestorable {
        /// The requested target as given.
        target: String,
        /// Why, with what to do.
        reason: String,
    },
    /// The restore target directory is not usable.
    #[error("restore target {path}: {reason}")]
    BadTarget {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No checkpoint record at the archive could be read or trusted.
    #[error(
        "archive {dest}: none of its {count} record files can be read or trusted \
         (first: {first}); an encrypted archive needs its --encrypt-key-file"
    )]
    Unreadable {
        /// The archive.
        dest: String,
        /// Objects rejected.
        count: usize,
        /// The first one, with the reason.
        first: String,
    },
    /// An etcd endpoint could not serve a base backup.
    #[error("etcd {endpoint}: {reason}")]
    Etcd {
        /// The client URL.
        endpoint: String,
        /// What failed.
        reason: String,
    },
    /// The archive belongs to another cluster.
    #[error("archive holds cluster {archive} but {data_dir} belongs to cluster {member}")]
    ClusterMismatch {
        /// Cluster id recorded in the archive.
        archive: String,
        /// Cluster id of the member being archived.
        member: String,
        /// The data dir.
        data_dir: PathBuf,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a WAL error with context.
    pub(crate) fn wal(context: impl Into<String>) -> impl FnOnce(snapshotd_wal::Error) -> Error {
        let context = context.into();
        move |source| Error::Wal { context, source }
    }

    /// Wraps a checkpoint error with context.
    pub(crate) fn cp(
        context: impl Into<String>,
    ) -> impl FnOnce(snapshotd_checkpoint::Error) -> Error {
        let context = context.into();
        move |source| Error::Checkpoint {
            context,
            source: Box::new(source),
        }
    }

    /// The checkpoint error inside, if any (e.g. to tell `Locked` from `Deposed`).
    pub fn checkpoint_error(&self) -> Option<&snapshotd_checkpoint::Error> {
        match self {
            Error::Checkpoint { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Wraps an I/O error.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
