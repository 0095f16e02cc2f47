//! Replays the `wal_decoder` fuzz corpus (fuzz/corpus/wal_decoder) on stable: every input
//! must decode or fail cleanly, never panic, and the positional and streaming decoders must
//! agree on every segment of it (`torn-frame-last-segment-rule` is the input the fuzzer
//! found when the streaming decoder ignored the last-segment torn-write rule).

use snapshotd_wal::{Snapshot, fuzz_decode, read_all_in_memory};

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = snapshotd_testutil::workspace_root().join("fuzz/corpus/wal_decoder");
    let mut n = 0;
    for ent in std::fs::read_dir(&dir).expect("corpus dir") {
        let p = ent.expect("entry").path();
        let data = std::fs::read(&p).expect("read input");
        fuzz_decode(&data);
        n += 1;
    }
    assert!(n >= 10, "corpus too small: {n}");
}

#[test]
fn in_memory_decoding_matches_the_vector() {
    let dir = snapshotd_testutil::vector("etcd-wal/gowal-small-segments/wal");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("e").path())
        .collect();
    names.sort();
    let bytes: Vec<Vec<u8>> = names
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let c = read_all_in_memory(&slices, Snapshot::new(40, 1), true).expect("decode");
    assert_eq!(c.entries.len(), 127);
    assert_eq!(c.entries.first().map(|e| e.index), Some(41));
    // A cut in the middle of the last record: read mode accepts, strict mode does not.
    let last = slices.len() - 1;
    let end = bytes[last].iter().rposition(|&b| b != 0).expect("data");
    let mut cut = slices.clone();
    cut[last] = &bytes[last][..end - 2];
    assert!(read_all_in_memory(&cut, Snapshot::new(40, 1), false).is_ok());
    let err = read_all_in_memory(&cut, Snapshot::new(40, 1), true).unwrap_err();
    assert_eq!(err.to_string(), "unexpected EOF");
}
