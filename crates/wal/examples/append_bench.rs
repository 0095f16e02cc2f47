//! Times `SAVES` saves of `N` entries of `SIZE` bytes, fsync per save, on a fresh WAL in DIR;
//! prints `{"ns": …}` like the etcd Go helper in benches/go, for A/B runs by hand:
//! `cargo run --release -p snapshotd-wal --example append_bench -- DIR N SIZE SAVES`
//! (`SNAPSHOTD_BENCH_NO_FSYNC=1` skips fdatasync, to time the encoder and writes alone;
//! `SNAPSHOTD_BENCH_SYNC_SLICE_US=N` sets `WalOptions::sync_slice` to N µs).
use snapshotd_wal::{Entry, HardState, Wal, WalOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [dir, n, size, saves] = a.as_slice() else {
        return Err("usage: append_bench DIR N SIZE SAVES".into());
    };
    let (n, size, saves): (u64, usize, u64) = (n.parse()?, size.parse()?, saves.parse()?);
    let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let no_fsync = std::env::var_os("SNAPSHOTD_BENCH_NO_FSYNC").is_some();
    let mut opts = WalOptions::default().unsafe_no_fsync(no_fsync);
    if let Some(us) = std::env::var("SNAPSHOTD_BENCH_SYNC_SLICE_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts = opts.sync_slice(std::time::Duration::from_micros(us));
    }
    let mut wal = Wal::create_with(dir, b"bench", &opts)?;
    let mut idx = 0;
    let t = std::time::Instant::now();
    for _ in 0..saves {
        let ents: Vec<Entry> = (0..n)
            .map(|_| {
                idx += 1;
                Entry::new(idx, 1, data.clone())
            })
            .collect();
        wal.save(&HardState::new(1, 1, idx), &ents)?;
    }
    println!("{{\"ns\":{}}}", t.elapsed().as_nanos());
    wal.close()?;
    Ok(())
}
