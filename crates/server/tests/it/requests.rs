//! Every request type end to end over a real loopback socket.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use snapshotd_store::{ImportRequest, ShardIdMap, TimeRange};
use snapshotd_wire::{GoTime, Request, RequestType, UploadHeader};

use crate::common::{be, exchange, frame, id_pairs, meta_update, start, test_config, upload};
use crate::memstore::{Body, Call, MemStore};

fn store() -> Arc<MemStore> {
    let s = Arc::new(MemStore::new());
    s.set_meta(b"\x08\x00\x10\x0d\x18\x2a".to_vec());
    s.add_shard("db1", "autogen", 1, Body::Bytes(vec![1u8; 3000]));
    s.add_shard("db1", "autogen", 2, Body::Bytes(vec![2u8; 10]));
    s.add_shard("db2", "rp2", 5, Body::Bytes(vec![5u8; 2048]));
    s
}

fn req() -> Request {
    Request::new(RequestType::ShardBackup)
}

#[tokio::test]
async fn metastore_frame_has_influx_layout() {
    let srv = start(store(), test_config()).await;
    let reply = exchange(srv.addr, &frame(RequestType::MetastoreBackup, req())).await;
    let blob = b"\x08\x00\x10\x0d\x18\x2a";
    assert_eq!(be(&reply, 0), 0x5959_0101);
    assert_eq!(be(&reply, 8), blob.len() as u64);
    assert_eq!(&reply[16..16 + blob.len()], blob);
    assert_eq!(be(&reply, 16 + blob.len()), 5);
    assert_eq!(&reply[24 + blob.len()..], b"null\n");
    srv.shutdown().await;
}

#[tokio::test]
async fn info_requests_list_paths_in_order_or_close_empty() {
    let srv = start(store(), test_config()).await;
    let all = exchange(srv.addr, &frame(RequestType::DatabaseInfo, req())).await;
    assert_eq!(
        all,
        b"{\"Paths\":[\"db1/autogen/1\",\"db1/autogen/2\",\"db2/rp2/5\"]}\n"
    );
    let mut r = req();
    r.backup_database = "db2".into();
    let one = exchange(srv.addr, &frame(RequestType::DatabaseInfo, r.clone())).await;
    assert_eq!(one, b"{\"Paths\":[\"db2/rp2/5\"]}\n");
    r.backup_retention_policy = "rp2".into();
    let rp = exchange(
        srv.addr,
        &frame(RequestType::RetentionPolicyInfo, r.clone()),
    )
    .await;
    assert_eq!(rp, b"{\"Paths\":[\"db2/rp2/5\"]}\n");
    r.backup_retention_policy = "nope".into();
    let missing_rp = exchange(
        srv.addr,
        &frame(RequestType::RetentionPolicyInfo, r.clone()),
    )
    .await;
    assert!(missing_rp.is_empty(), "unknown RP must close with 0 bytes");
    r.backup_database = "nodb".into();
    let missing_db = exchange(srv.addr, &frame(RequestType::DatabaseInfo, r)).await;
    assert!(missing_db.is_empty(), "unknown db must close with 0 bytes");
    srv.shutdown().await;

    let empty = Arc::new(MemStore::new());
    empty.add_empty("db1", "autogen");
    let srv = start(empty, test_config()).await;
    let none = exchange(srv.addr, &frame(RequestType::DatabaseInfo, req())).await;
    assert_eq!(none, b"{\"Paths\":null}\n");
    srv.shutdown().await;
}

#[tokio::test]
async fn shard_backup_streams_exact_bytes_and_passes_since() {
    let srv = start(store(), test_config()).await;
    let mut r = req();
    r.backup_database = "db1".into();
    r.backup_retention_policy = "autogen".into();
    r.shard_id = 1;
    let full = exchange(srv.addr, &frame(RequestType::ShardBackup, r.clone())).await;
    assert_eq!(full, vec![1u8; 3000]);
    r.since = GoTime::from_unix(1_700_000_000, 5).unwrap();
    let inc = exchange(srv.addr, &frame(RequestType::ShardBackup, r.clone())).await;
    assert_eq!(inc.len(), 3000);
    r.shard_id = 99;
    let missing = exchange(srv.addr, &frame(RequestType::ShardBackup, r)).await;
    assert!(missing.is_empty(), "missing shard must close with 0 bytes");
    let calls = srv.store.calls();
    assert!(calls.contains(&Call::Backup(1, None)), "{calls:?}");
    let since = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
    assert!(calls.contains(&Call::Backup(1, Some(since))), "{calls:?}");
    srv.shutdown().await;
}

