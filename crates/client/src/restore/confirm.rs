//! Confirmation of an unacknowledged upload: the server still answers and lists the
//! shard, and holds the TSM files it was sent.

use crate::backup::TransferStats;
use crate::error::{ClientError, Result};
use crate::installed::Watcher;
use crate::layout::FileRecord;

use super::upload::{Sent, UploadCtx};

/// Confirms an unacknowledged upload (see [`crate::installed`]), then records the shard
/// as restored.
pub(super) async fn confirm(
    ctx: &UploadCtx,
    f: &FileRecord,
    new_id: u64,
    sent: Sent,
) -> Result<(u64, u64)> {
    if let Some(watcher) = &ctx.watcher {
        let to = Target {
            db: ctx.new_db.clone().unwrap_or_else(|| f.db.clone()),
            rp: ctx.new_rp.clone().unwrap_or_else(|| f.rp.clone()),
        };
        confirm_alive(ctx, f, new_id, &to).await?;
        if !Watcher::same_process(&sent.watch) {
            confirm_installed(ctx, f, new_id, &to, &sent.files).await?;
            watcher.renew(&ctx.client, &sent.watch).await;
        } else {
            confirm_not_empty(ctx, f, new_id, &to, &sent.files).await?;
        }
    }
    TransferStats::add(&ctx.hooks.stats.bytes_transferred, sent.bytes);
    TransferStats::add(&ctx.hooks.stats.shards_done, 1);
    ctx.hooks.progress.unit_done(&f.file_name, sent.bytes);
    ctx.hooks.units.shard_restored(f.shard_id, new_id);
    Ok((f.shard_id, new_id))
}

/// The database and retention policy an upload went to.
struct Target {
    db: String,
    rp: String,
}

impl Target {
    /// `db/rp`, as errors name it.
    fn label(&self) -> String {
        format!("{}/{}", self.db, self.rp)
    }
}

/// The upload of `f` to shard `new_id` of `to` is not installed, because of `detail`.
fn not_installed(f: &FileRecord, new_id: u64, to: &Target, detail: String) -> ClientError {
    ClientError::NotInstalled {
        file: f.file_name.clone(),
        shard: new_id,
        target: to.label(),
        detail,
    }
}

/// Without acknowledgements (influxd) the only sign a shard was stored is the server still
/// answering afterwards and listing it: a server that died mid-restore fails the shard here.
async fn confirm_alive(ctx: &UploadCtx, f: &FileRecord, new_id: u64, to: &Target) -> Result<()> {
    let db = &to.db;
    let unconfirmed = |detail: String| ClientError::UploadUnconfirmed {
        file: f.file_name.clone(),
        shard: new_id,
        target: to.label(),
        detail,
    };
    let shards = match ctx.client.database_info(db).await {
        Ok(shards) => shards,
        Err(e @ (ClientError::Connect { .. } | ClientError::Timeout { .. })) => {
            return Err(unconfirmed(format!(
                "the server stopped answering after it ({e})"
            )));
        }
        // It answered, if not with a listing (a server without type 3 for this database):
        // alive, which is all this check can learn.
        Err(e) => {
            tracing::debug!(error = %e, "shard listing after the upload");
            return Ok(());
        }
    };
    if !shards.iter().any(|s| s.id == new_id) {
        return Err(unconfirmed(format!(
            "the server no longer lists shard {new_id} of database {db:?}"
        )));
    }
    Ok(())
}

/// The same server process read the upload, but its install may still have failed (a cut
/// stream reaches influxd as a clean end; it keeps nothing and closes as on success): a
/// shard that was sent TSM files must hold at least one. Only presence is checked, since
/// influxd may already be compacting (renaming) what it installed.
async fn confirm_not_empty(
    ctx: &UploadCtx,
    f: &FileRecord,
    new_id: u64,
    to: &Target,
    files: &[(String, u64)],
) -> Result<()> {
    if !files.iter().any(|(name, _)| name.ends_with(".tsm")) {
        return Ok(());
    }
    if crate::installed::holds_any_tsm(&ctx.client, &to.db, &to.rp, new_id).await? {
        return Ok(());
    }
    let detail = "the server holds none of its TSM files (it kept nothing of the upload; \
                  its log says why, e.g. \"unexpected EOF\" for a stream cut short)";
    Err(not_installed(f, new_id, to, detail.into()))
}

/// The server process that read the upload may have died while installing it: its files
/// must be listed by the server as they were sent.
async fn confirm_installed(
    ctx: &UploadCtx,
    f: &FileRecord,
    new_id: u64,
    to: &Target,
    files: &[(String, u64)],
) -> Result<()> {
    let have = crate::installed::installed_tsm(&ctx.client, &to.db, &to.rp, new_id).await?;
    match crate::installed::first_missing(files, &have) {
        None => {
            tracing::debug!(file = %f.file_name, shard = new_id, "server restarted; shard files present");
            Ok(())
        }
        Some(missing) => {
            let detail = format!("the server restarted while it installed the upload ({missing})");
            Err(not_installed(f, new_id, to, detail))
        }
    }
}
