//! Hostile shard uploads against the built-in on-disk store: nothing lands outside its shard.

use std::path::Path;
use std::sync::Arc;

use snapshotd_server::SnapshotServer;
use snapshotd_store::{AdminStore, BuiltinStore, DatabaseSpec, Precision, Store};
use snapshotd_wire::UploadHeader;

use crate::common::{test_config, upload};

/// A raw USTAR entry whose name is written verbatim (no path sanitising).
fn raw_entry(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    let field = &mut h.as_ustar_mut().unwrap().name;
    field[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    tar.append(&h, data).unwrap();
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn traversal_entries_never_escape_the_data_dir() {
    let outer = snapshotd_testutil::temp_dir();
    let root = outer.path().join("a").join("b").join("store");
    let store = Arc::new(BuiltinStore::open(&root).unwrap());
    store
        .create_database(&DatabaseSpec {
            name: "db1".into(),
            retention_policy: None,
        })
        .unwrap();
    store
        .write_lines("db1", None, Precision::Seconds, b"cpu v=1 1609459200\n")
        .unwrap();
    let shard = store.list_shards(Some("db1"), None).unwrap()[0].shard_id;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = SnapshotServer::new(store.clone(), test_config());
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = rx.await;
    }));

    let before_outer = files_under(outer.path());
    let names = [
        format!("db1/autogen/{shard}/../../../../../escape1.tsm"),
        format!("db1/autogen/{shard}/../../../escape2.tsm"),
        format!("db1/autogen/{shard}0/escape3.tsm"),
        "/tmp/snapshotd-escape4.tsm".to_string(),
        format!("db1/autogen/{shard}/ok/../../../../../../escape5.tsm"),
    ];
    for name in &names {
        let mut tar = tar::Builder::new(Vec::new());
        raw_entry(&mut tar, name, b"not really tsm");
        let body = tar.into_inner().unwrap();
        let mut bytes = UploadHeader::new(shard).to_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let reply = upload(addr, &bytes).await;
        assert!(reply.is_empty(), "type 7 never replies to influx clients");
    }
    let after = files_under(outer.path());
    for f in &after {
        assert!(
            f.starts_with(&root.display().to_string()),
            "file written outside the data dir: {f}"
        );
        assert!(!f.contains("escape"), "traversal entry was installed: {f}");
    }
    // Nothing new appeared above the store directory, nor in /tmp.
    assert_eq!(
        before_outer
            .iter()
            .filter(|f| !f.starts_with(&root.display().to_string()))
            .count(),
        after
            .iter()
            .filter(|f| !f.starts_with(&root.display().to_string()))
            .count()
    );
    assert!(!Path::new("/tmp/snapshotd-escape4.tsm").exists());
    // The shard still backs up (the store kept serving).
    let mut out = Vec::new();
    store.backup_shard(shard, None, &mut out).unwrap();
    assert!(out.len() >= 1024);
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
