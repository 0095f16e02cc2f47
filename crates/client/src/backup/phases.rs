//! The phases of a backup run after the listing: claim the restore point's name with the
//! meta file, keep what an interrupted run finished, fetch the rest, publish the manifest.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use snapshotd_checkpoint::{encrypt_bytes, encrypted_name};

use super::{BackupOptions, Hooks, ShardCtx, TransferStats, fetch_with_retry, gate, still_stored};
use crate::conn::{Client, ShardPath};
use crate::error::{ClientError, Result};
use crate::hashio::sha256_hex;
use crate::layout::{self, FileRecord, ManifestDraft, MetaRecord};
use crate::limiter::RateLimiter;
use crate::progress::UnitDone;
use crate::proto;
use crate::storage::Storage;

/// How many following seconds a run tries when its start second's name is taken.
const MAX_TS_BUMPS: u32 = 600;

/// The restore point's name, claimed by writing its meta file.
pub(super) struct Claim {
    /// The run's start (names the files).
    pub(super) started: DateTime<Utc>,
    /// `started` as the `TS` of the file names.
    pub(super) ts: String,
    /// The meta file as stored.
    pub(super) meta: UnitDone,
}

/// Writes the `.meta` file before any shard, like influx. It claims the `TS` name: a run
/// started in the same second as an earlier one into the same place takes the next free
/// second, so names stay unique and ordered by start. A resumed run refreshes its own.
pub(super) async fn claim_meta(
    dest: &Storage,
    opts: &BackupOptions,
    hooks: &Hooks,
    blob: &Bytes,
) -> Result<Claim> {
    let meta_file = Bytes::from(proto::encode_portable_meta(blob));
    let stored = |name: &str| -> Result<(String, Bytes)> {
        match &opts.key {
            None => Ok((name.to_string(), meta_file.clone())),
            Some(k) => {
                let enc = encrypt_bytes(k, name, &meta_file)
                    .map_err(|e| ClientError::io(format!("encrypt {name}"), e.into_io()))?;
                Ok((encrypted_name(name), Bytes::from(enc)))
            }
        }
    };
    gate(hooks, "the meta file").await?;
    let mut started = opts.started.unwrap_or_else(Utc::now);
    let mut claimed = None;
    if let Some(r) = &opts.resume {
        started = r.started;
        let name = layout::meta_name(&layout::timestamp(started));
        let (key, data) = stored(&name)?;
        dest.put(&key, data).await?;
        claimed = Some(name);
    }
    for _ in 0..MAX_TS_BUMPS {
        if claimed.is_some() {
            break;
        }
        let name = layout::meta_name(&layout::timestamp(started));
        let (key, data) = stored(&name)?;
        match dest.put_new(&key, data).await {
            Ok(()) => claimed = Some(name),
            Err(ClientError::Storage {
                source: object_store::Error::AlreadyExists { .. },
                ..
            }) => started += chrono::Duration::seconds(1),
            Err(e) => return Err(e),
        }
    }
    let name = claimed.ok_or_else(|| ClientError::BackupNamesTaken {
        dest: dest.display().to_string(),
        tries: MAX_TS_BUMPS,
    })?;
    let meta = UnitDone {
        key: name,
        shard_id: None,
        sha256: sha256_hex(&meta_file),
        bytes: meta_file.len() as u64,
        manifest_size: blob.len() as u64,
    };
    TransferStats::add(&hooks.stats.bytes_written, meta.bytes);
    hooks.units.unit_done(&meta);
    Ok(Claim {
        started,
        ts: layout::timestamp(started),
        meta,
    })
}

/// Shards an interrupted run finished (same name, still stored with the recorded size and
/// sha256) are kept as they are.
pub(super) async fn kept_shards(
    dest: &Storage,
    opts: &BackupOptions,
    hooks: &Hooks,
    ts: &str,
    shards: &[ShardPath],
) -> Result<BTreeMap<u64, UnitDone>> {
    let mut kept = BTreeMap::new();
    let Some(r) = &opts.resume else {
        return Ok(kept);
    };
    for shard in shards {
        let Some(done) = r.skip_shards.get(&shard.id) else {
            continue;
        };
        if done.key != layout::shard_name(ts, shard.id) {
            continue;
        }
        if still_stored(dest, opts.key.as_ref(), done).await? {
            TransferStats::add(&hooks.stats.shards_skipped, 1);
            hooks.progress.unit_done(&done.key, done.manifest_size);
            kept.insert(shard.id, done.clone());
        } else {
            tracing::warn!(file = %done.key, "recorded shard file is missing or does not match its recorded size and sha256; downloading it again");
        }
    }
    Ok(kept)
}

