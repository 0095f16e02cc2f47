//! Replays every captured influx client request against a server whose store holds the data
//! the captured influxd held, and compares the replies structurally.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use snapshotd_store::ShardIdMap;
use snapshotd_wire::Request;

use crate::common::{be, exchange, id_pairs, start, test_config, upload};
use crate::memstore::{Body, Call, MemStore};

struct Conn {
    kind: u8,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
}

fn connections(dir: &Path) -> Vec<Conn> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".c2s.bin"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|c2s_path| {
            let s2c_path =
                PathBuf::from(c2s_path.to_string_lossy().replace(".c2s.bin", ".s2c.bin"));
            let c2s = std::fs::read(&c2s_path).unwrap();
            let s2c = std::fs::read(&s2c_path).unwrap();
            Conn {
                kind: c2s[1],
                c2s,
                s2c,
            }
        })
        .collect()
}

fn json_of(c2s: &[u8]) -> Request {
    let nl = c2s.iter().position(|b| *b == b'\n').unwrap();
    Request::from_json(&c2s[2..nl]).unwrap()
}

fn paths(reply: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(reply).unwrap();
    match &v["Paths"] {
        serde_json::Value::Null => vec![],
        p => p
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect(),
    }
}

/// A store equivalent to what the captured influxd held during `scenario`.
fn equivalent_store(conns: &[Conn]) -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    let full = connections(&snapshotd_testutil::vector(
        "influx/captures/A1_backup_portable_full",
    ));
    // Layout (db/rp/id in metastore order) from A1's full listing; bodies from this scenario.
    let layout = paths(&full[1].s2c);
    let bodies: Vec<(u64, Vec<u8>)> = conns
        .iter()
        .filter(|c| c.kind == 0 || c.kind == 5)
        .map(|c| (json_of(&c.c2s).shard_id, c.s2c.clone()))
        .collect();
    for p in &layout {
        let parts: Vec<&str> = p.split('/').collect();
        let id: u64 = parts[2].parse().unwrap();
        let body = bodies
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        store.add_shard(parts[0], parts[1], id, Body::Bytes(body));
    }
    for c in conns {
        match c.kind {
            1 => store.set_meta(c.s2c[16..16 + be(&c.s2c, 8) as usize].to_vec()),
            6 => {
                let pairs = id_pairs(&c.s2c);
                if pairs.is_empty() {
                    store.script_import(Err("restored".into()));
                } else {
                    store.script_import(Ok(ShardIdMap(pairs.clone())));
                    for (_, new) in pairs {
                        if !layout.iter().any(|p| p.ends_with(&format!("/{new}"))) {
                            store.add_shard("restored", "autogen", new, Body::Bytes(vec![]));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    store
}

async fn replay(scenario: &str) {
    let dir = snapshotd_testutil::vector(&format!("influx/captures/{scenario}"));
    let conns = connections(&dir);
    assert!(!conns.is_empty());
    let srv = start(equivalent_store(&conns), test_config()).await;
    for (i, c) in conns.iter().enumerate() {
        let ctx = format!("{scenario} connection {}", i + 1);
        match c.kind {
            1 => {
                let got = exchange(srv.addr, &c.c2s).await;
                assert_eq!(be(&got, 0), be(&c.s2c, 0), "{ctx}: magic");
                let n = be(&got, 8) as usize;
                assert_eq!(&got[16..16 + n], &c.s2c[16..16 + n], "{ctx}: meta blob");
                assert_eq!(&got[16 + n..], &c.s2c[16 + n..], "{ctx}: node part");
            }
            3 | 4 => {
                let got = exchange(srv.addr, &c.c2s).await;
                let want = paths(&c.s2c);
                let got_paths = if c.s2c.is_empty() {
                    vec![]
                } else {
                    paths(&got)
                };
                // Paths restricted to the requested database, in metastore order.
                assert_eq!(got_paths, want, "{ctx}: info paths");
            }
            0 | 5 => {
                let got = exchange(srv.addr, &c.c2s).await;
                assert_eq!(got.len(), c.s2c.len(), "{ctx}: tar length");
                assert!(got == c.s2c, "{ctx}: tar bytes differ");
            }
            6 => {
                let got = exchange(srv.addr, &c.c2s).await;
                assert_eq!(id_pairs(&got), id_pairs(&c.s2c), "{ctx}: id map as set");
            }
            7 => {
                let got = upload(srv.addr, &c.c2s).await;
                assert!(got.is_empty(), "{ctx}: type 7 has no reply");
                let id = be(&c.c2s, 2);
                let tar = c.c2s[10..].to_vec();
                assert!(
                    srv.store.calls().contains(&Call::Restore(id, tar)),
                    "{ctx}: store did not receive the uploaded tar for shard {id}"
                );
            }
            k => panic!("{ctx}: unexpected type {k} in captures"),
        }
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn a1_backup_portable_full() {
    replay("A1_backup_portable_full").await;
}

#[tokio::test]
async fn a2_backup_portable_db2() {
    replay("A2_backup_portable_db2").await;
}

#[tokio::test]
async fn a3_backup_portable_db1_export() {
    replay("A3_backup_portable_db1_export").await;
}

#[tokio::test]
async fn a4_backup_legacy_full() {
    replay("A4_backup_legacy_full").await;
}

#[tokio::test]
async fn a5_backup_legacy_db1() {
    replay("A5_backup_legacy_db1").await;
}

#[tokio::test]
async fn a6_backup_legacy_db1_since() {
    replay("A6_backup_legacy_db1_since").await;
}

#[tokio::test]
async fn b1_restore_portable_full() {
    replay("B1_restore_portable_full").await;
}

#[tokio::test]
async fn b2_restore_portable_db2_rp2_renamed() {
    replay("B2_restore_portable_db2_rp2_renamed").await;
}

#[tokio::test]
async fn b3_restore_portable_db1_export_newdb() {
    replay("B3_restore_portable_db1_export_newdb").await;
}

#[tokio::test]
async fn b4_restore_portable_conflict() {
    replay("B4_restore_portable_conflict").await;
}
