//! A portable backup directory (`influxd backup -portable` or `snapshotd backup`): its
//! manifests, the newest meta, and each shard's files to apply, increments in order: a
//! shard's files start at the newest run that holds the whole shard, so with nightly full
//! backups in one directory every point is read once, not once per night.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use snapshotd_store::meta::Data;
use snapshotd_wire::Limits;
use snapshotd_wire::portable::{Manifest, PortableData, SnapshotdInfo};

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
    /// Its `.tar.gz` files to apply, oldest backup run first (later runs hold newer
    /// points): from the newest run holding the whole shard on (see [`Backup::open_until`]).
    pub files: Vec<PathBuf>,
    /// The run (manifest file name) of each of `files`, in the same order.
    pub runs: Vec<String>,
    /// Archives of older runs left out because a later run holds the whole shard: `(run
    /// manifest, file)`, oldest first.
    pub superseded: Vec<(String, PathBuf)>,
}

impl BackupShard {
    /// This shard with its superseded archives put back in front of `files` (every
    /// archive of every run, as [`crate::deep_verify`] decodes them).
    pub fn every_archive(&self) -> BackupShard {
        let mut s = self.clone();
        let (runs, files): (Vec<String>, Vec<PathBuf>) = s.superseded.drain(..).unzip();
        s.files.splice(0..0, files);
        s.runs.splice(0..0, runs);
        s
    }
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
    /// `None` reads every run; a `last` that is not in `dir` is an error. A shard's files
    /// start at the newest run whose archive of it is whole: a `snapshotd backup` run
    /// without a time window (`--since`, `--start`, `--end`, recorded in its manifest); the
    /// older ones go to [`BackupShard::superseded`]. Runs of `influxd backup` record no
    /// window, so they never supersede anything.
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
        for (n, m) in names.iter().zip(&manifests) {
            let whole = holds_whole_shards(m);
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
                    runs: Vec::new(),
                    superseded: Vec::new(),
                });
                if whole {
                    let older = s.runs.drain(..).zip(s.files.drain(..));
                    s.superseded.extend(older);
                }
                s.files.push(path);
                s.runs.push(n.clone());
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

    /// Runs and archives of the shards of `db` (and `rp`) left out as superseded: `(runs
    /// none of whose archives of those shards is read, archives)`.
    pub fn superseded_of(&self, db: &str, rp: Option<&str>) -> (usize, usize) {
        let (mut read, mut left) = (BTreeSet::new(), BTreeSet::new());
        let mut archives = 0;
        for s in self.shards_of(db, rp) {
            read.extend(s.runs.iter().map(String::as_str));
            left.extend(s.superseded.iter().map(|(r, _)| r.as_str()));
            archives += s.superseded.len();
        }
        (left.difference(&read).count(), archives)
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

/// Whether every archive of run `m` holds its whole shard: written by `snapshotd backup`
/// (which records the request) without `--since`, `--start` or `--end`, and marked complete.
fn holds_whole_shards(m: &Manifest) -> bool {
    m.snapshotd
        .as_ref()
        .is_some_and(SnapshotdInfo::holds_whole_shards)
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

    /// Writes run `ts` into `dir` as `influxd backup` does (no request recorded).
    fn write_run(dir: &Path, ts: &str, shards: &[u64]) {
        write_run_by(dir, ts, shards, None);
    }

    /// Writes run `ts` into `dir`: a `.meta` naming database `ts`, and a manifest listing
    /// one (placeholder) archive per shard ID in `shards`, with `info` as its request.
    fn write_run_by(dir: &Path, ts: &str, shards: &[u64], info: Option<SnapshotdInfo>) {
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
            snapshotd: info,
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

    /// A `snapshotd backup` request: whole shards, or `--since`.
    fn by_snapshotd(since: Option<&str>) -> Option<SnapshotdInfo> {
        Some(SnapshotdInfo {
            version: "test".into(),
            since: since.map(str::to_string),
            complete: true,
            ..Default::default()
        })
    }

    #[test]
    fn a_shards_files_start_at_its_newest_whole_archive() {
        let tmp = snapshotd_testutil::temp_dir();
        let d = tmp.path();
        let (full, since) = (
            by_snapshotd(None),
            by_snapshotd(Some("2026-01-02T00:00:00Z")),
        );
        write_run_by(d, "20260101T000000Z", &[1, 2], full.clone());
        write_run_by(d, "20260102T000000Z", &[1, 2], full.clone());
        write_run_by(d, "20260103T000000Z", &[1], since.clone());
        write_run_by(d, "20260104T000000Z", &[1], full);
        write_run_by(d, "20260105T000000Z", &[1, 2], since);
        write_run(d, "20260106T000000Z", &[1]); // influxd's: window unknown, supersedes nothing
        let name = |ts: &str| d.join(format!("{ts}.s1.tar.gz"));

        let b = Backup::open(d).unwrap();
        assert_eq!(files(&b), [(1, 3), (2, 2)]);
        let runs = |s: &BackupShard| s.runs.clone();
        assert_eq!(
            runs(&b.shards[0]),
            ["20260104T000000Z", "20260105T000000Z", "20260106T000000Z"]
                .map(|r| format!("{r}.manifest"))
        );
        assert_eq!(b.shards[0].files[0], name("20260104T000000Z"));
        assert_eq!(b.shards[0].superseded.len(), 3);
        assert_eq!(
            b.shards[1].superseded.len(),
            1,
            "shard 2: only the first run"
        );
        // Runs 1 and 3 are read for no shard; run 2 still gives shard 2.
        assert_eq!(b.superseded_of("db", None), (2, 4));
        let every = b.shards[0].every_archive();
        assert_eq!(every.files.len(), 6);
        assert_eq!(every.files[0], name("20260101T000000Z"));
        assert!(every.superseded.is_empty());

        // --at the third run: the second (whole) run of shard 1 and the increment after it.
        let at = Backup::open_until(d, Some("20260103T000000Z.manifest")).unwrap();
        assert_eq!(files(&at), [(1, 2), (2, 1)]);
        assert_eq!(at.shards[0].files[0], name("20260102T000000Z"));
        assert_eq!(at.superseded_of("db", None), (1, 2));
    }
}
