//! Offline shard restore: the archives of a restore point's shards unpacked into a stopped
//! influxd's data dir as `<db>/<rp>/<id>/…`, under the shard IDs the backup's metastore
//! names (written next by [`crate::write_meta_offline`]), as influx's legacy offline
//! restore does. Each shard is unpacked beside its final place and renamed into it once
//! complete; a re-run keeps the shards an earlier run finished (same files, same sizes).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{InfluxApiError, Result, corrupt, io};
use crate::shard::label;
use crate::source::{Backup, BackupShard};

/// What [`write_shards_offline`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OfflineShardsReport {
    /// Shards written into the data dir.
    pub shards: usize,
    /// Shards an earlier run had already written (left as they were).
    pub already_there: usize,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// A shard's files by path inside its directory, with their sizes.
type Listing = BTreeMap<PathBuf, u64>;

/// Unpacks every shard of `backup` (its files to apply: the newest whole run and the
/// increments after it, later files replacing earlier ones of the same name) into
/// `data_dir/<db>/<rp>/<id>`. Refuses, before writing anything, while an influxd uses
/// `data_dir`, when a shard directory exists with other files, or when `wal_dir` (influxd's
/// `[data] wal-dir`) holds a log of a shard to write (influxd would replay it into it).
pub fn write_shards_offline(
    backup: &Backup,
    data_dir: &Path,
    wal_dir: &Path,
) -> Result<OfflineShardsReport> {
    let dir = data_dir.canonicalize().map_err(io(format!(
        "open the influxd data dir {}",
        data_dir.display()
    )))?;
    if let Some(pid) = crate::offline::influxd_using(&dir) {
        return Err(InfluxApiError::InfluxdRunning {
            pid,
            meta_dir: dir.display().to_string(),
        });
    }
    let mut rep = OfflineShardsReport::default();
    let mut todo = Vec::new();
    // Only the shards the restore point's metastore names: a shard in an older run whose
    // group was dropped since would be an orphan directory.
    for s in backup
        .shards
        .iter()
        .filter(|s| backup.shard_range(s).is_some())
    {
        let target = shard_dir(&dir, s);
        if !target.exists() {
            let wal = shard_dir(wal_dir, s);
            if std::fs::read_dir(&wal).is_ok_and(|mut rd| rd.next().is_some()) {
                return Err(InfluxApiError::ShardWalExists {
                    path: wal.display().to_string(),
                    shard_id: s.shard_id,
                });
            }
            todo.push((s, target));
        } else if listing(&target)? == unpack(s, None)? {
            rep.already_there += 1;
        } else {
            return Err(InfluxApiError::ShardDirExists {
                path: target.display().to_string(),
                database: s.database.clone(),
                policy: s.policy.clone(),
                shard_id: s.shard_id,
            });
        }
    }
    for (s, target) in todo {
        let tmp = target.with_extension("snapshotd-tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(format!("remove {}", tmp.display())))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(format!("create {}", tmp.display())))?;
        let files = match unpack(s, Some(&tmp)) {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, &target).map_err(io(format!("rename into {}", target.display())))?;
        if let Some(parent) = target.parent() {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io(format!("sync {}", parent.display())))?;
        }
        rep.shards += 1;
        rep.files += files.len();
        rep.bytes += files.values().sum::<u64>();
    }
    Ok(rep)
}

/// `dir/<db>/<rp>/<id>`.
fn shard_dir(dir: &Path, s: &BackupShard) -> PathBuf {
    dir.join(&s.database)
        .join(&s.policy)
        .join(s.shard_id.to_string())
}

/// Reads the shard's archives in order and returns the files they hold (a later file of
/// the same name replacing an earlier one); with `out`, writes them there (synced).
fn unpack(s: &BackupShard, out: Option<&Path>) -> Result<Listing> {
    let mut files = Listing::new();
    for path in &s.files {
        let ctx = format!("{}: {}", label(s), path.display());
        let f = File::open(path).map_err(io(format!("open {}", path.display())))?;
        let mut ar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(f)));
        for e in ar.entries().map_err(io(ctx.clone()))? {
            let mut e = e.map_err(|e| corrupt(ctx.clone(), format!("tar/gzip: {e}")))?;
            if e.header().entry_type().is_dir() {
                continue;
            }
            let name = e.path().map_err(|e| corrupt(ctx.clone(), e.to_string()))?;
            let rel = inside_shard(s, &name).ok_or_else(|| {
                corrupt(
                    ctx.clone(),
                    format!("entry {} is not a file of this shard", name.display()),
                )
            })?;
            if !e.header().entry_type().is_file() {
                return Err(corrupt(
                    ctx,
                    format!("entry {} is not a file", rel.display()),
                ));
            }
            let size = e
                .header()
                .size()
                .map_err(|e| corrupt(ctx.clone(), e.to_string()))?;
            if let Some(out) = out {
                write_entry(&mut e, &out.join(&rel), &ctx)?;
            }
            files.insert(rel, size);
        }
    }
    Ok(files)
}

/// The path of entry `name` inside the shard's directory: `name` must be
/// `<db>/<rp>/<id>/<file…>` of shard `s`, with no `..`, root or prefix.
fn inside_shard(s: &BackupShard, name: &Path) -> Option<PathBuf> {
    let mut parts = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let id = s.shard_id.to_string();
    match parts.as_slice() {
        [db, rp, sid, rest @ ..]
            if !rest.is_empty() && *db == s.database && *rp == s.policy && *sid == id =>
        {
            Some(rest.iter().collect())
        }
        _ => None,
    }
}

