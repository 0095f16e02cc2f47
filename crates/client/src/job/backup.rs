//! `backup` as a job: every run makes a new restore point in the destination; only an
//! interrupted run (same settings, its holder gone) is continued, never a completed one.

use std::sync::Arc;
use std::time::Duration;

use snapshotd_checkpoint::{Checkpoint, CheckpointOptions, Destination, Error as CpError};

use super::JobOptions;
use super::lease::{discard_checkpoint, lock_options, open_checkpoint};
use crate::backup::{BackupOptions, BackupSummary, Hooks, backup};
use crate::conn::Client;
use crate::error::{ClientError, Result};
use crate::resume::{CheckpointSink, LeaseGate, Prior, backup_config, prior_run, record_complete};
use crate::storage::Storage;

/// How a backup job ended well.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    /// What was written; `summary.timestamp` is the restore point's id.
    pub summary: BackupSummary,
    /// Whether this run continued an interrupted one (same id, finished shards kept).
    pub resumed: bool,
}

/// Backs up into `dest` under its checkpoint (see the module docs).
pub async fn run(
    client: &Client,
    dest: &Destination,
    mut opts: BackupOptions,
    job: &JobOptions,
    hooks: &Hooks,
) -> Result<BackupOutcome> {
    crate::backup::validate(&opts)?;
    let storage = Storage::from_store(dest.rooted_store(), dest.to_string());
    if opts.key.is_none() && holds_encrypted_points(&storage).await? {
        return Err(ClientError::EncryptedDestination {
            dest: dest.to_string(),
        });
    }
    if !job.resume {
        let summary = backup(client, &storage, &opts, hooks).await?;
        return Ok(BackupOutcome {
            summary,
            resumed: false,
        });
    }
    let cp = open_for_run(dest, &storage, &mut opts, job).await?;
    let resumed = opts.resume.is_some();
    let summary = under_checkpoint(client, &storage, &opts, hooks, cp).await?;
    Ok(BackupOutcome { summary, resumed })
}

/// Whether any restore point file in `storage` is encrypted (a forgotten key in a cron line
/// must not start writing plain points beside encrypted ones).
async fn holds_encrypted_points(storage: &Storage) -> Result<bool> {
    Ok(storage.list().await?.iter().any(|e| {
        crate::points::point_of(&e.name).is_some()
            && e.name.ends_with(snapshotd_checkpoint::ENC_SUFFIX)
    }))
}

/// Opens the checkpoint and decides between a new point and continuing an interrupted one
/// (sets `opts.resume`). Records of a completed run are cleared first.
async fn open_for_run(
    dest: &Destination,
    storage: &Storage,
    opts: &mut BackupOptions,
    job: &JobOptions,
) -> Result<Checkpoint> {
    let cp_opts = CheckpointOptions {
        config: backup_config(opts),
        key: opts.key.clone(),
        lock: lock_options(job.lock_ttl, "snapshotd backup"),
        // Every finished shard is flushed at once, so a crash redoes at most the shards
        // in flight.
        max_buffered: 1,
        ..Default::default()
    };
    for _ in 0..3 {
        let cp = match open_checkpoint(dest, cp_opts.clone()).await {
            Err(ClientError::Checkpoint(CpError::ConfigMismatch { differences, .. })) => {
                if !job.restart && wrote_files(dest, opts).await? {
                    return Err(ClientError::InterruptedWithOtherSettings {
                        dest: dest.to_string(),
                        differences: differences.join("; "),
                    });
                }
                discard_checkpoint(dest, cp_opts.lock.clone()).await?;
                continue;
            }
            r => r?,
        };
        for r in &cp.resume().rejected {
            tracing::warn!("ignored checkpoint object: {r:?}");
        }
        match prior_run(&cp) {
            Prior::Fresh => return Ok(cp),
            Prior::Complete(_) => {}
            Prior::Interrupted(r) => {
                let ts = crate::layout::timestamp(r.started);
                let manifest = crate::layout::manifest_name(&ts);
                // A run that wrote its manifest but was stopped before recording so is
                // complete too.
                if storage.size(&manifest).await?.is_none() && !job.restart {
                    tracing::info!(
                        "resuming the interrupted backup {ts}: {} shard(s) recorded as done",
                        r.skip_shards.len()
                    );
                    opts.resume = Some(r);
                    return Ok(cp);
                }
                if job.restart {
                    tracing::info!("--restart: leaving {ts} as a partial restore point");
                }
            }
        }
        // The earlier run is over: clear its records and start a new restore point.
        cp.finish_and_remove().await?;
    }
    Err(ClientError::CheckpointUnstable {
        dest: dest.to_string(),
    })
}

/// Whether the run recorded in `dest`'s checkpoint wrote any file (a run that failed before
/// its `.meta`, e.g. on a database typo, left nothing worth a choice).
async fn wrote_files(dest: &Destination, opts: &BackupOptions) -> Result<bool> {
    let prior = snapshotd_checkpoint::inspect(dest, opts.key.as_ref()).await?;
    Ok(!prior.records.is_empty() || !prior.rejected.is_empty())
}

/// Runs the backup recording every finished file; stops as soon as the lease is lost. A
/// finished run clears its records, so the next run makes a new restore point.
async fn under_checkpoint(
    client: &Client,
    storage: &Storage,
    opts: &BackupOptions,
    hooks: &Hooks,
    cp: Checkpoint,
) -> Result<BackupSummary> {
    let cp = Arc::new(cp);
    let mut run_hooks = hooks.clone();
    run_hooks.units = Arc::new(CheckpointSink::new(Arc::clone(&cp), hooks.cancel.clone()));
    run_hooks.gate = Arc::new(LeaseGate(Arc::clone(&cp)));
    let watch = watch_lease(&cp, hooks);
    let result = backup(client, storage, opts, &run_hooks).await;
    drop(run_hooks);
    watch.abort();
    let _ = watch.await;
    let cp = Arc::try_unwrap(cp).map_err(|_| ClientError::CheckpointInUse)?;
    let health = cp.health();
    match result {
        Ok(s) => {
            health?;
            record_complete(&cp, &s.manifest)?;
            cp.finish_and_remove().await?;
            Ok(s)
        }
        Err(e) => {
            let finished = cp.finish().await;
            // A lost lease explains a cancelled run better than "cancelled".
            if let Err(lost) = health {
                tracing::debug!(error = %e, "run stopped after losing the lease");
                return Err(ClientError::LeaseLost(lost));
            }
            if let Err(f) = finished {
                tracing::warn!("checkpoint: {f}");
            }
            Err(e)
        }
    }
}

/// Stops the run (through `hooks.cancel`) when the checkpoint's lease is lost.
fn watch_lease(cp: &Arc<Checkpoint>, hooks: &Hooks) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(cp);
    let cancel = hooks.cancel.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Some(cp) = weak.upgrade() else { return };
            if let Err(e) = cp.health() {
                tracing::error!("stopping: {e}");
                cancel.cancel();
                return;
            }
        }
    })
}
