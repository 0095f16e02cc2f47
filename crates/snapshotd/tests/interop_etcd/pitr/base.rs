//! Base backups: an archive started after etcd purged its first WAL segment cannot restore
//! alone; a base taken through the Snapshot RPC plus the entries archived after it can, to
//! any index from the base on, and a target before the base is refused.

use std::path::Path;
use std::time::Duration;

use super::cluster::{Member, ctl, ctl_json, s, snapshotd, start_cluster, status};
use super::expect::{PREFIX, check_restore_at, serve_restored, write_ops};
use super::purge::{segment_indexes, wait_purge_cycle, write_big};
use super::{seed, targets};

/// `(raft index, revision)` the member reports now.
fn index_and_revision(client: &str) -> (u64, i64) {
    let v = ctl_json(client, &["endpoint", "status", "-w", "json"]);
    let st = &v[0]["Status"];
    (
        st["raftIndex"].as_u64().expect("raftIndex"),
        st["header"]["revision"].as_i64().expect("revision"),
    )
}

fn json_of(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn late_archive_restores_from_a_base_to_seeded_indexes() {
    let tmp = snapshotd_testutil::temp_dir();
    let dest = tmp.path().join("archive");
    let flags = ["--snapshot-count", "5", "--max-wals", "1"];
    let members = start_cluster(tmp.path(), 1, &flags);
    let m = &members[0];
    let wal = m.data.join("member").join("wal");
    write_ops(&m.client, 0, 12);
    // ~70 MiB of values: etcd cuts a second 64 MB segment, releases the first after its
    // next snapshot, and its purge (every 30 s) deletes it: entries from index 1 are gone.
    write_big(&m.client, "late", 70);
    assert!(
        ctl(&m.client, &["del", "big/", "--prefix"])
            .status
            .success()
    );
    wait_purge_cycle(&tmp.path().join("m0.log"), 0, Duration::from_secs(70));
    assert!(
        segment_indexes(&wal)[0] > 1,
        "etcd purged its first segment"
    );
    // Compact and defragment so the base is small; one more write after the compaction.
    let (_, rev) = index_and_revision(&m.client);
    assert!(
        ctl(&m.client, &["compact", &rev.to_string()])
            .status
            .success()
    );
    assert!(ctl(&m.client, &["defrag"]).status.success());
    write_ops(&m.client, 12, 1);

    // Archiving starts late: the purged entries are a gap and nothing is restorable yet.
    super::cluster::archive_once(&m.data, &dest, 3);
    let none = tmp.path().join("none");
    let r = snapshotd(&["etcd", "restore", s(&dest), "--data-dir", s(&none)]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("no base backup covers"),
        "{err}"
    );
    assert!(!none.exists(), "a refused restore created its target");

    // The base: raft index and revision as the member reports them (no writes meanwhile).
    let (live_index, live_rev) = index_and_revision(&m.client);
    let b = snapshotd(&[
        "etcd",
        "backup",
        "--endpoints",
        &m.client,
        s(&dest),
        "--json",
    ]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let b = json_of(&b);
    assert_eq!(b["status"], "ok", "{b}");
    let base = b["raft_index"].as_u64().expect("raft_index");
    assert!(
        base >= live_index,
        "base {base} before the member's index {live_index}"
    );
    assert_eq!(b["revision"].as_i64(), Some(live_rev), "{b}");

    // More writes after the base, each point (index, revision) recorded from the member.
    let mut points = vec![(base, live_rev)];
    for i in 13..43 {
        write_ops(&m.client, i, 1);
        points.push(index_and_revision(&m.client));
    }
    super::cluster::archive_once(&m.data, &dest, 0);
    let head = points.last().expect("points").0;

    let st = status(&dest);
    assert_eq!(st["bases"].as_array().map(Vec::len), Some(1), "{st}");
    assert_eq!(st["bases"][0]["index"], base, "{st}");
    assert_eq!(
        st["gaps"][0]["from"], 1,
        "the purged entries are reported: {st}"
    );
    assert_eq!(st["restorable"]["from"], base, "{st}");
    assert!(st["restorable"]["to"].as_u64() >= Some(head), "{st}");
    let v = snapshotd(&["etcd", "verify", s(&dest), "--json"]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    assert_eq!(json_of(&v)["bases"], 1);

    let rev_of = |i: u64| {
        points
            .iter()
            .find(|p| p.0 == i)
            .map(|p| p.1)
            .unwrap_or_else(|| panic!("no recorded revision at index {i}"))
    };
    let seed = seed();
    let picks = targets(seed, 1, points.len() as u64 - 1, 3);
    let mut chosen: Vec<u64> = picks.iter().map(|&k| points[k as usize].0).collect();
    chosen.extend([base, head]);
    chosen.sort_unstable();
    chosen.dedup();
    for n in chosen {
        let rep = check_restore_at(s(&dest), tmp.path(), &m.client, &m.name, Some(n), &rev_of);
        assert_eq!(rep["restore"]["base_index"], base, "{rep}");
    }

    // Before the base, inside the purged range: refused, naming the gap; nothing written.
    let early = tmp.path().join("early");
    let to = (base - 1).to_string();
    let r = snapshotd(&[
        "etcd",
        "restore",
        s(&dest),
        "--data-dir",
        s(&early),
        "--to-index",
        &to,
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "restored {to} before the base");
    assert!(
        err.contains(&format!("oldest restorable index is {base}")),
        "{err}"
    );
    assert!(!early.exists());
    encrypted_base(tmp.path(), m, head, rev_of(head));
}

/// An encrypted DEST holding only a base (no archive): the base is stored encrypted, a
/// restore without the key is refused, one with it serves the keyspace at the base.
fn encrypted_base(work: &Path, m: &Member, head: u64, rev: i64) {
    let key = work.join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let dest = work.join("enc-archive");
    let k = ["--encrypt-key-file", s(&key)];
    let b = snapshotd(
        &[
            &["etcd", "backup", "--endpoints", &m.client, s(&dest)][..],
            &k,
        ]
        .concat(),
    );
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let stored: Vec<_> = std::fs::read_dir(dest.join("bases").join("db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(stored.iter().all(|n| n.ends_with(".enc")), "{stored:?}");
    let dir = work.join("enc-restore");
    let o = snapshotd(&["etcd", "restore", s(&dest), "--data-dir", s(&dir)]);
    assert!(
        !o.status.success(),
        "restored an encrypted base without its key"
    );
    assert!(!dir.exists());
    let peer = format!("http://127.0.0.1:{}", snapshotd_testutil::free_port());
    let args = [
        "etcd",
        "restore",
        s(&dest),
        "--data-dir",
        s(&dir),
        "--name",
        &m.name,
        "--json",
        "--initial-advertise-peer-urls",
        &peer,
    ];
    let o = snapshotd(&[&args[..], &k].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rep = json_of(&o);
    assert_eq!(rep["restore"]["index"].as_u64(), Some(head), "{rep}");
    assert_eq!(rep["restore"]["chunks"], 0, "the base alone: {rep}");
    let got = serve_restored(&dir, &m.name, &peer, &work.join("enc-etcd.log"));
    let r = rev.to_string();
    let want = ctl_json(
        &m.client,
        &["get", PREFIX, "--prefix", "--rev", &r, "-w", "json"],
    );
    assert_eq!(got["kvs"], want["kvs"], "encrypted base restored at {head}");
    assert_eq!(got["header"]["revision"].as_i64(), Some(rev));
}
