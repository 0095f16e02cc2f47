//! Meta import against the real influx 1.6.7 meta blobs (README B1–B4 maps).

use snapshotd_store::meta::Data;
use snapshotd_store::{AdminStore, ImportRequest, ShardIdMap, Store, StoreError};

use crate::common::{A1, A2, A3, TestResult, meta_blob, store};

fn sorted(mut m: ShardIdMap) -> Vec<(u64, u64)> {
    m.0.sort();
    m.0
}

#[test]
fn a1_blob_decodes_and_reencodes_identically() -> TestResult {
    let blob = meta_blob(A1)?;
    assert_eq!(blob.len(), 528);
    let data = Data::decode_blob(&blob)?;
    let names: Vec<_> = data.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["db1", "db2"]);
    assert_eq!(
        (data.index, data.max_shard_group_id, data.max_shard_id),
        (13, 6, 6)
    );
    assert_eq!(data.users.len(), 1);
    assert_eq!(data.users[0].name, "reader");
    let db1 = data.database("db1").ok_or("db1")?;
    assert_eq!(db1.continuous_queries.len(), 1);
    let rp2 = data
        .database("db2")
        .and_then(|d| d.retention_policy("rp2"))
        .ok_or("rp2")?;
    assert_eq!(rp2.shard_group_duration, 24 * 3600 * 1_000_000_000);
    // gogo writes required fields always and in field order: so do we, byte for byte.
    assert_eq!(data.encode_blob(), blob);
    assert_eq!(Data::decode_blob(&data.encode_blob())?, data);
    Ok(())
}

#[test]
fn influx_restore_maps_b1_b2_b3_b4() -> TestResult {
    let (_d, s) = store()?;
    // B1: full restore into an empty server.
    let m = s.import_meta(&meta_blob(A1)?, &ImportRequest::default())?;
    assert_eq!(sorted(m), (1..=6).map(|i| (i, i)).collect::<Vec<_>>());
    assert_eq!(s.databases()?, ["db1", "db2"]);
    let paths: Vec<String> = s
        .list_shards(None, None)?
        .into_iter()
        .map(|p| format!("{}/{}/{}", p.database, p.retention_policy, p.shard_id))
        .collect();
    assert_eq!(
        paths,
        [
            "db1/autogen/1",
            "db1/autogen/2",
            "db1/autogen/3",
            "db2/autogen/4",
            "db2/rp2/5",
            "db2/rp2/6"
        ]
    );
    // B2: one RP renamed into a new database.
    let req = ImportRequest {
        backup_database: Some("db2".into()),
        restore_database: Some("db2copy".into()),
        backup_retention_policy: Some("rp2".into()),
        restore_retention_policy: Some("rp2copy".into()),
        include_users: false,
    };
    assert_eq!(
        sorted(s.import_meta(&meta_blob(A2)?, &req)?),
        [(5, 7), (6, 8)]
    );
    let rps = s.retention_policies("db2copy")?;
    assert_eq!(rps.len(), 1);
    assert_eq!((rps[0].0.name.as_str(), rps[0].1), ("rp2copy", true));
    // B3: db1 → db1export.
    let req = ImportRequest {
        backup_database: Some("db1".into()),
        restore_database: Some("db1export".into()),
        ..Default::default()
    };
    assert_eq!(
        sorted(s.import_meta(&meta_blob(A3)?, &req)?),
        [(1, 9), (2, 10), (3, 11)]
    );
    // B4: db2 exists → Conflict, nothing changed.
    let before = s.meta_snapshot()?;
    let req = ImportRequest {
        backup_database: Some("db2".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.import_meta(&meta_blob(A2)?, &req),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.meta_snapshot()?, before);
    // Every imported shard exists (empty) and is listed.
    assert_eq!(s.list_shards(Some("db1export"), None)?.len(), 3);
    let data = Data::decode_blob(&s.meta_snapshot()?)?;
    assert_eq!((data.max_shard_id, data.max_shard_group_id), (11, 11));
    assert!(
        data.users.is_empty(),
        "influx never imports users by default"
    );
    Ok(())
}

#[test]
fn users_and_grants_import_when_asked_and_meta_survives_reopen() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    {
        let s = snapshotd_store::BuiltinStore::open(dir.path())?;
        let req = ImportRequest {
            backup_database: Some("db1".into()),
            restore_database: Some("db1new".into()),
            include_users: true,
            ..Default::default()
        };
        s.import_meta(&meta_blob(A1)?, &req)?;
        assert!(matches!(
            snapshotd_store::BuiltinStore::open(dir.path()),
            Err(StoreError::Locked(_))
        ));
    }
    let s = snapshotd_store::BuiltinStore::open(dir.path())?;
    let data = Data::decode_blob(&s.meta_snapshot()?)?;
    assert_eq!(data.users.len(), 1);
    let grants: Vec<_> = data.users[0]
        .privileges
        .iter()
        .map(|p| (p.database.as_str(), p.privilege))
        .collect();
    assert_eq!(grants, [("db1new", 1)]);
    assert!(data.users[0].hash.starts_with("$2a$"));
    Ok(())
}

