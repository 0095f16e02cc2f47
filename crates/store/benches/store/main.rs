//! The built-in store against a real influxd 1.6.7 in the same run, on the same data, for
//! two data sets with the store's default compaction policy, plus one run with low
//! thresholds that make compactions race the writes: `/write` ingest (gzip bodies,
//! 5000-point batches, one keep-alive connection) with p50/p99/max batch latency (writes that
//! overlapped a compaction or merge reported apart), compaction throughput, and the backup of
//! each server by `influxd backup -portable`, ours restored into influxd and counted.
//!
//! Run: `cargo xtask bench store`. Knobs: `SNAPSHOTD_BENCH_QUICK=1` (a smaller smoke run);
//! `SNAPSHOTD_BENCH_STORE_RUNS=cpu,tsbs,cpu@4MiB` (the runs: a set name, `@4MiB` for the
//! low-threshold policy); `SNAPSHOTD_BENCH_STORE_BATCHES=<n>` (batches per set, 2400 = 1 GB
//! of `cpu`); `SNAPSHOTD_BENCH_STORE_NICE=<n>` (the compaction worker's nice increment);
//! `SNAPSHOTD_BENCH_STORE_WAL_MB=<n>` (only the bounded-log run, n MB then n/10 MB of line
//! protocol, `SNAPSHOTD_BENCH_STORE_SEGMENT_MB` setting its segment size).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod bounded;
mod compare;
mod http;
mod sets;
mod util;

use snapshotd_store::CompactionPolicy;

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The policy of a run: the store's default, or thresholds of 4096 entries / 4 MiB (a
/// compaction every ~7 `cpu` batches) for `@4MiB`.
fn policy(low: bool) -> CompactionPolicy {
    let mut p = CompactionPolicy::default();
    if low {
        p = p.with_thresholds(4096, 4 * 1024 * 1024);
    }
    if let Some(n) = env_num("SNAPSHOTD_BENCH_STORE_NICE") {
        p = p.with_nice(n);
    }
    p
}

fn main() {
    if let Some(mb) = env_num::<u64>("SNAPSHOTD_BENCH_STORE_WAL_MB") {
        let big = bounded::bounded_wal(mb);
        let small = bounded::bounded_wal((mb / 10).max(1));
        println!(
            "reopen time ratio, {mb} MB vs {} MB of history: {:.2}",
            (mb / 10).max(1),
            big / small
        );
        return;
    }
    let quick = std::env::var_os("SNAPSHOTD_BENCH_QUICK").is_some();
    let batches: Option<usize> = env_num("SNAPSHOTD_BENCH_STORE_BATCHES");
    let runs =
        std::env::var("SNAPSHOTD_BENCH_STORE_RUNS").unwrap_or_else(|_| "cpu,tsbs,cpu@4MiB".into());
    for r in runs.split(',').filter(|r| !r.is_empty()) {
        let (name, low) = match r.split_once('@') {
            Some((n, "4MiB")) => (n, true),
            Some((_, other)) => panic!("unknown policy {other:?} (only @4MiB)"),
            None => (r, false),
        };
        // tsbs points are ~5x larger than cpu's: fewer batches for similar bytes.
        let n = batches.unwrap_or(match (name, quick) {
            ("tsbs", true) => 10,
            ("tsbs", false) => 60,
            (_, true) => 40,
            _ => 200,
        });
        let set = sets::by_name(name, n);
        let label = if low {
            "tuned: 4096 entries / 4 MiB thresholds"
        } else {
            "default policy"
        };
        compare::run(&set, policy(low), label);
        if name == "cpu" && low && batches.is_none() {
            bounded::compaction_throughput(&set.bodies);
        }
    }
}
