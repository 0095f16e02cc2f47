//! `snapshotd etcd` on an `s3://` destination (moto): two archivers beside a live etcd
//! 3.4.23 member share the archive, the active one is SIGKILLed and the other takes over
//! with no gap; restores read from S3 are started with `etcd --force-new-cluster` and
//! compared with the live keyspace. Run by `cargo xtask interop s3` (or `all`).

#[path = "../interop_etcd/pitr/cluster.rs"]
#[allow(dead_code)]
mod cluster;
#[path = "../interop_etcd/pitr/expect.rs"]
mod expect;

use std::time::{Duration, Instant};

use cluster::{raft_index, signal, snapshotd, start_archiver, start_cluster};
use expect::{check_restore, check_restore_at, revision_at, write_ops, writes_by_index};
use serde_json::Value;

fn status(url: &str) -> Option<Value> {
    let o = snapshotd(&["etcd", "status", "--json", url]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).unwrap())
}

fn wait_archived(url: &str, index: u64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = status(url)
            && st["archived_through_index"].as_u64().unwrap_or(0) >= index
        {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "S3 archive did not reach {index}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn s3_archive_takeover_and_restore() {
    let tmp = snapshotd_testutil::temp_dir();
    let url = super::s3_url_under("etcd");
    let members = start_cluster(tmp.path(), 1, &["--snapshot-count", "30"]);
    let m = &members[0];
    let mut archivers: Vec<_> = (0..2)
        .map(|i| {
            start_archiver(
                &m.data,
                &url,
                "3s",
                &tmp.path().join(format!("arch-{i}.log")),
            )
        })
        .collect();
    write_ops(&m.client, 0, 40);
    let st = wait_archived(&url, raft_index(&m.client), Duration::from_secs(40));
    // A base into the same s3:// DEST while an archiver holds the archive's lease.
    let b = snapshotd(&["etcd", "backup", "--endpoints", &m.client, &url, "--json"]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let b: Value = serde_json::from_slice(&b.stdout).unwrap();
    let base = b["raft_index"].as_u64().unwrap();
    let holder = st["holder"]["pid"].as_u64().unwrap() as u32;
    let k = archivers
        .iter()
        .position(|a| a.0.id() == holder)
        .expect("holder is ours");
    signal(holder, "-KILL");
    archivers[k].0.wait().unwrap();
    write_ops(&m.client, 40, 40);
    let head = raft_index(&m.client);
    let st = wait_archived(&url, head, Duration::from_secs(40));
    assert_ne!(st["holder"]["pid"].as_u64().unwrap() as u32, holder, "{st}");
    assert_eq!(st["gaps"], serde_json::json!([]), "{st}");
    assert!(!st["snaps"].as_array().unwrap().is_empty(), "{st}");
    drop(archivers);
    let v = snapshotd(&["etcd", "verify", &url]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    assert!(String::from_utf8_lossy(&v.stdout).contains("and 1 bases"));
    let writes = writes_by_index(&m.data.join("member").join("wal"));
    let mid = writes.iter().filter(|w| w.1).nth(30).unwrap().0;
    check_restore(&url, tmp.path(), &m.client, &m.name, &writes, Some(mid));
    // Past the base: the restore starts from it and replays only the entries after it.
    let rev_of = |i| revision_at(&writes, i);
    let rep = check_restore_at(&url, tmp.path(), &m.client, &m.name, None, &rev_of);
    assert_eq!(rep["restore"]["base_index"], base, "{rep}");
    assert!(rep["restore"]["index"].as_u64() > Some(base), "{rep}");
}
