//! Progress reporting and the per-unit completion hook.
//!
//! The library never draws anything: the binary plugs a terminal UI (or log lines) in through
//! [`Progress`], and resumable-job bookkeeping plugs in through [`UnitSink`].

/// Receives progress events; every method has a no-op default. Called from worker threads.
pub trait Progress: Send + Sync {
    /// The plan is known: how many units (shards) and, when known, how many bytes.
    fn plan(&self, _units: u64, _bytes: Option<u64>) {}
    /// A unit started (or restarted after a failure).
    fn unit_started(&self, _name: &str) {}
    /// `n` more bytes were transferred.
    fn bytes(&self, _n: u64) {}
    /// An attempt failed and will be retried after a pause.
    fn retrying(&self, _name: &str, _attempt: u32, _error: &str) {}
    /// A unit finished.
    fn unit_done(&self, _name: &str, _bytes: u64) {}
    /// A free-form informational message.
    fn message(&self, _msg: &str) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// One finished, durable unit of a backup: a file written completely under its final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitDone {
    /// Unit key: the object name relative to the backup location (e.g. `TS.s3.tar.gz`).
    pub key: String,
    /// The source shard, or `None` for the meta file.
    pub shard_id: Option<u64>,
    /// Hex SHA-256 of the stored file.
    pub sha256: String,
    /// Stored file size in bytes.
    pub bytes: u64,
    /// Size as the manifest defines it (uncompressed tar length or raw meta blob length).
    pub manifest_size: u64,
}

/// Told about every unit as soon as it is complete (the seam for resumable checkpoints).
pub trait UnitSink: Send + Sync {
    /// Records a finished unit.
    fn unit_done(&self, unit: &UnitDone);
    /// Restore: the server imported the metastore of `manifest` and returned this map.
    fn meta_imported(&self, _manifest: &str, _id_map: &[(u64, u64)]) {}
    /// Restore: a metastore import is about to be sent; it is sent once this resolves `Ok`
    /// (a checkpoint makes the intent durable first, so that a run killed before
    /// [`UnitSink::meta_imported`] is recorded can recover the import's result).
    fn import_intent(
        &self,
        _intent: &crate::reimport::ImportIntent,
    ) -> futures::future::BoxFuture<'_, crate::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Restore: the shard with backup ID `source` was uploaded as `target`.
    fn shard_restored(&self, _source: u64, _target: u64) {}
}

/// A [`UnitSink`] that records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoUnitSink;

impl UnitSink for NoUnitSink {
    fn unit_done(&self, _unit: &UnitDone) {}
}
