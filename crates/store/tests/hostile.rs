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

fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}")
}

#[test]
fn pax_and_gnu_long_names_are_honoured() -> TestResult {
    let (_d, s) = a1_store()?;
    // PAX `path` overrides the header name.
    let rec = pax_record("path", GOOD);
    let mut t = Vec::new();
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..9].copy_from_slice(b"PaxHeader");
    h.set_entry_type(EntryType::XHeader);
    h.set_size(rec.len() as u64);
    h.set_cksum();
    t.extend_from_slice(h.as_bytes());
    t.extend_from_slice(rec.as_bytes());
    t.resize(t.len().div_ceil(512) * 512, 0);
    t.extend_from_slice(&raw_tar(&[("short-name", EntryType::Regular, b"pax")]));
    let stats = s.restore_shard(1, &mut t.as_slice())?;
    assert_eq!((stats.files, stats.skipped), (1, 0));
    assert_eq!(
        tar_files(&backup(&s, 1)?)?.get(GOOD).map(Vec::as_slice),
        Some(&b"pax"[..])
    );
    // A PAX path escaping the shard is refused like a plain one.
    let rec = pax_record("path", "db1/autogen/1/../../x.tsm");
    t.clear();
    h.set_size(rec.len() as u64);
    h.set_cksum();
    t.extend_from_slice(h.as_bytes());
    t.extend_from_slice(rec.as_bytes());
    t.resize(t.len().div_ceil(512) * 512, 0);
    t.extend_from_slice(&raw_tar(&[("short-name", EntryType::Regular, b"evil")]));
    refused(&s, &t)?;
    // GNU long names (what the tar crate writes for names over 100 bytes).
    let long = format!("db1/autogen/1/{}.tsm", "9".repeat(120));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"long"[..])?;
    let t = b.into_inner()?;
    assert_eq!(s.restore_shard(1, &mut t.as_slice())?.files, 1);
    assert!(tar_files(&backup(&s, 1)?)?.contains_key(&long));
    Ok(())
}

#[test]
fn corrupt_tsm_files_give_errors_not_panics_on_export() -> TestResult {
    let (_d, s) = a1_store()?;
    let original = tar_files(&shard_tar(A1, 2)?)?;
    let (name, tsm) = original.iter().next().ok_or("no tsm")?;
    let name = name.replace("db1/autogen/2/", "db1/autogen/1/");
    let range = snapshotd_store::TimeRange {
        start_ns: Some(1_609_804_800_000_000_000),
        end_ns: Some(1_609_900_000_000_000_000),
    };
    let mut errors = 0;
    let cuts = (0..tsm.len())
        .step_by(37)
        .chain([tsm.len() - 1, tsm.len() - 8]);
    for cut in cuts {
        for variant in 0..2 {
            let mut bad = tsm.clone();
            if variant == 0 {
                bad.truncate(cut);
            } else {
                bad[cut] ^= 0xA5;
            }
            let t = raw_tar(&[(name.as_str(), EntryType::Regular, bad.as_slice())]);
            s.restore_shard(1, &mut t.as_slice())?;
            let mut out = Vec::new();
            match s.export_shard(1, range, &mut out) {
                Ok(_) => {}
                Err(StoreError::Corrupt(_) | StoreError::LimitExceeded { .. }) => errors += 1,
                Err(e) => return Err(format!("unexpected error {e}").into()),
            }
        }
    }
    assert!(errors > 10, "only {errors} corruptions detected");
    Ok(())
}

#[test]
fn base256_size_near_u64_max_is_an_error_not_a_panic() -> TestResult {
    let (_d, s) = a1_store()?;
    for name in [GOOD, "db1/autogen/7/000000001-000000001.tsm"] {
        let mut t = raw_tar(&[(name, EntryType::Regular, b"")]);
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(EntryType::Regular);
        // GNU base-256 size field: 0x80 then big-endian bytes, here all ones.
        let size = &mut h.as_old_mut().size;
        size[0] = 0x80;
        for b in &mut size[1..] {
            *b = 0xff;
        }
        h.set_cksum();
        t[..512].copy_from_slice(h.as_bytes());
        refused(&s, &t)?;
    }
    Ok(())
}
