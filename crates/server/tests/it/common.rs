//! Starting a server on an ephemeral port and talking raw bytes to it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use snapshotd_server::{ServerConfig, SnapshotServer, Timeouts};
use snapshotd_wire::{Request, RequestFrame, RequestType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::memstore::MemStore;

/// A running server; dropping `stop` (or sending on it) shuts it down.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Arc<MemStore>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// Short timeouts so hostile tests finish quickly (never asserted on).
pub fn test_config() -> ServerConfig {
    ServerConfig {
        timeouts: Timeouts {
            mux: Duration::from_millis(500),
            request: Duration::from_millis(500),
            payload: Duration::from_millis(500),
            upload_idle: Duration::from_millis(500),
            write_idle: Duration::from_secs(5),
        },
        shutdown_grace: Duration::from_secs(5),
        ..ServerConfig::default()
    }
}

pub async fn start(store: Arc<MemStore>, config: ServerConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = SnapshotServer::new(store.clone(), config);
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        store,
        stop: Some(tx),
        task: Some(task),
    }
}

/// Sends `bytes`, then reads until the server closes (bounded by a generous safety timeout).
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_to_close(&mut s).await
}

/// Sends `bytes`, half-closes (as a tar uploader does), then reads until close.
pub async fn upload(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s.shutdown().await.unwrap();
    read_to_close(&mut s).await
}

pub async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    match tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out)).await {
        Ok(Ok(_)) => {}
        // A reset after the server closed on a request it refused still counts as closed.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(e)) => panic!("read failed: {e}"),
        Err(_) => panic!("server did not close the connection within 60 s"),
    }
    out
}

/// The exact bytes a Go client sends for `req` as type `kind`.
pub fn frame(kind: RequestType, req: Request) -> Vec<u8> {
    let mut b = BytesMut::new();
    RequestFrame::request(kind, req).encode(&mut b).unwrap();
    b.to_vec()
}

/// A type-6 frame with `payload`.
pub fn meta_update(req: Request, payload: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    RequestFrame::meta_store_update(req, bytes::Bytes::copy_from_slice(payload))
        .encode(&mut b)
        .unwrap();
    b.to_vec()
}

/// Big-endian u64 at `at`.
pub fn be(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// Decodes an id-map reply into sorted pairs.
pub fn id_pairs(reply: &[u8]) -> Vec<(u64, u64)> {
    assert!(reply.len() >= 16, "id map reply too short: {}", reply.len());
    assert_eq!(be(reply, 0), 0x5959_0101);
    let n = be(reply, 8) as usize;
    assert_eq!(reply.len(), 16 + 16 * n);
    let mut v: Vec<(u64, u64)> = (0..n)
        .map(|i| (be(reply, 16 + 16 * i), be(reply, 24 + 16 * i)))
        .collect();
    v.sort_unstable();
    v
}
