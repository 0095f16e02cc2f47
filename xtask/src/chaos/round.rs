//! One round: a workload under one or more faults, then the invariants — nothing acked lost,
//! nothing incomplete published, a failure names its fault, a rerun after the fault clears
//! completes, and the server stays small and serving.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::env::{Influxd, Server, serves};
use super::fault::Fault;
use super::load;
use super::proxy::{Mode, Proxy};
use super::workload::{self as wl, Run};

/// Everything a campaign keeps between rounds.
#[derive(Debug)]
pub struct Ctx {
    /// The snapshotd binary.
    pub bin: PathBuf,
    /// Scratch directory of the campaign.
    pub work: PathBuf,
    /// The server under test.
    pub server: Server,
    /// The restore target.
    pub influxd: Influxd,
    /// Proxy in front of the server's snapshot port.
    pub to_server: Proxy,
    /// Proxy in front of influxd's snapshot port.
    pub to_influxd: Proxy,
    /// Points of database `chaos` acknowledged by `/write`.
    pub acked: u64,
    /// A verified backup of `chaos` (restore rounds copy it).
    pub baseline: PathBuf,
    /// Largest server RSS seen after a round, KiB.
    pub max_rss_kib: u64,
    /// Faults injected so far.
    pub injected: u64,
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Invariants held (success, or a loud failure and a complete rerun).
    Survived,
    /// Acked points missing or extra after restore, or an incomplete backup published.
    DataLost,
    /// The failure did not name the fault.
    WrongMessage,
    /// A command ran past its time limit.
    Hung,
    /// The rerun after the fault cleared did not complete.
    RerunFailed,
    /// The server was over its memory bound or not serving again in time.
    ServerUnhealthy,
    /// The fault cannot be injected here (e.g. mounting needs root).
    Skipped,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The faults, joined with `+`.
    pub faults: String,
    /// `backup` or `restore`.
    pub workload: &'static str,
    /// The verdict.
    pub outcome: Outcome,
    /// Why (first line of the relevant error, or the check that failed).
    pub detail: String,
    /// Wall time of the round.
    pub secs: f64,
}

/// Resident memory bound of the server, KiB.
pub const RSS_BOUND_KIB: u64 = 512 * 1024;

/// Runs one round of `workload` under `faults`; `seed` places cuts and signals.
pub fn round(ctx: &mut Ctx, k: usize, faults: &[Fault], backup: bool, seed: u64) -> Result<Row> {
    let started = Instant::now();
    let dir = wl::fresh_dir(&ctx.work, &format!("r{k}"))?;
    let dest = wl::fresh_dir(&dir, "dest")?;
    let newdb = format!("r{k}");
    if !backup {
        copy_dir(&ctx.baseline, &dest)?;
    }
    let names = faults
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join("+");
    let workload = if backup { "backup" } else { "restore" };
    let mounts = match mount_faults(faults, &dest) {
        Ok(m) => m,
        Err(e) => {
            return Ok(Row {
                faults: names,
                workload,
                outcome: Outcome::Skipped,
                detail: e.to_string(),
                secs: 0.0,
            });
        }
    };
    let proxy = if backup {
        &ctx.to_server
    } else {
        &ctx.to_influxd
    };
    let target = if backup {
        ctx.server.bind
    } else {
        ctx.influxd.bind
    };
    let cut = 20_000 + seed % 150_000;
    let modes: Vec<Mode> = faults.iter().filter_map(|f| f.proxy(cut)).collect();
    let host = match modes.first() {
        Some(m) => {
            proxy.set(*m);
            proxy.addr
        }
        None => target,
    };
    let loads: Vec<load::Running> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::Load(l) => Some(load::start(*l, ctx.server.bind, ctx.server.http, seed)),
            _ => None,
        })
        .collect();
    let host = host.to_string();
    let cmd = |c: &Ctx| command(c, backup, &host, &dest, &newdb);
    let signals = signal_plan(ctx, faults, seed);
    let first = wl::run(cmd(ctx), |pid| spawn_signals(signals, pid))?;
    for l in loads {
        l.stop();
    }
    proxy.set(Mode::Pass);
    unmount(&mounts);
    recover(ctx, faults)?;
    ctx.injected += faults.iter().filter(|f| **f != Fault::None).count() as u64;
    let (outcome, detail) = judge(ctx, faults, backup, &first, &dest, &newdb, || {
        wl::run(cmd(ctx), |_| {})
    })?;
    let (outcome, detail) = health(ctx, outcome, detail);
    Ok(Row {
        faults: names,
        workload,
        outcome,
        detail,
        secs: started.elapsed().as_secs_f64(),
    })
}

fn command(ctx: &Ctx, backup: bool, host: &str, dest: &Path, newdb: &str) -> Command {
    if backup {
        wl::backup(&ctx.bin, host, dest)
    } else {
        wl::restore(&ctx.bin, host, dest, newdb)
    }
}

/// (pid or None = the client, signal, delay ms, stop for ms).
type Signal = (Option<u32>, &'static str, u64, u64);

fn signal_plan(ctx: &Ctx, faults: &[Fault], seed: u64) -> Vec<Signal> {
    let at = 100 + seed % 1400;
    let pid = |p: &Option<super::env::Proc>| p.as_ref().map(|p| p.child.id());
    faults
        .iter()
        .filter_map(|f| match f {
            Fault::KillServer => Some((pid(&ctx.server.proc), "KILL", at, 0)),
            Fault::StopServer => Some((pid(&ctx.server.proc), "STOP", at, 3000)),
            Fault::KillInfluxd => Some((pid(&ctx.influxd.proc), "KILL", at, 0)),
            Fault::StopInfluxd => Some((pid(&ctx.influxd.proc), "STOP", at, 3000)),
            Fault::KillClient => Some((None, "KILL", at, 0)),
            _ => None,
        })
        .collect()
}

fn spawn_signals(plan: Vec<Signal>, client: u32) {
    for (pid, sig, at, stop_ms) in plan {
        let Some(pid) = pid.or(Some(client)) else {
            continue;
        };
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(at));
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status();
            if stop_ms > 0 {
                std::thread::sleep(Duration::from_millis(stop_ms));
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(pid.to_string())
                    .status();
            }
        });
    }
}

