//! The built-in store against a real influxd 1.6.7 in the same run, on the same data:
//! `/write` ingest (gzip bodies, 5000-point batches, one keep-alive connection) with p50/p99/max
//! batch latency (writes that overlapped a compaction or merge reported apart), compaction
//! throughput, and the backup of the compacted store vs influxd's, both taken by
//! `influxd backup -portable`.
//! Run: `cargo xtask bench store` (`SNAPSHOTD_BENCH_QUICK=1`: a smaller smoke run;
//! `SNAPSHOTD_BENCH_STORE_NICE=<n>`: the compaction worker's nice increment;
//! `SNAPSHOTD_BENCH_STORE_WAL_MB=<n>`: only the bounded-log run, n MB then n/10 MB of line
//! protocol, `SNAPSHOTD_BENCH_STORE_SEGMENT_MB` setting its segment size).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use snapshotd_server::http::{HttpState, serve_http};
use snapshotd_server::{ServerConfig, SnapshotServer};
use snapshotd_store::{AdminStore, BuiltinStore, CompactionPolicy, DatabaseSpec, RestoreLimits};
use snapshotd_testutil::influxd::{Influxd, influxd_bin};
use snapshotd_testutil::temp_dir;

const BATCH: usize = 5000;
const T0: i64 = 1_609_459_200_000_000_000;

/// The line protocol of batch `b`: [`BATCH`] points of 1000 series, 3 fields, each 1000
/// points `step` ns later than the previous 1000.
fn batch_text(b: usize, step: i64) -> String {
    let mut text = String::with_capacity(BATCH * 90);
    for k in 0..BATCH {
        let i = (b * BATCH + k) as i64;
        let t = T0 + (i / 1000) * step + (i % 1000);
        text.push_str(&format!(
            "cpu,host=h{},region=r{} user={}.25,system={},n={}i {t}\n",
            i % 1000,
            i % 7,
            i % 97,
            (i % 13) as f64 / 3.0,
            i
        ));
    }
    text
}

/// gzip bodies of `n` batches of [`BATCH`] points (1000 series, 3 fields, ns timestamps).
fn batches(n: usize) -> (Vec<Vec<u8>>, u64) {
    let mut raw = 0u64;
    let out = (0..n)
        .map(|b| {
            let text = batch_text(b, 10_000_000_000);
            raw += text.len() as u64;
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(text.as_bytes()).unwrap();
            gz.finish().unwrap()
        })
        .collect();
    (out, raw)
}

/// One keep-alive HTTP/1.1 connection.
struct Conn(TcpStream);

impl Conn {
    fn post_gzip(&mut self, path: &str, body: &[u8]) {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.0.write_all(head.as_bytes()).unwrap();
        self.0.write_all(body).unwrap();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            assert_eq!(self.0.read(&mut byte).unwrap(), 1, "connection closed");
            buf.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        let status: u16 = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut rest = vec![0u8; len];
        self.0.read_exact(&mut rest).unwrap();
        assert_eq!(status, 204, "{text}{}", String::from_utf8_lossy(&rest));
    }
}

/// Per-batch latencies of one ingest run, sorted; `during` holds the writes that overlapped a
/// compaction or merge of the store (empty for influxd, which we cannot observe).
struct Run {
    secs: f64,
    all: Vec<Duration>,
    during: Vec<Duration>,
    outside: Vec<Duration>,
}

/// Posts every batch; `probe` reads the store's compaction counters (started, finished).
fn ingest(addr: &str, db: &str, bodies: &[Vec<u8>], probe: &dyn Fn() -> (u64, u64)) -> Run {
    let mut c = Conn(TcpStream::connect(addr).unwrap());
    let (mut all, mut during, mut outside) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    for b in bodies {
        let (s0, f0) = probe();
        let t = Instant::now();
        c.post_gzip(&format!("/write?db={db}"), b);
        let d = t.elapsed();
        let (s1, _) = probe();
        all.push(d);
        if s0 != f0 || s1 != s0 {
            &mut during
        } else {
            &mut outside
        }
        .push(d);
    }
    let secs = start.elapsed().as_secs_f64();
    for v in [&mut all, &mut during, &mut outside] {
        v.sort();
    }
    Run {
        secs,
        all,
        during,
        outside,
    }
}

