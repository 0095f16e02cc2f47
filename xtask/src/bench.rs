//! `cargo xtask bench [wal|backup|restore|all]`: our benchmarks beside the peers'.

use anyhow::Result;

use crate::util::{cargo, step};

/// Which benchmark family to run.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Which {
    /// WAL append and read_all, against etcd's Go wal through the harness.
    Wal,
    /// Backup, against `influxd backup -portable`.
    Backup,
    /// Restore, against `influxd restore -portable`.
    Restore,
    /// Everything.
    All,
}

/// Flags of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Benchmark family.
    #[arg(value_enum, default_value = "all")]
    which: Which,
    /// A short smoke run.
    #[arg(long)]
    quick: bool,
}

/// Entry point.
pub fn run(args: Args) -> Result<()> {
    // (label, package, bench target)
    let mut benches: Vec<(&str, &str, &str)> = Vec::new();
    if matches!(args.which, Which::Wal | Which::All) {
        benches.push(("wal vs etcd's Go wal", "snapshotd-wal", "wal"));
    }
    if matches!(args.which, Which::Backup | Which::All) {
        benches.push((
            "server streaming vs disk read",
            "snapshotd-server",
            "backup_stream",
        ));
    }
    if matches!(args.which, Which::Backup | Which::Restore | Which::All) {
        benches.push(("backup/restore vs influxd -portable", "snapshotd", "backup"));
    }
    if matches!(args.which, Which::All) {
        benches.push((
            "checkpoint flush and encryption",
            "snapshotd-checkpoint",
            "checkpoint",
        ));
    }
    for (label, pkg, bench) in benches {
        let mut cmd = cargo();
        cmd.args(["bench", "-p", pkg, "--bench", bench]);
        if args.quick {
            cmd.env("SNAPSHOTD_BENCH_QUICK", "1");
        }
        step(&format!("bench {label}"), &mut cmd)?;
    }
    eprintln!("xtask: bench: figures above; tables in docs/benchmarks.md");
    Ok(())
}
