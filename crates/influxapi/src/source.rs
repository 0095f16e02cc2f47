//! A portable backup directory (`influxd backup -portable` or `snapshotd backup`): its
//! manifests, the newest meta, and every shard file, increments in order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use snapshotd_store::meta::Data;
use snapshotd_wire::Limits;
use snapshotd_wire::portable::{Manifest, PortableData};

use crate::error::{InfluxApiError, Result, corrupt, io};

/// One shard of the backup and its files (oldest run first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupShard {
    /// Database it belongs to in the backup.
    pub database: String,
    /// Retention policy.
    pub policy: String,
    /// Shard ID in the backup.
    pub shard_id: u64,
    /// Its `.tar.gz` files, oldest backup run first (later runs hold newer points).
    pub files: Vec<PathBuf>,
}

/// An opened backup directory.
#[derive(Debug, Clone)]
pub struct Backup {
    /// The directory.
    pub dir: PathBuf,
    /// The metastore of the newest run.
    pub meta: Data,
    /// Every shard with a file present, by shard ID.
    pub shards: Vec<BackupShard>,
}

impl Backup {
    /// Reads every `*.manifest` in `dir` (name order = run order), the newest run's `.meta`,
    /// and lists each shard's existing files. Nothing is written.
    pub fn open(dir: &Path) -> Result<Backup> {
        Self::open_until(dir, None)
    }

    /// [`Backup::open`] of the runs up to the one whose manifest is named `last` (the
    /// restore point a user picked): later runs are left out and the meta is that run's.
    /// `None` reads every run; a `last` that is not in `dir` is an error.
    pub fn open_until(dir: &Path, last: Option<&str>) -> Result<Backup> {
        let mut names = manifest_names(dir)?;
        if let Some(last) = last {
            if !names.iter().any(|n| n == last) {
                return Err(InfluxApiError::ManifestNotInBackup {
                    dir: dir.display().to_string(),
                    manifest: last.to_string(),
                });
            }
            names.retain(|n| n.as_str() <= last);
        }
        let Some(newest) = names.last() else {
            return Err(InfluxApiError::NotABackup {
                dir: dir.display().to_string(),
            });
        };
        let mut manifests = Vec::new();
        for n in &names {
            let bytes = read_bounded(&dir.join(n), Manifest::MAX_BYTES as u64)?;
            let m = Manifest::from_bytes(&bytes)
                .map_err(|e| corrupt(dir.join(n).display().to_string(), e.to_string()))?;
            manifests.push(m);
        }
        let newest_m = manifests
            .last()
            .ok_or_else(|| corrupt(newest.clone(), "empty"))?;
        let meta = read_meta(&dir.join(&newest_m.meta.file_name))?;
        let mut by_id: BTreeMap<u64, BackupShard> = BTreeMap::new();
        for m in &manifests {
            for f in &m.files {
                let path = dir.join(&f.file_name);
                if f.file_name.contains('/') || !path.is_file() {
                    continue;
                }
                let s = by_id.entry(f.shard_id).or_insert_with(|| BackupShard {
                    database: f.database.clone(),
                    policy: f.policy.clone(),
                    shard_id: f.shard_id,
                    files: Vec::new(),
                });
                s.files.push(path);
            }
        }
        Ok(Backup {
            dir: dir.to_path_buf(),
            meta,
            shards: by_id.into_values().collect(),
        })
    }

    /// The shards of database `db` (and of `rp` when given).
    pub fn shards_of<'a>(
        &'a self,
        db: &'a str,
        rp: Option<&'a str>,
    ) -> impl Iterator<Item = &'a BackupShard> + 'a {
        self.shards
            .iter()
            .filter(move |s| s.database == db && rp.is_none_or(|r| s.policy == r))
    }

    /// The `[start, end)` time range of a shard's shard group in the backup's meta.
    pub fn shard_range(&self, shard: &BackupShard) -> Option<(i64, i64)> {
        let db = self.meta.database(&shard.database)?;
        let rp = db.retention_policy(&shard.policy)?;
        rp.shard_groups
            .iter()
            .find(|g| g.shards.iter().any(|s| s.id == shard.shard_id))
            .map(|g| (g.start_time, g.end_time))
    }
}

