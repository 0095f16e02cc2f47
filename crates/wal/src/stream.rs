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
use std::iter::FusedIterator;

use crate::error::{Error, Result};
use crate::pb::{Entry, HardState, Snapshot};
use crate::read::LogState;
use crate::view::ReadView;
use crate::walk::{EndOfLog, ViewSource, Walker};

impl ReadView {
    /// Streams the view's entries after its start snapshot in log order, with the record
    /// limit the view was opened with. See [`EntryStream`].
    pub fn entries(&self) -> EntryStream<'_> {
        // The view holds only whole records, so a partial one is corruption: strict end.
        let source = ViewSource::new(self.segments(), self.max_record());
        EntryStream {
            walk: Walker::new(source, EndOfLog::Strict),
            segments: self.segments().len(),
            start: self.start(),
            state: LogState::default(),
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
    walk: Walker<ViewSource<'a>>,
    segments: usize,
    start: Snapshot,
    state: LogState,
    last_index: Option<u64>,
    yielded: u64,
    check_indexes: bool,
    done: bool,
}

impl fmt::Debug for EntryStream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryStream")
            .field("start", &self.start)
            .field("segments", &self.segments)
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
        self.state.metadata.as_deref()
    }

    /// The last hard state seen so far (all zero before the first).
    pub fn hardstate(&self) -> HardState {
        self.state.hardstate
    }

    /// Whether a snapshot record matching the start snapshot was seen so far.
    pub fn snapshot_found(&self) -> bool {
        self.state.snapshot_found
    }

    /// Index of the last entry yielded, if any.
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }

    /// Bytes of buffer the stream holds right now: the current segment's read buffer plus
    /// its record buffer (the largest frame read from that segment). Never more than one
    /// record plus 64 KiB, whatever the size of the log.
    pub fn buffered_bytes(&self) -> usize {
        self.walk.source().buffered_bytes()
    }

    /// Reads records up to the next entry to yield; `Ok(None)` at the end of the view.
    fn step(&mut self) -> Result<Option<Entry>> {
        while let Some(rec) = self.walk.next_record()? {
            let Some(e) = self.state.absorb(&rec, self.start)? else {
                continue;
            };
            if e.index <= self.start.index {
                // Covered by the start snapshot: skipped, as read_all does.
                continue;
            }
            if self.check_indexes {
                self.check_next(e.index)?;
            }
            self.last_index = Some(e.index);
            self.yielded += 1;
            return Ok(Some(e));
        }
        Ok(None)
    }

    /// An entry's index must be the previous one plus 1 (a gap or an overwrite is an error).
    fn check_next(&self, index: u64) -> Result<()> {
        let expected = self.last_index.unwrap_or(self.start.index) + 1;
        if index > expected {
            return Err(Error::SliceOutOfRange {
                snapshot_index: self.start.index,
                entry_index: index,
                have: self.yielded,
            });
        }
        if index < expected {
            return Err(Error::EntryOverwrite {
                entry_index: index,
                last_index: expected - 1,
            });
        }
        Ok(())
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
                self.walk.source_mut().close();
                None
            }
            Err(e) => {
                self.done = true;
                self.walk.source_mut().close();
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for EntryStream<'_> {}
