//! `snapshotd restore`: a portable backup (ours or influxd's) into influxd or snapshotd.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use snapshotd_checkpoint::{CheckpointOptions, Destination, LockOptions, S3Options};
use snapshotd_client::restore::{rename_names, restore};
use snapshotd_client::resume::{RestoreSink, prior_restore, restore_config};
use snapshotd_client::{
    Client, ClientConfig, Hooks, NoUnitSink, RestoreOptions, RestoreSummary, Storage, TransferStats,
};

use super::backup::{
    TermProgress, default_jobs, human_bytes, open_checkpoint, parse_rate, stop_on_ctrl_c,
};

/// Flags of `snapshotd restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// Snapshotter address of the target (influxd `bind-address` or `snapshotd serve --bind`).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8088")]
    pub host: String,
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
    /// Shards uploaded at once [default: number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Cap on the combined upload rate, bytes per second (suffixes k, M, G, Ki, Mi, Gi).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = parse_rate)]
    pub rate_limit: Option<u64>,
    /// Require the server to acknowledge every shard upload, so a shard the server failed to
    /// restore is reported (snapshotd serve only; influxd cannot acknowledge).
    #[arg(long)]
    pub ack: bool,
    /// Give up on a connection that makes no progress for this long.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: humantime::Duration,
    /// Print one JSON summary object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Key of an encrypted backup (see `snapshotd backup --encrypt-key-file`). SRC is first
    /// decrypted (every file authenticated) into a temporary directory beside the system temp
    /// dir, which needs room for the backup; it is removed afterwards.
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<std::path::PathBuf>,
    /// Do not record progress under SRC (for read-only backups): a re-run starts over.
    #[arg(long)]
    pub no_resume: bool,
    /// Lock lease of the restore checkpoint (see `snapshotd backup --lock-ttl`).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub lock_ttl: humantime::Duration,
    /// Backup location: a directory, `file://…` or `s3://bucket/prefix`. Progress is
    /// recorded under `SRC/restore/<host>-<target>/`, so a re-run resumes.
    #[arg(value_name = "SRC")]
    pub src: String,
    // [merge-wiring] issue 15: merge/skip/offline/check flags (cmd/merge.rs).
    #[command(flatten)]
    pub merge: super::merge::MergeArgs,
}

/// Runs `snapshotd restore`.
pub fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    // [merge-wiring] issue 15: HTTP-API merge/skip and offline restores.
    if let Some(code) = super::merge::run_if_requested(&args)? {
        return Ok(code);
    }
    let mut cfg = ClientConfig::new(args.host.clone());
    cfg.io_timeout = args.timeout.into();
    let client = Client::new(cfg);
    let mut opts = RestoreOptions {
        db: args.db.clone(),
        new_db: args.newdb.clone(),
        rp: args.rp.clone(),
        new_rp: args.newrp.clone(),
        shard: args.shard,
        jobs: args.jobs.unwrap_or_else(default_jobs).max(1),
        rate_limit: args.rate_limit,
        acknowledged: args.ack,
        resume: None,
    };
    rename_names(&opts)?;
    let progress = TermProgress::new("restore");
    let mut hooks = Hooks {
        gate: Arc::new(snapshotd_client::OpenGate),
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
    let elapsed = began.elapsed().as_secs_f64();
    let st = &hooks.stats;
    match result {
        Ok(s) => {
            if args.json {
                let v = serde_json::json!({
                    "status": "ok",
                    "src": args.src,
                    "manifest": s.manifest,
                    "shards_skipped": st.shards_skipped.load(Ordering::Relaxed),
                    "shards_total": st.shards_total.load(Ordering::Relaxed),
                    "shards_done": st.shards_done.load(Ordering::Relaxed),
                    "shards_unmapped": s.unmapped,
                    "id_map": s.restored,
                    "checksums_verified": s.checksums_verified,
                    "bytes_transferred": st.bytes_transferred.load(Ordering::Relaxed),
                    "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
                });
                println!("{v}");
            } else {
                let pairs: Vec<String> =
                    s.restored.iter().map(|(o, n)| format!("{o}→{n}")).collect();
                eprintln!(
                    "restore complete: {} shard(s) [{}], {} sent in {elapsed:.1}s{}",
                    s.restored.len(),
                    pairs.join(", "),
                    human_bytes(st.bytes_transferred.load(Ordering::Relaxed)),
                    if s.checksums_verified {
                        "; every file matched its manifest sha256"
                    } else {
                        "; backup has no checksums (written by influxd): sizes only"
                    }
                );
            }
            // [merge-wiring] issue 15: --check compares counts with the target.
            if args.merge.check {
                return super::merge::check_after(&args);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                let v = serde_json::json!({
                    "status": "error",
                    "src": args.src,
                    "shards_done": st.shards_done.load(Ordering::Relaxed),
                    "error": format!("{e:#}"),
                });
                println!("{v}");
            }
            Err(e.context("restore failed"))
        }
    }
}

