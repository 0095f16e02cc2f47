//! Compaction throughput and the bounded write log (log entries left after quiescence,
//! reopen time against history).

use std::io::Read;
use std::time::{Duration, Instant};

use snapshotd_store::{AdminStore, BuiltinStore, CompactionPolicy, RestoreLimits};
use snapshotd_testutil::temp_dir;

use crate::sets::{BATCH, cpu_text};
use crate::util::{dir_bytes, open};

/// The same batches written straight into a store without background compaction, then
/// compacted at once: log bytes read and TSM bytes written per second.
pub fn compaction_throughput(bodies: &[Vec<u8>]) {
    let dir = temp_dir();
    let policy = CompactionPolicy::default().with_background(false);
    let store = open(&dir.path().join("store"), policy);
    for b in bodies {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&b[..])
            .read_to_end(&mut text)
            .unwrap();
        store
            .write_lines(
                "bench",
                None,
                snapshotd_store::Precision::Nanoseconds,
                &text,
            )
            .unwrap();
    }
    let data = dir.path().join("store/data");
    let before = dir_bytes(&data);
    let t = Instant::now();
    let st = store.compact_all().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let after = dir_bytes(&data);
    println!(
        "compaction: {:.1} MB of log -> {:.1} MB TSM ({} values) in {secs:.2} s = {:.1} MB/s of log, {:.2} M values/s; shard dirs {:.1} MB -> {:.1} MB",
        before as f64 / 1e6,
        st.bytes as f64 / 1e6,
        st.values,
        before as f64 / 1e6 / secs,
        st.values as f64 / 1e6 / secs,
        before as f64 / 1e6,
        after as f64 / 1e6
    );
}

/// Writes `mb` MB of line protocol straight into a store with the default policy (idle 2 s),
/// waits for quiescence, prints each shard's log entries left vs written, then times a
/// reopen (open + every shard log opened); returns the reopen seconds.
pub fn bounded_wal(mb: u64) -> f64 {
    let dir = temp_dir();
    let path = dir.path().join("store");
    let mut policy =
        CompactionPolicy::default().with_idle(Duration::from_secs(2), Duration::from_millis(200));
    // SNAPSHOTD_BENCH_STORE_SEGMENT_MB: the shard logs' segment size (default: the store's).
    if let Some(n) = crate::env_num::<u64>("SNAPSHOTD_BENCH_STORE_SEGMENT_MB") {
        policy = policy.with_segment_bytes(n << 20);
    }
    let store = open(&path, policy.clone());
    let (mut raw, mut b) = (0u64, 0usize);
    let t = Instant::now();
    while raw < mb * 1_000_000 {
        // 600 s per 1000 points: the history spans several 7-day shards.
        let text = cpu_text(b, 600_000_000_000);
        store
            .write_lines(
                "bench",
                None,
                snapshotd_store::Precision::Nanoseconds,
                text.as_bytes(),
            )
            .unwrap();
        raw += text.len() as u64;
        b += 1;
    }
    let write_secs = t.elapsed().as_secs_f64();
    let ids: Vec<u64> = store
        .shards()
        .unwrap()
        .iter()
        .map(|s| s.path.shard_id)
        .collect();
    let t = Instant::now();
    while ids.iter().any(|id| {
        let l = store.log_stats(*id).unwrap();
        l.last_index > l.compacted_through
    }) {
        assert!(t.elapsed() < Duration::from_secs(300), "never quiescent");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "bounded WAL: {:.1} MB line protocol ({} batches of {BATCH}) written in {write_secs:.1} s, quiescent {:.1} s later; store dir {:.1} MB",
        raw as f64 / 1e6,
        b,
        t.elapsed().as_secs_f64(),
        dir_bytes(&path) as f64 / 1e6
    );
    let mut over = Vec::new();
    for id in &ids {
        let l = store.log_stats(*id).unwrap();
        println!(
            "  shard {id}: {} entries written, {} left on disk in {} segments ({:.1} %); segment size {:.0} MiB",
            l.last_index,
            l.entries_on_disk,
            l.segments,
            l.entries_on_disk as f64 * 100.0 / l.last_index.max(1) as f64,
            policy.segment_bytes as f64 / 1048576.0
        );
        // The bound the store keeps: the segment holding the compaction marker (and an empty
        // one when the last write filled it).
        assert!(l.segments <= 2, "shard {id}: {l:?}");
        if l.entries_on_disk * 10 >= l.last_index {
            over.push(*id);
        }
    }
    println!("  shards with 10 % or more of their entries left: {over:?}");
    drop(store);
    let t = Instant::now();
    let store = BuiltinStore::open_with(&path, RestoreLimits::default(), policy).unwrap();
    for id in &ids {
        store.log_stats(*id).unwrap();
    }
    let reopen = t.elapsed().as_secs_f64();
    println!(
        "  reopen after {:.0} MB of history: {:.1} ms",
        raw as f64 / 1e6,
        reopen * 1e3
    );
    reopen
}
