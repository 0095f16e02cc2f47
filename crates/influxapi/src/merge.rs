//! Merge a backup's points into an existing database: one job per shard, `jobs` at once.
//! A shard whose time range is empty on the target is uploaded whole through the
//! snapshotter when that is safe (see `import.rs`); every other shard goes through `/write`,
//! each job holding at most two batches (one being built, one in flight), so memory stays
//! within jobs x 2 x batch. A shard is reported done only after its last batch was
//! acknowledged; a re-run rewrites unfinished shards (same points, same values: writes are
//! idempotent, and the backup's value wins as influx keeps the last write).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::mpsc;

use crate::error::{InfluxApiError, Result, io};
use crate::http::{InfluxHttp, quote_ident};
use crate::line::UnsignedMode;
use crate::series::series_lines;
use crate::shard::{for_each_file, label, unpack};
use crate::source::{Backup, BackupShard};

mod fast;

/// What to do with a shard whose time range already holds data in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictMode {
    /// Write every point (the backup's value wins for points on both sides).
    Merge,
    /// Leave such shards untouched; restore the others.
    Skip,
}

/// Settings of [`merge`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MergeOptions {
    /// Database in the backup.
    pub db: String,
    /// Database written on the target (the backup's name when `None`).
    pub new_db: Option<String>,
    /// Only this retention policy.
    pub rp: Option<String>,
    /// Shards merged at once.
    pub jobs: usize,
    /// Lines per `/write` request.
    pub batch_lines: usize,
    /// Merge or skip shards that overlap existing data.
    pub mode: ConflictMode,
    /// How unsigned values are written.
    pub unsigned: UnsignedMode,
    /// Where shards are unpacked (needs room for the largest `jobs` shards).
    pub tmp_dir: PathBuf,
    /// The target's snapshotter address: shards that ended in the past and whose range holds
    /// no data on the target are uploaded whole there (see `import.rs`) instead of written
    /// point by point. `None`, or an address that does not answer, writes every point.
    pub import_addr: Option<String>,
    /// Called just before a shard is uploaded whole (tests use it to write concurrently).
    pub before_upload: Option<UploadHook>,
}

/// The function of an [`UploadHook`]: target database, RP and shard ID.
pub type UploadFn = dyn Fn(&str, &str, u64) + Send + Sync;

/// Called with the target database, RP and shard ID just before a shard is uploaded whole.
#[derive(Clone)]
pub struct UploadHook(pub Arc<UploadFn>);

impl std::fmt::Debug for UploadHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadHook")
    }
}

impl MergeOptions {
    /// Defaults for `db`: 2 jobs, 5000 lines per batch, merge, the system temp dir.
    pub fn new(db: impl Into<String>) -> Self {
        MergeOptions {
            db: db.into(),
            new_db: None,
            rp: None,
            jobs: 2,
            batch_lines: 5000,
            mode: ConflictMode::Merge,
            unsigned: UnsignedMode::Refuse,
            tmp_dir: std::env::temp_dir(),
            import_addr: None,
            before_upload: None,
        }
    }

    /// The database name on the target.
    pub fn target_db(&self) -> &str {
        self.new_db.as_deref().unwrap_or(&self.db)
    }
}

/// What [`merge`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeReport {
    /// Shards written in this run (uploaded whole or point by point).
    pub merged: Vec<u64>,
    /// Of those, the shards uploaded whole through the snapshotter port.
    pub imported: Vec<u64>,
    /// Shards that were empty on the target but written point by point, and why.
    pub not_uploaded: Vec<(u64, String)>,
    /// Notes for the user (e.g. the snapshotter did not answer, so no shard was uploaded).
    pub notes: Vec<String>,
    /// Shards already done in an earlier run (from the caller's done set).
    pub already_done: Vec<u64>,
    /// Shards left alone by `skip` because the target already has data in their range.
    pub skipped: Vec<u64>,
    /// Field values merged (written through `/write` plus uploaded whole; a line with three
    /// fields counts three).
    pub values: u64,
    /// Of those, the values of the shards uploaded whole.
    pub uploaded_values: u64,
    /// `/write` requests sent.
    pub batches: u64,
    /// Backup runs none of whose archives of the merged shards was read: for each shard a
    /// later run holds it whole (see [`Backup::open_until`]).
    pub superseded_runs: usize,
    /// Archives of the merged shards left out because a later run holds the shard whole.
    pub superseded_archives: usize,
}

/// Called with a shard's backup ID once all its points are acknowledged by the target.
pub type DoneFn = Arc<dyn Fn(u64) -> Result<()> + Send + Sync>;

