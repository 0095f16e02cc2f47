//! `cargo xtask bench backup|restore`: `snapshotd backup/restore` against
//! `influxd backup/restore -portable` on the same influxd 1.6.7 and the same data, same run.
//!
//! Two data sets, each loaded once into its own influxd, then each tool timed several times
//! (median, the tools alternating) with the client's peak RSS sampled:
//! - `metrics`: hosts × 5 float fields (2 decimals) every 10 s × days, 1-day shards;
//! - `mixed`: many small 1-hour shards plus one large 52-week shard (a shape the adaptive
//!   compression was not tuned on).
//!
//! snapshotd runs with its default flags. Influxd is `SNAPSHOTD_INFLUXD_BIN` or `influxd` on
//! PATH. `SNAPSHOTD_BENCH_SETS=metrics,mixed` picks sets; scale with `SNAPSHOTD_BENCH_HOSTS` /
//! `SNAPSHOTD_BENCH_DAYS` / `SNAPSHOTD_BENCH_RUNS`; `SNAPSHOTD_BENCH_QUICK=1` is a smoke run.
//! `SNAPSHOTD_BENCH_SNAPSHOTD_ARGS` adds flags to every `snapshotd backup` (for A/B of a flag).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../client/tests/support/influxd.rs"]
mod influxd;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use snapshotd_testutil::measure::{env_u32, measure};

