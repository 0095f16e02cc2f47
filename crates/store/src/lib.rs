//! The storage boundary that `snapshotd-server` serves, plus the built-in on-disk store.
//!
//! A [`Store`] is what a storage node exposes to the snapshot service: its metastore as bytes,
//! the shards it holds, a shard as a tar stream (whole, changed since an instant, or exported
//! by time window), and the restore side (import meta with shard renumbering, replace a
//! shard's files atomically). Other services implement the trait over their own storage; the
//! `builtin` feature provides an on-disk implementation whose shard writes go through an
//! etcd-compatible WAL (`snapshotd-wal`).
//!
//! This crate deliberately knows nothing about the wire protocol, sockets, async runtimes or
//! CLI concerns: the trait is synchronous and object safe, byte streams are `std::io`
//! readers and writers, and the server bridges them to the network.

mod api;
mod error;
mod types;

#[cfg(feature = "builtin")]
pub mod builtin;
#[cfg(feature = "meta")]
pub mod meta;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use api::{AdminStore, Store};
pub use error::{
    Conflict, Corruption, DurationField, DurationProblem, InvalidInput, LineProblem, Locked,
    MarkerKind, MarkerProblem, MetaFormat, MetaProblem, NameKind, Result, StoreError, TarProblem,
    TsmProblem, Unsupported,
};
pub use types::{
    BackupStats, DatabaseSpec, ImportRequest, Precision, RestoreStats, RetentionPolicySpec, Scalar,
    ShardIdMap, ShardInfo, ShardPath, TimeRange, WriteStats,
};

#[cfg(feature = "builtin")]
pub use builtin::{
    BuiltinStore, CompactionActivity, CompactionPolicy, CompactionStats, LogStats, RestoreLimits,
};
