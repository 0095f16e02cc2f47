//! One round: a workload under one or more faults, then the invariants — nothing acked lost,
//! nothing incomplete published, a failure names its fault, a rerun after the fault clears
//! completes, and the server stays small and serving.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;

use std::net::SocketAddr;

use super::env::{Influxd, Server, serves};
use super::fault::{Fault, Workload};
use super::load;
use super::mounts::{FaultMounts, eio_backing, mount_faults, unmount};
use super::proxy::{Mode, Proxy};
use super::s3::{self, Moto};
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
    /// Points of database `chaos` acknowledged by influxd's `/write`.
    pub acked: u64,
    /// Points of database `chaos` acknowledged by the server's `/write`.
    pub acked_serve: u64,
    /// A verified backup of `chaos` (restore rounds copy it).
    pub baseline: PathBuf,
    /// Largest server RSS seen after a round, KiB.
    pub max_rss_kib: u64,
    /// Faults injected so far.
    pub injected: u64,
    /// The S3 server.
    pub moto: Moto,
    /// Proxy in front of moto.
    pub to_moto: Proxy,
    /// The baseline backup uploaded to S3 (restore<-s3 rounds read it).
    pub s3_base: String,
    /// The campaign's extra environments (store on tmpfs, etcd), started when first used.
    pub extra: super::extra::Extra,
}

impl Ctx {
    /// `cmd` with the S3 environment of workload `w` (endpoint `endpoint`, moto direct when
    /// None); unchanged for a local workload.
    pub fn cli(&self, w: Workload, cmd: Command, endpoint: Option<SocketAddr>) -> Command {
        if w.s3() {
            s3::with_env(cmd, endpoint.unwrap_or(self.moto.addr))
        } else {
            cmd
        }
    }
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
    /// The fault did not land: the run ended before the cut or the signal.
    NotTriggered,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The faults, joined with `+`.
    pub faults: String,
    /// The workload's name.
    pub workload: &'static str,
    /// The verdict.
    pub outcome: Outcome,
    /// Why (first line of the relevant error, or the check that failed).
    pub detail: String,
    /// Wall time of the round.
    pub secs: f64,
}

/// The faults of a round, joined with `+`.
pub fn fault_names(faults: &[Fault]) -> String {
    faults
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join("+")
}

/// Builds the rows of one round: its faults, its workload, the time since it began.
pub struct RowOf {
    faults: String,
    workload: &'static str,
    started: Instant,
}

impl RowOf {
    /// Starts the round's clock.
    pub fn new(faults: &[Fault], w: Workload) -> Self {
        RowOf {
            faults: fault_names(faults),
            workload: w.name(),
            started: Instant::now(),
        }
    }

