//! The real workloads of a round: `/write` ingest, `snapshotd backup`, `verify` and
//! `restore`, each run as the user runs them and bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use std::net::SocketAddr;

use super::env::http;

/// Longest a client command may run before the round counts as hung.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(75);

/// How a client command ended.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (None: killed by a signal or by the time limit).
    pub code: Option<i32>,
    /// Killed after [`COMMAND_LIMIT`].
    pub hung: bool,
    /// Its standard error.
    pub stderr: String,
    /// Its standard output (`verify` reports there).
    pub stdout: String,
}

impl Run {
    /// Exit 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Everything it printed: standard error, then standard output.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stderr, self.stdout)
    }

    /// What it said last: the last line of standard error, or verify's first `FAIL:` line
    /// (else its last line) when standard error is empty.
    pub fn said(&self) -> String {
        use super::round::last_line;
        if !self.stderr.trim().is_empty() {
            return last_line(&self.stderr);
        }
        let fail = self.stdout.lines().find(|l| l.starts_with("FAIL:"));
        fail.map_or_else(|| last_line(&self.stdout), last_line)
    }

    /// Whether it printed a success line (`backup complete`, `restore of … complete:`,
    /// verify's `OK:`).
    pub fn printed_success(&self) -> bool {
        self.output().lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("OK: ")
                || l.starts_with("backup complete")
                || (l.starts_with("restore of ") && l.contains(" complete: "))
        })
    }
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// `n` points of `cpu` starting at second `first` (spread over weeks: several shards).
pub fn batch(first: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in first..first + n {
        let t = 1_609_459_200 + i * 61;
        out.extend_from_slice(format!("cpu,host=h{} v={i}i {t}\n", i % 10).as_bytes());
    }
    out
}

/// Creates `db` over the HTTP API at `api` (snapshotd serve or influxd) and writes
/// `batches` batches of 500 points; returns the points acknowledged.
pub fn ingest(api: SocketAddr, db: &str, batches: u64) -> Result<u64> {
    let q = format!("/query?q=CREATE%20DATABASE%20{db}");
    let (code, body) = http(api, "POST", &q, b"")?;
    if code != 200 {
        bail!(
            "CREATE DATABASE {db}: HTTP {code}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let mut acked = 0;
    for b in 0..batches {
        let path = format!("/write?db={db}&precision=s");
        let (code, body) = http(api, "POST", &path, &batch(b * 500, 500))?;
        if code != 204 {
            bail!(
                "/write batch {b}: HTTP {code}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        acked += 500;
    }
    Ok(acked)
}

/// A client command of the binary.
pub fn client(bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args);
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    c
}

/// Runs `cmd` to completion or [`COMMAND_LIMIT`]; `during` is called once with its pid
/// right after the start (to inject faults at seeded moments).
pub fn run(mut cmd: Command, during: impl FnOnce(u32)) -> Result<Run> {
    let mut child = cmd.spawn()?;
    let reader = drain(child.stderr.take());
    let out_reader = drain(child.stdout.take());
    during(child.id());
    let start = Instant::now();
    let (status, hung) = loop {
        if let Some(st) = child.try_wait()? {
            break (Some(st), false);
        }
        if start.elapsed() > COMMAND_LIMIT {
            let _ = child.kill();
            break (child.wait().ok(), true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap_or_default();
    let stdout = out_reader.join().unwrap_or_default();
    Ok(Run {
        stdout,
        code: if hung {
            None
        } else {
            status.and_then(|s| s.code())
        },
        hung,
        stderr,
    })
}

/// `snapshotd backup --db chaos` from `host` into `dest`.
pub fn backup(bin: &Path, host: &str, dest: &Path) -> Command {
    backup_db(bin, host, "chaos", dest)
}

/// `snapshotd backup --db <db>` from `host` into `dest`.
pub fn backup_db(bin: &Path, host: &str, db: &str, dest: &Path) -> Command {
    let dest = dest.display().to_string();
    client(
        bin,
        &[
            "backup",
            "--host",
            host,
            "--db",
            db,
            "--jobs",
            "2",
            "--timeout",
            "8s",
            &dest,
        ],
    )
}

/// `snapshotd verify src`.
pub fn verify(bin: &Path, src: &Path) -> Command {
    client(bin, &["verify", &src.display().to_string()])
}

/// `snapshotd restore --db chaos --newdb <newdb>` of `src` into `host` (with `--ack` for a
/// snapshotd server, which acknowledges every shard).
pub fn restore(bin: &Path, host: &str, src: &Path, newdb: &str, ack: bool) -> Command {
    restore_db(bin, host, src, ("chaos", newdb), ack)
}

/// `snapshotd restore --db <db> --newdb <newdb>` of `src` into `host`.
pub fn restore_db(
    bin: &Path,
    host: &str,
    src: &Path,
    (db, newdb): (&str, &str),
    ack: bool,
) -> Command {
    let src = src.display().to_string();
    let mut args = vec!["restore", "--host", host, "--db", db, "--newdb", newdb];
    args.extend(["--timeout", "8s"]);
    if ack {
        args.push("--ack");
    }
    args.push(&src);
    client(bin, &args)
}

/// A fresh destination directory for a round.
pub fn fresh_dir(base: &Path, name: &str) -> Result<PathBuf> {
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
