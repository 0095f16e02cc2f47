//! A write that fails half way (here: the file size limit, EFBIG) latches the writer: later
//! saves are refused with `WriterFailed` instead of appending after a partial frame, and a
//! reopen (+ repair) returns every entry saved before the failure.
//!
//! The child is this test binary re-run on the ignored test `failure::failing_writer_child`
//! under `ulimit -f` with SIGXFSZ ignored, so oversized writes fail with EFBIG.

use std::path::Path;
use std::process::Command;

use snapshotd_wal::{Entry, Error, HardState, Snapshot, Wal, WalOptions, try_repair};

const ENV_DIR: &str = "SNAPSHOTD_WAL_FAIL_CHILD";

fn opts() -> WalOptions {
    WalOptions::default().segment_size_bytes(32 * 1024)
}

#[test]
#[ignore = "helper: the child process of failure::failed_write_latches_the_writer"]
fn failing_writer_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return;
    };
    let mut wal = Wal::create_with(&dir, b"fail", &opts()).expect("create");
    for i in 1..=5u64 {
        wal.save(
            &HardState::new(1, 1, i),
            &[Entry::new(i, 1, vec![i as u8; 100])],
        )
        .expect("save");
        println!("ACK {i}");
    }
    match wal.save(
        &HardState::new(1, 1, 6),
        &[Entry::new(6, 1, vec![6u8; 3 << 20])],
    ) {
        Ok(()) => println!("ERR1 none"),
        Err(e) => println!("ERR1 {e}"),
    }
    match wal.save(&HardState::new(1, 1, 7), &[Entry::new(7, 1, vec![7u8; 10])]) {
        Ok(()) => println!("ERR2 none"),
        Err(Error::WriterFailed { .. }) => println!("ERR2 latched"),
        Err(e) => println!("ERR2 other {e}"),
    }
}

fn open_repairing(dir: &Path) -> snapshotd_wal::WalContents {
    match Wal::open_with(dir, Snapshot::default(), &opts())
        .expect("open")
        .read_all()
    {
        Ok((w, c)) => {
            w.close().expect("close");
            c
        }
        Err(e) if e.is_unexpected_eof() => {
            try_repair(dir).expect("repair");
            let (w, c) = Wal::open_with(dir, Snapshot::default(), &opts())
                .expect("open")
                .read_all()
                .expect("read after repair");
            w.close().expect("close");
            c
        }
        Err(e) => panic!("unreadable after a failed write: {e}"),
    }
}

#[test]
fn failed_write_latches_the_writer() {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("wal");
    let exe = std::env::current_exe().expect("test binary");
    // (The test harness may print "test … " before the first line of output, hence `contains`.)
    // 2048 blocks is 1 MiB (dash counts 512-byte blocks) or 2 MiB (bash: 1 KiB blocks);
    // either way the 3 MiB record cannot be written.
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 2048 && exec \"$0\" failure::failing_writer_child --exact --ignored --nocapture --test-threads=1")
        .arg(&exe)
        .env(ENV_DIR, &dir)
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.contains("ACK ")).count(),
        5,
        "{stdout}"
    );
    let err1 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ERR1 "))
        .expect("ERR1");
    assert_ne!(
        err1, "none",
        "the oversized write must fail under ulimit -f"
    );
    let err2 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ERR2 "))
        .expect("ERR2");
    assert_eq!(
        err2, "latched",
        "the writer must refuse to continue: {stdout}"
    );
    let c = open_repairing(&dir);
    let idx: Vec<u64> = c.entries.iter().map(|e| e.index).collect();
    assert_eq!(&idx[..5], &[1, 2, 3, 4, 5], "acknowledged entries survive");
    assert!(idx.len() <= 6 && !idx.contains(&7));
}
