//! EIO on reads (fault `eioread`): the EIO layer fails the reads of one seeded file after a
//! seeded number of bytes. Under `restore->influxd` and `verify<-dir` it is a shard archive
//! of the backup being read, under `backup<-influxd` a shard archive an interrupted backup
//! recorded, which its resumed run re-reads (armed by [`arm`], judged by round.rs); under
//! `backup<-serve` it is a TSM file in the data dir of a `snapshotd serve` running on the
//! layer ([`serve_round`]): the backup must fail naming the shard or file and the I/O error,
//! publish nothing incomplete, and once the fault clears a rerun must back up every point.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};

use super::eio::EioFs;
use super::env::{serves, wait_until};
use super::extra::StoreEnv;
use super::fault::{Fault, Workload};
use super::mounts::eio_backing;
use super::proxy::Mode;
use super::round::{Ctx, Outcome, Row, RowOf};
use super::store::check_backup;
use super::workload::{self as wl, Run};

/// Arms the EIO layer mounted on `dest` for a round of workload `w`: a restore or verify
/// reads the baseline put under it; a backup resumes an interrupted run whose recorded
/// shard archives it re-reads ([`interrupt_backup`] makes one). Returns the archive's name.
pub(super) fn arm(ctx: &Ctx, w: Workload, eio: &EioFs, dest: &Path, seed: u64) -> Result<String> {
    if w == Workload::Backup {
        interrupt_backup(ctx, dest)?;
    }
    arm_archive(eio, &eio_backing(dest), seed)
}

/// Leaves an interrupted backup of `chaos` in `dest`: `--jobs 1` through the throttled proxy
/// (2 KiB/s), SIGKILLed 300 ms after its first shard archive appeared (recorded as done).
fn interrupt_backup(ctx: &Ctx, dest: &Path) -> Result<()> {
    ctx.to_influxd.set(Mode::Throttle(2 * 1024));
    let host = ctx.to_influxd.addr.to_string();
    let path = dest.display().to_string();
    let args = [
        "backup", "--host", &host, "--db", "chaos", "--jobs", "1", &path,
    ];
    let mut child = wl::client(&ctx.bin, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let archive = || {
        std::fs::read_dir(dest).is_ok_and(|d| {
            d.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".tar.gz"))
        })
    };
    let appeared = wait_until(Duration::from_secs(30), archive);
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    ctx.to_influxd.set(Mode::Pass);
    appeared.context("no shard archive within 30 s of the interrupted backup")
}

/// Arms `eio` to fail reads of one seeded shard archive (`*.tar.gz`) of the backup whose
/// files are in `backup` (the layer's backing dir), after a seeded number of bytes below
/// half its size; returns the archive's name.
pub(super) fn arm_archive(eio: &EioFs, backup: &Path, seed: u64) -> Result<String> {
    let mut archives: Vec<(String, u64)> = std::fs::read_dir(backup)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let len = e.metadata().ok()?.len();
            name.ends_with(".tar.gz").then_some((name, len))
        })
        .collect();
    archives.sort();
    let n = archives.len() as u64;
    let (name, len) = archives
        .get((seed % n.max(1)) as usize)
        .cloned()
        .with_context(|| format!("no shard archive in {}", backup.display()))?;
    eio.set_read(&name, seed % (len / 2).max(1))?;
    Ok(name)
}

/// The TSM files below `dir`, sorted.
fn tsm_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(tsm_files(&p)?);
        } else if p.extension().is_some_and(|x| x == "tsm") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The file a round fails: its path below the mount point, its name and its shard id.
struct Target {
    rel: String,
    name: String,
    shard: String,
}

/// One `backup<-serve` round with EIO on reading a TSM file of the server's data dir.
pub fn serve_round(ctx: &mut Ctx, k: usize, faults: &[Fault], seed: u64) -> Result<Row> {
    let rows = RowOf::new(faults, Workload::Serve);
    let row = |outcome, detail: String| rows.row(outcome, detail);
    if ctx.extra.store_eio.is_none() {
        match StoreEnv::start_eio(&ctx.bin, &ctx.work) {
            Ok(s) => ctx.extra.store_eio = Some(s),
            Err(e) => return Ok(row(Outcome::Skipped, format!("{e:#}"))),
        }
    }
    let Some(env) = ctx.extra.store_eio.as_mut() else {
        return Ok(row(Outcome::Skipped, "no EIO store environment".into()));
    };
    let db = format!("eior{k}");
    let acked = wl::ingest(env.server.http, &db, 20)?;
    // A clean stop compacts every shard log into a TSM file.
    env.server.stop()?;
    env.server.restart()?;
    let target = pick(env, &db, seed)?;
    let dir = wl::fresh_dir(&ctx.work, &format!("r{k}"))?;
    let dest = wl::fresh_dir(&dir, "dest")?;
    let host = env.server.bind.to_string();
    let backup = || wl::backup_db(&ctx.bin, &host, &db, &dest);
    let log_at = std::fs::metadata(env.log()).map_or(0, |m| m.len());
    let eio = env
        .eio
        .as_ref()
        .context("the store is not on the EIO layer")?;
    let before = eio.trips();
    let first = wl::run(backup(), |_| {})?;
    std::fs::write(dir.join("first.stderr"), first.output())?;
    let landed = eio.trips() > before;
    eio.set(None)?;
    let server_log = new_lines(env.log(), log_at);
    ctx.injected += 1;
    let said = Said {
        client: &first,
        server_log: &server_log,
    };
    let (outcome, detail) = judge(ctx, &said, &target, &dest, (&db, acked), || {
        wl::run(backup(), |_| {})
    })?;
    let bind = ctx.extra.store_eio.as_ref().map(|e| e.server.bind);
    if bind.is_some_and(|b| !serves(b, Duration::from_secs(30))) {
        let d = format!("server on the EIO layer not serving within 30 s; {detail}");
        return Ok(row(Outcome::ServerUnhealthy, d));
    }
    if !landed && outcome == Outcome::Survived && first.ok() {
        let d = format!("no read of {} failed; {detail}", target.rel);
        return Ok(row(Outcome::NotTriggered, d));
    }
    Ok(row(outcome, format!("{}: {detail}", target.rel)))
}

