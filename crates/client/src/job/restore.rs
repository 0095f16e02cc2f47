//! `restore` as a job. Its checkpoint lives under the *target's* identity (a directory the
//! caller names, e.g. in the user's state directory), never inside the backup it reads, so a
//! read-only source works. A failed attempt that sent nothing leaves nothing behind; a
//! partial restore is continued by the same command, and other settings get a clear choice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use snapshotd_checkpoint::{
    Checkpoint, CheckpointOptions, Destination, Error as CpError, MasterKey,
};

use super::JobOptions;
use super::lease::{discard_checkpoint, lock_options, open_checkpoint};
use super::readers::{ReaderMark, wait_for_forget};
use crate::backup::Hooks;
use crate::conn::Client;
use crate::error::{ClientError, Result};
use crate::progress::{UnitDone, UnitSink};
use crate::restore::{RestoreOptions, RestoreSummary, restore};
use crate::resume::{
    RESTORE_INTENT_KEY, RESTORE_META_KEY, RestoreSink, prior_import_intent, prior_restore,
    restore_config,
};
use crate::storage::Storage;

/// Where a restore keeps its checkpoint and how it reads its source.
#[derive(Debug, Clone, Default)]
pub struct RestoreJob {
    /// Checkpoint location of this target (`None`: no resume, nothing written).
    pub checkpoint: Option<Destination>,
    /// The target as shown to users (server and database).
    pub target: String,
    /// Key of an encrypted backup: the source is decrypted (every file authenticated) into
    /// a temporary directory first.
    pub key: Option<MasterKey>,
    /// Test hook: behave as if killed right after the metastore import, before its result is
    /// recorded (the result is dropped and the run stops; its checkpoint stays).
    #[doc(hidden)]
    pub stop_after_import: bool,
}

/// Restores `src` into the server behind `client`. The points it reads are marked so that
/// `forget` leaves them alone (see [`super::readers`]).
pub async fn run(
    client: &Client,
    src: &Destination,
    opts: RestoreOptions,
    job: &JobOptions,
    rjob: &RestoreJob,
    hooks: &Hooks,
) -> Result<RestoreSummary> {
    crate::restore::rename_names(&opts)?;
    // `--no-resume` writes nothing anywhere, not even a mark.
    let ids = match job.resume {
        true => points_read(src, opts.at.as_deref()).await,
        false => None,
    };
    let mark = match ids {
        Some(ids) => ReaderMark::register(src, ids).await,
        None => None,
    };
    if mark.is_some() {
        wait_for_forget(src, Duration::from_secs(600)).await?;
    }
    let result = run_marked(client, src, opts, job, rjob, hooks).await;
    if let Some(m) = mark {
        m.release().await;
    }
    result
}

/// The complete points a restore of `at` may read: the chosen one and every older one (an
/// incremental point takes shards from the points before it).
async fn points_read(src: &Destination, at: Option<&str>) -> Option<Vec<String>> {
    let storage = Storage::from_store(src.rooted_store(), src.to_string());
    let points = crate::points::list_points(&storage).await.ok()?;
    let chosen = crate::points::select(&points, at).ok()?.time;
    Some(
        points
            .iter()
            .filter(|p| p.complete && p.time <= chosen)
            .map(|p| p.id.clone())
            .collect(),
    )
}

