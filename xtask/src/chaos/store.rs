//! `write->serve` rounds: `/write` into a `snapshotd serve` whose data dir is a 128 MiB tmpfs
//! that fills up mid-ingest or is read-only after a restart. A write the store cannot make durable must
//! be answered 5xx naming the cause (never 204), the server must accept writes again once the
//! fault clears, and after a SIGKILL and restart every acknowledged point must be in a
//! verified backup that restores into influxd.

use std::path::Path;

use anyhow::Result;

use super::env::http;
use super::extra::StoreEnv;
use super::fault::{Fault, Workload};
use super::round::{Ctx, Outcome, Row, RowOf, last_line};
use super::workload::{self as wl, batch};

/// Batches of 500 points before, during and after the fault.
const BEFORE: u64 = 6;
const DURING: u64 = 12;
const AFTER: u64 = 6;

/// What the writes of one phase got back.
#[derive(Debug, Default)]
struct Phase {
    acked: u64,
    refused: u64,
    /// First answer that was neither 204 nor a 5xx naming the fault.
    wrong: Option<String>,
}

/// Runs one `write->serve` round under `faults` (StoreFull / StoreReadOnly / None).
pub fn round(ctx: &mut Ctx, k: usize, faults: &[Fault], _seed: u64) -> Result<Row> {
    let rows = RowOf::new(faults, Workload::Ingest);
    let row = |outcome, detail: String| rows.row(outcome, detail);
    let eio = faults.contains(&Fault::Eio);
    let slot = if eio {
        &mut ctx.extra.store_eio
    } else {
        &mut ctx.extra.store
    };
    if slot.is_none() {
        let started = if eio {
            StoreEnv::start_eio(&ctx.bin, &ctx.work)
        } else {
            StoreEnv::start(&ctx.bin, &ctx.work)
        };
        match started {
            Ok(s) => *slot = Some(s),
            Err(e) => return Ok(row(Outcome::Skipped, format!("{e:#}"))),
        }
    }
    let Some(env) = slot.as_mut() else {
        return Ok(row(Outcome::Skipped, "no store environment".into()));
    };
    let db = format!("ing{k}");
    let api = env.server.http;
    let q = |stmt: &str| http(api, "POST", &format!("/query?q={stmt}%20{db}"), b"");
    let (code, body) = q("CREATE%20DATABASE")?;
    anyhow::ensure!(code == 200, "CREATE DATABASE {db}: {code} {:?}", body);
    let phrases: Vec<&str> = faults.iter().flat_map(|f| f.phrases()).copied().collect();
    let before = write(api, &db, 0, BEFORE, &phrases);
    let (during, at_start) = match inject(env, faults) {
        Ok(None) => (write(api, &db, BEFORE, DURING, &phrases), None),
        // The server refused to start on the read-only data dir: no write was attempted.
        Ok(Some(refusal)) => (Phase::default(), Some(refusal)),
        Err(e) => return Ok(row(Outcome::Skipped, format!("{e:#}"))),
    };
    clear(env, faults)?;
    let after = write(api, &db, BEFORE + DURING, AFTER, &phrases);
    ctx.injected += faults.iter().filter(|f| **f != Fault::None).count() as u64;
    // A crash right after: every acknowledged point must have been durable.
    env.server.restart()?;
    let acked = before.acked + during.acked + after.acked;
    let refused = (before.refused + during.refused + after.refused) * 500;
    let host = env.server.bind.to_string();
    let (outcome, detail) = check(ctx, k, &host, &db, (acked, refused))?;
    let env = if eio {
        ctx.extra.store_eio.as_ref()
    } else {
        ctx.extra.store.as_ref()
    };
    if let Some(env) = env {
        let _ = http(
            env.server.http,
            "POST",
            &format!("/query?q=DROP%20DATABASE%20{db}"),
            b"",
        );
    }
    let summary = match &at_start {
        Some(r) => format!("server refused to start on the read-only dir: {r}"),
        None => format!(
            "during the fault {} batches acked, {} refused with 5xx",
            during.acked / 500,
            during.refused
        ),
    };
    let detail = format!("{detail}; {summary}");
    if outcome != Outcome::Survived {
        return Ok(row(outcome, detail));
    }
    let wrong = before.wrong.or(during.wrong).or(after.wrong);
    let refusal = at_start
        .as_ref()
        .filter(|r| !r.to_lowercase().contains("read-only"));
    let wrong = wrong.or(refusal.cloned());
    if let Some(w) = wrong {
        return Ok(row(Outcome::WrongMessage, format!("{w}; {detail}")));
    }
    if after.refused > 0 {
        let d = format!(
            "{} of {AFTER} batches refused after the fault cleared; {detail}",
            after.refused
        );
        return Ok(row(Outcome::RerunFailed, d));
    }
    let landed = faults == [Fault::None] || during.refused > 0 || at_start.is_some();
    if !landed {
        return Ok(row(Outcome::NotTriggered, detail));
    }
    Ok(row(outcome, detail))
}

