//! Backups of the built-in store are read by a real influxd 1.6.7: native writes of every
//! field type across several shards (part compacted into TSM files, part still in the
//! log) → `snapshotd` client backup or `influxd backup -portable` against the served store
//! → `influxd restore -portable` into a fresh influxd → per measurement and field `count`,
//! `sum`, `min`, `max` and `last` equal what was written. Run via `cargo xtask interop
//! influx` (needs `influxd` on PATH or `SNAPSHOTD_INFLUXD_BIN`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use snapshotd_client::backup::backup;
use snapshotd_client::{BackupOptions, Client, ClientConfig, Hooks, Storage};
use snapshotd_server::{ServerConfig, SnapshotServer};
use snapshotd_store::{AdminStore, BuiltinStore, CompactionPolicy, DatabaseSpec, Precision};
use snapshotd_testutil::influxd::{Influxd, influxd_bin};
use snapshotd_testutil::temp_dir;
use tokio::sync::watch;

const T0: i64 = 1_609_459_200; // 2021-01-01T00:00:00Z
const DAY: i64 = 86_400;
const PER_SHARD: i64 = 3_000;
const SHARDS: i64 = 3;

/// Expected aggregates of one field: count, sum, min, max, last (by time).
#[derive(Debug, Default, Clone, PartialEq)]
struct Agg {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last: serde_json::Value,
    last_t: i64,
}

impl Agg {
    fn add(&mut self, t: i64, x: Option<f64>, raw: serde_json::Value) {
        if let Some(x) = x {
            self.sum += x;
            self.min = if self.count == 0 { x } else { self.min.min(x) };
            self.max = if self.count == 0 { x } else { self.max.max(x) };
        }
        if self.count == 0 || t > self.last_t {
            self.last = raw;
            self.last_t = t;
        }
        self.count += 1;
    }
}

type Expected = BTreeMap<(String, String), Agg>;

/// One line of point `i`: its measurement line and the field values it adds.
fn line(i: i64, exp: &mut Expected) -> String {
    let t = T0 + (i / PER_SHARD) * 7 * DAY + i % PER_SHARD;
    let host = i % 4;
    let mut add = |m: &str, f: &str, x: Option<f64>, raw: serde_json::Value| {
        exp.entry((m.into(), f.into())).or_default().add(t, x, raw);
    };
    if i % 2 == 0 {
        let (usage, n, u) = (i as f64 * 0.25 - 300.0, i * 7 - 10_000, i * 3);
        add("cpu", "usage", Some(usage), usage.into());
        add("cpu", "n", Some(n as f64), n.into());
        add("cpu", "u", Some(u as f64), u.into());
        format!("cpu,host=h{host} usage={usage},n={n}i,u={u}u {t}")
    } else {
        let (ok, msg) = (i % 3 == 0, format!("msg \\\"{i}\\\" x"));
        add("ev", "ok", None, ok.into());
        add("ev", "msg", None, format!("msg \"{i}\" x").into());
        format!("ev,host=h{host},zone=z{} ok={ok},msg=\"{msg}\" {t}", i % 2)
    }
}

/// Writes every point natively: the first half compacted into TSM files (in two passes,
/// merged into one file per shard), the rest left in the shard logs.
fn fill(store: &BuiltinStore) -> Expected {
    store
        .create_database(&DatabaseSpec {
            name: "nat".into(),
            retention_policy: None,
        })
        .unwrap();
    let mut exp = Expected::new();
    let all: Vec<i64> = (0..PER_SHARD * SHARDS).collect();
    for (k, chunk) in all.chunks(500).enumerate() {
        let body: Vec<String> = chunk.iter().map(|i| line(*i, &mut exp)).collect();
        let body = body.join("\n");
        store
            .write_lines("nat", None, Precision::Seconds, body.as_bytes())
            .unwrap();
        if k == 3 || k == 5 || k == 8 {
            // The pass at k == 5 also merges the first shard's two TSM files into one.
            let st = store.compact_all().unwrap();
            assert!(st.values > 0 && st.bytes > 0, "{st:?}");
            assert!(k != 5 || st.files_merged > 0, "{st:?}");
        }
    }
    let pending: u64 = store
        .shards()
        .unwrap()
        .iter()
        .map(|s| {
            let l = store.log_stats(s.path.shard_id).unwrap();
            l.last_index - l.compacted_through
        })
        .sum();
    assert!(pending > 0, "some points must still be in the logs");
    assert_eq!(store.shards().unwrap().len(), SHARDS as usize);
    exp
}

