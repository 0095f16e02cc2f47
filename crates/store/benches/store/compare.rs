//! One data set written to `snapshotd serve` and to influxd 1.6.7 in the same run: ingest
//! rate and per-batch latency (writes that overlapped a compaction reported apart), the
//! backup of each by `influxd backup -portable`, and our backup restored into influxd with
//! every field's count checked.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use snapshotd_server::http::{HttpState, serve_http};
use snapshotd_server::{ServerConfig, SnapshotServer};
use snapshotd_store::{AdminStore, CompactionPolicy};
use snapshotd_testutil::influxd::{Influxd, influxd_bin};
use snapshotd_testutil::temp_dir;

use crate::http::{Run, influxd_backup, ingest, query};
use crate::sets::Set;
use crate::util::{dir_bytes, loadavg, open, pct};

/// Runs `set` against both servers with `policy` (named `label` in the report).
pub fn run(set: &Set, policy: CompactionPolicy, label: &str) {
    println!(
        "\n## set {} ({label}): {}; {} batches, {:.1} MB line protocol, {:.1} MB gzip",
        set.name,
        set.about,
        set.bodies.len(),
        set.raw as f64 / 1e6,
        set.bodies.iter().map(|b| b.len()).sum::<usize>() as f64 / 1e6
    );
    println!(
        "compaction policy: {} entries / {} MiB per shard, idle {:?}, compactor nice +{}",
        policy.max_entries,
        policy.max_bytes >> 20,
        policy.idle,
        policy.nice
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ours_dir = temp_dir();
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
    let ours = ingest(&http.to_string(), "bench", &set.bodies, &probe);
    let idle_start = Instant::now();
    std::thread::sleep(Duration::from_secs(2)); // let a running compaction finish
    let (compacted, written) = store.shards().unwrap().iter().fold((0, 0), |(c, w), s| {
        let l = store.log_stats(s.path.shard_id).unwrap();
        (c + l.compacted_through, w + l.last_index)
    });
    let activity = store.compaction_activity();
    let influx = Influxd::start();
    influx.query("CREATE DATABASE bench");
    let theirs = ingest(&influx.http, "bench", &set.bodies, &|| (0, 0));
    println!("load average after ingest: {}", loadavg());
    latency_table(set.points as f64, &ours, &theirs);
    println!(
        "ingest ratio snapshotd/influxd: {:.2}x; background: {} compaction runs, {} lock holds, longest shard-lock hold {:.1} ms; {} shards, {compacted} of {written} log entries compacted 2 s after the last write",
        theirs.secs / ours.secs,
        activity.started,
        activity.lock_holds,
        activity.longest_lock_hold.as_secs_f64() * 1000.0,
        store.shards().unwrap().len()
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
    let influx_after = dir_bytes(influx.dir.path());
    backups_and_restore(set, &snap.to_string(), &influx);
    footprint(&ours_dir.path().join("store"), influx_after, idle_start);
    drop(rt);
}

/// Prints the store's size on disk once every shard log closed itself (idle twice the
/// policy's delay: preallocated segments given back) next to influxd's after the ingest.
fn footprint(store: &Path, influx_bytes: u64, since: Instant) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while spare_segments(&store.join("data")) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    let left = spare_segments(&store.join("data"));
    println!(
        "on disk: snapshotd store {:.1} MB {:.0} s after the last write ({left} shard logs still open), influxd 1.6.7 dir {:.1} MB after its ingest",
        dir_bytes(store) as f64 / 1e6,
        since.elapsed().as_secs_f64(),
        influx_bytes as f64 / 1e6
    );
}

/// Spare segment files (`N.tmp`) under `dir`: one per open shard log.
fn spare_segments(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += spare_segments(&p);
        } else if p.extension().is_some_and(|x| x == "tmp") {
            n += 1;
        }
    }
    n
}

fn latency_table(points: f64, ours: &Run, theirs: &Run) {
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
}

/// Backs both servers up with `influxd backup -portable`, restores ours into influxd as
/// `ours`, and checks that every field of both databases counts every point written.
fn backups_and_restore(set: &Set, snap: &str, influx: &Influxd) {
    let a = temp_dir();
    let ours_b = influxd_backup(snap, a.path());
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
    let o = Command::new(influxd_bin())
        .args(["restore", "-portable", "-db", "bench", "-newdb", "ours"])
        .args(["-host", &influx.bind])
        .arg(a.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let counts: Vec<String> = set
        .fields
        .iter()
        .map(|f| format!("count(\"{f}\")"))
        .collect();
    for db in ["ours", "bench"] {
        let q = format!(
            "SELECT {} FROM {db}.autogen.{}",
            counts.join(", "),
            set.measurement
        );
        let mut v = query(&influx.http, &q);
        for _ in 0..50 {
            if !v.to_string().contains("shard is disabled") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            v = query(&influx.http, &q);
        }
        let row = &v["results"][0]["series"][0]["values"][0];
        let got: Vec<u64> = (1..=set.fields.len())
            .map(|k| row[k].as_u64().unwrap_or(0))
            .collect();
        println!(
            "restored into influxd, {db}: count of each of {} fields = {:?}",
            set.fields.len(),
            got.iter().min()
        );
        assert_eq!(got, vec![set.points; set.fields.len()], "{db}: {v}");
    }
}
