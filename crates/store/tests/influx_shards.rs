//! Opaque influx shards: restore of real TSM tars, byte-for-byte backup, `since`, and the
//! block-granular export compared with influx's own export (A3).

use std::time::{Duration, SystemTime};

use snapshotd_store::testkit::tar_files;
use snapshotd_store::{Store, TimeRange};

use crate::common::{A1, A3, TestResult, a1_store, backup, shard_tar};

#[test]
fn restored_tsm_shards_back_up_byte_for_byte() -> TestResult {
    let (_d, s) = a1_store()?;
    for id in 1..=6 {
        let original = tar_files(&shard_tar(A1, id)?)?;
        let ours = backup(&s, id)?;
        assert_eq!(tar_files(&ours)?, original, "shard {id}");
        // Go-like framing: headers + data padded to 512 + 1024-byte end marker, no record padding.
        let payload: usize = original
            .values()
            .map(|v| 512 + v.len().div_ceil(512) * 512)
            .sum();
        assert_eq!(ours.len(), payload + 1024);
        assert_eq!(&ours[257..263], b"ustar\0");
    }
    Ok(())
}

#[test]
fn since_keeps_only_newer_files() -> TestResult {
    let (_d, s) = a1_store()?;
    let past = SystemTime::now() - Duration::from_secs(3600);
    let future = SystemTime::now() + Duration::from_secs(3600);
    let mut out = Vec::new();
    s.backup_shard(2, Some(past), &mut out)?;
    assert_eq!(tar_files(&out)?.len(), 1);
    let mut out = Vec::new();
    let stats = s.backup_shard(2, Some(future), &mut out)?;
    assert_eq!((stats.files, stats.bytes, out.len()), (0, 1024, 1024));
    Ok(())
}

fn rfc(s: &str) -> i64 {
    // Only the two instants used below.
    match s {
        "2021-01-05T00:00:00Z" => 1_609_804_800_000_000_000,
        _ => 1_610_452_800_000_000_000, // 2021-01-12T12:00:00Z
    }
}

#[test]
fn export_matches_influx_a3_byte_for_byte() -> TestResult {
    let (_d, s) = a1_store()?;
    let range = TimeRange {
        start_ns: Some(rfc("2021-01-05T00:00:00Z")),
        end_ns: Some(rfc("2021-01-12T12:00:00Z")),
    };
    for id in 1..=3 {
        let want = tar_files(&shard_tar(A3, id)?)?;
        let mut out = Vec::new();
        s.export_shard(id, range, &mut out)?;
        assert_eq!(tar_files(&out)?, want, "shard {id}");
    }
    Ok(())
}

#[test]
fn export_filters_blocks_and_unbounded_is_whole_file() -> TestResult {
    let (_d, s) = a1_store()?;
    let mut all = Vec::new();
    s.export_shard(4, TimeRange::default(), &mut all)?;
    assert_eq!(tar_files(&all)?, tar_files(&shard_tar(A1, 4)?)?);
    // A window after every point of shard 1 exports nothing.
    let mut none = Vec::new();
    let late = TimeRange {
        start_ns: Some(1_700_000_000_000_000_000),
        end_ns: None,
    };
    s.export_shard(1, late, &mut none)?;
    assert!(tar_files(&none)?.is_empty());
    // A window straddling shard 2's start keeps whole blocks: the filtered file is a valid
    // TSM file no larger than the original.
    let straddle = TimeRange {
        start_ns: None,
        end_ns: Some(rfc("2021-01-05T00:00:00Z")),
    };
    let mut part = Vec::new();
    s.export_shard(2, straddle, &mut part)?;
    let files = tar_files(&part)?;
    let (_, tsm) = files.iter().next().ok_or("no file exported")?;
    assert_eq!(&tsm[..5], &[0x16, 0xD1, 0x16, 0xD1, 1]);
    Ok(())
}

/// Points of a line-protocol file, normalised (tags and fields sorted, then by series+time).
fn normalise(
    mut pts: Vec<snapshotd_store::builtin::Point>,
) -> Vec<snapshotd_store::builtin::Point> {
    for p in &mut pts {
        p.tags.sort_by(|a, b| a.0.cmp(&b.0));
        p.fields.sort_by(|a, b| a.0.cmp(&b.0));
    }
    pts.sort_by(|a, b| {
        (&a.measurement, &a.tags, a.time_ns).cmp(&(&b.measurement, &b.tags, b.time_ns))
    });
    pts
}

fn lp_points(
    file: &str,
) -> Result<Vec<snapshotd_store::builtin::Point>, Box<dyn std::error::Error>> {
    use snapshotd_store::{AdminStore, DatabaseSpec, Precision};
    let body = std::fs::read(snapshotd_testutil::vector(&format!("influx/tools/{file}")))?;
    let (_d, s) = crate::common::store()?;
    s.create_database(&DatabaseSpec {
        name: "lp".into(),
        retention_policy: None,
    })?;
    s.write_lines("lp", None, Precision::Nanoseconds, &body)?;
    Ok(s.read_points("lp", None)?)
}

