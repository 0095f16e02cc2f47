//! `cargo xtask bench [wal|backup|restore|tsm|merge|store|etcd|all]`: our benchmarks beside the peers'.
//! `cargo xtask bench backup [--sets metrics,mixed] [--snapshotd-args FLAGS]` compares
//! `snapshotd backup/restore` (default flags unless FLAGS) with `influxd … -portable`.
//! `cargo xtask bench wal --fsync-delay-ms N` runs the WAL comparison on a disk whose fsync
//! takes N ms longer (a FUSE passthrough, see slowfs.rs).

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
    /// Merge into an existing database, against `influxd restore -newdb` + `SELECT INTO`.
    Merge,
    /// TSM encode/decode throughput per value type.
    Tsm,
    /// The built-in store: `/write` ingest, compaction, backup, against influxd 1.6.7.
    Store,
    /// etcd archive lag and point-in-time restore, against `etcdctl snapshot save/restore`.
    Etcd,
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
    /// Only with `backup`/`restore`: the data sets, comma-separated (`metrics`: 1-day shards
    /// of a metrics workload; `mixed`: 48 one-hour shards plus one large shard).
    #[arg(long, value_name = "SETS", default_value = "metrics,mixed")]
    sets: String,
    /// Only with `backup`/`restore`: extra `snapshotd backup` flags, e.g.
    /// `--snapshotd-args='--compression gzip'` (the defaults are measured without any).
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    snapshotd_args: Option<String>,
    /// Only with `wal`: compare on a FUSE mount whose fsync sleeps this many milliseconds
    /// first, as a disk without a fast write cache (needs `apt-get install fuse libfuse2`).
    #[arg(long, value_name = "MS")]
    fsync_delay_ms: Option<u64>,
}

/// Entry point.
pub fn run(args: Args) -> Result<()> {
    if let Some(ms) = args.fsync_delay_ms {
        if args.which != Which::Wal {
            anyhow::bail!("--fsync-delay-ms applies to `cargo xtask bench wal` only");
        }
        let fs = crate::slowfs::SlowFs::mount(ms)?;
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "snapshotd-wal", "--bench", "wal"])
            .env("SNAPSHOTD_BENCH_WAL_DIR", fs.path())
            .env("SNAPSHOTD_BENCH_COMPARE_ONLY", "1");
        if args.quick {
            cmd.env("SNAPSHOTD_BENCH_QUICK", "1");
        }
        step(
            &format!("bench wal vs etcd's Go wal, fsync + {ms} ms"),
            &mut cmd,
        )?;
        return Ok(());
    }
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
    if matches!(args.which, Which::Merge | Which::All) {
        benches.push((
            "merge vs influx's -newdb + SELECT INTO",
            "snapshotd",
            "merge",
        ));
    }
    if matches!(args.which, Which::Tsm | Which::All) {
        benches.push(("TSM encode/decode per type", "snapshotd-tsm", "tsm"));
    }
    if matches!(args.which, Which::Store | Which::All) {
        benches.push((
            "built-in store vs influxd 1.6.7",
            "snapshotd-store",
            "store",
        ));
    }
    if matches!(args.which, Which::Etcd | Which::All) {
        benches.push((
            "etcd archive lag and restore vs etcdctl snapshot",
            "snapshotd",
            "etcd",
        ));
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
        if bench == "backup" {
            cmd.env("SNAPSHOTD_BENCH_SETS", &args.sets);
            if let Some(f) = &args.snapshotd_args {
                cmd.env("SNAPSHOTD_BENCH_SNAPSHOTD_ARGS", f);
            }
        }
        step(&format!("bench {label}"), &mut cmd)?;
    }
    eprintln!("xtask: bench: figures above; tables in docs/benchmarks.md");
    Ok(())
}
