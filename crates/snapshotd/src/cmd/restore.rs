//! `snapshotd restore`: a restore point of a portable backup (ours or influxd's) into influxd
//! or snapshotd. Progress is recorded under the target's identity in the state directory,
//! never in the backup, so a read-only backup resumes too.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use snapshotd_checkpoint::Destination;
use snapshotd_client::job::restore::RestoreJob;
use snapshotd_client::{Hooks, RestoreOptions, RestoreSummary, TransferStats};

use super::common::{
    ResumeFlags, ServerFlags, TermProgress, human_bytes, open_existing_timed, runtime,
};

/// Flags of `snapshotd restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub resume: ResumeFlags,
    /// The restore point: its id (see `snapshotd snapshots`) or an RFC 3339 time (the newest
    /// point at or before it) [default: the newest].
    #[arg(long, value_name = "ID|TIME")]
    pub at: Option<String>,
    /// Only this database of the backup.
    #[arg(long, alias = "database", value_name = "NAME")]
    pub db: Option<String>,
    /// Restore --db under this new name (must not exist on the target).
    #[arg(long, value_name = "NAME", requires = "db")]
    pub newdb: Option<String>,
    /// Only this retention policy.
    #[arg(long, alias = "retention", value_name = "NAME")]
    pub rp: Option<String>,
    /// Restore --rp under this new name.
    #[arg(long, value_name = "NAME", requires = "rp")]
    pub newrp: Option<String>,
    /// Only this shard (its ID in the backup).
    #[arg(long, value_name = "ID")]
    pub shard: Option<u64>,
    /// Require the server to acknowledge every shard upload, so a shard the server failed to
    /// restore is reported (snapshotd serve only; influxd cannot acknowledge).
    #[arg(long)]
    pub ack: bool,
    /// Restore shards even when they hold files influxd does not load (e.g. `.wal` segments
    /// in backups of `snapshotd serve` taken before it compacted its log into TSM, whose
    /// points would not be queryable); by default such a shard is refused, naming the file.
    #[arg(long)]
    pub force: bool,
    /// Key of an encrypted backup (see `snapshotd backup --encrypt-key-file`). SRC is first
    /// decrypted (every file authenticated) into a temporary directory beside the system temp
    /// dir, which needs room for the backup; it is removed afterwards.
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Where restore progress is kept, per target server and database
    /// [default: $XDG_STATE_HOME/snapshotd or ~/.local/state/snapshotd].
    #[arg(long, value_name = "DIR", env = "SNAPSHOTD_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Backup location: a directory, `file://…` or `s3://bucket/prefix` (only read).
    #[arg(value_name = "SRC")]
    pub src: String,
    /// Merge/skip into a live database, offline metastore restore, `--check`.
    #[command(flatten)]
    pub merge: super::merge::MergeArgs,
}

/// The target's name: `--newdb`, else `--db`, else `all`.
fn target_db(args: &RestoreArgs) -> &str {
    args.newdb
        .as_deref()
        .or(args.db.as_deref())
        .unwrap_or("all")
}

/// `restore/<host>-<target>` under the state directory: the checkpoint of one target.
fn checkpoint_dir(args: &RestoreArgs) -> anyhow::Result<Option<Destination>> {
    let Some(state) = super::common::state_dir(args.state_dir.as_ref()) else {
        tracing::warn!("no state directory (set HOME or --state-dir): this restore cannot resume");
        return Ok(None);
    };
    let clean = super::common::file_safe;
    let dir = state.join("restore").join(format!(
        "{}-{}",
        clean(&args.server.host),
        clean(target_db(args))
    ));
    Ok(Some(Destination::local(dir)?))
}

