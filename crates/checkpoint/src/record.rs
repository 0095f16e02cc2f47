//! Bodies of the checkpoint objects (JSON inside a sealed envelope) and their limits.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::JobConfig;

/// Current on-storage format version.
pub const FORMAT: u32 = 1;
/// Largest record key accepted.
pub const MAX_KEY_LEN: usize = 4096;
/// Largest encoded payload of one record.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024;
/// Largest meta object read.
pub const MAX_META_BYTES: u64 = 1 << 20;
/// Largest fence object read.
pub const MAX_FENCE_BYTES: u64 = 64 << 20;
/// Largest record file read.
pub const MAX_DATA_BYTES: u64 = 64 << 20;

/// One finished unit of work, as fed to the runner and returned on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    /// Caller-chosen unique key of the unit (e.g. `shard/12`).
    pub key: String,
    /// Size in bytes of what the unit produced.
    pub size: u64,
    /// SHA-256 (hex) of what the unit produced, for the caller to re-verify.
    pub sha256: String,
    /// Small caller-defined payload (≤ 64 KiB encoded).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub payload: serde_json::Value,
}

impl UnitRecord {
    /// A record without payload.
    pub fn new(key: impl Into<String>, size: u64, sha256: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            size,
            sha256: sha256.into(),
            payload: serde_json::Value::Null,
        }
    }

    /// Attaches a JSON payload.
    pub fn with_payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }
}

/// `checkpoints/checkpoint.meta`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MetaBody {
    pub format: u32,
    pub kind: String,
    pub job_id: String,
    pub created: DateTime<Utc>,
    pub config: JobConfig,
    pub config_hash: String,
}

/// `checkpoints/fences/<epoch>.fence`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FenceBody {
    pub format: u32,
    pub kind: String,
    pub job_id: String,
    pub epoch: u64,
    pub owner: String,
    pub written: DateTime<Utc>,
    /// File names (last component) of older epochs' record files still trusted.
    pub accepted: Vec<String>,
}

/// `checkpoints/data/<epoch>-<seq>.cpt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DataBody {
    pub format: u32,
    pub kind: String,
    pub job_id: String,
    pub epoch: u64,
    pub seq: u64,
    pub written: DateTime<Utc>,
    pub records: Vec<UnitRecord>,
}
