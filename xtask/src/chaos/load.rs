//! Hostile load against the server's loopback ports, each bounded in count and time:
//! slowloris (idle and trickling connections), connection churn, oversized and malformed
//! frames, and a `/write` flood.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The kinds of hostile load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// 1000 idle connections plus 200 that send one byte every 5 s.
    Slowloris,
    /// 10 000 connections opened and closed at once.
    Churn,
    /// 500 connections with oversized, malformed or truncated requests.
    Malformed,
    /// `/write` batches as fast as they are accepted (at most 2000 batches).
    WriteFlood,
}

/// Longest any load runs.
const MAX_TIME: Duration = Duration::from_secs(90);

/// A running load; [`Running::stop`] ends it and reports how many acts were done.
#[derive(Debug)]
pub struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    /// Connections opened or batches sent.
    pub done: Arc<AtomicU64>,
    /// `/write` points acknowledged (flood only).
    pub acked: Arc<AtomicU64>,
}

impl Running {
    /// Stops the load and waits for it (closing its connections).
    pub fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (
            self.done.load(Ordering::Relaxed),
            self.acked.load(Ordering::Relaxed),
        )
    }
}

/// Starts `load` against the snapshot port `bind` / HTTP port `http` (loopback only).
pub fn start(load: Load, bind: SocketAddr, http: SocketAddr, seed: u64) -> Running {
    assert!(bind.ip().is_loopback() && http.ip().is_loopback());
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let (s, d, a) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&acked));
    let thread = std::thread::spawn(move || {
        let t0 = Instant::now();
        let live = || !s.load(Ordering::Relaxed) && t0.elapsed() < MAX_TIME;
        match load {
            Load::Slowloris => slowloris(bind, &live, &d),
            Load::Churn => churn(bind, &live, &d),
            Load::Malformed => malformed(bind, &live, &d),
            Load::WriteFlood => flood(http, &live, &d, &a, seed),
        }
    });
    Running {
        stop,
        thread,
        done,
        acked,
    }
}

fn slowloris(bind: SocketAddr, live: &dyn Fn() -> bool, done: &AtomicU64) {
    let mut idle = Vec::new();
    for _ in 0..1000 {
        if let Ok(c) = TcpStream::connect(bind) {
            idle.push(c);
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mut trickle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(bind).ok())
        .collect();
    let request = b"\x03\x01{\"Type\":1,\"BackupDatabase\":\"";
    let mut at = 0;
    while live() {
        trickle.retain_mut(|c| c.write_all(&request[at % request.len()..][..1]).is_ok());
        at += 1;
        for _ in 0..50 {
            if !live() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn churn(bind: SocketAddr, live: &dyn Fn() -> bool, done: &AtomicU64) {
    for _ in 0..10_000 {
        if !live() {
            return;
        }
        if TcpStream::connect(bind).is_ok() {
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Requests no server may act on: bad mux bytes, unknown types, JSON over the 64 KiB limit,
/// huge or negative type-6 sizes, truncated frames.
fn hostile_frames() -> Vec<Vec<u8>> {
    let mut big = b"\x03\x01{\"BackupDatabase\":\"".to_vec();
    big.resize(200 * 1024, b'a');
    vec![
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"\x03\x02{}\n".to_vec(),
        b"\x03\xff".to_vec(),
        b"\x03\x01{not json}\n".to_vec(),
        big,
        b"\x03\x06{\"UploadSize\":9223372036854775807}\n".to_vec(),
        b"\x03\x06{\"UploadSize\":-1}\n".to_vec(),
        b"\x03\x07\x00\x00\x00".to_vec(),
        b"\x03\x00{\"ShardID\":18446744073709551615,\"BackupDatabase\":\"x\"}\n".to_vec(),
    ]
}

fn malformed(bind: SocketAddr, live: &dyn Fn() -> bool, done: &AtomicU64) {
    let frames = hostile_frames();
    for i in 0..500 {
        if !live() {
            return;
        }
        if let Ok(mut c) = TcpStream::connect(bind) {
            let _ = c.write_all(&frames[i % frames.len()]);
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn flood(
    http: SocketAddr,
    live: &dyn Fn() -> bool,
    done: &AtomicU64,
    acked: &AtomicU64,
    seed: u64,
) {
    for batch in 0..2000u64 {
        if !live() {
            return;
        }
        let body = super::workload::batch(1_000_000 + seed % 1000 * 10_000 + batch, 100);
        done.fetch_add(1, Ordering::Relaxed);
        let path = "/write?db=flood&precision=s";
        if let Ok((204, _)) = super::env::http(http, "POST", path, &body) {
            acked.fetch_add(100, Ordering::Relaxed);
        }
    }
}
