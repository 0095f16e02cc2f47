//! `etcd restore`: archived chunks up to a target index → a member data dir that
//! `etcd --force-new-cluster` starts from.
//!
//! The restored member has a WAL holding every archived entry `1..=N` and a hard state
//! committing `N`, no `.snap` and no `db`: etcd creates an empty backend and applies the
//! entries in order, rebuilding the keyspace (keys, values, revisions) and the membership
//! exactly as they were at `N`. Its metadata names a member that existed at `N` (the one
//! called `--name`, if any), so etcd keeps that member and removes the others.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use snapshotd_checkpoint::{Destination, MasterKey};
use snapshotd_wal::{HardState, Wal, WalOptions};

use crate::catalog::{Catalog, ChunkRecord};
use crate::error::{Error, Result};
use crate::membership::Membership;
use crate::pb::{Metadata, encode_metadata};
use crate::store::{self, Stored};

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

/// Resolves `target` against the catalog: the index to restore, or why it cannot be.
pub fn resolve(cat: &Catalog, target: Target) -> Result<u64> {
    let refuse = |reason: String| Error::NotRestorable {
        target: target.to_string(),
        reason,
    };
    let Some((lo, hi)) = cat.restorable_from_start() else {
        return Err(refuse(match cat.chunks.first() {
            None => "the archive holds no entries yet".into(),
            Some(c) => format!(
                "the archive starts at index {} and no base backup covers the entries before it",
                c.info.first
            ),
        }));
    };
    let n = match target {
        Target::Latest => hi,
        Target::Index(n) => n,
        Target::Time(t) => cat.index_at_time(t).ok_or_else(|| {
            refuse("no archived entry is known to be committed by then".to_string())
        })?,
    };
    if n < lo {
        return Err(refuse(format!("the oldest restorable index is {lo}")));
    }
    if n > hi {
        let why = match cat
            .missing()
            .into_iter()
            .find(|&(f, t)| f <= n.max(hi + 1) && t >= hi)
        {
            Some((f, t)) => format!(
                "entries {f}..={t} are missing from the archive (a gap); restorable: {lo}..={hi}"
            ),
            None => format!("the archive ends at index {hi}; restorable: {lo}..={hi}"),
        };
        return Err(refuse(why));
    }
    Ok(n)
}

