//! `etcd archive` rounds: `snapshotd etcd archive` beside a real etcd 3.4.23 member while
//! etcdctl puts keys; faults hit the archiver, etcd, the archive's filesystem or (archive to
//! `s3://`) the proxy in front of moto and moto itself. Once the fault clears (an exited
//! archiver restarted) the archive must catch up with etcd's raft index with no gap, verify,
//! and restore into a data dir that etcd serves with every acked put.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::env::{Proc, free_port, wait_until};
use super::extra::{Etcd, healthy, serve_member};
use super::fault::{Fault, Workload};
use super::mounts::{mount_faults, unmount};
use super::proxy::Mode;
use super::round::{Ctx, Outcome, Row, RowOf, Signal, last_line, spawn_signals};
use super::s3;
use super::workload as wl;

/// How long the archive may take to catch up with etcd once the fault cleared.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Shortest time an S3 fault lasts (past the archiver's 2 s lease, twice).
const S3_FAULT: Duration = Duration::from_secs(5);

/// Where a round archives: a local directory, or `s3://` with the endpoint the commands use.
#[derive(Debug, Clone)]
struct Dest {
    path: PathBuf,
    s3: Option<SocketAddr>,
}

impl Dest {
    /// `c` with the S3 settings a user gives it, when the archive is on S3.
    fn cli(&self, c: Command) -> Command {
        match self.s3 {
            Some(endpoint) => s3::with_env(c, endpoint),
            None => c,
        }
    }

    /// The same archive, reached through `endpoint` (the proxy, or moto direct).
    fn via(&self, endpoint: SocketAddr) -> Dest {
        Dest {
            path: self.path.clone(),
            s3: self.s3.map(|_| endpoint),
        }
    }
}

/// Runs one `etcd archive` round (workload `w`: to a directory or to `s3://`) under `faults`.
pub fn round(ctx: &mut Ctx, k: usize, faults: &[Fault], w: Workload, seed: u64) -> Result<Row> {
    let rows = RowOf::new(faults, w);
    let row = |outcome, detail: String| rows.row(outcome, detail);
    if ctx.extra.etcd.is_none() {
        match Etcd::start(&ctx.work.join("etcd")) {
            Ok(e) => ctx.extra.etcd = Some(e),
            Err(e) => return Ok(row(Outcome::Skipped, format!("{e:#}"))),
        }
    }
    let dir = wl::fresh_dir(&ctx.work, &format!("r{k}"))?;
    let dest = if w == Workload::EtcdS3 {
        Dest {
            path: PathBuf::from(s3::url(&format!("etcd-r{k}"))),
            s3: Some(ctx.moto.addr),
        }
    } else {
        Dest {
            path: wl::fresh_dir(&dir, "dest")?,
            s3: None,
        }
    };
    let mounts = match mount_faults(faults, &dest.path, seed) {
        Ok(m) => m,
        Err(e) => return Ok(row(Outcome::Skipped, e.to_string())),
    };
    let r = run(ctx, &dir, &dest, faults, seed);
    ctx.to_moto.set(Mode::Pass);
    unmount(mounts);
    ctx.injected += faults.iter().filter(|f| **f != Fault::None).count() as u64;
    let (outcome, detail) = r?;
    Ok(row(outcome, detail))
}

/// The round's steps between mounting and unmounting the archive's filesystem.
fn run(
    ctx: &mut Ctx,
    dir: &Path,
    dest: &Dest,
    faults: &[Fault],
    seed: u64,
) -> Result<(Outcome, String)> {
    // On S3 the archiver goes through the proxy in front of moto, armed with the fault.
    let cut = 256 + seed % 2_048;
    let mode = faults.iter().find_map(|f| f.proxy(cut));
    let through = match dest.s3 {
        Some(_) => dest.via(ctx.to_moto.addr),
        None => dest.clone(),
    };
    ctx.to_moto.set(Mode::Pass);
    let moto_pid = ctx.moto.proc.as_ref().map(|p| p.child.id());
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
    let mut archiver = archiver(&ctx.bin, &etcd.data, &through, &log)?;
    if dest.s3.is_some() {
        // The S3 fault begins once the archiver holds its lease; the proxy then closes the
        // connections it pooled, so every later request meets the fault.
        let active = || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("active:"));
        let _ = wait_until(Duration::from_secs(15), active);
    }
    let (cuts_before, requests_before) = (ctx.to_moto.cuts(), ctx.to_moto.requests());
    ctx.to_moto.set(mode.unwrap_or(Mode::Pass));
    let etcd_pid = etcd.proc.as_ref().map(|p| p.child.id());
    let plan = signals(faults, (etcd_pid, moto_pid), 100 + seed % 500);
    let fault_until = Instant::now() + S3_FAULT;
    let handles = spawn_signals(plan, archiver.child.id());
    let mut puts = ctl.puts(&prefix, 0..150, Duration::from_secs(8));
    for h in handles {
        let _ = h.join();
    }
    // The fault clears: etcd back, the archive's filesystem grown / writable again, the
    // proxy passing everything.
    if etcd.dead() {
        etcd.restart()?;
    }
    clear(&dest.path, faults)?;
    if dest.s3.is_some() {
        std::thread::sleep(fault_until.saturating_duration_since(Instant::now()));
    }
    // A blackholed connection counts as cut once the proxy lets it go.
    ctx.to_moto.set(Mode::Pass);
    let exited = archiver.child.try_wait()?;
    let text = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .to_lowercase();
    let phrases: Vec<&str> = faults.iter().flat_map(|f| f.phrases()).copied().collect();
    // On S3 a failure must also say that S3 is where it failed.
    let named =
        phrases.iter().any(|p| text.contains(p)) && (dest.s3.is_none() || text.contains("s3"));
    let killed = faults.contains(&Fault::KillClient);
    if let Some(st) = exited {
        if !killed && (st.success() || !named) {
            return Ok((
                Outcome::WrongMessage,
                format!("archiver exited ({st}): {}", last_line(&text)),
            ));
        }
        let rerun_log = dir.join("archiver-rerun.log");
        archiver = self::archiver(&ctx.bin, &etcd.data, &through, &rerun_log)?;
    }
    let after = ctl.puts(&prefix, 150..180, Duration::from_secs(8));
    puts.0 += after.0;
    puts.1 += after.1;
    let index = ctl.raft_index()?;
    let caught = wait_until(CATCH_UP, || archived(ctx, dest) >= index);
    drop(archiver);
    let cut_landed = mode.is_none() || ctx.to_moto.cuts() > cuts_before;
    if caught.is_err() {
        let d = format!(
            "archive did not reach etcd's index {index} within {CATCH_UP:?} (at {})",
            archived(ctx, dest)
        );
        return Ok((Outcome::Hung, d));
    }
    let (o, mut d) = check(ctx, &ctl, dir, dest, &prefix, puts)?;
    if let Some(Mode::HttpError { .. }) = mode {
        let failed = ctx.to_moto.cuts() - cuts_before;
        let seen = ctx.to_moto.requests() - requests_before;
        d = format!("{failed} of {seen} S3 requests failed by the proxy; {d}");
    }
    Ok(verdict((o, d), faults, (named, exited), cut_landed))
}