fn manifest_names(dir: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).map_err(io(format!("list {}", dir.display())))?;
    let mut names = Vec::new();
    for e in rd {
        let e = e.map_err(io(format!("list {}", dir.display())))?;
        if let Some(n) = e.file_name().to_str()
            && n.ends_with(".manifest")
        {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(names)
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(io(format!("open {}", path.display())))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(io(format!("read {}", path.display())))?;
    if buf.len() as u64 > limit {
        return Err(corrupt(
            path.display().to_string(),
            format!("larger than the {limit}-byte limit"),
        ));
    }
    Ok(buf)
}

/// Reads a portable `.meta` file and decodes its `meta.Data`.
pub fn read_meta(path: &Path) -> Result<Data> {
    let limits = Limits::default();
    let file = read_bounded(path, limits.max_meta_blob.saturating_add(32))?;
    let pd = PortableData::from_file_bytes(&file, &limits)
        .map_err(|e| corrupt(path.display().to_string(), e.to_string()))?;
    Data::decode_blob(&pd.data).map_err(|e| corrupt(path.display().to_string(), e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use snapshotd_wire::portable::{ManifestFile, ManifestMeta};

    use super::*;

    /// Writes run `ts` into `dir`: a `.meta` naming database `ts`, and a manifest listing
    /// one (placeholder) archive per shard ID in `shards`.
    fn write_run(dir: &Path, ts: &str, shards: &[u64]) {
        let meta = Data {
            databases: vec![snapshotd_store::meta::DatabaseInfo {
                name: ts.to_string(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let meta_name = format!("{ts}.meta");
        let blob = PortableData::new(meta.encode_blob().into()).to_file_bytes();
        std::fs::write(dir.join(&meta_name), blob).unwrap();
        let mut files = Vec::new();
        for &id in shards {
            let file_name = format!("{ts}.s{id}.tar.gz");
            std::fs::write(dir.join(&file_name), b"x").unwrap();
            files.push(ManifestFile {
                database: "db".into(),
                policy: "rp".into(),
                shard_id: id,
                file_name,
                ..Default::default()
            });
        }
        let m = Manifest {
            meta: ManifestMeta {
                file_name: meta_name,
                ..Default::default()
            },
            files,
            ..Default::default()
        };
        std::fs::write(dir.join(format!("{ts}.manifest")), m.to_bytes().unwrap()).unwrap();
    }

    fn files(b: &Backup) -> Vec<(u64, usize)> {
        b.shards
            .iter()
            .map(|s| (s.shard_id, s.files.len()))
            .collect()
    }

    #[test]
    fn open_until_leaves_out_later_runs_and_reads_that_runs_meta() {
        let tmp = snapshotd_testutil::temp_dir();
        let d = tmp.path();
        write_run(d, "20260101T000000Z", &[1]);
        write_run(d, "20260102T000000Z", &[1, 2]);
        write_run(d, "20260103T000000Z", &[3]);

        let all = Backup::open(d).unwrap();
        assert_eq!(files(&all), [(1, 2), (2, 1), (3, 1)]);
        assert_eq!(all.meta.databases[0].name, "20260103T000000Z");

        let mid = Backup::open_until(d, Some("20260102T000000Z.manifest")).unwrap();
        assert_eq!(files(&mid), [(1, 2), (2, 1)]);
        assert_eq!(mid.meta.databases[0].name, "20260102T000000Z");
        assert_eq!(mid.shards[0].files[1], d.join("20260102T000000Z.s1.tar.gz"));

        let first = Backup::open_until(d, Some("20260101T000000Z.manifest")).unwrap();
        assert_eq!(files(&first), [(1, 1)]);

        let err = Backup::open_until(d, Some("20250101T000000Z.manifest")).err();
        assert!(
            matches!(&err, Some(InfluxApiError::ManifestNotInBackup { manifest, .. })
                if manifest == "20250101T000000Z.manifest"),
            "{err:?}"
        );
    }
}
