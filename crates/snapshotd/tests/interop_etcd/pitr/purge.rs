//! Purge pressure: etcd with `--snapshot-count 10 --max-wals 1` cuts 64 MB segments under
//! large writes and purges every 30 s; the archiver's locks decide what survives.
//!
//! etcd's purge loop logs each file it deletes (`.snap` files as well as WAL segments), so
//! "a purge line appeared" does not prove a given segment went: wait for the segment itself.
//! A purge stopped by a lock logs `failed to lock file` with the file's path.

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

/// etcd's purge loop runs this often.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(30);

/// Waits until etcd has purged the segment holding entry `index` (the oldest remaining
/// segment starts after it); panics with the segments and purge lines after `within`.
pub fn wait_segment_purged(wal: &Path, log: &Path, index: u64, within: Duration) -> Vec<u64> {
    let deadline = Instant::now() + within;
    loop {
        let segs = segment_indexes(wal);
        if segs.first().is_some_and(|&first| first > index) {
            return segs;
        }
        if Instant::now() > deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let purged: Vec<&str> = text.lines().filter(|l| l.contains("purged")).collect();
            panic!(
                "etcd did not purge the segment holding entry {index} within {within:?}: \
                 segments {segs:?}\n{}",
                purged.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Lines of etcd's log where its purge loop found a WAL segment locked.
pub fn wal_lock_refusals(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("failed to lock file") && l.contains(".wal"))
        .count()
}

/// Waits until etcd's purge loop has found a WAL segment locked more than `before` times
/// (a purge cycle ran and a lock stopped it); panics after `within`.
pub fn wait_wal_lock_refusal(log: &Path, before: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while wal_lock_refusals(log) <= before {
        assert!(
            Instant::now() < deadline,
            "etcd's purge never found a locked WAL segment within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
