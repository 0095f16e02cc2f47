//! WAL benchmarks: criterion groups for our writer/reader, then a side-by-side table against
//! etcd 3.4's Go wal (benches/go, built in GOPATH mode) on the same disk, in the same run.
//! `SNAPSHOTD_BENCH_QUICK=1` shrinks everything for a smoke run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use snapshotd_wal::{Entry, HardState, SharedWal, Snapshot, Wal, WalOptions, WalReader};

const CONFIGS: [(u64, usize); 9] = [
    (1, 100),
    (1, 1024),
    (1, 16384),
    (16, 100),
    (16, 1024),
    (16, 16384),
    (256, 100),
    (256, 1024),
    (256, 16384),
];

fn quick() -> bool {
    std::env::var_os("SNAPSHOTD_BENCH_QUICK").is_some()
}

/// Where the WALs are written: `SNAPSHOTD_BENCH_WAL_DIR` (e.g. a mount whose fsync is slow,
/// see `cargo xtask bench wal --fsync-delay-ms`) or the target's temp dir.
fn bench_root() -> PathBuf {
    match std::env::var_os("SNAPSHOTD_BENCH_WAL_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("wal-bench"),
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = bench_root().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.parent().unwrap()).unwrap();
    d
}

fn batch(next: &mut u64, n: u64, size: usize) -> (HardState, Vec<Entry>) {
    let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let ents = (0..n)
        .map(|_| {
            *next += 1;
            Entry::new(*next, 1, data.clone())
        })
        .collect();
    (HardState::new(1, 1, *next), ents)
}

