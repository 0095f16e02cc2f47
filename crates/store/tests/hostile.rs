//! Hostile and broken restore streams: refused, nothing written outside, old shard intact.

use snapshotd_store::testkit::{raw_tar, tar_files};
use snapshotd_store::{BuiltinStore, RestoreLimits, Store, StoreError};
use tar::EntryType;

use crate::common::{A1, TestResult, a1_store, backup, shard_tar, tree};

const GOOD: &str = "db1/autogen/1/000000001-000000001.tsm";

fn refused(s: &BuiltinStore, tar: &[u8]) -> TestResult {
    let before = backup(s, 1)?;
    let outside = tree(s.root().parent().ok_or("root")?);
    let r = s.restore_shard(1, &mut &tar[..]);
    assert!(r.is_err(), "accepted: {r:?}");
    assert_eq!(backup(s, 1)?, before, "shard changed");
    assert_eq!(
        tree(s.root().parent().ok_or("root")?),
        outside,
        "files appeared"
    );
    Ok(())
}

#[test]
fn traversal_absolute_and_links_are_refused() -> TestResult {
    let (_d, s) = a1_store()?;
    for (name, kind) in [
        (
            "db1/autogen/1/../../../../../escape.tsm",
            EntryType::Regular,
        ),
        (
            "db1/autogen/1/../2/000000001-000000001.tsm",
            EntryType::Regular,
        ),
        ("/db1/autogen/1/abs.tsm", EntryType::Regular),
        ("db1/autogen/1/link.tsm", EntryType::Symlink),
        ("db1/autogen/1/hard.tsm", EntryType::Link),
        ("db1/autogen/1/fifo.tsm", EntryType::Fifo),
        ("db1/autogen/1/dev.tsm", EntryType::Char),
    ] {
        refused(
            &s,
            &raw_tar(&[(GOOD, EntryType::Regular, b"x"), (name, kind, b"evil")]),
        )?;
    }
    Ok(())
}

#[test]
fn huge_sizes_and_headers_are_bounded() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    let limits = RestoreLimits {
        max_entry_bytes: 4096,
        max_total_bytes: 8192,
        max_entries: 8,
        max_extension_bytes: 1024,
    };
    let s = BuiltinStore::open_with_limits(dir.path().join("data"), limits)?;
    s.import_meta(&crate::common::meta_blob(A1)?, &Default::default())?;
    let tar1 = shard_tar(A1, 1)?;
    s.restore_shard(1, &mut tar1.as_slice())?;
    // A size field far beyond the stream (and the limit).
    let mut huge = raw_tar(&[(GOOD, EntryType::Regular, b"")]);
    {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..GOOD.len()].copy_from_slice(GOOD.as_bytes());
        h.set_size(1 << 40);
        h.set_cksum();
        huge[..512].copy_from_slice(h.as_bytes());
    }
    refused(&s, &huge)?;
    // A GNU long-name record larger than the extension limit.
    let mut long = Vec::new();
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(EntryType::GNULongName);
    h.set_size(1 << 30);
    h.set_cksum();
    long.extend_from_slice(h.as_bytes());
    long.resize(512 + 4096, b'a');
    refused(&s, &long)?;
    // Too many entries, and too many total bytes.
    let data = vec![7u8; 3000];
    let names: Vec<String> = (0..9)
        .map(|i| format!("db1/autogen/1/00000000{i}-000000001.tsm"))
        .collect();
    let many: Vec<_> = names
        .iter()
        .map(|n| (n.as_str(), EntryType::Regular, &b"x"[..]))
        .collect();
    refused(&s, &raw_tar(&many))?;
    let big: Vec<_> = names[..3]
        .iter()
        .map(|n| (n.as_str(), EntryType::Regular, data.as_slice()))
        .collect();
    refused(&s, &raw_tar(&big))?;
    assert!(matches!(
        s.restore_shard(1, &mut raw_tar(&big).as_slice()),
        Err(StoreError::LimitExceeded { .. })
    ));
    Ok(())
}

#[test]
fn truncated_stream_leaves_old_shard_readable() -> TestResult {
    let (_d, s) = a1_store()?;
    let good = shard_tar(A1, 2)?;
    let renamed = snapshotd_store::testkit::rename_tar(&good, "db1", "autogen", 1)?;
    for cut in [renamed.len() - 1024, renamed.len() - 1500, 700, 100] {
        refused(&s, &renamed[..cut])?;
    }
    assert_eq!(tar_files(&backup(&s, 1)?)?, tar_files(&shard_tar(A1, 1)?)?);
    // The complete stream then replaces the shard.
    s.restore_shard(1, &mut renamed.as_slice())?;
    let got = tar_files(&backup(&s, 1)?)?;
    assert_eq!(
        got.values().collect::<Vec<_>>(),
        tar_files(&good)?.values().collect::<Vec<_>>()
    );
    Ok(())
}

#[test]
fn other_shards_entries_are_skipped_and_counted() -> TestResult {
    let (_d, s) = a1_store()?;
    let t = raw_tar(&[
        (GOOD, EntryType::Regular, b"x"),
        (
            "db1/autogen/10/000000001-000000001.tsm",
            EntryType::Regular,
            b"y",
        ),
        ("db1/autogen/1/fields.idx", EntryType::Regular, b"z"),
    ]);
    let stats = s.restore_shard(1, &mut t.as_slice())?;
    assert_eq!((stats.files, stats.skipped, stats.bytes), (1, 2, 1));
    let files = tar_files(&backup(&s, 1)?)?;
    assert_eq!(files.keys().collect::<Vec<_>>(), [GOOD]);
    assert!(!s.root().join("data/db1/autogen/10").exists());
    Ok(())
}

#[test]
fn crash_mid_swap_is_repaired_on_open() -> TestResult {
    let dir = snapshotd_testutil::temp_dir();
    let root = dir.path().join("data");
    let want = {
        let s = BuiltinStore::open(&root)?;
        s.import_meta(&crate::common::meta_blob(A1)?, &Default::default())?;
        s.restore_shard(1, &mut shard_tar(A1, 1)?.as_slice())?;
        tar_files(&backup(&s, 1)?)?
    };
    // Simulate a crash after "retire old" and before "install staging".
    let rp = root.join("data/db1/autogen");
    std::fs::rename(rp.join("1"), rp.join(".retired-1-0badf00d"))?;
    std::fs::create_dir(rp.join(".restore-1-0badf00d"))?;
    std::fs::write(
        rp.join(".restore-1-0badf00d/000000009-000000001.tsm"),
        b"half",
    )?;
    let s = BuiltinStore::open(&root)?;
    assert_eq!(tar_files(&backup(&s, 1)?)?, want);
    let mut names: Vec<_> = std::fs::read_dir(&rp)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(names, ["1", "2", "3"]);
    Ok(())
}
