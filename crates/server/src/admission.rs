//! Connection admission: the global and per-peer connection caps, and eviction of connections
//! that have not sent a complete request yet (idle ones first, oldest first), so that idle or
//! trickling connections can never lock legitimate clients out.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// A connection still reading its request is only evicted after this long in that phase, so a
/// client whose request is on its way is not cut off by the next connection.
const READING_GRACE: Duration = Duration::from_secs(1);

/// Refused connections handled at once to tell opted-in clients "busy"; beyond, a plain close.
pub(crate) const BUSY_SLOTS: usize = 64;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Accepted (or in its TLS handshake), no request byte read yet.
    Idle,
    /// The mux byte arrived; the rest of the request is being read.
    Reading,
    /// The request was decoded and is being served; never evicted.
    Serving,
}

#[derive(Debug)]
struct Entry {
    peer: IpAddr,
    phase: Phase,
    since: Instant,
    evict: CancellationToken,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    conns: BTreeMap<u64, Entry>,
    per_peer: HashMap<IpAddr, usize>,
    busy: usize,
}

impl Table {
    fn forget(&mut self, id: u64) -> Option<Entry> {
        let entry = self.conns.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&entry.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(&entry.peer);
            }
        }
        Some(entry)
    }

    /// Evicts the oldest idle connection (of `peer` when given), else the oldest one that has
    /// been reading its request for longer than [`READING_GRACE`]. False when none qualifies.
    fn evict_one(&mut self, peer: Option<IpAddr>, now: Instant) -> bool {
        let mine = |e: &Entry| peer.is_none_or(|p| p == e.peer);
        let idle = self
            .conns
            .iter()
            .find(|(_, e)| mine(e) && e.phase == Phase::Idle);
        let victim = idle.or_else(|| {
            self.conns.iter().find(|(_, e)| {
                mine(e) && e.phase == Phase::Reading && now.duration_since(e.since) >= READING_GRACE
            })
        });
        let Some((&id, _)) = victim else {
            return false;
        };
        if let Some(entry) = self.forget(id) {
            entry.evict.cancel();
            metrics::counter!(crate::metrics::EVICTED_CONNECTIONS).increment(1);
        }
        true
    }
}

/// The admission table shared by the accept loop and the connection tasks.
#[derive(Debug)]
pub(crate) struct Admission {
    table: Mutex<Table>,
    max: usize,
    per_peer: usize,
}

/// The accept loop's decision for a new connection.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Serve it.
    Slot(Slot),
    /// Every slot is serving: tell the client "busy" if it opted in to error replies.
    Busy(BusySlot),
    /// Every slot is serving and too many refusals are in progress: close at once.
    Refused,
}

impl Admission {
    /// A table for `max` connections, `per_peer` of them from one address.
    pub(crate) fn new(max: usize, per_peer: usize) -> Arc<Self> {
        Arc::new(Admission {
            table: Mutex::new(Table::default()),
            max: max.max(1),
            per_peer: per_peer.clamp(1, max.max(1)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `peer`, evicting a connection without a complete request
    /// when a cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Admit {
        let now = Instant::now();
        let mut t = self.lock();
        let peer_full = t.per_peer.get(&peer).copied().unwrap_or(0) >= self.per_peer;
        let global = || {
            format!(
                "all {} connections have requests in progress; retry later or raise the \
                 server's max-connections",
                self.max
            )
        };
        let full = if peer_full && !t.evict_one(Some(peer), now) {
            Some(if self.per_peer < self.max {
                format!(
                    "all {} connections allowed from {peer} have requests in progress; retry later",
                    self.per_peer
                )
            } else {
                global()
            })
        } else if t.conns.len() >= self.max && !t.evict_one(None, now) {
            Some(global())
        } else {
            None
        };
        if let Some(limit) = full {
            if t.busy >= BUSY_SLOTS {
                return Admit::Refused;
            }
            t.busy += 1;
            return Admit::Busy(BusySlot {
                admission: Arc::clone(self),
                limit,
            });
        }
        let id = t.next_id;
        t.next_id += 1;
        let evict = CancellationToken::new();
        t.conns.insert(
            id,
            Entry {
                peer,
                phase: Phase::Idle,
                since: now,
                evict: evict.clone(),
            },
        );
        *t.per_peer.entry(peer).or_insert(0) += 1;
        Admit::Slot(Slot {
            admission: Arc::clone(self),
            id,
            evict,
        })
    }

    /// Connections holding a slot.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().conns.len()
    }
}

/// An admitted connection's place in the table; freed on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    id: u64,
    evict: CancellationToken,
}

impl Slot {
    /// Records that the connection entered `phase`.
    pub(crate) fn enter(&self, phase: Phase) {
        let mut t = self.admission.lock();
        if let Some(e) = t.conns.get_mut(&self.id) {
            e.phase = phase;
            e.since = Instant::now();
        }
    }

