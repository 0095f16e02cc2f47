//! `forget`: which restore points a retention policy keeps (restic's `forget` rules), and
//! deleting the others' files under the destination lock.
//!
//! Rules, applied to the complete points newest first: `last` keeps the N newest; `hourly`,
//! `daily`, `weekly` (ISO week), `monthly` and `yearly` keep the newest point of each of the
//! N most recent hours / days / … that have one (UTC); `within` keeps every point younger
//! than that duration, measured from the newest point. A point kept by any rule is kept.
//! Partial points older than the newest complete one are removed; a newer partial point
//! (running or to be resumed) is kept.

use std::time::Duration;

use chrono::{Datelike, Timelike};
use serde::Serialize;
use snapshotd_checkpoint::{Destination, LockGuard};

use super::lease::{FORGET_HINT, lock_options, with_lock};
use crate::error::{ClientError, Result};
use crate::points::{RestorePoint, list_points};
use crate::storage::Storage;

/// How many points each rule keeps (0 = the rule is off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    /// The N newest points.
    pub last: u32,
    /// The newest point of each of the N most recent hours with points.
    pub hourly: u32,
    /// … days.
    pub daily: u32,
    /// … ISO weeks.
    pub weekly: u32,
    /// … months.
    pub monthly: u32,
    /// … years.
    pub yearly: u32,
    /// Every point younger than this, measured from the newest point.
    pub within: Option<Duration>,
}

impl KeepPolicy {
    /// Whether no rule is set (forget then refuses to run: it would delete everything).
    pub fn is_empty(&self) -> bool {
        *self == KeepPolicy::default()
    }
}

/// The verdict on one complete point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The point's id.
    pub id: String,
    /// Whether it stays.
    pub keep: bool,
    /// The rules that keep it (`last`, `daily`, `within`, …).
    pub reasons: Vec<&'static str>,
}

/// A bucket key per rule: points in the same bucket compete for one slot.
type Bucket = fn(&RestorePoint, usize) -> i64;