fn label(n: u64, size: usize) -> String {
    let s = match size {
        100 => "100B".to_owned(),
        1024 => "1KB".to_owned(),
        16384 => "16KB".to_owned(),
        x => format!("{x}B"),
    };
    format!("{n}x{s}")
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_fsync");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if quick() { 1 } else { 3 }));
    for (n, size) in CONFIGS {
        let dir = scratch(&format!("crit-{n}-{size}"));
        let mut wal = Wal::create(&dir, b"bench").unwrap();
        let mut next = 0;
        g.throughput(Throughput::Elements(n));
        g.bench_function(BenchmarkId::from_parameter(label(n, size)), |b| {
            b.iter(|| {
                let (hs, ents) = batch(&mut next, n, size);
                wal.save(&hs, &ents).unwrap();
            })
        });
        wal.close().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();

    let mb = if quick() { 16 } else { 64 };
    let dir = scratch("crit-readall");
    let bytes = write_log(&dir, mb << 20);
    let mut g = c.benchmark_group("read_all");
    g.sample_size(10).throughput(Throughput::Bytes(bytes));
    g.bench_function(format!("{mb}MB"), |b| {
        b.iter(|| {
            WalReader::open(&dir, Snapshot::default())
                .unwrap()
                .read_all()
                .unwrap()
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes about `bytes` of 16 KB entries without fsync; returns the entry payload bytes.
fn write_log(dir: &Path, bytes: u64) -> u64 {
    let opts = WalOptions::default().unsafe_no_fsync(true);
    let mut wal = Wal::create_with(dir, b"bench", &opts).unwrap();
    let mut next = 0;
    let per = 16 * 16384u64;
    for _ in 0..bytes / per {
        let (hs, ents) = batch(&mut next, 16, 16384);
        wal.save(&hs, &ents).unwrap();
    }
    wal.close().unwrap();
    bytes / per * per
}

/// Builds the Go helper against etcd's wal sources; `None` when Go or the sources are missing.
fn build_go() -> Option<PathBuf> {
    let gopath = Path::new("/usr/share/gocode");
    if !gopath.join("src/go.etcd.io/etcd/wal").is_dir() {
        eprintln!("wal bench: SKIP etcd comparison (golang-etcd-server-dev not installed)");
        return None;
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("walbench");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/go");
    let st = Command::new("go")
        .current_dir(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env(
            "GOCACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("gocache"),
        )
        .env("GOFLAGS", "")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .status();
    match st {
        Ok(s) if s.success() => Some(out),
        _ => {
            eprintln!("wal bench: SKIP etcd comparison (go build failed)");
            None
        }
    }
}

fn go_run(bin: &Path, args: &[String], dir: &Path) -> Duration {
    let out = Command::new(bin).args(args).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "walbench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Duration::from_nanos(v["ns"].as_u64().unwrap())
}

/// etcd's Go wal: `saves` saves of `n` entries of `size` bytes, fsync each, on a fresh WAL.
fn go_append(go: &Path, n: u64, size: usize, saves: u64) -> Duration {
    let dir = scratch("cmp-go");
    let args = [
        "append".to_owned(),
        "-entries".into(),
        n.to_string(),
        "-size".into(),
        size.to_string(),
        "-saves".into(),
        saves.to_string(),
    ];
    let d = go_run(go, &args, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    d
}

/// Ours: the same workload as [`go_append`].
fn ours_append(n: u64, size: usize, saves: u64) -> Duration {
    let dir = scratch("cmp-ours");
    let mut wal = Wal::create(&dir, b"bench").unwrap();
    let mut next = 0;
    let batches: Vec<_> = (0..saves).map(|_| batch(&mut next, n, size)).collect();
    let t = Instant::now();
    for (hs, ents) in &batches {
        wal.save(hs, ents).unwrap();
    }
    let el = t.elapsed();
    wal.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    el
}

/// Saves per shared fsync of every `ours_group` run (from `SharedWal::stats`).
static SAVES_PER_FSYNC: std::sync::Mutex<Vec<f64>> = std::sync::Mutex::new(Vec::new());

fn median_saves_per_fsync() -> f64 {
    let mut v = std::mem::take(&mut *SAVES_PER_FSYNC.lock().unwrap());
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Ours: `threads` threads each making `saves` saves of one `size`-byte entry through one
/// `SharedWal` with the given commit delay, on a fresh WAL.
fn ours_group(threads: u64, saves: u64, size: usize, delay: Duration) -> Duration {
    let dir = scratch("cmp-ours-group");
    let shared =
        Arc::new(SharedWal::new(Wal::create(&dir, b"bench").unwrap()).with_commit_delay(delay));
    let data: Vec<u8> = vec![7; size];
    let t = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let s = shared.clone();
            let d = data.clone();
            std::thread::spawn(move || {
                for _ in 0..saves {
                    s.save_with(|i| (HardState::new(1, 1, i), vec![Entry::new(i, 1, d.clone())]))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let el = t.elapsed();
    let st = shared.stats().unwrap();
    SAVES_PER_FSYNC
        .lock()
        .unwrap()
        .push(st.saves as f64 / st.fsyncs.max(1) as f64);
    Arc::try_unwrap(shared)
        .unwrap()
        .into_inner()
        .unwrap()
        .close()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    el
}

/// Runs `a` and `b` alternately `rounds` times and returns the median duration of each, so
/// both see the same disk weather (fsync latency on a shared machine varies a lot).
fn median_pair(
    rounds: usize,
    mut a: impl FnMut() -> Duration,
    mut b: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    let (mut xa, mut xb) = (Vec::new(), Vec::new());
    // Flush everything (including the previous round's deletions) before each timed run, so
    // neither side pays for the other's journal commits.
    let quiet = || {
        let _ = Command::new("sync").status();
    };
    for r in 0..rounds {
        if r % 2 == 0 {
            quiet();
            xa.push(a());
            quiet();
            xb.push(b());
        } else {
            quiet();
            xb.push(b());
            quiet();
            xa.push(a());
        }
    }
    xa.sort();
    xb.sort();
    (xa[rounds / 2], xb[rounds / 2])
}

fn comparison(go: &Path) {
    let mut rows = vec![
        "| workload | etcd 3.4 Go wal | snapshotd-wal | ratio |".to_owned(),
        "|---|---:|---:|---:|".to_owned(),
    ];
    let budget: u64 = if quick() { 4 << 20 } else { 24 << 20 };
    let rounds = if quick() { 3 } else { 7 };
    // SNAPSHOTD_BENCH_GROUP_ONLY=1 runs only the group-commit rows (no appends, no read_all).
    let group_only = std::env::var_os("SNAPSHOTD_BENCH_GROUP_ONLY").is_some();
    let configs: &[(u64, usize)] = if group_only { &[] } else { &CONFIGS };
    for &(n, size) in configs {
        let (lo, hi) = if quick() { (10, 40) } else { (20, 120) };
        let saves = (budget / (n * size as u64)).clamp(lo, hi);
        let (g, o) = median_pair(
            rounds,
            || go_append(go, n, size, saves),
            || ours_append(n, size, saves),
        );
        let mbps = |d: Duration| (saves * n * size as u64) as f64 / d.as_secs_f64() / 1e6;
        let eps = |d: Duration| (saves * n) as f64 / d.as_secs_f64();
        rows.push(format!(
            "| append {} fsync/save ({saves} saves) | {:.0} entries/s, {:.1} MB/s | {:.0} entries/s, {:.1} MB/s | {:.2}x |",
            label(n, size),
            eps(g),
            mbps(g),
            eps(o),
            mbps(o),
            g.as_secs_f64() / o.as_secs_f64()
        ));
    }
    // Concurrency: 8 threads each saving 1 x 1 KB. etcd serialises saves (one fsync each).
    let (threads, per) = if quick() { (8, 10) } else { (8, 40) };
    let (g1, o8) = median_pair(
        rounds,
        || go_append(go, 1, 1024, threads * per),
        || ours_group(threads, per, 1024, Duration::ZERO),
    );
    let batch1 = median_saves_per_fsync();
    // The same group commit against our own single writer, alternating in the same run.
    let (o1, o8b) = median_pair(
        rounds,
        || ours_append(1, 1024, threads * per),
        || ours_group(threads, per, 1024, Duration::ZERO),
    );
    let batch2 = median_saves_per_fsync();
    // The same, with the opt-in commit delay (a leader waits up to 50 µs for savers already
    // inside a save), against etcd's single writer again.
    let delay = Duration::from_micros(50);
    let (g1d, o8d) = median_pair(
        rounds,
        || go_append(go, 1, 1024, threads * per),
        || ours_group(threads, per, 1024, delay),
    );
    let batch3 = median_saves_per_fsync();
    let gd2 = scratch("cmp-go-conc");
    let g8 = go_run(
        go,
        &[
            "concurrent".into(),
            "-threads".into(),
            threads.to_string(),
            "-saves".into(),
            per.to_string(),
            "-size".into(),
            "1024".into(),
        ],
        &gd2,
    );
    let _ = std::fs::remove_dir_all(&gd2);
    let sps = |d: Duration| (threads * per) as f64 / d.as_secs_f64();
    rows.push(format!(
        "| 8 threads x 1x1KB saves (group commit) | {:.0} saves/s single writer ({:.0} with 8 goroutines) | {:.0} saves/s ({batch1:.1} saves per fsync) | {:.2}x vs single writer |",
        sps(g1),
        sps(g8),
        sps(o8),
        g1.as_secs_f64() / o8.as_secs_f64()
    ));
    rows.push(format!(
        "| 8 threads x 1x1KB, `with_commit_delay(50 µs)` | {:.0} saves/s single writer | {:.0} saves/s ({batch3:.1} saves per fsync) | {:.2}x vs single writer |",
        sps(g1d),
        sps(o8d),
        g1d.as_secs_f64() / o8d.as_secs_f64()
    ));
    rows.push(format!(
        "| 8 threads x 1x1KB: group commit vs our own single writer | — | {:.0} saves/s single, {:.0} saves/s grouped ({batch2:.1} saves per fsync) | {:.2}x |",
        sps(o1),
        sps(o8b),
        o1.as_secs_f64() / o8b.as_secs_f64()
    ));
    // read_all measures the page cache and the decoder: only on the real disk.
    if group_only || std::env::var_os("SNAPSHOTD_BENCH_WAL_DIR").is_some() {
        let table = rows.join("\n");
        println!(
            "\nsnapshotd-wal vs etcd 3.4.23 wal in {} (no read_all row):\n\n{table}\n",
            bench_root().display()
        );
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-wal.md");
        std::fs::write(&out, format!("{table}\n")).unwrap();
        return;
    }
    // read_all of a large log, page cache warm for both (best of 3).
    let mb: u64 = if quick() { 32 } else { 256 };
    let dir = scratch("cmp-readall");
    let bytes = write_log(&dir, mb << 20);
    let _ = go_run(go, &["readall".into()], &dir);
    let g = (0..3)
        .map(|_| go_run(go, &["readall".into()], &dir))
        .min()
        .unwrap();
    let o = (0..3)
        .map(|_| {
            let t = Instant::now();
            let c = WalReader::open(&dir, Snapshot::default())
                .unwrap()
                .read_all()
                .unwrap();
            assert!(!c.entries.is_empty());
            t.elapsed()
        })
        .min()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    rows.push(format!(
        "| read_all {mb} MB (16 KB entries) | {:.0} ms, {:.0} MB/s | {:.0} ms, {:.0} MB/s | {:.2}x |",
        g.as_secs_f64() * 1e3,
        mbps(g),
        o.as_secs_f64() * 1e3,
        mbps(o),
        g.as_secs_f64() / o.as_secs_f64()
    ));
    let table = rows.join("\n");
    println!(
        "\nsnapshotd-wal vs etcd 3.4.23 wal (same disk, same run; ratio > 1 = we are faster):\n\n{table}\n"
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-wal.md");
    std::fs::write(&out, format!("{table}\n")).unwrap();
    println!("(table written to {})", out.display());
}

fn main() {
    // SNAPSHOTD_BENCH_COMPARE_ONLY=1 skips the criterion groups (only the etcd table).
    if std::env::var_os("SNAPSHOTD_BENCH_COMPARE_ONLY").is_none() {
        let mut c = Criterion::default().configure_from_args();
        criterion_benches(&mut c);
        c.final_summary();
    }
    if let Some(go) = build_go() {
        comparison(&go);
    }
}
