//! Walking a destination's checkpoint objects: meta, fences, record files.

use std::collections::{BTreeMap, HashSet};

use futures::{StreamExt, TryStreamExt};

/// Record files fetched at once during a resume.
const PARALLEL_READS: usize = 16;
use object_store::PutMode;

use crate::error::{Error, Result};
use crate::fetch::get_bounded;
use crate::layout;
use crate::record::{
    DataBody, FORMAT, FenceBody, MAX_DATA_BYTES, MAX_FENCE_BYTES, MAX_META_BYTES, MetaBody,
    UnitRecord,
};
use snapshotd_dest::Destination;
use snapshotd_sealed::MasterKey;
use snapshotd_sealed::{seal, unseal};

/// Why a checkpoint object was not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// Written by a holder after a newer holder fenced it out (or never covered by a fence).
    Fenced {
        /// Epoch in the file's name.
        epoch: u64,
        /// Epoch of the fence that excludes it.
        fence_epoch: u64,
    },
    /// Checksum, authentication tag or decoding failed.
    Corrupt(String),
    /// Intact but not this job's / not this name's (moved, swapped or foreign file).
    Misplaced(String),
    /// A name that is not a checkpoint object name.
    BadName,
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::Fenced { epoch, fence_epoch } => write!(
                f,
                "fenced: written at epoch {epoch}, not covered by the fence of epoch {fence_epoch}"
            ),
            RejectReason::Corrupt(r) => write!(f, "corrupt: {r}"),
            RejectReason::Misplaced(r) => write!(f, "misplaced: {r}"),
            RejectReason::BadName => write!(f, "unexpected object name"),
        }
    }
}

/// A checkpoint object that was ignored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Name relative to the destination prefix.
    pub name: String,
    /// Why.
    pub reason: RejectReason,
}

impl Rejected {
    /// True for integrity failures (tampering / corruption), false for fencing.
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self.reason,
            RejectReason::Corrupt(_) | RejectReason::Misplaced(_)
        )
    }
}

/// What earlier runs left behind.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Job id of the checkpoint (`None` when none existed).
    pub job_id: Option<String>,
    /// Every trusted finished unit, by key (a later epoch/seq wins for a repeated key).
    pub records: BTreeMap<String, UnitRecord>,
    /// Record files merged.
    pub files_read: usize,
    /// Objects ignored, with reasons.
    pub rejected: Vec<Rejected>,
    /// Highest epoch seen in any fence name.
    pub max_epoch: u64,
    /// Names (last component) of the record files merged.
    pub merged: Vec<String>,
}

impl Resume {
    /// The record of `key` if that unit finished in an earlier run.
    pub fn get(&self, key: &str) -> Option<&UnitRecord> {
        self.records.get(key)
    }
}

/// Names (last component) of the objects directly under `dir`.
pub(crate) async fn list_names(dest: &Destination, dir: &str) -> Result<Vec<String>> {
    let prefix = dest.path(dir);
    let metas: Vec<object_store::ObjectMeta> = dest
        .store()
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::storage("list", &prefix, e))?;
    let mut out: Vec<String> = metas
        .iter()
        .filter_map(|m| m.location.filename().map(str::to_string))
        .collect();
    out.sort();
    Ok(out)
}

/// Reads and verifies the meta object (`None` when absent). A damaged meta is an error:
/// without it nothing can be trusted.
pub(crate) async fn read_meta(dest: &Destination) -> Result<Option<MetaBody>> {
    let path = dest.path(layout::META);
    let Some(data) = get_bounded(dest.store().as_ref(), &path, MAX_META_BYTES).await? else {
        return Ok(None);
    };
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_string(),
        reason,
    };
    let body =
        unseal(None, layout::META, &data, MAX_META_BYTES).map_err(|e| corrupt(e.to_string()))?;
    let meta: MetaBody =
        serde_json::from_slice(&body).map_err(|e| corrupt(format!("undecodable: {e}")))?;
    if meta.kind != "meta" || meta.format != FORMAT {
        return Err(corrupt(format!(
            "kind {:?} format {} (expected meta, {FORMAT})",
            meta.kind, meta.format
        )));
    }
    if meta.config.hash() != meta.config_hash {
        return Err(corrupt(
            "config hash does not match the stored settings".into(),
        ));
    }
    Ok(Some(meta))
}

