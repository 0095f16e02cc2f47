//! The archive's catalog: every trusted record (chunks, `.snap` files, gaps) read from the
//! checkpoint at DEST, and what can be restored from it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use snapshotd_checkpoint::{Destination, MasterKey, Resume, UnitRecord, inspect};

use crate::error::{Error, Result};

/// Payload of a chunk record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkInfo {
    /// First entry index.
    pub first: u64,
    /// Last entry index.
    pub last: u64,
    /// Term of the entry before `first` (0 when unknown, after a gap or at the start).
    pub prev_term: u64,
    /// Term of the last entry.
    pub last_term: u64,
    /// Stored object name (relative to DEST).
    pub object: String,
    /// When the archiver read these entries from the member: every entry was committed by then.
    pub archived_at: DateTime<Utc>,
    /// Cluster id (hex).
    pub cluster_id: String,
    /// Member whose WAL was read (hex).
    pub member_id: String,
}

/// Payload of a `.snap` record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapInfo {
    /// File name as etcd wrote it.
    pub file: String,
    /// Raft term of the snapshot.
    pub term: u64,
    /// Raft index of the snapshot.
    pub index: u64,
    /// Stored object name.
    pub object: String,
    /// When it was archived.
    pub archived_at: DateTime<Utc>,
    /// Stored size (from the record).
    #[serde(default)]
    pub size: u64,
    /// SHA-256 of the stored object (from the record).
    #[serde(default)]
    pub sha256: String,
}

/// Payload of a gap record: entries purged before any archiver read them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GapInfo {
    /// First missing index.
    pub from: u64,
    /// Last missing index.
    pub to: u64,
    /// When it was detected.
    pub detected_at: DateTime<Utc>,
    /// Member whose WAL showed it (hex).
    pub member_id: String,
}

/// Payload of a base record: a whole-keyspace backup through the Snapshot RPC.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BaseInfo {
    /// Raft index the keyspace represents (the db's consistent index).
    pub index: u64,
    /// Newest revision in the keyspace.
    pub revision: i64,
    /// Raft term the member reported when the base was taken (at least the term of `index`).
    pub raft_term: u64,
    /// Raft index the member reported (Status RPC) just before the snapshot.
    pub status_raft_index: u64,
    /// Stored object name, relative to DEST/bases.
    pub object: String,
    /// When the snapshot was complete: every entry up to `index` was committed by then.
    pub taken_at: DateTime<Utc>,
    /// Cluster id (hex).
    pub cluster_id: String,
    /// Member that served the snapshot (hex).
    pub member_id: String,
    /// Its endpoint.
    pub endpoint: String,
    /// Members recorded in the db.
    pub members: Vec<crate::membership::Member>,
}

/// A base with its stored size and digest.
#[derive(Debug, Clone, Serialize)]
pub struct BaseRecord {
    /// The base.
    #[serde(flatten)]
    pub info: BaseInfo,
    /// Stored object size in bytes.
    pub size: u64,
    /// SHA-256 (hex) of the stored object.
    pub sha256: String,
}

/// A chunk with its stored size and digest.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkRecord {
    /// The chunk.
    #[serde(flatten)]
    pub info: ChunkInfo,
    /// Stored object size in bytes.
    pub size: u64,
    /// SHA-256 (hex) of the stored object.
    pub sha256: String,
}

/// Refuses a checkpoint none of whose record files can be read or trusted (e.g. encrypted
/// and no key given).
fn trusted_any(dest: &Destination, resume: &Resume) -> Result<()> {
    match resume.rejected.first() {
        Some(first) if resume.records.is_empty() => Err(Error::Unreadable {
            dest: dest.to_string(),
            count: resume.rejected.len(),
            first: format!("{}: {:?}", first.name, first.reason),
        }),
        _ => Ok(()),
    }
}

/// Everything the archive trusts.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Chunks, ordered by first index.
    pub chunks: Vec<ChunkRecord>,
    /// Archived `.snap` files, ordered by index.
    pub snaps: Vec<SnapInfo>,
    /// Recorded gaps, ordered.
    pub gaps: Vec<GapInfo>,
    /// Base backups, ordered by index.
    pub bases: Vec<BaseRecord>,
    /// Checkpoint objects that were ignored (damaged, fenced), as `name: reason`.
    pub rejected: Vec<String>,
}

impl Catalog {
    /// Reads the trusted records at `dest` (read-only; creates nothing).
    pub async fn load(dest: &Destination, key: Option<&MasterKey>) -> Result<Catalog> {
        let resume = inspect(dest, key)
            .await
            .map_err(Error::cp(format!("read archive catalog at {dest}")))?;
        trusted_any(dest, &resume)?;
        let mut cat = Catalog::from_resume(&resume)?;
        let bases_dest = dest.child(crate::layout::BASES);
        let bases = inspect(&bases_dest, key)
            .await
            .map_err(Error::cp(format!("read base records at {bases_dest}")))?;
        trusted_any(&bases_dest, &bases)?;
        cat.rejected.extend(
            bases
                .rejected
                .iter()
                .map(|r| format!("{}: {:?}", r.name, r.reason)),
        );
        for rec in bases.records.values() {
            cat.add(rec)?;
        }
        cat.bases.sort_by_key(|b| b.info.index);
        Ok(cat)
    }

