//! Verify, ValidSnapshotEntries, Repair and purge: etcd's maintenance operations on a
//! closed (or live, read-only) log.

use std::io;
use std::path::{Path, PathBuf};

use crate::decoder::{Decoder, Seg};
use crate::error::{Error, Result, io_err};
use crate::fsutil::{datasync, lock_exclusive, open_ro, open_rw, try_lock_exclusive};
use crate::names::{list_segments, select_segments};
use crate::options::WalOptions;
use crate::pb::{
    CRC_TYPE, ENTRY_TYPE, HardState, METADATA_TYPE, SNAPSHOT_TYPE, STATE_TYPE, Snapshot,
    decode_payload,
};
use crate::read::{matches_start, merge_metadata};
use crate::walk::{EndOfLog, Walker};

fn open_all(
    dir: &Path,
    names: &[crate::names::SegmentName],
) -> Result<Vec<(PathBuf, std::fs::File, u64)>> {
    let mut out = Vec::with_capacity(names.len());
    for s in names {
        let path = dir.join(&s.name);
        let file = open_ro(&path)?;
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        out.push((path, file, len));
    }
    Ok(out)
}

fn segs(files: &[(PathBuf, std::fs::File, u64)]) -> Vec<Seg<'_>> {
    files
        .iter()
        .map(|(p, f, l)| Seg {
            path: p,
            file: f,
            limit: *l,
        })
        .collect()
}

/// etcd's `Verify`: reads (without locks) from the file selected by `snap`, checking
/// metadata consistency, crc records, record CRCs and that `snap` is present with the right
/// term. Entry and state contents are not decoded. A partial last record is fine.
pub fn verify(dir: impl AsRef<Path>, snap: Snapshot) -> Result<()> {
    verify_with(dir, snap, &WalOptions::default())
}

/// [`verify`] for a log written with `opts` (only `max_record_bytes` matters: a log written
/// with a larger record limit needs that limit to be read).
pub fn verify_with(dir: impl AsRef<Path>, snap: Snapshot, opts: &WalOptions) -> Result<()> {
    let dir = dir.as_ref();
    let names = list_segments(dir)?;
    let selected = select_segments(&names, snap.index)?;
    let files = open_all(dir, selected)?;
    let dec = Decoder::new(segs(&files), opts.max_record_bytes);
    let mut walk = Walker::new(dec, EndOfLog::TornTailEnds);
    let mut metadata: Option<Vec<u8>> = None;
    let mut matched = false;
    while let Some(rec) = walk.next_record()? {
        match rec.rtype {
            METADATA_TYPE => merge_metadata(&mut metadata, rec.data)?,
            SNAPSHOT_TYPE => matched |= matches_start(rec.data, snap)?,
            ENTRY_TYPE | STATE_TYPE | CRC_TYPE => {}
            other => return Err(Error::UnexpectedRecordType { record_type: other }),
        }
    }
    if matched {
        Ok(())
    } else {
        Err(Error::SnapshotNotFound)
    }
}

/// etcd's `ValidSnapshotEntries`: every snapshot record in the whole log (from the first
/// file, read-only) whose index is at most the last hard state's commit, in log order.
pub fn valid_snapshot_entries(dir: impl AsRef<Path>) -> Result<Vec<Snapshot>> {
    valid_snapshot_entries_with(dir, &WalOptions::default())
}

/// [`valid_snapshot_entries`] for a log written with `opts`.
pub fn valid_snapshot_entries_with(
    dir: impl AsRef<Path>,
    opts: &WalOptions,
) -> Result<Vec<Snapshot>> {
    let dir = dir.as_ref();
    let names = list_segments(dir)?;
    let files = open_all(dir, &names)?;
    let dec = Decoder::new(segs(&files), opts.max_record_bytes);
    let mut walk = Walker::new(dec, EndOfLog::TornTailEnds);
    let mut snaps = Vec::new();
    let mut state = HardState::default();
    while let Some(rec) = walk.next_record()? {
        match rec.rtype {
            SNAPSHOT_TYPE => snaps.push(decode_payload::<Snapshot>("snapshot", rec.data)?),
            STATE_TYPE => state = decode_payload("hardstate", rec.data)?,
            _ => {}
        }
    }
    snaps.retain(|s| s.index <= state.commit);
    Ok(snaps)
}

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The last segment ends cleanly; nothing changed.
    Clean,
    /// A partial or torn last record was cut off.
    Truncated {
        /// The repaired segment.
        path: PathBuf,
        /// The untouched copy made before truncating (`<segment>.broken`).
        broken_copy: PathBuf,
        /// New length of the segment (end of its last valid record).
        valid_len: u64,
    },
}

/// etcd's `Repair`: only the last segment; waits for its lock. A torn or partial last record
/// is cut off after copying the file to `<name>.broken`; any other error (CRC mismatch,
/// bad record, crc-record mismatch, size limit) is returned unrepaired.
pub fn repair(dir: impl AsRef<Path>) -> Result<RepairOutcome> {
    repair_with(dir, &WalOptions::default())
}

/// [`repair`] for a log written with `opts` (only `max_record_bytes` matters).
pub fn repair_with(dir: impl AsRef<Path>, opts: &WalOptions) -> Result<RepairOutcome> {
    repair_inner(dir.as_ref(), opts, true)
}

/// Like [`repair`] but fails with [`Error::Locked`] instead of waiting when a writer holds
/// the last segment.
pub fn try_repair(dir: impl AsRef<Path>) -> Result<RepairOutcome> {
    try_repair_with(dir, &WalOptions::default())
}

