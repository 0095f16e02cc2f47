//! A metastore import that survives a kill between the import and its record.
//!
//! influxd answers a type-6 import with the old → new shard-ID map and keeps no trace of who
//! asked; a second import of the same databases is refused ("database already exists"). So
//! the intent (the databases it creates and the target's highest shard ID before it) is
//! recorded *before* the import is sent, and a re-run that finds those databases recovers the
//! map from the target's metastore: influxd copies every shard group of the backup with its
//! time range and shard count, giving the shards new IDs above the previous maximum. A
//! database that does not look exactly like that is never adopted.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use snapshotd_wire::portable::{
    DatabaseSummary, MetaSummary, RetentionPolicySummary, ShardGroupSummary,
};

use crate::backup::Hooks;
use crate::conn::{Client, IdMap, RenameNames};
use crate::error::{ClientError, Result};

/// A metastore import about to be sent, recorded before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportIntent {
    /// The manifest whose metastore is imported.
    pub manifest: String,
    /// The databases the import creates on the target.
    pub databases: Vec<String>,
    /// The target's highest shard ID before the import: the import's shards are above it.
    pub max_shard_id_before: u64,
}

/// What a re-run learns about an interrupted import from the target's metastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// None of its databases exists: the import never happened.
    NotImported,
    /// It happened; this is the map the server had returned.
    Imported(IdMap),
}

/// One database the import makes: the backup's, its name on the target, and the backup's
/// retention policies it brings with their names on the target.
struct Selected<'a> {
    target: String,
    rps: Vec<(&'a RetentionPolicySummary, String)>,
}

/// The databases and RPs influx's import of `backup` under `names` creates (its rules: every
/// database but `_internal` when no database is named; only the named RP, renamed).
fn selection<'a>(backup: &'a MetaSummary, names: &RenameNames) -> Vec<Selected<'a>> {
    let dbs: Vec<&DatabaseSummary> = if names.db.is_empty() {
        let all = backup.databases.iter();
        all.filter(|d| d.name != "_internal").collect()
    } else {
        backup.database(&names.db).into_iter().collect()
    };
    dbs.into_iter()
        .map(|d| {
            let target = match names.new_db.is_empty() {
                true => d.name.clone(),
                false => names.new_db.clone(),
            };
            let rps = d
                .retention_policies
                .iter()
                .filter(|rp| names.rp.is_empty() || rp.name == names.rp)
                .map(|rp| {
                    let new = match names.new_rp.is_empty() {
                        true => rp.name.clone(),
                        false => names.new_rp.clone(),
                    };
                    (rp, new)
                })
                .collect();
            Selected { target, rps }
        })
        .collect()
}

/// The target databases the import of `backup` under `names` creates.
pub fn target_databases(backup: &MetaSummary, names: &RenameNames) -> Vec<String> {
    selection(backup, names)
        .into_iter()
        .map(|s| s.target)
        .collect()
}

/// Decides, from the target's metastore, whether the import of `intent` happened, and if
/// so rebuilds its shard-ID map. A database that exists but was not made by that import is
/// a [`ClientError::ForeignDatabase`].
pub fn recover(
    backup: &MetaSummary,
    target: &MetaSummary,
    names: &RenameNames,
    intent: &ImportIntent,
) -> Result<Recovery> {
    let sel = selection(backup, names);
    let present: Vec<&Selected> = sel
        .iter()
        .filter(|s| target.database(&s.target).is_some())
        .collect();
    if present.is_empty() {
        return Ok(Recovery::NotImported);
    }
    let foreign = |db: &str, reason: String| ClientError::ForeignDatabase {
        db: db.to_string(),
        reason,
    };
    if present.len() != sel.len() || intent.databases != target_databases(backup, names) {
        let db = &present[0].target;
        let reason = "the interrupted import creates all of its databases at once, but only \
                      some of them exist"
            .to_string();
        return Err(foreign(db, reason));
    }
    let mut map = IdMap::new();
    for s in &sel {
        let Some(tdb) = target.database(&s.target) else {
            return Err(foreign(&s.target, "it disappeared".into()));
        };
        for (rp, new_rp) in &s.rps {
            let Some(trp) = tdb.retention_policies.iter().find(|r| r.name == *new_rp) else {
                let reason = format!("it has no retention policy {new_rp:?}");
                return Err(foreign(&s.target, reason));
            };
            map_groups(rp, trp, intent.max_shard_id_before, &mut map)
                .map_err(|reason| foreign(&s.target, reason))?;
        }
    }
    Ok(Recovery::Imported(map))
}

