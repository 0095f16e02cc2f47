//! Line-protocol writes into WAL shards: routing, all-or-nothing batches, point-in-time
//! backups under concurrent writers, restore into a fresh store, export by time window.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use snapshotd_store::builtin::{Point, Value};
use snapshotd_store::testkit::{rename_tar, tar_files};
use snapshotd_store::{
    AdminStore, BuiltinStore, ImportRequest, Precision, RetentionPolicySpec, Store, StoreError,
    TimeRange,
};

use crate::common::{TestResult, assert_acked_prefix, backup, canon, db, seqs, store};

const DAY: i64 = 86_400;
const T0: i64 = 1_609_459_200; // 2021-01-01T00:00:00Z, a Friday

/// Copies database `name` from `a` into a fresh store through backup/import/restore.
fn copy_db(
    a: &BuiltinStore,
    name: &str,
) -> Result<(tempfile::TempDir, BuiltinStore), Box<dyn std::error::Error>> {
    let (d, b) = store()?;
    let req = ImportRequest {
        backup_database: Some(name.into()),
        ..Default::default()
    };
    let map = b.import_meta(&a.meta_snapshot()?, &req)?;
    for (old, new) in map.0 {
        let info = a.shard_info(old)?;
        let tar = rename_tar(&backup(a, old)?, name, &info.path.retention_policy, new)?;
        b.restore_shard(new, &mut tar.as_slice())?;
    }
    Ok((d, b))
}

#[test]
fn writes_route_to_aligned_groups_and_survive_backup_restore() -> TestResult {
    let (_d, a) = store()?;
    db(&a, "w")?;
    let body = format!(
        "cpu,host=h0 v=1.5,n=3i {T0}\ncpu,host=h1 s=\"a \\\"q\\\"\",b=true {}\nmem free=7u {}\n",
        T0 + 2 * DAY + 3600, // Sunday: same group as T0
        T0 + 20 * DAY
    );
    let st = a.write_lines("w", None, Precision::Seconds, body.as_bytes())?;
    assert_eq!((st.points, st.shards), (3, 2));
    a.write_lines(
        "w",
        Some("autogen"),
        Precision::Seconds,
        format!("cpu v=2 {}\n", T0 + 1).as_bytes(),
    )?;
    let shards = a.shards()?;
    assert_eq!(shards.len(), 2);
    // 7-day groups aligned as influx: the first starts Monday 2020-12-28.
    assert_eq!(shards[0].start_ns, (T0 - 4 * DAY) * 1_000_000_000);
    assert_eq!(
        shards[0].end_ns - shards[0].start_ns,
        7 * DAY * 1_000_000_000
    );
    let pts = a.read_points("w", None)?;
    assert_eq!(pts.len(), 4);
    // Points by series then time, fields by name.
    assert_eq!(pts[2].tags, [("host".to_string(), "h1".to_string())]);
    assert_eq!(
        pts[2].fields[1],
        ("s".to_string(), Value::String("a \"q\"".into()))
    );
    let (_d2, b) = copy_db(&a, "w")?;
    assert_eq!(canon(b.read_points("w", None)?), canon(pts));
    // The restored log takes new writes after the restored records.
    b.write_lines(
        "w",
        None,
        Precision::Seconds,
        format!("cpu v=9 {}\n", T0 + 2).as_bytes(),
    )?;
    assert_eq!(b.read_points("w", None)?.len(), 5);
    Ok(())
}

