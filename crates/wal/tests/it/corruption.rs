//! Seeded corruption of copies of the `gowal-small-segments` vector: bit flips, truncations
//! and zeroed sectors. Each is either detected, or read back as exactly what some prefix of
//! the log holds (etcd's read-mode rule for a partial tail), and repair behaves like etcd's.
//!
//! Bit flips avoid the one byte etcd's format cannot protect (a record's type value, which
//! the CRC does not cover); the interop suite compares those with etcd itself.

use std::collections::HashSet;
use std::path::Path;

use rand::{Rng, SeedableRng, rngs::StdRng};
use snapshotd_wal::{
    OpenMode, RepairOutcome, Snapshot, WalContents, WalOptions, read_like_etcd, try_repair,
};

use crate::support::{entries_sha256, materialize, vector_json};

const VECTOR: &str = "gowal-small-segments";

#[derive(Debug, Clone)]
struct Rec {
    seg: usize,
    off: u64,
    len: u64,
}

fn records() -> Vec<Rec> {
    let v = vector_json(VECTOR, "records.json");
    v["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| Rec {
            seg: r["seg"].as_u64().expect("seg") as usize,
            off: r["off"].as_u64().expect("off"),
            len: 8 + r["rec_bytes"].as_u64().expect("n") + r["pad"].as_u64().expect("pad"),
        })
        .collect()
}

fn seg_paths(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("e").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

fn fingerprint(c: &WalContents) -> String {
    format!(
        "{}|{:?}|{:?}",
        entries_sha256(&c.entries),
        c.hardstate,
        c.metadata
    )
}

fn read(dir: &Path, mode: OpenMode) -> Result<WalContents, String> {
    let o = read_like_etcd(dir, Snapshot::default(), mode, &WalOptions::default());
    match (o.open_error, o.read_error) {
        (None, None) => Ok(o.contents),
        (Some(e), _) | (None, Some(e)) => Err(e.to_string()),
    }
}

/// Every result a correct reader may return for a log cut at a record boundary.
fn prefix_results(recs: &[Rec]) -> HashSet<String> {
    let (_t, base) = materialize(VECTOR);
    let paths = seg_paths(&base);
    let mut out = HashSet::new();
    out.insert(fingerprint(&read(&base, OpenMode::Read).expect("pristine")));
    let scratch = snapshotd_testutil::temp_dir();
    for (k, r) in recs.iter().enumerate() {
        if r.seg == 0 && r.off < 24 {
            continue; // no metadata yet
        }
        let d = scratch.path().join(format!("p{k}"));
        std::fs::create_dir(&d).expect("mkdir");
        for (i, p) in paths.iter().enumerate().take(r.seg + 1) {
            let to = d.join(p.file_name().expect("name"));
            std::fs::copy(p, &to).expect("copy");
            if i == r.seg {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&to)
                    .expect("open");
                f.set_len(r.off).expect("truncate");
            }
        }
        if let Ok(c) = read(&d, OpenMode::Read) {
            out.insert(fingerprint(&c));
        }
        std::fs::remove_dir_all(&d).expect("rm");
    }
    out
}

#[derive(Debug)]
enum Mutation {
    Flip { seg: usize, off: u64, bit: u8 },
    Truncate { seg: usize, len: u64 },
    ZeroSector { seg: usize, sector: u64 },
}

fn pick(rng: &mut StdRng, recs: &[Rec], sizes: &[u64]) -> Mutation {
    let last = sizes.len() - 1;
    match rng.random_range(0..10) {
        0..=5 => loop {
            // A byte inside a frame (or, 1 in 8, in the zero tail of the last segment).
            let (seg, off) = if rng.random_range(0..8) == 0 {
                let end = recs
                    .iter()
                    .filter(|r| r.seg == last)
                    .map(|r| r.off + r.len)
                    .max()
                    .unwrap_or(0);
                (last, rng.random_range(end..sizes[last]))
            } else {
                let r = &recs[rng.random_range(0..recs.len())];
                (r.seg, r.off + rng.random_range(0..r.len))
            };
            let rec = recs
                .iter()
                .find(|r| r.seg == seg && r.off <= off && off < r.off + r.len);
            // Skip the record's type value (byte 1 of the record body): not CRC-covered.
            if rec.is_some_and(|r| off == r.off + 9) {
                continue;
            }
            break Mutation::Flip {
                seg,
                off,
                bit: rng.random_range(0..8),
            };
        },
        6..=7 => {
            let seg = if rng.random_range(0..3) == 0 {
                rng.random_range(0..sizes.len())
            } else {
                last
            };
            Mutation::Truncate {
                seg,
                len: rng.random_range(0..sizes[seg]),
            }
        }
        _ => Mutation::ZeroSector {
            seg: last,
            sector: rng.random_range(0..sizes[last].div_ceil(512)),
        },
    }
}