fn rules(p: &KeepPolicy) -> [(&'static str, u32, Bucket); 6] {
    [
        ("last", p.last, |_, nr| nr as i64),
        ("hourly", p.hourly, |pt, _| {
            let t = pt.time;
            (i64::from(t.year()) * 100_000_000)
                + i64::from(t.month()) * 1_000_000
                + i64::from(t.day()) * 10_000
                + i64::from(t.hour()) * 100
        }),
        ("daily", p.daily, |pt, _| {
            let t = pt.time;
            i64::from(t.year()) * 10_000 + i64::from(t.month()) * 100 + i64::from(t.day())
        }),
        ("weekly", p.weekly, |pt, _| {
            let w = pt.time.iso_week();
            i64::from(w.year()) * 100 + i64::from(w.week())
        }),
        ("monthly", p.monthly, |pt, _| {
            i64::from(pt.time.year()) * 100 + i64::from(pt.time.month())
        }),
        ("yearly", p.yearly, |pt, _| i64::from(pt.time.year())),
    ]
}

/// Applies `policy` to the complete points of `points`; returns them newest first.
pub fn decide(points: &[RestorePoint], policy: &KeepPolicy) -> Vec<Decision> {
    let mut complete: Vec<&RestorePoint> = points.iter().filter(|p| p.complete).collect();
    complete.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
    let newest = complete.first().map(|p| p.time);
    let mut state: Vec<(&'static str, u32, Bucket, Option<i64>)> = rules(policy)
        .into_iter()
        .map(|(n, c, b)| (n, c, b, None))
        .collect();
    let mut out = Vec::with_capacity(complete.len());
    for (nr, p) in complete.iter().enumerate() {
        let mut reasons = Vec::new();
        for (name, left, bucket, last) in state.iter_mut() {
            let val = bucket(p, nr);
            if *left > 0 && *last != Some(val) {
                *last = Some(val);
                *left -= 1;
                reasons.push(*name);
            }
        }
        if let (Some(within), Some(newest)) = (policy.within, newest) {
            let age = newest.signed_duration_since(p.time);
            if age.to_std().is_ok_and(|a| a < within) || age <= chrono::Duration::zero() {
                reasons.push("within");
            }
        }
        out.push(Decision {
            id: p.id.clone(),
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    keep_bases(&complete, &mut out);
    out
}

/// A restore of a point that is not whole (a `--since` or window run) builds each of its
/// shards from the newest older whole point holding that shard and every point in between
/// holding it: those points are kept too (reason `base`), or the kept point would restore
/// only its increment. `newest_first` and `out` are in the same order.
fn keep_bases(newest_first: &[&RestorePoint], out: &mut [Decision]) {
    for i in 0..newest_first.len() {
        if !out[i].keep || newest_first[i].whole {
            continue;
        }
        for shard in &newest_first[i].shard_ids {
            for j in i + 1..newest_first.len() {
                let older = newest_first[j];
                if !older.shard_ids.contains(shard) {
                    continue;
                }
                if !out[j].reasons.contains(&"base") {
                    out[j].reasons.push("base");
                }
                out[j].keep = true;
                if older.whole {
                    break;
                }
            }
        }
    }
}

/// What `forget` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ForgetReport {
    /// Complete points, newest first, with the verdict.
    pub decisions: Vec<Decision>,
    /// Partial points removed (left by interrupted runs older than the newest complete one).
    pub partial_removed: Vec<String>,
    /// Files deleted (or to delete).
    pub files: usize,
    /// Their stored bytes.
    pub bytes: u64,
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Points the policy does not keep but a running restore reads: left for a later run.
    pub in_use: Vec<String>,
}

/// Points `policy` does not keep, with the partial ones no run can still need.
fn doomed<'a>(points: &'a [RestorePoint], decisions: &[Decision]) -> Vec<&'a RestorePoint> {
    let newest_complete = points.iter().filter(|p| p.complete).map(|p| p.time).max();
    points
        .iter()
        .filter(|p| {
            if p.complete {
                decisions.iter().any(|d| d.id == p.id && !d.keep)
            } else {
                newest_complete.is_some_and(|t| p.time < t)
            }
        })
        .collect()
}

/// Applies `policy` to `dest`, deleting the forgotten points' files (their manifest first,
/// so an interrupted forget leaves partial points, never a complete-looking broken one).
/// Holds the destination lock while deleting, waiting up to `lock_wait` for a running
/// backup; a dry run takes no lock and writes nothing.
pub async fn forget(
    dest: &Destination,
    policy: &KeepPolicy,
    dry_run: bool,
    lock_wait: Duration,
) -> Result<ForgetReport> {
    if policy.is_empty() {
        return Err(ClientError::NoKeepRule);
    }
    let storage = Storage::from_store(dest.rooted_store(), dest.to_string());
    let guard = if dry_run {
        None
    } else {
        let opts = lock_options(Duration::from_secs(60), FORGET_HINT);
        Some(
            with_lock(
                dest,
                lock_wait,
                |_| true,
                || LockGuard::acquire(dest, opts.clone(), 0),
            )
            .await?,
        )
    };
    let result = apply(dest, &storage, policy, dry_run).await;
    if let Some(g) = guard {
        g.release().await?;
    }
    result
}

async fn apply(
    dest: &Destination,
    storage: &Storage,
    policy: &KeepPolicy,
    dry_run: bool,
) -> Result<ForgetReport> {
    let points = list_points(storage).await?;
    let decisions = decide(&points, policy);
    let reading = super::readers::in_use(dest).await?;
    let mut report = ForgetReport {
        decisions,
        dry_run,
        ..Default::default()
    };
    for p in doomed(&points, &report.decisions) {
        if reading.contains(&p.id) {
            report.in_use.push(p.id.clone());
            continue;
        }
        if !p.complete {
            report.partial_removed.push(p.id.clone());
        }
        let mut files = p.files.clone();
        files.sort_by_key(|f| !f.ends_with(".manifest"));
        report.files += files.len();
        report.bytes += p.bytes;
        if dry_run {
            continue;
        }
        for f in &files {
            storage.delete(f).await?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point at `ts` (`YYYYMMDDTHHMMSSZ`).
    fn pt(ts: &str, complete: bool) -> RestorePoint {
        RestorePoint {
            id: ts.into(),
            time: crate::resume::parse_timestamp(ts).unwrap_or_default(),
            complete,
            databases: vec![],
            shards: 1,
            bytes: 10,
            encrypted: false,
            verified_at: None,
            by_snapshotd: true,
            files: vec![format!("{ts}.manifest"), format!("{ts}.meta")],
            whole: true,
            shard_ids: vec![1],
        }
    }

    fn kept(points: &[RestorePoint], policy: KeepPolicy) -> Vec<String> {
        let mut v: Vec<String> = decide(points, &policy)
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.id)
            .collect();
        v.sort();
        v
    }

    fn catalog(ids: &[&str]) -> Vec<RestorePoint> {
        ids.iter().map(|id| pt(id, true)).collect()
    }

    #[test]
    fn an_incremental_point_keeps_the_points_it_restores_on_top_of() {
        let mut points = catalog(&[
            "20260101T020000Z", // full, shards 1 and 2
            "20260102T020000Z", // full, shard 1 only
            "20260102T120000Z", // --since, shard 1
            "20260103T020000Z", // --since, shards 1 and 2
        ]);
        points[0].shard_ids = vec![1, 2];
        points[2].whole = false;
        points[3].whole = false;
        points[3].shard_ids = vec![1, 2];
        let last1 = KeepPolicy {
            last: 1,
            ..KeepPolicy::default()
        };
        // Shard 1 chains to the full point of the 2nd, shard 2 to the full point of the 1st.
        assert_eq!(
            kept(&points, last1),
            [
                "20260101T020000Z",
                "20260102T020000Z",
                "20260102T120000Z",
                "20260103T020000Z"
            ]
        );
        let d = decide(&points, &last1);
        assert_eq!(d[1].reasons, ["base"]);
        // A whole point needs nothing older.
        points[3].whole = true;
        assert_eq!(kept(&points, last1), ["20260103T020000Z"]);
    }

    #[test]
    fn table() {
        let nightly = catalog(&[
            "20260101T020000Z",
            "20260102T020000Z",
            "20260103T020000Z",
            "20260103T140000Z",
            "20260104T020000Z",
            "20260104T020500Z",
        ]);
        let weeks = catalog(&[
            "20251231T000000Z", // ISO week 2026-W01 (Wednesday)
            "20260103T000000Z", // 2026-W01
            "20260105T000000Z", // 2026-W02
            "20260111T000000Z", // 2026-W02
            "20260112T000000Z", // 2026-W03
        ]);
        let months = catalog(&["20251115T000000Z", "20251130T000000Z", "20251201T000000Z"]);
        let p = KeepPolicy::default;
        type Case<'a> = (&'a str, &'a [RestorePoint], KeepPolicy, &'a [&'a str]);
        let cases: Vec<Case> = vec![
            (
                "last 2",
                &nightly,
                KeepPolicy { last: 2, ..p() },
                &["20260104T020000Z", "20260104T020500Z"],
            ),
            (
                "daily 2: newest of each of the two newest days",
                &nightly,
                KeepPolicy { daily: 2, ..p() },
                &["20260103T140000Z", "20260104T020500Z"],
            ),
            (
                "hourly 3: 02:05 and 02:00 share an hour",
                &nightly,
                KeepPolicy { hourly: 3, ..p() },
                &["20260103T020000Z", "20260103T140000Z", "20260104T020500Z"],
            ),
            (
                "last 1 + daily 3 is the union",
                &nightly,
                KeepPolicy {
                    last: 1,
                    daily: 3,
                    ..p()
                },
                &["20260102T020000Z", "20260103T140000Z", "20260104T020500Z"],
            ),
            (
                "weekly 2 uses ISO weeks",
                &weeks,
                KeepPolicy { weekly: 2, ..p() },
                &["20260111T000000Z", "20260112T000000Z"],
            ),
            (
                "weekly 3 reaches back into the ISO week that began in December",
                &weeks,
                KeepPolicy { weekly: 3, ..p() },
                &["20260103T000000Z", "20260111T000000Z", "20260112T000000Z"],
            ),
            (
                "monthly 2",
                &months,
                KeepPolicy { monthly: 2, ..p() },
                &["20251130T000000Z", "20251201T000000Z"],
            ),
            (
                "yearly 5 with only two years",
                &weeks,
                KeepPolicy { yearly: 5, ..p() },
                &["20251231T000000Z", "20260112T000000Z"],
            ),
            (
                "within 2 days of the newest point, not of now",
                &nightly,
                KeepPolicy {
                    within: Some(Duration::from_secs(2 * 86_400)),
                    ..p()
                },
                &[
                    "20260103T020000Z",
                    "20260103T140000Z",
                    "20260104T020000Z",
                    "20260104T020500Z",
                ],
            ),
            (
                "more slots than points keeps all",
                &months,
                KeepPolicy { last: 10, ..p() },
                &["20251115T000000Z", "20251130T000000Z", "20251201T000000Z"],
            ),
        ];
        for (name, points, policy, want) in cases {
            let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(kept(points, policy), want, "{name}");
        }
    }

    #[test]
    fn reasons_name_every_rule_that_keeps_a_point() {
        let ps = catalog(&["20260101T000000Z", "20260102T000000Z"]);
        let d = decide(
            &ps,
            &KeepPolicy {
                last: 1,
                daily: 1,
                ..Default::default()
            },
        );
        assert_eq!(d[0].id, "20260102T000000Z");
        assert_eq!(d[0].reasons, ["last", "daily"]);
        assert!(!d[1].keep && d[1].reasons.is_empty());
    }

    #[test]
    fn partial_points_go_only_when_a_newer_complete_one_exists() {
        let ps = vec![
            pt("20260101T000000Z", false),
            pt("20260102T000000Z", true),
            pt("20260103T000000Z", false),
        ];
        let decisions = decide(
            &ps,
            &KeepPolicy {
                last: 1,
                ..Default::default()
            },
        );
        let gone: Vec<&str> = doomed(&ps, &decisions)
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(
            gone,
            ["20260101T000000Z"],
            "the newest partial may be running"
        );
    }

    #[test]
    fn no_rule_is_refused() {
        assert!(KeepPolicy::default().is_empty());
        let dest = snapshotd_checkpoint::Destination::memory();
        let rt = tokio::runtime::Builder::new_current_thread().build();
        let r =
            rt.map(|rt| rt.block_on(forget(&dest, &KeepPolicy::default(), false, Duration::ZERO)));
        assert!(matches!(r, Ok(Err(ClientError::NoKeepRule))));
    }
}
