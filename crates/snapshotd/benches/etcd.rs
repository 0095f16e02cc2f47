//! `cargo xtask bench etcd`: archive lag of `snapshotd etcd archive` beside a real etcd
//! 3.4.23 under a steady put rate, and `snapshotd etcd restore` of the whole archive
//! (plus etcd's replay until it serves) beside `etcdctl snapshot save` + `snapshot restore`
//! (plus etcd's start) of the same keyspace; then a base through `snapshotd etcd backup`,
//! more puts archived after it, and `snapshotd etcd restore` from the base + the archived
//! tail (plus etcd's start) beside the same etcdctl figures.
//!
//! Puts go through etcd's JSON gateway (`/v3/kv/put`) over keep-alive HTTP/1.1 connections.
//! Lag of a put = time its raft index was reported durable by the archiver (a `pass` event
//! on stdout, after the checkpoint flush) minus the time the put was acknowledged.
//! `SNAPSHOTD_BENCH_ETCD_RATE` (puts/s, default 1000), `SNAPSHOTD_BENCH_ETCD_SECS` (default
//! 20), `SNAPSHOTD_BENCH_ETCD_ENTRIES` (restore size, default 200000);
//! `SNAPSHOTD_BENCH_QUICK=1` is a smoke run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "etcd_support/load.rs"]
mod load;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn etcd_bin() -> PathBuf {
    std::env::var("SNAPSHOTD_ETCD_BIN")
        .map_or_else(|_| PathBuf::from("/usr/bin/etcd"), PathBuf::from)
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts etcd on fresh ports; returns (guard, client port).
fn etcd(data: &Path, extra: &[&str]) -> (Kill, u16) {
    let (c, p) = (port(), port());
    let client = format!("http://127.0.0.1:{c}");
    let peer = format!("http://127.0.0.1:{p}");
    let child = Command::new(etcd_bin())
        .args(snapshotd_testutil::etcd::member_args(
            "b",
            data.to_str().unwrap(),
            &client,
            &peer,
        ))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Kill(child);
    let deadline = Instant::now() + Duration::from_secs(600);
    while load::status(c).is_none() {
        assert!(Instant::now() < deadline, "etcd did not serve");
        std::thread::sleep(Duration::from_millis(20));
    }
    (guard, c)
}

/// Reads archiver `pass` events: (time seen, archived_through).
fn watch_passes(child: &mut Child) -> Arc<Mutex<Vec<(Instant, u64)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(t) = v["report"]["archived_through"].as_u64() {
                s2.lock().unwrap().push((Instant::now(), t));
            }
        }
    });
    seen
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let quick = std::env::var("SNAPSHOTD_BENCH_QUICK").is_ok();
    let rate = env_u64("SNAPSHOTD_BENCH_ETCD_RATE", 1000);
    let secs = env_u64("SNAPSHOTD_BENCH_ETCD_SECS", if quick { 3 } else { 20 });
    let entries = env_u64(
        "SNAPSHOTD_BENCH_ETCD_ENTRIES",
        if quick { 5000 } else { 200_000 },
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("etcd");
    let (etcd_guard, c) = etcd(&data, &[]);
    for interval in ["1s", "200ms"] {
        lag(tmp.path(), &data, c, rate, secs, interval);
    }
    let before = load::status(c).unwrap().0;
    let fill = entries.saturating_sub(before);
    let t = Instant::now();
    load::run(c, 16, None, fill, "fill");
    eprintln!(
        "bench etcd: filled {fill} puts in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    restore_vs_snapshot(tmp.path(), &data, c);
    restore_from_base(tmp.path(), &data, c, if quick { 500 } else { 10_000 });
    drop(etcd_guard);
}

fn snapshotd(args: &[&str], paths: &[&Path]) {
    let o = Command::new(env!("CARGO_BIN_EXE_snapshotd"))
        .args(args)
        .args(paths)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A base of the filled member, `tail` more puts archived after it, and a restore of the
/// newest index: the base's db + .snap and a WAL of the tail only.
fn restore_from_base(root: &Path, data: &Path, c: u16, tail: u64) {
    let dest = root.join("full");
    let client = format!("http://127.0.0.1:{c}");
    let t = Instant::now();
    snapshotd(&["etcd", "backup", "--endpoints", &client], &[&dest]);
    let backup = t.elapsed();
    load::run(c, 16, None, tail, "tail");
    snapshotd(&["etcd", "archive", "--once", "--data-dir"], &[data, &dest]);
    let (index, live_rev) = load::status(c).unwrap();
    let dir = root.join("restored-base");
    let t = Instant::now();
    snapshotd(&["etcd", "restore", "--data-dir"], &[&dir, &dest]);
    let ours = t.elapsed();
    let (rev, serve) = serve_time(&dir, &["--force-new-cluster"], live_rev);
    println!(
        "snapshotd etcd backup (base): {:.2}s; restore of index {index} from the base + {tail} archived entries: {:.2}s, then etcd start until serving revision {rev}: {:.2}s",
        backup.as_secs_f64(),
        ours.as_secs_f64(),
        serve.as_secs_f64()
    );
    for d in [dir, root.join("restored"), root.join("snap-restored")] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn archiver(data: &Path, dest: &Path, interval: &str) -> Kill {
    let child = Command::new(env!("CARGO_BIN_EXE_snapshotd"))
        .args([
            "etcd",
            "archive",
            "--json",
            "--interval",
            interval,
            "--data-dir",
        ])
        .args([data, dest])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Kill(child)
}

fn lag(root: &Path, data: &Path, c: u16, rate: u64, secs: u64, interval: &str) {
    let dest = root.join(format!("lag-{interval}"));
    let mut a = archiver(data, &dest, interval);
    let passes = watch_passes(&mut a.0);
    std::thread::sleep(Duration::from_secs(2));
    let acks = load::run(c, 8, Some(rate), rate * secs, &format!("lag{interval}"));
    let last = acks.iter().map(|x| x.1).max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while passes.lock().unwrap().last().map_or(0, |p| p.1) < last && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let passes = passes.lock().unwrap().clone();
    let mut lags: Vec<f64> = acks
        .iter()
        .filter_map(|(acked, index)| {
            let p = passes.iter().find(|p| p.1 >= *index)?;
            Some(p.0.saturating_duration_since(*acked).as_secs_f64())
        })
        .collect();
    let got = lags.len();
    let achieved = acks.len() as f64 / secs as f64;
    println!(
        "archive lag, --interval {interval}: {got}/{} puts at {achieved:.0} puts/s: p50 {:.3}s p99 {:.3}s max {:.3}s",
        acks.len(),
        pct(&mut lags, 0.5),
        pct(&mut lags, 0.99),
        pct(&mut lags, 1.0)
    );
}

/// Waits until etcd on `port` reports revision `want` (etcd answers status while it is
/// still applying the log it restarted with).
fn wait_revision(port: u16, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let rev = load::status(port).map_or(0, |s| s.1);
        if rev >= want || Instant::now() > deadline {
            return rev;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts etcd (with `extra` flags) on `dir` and times it until it serves revision `want`;
/// returns the revision reached and the time, with etcd stopped again.
fn serve_time(dir: &Path, extra: &[&str], want: u64) -> (u64, Duration) {
    let t = Instant::now();
    let (g, port) = etcd(dir, extra);
    let rev = wait_revision(port, want);
    let serve = t.elapsed();
    drop(g);
    (rev, serve)
}

fn restore_vs_snapshot(root: &Path, data: &Path, c: u16) {
    let dest = root.join("full");
    let (index, live_rev) = load::status(c).unwrap();
    let t = Instant::now();
    snapshotd(&["etcd", "archive", "--once", "--data-dir"], &[data, &dest]);
    println!(
        "archive --once of {index} entries: {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let dir = root.join("restored");
    let t = Instant::now();
    snapshotd(&["etcd", "restore", "--data-dir"], &[&dir, &dest]);
    let ours = t.elapsed();
    let (rev, serve) = serve_time(&dir, &["--force-new-cluster"], live_rev);
    println!(
        "snapshotd etcd restore of {index} entries: {:.2}s, then etcd replay until serving revision {rev}: {:.2}s",
        ours.as_secs_f64(),
        serve.as_secs_f64()
    );
    let ctl = etcd_bin().with_file_name("etcdctl");
    let db = root.join("snap.db");
    let t = Instant::now();
    let ok = Command::new(&ctl)
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints=http://127.0.0.1:{c}"),
            "snapshot",
            "save",
        ])
        .arg(&db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let save = t.elapsed();
    let sdir = root.join("snap-restored");
    let t = Instant::now();
    let ok = Command::new(&ctl)
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(&db)
        .arg("--data-dir")
        .arg(&sdir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let restore = t.elapsed();
    let (srev, serve) = serve_time(&sdir, &[], live_rev);
    println!(
        "etcdctl snapshot save: {:.2}s, snapshot restore: {:.2}s, etcd start until serving revision {srev}: {:.2}s",
        save.as_secs_f64(),
        restore.as_secs_f64(),
        serve.as_secs_f64()
    );
}