    /// The round's row with `outcome` and `detail`.
    pub fn row(&self, outcome: Outcome, detail: String) -> Row {
        Row {
            faults: self.faults.clone(),
            workload: self.workload,
            outcome,
            detail,
            secs: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// Resident memory bound of the server, KiB.
pub const RSS_BOUND_KIB: u64 = 512 * 1024;

/// Runs one round of `workload` under `faults`; `seed` places cuts and signals.
pub fn round(ctx: &mut Ctx, k: usize, faults: &[Fault], w: Workload, seed: u64) -> Result<Row> {
    let read_fault = faults.contains(&Fault::EioRead);
    match w {
        Workload::Ingest => return super::store::round(ctx, k, faults, seed),
        Workload::Etcd | Workload::EtcdS3 => return super::etcd::round(ctx, k, faults, w, seed),
        Workload::Serve if read_fault => {
            return super::eio_read::serve_round(ctx, k, faults, seed);
        }
        _ => {}
    }
    let dir = wl::fresh_dir(&ctx.work, &format!("r{k}"))?;
    let local = wl::fresh_dir(&dir, "dest")?;
    let dest = match w {
        Workload::S3Backup => PathBuf::from(s3::url(&format!("r{k}"))),
        Workload::S3Restore => PathBuf::from(&ctx.s3_base),
        _ => local,
    };
    let newdb = format!("r{k}");
    let rows = RowOf::new(faults, w);
    let (mounts, target) = match mount_and_arm(ctx, w, faults, &dest, seed) {
        Ok(m) => m,
        Err(e) => return Ok(rows.row(Outcome::Skipped, format!("{e:#}"))),
    };
    let (proxy, modes, host) = arm_proxy(ctx, w, faults, seed);
    let loads: Vec<load::Running> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::Load(l) => Some(load::start(*l, ctx.server.bind, ctx.server.http, seed)),
            _ => None,
        })
        .collect();
    // On S3 the proxy stands for the endpoint; the snapshot source is influxd itself.
    let (host, endpoint) = if w.s3() {
        (ctx.influxd.bind.to_string(), Some(host))
    } else {
        (host.to_string(), None)
    };
    let cmd = |c: &Ctx| c.cli(w, command(c, w, &host, &dest, &newdb), endpoint);
    let signals = signal_plan(ctx, faults, seed);
    let (cuts_before, requests_before) = (proxy.cuts(), proxy.requests());
    let mut pending = Vec::new();
    let trips = mounts.eio().map_or(0, |e| e.trips());
    let first = wl::run(cmd(ctx), |pid| pending = spawn_signals(signals, pid))?;
    // Kept for repros: what the user saw.
    std::fs::write(dir.join("first.stderr"), first.output())?;
    let read_failed = mounts.eio().is_some_and(|e| e.trips() > trips);
    if read_fault {
        // The fault clears; the layer stays for the rerun (a restore keeps its checkpoint
        // beside the backup it reads).
        if let Some(e) = mounts.eio() {
            e.set(None)?;
        }
    }
    let mut landed = true;
    for h in pending {
        landed &= h.join().unwrap_or(false);
    }
    let cut_mode = faults.iter().any(|f| {
        matches!(
            f,
            Fault::Reset | Fault::HalfClose | Fault::Blackhole | Fault::S3Error | Fault::SlowDown
        )
    });
    landed &= !cut_mode || proxy.cuts() > cuts_before;
    landed &= !read_fault || read_failed;
    for l in loads {
        l.stop();
    }
    proxy.set(Mode::Pass);
    let http_errors = matches!(modes.first(), Some(Mode::HttpError { .. })).then(|| {
        let failed = proxy.cuts() - cuts_before;
        let seen = proxy.requests() - requests_before;
        format!("{failed} of {seen} S3 requests failed by the proxy")
    });
    // Checked before a fault filesystem goes away: no incomplete backup under a final name.
    let backup = matches!(w, Workload::Backup | Workload::Serve | Workload::S3Backup);
    let published = first.ok() || published_ok(ctx, w, &dest, backup)?;
    // A run that succeeded on a fault filesystem is checked on a copy of what it wrote.
    let checked = if first.ok() && !mounts.is_empty() && !read_fault {
        let kept = wl::fresh_dir(&dir, "kept")?;
        copy_dir(&dest, &kept)?;
        kept
    } else {
        dest.clone()
    };
    let kept_mounts = if read_fault {
        Some(mounts)
    } else {
        unmount(mounts);
        None
    };
    recover(ctx)?;
    ctx.injected += faults.iter().filter(|f| **f != Fault::None).count() as u64;
    let (outcome, detail) = if read_failed && first.ok() && w == Workload::Verify {
        let d = format!("verify exited 0 although reading {target:?} failed");
        (Outcome::DataLost, d)
    } else {
        judge(
            ctx,
            faults,
            w,
            (&first, published, target.as_deref()),
            &checked,
            &newdb,
            || wl::run(cmd(ctx), |_| {}),
        )?
    };
    if let Some(m) = kept_mounts {
        unmount(m);
    }
    let (outcome, mut detail) = health(ctx, outcome, detail);
    if let Some(n) = http_errors {
        detail = format!("{n}; {detail}");
    }
    let (outcome, detail) = if !landed && outcome == Outcome::Survived && first.ok() {
        (
            Outcome::NotTriggered,
            format!("fault did not land before the run ended; {detail}"),
        )
    } else {
        (outcome, detail)
    };
    Ok(rows.row(outcome, detail))
}

/// Copies the baseline a restore or verify reads, mounts the round's fault filesystems on
/// `dest` and arms a read fault: the mounts and the file whose reads fail.
fn mount_and_arm(
    ctx: &Ctx,
    w: Workload,
    faults: &[Fault],
    dest: &Path,
    seed: u64,
) -> Result<(FaultMounts, Option<String>)> {
    if matches!(w, Workload::Restore | Workload::Verify) {
        // Under a read fault the backup is read through the EIO layer.
        let into = if faults.contains(&Fault::EioRead) {
            eio_backing(dest)
        } else {
            dest.to_path_buf()
        };
        std::fs::create_dir_all(&into)?;
        copy_dir(&ctx.baseline, &into)?;
    }
    let m = mount_faults(faults, dest, seed)?;
    let target = match m.eio().filter(|_| faults.contains(&Fault::EioRead)) {
        Some(eio) => Some(super::eio_read::arm(ctx, w, eio, dest, seed)?),
        None => None,
    };
    Ok((m, target))
}

/// Sets the proxy of workload `w` to the round's network fault (a throttle when only a
/// signal is planned, so that it lands mid-stream); returns the proxy, its modes and the
/// address the client is to use (the proxy, or the target itself without a mode).
fn arm_proxy<'a>(
    ctx: &'a Ctx,
    w: Workload,
    faults: &[Fault],
    seed: u64,
) -> (&'a Proxy, Vec<Mode>, SocketAddr) {
    let (proxy, target) = match w {
        Workload::Serve => (&ctx.to_server, ctx.server.bind),
        _ if w.s3() => (&ctx.to_moto, ctx.moto.addr),
        _ => (&ctx.to_influxd, ctx.influxd.bind),
    };
    let cut = 256 + seed % 2_048;
    let mut modes: Vec<Mode> = faults.iter().filter_map(|f| f.proxy(cut)).collect();
    if modes.is_empty() && faults.iter().any(|f| f.signals()) {
        // influxd's backups of the campaign's data are a few KiB.
        let rate = if w == Workload::Serve {
            64 * 1024
        } else {
            2 * 1024
        };
        modes.push(Mode::Throttle(rate));
    }
    let host = match modes.first() {
        Some(m) => {
            proxy.set(*m);
            proxy.addr
        }
        None => target,
    };
    (proxy, modes, host)
}

