//! `etcd verify`: every chunk's digest and CRCs, and index continuity to the head.

use serde::Serialize;
use snapshotd_checkpoint::{Destination, MasterKey};

use crate::catalog::Catalog;
use crate::error::Result;
use crate::store::{self, Stored};

/// Outcome of a verify run; `problems` empty means the archive is intact.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Chunks read and decoded.
    pub chunks: u64,
    /// Entries checked.
    pub entries: u64,
    /// `.snap` copies checked.
    pub snaps: u64,
    /// Base backups checked (digest, bbolt structure, recorded raft index).
    pub bases: u64,
    /// Highest index archived.
    pub head: u64,
    /// Gaps (also listed by status); not damage, but they limit restores.
    pub gaps: Vec<(u64, u64)>,
    /// Every damaged object, naming it.
    pub problems: Vec<String>,
}

/// Reads every archived object at `dest` and checks it.
pub async fn verify(dest: &Destination, key: Option<&MasterKey>) -> Result<VerifyReport> {
    let cat = Catalog::load(dest, key).await?;
    let mut report = VerifyReport {
        head: cat.archived_through(),
        gaps: cat.missing(),
        problems: cat.rejected.clone(),
        ..VerifyReport::default()
    };
    let mut prev_last: Option<(u64, u64)> = None;
    for c in &cat.chunks {
        let stored = Stored {
            object: c.info.object.clone(),
            size: c.size,
            sha256: c.sha256.clone(),
        };
        let checked = match store::get(dest, key, &stored).await {
            Ok(bytes) => crate::chunk::decode(&c.info.object, &bytes, c.info.first, c.info.last),
            Err(e) => Err(e),
        };
        match checked {
            Ok(d) => {
                report.entries += d.entries.len() as u64;
                if let (Some((li, lt)), Some(f)) = (prev_last, d.entries.first())
                    && li + 1 == f.index
                    && f.term < lt
                {
                    report
                        .problems
                        .push(format!("{}: term goes back across chunks", c.info.object));
                }
                prev_last = d.entries.last().map(|e| (e.index, e.term));
            }
            Err(e) => report.problems.push(e.to_string()),
        }
        report.chunks += 1;
    }
    for s in &cat.snaps {
        let stored = Stored {
            object: s.object.clone(),
            size: s.size,
            sha256: s.sha256.clone(),
        };
        if let Err(e) = store::get(dest, key, &stored).await {
            report.problems.push(e.to_string());
        }
        report.snaps += 1;
    }
    for b in &cat.bases {
        if let Err(e) = crate::backup::read_base(dest, key, b).await {
            report.problems.push(e.to_string());
        }
        report.bases += 1;
    }
    Ok(report)
}
