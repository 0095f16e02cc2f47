//! Every typed variant renders a message naming its object and, where there is one, the fix.

use std::path::PathBuf;

use super::*;
use crate::types::ShardPath;

fn says(e: impl Into<StoreError>, needles: &[&str]) {
    let msg = e.into().to_string();
    for n in needles {
        assert!(msg.contains(n), "{n:?} missing from {msg:?}");
    }
}

#[test]
fn conflicts_name_the_existing_object() {
    let database = "db1".to_string();
    says(
        Conflict::Database { database },
        &["conflict: database db1 already exists"],
    );
    let (database, retention_policy) = ("db1".to_string(), "rp1".to_string());
    says(
        Conflict::RetentionPolicy {
            database,
            retention_policy,
        },
        &[
            "retention policy rp1 on database db1 already exists",
            "drop it",
        ],
    );
    let dir = PathBuf::from("/d/db1/rp1/3/wal");
    says(
        Conflict::ShardLog { dir },
        &["/d/db1/rp1/3/wal", "reopen the store"],
    );
}

#[test]
fn invalid_input_names_line_name_policy_and_entry() {
    let problem = LineProblem::Syntax {
        detail: "bad field".into(),
    };
    says(
        InvalidInput::Line {
            database: "w".into(),
            line: 7,
            problem,
        },
        &["invalid input: line 7: bad field", "database w"],
    );
    says(
        InvalidInput::Name {
            what: NameKind::RetentionPolicy,
            name: ".x".into(),
        },
        &["invalid retention policy name \".x\"", "not start with '.'"],
    );
    let (field, problem) = (DurationField::Retention, DurationProblem::TooLarge);
    says(
        InvalidInput::Duration {
            retention_policy: "r".into(),
            field,
            problem,
        },
        &["retention policy r: duration is too large"],
    );
    says(
        InvalidInput::NoDefaultRetentionPolicy {
            database: "w".into(),
        },
        &["database w has no default retention policy", "rp="],
    );
    let format = MetaFormat::PortableData;
    says(
        InvalidInput::MetaBlob {
            format,
            detail: "eof".into(),
        },
        &["PortableData protobuf does not decode (eof)"],
    );
    says(
        InvalidInput::Tar {
            shard: None,
            entry: Some("a/b".into()),
            problem: TarProblem::ShortName,
        },
        &[
            "tar stream, entry \"a/b\": name lacks the <db>/<rp>/<id>/ prefix",
            "snapshotd backup",
        ],
    );
    let shard = ShardPath {
        database: "d".into(),
        retention_policy: "r".into(),
        shard_id: 9,
    };
    says(
        InvalidInput::Tar {
            shard: Some(Box::new(shard)),
            entry: None,
            problem: TarProblem::NoEndMarker,
        },
        &["tar stream for shard 9 (d/r): truncated", "left unchanged"],
    );
}

#[test]
fn corruption_names_the_file_and_says_restore() {
    let problem = TsmProblem::BadSeriesKey { key: "k".into() };
    says(
        Corruption::Tsm {
            file: "/s/1.tsm".into(),
            problem,
        },
        &[
            "corrupt data: TSM file /s/1.tsm: bad series key \"k\"",
            "restore the shard",
        ],
    );
    says(
        Corruption::Tombstone {
            file: "/s/1.tombstone".into(),
            detail: "crc".into(),
        },
        &["tombstone /s/1.tombstone: crc", "restore the shard"],
    );
    let (path, kind) = (PathBuf::from("/s/.merging"), MarkerKind::Merge);
    says(
        Corruption::Marker {
            path,
            kind,
            problem: MarkerProblem::TooLarge { len: 9000 },
        },
        &["/s/.merging: 9000 bytes, more than a merge marker"],
    );
    let problem = MetaProblem::BadName {
        what: NameKind::Database,
        name: "..".into(),
    };
    says(
        Corruption::Metastore {
            path: "/m/meta.db".into(),
            problem,
        },
        &[
            "metastore /m/meta.db: holds invalid database name \"..\"",
            "restore the metastore",
        ],
    );
    says(
        Corruption::ShardLog {
            dir: "/s/wal".into(),
            detail: "wal: crc mismatch".into(),
        },
        &[
            "shard log /s/wal: wal: crc mismatch",
            "snapshotd wal verify",
        ],
    );
    says(
        Corruption::ShardLogMissing {
            dir: "/s/wal".into(),
        },
        &["shard log /s/wal vanished"],
    );
    says(
        Corruption::LogEntry {
            dir: "/s/wal".into(),
            detail: "eof".into(),
        },
        &["shard log /s/wal: entry does not decode as points (eof)"],
    );
}

#[test]
fn unsupported_and_locked_say_what_to_do() {
    says(
        Unsupported::Queries,
        &["unsupported: this store cannot answer queries", "query the"],
    );
    says(
        Unsupported::ShardExport,
        &["by time range", "whole-shard backup"],
    );
    says(
        Locked::DataDir {
            lock_file: "/d/LOCK".into(),
        },
        &[
            "store is locked by another process: /d/LOCK",
            "another data directory",
        ],
    );
    says(
        Locked::ShardLog {
            path: "/s/wal/0-1.wal".into(),
        },
        &["shard log segment /s/wal/0-1.wal is locked", "stop it"],
    );
}
