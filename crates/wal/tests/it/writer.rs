//! Writer semantics: create/open, raft overwrites, snapshots, cuts, locks, release, purge.

use std::path::Path;

use snapshotd_wal::{
    Entry, Error, HardState, OpenMode, Snapshot, Wal, WalOptions, WalReader, list_segments, purge,
    read_like_etcd,
};

fn small() -> WalOptions {
    WalOptions::default().segment_size_bytes(4096)
}

fn ents(range: std::ops::RangeInclusive<u64>, term: u64, size: usize) -> Vec<Entry> {
    range
        .map(|i| Entry::new(i, term, vec![(i % 251) as u8; size]))
        .collect()
}

fn read(dir: &Path, snap: Snapshot) -> snapshotd_wal::WalContents {
    WalReader::open(dir, snap)
        .expect("open")
        .read_all()
        .expect("read")
}

#[test]
fn create_refuses_existing_wal_and_cleans_tmp() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let w = Wal::create_with(&dir, b"m", &small()).expect("create");
    assert!(!tmp.path().join("wal.tmp").exists());
    assert!(matches!(
        Wal::create_with(&dir, b"m", &small()),
        Err(Error::Exist { .. })
    ));
    w.close().expect("close");
    let names = list_segments(&dir).expect("list");
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].name, "0000000000000000-0000000000000000.wal");
    let len = std::fs::metadata(dir.join(&names[0].name))
        .expect("stat")
        .len();
    assert_eq!(len, 4096, "first segment is preallocated");
}

#[test]
fn overwrite_of_uncommitted_suffix_and_reopen_append() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"meta", &small()).expect("create");
    w.save(&HardState::new(1, 1, 2), &ents(1..=5, 1, 10))
        .expect("save");
    w.save(&HardState::new(2, 1, 2), &ents(3..=3, 2, 7))
        .expect("overwrite");
    w.close().expect("close");
    let c = read(&dir, Snapshot::default());
    assert_eq!(
        c.entries
            .iter()
            .map(|e| (e.index, e.term))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 1), (3, 2)]
    );
    assert_eq!(c.hardstate, HardState::new(2, 1, 2));
    assert_eq!(c.metadata.as_deref(), Some(&b"meta"[..]));
    assert!(c.snapshot_found);

    let (mut w, c2) = Wal::open_with(&dir, Snapshot::default(), &small())
        .expect("open")
        .read_all()
        .expect("read_all");
    assert_eq!(c2, c);
    assert_eq!(w.last_index(), 3);
    w.save(&HardState::new(2, 1, 4), &ents(4..=4, 2, 3))
        .expect("append");
    w.close().expect("close");
    let c3 = read(&dir, Snapshot::default());
    assert_eq!(c3.entries.len(), 4);
    assert_eq!(c3.hardstate.commit, 4);
}

#[test]
fn gap_in_indexes_is_slice_out_of_range() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"", &small()).expect("create");
    w.save(&HardState::default(), &ents(1..=2, 1, 1))
        .expect("save");
    w.save(&HardState::default(), &ents(5..=5, 1, 1))
        .expect("save");
    w.close().expect("close");
    let err = WalReader::open(&dir, Snapshot::default())
        .expect("open")
        .read_all()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SliceOutOfRange {
                entry_index: 5,
                have: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "wal: slice bounds out of range");
}

#[test]
fn snapshots_select_files_and_match_terms() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"m", &small()).expect("create");
    for i in 1..=60u64 {
        w.save(&HardState::new(1, 1, i), &ents(i..=i, 1, 300))
            .expect("save");
        if i % 20 == 0 {
            w.save_snapshot(&Snapshot::new(i, 1)).expect("snap");
        }
    }
    w.close().expect("close");
    assert!(
        list_segments(&dir).expect("list").len() > 3,
        "cuts happened"
    );
    let c = read(&dir, Snapshot::new(40, 1));
    assert!(c.snapshot_found);
    assert_eq!(c.entries.first().map(|e| e.index), Some(41));
    assert_eq!(c.entries.last().map(|e| e.index), Some(60));
    let o = read_like_etcd(&dir, Snapshot::new(40, 2), OpenMode::Read, &small());
    assert_eq!(
        o.read_error.map(|e| e.to_string()).as_deref(),
        Some("wal: snapshot mismatch")
    );
    let o = read_like_etcd(&dir, Snapshot::new(45, 1), OpenMode::Read, &small());
    assert_eq!(
        o.read_error.map(|e| e.to_string()).as_deref(),
        Some("wal: snapshot not found")
    );
    assert_eq!(
        o.contents.entries.first().map(|e| e.index),
        Some(46),
        "data still returned"
    );
    // The first file is gone → opening at {0,0} from a later-only directory fails.
    let names = list_segments(&dir).expect("list");
    std::fs::remove_file(dir.join(&names[0].name)).expect("rm");
    let o = read_like_etcd(&dir, Snapshot::new(0, 0), OpenMode::Read, &small());
    assert_eq!(
        o.open_error.map(|e| e.to_string()).as_deref(),
        Some("wal: file not found")
    );
}

