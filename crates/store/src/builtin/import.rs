//! Meta import under the rules of influx's `Data.ImportData` (databases in the blob that already exist are refused, shard IDs renumbered), plus the
//! optional import of users and grants (influx#9723).

use crate::error::{Conflict, Result, StoreError};
use crate::meta::{Data, DatabaseInfo, UserInfo};
use crate::types::ImportRequest;

/// The result of an import: old → new shard ids, and the imported databases' new names.
#[derive(Debug, Default)]
pub(crate) struct Imported {
    /// Old → new shard ids in RP → shard group → shard order.
    pub map: Vec<(u64, u64)>,
    /// (source name, target name) of every imported database.
    pub databases: Vec<(String, String)>,
}

/// Imports from `other` into `data`; on error `data` is unchanged.
pub(crate) fn import(data: &mut Data, other: &Data, req: &ImportRequest) -> Result<Imported> {
    let mut work = data.clone();
    let mut out = Imported::default();
    match non_empty(&req.backup_database) {
        Some(db) => import_one(&mut work, other, db, req, &mut out)?,
        None => {
            // Full import: every database but `_internal`, under its own name, ignoring the
            // rename fields (influx does the same).
            let plain = ImportRequest::default();
            for db in &other.databases {
                if db.name == "_internal" {
                    continue;
                }
                import_one(&mut work, other, &db.name, &plain, &mut out)?;
            }
        }
    }
    if req.include_users {
        import_users(&mut work, other, &out.databases);
    }
    work.index = work.index.saturating_add(1);
    *data = work;
    Ok(out)
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn import_one(
    data: &mut Data,
    other: &Data,
    source: &str,
    req: &ImportRequest,
    out: &mut Imported,
) -> Result<()> {
    let src = other.database(source).ok_or_else(|| StoreError::NotFound {
        what: "database in meta blob",
        name: source.to_string(),
    })?;
    let target = non_empty(&req.restore_database)
        .unwrap_or(source)
        .to_string();
    if data.database(&target).is_some() {
        return Err(Conflict::Database { database: target }.into());
    }
    let mut db = DatabaseInfo {
        name: target.clone(),
        default_retention_policy: src.default_retention_policy.clone(),
        retention_policies: Vec::new(),
        continuous_queries: Vec::new(),
    };
    match non_empty(&req.backup_retention_policy) {
        Some(rp_name) => {
            let rp = src
                .retention_policy(rp_name)
                .ok_or_else(|| StoreError::NotFound {
                    what: "retention policy in meta blob",
                    name: format!("{source}.{rp_name}"),
                })?;
            let mut rp = rp.clone();
            if let Some(new) = non_empty(&req.restore_retention_policy) {
                rp.name = new.to_string();
            }
            db.default_retention_policy = rp.name.clone();
            db.retention_policies.push(rp);
        }
        None => db.retention_policies = src.retention_policies.clone(),
    }
    for rp in &mut db.retention_policies {
        for sg in &mut rp.shard_groups {
            data.max_shard_group_id = data.max_shard_group_id.saturating_add(1);
            sg.id = data.max_shard_group_id;
            for sh in &mut sg.shards {
                data.max_shard_id = data.max_shard_id.saturating_add(1);
                out.map.push((sh.id, data.max_shard_id));
                sh.id = data.max_shard_id;
                sh.owners.clear();
                sh.owner_ids.clear();
            }
        }
    }
    data.databases.push(db);
    out.databases.push((source.to_string(), target));
    Ok(())
}

/// Adds users that do not exist yet and merges grants on the imported databases (renamed).
fn import_users(data: &mut Data, other: &Data, databases: &[(String, String)]) {
    for user in &other.users {
        let grants: Vec<_> = user
            .privileges
            .iter()
            .filter_map(|p| {
                databases
                    .iter()
                    .find(|(src, _)| *src == p.database)
                    .map(|(_, dst)| crate::meta::UserPrivilege {
                        database: dst.clone(),
                        privilege: p.privilege,
                    })
            })
            .collect();
        match data.users.iter_mut().find(|u| u.name == user.name) {
            Some(existing) => {
                for g in grants {
                    existing.privileges.retain(|p| p.database != g.database);
                    existing.privileges.push(g);
                }
            }
            None => data.users.push(UserInfo {
                name: user.name.clone(),
                hash: user.hash.clone(),
                admin: user.admin,
                privileges: grants,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{RetentionPolicyInfo, ShardGroupInfo, ShardInfo};

    fn sample() -> Data {
        let rp = |name: &str, first: u64| RetentionPolicyInfo {
            name: name.into(),
            shard_groups: vec![ShardGroupInfo {
                id: first,
                shards: vec![ShardInfo {
                    id: first,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        Data {
            databases: vec![
                DatabaseInfo {
                    name: "a".into(),
                    default_retention_policy: "r1".into(),
                    retention_policies: vec![rp("r1", 1), rp("r2", 2)],
                    continuous_queries: vec![],
                },
                DatabaseInfo {
                    name: "_internal".into(),
                    default_retention_policy: "monitor".into(),
                    retention_policies: vec![rp("monitor", 3)],
                    continuous_queries: vec![],
                },
            ],
            max_shard_group_id: 3,
            max_shard_id: 3,
            ..Default::default()
        }
    }

    #[test]
    fn full_import_skips_internal_and_renumbers() {
        let mut target = Data {
            max_shard_id: 10,
            max_shard_group_id: 20,
            ..Default::default()
        };
        let got = import(&mut target, &sample(), &ImportRequest::default());
        let got = got.map(|i| i.map).ok();
        assert_eq!(got, Some(vec![(1, 11), (2, 12)]));
        assert_eq!(target.databases.len(), 1);
        assert_eq!(target.max_shard_group_id, 22);
    }

    #[test]
    fn single_rp_rename_becomes_default_and_conflict_leaves_data() {
        let mut target = Data::default();
        let req = ImportRequest {
            backup_database: Some("a".into()),
            restore_database: Some("b".into()),
            backup_retention_policy: Some("r2".into()),
            restore_retention_policy: Some("r9".into()),
            include_users: false,
        };
        let got = import(&mut target, &sample(), &req).map(|i| i.map).ok();
        assert_eq!(got, Some(vec![(2, 1)]));
        let db = target
            .database("b")
            .map(|d| d.default_retention_policy.clone());
        assert_eq!(db.as_deref(), Some("r9"));
        let before = target.clone();
        assert!(matches!(
            import(&mut target, &sample(), &req),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(before, target);
    }

    fn arb_data() -> impl proptest::strategy::Strategy<Value = Data> {
        use proptest::prelude::*;
        // Up to 4 databases (one maybe `_internal`), each with up to 3 RPs of up to 3 groups
        // of up to 2 shards; ids are made unique afterwards.
        let rp = prop::collection::vec(any::<bool>(), 0..4);
        prop::collection::vec((any::<bool>(), prop::collection::vec(rp, 0..3)), 0..4).prop_map(
            |dbs| {
                let mut data = Data::default();
                let mut next = 0u64;
                for (i, (internal, rps)) in dbs.into_iter().enumerate() {
                    let mut db = DatabaseInfo {
                        name: if internal {
                            "_internal".into()
                        } else {
                            format!("db{i}")
                        },
                        ..Default::default()
                    };
                    if data.database(&db.name).is_some() {
                        continue;
                    }
                    for (j, groups) in rps.into_iter().enumerate() {
                        let mut rp = RetentionPolicyInfo {
                            name: format!("rp{j}"),
                            ..Default::default()
                        };
                        for shards in groups {
                            next += 1;
                            let mut g = ShardGroupInfo {
                                id: next,
                                ..Default::default()
                            };
                            for s in 0..usize::from(shards) + 1 {
                                g.shards.push(ShardInfo {
                                    id: next * 10 + s as u64,
                                    ..Default::default()
                                });
                            }
                            rp.shard_groups.push(g);
                        }
                        db.retention_policies.push(rp);
                    }
                    data.databases.push(db);
                }
                data.max_shard_group_id = next;
                data.max_shard_id = next * 10 + 9;
                data
            },
        )
    }

    proptest::proptest! {
        #[test]
        fn full_import_renumbers_contiguously_or_changes_nothing(
            other in arb_data(),
            target in arb_data(),
        ) {
            let mut data = target.clone();
            match import(&mut data, &other, &ImportRequest::default()) {
                Ok(imported) => {
                    let olds: Vec<u64> = other
                        .databases
                        .iter()
                        .filter(|d| d.name != "_internal")
                        .flat_map(|d| &d.retention_policies)
                        .flat_map(|r| &r.shard_groups)
                        .flat_map(|g| g.shards.iter().map(|s| s.id))
                        .collect();
                    let want: Vec<(u64, u64)> = olds
                        .iter()
                        .zip(target.max_shard_id + 1..)
                        .map(|(o, n)| (*o, n))
                        .collect();
                    proptest::prop_assert_eq!(imported.map, want);
                    proptest::prop_assert_eq!(
                        data.max_shard_id,
                        target.max_shard_id + olds.len() as u64
                    );
                    proptest::prop_assert!(data.database("_internal") == target.database("_internal"));
                }
                Err(StoreError::Conflict(_)) => proptest::prop_assert_eq!(data, target),
                Err(e) => proptest::prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}
