//! The merge's fast path (whole-shard upload through the snapshotter) against real influxd
//! 1.6.7 (run via `cargo xtask interop influx`): points that someone else writes into the
//! shard between the emptiness check and the upload survive, whether they are still in the
//! target's cache or were already flushed to a TSM file; a snapshotter that belongs to
//! another server, or none at all, means point by point.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use snapshotd_influxapi::{
    Backup, HttpOptions, InfluxHttp, MergeOptions, MergeReport, UploadHook, merge,
};
use snapshotd_testutil::influxd::{Influxd, influxd_bin};
use snapshotd_testutil::{free_port, temp_dir};

const T0: i64 = 1_609_459_200_000_000_000; // 2021-01-01T00:00:00Z
const DAY: i64 = 86_400_000_000_000;
const MIN: i64 = 60_000_000_000;
const DAYS: i64 = 3;

/// Source `src` (rp r1, 1-day shards): hosts h0..h2 with two fields every minute for
/// three days, backed up with `influxd backup -portable`.
fn source() -> (Influxd, tempfile::TempDir) {
    let s = Influxd::start();
    s.query("CREATE DATABASE src");
    s.query(
        "CREATE RETENTION POLICY r1 ON src DURATION 520w REPLICATION 1 SHARD DURATION 1d DEFAULT",
    );
    let mut lines = String::new();
    for m in 0..DAYS * 1440 {
        for h in 0..3 {
            lines.push_str(&format!("cpu,host=h{h} v={m}.5,n={m}i {}\n", T0 + m * MIN));
        }
    }
    s.write("src", Some("r1"), &lines);
    let dir = temp_dir();
    let out = Command::new(influxd_bin())
        .args(["backup", "-portable", "-database", "src", "-host", &s.bind])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (s, dir)
}