/// Pairs every shard group of the backup's RP with the target's group of the same time range
/// and shard count whose shards were all created after `before`, shard by shard.
fn map_groups(
    src: &RetentionPolicySummary,
    dst: &RetentionPolicySummary,
    before: u64,
    map: &mut IdMap,
) -> std::result::Result<(), String> {
    let mut used = HashSet::new();
    for g in &src.shard_groups {
        let found = dst.shard_groups.iter().enumerate().find(|(i, t)| {
            !used.contains(i) && same_group(g, t) && t.shards.iter().all(|s| s.id > before)
        });
        let Some((i, t)) = found else {
            return Err(format!(
                "retention policy {:?} has no shard group for {}..{} (ns) with {} shard(s) \
                 created after shard {before}",
                dst.name,
                g.start_time,
                g.end_time,
                g.shards.len()
            ));
        };
        used.insert(i);
        map.extend(g.shards.iter().zip(&t.shards).map(|(a, b)| (a.id, b.id)));
    }
    Ok(())
}

fn same_group(a: &ShardGroupSummary, b: &ShardGroupSummary) -> bool {
    a.start_time == b.start_time
        && a.end_time == b.end_time
        && a.shards.len() == b.shards.len()
        && (a.deleted_at == 0) == (b.deleted_at == 0)
}

/// The type-6 import of `blob`. With `guard`, the intent is recorded first (when none of its
/// databases exists yet), and an interrupted import of the same manifest (`pending`) is
/// recovered instead of sent again.
pub(crate) async fn import(
    client: &Client,
    blob: &[u8],
    names: &RenameNames,
    manifest: &str,
    guard: Option<Option<&ImportIntent>>,
    hooks: &Hooks,
) -> Result<IdMap> {
    if let Some(pending) = guard
        && let Some(map) = guarded(client, blob, names, manifest, pending, hooks).await?
    {
        return Ok(map);
    }
    hooks.progress.message("importing metadata (type 6)");
    let id_map = client.metastore_update(blob, names).await?;
    hooks.units.meta_imported(manifest, &id_map);
    Ok(id_map)
}

/// Recovers an interrupted import (returns its map), or records the intent of a new one.
async fn guarded(
    client: &Client,
    blob: &[u8],
    names: &RenameNames,
    manifest: &str,
    pending: Option<&ImportIntent>,
    hooks: &Hooks,
) -> Result<Option<IdMap>> {
    let limits = client.config().limits;
    let backup = MetaSummary::decode_blob(blob, &limits)
        .map_err(|e| ClientError::protocol(format!("{manifest}: the backup's metastore"), e))?;
    let Some(target) = target_meta(client).await else {
        return Ok(None);
    };
    if let Some(intent) = pending.filter(|i| i.manifest == manifest)
        && let Recovery::Imported(map) = recover(&backup, &target, names, intent)?
    {
        hooks.progress.message(
            "the interrupted run's metastore import had completed: shard-ID map recovered from \
             the target's metastore",
        );
        hooks.units.meta_imported(manifest, &map);
        return Ok(Some(map));
    }
    let databases = target_databases(&backup, names);
    if databases.iter().all(|d| target.database(d).is_none()) {
        let intent = ImportIntent {
            manifest: manifest.to_string(),
            databases,
            max_shard_id_before: target.max_shard_id,
        };
        hooks.units.import_intent(&intent).await?;
    }
    Ok(None)
}

