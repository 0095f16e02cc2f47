//! Errors about the store's state rather than its input or data: conflicts with what
//! exists, operations a store does not offer, and locks held by another process.

use std::path::PathBuf;

/// The operation conflicts with what the store already holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// A database of that name exists (create or import).
    #[error("database {database} already exists; drop it first or choose another name")]
    Database {
        /// The existing database.
        database: String,
    },
    /// A retention policy of that name exists in the database.
    #[error(
        "retention policy {retention_policy} on database {database} already exists; \
         drop it first or choose another name"
    )]
    RetentionPolicy {
        /// The database.
        database: String,
        /// The existing retention policy.
        retention_policy: String,
    },
    /// A shard log was to be created where one already exists.
    #[error(
        "a shard log already exists in {}; reopen the store so it is read instead of \
         created",
        dir.display()
    )]
    ShardLog {
        /// The log directory.
        dir: PathBuf,
    },
}

/// An operation this store does not offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unsupported {
    /// Reading the metastore.
    #[error("this store cannot snapshot its metastore")]
    MetaSnapshot,
    /// Describing a shard (location and time bounds).
    #[error("this store cannot describe shards")]
    ShardInfo,
    /// Whole or incremental shard backups.
    #[error("this store cannot back shards up")]
    ShardBackup,
    /// Time-filtered shard exports: take a whole-shard backup instead.
    #[error("this store cannot export a shard by time range; take a whole-shard backup")]
    ShardExport,
    /// Importing a metastore blob.
    #[error("this store cannot import metadata")]
    MetaImport,
    /// Replacing a shard's files.
    #[error("this store cannot restore shards")]
    ShardRestore,
    /// Answering queries (`SELECT`): query the storage node itself.
    #[error("this store cannot answer queries; query the storage node itself")]
    Queries,
}

/// A lock the store needs is held by another process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Locked {
    /// The data directory's lock file: another store has the directory open.
    #[error(
        "{}: another process (a second `snapshotd serve`?) has this data directory open; \
         stop it or use another data directory",
        lock_file.display()
    )]
    DataDir {
        /// The lock file (`<data dir>/LOCK`).
        lock_file: PathBuf,
    },
    /// A shard log segment: another process has the shard's log open.
    #[error(
        "shard log segment {} is locked: another process has this shard's log open; stop it \
         and retry",
        path.display()
    )]
    ShardLog {
        /// The locked segment.
        path: PathBuf,
    },
}
