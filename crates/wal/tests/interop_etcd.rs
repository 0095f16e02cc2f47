//! Interop with etcd 3.4.23's own Go `wal` package through the etcd-wal-go harness.
//! Run by `cargo xtask interop etcd` (builds the harness, sets `SNAPSHOTD_ETCD_WAL_GO`).
//!
//! * Go writes → we read, and we write → Go reads, both modes, seeded random scripts with
//!   cuts, overwrites, snapshots and release_lock_to; our files are byte-identical to Go's.
//! * Appends across implementations; corruption results (read, write, repair) equal Go's.
//! * OFD locks exclude each other in both directions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "it/support.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;
use snapshotd_wal::{Entry, HardState, OpenMode, Snapshot, Wal, WalOptions};
use support::{Op, Script, read_doc, run_ops, script_json, wal_files, write_script};

const IGNORE: &str = "interop: run via cargo xtask interop etcd";

fn harness() -> PathBuf {
    PathBuf::from(
        std::env::var("SNAPSHOTD_ETCD_WAL_GO")
            .expect("SNAPSHOTD_ETCD_WAL_GO (run via cargo xtask interop etcd)"),
    )
}

/// Runs the harness; returns its JSON document and exit code.
fn go(args: &[&str], dir: &Path, stdin: Option<&Value>) -> (Value, i32) {
    let mut child = Command::new(harness())
        .args(args)
        .arg(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn harness");
    if let Some(s) = stdin {
        let mut i = child.stdin.take().expect("stdin");
        i.write_all(s.to_string().as_bytes()).expect("script");
    }
    let out = child.wait_with_output().expect("harness");
    if out.stdout.is_empty() && String::from_utf8_lossy(&out.stderr).contains("panic: ") {
        // etcd's ReadAll panics on CRC-valid records whose payload does not unmarshal.
        return (Value::Null, out.status.code().unwrap_or(-1));
    }
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "harness {args:?}: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, out.status.code().unwrap_or(-1))
}

fn go_read(dir: &Path, start: Snapshot, mode: OpenMode) -> Value {
    let m = if mode == OpenMode::Read {
        "read"
    } else {
        "write"
    };
    let (mut v, _) = go(
        &[
            "read",
            "-mode",
            m,
            "-index",
            &start.index.to_string(),
            "-term",
            &start.term.to_string(),
        ],
        dir,
        None,
    );
    if !v.is_null() && v.get("entries").is_none() {
        v["entries"] = Value::Array(vec![]);
    }
    v
}

fn our_read(dir: &Path, start: Snapshot, mode: OpenMode) -> Value {
    read_doc(dir, start, mode, true)
}

/// A random raft-like script: appends, overwrites of an uncommitted suffix, commit-only
/// hard state changes, snapshots, release_lock_to and syncs.
fn random_script(rng: &mut StdRng) -> (Script, Vec<Snapshot>) {
    let mut ops = Vec::new();
    let (mut term, mut last, mut commit) = (1u64, 0u64, 0u64);
    let mut snaps = Vec::new();
    let vote = rng.random_range(0..3u64);
    for _ in 0..rng.random_range(20..120) {
        match rng.random_range(0..20) {
            0..=11 => {
                let mut start = last + 1;
                if rng.random_range(0..8) == 0 && last > commit {
                    // New leader overwrites part of the uncommitted suffix.
                    term += 1;
                    start = rng.random_range(commit + 1..=last);
                }
                // Now and then a save past etcd's 128 KiB page-writer watermark, so the
                // mid-save flushes that decide cut points are exercised too.
                let n = if rng.random_range(0..8) == 0 {
                    rng.random_range(6..24u64)
                } else {
                    rng.random_range(0..6u64)
                };
                let ents: Vec<Entry> = (start..start + n)
                    .map(|i| Entry {
                        r#type: if rng.random_range(0..15) == 0 { 1 } else { 0 },
                        term,
                        index: i,
                        data: match rng.random_range(0..10) {
                            0 => None,
                            1 => Some(Vec::new()),
                            2 => Some(vec![rng.random(); rng.random_range(1000..60000)]),
                            _ => Some(
                                (0..rng.random_range(1..300))
                                    .map(|_| rng.random())
                                    .collect(),
                            ),
                        },
                    })
                    .collect();
                if n > 0 {
                    last = start + n - 1;
                }
                if rng.random_range(0..2) == 0 {
                    commit = rng.random_range(commit..=last.max(commit));
                }
                let hs = if rng.random_range(0..10) == 0 {
                    HardState::default()
                } else {
                    HardState::new(term, vote, commit)
                };
                ops.push(Op::Save(hs, ents));
            }
            12..=14 => {
                commit = last;
                ops.push(Op::Save(HardState::new(term, vote, commit), vec![]));
            }
            15..=16 if commit > 0 => {
                let s = Snapshot::new(rng.random_range(1..=commit), term);
                if snaps.iter().all(|x: &Snapshot| x.index < s.index) {
                    snaps.push(s);
                    ops.push(Op::Snapshot(s));
                }
            }
            17 => ops.push(Op::ReleaseLockTo(rng.random_range(0..=last + 2))),
            18 => ops.push(Op::Sync),
            _ => {}
        }
    }
    let metadata = (0..rng.random_range(0..40)).map(|_| rng.random()).collect();
    (Script { metadata, ops }, snaps)
}

fn starts(snaps: &[Snapshot]) -> Vec<Snapshot> {
    let mut v = vec![Snapshot::new(0, 0)];
    v.extend_from_slice(snaps);
    if let Some(s) = snaps.last() {
        v.push(Snapshot::new(s.index, s.term + 1)); // mismatch
        v.push(Snapshot::new(s.index + 1, s.term)); // not found
    }
    v
}

fn compare_reads(dir: &Path, snaps: &[Snapshot], what: &str) {
    for start in starts(snaps) {
        for mode in [OpenMode::Read, OpenMode::Write] {
            let g = go_read(dir, start, mode);
            let o = our_read(dir, start, mode);
            assert_eq!(o, g, "{what}: start {start:?} {mode:?}");
        }
    }
    let (gs, _) = go(&["snaps"], dir, None);
    let ours = snapshotd_wal::valid_snapshot_entries(dir).expect("snaps");
    let ours: Vec<Value> = ours
        .iter()
        .map(|s| serde_json::json!({"index": s.index, "term": s.term}))
        .collect();
    assert_eq!(
        gs["snapshots"].as_array().cloned().unwrap_or_default(),
        ours,
        "{what}: snaps"
    );
    for start in starts(snaps) {
        let (gv, _) = go(
            &[
                "verify",
                "-index",
                &start.index.to_string(),
                "-term",
                &start.term.to_string(),
            ],
            dir,
            None,
        );
        let ov = snapshotd_wal::verify(dir, start)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            gv["error"].as_str(),
            ov.as_deref(),
            "{what}: verify {start:?}"
        );
    }
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn random_scripts_round_trip_byte_identical() {
    let _ = IGNORE;
    let mut rng = StdRng::seed_from_u64(0xe7cd_0001);
    for case in 0..16 {
        let (script, snaps) = random_script(&mut rng);
        let seg = rng.random_range(4096..400_000u64);
        let tmp = snapshotd_testutil::temp_dir();
        let theirs = tmp.path().join("go");
        let ours = tmp.path().join("rs");
        let (ok, code) = go(
            &["write", "-segment-bytes", &seg.to_string()],
            &theirs,
            Some(&script_json(&script)),
        );
        assert_eq!((ok["ok"].as_bool(), code), (Some(true), 0), "case {case}");
        write_script(&ours, &script, seg);
        let a = wal_files(&ours);
        let b = wal_files(&theirs);
        assert_eq!(
            a.iter().map(|x| &x.0).collect::<Vec<_>>(),
            b.iter().map(|x| &x.0).collect::<Vec<_>>(),
            "case {case}: segment names"
        );
        for ((n, x), (_, y)) in a.iter().zip(&b) {
            assert!(
                x == y,
                "case {case}: {n} differs (len {} vs {})",
                x.len(),
                y.len()
            );
        }
        compare_reads(&theirs, &snaps, &format!("case {case} go-written"));
        compare_reads(&ours, &snaps, &format!("case {case} rust-written"));
    }
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn appends_cross_implementations() {
    let mut rng = StdRng::seed_from_u64(0xe7cd_0002);
    for case in 0..6 {
        let (s1, _) = random_script(&mut rng);
        let seg = rng.random_range(4096..32768u64);
        let tmp = snapshotd_testutil::temp_dir();
        let (go_dir, rs_dir) = (tmp.path().join("go"), tmp.path().join("rs"));
        go(
            &["write", "-segment-bytes", &seg.to_string()],
            &go_dir,
            Some(&script_json(&s1)),
        );
        write_script(&rs_dir, &s1, seg);
        // Continue each log with the other implementation, then compare everything.
        let last = our_read(&rs_dir, Snapshot::default(), OpenMode::Read)["last_index"]
            .as_u64()
            .unwrap_or(0);
        let more: Vec<Op> = (0..rng.random_range(5..40u64))
            .map(|k| {
                Op::Save(
                    HardState::new(50, 0, last + k),
                    vec![Entry::new(
                        last + k + 1,
                        50,
                        vec![k as u8; (k as usize * 97) % 700],
                    )],
                )
            })
            .collect();
        let s2 = Script {
            metadata: s1.metadata.clone(),
            ops: more.clone(),
        };
        let (ok, code) = go(
            &["append", "-segment-bytes", &seg.to_string()],
            &rs_dir,
            Some(&script_json(&s2)),
        );
        assert_eq!(
            (ok["ok"].as_bool(), code),
            (Some(true), 0),
            "case {case}: go append on ours"
        );
        let (mut wal, _) = Wal::open_with(
            &go_dir,
            Snapshot::default(),
            &WalOptions::default().segment_size_bytes(seg),
        )
        .expect("open go's")
        .read_all()
        .expect("read go's");
        run_ops(&mut wal, &more);
        wal.close().expect("close");
        let a = wal_files(&rs_dir);
        let b = wal_files(&go_dir);
        assert_eq!(a.len(), b.len(), "case {case}");
        for ((n, x), (_, y)) in a.iter().zip(&b) {
            assert!(x == y, "case {case}: {n} differs after cross appends");
        }
        compare_reads(&go_dir, &[], &format!("case {case} appended"));
    }
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn corruption_results_equal_etcds() {
    let mut rng = StdRng::seed_from_u64(0xe7cd_0003);
    let (script, _) = random_script(&mut rng);
    let tmp = snapshotd_testutil::temp_dir();
    let base = tmp.path().join("base");
    go(
        &["write", "-segment-bytes", "8192"],
        &base,
        Some(&script_json(&script)),
    );
    let files = wal_files(&base);
    let cases: u32 = std::env::var("SNAPSHOTD_WAL_INTEROP_CORRUPTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut panicked = 0;
    for case in 0..cases {
        let (g, o) = (
            tmp.path().join(format!("g{case}")),
            tmp.path().join(format!("o{case}")),
        );
        let seg = if rng.random_range(0..3) == 0 {
            rng.random_range(0..files.len())
        } else {
            files.len() - 1
        };
        let mut bytes = files[seg].1.clone();
        let end = bytes.iter().rposition(|&b| b != 0).unwrap_or(0) + 1;
        match rng.random_range(0..4) {
            0 => bytes.truncate(rng.random_range(0..end)),
            1 => {
                let s = rng.random_range(0..end.div_ceil(512)) * 512;
                let e = (s + 512).min(bytes.len());
                bytes[s..e].fill(0);
            }
            _ => {
                // Any byte, type fields included: results must equal etcd's either way.
                let at = rng.random_range(0..end.min(bytes.len()));
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
        }
        for d in [&g, &o] {
            std::fs::create_dir(d).unwrap();
            for (i, (n, b)) in files.iter().enumerate() {
                std::fs::write(d.join(n), if i == seg { &bytes } else { b }).unwrap();
            }
        }
        for mode in [OpenMode::Read, OpenMode::Write] {
            let ours = our_read(&o, Snapshot::default(), mode);
            let theirs = go_read(&g, Snapshot::default(), mode);
            if theirs.is_null() {
                // etcd panics; we must report an error instead of data.
                assert!(
                    !ours["read_error"].is_null(),
                    "case {case} {mode:?}: etcd panicked, we returned data"
                );
                panicked += 1;
            } else {
                assert_eq!(ours, theirs, "case {case} {mode:?}");
            }
        }
        let (gr, _) = go(&["repair"], &g, None);
        let ours = snapshotd_wal::repair(&o);
        assert_eq!(
            gr["repaired"].as_bool(),
            Some(ours.is_ok()),
            "case {case}: repair verdict ({ours:?})"
        );
        let all = |d: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                // A panicking etcd (see above) leaves its spare `0.tmp` behind; readers ignore it.
                .filter(|p| p.extension().is_none_or(|x| x != "tmp"))
                .collect();
            v.sort();
            v.iter()
                .map(|p| (p.file_name().unwrap().to_owned(), std::fs::read(p).unwrap()))
                .collect::<Vec<_>>()
        };
        let (ga, oa) = (all(&g), all(&o));
        if ga != oa {
            let sum = |v: &[(std::ffi::OsString, Vec<u8>)]| {
                v.iter()
                    .map(|(n, b)| format!("{}:{}", n.to_string_lossy(), b.len()))
                    .collect::<Vec<_>>()
            };
            let diff: Vec<_> = ga
                .iter()
                .zip(&oa)
                .filter(|(a, b)| a != b)
                .map(|(a, b)| {
                    let pos = a.1.iter().zip(&b.1).position(|(x, y)| x != y);
                    format!("{} first diff at {pos:?}", a.0.to_string_lossy())
                })
                .collect();
            panic!(
                "case {case}: files after repair differ: go {:?} ours {:?} {diff:?} (repair {ours:?})",
                sum(&ga),
                sum(&oa)
            );
        }
        let theirs = go_read(&g, Snapshot::default(), OpenMode::Write);
        if !theirs.is_null() {
            assert_eq!(
                our_read(&o, Snapshot::default(), OpenMode::Write),
                theirs,
                "case {case} after repair"
            );
        }
    }
    eprintln!(
        "corruption vs etcd: {cases} cases equal ({panicked} reads where etcd panicked and we returned an error)"
    );
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn a_segment_cut_at_a_snapshot_reads_like_etcd_after_older_ones_are_purged() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let opts = WalOptions::default().segment_size_bytes(4096);
    let mut w = Wal::create_with(&dir, b"cut", &opts).unwrap();
    for i in 1..=30u64 {
        let e = Entry::new(i, 1, vec![i as u8; 300]);
        w.save(&HardState::new(1, 1, i), &[e]).unwrap();
    }
    let snap = Snapshot::new(30, 1);
    assert!(w.cut_at_snapshot(&snap).unwrap());
    w.release_lock_to(31).unwrap();
    assert!(!snapshotd_wal::purge(&dir, 1).unwrap().is_empty());
    compare_reads(&dir, &[snap], "cut at snapshot, nothing after");
    let e: Vec<Entry> = (31..=33).map(|i| Entry::new(i, 1, vec![7; 50])).collect();
    w.save(&HardState::new(1, 1, 33), &e).unwrap();
    w.close().unwrap();
    compare_reads(&dir, &[snap], "cut at snapshot, then appends");
    let g = go_read(&dir, snap, OpenMode::Read);
    assert_eq!(g["entries"].as_array().map(Vec::len), Some(3), "{g}");
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn ofd_locks_exclude_etcd_and_us() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let mut wal = Wal::create_with(
        &dir,
        b"locks",
        &WalOptions::default().segment_size_bytes(16384),
    )
    .expect("create");
    wal.save(&HardState::new(1, 1, 1), &[Entry::new(1, 1, b"x".to_vec())])
        .expect("save");
    // We hold the segment: etcd's Open must fail, its OpenForRead must work.
    let g = go_read(&dir, Snapshot::default(), OpenMode::Write);
    assert_eq!(g["open_error"], "fileutil: file already locked");
    let g = go_read(&dir, Snapshot::default(), OpenMode::Read);
    assert_eq!(g["num_entries"], 1);
    wal.close().expect("close");

    // etcd's wal holds the segments while it appends a long script: our open must fail.
    let ops: Vec<Op> = (2..1500u64)
        .map(|i| Op::Save(HardState::new(1, 1, i), vec![Entry::new(i, 1, vec![1; 64])]))
        .collect();
    let script = script_json(&Script {
        metadata: b"locks".to_vec(),
        ops,
    });
    let mut child = Command::new(harness())
        .args(["append", "-segment-bytes", "16384"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.to_string().as_bytes())
        .unwrap();
    let mut guard = snapshotd_testutil::ChildGuard(child);
    let mut saw_locked = false;
    for _ in 0..2000 {
        match Wal::open(&dir, Snapshot::default()) {
            Err(snapshotd_wal::Error::Locked { .. }) => {
                saw_locked = true;
                assert!(
                    snapshotd_wal::purge(&dir, 0).unwrap().is_empty(),
                    "purge must stop at etcd's locks"
                );
                break;
            }
            Ok(u) => drop(u),
            Err(e) => panic!("unexpected {e}"),
        }
        if guard.0.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let status = guard.0.wait().unwrap();
    assert!(
        saw_locked,
        "never observed etcd's OFD lock (harness exited: {status})"
    );
    assert!(status.success());
    assert_eq!(
        our_read(&dir, Snapshot::default(), OpenMode::Write)["last_index"],
        1499
    );
}
