//! `snapshotd forget DEST --keep-…`: remove the restore points a retention policy does not
//! keep (restic's rules, see docs/backup.md), under the destination lock.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use snapshotd_client::job::forget::{ForgetReport, KeepPolicy, forget};

use super::common::{human_bytes, open_existing, runtime};
use super::metrics_file::{self, RunMetrics};

/// Flags of `snapshotd forget`.
#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    /// Keep the N newest restore points.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest point of each of the N most recent hours that have one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// … of each of the N most recent days.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// … of each of the N most recent ISO weeks.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// … of each of the N most recent months.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// … of each of the N most recent years.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every point younger than this (e.g. `7d`), measured from the newest point.
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<humantime::Duration>,
    /// Only show what would be removed; take no lock, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for a running backup to release the destination lock.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub lock_wait: humantime::Duration,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write Prometheus metrics of this run here (node_exporter textfile format), atomically.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Backup location: a directory, `file://…` or `s3://bucket/prefix`.
    #[arg(value_name = "DEST")]
    pub dest: String,
}

fn policy(args: &ForgetArgs) -> KeepPolicy {
    KeepPolicy {
        last: args.keep_last,
        hourly: args.keep_hourly,
        daily: args.keep_daily,
        weekly: args.keep_weekly,
        monthly: args.keep_monthly,
        yearly: args.keep_yearly,
        within: args.keep_within.map(Into::into),
    }
}

/// Runs `snapshotd forget`.
pub fn run(args: ForgetArgs) -> anyhow::Result<ExitCode> {
    let dest = open_existing(&args.dest)?;
    let rt = runtime()?;
    let began = Instant::now();
    let result = rt.block_on(forget(
        &dest,
        &policy(&args),
        args.dry_run,
        args.lock_wait.into(),
    ));
    if let Some(path) = &args.metrics_file {
        let m = RunMetrics {
            ok: result.is_ok(),
            duration: began.elapsed(),
            bytes: result.as_ref().map_or(0, |r| r.bytes),
            units: result.as_ref().map_or(0, |r| removed(r) as u64),
        };
        metrics_file::write(path, "forget", &args.dest, &m)?;
    }
    let report = result?;
    print(&args, &report);
    Ok(ExitCode::SUCCESS)
}

/// Ids of the complete points removed (not kept, not read by a running restore).
fn removed_ids(r: &ForgetReport) -> Vec<&str> {
    r.decisions
        .iter()
        .filter(|d| !d.keep && !r.in_use.contains(&d.id))
        .map(|d| d.id.as_str())
        .collect()
}

fn removed(r: &ForgetReport) -> usize {
    removed_ids(r).len() + r.partial_removed.len()
}

fn print(args: &ForgetArgs, r: &ForgetReport) {
    if args.json {
        let keep: Vec<_> = r.decisions.iter().filter(|d| d.keep).collect();
        let remove = removed_ids(r);
        let v = serde_json::json!({
            "status": "ok", "dest": args.dest, "dry_run": r.dry_run,
            "keep": keep, "remove": remove, "partial_removed": r.partial_removed,
            "in_use": r.in_use,
            "files": r.files, "bytes": r.bytes,
        });
        println!("{v}");
        return;
    }
    for d in &r.decisions {
        if r.in_use.contains(&d.id) {
            println!(
                "keep   {} (read by a running restore; removed by a later forget)",
                d.id
            );
            continue;
        }
        let verdict = if d.keep { "keep  " } else { "remove" };
        println!("{verdict} {} {}", d.id, d.reasons.join(","));
    }
    for id in &r.partial_removed {
        println!("remove {id} (partial: left by an interrupted run)");
    }
    println!(
        "{} {} restore point(s), {} file(s), {}",
        if r.dry_run { "would remove" } else { "removed" },
        removed(r),
        r.files,
        human_bytes(r.bytes)
    );
}
