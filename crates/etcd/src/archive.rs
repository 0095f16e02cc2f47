//! `etcd archive`: the archiver loop — stand by while another process holds DEST's lease,
//! otherwise read the member's committed entries every interval and store them as chunks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use snapshotd_checkpoint::{Destination, LockInfo, MasterKey};
use tokio::sync::watch;

use crate::catalog::GapInfo;
use crate::error::{Error, Result};
use crate::session::{PassReport, Session};
use crate::source::{self, SourceRead};

/// How the archiver runs.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// The member's `--data-dir` (holds `member/wal` and `member/snap`).
    pub data_dir: PathBuf,
    /// Pause between passes.
    pub interval: Duration,
    /// Archive what is there once and return (fails when another archiver is active).
    pub once: bool,
    /// Lease of DEST's lock; a stand-by takes over this long after the holder stops.
    pub lock_ttl: Duration,
    /// Encrypts chunks, `.snap` copies and checkpoint records.
    pub key: Option<MasterKey>,
    /// Entry bytes per chunk (a chunk may exceed it by one entry).
    pub chunk_bytes: u64,
    /// Entry bytes read from the member per pass.
    pub pass_bytes: u64,
}

impl ArchiveOptions {
    /// Defaults for a data dir: 1 s interval, 60 s lease, 4 MiB chunks, 64 MiB passes.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ArchiveOptions {
            data_dir: data_dir.into(),
            interval: Duration::from_secs(1),
            once: false,
            lock_ttl: Duration::from_secs(60),
            key: None,
            chunk_bytes: 4 << 20,
            pass_bytes: 64 << 20,
        }
    }

    /// The member's WAL directory.
    pub fn wal_dir(&self) -> PathBuf {
        self.data_dir.join("member").join("wal")
    }
}

/// What the archiver reports as it goes (the binary prints these).
#[derive(Debug)]
#[non_exhaustive]
pub enum ArchiveEvent {
    /// Another archiver holds DEST; this one waits.
    Standby {
        /// The active holder.
        holder: Box<LockInfo>,
    },
    /// This archiver holds DEST's lease now.
    Active {
        /// Lock epoch.
        epoch: u64,
        /// Where the archive stood when it took over.
        archived_through: u64,
    },
    /// One pass finished and is durable in DEST.
    Pass(PassReport),
    /// Entries were purged before they were archived; recorded in DEST.
    Gap(GapInfo),
    /// A pass or the lease failed; the archiver keeps its segment locks and retries.
    Retrying {
        /// What failed.
        error: Error,
    },
}

/// Runs the archiver until `stop` turns true (or after one pass with `once`).
pub async fn archive(
    dest: &Destination,
    opts: &ArchiveOptions,
    mut stop: watch::Receiver<bool>,
    on_event: &mut (dyn FnMut(ArchiveEvent) + Send),
) -> Result<()> {
    let wal_dir = opts.wal_dir();
    check_data_dir(&opts.data_dir, &wal_dir)?;
    let (member, cluster) = source::member_ids(&wal_dir)?;
    // Locks on segments not yet archived; replaced only by a newer successful read.
    let mut held: Option<SourceRead> = None;
    let mut through = 0u64;
    // Our own lease from a session that failed: released at once instead of waiting it out.
    let mut stale_owner: Option<String> = None;
    while !*stop.borrow() {
        let mut session = match Session::open(dest, opts, member, cluster).await {
            Ok(s) => s,
            Err(e) if opts.once => return Err(e),
            Err(e) if locked_by(&e).is_some_and(|h| Some(&h.owner) == stale_owner.as_ref()) => {
                if let Some(owner) = stale_owner.take() {
                    let _ = snapshotd_checkpoint::unlock_owner(dest, &owner).await;
                }
                continue;
            }
            Err(e) if locked_by(&e).is_some() => {
                held = None;
                if let Some(holder) = locked_by(&e) {
                    on_event(ArchiveEvent::Standby {
                        holder: Box::new(holder.clone()),
                    });
                }
                sleep_or_stop(&mut stop, opts.interval).await;
                continue;
            }
            Err(error) => {
                on_event(ArchiveEvent::Retrying { error });
                held = repin(&wal_dir, through, held).await;
                sleep_or_stop(&mut stop, opts.interval).await;
                continue;
            }
        };
        through = session.archived_through();
        on_event(ArchiveEvent::Active {
            epoch: session.epoch(),
            archived_through: through,
        });
        let ended = run_session(&mut session, opts, &mut held, &mut stop, on_event).await;
        through = session.archived_through();
        stale_owner = Some(session.owner());
        match ended {
            Ok(()) => return session.finish().await,
            Err(e) if opts.once => return Err(e),
            Err(error) => {
                if is_deposed(&error) {
                    held = None;
                }
                on_event(ArchiveEvent::Retrying { error });
                sleep_or_stop(&mut stop, opts.interval).await;
            }
        }
    }
    Ok(())
}

/// Passes until stopped (`Ok`) or a pass fails (`Err`: the caller reopens the session).
async fn run_session(
    session: &mut Session,
    opts: &ArchiveOptions,
    held: &mut Option<SourceRead>,
    stop: &mut watch::Receiver<bool>,
    on_event: &mut (dyn FnMut(ArchiveEvent) + Send),
) -> Result<()> {
    loop {
        let report = session.pass(held, on_event).await?;
        on_event(ArchiveEvent::Pass(report));
        if held.as_ref().is_some_and(|h| !h.writer_live) {
            // No live writer: hold nothing between passes so etcd can start at any time.
            *held = None;
        }
        if opts.once || sleep_or_stop(stop, opts.interval).await {
            return Ok(());
        }
    }
}

/// Re-opens the view from `through` so segments released since are pinned too.
async fn repin(wal_dir: &Path, through: u64, held: Option<SourceRead>) -> Option<SourceRead> {
    let dir = wal_dir.to_path_buf();
    let fresh = tokio::task::spawn_blocking(move || source::read_committed(&dir, through, 0))
        .await
        .ok()
        .and_then(|r| r.ok());
    match fresh {
        Some(f) if f.writer_live => Some(f),
        Some(_) => None,
        None => held,
    }
}

fn is_deposed(e: &Error) -> bool {
    matches!(
        e.checkpoint_error(),
        Some(snapshotd_checkpoint::Error::Deposed { .. })
    )
}

fn locked_by(e: &Error) -> Option<&LockInfo> {
    match e.checkpoint_error() {
        Some(snapshotd_checkpoint::Error::Locked { holder, .. }) => Some(holder),
        _ => None,
    }
}

fn check_data_dir(data_dir: &Path, wal_dir: &Path) -> Result<()> {
    if !snapshotd_wal::wal_exists(wal_dir) {
        return Err(Error::NotADataDir {
            path: data_dir.to_path_buf(),
            reason: format!("no *.wal file in {}", wal_dir.display()),
        });
    }
    Ok(())
}

/// Sleeps `d`; returns true when `stop` turned true meanwhile.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}
