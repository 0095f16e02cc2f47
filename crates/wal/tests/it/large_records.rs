//! A log written with a record limit above etcd's 10 MiB default is read, verified and
//! repaired with that limit (and refused, naming the record, without it).

use std::path::Path;

use snapshotd_wal::{
    Entry, Error, HardState, RepairOutcome, Snapshot, Wal, WalOptions, WalReader,
    open_for_read_with, try_repair, try_repair_with, verify, verify_log, verify_log_with,
    verify_with,
};

/// Records of 11 MiB: above the default limit, below the one the log is written with.
const BIG: usize = 11 << 20;

fn opts() -> WalOptions {
    WalOptions::default()
        .max_record_bytes(32 << 20)
        .segment_size_bytes(64 << 20)
}

/// Valid bytes of the log's only segment.
fn valid_len(dir: &Path) -> u64 {
    let view = open_for_read_with(dir, Snapshot::default(), &opts()).expect("view");
    view.segments()[0].valid_len()
}

fn payload(i: u8) -> Vec<u8> {
    vec![i; BIG]
}

#[test]
fn a_log_with_larger_records_verifies_and_repairs_with_its_options() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut wal = Wal::create_with(&dir, b"big", &opts()).expect("create");
    wal.save(&HardState::new(1, 0, 1), &[Entry::new(1, 1, payload(1))])
        .expect("save 1");
    let after_first = valid_len(&dir);
    wal.save(&HardState::new(1, 0, 2), &[Entry::new(2, 1, payload(2))])
        .expect("save 2");
    wal.close().expect("close");

    // Healthy: the log's options verify it; the defaults refuse the first big record.
    verify_with(&dir, Snapshot::default(), &opts()).expect("verify_with");
    let sum = verify_log_with(&dir, &opts()).expect("verify_log_with");
    assert_eq!((sum.entry_records, sum.last_entry_index), (2, 2));
    assert!(sum.torn_tail.is_none());
    assert!(matches!(
        verify(&dir, Snapshot::default()),
        Err(Error::MaxEntrySizeExceeded { .. })
    ));
    assert!(matches!(
        verify_log(&dir),
        Err(Error::MaxEntrySizeExceeded { .. })
    ));

    // Tear the second record in half, as a crash mid-write would.
    let seg = WalReader::open_with(&dir, Snapshot::default(), &opts())
        .expect("reader")
        .paths()
        .pop()
        .expect("a segment");
    let end = valid_len(&dir);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open");
    f.set_len(after_first + (end - after_first) / 2)
        .expect("tear");
    drop(f);

    let sum = verify_log_with(&dir, &opts()).expect("torn tail is readable");
    assert_eq!(sum.torn_tail, Some((seg.clone(), after_first)));
    assert!(matches!(
        try_repair(&dir),
        Err(Error::MaxEntrySizeExceeded { .. })
    ));
    match try_repair_with(&dir, &opts()).expect("repair_with") {
        RepairOutcome::Truncated {
            path, valid_len, ..
        } => {
            assert_eq!((path, valid_len), (seg, after_first));
        }
        other => panic!("expected a truncation, got {other:?}"),
    }

    // The writer reopens the repaired log and sees the first record intact.
    let (wal, got) = Wal::open_with(&dir, Snapshot::default(), &opts())
        .expect("open")
        .read_all()
        .expect("strict read after repair");
    assert_eq!(got.entries.len(), 1);
    assert_eq!(got.entries[0].data.as_deref(), Some(&payload(1)[..]));
    wal.close().expect("close");
}