/// A target whose cache is flushed to a TSM file after one idle second.
fn target() -> Influxd {
    let t = Influxd::start_edited(&influxd_bin(), |c| {
        assert!(c.contains("cache-snapshot-write-cold-duration"));
        c.lines()
            .map(|l| {
                if l.trim().starts_with("cache-snapshot-write-cold-duration") {
                    "  cache-snapshot-write-cold-duration = \"1s\"".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    t.query("CREATE DATABASE dst");
    t.query("CREATE RETENTION POLICY r1 ON dst DURATION 520w REPLICATION 1 SHARD DURATION 1d");
    t
}

async fn run(
    t: &Influxd,
    bdir: &Path,
    addr: Option<String>,
    hook: Option<UploadHook>,
) -> MergeReport {
    let http = InfluxHttp::new(&HttpOptions::new(format!("http://{}", t.http))).unwrap();
    let backup = Backup::open(bdir).unwrap();
    let mut o = MergeOptions::new("src");
    o.new_db = Some("dst".into());
    o.jobs = 1;
    o.import_addr = addr;
    o.before_upload = hook;
    let r = merge(
        &http,
        &backup,
        &o,
        &HashSet::new(),
        Arc::new(|_| Ok(())),
        Arc::new(AtomicBool::new(false)),
    )
    .await
    .unwrap();
    eprintln!("{r:?}");
    r
}

fn one(t: &Influxd, q: &str) -> serde_json::Value {
    t.query(q)["results"][0]["series"][0]["values"].clone()
}

/// Every backed-up value is on the target: count and sum per field equal the source's.
fn assert_backup_values_present(t: &Influxd, s: &Influxd) {
    let q = |db: &str| {
        format!(
            "SELECT count(v), sum(v), count(n), sum(n) FROM {db}.r1.cpu WHERE host =~ /^h/ GROUP BY host"
        )
    };
    assert_eq!(t.query(&q("dst"))["results"], s.query(&q("src"))["results"]);
}

#[test]
#[ignore = "needs influxd 1.6.7: cargo xtask interop influx"]
fn points_written_during_the_upload_survive_in_cache_and_in_flushed_tsm_files() {
    let (src, bdir) = source();
    let tgt = target();
    let data = tgt.dir.path().join("data/dst/r1");
    let (http, seen) = (tgt.http.clone(), Arc::new(Mutex::new(Vec::new())));
    let seen2 = seen.clone();
    let hook = UploadHook(Arc::new(move |db: &str, rp: &str, id: u64| {
        // Point A, flushed to a TSM file of the new shard before the upload; point B still
        // in the cache (and WAL) when the upload lands.
        let day = seen2.lock().unwrap().len() as i64;
        let t = T0 + day * DAY + 30 * MIN + 7;
        curl_write(&http, db, rp, &format!("cpu,host=racer v=1.25 {t}\n"));
        let dir = data.join(id.to_string());
        let deadline = Instant::now() + Duration::from_secs(20);
        let flushed = loop {
            let tsm: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.ends_with(".tsm"))
                        .collect()
                })
                .unwrap_or_default();
            if !tsm.is_empty() {
                break tsm;
            }
            assert!(
                Instant::now() < deadline,
                "the target did not flush shard {id}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        curl_write(
            &http,
            db,
            rp,
            &format!("cpu,host=racer v=2.5 {}\n", t + MIN),
        );
        seen2.lock().unwrap().push((id, flushed));
    }));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(run(&tgt, bdir.path(), Some(tgt.bind.clone()), Some(hook)));
    assert_eq!(
        r.imported.len() as i64,
        DAYS,
        "every shard uploaded whole: {r:?}"
    );
    assert_eq!(r.uploaded_values as i64, DAYS * 1440 * 3 * 2);
    let seen = seen.lock().unwrap().clone();
    eprintln!("target TSM files before each upload: {seen:?}");
    // The backup's own files carry the same generation-1 names as the flushed ones.
    assert!(
        seen.iter()
            .all(|(_, f)| f.iter().any(|n| n.starts_with("000000001-")))
    );
    assert_backup_values_present(&tgt, &src);
    let racer = one(
        &tgt,
        "SELECT count(v), sum(v) FROM dst.r1.cpu WHERE host = 'racer'",
    );
    assert_eq!(
        racer,
        serde_json::json!([["1970-01-01T00:00:00Z", 2 * DAYS, 3.75 * DAYS as f64]]),
        "a concurrent point was lost"
    );
    // Per day: the backup's values and the two racing points, nothing else.
    for d in 0..DAYS {
        let q = format!(
            "SELECT count(v) FROM dst.r1.cpu WHERE time >= {} AND time < {}",
            T0 + d * DAY,
            T0 + (d + 1) * DAY
        );
        assert_eq!(one(&tgt, &q)[0][1], 1440 * 3 + 2, "day {d}");
    }
}

#[test]
#[ignore = "needs influxd 1.6.7: cargo xtask interop influx"]
fn another_servers_snapshotter_or_none_means_point_by_point() {
    let (src, bdir) = source();
    let tgt = target();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The source's snapshotter is another server: its shards of dst/r1 differ.
    let r = rt.block_on(run(&tgt, bdir.path(), Some(src.bind.clone()), None));
    assert!(r.imported.is_empty(), "{r:?}");
    assert_eq!(r.not_uploaded.len() as i64, DAYS);
    assert!(
        r.not_uploaded
            .iter()
            .all(|(_, why)| why.contains("not the same server")),
        "{r:?}"
    );
    assert_eq!(r.values as i64, DAYS * 1440 * 3 * 2);
    assert_backup_values_present(&tgt, &src);
    // Nothing listens at this address: a note, every point through /write.
    tgt.query("DROP DATABASE dst");
    tgt.query("CREATE DATABASE dst");
    tgt.query("CREATE RETENTION POLICY r1 ON dst DURATION 520w REPLICATION 1 SHARD DURATION 1d");
    let r = rt.block_on(run(
        &tgt,
        bdir.path(),
        Some(format!("127.0.0.1:{}", free_port())),
        None,
    ));
    assert!(r.imported.is_empty() && r.not_uploaded.is_empty(), "{r:?}");
    assert!(
        r.notes.iter().any(|n| n.contains("does not answer")),
        "{r:?}"
    );
    assert_backup_values_present(&tgt, &src);
}

fn curl_write(http: &str, db: &str, rp: &str, line: &str) {
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_code}", "-XPOST"])
        .arg(format!("http://{http}/write?db={db}&rp={rp}"))
        .args(["--data-binary", line])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("204"),
        "write {line}"
    );
}
