//! Replays the committed fuzz seed corpora (fuzz/corpus/tsm_*) on stable through the same
//! harnesses the fuzz targets run: every input decodes or fails cleanly, never panics.

use snapshotd_tsm::fuzzing;

/// A fuzz harness.
type Harness = fn(&[u8]);

#[test]
fn fuzz_corpora_replay_without_panics() -> Result<(), Box<dyn std::error::Error>> {
    let targets: [(&str, Harness); 8] = [
        ("tsm_timestamps", fuzzing::timestamps),
        ("tsm_float", fuzzing::floats),
        ("tsm_integer", fuzzing::integers),
        ("tsm_unsigned", fuzzing::unsigned),
        ("tsm_bool", fuzzing::booleans),
        ("tsm_string", fuzzing::strings),
        ("tsm_reader", fuzzing::reader),
        ("tsm_tombstone", fuzzing::tombstones),
    ];
    for (name, harness) in targets {
        let dir = snapshotd_testutil::workspace_root()
            .join("fuzz/corpus")
            .join(name);
        let mut n = 0;
        for ent in std::fs::read_dir(&dir)? {
            harness(&std::fs::read(ent?.path())?);
            n += 1;
        }
        assert!(n >= 5, "corpus {name} too small: {n}");
    }
    Ok(())
}
