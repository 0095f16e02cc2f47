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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::catalog::{BaseInfo, ChunkInfo, ChunkRecord, GapInfo};

    fn chunk(first: u64, last: u64, secs: i64) -> ChunkRecord {
        ChunkRecord {
            info: ChunkInfo {
                first,
                last,
                prev_term: 0,
                last_term: 2,
                object: format!("chunks/{first}"),
                archived_at: Utc.timestamp_opt(secs, 0).unwrap(),
                cluster_id: "c".into(),
                member_id: "m".into(),
            },
            size: 1,
            sha256: String::new(),
        }
    }

    fn base(index: u64, secs: i64) -> BaseRecord {
        BaseRecord {
            info: BaseInfo {
                index,
                revision: 1,
                raft_term: 2,
                status_raft_index: index,
                object: format!("db/{index}"),
                taken_at: Utc.timestamp_opt(secs, 0).unwrap(),
                cluster_id: "c".into(),
                member_id: "m".into(),
                endpoint: "e".into(),
                members: vec![],
            },
            size: 1,
            sha256: String::new(),
        }
    }

    /// Archive started late (first chunk at 50), a gap 121..=150 recorded, a base at 60
    /// and one at 160.
    fn late_archive() -> Catalog {
        Catalog {
            chunks: vec![
                chunk(50, 80, 10),
                chunk(81, 120, 20),
                chunk(151, 170, 40),
                chunk(171, 200, 50),
            ],
            gaps: vec![GapInfo {
                from: 121,
                to: 150,
                detected_at: Utc.timestamp_opt(30, 0).unwrap(),
                member_id: "m".into(),
            }],
            bases: vec![base(60, 15), base(160, 45)],
            ..Catalog::default()
        }
    }

    fn refused(cat: &Catalog, t: Target) -> String {
        plan(cat, t).unwrap_err().to_string()
    }

    #[test]
    fn picks_the_newest_base_that_reaches_the_target() {
        let cat = late_archive();
        assert_eq!(cat.restorable_ranges(), vec![(60, 120), (160, 200)]);
        for (n, b) in [(60, 60), (61, 60), (120, 60), (160, 160), (200, 160)] {
            let p = plan(&cat, Target::Index(n)).unwrap();
            assert_eq!((p.index, p.base.map(|b| b.info.index)), (n, Some(b)), "{n}");
        }
        let latest = plan(&cat, Target::Latest).unwrap();
        assert_eq!((latest.index, latest.base.unwrap().info.index), (200, 160));
        // By time: the base at 160 was taken at 45 s, before chunk 171..=200 (50 s).
        let t = Utc.timestamp_opt(47, 0).unwrap();
        assert_eq!(plan(&cat, Target::Time(t)).unwrap().index, 170);
    }

    #[test]
    fn refuses_before_the_oldest_base_inside_a_gap_and_past_the_end() {
        let cat = late_archive();
        let r = refused(&cat, Target::Index(59));
        assert!(r.contains("oldest restorable index is 60"), "{r}");
        let r = refused(&cat, Target::Index(130));
        assert!(r.contains("entries 121..=150 are missing"), "{r}");
        assert!(r.contains("60..=120, 160..=200"), "{r}");
        let r = refused(&cat, Target::Index(201));
        assert!(r.contains("ends at index 200"), "{r}");
    }

    #[test]
    fn archive_alone_from_index_one_and_a_base_alone() {
        let mut cat = Catalog {
            chunks: vec![chunk(1, 30, 10)],
            ..Catalog::default()
        };
        assert!(plan(&cat, Target::Index(20)).unwrap().base.is_none());
        cat.bases.push(base(10, 5));
        assert_eq!(
            plan(&cat, Target::Index(20))
                .unwrap()
                .base
                .map(|b| b.info.index),
            Some(10)
        );
        // A base with no archive after it restores exactly its own index.
        let only = Catalog {
            bases: vec![base(77, 5)],
            ..Catalog::default()
        };
        assert_eq!(plan(&only, Target::Latest).unwrap().index, 77);
        let r = refused(&only, Target::Index(78));
        assert!(r.contains("ends at index 77"), "{r}");
        let none = Catalog::default();
        assert!(refused(&none, Target::Latest).contains("no base backup yet"));
    }
}
