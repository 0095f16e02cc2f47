//! `etcd archive` rounds: `snapshotd etcd archive` beside a real etcd 3.4.23 member while
//! etcdctl puts keys; faults hit the archiver, etcd or the archive's filesystem. Once the fault
//! clears (an exited archiver restarted) the archive must catch up with etcd's raft index
//! with no gap, verify, and restore into a data dir that etcd serves with every acked put.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::env::{Proc, free_port, wait_until};
use super::extra::{Etcd, healthy, serve_member};
use super::fault::{Fault, Workload};
use super::mounts::{mount_faults, unmount};
use super::round::{Ctx, Outcome, Row, RowOf, Signal, last_line, spawn_signals};
use super::workload as wl;

/// How long the archive may take to catch up with etcd once the fault cleared.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Runs one `etcd archive` round under `faults`.
pub fn round(ctx: &mut Ctx, k: usize, faults: &[Fault], seed: u64) -> Result<Row> {
    let rows = RowOf::new(faults, Workload::Etcd);
    let row = |outcome, detail: String| rows.row(outcome, detail);
    if ctx.extra.etcd.is_none() {
        match Etcd::start(&ctx.work.join("etcd")) {
            Ok(e) => ctx.extra.etcd = Some(e),
            Err(e) => return Ok(row(Outcome::Skipped, format!("{e:#}"))),
        }
    }
    let dir = wl::fresh_dir(&ctx.work, &format!("r{k}"))?;
    let dest = wl::fresh_dir(&dir, "dest")?;
    let mounts = match mount_faults(faults, &dest, seed) {
        Ok(m) => m,
        Err(e) => return Ok(row(Outcome::Skipped, e.to_string())),
    };
    let r = run(ctx, &dir, &dest, faults, seed);
    unmount(mounts);
    ctx.injected += faults.iter().filter(|f| **f != Fault::None).count() as u64;
    let (outcome, detail) = r?;
    Ok(row(outcome, detail))
}

/// The round's steps between mounting and unmounting the archive's filesystem.
fn run(
    ctx: &mut Ctx,
    dir: &Path,
    dest: &Path,
    faults: &[Fault],
    seed: u64,
) -> Result<(Outcome, String)> {
    let Some(etcd) = ctx.extra.etcd.as_mut() else {
        return Ok((Outcome::Skipped, "no etcd".into()));
    };
    let ctl = Ctl::new(etcd);
    let prefix = format!(
        "chaos/{}/",
        dir.file_name()
            .map_or("r".into(), |n| n.to_string_lossy().into_owned())
    );
    let log = dir.join("archiver.log");
    let mut archiver = archiver(&ctx.bin, &etcd.data, dest, &log)?;
    let at = 100 + seed % 500;
    let etcd_pid = etcd.proc.as_ref().map(|p| p.child.id());
    let plan: Vec<Signal> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::KillEtcd => Some((etcd_pid, "KILL", at, 0)),
            Fault::StopEtcd => Some((etcd_pid, "STOP", at, 3000)),
            Fault::KillClient => Some((None, "KILL", at, 0)),
            Fault::StopClient => Some((None, "STOP", at, 3000)),
            _ => None,
        })
        .collect();
    let handles = spawn_signals(plan, archiver.child.id());
    let mut puts = ctl.puts(&prefix, 0..150, Duration::from_secs(8));
    for h in handles {
        let _ = h.join();
    }
    // The fault clears: etcd back, the archive's filesystem grown / writable again.
    if etcd.dead() {
        etcd.restart()?;
    }
    clear(dest, faults)?;
    let exited = archiver.child.try_wait()?;
    let text = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .to_lowercase();
    let phrases: Vec<&str> = faults.iter().flat_map(|f| f.phrases()).copied().collect();
    let named = phrases.iter().any(|p| text.contains(p));
    let killed = faults.contains(&Fault::KillClient);
    if let Some(st) = exited {
        if !killed && (st.success() || !named) {
            return Ok((
                Outcome::WrongMessage,
                format!("archiver exited ({st}): {}", last_line(&text)),
            ));
        }
        archiver = self::archiver(&ctx.bin, &etcd.data, dest, &dir.join("archiver-rerun.log"))?;
    }
    let after = ctl.puts(&prefix, 150..180, Duration::from_secs(8));
    puts.0 += after.0;
    puts.1 += after.1;
    let index = ctl.raft_index()?;
    let caught = wait_until(CATCH_UP, || archived(ctx, dest) >= index);
    drop(archiver);
    if caught.is_err() {
        let d = format!(
            "archive did not reach etcd's index {index} within {CATCH_UP:?} (at {})",
            archived(ctx, dest)
        );
        return Ok((Outcome::Hung, d));
    }
    let (o, d) = check(ctx, &ctl, dir, dest, &prefix, puts)?;
    let dest_fault = faults
        .iter()
        .any(|f| matches!(f, Fault::Enospc | Fault::ReadOnly));
    if o == Outcome::Survived && dest_fault && !named && exited.is_none() {
        return Ok((
            Outcome::NotTriggered,
            format!("the archiver never reported the fault; {d}"),
        ));
    }
    Ok((o, d))
}

/// Grows a full tmpfs and makes a read-only one writable (fault faults only).
fn clear(dest: &Path, faults: &[Fault]) -> Result<()> {
    let opts = if faults.contains(&Fault::Enospc) {
        "remount,size=64m"
    } else if faults.contains(&Fault::ReadOnly) {
        "remount,rw"
    } else {
        return Ok(());
    };
    let ok = Command::new("mount")
        .args(["-o", opts])
        .arg(dest)
        .status()?;
    anyhow::ensure!(ok.success(), "mount -o {opts} {} failed", dest.display());
    Ok(())
}