fn apply(dir: &Path, m: &Mutation) {
    let paths = seg_paths(dir);
    match *m {
        Mutation::Flip { seg, off, bit } => {
            let mut b = std::fs::read(&paths[seg]).expect("read");
            b[off as usize] ^= 1 << bit;
            std::fs::write(&paths[seg], b).expect("write");
        }
        Mutation::Truncate { seg, len } => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&paths[seg])
                .expect("open");
            f.set_len(len).expect("truncate");
        }
        Mutation::ZeroSector { seg, sector } => {
            let mut b = std::fs::read(&paths[seg]).expect("read");
            let s = (sector * 512) as usize;
            let e = (s + 512).min(b.len());
            b[s..e].fill(0);
            std::fs::write(&paths[seg], b).expect("write");
        }
    }
}

#[test]
fn seeded_corruptions_are_detected_or_read_as_a_prefix() {
    let cases: u64 = std::env::var("SNAPSHOTD_WAL_CORRUPTION_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    let recs = records();
    let prefixes = prefix_results(&recs);
    let (_t, pristine) = materialize(VECTOR);
    let full = fingerprint(&read(&pristine, OpenMode::Read).expect("pristine"));
    assert!(prefixes.contains(&full));
    let sizes: Vec<u64> = seg_paths(&pristine)
        .iter()
        .map(|p| std::fs::metadata(p).expect("stat").len())
        .collect();
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    let (mut detected, mut prefix, mut repaired) = (0, 0, 0);
    for case in 0..cases {
        let m = pick(&mut rng, &recs, &sizes);
        let work = snapshotd_testutil::temp_dir();
        let dir = work.path().join("wal");
        std::fs::create_dir(&dir).expect("mkdir");
        for p in seg_paths(&pristine) {
            std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
        }
        apply(&dir, &m);
        match read(&dir, OpenMode::Read) {
            Err(_) => detected += 1,
            Ok(c) => {
                assert!(
                    prefixes.contains(&fingerprint(&c)),
                    "case {case} {m:?}: read mode returned data that no prefix of the log holds"
                );
                prefix += 1;
            }
        }
        let before: Vec<Vec<u8>> = seg_paths(&dir)
            .iter()
            .map(|p| std::fs::read(p).expect("read"))
            .collect();
        match read(&dir, OpenMode::Write) {
            Ok(c) => assert!(
                prefixes.contains(&fingerprint(&c)),
                "case {case} {m:?}: write mode"
            ),
            Err(e) if e == "unexpected EOF" => {
                // etcd's server: Repair, then open again once.
                match try_repair(&dir) {
                    Ok(RepairOutcome::Truncated { .. }) => {
                        repaired += 1;
                        let c = read(&dir, OpenMode::Write).unwrap_or_else(|e| {
                            panic!("case {case} {m:?}: still broken after repair: {e}")
                        });
                        assert!(
                            prefixes.contains(&fingerprint(&c)),
                            "case {case} {m:?}: after repair"
                        );
                    }
                    Ok(RepairOutcome::Clean) => {
                        // The partial frame is not in the last file: nothing to repair, as in etcd.
                        let after: Vec<Vec<u8>> = seg_paths(&dir)
                            .iter()
                            .map(|p| std::fs::read(p).expect("read"))
                            .collect();
                        assert_eq!(before, after, "case {case}: a clean repair changed files");
                    }
                    Err(_) => {}
                }
            }
            Err(_) => {
                // Hard corruption: repair must refuse or find nothing to do, never truncate it away.
                if let Ok(RepairOutcome::Truncated { .. }) = try_repair(&dir) {
                    panic!("case {case} {m:?}: repair truncated a non-torn error");
                }
            }
        }
    }
    eprintln!(
        "corruption: {cases} cases: {detected} detected, {prefix} read as a prefix, {repaired} repaired"
    );
    assert!(
        detected > 0 && prefix > 0 && repaired > 0,
        "coverage: {detected} detected, {prefix} prefix, {repaired} repaired"
    );
}
