//! Each typed error carries the object it is about and renders a message naming it with
//! the fix: bad lines, names and durations, existing databases, undecodable meta blobs,
//! hostile tar entries, corrupt TSM files, markers and metastores, a locked data directory.

use std::path::{Path, PathBuf};

use snapshotd_store::testkit::raw_tar;
use snapshotd_store::{
    AdminStore, BuiltinStore, Conflict, Corruption, DatabaseSpec, DurationField, DurationProblem,
    InvalidInput, LineProblem, Locked, MarkerKind, MarkerProblem, MetaFormat, MetaProblem,
    NameKind, Precision, RetentionPolicySpec, ShardPath, Store, StoreError, TarProblem, TsmProblem,
};
use tar::EntryType;

use crate::common::{TestResult, a1_store, db, store, tree};

const T0: i64 = 1_609_459_200;

/// A retention policy spec with durations in seconds.
fn rp(name: &str, duration: u64, group: u64) -> RetentionPolicySpec {
    RetentionPolicySpec {
        name: name.into(),
        duration: std::time::Duration::from_secs(duration),
        shard_group_duration: std::time::Duration::from_secs(group),
        replication: 1,
        make_default: false,
    }
}

/// Asserts every needle is in the message.
fn says(e: &StoreError, needles: &[&str]) {
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "{n:?} missing from {msg:?}");
    }
}

/// The only shard directory of `root` (`<root>/data/<db>/<rp>/<id>`).
fn shard_dir(root: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let found: Vec<PathBuf> = tree(&root.join("data"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tsm"))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    Ok(found.first().ok_or("no TSM file")?.clone())
}

#[test]
fn bad_lines_name_database_line_and_problem() -> TestResult {
    let (_d, s) = store()?;
    db(&s, "w")?;
    let body = format!("m v=1 {T0}\nm v= {T0}\n");
    let e = s
        .write_lines("w", None, Precision::Seconds, body.as_bytes())
        .err()
        .ok_or("bad line accepted")?;
    match &e {
        StoreError::Invalid(InvalidInput::Line {
            database,
            line: 2,
            problem: LineProblem::Syntax { .. },
        }) if database == "w" => {}
        other => return Err(format!("unexpected {other:?}").into()),
    }
    says(&e, &["line 2", "database w", "nothing was written"]);

    let e = s
        .write_lines("w", None, Precision::Hours, b"m v=1 9223372036854775807\n")
        .err()
        .ok_or("overflow accepted")?;
    assert!(matches!(
        e,
        StoreError::Invalid(InvalidInput::Line {
            line: 1,
            problem: LineProblem::TimestampOutOfRange,
            ..
        })
    ));
    says(&e, &["line 1", "precision"]);
    Ok(())
}

#[test]
fn points_beyond_retention_name_the_policy() -> TestResult {
    let (_d, s) = store()?;
    s.create_database(&DatabaseSpec {
        name: "w".into(),
        retention_policy: Some(rp("short", 3600, 0)),
    })?;
    let e = s
        .write_lines("w", None, Precision::Seconds, b"m v=1 1000\n")
        .err()
        .ok_or("old point accepted")?;
    match &e {
        StoreError::Invalid(InvalidInput::Line {
            problem: LineProblem::BeyondRetention { retention_policy },
            ..
        }) => assert_eq!(retention_policy, "short"),
        other => return Err(format!("unexpected {other:?}").into()),
    }
    says(&e, &["line 1", "retention policy short", "database w"]);
    Ok(())
}

#[test]
fn existing_names_conflict_and_bad_names_are_invalid() -> TestResult {
    let (_d, s) = store()?;
    db(&s, "w")?;
    let e = db(&s, "w").err().ok_or("second create accepted")?;
    let e = e.downcast::<StoreError>().map_err(|e| e.to_string())?;
    assert!(
        matches!(&*e, StoreError::Conflict(Conflict::Database { database }) if database == "w")
    );
    says(&e, &["database w already exists", "drop it"]);

    let e = s
        .create_retention_policy("w", &rp("autogen", 0, 0))
        .err()
        .ok_or("dup rp")?;
    assert!(matches!(
        &e,
        StoreError::Conflict(Conflict::RetentionPolicy { database, retention_policy })
            if database == "w" && retention_policy == "autogen"
    ));
    says(
        &e,
        &["retention policy autogen on database w already exists"],
    );

    let e = db(&s, "../x").err().ok_or("bad name accepted")?;
    let e = e.downcast::<StoreError>().map_err(|e| e.to_string())?;
    assert!(matches!(
        &*e,
        StoreError::Invalid(InvalidInput::Name { what: NameKind::Database, name }) if name == "../x"
    ));
    says(&e, &["invalid database name \"../x\"", "must be"]);

    let e = s
        .create_retention_policy("w", &rp("tiny", 0, 60))
        .err()
        .ok_or("1m group")?;
    assert!(matches!(
        &e,
        StoreError::Invalid(InvalidInput::Duration {
            retention_policy,
            field: DurationField::ShardGroup,
            problem: DurationProblem::ShorterThanHour,
        }) if retention_policy == "tiny"
    ));
    says(
        &e,
        &[
            "retention policy tiny",
            "shard group duration must be 0 or at least 1h",
        ],
    );
    Ok(())
}

#[test]
fn undecodable_meta_blob_is_invalid_input() -> TestResult {
    let (_d, s) = store()?;
    let e = s
        .import_meta(b"\xff\xff\xff", &Default::default())
        .err()
        .ok_or("garbage imported")?;
    assert!(matches!(
        &e,
        StoreError::Invalid(InvalidInput::MetaBlob {
            format: MetaFormat::MetaData,
            ..
        })
    ));
    says(&e, &["meta.Data protobuf", ".meta file"]);
    Ok(())
}

#[test]
fn hostile_tar_entry_names_shard_and_entry() -> TestResult {
    let (_d, s) = a1_store()?;
    let evil = "db1/autogen/1/../2/000000001-000000001.tsm";
    let tar = raw_tar(&[(evil, EntryType::Regular, b"evil")]);
    let e = s
        .restore_shard(1, &mut tar.as_slice())
        .err()
        .ok_or("traversal accepted")?;
    let want = ShardPath {
        database: "db1".into(),
        retention_policy: "autogen".into(),
        shard_id: 1,
    };
    match &e {
        StoreError::Invalid(InvalidInput::Tar {
            shard: Some(shard),
            entry: Some(entry),
            problem: TarProblem::UnsafePath,
        }) => {
            assert_eq!(**shard, want);
            assert_eq!(entry, evil);
        }
        other => return Err(format!("unexpected {other:?}").into()),
    }
    says(
        &e,
        &[
            "shard 1 (db1/autogen)",
            evil,
            "unsafe path",
            "left unchanged",
        ],
    );

    let link = raw_tar(&[("db1/autogen/1/l.tsm", EntryType::Symlink, b"")]);
    let e = s
        .restore_shard(1, &mut link.as_slice())
        .err()
        .ok_or("link")?;
    assert!(matches!(
        &e,
        StoreError::Invalid(InvalidInput::Tar {
            problem: TarProblem::NotRegularFile { .. },
            ..
        })
    ));
    says(&e, &["db1/autogen/1/l.tsm", "only regular files"]);
    Ok(())
}

/// A store with one compacted shard of database `w`; returns its directory.
fn compacted(s: &BuiltinStore) -> Result<PathBuf, Box<dyn std::error::Error>> {
    db(s, "w")?;
    let body: String = (0..50).map(|i| format!("m v={i} {}\n", T0 + i)).collect();
    s.write_lines("w", None, Precision::Seconds, body.as_bytes())?;
    s.compact_all()?;
    shard_dir(s.root())
}

#[test]
fn corrupt_tsm_file_is_named_with_its_path() -> TestResult {
    let (_d, s) = store()?;
    let dir = compacted(&s)?;
    let tsm = tree(&dir)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "tsm"))
        .ok_or("no tsm")?;
    let mut bytes = std::fs::read(&tsm)?;
    bytes[12] ^= 0xA5; // inside the first block: its CRC no longer matches
    std::fs::write(&tsm, &bytes)?;
    let e = s.read_points("w", None).err().ok_or("corrupt block read")?;
    let file = tsm.display().to_string();
    match &e {
        StoreError::Corrupt(Corruption::Tsm {
            file: f,
            problem: TsmProblem::Format { .. },
        }) => assert_eq!(f, &file),
        other => return Err(format!("unexpected {other:?}").into()),
    }
    says(&e, &[&file, "restore the shard from a backup"]);
    Ok(())
}

