//! The WAL lifecycle of the built-in store: background compaction under writers and
//! concurrent backups (each restores to a consistent prefix holding every point acked
//! before it began), a bounded log after quiescence, DROP after compaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use snapshotd_store::testkit::{rename_tar, tar_files};
use snapshotd_store::{
    AdminStore, BuiltinStore, CompactionPolicy, ImportRequest, Precision, RestoreLimits, Store,
    StoreError,
};

use crate::common::{TestResult, assert_acked_prefix, backup, db, store};

const T0: i64 = 1_609_459_200; // 2021-01-01T00:00:00Z
const WRITERS: u64 = 4;
const BACKUPS: usize = 20;

fn open(dir: &std::path::Path, policy: CompactionPolicy) -> Result<BuiltinStore, StoreError> {
    BuiltinStore::open_with(dir, RestoreLimits::default(), policy)
}

fn small_policy() -> CompactionPolicy {
    CompactionPolicy::default()
        .with_thresholds(25, 256 * 1024)
        .with_idle(Duration::from_millis(100), Duration::from_millis(10))
        .with_segment_bytes(64 * 1024)
        .with_merge_files(2)
}

type Writers = Vec<thread::JoinHandle<Result<(), StoreError>>>;

/// Writers appending batches of 3 points `p,w=W s=SEQi` until `stop`.
fn start_writers(
    a: &Arc<BuiltinStore>,
    stop: &Arc<AtomicBool>,
    acked: &Arc<Vec<AtomicU64>>,
) -> Writers {
    (0..WRITERS)
        .map(|w| {
            let (a, stop, acked) = (a.clone(), stop.clone(), acked.clone());
            thread::spawn(move || -> Result<(), StoreError> {
                let mut seq = 0i64;
                while !stop.load(Ordering::SeqCst) && seq < 3_000_000 {
                    let body: String = (0..3)
                        .map(|k| format!("p,w={w} s={}i {}\n", seq + k, T0 + seq + k))
                        .collect();
                    a.write_lines("w", None, Precision::Seconds, body.as_bytes())?;
                    seq += 3;
                    acked[w as usize].store(seq as u64, Ordering::SeqCst);
                }
                Ok(())
            })
        })
        .collect()
}

