//! Point-in-time views: consistent prefixes under a live writer, purge protection.

use std::io::Read;

use snapshotd_wal::{
    Entry, HardState, Snapshot, Wal, WalOptions, list_segments, open_for_read, purge,
};

fn opts() -> WalOptions {
    WalOptions::default().segment_size_bytes(8192)
}

#[test]
fn view_ships_only_valid_bytes_while_writer_appends() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"m", &opts()).expect("create");
    for i in 1..=50u64 {
        w.save(
            &HardState::new(1, 1, i),
            &[Entry::new(i, 1, vec![7u8; 300])],
        )
        .expect("save");
    }
    let view = open_for_read(&dir, Snapshot::default()).expect("view");
    // The writer keeps going; the view is unaffected.
    for i in 51..=80u64 {
        w.save(
            &HardState::new(1, 1, i),
            &[Entry::new(i, 1, vec![8u8; 300])],
        )
        .expect("save");
    }
    let c = view.read_all().expect("read view");
    assert_eq!(c.entries.len(), 50);
    assert_eq!(c.hardstate.commit, 50);
    // Writer-held segments are not share-locked by the view (that would block the writer).
    assert!(view.segments().iter().all(|s| !s.is_locked()));
    // Shipping exactly valid_len bytes per segment gives a valid, repaired-looking copy.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).expect("mkdir");
    for s in view.segments() {
        let mut buf = Vec::new();
        s.reader().read_to_end(&mut buf).expect("read segment");
        assert_eq!(buf.len() as u64, s.valid_len());
        let name = s.path().file_name().expect("name");
        std::fs::write(copy.join(name), buf).expect("write");
    }
    let back = snapshotd_wal::WalReader::open(&copy, Snapshot::default())
        .expect("open copy")
        .read_all()
        .expect("read copy");
    assert_eq!(back, c);
    snapshotd_wal::verify(&copy, Snapshot::default()).expect("verify copy");
    drop(view);
    w.close().expect("close");
}

#[test]
fn view_blocks_purge_of_released_segments_until_dropped() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"m", &opts()).expect("create");
    for i in 1..=200u64 {
        w.save(
            &HardState::new(1, 1, i),
            &[Entry::new(i, 1, vec![1u8; 200])],
        )
        .expect("save");
    }
    w.release_lock_to(u64::MAX).expect("release");
    let n = list_segments(&dir).expect("list").len();
    assert!(n >= 4);
    let view = open_for_read(&dir, Snapshot::default()).expect("view");
    let locked: Vec<bool> = view.segments().iter().map(|s| s.is_locked()).collect();
    assert!(
        locked[..n - 1].iter().all(|&l| l),
        "released segments are share-locked: {locked:?}"
    );
    assert!(!locked[n - 1], "the writer's tail is not");
    assert!(
        purge(&dir, 1).expect("purge").is_empty(),
        "purge stops at the view's lock"
    );
    let c = view.read_all().expect("read");
    assert_eq!(c.entries.len(), 200);
    drop(view);
    assert_eq!(purge(&dir, 1).expect("purge").len(), n - 1);
    w.close().expect("close");
}
