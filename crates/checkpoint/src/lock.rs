//! The destination lock: a lease with TTL, conditional writes and a fencing epoch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cas::{Cas, CasOutcome, Version};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::layout;
use snapshotd_dest::Destination;

/// What the lock object says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random id of the holding process/job run.
    pub owner: String,
    /// Host name of the holder.
    pub host: String,
    /// Process id of the holder.
    pub pid: u32,
    /// Free text: what holds it (e.g. `snapshotd backup`).
    #[serde(default)]
    pub hint: String,
    /// When this holder acquired the lock.
    pub started: DateTime<Utc>,
    /// When the lease runs out unless refreshed.
    pub expires: DateTime<Utc>,
    /// Fencing epoch: strictly increases with every new holder.
    pub epoch: u64,
    /// Random per-write id (makes every version distinct).
    #[serde(default)]
    pub rev: String,
    /// A released lock: kept as a tombstone so the epoch counter never goes back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "owner {} ({}) on host {} pid {}, started {}, expires {}, epoch {}",
            self.owner,
            if self.hint.is_empty() {
                "-"
            } else {
                &self.hint
            },
            self.host,
            self.pid,
            self.started.to_rfc3339(),
            self.expires.to_rfc3339(),
            self.epoch
        )
    }
}

/// Lock tuning.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Lease length (default 60 s).
    pub ttl: Duration,
    /// How often the background task refreshes (default `ttl / 3`).
    pub refresh_interval: Option<Duration>,
    /// Extra time a contender waits past `expires` before taking over, to absorb clock
    /// skew between hosts (default 5 s).
    pub skew_margin: Duration,
    /// Clock used for expiry decisions.
    pub clock: Arc<dyn Clock>,
    /// Free text stored in the lock (e.g. `snapshotd backup`).
    pub hint: String,
    /// Host name stored in the lock (default: the kernel's host name).
    pub host: Option<String>,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            refresh_interval: None,
            skew_margin: Duration::from_secs(5),
            clock: Arc::new(SystemClock),
            hint: String::new(),
            host: None,
        }
    }
}

/// This machine's host name as the lock records it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn encode(info: &LockInfo) -> Result<Bytes> {
    serde_json::to_vec_pretty(info)
        .map(Bytes::from)
        .map_err(|source| Error::Encode {
            what: "lock",
            source,
        })
}

fn decode(data: &[u8], path: &str) -> Result<LockInfo> {
    serde_json::from_slice(data).map_err(|e| Error::Corrupt {
        path: path.to_string(),
        reason: format!("unreadable lock object: {e}"),
    })
}

/// Reads the current lock, if any (a released lock is no lock).
pub async fn read_lock(dest: &Destination) -> Result<Option<LockInfo>> {
    let cas = Cas::new(dest, layout::LOCK);
    match cas.read().await? {
        None => Ok(None),
        Some((data, _)) => {
            let info = decode(&data, dest.path(layout::LOCK).as_ref())?;
            Ok((!info.released).then_some(info))
        }
    }
}

/// What [`unlock`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    /// There was no lock.
    NotLocked,
    /// This holder's lock was removed.
    Removed(LockInfo),
    /// A lock object that could not be parsed was removed; its raw text.
    RemovedUnreadable(String),
}

/// The tombstone that replaces `info` on release or unlock (same epoch).
fn tombstone(info: &LockInfo, now: DateTime<Utc>) -> LockInfo {
    LockInfo {
        expires: now,
        rev: uuid::Uuid::new_v4().to_string(),
        released: true,
        ..info.clone()
    }
}

/// Releases the lock whoever holds it, after reading who that is. Meant for an operator
/// who knows the holder is dead; a live holder notices at its next refresh and stops.
/// The lock object becomes a released tombstone keeping the epoch, so the next holder's
/// epoch is higher than anything the removed holder may still write.
pub async fn unlock(dest: &Destination) -> Result<Unlocked> {
    unlock_if(dest, None).await
}

/// Like [`unlock`], but only while the lock still belongs to `owner` (compare-and-swap): for
/// removing the lock of a holder known to be dead without touching a newer holder's lock.
/// Returns [`Unlocked::NotLocked`] when someone else holds it now.
pub async fn unlock_owner(dest: &Destination, owner: &str) -> Result<Unlocked> {
    unlock_if(dest, Some(owner)).await
}

