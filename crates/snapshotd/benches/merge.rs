//! `cargo xtask bench merge`: `snapshotd restore --on-conflict merge` against influx's own
//! workaround for restoring into an existing database (`influxd restore -portable -newdb tmp`,
//! then `SELECT * INTO live..:MEASUREMENT FROM tmp../.*/ GROUP BY *`), on the same influxd
//! 1.6.7, the same backup, same run. Prints values/s of each (snapshotd by default, which
//! uploads shards whose range is empty on the target whole, and `--merge-mode points`), the
//! ratios, and snapshotd's peak RSS. Scale with `SNAPSHOTD_BENCH_HOSTS` /
//! `SNAPSHOTD_BENCH_DAYS`; `SNAPSHOTD_BENCH_SHAPE` picks where the target already has data:
//! `first` (default: one point in the first day's shard), `half` (one point in every other
//! day's shard) or `hourly` (1-hour shards, one point in the first hour's);
//! `SNAPSHOTD_BENCH_QUICK=1` is a smoke run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use snapshotd_testutil::measure::{env_u32, measure};

use snapshotd_testutil::influxd::Influxd;

/// hosts x 4 fields (float, int, bool, string) every 10 s over `days` days.
fn load(s: &Influxd, hosts: u32, days: u32, shard: &str) -> u64 {
    s.query(&format!(
        "CREATE DATABASE bench WITH SHARD DURATION {shard}"
    ));
    let t0: i64 = 1_609_459_200;
    let mut batch = String::with_capacity(4 << 20);
    let mut values = 0u64;
    for step in 0..(days * 8640) {
        let t = (t0 + i64::from(step) * 10) * 1_000_000_000;
        for h in 0..hosts {
            let x = f64::from((step * 7 + h * 13) % 10_000) / 100.0;
            batch.push_str(&format!(
                "cpu,host=host{h:04},dc=dc{} usr={x},n={}i,up={},st=\"s{}\" {t}\n",
                h % 4,
                step + h,
                step % 2 == 0,
                step % 10
            ));
            values += 4;
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

fn count(s: &Influxd, db: &str) -> u64 {
    let v = s.query(&format!("SELECT count(*) FROM \"{db}\".\"autogen\".cpu"));
    let row = &v["results"][0]["series"][0]["values"][0];
    row.as_array()
        .unwrap()
        .iter()
        .skip(1)
        .filter_map(|x| x.as_u64())
        .sum()
}

/// Like [`count`], 0 while the database cannot answer yet.
fn count_or_zero(s: &Influxd, db: &str) -> u64 {
    let v = s.query(&format!("SELECT count(*) FROM \"{db}\".\"autogen\".cpu"));
    v["results"][0]["series"][0]["values"][0]
        .as_array()
        .map_or(0, |row| row.iter().skip(1).filter_map(|x| x.as_u64()).sum())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list.
    }
    let quick = std::env::var_os("SNAPSHOTD_BENCH_QUICK").is_some();
    let influxd: PathBuf =
        std::env::var_os("SNAPSHOTD_INFLUXD_BIN").map_or_else(|| "influxd".into(), PathBuf::from);
    if Command::new(&influxd).arg("version").output().is_err() {
        eprintln!("bench merge: SKIP (influxd not found)");
        return;
    }
    let hosts = env_u32("SNAPSHOTD_BENCH_HOSTS", if quick { 10 } else { 20 });
    let days = env_u32("SNAPSHOTD_BENCH_DAYS", if quick { 2 } else { 6 });
    let shape = std::env::var("SNAPSHOTD_BENCH_SHAPE").unwrap_or_else(|_| "first".into());
    let shard = if shape == "hourly" { "1h" } else { "1d" };
    // The target's own points: one in the first shard, or one in every other day's shard.
    let day = 86_400_000_000_000i64;
    let existing: Vec<i64> = match shape.as_str() {
        "first" | "hourly" => vec![0],
        "half" => (0..i64::from(days)).step_by(2).map(|d| d * day).collect(),
        other => panic!("SNAPSHOTD_BENCH_SHAPE={other}: expected first, half or hourly"),
    };
    let snapshotd = env!("CARGO_BIN_EXE_snapshotd");

    let a = Influxd::start_with(&influxd);
    let t = Instant::now();
    let values = load(&a, hosts, days, shard);
    eprintln!("loaded {values} values in {:.0?}", t.elapsed());
    let work = snapshotd_testutil::temp_dir();
    let dir = work.path().join("backup");
    measure(
        Command::new(&influxd)
            .args([
                "backup",
                "-portable",
                "-database",
                "bench",
                "-host",
                &a.bind,
            ])
            .arg(&dir),
    );
    drop(a);

    let b = Influxd::start_with(&influxd);
    let own: String = existing
        .iter()
        .map(|t| {
            format!(
                "cpu,host=existing usr=1 {}\n",
                1_609_459_200_000_000_000 + t
            )
        })
        .collect();
    for db in ["live_points", "live_auto", "live_influx"] {
        b.query(&format!("CREATE DATABASE {db} WITH SHARD DURATION {shard}"));
        b.write(db, None, &own);
    }
    let url = format!("http://{}", b.http);
    let merge = |db: &str, extra: &[&str]| {
        let mut cmd = Command::new(snapshotd);
        cmd.args([
            "restore",
            "--db",
            "bench",
            "--newdb",
            db,
            "--on-conflict",
            "merge",
        ])
        .args([
            "--no-resume",
            "--jobs",
            "2",
            "--http",
            &url,
            "--host",
            &b.bind,
        ])
        .args(extra)
        .arg(&dir);
        measure(&mut cmd)
    };
    let (ours, rss) = merge("live_points", &["--merge-mode", "points"]);
    let (upload, upload_rss) = merge("live_auto", &[]);
    let (restore, _) = measure(
        Command::new(&influxd)
            .args([
                "restore",
                "-portable",
                "-db",
                "bench",
                "-newdb",
                "tmp",
                "-host",
                &b.bind,
            ])
            .arg(&dir),
    );
    // influxd restore returns before the restored shards are open ("engine is closed"): wait
    // (untimed, in the workaround's favour) until tmp answers with all its values.
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_or_zero(&b, "tmp") < values {
        assert!(Instant::now() < deadline, "tmp never became readable");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = Instant::now();
    let out = Command::new("curl")
        .args(["-sf", "-XPOST", &format!("{url}/query"), "--data-urlencode"])
        .arg("q=SELECT * INTO \"live_influx\".\"autogen\".:MEASUREMENT FROM \"tmp\".\"autogen\"./.*/ GROUP BY *")
        .output()
        .unwrap();
    let select_into = t.elapsed();
    eprintln!(
        "SELECT INTO answered: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let theirs = restore + select_into;
    let (got_ours, got_theirs) = (count(&b, "live_points"), count(&b, "live_influx"));
    let got_upload = count(&b, "live_auto");
    let load_avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let rate = |d: Duration| values as f64 / d.as_secs_f64();
    println!(
        "merge {values} values ({hosts} hosts x {days} days, 4 fields, {shard} shards, target data in {} shard(s), shape {shape}) into an existing database; load average {}",
        existing.len(),
        load_avg.trim()
    );
    println!(
        "  snapshotd restore --on-conflict merge --jobs 2 (default): {upload:>9.2?}  {:>10.0} values/s  peak RSS {} MiB",
        rate(upload),
        upload_rss / 1024
    );
    println!(
        "  ... --merge-mode points:                         {ours:>9.2?}  {:>10.0} values/s  peak RSS {} MiB",
        rate(ours),
        rss / 1024
    );
    println!(
        "  influxd restore -newdb + SELECT INTO:         {theirs:>9.2?}  {:>10.0} values/s  (restore {restore:.2?}, SELECT INTO {select_into:.2?})",
        rate(theirs)
    );
    println!(
        "  ratio vs the workaround: {:.2}x by default, {:.2}x point by point",
        theirs.as_secs_f64() / upload.as_secs_f64(),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    let want = values + existing.len() as u64;
    assert_eq!(
        got_ours, want,
        "snapshotd merged every value point by point"
    );
    assert_eq!(got_theirs, want, "the workaround copied every value");
    assert_eq!(got_upload, want, "snapshotd uploaded or merged every value");
}