/// Polls `root` until a merged TSM file (generation sequence above 1) exists, or `limit`.
fn wait_for_merged_file(root: &std::path::Path, limit: Duration) {
    fn merged_in(d: &std::path::Path) -> bool {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                (name.ends_with(".tsm") && !name.ends_with("-000000001.tsm"))
                    || (p.is_dir() && merged_in(&p))
            })
    }
    let t = std::time::Instant::now();
    while !merged_in(root) && t.elapsed() < limit {
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn writers_compactions_and_20_backups_each_restore_a_consistent_prefix() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    let a = Arc::new(open(dir.path(), small_policy())?);
    db(&a, "w")?;
    a.write_lines(
        "w",
        None,
        Precision::Seconds,
        format!("init v=0i {T0}\n").as_bytes(),
    )?;
    let id = a.list_shards(Some("w"), None)?[0].shard_id;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let writers = start_writers(&a, &stop, &acked);
    let mut backups = Vec::new();
    for k in 0..BACKUPS {
        let (a, acked) = (a.clone(), acked.clone());
        let root = dir.path().to_path_buf();
        backups.push(thread::spawn(
            move || -> Result<(Vec<u64>, Vec<u8>), StoreError> {
                thread::sleep(Duration::from_millis(15 * k as u64));
                if k == BACKUPS - 1 {
                    // The last backup waits (on a loaded machine) until a merge has run.
                    wait_for_merged_file(&root, Duration::from_secs(60));
                }
                let before: Vec<u64> = acked.iter().map(|x| x.load(Ordering::SeqCst)).collect();
                let mut out = Vec::new();
                a.backup_shard(id, None, &mut out)?;
                Ok((before, out))
            },
        ));
    }
    let mut taken = Vec::new();
    for b in backups {
        taken.push(b.join().map_err(|_| "backup panicked")??);
    }
    stop.store(true, Ordering::SeqCst);
    for h in writers {
        h.join().map_err(|_| "writer panicked")??;
    }
    let stats = a.log_stats(id)?;
    assert!(stats.compacted_through > 0, "no compaction ran: {stats:?}");
    let act = a.compaction_activity();
    assert!(act.started > 0 && act.lock_holds > 0, "{act:?}");
    let (_d2, b) = store()?;
    let req = ImportRequest {
        backup_database: Some("w".into()),
        ..Default::default()
    };
    let new = b.import_meta(&a.meta_snapshot()?, &req)?.0[0].1;
    let mut tsm_files = 0;
    let mut merged = 0;
    for (k, (before, tar)) in taken.iter().enumerate() {
        let files = tar_files(tar)?;
        // A merged file keeps its newest input's generation with the next sequence.
        merged += files
            .keys()
            .filter(|n| !n.ends_with("-000000001.tsm"))
            .count();
        assert!(
            files.keys().all(|n| n.ends_with(".tsm")),
            "backup {k}: {:?}",
            files.keys()
        );
        tsm_files += files.len();
        b.restore_shard(new, &mut rename_tar(tar, "w", "autogen", new)?.as_slice())?;
        let restored = b.read_points("w", None)?;
        for w in 0..WRITERS {
            assert_acked_prefix(&restored, w, before[w as usize], &format!("backup {k}"));
        }
    }
    assert!(
        tsm_files > BACKUPS,
        "backups should mix compacted files and tails"
    );
    assert!(
        merged > 0,
        "no backup ran after a merge of TSM files: {:?}",
        tar_files(&taken[BACKUPS - 1].1)?.keys()
    );
    Ok(())
}

/// Polls until every shard of the store has nothing left to compact.
fn wait_quiescent(s: &BuiltinStore) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut busy = false;
        for sh in s.shards()? {
            let l = s.log_stats(sh.path.shard_id)?;
            busy |= l.last_index > l.compacted_through;
        }
        if !busy {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the idle compaction never caught up".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn log_stays_bounded_after_many_writes_and_reopen_replays_only_the_tail() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    let written = 2 * 400 * 50;
    {
        let s = open(dir.path(), small_policy())?;
        db(&s, "w")?;
        for b in 0..400i64 {
            // Two shards (weeks apart), 50 points each per batch.
            let body: String = (0..100)
                .map(|k| {
                    let t = T0 + (k % 2) * 8 * 86_400 + b * 100 + k;
                    format!("cpu,host=h{} v={}.5,n={k}i {t}\n", k % 5, b * 100 + k)
                })
                .collect();
            s.write_lines("w", None, Precision::Seconds, body.as_bytes())?;
        }
        wait_quiescent(&s)?;
        for sh in s.shards()? {
            let l = s.log_stats(sh.path.shard_id)?;
            assert_eq!(l.last_index, 400);
            assert!(
                l.entries_on_disk * 10 < l.last_index,
                "shard {}: {l:?}",
                sh.path.shard_id
            );
        }
        assert_eq!(s.read_points("w", None)?.len(), written);
    }
    let s = open(dir.path(), small_policy())?;
    for sh in s.shards()? {
        let l = s.log_stats(sh.path.shard_id)?;
        assert_eq!(l.compacted_through, 400, "{l:?}");
        assert!(l.entries_on_disk * 10 < 400, "reopen reads {l:?}");
    }
    assert_eq!(s.read_points("w", None)?.len(), written);
    Ok(())
}