#[test]
fn bad_batches_apply_nothing() -> TestResult {
    let (_d, s) = store()?;
    assert!(matches!(
        s.write_lines("nope", None, Precision::Nanoseconds, b"m v=1 1\n"),
        Err(StoreError::NotFound { .. })
    ));
    db(&s, "w")?;
    let err = s
        .write_lines(
            "w",
            None,
            Precision::Seconds,
            format!("m v=1 {T0}\nm v=2 {T0}\nm v=\n").as_bytes(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("line 3"), "{err}");
    assert!(s.read_points("w", None)?.is_empty());
    assert!(s.shards()?.is_empty());
    assert!(matches!(
        s.write_lines("w", Some("nope"), Precision::Seconds, b"m v=1 1\n"),
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}

#[test]
fn retention_policy_defaults_and_reopen() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    {
        let s = BuiltinStore::open(dir.path())?;
        db(&s, "w")?;
        s.create_retention_policy(
            "w",
            &RetentionPolicySpec {
                name: "short".into(),
                duration: std::time::Duration::from_secs(86_400),
                shard_group_duration: std::time::Duration::ZERO,
                replication: 1,
                make_default: true,
            },
        )?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        s.write_lines(
            "w",
            None,
            Precision::Seconds,
            format!("m v=1 {now}\n").as_bytes(),
        )?;
        let shards = s.shards()?;
        assert_eq!(shards[0].path.retention_policy, "short");
        assert_eq!(shards[0].end_ns - shards[0].start_ns, 3_600_000_000_000);
        assert!(matches!(
            s.write_lines("w", None, Precision::Seconds, b"m v=1 1000\n"),
            Err(StoreError::Invalid(_))
        ));
    }
    let s = BuiltinStore::open(dir.path())?;
    assert_eq!(s.read_points("w", Some("short"))?.len(), 1);
    let rps = s.retention_policies("w")?;
    assert_eq!(rps.iter().filter(|(_, d)| *d).count(), 1);
    s.drop_database("w")?;
    assert!(s.databases()?.is_empty());
    assert!(!dir.path().join("data/w").exists());
    Ok(())
}

#[test]
fn export_keeps_only_points_in_window() -> TestResult {
    let (_d, a) = store()?;
    db(&a, "w")?;
    let body: String = (0..10)
        .map(|i| format!("m v={i}i {}\n", T0 + i * 60))
        .collect();
    a.write_lines("w", None, Precision::Seconds, body.as_bytes())?;
    let id = a.list_shards(Some("w"), None)?[0].shard_id;
    let range = TimeRange {
        start_ns: Some((T0 + 120) * 1_000_000_000),
        end_ns: Some((T0 + 300) * 1_000_000_000),
    };
    let mut out = Vec::new();
    a.export_shard(id, range, &mut out)?;
    // Restore the export into a copy of the database and read it back.
    let (_d2, b) = store()?;
    let req = ImportRequest {
        backup_database: Some("w".into()),
        ..Default::default()
    };
    let map = b.import_meta(&a.meta_snapshot()?, &req)?;
    let new = map.0[0].1;
    b.restore_shard(new, &mut rename_tar(&out, "w", "autogen", new)?.as_slice())?;
    let got: Vec<i64> = b
        .read_points("w", None)?
        .iter()
        .map(|p| p.time_ns / 1_000_000_000 - T0)
        .collect();
    assert_eq!(got, [120, 180, 240, 300]);
    Ok(())
}

#[test]
fn export_of_a_many_segment_log_streams_the_window() -> TestResult {
    let (d, a) = store()?;
    db(&a, "w")?;
    // ~1 KB per point, ~30 MB of log: several 8 MiB segments.
    let pad = "x".repeat(900);
    let n = 30_000i64;
    for chunk in (0..n).collect::<Vec<_>>().chunks(2_000) {
        let body: String = chunk
            .iter()
            .map(|i| format!("m,host=h{} v={i}i,s=\"{pad}\" {}\n", i % 4, T0 + i))
            .collect();
        a.write_lines("w", None, Precision::Seconds, body.as_bytes())?;
    }
    let id = a.list_shards(Some("w"), None)?[0].shard_id;
    let wal_dir = d.path().join(format!("data/data/w/autogen/{id}/wal"));
    let segments = std::fs::read_dir(&wal_dir)?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "wal"))
        })
        .count();
    assert!(segments >= 3, "want a many-segment log, got {segments}");
    let range = TimeRange {
        start_ns: Some((T0 + 7_001) * 1_000_000_000),
        end_ns: Some((T0 + 23_500) * 1_000_000_000),
    };
    let all = a.read_points("w", None)?;
    assert_eq!(all.len(), n as usize);
    let want: Vec<Point> = all
        .into_iter()
        .filter(|p| range.contains(p.time_ns))
        .collect();
    assert_eq!(want.len(), 16_500);
    let mut out = Vec::new();
    a.export_shard(id, range, &mut out)?;
    let files = tar_files(&out)?;
    // Only files influxd loads: the log's points in the window come as TSM files.
    assert!(
        files.keys().all(|k| k.ends_with(".tsm")),
        "{:?}",
        files.keys()
    );
    assert!(!files.is_empty());
    // Restore the export into a copy of the database: exactly the points in the window.
    let (_d2, b) = store()?;
    let req = ImportRequest {
        backup_database: Some("w".into()),
        ..Default::default()
    };
    let map = b.import_meta(&a.meta_snapshot()?, &req)?;
    let new = map.0[0].1;
    b.restore_shard(new, &mut rename_tar(&out, "w", "autogen", new)?.as_slice())?;
    assert!(
        canon(b.read_points("w", None)?) == canon(want),
        "exported points differ"
    );
    Ok(())
}