/// Fetches the shards not kept, `jobs` at once, each streamed through gzip + sha256 into
/// its final name; the first failure cancels the others and is returned.
pub(super) async fn fetch_shards(
    client: &Client,
    dest: &Storage,
    opts: &BackupOptions,
    hooks: &Hooks,
    ts: &str,
    shards: &[ShardPath],
    kept: BTreeMap<u64, UnitDone>,
) -> Result<Vec<UnitDone>> {
    let ctx = Arc::new(ShardCtx {
        client: client.clone(),
        dest: dest.clone(),
        ts: ts.to_string(),
        window: opts.window,
        level: opts.gzip_level.min(9),
        compression: opts.compression,
        retry: opts.retry,
        limiter: opts.rate_limit.map(|r| Arc::new(RateLimiter::new(r))),
        hooks: hooks.clone(),
        cancel: hooks.cancel.clone(),
        key: opts.key.clone(),
    });
    let mut results: Vec<(usize, Result<UnitDone>)> =
        futures::stream::iter(shards.iter().cloned().enumerate())
            .map(|(i, shard)| {
                let ctx = Arc::clone(&ctx);
                let keep = kept.get(&shard.id).cloned();
                async move {
                    if let Some(unit) = keep {
                        return (i, Ok(unit));
                    }
                    let r = fetch_with_retry(&ctx, &shard).await;
                    if r.is_err() {
                        ctx.cancel.cancel();
                    }
                    (i, r)
                }
            })
            .buffer_unordered(opts.jobs.max(1))
            .collect()
            .await;
    results.sort_by_key(|(i, _)| *i);
    let mut units = Vec::with_capacity(results.len());
    for (_, r) in results {
        match r {
            Ok(u) => units.push(u),
            Err(ClientError::Cancelled) => {}
            Err(e) => return Err(e),
        }
    }
    if units.len() != shards.len() {
        return Err(ClientError::Cancelled);
    }
    Ok(units)
}

/// Writes the manifest, atomically and last, unless the run was stopped meanwhile (e.g.
/// its lease was lost): then nothing may claim the backup is complete. Returns its name.
pub(super) async fn publish_manifest(
    dest: &Storage,
    opts: &BackupOptions,
    hooks: &Hooks,
    claim: &Claim,
    shards: &[ShardPath],
    units: &[UnitDone],
) -> Result<String> {
    if hooks.cancel.is_cancelled() {
        return Err(ClientError::Cancelled);
    }
    gate(hooks, "the manifest").await?;
    let draft = ManifestDraft {
        meta: MetaRecord {
            file_name: claim.meta.key.clone(),
            size: claim.meta.manifest_size,
            sha256: Some(claim.meta.sha256.clone()),
            bytes: Some(claim.meta.bytes),
        },
        files: shards
            .iter()
            .zip(units)
            .map(|(s, u)| FileRecord {
                db: s.db.clone(),
                rp: s.rp.clone(),
                shard_id: s.id,
                file_name: u.key.clone(),
                size: u.manifest_size,
                sha256: Some(u.sha256.clone()),
                bytes: Some(u.bytes),
            })
            .collect(),
        window: opts.window,
        request: layout::Selection {
            db: opts.db.clone(),
            rp: opts.rp.clone(),
            shard: opts.shard,
        },
        started: claim.started,
    };
    let name = layout::manifest_name(&claim.ts);
    let manifest =
        proto::encode_manifest(&draft).map_err(|e| ClientError::protocol("manifest", e))?;
    let len = manifest.len() as u64;
    dest.put_new(&name, Bytes::from(manifest)).await?;
    TransferStats::add(&hooks.stats.bytes_written, len);
    Ok(name)
}
