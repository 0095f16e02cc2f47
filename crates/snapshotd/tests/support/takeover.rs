//! The paused-holder scenario, shared by a local directory (`resume.rs`) and S3
//! (`interop_s3.rs`): a backup with a 1 s lease is stopped (SIGSTOP), a second run is refused
//! while the lease is live, takes over once it expired and completes; the first, woken
//! (SIGCONT), is fenced: it fails and its late writes change nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::backup_env as env;
use super::serve::serve_loaded;

/// A backup destination as the scenario drives and inspects it.
pub trait Dest {
    /// DEST as given to `snapshotd` (a directory or `s3://bucket/prefix`).
    fn arg(&self) -> &str;
    /// `snapshotd ARGS` with the environment DEST needs.
    fn cmd(&self, args: &[&str]) -> Command;
    /// Whether DEST holds a (live) `checkpoints/LOCK`.
    fn has_lock(&self) -> bool;
    /// A local directory with DEST's backup files as they are now (for S3, a fresh download).
    fn files(&self) -> PathBuf;
}

/// A local backup directory.
pub struct LocalDir(pub PathBuf);

impl Dest for LocalDir {
    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = env::bin();
        c.args(args);
        c
    }

    fn has_lock(&self) -> bool {
        self.0.join("checkpoints/LOCK").exists()
    }

    fn files(&self) -> PathBuf {
        self.0.clone()
    }
}

/// The scenario; `work` holds the server's data and the reference backup.
pub fn paused_holder_is_taken_over_after_expiry_and_fenced(work: &Path, dest: &dyn Dest) {
    let srv = serve_loaded(&work.join("data"));
    let (_, want) = {
        let r = work.join("ref");
        env::backup_ok(&srv.addr, &[], &r);
        env::content(&r)
    };
    let d = dest.arg();
    let run = |args: &[&str]| dest.cmd(args).output().unwrap();
    let old = dest
        .cmd(&[
            "backup",
            "--host",
            &srv.addr,
            "--rate-limit",
            "1M",
            "--lock-ttl",
            "1s",
            d,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dest.has_lock() {
        assert!(
            Instant::now() < deadline,
            "{d}: checkpoints/LOCK never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    env::signal(old.id(), "-STOP");

    // While the paused holder's lease is live, a second run is refused.
    let out = run(&["backup", "--host", &srv.addr, "--lock-ttl", "1s", d]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is locked by"));

    // After expiry (TTL 1 s + the 5 s clock-skew margin) it is taken over and completes.
    std::thread::sleep(Duration::from_millis(7_500));
    env::ok(&run(&[
        "backup",
        "--host",
        &srv.addr,
        "--lock-ttl",
        "1s",
        "--json",
        d,
    ]));
    let before = dest.files();
    let manifest_before = std::fs::read(before.join(env::manifest_name(&before))).unwrap();
    let files_before = env::top_files(&before);

    // The old holder wakes up, is fenced and exits with an error.
    env::signal(old.id(), "-CONT");
    let old = old.wait_with_output().unwrap();
    assert!(!old.status.success(), "the deposed holder must fail");
    let err = String::from_utf8_lossy(&old.stderr);
    assert!(err.contains("lost"), "{err}");

    // Its late writes changed nothing that counts: same manifest, still verifies, complete.
    let after = dest.files();
    let manifest_after = std::fs::read(after.join(env::manifest_name(&after))).unwrap();
    assert_eq!(manifest_before, manifest_after);
    assert!(
        env::top_files(&after) == files_before,
        "the deposed holder changed a backup file"
    );
    let out = run(&["verify", d]);
    assert!(
        out.status.success(),
        "verify {d}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env::content(&after).1, want);
    let v = env::json(&run(&["backup", "--host", &srv.addr, "--json", d]));
    // The finished run is never "resumed": a re-run is a new restore point.
    assert_eq!(
        (&v["status"], &v["resumed"]),
        (&"ok".into(), &false.into()),
        "{v}"
    );
}