#[test]
fn cuts_truncate_old_segments_and_chain_metadata_and_state() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"meta-x", &small()).expect("create");
    for i in 1..=100u64 {
        w.save(&HardState::new(3, 2, i), &ents(i..=i, 3, 200))
            .expect("save");
    }
    w.close().expect("close");
    let names = list_segments(&dir).expect("list");
    assert!(names.len() >= 5);
    for (k, n) in names.iter().enumerate() {
        assert_eq!(n.seq, k as u64);
        let len = std::fs::metadata(dir.join(&n.name)).expect("stat").len();
        if k + 1 < names.len() {
            assert!(len >= 4096 && len.is_multiple_of(8), "{}: {len}", n.name);
        } else {
            assert_eq!(len, 4096, "tail keeps its preallocation");
        }
    }
    // Reading from any cut point works: each segment re-states metadata and hard state.
    for n in &names[1..] {
        let c = read(&dir, Snapshot::new(n.index - 1, 0));
        assert_eq!(c.metadata.as_deref(), Some(&b"meta-x"[..]));
        assert_eq!(c.hardstate, HardState::new(3, 2, 100));
        assert!(!c.snapshot_found);
        assert_eq!(c.entries.last().map(|e| e.index), Some(100));
    }
}

#[test]
fn writer_locks_exclude_other_writers_but_not_readers() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"m", &small()).expect("create");
    w.save(&HardState::new(1, 1, 1), &ents(1..=3, 1, 10))
        .expect("save");
    let err = Wal::open_with(&dir, Snapshot::default(), &small()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert_eq!(err.to_string(), "fileutil: file already locked");
    let o = read_like_etcd(&dir, Snapshot::default(), OpenMode::Write, &small());
    assert_eq!(
        o.open_error.map(|e| e.to_string()).as_deref(),
        Some("fileutil: file already locked")
    );
    assert_eq!(read(&dir, Snapshot::default()).entries.len(), 3);
    assert!(matches!(
        snapshotd_wal::try_repair(&dir),
        Err(Error::Locked { .. })
    ));
    w.close().expect("close");
    let (w2, c) = Wal::open_with(&dir, Snapshot::default(), &small())
        .expect("open after close")
        .read_all()
        .expect("read");
    assert_eq!(c.entries.len(), 3);
    w2.close().expect("close");
}

#[test]
fn release_lock_to_follows_etcd_rule_and_enables_purge() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"m", &small()).expect("create");
    for i in 1..=120u64 {
        w.save(&HardState::new(1, 1, i), &ents(i..=i, 1, 150))
            .expect("save");
    }
    let names = list_segments(&dir).expect("list");
    assert!(names.len() >= 6);
    assert_eq!(w.locked_segments().len(), names.len());
    // Nothing can be purged while the writer holds every segment.
    assert!(purge(&dir, 1).expect("purge").is_empty());
    // Release up to the index in the name of the 4th file: keeps the 3rd (the newest
    // file starting below that index) and everything after it.
    let idx = names[3].index;
    w.release_lock_to(idx).expect("release");
    let held = w.locked_segments();
    assert_eq!(
        held.first()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str()),
        Some(names[2].name.as_str())
    );
    let removed = purge(&dir, 1).expect("purge");
    assert_eq!(removed.len(), 2, "only the released files go: {removed:?}");
    assert_eq!(list_segments(&dir).expect("list")[0].name, names[2].name);
    // Releasing past the end keeps only the tail.
    w.release_lock_to(u64::MAX).expect("release");
    assert_eq!(w.locked_segments().len(), 1);
    w.close().expect("close");
}

#[test]
fn oversized_records_are_refused_on_write() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let opts = small().max_record_bytes(1024);
    let mut w = Wal::create_with(&dir, b"m", &opts).expect("create");
    let err = w
        .save(&HardState::default(), &ents(1..=1, 1, 2000))
        .unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err:?}");
    w.save(&HardState::default(), &ents(1..=1, 1, 900))
        .expect("fits");
    w.close().expect("close");
    assert_eq!(read(&dir, Snapshot::default()).entries.len(), 1);
}

