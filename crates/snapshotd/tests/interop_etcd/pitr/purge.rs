//! Purge pressure: etcd with `--snapshot-count 10 --max-wals 1` cuts 64 MB segments under
//! large writes and purges every 30 s; the archiver's locks decide what survives.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::env_path;

/// Writes `n` values of 1 MiB (etcd's WAL grows by ~1 MiB per put).
pub fn write_big(client: &str, tag: &str, n: usize) {
    let value = vec![b'v'; 1 << 20];
    let ctl = env_path("SNAPSHOTD_ETCD_BIN").with_file_name("etcdctl");
    for i in 0..n {
        let mut child = Command::new(&ctl)
            .env("ETCDCTL_API", "3")
            .args([
                &format!("--endpoints={client}"),
                "put",
                &format!("big/{tag}/{i:04}"),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("etcdctl put");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&value)
            .expect("value");
        assert!(child.wait().expect("wait").success(), "big put {i}");
    }
}

/// Segment name indexes in `wal`, oldest first.
pub fn segment_indexes(wal: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(wal)
        .expect("read wal dir")
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            let idx = n.strip_suffix(".wal")?.split_once('-')?.1.to_string();
            u64::from_str_radix(&idx, 16).ok()
        })
        .collect();
    v.sort_unstable();
    v
}

/// Waits until etcd's purge loop has run (it logs each purged file) or `within` passes.
pub fn wait_purge_cycle(log: &Path, before: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let n = std::fs::read_to_string(log)
            .unwrap_or_default()
            .matches("purged file")
            .count();
        if n > before || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