/// Restarts whatever a fault killed, after any SIGSTOP has been lifted.
fn recover(ctx: &mut Ctx, faults: &[Fault]) -> Result<()> {
    if faults
        .iter()
        .any(|f| matches!(f, Fault::StopServer | Fault::StopInfluxd))
    {
        std::thread::sleep(Duration::from_millis(4700));
    }
    let dead = |p: &mut Option<super::env::Proc>| {
        p.as_mut()
            .is_none_or(|p| p.child.try_wait().ok().flatten().is_some())
    };
    if dead(&mut ctx.server.proc) {
        ctx.server.restart()?;
    }
    if dead(&mut ctx.influxd.proc) {
        ctx.influxd.restart()?;
    }
    Ok(())
}

fn judge(
    ctx: &Ctx,
    faults: &[Fault],
    backup: bool,
    first: &Run,
    dest: &Path,
    newdb: &str,
    rerun: impl FnOnce() -> Result<Run>,
) -> Result<(Outcome, String)> {
    if first.hung {
        return Ok((
            Outcome::Hung,
            format!("no exit after {:?}", wl::COMMAND_LIMIT),
        ));
    }
    if first.ok() {
        return check_data(ctx, backup, dest, newdb, "first run");
    }
    let err = last_line(&first.stderr);
    if !published_ok(ctx, dest, backup)? {
        return Ok((
            Outcome::DataLost,
            format!("incomplete backup published: {err}"),
        ));
    }
    let killed_client = first.code.is_none() && faults.contains(&Fault::KillClient);
    let lower = first.stderr.to_lowercase();
    let named = faults
        .iter()
        .flat_map(|f| f.phrases())
        .any(|p| lower.contains(p));
    if !killed_client && !named {
        return Ok((Outcome::WrongMessage, err));
    }
    let second = rerun()?;
    if second.hung {
        return Ok((Outcome::Hung, "rerun did not exit".into()));
    }
    if !second.ok() {
        return Ok((Outcome::RerunFailed, last_line(&second.stderr)));
    }
    let (o, d) = check_data(ctx, backup, dest, newdb, "rerun")?;
    Ok((o, format!("failed first ({err}); {d}")))
}

/// After a successful run: the backup verifies and restores exactly the acked points, or the
/// restored database holds exactly them.
fn check_data(
    ctx: &Ctx,
    backup: bool,
    dest: &Path,
    newdb: &str,
    which: &str,
) -> Result<(Outcome, String)> {
    let db = if backup {
        let v = wl::run(wl::verify(&ctx.bin, dest), |_| {})?;
        if !v.ok() {
            return Ok((
                Outcome::DataLost,
                format!(
                    "{which} exited 0 but verify failed: {}",
                    last_line(&v.stderr)
                ),
            ));
        }
        let check = format!("{newdb}c");
        let host = ctx.influxd.bind.to_string();
        let r = wl::run(wl::restore(&ctx.bin, &host, dest, &check), |_| {})?;
        if !r.ok() {
            return Ok((
                Outcome::DataLost,
                format!("verified backup does not restore: {}", last_line(&r.stderr)),
            ));
        }
        check
    } else {
        newdb.to_string()
    };
    let n = ctx.influxd.count(&db)?;
    if n != ctx.acked {
        return Ok((
            Outcome::DataLost,
            format!("{which}: influxd has {n} of {} acked points", ctx.acked),
        ));
    }
    Ok((Outcome::Survived, format!("{which} ok, {n} points")))
}

/// A failed backup may leave a manifest only if that backup verifies.
fn published_ok(ctx: &Ctx, dest: &Path, backup: bool) -> Result<bool> {
    if !backup {
        return Ok(true);
    }
    let has_manifest = std::fs::read_dir(dest)?
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".manifest"));
    Ok(!has_manifest || wl::run(wl::verify(&ctx.bin, dest), |_| {})?.ok())
}

fn health(ctx: &mut Ctx, outcome: Outcome, detail: String) -> (Outcome, String) {
    let rss = ctx.server.rss_kib().unwrap_or(0);
    ctx.max_rss_kib = ctx.max_rss_kib.max(rss);
    if rss > RSS_BOUND_KIB {
        return (
            Outcome::ServerUnhealthy,
            format!("server RSS {rss} KiB > bound; {detail}"),
        );
    }
    if !serves(ctx.server.bind, Duration::from_secs(30)) {
        return (
            Outcome::ServerUnhealthy,
            format!("server not serving within 30 s; {detail}"),
        );
    }
    (outcome, detail)
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .chars()
        .take(300)
        .collect()
}

fn mount_faults(faults: &[Fault], dest: &Path) -> Result<Vec<PathBuf>> {
    let opts = if faults.contains(&Fault::Enospc) {
        "size=96k"
    } else if faults.contains(&Fault::ReadOnly) {
        "ro,size=1m"
    } else {
        return Ok(Vec::new());
    };
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
        .arg(dest)
        .status()?;
    anyhow::ensure!(
        ok.success(),
        "mount tmpfs on {} failed (needs root)",
        dest.display()
    );
    Ok(vec![dest.to_path_buf()])
}

fn unmount(mounts: &[PathBuf]) {
    for m in mounts {
        let _ = Command::new("umount").arg(m).status();
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}
