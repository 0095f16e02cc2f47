//! A decoded snapshotter request, in the terms the dispatcher needs.

use std::time::SystemTime;

use bytes::Bytes;
use snapshotd_store::{ImportRequest, TimeRange};

/// One request read from a connection (after the mux byte).
#[derive(Debug)]
pub(crate) enum Request {
    /// Type 0: shard tar, files modified after `since`.
    ShardBackup {
        /// Shard id.
        shard_id: u64,
        /// Lower mtime bound (`None` = everything).
        since: Option<SystemTime>,
    },
    /// Type 1: meta frame.
    Metastore,
    /// Type 2: declared by influx but never implemented.
    SeriesFile,
    /// Type 3: shard paths of one database (`None` = all).
    DatabaseInfo {
        /// Database filter.
        database: Option<String>,
    },
    /// Type 4: shard paths of one retention policy.
    RetentionPolicyInfo {
        /// Database.
        database: String,
        /// Retention policy.
        retention_policy: String,
    },
    /// Type 5: shard tar restricted to a time window.
    ShardExport {
        /// Shard id.
        shard_id: u64,
        /// Window (`None` sides are unbounded).
        range: TimeRange,
    },
    /// Type 6: import a meta blob, reply with the id map.
    MetaUpdate {
        /// What to import under which names.
        import: ImportRequest,
        /// The `meta.Data` protobuf blob.
        blob: Bytes,
    },
    /// Type 7: tar upload into an existing shard; `prefix` holds tar bytes already buffered.
    ShardUpload {
        /// Target shard id.
        shard_id: u64,
        /// Tar bytes read together with the header.
        prefix: Bytes,
        /// snapshotd extension (`0x87`): reply with an ack or error after the tar.
        acknowledged: bool,
    },
    /// Type ≥ 8.
    Unknown(u8),
}

impl Request {
    /// Short name for logs and metric labels.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Request::ShardBackup { .. } => "shard_backup",
            Request::Metastore => "metastore_backup",
            Request::SeriesFile => "series_file_backup",
            Request::DatabaseInfo { .. } => "database_info",
            Request::RetentionPolicyInfo { .. } => "retention_policy_info",
            Request::ShardExport { .. } => "shard_export",
            Request::MetaUpdate { .. } => "metastore_update",
            Request::ShardUpload { .. } => "shard_update",
            Request::Unknown(_) => "unknown",
        }
    }
}

/// `""` → `None`, anything else → `Some`.
pub(crate) fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}
