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
    /// A local backup directory given to read from does not exist or is not a directory.
    #[error("{path} is not a directory (check the path; nothing was created)")]
    NotADirectory {
        /// The path given.
        path: String,
    },
    /// A file the backup needs is not in the backup location.
    #[error(
        "{path} is missing: the backup is incomplete or was partly deleted (restore from \
         another restore point, or run `snapshotd verify` on the location)"
    )]
    MissingFile {
        /// The file's path in the location.
        path: String,
    },
    /// A small backup file (manifest, `.meta`) is larger than any this tool writes.
    #[error(
        "{path} is {size} bytes, more than the limit of {limit}: it is damaged or not a \
         backup file (restore from another restore point)"
    )]
    FileTooLarge {
        /// The file's path in the location.
        path: String,
        /// Its size.
        size: u64,
        /// The largest size accepted.
        limit: u64,
    },
    /// The location holds no manifest, so it is no (complete) portable backup.
    #[error(
        "no *.manifest in {location}: not a portable backup, or an incomplete one (a manifest \
         is written only when every file is complete); check the path, or re-run the backup \
         to finish it"
    )]
    NoManifest {
        /// The backup location.
        location: String,
    },
    /// `--shard` names a shard the backup (restricted to `--db`/`--rp`) does not hold.
    #[error(
        "shard {shard} is not in the backup (for --db {} --rp {}); it holds {}: pass one of \
         those to --shard, or drop --shard",
        .db.as_deref().unwrap_or("<any>"),
        .rp.as_deref().unwrap_or("<any>"),
        shard_list(.available)
    )]
    ShardNotInBackup {
        /// The shard id asked for.
        shard: u64,
        /// The `--db` filter, if any.
        db: Option<String>,
        /// The `--rp` filter, if any.
        rp: Option<String>,
        /// The shard ids the backup holds for those filters.
        available: Vec<u64>,
    },
    /// Every backup name for the next seconds is already taken on the destination.
    #[error(
        "{dest}: {tries} consecutive backup names are taken (is another backup writing there \
         every second?); wait and re-run, or use another destination"
    )]
    BackupNamesTaken {
        /// The destination.
        dest: String,
        /// Names tried.
        tries: u32,
    },
    /// The destination's checkpoint changed under this run on every attempt to read it.
    #[error(
        "{dest}: the checkpoint keeps changing under this run (another backup?); wait for the \
         other run to finish, then re-run"
    )]
    CheckpointUnstable {
        /// The destination.
        dest: String,
    },
    /// The checkpoint was still shared when the run ended (a bug in this tool).
    #[error(
        "internal error: checkpoint still in use after the run (please report it); re-run the \
         same command to resume"
    )]
    CheckpointInUse,
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
    /// `--rp` was given without `--db`.
    #[error("invalid arguments: --rp needs --db (the retention policy of which database?)")]
    RpNeedsDb,
    /// `--shard` was given without both `--db` and `--rp`.
    #[error("invalid arguments: --shard needs --db and --rp (they name the shard in the manifest)")]
    ShardNeedsDbRp,
    /// `--newdb` was given without `--db`.
    #[error(
        "invalid arguments: --newdb needs --db: without it the server imports every database \
         under its old name while the shards are renamed, and all data is silently dropped"
    )]
    NewDbNeedsDb,
    /// `--newrp` was given without `--rp`.
    #[error("invalid arguments: --newrp needs --rp (which retention policy to rename)")]
    NewRpNeedsRp,
    /// A database or retention policy name would escape its directory or is empty.
    #[error(
        "invalid arguments: {name:?} is not a valid database or retention policy name (it \
         must be non-empty, not \".\" or \"..\", and hold no '/' or '\\')"
    )]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// `forget` was given no keep rule, so it would delete everything.
    #[error(
        "invalid arguments: no --keep-* rule given: forget would remove every restore point \
         (add e.g. --keep-last N)"
    )]
    NoKeepRule,
    /// The metadata blob is too large for the protocol's upload size field.
    #[error("the metadata blob is {bytes} bytes, more than the snapshotter protocol can upload")]
    MetaBlobTooLarge {
        /// Its size.
        bytes: usize,
    },
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
    #[error(
        "worker task failed ({task}): {source}; re-run the same command (a panic is a bug in \
         this tool: please report it)"
    )]
    Worker {
        /// What the worker was doing, naming the file.
        task: String,
        /// Why it ended.
        source: tokio::task::JoinError,
    },
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
    /// The target does not hold the shard's files after the upload: influxd restarted while
    /// it installed them, or its install failed (e.g. the stream was cut short).
    #[error(
        "{file}: shard {shard} ({target}) is not installed on the target: {detail}; re-run \
         the same command to send it again"
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

/// "shard(s) 1, 2" or "no shard there", for a message.
fn shard_list(ids: &[u64]) -> String {
    if ids.is_empty() {
        return "no shard there".into();
    }
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("shard(s) {}", ids.join(", "))
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

    /// A failed blocking worker, with what it was doing.
    pub fn worker(task: impl Into<String>, source: tokio::task::JoinError) -> Self {
        ClientError::Worker {
            task: task.into(),
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
