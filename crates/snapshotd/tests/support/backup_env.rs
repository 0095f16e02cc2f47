//! Shared helpers of the resume / lock tests: a `snapshotd serve` with a few MB of data, the
//! `snapshotd` binary, and comparisons of backups by content.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use snapshotd_testutil::ChildGuard;

/// The `snapshotd` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snapshotd"))
}

/// Runs `snapshotd ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

/// Starts `snapshotd ARGS` with piped output.
pub fn spawn(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The `--json` summary printed on stdout.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Asserts success, showing stderr otherwise.
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `snapshotd serve` with its snapshot and HTTP addresses.
pub struct Server {
    /// Kills the server on drop.
    pub guard: ChildGuard,
    /// Snapshot protocol address.
    pub addr: String,
    /// HTTP API address.
    pub http: String,
}

/// Starts `snapshotd serve` on free ports with a fresh data directory.
pub fn serve(data: &Path) -> Server {
    let addr = format!("127.0.0.1:{}", snapshotd_testutil::free_port());
    let http = format!("127.0.0.1:{}", snapshotd_testutil::free_port());
    let child = bin()
        .args(["serve", "--bind", &addr, "--http-bind", &http, "--data-dir"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    for a in [&addr, &http] {
        while std::net::TcpStream::connect(a).is_err() {
            assert!(Instant::now() < deadline, "serve did not listen on {a}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Server { guard, addr, http }
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

/// A tiny seeded generator (no `rand` dependency needed for test timing choices).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next pseudo-random value.
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// The manifest of a backup directory (the only one).
pub fn manifest(dir: &Path) -> serde_json::Value {
    let m = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "manifest"))
        .unwrap_or_else(|| panic!("no manifest in {}", dir.display()));
    serde_json::from_slice(&std::fs::read(m).unwrap()).unwrap()
}

/// One shard of a backup: database, retention policy, tar size, tar bytes.
pub type Shard = (String, String, u64, Vec<u8>);

/// What must be equal between two backups of the same data: per shard (db, rp, id, tar
/// size, decompressed tar bytes), and the meta's size.
pub fn content(dir: &Path) -> (u64, BTreeMap<u64, Shard>) {
    let m = manifest(dir);
    let mut out = BTreeMap::new();
    for f in m["files"].as_array().unwrap() {
        let name = f["fileName"].as_str().unwrap();
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(dir.join(name)).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        out.insert(
            f["shardID"].as_u64().unwrap(),
            (
                f["database"].as_str().unwrap().to_string(),
                f["policy"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
                tar,
            ),
        );
    }
    (m["meta"]["size"].as_u64().unwrap(), out)
}

/// Decompressed `.tsm` entries of every shard archive of a local backup, sorted (shard IDs
/// may differ between the backups compared).
pub fn tsm_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, (_, _, _, tar)) in content(dir).1 {
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy().ends_with(".tsm") {
                let mut d = Vec::new();
                e.read_to_end(&mut d).unwrap();
                out.push(d);
            }
        }
    }
    out.sort();
    out
}

/// Sends a signal with `kill(1)`.
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

/// Waits until `path` exists.
pub fn wait_for(path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// File name of the (only) manifest in a backup directory.
pub fn manifest_name(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .find(|n| n.ends_with(".manifest"))
        .unwrap_or_else(|| panic!("no manifest in {}", dir.display()))
}
