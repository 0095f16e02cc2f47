//! `backup`: the portable layout written by parallel, streamed, verified shard downloads.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use chrono::{DateTime, Utc};
use object_store::buffered::BufWriter as ObjectWriter;
use snapshotd_checkpoint::{EncryptingWriter, MasterKey, encrypted_name};
use tokio::io::AsyncWriteExt;
use tokio_util::io::SyncIoBridge;

use crate::compress::{CompressionMode, GzSettings, ParallelGz};
use crate::conn::{Client, ShardPath, ShardStream, Window};
use crate::error::{ClientError, Result};
use crate::hashio::{HashingWriter, MeteredReader, sha256_of};
use crate::layout;
use crate::limiter::RateLimiter;
use crate::offthread::OffThread;
use crate::progress::{Progress, UnitDone, UnitSink};
use crate::storage::Storage;
use crate::tarcheck::{TarCheckError, copy_validated};

mod phases;

/// Bytes read from the socket per call; also the gzip/hash output buffer.
const IO_BUFFER: usize = 256 * 1024;

/// What to back up and how.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Only this database ("all" when `None`).
    pub db: Option<String>,
    /// Only this retention policy (needs `db`).
    pub rp: Option<String>,
    /// Only this shard (needs `db` and `rp`).
    pub shard: Option<u64>,
    /// Which files of each shard.
    pub window: Window,
    /// Shards downloaded at once (≥ 1).
    pub jobs: usize,
    /// Cap on the combined download rate, bytes per second.
    pub rate_limit: Option<u64>,
    /// gzip level 0–9.
    pub gzip_level: u32,
    /// Which shard chunks are deflated (`Auto`: those that shrink by a useful margin).
    pub compression: CompressionMode,
    /// Retries of a failed shard.
    pub retry: RetryPolicy,
    /// Start time naming the files (`TS`); now when `None`.
    pub started: Option<DateTime<Utc>>,
    /// Continue an interrupted run instead of starting a new one.
    pub resume: Option<ResumeFrom>,
    /// Encrypt every stored file as `<name>.enc` (AES-256-GCM, context = the plain name).
    /// The manifest stays plain and lists plain names with the plain files' sha256 and size.
    pub key: Option<MasterKey>,
}

/// What an interrupted run left behind: its `TS` and the shards it finished.
#[derive(Debug, Clone, Default)]
pub struct ResumeFrom {
    /// The interrupted run's start time; reused so that every file name matches.
    pub started: DateTime<Utc>,
    /// Shards recorded as complete, by shard id. Each is skipped when its stored file still
    /// has the recorded name and size; otherwise it is downloaded again into a fresh file.
    pub skip_shards: BTreeMap<u64, UnitDone>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            db: None,
            rp: None,
            shard: None,
            window: Window::Full,
            jobs: 1,
            rate_limit: None,
            gzip_level: 1,
            compression: CompressionMode::Auto,
            retry: RetryPolicy::default(),
            started: None,
            resume: None,
            key: None,
        }
    }
}

/// How often and how patiently a failed shard is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per shard (≥ 1).
    pub attempts: u32,
    /// Pause after the first failure; doubled after each further one.
    pub base_delay: Duration,
    /// Longest pause.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Counters shared with the caller, readable whether the run succeeds or fails.
#[derive(Debug, Default)]
pub struct TransferStats {
    /// Bytes received from the server in this run (all attempts).
    pub bytes_transferred: AtomicU64,
    /// Bytes of completed files written to the destination in this run.
    pub bytes_written: AtomicU64,
    /// Shards planned.
    pub shards_total: AtomicU64,
    /// Shards completed.
    pub shards_done: AtomicU64,
    /// Shards skipped because a previous run already holds them.
    pub shards_skipped: AtomicU64,
}

impl TransferStats {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Asked right before a finished file becomes visible under its final name (and before the
/// manifest): an error aborts that file and stops the run. The seam for a destination lock:
/// a holder that slept past its lease must not publish anything once it was taken over.
pub trait CommitGate: Send + Sync {
    /// `Ok` to publish, `Err(reason)` to abort.
    fn check(&self) -> futures::future::BoxFuture<'_, std::result::Result<(), String>>;
}

/// A [`CommitGate`] that always allows.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenGate;

impl CommitGate for OpenGate {
    fn check(&self) -> futures::future::BoxFuture<'_, std::result::Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Observers of a run.
#[derive(Clone)]
pub struct Hooks {
    /// Checked before each file is published.
    pub gate: Arc<dyn CommitGate>,
    /// Progress display.
    pub progress: Arc<dyn Progress>,
    /// Completion hook per finished file.
    pub units: Arc<dyn UnitSink>,
    /// Counters.
    pub stats: Arc<TransferStats>,
    /// Cancel it to stop the run (e.g. on Ctrl-C or a lost lease): transfers stop at their next
    /// read or write, nothing appears under a final name, and the run fails with
    /// [`ClientError::Cancelled`]. The run cancels it itself when a unit fails for good.
    pub cancel: CancellationToken,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            gate: Arc::new(OpenGate),
            progress: Arc::new(crate::progress::NoProgress),
            units: Arc::new(crate::progress::NoUnitSink),
            stats: Arc::new(TransferStats::default()),
            cancel: CancellationToken::new(),
        }
    }
}

/// The result of a complete backup.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// The `TS` prefix of every file.
    pub timestamp: String,
    /// Name of the manifest written last.
    pub manifest: String,
    /// The meta file and every shard file, in manifest order.
    pub files: Vec<UnitDone>,
}

