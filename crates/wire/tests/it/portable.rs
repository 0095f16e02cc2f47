//! Portable backup files: every `.manifest` and `.meta` in the vectors round-trips byte for
//! byte; the meta summary matches the documented metastore.

use snapshotd_wire::portable::{
    Manifest, ManifestFile, MetaSummary, PortableData, SnapshotdInfo, meta_file_name,
    parse_shard_file_name, shard_file_name,
};
use snapshotd_wire::{Limits, MetaBackup};

use crate::util::backup_files;

#[test]
fn every_manifest_round_trips_byte_identically() {
    let files = backup_files(".manifest");
    assert_eq!(files.len(), 3);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let m = Manifest::from_bytes(&bytes).unwrap();
        assert!(!m.files.is_empty());
        assert!(
            m.files
                .iter()
                .all(|e| e.last_modified == 0 && e.sha256.is_none())
        );
        assert_eq!(m.to_bytes().unwrap(), bytes, "{}", f.display());
        // The sizes are what the manifest says they are (§8.4): raw blob, uncompressed tar.
        let dir = f.parent().unwrap();
        let meta = std::fs::read(dir.join(&m.meta.file_name)).unwrap();
        let p = PortableData::from_file_bytes(&meta, &Limits::default()).unwrap();
        assert_eq!(m.meta.size, p.data.len() as i64);
        for e in &m.files {
            assert!(dir.join(&e.file_name).is_file(), "{}", e.file_name);
            assert_eq!(e.size % 512, 0);
        }
    }
}

#[test]
fn every_meta_file_round_trips_byte_identically() {
    let files = backup_files(".meta");
    assert_eq!(files.len(), 3);
    let legacy = std::fs::read(snapshotd_testutil::vector(
        "influx/backups/A4_legacy/meta.00",
    ))
    .unwrap();
    let legacy = MetaBackup::decode_exact(&legacy, &Limits::default()).unwrap();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let p = PortableData::from_file_bytes(&bytes, &Limits::default()).unwrap();
        assert_eq!(p.max_node_id, 0);
        assert_eq!(
            &bytes[bytes.len() - 2..],
            b"\x10\x00",
            "MaxNodeID=0 written explicitly"
        );
        assert_eq!(p.to_file_bytes(), bytes, "{}", f.display());
        assert_eq!(PortableData::new(p.data.clone()).to_file_bytes(), bytes);
        assert_eq!(p.data, legacy.meta, "same metastore as the legacy backup");
    }
}

#[test]
fn empty_manifest_writes_files_null() {
    let m = Manifest::default();
    let s = String::from_utf8(m.to_bytes().unwrap()).unwrap();
    assert_eq!(
        s,
        "{\n  \"meta\": {\n    \"fileName\": \"\",\n    \"size\": 0\n  },\n  \"limited\": false,\n  \"files\": null\n}"
    );
    assert_eq!(Manifest::from_bytes(s.as_bytes()).unwrap(), m);
}

#[test]
fn extensions_are_written_only_when_set_and_round_trip() {
    let path = &backup_files(".manifest")[0];
    let orig = std::fs::read(path).unwrap();
    let mut m = Manifest::from_bytes(&orig).unwrap();
    m.meta.sha256 = Some("ab".repeat(32));
    m.meta.bytes = Some(533);
    m.files[0].sha256 = Some("cd".repeat(32));
    m.files[0].bytes = Some(696);
    m.snapshotd = Some(SnapshotdInfo {
        version: "0.1.0".into(),
        database: "db1".into(),
        since: Some("2021-01-01T00:00:00Z".into()),
        complete: true,
        ..SnapshotdInfo::default()
    });
    let bytes = m.to_bytes().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("\"lastModified\": 0,\n      \"sha256\": \"cdcd"));
    assert!(text.trim_end().ends_with("\"complete\": true\n  }\n}"));
    let back = Manifest::from_bytes(&bytes).unwrap();
    assert_eq!(back, m);
    // Removing the extensions restores influx's exact bytes.
    let mut plain = back;
    plain.meta.sha256 = None;
    plain.meta.bytes = None;
    plain.files[0] = ManifestFile {
        sha256: None,
        bytes: None,
        ..plain.files[0].clone()
    };
    plain.snapshotd = None;
    assert_eq!(plain.to_bytes().unwrap(), orig);
}

#[test]
fn meta_summary_matches_the_documented_metastore() {
    let meta = std::fs::read(snapshotd_testutil::vector(
        "influx/backups/A1_full/20261122T022308Z.meta",
    ))
    .unwrap();
    let p = PortableData::from_file_bytes(&meta, &Limits::default()).unwrap();
    let s = MetaSummary::decode_blob(&p.data, &Limits::default()).unwrap();
    assert_eq!(s.index, 13);
    assert_eq!(s.max_shard_group_id, 6);
    assert_eq!(s.max_shard_id, 6);
    let names: Vec<_> = s.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["db1", "db2"]);
    let db2 = s.database("db2").unwrap();
    assert_eq!(db2.default_retention_policy, "autogen");
    let rps: Vec<_> = db2
        .retention_policies
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(rps, ["autogen", "rp2"]);
    let rp2 = &db2.retention_policies[1];
    assert_eq!(rp2.duration, 520 * 7 * 24 * 3600 * 1_000_000_000);
    assert_eq!(rp2.shard_group_duration, 24 * 3600 * 1_000_000_000);
    let shards: Vec<_> = s
        .shards()
        .map(|l| (l.database, l.retention_policy, l.shard_id))
        .collect();
    assert_eq!(
        shards,
        [
            ("db1", "autogen", 1),
            ("db1", "autogen", 2),
            ("db1", "autogen", 3),
            ("db2", "autogen", 4),
            ("db2", "rp2", 5),
            ("db2", "rp2", 6),
        ]
    );
    let g = s.find_shard(5).unwrap().group;
    assert!(g.start_time < g.end_time);
    assert_eq!(g.end_time - g.start_time, rp2.shard_group_duration);
    assert_eq!(s.users.len(), 1);
    assert_eq!(s.users[0].name, "reader");
}

#[test]
fn vector_file_names_follow_the_portable_scheme() {
    for f in backup_files(".manifest") {
        let m = Manifest::from_bytes(&std::fs::read(&f).unwrap()).unwrap();
        let name = f.file_name().unwrap().to_str().unwrap();
        let ts = name.strip_suffix(".manifest").unwrap();
        assert_eq!(m.meta.file_name, meta_file_name(ts));
        for e in &m.files {
            assert_eq!(e.file_name, shard_file_name(ts, e.shard_id));
            assert_eq!(parse_shard_file_name(&e.file_name), Some((ts, e.shard_id)));
        }
    }
}