/// Restores the archive at `dest` into `opts.data_dir`.
pub async fn restore(dest: &Destination, opts: &RestoreOptions) -> Result<RestoreReport> {
    let cat = Catalog::load(dest, opts.key.as_ref()).await?;
    let n = resolve(&cat, opts.target)?;
    prepare_dir(&opts.data_dir)?;
    let member = opts.data_dir.join("member");
    let tmp_wal = member.join("wal.restoring");
    let mut force = None;
    let report = loop {
        if tmp_wal.exists() {
            std::fs::remove_dir_all(&tmp_wal).map_err(Error::io("remove", &tmp_wal))?;
        }
        match write_wal(dest, opts, &cat, n, force, &tmp_wal).await? {
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
    let wal_dir = member.join("wal");
    std::fs::rename(&tmp_wal, &wal_dir).map_err(Error::io("rename", &wal_dir))?;
    let snap = member.join("snap");
    std::fs::create_dir_all(&snap).map_err(Error::io("create", &snap))?;
    std::fs::set_permissions(&snap, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(Error::io("chmod", &snap))?;
    Ok(report)
}

enum Written {
    Done(RestoreReport),
    Repick(u64),
}

async fn write_wal(
    dest: &Destination,
    opts: &RestoreOptions,
    cat: &Catalog,
    n: u64,
    force: Option<u64>,
    dir: &Path,
) -> Result<Written> {
    let chunks: Vec<&ChunkRecord> = cat.chunks.iter().filter(|c| c.info.first <= n).collect();
    let mut writer = RestoreWriter {
        force,
        ..RestoreWriter::default()
    };
    for c in &chunks {
        let stored = Stored {
            object: c.info.object.clone(),
            size: c.size,
            sha256: c.sha256.clone(),
        };
        let plain_name = c
            .info
            .object
            .trim_end_matches(snapshotd_checkpoint::ENC_SUFFIX);
        let bytes = store::get(dest, opts.key.as_ref(), &stored, plain_name).await?;
        let (obj, first, last) = (c.info.object.clone(), c.info.first, c.info.last);
        let decoded =
            tokio::task::spawn_blocking(move || crate::chunk::decode(&obj, &bytes, first, last))
                .await
                .map_err(|e| Error::io("decode chunk", dir)(std::io::Error::other(e)))??;
        writer.add(dir, decoded, n, opts.name.as_deref())?;
    }
    writer.finish(dir, n, opts, chunks.len() as u64)
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

/// Writes entries to the new WAL as chunks arrive; the WAL is created at the first chunk,
/// once the membership (hence the member id) is known.
#[derive(Default)]
struct RestoreWriter {
    wal: Option<Wal>,
    members: Membership,
    pending: Vec<snapshotd_wal::Entry>,
    last: (u64, u64),
    entries: u64,
    cluster: u64,
    chosen: Option<(u64, String)>,
    force: Option<u64>,
}

impl RestoreWriter {
    fn add(
        &mut self,
        dir: &Path,
        decoded: crate::chunk::Decoded,
        n: u64,
        name: Option<&str>,
    ) -> Result<()> {
        if let Some(m) = crate::pb::decode_metadata(&decoded.metadata) {
            self.cluster = m.cluster_id;
        }
        for e in decoded.entries.into_iter().filter(|e| e.index <= n) {
            self.members.apply(&e);
            self.last = (e.index, e.term);
            self.pending.push(e);
        }
        if self.wal.is_none() {
            let picked = match self.force {
                Some(id) => self.members.members.get(&id),
                None => self.members.pick(name),
            };
            let Some(m) = picked else {
                return Ok(()); // no member yet: keep collecting
            };
            self.chosen = Some((m.id, m.name.clone()));
            let meta = encode_metadata(&Metadata {
                node_id: m.id,
                cluster_id: self.cluster,
            });
            self.wal = Some(
                Wal::create_with(dir, &meta, &WalOptions::default())
                    .map_err(Error::wal(format!("create {}", dir.display())))?,
            );
        }
        self.flush(dir)
    }

    fn flush(&mut self, dir: &Path) -> Result<()> {
        let Some(wal) = self.wal.as_mut() else {
            return Ok(());
        };
        let hs = HardState::new(self.last.1, 0, self.last.0);
        wal.save(&hs, &self.pending)
            .map_err(Error::wal(format!("write {}", dir.display())))?;
        self.entries += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn finish(mut self, dir: &Path, n: u64, opts: &RestoreOptions, chunks: u64) -> Result<Written> {
        // Pick again now that the whole membership at N is known.
        let wanted = match self.force {
            Some(id) => self.members.members.get(&id),
            None => self.members.pick(opts.name.as_deref()),
        }
        .map(|m| (m.id, m.name.clone()));
        if let (Some((w, _)), Some((c, _))) = (&wanted, &self.chosen)
            && w != c
        {
            return Ok(Written::Repick(*w));
        }
        if self.last.0 != n || self.wal.is_none() || wanted.is_none() {
            return Err(Error::NotRestorable {
                target: opts.target.to_string(),
                reason: format!(
                    "the archive yielded entries up to {} with no member",
                    self.last.0
                ),
            });
        }
        self.flush(dir)?;
        let (id, name) = wanted.unwrap_or_default();
        if !opts.peer_urls.is_empty() {
            let e =
                crate::membership::update_peer_urls(n + 1, self.last.1, id, &name, &opts.peer_urls);
            self.last = (e.index, e.term);
            self.pending.push(e);
            self.flush(dir)?;
        }
        if let Some(wal) = self.wal.take() {
            wal.close()
                .map_err(Error::wal(format!("close {}", dir.display())))?;
        }
        Ok(Written::Done(RestoreReport {
            index: n,
            raft_index: self.last.0,
            term: self.last.1,
            chunks,
            entries: self.entries,
            member_id: format!("{id:x}"),
            member_name: name,
            cluster_id: format!("{:x}", self.cluster),
            data_dir: opts.data_dir.clone(),
        }))
    }
}
