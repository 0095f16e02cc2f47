//! The processes of a campaign: `snapshotd serve` and influxd on loopback ports, their
//! restarts and signals, and the small HTTP and snapshot-protocol probes the checks use.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A free loopback port (bound and released; good enough on a quiet host).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Opens a process's log at `path` for appending (created when missing), so restarts add
/// to what the earlier runs wrote.
pub fn append_log(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct Proc {
    /// The process.
    pub child: Child,
}

impl Proc {
    /// Resident memory in KiB (`VmRSS`), if the process still exists.
    pub fn rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `snapshotd serve` on loopback: snapshot port `bind`, HTTP API `http`.
#[derive(Debug)]
pub struct Server {
    /// The running process (None while killed).
    pub proc: Option<Proc>,
    /// Snapshot protocol address.
    pub bind: SocketAddr,
    /// HTTP API address.
    pub http: SocketAddr,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Starts a server over `data` and waits until it answers `/ping`.
    pub fn start(bin: &Path, data: &Path, log: &Path) -> Result<Server> {
        let mut s = Server {
            proc: None,
            bind: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            http: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            bin: bin.to_path_buf(),
            data: data.to_path_buf(),
            log: log.to_path_buf(),
        };
        s.restart()?;
        Ok(s)
    }

    /// (Re)starts the process on the same ports and data dir.
    pub fn restart(&mut self) -> Result<()> {
        self.proc = None;
        let log = append_log(&self.log)?;
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--bind", &self.bind.to_string()])
            .args(["--http-bind", &self.http.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start snapshotd serve")?;
        let mut proc = Proc { child };
        let mut exited = false;
        let api = self.http;
        let up = wait_until(Duration::from_secs(30), || {
            exited = proc.child.try_wait().ok().flatten().is_some();
            exited || http(api, "GET", "/ping", b"").is_ok_and(|(c, _)| c == 204)
        });
        self.proc = Some(proc);
        if exited {
            bail!(
                "snapshotd serve exited at start (log {})",
                self.log.display()
            );
        }
        up.with_context(|| {
            format!(
                "snapshotd serve did not answer /ping (log {})",
                self.log.display()
            )
        })
    }

    /// The process's resident memory in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.proc.as_ref().and_then(Proc::rss_kib)
    }

    /// Its data dir.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Stops it as an operator does (SIGTERM: the store compacts its logs into TSM files
    /// on the way out) and waits up to 60 s for it to exit.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut p) = self.proc.take() else {
            return Ok(());
        };
        let pid = p.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let mut done = false;
        let exited = wait_until(Duration::from_secs(60), || {
            done = p.child.try_wait().ok().flatten().is_some();
            done
        });
        exited.with_context(|| format!("snapshotd serve (pid {pid}) ignored SIGTERM for 60 s"))
    }
}

/// A real influxd 1.6.7 on loopback ports.
#[derive(Debug)]
pub struct Influxd {
    /// The running process.
    pub proc: Option<Proc>,
    /// Snapshotter address.
    pub bind: SocketAddr,
    /// HTTP address.
    pub http: SocketAddr,
    bin: PathBuf,
    dir: PathBuf,
}

impl Influxd {
    /// Writes a config under `dir` and starts influxd.
    pub fn start(bin: &Path, dir: &Path) -> Result<Influxd> {
        let mut i = Influxd {
            proc: None,
            bind: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            http: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
        };
        for sub in ["meta", "data", "wal"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let out = Command::new(bin).arg("config").output()?;
        let conf = influx_config(&String::from_utf8_lossy(&out.stdout), dir, i.http, i.bind);
        std::fs::write(dir.join("influxd.conf"), conf)?;
        i.restart()?;
        Ok(i)
    }

    /// (Re)starts influxd on the same ports and directories.
    pub fn restart(&mut self) -> Result<()> {
        self.proc = None;
        let log = append_log(&self.dir.join("influxd.log"))?;
        let child = Command::new(&self.bin)
            .args(["run", "-config"])
            .arg(self.dir.join("influxd.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start influxd")?;
        self.proc = Some(Proc { child });
        let (http_addr, bind) = (self.http, self.bind);
        wait_until(Duration::from_secs(30), || {
            http(http_addr, "GET", "/ping", b"").is_ok_and(|(c, _)| c == 204)
                && TcpStream::connect(bind).is_ok()
        })
        .context("influxd did not start")
    }

    /// `SELECT count(v) FROM cpu` in `db` (0 when the database or series is missing).
    pub fn count(&self, db: &str) -> Result<u64> {
        let q = format!("/query?db={db}&q=SELECT%20count(v)%20FROM%20cpu");
        let (code, body) = http(self.http, "GET", &q, b"")?;
        if code != 200 {
            bail!(
                "influxd /query answered {code}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        Ok(v["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0))
    }
}

fn influx_config(default: &str, d: &Path, http: SocketAddr, bind: SocketAddr) -> String {
    let mut section = String::new();
    let mut out = String::from("reporting-disabled = true\n");
    for line in default.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.to_string();
        }
        let key = t.split('=').next().unwrap_or("").trim();
        let replaced = match (section.as_str(), key) {
            ("", "bind-address") => format!("bind-address = \"{bind}\""),
            ("", "reporting-disabled") => continue,
            ("[meta]", "dir") => format!("  dir = \"{}\"", d.join("meta").display()),
            ("[data]", "dir") => format!("  dir = \"{}\"", d.join("data").display()),
            ("[data]", "wal-dir") => format!("  wal-dir = \"{}\"", d.join("wal").display()),
            ("[http]", "bind-address") => format!("  bind-address = \"{http}\""),
            ("[monitor]", "store-enabled") => "  store-enabled = false".to_string(),
            ("[[graphite]]" | "[[collectd]]" | "[[opentsdb]]" | "[[udp]]", "enabled") => {
                "  enabled = false".to_string()
            }
            ("[[graphite]]" | "[[collectd]]" | "[[opentsdb]]" | "[[udp]]", "bind-address") => {
                continue;
            }
            _ => line.to_string(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}

/// Polls `ready` every 100 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("not ready after {limit:?}")
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status line")?;
    let body_at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    let mut out = raw[body_at..].to_vec();
    if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        out = dechunk(&out);
    }
    Ok((code, out))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..p]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < p + 2 + size {
            break;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + size]);
        b = &b[(p + 4 + size).min(b.len())..];
    }
    out
}

/// Whether the snapshot port answers a metastore request with a meta frame within `limit`.
pub fn serves(addr: SocketAddr, limit: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, limit) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(limit));
    if s.write_all(b"\x03\x01{\"Type\":1}\n").is_err() {
        return false;
    }
    let mut head = [0u8; 8];
    s.read_exact(&mut head).is_ok() && u64::from_be_bytes(head) == 0x5959_0101
}
