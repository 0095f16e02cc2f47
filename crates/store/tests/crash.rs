//! Crash safety of the built-in store with a real process kill: a child process (this test
//! binary re-run as `crash::crash_child`) opens the store with tiny compaction thresholds,
//! writes the batches the parent sends and acknowledges each once `write_lines` returned.
//! The parent SIGKILLs it at seeded moments (after a seeded number of acks, or as soon as a
//! compaction or merge leaves a temporary file or marker in a shard directory), reopens the
//! store and checks: every acked batch is present exactly once (count and sum of its
//! fields), an unacked batch is wholly present or wholly absent, and the shards' backups
//! (what influxd would load) hold each value once, not once per file that ever held it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use snapshotd_store::builtin::{Point, Value};
use snapshotd_store::testkit::tar_files;
use snapshotd_store::{
    AdminStore, BuiltinStore, CompactionPolicy, DatabaseSpec, Precision, RestoreLimits, Store,
};
use snapshotd_tsm::TsmReader;

use crate::common::TestResult;

/// Tells the re-run test binary to act as the child, writing into this data directory.
const CHILD_ENV: &str = "SNAPSHOTD_CRASH_CHILD_DIR";
/// Points per batch.
const N: i64 = 200;
/// 2021-01-01T00:00:00Z in ns.
const T0: i64 = 1_609_459_200_000_000_000;
const DAY: i64 = 86_400_000_000_000;

fn policy() -> CompactionPolicy {
    CompactionPolicy::default()
        .with_thresholds(3, 32 * 1024)
        .with_idle(Duration::from_millis(30), Duration::from_millis(5))
        .with_segment_bytes(64 * 1024)
        .with_merge_files(2)
}

/// Batch `k`: points `c,b=K%5 k=Ki,j=Ji` at distinct times, in one of three shards.
fn batch(k: i64) -> String {
    let base = T0 + (k % 3) * 8 * DAY + k * N * 1000;
    (0..N)
        .map(|j| format!("c,b={} k={k}i,j={j}i {}\n", k % 5, base + j))
        .collect()
}

/// The child: writes each batch number read from stdin, prints `ACK k` once it is durable.
#[test]
#[ignore = "run by crash_kill_rounds as a child process"]
fn crash_child() -> TestResult {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return Ok(());
    };
    let store = BuiltinStore::open_with(dir, RestoreLimits::default(), policy())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let k: i64 = line?.trim().parse()?;
        store.write_lines("crash", None, Precision::Nanoseconds, batch(k).as_bytes())?;
        writeln!(out, "ACK {k}")?;
        out.flush()?;
    }
    Ok(())
}

/// A tiny deterministic generator (xorshift64*), so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

