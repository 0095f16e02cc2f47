//! The phases of a restore after its plan: pick the shards, import the metastore (or take
//! an interrupted run's id map), split the shards by what the server mapped, upload.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;

use super::{
    RestoreOptions, RestoreResume, UploadCtx, chain_size, confirm, largest_first, shards_matching,
    upload,
};
use crate::backup::{Hooks, TransferStats};
use crate::conn::{Client, RenameNames};
use crate::error::{ClientError, Result};
use crate::layout::{FileRecord, RestorePlan, ShardChain};

/// The plan's shards in `--db`/`--rp`/`--shard`; a `--shard` not there is an error listing
/// the ones that are.
pub(super) fn select(plan: &RestorePlan, opts: &RestoreOptions) -> Result<Vec<FileRecord>> {
    let selected: Vec<FileRecord> = plan
        .shards
        .iter()
        .filter(|f| opts.db.as_ref().is_none_or(|d| *d == f.db))
        .filter(|f| opts.rp.as_ref().is_none_or(|r| *r == f.rp))
        .filter(|f| opts.shard.is_none_or(|s| s == f.shard_id))
        .cloned()
        .collect();
    if opts.shard.is_some() && selected.is_empty() {
        return Err(ClientError::ShardNotInBackup {
            shard: opts.shard.unwrap_or_default(),
            db: opts.db.clone(),
            rp: opts.rp.clone(),
            available: shards_matching(&plan.shards, opts),
        });
    }
    Ok(selected)
}

/// The metastore import (guarded when asked), unless an interrupted run of this manifest
/// did it already: then its recorded id map.
pub(super) async fn import(
    client: &Client,
    opts: &RestoreOptions,
    hooks: &Hooks,
    plan: &RestorePlan,
    blob: &[u8],
    names: &RenameNames,
    prior: Option<&RestoreResume>,
) -> Result<Vec<(u64, u64)>> {
    if let Some(r) = prior {
        hooks
            .progress
            .message("metadata already imported by an earlier run; resuming");
        return Ok(r.id_map.clone());
    }
    let guard = opts.guard_import.then_some(opts.pending_import.as_ref());
    crate::reimport::import(client, blob, names, &plan.manifest, guard, hooks).await
}

/// The selected shards split by what the server mapped.
pub(super) struct Parts {
    /// To upload: the backup's file and the shard id on the server.
    pub(super) work: Vec<(FileRecord, u64)>,
    /// Restored by an interrupted run: (backup id, server id).
    pub(super) kept: Vec<(u64, u64)>,
    /// Not imported by the server (skipped, reported).
    pub(super) unmapped: Vec<u64>,
}

/// Splits `selected` by the id map and what an interrupted run finished; plans the progress.
pub(super) fn partition(
    selected: Vec<FileRecord>,
    chains: &BTreeMap<u64, ShardChain>,
    id_map: &[(u64, u64)],
    prior: Option<&RestoreResume>,
    hooks: &Hooks,
) -> Parts {
    let map: HashMap<u64, u64> = id_map.iter().copied().collect();
    let mut parts = Parts {
        work: Vec::new(),
        kept: Vec::new(),
        unmapped: Vec::new(),
    };
    for f in selected {
        match map.get(&f.shard_id) {
            Some(&new_id) if prior.is_some_and(|r| r.done.contains(&f.shard_id)) => {
                TransferStats::add(&hooks.stats.shards_skipped, 1);
                parts.kept.push((f.shard_id, new_id));
            }
            Some(&new_id) => parts.work.push((f, new_id)),
            None => {
                hooks.progress.message(&format!(
                    "shard {} ({}/{}) was not imported by the server; skipped",
                    f.shard_id, f.db, f.rp
                ));
                parts.unmapped.push(f.shard_id);
            }
        }
    }
    hooks.stats.shards_total.store(
        (parts.work.len() + parts.kept.len()) as u64,
        Ordering::Relaxed,
    );
    let total: u64 = parts.work.iter().map(|(f, _)| chain_size(chains, f)).sum();
    hooks.progress.plan(parts.work.len() as u64, Some(total));
    parts
}

/// Uploads `work`, largest first, `jobs` at once. A shard's confirmations run outside the
/// upload slots (the next upload starts meanwhile; up to two per slot wait); it counts only
/// once they passed. The first failure cancels the rest and is returned.
pub(super) async fn upload_all(
    ctx: Arc<UploadCtx>,
    mut work: Vec<(FileRecord, u64)>,
    jobs: usize,
) -> Result<Vec<(u64, u64)>> {
    largest_first(&mut work, |f| chain_size(&ctx.chains, f));
    let planned = work.len();
    let results: Vec<Result<(u64, u64)>> = futures::stream::iter(work)
        .map(|(f, new_id)| {
            let ctx = Arc::clone(&ctx);
            async move {
                let r = upload(&ctx, &f, new_id).await;
                (ctx, f, new_id, r)
            }
        })
        .buffer_unordered(jobs)
        .map(|(ctx, f, new_id, sent)| async move {
            let r = match sent {
                Ok(sent) => confirm(&ctx, &f, new_id, sent).await,
                Err(e) => Err(e),
            };
            if r.is_err() {
                ctx.cancel.cancel();
            }
            r
        })
        .buffer_unordered(jobs.saturating_mul(2))
        .collect()
        .await;
    let mut restored = Vec::with_capacity(planned);
    let mut first_err = None;
    for r in results {
        match r {
            Ok(p) => restored.push(p),
            Err(ClientError::Cancelled) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    if restored.len() != planned {
        return Err(ClientError::Cancelled);
    }
    Ok(restored)
}