use influxd::Influxd;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn dir_bytes(d: &Path) -> u64 {
    std::fs::read_dir(d)
        .map(|it| {
            it.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// xorshift values with 2 decimals in 0..100.
fn values() -> impl FnMut() -> f64 {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10_000) as f64 / 100.0
    }
}

/// Writes `steps` 10-second steps of `hosts` × 5 fields from `t0` into `db`/`rp`.
fn write_metrics(s: &Influxd, db: &str, rp: Option<&str>, t0: i64, steps: u32, hosts: u32) -> u64 {
    let mut rnd = values();
    let mut batch = String::with_capacity(4 << 20);
    let mut n = 0u64;
    for step in 0..steps {
        let t = (t0 + i64::from(step) * 10) * 1_000_000_000;
        for h in 0..hosts {
            batch.push_str(&format!(
                "cpu,host=host{h:04},dc=dc{} usr={},sys={},idle={},iowait={},steal={} {t}\n",
                h % 4,
                rnd(),
                rnd(),
                rnd(),
                rnd(),
                rnd()
            ));
            n += 5;
        }
        if batch.len() > (3 << 20) {
            s.write(db, rp, &batch);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        s.write(db, rp, &batch);
    }
    n
}

const T0: i64 = 1_609_459_200; // 2021-01-01T00:00:00Z

/// One data set: how to load it and what to count after a restore.
struct Set {
    name: &'static str,
    what: String,
    /// (retention policy, measurement) whose `count(usr)` must match after both restores.
    counted: Vec<&'static str>,
}

/// `metrics`: one database, 1-day shards, `hosts` hosts over `days` days.
fn load_metrics(s: &Influxd, hosts: u32, days: u32) -> (Set, u64) {
    s.query("CREATE DATABASE bench WITH SHARD DURATION 1d");
    let n = write_metrics(s, "bench", None, T0, days * 8640, hosts);
    let what = format!(
        "metrics: {hosts} hosts × 5 float fields every 10 s × {days} day(s) in 1-day shards"
    );
    (
        Set {
            name: "metrics",
            what,
            counted: vec!["autogen"],
        },
        n,
    )
}

/// `mixed`: 48 one-hour shards of 10 hosts (RP `hourly`) and one 52-week shard holding
/// `hosts` hosts × `days` days (RP `big`).
fn load_mixed(s: &Influxd, hosts: u32, days: u32) -> (Set, u64) {
    s.query("CREATE DATABASE bench");
    s.query("CREATE RETENTION POLICY hourly ON bench DURATION INF REPLICATION 1 SHARD DURATION 1h");
    s.query("CREATE RETENTION POLICY big ON bench DURATION INF REPLICATION 1 SHARD DURATION 52w");
    let mut n = write_metrics(s, "bench", Some("hourly"), T0, 48 * 360, 10);
    n += write_metrics(s, "bench", Some("big"), T0, days * 8640, hosts);
    let what = format!(
        "mixed: 48 one-hour shards (10 hosts) + one 52-week shard ({hosts} hosts × {days} day(s)), 5 float fields every 10 s"
    );
    (
        Set {
            name: "mixed",
            what,
            counted: vec!["hourly", "big"],
        },
        n,
    )
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Medians and peaks of one comparison.
#[derive(Default)]
struct Side {
    times: Vec<Duration>,
    rss: u64,
    size: u64,
}

impl Side {
    fn add(&mut self, (e, r): (Duration, u64)) {
        self.times.push(e);
        self.rss = self.rss.max(r);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list.
    }
    let quick = std::env::var_os("SNAPSHOTD_BENCH_QUICK").is_some();
    let influxd = match std::env::var_os("SNAPSHOTD_INFLUXD_BIN") {
        Some(p) => std::path::PathBuf::from(p),
        None => match std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|p| p.join("influxd"))
            .find(|p| p.is_file())
        {
            Some(p) => p,
            None => {
                eprintln!("bench backup/restore: SKIP (influxd not found)");
                return;
            }
        },
    };
    let sets = std::env::var("SNAPSHOTD_BENCH_SETS").unwrap_or_else(|_| "metrics,mixed".into());
    for set in sets.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        run_set(&influxd, set, quick);
    }
}

fn run_set(influxd: &Path, set: &str, quick: bool) {
    let hosts = env_u32("SNAPSHOTD_BENCH_HOSTS", if quick { 20 } else { 100 });
    let days = env_u32("SNAPSHOTD_BENCH_DAYS", if quick { 1 } else { 5 });
    let runs = env_u32("SNAPSHOTD_BENCH_RUNS", if quick { 1 } else { 3 }).max(1);
    let snapshotd = env!("CARGO_BIN_EXE_snapshotd");
    let extra: Vec<String> = std::env::var("SNAPSHOTD_BENCH_SNAPSHOTD_ARGS")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();

    let a = Influxd::start_with(influxd);
    let t = Instant::now();
    let (set, values) = match set {
        "metrics" => load_metrics(&a, hosts, days),
        "mixed" => load_mixed(&a, hosts, days),
        other => panic!("unknown data set {other:?} (metrics, mixed)"),
    };
    eprintln!(
        "{}: loaded {values} values in {:.0?}",
        set.name,
        t.elapsed()
    );
    let work = snapshotd_testutil::temp_dir();
    // Warm-up: flushes every shard's cache to TSM so both tools see the same files.
    let warm = work.path().join("warm");
    measure(
        Command::new(snapshotd)
            .args(["backup", "--host", &a.bind])
            .arg(&warm),
    );
    let data = a.dir.path().join("data/bench");
    let mut shards = 0;
    let mut tsm = 0u64;
    for rp in std::fs::read_dir(&data).unwrap().filter_map(|e| e.ok()) {
        if rp.file_name().to_string_lossy().starts_with('_') {
            continue; // `_series`: the database's series file, not a retention policy.
        }
        for sh in std::fs::read_dir(rp.path()).unwrap().filter_map(|e| e.ok()) {
            shards += 1;
            tsm += dir_bytes(&sh.path());
        }
    }
    let load_before = load_avg();

    let (mut ib, mut sb) = (Side::default(), Side::default());
    for i in 0..runs {
        let d = work.path().join(format!("influx{i}"));
        ib.add(measure(
            Command::new(influxd)
                .args(["backup", "-portable", "-host", &a.bind])
                .arg(&d),
        ));
        ib.size = dir_bytes(&d);
        let d = work.path().join(format!("snap{i}"));
        sb.add(measure(
            Command::new(snapshotd)
                .args(["backup", "--host", &a.bind])
                .args(&extra)
                .arg(&d),
        ));
        sb.size = dir_bytes(&d);
    }

    // Restores: into one fresh influxd, a new database per run (both tools rename).
    let b = Influxd::start_with(influxd);
    let src_influx = work.path().join("influx0");
    let src_snap = work.path().join("snap0");
    let (mut ir, mut sr) = (Side::default(), Side::default());
    for i in 0..runs {
        ir.add(measure(
            Command::new(influxd)
                .args([
                    "restore",
                    "-portable",
                    "-host",
                    &b.bind,
                    "-db",
                    "bench",
                    "-newdb",
                ])
                .arg(format!("ri{i}"))
                .arg(&src_influx),
        ));
        sr.add(measure(
            Command::new(snapshotd)
                .args(["restore", "--host", &b.bind, "--db", "bench", "--newdb"])
                .arg(format!("rs{i}"))
                .arg(&src_snap),
        ));
    }
    let load_after = load_avg();
    // The restored databases hold the same number of points as the source.
    let count = |s: &Influxd, db: &str, rp: &str| {
        s.query(&format!("SELECT count(usr) FROM \"{db}\".\"{rp}\".cpu"))["results"][0]["series"][0]
            ["values"][0][1]
            .as_i64()
            .unwrap_or(-1)
    };
    for rp in &set.counted {
        let want = count(&a, "bench", rp);
        assert!(want > 0, "{rp}: no source data");
        assert_eq!(count(&b, "ri0", rp), want, "influxd restore of {rp}");
        assert_eq!(count(&b, "rs0", rp), want, "snapshotd restore of {rp}");
    }
    report(
        &set,
        values,
        shards,
        tsm,
        runs,
        &extra,
        [ib, sb, ir, sr],
        (load_before, load_after),
    );
}

#[allow(clippy::too_many_arguments)]
fn report(
    set: &Set,
    values: u64,
    shards: u32,
    tsm: u64,
    runs: u32,
    extra: &[String],
    [ib, sb, ir, sr]: [Side; 4],
    (load_before, load_after): (String, String),
) {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let flags = if extra.is_empty() {
        "default flags".to_string()
    } else {
        format!("flags `{}`", extra.join(" "))
    };
    println!(
        "\n### Data set `{}`\n\n{}: {values} values, {shards} shards, {:.0} MiB of TSM on disk; \
         influxd 1.6.7 on loopback, {cores} cores, median of {runs} run(s); snapshotd with \
         {flags}. Load average before / after: {load_before} / {load_after}.\n",
        set.name,
        set.what,
        mib(tsm)
    );
    println!(
        "| operation | influxd -portable | snapshotd | speed-up | client peak RSS (influxd / snapshotd) | backup size (influxd / snapshotd) |"
    );
    println!("|---|---|---|---|---|---|");
    let row = |op: &str, i: Side, s: Side, sizes: bool| {
        let (im, sm) = (median(i.times), median(s.times));
        let size = if sizes {
            format!("{:.0} / {:.0} MiB", mib(i.size), mib(s.size))
        } else {
            String::new()
        };
        println!(
            "| {op} | {:.2} s | {:.2} s | {:.1}× | {} / {} MiB | {size} |",
            im.as_secs_f64(),
            sm.as_secs_f64(),
            im.as_secs_f64() / sm.as_secs_f64(),
            i.rss / 1024,
            s.rss / 1024,
        );
    };
    row("backup", ib, sb, true);
    row("restore", ir, sr, false);
}