#[test]
fn drop_after_compaction_leaves_nothing_and_the_name_is_reusable() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    let s = open(dir.path(), small_policy())?;
    db(&s, "w")?;
    for b in 0..60i64 {
        s.write_lines(
            "w",
            None,
            Precision::Seconds,
            format!("m v={b}i {}\n", T0 + b).as_bytes(),
        )?;
    }
    s.compact_all()?;
    let id = s.list_shards(Some("w"), None)?[0].shard_id;
    assert!(s.log_stats(id)?.compacted_through > 0);
    s.drop_database("w")?;
    assert!(!dir.path().join("data/w").exists());
    db(&s, "w")?;
    s.write_lines(
        "w",
        None,
        Precision::Seconds,
        format!("m v=7i {T0}\n").as_bytes(),
    )?;
    s.compact_all()?;
    let pts = s.read_points("w", None)?;
    assert_eq!(pts.len(), 1);
    let tar = backup(&s, s.list_shards(Some("w"), None)?[0].shard_id)?;
    assert_eq!(tar_files(&tar)?.len(), 1);
    Ok(())
}

/// The nice values of this process's threads whose name starts with `name` (Linux).
fn thread_nices(name: &str) -> Vec<i64> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            if !comm.trim().starts_with(name) {
                return None;
            }
            nice_of(&std::fs::read_to_string(t.path().join("stat")).ok()?)
        })
        .collect()
}

/// The nice value in a `/proc/.../stat` line (field 19; fields counted after the name).
fn nice_of(stat: &str) -> Option<i64> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(16)?
        .parse()
        .ok()
}

#[cfg(target_os = "linux")]
#[test]
fn the_compaction_worker_runs_at_a_lower_cpu_priority() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    let base = nice_of(&std::fs::read_to_string("/proc/self/stat")?).ok_or("no nice value")?;
    // Other tests' compaction workers run at the default increment (10); this one asks for 3.
    let s = open(dir.path(), small_policy().with_nice(3))?;
    let want = (base + 3).min(19);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !thread_nices("snapshotd-encod").contains(&want) {
        if Instant::now() > deadline {
            let got = thread_nices("snapshotd-encod");
            return Err(format!("no compaction worker at nice {want}: {got:?}").into());
        }
        thread::sleep(Duration::from_millis(10));
    }
    drop(s);
    Ok(())
}

/// Sizes of the files in each shard's `wal/` directory, by shard directory.
fn wal_files(root: &std::path::Path) -> Vec<Vec<(String, u64)>> {
    let rp = root.join("data/w/autogen");
    let mut out = Vec::new();
    for shard in std::fs::read_dir(rp).into_iter().flatten().flatten() {
        let files = std::fs::read_dir(shard.path().join("wal"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|f| {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                (f.file_name().to_string_lossy().into_owned(), len)
            })
            .collect();
        out.push(files);
    }
    out
}

#[test]
fn idle_shards_give_their_preallocated_log_space_back() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    let s = open(dir.path(), small_policy())?;
    db(&s, "w")?;
    for b in 0..30i64 {
        // Three shards, weeks apart.
        let body: String = (0..30)
            .map(|k| format!("m,k={k} v={b}i {}\n", T0 + (k % 3) * 8 * 86_400 + b))
            .collect();
        s.write_lines("w", None, Precision::Seconds, body.as_bytes())?;
    }
    let cold = |shards: &[Vec<(String, u64)>]| {
        shards.len() == 3
            && shards.iter().all(|files| {
                files
                    .iter()
                    .all(|(n, len)| n.ends_with(".wal") && *len < 4096)
            })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = wal_files(dir.path());
    while !cold(&seen) {
        if Instant::now() > deadline {
            return Err(format!("shard logs still hold preallocated space: {seen:?}").into());
        }
        thread::sleep(Duration::from_millis(20));
        seen = wal_files(dir.path());
    }
    // A closed log opens again on the next write; nothing was lost.
    s.write_lines(
        "w",
        None,
        Precision::Seconds,
        format!("m,k=0 v=99i {}\n", T0 + 99).as_bytes(),
    )?;
    assert_eq!(s.read_points("w", None)?.len(), 30 * 30 + 1);
    let id = s.list_shards(Some("w"), None)?[0].shard_id;
    assert!(!tar_files(&backup(&s, id)?)?.is_empty());
    Ok(())
}