/// An InfluxQL query whose error replies (any HTTP status) are returned, not fatal.
fn query(http: &str, q: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-s", "-XPOST", &format!("http://{http}/query")])
        .args(["--data-urlencode", &format!("q={q}")])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&out.stdout).into()))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn pct(lat: &[Duration], p: f64) -> f64 {
    if lat.is_empty() {
        return f64::NAN;
    }
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat[i].as_secs_f64() * 1000.0
}

fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    n
}

fn influxd_backup(host: &str, out: &Path) -> f64 {
    let t = Instant::now();
    let o = Command::new(influxd_bin())
        .args(["backup", "-portable", "-host", host])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    t.elapsed().as_secs_f64()
}

fn open(dir: &Path, policy: CompactionPolicy) -> Arc<BuiltinStore> {
    let s = BuiltinStore::open_with(dir, RestoreLimits::default(), policy).unwrap();
    s.create_database(&DatabaseSpec {
        name: "bench".into(),
        retention_policy: None,
    })
    .unwrap();
    Arc::new(s)
}

/// The same batches written straight into a store without background compaction, then
/// compacted at once: log bytes read and TSM bytes written per second.
fn compaction_throughput(bodies: &[Vec<u8>]) {
    let dir = temp_dir();
    let policy = CompactionPolicy::default().with_background(false);
    let store = open(&dir.path().join("store"), policy);
    for b in bodies {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&b[..])
            .read_to_end(&mut text)
            .unwrap();
        store
            .write_lines(
                "bench",
                None,
                snapshotd_store::Precision::Nanoseconds,
                &text,
            )
            .unwrap();
    }
    let data = dir.path().join("store/data");
    let before = dir_bytes(&data);
    let t = Instant::now();
    let st = store.compact_all().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let after = dir_bytes(&data);
    println!(
        "compaction: {:.1} MB of log -> {:.1} MB TSM ({} values) in {secs:.2} s = {:.1} MB/s of log, {:.2} M values/s; shard dirs {:.1} MB -> {:.1} MB",
        before as f64 / 1e6,
        st.bytes as f64 / 1e6,
        st.values,
        before as f64 / 1e6 / secs,
        st.values as f64 / 1e6 / secs,
        before as f64 / 1e6,
        after as f64 / 1e6
    );
}

/// Writes `mb` MB of line protocol straight into a store with the default policy (idle 2 s),
/// waits for quiescence, prints each shard's log entries left vs written, then times a
/// reopen (open + every shard log opened); returns the reopen seconds.
fn bounded_wal(mb: u64) -> f64 {
    let dir = temp_dir();
    let path = dir.path().join("store");
    let mut policy =
        CompactionPolicy::default().with_idle(Duration::from_secs(2), Duration::from_millis(200));
    // SNAPSHOTD_BENCH_STORE_SEGMENT_MB: the shard logs' segment size (default: the store's).
    if let Some(n) = std::env::var("SNAPSHOTD_BENCH_STORE_SEGMENT_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        policy = policy.with_segment_bytes(n << 20);
    }
    let store = open(&path, policy.clone());
    let (mut raw, mut b) = (0u64, 0usize);
    let t = Instant::now();
    while raw < mb * 1_000_000 {
        // 600 s per 1000 points: the history spans several 7-day shards.
        let text = batch_text(b, 600_000_000_000);
        store
            .write_lines(
                "bench",
                None,
                snapshotd_store::Precision::Nanoseconds,
                text.as_bytes(),
            )
            .unwrap();
        raw += text.len() as u64;
        b += 1;
    }
    let write_secs = t.elapsed().as_secs_f64();
    let ids: Vec<u64> = store
        .shards()
        .unwrap()
        .iter()
        .map(|s| s.path.shard_id)
        .collect();
    let t = Instant::now();
    while ids.iter().any(|id| {
        let l = store.log_stats(*id).unwrap();
        l.last_index > l.compacted_through
    }) {
        assert!(t.elapsed() < Duration::from_secs(300), "never quiescent");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "bounded WAL: {:.1} MB line protocol ({} batches of {BATCH}) written in {write_secs:.1} s, quiescent {:.1} s later; store dir {:.1} MB",
        raw as f64 / 1e6,
        b,
        t.elapsed().as_secs_f64(),
        dir_bytes(&path) as f64 / 1e6
    );
    let mut over = Vec::new();
    for id in &ids {
        let l = store.log_stats(*id).unwrap();
        println!(
            "  shard {id}: {} entries written, {} left on disk in {} segments ({:.1} %); segment size {:.0} MiB",
            l.last_index,
            l.entries_on_disk,
            l.segments,
            l.entries_on_disk as f64 * 100.0 / l.last_index.max(1) as f64,
            policy.segment_bytes as f64 / 1048576.0
        );
        // The bound the store keeps: the segment holding the compaction marker (and an empty
        // one when the last write filled it).
        assert!(l.segments <= 2, "shard {id}: {l:?}");
        if l.entries_on_disk * 10 >= l.last_index {
            over.push(*id);
        }
    }
    println!("  shards with 10 % or more of their entries left: {over:?}");
    drop(store);
    let t = Instant::now();
    let store = BuiltinStore::open_with(&path, RestoreLimits::default(), policy).unwrap();
    for id in &ids {
        store.log_stats(*id).unwrap();
    }
    let reopen = t.elapsed().as_secs_f64();
    println!(
        "  reopen after {:.0} MB of history: {:.1} ms",
        raw as f64 / 1e6,
        reopen * 1e3
    );
    reopen
}

