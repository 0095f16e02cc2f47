//! The portable backup layout: file names, manifest records, and which files a restore uses.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::conn::Window;
use crate::error::{ClientError, Result};
use crate::proto;
use crate::storage::Storage;

/// Largest manifest read (influx's are ~200 bytes per shard).
pub const MAX_MANIFEST: u64 = 64 * 1024 * 1024;

/// `TS`: the run's start time as `YYYYMMDDTHHMMSSZ`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `TS.meta`.
pub fn meta_name(ts: &str) -> String {
    format!("{ts}.meta")
}

/// `TS.s<ID>.tar.gz`.
pub fn shard_name(ts: &str, id: u64) -> String {
    format!("{ts}.s{id}.tar.gz")
}

/// `TS.s<ID>.tar`: the name stored in the gzip header, as influx writes it.
pub fn gzip_inner_name(ts: &str, id: u64) -> String {
    format!("{ts}.s{id}.tar")
}

/// `TS.manifest`.
pub fn manifest_name(ts: &str) -> String {
    format!("{ts}.manifest")
}

/// The manifest's `meta` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRecord {
    /// File name of the `.meta` file.
    pub file_name: String,
    /// Length of the raw `meta.Data` blob (influx's definition, not the file size).
    pub size: u64,
    /// SHA-256 of the `.meta` file (snapshotd extension).
    pub sha256: Option<String>,
    /// Size of the `.meta` file (snapshotd extension).
    pub bytes: Option<u64>,
}

/// One manifest `files` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Database.
    pub db: String,
    /// Retention policy.
    pub rp: String,
    /// Shard ID on the source server.
    pub shard_id: u64,
    /// File name of the `.tar.gz`.
    pub file_name: String,
    /// Uncompressed tar length (influx's definition).
    pub size: u64,
    /// SHA-256 of the stored `.tar.gz` (snapshotd extension).
    pub sha256: Option<String>,
    /// Stored file size (snapshotd extension).
    pub bytes: Option<u64>,
}

/// What a backup run records in its manifest.
#[derive(Debug, Clone)]
pub struct ManifestDraft {
    /// The meta entry.
    pub meta: MetaRecord,
    /// Shard files in info-response order.
    pub files: Vec<FileRecord>,
    /// The requested window.
    pub window: Window,
    /// What was asked for.
    pub request: Selection,
    /// Start of the run.
    pub started: DateTime<Utc>,
}

/// The database / retention policy / shard a run was restricted to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Database.
    pub db: Option<String>,
    /// Retention policy.
    pub rp: Option<String>,
    /// Shard.
    pub shard: Option<u64>,
}

/// A manifest read back from a backup location.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    /// Its file name.
    pub name: String,
    /// The meta entry.
    pub meta: MetaRecord,
    /// Shard files (empty for influx's `"files": null`).
    pub files: Vec<FileRecord>,
    /// Whether snapshotd wrote it (it then carries checksums).
    pub by_snapshotd: bool,
    /// Whether each of its archives holds its whole shard: a complete `snapshotd backup`
    /// run without `--since`, `--start` or `--end` (influxd's runs record no window: never).
    pub whole: bool,
}

/// Every manifest in the location, newest (name-descending) first.
pub async fn read_manifests(src: &Storage) -> Result<Vec<ParsedManifest>> {
    let names = manifest_names(src).await?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        out.push(read_manifest(src, &name).await?);
    }
    if out.is_empty() {
        return Err(ClientError::NoManifest {
            location: src.display().to_string(),
        });
    }
    Ok(out)
}

/// Reads and checks one manifest.
pub async fn read_manifest(src: &Storage, name: &str) -> Result<ParsedManifest> {
    let raw = src.get_bounded(name, MAX_MANIFEST).await?;
    let m = proto::decode_manifest(name, &raw).map_err(|e| ClientError::Integrity {
        file: src.path_of(name),
        detail: format!("manifest does not decode: {e}"),
    })?;
    check_names(&m)?;
    Ok(m)
}