async fn unlock_if(dest: &Destination, owner: Option<&str>) -> Result<Unlocked> {
    let cas = Cas::new(dest, layout::LOCK);
    for _attempt in 0..8 {
        let Some((data, version)) = cas.read().await? else {
            return Ok(Unlocked::NotLocked);
        };
        let info = match decode(&data, "") {
            Ok(info) => info,
            Err(_) if owner.is_some() => return Ok(Unlocked::NotLocked),
            Err(_) => {
                let _ = cas.delete(None).await?;
                return Ok(Unlocked::RemovedUnreadable(
                    String::from_utf8_lossy(&data).into_owned(),
                ));
            }
        };
        if info.released || owner.is_some_and(|o| o != info.owner) {
            return Ok(Unlocked::NotLocked);
        }
        let tomb = tombstone(&info, chrono::Utc::now());
        if let CasOutcome::Done(_) = cas.update(&version, encode(&tomb)?).await? {
            return Ok(Unlocked::Removed(info));
        }
        // Refreshed or taken over meanwhile: look again.
    }
    Err(Error::LockContended {
        dest: dest.to_string(),
        op: "unlock",
        reason: "the lock keeps changing (is its holder alive?)",
    })
}

struct State {
    dest: String,
    cas: Cas,
    opts: LockOptions,
    current: Mutex<(LockInfo, Version)>,
    failed: Mutex<Option<String>>,
    /// Serializes refreshes: two concurrent conditional updates from the same version
    /// would make the loser believe it was deposed.
    refreshing: tokio::sync::Mutex<()>,
}

impl State {
    fn epoch(&self) -> u64 {
        self.lock_current().0.epoch
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, (LockInfo, Version)> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, reason: String) -> Error {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        let reason = f.get_or_insert(reason).clone();
        Error::Deposed {
            dest: self.dest.clone(),
            epoch: self.epoch(),
            reason,
        }
    }

    fn failure(&self) -> Option<Error> {
        let f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        f.as_ref().map(|r| Error::Deposed {
            dest: self.dest.clone(),
            epoch: self.epoch(),
            reason: r.clone(),
        })
    }

    async fn refresh(&self) -> Result<()> {
        let _one_at_a_time = self.refreshing.lock().await;
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let (mut next, version) = self.lock_current().clone();
        next.expires = self.opts.clock.now() + chrono_dur(self.opts.ttl);
        next.rev = uuid::Uuid::new_v4().to_string();
        match self.cas.update(&version, encode(&next)?).await {
            Ok(CasOutcome::Done(v)) => {
                *self.lock_current() = (next, v);
                Ok(())
            }
            Ok(CasOutcome::Conflict) => Err(self.fail(
                "the lock was taken over or removed by someone else (refresh refused)".into(),
            )),
            Err(e) => {
                metrics::counter!("snapshotd_checkpoint_lock_refresh_errors_total").increment(1);
                let expires = self.lock_current().0.expires;
                if self.opts.clock.now() >= expires {
                    Err(self.fail(format!("lease expired and could not be refreshed: {e}")))
                } else {
                    tracing::warn!(dest = %self.dest, error = %e, "lock refresh failed; will retry");
                    Err(e)
                }
            }
        }
    }
}

/// A held lock. A background task refreshes it; dropping the guard stops that task
/// (the lease then runs out), [`LockGuard::release`] removes it.
pub struct LockGuard {
    state: Arc<State>,
    stop: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
    taken_over_from: Option<LockInfo>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("info", &self.info())
            .finish()
    }
}

