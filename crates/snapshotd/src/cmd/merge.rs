//! `snapshotd restore --on-conflict merge|skip`, `--offline` and `--check`: the restore paths
//! that go through influx's v1 HTTP API or its metastore file (see `snapshotd-influxapi`).
//! The lead wires [`run_if_requested`] at the top of `restore::run`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use snapshotd_influxapi::{
    Backup, CheckReport, ConflictMode, Credentials, HttpOptions, InfluxHttp, MergeOptions,
    MergeProgress, MergeReport, UnsignedMode, check_target, deep_verify_applied, merge,
    restore_grants, restore_schema, write_meta_offline, write_shards_offline,
};

use super::restore::RestoreArgs;

/// What to do when the target database already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnConflict {
    /// Refuse (the snapshotter restore; influx's behaviour).
    Error,
    /// Write the backup's points into the existing database through the HTTP API.
    Merge,
    /// Like merge, but leave shards whose time range already holds data untouched.
    Skip,
}

/// How a merge moves shards (see `--merge-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MergeMode {
    /// Upload empty-range shards whole when safe, the rest point by point.
    Auto,
    /// Every point through /write.
    Points,
}

/// The merge / offline / check flags of `snapshotd restore`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// When the target database exists: error (default), merge through the HTTP API, or skip
    /// shards whose time range already holds data and merge the rest.
    #[arg(long, value_enum, default_value = "error")]
    pub on_conflict: OnConflict,
    /// The target's HTTP API (influxd `[http]`), e.g. http://127.0.0.1:8086 or https://…
    #[arg(long = "http", value_name = "URL")]
    pub http_url: Option<String>,
    /// File with `user:password` (or the user on line 1 and the password on line 2);
    /// otherwise INFLUX_USERNAME / INFLUX_PASSWORD are used when set.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) trusted for an https:// target.
    #[arg(long, value_name = "FILE")]
    pub http_ca: Option<PathBuf>,
    /// Accept any certificate from an https:// target (testing only).
    #[arg(long)]
    pub http_insecure: bool,
    /// Lines per /write request (memory is bounded by jobs x 2 x batch).
    #[arg(long, value_name = "LINES", default_value_t = 5000)]
    pub batch: usize,
    /// How shards reach the target: `auto` (default) uploads a shard whose time range ended in
    /// the past and holds no data on the target whole through the snapshotter at --host (when
    /// that is the same server as --http and nobody else writes there) and writes every other
    /// shard point by point through /write; `points` writes every shard through /write.
    #[arg(long, value_enum, default_value = "auto")]
    pub merge_mode: MergeMode,
    /// Accepted for older scripts: the fast path is now the default (`--merge-mode auto`).
    #[arg(long, hide = true)]
    pub upload_empty_shards: bool,
    /// Write unsigned fields as `u` (targets with unsigned support); refused otherwise.
    #[arg(long)]
    pub unsigned: bool,
    /// Write the backup's complete metastore (users with password hashes, grants, CQs,
    /// subscriptions) into a stopped influxd's meta dir, keeping a copy of the old meta.db.
    #[arg(long, requires = "influx_meta_dir")]
    pub offline: bool,
    /// The meta dir of the stopped influxd (`[meta] dir`), for --offline.
    #[arg(long, value_name = "DIR", requires = "offline")]
    pub influx_meta_dir: Option<PathBuf>,
    /// The data dir of the stopped influxd (`[data] dir`), for --offline: the restore
    /// point's shards are unpacked there under the backup's shard IDs.
    #[arg(long, value_name = "DIR", requires_all = ["offline", "influx_wal_dir"])]
    pub influx_data_dir: Option<PathBuf>,
    /// The WAL dir of the stopped influxd (`[data] wal-dir`), with --influx-data-dir: it
    /// must hold no log of a shard being restored.
    #[arg(long, value_name = "DIR", requires = "influx_data_dir")]
    pub influx_wal_dir: Option<PathBuf>,
    /// After the restore, decode the backup and compare per-measurement counts with the target
    /// through --http; fails if any differs.
    #[arg(long)]
    pub check: bool,
}