#[tokio::test]
async fn shard_export_maps_zero_times_to_unbounded() {
    let srv = start(store(), test_config()).await;
    let mut r = req();
    r.shard_id = 5;
    r.export_start = GoTime::from_unix_nanos(1_000);
    let body = exchange(srv.addr, &frame(RequestType::ShardExport, r.clone())).await;
    assert_eq!(body, vec![5u8; 2048]);
    r.export_end = GoTime::from_unix_nanos(2_000);
    exchange(srv.addr, &frame(RequestType::ShardExport, r)).await;
    let calls = srv.store.calls();
    let open_end = TimeRange {
        start_ns: Some(1_000),
        end_ns: None,
    };
    let closed = TimeRange {
        start_ns: Some(1_000),
        end_ns: Some(2_000),
    };
    assert!(calls.contains(&Call::Export(5, open_end)), "{calls:?}");
    assert!(calls.contains(&Call::Export(5, closed)), "{calls:?}");
    srv.shutdown().await;
}

#[tokio::test]
async fn meta_update_replies_with_map_or_empty_map() {
    let s = store();
    s.script_import(Ok(ShardIdMap(vec![(5, 7), (6, 8)])));
    let srv = start(s, test_config()).await;
    let mut r = Request::new(RequestType::MetaStoreUpdate);
    r.backup_database = "db2".into();
    r.restore_database = "db2copy".into();
    r.backup_retention_policy = "rp2".into();
    r.restore_retention_policy = "rp2copy".into();
    let blob = vec![0x0au8; 5000];
    let reply = exchange(srv.addr, &meta_update(r, &blob)).await;
    assert_eq!(id_pairs(&reply), vec![(5, 7), (6, 8)]);
    let want = ImportRequest {
        backup_database: Some("db2".into()),
        restore_database: Some("db2copy".into()),
        backup_retention_policy: Some("rp2".into()),
        restore_retention_policy: Some("rp2copy".into()),
        include_users: false,
    };
    assert!(
        srv.store
            .calls()
            .contains(&Call::Import(blob.clone(), want))
    );

    srv.store.script_import(Err("db2".into()));
    let refused = exchange(
        srv.addr,
        &meta_update(Request::new(RequestType::MetaStoreUpdate), &blob),
    )
    .await;
    assert_eq!(refused.len(), 16, "refused import is the 16-byte empty map");
    assert_eq!(id_pairs(&refused), vec![]);
    srv.shutdown().await;
}

#[tokio::test]
async fn shard_upload_hands_tar_to_store_and_replies_nothing() {
    let srv = start(store(), test_config()).await;
    let tar: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = UploadHeader::new(2).to_bytes().to_vec();
    bytes.extend_from_slice(&tar);
    let reply = upload(srv.addr, &bytes).await;
    assert!(reply.is_empty());
    let calls = srv.store.calls();
    assert!(
        calls.contains(&Call::Restore(2, tar)),
        "store did not get the exact tar"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn series_file_and_unknown_types_close_with_zero_bytes() {
    let srv = start(store(), test_config()).await;
    let two = exchange(srv.addr, &frame(RequestType::SeriesFileBackup, req())).await;
    assert!(two.is_empty());
    let mut nine = frame(RequestType::MetastoreBackup, req());
    nine[1] = 9;
    assert!(exchange(srv.addr, &nine).await.is_empty());
    // the server still serves afterwards
    let ok = exchange(srv.addr, &frame(RequestType::MetastoreBackup, req())).await;
    assert_eq!(be(&ok, 0), 0x5959_0101);
    srv.shutdown().await;
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn large_shard_streams_with_bounded_memory() {
    const SIZE: u64 = 512 * 1024 * 1024;
    let s = Arc::new(MemStore::new());
    s.add_shard("big", "autogen", 1, Body::Generated(SIZE));
    let srv = start(s, test_config()).await;
    let before = peak_rss_kib();
    let mut r = req();
    r.shard_id = 1;
    let mut sock = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    sock.write_all(&frame(RequestType::ShardBackup, r))
        .await
        .unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = sock.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|b| *b == 0x5a));
        total += n as u64;
    }
    assert_eq!(total, SIZE);
    if let (Some(b), Some(a)) = (before, peak_rss_kib()) {
        // A server that buffered the shard would grow by ≥ 512 MiB.
        assert!(
            a.saturating_sub(b) < 128 * 1024,
            "peak RSS grew from {b} KiB to {a} KiB"
        );
    }
    srv.shutdown().await;
}
