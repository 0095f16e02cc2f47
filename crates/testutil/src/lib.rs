//! Test helpers shared by snapshotd crates (dev-only, never published).
//!
//! Helpers here fail loudly (panic) on setup errors: they run only inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

pub mod etcd;
pub mod influxd;
pub mod measure;

/// The `shared/` directory beside the repository checkout; panics loudly when absent so a
/// golden-vector test can never silently pass without its data.
pub fn shared_dir() -> PathBuf {
    let root = workspace_root();
    let shared = root.join("..").join("shared");
    assert!(
        shared.is_dir(),
        "golden data missing: expected {} (the shared/ directory beside the repo)",
        shared.display()
    );
    shared
}

/// A path under `shared/vectors/`, asserted to exist.
pub fn vector(rel: &str) -> PathBuf {
    let p = shared_dir().join("vectors").join(rel);
    assert!(p.exists(), "golden vector missing: {}", p.display());
    p
}

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
}

/// A fresh temporary directory removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("snapshotd-test-")
        .tempdir()
        .expect("create temp dir")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Kills and reaps a child process when dropped, so failing tests leave no strays.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