/// Runs a portable backup into `dest`. The manifest is written only after every file is
/// complete and hashed; on failure no manifest exists and the error names the shard.
pub async fn backup(
    client: &Client,
    dest: &Storage,
    opts: &BackupOptions,
    hooks: &Hooks,
) -> Result<BackupSummary> {
    validate(opts)?;
    // The whole metastore, as influx always fetches it, then the shard listing.
    let blob = client.metastore_backup().await?;
    TransferStats::add(&hooks.stats.bytes_transferred, blob.len() as u64);
    let shards = list_shards(client, opts).await?;
    hooks
        .stats
        .shards_total
        .store(shards.len() as u64, Ordering::Relaxed);
    hooks.progress.plan(shards.len() as u64, None);

    let claim = phases::claim_meta(dest, opts, hooks, &blob).await?;
    let kept = phases::kept_shards(dest, opts, hooks, &claim.ts, &shards).await?;
    let units = phases::fetch_shards(client, dest, opts, hooks, &claim.ts, &shards, kept).await?;
    let manifest = phases::publish_manifest(dest, opts, hooks, &claim, &shards, &units).await?;

    let mut files = vec![claim.meta];
    files.extend(units);
    Ok(BackupSummary {
        timestamp: claim.ts,
        manifest,
        files,
    })
}

/// Asks the commit gate; a refusal stops the run.
async fn gate(hooks: &Hooks, what: &str) -> Result<()> {
    hooks.gate.check().await.map_err(|reason| {
        hooks.cancel.cancel();
        ClientError::NotPublished {
            what: what.to_string(),
            reason,
        }
    })
}

/// Whether a recorded shard file is still stored intact: plain files by size and sha256;
/// encrypted ones are decrypted and hashed, and a file that fails authentication is an error
/// (tampering is reported, never silently redone).
async fn still_stored(dest: &Storage, key: Option<&MasterKey>, done: &UnitDone) -> Result<bool> {
    let Some(key) = key else {
        return Ok(dest.size(&done.key).await? == Some(done.bytes)
            && stored_sha256(dest, &done.key).await? == done.sha256);
    };
    let stored = encrypted_name(&done.key);
    if dest.size(&stored).await?.is_none() {
        return Ok(false);
    }
    let reader = dest.blocking_reader(&stored).await?;
    let (key, context) = (key.clone(), done.key.clone());
    let (sha, len) = tokio::task::spawn_blocking(move || {
        sha256_of(snapshotd_checkpoint::DecryptingReader::new(
            reader, &key, &context,
        )?)
    })
    .await
    .map_err(|e| ClientError::worker(format!("checksum of {}", dest.path_of(&stored)), e))?
    .map_err(|e| ClientError::Integrity {
        file: dest.path_of(&stored),
        detail: format!("{e} (the file was modified or damaged; delete it to download it again)"),
    })?;
    Ok(sha == done.sha256 && len == done.bytes)
}

/// Hex SHA-256 of a stored file, streamed.
async fn stored_sha256(dest: &Storage, name: &str) -> Result<String> {
    let reader = dest.blocking_reader(name).await?;
    let (sha, _) = tokio::task::spawn_blocking(move || sha256_of(reader))
        .await
        .map_err(|e| ClientError::worker(format!("checksum of {}", dest.path_of(name)), e))?
        .map_err(|e| ClientError::io(format!("{}: read", dest.path_of(name)), e))?;
    Ok(sha)
}

/// Refuses contradictory selections before anything is contacted or created.
pub fn validate(opts: &BackupOptions) -> Result<()> {
    if opts.rp.is_some() && opts.db.is_none() {
        return Err(ClientError::RpNeedsDb);
    }
    if opts.shard.is_some() && (opts.rp.is_none() || opts.db.is_none()) {
        return Err(ClientError::ShardNeedsDbRp);
    }
    Ok(())
}

