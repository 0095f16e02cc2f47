//! Frame decoder over a sequence of segment files, with etcd's end-of-file, size-limit,
//! torn-write and CRC rules. Reads with positional I/O through a reusable buffer
//! and never allocates more than the bytes left in the file.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::frame::{LEN_WORD, decode_len, is_torn};
use crate::pb::{CRC_TYPE, ProtoError, RecordRef, decode_record};
use crate::prefetch::{Prefetcher, RESERVE};
use crate::walk::chain_crc_record;

/// Read size for the decoder's buffer.
const CHUNK: usize = 2 << 20;
/// Segments at least this long are read ahead on a helper thread.
const PREFETCH_MIN: u64 = 4 * CHUNK as u64;

/// Positional reads from a segment image (a file, or bytes in memory).
pub(crate) trait ReadAt {
    /// Reads up to `buf.len()` bytes at `off`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize>;

    /// The underlying file, when there is one (enables read-ahead).
    fn as_file(&self) -> Option<&File> {
        None
    }
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
        read_at(self, buf, off)
    }

    fn as_file(&self) -> Option<&File> {
        Some(self)
    }
}

impl ReadAt for &[u8] {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// One file to decode: its path (for errors), an open handle, and how many bytes to look at.
#[derive(Clone, Copy)]
pub(crate) struct Seg<'a> {
    pub(crate) path: &'a Path,
    pub(crate) file: &'a dyn ReadAt,
    pub(crate) limit: u64,
}

/// Decoder state across files.
pub(crate) struct Decoder<'a> {
    segs: Vec<Seg<'a>>,
    cur: usize,
    last_valid_off: u64,
    crc: u32,
    max_record: u64,
    buf: Vec<u8>,
    /// Index in `buf` of the window's first byte (file offset `buf_off`).
    base: usize,
    /// Valid bytes in the window.
    filled: usize,
    buf_off: u64,
    /// Read-ahead helper, started on the first large segment.
    prefetch: Option<Prefetcher>,
    /// Read-ahead could not be used (no thread); do not try again.
    no_prefetch: bool,
    /// Per file: a duplicate handle for the read-ahead thread, made on first use.
    dups: Vec<Option<Arc<File>>>,
    /// A buffer for the next read-ahead.
    spare: Vec<u8>,
    /// End of the last whole valid record, per file (0 for files not reached).
    ends: Vec<u64>,
}

impl<'a> Decoder<'a> {
    /// A decoder with running CRC 0 (a fresh etcd decoder).
    pub(crate) fn new(segs: Vec<Seg<'a>>, max_record: u64) -> Self {
        let n = segs.len();
        Decoder {
            segs,
            cur: 0,
            last_valid_off: 0,
            crc: 0,
            max_record,
            buf: Vec::new(),
            base: 0,
            filled: 0,
            buf_off: 0,
            prefetch: None,
            no_prefetch: false,
            dups: vec![None; n],
            spare: Vec::new(),
            ends: vec![0; n],
        }
    }

    /// Current running CRC.
    pub(crate) fn crc(&self) -> u32 {
        self.crc
    }

    /// Offset after the last valid record in the current file.
    pub(crate) fn last_valid_off(&self) -> u64 {
        self.last_valid_off
    }

    /// Per-file end of the last whole valid record.
    pub(crate) fn ends(&self) -> &[u64] {
        &self.ends
    }

    fn advance_file(&mut self) -> bool {
        if self.cur + 1 >= self.segs.len() {
            self.cur = self.segs.len();
            return false;
        }
        self.cur += 1;
        self.last_valid_off = 0;
        self.base = 0;
        self.filled = 0;
        self.buf_off = 0;
        true
    }

