//! The fast path of a merge job: upload a shard whole when that is safe (rules and
//! influxd's behaviour in `import.rs`).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::{ShardJob, gzip};
use crate::error::{InfluxApiError, Result};
use crate::import;
use crate::shard::label;
use crate::source::BackupShard;

impl ShardJob {
    /// The fast path: the target must have no shard for the range yet; one of the backup's
    /// points is written to create it; it must have exactly the backup shard's range, be
    /// listed alike by the HTTP API and the snapshotter at `addr` (same server), and hold
    /// nothing but that point; then the shard's files are uploaded into it and its count
    /// checked. `Ok(Err(why))`: not uploaded, to be written point by point.
    pub(super) async fn try_import(
        &self,
        s: &BackupShard,
        addr: &str,
        (start, end): (i64, i64),
    ) -> Result<std::result::Result<(), String>> {
        let (db, rp) = (self.opts.target_db().to_string(), s.policy.clone());
        let before = import::target_shards(&self.http, &db, &rp).await?;
        if before.iter().any(|(_, st, en)| *st < end && *en > start) {
            return Ok(Err(
                "the target already has a shard for its time range".into()
            ));
        }
        let (sh, tmp) = (s.clone(), self.opts.tmp_dir.clone());
        let seed = tokio::task::spawn_blocking(move || import::seed_line(&sh, &tmp))
            .await
            .map_err(|source| InfluxApiError::Worker {
                task: format!("{}: seed", label(s)),
                source,
            })??;
        if let Some(why) = seed.not_uploadable {
            return Ok(Err(why));
        }
        let Some(line) = seed.line else {
            return Ok(Ok(()));
        };
        let what = format!("write {} into {db}", label(s));
        self.write_retrying(&rp, gzip(&line)?.into(), &what).await?;
        let after = import::target_shards(&self.http, &db, &rp).await?;
        let Some(id) = import::exact_shard(&after, start, end) else {
            return Ok(Err(
                "the target's shard group for its range has another duration".into(),
            ));
        };
        if let Err(why) = same_server(&self.http, addr, &db, &rp, &after).await? {
            return Ok(Err(why));
        }
        let now = import::values_in_range(&self.http, &db, &rp, start, end).await?;
        if now != seed.line_values {
            return Ok(Err(format!(
                "others are writing into its time range on the target ({now} value(s) there)"
            )));
        }
        if let Some(h) = &self.opts.before_upload {
            (h.0)(&db, &rp, id);
        }
        let (sh, a, d, r) = (s.clone(), addr.to_string(), db.clone(), rp.clone());
        tokio::task::spawn_blocking(move || import::upload_shard(&sh, &a, &d, &r, id))
            .await
            .map_err(|source| InfluxApiError::Worker {
                task: format!("{}: upload", label(s)),
                source,
            })??;
        let got = import::values_in_range(&self.http, &db, &rp, start, end).await?;
        if got < seed.values {
            return Err(InfluxApiError::Server {
                what: format!("upload {} into {db} (target shard {id})", label(s)),
                status: 200,
                message: format!(
                    "after the upload the target holds {got} value(s) in the shard's time range, \
                     the backup {}: the target did not load the shard (see its log); a re-run \
                     writes this shard point by point",
                    seed.values
                ),
            });
        }
        self.uploaded.fetch_add(seed.values, Ordering::Relaxed);
        Ok(Ok(()))
    }
}

/// `Err(why)` unless the snapshotter at `addr` is the server `http` talks to: its list of
/// the shards of `db`/`rp`, taken between two HTTP listings (`before`, then a new one), must
/// hold every shard of the first and none missing from the second (other jobs may create
/// shards meanwhile).
async fn same_server(
    http: &crate::http::InfluxHttp,
    addr: &str,
    db: &str,
    rp: &str,
    before: &[(u64, i64, i64)],
) -> Result<std::result::Result<(), String>> {
    let (a, d, r) = (addr.to_string(), db.to_string(), rp.to_string());
    let listed = tokio::task::spawn_blocking(move || import::snapshotter_shards(&a, &d, &r))
        .await
        .map_err(|source| InfluxApiError::Worker {
            task: format!("ask {addr} for shards"),
            source,
        })?;
    let snap: BTreeSet<u64> = match listed {
        Ok(ids) => ids.into_iter().collect(),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let after = import::target_shards(http, db, rp).await?;
    let ids = |v: &[(u64, i64, i64)]| v.iter().map(|(id, _, _)| *id).collect::<BTreeSet<u64>>();
    let (first, second) = (ids(before), ids(&after));
    if first.is_subset(&snap) && snap.is_subset(&second) {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "the snapshotter at {addr} lists shards {snap:?} of {db}/{rp}, the HTTP API \
             {first:?}: not the same server"
        )))
    }
}
