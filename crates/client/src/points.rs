//! Restore points: the catalog of a backup location. Every file of the portable layout starts
//! with its run's `TS` (`YYYYMMDDTHHMMSSZ`); a point is *complete* once its `TS.manifest`
//! exists (written last), else *partial* (an interrupted or running backup).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, Result};
use crate::layout;
use crate::storage::Storage;

/// Suffix of the small record `verify` leaves beside a point it checked.
pub const VERIFIED_SUFFIX: &str = ".verified";

/// One restore point of a backup location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestorePoint {
    /// Its id: the run's `TS`.
    pub id: String,
    /// When the run started.
    pub time: DateTime<Utc>,
    /// Whether its manifest exists (every file complete).
    pub complete: bool,
    /// Databases listed by the manifest (empty for a partial point).
    pub databases: Vec<String>,
    /// Shard archives: listed by the manifest, or present so far for a partial point.
    pub shards: usize,
    /// Stored bytes of all its files.
    pub bytes: u64,
    /// Whether its files are encrypted (`.enc`).
    pub encrypted: bool,
    /// When `verify` last found it intact.
    pub verified_at: Option<DateTime<Utc>>,
    /// Whether snapshotd wrote it (influxd's manifests carry no checksums).
    pub by_snapshotd: bool,
    /// Every stored file of the point (the names `forget` deletes).
    pub files: Vec<String>,
    /// Whether each of its archives holds its whole shard (a complete run without a time
    /// window); a point that is not whole restores on top of older ones.
    pub whole: bool,
    /// The shards its manifest lists (empty for a partial point).
    pub shard_ids: Vec<u64>,
}

/// What `verify` records in `TS.verified`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifiedRecord {
    /// When the check finished.
    pub verified_at: DateTime<Utc>,
    /// Files checked.
    pub files: usize,
}

/// The `TS` a stored file name belongs to, if it follows the portable layout.
pub fn point_of(name: &str) -> Option<&str> {
    let ts = name.get(..16)?;
    let rest = &name[16..];
    (rest.starts_with('.') && crate::resume::parse_timestamp(ts).is_some()).then_some(ts)
}

/// Lists the restore points of `src`, oldest first.
pub async fn list_points(src: &Storage) -> Result<Vec<RestorePoint>> {
    let mut by_ts: BTreeMap<String, RestorePoint> = BTreeMap::new();
    for e in src.list().await? {
        let Some(ts) = point_of(&e.name) else {
            continue;
        };
        let Some(time) = crate::resume::parse_timestamp(ts) else {
            continue;
        };
        let p = by_ts.entry(ts.to_string()).or_insert_with(|| RestorePoint {
            id: ts.to_string(),
            time,
            complete: false,
            databases: Vec::new(),
            shards: 0,
            bytes: 0,
            encrypted: false,
            verified_at: None,
            by_snapshotd: false,
            files: Vec::new(),
            whole: false,
            shard_ids: Vec::new(),
        });
        p.bytes += e.size;
        p.encrypted |= e.name.ends_with(snapshotd_checkpoint::ENC_SUFFIX);
        p.complete |= e.name.ends_with(".manifest");
        if e.name.contains(".s") && e.name.contains(".tar") {
            p.shards += 1;
        }
        p.files.push(e.name);
    }
    for p in by_ts.values_mut() {
        p.files.sort();
        if p.complete {
            let m = layout::read_manifest(src, &layout::manifest_name(&p.id)).await?;
            let mut dbs: Vec<String> = m.files.iter().map(|f| f.db.clone()).collect();
            dbs.sort();
            dbs.dedup();
            p.databases = dbs;
            p.shards = m.files.len();
            p.by_snapshotd = m.by_snapshotd;
            p.whole = m.whole;
            p.shard_ids = m.files.iter().map(|f| f.shard_id).collect();
        }
        p.verified_at = read_verified(src, &p.id).await;
    }
    Ok(by_ts.into_values().collect())
}

