//! ReadAll (spec §8.3): walk the records of the selected files and rebuild metadata, the
//! last hard state and the entries after the start snapshot, resolving raft overwrites.

use crate::decoder::Decoder;
use crate::error::{Error, Result};
use crate::pb::{
    CRC_TYPE, ENTRY_TYPE, Entry, HardState, METADATA_TYPE, SNAPSHOT_TYPE, STATE_TYPE, Snapshot,
    decode_payload,
};

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

/// End-of-log rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Read mode: a partial last record (unexpected EOF) ends the log normally.
    Read,
    /// Write mode: only a clean end is accepted.
    Write,
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

/// Runs ReadAll over `dec` for start snapshot `start`.
pub(crate) fn read_all(dec: &mut Decoder<'_>, start: Snapshot, mode: Mode) -> Result<ReadOutcome> {
    read_all_with(dec, start, mode, true)
}

/// ReadAll that may drop the entries as it goes (`keep_entries` false): every check is the
/// same (overwrite bounds included), only `contents.entries` stays empty, so a writer can
/// reopen a log of any size in constant memory.
pub(crate) fn read_all_with(
    dec: &mut Decoder<'_>,
    start: Snapshot,
    mode: Mode,
    keep_entries: bool,
) -> Result<ReadOutcome> {
    let mut metadata: Option<Vec<u8>> = None;
    let mut hardstate = HardState::default();
    let mut entries: Vec<Entry> = Vec::new();
    // Length `entries` would have (equal to it when entries are kept).
    let mut len = 0u64;
    let mut matched = false;
    let mut enti = 0u64;
    loop {
        let rec = match dec.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) if e.is_unexpected_eof() && mode == Mode::Read => break,
            Err(e) => return Err(e),
        };
        match rec.rtype {
            ENTRY_TYPE => {
                let e: Entry = decode_payload("entry", rec.data)?;
                if e.index > start.index {
                    let up = e.index - start.index - 1;
                    if up > len {
                        return Err(Error::SliceOutOfRange {
                            snapshot_index: start.index,
                            entry_index: e.index,
                            have: len,
                        });
                    }
                    len = up + 1;
                    enti = e.index;
                    if keep_entries {
                        entries.truncate(up as usize);
                        entries.push(e);
                    }
                } else {
                    enti = e.index;
                }
            }
            STATE_TYPE => hardstate = decode_payload("hardstate", rec.data)?,
            METADATA_TYPE => merge_metadata(&mut metadata, rec.data)?,
            CRC_TYPE => {
                let stored = rec.crc;
                if dec.crc() != 0 && stored != dec.crc() {
                    let (path, offset) = dec.last_record_at();
                    return Err(Error::CrcMismatch {
                        path: path.to_path_buf(),
                        offset,
                    });
                }
                dec.set_crc(stored);
            }
            SNAPSHOT_TYPE => matched |= matches_start(rec.data, start)?,
            other => return Err(Error::UnexpectedRecordType { record_type: other }),
        }
    }
    Ok(ReadOutcome {
        contents: WalContents {
            metadata,
            hardstate,
            entries,
            snapshot_found: matched,
        },
        last_entry_index: enti,
    })
}
