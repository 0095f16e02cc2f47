//! `snapshotd backup`: a portable backup (influx `-portable` layout) from influxd or snapshotd.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use snapshotd_checkpoint::{
    Checkpoint, CheckpointOptions, Destination, Error as CpError, LockOptions, S3Options,
    unlock_owner,
};
use snapshotd_client::backup::backup;
use snapshotd_client::resume::{
    CheckpointSink, LeaseGate, Prior, backup_config, holder_is_dead_local, prior_run,
    record_complete,
};
use snapshotd_client::{
    BackupOptions, BackupSummary, Client, ClientConfig, Hooks, NoUnitSink, OpenGate, Progress,
    RetryPolicy, Storage, TransferStats, Window,
};
use snapshotd_wire::GoTime;

/// Flags of `snapshotd backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Snapshotter address of the source (influxd `bind-address` or `snapshotd serve --bind`).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8088")]
    pub host: String,
    /// Only this database.
    #[arg(long, alias = "database", value_name = "NAME")]
    pub db: Option<String>,
    /// Only this retention policy (needs --db).
    #[arg(long, alias = "retention", value_name = "NAME")]
    pub rp: Option<String>,
    /// Only this shard (needs --db and --rp).
    #[arg(long, value_name = "ID")]
    pub shard: Option<u64>,
    /// Only files modified after this RFC 3339 time (incremental, by file mtime like influx).
    #[arg(long, value_name = "TIME", conflicts_with_all = ["start", "end"])]
    pub since: Option<String>,
    /// Export data from this RFC 3339 time on (switches to time-range export).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Export data up to this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Shards downloaded at once [default: number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Cap on the combined download rate, bytes per second (suffixes k, M, G, Ki, Mi, Gi).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = parse_rate)]
    pub rate_limit: Option<u64>,
    /// gzip level, 0 (store) to 9 (smallest); influx uses its default (6), 1 is much faster.
    #[arg(long, value_name = "0-9", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: u32,
    /// auto: deflate what shrinks by half or more at --compression-level and store the rest
    /// (TSM is already compressed); gzip: always deflate (smaller, slower); none: store.
    /// Every mode writes a valid .tar.gz.
    #[arg(long, value_enum, default_value = "auto")]
    pub compression: Compression,
    /// Attempts per shard before the backup fails.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,
    /// Give up on a connection that makes no progress for this long.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: humantime::Duration,
    /// Print one JSON summary object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Encrypt every stored file (`<name>.enc`) and the checkpoint records with this key
    /// (32 raw bytes or 64 hex characters). The manifest stays plain.
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<std::path::PathBuf>,
    /// No checkpoint and no lock: nothing is written under DEST/checkpoints and a re-run
    /// starts a new backup (with a new TS) instead of resuming.
    #[arg(long)]
    pub no_resume: bool,
    /// Lock lease: a holder that stops refreshing for this long may be taken over.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub lock_ttl: humantime::Duration,
    /// Destination: a directory (created if missing), `file://…` or `s3://bucket/prefix`.
    /// Re-running the same command on the same DEST resumes an interrupted backup.
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// `--compression` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Compression {
    /// Deflate what shrinks by a useful margin, store the rest.
    Auto,
    /// Always deflate at --compression-level.
    Gzip,
    /// Store only (gzip framing, level 0).
    None,
}

impl From<Compression> for snapshotd_client::CompressionMode {
    fn from(c: Compression) -> Self {
        match c {
            Compression::Auto => Self::Auto,
            Compression::Gzip => Self::Gzip,
            Compression::None => Self::None,
        }
    }
}

/// Parses a byte rate like `50M`, `512Ki` or `1000000`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a number of bytes per second"))?;
    let mult: u64 = match unit.trim_end_matches("/s").trim_end_matches('B') {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (use k, M, G, Ki, Mi, Gi)")),
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if v == 0 {
        return Err("the rate must be positive".into());
    }
    Ok(v)
}

fn parse_time(flag: &str, s: &str) -> anyhow::Result<GoTime> {
    GoTime::parse(s).with_context(|| {
        format!("--{flag} {s:?}: expected an RFC 3339 time like 2021-01-05T00:00:00Z")
    })
}

fn window(args: &BackupArgs) -> anyhow::Result<Window> {
    if let Some(s) = &args.since {
        return Ok(Window::Since(parse_time("since", s)?));
    }
    if args.start.is_none() && args.end.is_none() {
        return Ok(Window::Full);
    }
    // Influx treats a missing bound as Go's zero time, which breaks its range test; send the
    // widest range its nanosecond timestamps can hold instead.
    let start = match &args.start {
        Some(s) => parse_time("start", s)?,
        None => GoTime::from_unix_nanos(i64::MIN),
    };
    let end = match &args.end {
        Some(s) => parse_time("end", s)?,
        None => GoTime::from_unix_nanos(i64::MAX),
    };
    if let (Some(a), Some(b)) = (start.unix_nanos(), end.unix_nanos())
        && b <= a
    {
        bail!("--end must be after --start");
    }
    Ok(Window::Export { start, end })
}