/// Creates the meta object if absent; `false` if someone else created it first.
pub(crate) async fn create_meta(dest: &Destination, meta: &MetaBody) -> Result<bool> {
    let body = Error::json("meta", meta)?;
    let sealed = seal(None, layout::META, &body)?;
    put_create(dest, layout::META, sealed).await
}

/// Writes `rel` only if absent (`false` if it existed).
pub(crate) async fn put_create(dest: &Destination, rel: &str, data: Vec<u8>) -> Result<bool> {
    let path = dest.path(rel);
    let opts = object_store::PutOptions::from(PutMode::Create);
    match dest.store().put_opts(&path, data.into(), opts).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. })
        | Err(object_store::Error::Precondition { .. }) => Ok(false),
        Err(e) => Err(Error::storage("put", &path, e)),
    }
}

/// Key-derivation context of an object: binds job and name into its key.
pub(crate) fn context(job_id: &str, rel: &str) -> String {
    format!("{job_id}/{rel}")
}

/// Finds the newest readable fence; unreadable ones are reported.
async fn latest_fence(
    dest: &Destination,
    key: Option<&MasterKey>,
    job_id: &str,
    rejected: &mut Vec<Rejected>,
    max_epoch: &mut u64,
) -> Result<Option<FenceBody>> {
    let names = list_names(dest, layout::FENCES).await?;
    let mut epochs = Vec::new();
    for n in names {
        match layout::parse_fence(&n) {
            Some(e) => epochs.push(e),
            None => rejected.push(Rejected {
                name: format!("{}/{n}", layout::FENCES),
                reason: RejectReason::BadName,
            }),
        }
    }
    epochs.sort_unstable();
    *max_epoch = epochs.last().copied().unwrap_or(0);
    for epoch in epochs.into_iter().rev() {
        let rel = layout::fence(epoch);
        match read_fence(dest, key, job_id, &rel, epoch).await? {
            Ok(f) => return Ok(Some(f)),
            Err(reason) => rejected.push(Rejected { name: rel, reason }),
        }
    }
    Ok(None)
}

async fn read_fence(
    dest: &Destination,
    key: Option<&MasterKey>,
    job_id: &str,
    rel: &str,
    epoch: u64,
) -> Result<std::result::Result<FenceBody, RejectReason>> {
    let path = dest.path(rel);
    let data = match get_bounded(dest.store().as_ref(), &path, MAX_FENCE_BYTES).await {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(Err(RejectReason::Corrupt("vanished while reading".into()))),
        Err(Error::Corrupt { reason, .. }) => return Ok(Err(RejectReason::Corrupt(reason))),
        Err(e) => return Err(e),
    };
    let body = match unseal(key, &context(job_id, rel), &data, MAX_FENCE_BYTES) {
        Ok(b) => b,
        Err(r) => return Ok(Err(RejectReason::Corrupt(r.to_string()))),
    };
    let fence: FenceBody = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return Ok(Err(RejectReason::Corrupt(format!("undecodable: {e}")))),
    };
    if fence.kind != "fence" || fence.job_id != job_id || fence.epoch != epoch {
        return Ok(Err(RejectReason::Misplaced(format!(
            "content is a {} of job {} epoch {}, name says fence of job {job_id} epoch {epoch}",
            fence.kind, fence.job_id, fence.epoch
        ))));
    }
    Ok(Ok(fence))
}