#[test]
fn backup_under_four_writers_is_a_consistent_prefix() -> TestResult {
    let (_d, a) = store()?;
    db(&a, "w")?;
    // Pre-create the shard so every writer appends to the same log.
    a.write_lines(
        "w",
        None,
        Precision::Seconds,
        format!("init v=0i {T0}\n").as_bytes(),
    )?;
    let id = a.list_shards(Some("w"), None)?[0].shard_id;
    let a = Arc::new(a);
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..4).map(|_| AtomicU64::new(0)).collect());
    let mut handles = Vec::new();
    for w in 0..4u64 {
        let (a, stop, acked) = (a.clone(), stop.clone(), acked.clone());
        handles.push(thread::spawn(move || -> Result<(), StoreError> {
            let mut seq = 0i64;
            while !stop.load(Ordering::SeqCst) && seq < 1_000_000 {
                // Batches of 3 points: all or none must come back.
                let body: String = (0..3)
                    .map(|k| format!("p,w={w} s={}i {}\n", seq + k, T0 + seq + k))
                    .collect();
                a.write_lines("w", None, Precision::Seconds, body.as_bytes())?;
                seq += 3;
                acked[w as usize].store(seq as u64, Ordering::SeqCst);
            }
            Ok(())
        }));
    }
    // A writer that fails ends its thread: stop waiting then (the join reports the error).
    let running =
        |hs: &[thread::JoinHandle<Result<(), StoreError>>]| !hs.iter().any(|h| h.is_finished());
    while running(&handles) && acked.iter().any(|x| x.load(Ordering::SeqCst) < 30) {
        thread::yield_now();
    }
    let before: Vec<u64> = acked.iter().map(|x| x.load(Ordering::SeqCst)).collect();
    let tar = backup(a.as_ref(), id)?;
    while running(&handles)
        && acked
            .iter()
            .zip(&before)
            .any(|(x, b)| x.load(Ordering::SeqCst) < b + 30)
    {
        thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().map_err(|_| "writer panicked")??;
    }
    assert!(!tar_files(&tar)?.is_empty());
    let (_d2, b) = store()?;
    let req = ImportRequest {
        backup_database: Some("w".into()),
        ..Default::default()
    };
    let map = b.import_meta(&a.meta_snapshot()?, &req)?;
    let new = map.0[0].1;
    b.restore_shard(new, &mut rename_tar(&tar, "w", "autogen", new)?.as_slice())?;
    let restored = b.read_points("w", None)?;
    let live = a.read_points("w", None)?;
    for w in 0..4u64 {
        let n = assert_acked_prefix(&restored, w, before[w as usize], "backup");
        assert!(
            seqs(&live, w).len() as u64 > n,
            "writer {w}: backup not point-in-time"
        );
    }
    Ok(())
}