/// Default parallelism: the number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Runs `snapshotd backup`.
pub fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let window = window(&args)?;
    let mut cfg = ClientConfig::new(args.host.clone());
    cfg.io_timeout = args.timeout.into();
    let client = Client::new(cfg);
    let mut opts = BackupOptions {
        db: args.db.clone(),
        rp: args.rp.clone(),
        shard: args.shard,
        window,
        jobs: args.jobs.unwrap_or_else(default_jobs).max(1),
        rate_limit: args.rate_limit,
        gzip_level: args.compression_level,
        compression: args.compression.into(),
        retry: RetryPolicy {
            attempts: args.attempts,
            ..RetryPolicy::default()
        },
        started: None,
        resume: None,
        key: match &args.encrypt_key_file {
            Some(f) => Some(snapshotd_checkpoint::MasterKey::from_file(f)?),
            None => None,
        },
    };
    snapshotd_client::backup::validate(&opts)?;
    let progress = TermProgress::new("backup");
    let mut hooks = Hooks {
        gate: Arc::new(OpenGate),
        progress: progress.clone(),
        units: Arc::new(NoUnitSink),
        stats: Arc::new(TransferStats::default()),
        cancel: Default::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    stop_on_ctrl_c(&rt, &hooks);
    let began = Instant::now();
    let result = rt.block_on(checkpointed(&args, &client, &mut opts, &mut hooks));
    progress.finish();
    let elapsed = began.elapsed();
    let dest = args.dest.clone();
    let summary = |status: &str, error: Option<String>| {
        let s = &hooks.stats;
        let mut v = serde_json::json!({
            "status": status,
            "dest": dest,
            "shards_total": s.shards_total.load(Ordering::Relaxed),
            "shards_done": s.shards_done.load(Ordering::Relaxed),
            "shards_skipped": s.shards_skipped.load(Ordering::Relaxed),
            "bytes_transferred": s.bytes_transferred.load(Ordering::Relaxed),
            "bytes_written": s.bytes_written.load(Ordering::Relaxed),
            "elapsed_s": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        });
        if let (Some(e), Some(obj)) = (error, v.as_object_mut()) {
            obj.insert("error".into(), serde_json::Value::String(e));
        }
        v
    };
    match result {
        Ok(Outcome::AlreadyComplete(manifest)) => {
            if args.json {
                let mut v = summary("ok", None);
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("already_complete".into(), true.into());
                    obj.insert("manifest".into(), manifest.into());
                }
                println!("{v}");
            } else {
                eprintln!(
                    "backup already complete: {dest}/{manifest} (nothing to do; \
                     use a new DEST for a new backup)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(Outcome::Done(s)) => {
            if args.json {
                println!("{}", summary("ok", None));
            } else {
                let st = &hooks.stats;
                eprintln!(
                    "backup complete: {} shard(s), {} received, {} written in {:.1}s → {}/{}",
                    st.shards_done.load(Ordering::Relaxed),
                    human_bytes(st.bytes_transferred.load(Ordering::Relaxed)),
                    human_bytes(st.bytes_written.load(Ordering::Relaxed)),
                    elapsed.as_secs_f64(),
                    dest,
                    s.manifest
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                println!("{}", summary("error", Some(format!("{e:#}"))));
            }
            Err(e.context("backup failed; no manifest was written"))
        }
    }
}

/// Opens the checkpoint; the lock of a killed process on this host is removed first.
pub async fn open_checkpoint(
    dest: &Destination,
    opts: CheckpointOptions,
) -> anyhow::Result<Checkpoint> {
    match Checkpoint::open(dest, opts.clone()).await {
        Err(CpError::Locked { holder, .. }) if holder_is_dead_local(&holder) => {
            tracing::warn!("removing the lock of a process that no longer exists: {holder}");
            unlock_owner(dest, &holder.owner).await?;
            Ok(Checkpoint::open(dest, opts).await?)
        }
        r => Ok(r?),
    }
}

/// How a run ended well.
enum Outcome {
    /// This run wrote the manifest.
    Done(BackupSummary),
    /// An earlier run on this DEST already completed; its manifest.
    AlreadyComplete(String),
}

/// The backup under the destination's checkpoint: lock, resume, record, fence.
async fn checkpointed(
    args: &BackupArgs,
    client: &Client,
    opts: &mut BackupOptions,
    hooks: &mut Hooks,
) -> anyhow::Result<Outcome> {
    let dest = Destination::open(&args.dest, &S3Options::from_env())?;
    let storage = Storage::from_store(dest.rooted_store(), dest.to_string());
    if args.no_resume {
        return Ok(Outcome::Done(backup(client, &storage, opts, hooks).await?));
    }
    let cp_opts = CheckpointOptions {
        config: backup_config(opts),
        key: opts.key.clone(),
        lock: LockOptions {
            ttl: args.lock_ttl.into(),
            hint: "snapshotd backup".into(),
            ..Default::default()
        },
        // Every finished shard is flushed at once, so a crash redoes at most the shards
        // in flight.
        max_buffered: 1,
        ..Default::default()
    };
    let cp = open_checkpoint(&dest, cp_opts).await?;
    for r in &cp.resume().rejected {
        tracing::warn!("ignored checkpoint object: {r:?}");
    }
    match prior_run(&cp) {
        Prior::Complete(manifest) => {
            cp.finish().await?;
            return Ok(Outcome::AlreadyComplete(manifest));
        }
        Prior::Interrupted(r) => {
            let ts = snapshotd_client::layout::timestamp(r.started);
            let manifest = snapshotd_client::layout::manifest_name(&ts);
            if storage.size(&manifest).await?.is_some() {
                // It completed but was stopped before recording so.
                record_complete(&cp, &manifest)?;
                cp.finish().await?;
                return Ok(Outcome::AlreadyComplete(manifest));
            }
            tracing::info!(
                "resuming backup {ts}: {} shard(s) recorded as done",
                r.skip_shards.len()
            );
            opts.resume = Some(r);
        }
        Prior::Fresh => {}
    }

    // Record every finished file; stop as soon as the lease is lost.
    let cp = Arc::new(cp);
    hooks.units = Arc::new(CheckpointSink::new(
        Arc::clone(&cp),
        Arc::clone(&hooks.cancel),
    ));
    hooks.gate = Arc::new(LeaseGate(Arc::clone(&cp)));
    let watch = {
        let weak = Arc::downgrade(&cp);
        let cancel = Arc::clone(&hooks.cancel);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let Some(cp) = weak.upgrade() else { return };
                if let Err(e) = cp.health() {
                    tracing::error!("stopping: {e}");
                    cancel.store(true, Ordering::Relaxed);
                    return;
                }
            }
        })
    };
    let result = backup(client, &storage, opts, hooks).await;
    hooks.units = Arc::new(NoUnitSink);
    hooks.gate = Arc::new(OpenGate);
    watch.abort();
    let _ = watch.await;
    let cp = Arc::try_unwrap(cp)
        .map_err(|_| anyhow::anyhow!("internal error: checkpoint still in use after the run"))?;
    let health = cp.health();
    match result {
        Ok(s) => {
            health?;
            record_complete(&cp, &s.manifest)?;
            cp.finish().await?;
            Ok(Outcome::Done(s))
        }
        Err(e) => {
            let finished = cp.finish().await;
            // A lost lease explains a cancelled run better than "cancelled".
            if let Err(lost) = health {
                return Err(anyhow::Error::new(lost).context(e.to_string()));
            }
            if let Err(f) = finished {
                tracing::warn!("checkpoint: {f}");
            }
            Err(e.into())
        }
    }
}

