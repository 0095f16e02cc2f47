//! Streaming reads: the entries of a [`ReadView`] one at a time, in log order, holding at
//! most one record in memory (plus a small read buffer) however large the log is.
//!
//! Records are decoded segment by segment from [`ViewSegment::reader`] (exactly the view's
//! valid bytes, through the handles opened with the view) with the same frame, size-limit,
//! torn-write and CRC rules as [`ReadView::read_all`], and the CRC chain is verified across
//! records and segments as `read_all` does. Unlike `read_all`, raft's overwrite of an
//! uncommitted suffix is *not* applied: an entry can only be yielded once, so by default an
//! entry whose index is not exactly the previous one plus 1 is an error (see
//! [`EntryStream::raw_indexes`] to opt out).

use std::fmt;
use std::io::BufReader;
use std::iter::FusedIterator;

use crate::decoder::SegmentDecoder;
use crate::error::{Error, Result};
use crate::pb::{
    CRC_TYPE, ENTRY_TYPE, Entry, HardState, METADATA_TYPE, SNAPSHOT_TYPE, STATE_TYPE, Snapshot,
    decode_payload,
};
use crate::read::{matches_start, merge_metadata};
use crate::view::{ReadView, SegmentReader, ViewSegment};

/// Capacity of the read buffer in front of each segment reader.
const READ_BUF: usize = 64 * 1024;

impl ReadView {
    /// Streams the view's entries after its start snapshot in log order, with the record
    /// limit the view was opened with. See [`EntryStream`].
    pub fn entries(&self) -> EntryStream<'_> {
        EntryStream {
            segments: self.segments(),
            start: self.start(),
            max_record: self.max_record(),
            next_seg: 0,
            cur: None,
            crc: 0,
            metadata: None,
            hardstate: HardState::default(),
            snapshot_found: false,
            last_index: None,
            yielded: 0,
            check_indexes: true,
            done: false,
        }
    }
}

/// A point-in-time stream of a [`ReadView`]'s entries (from [`ReadView::entries`]).
///
/// * Yields `Result<Entry>` in log order for entries with an index above the start
///   snapshot's, reading only the bytes the view saw at open time (a writer appending
///   meanwhile is invisible). Memory is one record plus a 64 KiB read buffer: every length
///   is checked against `max_record_bytes` and the bytes left in the segment before the
///   record buffer grows (see [`EntryStream::buffered_bytes`]).
/// * Checks exactly what [`ReadView::read_all`] checks: per-record CRCs and the CRC chain
///   across segments, metadata conflicts, a snapshot record at the start index with another
///   term, undecodable payloads, unknown record types. Any of these — and any byte of the
///   view that no longer decodes (the view holds only whole records, so a partial record is
///   corruption too) — is yielded as one `Err`, after which the stream ends. Corrupt bytes
///   are never returned as data and never panic.
/// * Does **not** apply raft's overwrite of an uncommitted suffix, which `read_all` does by
///   dropping entries already collected. By default each yielded entry's index must be
///   exactly the previous one plus 1 (the first: start index plus 1): a gap is
///   [`Error::SliceOutOfRange`] (as in `read_all`) and a repeated or lower index is
///   [`Error::EntryOverwrite`]. Logs that never overwrite (consecutive indexes, one term)
///   therefore stream exactly `read_all`'s entries. [`EntryStream::raw_indexes`] turns the
///   check off. Entries at or below the start index are skipped, as `read_all` does.
/// * Metadata, the last hard state and whether the start snapshot was matched are
///   available as the stream goes ([`EntryStream::metadata`], [`EntryStream::hardstate`],
///   [`EntryStream::snapshot_found`]); they are final once it returned `None`.
pub struct EntryStream<'a> {
    segments: &'a [ViewSegment],
    start: Snapshot,
    max_record: u64,
    next_seg: usize,
    cur: Option<SegmentDecoder<'a, BufReader<SegmentReader<'a>>>>,
    crc: u32,
    metadata: Option<Vec<u8>>,
    hardstate: HardState,
    snapshot_found: bool,
    last_index: Option<u64>,
    yielded: u64,
    check_indexes: bool,
    done: bool,
}

