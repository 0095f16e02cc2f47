//! Read-ahead: large segments are read by a helper thread. Reading the files (with it) and
//! reading the same bytes from memory (never read ahead) must give identical results, for
//! intact logs and for corrupted or truncated copies.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use snapshotd_wal::{
    Entry, HardState, Snapshot, Wal, WalOptions, WalReader, list_segments, read_all_in_memory,
};

/// Segments larger than the decoder's read-ahead threshold (8 MiB).
const SEGMENT: u64 = 9 << 20;

fn write_log(dir: &Path, rng: &mut StdRng) {
    let opts = WalOptions::default()
        .segment_size_bytes(SEGMENT)
        .unsafe_no_fsync(true);
    let mut w = Wal::create_with(dir, b"readahead", &opts).expect("create");
    let mut index = 0u64;
    let mut written = 0u64;
    while written < 2 * SEGMENT + SEGMENT / 2 {
        let n = rng.random_range(1..6u64);
        let ents: Vec<Entry> = (0..n)
            .map(|_| {
                index += 1;
                // Mostly small and mid-size records, some above the 1 MiB read-ahead
                // reserve, so records straddle chunk boundaries both ways.
                let size = match rng.random_range(0..10) {
                    0 => rng.random_range(1_100_000..1_600_000),
                    1..=3 => rng.random_range(20_000..300_000),
                    _ => rng.random_range(0..5_000),
                };
                written += size as u64 + 32;
                Entry::new(index, 1, vec![(index % 251) as u8; size])
            })
            .collect();
        w.save(&HardState::new(1, 0, index), &ents).expect("save");
    }
    w.close().expect("close");
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    list_segments(dir)
        .expect("list")
        .iter()
        .map(|s| dir.join(&s.name))
        .collect()
}

/// Outcome of a read as comparable text: the entries' fingerprint, or the error with the
/// file names replaced by `read_all_in_memory`'s `segment-<i>`.
fn from_files(dir: &Path) -> String {
    let paths = segments(dir);
    match WalReader::open(dir, Snapshot::default()).and_then(|r| r.read_all()) {
        Ok(c) => fingerprint(&c),
        Err(e) => {
            let mut s = format!("{e:?}");
            for (i, p) in paths.iter().enumerate() {
                s = s.replace(&format!("{p:?}"), &format!("\"segment-{i}\""));
            }
            s
        }
    }
}

fn from_memory(dir: &Path) -> String {
    let images: Vec<Vec<u8>> = segments(dir)
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let refs: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    match read_all_in_memory(&refs, Snapshot::default(), false) {
        Ok(c) => fingerprint(&c),
        Err(e) => format!("{e:?}"),
    }
}

fn fingerprint(c: &snapshotd_wal::WalContents) -> String {
    let sum: u64 = c
        .entries
        .iter()
        .map(|e| {
            e.data.as_ref().map_or(0, |d| {
                d.len() as u64 + u64::from(d.first().copied().unwrap_or(0))
            })
        })
        .sum();
    format!(
        "ok entries={} last={:?} sum={sum} hs={:?}",
        c.entries.len(),
        c.entries.last().map(|e| e.index),
        c.hardstate
    )
}

#[test]
fn read_ahead_reads_exactly_what_memory_decoding_reads() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut rng = StdRng::seed_from_u64(0x7ead_a4ead);
    write_log(&dir, &mut rng);
    let segs = segments(&dir);
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let intact = from_files(&dir);
    assert!(intact.starts_with("ok "), "{intact}");
    assert_eq!(intact, from_memory(&dir));

    // Corrupt copies: single flipped bytes anywhere in the big segments, and truncations.
    for case in 0..12 {
        let copy = tmp.path().join(format!("c{case}"));
        std::fs::create_dir_all(&copy).expect("mkdir");
        for p in &segs {
            std::fs::copy(p, copy.join(p.file_name().expect("name"))).expect("copy");
        }
        let victim = &segments(&copy)[rng.random_range(0..segs.len())];
        let mut bytes = std::fs::read(victim).expect("read");
        let used = bytes.iter().rposition(|&b| b != 0).unwrap_or(0) + 1;
        if case % 4 == 3 {
            bytes.truncate(rng.random_range(0..used));
        } else {
            let at = rng.random_range(0..used);
            bytes[at] ^= 1 << rng.random_range(0..8);
        }
        std::fs::write(victim, &bytes).expect("write");
        assert_eq!(from_files(&copy), from_memory(&copy), "case {case}");
        std::fs::remove_dir_all(&copy).expect("rm");
    }
}
