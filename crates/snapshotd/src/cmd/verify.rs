//! `snapshotd verify`: check a backup (every restore point, or one with `--at`) against its
//! manifests, offline, and note when each point was last found intact.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use snapshotd_checkpoint::{Destination, ENC_SUFFIX, MasterKey};
use snapshotd_client::Storage;
use snapshotd_client::verify::{VerifyReport, verify_at};
use snapshotd_wire::Limits;

use super::common::{default_jobs, open_existing, runtime};
use super::metrics_file::{self, RunMetrics};

/// Flags of `snapshotd verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Files checked at once [default: number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only this restore point: its id or an RFC 3339 time (the newest point at or before it).
    #[arg(long, value_name = "ID|TIME")]
    pub at: Option<String>,
    /// Key of a backup written with `--encrypt-key-file`: every `.enc` file is authenticated
    /// and decrypted into a private temporary directory, then checked like a plain backup.
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Do not leave `TS.verified` beside the points found intact (the "verified" column of
    /// `snapshotd snapshots`).
    #[arg(long)]
    pub no_record: bool,
    /// Write Prometheus metrics of this run here (node_exporter textfile format), atomically.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Backup location: a directory, `file://…` or `s3://bucket/prefix`.
    #[arg(value_name = "SRC")]
    pub src: String,
    /// `--deep`: decode every TSM block and count points.
    #[command(flatten)]
    pub deep: super::deep::DeepArgs,
}

/// Checks `src`, decrypting it first when a key is given.
async fn check(args: &VerifyArgs, dest: &Destination, jobs: usize) -> anyhow::Result<VerifyReport> {
    let limit = Limits::default().max_meta_blob;
    let at = args.at.as_deref();
    let Some(f) = &args.encrypt_key_file else {
        let src = Storage::from_store(dest.rooted_store(), dest.to_string());
        let encrypted = src
            .list()
            .await?
            .iter()
            .any(|e| e.name.ends_with(ENC_SUFFIX));
        let mut report = verify_at(&src, jobs, limit, at).await?;
        if encrypted {
            report.problems.push(format!(
                "{dest} holds encrypted files ({ENC_SUFFIX}): pass --encrypt-key-file to verify them"
            ));
        }
        return Ok(report);
    };
    let key = MasterKey::from_file(f)?;
    let plain = tempfile::Builder::new()
        .prefix("snapshotd-verify-")
        .tempdir()
        .context("create a temporary directory for the decrypted copy")?;
    snapshotd_checkpoint::decrypt_destination(&key, dest, plain.path())
        .await
        .with_context(|| format!("decrypt {dest} (wrong key or tampered file?)"))?;
    let src = Storage::local(plain.path(), false)?;
    let mut report = verify_at(&src, jobs, limit, at).await?;
    report
        .notes
        .push("encrypted backup: every file authenticated and decrypted".into());
    Ok(report)
}

/// Leaves `TS.verified` beside every point found intact; a read-only location gets a note.
async fn record(dest: &Destination, report: &mut VerifyReport) {
    let src = Storage::from_store(dest.rooted_store(), dest.to_string());
    for m in report.manifests.clone() {
        let id = m.trim_end_matches(".manifest");
        if let Err(e) =
            snapshotd_client::points::record_verified(&src, id, report.files_checked).await
        {
            report
                .notes
                .push(format!("could not record the verification of {id}: {e}"));
            return;
        }
    }
}

/// Runs `snapshotd verify`; exits 1 when anything is wrong.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = super::deep::run_if_requested(&args.deep, &args.src, args.json)? {
        return Ok(code);
    }
    let dest = open_existing(&args.src)?;
    let rt = runtime()?;
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    let began = Instant::now();
    let result = rt.block_on(async {
        let mut report = check(&args, &dest, jobs).await?;
        if report.ok() && !args.no_record {
            record(&dest, &mut report).await;
        }
        anyhow::Ok(report)
    });
    if let Some(path) = &args.metrics_file {
        let m = RunMetrics {
            ok: result.as_ref().is_ok_and(VerifyReport::ok),
            duration: began.elapsed(),
            bytes: 0,
            units: result.as_ref().map_or(0, |r| r.files_checked as u64),
        };
        metrics_file::write(path, "verify", &args.src, &m)?;
    }
    let report = result?;
    print(&args, &report);
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print(args: &VerifyArgs, report: &VerifyReport) {
    if args.json {
        let v = serde_json::json!({
            "status": if report.ok() { "ok" } else { "error" },
            "src": args.src,
            "manifests": report.manifests,
            "files_checked": report.files_checked,
            "files_without_checksum": report.without_checksum,
            "problems": report.problems,
            "notes": report.notes,
        });
        println!("{v}");
        return;
    }
    for n in &report.notes {
        println!("note: {n}");
    }
    for p in &report.problems {
        println!("FAIL: {p}");
    }
    if report.ok() {
        println!(
            "OK: {} file(s) in {} manifest(s) verified{}",
            report.files_checked,
            report.manifests.len(),
            if report.without_checksum > 0 {
                " (sizes and structure only where influxd wrote no checksum)"
            } else {
                " (sizes, sha256, meta and tar structure)"
            }
        );
    } else {
        println!("FAILED: {} problem(s)", report.problems.len());
    }
}