/// The target's metastore (one type-1 attempt). A server that does not serve it gets the
/// import unguarded (no intent recorded, nothing recovered), as before this guard existed.
async fn target_meta(client: &Client) -> Option<MetaSummary> {
    let mut cfg = client.config().clone();
    cfg.retry.attempts = 1;
    let limits = cfg.limits;
    let read = async {
        let blob = Client::new(cfg).metastore_backup().await?;
        MetaSummary::decode_blob(&blob, &limits)
            .map_err(|e| ClientError::protocol("the target's metastore (type 1)", e))
    };
    match read.await {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(
                error = %e,
                "cannot read the target's metastore: the import is not guarded against a \
                 kill before its result is recorded"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapshotd_wire::portable::ShardSummary;

    fn group(start: i64, ids: &[u64]) -> ShardGroupSummary {
        ShardGroupSummary {
            id: start as u64,
            start_time: start,
            end_time: start + 10,
            deleted_at: 0,
            shards: ids.iter().map(|&id| ShardSummary { id }).collect(),
            truncated_at: 0,
        }
    }

    fn meta(dbs: &[(&str, &str, Vec<ShardGroupSummary>)], max: u64) -> MetaSummary {
        MetaSummary {
            databases: dbs
                .iter()
                .map(|(db, rp, groups)| DatabaseSummary {
                    name: db.to_string(),
                    default_retention_policy: rp.to_string(),
                    retention_policies: vec![RetentionPolicySummary {
                        name: rp.to_string(),
                        shard_groups: groups.clone(),
                        ..Default::default()
                    }],
                })
                .collect(),
            max_shard_id: max,
            ..Default::default()
        }
    }

    fn names(db: &str, new_db: &str) -> RenameNames {
        RenameNames {
            db: db.into(),
            new_db: new_db.into(),
            ..Default::default()
        }
    }

    fn intent(dbs: &[&str], before: u64) -> ImportIntent {
        ImportIntent {
            manifest: "m".into(),
            databases: dbs.iter().map(|s| s.to_string()).collect(),
            max_shard_id_before: before,
        }
    }

    #[test]
    fn the_map_is_rebuilt_from_groups_of_the_same_range() {
        let backup = meta(&[("a", "r", vec![group(0, &[1]), group(10, &[2, 3])])], 3);
        // The target sorted its groups differently and has a write's group besides.
        let target = meta(
            &[
                ("old", "r", vec![group(0, &[4])]),
                (
                    "b",
                    "r",
                    vec![group(10, &[8, 9]), group(0, &[7]), group(20, &[10])],
                ),
            ],
            10,
        );
        let got = recover(&backup, &target, &names("a", "b"), &intent(&["b"], 6)).unwrap();
        assert_eq!(got, Recovery::Imported(vec![(1, 7), (2, 8), (3, 9)]));
    }

    #[test]
    fn a_missing_database_means_the_import_never_happened() {
        let backup = meta(&[("a", "r", vec![group(0, &[1])])], 1);
        let target = meta(&[("old", "r", vec![group(0, &[4])])], 4);
        let got = recover(&backup, &target, &names("a", "b"), &intent(&["b"], 4)).unwrap();
        assert_eq!(got, Recovery::NotImported);
    }

    #[test]
    fn a_database_made_by_someone_else_is_never_adopted() {
        let backup = meta(&[("a", "r", vec![group(0, &[1])])], 1);
        let n = names("a", "b");
        // Same layout, but its shard existed before the import was sent.
        let older = meta(&[("b", "r", vec![group(0, &[3])])], 5);
        let e = recover(&backup, &older, &n, &intent(&["b"], 4)).unwrap_err();
        assert!(matches!(e, ClientError::ForeignDatabase { .. }), "{e}");
        // Created afresh (no shard groups) by someone else.
        let empty = meta(&[("b", "r", vec![])], 5);
        let e = recover(&backup, &empty, &n, &intent(&["b"], 4)).unwrap_err();
        assert!(e.to_string().contains("\"b\""), "{e}");
        // Another retention policy.
        let other = meta(&[("b", "x", vec![group(0, &[6])])], 6);
        assert!(recover(&backup, &other, &n, &intent(&["b"], 4)).is_err());
    }

    #[test]
    fn all_databases_skip_internal_and_must_all_exist() {
        let backup = meta(
            &[
                ("_internal", "monitor", vec![group(0, &[1])]),
                ("a", "r", vec![group(0, &[2])]),
                ("c", "r", vec![group(0, &[3])]),
            ],
            3,
        );
        let all = RenameNames::default();
        assert_eq!(target_databases(&backup, &all), vec!["a", "c"]);
        let half = meta(&[("a", "r", vec![group(0, &[9])])], 9);
        assert!(recover(&backup, &half, &all, &intent(&["a", "c"], 8)).is_err());
        let both = meta(
            &[
                ("a", "r", vec![group(0, &[9])]),
                ("c", "r", vec![group(0, &[10])]),
            ],
            10,
        );
        let got = recover(&backup, &both, &all, &intent(&["a", "c"], 8)).unwrap();
        assert_eq!(got, Recovery::Imported(vec![(2, 9), (3, 10)]));
    }
}
