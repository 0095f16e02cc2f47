//! Streaming reads (`ReadView::entries`): the same entries as `read_all` across segment
//! cuts, on etcd's vectors and under a live writer; corruption is an error, never data;
//! memory is one record at a time.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng, rngs::StdRng};
use snapshotd_wal::{
    Entry, EntryStream, Error, HardState, ReadView, Snapshot, Wal, WalContents, WalOptions,
    open_for_read, open_for_read_with,
};

use crate::support::shared_copy;

fn small_segments() -> WalOptions {
    WalOptions::default()
        .segment_size_bytes(8192)
        .unsafe_no_fsync(true)
}

/// Consecutive entries `1..=n` of random sizes (0..3000 bytes), saved in batches of 1..4.
fn write_log(dir: &Path, n: u64, opts: &WalOptions, seed: u64) -> Vec<Entry> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut w = Wal::create_with(dir, b"stream-meta", opts).expect("create");
    let mut all = Vec::new();
    let mut i = 1u64;
    while i <= n {
        let k = rng.random_range(1..=4u64).min(n - i + 1);
        let batch: Vec<Entry> = (i..i + k)
            .map(|idx| {
                let len = rng.random_range(0..3000usize);
                let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                Entry::new(idx, 1, data)
            })
            .collect();
        w.save(&HardState::new(1, 1, i + k - 1), &batch)
            .expect("save");
        all.extend(batch);
        i += k;
    }
    w.close().expect("close");
    all
}

/// Drains a stream, checking its side information against `read_all` of the same view.
fn drain(stream: &mut EntryStream<'_>) -> Result<Vec<Entry>, Error> {
    stream.collect()
}

fn assert_same_as_read_all(view: &ReadView, what: &str) -> Vec<Entry> {
    let want: WalContents = view.read_all().expect("read_all");
    let mut s = view.entries();
    let got = drain(&mut s).unwrap_or_else(|e| panic!("{what}: stream failed: {e}"));
    assert_eq!(got, want.entries, "{what}: entries");
    assert_eq!(s.metadata(), want.metadata.as_deref(), "{what}: metadata");
    assert_eq!(s.hardstate(), want.hardstate, "{what}: hardstate");
    assert_eq!(s.snapshot_found(), want.snapshot_found, "{what}: snapshot");
    assert_eq!(s.last_index(), want.entries.last().map(|e| e.index));
    // Fused: nothing after the end.
    assert!(s.next().is_none());
    got
}

#[test]
fn stream_matches_read_all_across_segment_cuts() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let written = write_log(&dir, 400, &small_segments(), 1);
    let view = open_for_read(&dir, Snapshot::default()).expect("view");
    assert!(
        view.segments().len() >= 20,
        "want many cuts, got {} segments",
        view.segments().len()
    );
    let got = assert_same_as_read_all(&view, "small segments");
    assert_eq!(got, written);
}

#[test]
fn stream_starts_after_a_snapshot_like_read_all() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let opts = small_segments();
    let mut w = Wal::create_with(&dir, b"m", &opts).expect("create");
    for i in 1..=120u64 {
        w.save(
            &HardState::new(1, 1, i),
            &[Entry::new(i, 1, vec![i as u8; 500])],
        )
        .expect("save");
        if i == 70 {
            w.save_snapshot(&Snapshot::new(70, 1)).expect("snapshot");
        }
    }
    w.close().expect("close");
    let view = open_for_read(&dir, Snapshot::new(70, 1)).expect("view");
    let got = assert_same_as_read_all(&view, "from snapshot 70");
    assert_eq!(got.first().map(|e| e.index), Some(71));
    assert_eq!(got.len(), 50);
    let mut s = view.entries();
    drain(&mut s).expect("stream");
    assert!(s.snapshot_found());
    // A snapshot record at the start index with another term is an error, as in read_all.
    let bad = open_for_read(&dir, Snapshot::new(70, 2)).expect("view");
    assert!(matches!(bad.read_all(), Err(Error::SnapshotMismatch)));
    let r: Result<Vec<Entry>, Error> = bad.entries().collect();
    assert!(matches!(r, Err(Error::SnapshotMismatch)), "{r:?}");
}

