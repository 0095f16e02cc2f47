//! `snapshotd backup`: a new restore point (influx `-portable` layout) from influxd or
//! snapshotd; an interrupted run is continued by the same command.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use snapshotd_client::job::backup::BackupOutcome;
use snapshotd_client::{BackupOptions, Hooks, RetryPolicy, TransferStats, Window};
use snapshotd_wire::GoTime;

use super::common::{
    ResumeFlags, ServerFlags, TermProgress, human_bytes, open_dest_timed, runtime,
};
use super::metrics_file::{self, RunMetrics};

/// Flags of `snapshotd backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub resume: ResumeFlags,
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
    /// Encrypt every stored file (`<name>.enc`) and the checkpoint records with this key
    /// (32 raw bytes or 64 hex characters). The manifest stays plain.
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<std::path::PathBuf>,
    /// Write Prometheus metrics of this run here (node_exporter textfile format), atomically.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
    /// Destination: a directory (created if missing), `file://…` or `s3://bucket/prefix`.
    /// Every run adds a new restore point; re-running after an interruption continues it.
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

fn options(args: &BackupArgs) -> anyhow::Result<BackupOptions> {
    Ok(BackupOptions {
        db: args.db.clone(),
        rp: args.rp.clone(),
        shard: args.shard,
        window: window(args)?,
        jobs: args.server.jobs(),
        rate_limit: args.server.rate_limit,
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
    })
}

/// Runs `snapshotd backup`.
pub fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let opts = options(&args)?;
    snapshotd_client::backup::validate(&opts)?;
    let client = args.server.client();
    let progress = TermProgress::new("backup");
    let hooks = Hooks {
        progress: progress.clone(),
        ..Hooks::default()
    };
    let rt = runtime()?;
    super::common::stop_on_ctrl_c(&rt, &hooks, !args.resume.no_resume);
    let began = Instant::now();
    let job = args.resume.job();
    let result = rt.block_on(async {
        let dest = open_dest_timed(&args.dest, args.server.timeout.into())?;
        anyhow::Ok(snapshotd_client::job::backup::run(&client, &dest, opts, &job, &hooks).await?)
    });
    progress.finish();
    let elapsed = began.elapsed();
    if let Some(path) = &args.metrics_file {
        let m = RunMetrics {
            ok: result.is_ok(),
            duration: elapsed,
            bytes: TransferStats::get(&hooks.stats.bytes_written),
            units: TransferStats::get(&hooks.stats.shards_done)
                + TransferStats::get(&hooks.stats.shards_skipped),
        };
        metrics_file::write(path, "backup", &args.dest, &m)?;
    }
    report(&args, &hooks, elapsed.as_secs_f64(), result)
}

/// The `--json` summary fields every outcome shares.
fn summary(args: &BackupArgs, hooks: &Hooks, elapsed: f64, status: &str) -> serde_json::Value {
    let s = &hooks.stats;
    serde_json::json!({
        "status": status,
        "dest": args.dest,
        "shards_total": TransferStats::get(&s.shards_total),
        "shards_done": TransferStats::get(&s.shards_done),
        "shards_skipped": TransferStats::get(&s.shards_skipped),
        "bytes_transferred": TransferStats::get(&s.bytes_transferred),
        "bytes_written": TransferStats::get(&s.bytes_written),
        "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
    })
}

/// Prints the outcome and picks the exit code.
fn report(
    args: &BackupArgs,
    hooks: &Hooks,
    elapsed: f64,
    result: anyhow::Result<BackupOutcome>,
) -> anyhow::Result<ExitCode> {
    match result {
        Ok(o) => {
            let st = &hooks.stats;
            if args.server.json {
                let mut v = summary(args, hooks, elapsed, "ok");
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("id".into(), o.summary.timestamp.clone().into());
                    obj.insert("resumed".into(), o.resumed.into());
                    obj.insert("manifest".into(), o.summary.manifest.clone().into());
                }
                println!("{v}");
            } else {
                eprintln!(
                    "backup complete: restore point {}{}: {} shard(s), {} received, {} written in {elapsed:.1}s → {}/{}",
                    o.summary.timestamp,
                    if o.resumed { " (resumed)" } else { "" },
                    TransferStats::get(&st.shards_done) + TransferStats::get(&st.shards_skipped),
                    human_bytes(TransferStats::get(&st.bytes_transferred)),
                    human_bytes(TransferStats::get(&st.bytes_written)),
                    args.dest,
                    o.summary.manifest
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if !args.resume.no_resume && is_cancelled(&e) {
                eprintln!("re-run the same command to resume");
            }
            if args.server.json {
                let mut v = summary(args, hooks, elapsed, "error");
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("error".into(), super::common::render(&e).into());
                }
                println!("{v}");
            }
            Err(e.context("backup failed; no manifest was written"))
        }
    }
}

/// Whether the run stopped because it was cancelled (Ctrl-C).
fn is_cancelled(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<snapshotd_client::ClientError>(),
            Some(snapshotd_client::ClientError::Cancelled)
        )
    })
}
