//! `snapshotd decrypt SRC DEST`: turn an encrypted backup directory into a plain one.

use std::path::PathBuf;
use std::process::ExitCode;

use snapshotd_checkpoint::{MasterKey, decrypt_dir};

/// Flags of `snapshotd decrypt`.
#[derive(Debug, clap::Args)]
pub struct DecryptArgs {
    /// Key file: 32 raw bytes or 64 hex characters.
    #[arg(long, value_name = "FILE", env = "SNAPSHOTD_ENCRYPT_KEY_FILE")]
    pub encrypt_key_file: PathBuf,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Encrypted backup directory (files ending in `.enc` are decrypted).
    #[arg(value_name = "SRC")]
    pub src: PathBuf,
    /// New or empty directory receiving the plain backup.
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
}

/// Runs `snapshotd decrypt`.
pub fn run(args: DecryptArgs) -> anyhow::Result<ExitCode> {
    let key = MasterKey::from_file(&args.encrypt_key_file)?;
    let s = decrypt_dir(&key, &args.src, &args.dest)?;
    if args.json {
        let v = serde_json::json!({
            "status": "ok", "src": args.src.display().to_string(),
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
