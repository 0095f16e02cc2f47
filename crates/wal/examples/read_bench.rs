//! Writes a log of `MB` megabytes of 16 KB entries in DIR (no fsync) unless DIR already
//! holds one, then times `ROUNDS` read-mode `read_all`s of it and prints the median as
//! `{"ns": …, "entries": …}`, for A/B runs by hand:
//! `cargo run --release -p snapshotd-wal --example read_bench -- DIR MB ROUNDS [reader|writer|lean]`
//! (`writer`: write-mode `Wal::open(..).read_all()`, `lean`: `Wal::open(..).into_writer()`;
//! the process's peak RSS is printed as `peak_rss_kib`).
use snapshotd_wal::{Entry, HardState, Snapshot, Wal, WalContents, WalOptions, WalReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let (dir, mb, rounds, mode) = match a.as_slice() {
        [d, m, r] => (d, m, r, "reader"),
        [d, m, r, k] => (d, m, r, k.as_str()),
        _ => return Err("usage: read_bench DIR MB ROUNDS [reader|writer|lean]".into()),
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
        let c: WalContents = match mode {
            "writer" | "lean" => {
                let unread = Wal::open(dir, Snapshot::default())?;
                let (w, c) = if mode == "lean" {
                    unread.into_writer()?
                } else {
                    unread.read_all()?
                };
                w.close()?;
                c
            }
            _ => WalReader::open(dir, Snapshot::default())?.read_all()?,
        };
        times.push(t.elapsed().as_nanos());
        n = c.entries.len();
    }
    times.sort_unstable();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "{{\"ns\":{},\"entries\":{n},\"peak_rss_kib\":{hwm}}}",
        times[times.len() / 2]
    );
    Ok(())
}