/// [`try_repair`] for a log written with `opts` (only `max_record_bytes` matters).
pub fn try_repair_with(dir: impl AsRef<Path>, opts: &WalOptions) -> Result<RepairOutcome> {
    repair_inner(dir.as_ref(), opts, false)
}

fn repair_inner(dir: &Path, opts: &WalOptions, wait: bool) -> Result<RepairOutcome> {
    let names = list_segments(dir)?;
    let last = names.last().ok_or(Error::FileNotFound)?;
    let path = dir.join(&last.name);
    let file = open_rw(&path, false, false)?;
    if wait {
        lock_exclusive(&file, &path)?;
    } else {
        try_lock_exclusive(&file, &path)?;
    }
    let len = file.metadata().map_err(io_err("stat", &path))?.len();
    let seg = Seg {
        path: &path,
        file: &file,
        limit: len,
    };
    let mut walk = Walker::new(
        Decoder::new(vec![seg], opts.max_record_bytes),
        EndOfLog::TornTailEnds,
    );
    while walk.next_record()?.is_some() {}
    // The torn record starts where the last valid one ends.
    let Some(&(_, valid_len)) = walk.torn_tail() else {
        return Ok(RepairOutcome::Clean);
    };
    drop(walk);
    let broken = PathBuf::from(format!("{}.broken", path.display()));
    copy_file(&file, &broken).map_err(io_err("copy to", &broken))?;
    file.set_len(valid_len).map_err(io_err("truncate", &path))?;
    datasync(&file, &path)?;
    tracing::info!(path = %path.display(), valid_len, "repaired WAL tail");
    Ok(RepairOutcome::Truncated {
        path,
        broken_copy: broken,
        valid_len,
    })
}

fn copy_file(src: &std::fs::File, dst: &Path) -> io::Result<()> {
    let mut out = std::fs::File::create(dst)?;
    let mut r = src;
    io::Seek::seek(&mut r, io::SeekFrom::Start(0))?;
    io::copy(&mut r, &mut out)?;
    out.sync_all()
}

/// Deletes the oldest segments while more than `max_files` remain, like etcd's purge loop:
/// each file is try-locked exclusively first and the pass stops at the first one that is
/// still locked (by a writer or a [`crate::ReadView`]). Returns the deleted paths.
pub fn purge(dir: impl AsRef<Path>, max_files: usize) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let mut names: Vec<String> = Vec::new();
    for ent in std::fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let ent = ent.map_err(io_err("read directory", dir))?;
        if let Some(n) = ent.file_name().to_str()
            && n.ends_with("wal")
        {
            names.push(n.to_owned());
        }
    }
    names.sort();
    let mut removed = Vec::new();
    let excess = names.len().saturating_sub(max_files);
    for name in names.into_iter().take(excess) {
        let path = dir.join(&name);
        let file = open_rw(&path, false, false)?;
        match try_lock_exclusive(&file, &path) {
            Ok(()) => {}
            Err(Error::Locked { .. }) => {
                tracing::info!(path = %path.display(), "purge stopped at a locked segment");
                break;
            }
            Err(e) => return Err(e),
        }
        std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
        drop(file);
        removed.push(path);
    }
    Ok(removed)
}

/// What [`verify_log`] found in a healthy log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSummary {
    /// Number of segment files.
    pub segments: usize,
    /// Records decoded (all types).
    pub records: u64,
    /// Entry records decoded.
    pub entry_records: u64,
    /// Index of the last entry record (0 if none).
    pub last_entry_index: u64,
    /// Snapshot records decoded.
    pub snapshots: u64,
    /// The last hard state.
    pub hardstate: HardState,
    /// Where a partial or torn last record starts, if the log ends with one (etcd accepts
    /// this in read mode and repairs it on the next write-mode open).
    pub torn_tail: Option<(PathBuf, u64)>,
}

/// Checks the whole log from its first segment without needing a start snapshot: contiguous
/// sequence numbers, every frame, record CRCs, the CRC chain across segments, consistent
/// metadata and known record types.
pub fn verify_log(dir: impl AsRef<Path>) -> Result<LogSummary> {
    verify_log_with(dir, &WalOptions::default())
}

/// [`verify_log`] for a log written with `opts` (only `max_record_bytes` matters).
pub fn verify_log_with(dir: impl AsRef<Path>, opts: &WalOptions) -> Result<LogSummary> {
    let dir = dir.as_ref();
    let names = list_segments(dir)?;
    for w in names.windows(2) {
        if w[0].seq.wrapping_add(1) != w[1].seq {
            return Err(Error::FileNotFound);
        }
    }
    let files = open_all(dir, &names)?;
    let dec = Decoder::new(segs(&files), opts.max_record_bytes);
    let mut walk = Walker::new(dec, EndOfLog::TornTailEnds);
    let mut sum = LogSummary {
        segments: names.len(),
        ..LogSummary::default()
    };
    let mut metadata: Option<Vec<u8>> = None;
    while let Some(rec) = walk.next_record()? {
        sum.records += 1;
        match rec.rtype {
            METADATA_TYPE => merge_metadata(&mut metadata, rec.data)?,
            CRC_TYPE => {}
            SNAPSHOT_TYPE => {
                decode_payload::<Snapshot>("snapshot", rec.data)?;
                sum.snapshots += 1;
            }
            ENTRY_TYPE => {
                let e: crate::pb::Entry = decode_payload("entry", rec.data)?;
                sum.entry_records += 1;
                sum.last_entry_index = e.index;
            }
            STATE_TYPE => sum.hardstate = decode_payload("hardstate", rec.data)?,
            other => return Err(Error::UnexpectedRecordType { record_type: other }),
        }
    }
    sum.torn_tail = walk.torn_tail().cloned();
    Ok(sum)
}
