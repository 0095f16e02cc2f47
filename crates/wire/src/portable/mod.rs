//! The portable backup format (`influxd backup -portable`): `.meta` wrapper, `.manifest`
//! JSON, and a decode-only summary of the `meta.Data` protobuf.

mod data;
mod manifest;
mod meta_summary;
mod names;

pub use data::PortableData;
pub use manifest::{Manifest, ManifestFile, ManifestMeta, SnapshotdInfo};
pub use meta_summary::{
    DatabaseSummary, MetaSummary, RetentionPolicySummary, ShardGroupSummary, ShardLocation,
    ShardSummary, UserSummary,
};
pub use names::{
    manifest_file_name, meta_file_name, parse_shard_file_name, run_timestamp, shard_file_name,
};