/// Names of the manifests in `src`, newest (name-descending) first.
pub async fn manifest_names(src: &Storage) -> Result<Vec<String>> {
    let mut names: Vec<String> = src
        .list()
        .await?
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n.ends_with(".manifest"))
        .collect();
    names.sort_by(|a, b| b.cmp(a));
    Ok(names)
}

/// File names from a manifest must be plain names inside the location.
fn check_names(m: &ParsedManifest) -> Result<()> {
    let names = std::iter::once(&m.meta.file_name).chain(m.files.iter().map(|f| &f.file_name));
    for n in names {
        if n.is_empty() || n.contains(['/', '\\']) || n == "." || n == ".." {
            return Err(ClientError::Integrity {
                file: m.name.clone(),
                detail: format!("file name {n:?} is not a plain file name"),
            });
        }
    }
    Ok(())
}

/// What a restore reads: the chosen point's meta and, per shard, its chain of archives.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    /// Manifest providing the meta.
    pub manifest: String,
    /// The meta entry.
    pub meta: MetaRecord,
    /// One entry per shard, in shard-ID order: the newest archive of its chain.
    pub shards: Vec<FileRecord>,
    /// Each shard's chain (by shard ID), `shards` being the last archive of each.
    pub chains: BTreeMap<u64, ShardChain>,
}

/// The archives that together hold one shard at a restore point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardChain {
    /// Oldest first: the newest archive of a whole run, then every later archive of the
    /// shard (windowed runs); with no whole run, every archive of the shard.
    pub archives: Vec<FileRecord>,
    /// The run (manifest name) of each archive, same order.
    pub runs: Vec<String>,
    /// Whether the first archive holds the whole shard.
    pub starts_whole: bool,
}

impl ShardChain {
    /// Uncompressed tar bytes of all its archives (an upper bound of what is sent).
    pub fn size(&self) -> u64 {
        self.archives.iter().map(|f| f.size).sum()
    }
}

/// Builds the restore plan from the manifests of `src`.
pub async fn restore_plan(src: &Storage) -> Result<RestorePlan> {
    restore_plan_at(src, None).await
}

/// The restore plan of the point `at` names (see [`crate::points::select`]; `None` = the
/// newest): that point's meta; per shard, the archives of that point and the older ones
/// that hold it (see [`ShardChain`]), so an incremental point brings back the full
/// backup's data too.
pub async fn restore_plan_at(src: &Storage, at: Option<&str>) -> Result<RestorePlan> {
    let mut manifests = read_manifests(src).await?;
    if at.is_some() {
        let points = crate::points::list_points(src).await?;
        let chosen = manifest_name(&crate::points::select(&points, at)?.id);
        manifests.retain(|m| m.name <= chosen);
    }
    let existing: std::collections::HashSet<String> =
        src.list().await?.into_iter().map(|e| e.name).collect();
    let chains = chains_of(&manifests, |n| existing.contains(n));
    let newest = manifests.first().ok_or_else(|| ClientError::NoManifest {
        location: src.display().to_string(),
    })?;
    let shards = chains
        .values()
        .filter_map(|c| c.archives.last().cloned())
        .collect();
    Ok(RestorePlan {
        manifest: newest.name.clone(),
        meta: newest.meta.clone(),
        shards,
        chains,
    })
}

