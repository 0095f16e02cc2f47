//! The traits a storage node implements to be served by the snapshot service.

use std::io::{Read, Write};
use std::time::SystemTime;

use crate::error::{Result, StoreError, Unsupported};
use crate::types::{
    BackupStats, DatabaseSpec, ImportRequest, Precision, RestoreStats, RetentionPolicySpec, Scalar,
    ShardIdMap, ShardInfo, ShardPath, TimeRange, WriteStats,
};

/// What the snapshot service needs from a storage node: backup and restore of meta and shards.
///
/// Methods are blocking; the server calls them from a blocking thread pool. Streams are
/// written/read incrementally: an implementation must not buffer a whole shard in memory.
pub trait Store: Send + Sync + 'static {
    /// The whole metastore as an influx `meta.Data` protobuf blob.
    fn meta_snapshot(&self) -> Result<Vec<u8>>;

    /// Shards held by this node, filtered by database and retention policy (`None` = all),
    /// in metastore order. An unknown database or retention policy is `NotFound`.
    fn list_shards(
        &self,
        database: Option<&str>,
        retention_policy: Option<&str>,
    ) -> Result<Vec<ShardPath>>;

    /// Where a shard lives (database, retention policy) and its time bounds.
    fn shard_info(&self, shard_id: u64) -> Result<ShardInfo>;

    /// Writes a point-in-time tar of the shard's files to `out`; with `since`, only files
    /// modified strictly after it. Entry names are `<db>/<rp>/<id>/<file>`.
    fn backup_shard(
        &self,
        shard_id: u64,
        since: Option<SystemTime>,
        out: &mut dyn Write,
    ) -> Result<BackupStats>;

    /// Writes a tar of the shard's data restricted to `range` to `out` (block-granular for
    /// TSM files, as influx 1.6 does). `Unsupported` when the store cannot filter.
    fn export_shard(
        &self,
        shard_id: u64,
        range: TimeRange,
        out: &mut dyn Write,
    ) -> Result<BackupStats>;

    /// Imports databases from a `meta.Data` blob under the rules of influx's `ImportData`
    /// and creates the imported shards empty; returns old → new shard ids.
    fn import_meta(&self, blob: &[u8], request: &ImportRequest) -> Result<ShardIdMap>;

    /// Replaces the files of an existing shard with the tar stream `tar` (entries named
    /// `<db>/<rp>/<id>/<file>`); atomic: on error the old shard stays intact.
    fn restore_shard(&self, shard_id: u64, tar: &mut dyn Read) -> Result<RestoreStats>;
}

/// Administration and ingest that an operator-facing front end (HTTP `/write`, `/query`)
/// needs; optional for stores that are only served for backup.
pub trait AdminStore: Store {
    /// Creates a database, optionally with its default retention policy.
    fn create_database(&self, spec: &DatabaseSpec) -> Result<()>;

    /// Creates a retention policy on an existing database.
    fn create_retention_policy(&self, database: &str, spec: &RetentionPolicySpec) -> Result<()>;

    /// Drops a database and all its shards.
    fn drop_database(&self, name: &str) -> Result<()>;

    /// Database names in metastore order.
    fn databases(&self) -> Result<Vec<String>>;

    /// Retention policies of a database and which one is the default.
    fn retention_policies(&self, database: &str) -> Result<Vec<(RetentionPolicySpec, bool)>>;

    /// Every shard with its location and time bounds.
    fn shards(&self) -> Result<Vec<ShardInfo>>;

    /// Writes a line-protocol batch durably (returns after fsync); all or nothing.
    fn write_lines(
        &self,
        database: &str,
        retention_policy: Option<&str>,
        precision: Precision,
        body: &[u8],
    ) -> Result<WriteStats>;

    /// Visits every stored value of `measurement` in a retention policy (`None` = the
    /// database's default) as `(field, unix ns, value)`, one shard at a time; what an
    /// operator's aggregate `SELECT` reads. Stores that cannot answer queries refuse.
    fn scan_values(
        &self,
        database: &str,
        retention_policy: Option<&str>,
        measurement: &str,
        visit: &mut dyn FnMut(&str, i64, Scalar<'_>),
    ) -> Result<()> {
        let _ = (database, retention_policy, measurement, visit);
        Err(StoreError::Unsupported(Unsupported::Queries))
    }
}