impl LockGuard {
    /// Acquires the lock of `dest`: create if absent, take over if expired, else fail
    /// with [`Error::Locked`] naming the holder. The new epoch is at least `min_epoch`
    /// and above the previous holder's.
    pub async fn acquire(dest: &Destination, opts: LockOptions, min_epoch: u64) -> Result<Self> {
        let cas = Cas::new(dest, layout::LOCK);
        let lock_path = dest.path(layout::LOCK).to_string();
        let now = opts.clock.now();
        let mut info = LockInfo {
            owner: uuid::Uuid::new_v4().to_string(),
            host: opts.host.clone().unwrap_or_else(host_name),
            pid: std::process::id(),
            hint: opts.hint.clone(),
            started: now,
            expires: now + chrono_dur(opts.ttl),
            epoch: min_epoch.max(1),
            rev: uuid::Uuid::new_v4().to_string(),
            released: false,
        };
        let mut taken_over_from = None;
        let mut acquired = None;
        for _attempt in 0..8 {
            if let CasOutcome::Done(v) = cas.create(encode(&info)?).await? {
                acquired = Some(v);
                break;
            }
            let Some((data, version)) = cas.read().await? else {
                continue; // released between our create and read: try again
            };
            let holder = decode(&data, &lock_path)?;
            let now = opts.clock.now();
            if !holder.released && now <= holder.expires + chrono_dur(opts.skew_margin) {
                return Err(Error::Locked {
                    dest: dest.to_string(),
                    holder: Box::new(holder),
                });
            }
            info.epoch = info.epoch.max(holder.epoch.saturating_add(1));
            info.started = now;
            info.expires = now + chrono_dur(opts.ttl);
            if let CasOutcome::Done(v) = cas.update(&version, encode(&info)?).await? {
                if !holder.released {
                    tracing::warn!(dest = %dest, previous = %holder, "took over an expired lock");
                    taken_over_from = Some(holder);
                }
                acquired = Some(v);
                break;
            }
            // Lost a takeover race; the next round reports the winner.
        }
        let Some(version) = acquired else {
            return Err(Error::LockContended {
                dest: dest.to_string(),
                op: "acquire lock on",
                reason: "too much contention",
            });
        };
        let refresh = opts
            .refresh_interval
            .unwrap_or(opts.ttl / 3)
            .max(Duration::from_millis(10));
        let state = Arc::new(State {
            dest: dest.to_string(),
            cas,
            opts,
            current: Mutex::new((info, version)),
            failed: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        });
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(refresh_loop(state.clone(), stop.clone(), refresh));
        Ok(Self {
            state,
            stop,
            task: Mutex::new(Some(task)),
            taken_over_from,
        })
    }

    /// The lock as last written by us.
    pub fn info(&self) -> LockInfo {
        self.state.lock_current().0.clone()
    }

    /// Our fencing epoch.
    pub fn epoch(&self) -> u64 {
        self.state.epoch()
    }

    /// The expired holder we replaced, if this was a takeover.
    pub fn taken_over_from(&self) -> Option<&LockInfo> {
        self.taken_over_from.as_ref()
    }

    /// Fails if the lock was lost. If our own clock says the lease lapsed, refreshes
    /// first (a holder that slept past its lease must prove it still holds the lock).
    pub async fn check(&self) -> Result<()> {
        if let Some(e) = self.state.failure() {
            return Err(e);
        }
        let expires = self.state.lock_current().0.expires;
        if self.state.opts.clock.now() >= expires {
            return self.state.refresh().await;
        }
        Ok(())
    }

    /// The sticky failure, if the lock was lost (no I/O).
    pub fn failure(&self) -> Option<Error> {
        self.state.failure()
    }

    /// Refreshes now (the background task does this periodically).
    pub async fn refresh_now(&self) -> Result<()> {
        self.state.refresh().await
    }

    /// Stops the refresh task without releasing (simulates a paused or dead holder).
    pub fn stop_refreshing(&self) {
        self.stop.notify_one();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            t.abort();
        }
    }

    /// Removes the lock if it is still ours. Errors if it was lost in the meantime.
    pub async fn release(&self) -> Result<()> {
        self.stop_refreshing();
        if let Some(e) = self.state.failure() {
            return Err(e);
        }
        let (info, version) = self.state.lock_current().clone();
        let tomb = encode(&tombstone(&info, self.state.opts.clock.now()))?;
        if let CasOutcome::Done(_) = self.state.cas.update(&version, tomb.clone()).await? {
            return Ok(());
        }
        // A refresh aborted mid-flight may still have landed: if the lock still names us
        // (and is live), release that version.
        if let Some((data, v)) = self.state.cas.read().await?
            && decode(&data, "").is_ok_and(|i| i.owner == info.owner && !i.released)
            && let CasOutcome::Done(_) = self.state.cas.update(&v, tomb).await?
        {
            return Ok(());
        }
        Err(self
            .state
            .fail("the lock was taken over or removed before release".into()))
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop_refreshing();
    }
}

async fn refresh_loop(state: Arc<State>, stop: Arc<Notify>, every: Duration) {
    // After a transient failure, retry sooner than the normal period so a short outage
    // does not eat the whole lease.
    let retry = every.min(Duration::from_secs(2));
    let mut wait = every;
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = match state.refresh().await {
            Ok(()) => every,
            Err(e @ Error::Deposed { .. }) => {
                tracing::error!(error = %e, "checkpoint lock lost");
                return;
            }
            Err(_) => retry,
        };
    }
}
