//! Shard-group arithmetic as influx does it: default group durations, window alignment
//! (Go's `time.Truncate`, relative to year 1), routing of a timestamp to its group.

use crate::error::{InvalidInput, NameKind, Result};
use crate::meta::{Data, RetentionPolicyInfo, ShardGroupInfo, ShardInfo};

/// One hour in ns.
pub(crate) const HOUR: i64 = 3_600_000_000_000;
/// One day in ns.
pub(crate) const DAY: i64 = 24 * HOUR;
/// Go's zero time (0001-01-01T00:00:00Z) in Unix seconds.
const GO_ZERO_UNIX_SECS: i128 = -62_135_596_800;

/// influx's default shard-group duration for a retention duration (0 = infinite).
pub(crate) fn default_group_duration(duration_ns: i64) -> i64 {
    if duration_ns <= 0 || duration_ns > 180 * DAY {
        7 * DAY
    } else if duration_ns >= 2 * DAY {
        DAY
    } else {
        HOUR
    }
}

/// Start of the `d`-long window holding `t`, aligned like Go's `Time.Truncate(d)`.
pub(crate) fn group_start(t: i64, d: i64) -> i64 {
    if d <= 0 {
        return t;
    }
    let zero = GO_ZERO_UNIX_SECS * 1_000_000_000;
    let since = i128::from(t) - zero;
    let start = i128::from(t) - since.rem_euclid(i128::from(d));
    i64::try_from(start).unwrap_or(i64::MIN)
}

/// Validates a database or retention-policy name used as a directory name.
pub(crate) fn check_name(what: NameKind, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name.len() > 255
        || name.contains(['/', '\\', '\0']);
    if bad {
        return Err(InvalidInput::Name {
            what,
            name: name.to_string(),
        }
        .into());
    }
    Ok(())
}

/// The first shard of the live group of `rp` covering `t`.
pub(crate) fn find(rp: &RetentionPolicyInfo, t: i64) -> Option<u64> {
    rp.shard_groups
        .iter()
        .filter(|g| !g.is_deleted() && g.start_time <= t && t < g.end_time)
        .find_map(|g| g.shards.first().map(|s| s.id))
}

/// The live group of `rp` covering `t`, created (one shard) when absent. Returns the shard
/// id and whether a group was created.
pub(crate) fn route(
    rp: &mut RetentionPolicyInfo,
    max_sg: &mut u64,
    max_shard: &mut u64,
    t: i64,
) -> (u64, bool) {
    if let Some(id) = find(rp, t) {
        return (id, false);
    }
    let d = if rp.shard_group_duration > 0 {
        rp.shard_group_duration
    } else {
        default_group_duration(rp.duration)
    };
    let start = group_start(t, d);
    let end = start.checked_add(d).unwrap_or(i64::MAX);
    *max_sg += 1;
    *max_shard += 1;
    rp.shard_groups.push(ShardGroupInfo {
        id: *max_sg,
        start_time: start,
        end_time: end,
        deleted_at: 0,
        shards: vec![ShardInfo {
            id: *max_shard,
            owner_ids: vec![],
            owners: vec![],
        }],
        truncated_at: None,
    });
    rp.shard_groups.sort_by_key(|g| (g.start_time, g.id));
    (*max_shard, true)
}

/// Where a shard lives in the metastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// Database.
    pub db: String,
    /// Retention policy.
    pub rp: String,
    /// Group id.
    pub group: u64,
    /// Window start.
    pub start: i64,
    /// Window end.
    pub end: i64,
}

/// Finds a live shard by id.
pub(crate) fn locate(data: &Data, id: u64) -> Option<Located> {
    for db in &data.databases {
        for rp in &db.retention_policies {
            for g in rp.shard_groups.iter().filter(|g| !g.is_deleted()) {
                if g.shards.iter().any(|s| s.id == id) {
                    return Some(Located {
                        db: db.name.clone(),
                        rp: rp.name.clone(),
                        group: g.id,
                        start: g.start_time,
                        end: g.end_time,
                    });
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_day_groups_start_on_monday_like_go() {
        // 2021-01-01T00:00Z (a Friday) falls in the group starting Monday 2020-12-28.
        let t = 1_609_459_200_000_000_000;
        assert_eq!(group_start(t, 7 * DAY), 1_609_113_600_000_000_000);
        assert_eq!(group_start(t + 5, DAY), t);
        assert_eq!(default_group_duration(0), 7 * DAY);
        assert_eq!(default_group_duration(DAY), HOUR);
        assert_eq!(default_group_duration(520 * 7 * DAY), 7 * DAY);
        assert_eq!(default_group_duration(30 * DAY), DAY);
    }
}