async fn list_shards(client: &Client, opts: &BackupOptions) -> Result<Vec<ShardPath>> {
    match (&opts.db, &opts.rp, opts.shard) {
        (Some(db), Some(rp), Some(id)) => Ok(vec![ShardPath {
            db: db.clone(),
            rp: rp.clone(),
            id,
        }]),
        (Some(db), Some(rp), None) => client.retention_policy_info(db, rp).await,
        (Some(db), None, _) => client.database_info(db).await,
        (None, _, _) => client.database_info("").await,
    }
}

struct ShardCtx {
    client: Client,
    dest: Storage,
    ts: String,
    window: Window,
    level: u32,
    compression: CompressionMode,
    retry: RetryPolicy,
    limiter: Option<Arc<RateLimiter>>,
    hooks: Hooks,
    cancel: CancellationToken,
    key: Option<MasterKey>,
}

async fn fetch_with_retry(ctx: &ShardCtx, shard: &ShardPath) -> Result<UnitDone> {
    let name = layout::shard_name(&ctx.ts, shard.id);
    let attempts = ctx.retry.attempts.max(1);
    let mut last = None;
    for attempt in 1..=attempts {
        if ctx.cancel.is_cancelled() {
            return Err(ClientError::Cancelled);
        }
        ctx.hooks.progress.unit_started(&name);
        match fetch_once(ctx, shard, &name).await {
            Ok(unit) => {
                TransferStats::add(&ctx.hooks.stats.bytes_written, unit.bytes);
                TransferStats::add(&ctx.hooks.stats.shards_done, 1);
                ctx.hooks.units.unit_done(&unit);
                ctx.hooks.progress.unit_done(&name, unit.manifest_size);
                return Ok(unit);
            }
            Err(e) => {
                if ctx.cancel.is_cancelled() {
                    return Err(ClientError::Cancelled);
                }
                tracing::warn!(shard = %shard, attempt, error = %e, "shard download failed");
                if attempt < attempts {
                    ctx.hooks.progress.retrying(&name, attempt, &e.to_string());
                    tokio::time::sleep(ctx.retry.delay(attempt)).await;
                }
                last = Some(e);
            }
        }
    }
    Err(ClientError::ShardFailed {
        shard_id: shard.id,
        db: shard.db.clone(),
        rp: shard.rp.clone(),
        attempts,
        source: Box::new(last.unwrap_or(ClientError::Cancelled)),
    })
}

/// One attempt: a fresh connection and a fresh destination object (never appended to).
async fn fetch_once(ctx: &ShardCtx, shard: &ShardPath, name: &str) -> Result<UnitDone> {
    let conn = ctx.client.shard_stream(shard, ctx.window).await?;
    let stored = match ctx.key {
        Some(_) => encrypted_name(name),
        None => name.to_string(),
    };
    let writer = ctx.dest.writer(&stored);
    let job = PipeJob {
        gate: Arc::clone(&ctx.hooks.gate),
        key: ctx.key.clone(),
        context: name.to_string(),
        what: format!("shard {shard}"),
        gz: GzSettings {
            filename: Some(layout::gzip_inner_name(&ctx.ts, shard.id).into_bytes()),
            ..GzSettings::new(ctx.compression, ctx.level)
        },
        limiter: ctx.limiter.clone(),
        progress: Arc::clone(&ctx.hooks.progress),
        cancel: ctx.cancel.clone(),
        stats: Arc::clone(&ctx.hooks.stats),
    };
    let handle = tokio::runtime::Handle::current();
    let out = tokio::task::spawn_blocking(move || job.run(conn, writer, handle))
        .await
        .map_err(|e| {
            let task = format!("download shard {shard} to {}", ctx.dest.path_of(&stored));
            ClientError::worker(task, e)
        })??;
    Ok(UnitDone {
        key: name.to_string(),
        shard_id: Some(shard.id),
        sha256: out.sha256,
        bytes: out.stored_bytes,
        manifest_size: out.tar_bytes,
    })
}

struct PipeJob {
    gate: Arc<dyn CommitGate>,
    key: Option<MasterKey>,
    context: String,
    what: String,
    gz: GzSettings,
    limiter: Option<Arc<RateLimiter>>,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
    stats: Arc<TransferStats>,
}

struct PipeOut {
    tar_bytes: u64,
    stored_bytes: u64,
    sha256: String,
}

