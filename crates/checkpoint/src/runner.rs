//! The checkpoint session: lock, meta, fence, resume data, and the background flusher.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::JobConfig;
use crate::error::{Error, Result, StopCause};
use crate::layout;
use crate::load::{self, Resume, context, put_create};
use crate::lock::{LockGuard, LockOptions};
use crate::record::{
    DataBody, FORMAT, FenceBody, MAX_KEY_LEN, MAX_PAYLOAD_LEN, MetaBody, UnitRecord,
};
use snapshotd_dest::Destination;
use snapshotd_sealed::MasterKey;
use snapshotd_sealed::seal;

/// Name of the setting that [`Checkpoint::open`] adds to the job config for the key id.
pub const KEY_ID_SETTING: &str = "encryption.key_id";

/// How a [`Checkpoint`] behaves.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// Settings a resume must match (the key id is added automatically).
    pub config: JobConfig,
    /// Encrypts and authenticates record and fence files when set.
    pub key: Option<MasterKey>,
    /// Background flush period (default 5 s).
    pub flush_interval: Duration,
    /// Flush early once this many records are buffered (default 4096).
    pub max_buffered: usize,
    /// Lock tuning.
    pub lock: LockOptions,
    /// Refuse to open when any checkpoint object fails its checksum or tag.
    pub strict: bool,
    /// On open, merge the earlier record files into one when at least this many were
    /// read (0 = never; default 32). Bounds the cost of later resumes.
    pub compact_after_files: usize,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        Self {
            config: JobConfig::new(),
            key: None,
            flush_interval: Duration::from_secs(5),
            max_buffered: 4096,
            lock: LockOptions::default(),
            strict: false,
            compact_after_files: 32,
        }
    }
}

/// Totals of a finished session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Record files written.
    pub files: u64,
    /// Records written.
    pub records: u64,
    /// Bytes written (sealed).
    pub bytes: u64,
}

enum Cmd {
    Record(UnitRecord),
    Flush(oneshot::Sender<Result<()>>),
}

/// A running checkpointed job holding the destination lock. See the crate docs.
pub struct Checkpoint {
    dest: Destination,
    job_id: String,
    lock: Arc<LockGuard>,
    resume: Resume,
    tx: Option<mpsc::UnboundedSender<Cmd>>,
    task: Option<JoinHandle<Result<FlushStats>>>,
    sticky: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("dest", &self.dest)
            .field("job_id", &self.job_id)
            .field("epoch", &self.lock.epoch())
            .finish()
    }
}

impl Checkpoint {
    /// Takes the lock, checks or creates the meta (refusing a config mismatch), writes
    /// this epoch's fence, loads what earlier runs finished and starts the flusher.
    pub async fn open(dest: &Destination, mut opts: CheckpointOptions) -> Result<Self> {
        let key_id = opts
            .key
            .as_ref()
            .map_or_else(|| "none".to_string(), MasterKey::key_id);
        opts.config.settings.insert(KEY_ID_SETTING.into(), key_id);
        let fence_names = load::list_names(dest, layout::FENCES).await?;
        let min_epoch = fence_names
            .iter()
            .filter_map(|n| layout::parse_fence(n))
            .max()
            .unwrap_or(0)
            + 1;
        let lock = LockGuard::acquire(dest, opts.lock.clone(), min_epoch).await?;
        match Self::prepare(dest, &opts, &lock).await {
            Ok((job_id, resume, seq)) => Ok(Self::start(dest, opts, lock, job_id, resume, seq)),
            Err(e) => {
                if let Err(re) = lock.release().await {
                    tracing::warn!(error = %re, "releasing lock after failed open");
                }
                Err(e)
            }
        }
    }

    /// The job's meta object: read, or created for a new job; its config must match ours.
    async fn job_meta(dest: &Destination, opts: &CheckpointOptions) -> Result<MetaBody> {
        let meta = match load::read_meta(dest).await? {
            Some(m) => m,
            None => {
                let fresh = MetaBody {
                    format: FORMAT,
                    kind: "meta".into(),
                    job_id: uuid::Uuid::new_v4().to_string(),
                    created: opts.lock.clock.now(),
                    config: opts.config.clone(),
                    config_hash: opts.config.hash(),
                };
                if load::create_meta(dest, &fresh).await? {
                    fresh
                } else {
                    load::read_meta(dest).await?.ok_or_else(|| Error::Corrupt {
                        path: dest.path(layout::META).to_string(),
                        reason: "meta vanished while opening".into(),
                    })?
                }
            }
        };
        if meta.config_hash != opts.config.hash() {
            return Err(Error::ConfigMismatch {
                dest: dest.to_string(),
                differences: meta.config.differences(&opts.config),
            });
        }
        Ok(meta)
    }

