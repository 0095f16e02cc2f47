//! The built-in on-disk store: influx `meta.Data` metastore + shard directories
//! `data/<db>/<rp>/<id>/` holding opaque files (TSM restored from influx) and a WAL of
//! line-protocol writes (`wal/`, etcd-compatible, via `snapshotd-wal`).
//!
//! Layout of a data directory: `LOCK` (fs2 exclusive lock), `meta/meta.db`, `data/…`,
//! `tmp/` (scratch for exports, emptied on open).

mod admin;
mod backup;
mod compact;
mod compactor;
mod export;
mod import;
mod lowprio;
mod marker;
mod merge;
mod merge_marker;
mod meta_store;
mod points_tsm;
mod restore;
mod rows;
mod scan;
mod shard;
mod shard_log;
mod sys;
mod tail;
mod tarout;
mod tombstone;
mod tsm;
mod write;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

pub use compactor::{CompactionActivity, CompactionPolicy};
pub use restore::RestoreLimits;
pub use write::{Point, Value};

use crate::api::Store;
use crate::error::{Corruption, MetaProblem, NameKind, Result, StoreError};
use crate::meta::{Data, DatabaseInfo, RetentionPolicyInfo};
use crate::types::{
    BackupStats, ImportRequest, RestoreStats, ShardIdMap, ShardInfo, ShardPath, TimeRange,
};

type Slot = Arc<Mutex<Option<shard_log::ShardLog>>>;
/// The WAL entries bound for one shard.
type ShardEntry = (u64, Vec<Vec<u8>>);

/// A shard's opened files and log view.
struct ShardView {
    files: Vec<backup::Item>,
    log: Option<shard_log::LogView>,
}

/// The built-in store rooted at a data directory.
pub struct BuiltinStore {
    root: PathBuf,
    _lock: meta_store::DirLock,
    meta: Mutex<Data>,
    slots: Arc<Mutex<HashMap<u64, Slot>>>,
    limits: RestoreLimits,
    shared: compactor::Shared,
    compactor: Option<compactor::Compactor>,
}

/// What [`BuiltinStore::compact_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionStats {
    /// Shards whose log was compacted or purged.
    pub shards: u64,
    /// Field values written to TSM files.
    pub values: u64,
    /// TSM bytes written.
    pub bytes: u64,
    /// WAL segments deleted.
    pub segments_purged: u64,
    /// TSM files merged into fewer, larger files (level compaction).
    pub files_merged: u64,
}

/// The state of one shard's write log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Index of the last entry written.
    pub last_index: u64,
    /// Index through which entries are in TSM files.
    pub compacted_through: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Entries the segment files on disk may still hold: from the first segment's name
    /// index to the last entry (an upper bound; a segment opened by a compaction is named
    /// at the marker and holds only later entries).
    pub entries_on_disk: u64,
}

impl std::fmt::Debug for BuiltinStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| StoreError::io(format!("create {}", p.display()), e))
}

fn not_found(what: &'static str, name: impl Into<String>) -> StoreError {
    StoreError::NotFound {
        what,
        name: name.into(),
    }
}

/// A duration in nanoseconds, or an error when it does not fit an i64.
fn ns(d: Duration) -> std::result::Result<i64, std::num::TryFromIntError> {
    i64::try_from(d.as_nanos())
}