#[test]
fn stream_matches_read_all_on_etcd_vectors() {
    for name in ["single-node-snap100", "gowal-small-segments"] {
        let exp = crate::support::vector_json(name, "expected.json");
        let dir = shared_copy(name);
        let mut compared = 0;
        for case in exp["readall_cases"].as_array().expect("cases") {
            let start = Snapshot::new(
                case["start"]["index"].as_u64().expect("index"),
                case["start"]["term"].as_u64().expect("term"),
            );
            let Ok(view) = open_for_read(dir, start) else {
                continue;
            };
            let what = format!("{name} from {start:?}");
            let raw: Result<Vec<Entry>, Error> = view.entries().raw_indexes().collect();
            let want = match view.read_all() {
                Ok(c) => c,
                Err(e) => {
                    // Whatever read_all refuses, the stream refuses too.
                    assert!(
                        raw.is_err(),
                        "{what}: read_all failed ({e}), stream did not"
                    );
                    continue;
                }
            };
            let raw = raw.unwrap_or_else(|e| panic!("{what}: raw stream failed: {e}"));
            // Raw entries with raft's overwrite applied are read_all's entries.
            let mut resolved: Vec<Entry> = Vec::new();
            for e in &raw {
                resolved.truncate((e.index - start.index - 1) as usize);
                resolved.push(e.clone());
            }
            assert_eq!(resolved, want.entries, "{what}: resolved raw stream");
            let consecutive = raw.windows(2).all(|w| w[1].index == w[0].index + 1);
            if consecutive {
                assert_same_as_read_all(&view, &what);
            } else {
                let strict: Result<Vec<Entry>, Error> = view.entries().collect();
                assert!(
                    matches!(strict, Err(Error::EntryOverwrite { .. })),
                    "{what}: {strict:?}"
                );
            }
            compared += 1;
        }
        assert!(compared > 0, "{name}: no case compared");
    }
}

#[test]
fn strict_stream_refuses_overwrites_raw_stream_yields_them() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut w = Wal::create_with(&dir, b"m", &small_segments()).expect("create");
    w.save(
        &HardState::new(1, 1, 0),
        &[
            Entry::new(1, 1, b"a".to_vec()),
            Entry::new(2, 1, b"b".to_vec()),
        ],
    )
    .expect("save");
    w.save(&HardState::new(2, 1, 1), &[Entry::new(2, 2, b"c".to_vec())])
        .expect("overwrite");
    w.close().expect("close");
    let view = open_for_read(&dir, Snapshot::default()).expect("view");
    let mut s = view.entries();
    assert_eq!(
        s.next().expect("a").expect("a").data.as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(
        s.next().expect("b").expect("b").data.as_deref(),
        Some(&b"b"[..])
    );
    match s.next() {
        Some(Err(Error::EntryOverwrite {
            entry_index: 2,
            last_index: 2,
        })) => {}
        other => panic!("want EntryOverwrite, got {other:?}"),
    }
    assert!(s.next().is_none(), "an error ends the stream");
    let raw: Vec<Vec<u8>> = view
        .entries()
        .raw_indexes()
        .map(|e| e.expect("raw").data.unwrap_or_default())
        .collect();
    assert_eq!(raw, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn stream_is_point_in_time_while_a_writer_appends() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let opts = small_segments();
    let mut w = Wal::create_with(&dir, b"m", &opts).expect("create");
    let mut next = 1u64;
    let mut append = |w: &mut Wal, n: u64| {
        for _ in 0..n {
            w.save(
                &HardState::new(1, 1, next),
                &[Entry::new(next, 1, vec![(next % 251) as u8; 700])],
            )
            .expect("save");
            next += 1;
        }
    };
    append(&mut w, 100);
    let view = open_for_read(&dir, Snapshot::default()).expect("view");
    let mut s = view.entries();
    let mut got = Vec::new();
    // The writer keeps appending (and cutting segments) between every read of the stream.
    for e in s.by_ref() {
        got.push(e.expect("entry"));
        append(&mut w, 3);
    }
    assert_eq!(got.len(), 100, "only what the view saw");
    assert_eq!(got.last().map(|e| e.index), Some(100));
    assert_eq!(s.hardstate().commit, 100);
    // Still exactly read_all of the same view, and a later view sees the appended entries.
    assert_same_as_read_all(&view, "view under a writer");
    w.close().expect("close");
    let later = open_for_read(&dir, Snapshot::default()).expect("later view");
    let all = assert_same_as_read_all(&later, "later view");
    assert_eq!(all.len(), 400);
}

/// `(segment path, frame offset, record bytes, padding)` of every frame in the valid bytes.
fn frames(view: &ReadView) -> Vec<(PathBuf, u64, u64, u64)> {
    let mut out = Vec::new();
    for seg in view.segments() {
        let bytes = std::fs::read(seg.path()).expect("read");
        let mut off = 0u64;
        while off < seg.valid_len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[off as usize..off as usize + 8]);
            let word = u64::from_le_bytes(w);
            let n = word & 0x00ff_ffff_ffff_ffff;
            let pad = if word >> 63 == 1 { (word >> 56) & 7 } else { 0 };
            out.push((seg.path().to_path_buf(), off, n, pad));
            off += 8 + n + pad;
        }
        assert_eq!(off, seg.valid_len());
    }
    out
}