#[test]
fn corrupt_marker_and_metastore_are_named() -> TestResult {
    let (d, s) = store()?;
    let dir = compacted(&s)?;
    let root = s.root().to_path_buf();
    drop(s);
    let marker = dir.join(".compacted");
    std::fs::write(&marker, b"not a marker")?;
    let s = BuiltinStore::open(&root)?;
    let e = s.read_points("w", None).err().ok_or("bad marker read")?;
    assert!(matches!(
        &e,
        StoreError::Corrupt(Corruption::Marker {
            path,
            kind: MarkerKind::Compaction,
            problem: MarkerProblem::Malformed,
        }) if *path == marker
    ));
    says(
        &e,
        &[&marker.display().to_string(), "not a compaction marker"],
    );
    drop(s);

    let meta = root.join("meta").join("meta.db");
    std::fs::write(&meta, b"\xff\xff\xff")?;
    let e = BuiltinStore::open(&root).err().ok_or("bad meta opened")?;
    assert!(matches!(
        &e,
        StoreError::Corrupt(Corruption::Metastore {
            path,
            problem: MetaProblem::Undecodable { .. },
        }) if *path == meta
    ));
    says(&e, &[&meta.display().to_string(), "restore the metastore"]);
    drop(d);
    Ok(())
}

#[test]
fn second_open_of_a_data_dir_is_locked_and_names_the_lock_file() -> TestResult {
    let (_d, s) = store()?;
    let e = BuiltinStore::open(s.root()).err().ok_or("second open")?;
    let lock = s.root().join("LOCK");
    assert!(matches!(
        &e,
        StoreError::Locked(Locked::DataDir { lock_file }) if *lock_file == lock
    ));
    says(&e, &[&lock.display().to_string(), "another data directory"]);
    Ok(())
}
