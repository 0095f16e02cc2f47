//! `snapshotd etcd backup|archive|status|restore|verify`: continuous WAL archiving beside etcd
//! members and point-in-time restore (orchestration lives in `snapshotd-etcd`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use snapshotd_checkpoint::{Destination, MasterKey};
use snapshotd_etcd::{
    ArchiveEvent, ArchiveOptions, BackupOptions, RestoreOptions, Target, archive, fetch_base,
    restore, status, store_base, verify,
};

/// Flags of `snapshotd etcd`.
#[derive(Debug, clap::Args)]
pub struct EtcdArgs {
    #[command(subcommand)]
    command: EtcdCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EtcdCommand {
    /// Take a base backup (whole keyspace) through the Maintenance Snapshot RPC into DEST.
    Backup(BackupArgs),
    /// Archive a member's committed WAL entries and .snap files into DEST, continuously.
    Archive(ArchiveArgs),
    /// Show what DEST holds: archived_through_index, restorable range, gaps, timeline, holder.
    Status(SrcArgs),
    /// Write a member data dir holding the keyspace as of a raft index or time.
    Restore(RestoreArgs),
    /// Check every archived object's digest, CRCs and index continuity.
    Verify(SrcArgs),
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Key file (32 raw bytes or 64 hex characters) for an encrypted archive.
    #[arg(long, value_name = "FILE")]
    encrypt_key_file: Option<PathBuf>,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ArchiveArgs {
    /// The member's --data-dir (holds member/wal and member/snap).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Pause between passes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Archive what is there now and exit (fails if another archiver is active).
    #[arg(long)]
    once: bool,
    /// Lease of DEST's lock: a stand-by archiver takes over this long after the active one stops.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    lock_ttl: Duration,
    #[command(flatten)]
    common: Common,
    /// Archive destination: a directory, file:///dir or s3://bucket/prefix.
    #[arg(value_name = "DEST")]
    dest: String,
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// Client URLs of the cluster (comma-separated), tried in order until one answers.
    #[arg(long, value_name = "URLS", value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// CA bundle (PEM) to verify the members' certificates (https:// endpoints).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Client certificate (PEM), with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Client key (PEM), with --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
    /// Archive destination: a directory, file:///dir or s3://bucket/prefix.
    #[arg(value_name = "DEST")]
    dest: String,
}

#[derive(Debug, clap::Args)]
struct SrcArgs {
    #[command(flatten)]
    common: Common,
    /// Archive: a directory, file:///dir or s3://bucket/prefix.
    #[arg(value_name = "SRC")]
    src: String,
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    /// New member data dir (must be absent or empty).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Restore exactly to this raft index.
    #[arg(long, value_name = "N", conflicts_with = "to_time")]
    to_index: Option<u64>,
    /// Restore to the newest index known committed by this RFC 3339 time.
    #[arg(long, value_name = "T")]
    to_time: Option<String>,
    /// Name of the member to keep (the one etcd will be started as); default: lowest id.
    #[arg(long)]
    name: Option<String>,
    /// Peer URLs of the restored member (comma-separated), set by a conf change appended
    /// after the target; default: the member keeps the URLs it had.
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    initial_advertise_peer_urls: Vec<String>,
    #[command(flatten)]
    common: Common,
    /// Archive: a directory, file:///dir or s3://bucket/prefix.
    #[arg(value_name = "SRC")]
    src: String,
}

/// Runs `snapshotd etcd …`.
pub fn run(args: EtcdArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    match args.command {
        EtcdCommand::Backup(a) => rt.block_on(run_backup(a)),
        EtcdCommand::Archive(a) => rt.block_on(run_archive(a)),
        EtcdCommand::Status(a) => rt.block_on(run_status(a)),
        EtcdCommand::Restore(a) => rt.block_on(run_restore(a)),
        EtcdCommand::Verify(a) => rt.block_on(run_verify(a)),
    }
}

fn key(c: &Common) -> anyhow::Result<Option<MasterKey>> {
    c.encrypt_key_file
        .as_ref()
        .map(|f| MasterKey::from_file(f).with_context(|| format!("read key {}", f.display())))
        .transpose()
}

/// Opens an existing archive without creating anything.
fn open_src(url: &str) -> anyhow::Result<Destination> {
    if !url.starts_with("s3://") {
        let p = Path::new(url.strip_prefix("file://").unwrap_or(url));
        if !p.join("checkpoints").is_dir() && !p.join("bases").join("checkpoints").is_dir() {
            bail!(
                "no etcd archive at {url} (no checkpoints/ or bases/checkpoints/ directory); check the path"
            );
        }
    }
    super::common::open_dest(url)
}

/// An error and its causes on one line, each cause once.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    super::common::render_chain(std::iter::successors(Some(e), |e| e.source()))
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string(v).unwrap_or_default());
}