/// Writes one entry to `dest` (creating its parent) and syncs it.
fn write_entry(e: &mut impl std::io::Read, dest: &Path, ctx: &str) -> Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
    }
    let mut w = File::create(dest).map_err(io(format!("write {}", dest.display())))?;
    std::io::copy(e, &mut w).map_err(|err| corrupt(ctx.to_string(), err.to_string()))?;
    w.sync_all().map_err(io(format!("sync {}", dest.display())))
}

/// The files under a shard directory with their sizes.
fn listing(dir: &Path) -> Result<Listing> {
    let mut out = Listing::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(io(format!("list {}", d.display())))?;
        for e in rd {
            let e = e.map_err(io(format!("list {}", d.display())))?;
            let meta = e
                .metadata()
                .map_err(io(format!("stat {}", e.path().display())))?;
            if meta.is_dir() {
                stack.push(e.path());
            } else if let Ok(rel) = e.path().strip_prefix(dir) {
                out.insert(rel.to_path_buf(), meta.len());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use snapshotd_store::meta::{
        Data, DatabaseInfo, RetentionPolicyInfo, ShardGroupInfo, ShardInfo,
    };

    use super::*;
    use crate::test_archive::archive;

    /// A backup of shard 1 of db/rp made of `files` (oldest first), its group in the meta.
    fn backup(dir: &Path, files: Vec<PathBuf>) -> Backup {
        let group = ShardGroupInfo {
            id: 1,
            start_time: 0,
            end_time: 10,
            shards: vec![ShardInfo {
                id: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        let rp = RetentionPolicyInfo {
            name: "rp".into(),
            shard_groups: vec![group],
            ..Default::default()
        };
        let db = DatabaseInfo {
            name: "db".into(),
            retention_policies: vec![rp],
            ..Default::default()
        };
        let runs = files.iter().map(|_| "r.manifest".to_string()).collect();
        Backup {
            dir: dir.to_path_buf(),
            meta: Data {
                databases: vec![db],
                ..Default::default()
            },
            shards: vec![BackupShard {
                database: "db".into(),
                policy: "rp".into(),
                shard_id: 1,
                files,
                runs,
                superseded: Vec::new(),
            }],
        }
    }

    #[test]
    fn increments_overlay_a_rerun_keeps_the_shard_and_other_files_are_refused() {
        let tmp = snapshotd_testutil::temp_dir();
        let (src, data) = (tmp.path().join("src"), tmp.path().join("data"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        let (full, incr) = (src.join("a.tar.gz"), src.join("b.tar.gz"));
        archive(
            &full,
            &[("db/rp/1/1-1.tsm", b"old"), ("db/rp/1/index/L0", b"i")],
        );
        archive(
            &incr,
            &[("db/rp/1/1-1.tsm", b"newer"), ("db/rp/1/2-1.tsm", b"x")],
        );
        let b = backup(&src, vec![full.clone(), incr]);
        let wal = tmp.path().join("wal");
        std::fs::create_dir_all(wal.join("db/rp/1")).unwrap();
        std::fs::write(wal.join("db/rp/1/_00001.wal"), b"old log").unwrap();
        let err = write_shards_offline(&b, &data, &wal).err();
        assert!(
            matches!(
                &err,
                Some(InfluxApiError::ShardWalExists { shard_id: 1, .. })
            ),
            "{err:?}"
        );
        assert!(!data.join("db").exists(), "refused before writing");
        std::fs::remove_file(wal.join("db/rp/1/_00001.wal")).unwrap();
        let r = write_shards_offline(&b, &data, &wal).unwrap();
        assert_eq!((r.shards, r.files, r.already_there), (1, 3, 0));
        let shard = data.join("db/rp/1");
        assert_eq!(std::fs::read(shard.join("1-1.tsm")).unwrap(), b"newer");
        assert_eq!(std::fs::read(shard.join("index/L0")).unwrap(), b"i");
        assert!(!data.join("db/rp/1.snapshotd-tmp").exists());

        let r = write_shards_offline(&b, &data, &wal).unwrap();
        assert_eq!((r.shards, r.already_there), (0, 1), "a re-run keeps it");

        std::fs::write(shard.join("9-1.tsm"), b"theirs").unwrap();
        let err = write_shards_offline(&b, &data, &wal).err();
        assert!(
            matches!(
                &err,
                Some(InfluxApiError::ShardDirExists { shard_id: 1, .. })
            ),
            "{err:?}"
        );
        assert_eq!(std::fs::read(shard.join("9-1.tsm")).unwrap(), b"theirs");

        // An entry of another shard (or escaping it) is refused; nothing is left behind.
        let evil = src.join("c.tar.gz");
        archive(&evil, &[("db/rp/2/1-1.tsm", b"x")]);
        let other = tmp.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        let err = write_shards_offline(&backup(&src, vec![evil]), &other, &wal).err();
        assert!(
            matches!(&err, Some(InfluxApiError::Corrupt { message, .. })
                if message.contains("not a file of this shard")),
            "{err:?}"
        );
        assert!(!other.join("db/rp/1").exists());
        assert!(!other.join("db/rp/1.snapshotd-tmp").exists());
    }
}
