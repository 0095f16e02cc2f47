//! `snapshotd backup` / `restore` on `s3://` against a real S3-API server (moto), run by
//! `cargo xtask interop s3`, which exports SNAPSHOTD_S3_ENDPOINT, SNAPSHOTD_S3_BUCKET and
//! the AWS_* credentials: backup, kill -9 and resume, the lock race, a paused holder taken
//! over and fenced, restore from S3, and (`merge.rs`, which also needs influxd, given as
//! SNAPSHOTD_INFLUXD_BIN) a merge from S3 into a live influxd.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod etcd;
mod merge;
#[path = "../support/mod.rs"]
mod support;

use std::cell::Cell;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use snapshotd_checkpoint::{Destination, MasterKey, S3Options};
use support::backup_env as env;
use support::serve::{serve, serve_loaded};
use support::takeover::{self, Dest};

/// A fresh unique `s3://bucket/prefix`.
fn s3_url() -> String {
    s3_url_under("cli")
}

/// A fresh unique `s3://bucket/<area>/prefix`.
fn s3_url_under(area: &str) -> String {
    let bucket = std::env::var("SNAPSHOTD_S3_BUCKET")
        .expect("SNAPSHOTD_S3_BUCKET (run via cargo xtask interop s3)");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("s3://{bucket}/{area}/{nanos}-{}", std::process::id())
}

/// `snapshotd` with the S3 endpoint passed the way a user would (AWS_ENDPOINT_URL).
fn cmd(args: &[&str]) -> Command {
    let endpoint = std::env::var("SNAPSHOTD_S3_ENDPOINT")
        .expect("SNAPSHOTD_S3_ENDPOINT (run via cargo xtask interop s3)");
    let mut c = env::bin();
    c.args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true");
    c
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().unwrap()
}

/// Starts `snapshotd ARGS` against S3 with its output discarded (it is going to be killed).
fn spawn_quiet(args: &[&str]) -> Child {
    cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A fresh [`s3_url`] for the shared scenarios; its files are inspected through downloads
/// into numbered directories under `work`.
struct S3Dest {
    url: String,
    work: PathBuf,
    copies: Cell<u32>,
}

impl S3Dest {
    fn new(work: PathBuf) -> Self {
        S3Dest {
            url: s3_url(),
            work,
            copies: Cell::new(0),
        }
    }

    /// Runs `f` on the destination, opened with the endpoint from SNAPSHOTD_S3_ENDPOINT (as
    /// `crates/checkpoint/tests/interop_s3.rs` does).
    fn with<T>(&self, f: impl AsyncFnOnce(&Destination) -> T) -> T {
        let mut opts = S3Options::from_lookup(|k| std::env::var(k).ok());
        opts.endpoint = std::env::var("SNAPSHOTD_S3_ENDPOINT").ok();
        let d = Destination::open(&self.url, &opts).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f(&d))
    }
}

impl Dest for S3Dest {
    fn arg(&self) -> &str {
        &self.url
    }

    fn cmd(&self, args: &[&str]) -> Command {
        cmd(args)
    }

    fn has_lock(&self) -> bool {
        self.with(async |d| snapshotd_checkpoint::read_lock(d).await.unwrap().is_some())
    }

    fn files(&self) -> PathBuf {
        self.copies.set(self.copies.get() + 1);
        let dir = self.work.join(format!("s3-copy{}", self.copies.get()));
        // Copies every object outside checkpoints/; the key is only used for `*.enc` files,
        // which a plain backup has none of.
        self.with(async |d| {
            snapshotd_checkpoint::decrypt_destination(&MasterKey::generate(), d, &dir)
                .await
                .unwrap()
        });
        dir
    }
}

#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn backup_to_s3_killed_resumes_and_restores_from_s3() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let reference = work.path().join("ref");
    env::backup_ok(&srv.addr, &[], &reference);
    let total: u64 = env::content(&reference).1.values().map(|s| s.2).sum();

    let url = s3_url();
    let mut rng = env::Lcg(0x53);
    let mut skipped_total = 0;
    for cycle in 0..3 {
        let mut child = spawn_quiet(&[
            "backup",
            "--host",
            &srv.addr,
            "--rate-limit",
            &total.to_string(),
            "--jobs",
            "2",
            &url,
        ]);
        std::thread::sleep(Duration::from_millis(200 + rng.next() % 500));
        child.kill().unwrap();
        child.wait().unwrap();
        eprintln!("cycle {cycle}: killed");
    }
    let v = env::ok_json(&run(&["backup", "--host", &srv.addr, "--json", &url]));
    eprintln!("s3 re-run: {v}");
    skipped_total += v["shards_skipped"].as_u64().unwrap();
    assert!(v["bytes_transferred"].as_u64().unwrap() <= total + 4096);
    let again = env::json(&run(&["backup", "--host", &srv.addr, "--json", &url]));
    assert_eq!(
        again["resumed"], false,
        "a finished run is never resumed: {again}"
    );
    assert_ne!(again["id"], v["id"], "{again}");

    // Restore from S3 into a fresh server; its data equals the source's.
    let fresh = serve(&work.path().join("fresh"));
    let out = run(&["restore", "--host", &fresh.addr, "--ack", "--json", &url]);
    assert_eq!(env::ok_json(&out)["status"], "ok");
    let back = work.path().join("back");
    env::backup_ok(&fresh.addr, &[], &back);
    assert_eq!(env::tsm_files(&back), env::tsm_files(&reference));
    eprintln!("shards skipped on resume: {skipped_total}");
}

