//! A real influxd 1.6.7 for interop tests: config in a temp dir, free loopback ports,
//! HTTP through `curl`, stopped on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ChildGuard, free_port};

/// The influxd binary: `SNAPSHOTD_INFLUXD_BIN` (set by `cargo xtask interop influx`), else
/// `influxd` on PATH.
pub fn influxd_bin() -> PathBuf {
    std::env::var_os("SNAPSHOTD_INFLUXD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("influxd"))
}

/// A running influxd.
pub struct Influxd {
    /// Its directory (config, meta, data, wal, log).
    pub dir: tempfile::TempDir,
    /// HTTP API address.
    pub http: String,
    /// Snapshotter (`bind-address`) address.
    pub bind: String,
    bin: PathBuf,
    _child: ChildGuard,
}

impl Influxd {
    /// Starts a fresh, empty influxd and waits until both ports answer.
    pub fn start() -> Influxd {
        Self::start_with(&influxd_bin())
    }

    /// Starts a fresh, empty influxd from `bin`.
    pub fn start_with(bin: &Path) -> Influxd {
        Self::start_edited(bin, |c| c)
    }

    /// Starts a fresh, empty influxd from `bin` with its config passed through `edit`. A
    /// port taken by another process between choosing and binding it (the free-port race of
    /// parallel tests) is retried with new ports.
    pub fn start_edited(bin: &Path, edit: impl Fn(String) -> String) -> Influxd {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut s = Self::spawn_edited(bin, &edit);
            match s.wait_ready_or_exit() {
                Ok(()) => return s,
                Err(log) if attempt < 5 && log.contains("address already in use") => continue,
                Err(log) => panic!("influxd did not start: {log}"),
            }
        }
    }

    /// Writes a config with fresh ports into a new directory and starts influxd on it.
    fn spawn_edited(bin: &Path, edit: &impl Fn(String) -> String) -> Influxd {
        let dir = crate::temp_dir();
        let d = dir.path();
        for sub in ["meta", "data", "wal"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let (hp, bp) = (free_port(), free_port());
        let out = Command::new(bin).arg("config").output().unwrap();
        let conf = edit(make_config(
            &String::from_utf8_lossy(&out.stdout),
            d,
            hp,
            bp,
        ));
        std::fs::write(d.join("influxd.conf"), conf).unwrap();
        let child = spawn(bin, d);
        Influxd {
            http: format!("127.0.0.1:{hp}"),
            bind: format!("127.0.0.1:{bp}"),
            dir,
            bin: bin.to_path_buf(),
            _child: ChildGuard(child),
        }
    }

    /// Waits until both ports answer; `Err` with influxd's log when it exited first.
    fn wait_ready_or_exit(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.ready() {
                return Ok(());
            }
            let log = || std::fs::read_to_string(self.dir.path().join("influxd.log"));
            if matches!(self._child.0.try_wait(), Ok(Some(_))) || Instant::now() >= deadline {
                return Err(log().unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Both ports answer (HTTP `/ping` and a TCP connect to the snapshotter).
    fn ready(&self) -> bool {
        let ping = Command::new("curl")
            .args([
                "-sf",
                "-o",
                "/dev/null",
                &format!("http://{}/ping", self.http),
            ])
            .status()
            .map(|st| st.success())
            .unwrap_or(false);
        ping && std::net::TcpStream::connect(&self.bind).is_ok()
    }

    /// SIGKILLs influxd (as a crash would) and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self._child.0.kill();
        let _ = self._child.0.wait();
    }

    /// Kills influxd if it runs, starts it again on the same directory and ports, and waits
    /// until both ports answer.
    pub fn restart(&mut self) {
        self.kill();
        self._child = ChildGuard(spawn(&self.bin, self.dir.path()));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        if let Err(log) = self.wait_ready_or_exit() {
            panic!("influxd did not start: {log}");
        }
    }

    /// The HTTP API address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.parse().expect("http address")
    }

    /// The snapshotter (`bind-address`) address.
    pub fn snap_addr(&self) -> SocketAddr {
        self.bind.parse().expect("bind address")
    }

    /// Runs an InfluxQL statement; returns the JSON reply.
    pub fn query(&self, q: &str) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-sf", "-XPOST", &format!("http://{}/query", self.http)])
            .args(["--data-urlencode", &format!("q={q}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "query {q} failed");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Writes line protocol into `db` (and `rp` when given).
    pub fn write(&self, db: &str, rp: Option<&str>, lines: &str) {
        let file = self.dir.path().join("batch.lp");
        std::fs::write(&file, lines).unwrap();
        let mut url = format!("http://{}/write?db={db}", self.http);
        if let Some(rp) = rp {
            url.push_str(&format!("&rp={rp}"));
        }
        let out = Command::new("curl")
            .args(["-s", "-w", "%{http_code}", "-XPOST", &url, "--data-binary"])
            .arg(format!("@{}", file.display()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.ends_with("204"), "write to {db} failed: {text}");
    }

    /// Point counts and field sums per measurement of every database/RP in `dbs`.
    pub fn fingerprint(&self, dbs: &[(&str, &str)]) -> Vec<(String, serde_json::Value)> {
        dbs.iter()
            .map(|(db, rp)| {
                let v = self.query(&format!(
                    "SELECT count(*), sum(*) FROM \"{db}\".\"{rp}\"./.*/"
                ));
                assert!(
                    v["results"][0]["series"].is_array(),
                    "no data in {db}.{rp}: {v}"
                );
                (format!("{db}.{rp}"), v)
            })
            .collect()
    }
}

/// Starts `bin` on the config in `d`, appending to its log.
fn spawn(bin: &Path, d: &Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("influxd.log"))
        .unwrap();
    Command::new(bin)
        .args(["run", "-config"])
        .arg(d.join("influxd.conf"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn make_config(default: &str, d: &Path, http_port: u16, bind_port: u16) -> String {
    let mut section = String::new();
    let mut out = String::from("reporting-disabled = true\n");
    for line in default.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.to_string();
        }
        let replaced = match (section.as_str(), t.split('=').next().unwrap_or("").trim()) {
            ("", "bind-address") => format!("bind-address = \"127.0.0.1:{bind_port}\""),
            ("", "reporting-disabled") => continue,
            ("[meta]", "dir") => format!("  dir = \"{}\"", d.join("meta").display()),
            ("[data]", "dir") => format!("  dir = \"{}\"", d.join("data").display()),
            ("[data]", "wal-dir") => format!("  wal-dir = \"{}\"", d.join("wal").display()),
            ("[http]", "bind-address") => format!("  bind-address = \"127.0.0.1:{http_port}\""),
            ("[monitor]", "store-enabled") => "  store-enabled = false".to_string(),
            ("[shard-precreation]", "enabled") => "  enabled = false".to_string(),
            ("[[graphite]]" | "[[collectd]]" | "[[opentsdb]]" | "[[udp]]", "enabled") => {
                "  enabled = false".to_string()
            }
            ("[[graphite]]" | "[[collectd]]" | "[[opentsdb]]" | "[[udp]]", "bind-address") => {
                continue;
            }
            ("[continuous_queries]", "enabled") => "  enabled = false".to_string(),
            _ => line.to_string(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}
