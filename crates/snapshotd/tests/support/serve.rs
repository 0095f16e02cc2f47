//! `snapshotd serve` as a child process: started on free loopback ports (new ones when another
//! process took one first), waited for until it listens, killed on drop; optionally filled
//! with a few MB of data over its HTTP API.

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
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

/// Attempts at starting a server before a port race is reported as a failure.
const ATTEMPTS: u32 = 5;

/// Starts `snapshotd serve ARGS --data-dir DATA` on the ports `pick` chooses (it returns the
/// arguments and the addresses to wait for) and waits up to 30 s until the server has bound
/// every address and each accepts connections. A port another process took between `pick`
/// and the server's bind ("address already in use") is retried with new ports, up to
/// [`ATTEMPTS`] times; any other exit, or no listener in time, panics with the server's
/// stderr. The guard kills the server on drop.
pub fn start(
    data: &Path,
    pick: impl Fn() -> (Vec<String>, Vec<String>),
) -> (ChildGuard, Vec<String>) {
    let mut attempt = 1;
    loop {
        let (args, listen) = pick();
        match try_start(&args, data, &listen) {
            Ok(guard) => return (guard, listen),
            Err(log) if attempt < ATTEMPTS && in_use(&log) => {
                eprintln!("serve: port taken before it bound ({attempt}), retrying: {log}");
                attempt += 1;
            }
            Err(log) => panic!("snapshotd serve {args:?} did not start: {log}"),
        }
    }
}

/// Whether the server's stderr says a port was taken.
fn in_use(log: &str) -> bool {
    log.to_ascii_lowercase().contains("address already in use")
}

/// One start: `Ok` once the server logged that it bound its ports ("store opened" follows
/// both binds; a connect alone could reach another process on a stolen port) and each
/// address accepts connections; `Err` with its stderr if it exited or 30 s passed.
fn try_start(args: &[String], data: &Path, listen: &[String]) -> Result<ChildGuard, String> {
    // An unlinked file: read with pread (the offset stays the server's), gone with the fds.
    let log = tempfile::tempfile().unwrap();
    let child = bin()
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.try_clone().unwrap())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(child);
    let text = || {
        let mut buf = vec![0u8; log.metadata().map_or(0, |m| m.len() as usize)];
        let n = log.read_at(&mut buf, 0).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let exited = !matches!(guard.0.try_wait(), Ok(None));
        if exited {
            return Err(text());
        }
        if text().contains("store opened")
            && listen
                .iter()
                .all(|a| std::net::TcpStream::connect(a).is_ok())
        {
            return Ok(guard);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not listening on {listen:?} after 30 s; stderr: {}",
                text()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh loopback address (free a moment ago).
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", snapshotd_testutil::free_port())
}

/// Starts `snapshotd serve` on free ports with a fresh data directory.
pub fn serve(data: &Path) -> Server {
    let (guard, listen) = start(data, || {
        let (addr, http) = (free_addr(), free_addr());
        let args = vec![
            "--bind".into(),
            addr.clone(),
            "--http-bind".into(),
            http.clone(),
        ];
        (args, vec![addr, http])
    });
    let [addr, http] = <[String; 2]>::try_from(listen).unwrap();
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
    let (guard, mut listen) = start(data, || {
        let addr = free_addr();
        (
            vec!["--no-http".into(), "--bind".into(), addr.clone()],
            vec![addr],
        )
    });
    (guard, listen.remove(0))
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