impl fmt::Debug for EntryStream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryStream")
            .field("start", &self.start)
            .field("segments", &self.segments.len())
            .field("next_seg", &self.next_seg)
            .field("last_index", &self.last_index)
            .field("check_indexes", &self.check_indexes)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl EntryStream<'_> {
    /// Opts out of the index check: yields every entry above the start index exactly as
    /// written, including entries that a later record overwrites and entries after a gap.
    pub fn raw_indexes(mut self) -> Self {
        self.check_indexes = false;
        self
    }

    /// The metadata record's data seen so far (`None` before it, or when it has none).
    pub fn metadata(&self) -> Option<&[u8]> {
        self.metadata.as_deref()
    }

    /// The last hard state seen so far (all zero before the first).
    pub fn hardstate(&self) -> HardState {
        self.hardstate
    }

    /// Whether a snapshot record matching the start snapshot was seen so far.
    pub fn snapshot_found(&self) -> bool {
        self.snapshot_found
    }

    /// Index of the last entry yielded, if any.
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }

    /// Bytes of buffer the stream holds right now: the current segment's read buffer plus
    /// its record buffer (the largest frame read from that segment). Never more than one
    /// record plus 64 KiB, whatever the size of the log.
    pub fn buffered_bytes(&self) -> usize {
        self.cur
            .as_ref()
            .map_or(0, |d| READ_BUF + d.buffer_capacity())
    }

    /// Reads records up to the next entry to yield; `Ok(None)` at the end of the view.
    fn step(&mut self) -> Result<Option<Entry>> {
        loop {
            if self.cur.is_none() {
                let Some(seg) = self.segments.get(self.next_seg) else {
                    return Ok(None);
                };
                let is_last = self.next_seg + 1 == self.segments.len();
                self.next_seg += 1;
                self.cur = Some(SegmentDecoder::new(
                    seg.path(),
                    BufReader::with_capacity(READ_BUF, seg.reader()),
                    seg.valid_len(),
                    is_last,
                    self.max_record,
                ));
            }
            let Some(dec) = self.cur.as_mut() else {
                continue;
            };
            let Some(rec) = dec.next_record(&mut self.crc)? else {
                self.cur = None;
                continue;
            };
            match rec.rtype {
                ENTRY_TYPE => {
                    let e: Entry = decode_payload("entry", rec.data)?;
                    if e.index <= self.start.index {
                        // Covered by the start snapshot: skipped, as read_all does.
                        continue;
                    }
                    if self.check_indexes {
                        let expected = self.last_index.unwrap_or(self.start.index) + 1;
                        if e.index > expected {
                            return Err(Error::SliceOutOfRange {
                                snapshot_index: self.start.index,
                                entry_index: e.index,
                                have: self.yielded,
                            });
                        }
                        if e.index < expected {
                            return Err(Error::EntryOverwrite {
                                entry_index: e.index,
                                last_index: expected - 1,
                            });
                        }
                    }
                    self.last_index = Some(e.index);
                    self.yielded += 1;
                    return Ok(Some(e));
                }
                STATE_TYPE => self.hardstate = decode_payload("hardstate", rec.data)?,
                METADATA_TYPE => merge_metadata(&mut self.metadata, rec.data)?,
                CRC_TYPE => {
                    // The crc record opening a segment carries the running CRC of the
                    // previous one; a fresh chain (running CRC 0) adopts it.
                    let stored = rec.crc;
                    if self.crc != 0 && stored != self.crc {
                        let offset = dec.last_record_off();
                        let path = self
                            .segments
                            .get(self.next_seg.saturating_sub(1))
                            .map(|s| s.path().to_path_buf())
                            .unwrap_or_default();
                        return Err(Error::CrcMismatch { path, offset });
                    }
                    self.crc = stored;
                }
                SNAPSHOT_TYPE => self.snapshot_found |= matches_start(rec.data, self.start)?,
                other => return Err(Error::UnexpectedRecordType { record_type: other }),
            }
        }
    }
}

impl Iterator for EntryStream<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                self.cur = None;
                None
            }
            Err(e) => {
                self.done = true;
                self.cur = None;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for EntryStream<'_> {}