/// The signals of an archive round: (etcd, moto) pids, `at` ms after the fault starts.
fn signals(faults: &[Fault], (etcd, moto): (Option<u32>, Option<u32>), at: u64) -> Vec<Signal> {
    faults
        .iter()
        .filter_map(|f| match f {
            Fault::KillEtcd => Some((etcd, "KILL", at, 0)),
            Fault::StopEtcd => Some((etcd, "STOP", at, 3000)),
            Fault::KillClient => Some((None, "KILL", at, 0)),
            Fault::StopClient => Some((None, "STOP", at, 3000)),
            Fault::StopS3 => Some((moto, "STOP", at, 3000)),
            _ => None,
        })
        .collect()
}

/// A survived check is **not triggered** when a DEST fault was never reported or the proxy
/// cut nothing; the detail says what the archiver did.
fn verdict(
    (o, d): (Outcome, String),
    faults: &[Fault],
    (named, exited): (bool, Option<std::process::ExitStatus>),
    cut_landed: bool,
) -> (Outcome, String) {
    let dest_fault = faults
        .iter()
        .any(|f| matches!(f, Fault::Enospc | Fault::ReadOnly));
    if o == Outcome::Survived && dest_fault && !named && exited.is_none() {
        let d = format!("the archiver never reported the fault; {d}");
        return (Outcome::NotTriggered, d);
    }
    if o == Outcome::Survived && !cut_landed {
        return (
            Outcome::NotTriggered,
            format!("the proxy cut no S3 request; {d}"),
        );
    }
    let said = match exited {
        Some(_) if faults.contains(&Fault::KillClient) => "archiver killed, restarted; ".into(),
        Some(st) => format!("archiver exited ({st}) naming the fault, restarted; "),
        None if named => "archiver reported the fault and kept running; ".into(),
        None => String::new(),
    };
    (o, format!("{said}{d}"))
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
fn archiver(bin: &Path, data: &Path, dest: &Dest, log: &Path) -> Result<Proc> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let mut c = Command::new(bin);
    c.args(["etcd", "archive", "--data-dir"])
        .arg(data)
        .args(["--interval", "200ms", "--lock-ttl", "2s"])
        .arg(&dest.path);
    let child = dest
        .cli(c)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("start snapshotd etcd archive")?;
    Ok(Proc { child })
}

/// `archived_through_index` of `snapshotd etcd status --json` (0 when unreadable).
fn archived(ctx: &Ctx, dest: &Dest) -> u64 {
    status(ctx, dest).map_or(0, |v| v["archived_through_index"].as_u64().unwrap_or(0))
}

fn status(ctx: &Ctx, dest: &Dest) -> Option<serde_json::Value> {
    let mut c = Command::new(&ctx.bin);
    c.args(["etcd", "status", "--json"]).arg(&dest.path);
    let out = dest.cli(c).stderr(Stdio::null()).output().ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// Gaps, verify, restore, and the restored member serving the acked puts (`puts`:
/// acknowledged, attempted).
fn check(
    ctx: &Ctx,
    ctl: &Ctl,
    dir: &Path,
    dest: &Dest,
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
    let path = dest.path.display().to_string();
    let v = wl::run(
        dest.cli(wl::client(&ctx.bin, &["etcd", "verify", &path])),
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
    c.arg(&dest.path);
    let r = wl::run(dest.cli(c), |_| {})?;
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