async fn run_backup(a: BackupArgs) -> anyhow::Result<ExitCode> {
    let opts = BackupOptions {
        cacert: a.cacert.clone(),
        cert_key: a.cert.clone().zip(a.key.clone()),
        key: key(&a.common)?,
        ..BackupOptions::new(a.endpoints.clone())
    };
    let what = || format!("base backup of {} into {}", a.endpoints.join(","), a.dest);
    // Reach etcd first: a member that cannot serve the snapshot leaves no DEST behind.
    let fetched = fetch_base(&opts).await.with_context(what)?;
    let dest = super::common::open_dest(&a.dest)?;
    let r = store_base(&dest, &opts, fetched).await.with_context(what)?;
    if a.common.json {
        print_json(&serde_json::json!({
            "status": "ok",
            "raft_index": r.raft_index,
            "revision": r.base.revision,
            "report": r,
        }));
    } else {
        println!(
            "base backup at raft index {} (revision {}, {} bytes) from {} (member {}) stored as {}/bases/{}",
            r.raft_index,
            r.base.revision,
            r.db_bytes,
            r.base.endpoint,
            r.base.member_id,
            a.dest,
            r.base.object
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_archive(a: ArchiveArgs) -> anyhow::Result<ExitCode> {
    let dest = super::common::open_dest(&a.dest)?;
    let opts = ArchiveOptions {
        interval: a.interval,
        once: a.once,
        lock_ttl: a.lock_ttl,
        key: key(&a.common)?,
        ..ArchiveOptions::new(&a.data_dir)
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        let _ = tx.send(true);
    });
    let json = a.common.json;
    let mut gaps = 0u64;
    // A stand-by reports the holder once per change, not every interval.
    let mut last_holder: Option<(String, u64)> = None;
    let mut on_event = |ev: ArchiveEvent| {
        match &ev {
            ArchiveEvent::Gap(_) => gaps += 1,
            ArchiveEvent::Standby { holder } => {
                let h = Some((holder.owner.clone(), holder.epoch));
                if h == last_holder {
                    return;
                }
                last_holder = h;
            }
            // Text mode: idle passes are not worth a line each second.
            ArchiveEvent::Pass(p) if !json && p.entries == 0 && p.snaps == 0 => return,
            _ => last_holder = None,
        }
        print_event(&ev, json);
    };
    archive(&dest, &opts, rx, &mut on_event)
        .await
        .with_context(|| format!("archive {} into {}", a.data_dir.display(), a.dest))?;
    if gaps > 0 {
        eprintln!(
            "snapshotd: the archive has a gap (see above): restores past it need a base backup taken after it"
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn print_event(ev: &ArchiveEvent, json: bool) {
    use serde_json::json;
    let (v, text) = match ev {
        ArchiveEvent::Standby { holder } => (
            json!({"event": "standby", "holder": holder}),
            format!(
                "standby: archive held by pid {} on {} (epoch {}, expires {})",
                holder.pid,
                holder.host,
                holder.epoch,
                holder.expires.to_rfc3339()
            ),
        ),
        ArchiveEvent::Active {
            epoch,
            archived_through,
        } => (
            json!({"event": "active", "epoch": epoch, "archived_through_index": archived_through}),
            format!(
                "active: holding the archive (epoch {epoch}), archived through index {archived_through}"
            ),
        ),
        ArchiveEvent::Pass(p) => (
            json!({"event": "pass", "status": "ok", "report": p}),
            format!(
                "archived {} entries in {} chunks, {} .snap files ({} bytes); archived through index {} (member commit {})",
                p.entries, p.chunks, p.snaps, p.bytes, p.archived_through, p.member_commit
            ),
        ),
        ArchiveEvent::Gap(g) => (
            json!({"event": "gap", "from": g.from, "to": g.to}),
            format!(
                "GAP: entries {}..={} were purged by etcd before they were archived",
                g.from, g.to
            ),
        ),
        ArchiveEvent::Retrying { error } => (
            json!({"event": "retrying", "error": chain(error)}),
            format!("retrying (segment locks kept): {}", chain(error)),
        ),
        _ => return,
    };
    if json {
        print_json(&v);
    } else if matches!(ev, ArchiveEvent::Gap(_) | ArchiveEvent::Retrying { .. }) {
        eprintln!("snapshotd: {text}");
    } else {
        println!("{text}");
    }
}

async fn run_status(a: SrcArgs) -> anyhow::Result<ExitCode> {
    let dest = open_src(&a.src)?;
    let st = status(&dest, key(&a.common)?.as_ref()).await?;
    if a.common.json {
        print_json(&st);
        return Ok(ExitCode::SUCCESS);
    }
    println!("archive:                {}", st.dest);
    println!("archived_through_index: {}", st.archived_through_index);
    if st.restorable_ranges.is_empty() {
        println!("restorable indexes:     none");
    }
    for r in &st.restorable_ranges {
        println!("restorable indexes:     {}..={}", r.from, r.to);
    }
    println!(
        "chunks: {} ({} entries, {} bytes); .snap files: {}",
        st.chunks,
        st.entries,
        st.bytes,
        st.snaps.len()
    );
    println!("bases: {}", st.bases.len());
    for b in &st.bases {
        println!(
            "  base at index {} (revision {}, {} bytes) taken {} from member {}",
            b.index,
            b.revision,
            b.size,
            b.time.to_rfc3339(),
            b.member_id
        );
    }
    for g in &st.gaps {
        println!("GAP: entries {}..={} are missing", g.from, g.to);
    }
    if let (Some(f), Some(l)) = (st.timeline.first(), st.timeline.last()) {
        println!(
            "timeline: index {} by {} .. index {} by {}",
            f.index,
            f.time.to_rfc3339(),
            l.index,
            l.time.to_rfc3339()
        );
    }
    match &st.holder {
        Some(h) if !h.released => println!(
            "holder: pid {} on {} (epoch {}, expires {})",
            h.pid,
            h.host,
            h.epoch,
            h.expires.to_rfc3339()
        ),
        _ => println!("holder: none"),
    }
    for r in &st.rejected {
        println!("ignored: {r}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_restore(a: RestoreArgs) -> anyhow::Result<ExitCode> {
    let dest = open_src(&a.src)?;
    let target = match (a.to_index, &a.to_time) {
        (Some(n), _) => Target::Index(n),
        (None, Some(t)) => Target::Time(
            chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--to-time {t:?} is not an RFC 3339 time"))?
                .to_utc(),
        ),
        (None, None) => Target::Latest,
    };
    let opts = RestoreOptions {
        data_dir: a.data_dir.clone(),
        target,
        name: a.name.clone(),
        peer_urls: a.initial_advertise_peer_urls.clone(),
        key: key(&a.common)?,
    };
    let r = restore(&dest, &opts).await?;
    if a.common.json {
        print_json(&serde_json::json!({"status": "ok", "restore": r}));
    } else {
        if let Some(b) = r.base_index {
            println!("started from the base at raft index {b}");
        }
        println!(
            "restored index {} (term {}, {} entries from {} chunks) into {} as member {} ({}), cluster {}",
            r.index,
            r.term,
            r.entries,
            r.chunks,
            r.data_dir.display(),
            r.member_id,
            if r.member_name.is_empty() {
                "-"
            } else {
                &r.member_name
            },
            r.cluster_id
        );
        println!(
            "start it with: etcd --name {} --data-dir {} --force-new-cluster --listen-peer-urls … --listen-client-urls … --advertise-client-urls …",
            a.name.as_deref().unwrap_or(if r.member_name.is_empty() {
                "default"
            } else {
                &r.member_name
            }),
            r.data_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_verify(a: SrcArgs) -> anyhow::Result<ExitCode> {
    let dest = open_src(&a.src)?;
    let r = verify(&dest, key(&a.common)?.as_ref()).await?;
    if a.common.json {
        print_json(&r);
    } else {
        println!(
            "checked {} chunks ({} entries), {} .snap files and {} bases; head index {}",
            r.chunks, r.entries, r.snaps, r.bases, r.head
        );
        for (f, t) in &r.gaps {
            println!("GAP: entries {f}..={t} are missing");
        }
        for p in &r.problems {
            eprintln!("snapshotd: DAMAGED: {p}");
        }
    }
    Ok(if r.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