#[test]
fn unknown_names_are_not_found_and_bad_blob_invalid() -> TestResult {
    let (_d, s) = store()?;
    let req = ImportRequest {
        backup_database: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.import_meta(&meta_blob(A1)?, &req),
        Err(StoreError::NotFound { .. })
    ));
    let req = ImportRequest {
        backup_database: Some("db1".into()),
        backup_retention_policy: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.import_meta(&meta_blob(A1)?, &req),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.import_meta(&[0xff, 0xff, 0xff], &ImportRequest::default()),
        Err(StoreError::Invalid(_))
    ));
    assert!(s.databases()?.is_empty());
    Ok(())
}

#[test]
fn deleted_groups_are_renumbered_but_get_no_directory() -> TestResult {
    use snapshotd_store::meta::{DatabaseInfo, RetentionPolicyInfo, ShardGroupInfo, ShardInfo};
    let group = |id: u64, deleted_at: i64| ShardGroupInfo {
        id,
        start_time: 0,
        end_time: 1_000,
        deleted_at,
        shards: vec![ShardInfo {
            id,
            ..Default::default()
        }],
        truncated_at: None,
    };
    let blob = Data {
        databases: vec![DatabaseInfo {
            name: "d".into(),
            default_retention_policy: "r".into(),
            retention_policies: vec![RetentionPolicyInfo {
                name: "r".into(),
                shard_group_duration: 1_000,
                replica_n: 1,
                shard_groups: vec![group(4, 99), group(5, 0)],
                ..Default::default()
            }],
            continuous_queries: vec![],
        }],
        max_shard_group_id: 5,
        max_shard_id: 5,
        ..Default::default()
    }
    .encode_blob();
    let (_d, s) = store()?;
    assert_eq!(
        sorted(s.import_meta(&blob, &ImportRequest::default())?),
        [(4, 1), (5, 2)]
    );
    let listed: Vec<u64> = s
        .list_shards(None, None)?
        .iter()
        .map(|p| p.shard_id)
        .collect();
    assert_eq!(listed, [2]);
    assert!(!s.root().join("data/d/r/1").exists());
    Ok(())
}

#[test]
fn listing_filters_by_rp_across_databases() -> TestResult {
    let (_d, s) = store()?;
    s.import_meta(&meta_blob(A1)?, &ImportRequest::default())?;
    let ids = |db: Option<&str>, rp: Option<&str>| -> Result<Vec<u64>, StoreError> {
        Ok(s.list_shards(db, rp)?.iter().map(|p| p.shard_id).collect())
    };
    assert_eq!(ids(None, Some("rp2"))?, [5, 6]);
    assert_eq!(ids(None, Some("autogen"))?, [1, 2, 3, 4]);
    assert_eq!(ids(Some("db2"), None)?, [4, 5, 6]);
    assert!(matches!(
        ids(None, Some("nope")),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        ids(Some("db1"), Some("rp2")),
        Err(StoreError::NotFound { .. })
    ));
    let info = s.shard_info(5)?;
    assert_eq!(
        (info.path.database.as_str(), info.shard_group_id),
        ("db2", 5)
    );
    assert_eq!(info.end_ns - info.start_ns, 24 * 3600 * 1_000_000_000);
    Ok(())
}