/// Each shard's chain from `manifests` (newest first), using archives that `exists`. A
/// whole run restarts the chain; an archive of the shard under another database or
/// retention policy (another server's backup in the same location) does too.
fn chains_of(
    manifests: &[ParsedManifest],
    exists: impl Fn(&str) -> bool,
) -> BTreeMap<u64, ShardChain> {
    let mut chains: BTreeMap<u64, ShardChain> = BTreeMap::new();
    for m in manifests.iter().rev() {
        for f in m.files.iter().filter(|f| exists(&f.file_name)) {
            let c = chains.entry(f.shard_id).or_insert_with(|| ShardChain {
                archives: Vec::new(),
                runs: Vec::new(),
                starts_whole: false,
            });
            let other_shard = c
                .archives
                .first()
                .is_some_and(|a| a.db != f.db || a.rp != f.rp);
            if m.whole || other_shard {
                c.archives.clear();
                c.runs.clear();
                c.starts_whole = m.whole;
            }
            c.archives.push(f.clone());
            c.runs.push(m.name.clone());
        }
    }
    chains
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_follow_influx() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 2, 23, 8).unwrap();
        let ts = timestamp(t);
        assert_eq!(ts, "20261122T022308Z");
        assert_eq!(meta_name(&ts), "20261122T022308Z.meta");
        assert_eq!(shard_name(&ts, 12), "20261122T022308Z.s12.tar.gz");
        assert_eq!(gzip_inner_name(&ts, 12), "20261122T022308Z.s12.tar");
        assert_eq!(manifest_name(&ts), "20261122T022308Z.manifest");
    }

    fn run(ts: &str, whole: bool, shards: &[(u64, &str)]) -> ParsedManifest {
        ParsedManifest {
            name: manifest_name(ts),
            meta: MetaRecord {
                file_name: meta_name(ts),
                size: 0,
                sha256: None,
                bytes: None,
            },
            files: shards
                .iter()
                .map(|&(id, db)| FileRecord {
                    db: db.into(),
                    rp: "autogen".into(),
                    shard_id: id,
                    file_name: shard_name(ts, id),
                    size: 10,
                    sha256: None,
                    bytes: None,
                })
                .collect(),
            by_snapshotd: true,
            whole,
        }
    }

    fn files(c: &ShardChain) -> Vec<&str> {
        c.archives.iter().map(|f| f.file_name.as_str()).collect()
    }

    #[test]
    fn a_chain_starts_at_the_newest_whole_archive() {
        // Newest first, as read_manifests returns them.
        let manifests = [
            run(
                "20260105T000000Z",
                false,
                &[(1, "db"), (3, "db"), (4, "other")],
            ),
            run("20260104T000000Z", false, &[(1, "db"), (2, "db")]),
            run("20260103T000000Z", true, &[(1, "db"), (4, "db")]),
            run("20260102T000000Z", false, &[(1, "db"), (3, "db")]),
            run("20260101T000000Z", true, &[(1, "db"), (3, "db")]),
        ];
        let missing = shard_name("20260104T000000Z", 2);
        let chains = chains_of(&manifests, |n| n != missing);
        let c1 = &chains[&1];
        assert_eq!(
            files(c1),
            [
                "20260103T000000Z.s1.tar.gz",
                "20260104T000000Z.s1.tar.gz",
                "20260105T000000Z.s1.tar.gz"
            ]
        );
        assert!(c1.starts_whole);
        assert_eq!(c1.runs[0], "20260103T000000Z.manifest");
        assert_eq!(c1.size(), 30);
        // Not in the newest whole run: from its last whole archive before.
        assert_eq!(
            files(&chains[&3]),
            [
                "20260101T000000Z.s3.tar.gz",
                "20260102T000000Z.s3.tar.gz",
                "20260105T000000Z.s3.tar.gz"
            ]
        );
        // Its only archive is missing: no chain.
        assert!(!chains.contains_key(&2));
        // The same id under another database restarts the chain, not whole.
        assert_eq!(files(&chains[&4]), ["20260105T000000Z.s4.tar.gz"]);
        assert!(!chains[&4].starts_whole);
    }

    #[test]
    fn without_a_whole_run_every_archive_is_applied_oldest_first() {
        let manifests = [
            run("20260102T000000Z", false, &[(1, "db")]),
            run("20260101T000000Z", false, &[(1, "db")]),
        ];
        let chains = chains_of(&manifests, |_| true);
        assert_eq!(
            files(&chains[&1]),
            ["20260101T000000Z.s1.tar.gz", "20260102T000000Z.s1.tar.gz"]
        );
        assert!(!chains[&1].starts_whole);
    }
}