    /// Makes `[off, off+len)` of the current file available in the buffer; false when the
    /// file turned out shorter than expected.
    fn fill(&mut self, file: &dyn ReadAt, off: u64, len: usize, limit: u64) -> Result<bool> {
        let have_end = self.buf_off + self.filled as u64;
        if off >= self.buf_off && off + len as u64 <= have_end {
            return Ok(true);
        }
        if self.take_prefetched(off, len, have_end) {
            self.read_ahead(file, limit);
            return Ok(true);
        }
        let want = (len.max(CHUNK) as u64).min(limit.saturating_sub(off)) as usize;
        let want = want.max(len);
        // Reuse the allocation: only grow (zero-filled) when a larger window is needed.
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        self.base = 0;
        self.filled = 0;
        self.buf_off = off;
        let mut got = 0usize;
        while got < want {
            match file.read_at(&mut self.buf[got..want], off + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Io {
                        context: format!("read {}", self.segs[self.cur].path.display()),
                        source,
                    });
                }
            }
        }
        self.filled = got;
        if got == want {
            self.read_ahead(file, limit);
        }
        Ok(got >= len)
    }

    /// Uses the chunk read ahead when it continues the window at `have_end` and, joined to
    /// the window's tail from `off`, covers `[off, off+len)`. Otherwise recycles it.
    fn take_prefetched(&mut self, off: u64, len: usize, have_end: u64) -> bool {
        let Some(pf) = self.prefetch.as_mut() else {
            return false;
        };
        if pf.pending().is_none() {
            return false;
        }
        let Some(mut chunk) = pf.take() else {
            return false;
        };
        let usable = chunk.seg == self.cur
            && chunk.off == have_end
            && off >= self.buf_off
            && off <= have_end
            && have_end - off <= RESERVE as u64
            && chunk
                .got
                .is_some_and(|got| off + len as u64 <= have_end + got as u64);
        let (Some(got), true) = (chunk.got, usable) else {
            self.spare = chunk.buf;
            return false;
        };
        let tail = (have_end - off) as usize;
        let from = self.base + (off - self.buf_off) as usize;
        chunk.buf[RESERVE - tail..RESERVE].copy_from_slice(&self.buf[from..from + tail]);
        self.spare = std::mem::replace(&mut self.buf, chunk.buf);
        self.base = RESERVE - tail;
        self.buf_off = off;
        self.filled = tail + got;
        true
    }

    /// Starts reading the chunk after the window, for large segments backed by a file.
    fn read_ahead(&mut self, file: &dyn ReadAt, limit: u64) {
        let end = self.buf_off + self.filled as u64;
        if self.no_prefetch || limit < PREFETCH_MIN || end >= limit {
            return;
        }
        let Some(f) = file.as_file() else {
            return;
        };
        if self.prefetch.is_none() {
            self.prefetch = Prefetcher::start();
            if self.prefetch.is_none() {
                self.no_prefetch = true;
                return;
            }
        }
        let dup = match &self.dups[self.cur] {
            Some(d) => d.clone(),
            None => match f.try_clone() {
                Ok(d) => {
                    let d = Arc::new(d);
                    self.dups[self.cur] = Some(d.clone());
                    d
                }
                Err(_) => return,
            },
        };
        let len = ((limit - end) as usize).min(CHUNK);
        let buf = std::mem::take(&mut self.spare);
        if let Some(pf) = self.prefetch.as_mut() {
            pf.request(self.cur, dup, end, len, buf);
        }
    }

    fn slice(&self, off: u64, len: usize) -> &[u8] {
        let start = self.base + (off - self.buf_off) as usize;
        &self.buf[start..start + len]
    }

    fn eof(&self, off: u64) -> Error {
        Error::UnexpectedEof {
            path: self.segs[self.cur].path.to_path_buf(),
            offset: off,
        }
    }

    /// Decodes the next record; `Ok(None)` at the end of the last file.
    pub(crate) fn next_record(&mut self) -> Result<Option<RecordRef<'_>>> {
        let (off, n, pad, is_last) = loop {
            let Some(seg) = self.segs.get(self.cur).copied() else {
                return Ok(None);
            };
            let off = self.last_valid_off;
            let left = seg.limit.saturating_sub(off);
            if left == 0 {
                if self.advance_file() {
                    continue;
                }
                return Ok(None);
            }
            if left < LEN_WORD {
                return Err(self.eof(off));
            }
            if !self.fill(seg.file, off, LEN_WORD as usize, seg.limit)? {
                return Err(self.eof(off));
            }
            let mut w = [0u8; 8];
            w.copy_from_slice(self.slice(off, 8));
            let word = u64::from_le_bytes(w);
            if word == 0 {
                if self.advance_file() {
                    continue;
                }
                return Ok(None);
            }
            let (n, pad) = frame_len(word, off, left, self.max_record, seg.path)?;
            if !self.fill(seg.file, off + LEN_WORD, (n + pad) as usize, seg.limit)? {
                return Err(self.eof(off));
            }
            break (
                off,
                n as usize,
                pad as usize,
                self.cur + 1 == self.segs.len(),
            );
        };
        let body_off = off + LEN_WORD;
        let start = self.base + (body_off - self.buf_off) as usize;
        let path = self.segs[self.cur].path;
        let checked = check_record(
            &self.buf[start..start + n + pad],
            n,
            is_last,
            &mut self.crc,
            path,
            off,
        )?;
        self.last_valid_off = off + LEN_WORD + (n + pad) as u64;
        self.ends[self.cur] = self.last_valid_off;
        let data = checked
            .data
            .map(|(s, l)| &self.buf[start + s..start + s + l]);
        Ok(Some(RecordRef {
            rtype: checked.rtype,
            crc: checked.crc,
            data,
        }))
    }
}

