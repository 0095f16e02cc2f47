//! The client's error type.

use std::time::Duration;

/// Everything that can go wrong talking to a snapshotter or handling a portable backup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connection could not be opened.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// Server address.
        addr: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// An operation took longer than its timeout.
    #[error("{what} ({addr}): timed out after {after:?}")]
    Timeout {
        /// What was being done.
        what: String,
        /// Server address.
        addr: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// An I/O error on the connection or a local file.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The server's reply violated the protocol (bad frame, limit exceeded, bad JSON).
    #[error("{what}: {detail}")]
    Protocol {
        /// Which reply.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// The server refused the request because it is at its connection limit (told in-band),
    /// on every attempt.
    #[error(
        "{what} ({addr}): server at connection limit, still busy after {attempts} attempt(s) \
         over {waited:?}: {message}"
    )]
    ServerBusy {
        /// Which request.
        what: String,
        /// Server address.
        addr: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent retrying.
        waited: Duration,
        /// The server's explanation.
        message: String,
    },
    /// The server reported a failure in-band (a client that opted in to error replies).
    #[error("{what}: the server replied {code}: {message}")]
    Remote {
        /// Which request.
        what: String,
        /// The server's class of failure.
        code: snapshotd_wire::ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The server closed the connection without sending anything.
    #[error(
        "{what}: the server sent no data (it closes silently on errors: missing database/RP/shard or a server-side failure; check its log)"
    )]
    NoData {
        /// Which request.
        what: String,
    },
    /// A shard stream did not form a complete tar archive.
    #[error("{what}: incomplete tar stream after {bytes} bytes: {detail}")]
    TruncatedTar {
        /// Which stream.
        what: String,
        /// Bytes received before the problem was seen.
        bytes: u64,
        /// What was missing or wrong.
        detail: String,
    },
    /// A shard failed even after retrying.
    #[error("shard {shard_id} ({db}/{rp}) failed after {attempts} attempt(s): {source}")]
    ShardFailed {
        /// Shard ID on the source server.
        shard_id: u64,
        /// Database.
        db: String,
        /// Retention policy.
        rp: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        source: Box<ClientError>,
    },
    /// The meta update imported nothing (influx's 16-byte "no pairs" reply).
    #[error(
        "the server imported no metadata: the target database already exists \
         (restore into a new name with --db X --newdb Y), or the database/retention policy \
         is not in the backup"
    )]
    NothingImported,
    /// Reading or writing the backup location failed.
    #[error("storage {path}: {source}")]
    Storage {
        /// Object path.
        path: String,
        /// Underlying error.
        source: object_store::Error,
    },
    /// The backup directory is incomplete or inconsistent.
    #[error("backup: {0}")]
    Layout(String),
    /// A file's content does not match the manifest.
    #[error("{file}: {detail}")]
    Integrity {
        /// File name.
        file: String,
        /// What differs.
        detail: String,
    },
    /// A tar entry would escape its shard directory or is not a regular file.
    #[error("{file}: unsafe tar entry {name:?}: {reason}")]
    UnsafeEntry {
        /// Archive file name.
        file: String,
        /// Entry name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The caller asked for something contradictory or unsafe.
    #[error("invalid arguments: {0}")]
    InvalidArgument(String),
    /// A shard was sent without acknowledgement and the server gave no sign of having stored
    /// it (it reset the connection, or stopped answering right after).
    #[error(
        "{file}: upload to shard {shard} ({target}) was not confirmed: {detail}; the shard is \
         not recorded as restored, re-run the same command to send it again"
    )]
    UploadUnconfirmed {
        /// The backup file.
        file: String,
        /// The target shard id.
        shard: u64,
        /// `db/rp` on the target.
        target: String,
        /// What the server did.
        detail: String,
    },
    /// A shard archive holds files influxd would ignore; nothing more of it was sent.
    #[error("{detail}")]
    Unloadable {
        /// The warning naming the archive and its files, with the fix.
        detail: String,
    },
    /// The operation was cancelled (Ctrl-C, a lost lease, or another part of it failed).
    #[error("cancelled")]
    Cancelled,
    /// A finished file (or the manifest) was not made visible: the commit gate refused it,
    /// e.g. because the destination lock was lost.
    #[error("not publishing {what}: {reason}")]
    NotPublished {
        /// The file concerned.
        what: String,
        /// Why the gate refused.
        reason: String,
    },
    /// `--at` names no complete restore point.
    #[error("--at {at}: {detail}")]
    PointNotFound {
        /// What was asked for.
        at: String,
        /// Why nothing matched, with the points that exist.
        detail: String,
    },
    /// The checkpoint (lock, records) of a job failed.
    #[error(transparent)]
    Checkpoint(#[from] snapshotd_checkpoint::Error),
    /// The destination lock was lost during the run (taken over after a pause): it stopped
    /// and published nothing more.
    #[error("{0}")]
    LeaseLost(snapshotd_checkpoint::Error),
    /// A plain backup was asked for on a destination holding encrypted restore points.
    #[error(
        "{dest} holds encrypted restore points: pass --encrypt-key-file to add another, or \
         use a separate destination for plain backups"
    )]
    EncryptedDestination {
        /// The destination.
        dest: String,
    },
    /// An interrupted backup on the destination was made with other settings.
    #[error(
        "an interrupted backup on {dest} was made with different settings ({differences}): \
         re-run with those settings to finish it, or add --restart to leave it as a partial \
         restore point (`snapshotd forget` removes it) and start a new one"
    )]
    InterruptedWithOtherSettings {
        /// The destination.
        dest: String,
        /// The differing settings.
        differences: String,
    },
    /// A partial restore into the same target was made with other settings.
    #[error(
        "a partial restore into {target} was made with different settings ({differences}); its \
         metastore import already happened on the server. Re-run with the original settings to \
         finish it, or add --restart to forget it and start over (drop the partly restored \
         database on the server first, or restore under another --newdb)"
    )]
    RestoreSettingsChanged {
        /// The restore target (server and database).
        target: String,
        /// The differing settings.
        differences: String,
    },
    /// A blocking worker panicked or was cancelled.
    #[error("worker task failed: {0}")]
    Join(String),
    /// A re-run found the target database of an interrupted metastore import, but not as
    /// that import made it: it is never adopted.
    #[error(
        "database {db:?} exists on the target but was not created by the interrupted restore \
         this run continues ({reason}); it is left alone. Drop it (if it is a leftover) and \
         re-run, or restore under another --newdb with --restart"
    )]
    ForeignDatabase {
        /// The target database.
        db: String,
        /// Why it does not match the interrupted import.
        reason: String,
    },
    /// influxd restarted (or dropped the watch connection) while it installed a shard, and
    /// the shard's files are not what was sent.
    #[error(
        "{file}: shard {shard} ({target}) is not installed on the target: {detail}; the \
         server restarted while it installed the upload; re-run the same command to send it \
         again"
    )]
    NotInstalled {
        /// The backup file.
        file: String,
        /// The target shard id.
        shard: u64,
        /// `db/rp` on the target.
        target: String,
        /// What differs.
        detail: String,
    },
}

/// Shorthand result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

impl ClientError {
    /// Wraps an I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ClientError::Io {
            what: what.into(),
            source,
        }
    }

    /// Wraps an object-store error with the object path.
    pub fn storage(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        ClientError::Storage {
            path: path.to_string(),
            source,
        }
    }

    /// A protocol violation with context.
    pub fn protocol(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        ClientError::Protocol {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}
