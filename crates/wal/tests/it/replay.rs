//! Replaying the harness script that produced `gowal-small-segments` through our writer
//! yields byte-identical segment files (same cut points, CRC chain, zero tails).

use snapshotd_wal::{OpenMode, Snapshot};

use crate::support::{materialize, parse_script, read_doc, vector_json, wal_files, write_script};

#[test]
fn gowal_small_segments_replay_is_byte_identical() {
    let script = parse_script(&vector_json("gowal-small-segments", "script.json"));
    let tmp = snapshotd_testutil::temp_dir();
    let ours = tmp.path().join("wal");
    write_script(&ours, &script, 8192);
    let (_vt, theirs) = materialize("gowal-small-segments");
    let a = wal_files(&ours);
    let b = wal_files(&theirs);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x.len(), y.len(), "{name}: size");
        if let Some(pos) = x.iter().zip(y).position(|(p, q)| p != q) {
            panic!("{name}: first difference at byte {pos}");
        }
    }
    // And nothing but the segments is left behind.
    let all: Vec<_> = std::fs::read_dir(&ours).expect("dir").collect();
    assert_eq!(all.len(), a.len());
    let doc = read_doc(&ours, Snapshot::new(120, 2), OpenMode::Read, false);
    assert_eq!(doc["num_entries"], 47);
}