#[test]
fn reopen_zeroes_stale_bytes_after_the_last_record() {
    // etcd #6515: a zero length word followed by stale non-zero bytes must not survive an
    // append, or later records would be read back with CRC errors.
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"m", &small()).expect("create");
    w.save(&HardState::new(1, 1, 1), &ents(1..=2, 1, 10))
        .expect("save");
    w.close().expect("close");
    let seg = dir.join(&list_segments(&dir).expect("list")[0].name);
    let mut bytes = std::fs::read(&seg).expect("read");
    let end = bytes.iter().rposition(|&b| b != 0).expect("data") + 1;
    let garbage_at = (end + 8 + 512) & !7;
    bytes[garbage_at..garbage_at + 64].fill(0xab);
    std::fs::write(&seg, &bytes).expect("write");
    let (mut w, c) = Wal::open_with(&dir, Snapshot::default(), &small())
        .expect("open")
        .read_all()
        .expect("read_all");
    assert_eq!(c.entries.len(), 2);
    let after = std::fs::read(&seg).expect("read");
    assert!(after[end..].iter().all(|&b| b == 0), "tail zeroed");
    assert_eq!(after.len(), bytes.len(), "size kept");
    w.save(&HardState::new(1, 1, 3), &ents(3..=40, 1, 30))
        .expect("append");
    w.close().expect("close");
    assert_eq!(read(&dir, Snapshot::default()).entries.len(), 40);
}