    /// Cancelled when a newer connection took this one's place.
    pub(crate) fn evicted(&self) -> &CancellationToken {
        &self.evict
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.lock().forget(self.id);
    }
}

/// One of the [`BUSY_SLOTS`] refusals in progress; freed on drop.
#[derive(Debug)]
pub(crate) struct BusySlot {
    admission: Arc<Admission>,
    limit: String,
}

impl BusySlot {
    /// Which limit was reached and what to do, for the busy reply.
    pub(crate) fn limit(&self) -> &str {
        &self.limit
    }
}

impl Drop for BusySlot {
    fn drop(&mut self) {
        let mut t = self.admission.lock();
        t.busy = t.busy.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn slot(a: Admit) -> Slot {
        match a {
            Admit::Slot(s) => s,
            other => panic!("expected a slot, got {other:?}"),
        }
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_is_evicted() {
        let adm = Admission::new(3, 3);
        let s1 = slot(adm.admit(A));
        let s2 = slot(adm.admit(A));
        let s3 = slot(adm.admit(A));
        s1.enter(Phase::Serving);
        let s4 = slot(adm.admit(B));
        assert!(!s1.evicted().is_cancelled(), "serving is never evicted");
        assert!(s2.evicted().is_cancelled(), "oldest idle goes first");
        assert!(!s3.evicted().is_cancelled());
        assert_eq!(adm.len(), 3);
        drop(s2);
        assert_eq!(adm.len(), 3, "dropping an evicted slot frees nothing twice");
        drop((s3, s4));
        assert_eq!(adm.len(), 1);
    }

    #[test]
    fn when_every_slot_serves_new_connections_get_busy_then_refused() {
        let adm = Admission::new(2, 2);
        let held: Vec<Slot> = (0..2).map(|_| slot(adm.admit(A))).collect();
        held.iter().for_each(|s| s.enter(Phase::Serving));
        let busy: Vec<Admit> = (0..BUSY_SLOTS).map(|_| adm.admit(B)).collect();
        assert!(busy.iter().all(|a| matches!(a, Admit::Busy(_))));
        assert!(matches!(adm.admit(B), Admit::Refused));
        drop(busy);
        assert!(matches!(adm.admit(B), Admit::Busy(_)));
        drop(held);
        assert!(matches!(adm.admit(B), Admit::Slot(_)));
    }

    #[test]
    fn a_full_peer_evicts_its_own_connections_not_others() {
        let adm = Admission::new(10, 2);
        let other = slot(adm.admit(B));
        let a1 = slot(adm.admit(A));
        let _a2 = slot(adm.admit(A));
        let _a3 = slot(adm.admit(A));
        assert!(a1.evicted().is_cancelled());
        assert!(!other.evicted().is_cancelled());
        assert_eq!(adm.len(), 3);
    }

    #[test]
    fn a_fresh_reading_connection_is_kept_until_its_grace_ends() {
        let adm = Admission::new(1, 1);
        let s = slot(adm.admit(A));
        s.enter(Phase::Reading);
        assert!(matches!(adm.admit(A), Admit::Busy(_)));
        assert!(!s.evicted().is_cancelled());
        let later = Instant::now() + READING_GRACE;
        assert!(adm.lock().evict_one(None, later));
        assert!(s.evicted().is_cancelled());
    }
}
