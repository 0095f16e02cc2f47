//! Small helpers: load average, percentiles, directory sizes, opening a bench store.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use snapshotd_store::{AdminStore, BuiltinStore, CompactionPolicy, DatabaseSpec, RestoreLimits};

/// The 1/5/15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The `p` quantile of sorted latencies, in ms.
pub fn pct(lat: &[Duration], p: f64) -> f64 {
    if lat.is_empty() {
        return f64::NAN;
    }
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat[i].as_secs_f64() * 1000.0
}

/// Bytes under `p`.
pub fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    n
}

/// Opens a store at `dir` with database `bench`.
pub fn open(dir: &Path, policy: CompactionPolicy) -> Arc<BuiltinStore> {
    let s = BuiltinStore::open_with(dir, RestoreLimits::default(), policy).unwrap();
    s.create_database(&DatabaseSpec {
        name: "bench".into(),
        retention_policy: None,
    })
    .unwrap();
    Arc::new(s)
}
