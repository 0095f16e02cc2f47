//! Resumable backups on top of `snapshotd-checkpoint`: what a backup records, how an
//! interrupted run is reconstructed from the records, and the settings a resume must match.
//!
//! Record keys are the stored file names (`TS.meta`, `TS.s<ID>.tar.gz`); each record holds
//! the stored size and sha256, and a payload with the shard id and the manifest size. A
//! finished backup adds [`COMPLETE_KEY`] naming its manifest.

use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use snapshotd_checkpoint::{Checkpoint, JobConfig, LockInfo, UnitRecord};

use crate::backup::{BackupOptions, CommitGate, ResumeFrom};
use crate::conn::{IdMap, Window};
use crate::progress::{UnitDone, UnitSink};
use crate::restore::{RestoreOptions, RestoreResume};

/// Record key written when a backup completed; its payload names the manifest.
pub const COMPLETE_KEY: &str = "backup/complete";

/// The payload stored with every file record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FilePayload {
    /// Source shard (`None` for the meta file).
    shard_id: Option<u64>,
    /// Manifest size (tar length or meta blob length).
    manifest_size: u64,
}

/// The payload of the [`COMPLETE_KEY`] record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CompletePayload {
    /// Name of the manifest written.
    manifest: String,
}

/// The settings a resumed backup must share with the interrupted one (the checkpoint adds
/// the encryption key id). The server address is not among them: a backup may resume from
/// another address of the same server.
pub fn backup_config(opts: &BackupOptions) -> JobConfig {
    let (mode, a, b) = match opts.window {
        Window::Full => ("full", String::new(), String::new()),
        Window::Since(t) => ("since", t.to_string(), String::new()),
        Window::Export { start, end } => ("export", start.to_string(), end.to_string()),
    };
    JobConfig::new()
        .with("kind", "backup")
        .with("db", opts.db.clone().unwrap_or_default())
        .with("rp", opts.rp.clone().unwrap_or_default())
        .with(
            "shard",
            opts.shard.map(|s| s.to_string()).unwrap_or_default(),
        )
        .with("window", mode)
        .with("window.start", a)
        .with("window.end", b)
        .with("compression_level", opts.gzip_level.min(9).to_string())
        .with("compression", format!("{:?}", opts.compression))
}

/// Parses a `TS` (`YYYYMMDDTHHMMSSZ`) back into the start time it names.
pub fn parse_timestamp(ts: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|n| n.and_utc())
}

/// What the checkpoint says about earlier runs.
#[derive(Debug, Clone)]
pub enum Prior {
    /// Nothing usable was recorded: start a new run.
    Fresh,
    /// A run was interrupted: continue it.
    Interrupted(ResumeFrom),
    /// A run completed and wrote this manifest.
    Complete(String),
}

/// Reconstructs the earlier run from the checkpoint's trusted records.
pub fn prior_run(cp: &Checkpoint) -> Prior {
    let records = &cp.resume().records;
    if let Some(done) = records.get(COMPLETE_KEY)
        && let Ok(p) = serde_json::from_value::<CompletePayload>(done.payload.clone())
    {
        return Prior::Complete(p.manifest);
    }
    // The run's TS comes from its meta record; without one nothing of it is usable.
    let Some(started) = records
        .keys()
        .filter_map(|k| k.strip_suffix(".meta"))
        .filter_map(parse_timestamp)
        .max()
    else {
        return Prior::Fresh;
    };
    let ts = crate::layout::timestamp(started);
    let mut skip_shards = BTreeMap::new();
    for rec in records.values() {
        let Ok(p) = serde_json::from_value::<FilePayload>(rec.payload.clone()) else {
            continue;
        };
        let Some(id) = p.shard_id else { continue };
        if rec.key != crate::layout::shard_name(&ts, id) {
            continue;
        }
        skip_shards.insert(
            id,
            UnitDone {
                key: rec.key.clone(),
                shard_id: Some(id),
                sha256: rec.sha256.clone(),
                bytes: rec.size,
                manifest_size: p.manifest_size,
            },
        );
    }
    Prior::Interrupted(ResumeFrom {
        started,
        skip_shards,
    })
}

/// Whether the lock `holder` is a process of this host that no longer exists (killed or
/// crashed): its lock can be removed at once instead of waiting for the lease to run out.
/// A live, stopped or unknown process is never considered dead. (Processes in another PID
/// namespace with the same host name would look dead; give containers distinct host names.)
pub fn holder_is_dead_local(holder: &LockInfo) -> bool {
    holder.host == snapshotd_checkpoint::host_name()
        && holder.pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{}", holder.pid)).exists()
}

/// Records the completed backup (call after the manifest exists).
pub fn record_complete(cp: &Checkpoint, manifest: &str) -> snapshotd_checkpoint::Result<()> {
    let payload = serde_json::json!({ "manifest": manifest });
    cp.record_now(UnitRecord::new(COMPLETE_KEY, 0, "").with_payload(payload))
}

/// A [`CommitGate`] that publishes only while the checkpoint's lock is held: a holder whose
/// lease lapsed (it was paused) must refresh it first, and a refused refresh stops it.
pub struct LeaseGate(pub Arc<Checkpoint>);

impl CommitGate for LeaseGate {
    fn check(&self) -> futures::future::BoxFuture<'_, std::result::Result<(), String>> {
        Box::pin(async move { self.0.lock().check().await.map_err(|e| e.to_string()) })
    }
}

/// A [`UnitSink`] that records every finished file in a checkpoint. A refused record (lost
/// lease, stopped runner) stops the run through `cancel`.
pub struct CheckpointSink {
    cp: Arc<Checkpoint>,
    cancel: CancellationToken,
}

