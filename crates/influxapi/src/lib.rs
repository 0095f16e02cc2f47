//! influx 1.x restore paths that go through the v1 HTTP API or the metastore file rather
//! than the snapshotter protocol: merge a portable backup's points into a live database,
//! recreate its retention policies and continuous queries, apply grants, write a complete
//! `meta.db` offline, and decode every TSM block of a backup (deep verify) to compare its
//! counts with a target.
//!
//! The library reads no environment, prints nothing and never exits: credentials, URLs and
//! paths are passed in by the caller.

mod cq;
mod deep;
mod duration;
mod error;
mod grants;
mod http;
mod import;
mod line;
mod merge;
mod offline;
mod offline_data;
mod progress;
mod schema;
mod series;
mod shard;
mod source;
#[cfg(test)]
mod test_archive;

pub use cq::{canonical, rewrite_cq};
pub use deep::{
    CheckReport, DeepReport, MeasurementStats, check_target, deep_verify, deep_verify_applied,
};
pub use duration::{influxql_duration, parse_go_duration};
pub use error::{InfluxApiError, Result};
pub use grants::{GrantsReport, privilege_name, restore_grants};
pub use http::{Credentials, HttpOptions, InfluxHttp, Series, quote_ident, quote_str};
pub use import::GENERATION_OFFSET;
pub use line::{UnsignedMode, push_field_key, push_float, push_lines, push_string, push_value};
pub use merge::{ConflictMode, DoneFn, MergeOptions, MergeReport, UploadFn, UploadHook, merge};
pub use offline::{OfflineReport, write_meta_offline};
pub use offline_data::{OfflineShardsReport, write_shards_offline};
pub use progress::MergeProgress;
pub use schema::{SchemaReport, restore_schema};
pub use series::series_lines;
pub use source::{Backup, BackupShard, read_meta};