/// Record length and padding announced by the non-zero length `word` at `off`, checked
/// against the record limit and against the `left` bytes of the file from `off` — before
/// anything is allocated for the frame.
fn frame_len(word: u64, off: u64, left: u64, max_record: u64, path: &Path) -> Result<(u64, u64)> {
    let (n, pad) = decode_len(word);
    if n.saturating_add(pad) >= max_record {
        return Err(Error::MaxEntrySizeExceeded {
            path: path.to_path_buf(),
            offset: off,
            size: n,
        });
    }
    if n + pad > left.saturating_sub(LEN_WORD) {
        return Err(Error::UnexpectedEof {
            path: path.to_path_buf(),
            offset: off,
        });
    }
    Ok((n, pad))
}

/// A decoded, CRC-checked record; `data` is `(start, len)` within the frame it came from.
struct Checked {
    rtype: i64,
    crc: u32,
    data: Option<(usize, usize)>,
}

/// Decodes one frame's record and checks its CRC against the running CRC `running`
/// (advanced for every record but crc records, which the crc-record rule checks instead). `frame` is the `n` record bytes plus the
/// padding; it starts at file offset `off + LEN_WORD` of `path`. `is_last`: the frame is in
/// the last file, where a frame with a zeroed sector is a torn write (unexpected EOF).
fn check_record(
    frame: &[u8],
    n: usize,
    is_last: bool,
    running: &mut u32,
    path: &Path,
    off: u64,
) -> Result<Checked> {
    let body_off = off + LEN_WORD;
    let eof = || Error::UnexpectedEof {
        path: path.to_path_buf(),
        offset: off,
    };
    let torn = || is_last && is_torn(frame, body_off);
    let body = &frame[..n];
    let (rtype, crc, data) = match decode_record(body) {
        Ok(r) => {
            let data = r
                .data
                .map(|d| (d.as_ptr() as usize - body.as_ptr() as usize, d.len()));
            (r.rtype, r.crc, data)
        }
        Err(ProtoError::Truncated) => return Err(eof()),
        Err(ProtoError::Invalid(message)) => {
            if torn() {
                return Err(eof());
            }
            return Err(Error::Protobuf {
                message,
                path: path.to_path_buf(),
                offset: off,
            });
        }
    };
    if rtype == CRC_TYPE {
        chain_crc_record(running, crc, path, off)?;
    } else {
        let bytes = data.map_or(&[][..], |(s, l)| &body[s..s + l]);
        let next = crc32c::crc32c_append(*running, bytes);
        if next != crc {
            if torn() {
                return Err(eof());
            }
            return Err(Error::RecordCrcMismatch {
                path: path.to_path_buf(),
                offset: off,
            });
        }
        *running = next;
    }
    Ok(Checked { rtype, crc, data })
}

