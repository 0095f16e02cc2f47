//! Times `THREADS` threads each making `SAVES` saves of one `SIZE`-byte entry through one
//! `SharedWal` (group commit) on a fresh WAL in DIR; prints `{"ns": …, "saves": …,
//! "fsyncs": …}` for A/B runs by hand:
//! `cargo run --release -p snapshotd-wal --example group_bench -- DIR THREADS SAVES SIZE`
//! (`SNAPSHOTD_BENCH_COMMIT_DELAY_US=N` sets `SharedWal::with_commit_delay` to N µs).
use std::sync::Arc;

use snapshotd_wal::{Entry, HardState, SharedWal, Wal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [dir, threads, saves, size] = a.as_slice() else {
        return Err("usage: group_bench DIR THREADS SAVES SIZE".into());
    };
    let (threads, saves, size): (u64, u64, usize) =
        (threads.parse()?, saves.parse()?, size.parse()?);
    let delay = std::env::var("SNAPSHOTD_BENCH_COMMIT_DELAY_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(std::time::Duration::ZERO, std::time::Duration::from_micros);
    let shared = Arc::new(SharedWal::new(Wal::create(dir, b"bench")?).with_commit_delay(delay));
    let data = vec![7u8; size];
    let t = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (s, d) = (shared.clone(), data.clone());
            std::thread::spawn(move || -> Result<(), snapshotd_wal::Error> {
                for _ in 0..saves {
                    s.save_with(|i| (HardState::new(1, 1, i), vec![Entry::new(i, 1, d.clone())]))?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "saver panicked")??;
    }
    let ns = t.elapsed().as_nanos();
    let st = shared.stats()?;
    println!(
        "{{\"ns\":{ns},\"saves\":{},\"fsyncs\":{}}}",
        st.saves, st.fsyncs
    );
    Ok(())
}
