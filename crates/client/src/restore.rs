//! `restore`: checksums first, then the metastore import, then parallel shard uploads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;

use crate::backup::Hooks;
use crate::conn::{Client, IdMap, RenameNames};
use crate::error::{ClientError, Result};
use crate::filecheck::{check_file, read_meta_blob, verify_archive};
use crate::installed::Watcher;
use crate::layout::{self, FileRecord, ShardChain};
use crate::limiter::RateLimiter;
use crate::storage::Storage;

mod chain;
mod confirm;
mod phases;
mod upload;

use confirm::confirm;
use upload::{UploadCtx, renamed_rest, upload};

const IO_BUFFER: usize = 256 * 1024;

/// What to restore and under which names.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Only this database of the backup (all but `_internal` when `None`).
    pub db: Option<String>,
    /// Its new name (needs `db`).
    pub new_db: Option<String>,
    /// Only this retention policy.
    pub rp: Option<String>,
    /// Its new name (needs `rp`).
    pub new_rp: Option<String>,
    /// Only this shard (source ID).
    pub shard: Option<u64>,
    /// Shards uploaded at once (≥ 1).
    pub jobs: usize,
    /// Cap on the combined upload rate, bytes per second.
    pub rate_limit: Option<u64>,
    /// Ask the server to acknowledge every shard upload (snapshotd extension `0x87`): a
    /// failed restore of a shard is then reported instead of passing silently. influxd does
    /// not support it.
    pub acknowledged: bool,
    /// Continue an interrupted restore of the same manifest into the same server.
    pub resume: Option<RestoreResume>,
    /// The restore point: an id (`TS`) or an RFC 3339 time (the newest point at or before
    /// it); `None` = the newest.
    pub at: Option<String>,
    /// Send shard files influxd does not load (e.g. `.wal` segments of older snapshotd
    /// backups) instead of refusing the shard; implied by `acknowledged` (snapshotd serve
    /// loads them).
    pub force: bool,
    /// Record the intent of the metastore import before sending it (through
    /// [`crate::UnitSink::import_intent`]) and recover `pending_import` instead of importing
    /// again: for runs whose sink keeps a checkpoint.
    pub guard_import: bool,
    /// An import an interrupted run recorded the intent of, but not the result.
    pub pending_import: Option<crate::reimport::ImportIntent>,
}

/// What an interrupted restore finished.
#[derive(Debug, Clone, Default)]
pub struct RestoreResume {
    /// The manifest whose metastore the server imported.
    pub manifest: String,
    /// The old → new shard-ID map the server returned then.
    pub id_map: IdMap,
    /// Backup shard IDs already uploaded.
    pub done: BTreeSet<u64>,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// The manifest whose meta was imported.
    pub manifest: String,
    /// The server's old → new shard-ID map.
    pub id_map: IdMap,
    /// Shards uploaded: (source ID, new ID).
    pub restored: Vec<(u64, u64)>,
    /// Selected shards the server did not map (not uploaded).
    pub unmapped: Vec<u64>,
    /// Whether every file was checked against a manifest checksum.
    pub checksums_verified: bool,
    /// The restored shards whose data comes from more than one archive, by source ID.
    pub stacked: Vec<Stacked>,
}

/// A shard restored from a chain of archives (see [`layout::ShardChain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stacked {
    /// Source shard ID.
    pub shard: u64,
    /// The point (`TS`) of the chain's first archive.
    pub base: String,
    /// Whether that archive holds the whole shard (a full run).
    pub base_whole: bool,
    /// Archives of later points applied over it.
    pub later: usize,
}

impl std::fmt::Display for Stacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.later == 1 { "" } else { "s" };
        if self.base_whole {
            write!(
                f,
                "shard {}: full {} + {} incremental{s}",
                self.shard, self.base, self.later
            )
        } else {
            // No full run holds it: every archive of it is applied, from the oldest.
            write!(
                f,
                "shard {}: {} archives from {} on (no full run of it)",
                self.shard,
                self.later + 1,
                self.base
            )
        }
    }
}

/// The chains of `selected` that hold more than one archive.
fn stacked(selected: &[FileRecord], chains: &BTreeMap<u64, ShardChain>) -> Vec<Stacked> {
    selected
        .iter()
        .filter_map(|f| chains.get(&f.shard_id))
        .filter(|c| c.archives.len() > 1)
        .filter_map(|c| {
            Some(Stacked {
                shard: c.archives.first()?.shard_id,
                base: c.runs.first()?.trim_end_matches(".manifest").to_string(),
                base_whole: c.starts_whole,
                later: c.archives.len() - 1,
            })
        })
        .collect()
}

