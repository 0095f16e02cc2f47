//! Clients of the two servers: gzip `/write` batches over one keep-alive connection with
//! per-batch latency, InfluxQL queries, and `influxd backup -portable`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use snapshotd_testutil::influxd::influxd_bin;

/// One keep-alive HTTP/1.1 connection.
pub struct Conn(TcpStream);

impl Conn {
    pub fn post_gzip(&mut self, path: &str, body: &[u8]) {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.0.write_all(head.as_bytes()).unwrap();
        self.0.write_all(body).unwrap();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            assert_eq!(self.0.read(&mut byte).unwrap(), 1, "connection closed");
            buf.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        let status: u16 = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut rest = vec![0u8; len];
        self.0.read_exact(&mut rest).unwrap();
        assert_eq!(status, 204, "{text}{}", String::from_utf8_lossy(&rest));
    }
}

/// Per-batch latencies of one ingest run, sorted; `during` holds the writes that overlapped a
/// compaction or merge of the store (empty for influxd, which we cannot observe).
pub struct Run {
    pub secs: f64,
    pub all: Vec<Duration>,
    pub during: Vec<Duration>,
    pub outside: Vec<Duration>,
}

/// Posts every batch; `probe` reads the store's compaction counters (started, finished).
pub fn ingest(addr: &str, db: &str, bodies: &[Vec<u8>], probe: &dyn Fn() -> (u64, u64)) -> Run {
    let mut c = Conn(TcpStream::connect(addr).unwrap());
    let (mut all, mut during, mut outside) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    for b in bodies {
        let (s0, f0) = probe();
        let t = Instant::now();
        c.post_gzip(&format!("/write?db={db}"), b);
        let d = t.elapsed();
        let (s1, _) = probe();
        all.push(d);
        if s0 != f0 || s1 != s0 {
            &mut during
        } else {
            &mut outside
        }
        .push(d);
    }
    let secs = start.elapsed().as_secs_f64();
    for v in [&mut all, &mut during, &mut outside] {
        v.sort();
    }
    Run {
        secs,
        all,
        during,
        outside,
    }
}

/// An InfluxQL query whose error replies (any HTTP status) are returned, not fatal.
pub fn query(http: &str, q: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-s", "-XPOST", &format!("http://{http}/query")])
        .args(["--data-urlencode", &format!("q={q}")])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&out.stdout).into()))
}

/// Times `influxd backup -portable -host HOST OUT`.
pub fn influxd_backup(host: &str, out: &Path) -> f64 {
    let t = Instant::now();
    let o = Command::new(influxd_bin())
        .args(["backup", "-portable", "-host", host])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    t.elapsed().as_secs_f64()
}