#[test]
fn tsm_points_decode_to_exactly_the_written_line_protocol() -> TestResult {
    let (_d, s) = a1_store()?;
    for (db, rp, file, rows) in [
        ("db1", "autogen", "db1.lp", 150),
        ("db2", "autogen", "db2_autogen.lp", 100),
        ("db2", "rp2", "db2_rp2.lp", 100),
    ] {
        let got = normalise(s.read_points(db, Some(rp))?);
        assert_eq!(got.len(), rows, "{db}.{rp}");
        assert_eq!(got, normalise(lp_points(file)?), "{db}.{rp}");
    }
    Ok(())
}

#[test]
fn exported_window_restores_117_of_150_rows_like_influx_b3() -> TestResult {
    use snapshotd_store::ImportRequest;
    let (_d, a) = a1_store()?;
    let (_d2, b) = crate::common::store()?;
    let req = ImportRequest {
        backup_database: Some("db1".into()),
        restore_database: Some("db1export".into()),
        ..Default::default()
    };
    let map = b.import_meta(&a.meta_snapshot()?, &req)?;
    let range = TimeRange {
        start_ns: Some(rfc("2021-01-05T00:00:00Z")),
        end_ns: Some(rfc("2021-01-12T12:00:00Z")),
    };
    for (old, new) in map.0 {
        let mut out = Vec::new();
        a.export_shard(old, range, &mut out)?;
        let renamed = snapshotd_store::testkit::rename_tar(&out, "db1export", "autogen", new)?;
        b.restore_shard(new, &mut renamed.as_slice())?;
    }
    assert_eq!(b.read_points("db1export", None)?.len(), 117);
    Ok(())
}

#[test]
fn tombstones_hide_deleted_values_and_are_shipped() -> TestResult {
    use std::io::Write;
    use tar::EntryType;
    let (_d, s) = a1_store()?;
    let files = tar_files(&shard_tar(A1, 1)?)?;
    let (tsm_name, tsm) = files.iter().next().ok_or("no tsm")?;
    let tomb_name = tsm_name.replace(".tsm", ".tombstone");
    let record = |key: &[u8], min: i64, max: i64| {
        let mut v = (key.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(key);
        v.extend_from_slice(&min.to_be_bytes());
        v.extend_from_slice(&max.to_be_bytes());
        v
    };
    let count =
        |s: &snapshotd_store::BuiltinStore| -> Result<(usize, usize), Box<dyn std::error::Error>> {
            let pts: Vec<_> = s
                .read_points("db1", None)?
                .into_iter()
                .filter(|p| p.time_ns < 1_609_718_400_000_000_000) // shard 1 only (< 01-04)
                .collect();
            Ok((pts.len(), pts.iter().map(|p| p.fields.len()).sum()))
        };
    assert_eq!(count(&s)?, (33, 66));
    // v4: h0's `n` deleted over all time.
    let mut gz = flate2::write::GzEncoder::new(vec![0, 0, 0x15, 0x04], flate2::Compression::fast());
    gz.write_all(&record(b"cpu,host=h0,region=eu#!~#n", i64::MIN, i64::MAX))?;
    let tomb = gz.finish()?;
    let t = snapshotd_store::testkit::raw_tar(&[
        (tsm_name.as_str(), EntryType::Regular, tsm.as_slice()),
        (tomb_name.as_str(), EntryType::Regular, tomb.as_slice()),
    ]);
    assert_eq!(s.restore_shard(1, &mut t.as_slice())?.files, 2);
    assert_eq!(count(&s)?, (33, 55));
    // The tombstone is part of backups and exports, byte for byte.
    assert_eq!(tar_files(&backup(&s, 1)?)?.get(&tomb_name), Some(&tomb));
    // v2: both fields of h0 deleted: its rows disappear.
    let mut v2 = vec![0, 0, 0x15, 0x02];
    v2.extend(record(b"cpu,host=h0,region=eu#!~#n", i64::MIN, i64::MAX));
    v2.extend(record(
        b"cpu,host=h0,region=eu#!~#value",
        i64::MIN,
        i64::MAX,
    ));
    let t = snapshotd_store::testkit::raw_tar(&[
        (tsm_name.as_str(), EntryType::Regular, tsm.as_slice()),
        (tomb_name.as_str(), EntryType::Regular, v2.as_slice()),
    ]);
    s.restore_shard(1, &mut t.as_slice())?;
    assert_eq!(count(&s)?, (22, 44));
    Ok(())
}