/// `restore/<host>-<target>`: the checkpoint namespace of one restore target.
fn checkpoint_child(args: &RestoreArgs) -> String {
    let target = args
        .newdb
        .as_deref()
        .or(args.db.as_deref())
        .unwrap_or("all");
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("restore/{}-{}", clean(&args.host), clean(target))
}

/// The restore under its checkpoint: a completed metastore import and every uploaded shard
/// are recorded, so a re-run skips them. A finished restore removes its checkpoint.
async fn checkpointed(
    args: &RestoreArgs,
    client: &Client,
    opts: &mut RestoreOptions,
    hooks: &mut Hooks,
) -> anyhow::Result<RestoreSummary> {
    let dest = Destination::open(&args.src, &S3Options::from_env())?;
    let key = match &args.encrypt_key_file {
        Some(f) => Some(snapshotd_checkpoint::MasterKey::from_file(f)?),
        None => None,
    };
    let _plain_copy;
    let src = match &key {
        None => Storage::from_store(dest.rooted_store(), dest.to_string()),
        Some(k) => {
            let dir = tempfile::Builder::new()
                .prefix("snapshotd-restore-")
                .tempdir()
                .context("create a temporary directory for the decrypted copy")?;
            hooks.progress.message("decrypting the backup");
            snapshotd_checkpoint::decrypt_destination(k, &dest, dir.path())
                .await
                .with_context(|| format!("decrypt {}", dest))?;
            let s = Storage::local(dir.path(), false)?;
            _plain_copy = dir;
            s
        }
    };
    if args.no_resume {
        return Ok(restore(client, &src, opts, hooks).await?);
    }
    let plan = snapshotd_client::layout::restore_plan(&src).await?;
    let cp_opts = CheckpointOptions {
        config: restore_config(opts, &plan.manifest),
        key,
        lock: LockOptions {
            ttl: args.lock_ttl.into(),
            hint: "snapshotd restore".into(),
            ..Default::default()
        },
        max_buffered: 1,
        ..Default::default()
    };
    let cp = open_checkpoint(&dest.child(&checkpoint_child(args)), cp_opts).await?;
    opts.resume = prior_restore(&cp);
    if let Some(r) = &opts.resume {
        tracing::info!(
            "resuming restore of {}: metastore imported, {} shard(s) already uploaded",
            r.manifest,
            r.done.len()
        );
    }
    let cp = Arc::new(cp);
    hooks.units = Arc::new(RestoreSink::new(Arc::clone(&cp), Arc::clone(&hooks.cancel)));
    let result = restore(client, &src, opts, hooks).await;
    hooks.units = Arc::new(NoUnitSink);
    let cp = Arc::try_unwrap(cp)
        .map_err(|_| anyhow::anyhow!("internal error: checkpoint still in use after the run"))?;
    match result {
        Ok(s) => {
            cp.health()?;
            cp.finish_and_remove().await?;
            Ok(s)
        }
        Err(e) => {
            if let Err(f) = cp.finish().await {
                tracing::warn!("checkpoint: {f}");
            }
            Err(e.into())
        }
    }
}
