//! The job configuration fingerprint that a resume must match.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Settings that must not change between a run and its resume (database, retention
/// policy, time window, encryption key id, ...), as named string values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobConfig {
    /// Setting name → value.
    pub settings: BTreeMap<String, String>,
}

impl JobConfig {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one setting (builder style).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.insert(name.into(), value.into());
        self
    }

    /// SHA-256 (hex) over a canonical encoding of the settings.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for (k, v) in &self.settings {
            h.update((k.len() as u64).to_be_bytes());
            h.update(k.as_bytes());
            h.update((v.len() as u64).to_be_bytes());
            h.update(v.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// One line per setting that differs between `stored` (self) and `current`.
    pub fn differences(&self, current: &JobConfig) -> Vec<String> {
        let mut out = Vec::new();
        let keys: std::collections::BTreeSet<&String> = self
            .settings
            .keys()
            .chain(current.settings.keys())
            .collect();
        for k in keys {
            let a = self.settings.get(k);
            let b = current.settings.get(k);
            if a != b {
                let show =
                    |v: Option<&String>| v.map_or("(unset)".to_string(), |s| format!("{s:?}"));
                out.push(format!("{k}: checkpoint has {}, now {}", show(a), show(b)));
            }
        }
        out
    }
}
