//! The `.manifest` JSON of a portable backup, byte-identical to Go's `json.MarshalIndent`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::WireError;
use crate::go_json::marshal_indent;

/// The manifest, with snapshotd's optional extensions.
///
/// [`Manifest::to_bytes`] writes Go `json.MarshalIndent` output (two-space indent, no trailing
/// newline, keys in influx's order, `"files": null` when empty). Extension keys are written
/// only when set, so a manifest read from influx re-encodes to the same bytes, and influx's
/// restore ignores them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// The `.meta` file entry.
    pub meta: ManifestMeta,
    /// Always false on influx OSS.
    #[serde(default)]
    pub limited: bool,
    /// One entry per shard archive, in info-response order.
    #[serde(
        default,
        serialize_with = "files_or_null",
        deserialize_with = "null_as_empty"
    )]
    pub files: Vec<ManifestFile>,
    /// Influx `database` (omitted when empty; never set by OSS).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub database: String,
    /// Influx `policy` (omitted when empty; never set by OSS).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy: String,
    /// Influx `shard_id` (omitted when 0; never set by OSS).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shard_id: u64,
    /// snapshotd extension: who wrote the backup and for what request window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshotd: Option<SnapshotdInfo>,
}

/// The `meta` entry of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManifestMeta {
    /// Base name of the `.meta` file.
    #[serde(rename = "fileName")]
    pub file_name: String,
    /// Length of the raw meta blob (not of the `.meta` file).
    pub size: i64,
    /// snapshotd extension: hex SHA-256 of the `.meta` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// snapshotd extension: size of the `.meta` file on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// One shard archive of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Database name.
    pub database: String,
    /// Retention policy name.
    pub policy: String,
    /// Shard id on the source server.
    #[serde(rename = "shardID")]
    pub shard_id: u64,
    /// Base name of the `.tar.gz` file.
    #[serde(rename = "fileName")]
    pub file_name: String,
    /// Uncompressed tar length (not the `.tar.gz` size).
    pub size: i64,
    /// Always 0 from influx.
    #[serde(rename = "lastModified")]
    pub last_modified: i64,
    /// snapshotd extension: hex SHA-256 of the file on disk (the `.tar.gz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// snapshotd extension: size of the file on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// snapshotd extension object (`"snapshotd": {...}`, last key of the manifest).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotdInfo {
    /// Version of the tool that wrote the backup.
    pub version: String,
    /// Requested database ("" = all).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub database: String,
    /// Requested retention policy ("" = all).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub retention_policy: String,
    /// Requested shard (None = all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<u64>,
    /// `-since` of an incremental backup (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Export window start (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Export window end (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Whether the backup completed (a partial one is written with `false`).
    #[serde(default)]
    pub complete: bool,
}

impl SnapshotdInfo {
    /// Whether every archive of its run holds its whole shard: a complete run without a
    /// time window (`since`, `start`, `end`). A restore or merge starts each shard there.
    pub fn holds_whole_shards(&self) -> bool {
        self.complete && self.since.is_none() && self.start.is_none() && self.end.is_none()
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn files_or_null<S: Serializer>(files: &[ManifestFile], s: S) -> Result<S::Ok, S::Error> {
    if files.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(files)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ManifestFile>, D::Error> {
    Ok(Option::<Vec<ManifestFile>>::deserialize(d)?.unwrap_or_default())
}

impl Manifest {
    /// Largest manifest [`Manifest::from_bytes`] accepts (64 MiB, ~300k shard entries).
    pub const MAX_BYTES: usize = 64 * 1024 * 1024;

    /// The file bytes, exactly as Go's `json.MarshalIndent(m, "", "  ")`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        marshal_indent(self).map_err(WireError::BadManifest)
    }

    /// Parses a manifest file (unknown keys ignored, as Go does).
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, WireError> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(WireError::ManifestTooLarge {
                len: bytes.len(),
                limit: Self::MAX_BYTES,
            });
        }
        serde_json::from_slice(bytes).map_err(WireError::BadManifest)
    }
}