impl PipeJob {
    /// socket → meter → tar check ─┬→ gzip ─(writer thread)→ sha256 → object writer
    fn run(
        self,
        conn: ShardStream,
        writer: ObjectWriter,
        handle: tokio::runtime::Handle,
    ) -> Result<PipeOut> {
        let src = SyncIoBridge::new_with_handle(conn, handle.clone());
        let metered = MeteredReader::new(
            src,
            self.limiter.clone(),
            Arc::clone(&self.progress),
            self.cancel.clone(),
        );
        let mut src = BufReader::with_capacity(IO_BUFFER, metered);
        let sink = SyncIoBridge::new_with_handle(writer, handle.clone());
        let bufw = std::io::BufWriter::with_capacity(IO_BUFFER, sink);
        let out = match &self.key {
            None => Out::Plain(bufw),
            Some(k) => Out::Enc(
                EncryptingWriter::new(bufw, k, &self.context)
                    .map_err(|e| ClientError::io(format!("{}: encrypt", self.what), e))?,
            ),
        };
        let hashing = OffThread::new(HashingWriter::new(out))
            .map_err(|e| ClientError::io(format!("{}: start its writer", self.what), e))?;
        let mut gz = ParallelGz::new(hashing, self.gz.clone());

        let checked = copy_validated(&mut src, &mut gz);
        let received = src.get_ref().count();
        TransferStats::add(&self.stats.bytes_transferred, received);
        match checked {
            Ok(stats) => {
                let (finished, z) = gz
                    .finish()
                    .map_err(|e| ClientError::io(format!("{}: compress", self.what), e))?;
                tracing::debug!(shard = %self.what, deflated = z.deflated_members, stored = z.stored_members, "gzip members");
                let hashing = finished
                    .finish()
                    .map_err(|e| ClientError::io(format!("{}: write", self.what), e))?;
                let (out, sha256, stored_bytes) = hashing.finish();
                let bufw = out
                    .finish()
                    .map_err(|e| ClientError::io(format!("{}: encrypt", self.what), e))?;
                let mut sink = bufw.into_inner().map_err(|e| {
                    ClientError::io(format!("{}: write", self.what), e.into_error())
                })?;
                sink.flush()
                    .map_err(|e| ClientError::io(format!("{}: write", self.what), e))?;
                let mut writer = sink.into_inner();
                if let Err(reason) = handle.block_on(self.gate.check()) {
                    self.cancel.cancel();
                    if let Err(e) = handle.block_on(writer.abort()) {
                        tracing::debug!(error = %e, "aborting an unpublished upload failed");
                    }
                    return Err(ClientError::NotPublished {
                        what: self.what,
                        reason,
                    });
                }
                handle
                    .block_on(writer.shutdown())
                    .map_err(|e| ClientError::io(format!("{}: finish file", self.what), e))?;
                Ok(PipeOut {
                    tar_bytes: stats.bytes,
                    stored_bytes,
                    sha256,
                })
            }
            Err(e) => {
                abort(gz, &handle);
                Err(match e {
                    TarCheckError::Empty => ClientError::NoData { what: self.what },
                    TarCheckError::Incomplete { detail, .. } => ClientError::TruncatedTar {
                        what: self.what,
                        bytes: received,
                        detail,
                    },
                    TarCheckError::Io(e) => ClientError::io(self.what, e),
                })
            }
        }
    }
}

/// The buffered object writer a shard is written to.
type ObjSink = std::io::BufWriter<SyncIoBridge<ObjectWriter>>;

/// Plain or encrypted output of a shard pipeline (after gzip and hashing).
enum Out {
    Plain(ObjSink),
    Enc(EncryptingWriter<ObjSink>),
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Out::Plain(w) => w.write(buf),
            Out::Enc(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::Plain(w) => w.flush(),
            Out::Enc(w) => w.flush(),
        }
    }
}

impl Out {
    /// Seals the last chunk (encrypted) and returns the object writer's buffer.
    fn finish(self) -> std::io::Result<ObjSink> {
        match self {
            Out::Plain(w) => Ok(w),
            Out::Enc(w) => w.finish(),
        }
    }
}

/// Drops a failed attempt's output so that nothing appears under the final name.
fn abort(gz: ParallelGz<OffThread<HashingWriter<Out>>>, handle: &tokio::runtime::Handle) {
    let Some(threaded) = gz.abandon() else { return };
    let Ok(hashing) = threaded.finish() else {
        return;
    };
    let (out, _, _) = hashing.finish();
    let Ok(bufw) = out.finish() else { return };
    let Ok(sink) = bufw.into_inner() else { return };
    let mut writer = sink.into_inner();
    if let Err(e) = handle.block_on(writer.abort()) {
        tracing::debug!(error = %e, "aborting a partial upload failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(3), Duration::from_millis(350));
        assert_eq!(p.delay(40), Duration::from_millis(350));
    }

    #[test]
    fn shard_needs_db_and_rp() {
        let o = BackupOptions {
            shard: Some(3),
            rp: Some("autogen".into()),
            ..Default::default()
        };
        assert!(validate(&o).is_err());
        let o = BackupOptions {
            rp: Some("autogen".into()),
            ..Default::default()
        };
        assert!(validate(&o).is_err());
    }
}
