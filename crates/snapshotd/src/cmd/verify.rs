//! `snapshotd verify`: check a backup directory against its manifests, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use snapshotd_client::Storage;
use snapshotd_client::verify::verify;
use snapshotd_wire::Limits;

use super::backup::default_jobs;

/// Flags of `snapshotd verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Files checked at once [default: number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Backup directory.
    #[arg(value_name = "SRC")]
    pub src: PathBuf,
}

/// Runs `snapshotd verify`; exits 1 when anything is wrong.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    let report = rt.block_on(async {
        let src = Storage::local(&args.src, false)?;
        verify(&src, jobs, Limits::default().max_meta_blob).await
    })?;
    if args.json {
        let v = serde_json::json!({
            "status": if report.ok() { "ok" } else { "error" },
            "src": args.src.display().to_string(),
            "manifests": report.manifests,
            "files_checked": report.files_checked,
            "files_without_checksum": report.without_checksum,
            "problems": report.problems,
            "notes": report.notes,
        });
        println!("{v}");
    } else {
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
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
