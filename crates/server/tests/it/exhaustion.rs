//! Connection exhaustion: idle, trickling and busy connections never lock a real client out,
//! and a client refused for lack of slots is told so.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use snapshotd_client::backup::{BackupOptions, Hooks, RetryPolicy, backup};
use snapshotd_client::restore::restore;
use snapshotd_client::verify::verify;
use snapshotd_client::{Client, ClientConfig, ClientError, RestoreOptions, Storage};
use snapshotd_server::{ServerConfig, SnapshotServer};
use snapshotd_store::{AdminStore, BuiltinStore, DatabaseSpec, Precision};
use snapshotd_wire::{Request, RequestType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{frame, start};
use crate::memstore::{Body, MemStore};

const LINES: &[u8] = b"cpu,host=a v=1 1609459200\ncpu,host=b v=2 1609459201\n\
mem,host=a free=3i 1612137600\nmem,host=a free=4i 1614556800\n";

/// A built-in store with a few points in several shards, served with the default limits
/// (256 connections, 64 per peer, 30 s for the first byte).
async fn serve_builtin(
    root: &std::path::Path,
    with_data: bool,
) -> (
    Arc<BuiltinStore>,
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let store = Arc::new(BuiltinStore::open(root).unwrap());
    if with_data {
        let spec = DatabaseSpec {
            name: "db1".into(),
            retention_policy: None,
        };
        store.create_database(&spec).unwrap();
        store
            .write_lines("db1", None, Precision::Seconds, LINES)
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = SnapshotServer::new(store.clone(), ServerConfig::default());
    tokio::spawn(server.serve(listener, async move {
        let _ = rx.await;
    }));
    (store, addr, tx)
}

async fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
    }
    v
}

/// How many of `conns` the server has closed (EOF or reset), without waiting for the rest.
async fn closed_by_server(conns: &mut [TcpStream]) -> usize {
    let mut closed = 0;
    for c in conns.iter_mut() {
        let mut b = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(2), c.read(&mut b)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            closed += 1;
        }
    }
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_do_not_stop_a_real_backup_and_restore() {
    let dir = snapshotd_testutil::temp_dir();
    let (source, src_addr, _stop_src) = serve_builtin(&dir.path().join("src"), true).await;
    let (target, dst_addr, _stop_dst) = serve_builtin(&dir.path().join("dst"), false).await;
    let mut idle = idle_connections(src_addr, 1000).await;
    idle.extend(idle_connections(dst_addr, 1000).await);

    let dest = Storage::local(&dir.path().join("backup"), true).unwrap();
    let opts = BackupOptions {
        jobs: 2,
        ..Default::default()
    };
    let client = Client::new(ClientConfig::new(src_addr.to_string()));
    let summary = backup(&client, &dest, &opts, &Hooks::default())
        .await
        .expect("backup while 1000 idle connections are open");
    assert!(
        summary.files.len() >= 3,
        "meta + several shards: {summary:?}"
    );
    let report = verify(&dest, 2, 64 << 20).await.unwrap();
    assert!(report.ok(), "{report:?}");

    let client = Client::new(ClientConfig::new(dst_addr.to_string()));
    let ropts = RestoreOptions {
        jobs: 2,
        acknowledged: true,
        ..Default::default()
    };
    restore(&client, &dest, &ropts, &Hooks::default())
        .await
        .expect("restore while 1000 idle connections are open");
    // What the user sees: the restored server holds exactly the source's points.
    let want = source.read_points("db1", None).unwrap();
    assert_eq!(want.len(), 4);
    assert_eq!(target.read_points("db1", None).unwrap(), want);

    // The idle connections were evicted, not accumulated: one peer holds at most 64 slots.
    let closed = closed_by_server(&mut idle).await;
    assert!(
        closed >= 2000 - 2 * 64,
        "only {closed} of 2000 idle connections closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_slowloris_connections_do_not_starve_a_backup() {
    let dir = snapshotd_testutil::temp_dir();
    let (_store, addr, _stop) = serve_builtin(&dir.path().join("src"), true).await;
    // 600 connections that send the mux byte and then one request byte at a time, far apart
    // (a byte a minute in the wild; here one byte and silence, within the 30 s deadline).
    let mut slow = Vec::new();
    for _ in 0..600 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"\x03\x01{").await.unwrap();
        slow.push(c);
    }
    let dest = Storage::local(&dir.path().join("backup"), true).unwrap();
    let client = Client::new(ClientConfig::new(addr.to_string()));
    let summary = backup(&client, &dest, &BackupOptions::default(), &Hooks::default())
        .await
        .expect("backup while 600 slowloris connections trickle");
    assert!(summary.files.len() >= 3);
    assert!(verify(&dest, 2, 64 << 20).await.unwrap().ok());
}

/// A server whose every slot serves a stream the client does not read.
async fn saturated() -> (crate::common::Running, Vec<TcpStream>) {
    let s = Arc::new(MemStore::new());
    s.set_meta(b"\x08\x01".to_vec());
    s.add_shard("db1", "autogen", 1, Body::Generated(256 << 20));
    let config = ServerConfig {
        max_connections: 2,
        max_connections_per_peer: 2,
        ..ServerConfig::default()
    };
    let srv = start(s, config).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut r = Request::new(RequestType::ShardBackup);
        r.shard_id = 1;
        let mut c = TcpStream::connect(srv.addr).await.unwrap();
        c.write_all(&frame(RequestType::ShardBackup, r))
            .await
            .unwrap();
        let mut first = [0u8; 512];
        c.read_exact(&mut first).await.unwrap();
        held.push(c);
    }
    (srv, held)
}

#[tokio::test]
async fn a_full_server_says_busy_and_the_client_reports_the_connection_limit() {
    let (srv, held) = saturated().await;
    let mut cfg = ClientConfig::new(srv.addr.to_string());
    cfg.retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(50),
    };
    let err = Client::new(cfg.clone())
        .metastore_backup()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::ServerBusy { attempts: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("server at connection limit"), "{text}");
    assert!(text.contains("max-connections"), "{text}");

    // An influx client (no opt-in) still gets influx's silent close, never foreign bytes.
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    let req = Request::new(RequestType::MetastoreBackup);
    c.write_all(&frame(RequestType::MetastoreBackup, req))
        .await
        .unwrap();
    assert!(crate::common::read_to_close(&mut c).await.is_empty());

    // Once the streams end, the same request succeeds.
    drop(held);
    let blob = Client::new(cfg).metastore_backup().await.unwrap();
    assert_eq!(&blob[..], b"\x08\x01");
    srv.shutdown().await;
}