fn options(args: &RestoreArgs) -> RestoreOptions {
    RestoreOptions {
        db: args.db.clone(),
        new_db: args.newdb.clone(),
        rp: args.rp.clone(),
        new_rp: args.newrp.clone(),
        shard: args.shard,
        jobs: args.server.restore_jobs(),
        rate_limit: args.server.rate_limit,
        acknowledged: args.ack,
        resume: None,
        at: args.at.clone(),
        force: args.force,
        guard_import: false,
        pending_import: None,
    }
}

/// Runs `snapshotd restore`.
pub fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = super::merge::run_if_requested(&args)? {
        return Ok(code);
    }
    let opts = options(&args);
    snapshotd_client::restore::rename_names(&opts)?;
    let src = open_existing_timed(&args.src, args.server.timeout.into())?;
    let key = match &args.encrypt_key_file {
        Some(f) => Some(snapshotd_checkpoint::MasterKey::from_file(f)?),
        None => None,
    };
    let client = args.server.client();
    let progress = TermProgress::new("restore");
    let hooks = Hooks {
        progress: progress.clone(),
        ..Hooks::default()
    };
    let rt = runtime()?;
    super::common::stop_on_ctrl_c(&rt, &hooks, !args.resume.no_resume);
    let began = Instant::now();
    let job = args.resume.job();
    let result = rt.block_on(async {
        let rjob = RestoreJob {
            checkpoint: if job.resume {
                checkpoint_dir(&args)?
            } else {
                None
            },
            target: format!("{} database {}", args.server.host, target_db(&args)),
            key,
            stop_after_import: false,
        };
        let s =
            snapshotd_client::job::restore::run(&client, &src, opts, &job, &rjob, &hooks).await?;
        anyhow::Ok(s)
    });
    progress.finish();
    report(&args, &hooks, began.elapsed().as_secs_f64(), result)
}

/// Prints the outcome and picks the exit code.
fn report(
    args: &RestoreArgs,
    hooks: &Hooks,
    elapsed: f64,
    result: anyhow::Result<RestoreSummary>,
) -> anyhow::Result<ExitCode> {
    let st = &hooks.stats;
    match result {
        Ok(s) => {
            if args.server.json {
                let v = serde_json::json!({
                    "status": "ok",
                    "src": args.src,
                    "manifest": s.manifest,
                    "id": s.manifest.trim_end_matches(".manifest"),
                    "shards_skipped": TransferStats::get(&st.shards_skipped),
                    "shards_total": TransferStats::get(&st.shards_total),
                    "shards_done": TransferStats::get(&st.shards_done),
                    "shards_unmapped": s.unmapped,
                    "id_map": s.restored,
                    "checksums_verified": s.checksums_verified,
                    "stacked": s.stacked.iter().map(|c| serde_json::json!({
                        "shard": c.shard, "base": c.base, "base_whole": c.base_whole,
                        "incrementals": c.later,
                    })).collect::<Vec<_>>(),
                    "bytes_transferred": TransferStats::get(&st.bytes_transferred),
                    "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
                });
                println!("{v}");
            } else {
                let pairs: Vec<String> =
                    s.restored.iter().map(|(o, n)| format!("{o}→{n}")).collect();
                eprintln!(
                    "restore of {} complete: {} shard(s) [{}], {} sent in {elapsed:.1}s{}",
                    s.manifest.trim_end_matches(".manifest"),
                    s.restored.len(),
                    pairs.join(", "),
                    human_bytes(TransferStats::get(&st.bytes_transferred)),
                    if s.checksums_verified {
                        "; every file matched its manifest sha256"
                    } else {
                        "; backup has no checksums (written by influxd): sizes only"
                    }
                );
                for c in &s.stacked {
                    eprintln!("  {c}");
                }
            }
            if args.merge.check {
                return super::merge::check_after(args);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.server.json {
                let v = serde_json::json!({
                    "status": "error",
                    "src": args.src,
                    "shards_done": TransferStats::get(&st.shards_done),
                    "error": super::common::render(&e),
                });
                println!("{v}");
            }
            Err(e.context("restore failed"))
        }
    }
}