    /// Builds the catalog from a checkpoint's merged records.
    pub fn from_resume(resume: &Resume) -> Result<Catalog> {
        let mut cat = Catalog {
            rejected: resume
                .rejected
                .iter()
                .map(|r| format!("{}: {:?}", r.name, r.reason))
                .collect(),
            ..Catalog::default()
        };
        for rec in resume.records.values() {
            cat.add(rec)?;
        }
        cat.chunks.sort_by_key(|c| c.info.first);
        cat.snaps.sort_by_key(|s| (s.index, s.term));
        cat.gaps.sort_by_key(|g| g.from);
        cat.check_order()?;
        Ok(cat)
    }

    /// Adds one record (chunk, snap or gap) as the archiver records it.
    pub fn add(&mut self, rec: &UnitRecord) -> Result<()> {
        let bad = |e: serde_json::Error| Error::Corrupt {
            name: rec.key.clone(),
            reason: format!("record payload: {e}"),
        };
        if rec.key.starts_with("chunk/") {
            let info: ChunkInfo = serde_json::from_value(rec.payload.clone()).map_err(bad)?;
            self.chunks.push(ChunkRecord {
                info,
                size: rec.size,
                sha256: rec.sha256.clone(),
            });
        } else if rec.key.starts_with("snap/") {
            let mut info: SnapInfo = serde_json::from_value(rec.payload.clone()).map_err(bad)?;
            info.size = rec.size;
            info.sha256 = rec.sha256.clone();
            self.snaps.push(info);
        } else if rec.key.starts_with("base/") {
            let info: BaseInfo = serde_json::from_value(rec.payload.clone()).map_err(bad)?;
            self.bases.push(BaseRecord {
                info,
                size: rec.size,
                sha256: rec.sha256.clone(),
            });
        } else if rec.key.starts_with("gap/") {
            self.gaps
                .push(serde_json::from_value(rec.payload.clone()).map_err(bad)?);
        }
        Ok(())
    }

    /// Refuses an archive holding an entry twice or a chunk with first > last.
    fn check_order(&self) -> Result<()> {
        let mut prev: Option<&ChunkInfo> = None;
        for c in &self.chunks {
            let c = &c.info;
            if c.first > c.last || prev.is_some_and(|p| c.first <= p.last) {
                return Err(Error::Corrupt {
                    name: c.object.clone(),
                    reason: format!(
                        "chunk {}..={} overlaps or is out of order (previous ends at {:?})",
                        c.first,
                        c.last,
                        prev.map(|p| p.last)
                    ),
                });
            }
            prev = Some(c);
        }
        Ok(())
    }

    /// The highest index the archive has dealt with (archived or recorded as a gap).
    pub fn archived_through(&self) -> u64 {
        let c = self.chunks.last().map_or(0, |c| c.info.last);
        let g = self.gaps.iter().map(|g| g.to).max().unwrap_or(0);
        c.max(g)
    }

    /// Term of the entry at [`Catalog::archived_through`] (0 when it ends in a gap).
    pub fn last_term(&self) -> u64 {
        match self.chunks.last() {
            Some(c) if c.info.last == self.archived_through() => c.info.last_term,
            _ => 0,
        }
    }

    /// Missing ranges: recorded gaps, holes between chunks, and a start after index 1.
    pub fn missing(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = self.gaps.iter().map(|g| (g.from, g.to)).collect();
        let mut next = 1;
        for c in &self.chunks {
            if c.info.first > next && !out.iter().any(|&(f, t)| f <= next && t >= c.info.first - 1)
            {
                out.push((next, c.info.first - 1));
            }
            next = c.info.last + 1;
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Restorable indexes without a base: `1..=N` when chunks cover them all, else `None`.
    pub fn restorable_from_start(&self) -> Option<(u64, u64)> {
        let mut next = 1;
        for c in &self.chunks {
            if c.info.first != next {
                break;
            }
            next = c.info.last + 1;
        }
        (next > 1).then_some((1, next - 1))
    }

    /// Newest index whose entries were all committed at or before `t` (from the timeline
    /// and the bases).
    pub fn index_at_time(&self, t: DateTime<Utc>) -> Option<u64> {
        let chunks = self
            .chunks
            .iter()
            .filter(|c| c.info.archived_at <= t)
            .map(|c| c.info.last);
        let bases = self
            .bases
            .iter()
            .filter(|b| b.info.taken_at <= t)
            .map(|b| b.info.index);
        chunks.chain(bases).max()
    }

    /// Last index of the run of chunks holding every entry from `from` on without a hole
    /// (`from - 1` when no chunk starts the run).
    pub fn reach(&self, from: u64) -> u64 {
        let mut next = from;
        for c in &self.chunks {
            if c.info.first <= next && c.info.last >= next {
                next = c.info.last + 1;
            } else if c.info.first > next {
                break;
            }
        }
        next - 1
    }

    /// Every restorable range `[from, to]`: from the cluster's first entry when the archive
    /// reaches back to it, and from each base through the archived entries after it
    /// (overlapping ranges merged, ordered).
    pub fn restorable_ranges(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = self.restorable_from_start().into_iter().collect();
        for b in &self.bases {
            let i = b.info.index;
            out.push((i, self.reach(i + 1).max(i)));
        }
        out.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (f, t) in out {
            match merged.last_mut() {
                Some(last) if f <= last.1 + 1 => last.1 = last.1.max(t),
                _ => merged.push((f, t)),
            }
        }
        merged
    }
}
