//! Real etcd 3.4.23 members on loopback, etcdctl and the snapshotd binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use snapshotd_testutil::{ChildGuard, free_port};

pub fn env_path(k: &str) -> PathBuf {
    if let Ok(v) = std::env::var(k) {
        return PathBuf::from(v);
    }
    // The S3 suite does not export the etcd binary: use the installed one.
    let installed = PathBuf::from("/usr/bin/etcd");
    if k == "SNAPSHOTD_ETCD_BIN" && installed.is_file() {
        return installed;
    }
    panic!("{k} not set (run via cargo xtask interop etcd)")
}

fn etcdctl_bin() -> PathBuf {
    let beside = env_path("SNAPSHOTD_ETCD_BIN").with_file_name("etcdctl");
    if beside.is_file() {
        beside
    } else {
        PathBuf::from("etcdctl")
    }
}

pub fn ctl(endpoint: &str, args: &[&str]) -> Output {
    Command::new(etcdctl_bin())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--dial-timeout=2s")
        .args(args)
        .output()
        .expect("run etcdctl")
}

pub fn ctl_json(endpoint: &str, args: &[&str]) -> Value {
    let o = ctl(endpoint, args);
    assert!(
        o.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("etcdctl json")
}

/// The snapshotd binary, with the S3 endpoint (when the suite has one) passed the way a
/// user would.
pub fn snapshotd_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snapshotd"));
    if let Ok(endpoint) = std::env::var("SNAPSHOTD_S3_ENDPOINT") {
        c.env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ALLOW_HTTP", "true");
    }
    c
}

pub fn snapshotd(args: &[&str]) -> Output {
    snapshotd_cmd().args(args).output().expect("run snapshotd")
}

/// `snapshotd etcd archive --once` of member dir `data` into `dest`, asserting its exit code
/// (0 = caught up, 3 = a gap was found).
pub fn archive_once(data: &Path, dest: &Path, code: i32) -> Output {
    let o = snapshotd(&["etcd", "archive", "--once", "--data-dir", s(data), s(dest)]);
    assert_eq!(
        o.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// One running etcd member.
pub struct Member {
    pub name: String,
    pub data: PathBuf,
    pub client: String,
    pub _guard: ChildGuard,
}

/// Starts `n` members forming one cluster (`extra` flags for every member).
pub fn start_cluster(root: &Path, n: usize, extra: &[&str]) -> Vec<Member> {
    let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
    let initial: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
        .collect();
    let members: Vec<Member> = ports
        .iter()
        .enumerate()
        .map(|(i, (c, p))| {
            let name = format!("m{i}");
            let data = root.join(&name);
            let client = format!("http://127.0.0.1:{c}");
            let peer = format!("http://127.0.0.1:{p}");
            let mut args = snapshotd_testutil::etcd::member_args(&name, s(&data), &client, &peer);
            args.extend(
                [
                    "--initial-cluster",
                    &initial.join(","),
                    "--initial-cluster-token",
                    "pitr",
                ]
                .iter()
                .map(|a| a.to_string()),
            );
            args.extend(extra.iter().map(|a| a.to_string()));
            let guard = spawn_etcd(&args, &root.join(format!("{name}.log")));
            Member {
                name,
                data,
                client,
                _guard: guard,
            }
        })
        .collect();
    for m in &members {
        wait_healthy(&m.client);
    }
    members
}

pub fn spawn_etcd(args: &[String], log: &Path) -> ChildGuard {
    let log = std::fs::File::create(log).expect("etcd log");
    ChildGuard(
        Command::new(env_path("SNAPSHOTD_ETCD_BIN"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd"),
    )
}

pub fn wait_healthy(client: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !ctl(client, &["endpoint", "health"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "etcd at {client} did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `snapshotd etcd archive` beside a member (JSON events into `log`).
pub fn start_archiver(data: &Path, dest: &str, ttl: &str, log: &Path) -> ChildGuard {
    let out = std::fs::File::create(log).expect("archiver log");
    let err = out.try_clone().expect("dup log");
    ChildGuard(
        snapshotd_cmd()
            .args(["etcd", "archive", "--data-dir", s(data), dest])
            .args(["--interval", "200ms", "--lock-ttl", ttl, "--json"])
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start archiver"),
    )
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// `snapshotd etcd status --json DEST`.
pub fn status(dest: &Path) -> Value {
    let o = snapshotd(&["etcd", "status", "--json", s(dest)]);
    assert!(
        o.status.success(),
        "status: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("status json")
}

/// The member's raft index (all writes so far are committed once this is read after them).
pub fn raft_index(client: &str) -> u64 {
    let v = ctl_json(client, &["endpoint", "status", "-w", "json"]);
    v[0]["Status"]["raftIndex"].as_u64().expect("raftIndex")
}

/// Waits until DEST has archived through `index`.
pub fn wait_archived(dest: &Path, index: u64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if dest.join("checkpoints").is_dir() {
            let st = status(dest);
            if st["archived_through_index"].as_u64().unwrap_or(0) >= index {
                return st;
            }
        }
        if Instant::now() > deadline {
            panic!("archive did not reach index {index}\n{}", logs(dest));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The tails of the archiver logs beside `dest`, for failure messages.
fn logs(dest: &Path) -> String {
    let mut out = String::new();
    let dir = dest.parent().expect("dest has a parent");
    for e in std::fs::read_dir(dir).expect("read test dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("arch") && name.ends_with(".log") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            out.push_str(&format!(
                "--- {name}\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
    }
    out
}
