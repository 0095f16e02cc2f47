//! `snapshotd serve` as a child process: started on free loopback ports, waited for until it
//! listens, killed on drop; optionally filled with a few MB of data over its HTTP API.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use snapshotd_testutil::ChildGuard;

use super::backup_env::{Lcg, bin};

/// A running `snapshotd serve` with its snapshot and HTTP addresses.
pub struct Server {
    /// Kills the server on drop.
    pub guard: ChildGuard,
    /// Snapshot protocol address.
    pub addr: String,
    /// HTTP API address.
    pub http: String,
}

/// Starts `snapshotd serve ARGS --data-dir DATA` (output discarded) and waits up to 30 s
/// until every address in `listen` accepts connections. The guard kills it on drop.
fn start(args: &[&str], data: &Path, listen: &[&str]) -> ChildGuard {
    let child = bin()
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    for a in listen {
        while std::net::TcpStream::connect(a).is_err() {
            assert!(Instant::now() < deadline, "serve did not listen on {a}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    guard
}

/// Starts `snapshotd serve` on free ports with a fresh data directory.
pub fn serve(data: &Path) -> Server {
    let addr = format!("127.0.0.1:{}", snapshotd_testutil::free_port());
    let http = format!("127.0.0.1:{}", snapshotd_testutil::free_port());
    let guard = start(
        &["--bind", &addr, "--http-bind", &http],
        data,
        &[&addr, &http],
    );
    Server { guard, addr, http }
}

/// [`serve`], then [`load`]: a server holding database `db` with about 5 MB of shard tars.
pub fn serve_loaded(data: &Path) -> Server {
    let srv = serve(data);
    load(&srv);
    srv
}

/// Starts `snapshotd serve --no-http` on a free port with a fresh data directory; returns
/// the guard and the snapshot protocol address.
pub fn serve_no_http(data: &Path) -> (ChildGuard, String) {
    let addr = format!("127.0.0.1:{}", snapshotd_testutil::free_port());
    let guard = start(&["--no-http", "--bind", &addr], data, &[&addr]);
    (guard, addr)
}

/// One HTTP/1.1 POST; returns the status line and body.
pub fn post(http: &str, path: &str, body: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(http).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {http}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

/// Creates database `db` and writes about 2 MB of line protocol spread over 9 weekly shards
/// (about 5 MB of shard tars). Values come from a fixed LCG so runs are reproducible.
pub fn load(srv: &Server) {
    let r = post(&srv.http, "/query?q=CREATE%20DATABASE%20db", b"");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let mut rng = Lcg(1);
    let t0: u64 = 1_767_225_600;
    let mut lines = String::new();
    for i in 0..40_000u64 {
        lines.push_str(&format!(
            "cpu,host=h{} usage={}.{},idle={}i {}\n",
            i % 20,
            rng.next() % 100,
            rng.next() % 1_000_000,
            rng.next() % 1_000_000_000,
            t0 + i * 120
        ));
    }
    let r = post(&srv.http, "/write?db=db&precision=s", lines.as_bytes());
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
}