fn flip(path: &Path, off: u64, bit: u8) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off).expect("read byte");
    b[0] ^= 1 << bit;
    f.write_all_at(&b, off).expect("write byte");
}

fn is_prefix(got: &[Entry], of: &[Entry]) -> bool {
    got.len() <= of.len() && got.iter().zip(of).all(|(a, b)| a == b)
}

#[test]
fn flipped_bytes_are_errors_never_data() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let written = write_log(&dir, 60, &small_segments(), 2);
    // The view is opened on the pristine log; bytes then change under its handles.
    let view = open_for_read(&dir, Snapshot::default()).expect("view");
    let frames = frames(&view);
    let mut rng = StdRng::seed_from_u64(0x5eed_0057);
    let final_state = view.read_all().expect("read_all").hardstate;
    let (mut errors, mut checked, mut body, mut body_errors) = (0, 0, 0, 0);
    for (path, off, n, pad) in &frames {
        // A few bytes of every frame: length word, record body, padding.
        let mut picks = vec![off + rng.random_range(0..8)];
        for _ in 0..4 {
            if *n > 0 {
                picks.push(off + 8 + rng.random_range(0..*n));
            }
        }
        if *pad > 0 {
            picks.push(off + 8 + n + rng.random_range(0..*pad));
        }
        for at in picks {
            // The record's type value (body byte 1) is the one byte the format's CRC does
            // not cover (see corruption.rs); skip it.
            if at == off + 9 {
                continue;
            }
            let bit = rng.random_range(0..8u8);
            flip(path, at, bit);
            let mut s = view.entries();
            let mut ok = Vec::new();
            let mut err = None;
            for r in s.by_ref() {
                match r {
                    Ok(e) => ok.push(e),
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            let hardstate = s.hardstate();
            flip(path, at, bit);
            checked += 1;
            assert!(
                is_prefix(&ok, &written),
                "flip at {}:{at}: corrupt data returned",
                path.display()
            );
            if err.is_none() {
                // Undetected flips changed nothing that is read: bits etcd's decoder drops
                // (high bits of a crc varint's fifth byte, padding) — the data is intact. A
                // flipped length word may also read as the end of the last segment (a zero
                // word): a prefix, never other data.
                let tail = frames.last().is_some_and(|f| &f.0 == path);
                assert!(
                    (ok == written && hardstate == final_state) || (tail && at < off + 8),
                    "flip at {}:{at} (frame {off}, n {n}, bit {bit}) read as other data",
                    path.display()
                );
            }
            let in_body = at >= off + 8 && at < off + 8 + n;
            if in_body {
                body += 1;
                body_errors += usize::from(err.is_some());
            }
            errors += usize::from(err.is_some());
        }
    }
    assert!(
        body_errors * 20 > body * 19,
        "{body_errors} errors of {body} body flips"
    );
    assert!(checked > 200, "{checked}");
    assert!(errors * 10 > checked * 7, "{errors} errors of {checked}");
    // Pristine again: the same view streams everything.
    assert_eq!(assert_same_as_read_all(&view, "restored"), written);
}

#[test]
fn truncated_records_are_errors() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let written = write_log(&dir, 80, &small_segments(), 3);
    let view = open_for_read(&dir, Snapshot::default()).expect("view");
    let frames = frames(&view);
    let nsegs = view.segments().len();
    assert!(nsegs >= 3);
    // Cut a middle segment inside a record, then at a record boundary, then the last one.
    let mid = view.segments()[nsegs / 2].path().to_path_buf();
    let last = view.segments()[nsegs - 1].path().to_path_buf();
    let originals: Vec<(PathBuf, Vec<u8>)> = [&mid, &last]
        .iter()
        .map(|p| ((*p).clone(), std::fs::read(p).expect("read")))
        .collect();
    let in_mid: Vec<_> = frames.iter().filter(|f| f.0 == mid).collect();
    let rec = in_mid[in_mid.len() / 2];
    let last_rec = frames.iter().rfind(|f| f.0 == last).expect("last record");
    for (path, len) in [
        (&mid, rec.1 + 8 + rec.2 / 2),
        (&mid, rec.1),
        (&last, last_rec.1 + 3),
    ] {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open");
        f.set_len(len).expect("truncate");
        let mut ok = Vec::new();
        let mut err = None;
        for r in view.entries() {
            match r {
                Ok(e) => ok.push(e),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(is_prefix(&ok, &written));
        let e = err.unwrap_or_else(|| panic!("cut {} at {len} not detected", path.display()));
        assert!(e.is_unexpected_eof(), "{e:?}");
        for (p, bytes) in &originals {
            std::fs::write(p, bytes).expect("restore");
        }
    }
    // A torn tail present before the view opened is outside the view (as for read_all).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open");
    f.set_len(last_rec.1 + 8 + last_rec.2 / 2).expect("tear");
    drop(view);
    let view = open_for_read(&dir, Snapshot::default()).expect("view over torn tail");
    let got = assert_same_as_read_all(&view, "torn tail");
    assert!(is_prefix(&got, &written));
}

#[test]
fn records_above_the_limit_are_refused_before_allocating() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    write_log(&dir, 20, &small_segments(), 4);
    // The stream uses the view's limit; a view opened with a limit below the log's
    // records is refused while scanning, before any record buffer grows.
    let tight = WalOptions::default().max_record_bytes(1024);
    let r = open_for_read_with(&dir, Snapshot::default(), &tight).map(|_| ());
    assert!(
        matches!(r, Err(Error::MaxEntrySizeExceeded { .. })),
        "{r:?}"
    );
    let view = open_for_read(&dir, Snapshot::default()).expect("view");
    let all: Result<Vec<Entry>, Error> = view.entries().collect();
    assert_eq!(all.expect("default limit").len(), 20);
}

#[test]
fn large_log_streams_one_record_at_a_time() {
    const MIB: usize = 1 << 20;
    const N: u64 = 48;
    // Sizes vary so the record buffer has to grow again after smaller records.
    let size = |i: u64| MIB - ((i + 2) % 4) as usize * 200_000;
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let opts = WalOptions::default()
        .segment_size_bytes(4 * MIB as u64)
        .unsafe_no_fsync(true);
    let mut w = Wal::create_with(&dir, b"m", &opts).expect("create");
    for i in 1..=N {
        w.save(
            &HardState::new(1, 1, i),
            &[Entry::new(i, 1, vec![(i % 256) as u8; size(i)])],
        )
        .expect("save");
    }
    w.close().expect("close");
    let view = open_for_read_with(&dir, Snapshot::default(), &opts).expect("view");
    let log_bytes: u64 = view.segments().iter().map(|s| s.valid_len()).sum();
    assert!(log_bytes >= (1..=N).map(|i| size(i) as u64).sum::<u64>());
    // One 1 MiB record (plus framing) and the 64 KiB read buffer: well under two records.
    let bound = MIB + 4096 + 64 * 1024;
    let mut s = view.entries();
    let mut peak = 0;
    let mut n = 0u64;
    // Each entry is owned by the caller and dropped here: the stream keeps none of them.
    while let Some(e) = s.next() {
        let e = e.expect("entry");
        n += 1;
        assert_eq!(e.index, n);
        assert_eq!(e.data.as_ref().map(Vec::len), Some(size(n)));
        assert!(e.data.iter().flatten().all(|&b| b == (n % 256) as u8));
        peak = peak.max(s.buffered_bytes());
        assert!(
            s.buffered_bytes() <= bound,
            "stream holds {} bytes after entry {n}",
            s.buffered_bytes()
        );
    }
    assert_eq!(n, N);
    assert!(
        peak >= MIB,
        "the record buffer holds a whole record: {peak}"
    );
    assert!(
        (peak as u64) * 20 < log_bytes,
        "{peak} vs a {log_bytes}-byte log"
    );
    assert_eq!(s.buffered_bytes(), 0, "buffers released at the end");
}