/// Runs the merge, skip or offline restore when one was asked for; `None` means "do the
/// snapshotter restore" (and then [`check_after`] if `--check`).
pub fn run_if_requested(args: &RestoreArgs) -> anyhow::Result<Option<ExitCode>> {
    let m = &args.merge;
    if m.offline {
        return offline(args).map(Some);
    }
    if m.on_conflict == OnConflict::Error {
        return Ok(None);
    }
    let rt = runtime()?;
    let code = rt.block_on(merge_run(args))?;
    Ok(Some(code))
}

/// `--check` after a snapshotter restore: target counts must equal the backup's.
pub fn check_after(args: &RestoreArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let (backup, db, _src) = open_backup(args).await?;
        let http = connect(&args.merge).await?;
        let new_db = args.newdb.clone().unwrap_or_else(|| db.clone());
        let rep = run_check(&http, &backup, &db, &new_db, false).await?;
        Ok(check_verdict(&rep))
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// A readable backup directory: the source itself, or a private plain copy (removed on
/// drop) of an `s3://` or encrypted source.
struct SourceDir {
    dir: PathBuf,
    _copy: Option<tempfile::TempDir>,
}

/// The backup as a local plain directory: a local plain source is read in place; an
/// `s3://` source is downloaded and an encrypted one (`--encrypt-key-file`) decrypted into a
/// private temp dir first (like `snapshotd restore` does), every file authenticated.
async fn local_source(args: &RestoreArgs) -> anyhow::Result<SourceDir> {
    let local = args.src.strip_prefix("file://").unwrap_or(&args.src);
    if !local.contains("://") && args.encrypt_key_file.is_none() {
        if has_encrypted_files(Path::new(local)) {
            bail!(
                "{} holds encrypted files (*.enc): pass --encrypt-key-file with the backup's key",
                args.src
            );
        }
        return Ok(SourceDir {
            dir: PathBuf::from(local),
            _copy: None,
        });
    }
    let src = super::common::open_existing(&args.src)?;
    let key = match &args.encrypt_key_file {
        Some(f) => Some(snapshotd_checkpoint::MasterKey::from_file(f)?),
        None => None,
    };
    if key.is_none() {
        let storage = snapshotd_client::Storage::from_store(src.rooted_store(), src.to_string());
        if storage
            .list()
            .await?
            .iter()
            .any(|e| e.name.ends_with(".enc"))
        {
            bail!(
                "{} holds encrypted files (*.enc): pass --encrypt-key-file with the backup's key",
                args.src
            );
        }
    }
    let copy = tempfile::Builder::new()
        .prefix("snapshotd-merge-src-")
        .tempdir()
        .context("create a temporary directory for a local copy of the backup")?;
    // Without a key every object is copied as is; an encrypted one then fails to
    // authenticate and the error says to pass the key.
    let k = key
        .clone()
        .unwrap_or_else(snapshotd_checkpoint::MasterKey::generate);
    snapshotd_checkpoint::decrypt_destination(&k, &src, copy.path())
        .await
        .with_context(|| match key {
            Some(_) => format!("decrypt {} (wrong key or tampered file?)", args.src),
            None => format!(
                "download {} (if it holds encrypted files, pass --encrypt-key-file)",
                args.src
            ),
        })?;
    Ok(SourceDir {
        dir: copy.path().to_path_buf(),
        _copy: Some(copy),
    })
}

/// Whether `dir` holds a file ending in `.enc` (an encrypted `snapshotd backup`).
fn has_encrypted_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".enc"))
    })
}

/// The backup (kept readable while the returned [`SourceDir`] lives) and the database to
/// restore (`--db`, or the backup's only one).
async fn open_backup(args: &RestoreArgs) -> anyhow::Result<(Backup, String, SourceDir)> {
    let src = local_source(args).await?;
    let last = chosen_manifest(&src.dir, args.at.as_deref()).await?;
    let backup = Backup::open_until(&src.dir, last.as_deref())?;
    let db = match &args.db {
        Some(d) => d.clone(),
        None => {
            let names: Vec<&str> = backup
                .meta
                .databases
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            match names.as_slice() {
                [one] => one.to_string(),
                _ => bail!("the backup holds databases {names:?}: name one with --db"),
            }
        }
    };
    if backup.meta.database(&db).is_none() {
        bail!("database {db:?} is not in the backup {}", args.src);
    }
    Ok((backup, db, src))
}

