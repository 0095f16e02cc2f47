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