/// The store served over the snapshot protocol until the sender is dropped.
async fn serve(store: Arc<BuiltinStore>) -> (SocketAddr, watch::Sender<bool>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (stop, mut rx) = watch::channel(false);
    let server = SnapshotServer::new(store, ServerConfig::default());
    tokio::spawn(server.serve(l, async move {
        let _ = rx.wait_for(|v| *v).await;
    }));
    (addr, stop)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn influxd_restore(target: &Influxd, dir: &Path) {
    run(Command::new(influxd_bin())
        .args(["restore", "-portable", "-host", &target.bind])
        .arg(dir));
}

/// Runs `q`, retrying for a few seconds while influxd still reports the restored shard as
/// disabled (it re-enables a shard after `restore` returns; seen once in ~5 runs).
fn query_enabled(s: &Influxd, q: &str) -> serde_json::Value {
    for _ in 0..50 {
        let v = s.query(q);
        if !v.to_string().contains("shard is disabled") {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    s.query(q)
}

/// Checks influxd's count, sum, min, max and last of every written field.
fn assert_aggregates(s: &Influxd, exp: &Expected) {
    for ((m, f), want) in exp {
        let numeric = want.sum != 0.0 || want.min != 0.0 || want.max != 0.0;
        let q = if numeric {
            format!("SELECT count({f}),sum({f}),min({f}),max({f}),last({f}) FROM nat.autogen.{m}")
        } else {
            format!("SELECT count({f}),last({f}) FROM nat.autogen.{m}")
        };
        let v = query_enabled(s, &q);
        let row = &v["results"][0]["series"][0]["values"][0];
        assert!(row.is_array(), "{m}.{f}: no data in influxd: {v}");
        assert_eq!(row[1].as_u64(), Some(want.count), "{m}.{f} count: {v}");
        if numeric {
            let got: Vec<f64> = (2..5)
                .map(|k| row[k].as_f64().unwrap_or(f64::NAN))
                .collect();
            assert_eq!(
                got,
                [want.sum, want.min, want.max],
                "{m}.{f} sum/min/max: {v}"
            );
            assert_eq!(row[5].as_f64(), want.last.as_f64(), "{m}.{f} last: {v}");
        } else {
            assert_eq!(row[2], want.last, "{m}.{f} last: {v}");
        }
    }
}

fn open_store(dir: &Path) -> Arc<BuiltinStore> {
    let policy = CompactionPolicy::default().with_background(false);
    let limits = snapshotd_store::RestoreLimits::default();
    Arc::new(BuiltinStore::open_with(dir, limits, policy).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn snapshotd_backup_of_native_writes_restores_into_influxd_with_equal_aggregates() {
    let dir = temp_dir();
    let store = open_store(&dir.path().join("store"));
    let exp = fill(&store);
    let (addr, _stop) = serve(store).await;
    let mut cfg = ClientConfig::new(addr.to_string());
    cfg.io_timeout = Duration::from_secs(60);
    let out = temp_dir();
    let dest = Storage::local(out.path(), false).unwrap();
    let opts = BackupOptions {
        jobs: 2,
        ..Default::default()
    };
    backup(&Client::new(cfg), &dest, &opts, &Hooks::default())
        .await
        .unwrap();
    let target = Influxd::start();
    influxd_restore(&target, out.path());
    assert_aggregates(&target, &exp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn influxd_backup_portable_from_snapshotd_restores_with_equal_aggregates() {
    let dir = temp_dir();
    let store = open_store(&dir.path().join("store"));
    let exp = fill(&store);
    let (addr, _stop) = serve(store).await;
    let out = temp_dir();
    let host = addr.to_string();
    tokio::task::spawn_blocking({
        let p = out.path().to_path_buf();
        move || {
            run(Command::new(influxd_bin())
                .args(["backup", "-portable", "-host", &host])
                .arg(&p))
        }
    })
    .await
    .unwrap();
    let target = Influxd::start();
    influxd_restore(&target, out.path());
    assert_aggregates(&target, &exp);
}

/// `/query` of a running front end at `http` (curl, like the influxd helper).
fn curl_query(http: &str, q: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sf", "-XPOST", &format!("http://{http}/query")])
        .args(["--data-urlencode", &format!("q={q}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "query {q} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The aggregate `SELECT`s of our own HTTP API answer exactly what influxd answers about
/// the same data (restored there from our backup): the peer is the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn our_aggregate_selects_answer_like_influxd() {
    let dir = temp_dir();
    let store = open_store(&dir.path().join("store"));
    let exp = fill(&store);
    let (addr, _stop) = serve(store.clone()).await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = l.local_addr().unwrap().to_string();
    let state = snapshotd_server::http::HttpState::new(store, None);
    let (_http_stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(snapshotd_server::http::serve_http(l, state, async move {
        let _ = rx.await;
    }));
    let out = temp_dir();
    let dest = Storage::local(out.path(), false).unwrap();
    backup(
        &Client::new(ClientConfig::new(addr.to_string())),
        &dest,
        &BackupOptions::default(),
        &Hooks::default(),
    )
    .await
    .unwrap();
    let target = Influxd::start();
    influxd_restore(&target, out.path());
    assert_aggregates(&target, &exp);
    let queries = [
        "SELECT count(usage), sum(usage), mean(usage), min(usage), max(usage) FROM nat..cpu",
        "SELECT sum(n), min(n), max(n), first(n), last(n) FROM nat.autogen.cpu",
        "SELECT sum(u), max(u) FROM nat..cpu",
        "SELECT count(*) FROM nat..cpu",
        "SELECT count(*) FROM nat..ev",
        "SELECT last(msg) FROM nat..ev",
        "SELECT first(ok) FROM nat..ev",
        "SELECT max(usage) FROM nat..cpu",
        "SELECT count(usage) FROM nat..nothing",
    ];
    let q = |h: &str, s: &str| tokio::task::block_in_place(|| curl_query(h, s));
    for s in queries {
        let theirs = tokio::task::block_in_place(|| query_enabled(&target, s));
        assert_eq!(q(&http, s), theirs, "{s}");
    }
}
