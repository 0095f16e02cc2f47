//! The portable backup format (`influxd backup -portable`): `.meta` wrapper, `.manifest`
//! JSON, and a decode-only summary of the `meta.Data` protobuf.

mod data;
mod manifest;
mod meta_summary;

pub use data::PortableData;
pub use manifest::{Manifest, ManifestFile, ManifestMeta, SnapshotdInfo};
pub use meta_summary::{
    DatabaseSummary, MetaSummary, RetentionPolicySummary, ShardGroupSummary, ShardLocation,
    ShardSummary, UserSummary,
};