/// The manifest of the restore point `--at` names in the plain backup `dir`: the runs after
/// it are not applied. `None` (every run, oldest first) without `--at`.
async fn chosen_manifest(dir: &Path, at: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(at) = at else {
        return Ok(None);
    };
    let storage = snapshotd_client::Storage::local(dir, false)?;
    let points = snapshotd_client::points::list_points(&storage).await?;
    let point = snapshotd_client::points::select(&points, Some(at))?;
    Ok(Some(snapshotd_client::layout::manifest_name(&point.id)))
}

/// An HTTP client for --http with the caller's credentials.
async fn connect(m: &MergeArgs) -> anyhow::Result<InfluxHttp> {
    let Some(url) = &m.http_url else {
        bail!(
            "--on-conflict merge|skip and --check talk to the target's HTTP API: pass --http URL (e.g. http://127.0.0.1:8086)"
        );
    };
    let mut o = HttpOptions::new(url.clone());
    o.credentials = credentials(m.credentials_file.as_deref())?;
    o.insecure = m.http_insecure;
    if let Some(ca) = &m.http_ca {
        o.ca_pem =
            Some(std::fs::read(ca).with_context(|| format!("read --http-ca {}", ca.display()))?);
    }
    let http = InfluxHttp::new(&o)?;
    http.ping()
        .await
        .with_context(|| format!("the target at {url} does not answer /ping"))?;
    Ok(http)
}

/// Credentials from the file, else from INFLUX_USERNAME / INFLUX_PASSWORD.
fn credentials(file: Option<&Path>) -> anyhow::Result<Option<Credentials>> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("read --credentials-file {}", f.display()))?;
        let text = text.trim_end_matches(['\n', '\r']);
        let (u, p) = match text.split_once('\n') {
            Some((u, p)) => (u.trim_end_matches('\r'), p.trim_end_matches(['\n', '\r'])),
            None => text.split_once(':').with_context(|| {
                format!(
                    "{}: expected `user:password` or the user and password on two lines",
                    f.display()
                )
            })?,
        };
        return Ok(Some(Credentials {
            username: u.into(),
            password: p.into(),
        }));
    }
    match (
        std::env::var("INFLUX_USERNAME"),
        std::env::var("INFLUX_PASSWORD"),
    ) {
        (Ok(u), Ok(p)) if !u.is_empty() => Ok(Some(Credentials {
            username: u,
            password: p,
        })),
        _ => Ok(None),
    }
}

