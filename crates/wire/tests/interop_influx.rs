//! The wire codecs against a real influxd 1.6.7 (`#[ignore]`: run with
//! `cargo test -p snapshotd-wire --test interop_influx -- --ignored`, needs `influxd` on PATH
//! or `SNAPSHOTD_INFLUXD_BIN`).
//!
//! Proves the claims of docs/protocol.md §5 against the peer itself: influxd answers a request
//! carrying `SnapshotdErrorReplies` with exactly the bytes it sends without it, and closes an
//! acknowledged upload (`0x87`) with 0 bytes, which is the client's signal to fall back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use futures::{SinkExt, StreamExt};
use snapshotd_testutil::influxd::Influxd;
use snapshotd_wire::portable::{MetaSummary, PortableData};
use snapshotd_wire::{
    InfoCodec, Limits, MetaBackupCodec, Request, RequestFrame, RequestType, ShardIdMapCodec,
    StreamStart, StreamStartCodec, UploadAckCodec, UploadHeader, into_raw_stream,
};
use tokio::io::AsyncReadExt;
use tokio_util::codec::Framed;

/// A minimal HTTP/1.0 request; `None` when nothing listens yet.
fn http_call(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    let head = format!(
        "{method} {target} HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.get(9..12)?.parse().ok()?;
    Some((status, out))
}

fn setup_data(http: SocketAddr) {
    let (st, out) = http_call(http, "POST", "/query", b"q=CREATE+DATABASE+db1").unwrap();
    assert_eq!(st, 200, "{out}");
    let lines = b"cpu,host=a value=1 1609459200000000000\ncpu,host=a value=2 1610064000000000000\n";
    let (st, out) = http_call(http, "POST", "/write?db=db1", lines).unwrap();
    assert_eq!(st, 204, "{out}");
}

/// Sends `frame` and returns every byte influxd answers until it closes.
async fn raw_reply(addr: SocketAddr, frame: RequestFrame) -> Vec<u8> {
    let sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut f = Framed::new(sock, StreamStartCodec::default());
    f.send(frame).await.unwrap();
    let mut out = Vec::new();
    into_raw_stream(f).read_to_end(&mut out).await.unwrap();
    out
}

fn with_opt_in(kind: RequestType, mut r: Request, opt_in: bool) -> RequestFrame {
    r.error_replies = opt_in;
    RequestFrame::request(kind, r)
}

#[tokio::test]
#[ignore = "needs influxd; run by `cargo xtask interop influx`"]
async fn influxd_ignores_the_error_reply_opt_in() {
    let influx = Influxd::start();
    setup_data(influx.http_addr());

    for kind in [RequestType::MetastoreBackup, RequestType::DatabaseInfo] {
        let mut r = Request::new(kind);
        r.backup_database = "db1".into();
        let plain = raw_reply(influx.snap_addr(), with_opt_in(kind, r.clone(), false)).await;
        let opted = raw_reply(influx.snap_addr(), with_opt_in(kind, r, true)).await;
        assert!(!plain.is_empty(), "{kind:?}: no reply");
        assert_eq!(
            plain, opted,
            "{kind:?}: influxd must answer both identically"
        );
    }

    // The typed codecs read influxd's replies.
    let sock = tokio::net::TcpStream::connect(influx.snap_addr())
        .await
        .unwrap();
    let mut f = Framed::new(sock, MetaBackupCodec::new(Limits::default()));
    f.send(RequestFrame::request(
        RequestType::MetastoreBackup,
        Request::default(),
    ))
    .await
    .unwrap();
    let meta = f.next().await.unwrap().unwrap();
    let summary = MetaSummary::decode_blob(&meta.meta, &Limits::default()).unwrap();
    assert!(summary.database("db1").is_some());
    let shards: Vec<u64> = summary.shards().map(|s| s.shard_id).collect();
    assert_eq!(shards.len(), 2, "two weeks of points, two shard groups");

    let sock = tokio::net::TcpStream::connect(influx.snap_addr())
        .await
        .unwrap();
    let mut f = Framed::new(sock, InfoCodec::default());
    let mut r = Request::new(RequestType::DatabaseInfo);
    r.backup_database = "db1".into();
    f.send(RequestFrame::request(RequestType::DatabaseInfo, r))
        .await
        .unwrap();
    let info = f.next().await.unwrap().unwrap();
    let ids: Vec<u64> = info.shard_paths().map(|p| p.unwrap().id).collect();
    assert_eq!(ids, shards);

    // A shard backup with the opt-in streams a tar exactly as without it.
    let mut r = Request::new(RequestType::ShardBackup);
    r.backup_database = "db1".into();
    r.backup_retention_policy = "autogen".into();
    r.shard_id = shards[0];
    let sock = tokio::net::TcpStream::connect(influx.snap_addr())
        .await
        .unwrap();
    let mut f = Framed::new(sock, StreamStartCodec::default());
    f.send(with_opt_in(RequestType::ShardBackup, r, true))
        .await
        .unwrap();
    assert_eq!(f.next().await.unwrap().unwrap(), StreamStart::Data);
    let mut tar = Vec::new();
    into_raw_stream(f).read_to_end(&mut tar).await.unwrap();
    assert!(
        tar.len() >= 1024 && tar.len() % 512 == 0,
        "tar of {} bytes",
        tar.len()
    );

    // A missing shard: influxd still closes silently; the codec reports a clean end.
    let mut r = Request::new(RequestType::ShardBackup);
    r.shard_id = 999;
    let sock = tokio::net::TcpStream::connect(influx.snap_addr())
        .await
        .unwrap();
    let mut f = Framed::new(sock, StreamStartCodec::default());
    f.send(with_opt_in(RequestType::ShardBackup, r, true))
        .await
        .unwrap();
    assert!(f.next().await.is_none(), "influx closes with 0 bytes");
}

#[tokio::test]
#[ignore = "needs influxd; run by `cargo xtask interop influx`"]
async fn influxd_imports_our_upload_and_refuses_the_acked_upload() {
    let influx = Influxd::start();

    // Type 6 built by our encoder from the vectors' portable .meta.
    let file = std::fs::read(snapshotd_testutil::vector(
        "influx/backups/A2_db2/20261122T022310Z.meta",
    ))
    .unwrap();
    let blob = PortableData::from_file_bytes(&file, &Limits::default())
        .unwrap()
        .data;
    let mut r = Request::new(RequestType::MetaStoreUpdate);
    r.backup_database = "db2".into();
    r.restore_database = "db2copy".into();
    let sock = tokio::net::TcpStream::connect(influx.snap_addr())
        .await
        .unwrap();
    let mut f = Framed::new(sock, ShardIdMapCodec::default());
    f.send(RequestFrame::meta_store_update(r.clone(), blob.clone()))
        .await
        .unwrap();
    let map = f.next().await.unwrap().unwrap();
    let mut olds: Vec<u64> = map.pairs.iter().map(|p| p.0).collect();
    olds.sort();
    assert_eq!(olds, [4, 5, 6], "db2's shards imported");

    // Same import again: the database exists, influx answers "nothing imported".
    let sock = tokio::net::TcpStream::connect(influx.snap_addr())
        .await
        .unwrap();
    let mut f = Framed::new(sock, ShardIdMapCodec::default());
    f.send(RequestFrame::meta_store_update(r, blob))
        .await
        .unwrap();
    assert!(f.next().await.unwrap().unwrap().is_empty());

    // The acknowledged upload (0x87) is unknown to influx: 0 bytes, the fallback signal.
    let new_id = map.pairs[0].1;
    let sock = tokio::net::TcpStream::connect(influx.snap_addr())
        .await
        .unwrap();
    let mut f = Framed::new(sock, UploadAckCodec::default());
    let header = UploadHeader {
        shard_id: new_id,
        acknowledged: true,
    };
    f.send(RequestFrame::ShardUpload(header)).await.unwrap();
    let mut parts = f.into_parts();
    // An empty tar (two zero blocks), then half-close and wait for the verdict.
    tokio::io::AsyncWriteExt::write_all(&mut parts.io, &[0u8; 1024])
        .await
        .ok();
    tokio::io::AsyncWriteExt::shutdown(&mut parts.io).await.ok();
    let mut f = Framed::from_parts(parts);
    match f.next().await {
        None | Some(Err(snapshotd_wire::WireError::Io(_))) => {}
        other => panic!("influx must not answer an acknowledged upload: {other:?}"),
    }
}