/// Starts `snapshotd etcd archive` (200 ms passes, 2 s lease), output into `log`.
fn archiver(bin: &Path, data: &Path, dest: &Path, log: &Path) -> Result<Proc> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let child = Command::new(bin)
        .args(["etcd", "archive", "--data-dir"])
        .arg(data)
        .args(["--interval", "200ms", "--lock-ttl", "2s"])
        .arg(dest)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("start snapshotd etcd archive")?;
    Ok(Proc { child })
}

/// `archived_through_index` of `snapshotd etcd status --json` (0 when unreadable).
fn archived(ctx: &Ctx, dest: &Path) -> u64 {
    status(ctx, dest).map_or(0, |v| v["archived_through_index"].as_u64().unwrap_or(0))
}

fn status(ctx: &Ctx, dest: &Path) -> Option<serde_json::Value> {
    let out = Command::new(&ctx.bin)
        .args(["etcd", "status", "--json"])
        .arg(dest)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// Gaps, verify, restore, and the restored member serving the acked puts (`puts`:
/// acknowledged, attempted).
fn check(
    ctx: &Ctx,
    ctl: &Ctl,
    dir: &Path,
    dest: &Path,
    prefix: &str,
    puts: (u64, u64),
) -> Result<(Outcome, String)> {
    let st = status(ctx, dest).unwrap_or_default();
    if st["gaps"].as_array().is_some_and(|g| !g.is_empty()) {
        return Ok((
            Outcome::DataLost,
            format!("gap reported (etcd purged nothing): {}", st["gaps"]),
        ));
    }
    let v = wl::run(
        wl::client(&ctx.bin, &["etcd", "verify", &dest.display().to_string()]),
        |_| {},
    )?;
    if !v.ok() {
        return Ok((
            Outcome::DataLost,
            format!("etcd verify failed: {}", last_line(&v.stderr)),
        ));
    }
    let restored = dir.join("restored");
    let (client, peer) = (free_port()?, free_port()?);
    let peer_url = format!("http://127.0.0.1:{peer}");
    let args = [
        "etcd",
        "restore",
        "--data-dir",
        &restored.display().to_string(),
        "--initial-advertise-peer-urls",
        &peer_url,
    ];
    let mut c = wl::client(&ctx.bin, &args);
    c.arg(dest);
    let r = wl::run(c, |_| {})?;
    if !r.ok() {
        return Ok((
            Outcome::DataLost,
            format!("etcd restore failed: {}", last_line(&r.stderr)),
        ));
    }
    let client = std::net::SocketAddr::from(([127, 0, 0, 1], client));
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], peer));
    let log = dir.join("restored-etcd.log");
    let _member = Proc {
        child: serve_member(&ctl.etcd, "chaos", &restored, client, peer, &log, true)?,
    };
    if let Err(e) = healthy(client) {
        return Ok((
            Outcome::DataLost,
            format!("restored member does not serve: {e:#}"),
        ));
    }
    let n = Ctl {
        etcd: ctl.etcd.clone(),
        client,
    }
    .count(prefix)?;
    let (acked, tried) = puts;
    if n < acked || n > tried {
        return Ok((
            Outcome::DataLost,
            format!("restored member has {n} keys; {acked} puts acked of {tried}"),
        ));
    }
    Ok((
        Outcome::Survived,
        format!("verified; restored member serves {n} keys ({acked} acked of {tried})"),
    ))
}

/// etcdctl against one member.
#[derive(Debug)]
struct Ctl {
    etcd: PathBuf,
    client: std::net::SocketAddr,
}

impl Ctl {
    fn new(e: &Etcd) -> Ctl {
        Ctl {
            etcd: e.bin().to_path_buf(),
            client: e.client,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.etcd.with_file_name("etcdctl"));
        c.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints=http://{}", self.client))
            .args(["--dial-timeout=1s", "--command-timeout=2s"])
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Puts `prefix<i>` for `range` within `limit`: (acknowledged, attempted).
    fn puts(&self, prefix: &str, range: std::ops::Range<u64>, limit: Duration) -> (u64, u64) {
        let start = Instant::now();
        let (mut acked, mut tried) = (0, 0);
        for i in range {
            if start.elapsed() > limit {
                break;
            }
            tried += 1;
            let ok = self
                .cmd(&["put", &format!("{prefix}{i:05}"), "v"])
                .stdout(Stdio::null())
                .status();
            if ok.is_ok_and(|s| s.success()) {
                acked += 1;
            }
        }
        (acked, tried)
    }

    fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let out: Child = self.cmd(args).stdout(Stdio::piped()).spawn()?;
        let out = out.wait_with_output()?;
        anyhow::ensure!(out.status.success(), "etcdctl {args:?} failed");
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    fn raft_index(&self) -> Result<u64> {
        let v = self.json(&["endpoint", "status", "-w", "json"])?;
        v[0]["Status"]["raftIndex"].as_u64().context("no raftIndex")
    }

    fn count(&self, prefix: &str) -> Result<u64> {
        let v = self.json(&["get", prefix, "--prefix", "--keys-only", "-w", "json"])?;
        Ok(v["count"].as_u64().unwrap_or(0))
    }
}
