//! Reading a live member's WAL from a given index, read-only and without blocking etcd.
//!
//! The segments that may hold entries after `after` are opened through a private directory
//! of symbolic links renamed `0-0`, `1-1`, … so the WAL reader starts at the first selected
//! segment whatever its real name, and never trips over a snapshot record it does not know
//! the term of. The files are the member's own: the view's shared OFD locks land on them,
//! so etcd's purge cannot delete a segment the view holds. Entries are returned only when
//! committed (index ≤ the last hard state's commit); raft's overwrite of an uncommitted
//! suffix is applied as etcd's reader does.

use std::path::Path;

use snapshotd_wal::{Entry, ReadView, Snapshot, list_segments, open_for_read, segment_name};

use crate::error::{Error, Result};

/// What one read of the member's WAL found.
#[derive(Debug)]
pub struct SourceRead {
    /// The point-in-time view; it holds shared locks on segments no writer held.
    _view: ReadView,
    /// Keeps the link directory alive as long as the view.
    _links: tempfile::TempDir,
    /// The member's metadata record.
    pub metadata: Vec<u8>,
    /// Committed entries after `after`, consecutive (bounded by `max_bytes`).
    pub committed: Vec<Entry>,
    /// Indexes that were purged before they could be read: `(from, to)` inclusive.
    pub gap: Option<(u64, u64)>,
    /// True when a writer (etcd) held the newest segment while the view was opened.
    pub writer_live: bool,
    /// The member's commit index as of the view.
    pub commit: u64,
    /// Shared OFD locks on `.snap` files not archived yet (set by the caller).
    pub snap_locks: Vec<std::fs::File>,
}

/// Takes a shared OFD lock on every `member/snap/*.snap` file of `snap_dir` for which
/// `archived` is false, so etcd's purge (which try-locks each file exclusively and stops at
/// the first it cannot lock) keeps them until they are archived. A file gone meanwhile, or
/// being deleted by the purge right now, is skipped.
pub fn lock_snaps(snap_dir: &Path, archived: impl Fn(&str) -> bool) -> Result<Vec<std::fs::File>> {
    let rd = match std::fs::read_dir(snap_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", snap_dir)(e)),
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| crate::layout::parse_snap_file(n).is_some() && !archived(n))
        .collect();
    names.sort();
    let mut locks = Vec::new();
    for n in names {
        let path = snap_dir.join(&n);
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("open", path)(e)),
        };
        if snapshotd_wal::ofd::try_lock_shared(&f).map_err(Error::io("lock", &path))? {
            locks.push(f);
        }
    }
    Ok(locks)
}