impl CheckpointSink {
    /// Records into `cp`; cancels `cancel` when recording fails.
    pub fn new(cp: Arc<Checkpoint>, cancel: CancellationToken) -> Self {
        CheckpointSink { cp, cancel }
    }
}

impl UnitSink for CheckpointSink {
    fn unit_done(&self, unit: &UnitDone) {
        let payload = FilePayload {
            shard_id: unit.shard_id,
            manifest_size: unit.manifest_size,
        };
        let payload = serde_json::to_value(payload).unwrap_or(serde_json::Value::Null);
        let rec = UnitRecord::new(&unit.key, unit.bytes, &unit.sha256).with_payload(payload);
        if let Err(e) = self.cp.record_now(rec) {
            tracing::error!(error = %e, file = %unit.key, "checkpoint refused a record; stopping");
            self.cancel.cancel();
        }
    }
}

/// Record key of a restore's completed metastore import.
pub const RESTORE_META_KEY: &str = "restore/meta";

/// Record key of a restore's metastore import about to be sent (its intent).
pub const RESTORE_INTENT_KEY: &str = "restore/intent";

/// The settings a resumed restore must share with the interrupted one.
pub fn restore_config(opts: &RestoreOptions, manifest: &str) -> JobConfig {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    JobConfig::new()
        .with("kind", "restore")
        .with("manifest", manifest)
        .with("db", o(&opts.db))
        .with("newdb", o(&opts.new_db))
        .with("rp", o(&opts.rp))
        .with("newrp", o(&opts.new_rp))
        .with(
            "shard",
            opts.shard.map(|s| s.to_string()).unwrap_or_default(),
        )
}

/// The payload of [`RESTORE_META_KEY`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MetaPayload {
    manifest: String,
    id_map: IdMap,
}

/// The payload of a restored shard's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardPayload {
    source: u64,
    target: u64,
}

/// What an interrupted restore recorded, if its metastore import completed.
pub fn prior_restore(cp: &Checkpoint) -> Option<RestoreResume> {
    let records = &cp.resume().records;
    let meta: MetaPayload =
        serde_json::from_value(records.get(RESTORE_META_KEY)?.payload.clone()).ok()?;
    let done = records
        .iter()
        .filter(|(k, _)| k.starts_with("restore/shard/"))
        .filter_map(|(_, r)| serde_json::from_value::<ShardPayload>(r.payload.clone()).ok())
        .filter(|p| meta.id_map.contains(&(p.source, p.target)))
        .map(|p| p.source)
        .collect();
    Some(RestoreResume {
        manifest: meta.manifest,
        id_map: meta.id_map,
        done,
    })
}

/// The import an interrupted restore was about to send (or sent) without recording its
/// result, if any.
pub fn prior_import_intent(cp: &Checkpoint) -> Option<crate::reimport::ImportIntent> {
    let rec = cp.resume().records.get(RESTORE_INTENT_KEY)?;
    serde_json::from_value(rec.payload.clone()).ok()
}

/// A [`UnitSink`] that records a restore's metastore import and every uploaded shard.
pub struct RestoreSink {
    cp: Arc<Checkpoint>,
    cancel: CancellationToken,
}

impl RestoreSink {
    /// Records into `cp`; cancels `cancel` when recording fails.
    pub fn new(cp: Arc<Checkpoint>, cancel: CancellationToken) -> Self {
        RestoreSink { cp, cancel }
    }

    fn record(&self, key: String, payload: serde_json::Value) {
        if let Err(e) = self
            .cp
            .record_now(UnitRecord::new(&key, 0, "").with_payload(payload))
        {
            tracing::error!(error = %e, %key, "checkpoint refused a record; stopping");
            self.cancel.cancel();
        }
    }
}

impl UnitSink for RestoreSink {
    fn unit_done(&self, _unit: &UnitDone) {}

    fn meta_imported(&self, manifest: &str, id_map: &[(u64, u64)]) {
        let p = MetaPayload {
            manifest: manifest.to_string(),
            id_map: id_map.to_vec(),
        };
        let v = serde_json::to_value(p).unwrap_or(serde_json::Value::Null);
        self.record(RESTORE_META_KEY.to_string(), v);
    }

    fn import_intent(
        &self,
        intent: &crate::reimport::ImportIntent,
    ) -> futures::future::BoxFuture<'_, crate::Result<()>> {
        let v = serde_json::to_value(intent).unwrap_or(serde_json::Value::Null);
        let rec = UnitRecord::new(RESTORE_INTENT_KEY, 0, "").with_payload(v);
        Box::pin(async move {
            self.cp.record_now(rec)?;
            Ok(self.cp.flush().await?)
        })
    }

    fn shard_restored(&self, source: u64, target: u64) {
        let v = serde_json::to_value(ShardPayload { source, target })
            .unwrap_or(serde_json::Value::Null);
        self.record(format!("restore/shard/{source}"), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = parse_timestamp("20260102T030405Z");
        assert_eq!(
            t.map(crate::layout::timestamp).as_deref(),
            Some("20260102T030405Z")
        );
        assert!(parse_timestamp("2026-01-02").is_none());
    }

    #[test]
    fn config_names_each_setting() {
        let a = backup_config(&BackupOptions {
            db: Some("a".into()),
            ..Default::default()
        });
        let b = backup_config(&BackupOptions {
            db: Some("b".into()),
            ..Default::default()
        });
        let diff = a.differences(&b);
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert!(diff[0].starts_with("db"), "{diff:?}");
    }
}