/// Arms the layer under `env` to fail reads of one seeded TSM file of `db`.
fn pick(env: &StoreEnv, db: &str, seed: u64) -> Result<Target> {
    let eio = env
        .eio
        .as_ref()
        .context("the store is not on the EIO layer")?;
    let mnt = env
        .server
        .data()
        .parent()
        .context("data dir has no parent")?;
    let files = tsm_files(&env.server.data().join("data").join(db))?;
    let n = files.len() as u64;
    let path = files
        .get((seed % n.max(1)) as usize)
        .with_context(|| format!("no TSM file of {db} after a clean stop of the server"))?;
    let len = std::fs::metadata(path)?.len();
    let rel = path.strip_prefix(mnt)?.to_string_lossy().into_owned();
    let name = |p: Option<&Path>| {
        p.and_then(|p| p.file_name())
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    };
    eio.set_read(&rel, seed % (len / 2).max(1))?;
    Ok(Target {
        name: name(Some(path)),
        shard: name(path.parent()),
        rel,
    })
}

/// The log written since byte `from`.
fn new_lines(log: &Path, from: u64) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let from = usize::try_from(from).unwrap_or(0).min(text.len());
    String::from_utf8_lossy(&text[from..]).into_owned()
}

/// What the first run said, and what the server logged meanwhile.
struct Said<'a> {
    client: &'a Run,
    server_log: &'a str,
}

impl Said<'_> {
    /// Whether the failure names the I/O error: the client's message does, or the client
    /// sends the user to the server's log ("check its log") and the server's warning there
    /// names both the I/O error and the file whose read failed.
    fn names_io_error(&self, target: &Target) -> (bool, String) {
        let io = |t: &str| Fault::EioRead.phrases().iter().any(|p| t.contains(p));
        let client = self.client.output().to_lowercase();
        if io(&client) {
            return (true, String::new());
        }
        let warning = self
            .server_log
            .lines()
            .find(|l| l.contains("WARN") && l.to_lowercase().contains("error"))
            .unwrap_or("no warning");
        let lower = warning.to_lowercase();
        let logged = io(&lower) && lower.contains(&target.name.to_lowercase());
        let why = format!("server log: {}", short(warning));
        (client.contains("check its log") && logged, why)
    }
}

/// The first 400 characters of a log line, without its timestamp.
fn short(line: &str) -> String {
    let l = line.split_once(' ').map_or(line, |(_, rest)| rest);
    l.chars().take(400).collect()
}

/// The verdict of a round: a failure names the I/O error and the shard or file, prints no
/// success and publishes no incomplete backup; the rerun (fault cleared) backs up every
/// acked point; a run that exits 0 must hold them all too.
fn judge(
    ctx: &Ctx,
    said_first: &Said,
    target: &Target,
    dest: &Path,
    (db, acked): (&str, u64),
    rerun: impl FnOnce() -> Result<Run>,
) -> Result<(Outcome, String)> {
    let first = said_first.client;
    if first.hung {
        return Ok((
            Outcome::Hung,
            format!("no exit after {:?}", wl::COMMAND_LIMIT),
        ));
    }
    if first.ok() {
        let (o, d) = check_backup(ctx, dest, db, (acked, 0))?;
        return Ok((o, format!("first run exited 0; {d}")));
    }
    let said = first.said();
    if manifest_in(dest)? && !wl::run(wl::verify(&ctx.bin, dest), |_| {})?.ok() {
        return Ok((
            Outcome::DataLost,
            format!("incomplete backup published: {said}"),
        ));
    }
    let text = first.output().to_lowercase();
    let (io, log) = said_first.names_io_error(target);
    let shard = [
        format!("shard {}", target.shard),
        format!(".s{}.", target.shard),
    ];
    let names =
        text.contains(&target.name.to_lowercase()) || shard.iter().any(|s| text.contains(s));
    if !io || !names || first.printed_success() {
        let why = match (io, names) {
            (false, _) => "names the I/O error and the file neither itself nor in the server log",
            (_, false) => "names neither the shard nor the file",
            _ => "printed success",
        };
        return Ok((Outcome::WrongMessage, format!("{why}: {said}; {log}")));
    }
    let second = rerun()?;
    if second.hung {
        return Ok((Outcome::Hung, "rerun did not exit".into()));
    }
    if !second.ok() {
        return Ok((Outcome::RerunFailed, second.said()));
    }
    let (o, d) = check_backup(ctx, dest, db, (acked, 0))?;
    Ok((o, format!("failed first ({said}); rerun: {d}")))
}

/// Whether `dest` holds a manifest (a restore point).
fn manifest_in(dest: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dest)?
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".manifest")))
}