/// Writes `n` batches starting at batch `first`; a refusal must be a 5xx naming a phrase.
fn write(api: std::net::SocketAddr, db: &str, first: u64, n: u64, phrases: &[&str]) -> Phase {
    let mut p = Phase::default();
    for b in first..first + n {
        let path = format!("/write?db={db}&precision=s");
        match http(api, "POST", &path, &batch(b * 500, 500)) {
            Ok((204, _)) => p.acked += 500,
            Ok((code, body)) if code >= 500 => {
                p.refused += 1;
                let text = String::from_utf8_lossy(&body).to_lowercase();
                if !phrases.iter().any(|ph| text.contains(ph)) && p.wrong.is_none() {
                    p.wrong = Some(format!("HTTP {code} not naming the fault: {text}"));
                }
            }
            Ok((code, body)) => {
                let text = String::from_utf8_lossy(&body).into_owned();
                p.wrong
                    .get_or_insert(format!("HTTP {code} (want 204 or 5xx): {text}"));
            }
            Err(e) => {
                p.wrong
                    .get_or_insert(format!("/write failed without an answer: {e:#}"));
            }
        }
    }
    p
}

/// Injects the store faults; for a read-only data dir the server is killed and restarted
/// on it (a read-only remount needs no open files): `Some(last log line)` when it refused.
fn inject(env: &mut StoreEnv, faults: &[Fault]) -> Result<Option<String>> {
    let dir = env.mount.as_ref().map(|m| m.0.clone());
    if faults.contains(&Fault::StoreFull) {
        fill(&dir.clone().unwrap_or_default().join("filler"))?;
    }
    if let Some(eio) = env.eio.as_ref().filter(|_| faults.contains(&Fault::Eio)) {
        // A few WAL appends go through, then writes and fsyncs fail.
        eio.set(Some(4096))?;
    }
    if let Some(m) = env
        .mount
        .as_ref()
        .filter(|_| faults.contains(&Fault::StoreReadOnly))
    {
        env.server.proc = None;
        m.remount("ro")?;
        if let Err(e) = env.server.restart() {
            let log = std::fs::read_to_string(env.log()).unwrap_or_default();
            return Ok(Some(format!("{e:#}: {}", last_line(&log))));
        }
    }
    Ok(None)
}

/// Clears the fault; after EIO the server is restarted (what an operator does after a disk
/// error: a WAL may refuse every write after a failed fsync).
fn clear(env: &mut StoreEnv, faults: &[Fault]) -> Result<()> {
    if let Some(m) = env.mount.as_ref() {
        if faults.contains(&Fault::StoreReadOnly) {
            env.server.proc = None;
            m.remount("rw")?;
            env.server.restart()?;
        }
        let _ = std::fs::remove_file(m.0.join("filler"));
    }
    if let Some(eio) = env.eio.as_ref().filter(|_| faults.contains(&Fault::Eio)) {
        eio.set(None)?;
        env.server.proc = None;
        env.server.restart()?;
    }
    Ok(())
}

/// Writes zeros into `path` until the filesystem is full.
fn fill(path: &Path) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    Ok(())
}

/// Backs `db` up from `host` and checks the backup (`check_backup`; a 5xx promises nothing,
/// so refused batches may or may not be there).
fn check(
    ctx: &Ctx,
    k: usize,
    host: &str,
    db: &str,
    (acked, refused): (u64, u64),
) -> Result<(Outcome, String)> {
    let dest = wl::fresh_dir(&wl::fresh_dir(&ctx.work, &format!("r{k}"))?, "dest")?;
    let r = wl::run(wl::backup_db(&ctx.bin, host, db, &dest), |_| {})?;
    if !r.ok() {
        return Ok((
            Outcome::DataLost,
            format!("backup after restart failed: {}", last_line(&r.stderr)),
        ));
    }
    let (outcome, detail) = check_backup(ctx, &dest, db, (acked, refused))?;
    let detail = match outcome {
        Outcome::Survived => format!("{detail} after kill -9"),
        _ => detail,
    };
    Ok((outcome, detail))
}

/// Verifies the backup of `db` in `dest` and restores it into influxd: every acked point,
/// and at most the `refused` points of refused batches besides.
pub(super) fn check_backup(
    ctx: &Ctx,
    dest: &Path,
    db: &str,
    (acked, refused): (u64, u64),
) -> Result<(Outcome, String)> {
    let v = wl::run(wl::verify(&ctx.bin, dest), |_| {})?;
    if !v.ok() {
        return Ok((
            Outcome::DataLost,
            format!("verify failed: {}", last_line(&v.stderr)),
        ));
    }
    let newdb = format!("{db}c");
    let influxd = ctx.influxd.bind.to_string();
    let r = wl::run(
        wl::restore_db(&ctx.bin, &influxd, dest, (db, &newdb), false),
        |_| {},
    )?;
    if !r.ok() {
        return Ok((
            Outcome::DataLost,
            format!("restore failed: {}", last_line(&r.stderr)),
        ));
    }
    let n = ctx.influxd.count(&newdb)?;
    if n < acked || n > acked + refused {
        let d = format!("influxd has {n} points; {acked} acked, {refused} refused");
        return Ok((Outcome::DataLost, d));
    }
    Ok((Outcome::Survived, format!("{n} acked points back")))
}
