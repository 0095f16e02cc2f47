//! Choosing how to reach a restore target: from the newest base at or before it plus the
//! archived entries after the base, or from the archive alone when it reaches back to the
//! cluster's first entry; or why nothing can.

use crate::catalog::{BaseRecord, Catalog};
use crate::error::{Error, Result};
use crate::restore::Target;

/// How a restore reaches its target.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Raft index whose keyspace will be restored.
    pub index: u64,
    /// The base to start from (`None`: replay the archive from index 1).
    pub base: Option<BaseRecord>,
}

/// Resolves `target` against the catalog: the index to restore, or why it cannot be.
pub fn resolve(cat: &Catalog, target: Target) -> Result<u64> {
    plan(cat, target).map(|p| p.index)
}

/// Resolves `target` and picks the newest base that reaches it (else the archive alone).
pub fn plan(cat: &Catalog, target: Target) -> Result<Plan> {
    let refuse = |reason: String| Error::NotRestorable {
        target: target.to_string(),
        reason,
    };
    let ranges = cat.restorable_ranges();
    let (Some(&(lo, _)), Some(&(_, hi))) = (ranges.first(), ranges.last()) else {
        return Err(refuse(match cat.chunks.first() {
            None => "the archive holds no entries and no base backup yet".into(),
            Some(c) => format!(
                "the archive starts at index {} and no base backup covers the entries before it \
                 (take one with `snapshotd etcd backup`)",
                c.info.first
            ),
        }));
    };
    let index = match target {
        Target::Latest => hi,
        Target::Index(n) => n,
        Target::Time(t) => cat.index_at_time(t).ok_or_else(|| {
            refuse("no archived entry or base is known to be committed by then".to_string())
        })?,
    };
    let base = cat
        .bases
        .iter()
        .rev()
        .find(|b| b.info.index <= index && cat.reach(b.info.index + 1) >= index);
    if let Some(b) = base {
        return Ok(Plan {
            index,
            base: Some(b.clone()),
        });
    }
    if cat
        .restorable_from_start()
        .is_some_and(|(f, t)| (f..=t).contains(&index))
    {
        return Ok(Plan { index, base: None });
    }
    Err(refuse(why_not(cat, index, &ranges, lo, hi)))
}

fn why_not(cat: &Catalog, n: u64, ranges: &[(u64, u64)], lo: u64, hi: u64) -> String {
    let list = ranges
        .iter()
        .map(|(f, t)| format!("{f}..={t}"))
        .collect::<Vec<_>>()
        .join(", ");
    if n < lo {
        return format!(
            "the oldest restorable index is {lo} (no base backup at or before {n} and the \
             archive does not reach back to index 1); restorable: {list}"
        );
    }
    // The missing range right after the restorable range below `n` is what stops it.
    let below = ranges
        .iter()
        .map(|r| r.1)
        .filter(|&t| t < n)
        .max()
        .unwrap_or(0);
    let gap = cat
        .missing()
        .into_iter()
        .find(|&(f, t)| f <= n && t >= below);
    match gap {
        Some((f, t)) => format!(
            "entries {f}..={t} are missing from the archive (a gap) and no base backup taken \
             after them reaches {n}; restorable: {list}"
        ),
        None if n > hi => format!("the archive ends at index {hi}; restorable: {list}"),
        None => format!("no base backup and archived entries reach {n}; restorable: {list}"),
    }
}