#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn two_backups_at_once_on_s3_exactly_one_runs() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let url = s3_url();
    let args = ["backup", "--host", &srv.addr, "--rate-limit", "4M", &url];
    let spawn = || {
        cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    let loser = match (a.status.success(), b.status.success()) {
        (true, false) => b,
        (false, true) => a,
        _ => panic!(
            "exactly one must succeed: {} / {}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        ),
    };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("is locked by") && err.contains("pid"), "{err}");
}

/// `resume.rs`'s scenario of the same name on `s3://`: a stopped holder's 1 s lease is
/// taken over, the takeover completes, and the woken holder fails without changing a file.
#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn paused_holder_on_s3_is_taken_over_after_expiry_and_fenced() {
    let work = snapshotd_testutil::temp_dir();
    let dest = S3Dest::new(work.path().to_path_buf());
    takeover::paused_holder_is_taken_over_after_expiry_and_fenced(work.path(), &dest);
}

#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn restore_from_s3_rerun_after_a_partial_restore() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let url = s3_url();
    env::ok(&run(&["backup", "--host", &srv.addr, &url]));
    let target = serve(&work.path().join("target"));
    let state = work.path().join("state");
    let st = state.to_str().unwrap();
    let child = spawn_quiet(&[
        "restore",
        "--host",
        &target.addr,
        "--state-dir",
        st,
        "--ack",
        "--jobs",
        "1",
        "--rate-limit",
        "2M",
        &url,
    ]);
    // Killed once the import's intent, the import and a shard are recorded (a fixed sleep
    // could land before the import is recorded on a slow machine).
    let cp = state.join("restore");
    env::kill_once(child, || {
        std::fs::read_dir(&cp)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_dir(e.ok()?.path().join("checkpoints/data")).ok())
            .map_or(0, |d| d.count())
            >= 3 // the import's intent, the import, one shard
    });
    let v = env::ok_json(&run(&[
        "restore",
        "--host",
        &target.addr,
        "--state-dir",
        st,
        "--ack",
        "--json",
        &url,
    ]));
    eprintln!("s3 restore re-run: {v}");
    assert!(v["shards_skipped"].as_u64().unwrap() >= 1, "{v}");
}

#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn encrypted_backup_on_s3_restores_with_the_key() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let reference = work.path().join("ref");
    env::backup_ok(&srv.addr, &[], &reference);
    let key = work.path().join("key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    let k = key.to_str().unwrap();
    let url = s3_url();
    env::ok(&run(&[
        "backup",
        "--host",
        &srv.addr,
        "--encrypt-key-file",
        k,
        &url,
    ]));
    // Without the key the restore cannot find plain files and sends nothing.
    let fresh = serve(&work.path().join("fresh"));
    let out = run(&["restore", "--host", &fresh.addr, "--no-resume", &url]);
    assert!(!out.status.success());
    env::ok(&run(&[
        "restore",
        "--host",
        &fresh.addr,
        "--ack",
        "--encrypt-key-file",
        k,
        "--json",
        &url,
    ]));
    let back = work.path().join("back");
    env::backup_ok(&fresh.addr, &[], &back);
    assert_eq!(env::tsm_files(&back), env::tsm_files(&reference));
}

/// Complete point ids on an `s3://` destination, from `snapshots --json`.
fn s3_points(url: &str) -> Vec<String> {
    env::complete_point_ids(&run(&["snapshots", "--json", url]))
}

#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn restore_points_on_s3_are_listed_forgotten_and_restored_at() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let url = s3_url();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let v = env::ok_json(&run(&["backup", "--host", &srv.addr, "--json", &url]));
        assert_eq!(v["resumed"], false, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    assert_eq!(s3_points(&url), ids);

    let v = env::ok_json(&run(&["forget", "--keep-last", "2", "--json", &url]));
    assert_eq!(v["remove"], serde_json::json!([ids[0]]), "{v}");
    assert_eq!(s3_points(&url), ids[1..].to_vec());
    env::ok(&run(&["verify", &url]));

    // The older remaining point restores from S3.
    let fresh = serve(&work.path().join("fresh"));
    let out = run(&[
        "restore",
        "--host",
        &fresh.addr,
        "--ack",
        "--at",
        &ids[1],
        "--json",
        &url,
    ]);
    assert_eq!(env::ok_json(&out)["id"], ids[1].as_str());
}