    /// Seals `body` and creates object `rel` while we still hold the lock; an object that
    /// already exists means another holder has our epoch ([`Error::Deposed`]).
    async fn write_once(
        dest: &Destination,
        lock: &LockGuard,
        key: Option<&MasterKey>,
        job_id: &str,
        rel: &str,
        body: &[u8],
        what: &str,
    ) -> Result<()> {
        let sealed = seal(key, &context(job_id, rel), body)?;
        lock.check().await?;
        if !put_create(dest, rel, sealed).await? {
            return Err(Error::Deposed {
                dest: dest.to_string(),
                epoch: lock.epoch(),
                reason: format!("{what} {rel} already exists: another holder has this epoch"),
            });
        }
        Ok(())
    }

    async fn prepare(
        dest: &Destination,
        opts: &CheckpointOptions,
        lock: &LockGuard,
    ) -> Result<(String, Resume, u64)> {
        let meta = Self::job_meta(dest, opts).await?;
        let key = opts.key.as_ref();
        let plan = load::plan(dest, key, &meta.job_id).await?;
        let resume = load::read_records(dest, key, &meta.job_id, plan).await?;
        if opts.strict
            && let Some(bad) = resume.rejected.iter().find(|r| r.is_integrity_failure())
        {
            return Err(Error::Corrupt {
                path: dest.path(&bad.name).to_string(),
                reason: bad.reason.to_string(),
            });
        }
        let epoch = lock.epoch();
        // Compaction: merge many small files into this epoch's first record file, written
        // *before* our fence (without the fence it is not trusted), so the fence need not
        // list them and the next resume reads one file.
        let compact =
            opts.compact_after_files > 0 && resume.merged.len() >= opts.compact_after_files;
        let mut first_seq = 0;
        if compact {
            let body = DataBody {
                format: FORMAT,
                kind: "data".into(),
                job_id: meta.job_id.clone(),
                epoch,
                seq: 1,
                written: opts.lock.clock.now(),
                records: resume.records.values().cloned().collect(),
            };
            let rel = layout::data(epoch, 1);
            let body = Error::json("data", &body)?;
            Self::write_once(dest, lock, key, &meta.job_id, &rel, &body, "record file").await?;
            first_seq = 1;
        }
        let fence = FenceBody {
            format: FORMAT,
            kind: "fence".into(),
            job_id: meta.job_id.clone(),
            epoch,
            owner: lock.info().owner,
            written: opts.lock.clock.now(),
            accepted: if compact {
                Vec::new()
            } else {
                resume.merged.clone()
            },
        };
        let rel = layout::fence(epoch);
        let body = Error::json("fence", &fence)?;
        Self::write_once(dest, lock, key, &meta.job_id, &rel, &body, "fence").await?;
        if compact {
            for name in &resume.merged {
                if let Err(e) = delete(dest, &format!("{}/{name}", layout::DATA)).await {
                    tracing::warn!(error = %e, "removing a compacted record file");
                }
            }
        }
        Ok((meta.job_id, resume, first_seq))
    }

    fn start(
        dest: &Destination,
        opts: CheckpointOptions,
        lock: LockGuard,
        job_id: String,
        resume: Resume,
        first_seq: u64,
    ) -> Self {
        let lock = Arc::new(lock);
        let sticky = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::unbounded_channel();
        let flusher = Flusher {
            dest: dest.clone(),
            job_id: job_id.clone(),
            key: opts.key,
            lock: lock.clone(),
            clock: opts.lock.clock.clone(),
            buf: Vec::new(),
            seq: first_seq,
            stats: FlushStats::default(),
            sticky: sticky.clone(),
        };
        let task = tokio::spawn(flusher.run(rx, opts.flush_interval, opts.max_buffered.max(1)));
        Self {
            dest: dest.clone(),
            job_id,
            lock,
            resume,
            tx: Some(tx),
            task: Some(task),
            sticky,
        }
    }