/// Streaming entry point: decodes one segment sequentially from a [`Read`] (no positional
/// reads, no look-back), with the same frame, size-limit, torn-write and CRC rules as
/// [`Decoder`]. Holds one record at a time: its buffer grows to the largest frame read,
/// and every length is checked against the record limit and the bytes left before it
/// grows. The running CRC is the caller's, so it chains across segments.
pub(crate) struct SegmentDecoder<'p, R> {
    path: &'p Path,
    src: R,
    /// Offset of the next length word.
    off: u64,
    /// Bytes of the segment to decode.
    limit: u64,
    is_last: bool,
    max_record: u64,
    buf: Vec<u8>,
    /// The record decoded last (its data within `buf`).
    current: Option<Checked>,
    done: bool,
}

impl<'p, R: Read> SegmentDecoder<'p, R> {
    /// Decodes the first `limit` bytes read from `src` (segment `path`); `is_last` when it
    /// is the last segment of the log.
    pub(crate) fn new(path: &'p Path, src: R, limit: u64, is_last: bool, max_record: u64) -> Self {
        SegmentDecoder {
            path,
            src,
            off: 0,
            limit,
            is_last,
            max_record,
            buf: Vec::new(),
            current: None,
            done: false,
        }
    }

    /// Bytes of record buffer currently allocated.
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn eof(&self, off: u64) -> Error {
        Error::UnexpectedEof {
            path: self.path.to_path_buf(),
            offset: off,
        }
    }

    /// Reads exactly `len` bytes into the front of the buffer; false on a short read.
    fn read_into_buf(&mut self, len: usize) -> Result<bool> {
        if self.buf.len() < len {
            // Exactly the frame: the buffer never holds more than the largest record.
            self.buf.reserve_exact(len - self.buf.len());
            self.buf.resize(len, 0);
        }
        match self.src.read_exact(&mut self.buf[..len]) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(source) => Err(Error::Io {
                context: format!("read {}", self.path.display()),
                source,
            }),
        }
    }

    /// Decodes the next record, advancing `running`; `Ok(None)` at the end of the segment
    /// (its limit, or a zero length word as etcd's decoder treats preallocated space).
    pub(crate) fn next_record(&mut self, running: &mut u32) -> Result<Option<RecordRef<'_>>> {
        if self.advance(running)? {
            Ok(self.record())
        } else {
            Ok(None)
        }
    }

    /// Decodes the next record into the decoder, advancing `running`; `Ok(false)` at the
    /// end of the segment. [`SegmentDecoder::record`] then returns it.
    pub(crate) fn advance(&mut self, running: &mut u32) -> Result<bool> {
        self.current = None;
        if self.done {
            return Ok(false);
        }
        let off = self.off;
        let left = self.limit.saturating_sub(off);
        if left == 0 {
            self.done = true;
            return Ok(false);
        }
        if left < LEN_WORD || !self.read_into_buf(LEN_WORD as usize)? {
            return Err(self.eof(off));
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.buf[..8]);
        let word = u64::from_le_bytes(w);
        if word == 0 {
            self.done = true;
            return Ok(false);
        }
        let (n, pad) = frame_len(word, off, left, self.max_record, self.path)?;
        let (n, pad) = (n as usize, pad as usize);
        if !self.read_into_buf(n + pad)? {
            return Err(self.eof(off));
        }
        let checked = check_record(
            &self.buf[..n + pad],
            n,
            self.is_last,
            running,
            self.path,
            off,
        )?;
        self.off = off + LEN_WORD + (n + pad) as u64;
        self.current = Some(checked);
        Ok(true)
    }

    /// The record decoded by the last successful [`SegmentDecoder::advance`].
    pub(crate) fn record(&self) -> Option<RecordRef<'_>> {
        self.current.as_ref().map(|c| RecordRef {
            rtype: c.rtype,
            crc: c.crc,
            data: c.data.map(|(s, l)| &self.buf[s..s + l]),
        })
    }
}

#[cfg(unix)]
pub(crate) fn read_at(file: &File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, off)
}

#[cfg(windows)]
pub(crate) fn read_at(file: &File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, off)
}
