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
    let mut families = Vec::new();
    if matches!(args.which, Which::Wal | Which::All) {
        families.push(("wal", "snapshotd-wal"));
    }
    if matches!(args.which, Which::Backup | Which::Restore | Which::All) {
        families.push(("backup/restore", "snapshotd"));
    }
    for (name, pkg) in families {
        let mut cmd = cargo();
        cmd.args(["bench", "-p", pkg]);
        if args.quick {
            cmd.env("SNAPSHOTD_BENCH_QUICK", "1");
        }
        step(&format!("bench {name}"), &mut cmd)?;
    }
    Ok(())
}
