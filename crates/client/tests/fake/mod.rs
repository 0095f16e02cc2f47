//! A fake snapshotter: serves canned replies (from the influx captures) and records requests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use snapshotd_wire::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One connection as the fake saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request type byte.
    pub kind: u8,
    /// Decoded JSON (types 0–6).
    pub request: Option<Request>,
    /// Every byte the client sent.
    pub raw: Vec<u8>,
    /// Type 6 payload.
    pub payload: Vec<u8>,
    /// Type 7 target shard.
    pub upload_id: Option<u64>,
    /// Type 7 tar stream.
    pub tar: Vec<u8>,
}

/// What to send back.
pub enum Reply {
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// Close without a byte.
    Close,
}

/// Decides the reply for the `n`-th (0-based) request with the same type and shard.
pub type Responder = Arc<dyn Fn(&Received, usize) -> Reply + Send + Sync>;

/// A running fake server.
pub struct Fake {
    /// `127.0.0.1:port`.
    pub addr: String,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Fake {
    /// Starts serving with `responder`.
    pub async fn start(responder: Responder) -> Fake {
        Self::start_with(responder, None).await
    }

    /// Like [`Fake::start`], but a connection that sends no request within `idle` is closed
    /// (as by a server that restarted since it was opened).
    pub async fn start_dropping_idle(responder: Responder, idle: std::time::Duration) -> Fake {
        Self::start_with(responder, Some(idle)).await
    }

    async fn start_with(responder: Responder, idle: Option<std::time::Duration>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let counts = Arc::new(Mutex::new(HashMap::<(u8, u64), usize>::new()));
        let log2 = Arc::clone(&log);
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let log = Arc::clone(&log2);
                let counts = Arc::clone(&counts);
                let responder = Arc::clone(&responder);
                tokio::spawn(async move {
                    let _ = serve(sock, log, counts, responder, idle).await;
                });
            }
        });
        Fake { addr, log }
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

async fn serve(
    mut sock: TcpStream,
    log: Arc<Mutex<Vec<Received>>>,
    counts: Arc<Mutex<HashMap<(u8, u64), usize>>>,
    responder: Responder,
    idle: Option<std::time::Duration>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    match idle {
        None => sock.read_exact(&mut head).await.map(|_| ())?,
        Some(d) => match tokio::time::timeout(d, sock.read_exact(&mut head)).await {
            Ok(r) => r.map(|_| ())?,
            Err(_) => return Ok(()),
        },
    }
    assert_eq!(head[0], 0x03, "mux byte");
    let mut rec = Received {
        kind: head[1],
        request: None,
        raw: head.to_vec(),
        payload: Vec::new(),
        upload_id: None,
        tar: Vec::new(),
    };
    if rec.kind == 7 || rec.kind == 0x87 {
        let mut id = [0u8; 8];
        sock.read_exact(&mut id).await?;
        rec.raw.extend_from_slice(&id);
        rec.upload_id = Some(u64::from_be_bytes(id));
        sock.read_to_end(&mut rec.tar).await?;
        rec.raw.extend_from_slice(&rec.tar);
    } else {
        let mut json = Vec::new();
        loop {
            let b = sock.read_u8().await?;
            rec.raw.push(b);
            if b == b'\n' {
                break;
            }
            json.push(b);
        }
        let req = Request::from_json(&json).unwrap();
        if rec.kind == 6 {
            let mut p = vec![0u8; usize::try_from(req.upload_size).unwrap()];
            sock.read_exact(&mut p).await?;
            rec.raw.extend_from_slice(&p);
            rec.payload = p;
        }
        rec.request = Some(req);
    }
    let key = (
        rec.kind,
        rec.request
            .as_ref()
            .map(|r| r.shard_id)
            .or(rec.upload_id)
            .unwrap_or(0),
    );
    let n = {
        let mut c = counts.lock().unwrap();
        let e = c.entry(key).or_insert(0);
        *e += 1;
        *e - 1
    };
    log.lock().unwrap().push(rec.clone());
    match responder(&rec, n) {
        Reply::Bytes(b) => {
            let _ = sock.write_all(&b).await;
        }
        Reply::Close => {}
    }
    let _ = sock.shutdown().await;
    Ok(())
}

/// A capture directory under the shared vectors.
pub fn capture_dir(name: &str) -> PathBuf {
    snapshotd_testutil::vector(&format!("influx/captures/{name}"))
}

/// Reads `NN-type<T>-<Name>.<suffix>` of a capture directory.
pub fn capture(dir: &Path, prefix: &str, suffix: &str) -> Vec<u8> {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        if n.starts_with(prefix) && n.ends_with(suffix) {
            return std::fs::read(p).unwrap();
        }
    }
    panic!("no {prefix}*{suffix} in {}", dir.display());
}

/// A1's canned server: meta frame, info, and each shard's tar keyed by shard ID.
pub struct A1 {
    /// Type 1 reply.
    pub meta_frame: Vec<u8>,
    /// Type 3 reply.
    pub info: Vec<u8>,
    /// Shard ID → type 0 reply.
    pub shards: HashMap<u64, Vec<u8>>,
    /// Exact client bytes influxd backup sent, by connection.
    pub c2s: Vec<Vec<u8>>,
}

impl A1 {
    /// Loads the A1 capture.
    pub fn load() -> A1 {
        let dir = capture_dir("A1_backup_portable_full");
        let mut shards = HashMap::new();
        let mut c2s = Vec::new();
        for i in 1..=8 {
            let prefix = format!("{i:02}-");
            let sent = capture(&dir, &prefix, ".c2s.bin");
            if sent[1] == 0 {
                let req = Request::from_json(&sent[2..sent.len() - 1]).unwrap();
                shards.insert(req.shard_id, capture(&dir, &prefix, ".s2c.bin"));
            }
            c2s.push(sent);
        }
        A1 {
            meta_frame: capture(&dir, "01-", ".s2c.bin"),
            info: capture(&dir, "02-", ".s2c.bin"),
            shards,
            c2s,
        }
    }

    /// A responder serving A1, with `tweak` overriding shard replies: (shard, attempt) →
    /// `Some(reply)`.
    pub fn responder(
        self: Arc<Self>,
        tweak: impl Fn(u64, usize, &[u8]) -> Option<Reply> + Send + Sync + 'static,
    ) -> Responder {
        Arc::new(move |rec: &Received, n: usize| match rec.kind {
            1 => Reply::Bytes(self.meta_frame.clone()),
            3 => Reply::Bytes(self.info.clone()),
            0 | 5 => {
                let id = rec.request.as_ref().unwrap().shard_id;
                let Some(tar) = self.shards.get(&id) else {
                    return Reply::Close;
                };
                tweak(id, n, tar).unwrap_or_else(|| Reply::Bytes(tar.clone()))
            }
            _ => Reply::Close,
        })
    }
}
