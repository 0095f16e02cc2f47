//! `snapshotd verify --deep`: decode every TSM block of every shard of a backup and print
//! per-database/measurement counts and time ranges. The lead wires [`run_if_requested`] at
//! the top of `verify::run`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use snapshotd_influxapi::{Backup, deep_verify};

/// The `--deep` flags of `snapshotd verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeepArgs {
    /// Also decode every TSM block of every shard (CRCs, encodings, index versus blocks,
    /// tombstones) and print per-database/measurement value counts and time ranges.
    #[arg(long)]
    pub deep: bool,
    /// With --deep, only this database.
    #[arg(long, value_name = "NAME", requires = "deep")]
    pub deep_db: Option<String>,
}

/// Runs the deep verify when `--deep` was given (`None` otherwise).
pub fn run_if_requested(
    deep: &DeepArgs,
    src: &str,
    json: bool,
) -> anyhow::Result<Option<ExitCode>> {
    if !deep.deep {
        return Ok(None);
    }
    let dir = src.strip_prefix("file://").unwrap_or(src);
    if dir.contains("://") {
        bail!("{src}: verify --deep reads a local backup directory (copy it locally first)");
    }
    let backup = Backup::open(Path::new(dir))?;
    let rep = match deep_verify(&backup, deep.deep_db.as_deref(), &std::env::temp_dir()) {
        Ok(r) => r,
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"status": "error", "src": src, "error": e.to_string()})
                );
            } else {
                println!("FAIL: {e}");
            }
            return Ok(Some(ExitCode::FAILURE));
        }
    };
    if json {
        let rows: Vec<_> = rep
            .measurements
            .iter()
            .map(|((d, rp, m), s)| serde_json::json!({"database": d, "rp": rp, "measurement": m, "values": s.values, "min_time": s.min_time, "max_time": s.max_time}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"status": "ok", "src": src, "shards": rep.shards, "tsm_files": rep.tsm_files, "blocks": rep.blocks, "measurements": rows})
        );
    } else {
        for ((d, rp, m), s) in &rep.measurements {
            println!(
                "{d}/{rp}/{m}: {} value(s), time {} .. {}",
                s.values, s.min_time, s.max_time
            );
        }
        println!(
            "OK: {} shard(s), {} TSM file(s), {} block(s) decoded; every CRC, encoding and index entry checked",
            rep.shards, rep.tsm_files, rep.blocks
        );
    }
    Ok(Some(ExitCode::SUCCESS))
}