    /// What earlier runs finished (trusted records) and which objects were ignored.
    pub fn resume(&self) -> &Resume {
        &self.resume
    }

    /// The record of `key` if an earlier run finished that unit.
    pub fn done(&self, key: &str) -> Option<&UnitRecord> {
        self.resume.get(key)
    }

    /// The job id stored in the checkpoint meta.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// Our fencing epoch.
    pub fn epoch(&self) -> u64 {
        self.lock.epoch()
    }

    /// The lock guard (for inspection, or to simulate a paused holder in tests).
    pub fn lock(&self) -> &LockGuard {
        &self.lock
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.dest
    }

    fn stopped(&self) -> Error {
        if let Some(e) = self.lock.failure() {
            return e;
        }
        let s = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
        Error::Stopped(match s.as_ref() {
            Some(first_error) => StopCause::FlushFailed {
                first_error: first_error.clone(),
            },
            None => StopCause::Finished,
        })
    }

    /// Queues a finished unit; it is written at the next flush.
    pub async fn record(&self, rec: UnitRecord) -> Result<()> {
        self.record_now(rec)
    }

    /// Like [`Checkpoint::record`], without awaiting (for synchronous callbacks). Never
    /// blocks: the queue is unbounded and drained by every flush.
    pub fn record_now(&self, rec: UnitRecord) -> Result<()> {
        validate(&rec)?;
        self.health()?;
        let tx = self.tx.as_ref().ok_or_else(|| self.stopped())?;
        tx.send(Cmd::Record(rec)).map_err(|_| self.stopped())
    }

    /// `Ok` while the lock is held and flushing works; otherwise the reason to stop
    /// (e.g. [`Error::Deposed`]). Cheap: no I/O. Poll it between units.
    pub fn health(&self) -> Result<()> {
        if let Some(e) = self.lock.failure() {
            return Err(e);
        }
        let s = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
        match s.as_ref() {
            Some(msg) => Err(Error::Stopped(StopCause::FlushFailed {
                first_error: msg.clone(),
            })),
            None => Ok(()),
        }
    }

    /// Writes everything queued so far and waits for it.
    pub async fn flush(&self) -> Result<()> {
        let tx = self.tx.as_ref().ok_or_else(|| self.stopped())?;
        let (ack, done) = oneshot::channel();
        tx.send(Cmd::Flush(ack)).map_err(|_| self.stopped())?;
        done.await.map_err(|_| self.stopped())?
    }

    /// Final flush, then releases the lock. Returns the flush totals, or the first error
    /// (e.g. [`Error::Deposed`] when another holder fenced us out).
    pub async fn finish(mut self) -> Result<FlushStats> {
        self.tx.take();
        let stats = match self.task.take() {
            Some(t) => t.await.map_err(Error::task_failed("flusher"))?,
            None => Err(self.stopped()),
        };
        match stats {
            Ok(s) => {
                self.lock.release().await?;
                Ok(s)
            }
            Err(e) => {
                self.lock.stop_refreshing();
                Err(e)
            }
        }
    }

    /// Final flush, then deletes every checkpoint object except the lock, then releases
    /// the lock. For jobs that completed and need no resume information any more.
    pub async fn finish_and_remove(mut self) -> Result<FlushStats> {
        self.tx.take();
        let stats = match self.task.take() {
            Some(t) => t.await.map_err(Error::task_failed("flusher"))??,
            None => return Err(self.stopped()),
        };
        self.lock.check().await?;
        for dir in [layout::DATA, layout::FENCES] {
            for name in load::list_names(&self.dest, dir).await? {
                delete(&self.dest, &format!("{dir}/{name}")).await?;
            }
        }
        delete(&self.dest, layout::META).await?;
        self.lock.release().await?;
        Ok(stats)
    }
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        // Not finished: stop refreshing so the lease runs out; queued records are lost.
        if let Some(t) = self.task.take() {
            t.abort();
            self.lock.stop_refreshing();
        }
    }
}

