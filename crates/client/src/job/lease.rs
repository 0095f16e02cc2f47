//! Taking a destination's lock the way every job does: the lock of a killed process on this
//! host is removed at once, a short `forget` is waited for, and a checkpoint of an abandoned
//! run can be discarded under the lock.

use std::future::Future;
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use snapshotd_checkpoint::{
    Checkpoint, CheckpointOptions, Destination, Error as CpError, LockGuard, LockInfo, LockOptions,
    layout, unlock_owner,
};

use crate::error::{ClientError, Result};
use crate::resume::holder_is_dead_local;

/// The lock hint of `snapshotd forget`; other jobs wait for such a holder instead of failing.
pub const FORGET_HINT: &str = "snapshotd forget";

/// How long a job waits for a `forget` holding the lock.
const FORGET_WAIT: Duration = Duration::from_secs(120);

/// Lock options with a lease and a hint naming the holder.
pub fn lock_options(ttl: Duration, hint: &str) -> LockOptions {
    LockOptions {
        ttl,
        hint: hint.into(),
        ..Default::default()
    }
}

/// Runs `take` (an acquisition of `dest`'s lock) until it succeeds or fails for good: the
/// lock of a process of this host that no longer exists is removed, and a live holder is
/// waited for while `wait(holder)` allows it (and for at most `patience`).
pub async fn with_lock<T, F, Fut>(
    dest: &Destination,
    patience: Duration,
    wait: impl Fn(&LockInfo) -> bool,
    mut take: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = snapshotd_checkpoint::Result<T>>,
{
    let deadline = Instant::now() + patience;
    loop {
        match take().await {
            Err(CpError::Locked { holder, .. }) if holder_is_dead_local(&holder) => {
                tracing::warn!("removing the lock of a process that no longer exists: {holder}");
                unlock_owner(dest, &holder.owner).await?;
            }
            Err(CpError::Locked { holder, .. }) if wait(&holder) && Instant::now() < deadline => {
                tracing::info!("waiting for the lock holder to finish: {holder}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            r => return Ok(r?),
        }
    }
}

/// Opens the checkpoint of `dest` (see [`with_lock`]; a running `forget` is waited for).
pub async fn open_checkpoint(dest: &Destination, opts: CheckpointOptions) -> Result<Checkpoint> {
    with_lock(
        dest,
        FORGET_WAIT,
        |h| h.hint == FORGET_HINT,
        || Checkpoint::open(dest, opts.clone()),
    )
    .await
}

/// The highest fencing epoch recorded under `dest`.
async fn max_fence(dest: &Destination) -> Result<u64> {
    let prefix = dest.path(layout::FENCES);
    let listed = dest
        .store()
        .list_with_delimiter(Some(&prefix))
        .await
        .map_err(|e| ClientError::storage(&prefix, e))?;
    Ok(listed
        .objects
        .iter()
        .filter_map(|m| layout::parse_fence(m.location.filename()?))
        .max()
        .unwrap_or(0))
}

/// Forgets the checkpoint of an abandoned run under the lock: its records and settings are
/// deleted (the fences stay, so epochs keep growing); the files it wrote are left alone.
pub async fn discard_checkpoint(dest: &Destination, lock: LockOptions) -> Result<()> {
    let min_epoch = max_fence(dest).await? + 1;
    let guard = with_lock(
        dest,
        FORGET_WAIT,
        |h| h.hint == FORGET_HINT,
        || LockGuard::acquire(dest, lock.clone(), min_epoch),
    )
    .await?;
    let data = dest.path(layout::DATA);
    let listed = dest
        .store()
        .list_with_delimiter(Some(&data))
        .await
        .map_err(|e| ClientError::storage(&data, e))?;
    let names = listed.objects.into_iter().map(|m| m.location);
    for p in names.chain(std::iter::once(dest.path(layout::META))) {
        match dest.store().delete(&p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(ClientError::storage(&p, e)),
        }
    }
    guard.release().await?;
    Ok(())
}