fn spawn_child(dir: &Path) -> Result<Child, Box<dyn std::error::Error>> {
    Ok(Command::new(std::env::current_exe()?)
        .args(["crash::crash_child", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Whether a compaction or merge is between writing its temporary file and finishing.
fn compaction_in_flight(data: &Path) -> bool {
    let Ok(dbs) = std::fs::read_dir(data.join("data/crash/autogen")) else {
        return false;
    };
    dbs.flatten().any(|shard| {
        std::fs::read_dir(shard.path()).is_ok_and(|files| {
            files.flatten().any(|f| {
                let n = f.file_name().to_string_lossy().into_owned();
                n.ends_with(".tmp") || n == ".merging"
            })
        })
    })
}

/// How a round picks its moment to kill.
#[derive(Debug, Clone, Copy)]
enum Aim {
    /// After this many acks of the round.
    Acks(u64),
    /// As soon as a compaction's temporary file or merge marker is seen, plus a delay (µs).
    Compaction(u64),
}

/// One round: starts the child, streams batches from `next` on, kills it at `aim`; returns
/// the batches acked and the ones sent but not acked.
fn round(
    dir: &Path,
    next: &mut i64,
    aim: Aim,
) -> Result<(Vec<i64>, Vec<i64>), Box<dyn std::error::Error>> {
    let mut child = spawn_child(dir)?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let acks = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let acks = acks.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(k) = line
                    .strip_prefix("ACK ")
                    .and_then(|k| k.parse::<i64>().ok())
                {
                    acks.lock().unwrap_or_else(|p| p.into_inner()).push(k);
                }
            }
        })
    };
    let first = *next;
    let start = Instant::now();
    let mut aimed_at = None;
    while start.elapsed() < Duration::from_secs(10) {
        let acked = acks.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        // Keep a few batches queued so a write is always in flight.
        while *next - first < acked as i64 + 4 {
            writeln!(stdin, "{next}")?;
            *next += 1;
        }
        let fire = match aim {
            Aim::Acks(n) => acked >= n,
            Aim::Compaction(delay) => {
                if aimed_at.is_none() && compaction_in_flight(dir) {
                    aimed_at = Some(Instant::now());
                }
                aimed_at.is_some_and(|t| t.elapsed() >= Duration::from_micros(delay))
            }
        };
        if fire {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    drop(stdin);
    reader.join().map_err(|_| "ack reader panicked")?;
    let acked = std::mem::take(&mut *acks.lock().unwrap_or_else(|p| p.into_inner()));
    let unacked = (first..*next).filter(|k| !acked.contains(k)).collect();
    Ok((acked, unacked))
}

/// Per batch: (points, sum of `j`) as read back.
fn per_batch(points: &[Point]) -> BTreeMap<i64, (i64, i64)> {
    let mut out = BTreeMap::new();
    for p in points {
        let get = |name: &str| {
            p.fields.iter().find_map(|(f, v)| match v {
                Value::Integer(i) if f == name => Some(*i),
                _ => None,
            })
        };
        if let (Some(k), Some(j)) = (get("k"), get("j")) {
            let e = out.entry(k).or_insert((0, 0));
            e.0 += 1;
            e.1 += j;
        }
    }
    out
}

/// Values of field `k` in the TSM files of every shard's backup.
fn backed_up_values(s: &BuiltinStore) -> Result<usize, Box<dyn std::error::Error>> {
    let mut n = 0;
    for shard in s.shards()? {
        let mut tar = Vec::new();
        s.backup_shard(shard.path.shard_id, None, &mut tar)?;
        for (name, bytes) in tar_files(&tar)? {
            if !name.ends_with(".tsm") {
                continue;
            }
            let mut r = TsmReader::open(std::io::Cursor::new(bytes))?;
            let keys: Vec<Vec<u8>> = r.keys().iter().map(|k| k.key.clone()).collect();
            for key in keys.iter().filter(|k| k.ends_with(b"#!~#k")) {
                n += r.read_key(key)?.map_or(0, |v| v.len());
            }
        }
    }
    Ok(n)
}

/// Reopens the store and checks every batch sent so far.
fn check(dir: &Path, acked: &[i64], unacked: &[i64], label: &str) -> TestResult {
    let s = BuiltinStore::open_with(
        dir,
        RestoreLimits::default(),
        policy().with_background(false),
    )?;
    let points = s.read_points("crash", None)?;
    let got = per_batch(&points);
    let whole = (N, N * (N - 1) / 2);
    for k in acked {
        assert_eq!(got.get(k), Some(&whole), "{label}: acked batch {k}");
    }
    for k in unacked {
        let g = got.get(k).copied();
        assert!(
            g.is_none() || g == Some(whole),
            "{label}: unacked batch {k} is {g:?}"
        );
    }
    let present = got.len();
    assert!(present >= acked.len(), "{label}: batches present {present}");
    assert_eq!(points.len(), present * N as usize, "{label}: stray points");
    assert_eq!(
        backed_up_values(&s)?,
        points.len(),
        "{label}: a value held twice"
    );
    Ok(())
}

#[test]
fn crash_kill_rounds() -> TestResult {
    let tmp = snapshotd_testutil::temp_dir();
    let dir: PathBuf = tmp.path().join("data");
    BuiltinStore::open_with(&dir, RestoreLimits::default(), policy())?.create_database(
        &DatabaseSpec {
            name: "crash".into(),
            retention_policy: None,
        },
    )?;
    let seed = 0x5eed_0013u64;
    let mut rng = Rng(seed);
    let (mut next, mut acked, mut unacked) = (0i64, Vec::new(), Vec::new());
    let (mut aimed, mut hit) = (0, 0);
    for r in 0..10 {
        let aim = if r % 2 == 0 {
            Aim::Acks(1 + rng.below(25))
        } else {
            Aim::Compaction(rng.below(3000))
        };
        let (a, u) = round(&dir, &mut next, aim)?;
        if let Aim::Compaction(_) = aim {
            aimed += 1;
            hit += usize::from(compaction_in_flight(&dir));
        }
        acked.extend(a);
        unacked.extend(u);
        check(
            &dir,
            &acked,
            &unacked,
            &format!("seed {seed:#x} round {r} ({aim:?})"),
        )?;
    }
    eprintln!(
        "crash rounds: {} batches acked, {} unacked, {hit} of {aimed} aimed kills during a compaction",
        acked.len(),
        unacked.len()
    );
    assert!(acked.len() > 20, "only {} batches acked", acked.len());
    assert!(
        hit > 0,
        "no kill landed during a compaction ({aimed} aimed)"
    );
    Ok(())
}
