//! `etcd restore`: archived chunks up to a target index → a member data dir that
//! `etcd --force-new-cluster` starts from.
//!
//! From a base at index `C` (the newest at or before `N` that archived entries reach `N`
//! from): `member/snap/db` is the base's keyspace (its consistent index is `C`, so etcd
//! skips entries up to `C`), `member/snap/<term>-<C>.snap` holds the membership at `C`, and
//! the WAL holds a snapshot record for `C` and the archived entries `C+1..=N` with a hard
//! state committing `N`. Without a base the WAL holds every archived entry `1..=N`, with no
//! `.snap` and no `db`: etcd creates an empty backend and applies the entries in order.
//! Either way etcd rebuilds the keyspace (keys, values, revisions) and the membership
//! exactly as they were at `N`. The WAL metadata names a member that existed at `N` (the
//! one called `--name`, if any), so etcd keeps that member and removes the others.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use snapshotd_checkpoint::{Destination, MasterKey};

use crate::catalog::{BaseRecord, Catalog};
use crate::error::{Error, Result};
use crate::plan::plan;
use crate::restore_wal::write_wal;

/// What to restore to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The newest archived index.
    Latest,
    /// Exactly this raft index.
    Index(u64),
    /// The newest index known committed at or before this time.
    Time(DateTime<Utc>),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Latest => write!(f, "latest"),
            Target::Index(n) => write!(f, "index {n}"),
            Target::Time(t) => write!(f, "time {}", t.to_rfc3339()),
        }
    }
}

/// Restore settings.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The new member's `--data-dir` (must not exist or be empty).
    pub data_dir: PathBuf,
    /// Target point.
    pub target: Target,
    /// Member to keep (by name); default the lowest id at the target.
    pub name: Option<String>,
    /// New peer URLs for that member (`--initial-advertise-peer-urls`): a conf change
    /// updating them is appended after the target, as `etcdctl member update` would.
    pub peer_urls: Vec<String>,
    /// Decrypts an encrypted archive.
    pub key: Option<MasterKey>,
}

/// What a restore produced.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// Raft index whose keyspace the data dir holds.
    pub index: u64,
    /// Last raft index in the restored WAL: `index`, or `index + 1` when a conf change
    /// setting the member's new peer URLs was appended.
    pub raft_index: u64,
    /// Term of that entry.
    pub term: u64,
    /// Raft index of the base the restore started from (`None`: the archive alone).
    pub base_index: Option<u64>,
    /// Chunks read.
    pub chunks: u64,
    /// Entries written.
    pub entries: u64,
    /// Member id written in the WAL metadata (hex).
    pub member_id: String,
    /// Its name at the target (may be empty).
    pub member_name: String,
    /// Cluster id (hex).
    pub cluster_id: String,
    /// The data dir written.
    pub data_dir: PathBuf,
}

/// Restores the archive at `dest` into `opts.data_dir`.
pub async fn restore(dest: &Destination, opts: &RestoreOptions) -> Result<RestoreReport> {
    let cat = Catalog::load(dest, opts.key.as_ref()).await?;
    let plan = plan(&cat, opts.target)?;
    let base_db = match &plan.base {
        Some(b) => Some(crate::backup::read_base(dest, opts.key.as_ref(), b).await?),
        None => None,
    };
    prepare_dir(&opts.data_dir)?;
    let member = opts.data_dir.join("member");
    let tmp_wal = member.join("wal.restoring");
    let mut force = None;
    let report = loop {
        if tmp_wal.exists() {
            std::fs::remove_dir_all(&tmp_wal).map_err(Error::io("remove", &tmp_wal))?;
        }
        match write_wal(dest, opts, &cat, &plan, force, &tmp_wal).await? {
            Written::Done(r) => break r,
            // The member picked at the start left the cluster before N: write again.
            Written::Repick(id) if force.is_none() => force = Some(id),
            Written::Repick(_) => {
                return Err(Error::NotRestorable {
                    target: opts.target.to_string(),
                    reason: "no member of the cluster at that index could be chosen".into(),
                });
            }
        }
    };
    let snap = member.join("snap");
    std::fs::create_dir_all(&snap).map_err(Error::io("create", &snap))?;
    std::fs::set_permissions(&snap, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(Error::io("chmod", &snap))?;
    if let (Some(b), Some(db)) = (&plan.base, base_db) {
        write_base(&snap, b, &db, report.1.unwrap_or(b.info.raft_term))?;
    }
    let wal_dir = member.join("wal");
    std::fs::rename(&tmp_wal, &wal_dir).map_err(Error::io("rename", &wal_dir))?;
    Ok(report.0)
}

/// Writes the base's db and the `.snap` file (membership at the base) into `snap`.
fn write_base(snap: &Path, b: &BaseRecord, db: &[u8], term: u64) -> Result<()> {
    let file = snap.join(crate::snapfile::file_name(term, b.info.index));
    let bytes = crate::snapfile::encode(b.info.index, term, &b.info.members);
    for (path, data) in [(snap.join("db"), db), (file, bytes.as_slice())] {
        write_synced(&path, data)?;
    }
    let d = std::fs::File::open(snap).map_err(Error::io("open", snap))?;
    d.sync_all().map_err(Error::io("sync", snap))
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io("create", path))?;
    f.write_all(data).map_err(Error::io("write", path))?;
    f.sync_all().map_err(Error::io("sync", path))
}

pub(crate) enum Written {
    /// The report and the base's term (when restoring from a base).
    Done((RestoreReport, Option<u64>)),
    Repick(u64),
}

/// Refuses a non-empty target; creates it (mode 0700, as etcd wants).
fn prepare_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |reason: &str| Error::BadTarget {
        path: dir.to_path_buf(),
        reason: reason.into(),
    };
    if dir.exists() {
        let mut rd = std::fs::read_dir(dir).map_err(|e| bad(&e.to_string()))?;
        if rd.next().is_some() {
            return Err(bad(
                "is not empty; restore only into a new or empty directory",
            ));
        }
    }
    let member = dir.join("member");
    std::fs::create_dir_all(&member).map_err(Error::io("create", &member))?;
    for d in [dir, member.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
            .map_err(Error::io("chmod", d))?;
    }
    Ok(())
}
