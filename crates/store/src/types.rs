//! Plain domain types that cross the [`crate::Store`] boundary.

use std::time::Duration;

/// A shard's location: `<database>/<retention_policy>/<shard_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardPath {
    /// Database name.
    pub database: String,
    /// Retention policy name.
    pub retention_policy: String,
    /// Shard id.
    pub shard_id: u64,
}

/// A shard with its time bounds (Unix nanoseconds, end exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// Where the shard lives.
    pub path: ShardPath,
    /// Shard group id.
    pub shard_group_id: u64,
    /// Start of the shard group's window, Unix ns.
    pub start_ns: i64,
    /// End of the shard group's window, Unix ns (exclusive).
    pub end_ns: i64,
}

/// An inclusive time window in Unix nanoseconds; `None` is unbounded on that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    /// Lower bound (inclusive), or −∞.
    pub start_ns: Option<i64>,
    /// Upper bound (inclusive), or +∞.
    pub end_ns: Option<i64>,
}

impl TimeRange {
    /// Whether `t` lies inside the window.
    pub fn contains(&self, t: i64) -> bool {
        self.start_ns.is_none_or(|s| t >= s) && self.end_ns.is_none_or(|e| t <= e)
    }
}

/// What to import from a meta blob and under which names (empty/`None` = keep).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRequest {
    /// Source database; `None` imports every database but `_internal` under its own name.
    pub backup_database: Option<String>,
    /// New name for the imported database.
    pub restore_database: Option<String>,
    /// Source retention policy; `None` imports all of the database's policies.
    pub backup_retention_policy: Option<String>,
    /// New name for the imported retention policy.
    pub restore_retention_policy: Option<String>,
    /// Also import users and their grants (influx never does; influx#9723).
    pub include_users: bool,
}

/// Old → new shard ids produced by a meta import; empty means nothing was imported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardIdMap(pub Vec<(u64, u64)>);

/// Figures from a shard backup or export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupStats {
    /// Tar entries written.
    pub files: u64,
    /// Tar bytes written, headers and padding included.
    pub bytes: u64,
}

/// Figures from a shard restore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Files kept and installed.
    pub files: u64,
    /// Entries skipped (not belonging to the shard or not a data file).
    pub skipped: u64,
    /// Payload bytes installed.
    pub bytes: u64,
}

/// Figures from a line-protocol write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Points written.
    pub points: u64,
    /// Shards touched.
    pub shards: u64,
}

/// Timestamp unit of a line-protocol batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// Nanoseconds (influx's default).
    #[default]
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
}

/// A database to create, with its optional default retention policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseSpec {
    /// Database name.
    pub name: String,
    /// Default retention policy; `None` creates influx's `autogen` (infinite, 7-day shards).
    pub retention_policy: Option<RetentionPolicySpec>,
}

/// A retention policy definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicySpec {
    /// Policy name.
    pub name: String,
    /// How long data is kept; zero = forever.
    pub duration: Duration,
    /// Shard group duration; zero = derived from `duration` as influx does.
    pub shard_group_duration: Duration,
    /// Replication factor (informational on a single node).
    pub replication: u32,
    /// Make it the database's default policy.
    pub make_default: bool,
}

/// A field value as a query sees it (borrowed from the store's own representation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// 64-bit float.
    Float(f64),
    /// Signed integer.
    Integer(i64),
    /// Unsigned integer.
    Unsigned(u64),
    /// Boolean.
    Boolean(bool),
    /// String.
    Str(&'a str),
}
