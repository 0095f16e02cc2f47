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
    let mut st = LoopState::default();
    while !*stop.borrow() {
        let opened = Session::open(dest, opts, member, cluster).await;
        let mut session = match st.lease(dest, opts, opened, &wal_dir, on_event).await? {
            Next::Run(s) => s,
            Next::RetryNow => continue,
            Next::Wait => {
                sleep_or_stop(&mut stop, opts.interval).await;
                continue;
            }
        };
        st.through = session.archived_through();
        on_event(ArchiveEvent::Active {
            epoch: session.epoch(),
            archived_through: st.through,
        });
        let ended = run_session(&mut session, opts, &mut st.held, &mut stop, on_event).await;
        st.through = session.archived_through();
        st.stale_owner = Some(session.owner());
        match ended {
            Ok(()) => return session.finish().await,
            Err(e) if opts.once => return Err(e),
            Err(error) => {
                if is_deposed(&error) {
                    st.held = None;
                }
                on_event(ArchiveEvent::Retrying { error });
                sleep_or_stop(&mut stop, opts.interval).await;
            }
        }
    }
    Ok(())
}

/// What to do after trying to take the lease.
enum Next {
    Run(Box<Session>),
    RetryNow,
    Wait,
}

/// What the archiver keeps between sessions.
#[derive(Default)]
struct LoopState {
    /// Locks on segments not yet archived; replaced only by a newer successful read.
    held: Option<SourceRead>,
    /// Where the archive stood at the end of the last session.
    through: u64,
    /// Our own lease from a session that failed: released at once instead of waited out.
    stale_owner: Option<String>,
}

impl LoopState {
    /// Turns the outcome of `Session::open` into a session, or what to do instead (after
    /// reporting a stand-by or a failure). Only `--once` returns errors.
    async fn lease(
        &mut self,
        dest: &Destination,
        opts: &ArchiveOptions,
        opened: Result<Session>,
        wal_dir: &Path,
        on_event: &mut (dyn FnMut(ArchiveEvent) + Send),
    ) -> Result<Next> {
        let e = match opened {
            Ok(s) => return Ok(Next::Run(Box::new(s))),
            Err(e) if opts.once => return Err(e),
            Err(e) => e,
        };
        let Some(holder) = locked_by(&e) else {
            on_event(ArchiveEvent::Retrying { error: e });
            self.held = repin(wal_dir, self.through, self.held.take()).await;
            return Ok(Next::Wait);
        };
        if Some(&holder.owner) == self.stale_owner.as_ref() || holder_is_dead_local(holder) {
            // Our own failed session, or a killed archiver on this host: release that very
            // lease (compare-and-swap on its owner) and take over at once.
            self.stale_owner = None;
            let released = snapshotd_checkpoint::unlock_owner(dest, &holder.owner).await;
            return Ok(if released.is_ok() {
                Next::RetryNow
            } else {
                Next::Wait
            });
        }
        self.held = None;
        on_event(ArchiveEvent::Standby {
            holder: Box::new(holder.clone()),
        });
        Ok(Next::Wait)
    }
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
        // A pass reads at most `pass_bytes`: while behind, go again at once (also with --once).
        let behind = report.entries > 0 && report.archived_through < report.member_commit;
        on_event(ArchiveEvent::Pass(report));
        if behind {
            continue;
        }
        if held.as_ref().is_some_and(|h| !h.writer_live) {
            // No live writer: hold nothing between passes so etcd can start at any time.
            *held = None;
        }
        if opts.once || sleep_or_stop(stop, opts.interval).await {
            return Ok(());
        }
    }
}

/// Re-opens the view from `through` so segments released since are pinned too, with every
/// `.snap` file (which of them are archived is unknown while DEST is unreachable).
async fn repin(wal_dir: &Path, through: u64, held: Option<SourceRead>) -> Option<SourceRead> {
    let dir = wal_dir.to_path_buf();
    let fresh = tokio::task::spawn_blocking(move || {
        let mut r = source::read_committed(&dir, through, 0)?;
        if let Some(member) = dir.parent() {
            r.snap_locks = source::lock_snaps(&member.join("snap"), |_| false)?;
        }
        Ok::<_, Error>(r)
    })
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

/// Whether the lock `holder` is a process of this host that no longer exists (killed or
/// crashed). A live, stopped or unknown process is never considered dead. (Processes in
/// another PID namespace with the same host name would look dead: give containers
/// distinct host names.)
fn holder_is_dead_local(holder: &LockInfo) -> bool {
    holder.host == snapshotd_checkpoint::host_name()
        && holder.pid != std::process::id()
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{}", holder.pid)).exists()
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