fn main() {
    // SNAPSHOTD_BENCH_STORE_WAL_MB=<n>: only the bounded-log run (n MB, then n/10 MB).
    if let Some(mb) = std::env::var("SNAPSHOTD_BENCH_STORE_WAL_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        let big = bounded_wal(mb);
        let small = bounded_wal((mb / 10).max(1));
        println!(
            "reopen time ratio, {mb} MB vs {} MB of history: {:.2}",
            (mb / 10).max(1),
            big / small
        );
        return;
    }
    let quick = std::env::var_os("SNAPSHOTD_BENCH_QUICK").is_some();
    // SNAPSHOTD_BENCH_STORE_BATCHES=<n>: n batches (2400 = 1 GB of line protocol) for the
    // backup-at-scale figure; the separate compaction-throughput run is then skipped.
    let big: Option<usize> = std::env::var("SNAPSHOTD_BENCH_STORE_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok());
    let n = big.unwrap_or(if quick { 40 } else { 200 });
    let (bodies, raw) = batches(n);
    let points = (n * BATCH) as f64;
    println!(
        "store bench: {n} batches x {BATCH} points, {:.1} MB line protocol, {:.1} MB gzip",
        raw as f64 / 1e6,
        bodies.iter().map(|b| b.len()).sum::<usize>() as f64 / 1e6
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Ours: background compaction on, thresholds low enough to compact several times during
    // the run (every ~7 batches), so the latencies include writes racing compactions.
    let ours_dir = temp_dir();
    let mut policy = CompactionPolicy::default().with_thresholds(4096, 4 * 1024 * 1024);
    // SNAPSHOTD_BENCH_STORE_NICE: the compactor's nice increment (default: the store's).
    if let Some(n) = std::env::var("SNAPSHOTD_BENCH_STORE_NICE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        policy = policy.with_nice(n);
    }
    println!("compactor nice increment: {}", policy.nice);
    let store = open(&ours_dir.path().join("store"), policy);
    let (http, snap) = rt.block_on(async {
        let h = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (ha, sa): (SocketAddr, SocketAddr) = (h.local_addr().unwrap(), s.local_addr().unwrap());
        let state = HttpState::new(store.clone(), None);
        tokio::spawn(serve_http(h, state, std::future::pending::<()>()));
        let srv = SnapshotServer::new(store.clone(), ServerConfig::default());
        tokio::spawn(srv.serve(s, std::future::pending::<()>()));
        (ha, sa)
    });
    println!("load average before: {}", loadavg());
    let probe = || {
        let a = store.compaction_activity();
        (a.started, a.finished)
    };
    let ours = ingest(&http.to_string(), "bench", &bodies, &probe);
    std::thread::sleep(Duration::from_secs(2)); // let a running compaction finish
    let stats: Vec<_> = store
        .shards()
        .unwrap()
        .iter()
        .map(|s| store.log_stats(s.path.shard_id).unwrap())
        .collect();
    let compacted: u64 = stats.iter().map(|l| l.compacted_through).sum();
    let written: u64 = stats.iter().map(|l| l.last_index).sum();
    let activity = store.compaction_activity();
    let files = ours_dir
        .path()
        .join("store/data/bench/autogen")
        .read_dir()
        .unwrap()
        .flatten()
        .flat_map(|d| d.path().read_dir().unwrap().flatten())
        .filter(|f| f.file_name().to_string_lossy().ends_with(".tsm"))
        .count();
    // influxd on the same batches.
    let influx = Influxd::start();
    influx.query("CREATE DATABASE bench");
    let theirs = ingest(&influx.http, "bench", &bodies, &|| (0, 0));
    println!("load average after ingest: {}", loadavg());
    println!("| /write ingest | batches | points/s | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    let rows = [
        ("snapshotd serve, all writes", Some(ours.secs), &ours.all),
        ("snapshotd serve, during a compaction", None, &ours.during),
        (
            "snapshotd serve, no compaction running",
            None,
            &ours.outside,
        ),
        ("influxd 1.6.7, all writes", Some(theirs.secs), &theirs.all),
    ];
    for (who, s, lat) in rows {
        let rate = s.map_or("-".to_string(), |s| format!("{:.0}", points / s));
        println!(
            "| {who} | {} | {rate} | {:.1} | {:.1} | {:.1} |",
            lat.len(),
            pct(lat, 0.5),
            pct(lat, 0.99),
            pct(lat, 1.0)
        );
    }
    println!(
        "ingest ratio snapshotd/influxd: {:.2}x; background: {} compaction runs, {} lock holds, longest shard-lock hold {:.1} ms; {files} TSM files after merges, {compacted} of {written} log entries compacted",
        theirs.secs / ours.secs,
        activity.started,
        activity.lock_holds,
        activity.longest_lock_hold.as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let st = store.compact_all().unwrap();
    println!(
        "compact_all after ingest: {:.2} s, {} values, {} files merged; store dir {:.1} MB",
        t.elapsed().as_secs_f64(),
        st.values,
        st.files_merged,
        dir_bytes(&ours_dir.path().join("store")) as f64 / 1e6
    );
    if big.is_none() {
        compaction_throughput(&bodies);
    }
    // Backups of the same data, both taken by influxd's own client.
    let a = temp_dir();
    let ours_b = influxd_backup(&snap.to_string(), a.path());
    let b = temp_dir();
    let theirs_b = influxd_backup(&influx.bind, b.path());
    println!("| influxd backup -portable of | seconds | backup MB |");
    println!("|---|---|---|");
    println!(
        "| snapshotd serve (compacted) | {ours_b:.2} | {:.1} |",
        dir_bytes(a.path()) as f64 / 1e6
    );
    println!(
        "| influxd 1.6.7 | {theirs_b:.2} | {:.1} |",
        dir_bytes(b.path()) as f64 / 1e6
    );
    // The backup of ours is complete: restored into influxd, every point is queryable.
    let o = Command::new(influxd_bin())
        .args([
            "restore",
            "-portable",
            "-db",
            "bench",
            "-newdb",
            "ours",
            "-host",
        ])
        .arg(&influx.bind)
        .arg(a.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for db in ["ours", "bench"] {
        let q = format!("SELECT count(n), count(\"user\"), count(system) FROM {db}.autogen.cpu");
        let mut v = query(&influx.http, &q);
        for _ in 0..50 {
            if !v.to_string().contains("shard is disabled") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            v = query(&influx.http, &q);
        }
        let row = &v["results"][0]["series"][0]["values"][0];
        let counts: Vec<u64> = (1..4).map(|k| row[k].as_u64().unwrap_or(0)).collect();
        println!("restored into influxd, {db}: counts of n, user, system = {counts:?}");
        assert_eq!(counts, [n as u64 * BATCH as u64; 3], "{db}: {v}");
    }
    drop(rt);
}
