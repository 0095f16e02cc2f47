//! One module per subcommand; each owns its clap `Args` and a `run` function.

mod decrypt;
mod unlock;

mod backup;
mod common;
mod deep;
mod etcd;
mod forget;
mod merge;
mod metrics_file;
mod progress;
mod restore;
mod serve;
mod snapshots;
mod verify;
mod wal;

pub use common::fail;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Subcommand;

/// The subcommands of `snapshotd`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back up an influxd or snapshotd server into a portable backup directory.
    Backup(backup::BackupArgs),
    /// Restore a portable backup (snapshotd's or influxd's) into a server.
    Restore(restore::RestoreArgs),
    /// Check a backup directory against its manifests (sizes, sha256, meta, archives).
    Verify(verify::VerifyArgs),
    /// List the restore points of a backup location (ours or influxd's).
    Snapshots(snapshots::SnapshotsArgs),
    /// Remove the restore points a retention policy does not keep (restic's rules).
    Forget(forget::ForgetArgs),
    /// Serve the snapshot protocol (port 8088) and the HTTP API over the built-in store.
    Serve(serve::ServeArgs),
    /// Show who holds a destination's checkpoint lock, then remove it.
    Unlock(unlock::UnlockArgs),
    /// Decrypt an encrypted backup directory into a plain portable backup.
    Decrypt(decrypt::DecryptArgs),
    /// Inspect, verify and repair etcd 3.4 WAL directories.
    Wal(wal::WalArgs),
    /// Archive etcd members' WAL continuously and restore to a raft index or time.
    Etcd(etcd::EtcdArgs),
}

/// Dispatches a parsed subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Backup(args) => backup::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Snapshots(args) => snapshots::run(args),
        Command::Forget(args) => forget::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Unlock(args) => unlock::run(args),
        Command::Decrypt(args) => decrypt::run(args),
        Command::Wal(args) => wal::run(args),
        Command::Etcd(args) => etcd::run(args),
    }
}

/// Installs the tracing subscriber (RUST_LOG, default `info`) writing to stderr.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// S3 settings from this process's environment (the standard `AWS_*` variables; see
/// `S3Options::from_lookup`). Only the binary reads environment variables.
pub(crate) fn s3_options() -> snapshotd_checkpoint::S3Options {
    snapshotd_checkpoint::S3Options::from_lookup(|k| std::env::var(k).ok())
}
