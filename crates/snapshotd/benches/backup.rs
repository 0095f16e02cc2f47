//! `cargo xtask bench backup|restore`: `snapshotd backup/restore` against
//! `influxd backup/restore -portable` on the same influxd 1.6.7 and the same data, same run.
//!
//! Loads a metrics-like workload (hosts × 5 float fields every 10 s × days, 1-day shards) once,
//! then times each tool several times (median) and samples the client's peak RSS. Influxd is
//! `SNAPSHOTD_INFLUXD_BIN` or `influxd` on PATH. Scale with `SNAPSHOTD_BENCH_HOSTS` /
//! `SNAPSHOTD_BENCH_DAYS` / `SNAPSHOTD_BENCH_RUNS`; `SNAPSHOTD_BENCH_QUICK=1` is a smoke run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../client/tests/support/influxd.rs"]
mod influxd;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use influxd::Influxd;

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Wall time and peak RSS (KiB, sampled from /proc) of one command.
fn measure(cmd: &mut Command) -> (Duration, u64) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            for line in s.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    peak = peak.max(kb);
                }
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            let elapsed = start.elapsed();
            if !st.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("{cmd:?} failed: {err}");
            }
            return (elapsed, peak);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

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

fn load(s: &Influxd, hosts: u32, days: u32) -> u64 {
    s.query("CREATE DATABASE bench WITH SHARD DURATION 1d");
    let t0: i64 = 1_609_459_200;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10_000) as f64 / 100.0
    };
    let mut batch = String::with_capacity(4 << 20);
    let mut values = 0u64;
    for step in 0..(days * 8640) {
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
            values += 5;
        }
        if batch.len() > (3 << 20) {
            s.write("bench", None, &batch);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        s.write("bench", None, &batch);
    }
    values
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
    let hosts = env_u32("SNAPSHOTD_BENCH_HOSTS", if quick { 20 } else { 100 });
    let days = env_u32("SNAPSHOTD_BENCH_DAYS", if quick { 1 } else { 4 });
    let runs = env_u32("SNAPSHOTD_BENCH_RUNS", if quick { 1 } else { 3 }).max(1);
    let snapshotd = env!("CARGO_BIN_EXE_snapshotd");

    let a = Influxd::start_with(&influxd);
    let t = Instant::now();
    let values = load(&a, hosts, days);
    eprintln!("loaded {values} values in {:.0?}", t.elapsed());
    let work = snapshotd_testutil::temp_dir();
    // Warm-up: flushes every shard's cache to TSM so both tools see the same files.
    let warm = work.path().join("warm");
    measure(
        Command::new(snapshotd)
            .args(["backup", "--host", &a.bind])
            .arg(&warm),
    );
    let tsm: u64 = std::fs::read_dir(a.dir.path().join("data/bench/autogen"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| dir_bytes(&e.path()))
        .sum();

    let (mut ib, mut sb) = (Vec::new(), Vec::new());
    let (mut ib_rss, mut sb_rss) = (0, 0);
    let (mut ib_size, mut sb_size) = (0, 0);
    for i in 0..runs {
        let d = work.path().join(format!("influx{i}"));
        let (e, r) = measure(
            Command::new(&influxd)
                .args(["backup", "-portable", "-host", &a.bind])
                .arg(&d),
        );
        ib.push(e);
        ib_rss = ib_rss.max(r);
        ib_size = dir_bytes(&d);
        let d = work.path().join(format!("snap{i}"));
        let (e, r) = measure(
            Command::new(snapshotd)
                .args(["backup", "--host", &a.bind])
                .arg(&d),
        );
        sb.push(e);
        sb_rss = sb_rss.max(r);
        sb_size = dir_bytes(&d);
    }

    // Restores: into one fresh influxd, a new database per run (both tools rename).
    let b = Influxd::start_with(&influxd);
    let src_influx = work.path().join("influx0");
    let src_snap = work.path().join("snap0");
    let (mut ir, mut sr) = (Vec::new(), Vec::new());
    let (mut ir_rss, mut sr_rss) = (0, 0);
    for i in 0..runs {
        let (e, r) = measure(
            Command::new(&influxd)
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
        );
        ir.push(e);
        ir_rss = ir_rss.max(r);
        let (e, r) = measure(
            Command::new(snapshotd)
                .args(["restore", "--host", &b.bind, "--db", "bench", "--newdb"])
                .arg(format!("rs{i}"))
                .arg(&src_snap),
        );
        sr.push(e);
        sr_rss = sr_rss.max(r);
    }
    // The restored databases hold the same number of points.
    let count = |db: &str| {
        b.query(&format!("SELECT count(usr) FROM \"{db}\".autogen.cpu"))["results"][0]["series"][0]
            ["values"][0][1]
            .as_i64()
            .unwrap_or(-1)
    };
    assert_eq!(count("ri0"), count("rs0"), "restored point counts differ");
    assert!(count("rs0") > 0);

    let (ibm, sbm, irm, srm) = (median(ib), median(sb), median(ir), median(sr));
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "\n## Backup and restore (client)\n\nWorkload: {hosts} hosts × 5 float fields every 10 s × {days} day(s) = {values} values \
         in 1-day shards, {:.0} MiB of TSM on disk; influxd 1.6.7 on loopback, {cores} cores, \
         median of {runs} run(s); snapshotd with default flags (--jobs = cores, gzip level 1).\n",
        mib(tsm)
    );
    println!(
        "| operation | influxd -portable | snapshotd | speed-up | client peak RSS (influxd / snapshotd) | backup size (influxd / snapshotd) |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| backup | {:.2} s | {:.2} s | {:.1}× | {} / {} MiB | {:.0} / {:.0} MiB |",
        ibm.as_secs_f64(),
        sbm.as_secs_f64(),
        ibm.as_secs_f64() / sbm.as_secs_f64(),
        ib_rss / 1024,
        sb_rss / 1024,
        mib(ib_size),
        mib(sb_size)
    );
    println!(
        "| restore | {:.2} s | {:.2} s | {:.1}× | {} / {} MiB | |",
        irm.as_secs_f64(),
        srm.as_secs_f64(),
        irm.as_secs_f64() / srm.as_secs_f64(),
        ir_rss / 1024,
        sr_rss / 1024
    );
}
