//! Offline metastore restore: the backup's complete `meta.Data` (users with their password
//! hashes, grants, retention policies, continuous queries, subscriptions, shard groups)
//! written as the `meta.db` of a stopped influxd, as influx's legacy offline restore does,
//! after keeping a copy of the old file.

use std::io::Write;
use std::path::{Path, PathBuf};

use snapshotd_store::meta::Data;

use crate::error::{InfluxApiError, Result, io};

/// What [`write_meta_offline`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OfflineReport {
    /// The file written.
    pub meta_db: PathBuf,
    /// Where the previous `meta.db` was kept (`None` when there was none).
    pub backup_copy: Option<PathBuf>,
    /// Users written (with their hashes).
    pub users: usize,
    /// Databases written.
    pub databases: usize,
    /// Continuous queries written.
    pub continuous_queries: usize,
}

/// Writes `meta` as `meta_dir/meta.db` (atomically, through a temp file), first copying an
/// existing `meta.db` to `meta.db.<stamp>.bak`. Refuses when an influxd process uses
/// `meta_dir` (its config names it, or it holds a file open there).
pub fn write_meta_offline(meta: &Data, meta_dir: &Path, stamp: &str) -> Result<OfflineReport> {
    let dir = meta_dir.canonicalize().map_err(io(format!(
        "open the influxd meta dir {}",
        meta_dir.display()
    )))?;
    if let Some(pid) = influxd_using(&dir) {
        return Err(InfluxApiError::InfluxdRunning {
            pid,
            meta_dir: dir.display().to_string(),
        });
    }
    let target = dir.join("meta.db");
    let mut backup_copy = None;
    if target.exists() {
        let copy = dir.join(format!("meta.db.{stamp}.bak"));
        if copy.exists() {
            return Err(InfluxApiError::BackupCopyExists {
                path: copy.display().to_string(),
            });
        }
        std::fs::copy(&target, &copy)
            .map_err(io(format!("keep a copy of {}", target.display())))?;
        backup_copy = Some(copy);
    }
    let tmp = dir.join("meta.db.snapshotd-tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(format!("create {}", tmp.display())))?;
    f.write_all(&meta.encode_blob())
        .and_then(|()| f.sync_all())
        .map_err(io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, &target).map_err(io(format!("replace {}", target.display())))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(OfflineReport {
        meta_db: target,
        backup_copy,
        users: meta.users.len(),
        databases: meta.databases.len(),
        continuous_queries: meta
            .databases
            .iter()
            .map(|d| d.continuous_queries.len())
            .sum(),
    })
}

/// The pid of an influxd whose command line or config file names `dir`, or that has a file
/// open under it.
pub(crate) fn influxd_using(dir: &Path) -> Option<u32> {
    let procs = std::fs::read_dir("/proc").ok()?;
    let me = std::process::id();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_influxd = args
            .first()
            .is_some_and(|a| Path::new(a).file_name().is_some_and(|n| n == "influxd"));
        if is_influxd && (names_dir(&args, dir) || has_open_file_under(&p.path(), dir)) {
            return Some(pid);
        }
    }
    None
}

/// Whether an argument or the `-config` file mentions `dir`.
fn names_dir(args: &[String], dir: &Path) -> bool {
    let d = dir.to_string_lossy();
    if args.iter().any(|a| a.contains(d.as_ref())) {
        return true;
    }
    let conf = args
        .iter()
        .position(|a| a == "-config" || a == "--config")
        .and_then(|i| args.get(i + 1));
    conf.and_then(|c| std::fs::read_to_string(c).ok())
        .is_some_and(|text| text.contains(d.as_ref()))
}

fn has_open_file_under(proc_dir: &Path, dir: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else {
        return false;
    };
    fds.flatten()
        .filter_map(|f| std::fs::read_link(f.path()).ok())
        .any(|l| l.starts_with(dir))
}