/// Restores the portable backup in `src` into the server behind `client`.
pub async fn restore(
    client: &Client,
    src: &Storage,
    opts: &RestoreOptions,
    hooks: &Hooks,
) -> Result<RestoreSummary> {
    let names = rename_names(opts)?;
    let plan = layout::restore_plan_at(src, opts.at.as_deref()).await?;
    let selected = phases::select(&plan, opts)?;
    // Nothing is sent before every file we will use is there with its size; archives with a
    // checksum are hashed on the upload pass itself (a mismatch aborts the shard before
    // influxd installs it), the others are checked whole first.
    let checksums_verified = precheck(src, &plan, &selected, opts.jobs.max(1)).await?;
    let blob = read_meta_blob(src, &plan, client.config().limits.max_meta_blob).await?;
    let prior = opts.resume.as_ref().filter(|r| r.manifest == plan.manifest);
    let id_map = phases::import(client, opts, hooks, &plan, &blob, &names, prior).await?;
    let mut stacked = stacked(&selected, &plan.chains);
    let parts = phases::partition(selected, &plan.chains, &id_map, prior, hooks);
    let ctx = Arc::new(UploadCtx {
        client: client.clone(),
        src: src.clone(),
        chains: plan.chains,
        new_db: opts.new_db.clone(),
        new_rp: opts.new_rp.clone().or_else(|| opts.rp.clone()),
        limiter: opts.rate_limit.map(|r| Arc::new(RateLimiter::new(r))),
        acknowledged: opts.acknowledged,
        force: opts.force || opts.acknowledged,
        hooks: hooks.clone(),
        cancel: hooks.cancel.clone(),
        watcher: match opts.acknowledged {
            true => None,
            false => Some(Watcher::open(client).await),
        },
    });
    let mut restored = phases::upload_all(ctx, parts.work, opts.jobs.max(1)).await?;
    restored.extend(parts.kept);
    restored.sort_unstable();
    stacked.retain(|c| restored.iter().any(|(old, _)| *old == c.shard));
    Ok(RestoreSummary {
        manifest: plan.manifest,
        id_map,
        restored,
        unmapped: parts.unmapped,
        checksums_verified,
        stacked,
    })
}

/// Upload order: largest first (by `size`, then by ID), so a big shard uploads while the
/// small ones go through the other slots instead of alone at the end.
fn largest_first(work: &mut [(FileRecord, u64)], size: impl Fn(&FileRecord) -> u64) {
    work.sort_by(|(a, _), (b, _)| size(b).cmp(&size(a)).then(a.shard_id.cmp(&b.shard_id)));
}

/// Uncompressed bytes of a shard's chain (its own archive's without a chain).
fn chain_size(chains: &BTreeMap<u64, ShardChain>, f: &FileRecord) -> u64 {
    chains.get(&f.shard_id).map_or(f.size, ShardChain::size)
}

/// Ids of the plan's shards in `--db`/`--rp` (for a `--shard` that is not there).
fn shards_matching(shards: &[FileRecord], opts: &RestoreOptions) -> Vec<u64> {
    let in_scope = |f: &&FileRecord| {
        opts.db.as_ref().is_none_or(|d| *d == f.db) && opts.rp.as_ref().is_none_or(|r| *r == f.rp)
    };
    shards.iter().filter(in_scope).map(|f| f.shard_id).collect()
}

