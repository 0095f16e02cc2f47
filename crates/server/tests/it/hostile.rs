//! Hostile and broken clients: the server answers or closes as specified and stays up.

use std::sync::Arc;

use snapshotd_store::ShardIdMap;
use snapshotd_wire::{Request, RequestType, UploadHeader};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::{Running, be, exchange, frame, read_to_close, start, test_config};
use crate::memstore::{Body, Call, MemStore};

fn store() -> Arc<MemStore> {
    let s = Arc::new(MemStore::new());
    s.set_meta(b"\x08\x01".to_vec());
    s.add_shard("db1", "autogen", 1, Body::Bytes(vec![7u8; 100]));
    s.script_import(Ok(ShardIdMap(vec![(1, 2)])));
    s
}

async fn still_serves(srv: &Running) {
    let reply = exchange(
        srv.addr,
        &frame(
            RequestType::MetastoreBackup,
            Request::new(RequestType::MetastoreBackup),
        ),
    )
    .await;
    assert_eq!(be(&reply, 0), 0x5959_0101, "server no longer serves");
}

fn no_import(srv: &Running) {
    assert!(
        !srv.store
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Import(..))),
        "import must not be attempted"
    );
}

fn raw_type6(upload_size: &str) -> Vec<u8> {
    let mut b = vec![0x03, 0x06];
    b.extend_from_slice(
        format!(
            "{{\"Type\":6,\"BackupDatabase\":\"\",\"RestoreDatabase\":\"\",\"BackupRetentionPolicy\":\"\",\"RestoreRetentionPolicy\":\"\",\"ShardID\":0,\"Since\":\"0001-01-01T00:00:00Z\",\"ExportStart\":\"0001-01-01T00:00:00Z\",\"ExportEnd\":\"0001-01-01T00:00:00Z\",\"UploadSize\":{upload_size}}}\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(&[0u8; 64]);
    b
}

#[tokio::test]
async fn huge_and_negative_upload_sizes_are_refused_without_allocating() {
    let srv = start(store(), test_config()).await;
    for size in [
        "9223372036854775808",
        "9223372036854775807",
        "-1",
        "-2",
        "-9223372036854775808",
    ] {
        let reply = exchange(srv.addr, &raw_type6(size)).await;
        assert!(
            reply.is_empty(),
            "UploadSize {size}: expected a silent close, got {reply:?}"
        );
    }
    no_import(&srv);
    still_serves(&srv).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn bad_json_and_bad_bytes_close_with_zero_bytes() {
    let srv = start(store(), test_config()).await;
    let cases: Vec<Vec<u8>> = vec![
        b"\x03\x01{not json}\n".to_vec(),
        b"\x03\x01[1,2,3]\n".to_vec(),
        b"\x03\x01{\"Type\":\"one\"}\n".to_vec(),
        b"\x03\x00{\"ShardID\":-1}\n".to_vec(),
        b"\x03\x01{}X".to_vec(),
        b"\x04\x01{}\n".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0x03, 0xff, b'{', b'}', b'\n'],
        vec![0x03, 0x08, b'{', b'}', b'\n'],
        vec![0x03, 0x02, b'{', b'}', b'\n'],
    ];
    for c in cases {
        let reply = exchange(srv.addr, &c).await;
        assert!(reply.is_empty(), "{c:?} got a reply: {reply:?}");
    }
    still_serves(&srv).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn stalled_clients_are_closed_after_the_phase_timeout() {
    let srv = start(store(), test_config()).await;
    let stalls: Vec<Vec<u8>> = vec![
        vec![],                                        // nothing at all
        vec![0x03],                                    // mux byte only
        b"\x03\x01{\"Type\":1".to_vec(),               // half a request
        raw_type6("100"),                              // 64 of 100 payload bytes
        UploadHeader::new(1).to_bytes()[..5].to_vec(), // half a shard id
    ];
    let mut socks = Vec::new();
    for s in &stalls {
        let mut c = TcpStream::connect(srv.addr).await.unwrap();
        c.write_all(s).await.unwrap();
        socks.push(c); // never half-closed: the client just stalls
    }
    for (i, mut c) in socks.into_iter().enumerate() {
        let got = read_to_close(&mut c).await;
        assert!(got.is_empty(), "stall case {i} got bytes");
    }
    no_import(&srv);
    still_serves(&srv).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn stalled_tar_upload_is_abandoned_and_not_installed() {
    let srv = start(store(), test_config()).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(&UploadHeader::new(1).to_bytes()).await.unwrap();
    c.write_all(&[0u8; 700]).await.unwrap();
    let got = read_to_close(&mut c).await;
    assert!(got.is_empty());
    assert!(
        !srv.store
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Restore(..))),
        "a stalled upload must fail in the store, not complete"
    );
    still_serves(&srv).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn five_hundred_idle_connections_do_not_take_the_server_down() {
    let mut config = test_config();
    config.max_connections = 64;
    let srv = start(store(), config).await;
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    // Every one is closed by the server: beyond the limit at once, the others by the timeout.
    for mut c in idle {
        let got = read_to_close(&mut c).await;
        assert!(got.is_empty());
    }
    still_serves(&srv).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_finishes() {
    let mut config = test_config();
    config.timeouts.mux = std::time::Duration::from_secs(3600);
    let srv = start(store(), config).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(&[0x03]).await.unwrap();
    let addr = srv.addr;
    srv.shutdown().await;
    let got = read_to_close(&mut c).await;
    assert!(got.is_empty());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener must be closed"
    );
}

#[tokio::test]
async fn shutdown_lets_running_streams_finish() {
    const SIZE: u64 = 64 * 1024 * 1024;
    let s = Arc::new(MemStore::new());
    s.add_shard("db1", "autogen", 1, Body::Generated(SIZE));
    let srv = start(s, test_config()).await;
    let mut r = Request::new(RequestType::ShardBackup);
    r.shard_id = 1;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(&frame(RequestType::ShardBackup, r))
        .await
        .unwrap();
    let mut first = vec![0u8; 1024];
    use tokio::io::AsyncReadExt;
    c.read_exact(&mut first).await.unwrap();
    // Shutdown is requested while the stream runs; the stream still completes.
    let stopping = tokio::spawn(srv.shutdown());
    let rest = read_to_close(&mut c).await;
    assert_eq!(1024 + rest.len() as u64, SIZE);
    stopping.await.unwrap();
}

#[tokio::test]
async fn shutdown_aborts_streams_after_the_grace_period() {
    let s = Arc::new(MemStore::new());
    s.add_shard("db1", "autogen", 1, Body::Generated(256 * 1024 * 1024));
    let mut config = test_config();
    config.shutdown_grace = std::time::Duration::from_millis(200);
    config.timeouts.write_idle = std::time::Duration::from_secs(3600);
    let srv = start(s, config).await;
    let mut r = Request::new(RequestType::ShardBackup);
    r.shard_id = 1;
    // A client that requests a big shard and never reads: only the grace period ends it.
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(&frame(RequestType::ShardBackup, r))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    srv.shutdown().await; // returns: the stalled stream was aborted
    drop(c);
}