async fn run_marked(
    client: &Client,
    src: &Destination,
    mut opts: RestoreOptions,
    job: &JobOptions,
    rjob: &RestoreJob,
    hooks: &Hooks,
) -> Result<RestoreSummary> {
    let _plain_copy;
    let storage = match &rjob.key {
        None => Storage::from_store(src.rooted_store(), src.to_string()),
        Some(k) => {
            let dir = tempfile_dir()?;
            hooks.progress.message("decrypting the backup");
            snapshotd_checkpoint::decrypt_destination(k, src, dir.path()).await?;
            let s = Storage::local(dir.path(), false)?;
            _plain_copy = dir;
            s
        }
    };
    let Some(cp_dest) = rjob.checkpoint.as_ref().filter(|_| job.resume) else {
        return restore(client, &storage, &opts, hooks).await;
    };
    let plan = crate::layout::restore_plan_at(&storage, opts.at.as_deref()).await?;
    let cp_opts = CheckpointOptions {
        config: restore_config(&opts, &plan.manifest),
        lock: lock_options(job.lock_ttl, "snapshotd restore"),
        max_buffered: 1,
        ..Default::default()
    };
    let cp = open_restore_checkpoint(cp_dest, cp_opts, job, &rjob.target).await?;
    opts.resume = prior_restore(&cp);
    opts.guard_import = true;
    opts.pending_import = match opts.resume {
        None => prior_import_intent(&cp),
        Some(_) => None,
    };
    if let Some(r) = &opts.resume {
        hooks.progress.message(&format!(
            "resuming the restore of {}: metastore imported, {} shard(s) already uploaded",
            r.manifest,
            r.done.len()
        ));
    }
    let cp = Arc::new(cp);
    let sink = Arc::new(Tracked {
        inner: RestoreSink::new(Arc::clone(&cp), hooks.cancel.clone()),
        sent: AtomicBool::new(opts.resume.is_some()),
        intent: AtomicBool::new(opts.pending_import.is_some()),
        stop_after_import: rjob.stop_after_import.then(|| hooks.cancel.clone()),
    });
    let mut run_hooks = hooks.clone();
    run_hooks.units = sink.clone();
    let result = restore(client, &storage, &opts, &run_hooks).await;
    drop(run_hooks);
    let sent = sink.sent.load(Ordering::Relaxed);
    let intent = sink.intent.load(Ordering::Relaxed);
    drop(sink);
    let cp = Arc::try_unwrap(cp).map_err(|_| ClientError::CheckpointInUse)?;
    match result {
        Ok(s) => {
            cp.health()?;
            cp.finish_and_remove().await?;
            remove_local(cp_dest);
            Ok(s)
        }
        Err(e) if !sent && (!intent || matches!(e, ClientError::NothingImported)) => {
            // Nothing reached the server (an import it refused changed nothing): leave
            // nothing behind, so any corrected command starts afresh.
            if cp.finish_and_remove().await.is_ok() {
                remove_local(cp_dest);
            }
            Err(e)
        }
        Err(e) => {
            if let Err(f) = cp.finish().await {
                tracing::warn!("checkpoint: {f}");
            }
            Err(e)
        }
    }
}

/// Opens the target's checkpoint. A record with other settings is discarded when nothing
/// had reached the server (or with `--restart`); otherwise the user must choose.
async fn open_restore_checkpoint(
    dest: &Destination,
    opts: CheckpointOptions,
    job: &JobOptions,
    target: &str,
) -> Result<Checkpoint> {
    match open_checkpoint(dest, opts.clone()).await {
        Err(ClientError::Checkpoint(CpError::ConfigMismatch { differences, .. })) => {
            let prior = snapshotd_checkpoint::inspect(dest, None).await?;
            let imported = [RESTORE_META_KEY, RESTORE_INTENT_KEY]
                .iter()
                .any(|k| prior.get(k).is_some());
            if imported && !job.restart {
                return Err(ClientError::RestoreSettingsChanged {
                    target: target.to_string(),
                    differences: differences.join("; "),
                });
            }
            discard_checkpoint(dest, opts.lock.clone()).await?;
            open_checkpoint(dest, opts).await
        }
        Ok(cp)
            if job.restart
                && [RESTORE_META_KEY, RESTORE_INTENT_KEY]
                    .iter()
                    .any(|k| cp.resume().get(k).is_some()) =>
        {
            cp.finish_and_remove().await?;
            open_checkpoint(dest, opts).await
        }
        r => r,
    }
}

/// A private temporary directory for a decrypted copy.
fn tempfile_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("snapshotd-restore-")
        .tempdir()
        .map_err(|e| ClientError::io("create a temporary directory for the decrypted copy", e))
}

/// Removes a local checkpoint directory that holds nothing any more.
fn remove_local(dest: &Destination) {
    if let Some(root) = dest.local_root()
        && let Err(e) = std::fs::remove_dir_all(root)
    {
        tracing::debug!(error = %e, dir = %root.display(), "removing the restore checkpoint");
    }
}

/// A [`RestoreSink`] that also notes whether anything reached the server (or may have:
/// an import whose intent was recorded).
struct Tracked {
    inner: RestoreSink,
    sent: AtomicBool,
    intent: AtomicBool,
    /// The test hook: drop the import's result and stop the run through this token.
    stop_after_import: Option<tokio_util::sync::CancellationToken>,
}

impl UnitSink for Tracked {
    fn unit_done(&self, unit: &UnitDone) {
        self.inner.unit_done(unit);
    }

    fn import_intent(
        &self,
        intent: &crate::reimport::ImportIntent,
    ) -> futures::future::BoxFuture<'_, Result<()>> {
        self.intent.store(true, Ordering::Relaxed);
        self.inner.import_intent(intent)
    }

    fn meta_imported(&self, manifest: &str, id_map: &[(u64, u64)]) {
        if let Some(stop) = &self.stop_after_import {
            stop.cancel();
            return;
        }
        self.sent.store(true, Ordering::Relaxed);
        self.inner.meta_imported(manifest, id_map);
    }

    fn shard_restored(&self, source: u64, target: u64) {
        self.inner.shard_restored(source, target);
    }
}