fn command(ctx: &Ctx, w: Workload, host: &str, dest: &Path, newdb: &str) -> Command {
    match w {
        Workload::Restore | Workload::S3Restore => wl::restore(&ctx.bin, host, dest, newdb, false),
        Workload::Verify => wl::verify(&ctx.bin, dest),
        _ => wl::backup(&ctx.bin, host, dest),
    }
}

/// (pid or None = the client, signal, delay ms, stop for ms).
pub(super) type Signal = (Option<u32>, &'static str, u64, u64);

fn signal_plan(ctx: &Ctx, faults: &[Fault], seed: u64) -> Vec<Signal> {
    let at = 100 + seed % 500;
    let pid = |p: &Option<super::env::Proc>| p.as_ref().map(|p| p.child.id());
    faults
        .iter()
        .filter_map(|f| match f {
            Fault::KillServer => Some((pid(&ctx.server.proc), "KILL", at, 0)),
            Fault::StopServer => Some((pid(&ctx.server.proc), "STOP", at, 3000)),
            Fault::KillInfluxd => Some((pid(&ctx.influxd.proc), "KILL", at, 0)),
            Fault::StopInfluxd => Some((pid(&ctx.influxd.proc), "STOP", at, 3000)),
            Fault::KillClient => Some((None, "KILL", at, 0)),
            Fault::KillS3 => Some((pid(&ctx.moto.proc), "KILL", at, 0)),
            Fault::StopS3 => Some((pid(&ctx.moto.proc), "STOP", at, 3000)),
            _ => None,
        })
        .collect()
}

/// Sends each planned signal at its moment; each thread returns whether the client was still
/// running then (the signal landed mid-run).
pub(super) fn spawn_signals(plan: Vec<Signal>, client: u32) -> Vec<std::thread::JoinHandle<bool>> {
    let mut out = Vec::new();
    for (pid, sig, at, stop_ms) in plan {
        let Some(pid) = pid.or(Some(client)) else {
            continue;
        };
        out.push(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(at));
            let running = client_running(client);
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
            running
        }));
    }
    out
}

/// Whether the client process `pid` is still running (not exited, not a zombie).
pub(super) fn client_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// Restarts whatever a fault killed (every signal has been sent and any SIGSTOP lifted).
fn recover(ctx: &mut Ctx) -> Result<()> {
    // A SIGKILLed process may take a moment to become reapable.
    std::thread::sleep(Duration::from_millis(500));
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
    if ctx.moto.dead() {
        // moto comes back empty: the bucket is created again and the baseline uploaded again.
        ctx.moto.restart()?;
        let up = wl::backup(
            &ctx.bin,
            &ctx.influxd.bind.to_string(),
            Path::new(&ctx.s3_base),
        );
        let r = wl::run(ctx.cli(Workload::S3Backup, up, None), |_| {})?;
        anyhow::ensure!(r.ok(), "baseline upload to S3 failed: {}", r.stderr);
    }
    Ok(())
}