/// The checks before anything is sent: the meta file (size, sha256), the size of each
/// archive of the selected shards' chains, and archives without a checksum (influxd's)
/// gunzipped as one complete tar. Returns whether every file has a checksum.
async fn precheck(
    src: &Storage,
    plan: &layout::RestorePlan,
    selected: &[FileRecord],
    jobs: usize,
) -> Result<bool> {
    let meta = &plan.meta;
    check_file(src, &meta.file_name, meta.sha256.clone(), meta.bytes).await?;
    let archives: Vec<&FileRecord> = selected
        .iter()
        .flat_map(|f| match plan.chains.get(&f.shard_id) {
            Some(c) => c.archives.iter().collect(),
            None => vec![f],
        })
        .collect();
    let results: Vec<Result<()>> = futures::stream::iter(archives.iter().copied())
        .map(|f| async move {
            match &f.sha256 {
                Some(_) => check_file(src, &f.file_name, None, f.bytes).await,
                None => verify_archive(src, f).await,
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(meta.sha256.is_some() && archives.iter().all(|f| f.sha256.is_some()))
}

/// Influx's type-6 names, refusing the combinations that silently lose data.
pub fn rename_names(opts: &RestoreOptions) -> Result<RenameNames> {
    if opts.new_db.is_some() && opts.db.is_none() {
        return Err(ClientError::NewDbNeedsDb);
    }
    if opts.new_rp.is_some() && opts.rp.is_none() {
        return Err(ClientError::NewRpNeedsRp);
    }
    for n in [&opts.db, &opts.new_db, &opts.rp, &opts.new_rp]
        .into_iter()
        .flatten()
    {
        if n.is_empty() || n.contains(['/', '\\']) || n == "." || n == ".." {
            return Err(ClientError::InvalidName { name: n.clone() });
        }
    }
    Ok(RenameNames {
        db: opts.db.clone().unwrap_or_default(),
        new_db: opts.new_db.clone().unwrap_or_default(),
        rp: opts.rp.clone().unwrap_or_default(),
        new_rp: opts
            .new_rp
            .clone()
            .or_else(|| opts.rp.clone())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> FileRecord {
        FileRecord {
            db: "db2".into(),
            rp: "rp2".into(),
            shard_id: 5,
            file_name: "x.s5.tar.gz".into(),
            size: 0,
            sha256: None,
            bytes: None,
        }
    }

    #[test]
    fn entry_names_are_validated_and_split() {
        let f = rec();
        let reg = tar::EntryType::Regular;
        assert_eq!(
            renamed_rest(&f, "db2/rp2/5/000000001-000000001.tsm", reg).unwrap(),
            Some("000000001-000000001.tsm".into())
        );
        for bad in [
            "/db2/rp2/5/a.tsm",
            "db2/rp2/5/../../x",
            "db2/rp2/5",
            "db2/rp2/6/a.tsm",
            "db2//5/a.tsm",
            "other/rp2/5/a.tsm",
            "db2\\rp2\\5\\a.tsm",
        ] {
            assert!(renamed_rest(&f, bad, reg).is_err(), "{bad} accepted");
        }
        assert!(renamed_rest(&f, "db2/rp2/5/a", tar::EntryType::Symlink).is_err());
        assert_eq!(
            renamed_rest(&f, "db2/rp2/5/", tar::EntryType::Directory).unwrap(),
            None
        );
    }

    #[test]
    fn stacked_shards_say_what_they_were_built_from() {
        let mut c = Stacked {
            shard: 3,
            base: "20261206T020000Z".into(),
            base_whole: true,
            later: 1,
        };
        assert_eq!(
            c.to_string(),
            "shard 3: full 20261206T020000Z + 1 incremental"
        );
        c.later = 2;
        assert_eq!(
            c.to_string(),
            "shard 3: full 20261206T020000Z + 2 incrementals"
        );
        c.base_whole = false;
        assert_eq!(
            c.to_string(),
            "shard 3: 3 archives from 20261206T020000Z on (no full run of it)"
        );
    }

    #[test]
    fn uploads_start_with_the_largest_shard() {
        let shard = |id, size| {
            let mut f = rec();
            f.shard_id = id;
            f.size = size;
            (f, id + 100)
        };
        let mut work = vec![shard(1, 10), shard(2, 5000), shard(3, 10), shard(4, 70)];
        largest_first(&mut work, |f| f.size);
        let order: Vec<u64> = work.iter().map(|(f, _)| f.shard_id).collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[test]
    fn newdb_without_db_is_refused() {
        let o = RestoreOptions {
            new_db: Some("x".into()),
            ..Default::default()
        };
        assert!(rename_names(&o).is_err());
        let o = RestoreOptions {
            new_rp: Some("x".into()),
            ..Default::default()
        };
        assert!(rename_names(&o).is_err());
        let o = RestoreOptions {
            db: Some("db2".into()),
            new_db: Some("db2copy".into()),
            rp: Some("rp2".into()),
            ..Default::default()
        };
        let n = rename_names(&o).unwrap();
        assert_eq!(
            n,
            RenameNames {
                db: "db2".into(),
                new_db: "db2copy".into(),
                rp: "rp2".into(),
                new_rp: "rp2".into()
            }
        );
    }
}