/// The `TS.verified` record of a point, if present and readable.
async fn read_verified(src: &Storage, id: &str) -> Option<DateTime<Utc>> {
    let name = format!("{id}{VERIFIED_SUFFIX}");
    src.size(&name).await.ok()??;
    let raw = src.get_bounded(&name, 64 * 1024).await.ok()?;
    serde_json::from_slice::<VerifiedRecord>(&raw)
        .ok()
        .map(|r| r.verified_at)
}

/// Writes the `TS.verified` record of a point that was just found intact.
pub async fn record_verified(src: &Storage, id: &str, files: usize) -> Result<()> {
    let rec = VerifiedRecord {
        verified_at: Utc::now(),
        files,
    };
    let body = serde_json::to_vec(&rec).map_err(|e| ClientError::protocol("verified record", e))?;
    src.put(&format!("{id}{VERIFIED_SUFFIX}"), body.into())
        .await
}

/// Picks the complete point `at` names: an id (`TS`), or a time (RFC 3339: the newest point
/// started at or before it); `None` is the newest complete point.
pub fn select<'a>(points: &'a [RestorePoint], at: Option<&str>) -> Result<&'a RestorePoint> {
    let complete = || points.iter().filter(|p| p.complete);
    let ids = || {
        let v: Vec<&str> = complete().map(|p| p.id.as_str()).collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let Some(at) = at else {
        return complete()
            .next_back()
            .ok_or_else(|| ClientError::PointNotFound {
                at: "latest".into(),
                detail: "no complete restore point (no *.manifest)".into(),
            });
    };
    if let Some(p) = points.iter().find(|p| p.id == at) {
        if !p.complete {
            return Err(ClientError::PointNotFound {
                at: at.into(),
                detail: format!(
                    "restore point {at} is partial (an interrupted or running backup, no \
                     manifest); complete points: {}",
                    ids()
                ),
            });
        }
        return Ok(p);
    }
    let Ok(t) = DateTime::parse_from_rfc3339(at) else {
        return Err(ClientError::PointNotFound {
            at: at.into(),
            detail: format!(
                "not a restore point id or an RFC 3339 time; complete points: {}",
                ids()
            ),
        });
    };
    let t = t.with_timezone(&Utc);
    complete()
        .rfind(|p| p.time <= t)
        .ok_or_else(|| ClientError::PointNotFound {
            at: at.into(),
            detail: format!(
                "no complete restore point at or before {t}; points: {}",
                ids()
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: &str, complete: bool) -> RestorePoint {
        RestorePoint {
            id: id.into(),
            time: crate::resume::parse_timestamp(id).unwrap_or_default(),
            complete,
            databases: vec![],
            shards: 0,
            bytes: 0,
            encrypted: false,
            verified_at: None,
            by_snapshotd: true,
            files: vec![],
            whole: true,
            shard_ids: vec![],
        }
    }

    #[test]
    fn names_belong_to_their_point() {
        assert_eq!(
            point_of("20261122T022308Z.s1.tar.gz"),
            Some("20261122T022308Z")
        );
        assert_eq!(
            point_of("20261122T022308Z.meta.enc"),
            Some("20261122T022308Z")
        );
        assert_eq!(point_of("20261122T022308Z"), None);
        assert_eq!(point_of("db1.autogen.00001.00"), None);
        assert_eq!(point_of("checkpoints/LOCK"), None);
    }

    #[test]
    fn select_by_id_time_or_latest() {
        let ps = vec![
            point("20260101T000000Z", true),
            point("20260102T000000Z", true),
            point("20260103T000000Z", false),
        ];
        assert_eq!(
            select(&ps, None).map(|p| p.id.as_str()).ok(),
            Some("20260102T000000Z")
        );
        let at = select(&ps, Some("20260101T000000Z")).map(|p| p.id.as_str());
        assert_eq!(at.ok(), Some("20260101T000000Z"));
        let at = select(&ps, Some("2026-01-01T12:00:00Z")).map(|p| p.id.as_str());
        assert_eq!(at.ok(), Some("20260101T000000Z"));
        assert!(select(&ps, Some("20260103T000000Z")).is_err(), "partial");
        assert!(
            select(&ps, Some("2025-01-01T00:00:00Z")).is_err(),
            "too early"
        );
        assert!(select(&ps, Some("yesterday")).is_err());
    }
}
