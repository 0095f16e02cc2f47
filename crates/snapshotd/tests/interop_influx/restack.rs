//! Restoring an incremental restore point (a `backup --since` run after a full one) into a
//! real influxd: every shard is rebuilt from the full archive plus the increments after it,
//! not from the newest archive alone.

use std::time::Duration;

use super::influxd::Influxd;
use super::support::serve::serve_no_http;
use super::{backup, json_of, points_in, restore, snapshotd};

/// Points of one second each from `from` on, all inside one 7-day shard group (Nov 2023).
fn recent(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| {
            let t = 1_700_000_000_000_000_000u64 + i * 1_000_000_000;
            format!("m,host=h{} v={i}i {t}\n", i % 3)
        })
        .collect()
}

/// Points in another shard group (Jan 2021) that only the full backup holds.
fn old(n: u64) -> String {
    (0..n)
        .map(|i| {
            let t = 1_609_459_200_000_000_000u64 + i * 60_000_000_000;
            format!("old,host=x v={i}i {t}\n")
        })
        .collect()
}

/// Full backup, more points into the same shard, `--since` backup: restoring the newest
/// point (the increment) brings back every point, the full one's too, and says it stacked
/// the runs; the full point alone still restores its own points; through `snapshotd serve`
/// (one upload per shard) the same.
#[test]
#[ignore = "interop: run via cargo xtask interop influx"]
fn restoring_an_incremental_point_keeps_the_full_backups_points() {
    let a = Influxd::start();
    let q = a.query("CREATE DATABASE inc");
    assert!(q["results"][0]["error"].is_null(), "{q}");
    a.write("inc", None, &recent(0, 1000));
    a.write("inc", None, &old(300));
    let work = snapshotd_testutil::temp_dir();
    let d = work.path().join("dest");
    // The backup snapshots influxd's cache: the 1000 points are in a TSM file it archives.
    let full = json_of(&backup(&a.bind, &["--json"], &d));
    assert_eq!(full["status"], "ok", "{full}");

    // The increment: a later time (seconds resolution), more points in the same shard; its
    // snapshot writes them to a new TSM file, the only file of the shard newer than `since`.
    std::thread::sleep(Duration::from_millis(1100));
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::thread::sleep(Duration::from_millis(1100));
    a.write("inc", None, &recent(1000, 500));
    let inc = json_of(&backup(&a.bind, &["--since", &since, "--json"], &d));
    assert_eq!(inc["status"], "ok", "{inc}");
    assert_ne!(full["id"], inc["id"]);
    assert_eq!(points_in(&a, "inc", "m"), 1500);
    let listed = json_of(&snapshotd(&["snapshots", "--json", d.to_str().unwrap()]));
    let kinds: Vec<&str> = listed["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["full", "incr"], "{listed}");

    // The newest point into a fresh influxd under a new name: all 1500 + 300 points.
    let b = Influxd::start();
    let out = restore(&b.bind, &["--db", "inc", "--newdb", "inc2"], &d);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(points_in(&b, "inc2", "m"), 1500, "{said}");
    assert_eq!(points_in(&b, "inc2", "old"), 300, "{said}");
    let full_id = full["id"].as_str().unwrap();
    assert!(
        said.contains(&format!("full {full_id} + 1 incremental")),
        "the summary names the runs it stacked: {said}"
    );

    // The full point alone: its own 1000 + 300.
    let out = restore(
        &b.bind,
        &["--db", "inc", "--newdb", "inc1", "--at", full_id],
        &d,
    );
    assert!(out.status.success());
    assert_eq!(points_in(&b, "inc1", "m"), 1000);
    assert_eq!(points_in(&b, "inc1", "old"), 300);

    // `snapshotd serve` replaces a shard with each upload: the newest point restored into
    // it, backed up from it and restored into influxd still holds every point.
    let (_srv, addr) = serve_no_http(&work.path().join("serve"));
    let out = restore(&addr, &["--ack", "--db", "inc", "--json"], &d);
    assert!(out.status.success());
    let v = json_of(&out);
    let stacked = v["stacked"].as_array().unwrap();
    assert_eq!(
        stacked.len(),
        2,
        "both shards stack the increment on the full run: {v}"
    );
    assert!(
        stacked
            .iter()
            .all(|c| c["base"] == full_id && c["incrementals"] == 1),
        "{v}"
    );
    let again = work.path().join("from-serve");
    let out = backup(&addr, &["--db", "inc", "--json"], &again);
    assert_eq!(json_of(&out)["status"], "ok");
    let out = restore(&b.bind, &["--db", "inc", "--newdb", "inc3"], &again);
    assert!(out.status.success());
    assert_eq!(points_in(&b, "inc3", "m"), 1500);
    assert_eq!(points_in(&b, "inc3", "old"), 300);

    // `forget --keep-last 1` keeps the full point the increment is restored on top of,
    // and the newest point still restores every point afterwards.
    let out = snapshotd(&["forget", "--keep-last", "1", d.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.lines()
            .any(|l| l.starts_with("keep") && l.contains(full_id) && l.contains("base")),
        "{said}"
    );
    let listed = json_of(&snapshotd(&["snapshots", "--json", d.to_str().unwrap()]));
    let ids: Vec<&str> = listed["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, [full_id, inc["id"].as_str().unwrap()], "{listed}");
    let out = restore(&b.bind, &["--db", "inc", "--newdb", "inc4"], &d);
    assert!(out.status.success());
    assert_eq!(points_in(&b, "inc4", "m"), 1500);
    assert_eq!(points_in(&b, "inc4", "old"), 300);
}
