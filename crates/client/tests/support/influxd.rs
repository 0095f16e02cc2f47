//! A real influxd 1.6.7 for interop tests: config in a temp dir, free loopback ports,
//! HTTP through `curl`, stopped on drop.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use snapshotd_testutil::{ChildGuard, free_port};

/// The influxd binary from `SNAPSHOTD_INFLUXD_BIN` (set by `cargo xtask interop influx`).
pub fn influxd_bin() -> PathBuf {
    PathBuf::from(
        std::env::var("SNAPSHOTD_INFLUXD_BIN")
            .expect("SNAPSHOTD_INFLUXD_BIN not set: run via `cargo xtask interop influx`"),
    )
}

/// A running influxd.
pub struct Influxd {
    /// Its directory (config, meta, data, wal, log).
    pub dir: tempfile::TempDir,
    /// HTTP API address.
    pub http: String,
    /// Snapshotter (`bind-address`) address.
    pub bind: String,
    _child: ChildGuard,
}

impl Influxd {
    /// Starts a fresh, empty influxd and waits until both ports answer.
    pub fn start() -> Influxd {
        Self::start_with(&influxd_bin())
    }

    /// Starts a fresh, empty influxd from `bin`.
    pub fn start_with(bin: &Path) -> Influxd {
        let dir = snapshotd_testutil::temp_dir();
        let d = dir.path();
        for sub in ["meta", "data", "wal"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let (hp, bp) = (free_port(), free_port());
        let out = Command::new(bin).arg("config").output().unwrap();
        let conf = make_config(&String::from_utf8_lossy(&out.stdout), d, hp, bp);
        std::fs::write(d.join("influxd.conf"), conf).unwrap();
        let log = std::fs::File::create(d.join("influxd.log")).unwrap();
        let child = Command::new(bin)
            .args(["run", "-config"])
            .arg(d.join("influxd.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let s = Influxd {
            http: format!("127.0.0.1:{hp}"),
            bind: format!("127.0.0.1:{bp}"),
            dir,
            _child: ChildGuard(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ping = Command::new("curl")
                .args(["-sf", "-o", "/dev/null", &format!("http://{}/ping", s.http)])
                .status()
                .map(|st| st.success())
                .unwrap_or(false);
            if ping && std::net::TcpStream::connect(&s.bind).is_ok() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "influxd did not start: {}",
                std::fs::read_to_string(s.dir.path().join("influxd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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

/// Creates db1 (autogen, 7-day shards) and db2 (+ rp2 with 1-day shards) and writes a
/// metrics-like workload: `hosts` hosts every 10 minutes over `days` days from 2021-01-01.
pub fn load_metrics(s: &Influxd, hosts: u32, days: u32) {
    s.query("CREATE DATABASE db1");
    s.query("CREATE DATABASE db2");
    s.query("CREATE RETENTION POLICY rp2 ON db2 DURATION 520w REPLICATION 1 SHARD DURATION 1d");
    let t0: i64 = 1_609_459_200; // 2021-01-01T00:00:00Z
    let mut batch = String::new();
    let mut mem = String::new();
    let mut disk = String::new();
    for step in 0..(days * 144) {
        let t = (t0 + i64::from(step) * 600) * 1_000_000_000;
        for h in 0..hosts {
            let x = f64::from((step * 7 + h * 13) % 1000) / 10.0;
            batch.push_str(&format!(
                "cpu,host=h{h},region=eu usage_user={x},usage_system={},n={}i {t}\n",
                100.0 - x,
                step + h
            ));
            mem.push_str(&format!(
                "mem,host=h{h} used={}i,free={}i {t}\n",
                step * 3 + h,
                h
            ));
            if step % 6 == 0 {
                disk.push_str(&format!("disk,host=h{h},path=/ free={x} {t}\n"));
            }
        }
        if batch.len() > 400_000 {
            s.write("db1", None, &batch);
            s.write("db2", None, &mem);
            batch.clear();
            mem.clear();
        }
    }
    if !batch.is_empty() {
        s.write("db1", None, &batch);
        s.write("db2", None, &mem);
    }
    s.write("db2", Some("rp2"), &disk);
}

/// The databases/RPs `load_metrics` creates.
pub const LOADED: &[(&str, &str)] = &[("db1", "autogen"), ("db2", "autogen"), ("db2", "rp2")];