#[test]
fn shared_wal_group_commit_keeps_every_save() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let w = Wal::create_with(&dir, b"g", &small()).expect("create");
    let shared = std::sync::Arc::new(snapshotd_wal::SharedWal::new(w));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let s = shared.clone();
            std::thread::spawn(move || {
                for _ in 0..40 {
                    s.save_with(|next| {
                        (
                            HardState::new(1, 1, next),
                            vec![Entry::new(next, 1, vec![t; 300])],
                        )
                    })
                    .expect("save");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("join");
    }
    let shared = std::sync::Arc::try_unwrap(shared).expect("sole owner");
    shared.into_inner().expect("inner").close().expect("close");
    let c = read(&dir, Snapshot::default());
    assert_eq!(c.entries.len(), 320);
    assert!(
        c.entries
            .iter()
            .enumerate()
            .all(|(k, e)| e.index == k as u64 + 1)
    );
    let mut per_thread = [0usize; 8];
    for e in &c.entries {
        per_thread[e.data.as_ref().expect("data")[0] as usize] += 1;
    }
    assert_eq!(per_thread, [40; 8]);
    assert!(
        list_segments(&dir).expect("list").len() > 1,
        "cuts happened under concurrency"
    );
}

#[test]
fn into_writer_reopens_like_read_all_without_keeping_entries() {
    let tmp = snapshotd_testutil::temp_dir();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dir in [&a, &b] {
        let mut w = Wal::create_with(dir, b"meta", &small()).expect("create");
        w.save(&HardState::new(1, 1, 2), &ents(1..=40, 1, 300))
            .expect("save");
        w.save(&HardState::new(2, 1, 20), &ents(30..=31, 2, 9))
            .expect("overwrite");
        w.close().expect("close");
    }
    let (mut wa, full) = Wal::open_with(&a, Snapshot::default(), &small())
        .expect("open")
        .read_all()
        .expect("read_all");
    let (mut wb, lean) = Wal::open_with(&b, Snapshot::default(), &small())
        .expect("open")
        .into_writer()
        .expect("into_writer");
    assert_eq!(full.entries.len(), 31);
    assert!(lean.entries.is_empty());
    assert_eq!(
        (lean.metadata, lean.hardstate),
        (full.metadata, full.hardstate)
    );
    assert_eq!(lean.snapshot_found, full.snapshot_found);
    assert_eq!(wb.last_index(), wa.last_index());
    for w in [&mut wa, &mut wb] {
        for k in 0..6u64 {
            let first = 32 + k * 5;
            w.save(
                &HardState::new(2, 1, first + 4),
                &ents(first..=first + 4, 2, 1000),
            )
            .expect("append");
        }
    }
    wa.close().expect("close");
    wb.close().expect("close");
    let files = |d: &Path| {
        list_segments(d)
            .expect("list")
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    std::fs::read(d.join(&s.name)).expect("read"),
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(files(&a).len() > 3, "cuts happened");
    assert_eq!(files(&a), files(&b));

    // The overwrite bound is still checked without the entries: a gap is refused.
    let c = tmp.path().join("c");
    let mut w = Wal::create_with(&c, b"", &small()).expect("create");
    w.save(&HardState::default(), &ents(1..=2, 1, 1))
        .expect("save");
    w.save(&HardState::default(), &ents(5..=5, 1, 1))
        .expect("save");
    w.close().expect("close");
    let err = Wal::open_with(&c, Snapshot::default(), &small())
        .expect("open")
        .into_writer()
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, Error::SliceOutOfRange { have: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn cut_at_snapshot_lets_every_older_segment_go() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"m", &small()).expect("create");
    for i in 1..=40u64 {
        w.save(&HardState::new(1, 1, i), &ents(i..=i, 1, 150))
            .expect("save");
    }
    let snap = Snapshot::new(40, 1);
    let err = w.cut_at_snapshot(&Snapshot::new(39, 1)).unwrap_err();
    assert!(matches!(err, Error::EntriesAfterSnapshot { .. }), "{err:?}");
    assert!(w.cut_at_snapshot(&snap).expect("cut"));
    assert!(
        !dir.join("0.tmp").exists() && !dir.join("1.tmp").exists(),
        "no spare readied for a log that caught up"
    );
    assert!(!w.cut_at_snapshot(&snap).expect("second cut"), "no gain");
    let names = list_segments(&dir).expect("list");
    let tail = names.last().expect("tail");
    assert_eq!(tail.index, 40, "named at the snapshot: {names:?}");
    w.release_lock_to(41).expect("release");
    assert_eq!(w.locked_segments().len(), 1);
    assert_eq!(purge(&dir, 1).expect("purge").len(), names.len() - 1);
    // Opened at the snapshot, the log is the new segment alone: no entries yet.
    let c = read(&dir, snap);
    assert!(c.snapshot_found && c.entries.is_empty(), "{c:?}");
    w.save(&HardState::new(1, 1, 42), &ents(41..=42, 1, 150))
        .expect("save after");
    w.close().expect("close");
    let c = read(&dir, snap);
    let got: Vec<u64> = c.entries.iter().map(|e| e.index).collect();
    assert_eq!(got, [41, 42]);
    // An open before the snapshot finds no segment (they were purged).
    assert!(matches!(
        WalReader::open(&dir, Snapshot::new(39, 1)),
        Err(Error::FileNotFound)
    ));
}

#[test]
fn close_trimmed_gives_back_the_tail_preallocation_and_reopen_appends() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let opts = WalOptions::default().segment_size_bytes(1 << 20);
    let mut w = Wal::create_with(&dir, b"m", &opts).expect("create");
    w.save(&HardState::new(1, 1, 3), &ents(1..=3, 1, 100))
        .expect("save");
    w.close_trimmed().expect("close");
    let tail = dir.join(&list_segments(&dir).expect("list")[0].name);
    let len = std::fs::metadata(&tail).expect("stat").len();
    assert!(len < 1024, "tail still {len} bytes");
    assert!(!dir.join("0.tmp").exists() && !dir.join("1.tmp").exists());
    let (mut w, c) = Wal::open_with(&dir, Snapshot::default(), &opts)
        .expect("open")
        .read_all()
        .expect("read");
    assert_eq!(c.entries.len(), 3);
    w.save(&HardState::new(1, 1, 5), &ents(4..=5, 1, 100))
        .expect("append after a trimmed close");
    w.close().expect("close");
    let got: Vec<u64> = read(&dir, Snapshot::default())
        .entries
        .iter()
        .map(|e| e.index)
        .collect();
    assert_eq!(got, [1, 2, 3, 4, 5]);
}

#[test]
fn a_size_cut_after_a_snapshot_cut_makes_its_spare_then() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"m", &small()).expect("create");
    w.save(&HardState::new(1, 1, 1), &ents(1..=1, 1, 100))
        .expect("save");
    assert!(w.cut_at_snapshot(&Snapshot::new(1, 1)).expect("cut"));
    for i in 2..=60u64 {
        w.save(&HardState::new(1, 1, i), &ents(i..=i, 1, 150))
            .expect("save past a segment");
    }
    w.close().expect("close");
    assert!(list_segments(&dir).expect("list").len() >= 3);
    let got = read(&dir, Snapshot::new(1, 1)).entries.len();
    assert_eq!(got, 59);
}
