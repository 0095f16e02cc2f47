//! snapshotd's opt-in extensions: in-band error replies and acknowledged shard uploads.

use std::sync::Arc;

use snapshotd_store::ShardIdMap;
use snapshotd_wire::{ERROR_MAGIC, Request, RequestType, UPLOAD_ACK_MAGIC, UploadHeader};

use crate::common::{be, exchange, frame, id_pairs, meta_update, start, test_config, upload};
use crate::memstore::{Body, MemStore};

fn store() -> Arc<MemStore> {
    let s = Arc::new(MemStore::new());
    s.add_shard("db1", "autogen", 1, Body::Bytes(vec![1u8; 1500]));
    s
}

fn opted_in(kind: RequestType) -> Request {
    let mut r = Request::new(kind);
    r.error_replies = true;
    r
}

/// Decodes an error reply into (code, message).
fn error_reply(b: &[u8]) -> (String, String) {
    assert!(b.len() >= 16, "no error reply: {b:?}");
    assert_eq!(be(b, 0), ERROR_MAGIC);
    let n = be(b, 8) as usize;
    assert_eq!(b.len(), 16 + n);
    let v: serde_json::Value = serde_json::from_slice(&b[16..]).unwrap();
    (
        v["Code"].as_str().unwrap().to_string(),
        v["Message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn opted_in_clients_get_error_replies_instead_of_silent_closes() {
    let s = store();
    s.script_import(Err("db1".into()));
    let srv = start(s, test_config()).await;

    let mut r = opted_in(RequestType::ShardBackup);
    r.shard_id = 42;
    let (code, msg) = error_reply(&exchange(srv.addr, &frame(RequestType::ShardBackup, r)).await);
    assert_eq!(code, "not_found");
    assert!(msg.contains("42"), "{msg}");

    let mut r = opted_in(RequestType::DatabaseInfo);
    r.backup_database = "nope".into();
    let (code, _) = error_reply(&exchange(srv.addr, &frame(RequestType::DatabaseInfo, r)).await);
    assert_eq!(code, "not_found");

    let (code, _) = error_reply(
        &exchange(
            srv.addr,
            &frame(
                RequestType::SeriesFileBackup,
                opted_in(RequestType::SeriesFileBackup),
            ),
        )
        .await,
    );
    assert_eq!(code, "unsupported");

    let reply = exchange(
        srv.addr,
        &meta_update(opted_in(RequestType::MetaStoreUpdate), b"blob"),
    )
    .await;
    let (code, msg) = error_reply(&reply);
    assert_eq!(code, "already_exists");
    assert!(msg.contains("already exists"), "{msg}");

    // Successful requests are answered exactly as for influx clients.
    srv.store.script_import(Ok(ShardIdMap(vec![(1, 3)])));
    let ok = exchange(
        srv.addr,
        &meta_update(opted_in(RequestType::MetaStoreUpdate), b"blob"),
    )
    .await;
    assert_eq!(id_pairs(&ok), vec![(1, 3)]);
    let mut r = opted_in(RequestType::ShardBackup);
    r.shard_id = 1;
    assert_eq!(
        exchange(srv.addr, &frame(RequestType::ShardBackup, r)).await,
        vec![1u8; 1500]
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn acknowledged_upload_gets_ack_or_error() {
    let srv = start(store(), test_config()).await;
    let mut h = UploadHeader::new(1);
    h.acknowledged = true;
    let mut bytes = h.to_bytes().to_vec();
    bytes.extend_from_slice(&[9u8; 3000]);
    let ack = upload(srv.addr, &bytes).await;
    assert_eq!(ack.len(), 16);
    assert_eq!(be(&ack, 0), UPLOAD_ACK_MAGIC);
    assert_eq!(be(&ack, 8), 1, "files restored");

    let mut h = UploadHeader::new(77);
    h.acknowledged = true;
    let mut bytes = h.to_bytes().to_vec();
    bytes.extend_from_slice(&[9u8; 3000]);
    let (code, _) = error_reply(&upload(srv.addr, &bytes).await);
    assert_eq!(code, "not_found");
    srv.shutdown().await;
}

#[tokio::test]
async fn opted_in_request_that_breaks_a_limit_is_told_why() {
    let mut config = test_config();
    config.limits.max_upload_size = 1000;
    let srv = start(store(), config).await;
    let reply = exchange(
        srv.addr,
        &meta_update(opted_in(RequestType::MetaStoreUpdate), &[0u8; 5000]),
    )
    .await;
    let (code, msg) = error_reply(&reply);
    assert_eq!(code, "bad_request");
    assert!(msg.contains("5000"), "{msg}");
    // The same request from an influx client (no opt-in) is a silent close.
    let silent = exchange(
        srv.addr,
        &meta_update(Request::new(RequestType::MetaStoreUpdate), &[0u8; 5000]),
    )
    .await;
    assert!(silent.is_empty());
    srv.shutdown().await;
}