/// The merge: schema, grants, points, then the optional check.
async fn merge_run(args: &RestoreArgs) -> anyhow::Result<ExitCode> {
    if args.newrp.is_some() || args.shard.is_some() {
        bail!(
            "--on-conflict merge|skip does not support --newrp or --shard yet \
             (merge whole retention policies with --rp)"
        );
    }
    let (backup, db, _src) = open_backup(args).await?;
    let m = &args.merge;
    let http = connect(m).await?;
    let new_db = args.newdb.clone().unwrap_or_else(|| db.clone());
    let schema = restore_schema(&http, &backup.meta, &db, &new_db).await?;
    let grants = restore_grants(&http, &backup.meta, &db, &new_db).await?;
    print_schema_and_grants(&new_db, &schema, &grants);
    let mut opts = MergeOptions::new(db.clone());
    opts.new_db = args.newdb.clone();
    opts.rp = args.rp.clone();
    opts.jobs = args
        .server
        .jobs
        .unwrap_or_else(super::common::default_jobs)
        .max(1);
    opts.batch_lines = m.batch.max(1);
    opts.mode = if m.on_conflict == OnConflict::Skip {
        ConflictMode::Skip
    } else {
        ConflictMode::Merge
    };
    opts.unsigned = if m.unsigned {
        UnsignedMode::Native
    } else {
        UnsignedMode::Refuse
    };
    opts.import_addr = (m.merge_mode == MergeMode::Auto).then(|| args.server.host.clone());
    let progress = MergeProgress::at(
        (!args.resume.no_resume)
            .then(|| super::common::state_dir(args.state_dir.as_ref()))
            .flatten()
            .map(|state| {
                done_path(
                    &state,
                    &source_id(args),
                    http.url(),
                    &new_db,
                    args.rp.as_deref(),
                )
            }),
    );
    let done = progress.done()?;
    let on_done = progress.recorder();
    let cancel = Arc::new(AtomicBool::new(false));
    let c2 = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c2.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let began = std::time::Instant::now();
    let report = merge(&http, &backup, &opts, &done, on_done, cancel)
        .await
        .with_context(|| format!("merge of {db} into {new_db} at {} stopped (re-run to resume: finished shards are recorded)", http.url()))?;
    let secs = began.elapsed().as_secs_f64();
    print_merge(&db, &new_db, &report, secs, args.server.json);
    let mut code = ExitCode::SUCCESS;
    if !schema.conflicts.is_empty() {
        eprintln!(
            "warning: {} definition(s) differ on the target and were left unchanged (named above)",
            schema.conflicts.len()
        );
    }
    if m.check {
        let rep = run_check(&http, &backup, &db, &new_db, true).await?;
        if check_verdict(&rep) != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    if code == ExitCode::SUCCESS {
        progress.finish()?;
    }
    Ok(code)
}

/// `STATE/merge/<src>-<url>-<db>[-<rp>].done`: the shards one merge has finished (never
/// inside the backup it reads).
fn done_path(state: &Path, src: &str, url: &str, db: &str, rp: Option<&str>) -> PathBuf {
    let clean = super::common::file_safe;
    let rp = rp.map(|r| format!("-{}", clean(r))).unwrap_or_default();
    state.join("merge").join(format!(
        "{}-{}-{}{rp}.done",
        clean(src),
        clean(url),
        clean(db)
    ))
}

/// The source as the user named it (a local directory canonicalized, a URL as given), and
/// `@AT` with `--at`: a merge of another restore point does not resume this one's progress.
fn source_id(args: &RestoreArgs) -> String {
    let local = args.src.strip_prefix("file://").unwrap_or(&args.src);
    let at = args
        .at
        .as_ref()
        .map(|a| format!("@{a}"))
        .unwrap_or_default();
    if local.contains("://") {
        return format!("{}{at}", args.src);
    }
    let p = Path::new(local);
    let dir = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    format!("{}{at}", dir.to_string_lossy())
}

fn print_merge(db: &str, new_db: &str, r: &MergeReport, secs: f64, json: bool) {
    let rate = r.values as f64 / secs.max(1e-9);
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    for (id, why) in &r.not_uploaded {
        eprintln!("note: shard {id} of {db} written point by point, not uploaded whole: {why}");
    }
    if json {
        let v = serde_json::json!({
            "status": "ok", "database": db, "target_database": new_db,
            "shards_merged": r.merged, "shards_uploaded_whole": r.imported,
            "shards_not_uploaded": r.not_uploaded.iter().map(|(id, why)| serde_json::json!({"shard": id, "reason": why})).collect::<Vec<_>>(),
            "notes": r.notes, "shards_already_done": r.already_done,
            "shards_skipped_with_data": r.skipped, "values": r.values, "uploaded_values": r.uploaded_values, "batches": r.batches,
            "runs_superseded": r.superseded_runs, "archives_superseded": r.superseded_archives,
            "elapsed_s": (secs * 1000.0).round() / 1000.0, "values_per_s": rate.round(),
        });
        println!("{v}");
    } else {
        eprintln!(
            "merge complete: {} field value(s) of {db} written into {new_db} from {} shard(s) in {secs:.1}s ({rate:.0} values/s); {} shard(s) uploaded whole ({} value(s)); {} shard(s) done in an earlier run; {} shard(s) skipped (target already had data in their time range: {:?}); {} older run(s) and {} archive(s) not read (superseded: a later run holds those shards whole)",
            r.values,
            r.merged.len(),
            r.imported.len(),
            r.uploaded_values,
            r.already_done.len(),
            r.skipped.len(),
            r.skipped,
            r.superseded_runs,
            r.superseded_archives
        );
    }
}

fn print_schema_and_grants(
    new_db: &str,
    s: &snapshotd_influxapi::SchemaReport,
    g: &snapshotd_influxapi::GrantsReport,
) {
    if s.created_db {
        eprintln!("created database {new_db}");
    }
    eprintln!(
        "retention policies: created {:?}, already identical {:?}; continuous queries: created {:?}, already identical {:?}",
        s.rps_created, s.rps_same, s.cqs_created, s.cqs_same
    );
    for c in &s.conflicts {
        eprintln!("warning: conflict: {c}");
    }
    for (u, p) in &g.applied {
        eprintln!("granted {p} on {new_db} to {u}");
    }
    if !g.missing_users.is_empty() {
        eprintln!(
            "note: users {:?} hold privileges on this database in the backup but do not exist on the target; the HTTP API cannot set a password hash: create them (CREATE USER) and re-run, or use --offline to restore the metastore with their hashes",
            g.missing_users
        );
    }
}

async fn run_check(
    http: &InfluxHttp,
    backup: &Backup,
    db: &str,
    new_db: &str,
    at_least: bool,
) -> anyhow::Result<CheckReport> {
    let b2 = backup.clone();
    let d2 = db.to_string();
    let deep = tokio::task::spawn_blocking(move || {
        deep_verify_applied(&b2, Some(&d2), &std::env::temp_dir())
    })
    .await
    .context("deep verify task")??;
    Ok(check_target(http, &deep, db, new_db, at_least).await?)
}

fn check_verdict(rep: &CheckReport) -> ExitCode {
    for r in &rep.rows {
        eprintln!(
            "check {}/{}/{}: backup {} value(s), target {}{}",
            r.database,
            r.rp,
            r.measurement,
            r.backup,
            r.target,
            if r.ok { "" } else { "  <-- MISMATCH" }
        );
    }
    let bad = rep.failures().count();
    if bad == 0 {
        eprintln!("check passed: {} measurement(s) compared", rep.rows.len());
        ExitCode::SUCCESS
    } else {
        eprintln!("error: check failed for {bad} measurement(s) (named above)");
        ExitCode::FAILURE
    }
}

/// `--offline --influx-meta-dir DIR [--influx-data-dir DIR]`: the restore point's complete
/// metastore (and with a data dir its shards) into a stopped influxd.
fn offline(args: &RestoreArgs) -> anyhow::Result<ExitCode> {
    if args.newdb.is_some() || args.newrp.is_some() {
        bail!(
            "--offline writes the backup's metastore as it was: --newdb/--newrp cannot be combined with it"
        );
    }
    if args.db.is_some() || args.rp.is_some() || args.shard.is_some() {
        bail!(
            "--offline writes the restore point's whole metastore (every database) and, with \
             --influx-data-dir, all its shards: drop --db/--rp/--shard"
        );
    }
    let Some(meta_dir) = &args.merge.influx_meta_dir else {
        bail!("--offline needs --influx-meta-dir DIR");
    };
    runtime()?.block_on(async {
        let src = local_source(args).await?;
        let last = chosen_manifest(&src.dir, args.at.as_deref()).await?;
        let backup = Backup::open_until(&src.dir, last.as_deref())?;
        let stamp = chrono_stamp();
        if let (Some(data_dir), Some(wal)) = (&args.merge.influx_data_dir, &args.merge.influx_wal_dir) {
            let b = backup.clone();
            let (d, w) = (data_dir.clone(), wal.clone());
            let r = tokio::task::spawn_blocking(move || write_shards_offline(&b, &d, &w))
                .await
                .context("offline shard restore task")??;
            eprintln!(
                "offline restore: wrote {} shard(s) ({} file(s), {}) into {}{}",
                r.shards,
                r.files,
                super::common::human_bytes(r.bytes),
                data_dir.display(),
                match r.already_there {
                    0 => String::new(),
                    n => format!("; {n} shard(s) already there from an earlier run"),
                }
            );
        }
        let r = write_meta_offline(&backup.meta, meta_dir, &stamp)?;
        eprintln!(
            "offline restore: wrote {} ({} database(s), {} user(s) with password hashes, {} continuous query(ies)){}",
            r.meta_db.display(),
            r.databases,
            r.users,
            r.continuous_queries,
            match &r.backup_copy {
                Some(c) => format!("; the previous meta.db is kept as {}", c.display()),
                None => String::new(),
            }
        );
        if args.merge.influx_data_dir.is_none() {
            eprintln!(
                "note: no shard data was written (pass --influx-data-dir to restore it too)"
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn chrono_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    secs.to_string()
}
