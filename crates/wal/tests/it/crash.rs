//! Crash test: a child process appends with fsync and is SIGKILLed at random points; after
//! each kill, open (+ repair, as etcd's server does) + read_all must return every entry
//! whose save returned. 200 cycles by default, `SNAPSHOTD_WAL_CRASH_CYCLES=1000` for more.
//!
//! The child is this test binary re-run on the ignored test `crash::crash_child`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng, rngs::StdRng};
use snapshotd_wal::{Entry, Error, HardState, Snapshot, Wal, WalContents, WalOptions, try_repair};

const ENV_DIR: &str = "SNAPSHOTD_WAL_CRASH_CHILD";
const ENV_SEED: &str = "SNAPSHOTD_WAL_CRASH_SEED";

fn opts() -> WalOptions {
    WalOptions::default().segment_size_bytes(32 * 1024)
}

fn payload(index: u64) -> Vec<u8> {
    // Now and then an entry larger than the 128 KiB write buffer, so one save is written
    // with several write calls and a kill can leave a partial frame behind.
    let len = if index.is_multiple_of(61) {
        140_000
    } else {
        (index.wrapping_mul(7919) % 2500 + 1) as usize
    };
    vec![(index % 251) as u8; len]
}

/// Open for appending the way etcd's server does: on unexpected EOF, repair once and retry.
fn open_repairing(dir: &Path) -> Result<(Wal, WalContents), Error> {
    match Wal::open_with(dir, Snapshot::default(), &opts())?.read_all() {
        Err(e) if e.is_unexpected_eof() => {
            try_repair(dir)?;
            Wal::open_with(dir, Snapshot::default(), &opts())?.read_all()
        }
        r => r,
    }
}

#[test]
#[ignore = "helper: the child process of crash::sigkill_cycles"]
fn crash_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return;
    };
    let seed: u64 = std::env::var(ENV_SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut wal, c) = open_repairing(Path::new(&dir)).expect("child open");
    let mut next = c.entries.last().map_or(1, |e| e.index + 1);
    let out = std::io::stdout();
    loop {
        let n = rng.random_range(1..=8u64);
        let ents: Vec<Entry> = (next..next + n)
            .map(|i| Entry::new(i, 1, payload(i)))
            .collect();
        let last = next + n - 1;
        wal.save(&HardState::new(1, 1, last), &ents).expect("save");
        let mut o = out.lock();
        writeln!(o, "ACK {last}").expect("ack");
        o.flush().expect("flush");
        next = last + 1;
    }
}

#[test]
fn sigkill_cycles() {
    let cycles: u64 = std::env::var("SNAPSHOTD_WAL_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    Wal::create_with(&dir, b"crash", &opts())
        .expect("create")
        .close()
        .expect("close");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = StdRng::seed_from_u64(0xc7a5_0001);
    let mut acked = 0u64;
    let mut repairs = 0u64;
    for cycle in 0..cycles {
        let child = Command::new(&exe)
            .args([
                "crash::crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_DIR, &dir)
            .env(ENV_SEED, cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut guard = snapshotd_testutil::ChildGuard(child);
        let stdout = guard.0.stdout.take().expect("stdout");
        let want_acks = rng.random_range(0..8u32);
        let mut lines = BufReader::new(stdout).lines();
        let mut got = 0;
        while got < want_acks {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(n) = line.split_once("ACK ").map(|(_, n)| n) {
                acked = n.parse().expect("ack index");
                got += 1;
            }
        }
        // Let the next save get somewhere between "not started" and "fsynced".
        std::thread::sleep(std::time::Duration::from_micros(rng.random_range(0..1500)));
        guard.0.kill().expect("SIGKILL");
        let _ = guard.0.wait();
        // Drain acks that were written before the kill landed.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.split_once("ACK ").map(|(_, n)| n) {
                acked = n.parse().expect("ack index");
            }
        }
        drop(guard);

        let (wal, c) = match Wal::open_with(&dir, Snapshot::default(), &opts())
            .expect("open")
            .read_all()
        {
            Err(e) if e.is_unexpected_eof() => {
                repairs += 1;
                try_repair(&dir).expect("repair");
                Wal::open_with(&dir, Snapshot::default(), &opts())
                    .expect("open after repair")
                    .read_all()
                    .unwrap_or_else(|e| panic!("cycle {cycle}: unreadable after repair: {e}"))
            }
            Err(e) => panic!("cycle {cycle}: {e}"),
            Ok(x) => x,
        };
        wal.close().expect("close");
        let last = c.entries.last().map_or(0, |e| e.index);
        assert!(
            last >= acked,
            "cycle {cycle}: acknowledged up to {acked}, read back only {last}"
        );
        for (k, e) in c.entries.iter().enumerate() {
            assert_eq!(e.index, k as u64 + 1, "cycle {cycle}: entries contiguous");
            assert_eq!(
                e.data.as_deref(),
                Some(payload(e.index).as_slice()),
                "cycle {cycle}: entry {} data",
                e.index
            );
        }
        // Clear the broken copies repair leaves behind so they don't pile up.
        for ent in std::fs::read_dir(&dir).expect("dir") {
            let p = ent.expect("e").path();
            if p.to_string_lossy().ends_with(".broken") {
                std::fs::remove_file(p).expect("rm broken");
            }
        }
        acked = last.max(acked);
    }
    eprintln!("crash: {cycles} cycles, {acked} entries acknowledged, {repairs} repairs");
    assert!(acked > 0);
}
