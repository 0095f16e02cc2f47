//! `etcd status`: what DEST holds and what it can restore.

use chrono::{DateTime, Utc};
use serde::Serialize;
use snapshotd_checkpoint::{Destination, LockInfo, MasterKey, read_lock};

use crate::catalog::{Catalog, SnapInfo};
use crate::error::{Error, Result};

/// Most timeline points listed (evenly thinned, always keeping the newest).
const TIMELINE_POINTS: usize = 64;

/// A missing range of indexes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Missing {
    /// First missing index.
    pub from: u64,
    /// Last missing index.
    pub to: u64,
}

/// One point of the index↔time timeline: `index` was committed by `time`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TimelinePoint {
    /// Raft index.
    pub index: u64,
    /// When the archiver had read it.
    pub time: DateTime<Utc>,
}

/// A base backup as `status` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BaseSummary {
    /// Raft index the base holds.
    pub index: u64,
    /// Newest revision in it.
    pub revision: i64,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// Member that served it (hex).
    pub member_id: String,
    /// Stored size in bytes.
    pub size: u64,
}

/// Summary of an archive.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// DEST as given.
    pub dest: String,
    /// Base backups, oldest first.
    pub bases: Vec<BaseSummary>,
    /// Highest index archived (or recorded as a gap).
    pub archived_through_index: u64,
    /// The newest restorable range of raft indexes `[from, to]`, if any.
    pub restorable: Option<Missing>,
    /// Every restorable range (from the first entry, and from each base), merged.
    pub restorable_ranges: Vec<Missing>,
    /// Chunks stored.
    pub chunks: usize,
    /// Entries stored.
    pub entries: u64,
    /// Stored bytes (chunks).
    pub bytes: u64,
    /// Archived `.snap` files.
    pub snaps: Vec<SnapInfo>,
    /// Missing ranges (gaps).
    pub gaps: Vec<Missing>,
    /// Index↔time points.
    pub timeline: Vec<TimelinePoint>,
    /// Current (or last) holder of DEST's lease.
    pub holder: Option<LockInfo>,
    /// Checkpoint objects ignored (damaged or fenced).
    pub rejected: Vec<String>,
}

/// Reads DEST (creates nothing) and summarises it.
pub async fn status(dest: &Destination, key: Option<&MasterKey>) -> Result<Status> {
    let cat = Catalog::load(dest, key).await?;
    let holder = read_lock(dest)
        .await
        .map_err(Error::cp(format!("read lock of {dest}")))?;
    let mut timeline: Vec<TimelinePoint> = cat
        .chunks
        .iter()
        .map(|c| TimelinePoint {
            index: c.info.last,
            time: c.info.archived_at,
        })
        .collect();
    thin(&mut timeline);
    let ranges = cat.restorable_ranges();
    Ok(Status {
        dest: dest.to_string(),
        bases: cat
            .bases
            .iter()
            .map(|b| BaseSummary {
                index: b.info.index,
                revision: b.info.revision,
                time: b.info.taken_at,
                member_id: b.info.member_id.clone(),
                size: b.size,
            })
            .collect(),
        archived_through_index: cat.archived_through(),
        restorable: ranges.last().map(|&(from, to)| Missing { from, to }),
        restorable_ranges: ranges
            .iter()
            .map(|&(from, to)| Missing { from, to })
            .collect(),
        chunks: cat.chunks.len(),
        entries: cat
            .chunks
            .iter()
            .map(|c| c.info.last - c.info.first + 1)
            .sum(),
        bytes: cat.chunks.iter().map(|c| c.size).sum(),
        snaps: cat.snaps.clone(),
        gaps: cat
            .missing()
            .into_iter()
            .map(|(from, to)| Missing { from, to })
            .collect(),
        timeline,
        holder,
        rejected: cat.rejected.clone(),
    })
}

fn thin(points: &mut Vec<TimelinePoint>) {
    if points.len() <= TIMELINE_POINTS {
        return;
    }
    let step = points.len().div_ceil(TIMELINE_POINTS);
    let last = points.last().cloned();
    let mut i = 0;
    points.retain(|_| {
        i += 1;
        (i - 1) % step == 0
    });
    if let Some(l) = last
        && points.last() != Some(&l)
    {
        points.push(l);
    }
}