async fn delete(dest: &Destination, rel: &str) -> Result<()> {
    use object_store::ObjectStoreExt;
    let p = dest.path(rel);
    match dest.store().delete(&p).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(Error::storage("delete", &p, e)),
    }
}

fn validate(rec: &UnitRecord) -> Result<()> {
    let bad = |reason: String| Error::InvalidRecord {
        key: rec.key.chars().take(80).collect(),
        reason,
    };
    if rec.key.is_empty() || rec.key.len() > MAX_KEY_LEN {
        return Err(bad(format!("key must be 1..={MAX_KEY_LEN} bytes")));
    }
    if !rec.payload.is_null() {
        let len = serde_json::to_vec(&rec.payload)
            .map_err(|e| bad(e.to_string()))?
            .len();
        if len > MAX_PAYLOAD_LEN {
            return Err(bad(format!(
                "payload of {len} bytes exceeds {MAX_PAYLOAD_LEN}"
            )));
        }
    }
    Ok(())
}

struct Flusher {
    dest: Destination,
    job_id: String,
    key: Option<MasterKey>,
    lock: Arc<LockGuard>,
    clock: Arc<dyn crate::clock::Clock>,
    buf: Vec<UnitRecord>,
    seq: u64,
    stats: FlushStats,
    sticky: Arc<Mutex<Option<String>>>,
}

impl Flusher {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Cmd>,
        every: Duration,
        max_buffered: usize,
    ) -> Result<FlushStats> {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Record(r)) => {
                        self.buf.push(r);
                        metrics::gauge!("snapshotd_checkpoint_records_at_risk").set(self.buf.len() as f64);
                        if self.buf.len() >= max_buffered {
                            self.flush_or_stop().await?;
                        }
                    }
                    Some(Cmd::Flush(ack)) => {
                        let r = self.flush_or_stop().await;
                        let failed = r.as_ref().err().map(ToString::to_string);
                        let _ = ack.send(r);
                        if let Some(msg) = failed {
                            return Err(Error::Stopped(StopCause::FlushFailed { first_error: msg }));
                        }
                    }
                    None => {
                        self.flush_or_stop().await?;
                        return Ok(self.stats);
                    }
                },
                _ = tick.tick() => self.flush_or_stop().await?,
            }
        }
    }

    async fn flush_or_stop(&mut self) -> Result<()> {
        let r = self.flush().await;
        if let Err(e) = &r {
            let mut s = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
            s.get_or_insert_with(|| e.to_string());
        }
        r
    }

    async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // Never write once we know (or our clock says) the lease may be gone.
        self.lock.check().await?;
        let epoch = self.lock.epoch();
        let seq = self.seq + 1;
        let rel = layout::data(epoch, seq);
        let body = DataBody {
            format: FORMAT,
            kind: "data".into(),
            job_id: self.job_id.clone(),
            epoch,
            seq,
            written: self.clock.now(),
            records: std::mem::take(&mut self.buf),
        };
        let n = body.records.len() as u64;
        let encoded = Error::json("data", &body);
        let sealed =
            encoded.and_then(|b| Ok(seal(self.key.as_ref(), &context(&self.job_id, &rel), &b)?));
        let written = match sealed {
            Ok(s) => {
                let len = s.len() as u64;
                put_create(&self.dest, &rel, s)
                    .await
                    .map(|created| (created, len))
            }
            Err(e) => Err(e),
        };
        match written {
            Ok((true, len)) => {
                self.seq = seq;
                self.stats.files += 1;
                self.stats.records += n;
                self.stats.bytes += len;
                metrics::counter!("snapshotd_checkpoint_flushes_total").increment(1);
                metrics::counter!("snapshotd_checkpoint_records_total").increment(n);
                metrics::counter!("snapshotd_checkpoint_flush_bytes_total").increment(len);
                metrics::gauge!("snapshotd_checkpoint_records_at_risk").set(0.0);
                Ok(())
            }
            Ok((false, _)) => {
                self.buf = body.records;
                Err(Error::Deposed {
                    dest: self.dest.to_string(),
                    epoch,
                    reason: format!(
                        "record file {rel} already exists: another holder has this epoch"
                    ),
                })
            }
            Err(e) => {
                self.buf = body.records;
                Err(e)
            }
        }
    }
}
