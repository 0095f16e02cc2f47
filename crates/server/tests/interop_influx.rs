//! Interop with the real `influxd backup/restore -portable` 1.6.7 clients and real influxd
//! servers. Run via `cargo xtask interop influx` (needs `influxd` on PATH or
//! `SNAPSHOTD_INFLUXD_BIN`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use snapshotd_server::http::{HttpState, serve_http};
use snapshotd_server::{ServerConfig, SnapshotServer};
use snapshotd_store::BuiltinStore;
use snapshotd_testutil::influxd::{Influxd, influxd_bin};
use snapshotd_testutil::{ChildGuard, temp_dir, vector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// snapshotd's snapshot service + HTTP API over a builtin store in a temp dir.
struct Snapd {
    snap: SocketAddr,
    http: SocketAddr,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Snapd {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn start_snapd() -> Snapd {
    let dir = temp_dir();
    let store = Arc::new(BuiltinStore::open(dir.path().join("store")).unwrap());
    let snap_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (snap, http) = (snap_l.local_addr().unwrap(), http_l.local_addr().unwrap());
    let (stop, rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let server = SnapshotServer::new(store.clone(), ServerConfig::default());
    tokio::spawn(server.serve(snap_l, stopped(rx.clone())));
    tokio::spawn(serve_http(http_l, HttpState::new(store, None), stopped(rx)));
    Snapd {
        snap,
        http,
        stop,
        _dir: dir,
    }
}

/// Minimal HTTP/1.1 request; returns (status, body).
async fn http(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    // influxd answers chunked; strip chunk framing if present.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((len, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn query(addr: SocketAddr, db: &str, q: &str) -> Value {
    let body = format!("db={}&q={}", enc(db), enc(q));
    let (st, text) = http(addr, "POST", "/query", body.as_bytes()).await;
    assert_eq!(st, 200, "query {q} on {addr}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Creates the vectors' databases and writes their line protocol (150 + 100 + 100 points).
async fn load_vector_data(addr: SocketAddr) {
    query(
        addr,
        "",
        "CREATE DATABASE db1; CREATE DATABASE db2; CREATE RETENTION POLICY rp2 ON db2 DURATION 520w REPLICATION 1 SHARD DURATION 1d",
    )
    .await;
    for (file, target) in [
        ("db1.lp", "/write?db=db1"),
        ("db2_autogen.lp", "/write?db=db2"),
        ("db2_rp2.lp", "/write?db=db2&rp=rp2"),
    ] {
        let lp = std::fs::read(vector(&format!("influx/tools/{file}"))).unwrap();
        let (st, body) = http(addr, "POST", target, &lp).await;
        assert_eq!(st, 204, "write {file}: {body}");
    }
}

/// Runs `influxd <args>` with a deadline; returns (success, combined output).
async fn influxd(args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let out_dir = temp_dir();
        let log = out_dir.path().join("out");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(influxd_bin())
            .args(&args)
            .stdout(Stdio::from(f.try_clone().unwrap()))
            .stderr(Stdio::from(f))
            .spawn()
            .unwrap();
        let mut guard = ChildGuard(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = guard.0.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            Some(s) => (s.success(), format!("influxd {}\n{text}", args.join(" "))),
            None => panic!(
                "influxd {} did not finish in 120 s:\n{text}",
                args.join(" ")
            ),
        }
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn backup(host: SocketAddr, extra: &[&str], dir: &Path) {
    let mut a = args(&["backup", "-portable", "-host", &host.to_string()]);
    a.extend(args(extra));
    a.push(dir.display().to_string());
    let (ok, out) = influxd(a).await;
    assert!(ok, "backup failed:\n{out}");
}

async fn restore(host: SocketAddr, extra: &[&str], dir: &Path) {
    let mut a = args(&["restore", "-portable", "-host", &host.to_string()]);
    a.extend(args(extra));
    a.push(dir.display().to_string());
    let (ok, out) = influxd(a).await;
    assert!(ok, "restore failed:\n{out}");
}

/// Per (db, rp): the sorted list of shards, each a map of file name (below the shard dir) to
/// its bytes — what "the same points" means for shard files restored verbatim.
type Content = BTreeMap<(String, String), Vec<BTreeMap<String, Vec<u8>>>>;

fn backup_content(dir: &Path) -> Content {
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "manifest"))
        .collect();
    manifests.sort();
    let mut out = Content::new();
    for m in manifests {
        let v: Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
        for f in v["files"].as_array().cloned().unwrap_or_default() {
            let key = (
                f["database"].as_str().unwrap().to_string(),
                f["policy"].as_str().unwrap().to_string(),
            );
            let gz = std::fs::File::open(dir.join(f["fileName"].as_str().unwrap())).unwrap();
            let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
            let mut files = BTreeMap::new();
            for e in ar.entries().unwrap() {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().to_string();
                let rel = name.splitn(4, '/').nth(3).unwrap_or_default().to_string();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                files.insert(rel, data);
            }
            out.entry(key).or_default().push(files);
        }
    }
    for shards in out.values_mut() {
        shards.sort();
    }
    out
}

/// Backs up until `done` holds for the content (a server finishes installing an uploaded shard
/// after `influxd restore` has already exited), at most 25 attempts; returns the last content.
async fn backup_settled(
    host: SocketAddr,
    extra: &[&str],
    base: &Path,
    done: impl Fn(&Content) -> bool,
) -> (PathBuf, Content) {
    let mut attempt = 0;
    loop {
        let dir = base.join(format!("try{attempt}"));
        backup(host, extra, &dir).await;
        let content = backup_content(&dir);
        attempt += 1;
        if done(&content) || attempt == 25 {
            return (dir, content);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn count_files(c: &Content) -> usize {
    c.values().flatten().map(BTreeMap::len).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn influxd_backup_and_restore_against_snapshotd() {
    let s1 = start_snapd().await;
    load_vector_data(s1.http).await;
    let tmp = temp_dir();
    let d = |n: &str| tmp.path().join(n);

    backup(s1.snap, &[], &d("full")).await;
    let full = backup_content(&d("full"));
    assert_eq!(
        full.values().map(Vec::len).sum::<usize>(),
        6,
        "six shards: {:?}",
        full.keys()
    );
    assert!(count_files(&full) > 0);
    backup(s1.snap, &["-db", "db2"], &d("db2")).await;
    assert_eq!(
        backup_content(&d("db2"))
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            ("db2".into(), "autogen".into()),
            ("db2".into(), "rp2".into())
        ]
    );
    backup(s1.snap, &["-db", "db2", "-rp", "rp2"], &d("rp2")).await;
    let rp2 = backup_content(&d("rp2"));
    assert_eq!(rp2.keys().count(), 1);
    assert_eq!(rp2[&("db2".to_string(), "rp2".to_string())].len(), 2);
    backup(
        s1.snap,
        &["-db", "db1", "-rp", "autogen", "-shard", "1"],
        &d("shard1"),
    )
    .await;
    assert_eq!(
        backup_content(&d("shard1"))
            .values()
            .map(Vec::len)
            .sum::<usize>(),
        1
    );
    backup(
        s1.snap,
        &["-db", "db1", "-since", "2000-01-01T00:00:00Z"],
        &d("since"),
    )
    .await;
    assert_eq!(
        backup_content(&d("since"))[&("db1".to_string(), "autogen".to_string())],
        full[&("db1".to_string(), "autogen".to_string())],
        "-since before every write returns everything"
    );
    backup(
        s1.snap,
        &[
            "-db",
            "db1",
            "-start",
            "2021-01-05T00:00:00Z",
            "-end",
            "2021-01-12T12:00:00Z",
        ],
        &d("export"),
    )
    .await;

    // Restore into a second server, back it up again: same shard contents.
    let s2 = start_snapd().await;
    restore(s2.snap, &[], &d("full")).await;
    backup(s2.snap, &[], &d("full2")).await;
    assert_eq!(
        backup_content(&d("full2")),
        full,
        "backup of the restored server differs"
    );

    restore(s2.snap, &["-db", "db2", "-newdb", "db2copy"], &d("db2")).await;
    restore(
        s2.snap,
        &[
            "-db", "db2", "-newdb", "db2rp", "-rp", "rp2", "-newrp", "rp2copy",
        ],
        &d("rp2"),
    )
    .await;
    restore(
        s2.snap,
        &["-db", "db1", "-newdb", "db1one", "-shard", "1"],
        &d("shard1"),
    )
    .await;
    restore(
        s2.snap,
        &["-db", "db1", "-newdb", "db1export"],
        &d("export"),
    )
    .await;
    let export = backup_content(&d("export"));
    let export_key = ("db1".to_string(), "autogen".to_string());
    assert!(
        !export.get(&export_key).is_none_or(Vec::is_empty),
        "export backed up no shard"
    );
    let (_, export2) = backup_settled(s2.snap, &["-db", "db1export"], &d("export2"), |c| {
        c.get(&("db1export".to_string(), "autogen".to_string())) == export.get(&export_key)
    })
    .await;
    assert_eq!(
        export2.get(&("db1export".to_string(), "autogen".to_string())),
        export.get(&export_key),
        "restored export differs"
    );
    let want_copy = |c: &Content| {
        c.get(&("db2copy".to_string(), "rp2".to_string()))
            == full.get(&("db2".to_string(), "rp2".to_string()))
            && c.get(&("db2copy".to_string(), "autogen".to_string()))
                == full.get(&("db2".to_string(), "autogen".to_string()))
    };
    let (_, copy) = backup_settled(s2.snap, &["-db", "db2copy"], &d("db2copy"), want_copy).await;
    assert_eq!(
        copy[&("db2copy".to_string(), "rp2".to_string())],
        full[&("db2".to_string(), "rp2".to_string())]
    );
    assert_eq!(
        copy[&("db2copy".to_string(), "autogen".to_string())],
        full[&("db2".to_string(), "autogen".to_string())]
    );
    let key = ("db2rp".to_string(), "rp2copy".to_string());
    let want = full.get(&("db2".to_string(), "rp2".to_string()));
    let (_, rp2copy) = backup_settled(
        s2.snap,
        &["-db", "db2rp", "-rp", "rp2copy"],
        &d("rp2copy"),
        |c| c.get(&key) == want,
    )
    .await;
    assert_eq!(rp2copy.get(&key), want);
    let dbs = query(s2.http, "", "SHOW DATABASES").await;
    let names: Vec<String> = dbs["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[0].as_str().unwrap().to_string())
        .collect();
    for want in ["db1", "db2", "db2copy", "db2rp", "db1one", "db1export"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    // A conflicting restore is refused (16-byte empty map) and changes nothing.
    let (ok, out) = influxd({
        let mut a = args(&[
            "restore",
            "-portable",
            "-host",
            &s2.snap.to_string(),
            "-db",
            "db2",
        ]);
        a.push(d("db2").display().to_string());
        a
    })
    .await;
    assert!(!ok, "restoring over an existing database must fail:\n{out}");
}

/// Counts and sums of every field of every measurement in every RP of `db`.
async fn figures(addr: SocketAddr, db: &str, require_data: bool) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let rps = query(addr, db, "SHOW RETENTION POLICIES").await;
    let rps: Vec<String> = rps["results"][0]["series"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| v[0].as_str().unwrap().to_string())
        .collect();
    let ms = query(addr, db, "SHOW MEASUREMENTS").await;
    let ms: Vec<String> = ms["results"][0]["series"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| v[0].as_str().unwrap().to_string())
        .collect();
    assert!(
        !require_data || !ms.is_empty(),
        "{db} on {addr} has no measurements"
    );
    for rp in &rps {
        for m in &ms {
            for agg in ["count", "sum"] {
                let q = format!("SELECT {agg}(*) FROM \"{rp}\".\"{m}\"");
                out.push((q.clone(), query(addr, db, &q).await["results"][0].clone()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn vault_round_trip_real_influxd_through_snapshotd() {
    let tmp = temp_dir();
    let a = tokio::task::spawn_blocking(Influxd::start).await.unwrap();
    load_vector_data(a.http_addr()).await;
    let snap = start_snapd().await;
    let d = |n: &str| tmp.path().join(n);

    backup(a.snap_addr(), &[], &d("fromA")).await;
    restore(snap.snap, &[], &d("fromA")).await;
    let from_a = backup_content(&d("fromA"));
    let (snap_dir, from_snap) =
        backup_settled(snap.snap, &[], &d("fromSnap"), |c| *c == from_a).await;
    assert_eq!(
        from_snap, from_a,
        "snapshotd must hand back exactly the shard files influxd gave it"
    );
    assert!(
        count_files(&from_a) >= 6,
        "influxd A backed up no TSM files"
    );
    let b = tokio::task::spawn_blocking(Influxd::start).await.unwrap();
    restore(b.snap_addr(), &[], &snap_dir).await;
    for db in ["db1", "db2"] {
        let fa = figures(a.http_addr(), db, true).await;
        // influxd installs an uploaded shard after the restore client has hung up: wait for it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut fb = figures(b.http_addr(), db, false).await;
        while fb != fa && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            fb = figures(b.http_addr(), db, false).await;
        }
        assert_eq!(fa, fb, "query results differ for {db}");
        let total: u64 = fa
            .iter()
            .filter(|(q, _)| q.starts_with("SELECT count"))
            .filter_map(|(_, r)| r["series"][0]["values"][0][1].as_u64())
            .sum();
        assert!(total > 0, "{db}: no points counted on A");
        eprintln!("{db}: {total} field values counted on A and B");
    }
}