impl BuiltinStore {
    /// Opens (creating if needed) the store in `data_dir`, taking its exclusive lock and
    /// repairing any restore interrupted by a crash.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_limits(data_dir, RestoreLimits::default())
    }

    /// Like [`BuiltinStore::open`] with explicit restore limits.
    pub fn open_with_limits(data_dir: impl AsRef<Path>, limits: RestoreLimits) -> Result<Self> {
        Self::open_with(data_dir, limits, CompactionPolicy::default())
    }

    /// Like [`BuiltinStore::open`] with explicit restore limits and compaction policy.
    pub fn open_with(
        data_dir: impl AsRef<Path>,
        limits: RestoreLimits,
        policy: CompactionPolicy,
    ) -> Result<Self> {
        let root = data_dir.as_ref().to_path_buf();
        mkdir(&root)?;
        let lock = meta_store::DirLock::acquire(&root)?;
        mkdir(&root.join("data"))?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)
                .map_err(|e| StoreError::io(format!("clear {}", tmp.display()), e))?;
        }
        mkdir(&tmp)?;
        meta_store::clean_temps(&root);
        let data = meta_store::load(&root)?;
        let slots = Arc::new(Mutex::new(HashMap::new()));
        let offload = if policy.background && policy.nice > 0 {
            lowprio::Offload::start(policy.nice)
                .map_err(|e| StoreError::io("start the compaction worker thread", e))?
        } else {
            lowprio::Offload::default()
        };
        let shared = compactor::Shared {
            slots: slots.clone(),
            running: Arc::new(Mutex::new(())),
            policy,
            activity: Arc::default(),
            offload,
        };
        let mut store = BuiltinStore {
            root,
            _lock: lock,
            meta: Mutex::new(data),
            slots,
            limits,
            shared,
            compactor: None,
        };
        store.recover()?;
        if store.shared.policy.background {
            let c = compactor::Compactor::start(store.shared.clone())
                .map_err(|e| StoreError::io("start the compactor thread", e))?;
            store.compactor = Some(c);
        }
        Ok(store)
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks a name read from the metastore: a bad one is corruption of the metastore.
    fn check_stored_name(&self, what: NameKind, name: &str) -> Result<()> {
        shard::check_name(what, name).map_err(|_| {
            Corruption::Metastore {
                path: meta_store::meta_path(&self.root),
                problem: MetaProblem::BadName {
                    what,
                    name: name.to_string(),
                },
            }
            .into()
        })
    }

    fn recover(&self) -> Result<()> {
        let data = lock(&self.meta).clone();
        for db in &data.databases {
            self.check_stored_name(NameKind::Database, &db.name)?;
            for rp in &db.retention_policies {
                self.check_stored_name(NameKind::RetentionPolicy, &rp.name)?;
                restore::recover_rp_dir(&self.rp_dir(&db.name, &rp.name))?;
                for g in rp.shard_groups.iter().filter(|g| !g.is_deleted()) {
                    for s in &g.shards {
                        mkdir(&self.shard_dir(&db.name, &rp.name, s.id))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn rp_dir(&self, db: &str, rp: &str) -> PathBuf {
        self.root.join("data").join(db).join(rp)
    }

    fn shard_dir(&self, db: &str, rp: &str, id: u64) -> PathBuf {
        self.rp_dir(db, rp).join(id.to_string())
    }

    fn slot(&self, id: u64) -> Slot {
        lock(&self.slots).entry(id).or_default().clone()
    }

    fn locate(&self, id: u64) -> Result<shard::Located> {
        shard::locate(&lock(&self.meta), id).ok_or_else(|| not_found("shard", id.to_string()))
    }

    fn save(&self, data: &Data) -> Result<()> {
        meta_store::save(&self.root, data)
    }

    /// Every point of a retention policy's shards (None = default RP) as a query sees them,
    /// shard by shard: one point per series and time, sorted by series then time, fields by
    /// name, each field's last write winning across TSM files and the log tail, tombstoned
    /// values dropped.
    pub fn read_points(
        &self,
        database: &str,
        retention_policy: Option<&str>,
    ) -> Result<Vec<Point>> {
        let (rp, ids) = self.rp_shard_ids(database, retention_policy)?;
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.shard_points(&self.shard_dir(database, &rp, id), id)?);
        }
        Ok(out)
    }

    /// The name of a retention policy (`None` = the database's default) and its live shards.
    fn rp_shard_ids(
        &self,
        database: &str,
        retention_policy: Option<&str>,
    ) -> Result<(String, Vec<u64>)> {
        let data = lock(&self.meta);
        let db = data
            .database(database)
            .ok_or_else(|| not_found("database", database))?;
        let rp = retention_policy.unwrap_or(&db.default_retention_policy);
        let info = db
            .retention_policy(rp)
            .ok_or_else(|| not_found("retention policy", format!("{database}.{rp}")))?;
        let ids: Vec<u64> = info
            .shard_groups
            .iter()
            .filter(|g| !g.is_deleted())
            .flat_map(|g| g.shards.iter().map(|s| s.id))
            .collect();
        Ok((rp.to_string(), ids))
    }

    fn shard_points(&self, dir: &Path, id: u64) -> Result<Vec<Point>> {
        let ShardView { mut files, log } = self.shard_view(id, dir)?;
        let tombs: Vec<(String, usize)> = files
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.rel.strip_suffix(".tombstone").map(|s| (s.to_string(), i)))
            .collect();
        let mut deleted = std::collections::HashMap::new();
        for (stem, i) in tombs {
            let f = &mut files[i];
            let path = dir.join(&f.rel).display().to_string();
            deleted.insert(stem, tombstone::read(&mut f.file, &path)?);
        }
        let none = tombstone::Tombstones::default();
        let mut rows = rows::Rows::default();
        // Oldest first: files by name (`<generation>-<sequence>.tsm`, zero-padded), then the
        // log tail in write order.
        for item in &mut files {
            if let Some(stem) = item.rel.strip_suffix(".tsm") {
                let d = deleted.get(stem).unwrap_or(&none);
                let path = dir.join(&item.rel).display().to_string();
                for p in tsm::read_points(&mut item.file, item.len, &path, d)? {
                    rows.add(p);
                }
            }
        }
        if let Some(view) = log {
            for entry in view.entries() {
                for p in write::decode_entry(&entry?, view.dir())? {
                    rows.add(p);
                }
            }
        }
        Ok(rows.into_points())
    }

    /// Opaque files and log view of a shard, taken under the shard's slot lock.
    fn snapshot(&self, id: u64) -> Result<(String, ShardView)> {
        let loc = self.locate(id)?;
        let dir = self.shard_dir(&loc.db, &loc.rp, id);
        if !dir.is_dir() {
            return Err(not_found("shard", id.to_string()));
        }
        let view = self.shard_view(id, &dir)?;
        Ok((format!("{}/{}/{id}", loc.db, loc.rp), view))
    }

    /// A point-in-time view of a shard, taken under its slot lock (so no append or restore
    /// is half done): every opaque file opened, and the log's read view. The writer is
    /// opened first when the log exists: the view then relies on the writer's exclusive
    /// segment locks instead of taking shared ones, which would otherwise keep the writer
    /// from opening (and writes from landing) until the view is dropped.
    fn shard_view(&self, id: u64, dir: &Path) -> Result<ShardView> {
        let slot = self.slot(id);
        let mut writer = lock(&slot);
        if writer.is_none() && shard_log::exists(dir) {
            match shard_log::ShardLog::open(dir, self.shared.policy.segment_bytes) {
                Ok(w) => *writer = Some(w),
                Err(e) => tracing::warn!(shard = id, error = %e, "shard log not writable"),
            }
        }
        let files = backup::opaque_files(dir)?;
        let log = match writer.as_ref() {
            Some(w) => w.view()?,
            None => {
                let at = marker::read(dir)?.map_or(0, |(i, _)| i);
                shard_log::LogView::open_at(dir, at)?
            }
        };
        Ok(ShardView { files, log })
    }

    /// Compacts every open shard log into TSM files now and purges the segments it covers
    /// (segments a live backup view holds are kept until a later pass), then merges each
    /// shard's TSM files into one.
    pub fn compact_all(&self) -> Result<CompactionStats> {
        self.compact_pass(merge::Pick::All)
    }

    /// Compacts every open shard log, then merges the TSM files `pick` selects.
    fn compact_pass(&self, pick: merge::Pick) -> Result<CompactionStats> {
        let slots: Vec<(u64, Slot)> = lock(&self.slots)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let mut stats = CompactionStats::default();
        for (_, slot) in slots {
            if let Some(o) = self.shared.until_done(&slot, &|_| Ok(()))? {
                stats.shards += 1;
                stats.values += o.values;
                stats.bytes += o.bytes;
                stats.segments_purged += o.purged as u64;
                stats.files_merged += o.merged;
            }
            if let Some(m) = self.shared.merge_now(&slot, pick)? {
                stats.files_merged += m.inputs as u64;
            }
        }
        Ok(stats)
    }

    /// Counters of compaction work so far (runs begun and ended, longest shard-lock hold).
    pub fn compaction_activity(&self) -> CompactionActivity {
        self.shared.activity.get()
    }

    /// The state of a shard's write log (all zero when it has none).
    pub fn log_stats(&self, shard_id: u64) -> Result<LogStats> {
        let loc = self.locate(shard_id)?;
        let dir = self.shard_dir(&loc.db, &loc.rp, shard_id);
        let slot = self.slot(shard_id);
        let mut writer = lock(&slot);
        if writer.is_none() && shard_log::exists(&dir) {
            *writer = Some(shard_log::ShardLog::open(
                &dir,
                self.shared.policy.segment_bytes,
            )?);
        }
        let Some(w) = writer.as_ref() else {
            return Ok(LogStats::default());
        };
        let segs = {
            let log = dir.join(shard_log::DIR);
            snapshotd_wal::list_segments(&log).map_err(|e| shard_log::wal_err(&log, e))?
        };
        let first = segs.first().map_or(0, |s| s.index.max(1));
        Ok(LogStats {
            last_index: w.last_index(),
            compacted_through: w.compacted,
            segments: segs.len() as u64,
            entries_on_disk: (w.last_index() + 1).saturating_sub(first),
        })
    }

    /// Creates the directories of the given shards; shards of deleted groups (imported as
    /// influx does) get none.
    fn create_shard_dirs(&self, data: &Data, ids: &[u64]) -> Result<()> {
        for id in ids {
            if let Some(loc) = shard::locate(data, *id) {
                mkdir(&self.shard_dir(&loc.db, &loc.rp, *id))?;
            }
        }
        Ok(())
    }
}

impl Drop for BuiltinStore {
    /// Clean shutdown: stops the compactor and compacts every open shard log.
    fn drop(&mut self) {
        if let Some(mut c) = self.compactor.take() {
            c.stop();
        }
        let pick = merge::Pick::Tiered(self.shared.policy.merge_files);
        if let Err(e) = self.compact_pass(pick) {
            tracing::warn!(error = %e, "compaction at shutdown failed; the log keeps the points");
        }
        self.shared.offload.stop();
    }
}

impl Store for BuiltinStore {
    fn meta_snapshot(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.meta).encode_blob())
    }

    fn list_shards(
        &self,
        database: Option<&str>,
        retention_policy: Option<&str>,
    ) -> Result<Vec<ShardPath>> {
        let data = lock(&self.meta).clone();
        let dbs: Vec<&DatabaseInfo> = match database {
            Some(name) => vec![
                data.database(name)
                    .ok_or_else(|| not_found("database", name))?,
            ],
            None => data.databases.iter().collect(),
        };
        let mut out = Vec::new();
        let mut rp_seen = false;
        for db in dbs {
            let rps: Vec<&RetentionPolicyInfo> = match retention_policy {
                Some(rp) => db.retention_policy(rp).into_iter().collect(),
                None => db.retention_policies.iter().collect(),
            };
            rp_seen |= !rps.is_empty();
            for rp in rps {
                for g in rp.shard_groups.iter().filter(|g| !g.is_deleted()) {
                    for s in &g.shards {
                        if self.shard_dir(&db.name, &rp.name, s.id).is_dir() {
                            out.push(ShardPath {
                                database: db.name.clone(),
                                retention_policy: rp.name.clone(),
                                shard_id: s.id,
                            });
                        }
                    }
                }
            }
        }
        if let Some(rp) = retention_policy
            && !rp_seen
        {
            let db = database.map(|d| format!("{d}.")).unwrap_or_default();
            return Err(not_found("retention policy", format!("{db}{rp}")));
        }
        Ok(out)
    }

    fn shard_info(&self, shard_id: u64) -> Result<ShardInfo> {
        let loc = self.locate(shard_id)?;
        Ok(ShardInfo {
            path: ShardPath {
                database: loc.db,
                retention_policy: loc.rp,
                shard_id,
            },
            shard_group_id: loc.group,
            start_ns: loc.start,
            end_ns: loc.end,
        })
    }

    fn backup_shard(
        &self,
        shard_id: u64,
        since: Option<SystemTime>,
        out: &mut dyn Write,
    ) -> Result<BackupStats> {
        let (prefix, view) = self.snapshot(shard_id)?;
        let stats = backup::backup(&prefix, since, view.files, view.log, out)?;
        tracing::debug!(
            shard_id,
            files = stats.files,
            bytes = stats.bytes,
            "shard backed up"
        );
        Ok(stats)
    }

    fn export_shard(
        &self,
        shard_id: u64,
        range: TimeRange,
        out: &mut dyn Write,
    ) -> Result<BackupStats> {
        let (prefix, view) = self.snapshot(shard_id)?;
        export::export(
            &prefix,
            &self.root.join("tmp"),
            range,
            view.files,
            view.log,
            out,
        )
    }

    fn import_meta(&self, blob: &[u8], request: &ImportRequest) -> Result<ShardIdMap> {
        let other = Data::decode_blob(blob)?;
        let mut data = lock(&self.meta);
        let mut work = data.clone();
        let imported = import::import(&mut work, &other, request)?;
        for (_, name) in &imported.databases {
            shard::check_name(NameKind::Database, name)?;
            if let Some(db) = work.database(name) {
                for rp in &db.retention_policies {
                    shard::check_name(NameKind::RetentionPolicy, &rp.name)?;
                }
            }
        }
        let ids: Vec<u64> = imported.map.iter().map(|(_, new)| *new).collect();
        self.create_shard_dirs(&work, &ids)?;
        self.save(&work)?;
        *data = work;
        Ok(ShardIdMap(imported.map))
    }

    fn restore_shard(&self, shard_id: u64, tar: &mut dyn Read) -> Result<RestoreStats> {
        let loc = self.locate(shard_id)?;
        let dir = self.shard_dir(&loc.db, &loc.rp, shard_id);
        let path = ShardPath {
            database: loc.db.clone(),
            retention_policy: loc.rp.clone(),
            shard_id,
        };
        let slot = self.slot(shard_id);
        let mut writer = lock(&slot);
        *writer = None; // disable: close the writer (and its segment locks) for the swap
        let stats = restore::restore(&dir, &path, tar, &self.limits)?;
        tracing::info!(
            shard_id,
            files = stats.files,
            skipped = stats.skipped,
            bytes = stats.bytes,
            "shard restored"
        );
        Ok(stats)
    }
}