/// Merges the shards of `opts.db` into `opts.target_db()` (which, with its RPs, must exist:
/// see [`crate::schema::restore_schema`]). Shards in `done` are not touched; `on_done` is
/// called for each shard finished. Stops early when `cancel` is set.
pub async fn merge(
    http: &InfluxHttp,
    backup: &Backup,
    opts: &MergeOptions,
    done: &HashSet<u64>,
    on_done: DoneFn,
    cancel: Arc<AtomicBool>,
) -> Result<MergeReport> {
    let mut report = MergeReport::default();
    (report.superseded_runs, report.superseded_archives) =
        backup.superseded_of(&opts.db, opts.rp.as_deref());
    let mut todo = Vec::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(i64::MAX, |d| d.as_nanos() as i64);
    let import_addr = match &opts.import_addr {
        Some(addr) => match reachable(addr).await {
            Ok(()) => Some(addr.clone()),
            Err(e) => {
                report.notes.push(format!(
                    "the target's snapshotter does not answer ({e}): every shard is written \
                     point by point (give its bind-address to upload empty ranges whole)"
                ));
                None
            }
        },
        None => None,
    };
    for s in backup.shards_of(&opts.db, opts.rp.as_deref()) {
        if done.contains(&s.shard_id) {
            report.already_done.push(s.shard_id);
            continue;
        }
        let wants_check = opts.mode == ConflictMode::Skip || import_addr.is_some();
        let empty = !wants_check || !has_data(http, backup, s, opts).await?;
        if opts.mode == ConflictMode::Skip && !empty {
            report.skipped.push(s.shard_id);
            continue;
        }
        let range = backup.shard_range(s).filter(|r| r.1 < now);
        let import = import_addr
            .clone()
            .filter(|_| empty)
            .and_then(|a| range.map(|r| (a, r)));
        todo.push((s.clone(), import));
    }
    let points = Arc::new(AtomicU64::new(0));
    let batches = Arc::new(AtomicU64::new(0));
    let uploaded = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    let mut queue = todo.into_iter();
    let mut first_err = None;
    loop {
        while set.len() < opts.jobs.max(1) && first_err.is_none() {
            let Some((s, import)) = queue.next() else {
                break;
            };
            let job = ShardJob {
                http: http.clone(),
                opts: opts.clone(),
                points: points.clone(),
                batches: batches.clone(),
                uploaded: uploaded.clone(),
                cancel: cancel.clone(),
            };
            set.spawn(async move { job.run(s, import).await });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        match joined {
            Ok(Ok((id, upload))) => {
                on_done(id)?;
                report.merged.push(id);
                match upload {
                    Some(Ok(())) => report.imported.push(id),
                    Some(Err(why)) => report.not_uploaded.push((id, why)),
                    None => {}
                }
            }
            Ok(Err(e)) => {
                cancel.store(true, Ordering::Relaxed);
                first_err.get_or_insert(e);
            }
            Err(source) => {
                cancel.store(true, Ordering::Relaxed);
                let task = "merge job".to_string();
                first_err.get_or_insert(InfluxApiError::Worker { task, source });
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    report.uploaded_values = uploaded.load(Ordering::Relaxed);
    report.values = points.load(Ordering::Relaxed) + report.uploaded_values;
    report.batches = batches.load(Ordering::Relaxed);
    report.merged.sort_unstable();
    report.imported.sort_unstable();
    report.not_uploaded.sort_unstable();
    Ok(report)
}

/// Whether a TCP connection to `addr` can be opened.
async fn reachable(addr: &str) -> Result<()> {
    let a = addr.to_string();
    tokio::task::spawn_blocking(move || crate::import::connect(&a, "probe the snapshotter"))
        .await
        .map_err(|source| InfluxApiError::Worker {
            task: format!("probe {addr}"),
            source,
        })?
        .map(drop)
}

/// Whether the target already has a point in the shard group's time range of `s`.
async fn has_data(
    http: &InfluxHttp,
    backup: &Backup,
    s: &BackupShard,
    opts: &MergeOptions,
) -> Result<bool> {
    let Some((start, end)) = backup.shard_range(s) else {
        return Ok(false);
    };
    let q = format!(
        "SELECT * FROM {}.{}./.*/ WHERE time >= {start} AND time < {end} LIMIT 1",
        quote_ident(opts.target_db()),
        quote_ident(&s.policy)
    );
    let what = format!("look for existing data in the range of {}", label(s));
    let series = http.query(Some(opts.target_db()), &q, &what).await?;
    Ok(series.iter().any(|s| !s.values.is_empty()))
}

struct ShardJob {
    http: InfluxHttp,
    opts: MergeOptions,
    points: Arc<AtomicU64>,
    batches: Arc<AtomicU64>,
    uploaded: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
}

/// A shard's upload outcome: `None` not tried, `Some(Ok)` uploaded whole, `Some(Err(why))`
/// written point by point instead.
type Upload = Option<std::result::Result<(), String>>;

impl ShardJob {
    /// Uploads the shard whole when `import` (snapshotter address and the shard's range) is
    /// given and that is safe, else decodes it on a blocking thread and writes its batches
    /// as they come. Returns the shard ID and the upload's outcome.
    async fn run(
        self,
        s: BackupShard,
        import: Option<(String, (i64, i64))>,
    ) -> Result<(u64, Upload)> {
        let mut upload = None;
        if let Some((addr, range)) = import {
            let r = self.try_import(&s, &addr, range).await?;
            if r.is_ok() {
                return Ok((s.shard_id, Some(r)));
            }
            upload = Some(r);
        }
        let (tx, mut rx) = mpsc::channel::<(Vec<u8>, u64)>(1);
        let (opts, cancel, shard) = (self.opts.clone(), self.cancel.clone(), s.clone());
        let producer = tokio::task::spawn_blocking(move || produce(&shard, &opts, &cancel, &tx));
        let what = format!("write {} into {}", label(&s), self.opts.target_db());
        let mut write_err = None;
        while let Some((gz, n)) = rx.recv().await {
            if let Err(e) = self.write_retrying(&s.policy, gz.into(), &what).await {
                self.cancel.store(true, Ordering::Relaxed);
                write_err = Some(e);
                break;
            }
            self.points.fetch_add(n, Ordering::Relaxed);
            self.batches.fetch_add(1, Ordering::Relaxed);
        }
        drop(rx);
        let produced = producer.await.map_err(|source| InfluxApiError::Worker {
            task: format!("{}: decoder", label(&s)),
            source,
        })?;
        if let Some(e) = write_err {
            return Err(e);
        }
        produced?;
        Ok((s.shard_id, upload))
    }
}

impl ShardJob {
    /// One `/write`, retried (up to 3 times, backing off) when the transport failed or the
    /// target answered 5xx; a 4xx (bad data, partial write, auth) fails at once.
    async fn write_retrying(&self, rp: &str, gz: bytes::Bytes, what: &str) -> Result<()> {
        let mut delay = std::time::Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            let r = self
                .http
                .write_gz(self.opts.target_db(), rp, gz.clone(), what)
                .await;
            let transient = match &r {
                Err(InfluxApiError::Http { .. }) => true,
                Err(InfluxApiError::Server { status, .. }) => *status >= 500,
                _ => false,
            };
            if !transient || attempt == 3 || self.cancel.load(Ordering::Relaxed) {
                return r;
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
}

/// Unpacks and walks one shard, sending gzip batches of `batch_lines` lines.
fn produce(
    s: &BackupShard,
    opts: &MergeOptions,
    cancel: &AtomicBool,
    tx: &mpsc::Sender<(Vec<u8>, u64)>,
) -> Result<()> {
    let u = unpack(s, &opts.tmp_dir)?;
    let batch = opts.batch_lines.max(1);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut lines = 0usize;
    let mut values = 0u64;
    let send = |buf: &mut Vec<u8>, lines: &mut usize, values: &mut u64| -> Result<()> {
        if cancel.load(Ordering::Relaxed) {
            return Err(InfluxApiError::Cancelled);
        }
        let body = gzip(buf)?;
        tx.blocking_send((body, *values))
            .map_err(|_| InfluxApiError::Cancelled)?;
        buf.clear();
        *lines = 0;
        *values = 0;
        Ok(())
    };
    let mut line_done = |buf: &mut Vec<u8>, fields: usize| -> Result<()> {
        lines += 1;
        values += fields as u64;
        if lines >= batch {
            send(buf, &mut lines, &mut values)?;
        }
        Ok(())
    };
    for_each_file(&u, |r, tombs, ctx| {
        series_lines(r, tombs, opts.unsigned, ctx, &mut buf, &mut line_done)
    })?;
    if lines > 0 {
        send(&mut buf, &mut lines, &mut values)?;
    }
    Ok(())
}

/// `data` gzip-compressed (fast level: the target's CPU, not the link, is the bottleneck).
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::fast());
    gz.write_all(data).map_err(io("compress a batch"))?;
    gz.finish().map_err(io("compress a batch"))
}
