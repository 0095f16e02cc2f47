//! Reader marks: a restore tells `forget` which restore points it reads, so they are not
//! deleted under it. A mark is a small object under `checkpoints/readers/`; a location the
//! restore cannot write to (read-only) gets none and the restore proceeds. Ordering closes the
//! race: the restore writes its mark, then waits out a running `forget` (which holds the
//! destination lock from before it lists the marks until after it deleted), then checks its
//! files; so `forget` either sees the mark or finished before the files were checked.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use snapshotd_checkpoint::{Destination, read_lock};

use super::lease::FORGET_HINT;
use crate::error::{ClientError, Result};
use crate::resume::holder_is_dead_local;

/// Directory of the reader marks.
pub const READERS: &str = "checkpoints/readers";

/// How long a mark protects its points if its restore never removes it (killed).
const MARK_TTL: chrono::Duration = chrono::Duration::hours(24);

/// Largest mark read.
const MAX_MARK: u64 = 1 << 20;

/// The content of a mark.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mark {
    /// Restore point ids read.
    points: Vec<String>,
    /// After this the mark is ignored.
    expires: DateTime<Utc>,
}

/// A registered mark; [`ReaderMark::release`] removes it.
#[derive(Debug)]
pub struct ReaderMark {
    dest: Destination,
    name: String,
}

impl ReaderMark {
    /// Marks `points` of `dest` as read; `None` when the location cannot be written.
    pub async fn register(dest: &Destination, points: Vec<String>) -> Option<Self> {
        let name = format!("{READERS}/{}.json", uuid_like());
        let mark = Mark {
            points,
            expires: Utc::now() + MARK_TTL,
        };
        let body = serde_json::to_vec(&mark).ok()?;
        match dest.store().put(&dest.path(&name), body.into()).await {
            Ok(_) => Some(ReaderMark {
                dest: dest.clone(),
                name,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "no reader mark (read-only location?)");
                None
            }
        }
    }

    /// Removes the mark (and, in a local directory, the directories it left empty).
    pub async fn release(self) {
        if let Err(e) = self.dest.store().delete(&self.dest.path(&self.name)).await {
            tracing::warn!(error = %e, mark = %self.name, "removing the reader mark");
        }
        if let Some(root) = self.dest.local_root() {
            // Fails (harmlessly) when another mark or a checkpoint is still there.
            let _ = std::fs::remove_dir(root.join(READERS));
            let _ = std::fs::remove_dir(root.join("checkpoints"));
        }
    }
}

/// A unique name without a uuid dependency: time and pid.
fn uuid_like() -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{nanos:x}-{}", std::process::id())
}

/// Waits (up to `patience`) until no live `forget` holds `dest`'s lock.
pub async fn wait_for_forget(dest: &Destination, patience: Duration) -> Result<()> {
    let deadline = Instant::now() + patience;
    loop {
        match read_lock(dest).await? {
            Some(h) if h.hint == FORGET_HINT && !holder_is_dead_local(&h) => {
                if Instant::now() > deadline {
                    return Err(ClientError::Checkpoint(
                        snapshotd_checkpoint::Error::Locked {
                            dest: dest.to_string(),
                            holder: Box::new(h),
                        },
                    ));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => return Ok(()),
        }
    }
}

/// Restore point ids named by unexpired marks of `dest`.
pub async fn in_use(dest: &Destination) -> Result<BTreeSet<String>> {
    let prefix = dest.path(READERS);
    let listed = dest
        .store()
        .list_with_delimiter(Some(&prefix))
        .await
        .map_err(|e| ClientError::storage(&prefix, e))?;
    let mut out = BTreeSet::new();
    let now = Utc::now();
    for m in listed.objects.iter().filter(|m| m.size <= MAX_MARK) {
        let Ok(got) = dest.store().get(&m.location).await else {
            continue;
        };
        let Ok(bytes) = got.bytes().await else {
            continue;
        };
        match serde_json::from_slice::<Mark>(&bytes) {
            Ok(mark) if mark.expires > now => out.extend(mark.points),
            _ => {}
        }
    }
    Ok(out)
}
