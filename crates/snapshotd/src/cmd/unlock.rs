//! `snapshotd unlock DEST`: show who holds a destination's checkpoint lock, then remove it.

use std::process::ExitCode;

use anyhow::Context;
use snapshotd_checkpoint::{
    Clock, Destination, LockInfo, SystemClock, Unlocked, read_lock, unlock,
};

/// Flags of `snapshotd unlock`.
#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    /// Only show the holder; do not remove the lock.
    #[arg(long)]
    pub show: bool,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// S3 endpoint override (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Backup destination: a directory, file:///dir or s3://bucket/prefix.
    #[arg(value_name = "DEST")]
    pub dest: String,
}

fn describe(info: &LockInfo) -> String {
    let now = SystemClock.now();
    let left = info.expires.signed_duration_since(now).num_seconds();
    let state = if left >= 0 {
        format!("expires in {left}s")
    } else {
        format!("expired {}s ago", -left)
    };
    format!(
        "owner:   {} ({})\nhost:    {}\npid:     {}\nstarted: {}\nexpires: {} ({state})\nepoch:   {}",
        info.owner,
        if info.hint.is_empty() {
            "-"
        } else {
            &info.hint
        },
        info.host,
        info.pid,
        info.started.to_rfc3339(),
        info.expires.to_rfc3339(),
        info.epoch
    )
}

fn as_json(info: &LockInfo) -> serde_json::Value {
    serde_json::json!({
        "owner": info.owner, "hint": info.hint, "host": info.host, "pid": info.pid,
        "started": info.started.to_rfc3339(), "expires": info.expires.to_rfc3339(),
        "epoch": info.epoch,
    })
}

/// Runs `snapshotd unlock`.
pub fn run(args: UnlockArgs) -> anyhow::Result<ExitCode> {
    let mut s3 = super::s3_options();
    if args.s3_endpoint.is_some() {
        s3.endpoint = args.s3_endpoint.clone();
    }
    if !args.dest.contains("://") && !std::path::Path::new(&args.dest).is_dir() {
        anyhow::bail!(
            "{} does not exist or is not a directory (check the path; nothing was created)",
            args.dest
        );
    }
    let dest = Destination::open(&args.dest, &s3)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let outcome = rt.block_on(async {
        if args.show {
            read_lock(&dest)
                .await
                .map(|o| o.map_or(Unlocked::NotLocked, Unlocked::Removed))
        } else {
            unlock(&dest).await
        }
    })?;
    let verb = if args.show { "held" } else { "removed" };
    if args.json {
        let v = match &outcome {
            Unlocked::NotLocked => serde_json::json!({"dest": dest.to_string(), "locked": false}),
            Unlocked::Removed(info) => serde_json::json!({
                "dest": dest.to_string(), "locked": true, "removed": !args.show,
                "holder": as_json(info),
            }),
            Unlocked::RemovedUnreadable(raw) => serde_json::json!({
                "dest": dest.to_string(), "locked": true, "removed": true, "unreadable": raw,
            }),
        };
        println!("{v}");
    } else {
        match &outcome {
            Unlocked::NotLocked => println!("{dest} is not locked"),
            Unlocked::Removed(info) => {
                println!("lock on {dest} {verb}:\n{}", describe(info));
            }
            Unlocked::RemovedUnreadable(raw) => {
                println!("unreadable lock on {dest} removed; it contained:\n{raw}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
