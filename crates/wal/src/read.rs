//! ReadAll: walk the records of the selected files and rebuild metadata, the last hard
//! state and the entries after the start snapshot, resolving raft overwrites.

use crate::error::{Error, Result};
use crate::pb::{
    CRC_TYPE, ENTRY_TYPE, Entry, HardState, METADATA_TYPE, RecordRef, SNAPSHOT_TYPE, STATE_TYPE,
    Snapshot, decode_payload,
};
use crate::walk::{RecordSource, Walker};

/// What a read of the log returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalContents {
    /// The metadata given to `create` (`None` if no metadata record was read, or if it was
    /// written without a data field).
    pub metadata: Option<Vec<u8>>,
    /// The last hard state in the read range (all zero if none).
    pub hardstate: HardState,
    /// Entries after the start snapshot, with overwritten suffixes already dropped.
    pub entries: Vec<Entry>,
    /// Whether a snapshot record matching the start snapshot was seen. etcd's read-mode
    /// `ReadAll` reports `wal: snapshot not found` when this is false (and still returns
    /// the data); write-mode `ReadAll` in 3.4 does not report it.
    pub snapshot_found: bool,
}

impl WalContents {
    /// Returns [`Error::SnapshotNotFound`] when no record matched the start snapshot.
    pub fn require_snapshot(self) -> Result<Self> {
        if self.snapshot_found {
            Ok(self)
        } else {
            Err(Error::SnapshotNotFound)
        }
    }
}

/// ReadAll's result plus the writer-relevant state.
pub(crate) struct ReadOutcome {
    pub(crate) contents: WalContents,
    /// Index of the last entry record seen (etcd's `enti`).
    pub(crate) last_entry_index: u64,
}

/// A metadata record: the first one is kept, a later one with other bytes is
/// [`Error::MetadataConflict`].
pub(crate) fn merge_metadata(seen: &mut Option<Vec<u8>>, data: Option<&[u8]>) -> Result<()> {
    if let Some(m) = seen
        && m.as_slice() != data.unwrap_or_default()
    {
        return Err(Error::MetadataConflict);
    }
    *seen = data.map(<[u8]>::to_vec);
    Ok(())
}

/// A snapshot record against the start snapshot: `true` when it is the start snapshot,
/// [`Error::SnapshotMismatch`] when its index matches with another term.
pub(crate) fn matches_start(data: Option<&[u8]>, start: Snapshot) -> Result<bool> {
    let s: Snapshot = decode_payload("snapshot", data)?;
    if s.index != start.index {
        return Ok(false);
    }
    if s.term != start.term {
        return Err(Error::SnapshotMismatch);
    }
    Ok(true)
}

/// What the records other than entries say, folded in as a walk goes: the first metadata
/// (a later, different one is [`Error::MetadataConflict`]), the last hard state, and
/// whether a snapshot record matched the start snapshot.
#[derive(Debug, Default)]
pub(crate) struct LogState {
    /// Metadata record data seen so far.
    pub(crate) metadata: Option<Vec<u8>>,
    /// The last hard state seen so far.
    pub(crate) hardstate: HardState,
    /// Whether the start snapshot was matched so far.
    pub(crate) snapshot_found: bool,
}

impl LogState {
    /// Folds `rec` in; an entry record is returned decoded for the caller to place. Crc
    /// records were chained by the decoder; unknown types are errors.
    pub(crate) fn absorb(&mut self, rec: &RecordRef<'_>, start: Snapshot) -> Result<Option<Entry>> {
        match rec.rtype {
            ENTRY_TYPE => return Ok(Some(decode_payload("entry", rec.data)?)),
            STATE_TYPE => self.hardstate = decode_payload("hardstate", rec.data)?,
            METADATA_TYPE => merge_metadata(&mut self.metadata, rec.data)?,
            CRC_TYPE => {}
            SNAPSHOT_TYPE => self.snapshot_found |= matches_start(rec.data, start)?,
            other => return Err(Error::UnexpectedRecordType { record_type: other }),
        }
        Ok(None)
    }
}

/// Runs ReadAll over `walk` for start snapshot `start`.
pub(crate) fn read_all<S: RecordSource>(
    walk: &mut Walker<S>,
    start: Snapshot,
) -> Result<ReadOutcome> {
    read_all_with(walk, start, true)
}

/// ReadAll that may drop the entries as it goes (`keep_entries` false): every check is the
/// same (overwrite bounds included), only `contents.entries` stays empty, so a writer can
/// reopen a log of any size in constant memory.
///
/// Raft overwrites: an entry with index `i` above the start snapshot replaces every entry
/// from `i` on; an index past the next free slot is [`Error::SliceOutOfRange`].
pub(crate) fn read_all_with<S: RecordSource>(
    walk: &mut Walker<S>,
    start: Snapshot,
    keep_entries: bool,
) -> Result<ReadOutcome> {
    let mut state = LogState::default();
    let mut entries: Vec<Entry> = Vec::new();
    // Length `entries` would have (equal to it when entries are kept).
    let mut len = 0u64;
    let mut enti = 0u64;
    while let Some(rec) = walk.next_record()? {
        let Some(e) = state.absorb(&rec, start)? else {
            continue;
        };
        enti = e.index;
        if e.index <= start.index {
            continue;
        }
        let up = e.index - start.index - 1;
        if up > len {
            return Err(Error::SliceOutOfRange {
                snapshot_index: start.index,
                entry_index: e.index,
                have: len,
            });
        }
        len = up + 1;
        if keep_entries {
            entries.truncate(up as usize);
            entries.push(e);
        }
    }
    Ok(ReadOutcome {
        contents: WalContents {
            metadata: state.metadata,
            hardstate: state.hardstate,
            entries,
            snapshot_found: state.snapshot_found,
        },
        last_entry_index: enti,
    })
}
