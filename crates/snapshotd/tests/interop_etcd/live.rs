//! A real etcd 3.4.23 on loopback: `snapshotd wal dump` reads its WAL while it runs (no
//! locks), cannot open it for writing (etcd's OFD locks), and after a clean stop prints
//! exactly what etcd's own Go `wal` package reports. A point-in-time view of the live WAL
//! ships bytes etcd's reader accepts. Run by `cargo xtask interop etcd`.

use std::io::Read;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use snapshotd_wal::{Snapshot, open_for_read};

use crate::pitr::cluster::{ctl, env_path, s, snapshotd, spawn_etcd};

fn harness(args: &[&str]) -> Output {
    Command::new(env_path("SNAPSHOTD_ETCD_WAL_GO"))
        .args(args)
        .output()
        .expect("run harness")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn live_etcd_wal_dump_locks_and_point_in_time_copy() {
    let tmp = snapshotd_testutil::temp_dir();
    let data = tmp.path().join("etcd");
    let (cp, pp) = (
        snapshotd_testutil::free_port(),
        snapshotd_testutil::free_port(),
    );
    let client = format!("http://127.0.0.1:{cp}");
    let peer = format!("http://127.0.0.1:{pp}");
    let mut args = snapshotd_testutil::etcd::member_args("default", s(&data), &client, &peer);
    args.extend([
        "--initial-cluster".to_string(),
        format!("default={peer}"),
        "--snapshot-count".to_string(),
        "50".to_string(),
    ]);
    let mut etcd = spawn_etcd(&args, &tmp.path().join("etcd.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ctl(&client, &["put", "ready", "1"]).status.success() {
        assert!(Instant::now() < deadline, "etcd did not come up");
        assert!(etcd.0.try_wait().unwrap().is_none(), "etcd exited early");
        std::thread::sleep(Duration::from_millis(200));
    }
    for i in 0..120 {
        let out = ctl(
            &client,
            &["put", &format!("key-{i:04}"), &format!("value-{i:04}")],
        );
        assert!(out.status.success(), "put {i}");
    }
    for i in (0..120).step_by(10) {
        assert!(
            ctl(&client, &["del", &format!("key-{i:04}")])
                .status
                .success()
        );
    }
    let wal = data.join("member").join("wal");

    // While etcd runs: read mode works and agrees with etcd's reader; write mode is locked out.
    let mut agreed = false;
    for _ in 0..5 {
        let ours = snapshotd(&["wal", "dump", "--json", "--mode", "read", s(&wal)]);
        assert!(
            ours.status.success(),
            "{}",
            String::from_utf8_lossy(&ours.stderr)
        );
        let theirs = harness(&["read", "-mode", "read", s(&wal)]);
        let doc = json(&ours);
        assert!(
            doc["num_entries"].as_u64().unwrap() >= 130,
            "{}",
            doc["num_entries"]
        );
        if ours.stdout == theirs.stdout {
            agreed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300)); // etcd appended in between; look again
    }
    assert!(agreed, "live read-mode dump never matched etcd's reader");
    let locked = snapshotd(&["wal", "dump", "--json", "--mode", "write", s(&wal)]);
    assert!(!locked.status.success());
    assert_eq!(json(&locked)["open_error"], "fileutil: file already locked");
    assert!(snapshotd(&["wal", "verify", s(&wal)]).status.success());

    // A point-in-time view of the live WAL: ship valid bytes only, check with etcd's reader.
    let view = open_for_read(&wal, Snapshot::default()).expect("view of live WAL");
    assert!(
        !view.segments().last().unwrap().is_locked(),
        "etcd holds its tail"
    );
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for seg in view.segments() {
        let mut buf = Vec::new();
        seg.reader().read_to_end(&mut buf).unwrap();
        std::fs::write(copy.join(seg.path().file_name().unwrap()), buf).unwrap();
    }
    let contents = view.read_all().expect("view read");
    drop(view);
    let theirs = json(&harness(&["read", "-mode", "write", s(&copy)]));
    assert_eq!(
        theirs["read_error"],
        Value::Null,
        "etcd's strict reader accepts the copy"
    );
    assert_eq!(
        theirs["num_entries"].as_u64().unwrap(),
        contents.entries.len() as u64
    );
    assert_eq!(theirs["hardstate"]["commit"], contents.hardstate.commit);

    // Clean stop (SIGTERM by pid), then everything must equal etcd's own reader byte for byte.
    let pid = etcd.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while etcd.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "etcd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
    let snaps = json(&harness(&["snaps", s(&wal)]));
    let mut starts = vec![(0u64, 0u64)];
    for sn in snaps["snapshots"].as_array().unwrap() {
        starts.push((sn["index"].as_u64().unwrap(), sn["term"].as_u64().unwrap()));
    }
    assert!(starts.len() >= 3, "etcd took snapshots: {starts:?}");
    for (i, t) in starts {
        for mode in ["read", "write"] {
            let (i, t) = (i.to_string(), t.to_string());
            let ours = snapshotd(&[
                "wal",
                "dump",
                "--json",
                "--mode",
                mode,
                "--index",
                &i,
                "--term",
                &t,
                s(&wal),
            ]);
            let theirs = harness(&["read", "-mode", mode, "-index", &i, "-term", &t, s(&wal)]);
            assert!(
                ours.stdout == theirs.stdout,
                "dump {mode} at {i},{t} differs from etcd's reader"
            );
        }
    }
    let out = snapshotd(&["wal", "repair", s(&wal)]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to repair"));
}