/// Splits record file names into trusted-by-fence and rejected.
fn filter_by_fence(
    fence: Option<&FenceBody>,
    names: &[String],
    rejected: &mut Vec<Rejected>,
) -> Vec<(u64, u64, String)> {
    let listed: HashSet<&str> = fence
        .map(|f| f.accepted.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for n in names {
        let rel = format!("{}/{n}", layout::DATA);
        let Some((epoch, seq)) = layout::parse_data(n) else {
            rejected.push(Rejected {
                name: rel,
                reason: RejectReason::BadName,
            });
            continue;
        };
        let fence_epoch = fence.map_or(0, |f| f.epoch);
        let ok = epoch == fence_epoch || (epoch < fence_epoch && listed.contains(n.as_str()));
        if ok && fence.is_some() {
            out.push((epoch, seq, n.clone()));
        } else {
            rejected.push(Rejected {
                name: rel,
                reason: RejectReason::Fenced { epoch, fence_epoch },
            });
        }
    }
    out.sort();
    out
}

/// The trusted record-file names and the latest fence, without reading record files.
pub(crate) struct Plan {
    pub accepted: Vec<(u64, u64, String)>,
    pub rejected: Vec<Rejected>,
    pub max_epoch: u64,
}

/// Decides which record files are trusted, from the newest fence.
pub(crate) async fn plan(
    dest: &Destination,
    key: Option<&MasterKey>,
    job_id: &str,
) -> Result<Plan> {
    let mut rejected = Vec::new();
    let mut max_epoch = 0;
    let fence = latest_fence(dest, key, job_id, &mut rejected, &mut max_epoch).await?;
    let names = list_names(dest, layout::DATA).await?;
    let accepted = filter_by_fence(fence.as_ref(), &names, &mut rejected);
    Ok(Plan {
        accepted,
        rejected,
        max_epoch,
    })
}

/// Reads the planned record files and merges their records.
pub(crate) async fn read_records(
    dest: &Destination,
    key: Option<&MasterKey>,
    job_id: &str,
    plan: Plan,
) -> Result<Resume> {
    let mut resume = Resume {
        job_id: Some(job_id.to_string()),
        rejected: plan.rejected,
        max_epoch: plan.max_epoch,
        ..Resume::default()
    };
    // Read in parallel, merge in (epoch, seq) order (`buffered` keeps the order).
    let mut reads = futures::stream::iter(plan.accepted.into_iter().map(|(epoch, seq, name)| {
        let rel = format!("{}/{name}", layout::DATA);
        async move {
            let r = read_data(dest, key, job_id, &rel, epoch, seq).await;
            (rel, name, r)
        }
    }))
    .buffered(PARALLEL_READS);
    while let Some((rel, name, r)) = reads.next().await {
        match r? {
            Ok(body) => {
                resume.files_read += 1;
                resume.merged.push(name);
                for r in body.records {
                    resume.records.insert(r.key.clone(), r);
                }
            }
            Err(reason) => resume.rejected.push(Rejected { name: rel, reason }),
        }
    }
    for r in &resume.rejected {
        let kind = match r.reason {
            RejectReason::Fenced { .. } => "fenced",
            RejectReason::Corrupt(_) => "corrupt",
            RejectReason::Misplaced(_) => "misplaced",
            RejectReason::BadName => "bad_name",
        };
        metrics::counter!("snapshotd_checkpoint_rejected_files_total", "reason" => kind)
            .increment(1);
        tracing::warn!(dest = %dest, object = %r.name, reason = %r.reason, "checkpoint object ignored");
    }
    Ok(resume)
}

async fn read_data(
    dest: &Destination,
    key: Option<&MasterKey>,
    job_id: &str,
    rel: &str,
    epoch: u64,
    seq: u64,
) -> Result<std::result::Result<DataBody, RejectReason>> {
    let path = dest.path(rel);
    let data = match get_bounded(dest.store().as_ref(), &path, MAX_DATA_BYTES).await {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(Err(RejectReason::Corrupt("vanished while reading".into()))),
        Err(Error::Corrupt { reason, .. }) => return Ok(Err(RejectReason::Corrupt(reason))),
        Err(e) => return Err(e),
    };
    let body = match unseal(key, &context(job_id, rel), &data, MAX_DATA_BYTES) {
        Ok(b) => b,
        Err(r) => return Ok(Err(RejectReason::Corrupt(r.to_string()))),
    };
    let body: DataBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return Ok(Err(RejectReason::Corrupt(format!("undecodable: {e}")))),
    };
    if body.kind != "data" || body.job_id != job_id || body.epoch != epoch || body.seq != seq {
        return Ok(Err(RejectReason::Misplaced(format!(
            "content is {} of job {} epoch {} seq {}, name says data of job {job_id} epoch {epoch} seq {seq}",
            body.kind, body.job_id, body.epoch, body.seq
        ))));
    }
    Ok(Ok(body))
}

/// Reads what a destination's checkpoint holds, without taking the lock (inspection,
/// tests, `verify`). Record files are judged against the newest fence.
pub async fn inspect(dest: &Destination, key: Option<&MasterKey>) -> Result<Resume> {
    let Some(meta) = read_meta(dest).await? else {
        return Ok(Resume::default());
    };
    let plan = plan(dest, key, &meta.job_id).await?;
    read_records(dest, key, &meta.job_id, plan).await
}