fn judge(
    ctx: &Ctx,
    faults: &[Fault],
    w: Workload,
    (first, published, target): (&Run, bool, Option<&str>),
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
        return check_data(ctx, w, dest, newdb, "first run");
    }
    let err = first.said();
    if !published {
        return Ok((
            Outcome::DataLost,
            format!("incomplete backup published: {err}"),
        ));
    }
    let killed_client = first.code.is_none() && faults.contains(&Fault::KillClient);
    let lower = first.output().to_lowercase();
    // On S3 the message must also say that S3 is where it failed.
    let named = faults
        .iter()
        .flat_map(|f| f.phrases())
        .any(|p| lower.contains(p))
        && (!w.s3() || lower.contains("s3"));
    if !killed_client && !named {
        return Ok((Outcome::WrongMessage, err));
    }
    // A file that could not be read is named, and a failed run never prints success.
    if let Some(t) = target.filter(|t| !lower.contains(&t.to_lowercase())) {
        return Ok((Outcome::WrongMessage, format!("does not name {t}: {err}")));
    }
    if first.printed_success() {
        return Ok((
            Outcome::WrongMessage,
            format!("failed but printed success: {err}"),
        ));
    }
    let second = rerun()?;
    if second.hung {
        return Ok((Outcome::Hung, "rerun did not exit".into()));
    }
    if !second.ok() {
        return Ok((Outcome::RerunFailed, second.said()));
    }
    let (o, d) = check_data(ctx, w, dest, newdb, "rerun")?;
    Ok((o, format!("failed first ({err}); {d}")))
}

/// After a successful run: a backup verifies and restores exactly the acked points (into
/// influxd, counted there; into the server, acknowledged shard by shard), a restore holds
/// exactly them.
fn check_data(
    ctx: &Ctx,
    w: Workload,
    dest: &Path,
    newdb: &str,
    which: &str,
) -> Result<(Outcome, String)> {
    if w == Workload::Verify {
        return Ok((Outcome::Survived, format!("{which} ok, verified")));
    }
    if !matches!(w, Workload::Restore | Workload::S3Restore) {
        let v = wl::run(ctx.cli(w, wl::verify(&ctx.bin, dest), None), |_| {})?;
        if !v.ok() {
            let e = last_line(&v.stderr);
            return Ok((
                Outcome::DataLost,
                format!("{which} exited 0 but verify failed: {e}"),
            ));
        }
    }
    let check = format!("{newdb}c");
    let (host, ack) = match w {
        Workload::Restore | Workload::S3Restore => return count_check(ctx, newdb, which),
        Workload::Serve => (ctx.server.bind.to_string(), true),
        _ => (ctx.influxd.bind.to_string(), false),
    };
    let restore = wl::restore(&ctx.bin, &host, dest, &check, ack);
    let r = wl::run(ctx.cli(w, restore, None), |_| {})?;
    if !r.ok() {
        let e = last_line(&r.stderr);
        return Ok((
            Outcome::DataLost,
            format!("verified backup does not restore: {e}"),
        ));
    }
    if w == Workload::Serve {
        return Ok((
            Outcome::Survived,
            format!("{which} ok, verified, restore acknowledged"),
        ));
    }
    count_check(ctx, &check, which)
}

fn count_check(ctx: &Ctx, db: &str, which: &str) -> Result<(Outcome, String)> {
    let n = match ctx.influxd.count(db) {
        Ok(n) => n,
        Err(e) => return Ok((Outcome::Hung, format!("{which}: influxd query failed: {e}"))),
    };
    if n != ctx.acked {
        let d = format!("{which}: influxd has {n} of {} acked points", ctx.acked);
        return Ok((Outcome::DataLost, d));
    }
    Ok((Outcome::Survived, format!("{which} ok, {n} points")))
}

/// A failed backup may leave a manifest (a restore point) only if that backup verifies.
fn published_ok(ctx: &Ctx, w: Workload, dest: &Path, backup: bool) -> Result<bool> {
    if !backup {
        return Ok(true);
    }
    let has_manifest = if w.s3() {
        s3_points(ctx, w, dest)? > 0
    } else {
        std::fs::read_dir(dest)?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".manifest"))
    };
    Ok(!has_manifest || wl::run(ctx.cli(w, wl::verify(&ctx.bin, dest), None), |_| {})?.ok())
}

/// Complete restore points `snapshotd snapshots --json` lists on an `s3://` destination.
fn s3_points(ctx: &Ctx, w: Workload, dest: &Path) -> Result<usize> {
    let mut c = ctx.cli(w, wl::client(&ctx.bin, &["snapshots", "--json"]), None);
    c.arg(dest);
    let out = c.stdout(std::process::Stdio::piped()).output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Ok(v["points"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|p| p["complete"] == true).count()))
}

pub(super) fn health(ctx: &mut Ctx, outcome: Outcome, detail: String) -> (Outcome, String) {
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

pub(super) fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .chars()
        .take(300)
        .collect()
}

pub(super) fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}
