//! Replays the fuzz seed corpora and any saved crash inputs through the fuzz harnesses on
//! stable, so a crash found by `cargo xtask fuzz` stays fixed.

use std::path::Path;

use snapshotd_wire::fuzzing;

type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 10] = [
    ("wire_request", fuzzing::request),
    ("wire_server_replies", fuzzing::server_replies),
    ("wire_meta_backup", fuzzing::meta_backup),
    ("wire_info", fuzzing::info),
    ("wire_shard_id_map", fuzzing::shard_id_map),
    ("wire_stream_start", fuzzing::stream_start),
    ("wire_upload_ack", fuzzing::upload_ack),
    ("portable_meta", fuzzing::portable_meta),
    ("portable_manifest", fuzzing::portable_manifest),
    ("portable_meta_summary", fuzzing::meta_summary),
];

fn replay(dir: &Path, run: Harness) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd {
        let p = e.unwrap().path();
        if p.is_file() {
            run(&std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn corpora_and_regressions_replay() {
    let root = snapshotd_testutil::workspace_root();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (target, run) in TARGETS {
        assert!(
            root.join("fuzz/fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "fuzz target {target} missing"
        );
        let seeds = replay(&root.join("fuzz/corpus").join(target), run);
        assert!(seeds > 0, "empty seed corpus for {target}");
        replay(&here.join("tests/data/fuzz-regressions").join(target), run);
    }
}

#[test]
fn every_capture_passes_the_harnesses() {
    // Whatever the corpus holds, the real traffic must pass too (with every chunk size).
    for c in crate::util::connections() {
        for chunk in 0u8..16 {
            let mut c2s = vec![chunk];
            c2s.extend_from_slice(&c.c2s);
            fuzzing::request(&c2s);
            fuzzing::server_replies(&c2s);
            let mut s2c = vec![chunk];
            s2c.extend_from_slice(&c.s2c);
            match c.kind {
                1 => fuzzing::meta_backup(&s2c),
                3 => fuzzing::info(&s2c),
                6 => fuzzing::shard_id_map(&s2c),
                _ => fuzzing::stream_start(&s2c),
            }
        }
    }
}
