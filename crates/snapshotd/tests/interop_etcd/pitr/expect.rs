//! Expected state at an index: the test's own writes counted in the member's WAL (read by
//! `snapshotd wal dump`, independent of the archive), and the live cluster's keyspace at
//! the matching revision.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::cluster::{ctl, ctl_json, s, snapshotd, spawn_etcd, wait_healthy};
use snapshotd_testutil::free_port;

/// Key prefix of every write the tests make.
pub const PREFIX: &str = "pitr/";

fn plain_put(i: usize) -> bool {
    i % 11 != 10 && i % 7 != 6
}

/// Writes `n` operations: puts of new keys, overwrites and deletes of existing keys (each
/// changes the keyspace, so each bumps the revision by one).
pub fn write_ops(client: &str, start: usize, n: usize) {
    for i in start..start + n {
        let key = format!("{PREFIX}k{:04}", i);
        let out = if !plain_put(i) && i % 11 == 10 {
            // The newest plain put before i: it exists and no other delete targets it.
            let j = (i - 3..i)
                .rev()
                .find(|&j| plain_put(j))
                .expect("a plain put");
            let o = ctl(client, &["del", &format!("{PREFIX}k{j:04}")]);
            assert_eq!(
                String::from_utf8_lossy(&o.stdout).trim(),
                "1",
                "del k{j:04}"
            );
            o
        } else if i % 7 == 6 {
            ctl(
                client,
                &[
                    "put",
                    &format!("{PREFIX}k{:04}", i - 2),
                    &format!("over-{i}"),
                ],
            )
        } else {
            ctl(client, &["put", &key, &format!("value-{i}")])
        };
        assert!(
            out.status.success(),
            "op {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `(index, is_our_write)` for every entry of a member's WAL (read-only dump).
pub fn writes_by_index(wal: &Path) -> Vec<(u64, bool)> {
    let o = snapshotd(&["wal", "dump", "--json", "--mode", "read", s(wal)]);
    assert!(
        o.status.success(),
        "dump: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: Value = serde_json::from_slice(&o.stdout).expect("dump json");
    let needle = hex_of(PREFIX.as_bytes());
    doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let data = e["data_hex"].as_str().unwrap_or("");
            (e["index"].as_u64().expect("index"), data.contains(&needle))
        })
        .collect()
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Revision of the keyspace after applying every entry up to `n`.
pub fn revision_at(writes: &[(u64, bool)], n: u64) -> i64 {
    1 + writes.iter().filter(|(i, w)| *i <= n && *w).count() as i64
}

/// Starts etcd from a restored dir on `peer`, checks the member list shows `peer`,
/// returns `get PREFIX --prefix -w json`.
pub fn serve_restored(dir: &Path, name: &str, peer: &str, log: &Path) -> Value {
    let client = format!("http://127.0.0.1:{}", free_port());
    let mut args = snapshotd_testutil::etcd::member_args(name, s(dir), &client, peer);
    args.push("--force-new-cluster".into());
    let _etcd = spawn_etcd(&args, log);
    wait_healthy(&client);
    std::thread::sleep(Duration::from_millis(100));
    let members = ctl_json(&client, &["member", "list", "-w", "json"]);
    let list = members["members"].as_array().expect("members");
    assert_eq!(
        list.len(),
        1,
        "force-new-cluster leaves one member: {members}"
    );
    assert_eq!(list[0]["peerURLs"], serde_json::json!([peer]), "{members}");
    assert_eq!(list[0]["name"], name, "{members}");
    ctl_json(&client, &["get", PREFIX, "--prefix", "-w", "json"])
}

/// Restores DEST to `n` (None = latest), serves it and checks it against the live cluster.
pub fn check_restore(
    dest: &str,
    work: &Path,
    live: &str,
    name: &str,
    writes: &[(u64, bool)],
    n: Option<u64>,
) {
    check_restore_at(dest, work, live, name, n, &|i| revision_at(writes, i));
}

/// As [`check_restore`], with the revision expected at each index given by `rev_of`;
/// returns the restore's JSON report.
pub fn check_restore_at(
    dest: &str,
    work: &Path,
    live: &str,
    name: &str,
    n: Option<u64>,
    rev_of: &dyn Fn(u64) -> i64,
) -> Value {
    let dir = work.join(format!(
        "restore-{}",
        n.map_or("latest".into(), |n| n.to_string())
    ));
    let peer = format!("http://127.0.0.1:{}", free_port());
    let mut args = vec![
        "etcd",
        "restore",
        dest,
        "--data-dir",
        s(&dir),
        "--name",
        name,
        "--json",
        "--initial-advertise-peer-urls",
        &peer,
    ];
    let idx;
    if let Some(n) = n {
        idx = n.to_string();
        args.extend(["--to-index", &idx]);
    }
    let o = snapshotd(&args);
    assert!(
        o.status.success(),
        "restore {n:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rep: Value = serde_json::from_slice(&o.stdout).expect("restore json");
    let index = rep["restore"]["index"].as_u64().expect("index");
    if let Some(n) = n {
        assert_eq!(index, n);
    }
    let got = serve_restored(
        &dir,
        name,
        &peer,
        &work.join(format!("etcd-restored-{index}.log")),
    );
    let rev = rev_of(index);
    assert_eq!(
        got["header"]["revision"].as_i64(),
        Some(rev),
        "revision at index {index}"
    );
    let want = ctl_json(
        live,
        &[
            "get",
            PREFIX,
            "--prefix",
            "--rev",
            &rev.to_string(),
            "-w",
            "json",
        ],
    );
    assert_eq!(
        got["kvs"], want["kvs"],
        "keyspace at index {index} (revision {rev})"
    );
    rep
}
