//! `snapshotd decrypt SRC DEST`: turn an encrypted backup directory into a plain one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use snapshotd_checkpoint::{Destination, MasterKey, decrypt_destination};

/// Flags of `snapshotd decrypt`.
#[derive(Debug, clap::Args)]
pub struct DecryptArgs {
    /// Key file: 32 raw bytes or 64 hex characters.
    #[arg(long, value_name = "FILE", env = "SNAPSHOTD_ENCRYPT_KEY_FILE")]
    pub encrypt_key_file: PathBuf,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// S3 endpoint override for an `s3://` SRC (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Encrypted backup: a directory, file:///dir or s3://bucket/prefix (files ending in
    /// `.enc` are decrypted, others copied).
    #[arg(value_name = "SRC")]
    pub src: String,
    /// New or empty directory receiving the plain backup.
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
}

/// Runs `snapshotd decrypt`.
pub fn run(args: DecryptArgs) -> anyhow::Result<ExitCode> {
    let key = MasterKey::from_file(&args.encrypt_key_file)?;
    let mut s3 = super::s3_options();
    if args.s3_endpoint.is_some() {
        s3.endpoint = args.s3_endpoint.clone();
    }
    if !args.src.contains("://") && !std::path::Path::new(&args.src).is_dir() {
        anyhow::bail!("{} is not a directory", args.src);
    }
    let src = Destination::open(&args.src, &s3)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let s = rt.block_on(decrypt_destination(&key, &src, &args.dest))?;
    if args.json {
        let v = serde_json::json!({
            "status": "ok", "src": args.src,
            "dest": args.dest.display().to_string(), "decrypted": s.decrypted,
            "copied": s.copied, "bytes": s.bytes,
        });
        println!("{v}");
    } else {
        println!(
            "decrypted {} file(s), copied {} plain file(s), {} bytes into {}",
            s.decrypted,
            s.copied,
            s.bytes,
            args.dest.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
