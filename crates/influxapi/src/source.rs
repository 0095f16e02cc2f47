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
        let names = manifest_names(dir)?;
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