/// First Ctrl-C: stop the run cleanly (no manifest, no partial files); second: exit now.
pub fn stop_on_ctrl_c(rt: &tokio::runtime::Runtime, hooks: &Hooks) {
    let cancel = Arc::clone(&hooks.cancel);
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping transfers (Ctrl-C again to quit at once)");
            cancel.store(true, Ordering::Relaxed);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// Progress on stderr: an indicatif bar on a terminal, plain log lines otherwise.
pub struct TermProgress {
    bar: Option<ProgressBar>,
    verb: &'static str,
    units: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
}

impl TermProgress {
    /// A progress reporter for `verb` ("backup", "restore").
    pub fn new(verb: &'static str) -> Arc<Self> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{elapsed_precise}] {bytes} ({bytes_per_sec}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_prefix(verb);
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Arc::new(TermProgress {
            bar,
            verb,
            units: Default::default(),
            done: Default::default(),
        })
    }

    fn shards_msg(&self) -> String {
        format!(
            "shards {}/{}",
            self.done.load(Ordering::Relaxed),
            self.units.load(Ordering::Relaxed)
        )
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for TermProgress {
    fn plan(&self, units: u64, bytes: Option<u64>) {
        self.units.store(units, Ordering::Relaxed);
        match &self.bar {
            Some(b) => {
                if let Some(total) = bytes {
                    b.set_length(total);
                    b.set_style(
                        ProgressStyle::with_template(
                            "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                }
                b.set_message(self.shards_msg());
            }
            None => tracing::info!("{}: {units} shard(s) to transfer", self.verb),
        }
    }

    fn bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    fn retrying(&self, name: &str, attempt: u32, error: &str) {
        let line = format!("{name}: attempt {attempt} failed ({error}); retrying");
        match &self.bar {
            Some(b) => b.println(line),
            None => tracing::warn!("{line}"),
        }
    }

    fn unit_done(&self, name: &str, bytes: u64) {
        self.done.fetch_add(1, Ordering::Relaxed);
        match &self.bar {
            Some(b) => b.set_message(self.shards_msg()),
            None => tracing::info!(
                "{} {name} ({}), {}",
                self.verb,
                human_bytes(bytes),
                self.shards_msg()
            ),
        }
    }

    fn message(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => tracing::info!("{msg}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("50M"), Ok(50_000_000));
        assert_eq!(parse_rate("4Mi"), Ok(4 << 20));
        assert_eq!(parse_rate("10MB/s"), Ok(10_000_000));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("3X").is_err());
    }
}
