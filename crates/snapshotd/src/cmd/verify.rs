//! `snapshotd verify`: check a backup directory against its manifests, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use snapshotd_checkpoint::{Destination, ENC_SUFFIX, MasterKey, S3Options};
use snapshotd_client::Storage;
use snapshotd_client::verify::{VerifyReport, verify};
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
    /// Key of a backup written with `--encrypt-key-file`: every `.enc` file is authenticated
    /// and decrypted into a private temporary directory, then checked like a plain backup.
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Backup location: a directory, `file://…` or `s3://bucket/prefix`.
    #[arg(value_name = "SRC")]
    pub src: String,
    // [merge-wiring] issue 15: --deep (cmd/deep.rs).
    #[command(flatten)]
    pub deep: super::deep::DeepArgs,
}

/// Checks `src`, decrypting it first when a key is given.
async fn check(args: &VerifyArgs, jobs: usize) -> anyhow::Result<VerifyReport> {
    let dest = Destination::open(&args.src, &S3Options::from_env())?;
    let limit = Limits::default().max_meta_blob;
    match &args.encrypt_key_file {
        Some(f) => {
            let key = MasterKey::from_file(f)?;
            let plain = tempfile::Builder::new()
                .prefix("snapshotd-verify-")
                .tempdir()
                .context("create a temporary directory for the decrypted copy")?;
            snapshotd_checkpoint::decrypt_destination(&key, &dest, plain.path())
                .await
                .with_context(|| format!("decrypt {dest} (wrong key or tampered file?)"))?;
            let src = Storage::local(plain.path(), false)?;
            let mut report = verify(&src, jobs, limit).await?;
            report
                .notes
                .push("encrypted backup: every file authenticated and decrypted".into());
            Ok(report)
        }
        None => {
            let src = Storage::from_store(dest.rooted_store(), dest.to_string());
            let encrypted = src
                .list()
                .await?
                .iter()
                .any(|e| e.name.ends_with(ENC_SUFFIX));
            let mut report = verify(&src, jobs, limit).await?;
            if encrypted {
                report.problems.push(format!(
                    "{dest} holds encrypted files ({ENC_SUFFIX}): pass --encrypt-key-file to verify them"
                ));
            }
            Ok(report)
        }
    }
}

/// Runs `snapshotd verify`; exits 1 when anything is wrong.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    // [merge-wiring] issue 15: verify --deep decodes every TSM block.
    if let Some(code) = super::deep::run_if_requested(&args.deep, &args.src, args.json)? {
        return Ok(code);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    let report = rt.block_on(check(&args, jobs))?;
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
