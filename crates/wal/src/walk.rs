//! The one record walker: every reader of the log (read-all, views, entry streams, verify,
//! repair, the fuzz entry) takes its records from a [`Walker`], which owns the two rules
//! that decide what a sequence of frames means:
//!
//! * **CRC records** ([`chain_crc_record`], applied by both frame decoders as they decode):
//!   the crc record opening a segment carries the running CRC of everything before it. A
//!   running CRC of 0 (a fresh decoder) adopts the stored value; any other running CRC must
//!   equal it, or the log is corrupt ([`Error::CrcMismatch`]).
//! * **End of log** ([`EndOfLog`]): a partial or torn last record either ends the log
//!   normally (etcd's read mode, remembered as the torn tail) or is an error (write mode,
//!   views that hold only whole records).

use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::decoder::{Decoder, SegmentDecoder};
use crate::error::{Error, Result};
use crate::pb::RecordRef;
use crate::view::{SegmentReader, ViewSegment};

/// What a partial or torn last record means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndOfLog {
    /// Read mode: a partial last record (unexpected EOF) ends the log normally.
    TornTailEnds,
    /// Write mode: only a clean end is accepted.
    Strict,
}

/// Applies the crc-record rule to a crc record storing `stored`, found at `off` of `path`,
/// with `running` the CRC of every record before it; afterwards `running` is `stored`.
pub(crate) fn chain_crc_record(
    running: &mut u32,
    stored: u32,
    path: &Path,
    off: u64,
) -> Result<()> {
    if *running != 0 && stored != *running {
        return Err(Error::CrcMismatch {
            path: path.to_path_buf(),
            offset: off,
        });
    }
    *running = stored;
    Ok(())
}

/// Something that decodes CRC-checked records in log order (crc records already chained).
pub(crate) trait RecordSource {
    /// The next record; `Ok(None)` at a clean end of the log.
    fn next_record(&mut self) -> Result<Option<RecordRef<'_>>>;
}

impl RecordSource for Decoder<'_> {
    fn next_record(&mut self) -> Result<Option<RecordRef<'_>>> {
        Decoder::next_record(self)
    }
}

/// Walks the records of a [`RecordSource`] under an [`EndOfLog`] policy.
pub(crate) struct Walker<S> {
    src: S,
    end: EndOfLog,
    torn_tail: Option<(PathBuf, u64)>,
}

impl<S: RecordSource> Walker<S> {
    /// A walker over `src` ending the log as `end` says.
    pub(crate) fn new(src: S, end: EndOfLog) -> Self {
        Walker {
            src,
            end,
            torn_tail: None,
        }
    }

    /// The next record; `Ok(None)` at the end of the log (clean, or a torn tail that the
    /// policy accepts). Any error ends the walk.
    pub(crate) fn next_record(&mut self) -> Result<Option<RecordRef<'_>>> {
        if self.torn_tail.is_some() {
            return Ok(None);
        }
        match self.src.next_record() {
            Ok(r) => Ok(r),
            Err(Error::UnexpectedEof { path, offset }) if self.end == EndOfLog::TornTailEnds => {
                self.torn_tail = Some((path, offset));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Where the partial or torn last record starts (the end of the last valid record of
    /// its segment), when the walk ended on one.
    pub(crate) fn torn_tail(&self) -> Option<&(PathBuf, u64)> {
        self.torn_tail.as_ref()
    }

    /// The source, for its position after the walk.
    pub(crate) fn source(&self) -> &S {
        &self.src
    }

    /// The source, mutably (to release its buffers).
    pub(crate) fn source_mut(&mut self) -> &mut S {
        &mut self.src
    }
}

/// Capacity of the read buffer in front of each streamed segment.
pub(crate) const STREAM_READ_BUF: usize = 64 * 1024;

/// Streaming source over a view's segments: one [`SegmentDecoder`] at a time, the running
/// CRC carried across segments.
pub(crate) struct ViewSource<'a> {
    segments: &'a [ViewSegment],
    next_seg: usize,
    cur: Option<SegmentDecoder<'a, BufReader<SegmentReader<'a>>>>,
    crc: u32,
    max_record: u64,
}

impl<'a> ViewSource<'a> {
    /// A source reading exactly the valid bytes of `segments`.
    pub(crate) fn new(segments: &'a [ViewSegment], max_record: u64) -> Self {
        ViewSource {
            segments,
            next_seg: 0,
            cur: None,
            crc: 0,
            max_record,
        }
    }

    /// Bytes of buffer held right now (read buffer plus record buffer of the open segment).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.cur
            .as_ref()
            .map_or(0, |d| STREAM_READ_BUF + d.buffer_capacity())
    }

    /// Drops the open segment's buffers.
    pub(crate) fn close(&mut self) {
        self.cur = None;
        self.next_seg = self.segments.len();
    }
}

impl RecordSource for ViewSource<'_> {
    fn next_record(&mut self) -> Result<Option<RecordRef<'_>>> {
        loop {
            if self.cur.is_none() {
                let Some(seg) = self.segments.get(self.next_seg) else {
                    return Ok(None);
                };
                let is_last = self.next_seg + 1 == self.segments.len();
                self.next_seg += 1;
                self.cur = Some(SegmentDecoder::new(
                    seg.path(),
                    BufReader::with_capacity(STREAM_READ_BUF, seg.reader()),
                    seg.valid_len(),
                    is_last,
                    self.max_record,
                ));
            }
            let Some(dec) = self.cur.as_mut() else {
                continue;
            };
            if dec.advance(&mut self.crc)? {
                return Ok(self.cur.as_ref().and_then(|d| d.record()));
            }
            self.cur = None;
        }
    }
}

/// Source over one [`SegmentDecoder`] (the fuzz entry compares it with [`Decoder`]).
pub(crate) struct OneSegment<'p, R> {
    dec: SegmentDecoder<'p, R>,
    crc: u32,
}

impl<'p, R> OneSegment<'p, R> {
    /// Decodes `dec` from a running CRC of 0.
    pub(crate) fn new(dec: SegmentDecoder<'p, R>) -> Self {
        OneSegment { dec, crc: 0 }
    }
}

impl<R: std::io::Read> RecordSource for OneSegment<'_, R> {
    fn next_record(&mut self) -> Result<Option<RecordRef<'_>>> {
        self.dec.next_record(&mut self.crc)
    }
}
