//! Writes a log of `MB` megabytes of 16 KB entries in DIR (no fsync) unless DIR already
//! holds one, then times `ROUNDS` read-mode `read_all`s of it and prints the median as
//! `{"ns": …, "entries": …}`, for A/B runs by hand:
//! `cargo run --release -p snapshotd-wal --example read_bench -- DIR MB ROUNDS`
use snapshotd_wal::{Entry, HardState, Snapshot, Wal, WalOptions, WalReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [dir, mb, rounds] = a.as_slice() else {
        return Err("usage: read_bench DIR MB ROUNDS".into());
    };
    let (mb, rounds): (u64, usize) = (mb.parse()?, rounds.parse()?);
    if !snapshotd_wal::wal_exists(dir.as_ref()) {
        let opts = WalOptions::default().unsafe_no_fsync(true);
        let mut wal = Wal::create_with(dir, b"bench", &opts)?;
        let data: Vec<u8> = (0..16384).map(|i| i as u8).collect();
        for k in 0..(mb << 20) / (16 * 16384) {
            let ents: Vec<Entry> = (1..=16)
                .map(|i| Entry::new(k * 16 + i, 1, data.clone()))
                .collect();
            wal.save(&HardState::new(1, 1, k * 16 + 16), &ents)?;
        }
        wal.close()?;
    }
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..rounds.max(1) {
        let t = std::time::Instant::now();
        let c = WalReader::open(dir, Snapshot::default())?.read_all()?;
        times.push(t.elapsed().as_nanos());
        n = c.entries.len();
    }
    times.sort_unstable();
    println!("{{\"ns\":{},\"entries\":{n}}}", times[times.len() / 2]);
    Ok(())
}