/// A sink that performs a write on the store while the backup is streaming into it.
struct WriteDuringBackup<'a> {
    store: &'a BuiltinStore,
    result: Option<Result<(), StoreError>>,
    out: Vec<u8>,
}

impl std::io::Write for WriteDuringBackup<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.result.is_none() {
            let body = format!("late v=1i {}\n", T0 + 5);
            self.result = Some(
                self.store
                    .write_lines("w", None, Precision::Seconds, body.as_bytes())
                    .map(|_| ()),
            );
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn writes_proceed_while_an_idle_shard_is_backed_up() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    {
        let s = BuiltinStore::open(dir.path())?;
        db(&s, "w")?;
        s.write_lines(
            "w",
            None,
            Precision::Seconds,
            format!("m v=0i {T0}\n").as_bytes(),
        )?;
    }
    // Reopened: no writer is open on the shard when the backup starts.
    let s = BuiltinStore::open(dir.path())?;
    let id = s.list_shards(Some("w"), None)?[0].shard_id;
    let mut sink = WriteDuringBackup {
        store: &s,
        result: None,
        out: Vec::new(),
    };
    s.backup_shard(id, None, &mut sink)?;
    assert!(matches!(sink.result, Some(Ok(()))), "{:?}", sink.result);
    assert_eq!(s.read_points("w", None)?.len(), 2);
    // The backup is the point in time before the late write.
    let (_d2, b) = store()?;
    let req = ImportRequest {
        backup_database: Some("w".into()),
        ..Default::default()
    };
    let new = b.import_meta(&s.meta_snapshot()?, &req)?.0[0].1;
    b.restore_shard(
        new,
        &mut rename_tar(&sink.out, "w", "autogen", new)?.as_slice(),
    )?;
    assert_eq!(b.read_points("w", None)?.len(), 1);
    Ok(())
}

#[test]
fn torn_log_tail_after_a_crash_is_repaired_on_next_write() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    let seg;
    {
        let s = BuiltinStore::open(dir.path())?;
        db(&s, "w")?;
        for i in 0..3 {
            s.write_lines(
                "w",
                None,
                Precision::Seconds,
                format!("m v={i}i {}\n", T0 + i).as_bytes(),
            )?;
        }
        let id = s.list_shards(Some("w"), None)?[0].shard_id;
        seg = dir.path().join(format!("data/w/autogen/{id}/wal"));
    }
    // The tail segment (a clean close compacts and starts a new one).
    let mut segs: Vec<_> = std::fs::read_dir(&seg)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    segs.retain(|p| p.extension().is_some_and(|x| x == "wal"));
    segs.sort();
    let seg = segs.pop().ok_or("no segment")?;
    // A torn append: a frame header promising 32 bytes, followed by 8 bytes only.
    let mut bytes = std::fs::read(&seg)?;
    let end = bytes.iter().rposition(|b| *b != 0).ok_or("empty segment")? + 1;
    let at = end.div_ceil(8) * 8;
    bytes[at..at + 8].copy_from_slice(&32u64.to_le_bytes());
    bytes[at + 8..at + 16].copy_from_slice(&[0xAB; 8]);
    std::fs::write(&seg, &bytes)?;
    let s = BuiltinStore::open(dir.path())?;
    assert_eq!(s.read_points("w", None)?.len(), 3);
    s.write_lines(
        "w",
        None,
        Precision::Seconds,
        format!("m v=9i {}\n", T0 + 9).as_bytes(),
    )?;
    let got: Vec<i64> = s
        .read_points("w", None)?
        .iter()
        .map(|p| p.time_ns / 1_000_000_000 - T0)
        .collect();
    assert_eq!(got, [0, 1, 2, 9]);
    Ok(())
}
