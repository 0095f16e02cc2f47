//! `snapshotd snapshots DEST`: the restore points of a backup location (ours or influxd's).

use std::process::ExitCode;

use snapshotd_client::{RestorePoint, Storage};

use super::common::{human_bytes, open_existing, runtime};

/// Flags of `snapshotd snapshots`.
#[derive(Debug, clap::Args)]
pub struct SnapshotsArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Backup location: a directory, `file://…` or `s3://bucket/prefix`.
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// Runs `snapshotd snapshots`.
pub fn run(args: SnapshotsArgs) -> anyhow::Result<ExitCode> {
    let dest = open_existing(&args.dest)?;
    let rt = runtime()?;
    let storage = Storage::from_store(dest.rooted_store(), dest.to_string());
    let points = rt.block_on(snapshotd_client::points::list_points(&storage))?;
    if args.json {
        let v = serde_json::json!({ "dest": args.dest, "points": points.iter().map(as_json).collect::<Vec<_>>() });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    if points.is_empty() {
        println!("no restore points in {dest}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<17} {:<20} {:<8} {:<7} {:>6} {:>10} {:<9} {:<20} databases",
        "ID", "TIME (UTC)", "STATE", "KIND", "SHARDS", "SIZE", "ENCRYPTED", "VERIFIED"
    );
    for p in &points {
        println!(
            "{:<17} {:<20} {:<8} {:<7} {:>6} {:>10} {:<9} {:<20} {}",
            p.id,
            p.time.format("%Y-%m-%d %H:%M:%S"),
            if p.complete { "complete" } else { "partial" },
            kind(p),
            p.shards,
            human_bytes(p.bytes),
            if p.encrypted { "yes" } else { "no" },
            p.verified_at.map_or_else(
                || "-".to_string(),
                |t| t.format("%Y-%m-%d %H:%M:%S").to_string()
            ),
            if p.databases.is_empty() {
                "-".to_string()
            } else {
                p.databases.join(",")
            }
        );
    }
    let partial = points.iter().filter(|p| !p.complete).count();
    println!(
        "{} restore point(s), {} complete{}",
        points.len(),
        points.len() - partial,
        if partial > 0 {
            "; partial points are interrupted or running backups (not restorable)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `full` (every archive holds its whole shard), `incr` (a `--since` or window run, restored
/// on top of older points), `influxd` (written by influxd: unknown), `-` (partial).
fn kind(p: &RestorePoint) -> &'static str {
    match (p.complete, p.by_snapshotd, p.whole) {
        (false, _, _) => "-",
        (true, false, _) => "influxd",
        (true, true, true) => "full",
        (true, true, false) => "incr",
    }
}

fn as_json(p: &RestorePoint) -> serde_json::Value {
    serde_json::json!({
        "id": p.id,
        "time": p.time.to_rfc3339(),
        "complete": p.complete,
        "databases": p.databases,
        "shards": p.shards,
        "bytes": p.bytes,
        "encrypted": p.encrypted,
        "verified_at": p.verified_at.map(|t| t.to_rfc3339()),
        "by_snapshotd": p.by_snapshotd,
        "kind": kind(p),
        "files": p.files.len(),
    })
}