/// Opens `wal_dir` and returns the committed entries after index `after`, stopping once
/// `max_bytes` of entry data were collected. Retries when etcd purges or cuts a segment
/// while the view is being opened.
pub fn read_committed(wal_dir: &Path, after: u64, max_bytes: u64) -> Result<SourceRead> {
    let mut attempt = 0;
    loop {
        match read_once(wal_dir, after, max_bytes) {
            Err(Error::Wal { .. } | Error::Io { .. }) if attempt < 3 => attempt += 1,
            other => return other,
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn read_once(wal_dir: &Path, after: u64, max_bytes: u64) -> Result<SourceRead> {
    let ctx = || format!("read {}", wal_dir.display());
    // Links must point at absolute paths: they live in another directory.
    let wal_dir = &std::path::absolute(wal_dir).map_err(Error::io("resolve", wal_dir))?;
    let names = list_segments(wal_dir).map_err(Error::wal(ctx()))?;
    // Entry after+1 lives in the newest segment whose name index is <= after+1.
    let start = names.iter().rposition(|s| s.index <= after + 1);
    let covered = start.is_some();
    let selected = &names[start.unwrap_or(0)..];
    let links = tempfile::tempdir().map_err(Error::io("create temp dir", std::env::temp_dir()))?;
    for (i, s) in selected.iter().enumerate() {
        let link = links.path().join(segment_name(i as u64, i as u64));
        std::os::unix::fs::symlink(wal_dir.join(&s.name), &link)
            .map_err(Error::io("symlink", link))?;
    }
    let view = open_for_read(links.path(), Snapshot::new(0, 0)).map_err(Error::wal(ctx()))?;
    let writer_live = view.segments().last().is_some_and(|s| !s.is_locked());
    let purged_before = (!covered).then(|| names.first().map_or(0, |s| s.index));
    let (committed, gap, commit, metadata) =
        collect(&view, wal_dir, after, purged_before, max_bytes)?;
    Ok(SourceRead {
        _view: view,
        _links: links,
        metadata,
        committed,
        gap,
        writer_live,
        commit,
        snap_locks: Vec::new(),
    })
}

type Collected = (Vec<Entry>, Option<(u64, u64)>, u64, Vec<u8>);

fn collect(
    view: &ReadView,
    wal_dir: &Path,
    after: u64,
    purged_before: Option<u64>,
    max_bytes: u64,
) -> Result<Collected> {
    let mut stream = view.entries().raw_indexes();
    let mut committed: Vec<Entry> = Vec::new();
    let mut pending: Vec<Entry> = Vec::new();
    let mut gap = None;
    let mut bytes = 0u64;
    let mut full = false;
    while let Some(e) = stream.next() {
        let e = e.map_err(Error::wal(format!("read {}", wal_dir.display())))?;
        if e.index <= after || full {
            continue;
        }
        let next = pending
            .last()
            .or(committed.last())
            .map_or(after + 1, |p| p.index + 1);
        if e.index < next {
            // Raft replaced an uncommitted suffix; committed entries never change.
            let floor = committed.last().map_or(after, |c| c.index);
            if e.index <= floor {
                return Err(Error::Corrupt {
                    name: wal_dir.display().to_string(),
                    reason: format!("entry {} rewrites committed index {floor}", e.index),
                });
            }
            pending.retain(|p| p.index < e.index);
        } else if e.index > next {
            // At the start of what is read, a jump is entries the member never logged (its
            // WAL starts after a snapshot: a restored member, or a follower sent a leader
            // snapshot) or purged ones: a gap. Further on it is damage.
            if committed.len() + pending.len() > 0 {
                return Err(Error::Wal {
                    context: format!("read {}", wal_dir.display()),
                    source: snapshotd_wal::Error::SliceOutOfRange {
                        snapshot_index: after,
                        entry_index: e.index,
                        have: (committed.len() + pending.len()) as u64,
                    },
                });
            }
            gap = Some((next, e.index - 1));
        }
        pending.push(e);
        let commit = stream.hardstate().commit;
        while pending.first().is_some_and(|p| p.index <= commit) {
            let p = pending.remove(0);
            bytes += p.data.as_ref().map_or(0, |d| d.len() as u64) + 32;
            committed.push(p);
        }
        full = bytes >= max_bytes;
    }
    let commit = stream.hardstate().commit;
    committed.extend(pending.into_iter().filter(|p| p.index <= commit));
    if let Some(first_kept) = purged_before
        && gap.is_none()
        && committed.is_empty()
        && first_kept > after + 1
    {
        // Nothing readable yet after the purge point: the purged range is still a gap.
        gap = Some((after + 1, first_kept - 1));
    }
    let metadata = stream.metadata().unwrap_or_default().to_vec();
    Ok((committed, gap, commit, metadata))
}

/// The member and cluster ids from the metadata of the newest segment of `wal_dir`.
pub fn member_ids(wal_dir: &Path) -> Result<(u64, u64)> {
    let names =
        list_segments(wal_dir).map_err(Error::wal(format!("read {}", wal_dir.display())))?;
    let after = names.last().map_or(0, |s| s.index);
    let read = read_committed(wal_dir, after, 0)?;
    let meta = crate::pb::decode_metadata(&read.metadata).ok_or_else(|| Error::NotADataDir {
        path: wal_dir.to_path_buf(),
        reason: "the WAL metadata is not an etcd member's (NodeID, ClusterID)".into(),
    })?;
    Ok((meta.node_id, meta.cluster_id))
}
