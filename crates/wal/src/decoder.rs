//! Frame decoder over a sequence of segment files, with etcd's end-of-file, size-limit,
//! torn-write and CRC rules (spec §7). Reads with positional I/O through a reusable buffer
//! and never allocates more than the bytes left in the file.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};
use crate::frame::{LEN_WORD, decode_len, is_torn};
use crate::pb::{CRC_TYPE, ProtoError, RecordRef, decode_record};

/// Read size for the decoder's buffer.
const CHUNK: usize = 2 << 20;

/// Positional reads from a segment image (a file, or bytes in memory).
pub(crate) trait ReadAt {
    /// Reads up to `buf.len()` bytes at `off`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
        read_at(self, buf, off)
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
    /// Valid bytes at the start of `buf`.
    filled: usize,
    buf_off: u64,
    /// End of the last whole valid record, per file (0 for files not reached).
    ends: Vec<u64>,
    /// Index of the file that holds the record returned last, and its offset.
    rec_seg: usize,
    rec_off: u64,
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
            filled: 0,
            buf_off: 0,
            ends: vec![0; n],
            rec_seg: 0,
            rec_off: 0,
        }
    }

    /// Current running CRC.
    pub(crate) fn crc(&self) -> u32 {
        self.crc
    }

    /// Adopts a crc record's value as the running CRC.
    pub(crate) fn set_crc(&mut self, crc: u32) {
        self.crc = crc;
    }

    /// Offset after the last valid record in the current file.
    pub(crate) fn last_valid_off(&self) -> u64 {
        self.last_valid_off
    }

    /// Per-file end of the last whole valid record.
    pub(crate) fn ends(&self) -> &[u64] {
        &self.ends
    }

    /// Path and offset of the record returned last (for error context).
    pub(crate) fn last_record_at(&self) -> (&'a Path, u64) {
        let p = self
            .segs
            .get(self.rec_seg)
            .map_or(Path::new(""), |s| s.path);
        (p, self.rec_off)
    }

    fn advance_file(&mut self) -> bool {
        if self.cur + 1 >= self.segs.len() {
            self.cur = self.segs.len();
            return false;
        }
        self.cur += 1;
        self.last_valid_off = 0;
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
        let want = (len.max(CHUNK) as u64).min(limit.saturating_sub(off)) as usize;
        let want = want.max(len);
        // Reuse the allocation: only grow (zero-filled) when a larger window is needed.
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
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
        Ok(got >= len)
    }

    fn slice(&self, off: u64, len: usize) -> &[u8] {
        let start = (off - self.buf_off) as usize;
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
            let (n, pad) = decode_len(word);
            if n.saturating_add(pad) >= self.max_record {
                return Err(Error::MaxEntrySizeExceeded {
                    path: seg.path.to_path_buf(),
                    offset: off,
                    size: n,
                });
            }
            // Bounded by the bytes left in the file before anything is allocated.
            if n + pad > left - LEN_WORD {
                return Err(self.eof(off));
            }
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
        let torn = |d: &Self| is_last && is_torn(d.slice(body_off, n + pad), body_off);
        let path = self.segs[self.cur].path;
        let parsed = decode_record(self.slice(body_off, n));
        let (rtype, crc, has_data, data_range) = match parsed {
            Ok(r) => {
                let range = r.data.map(|d| {
                    let start = d.as_ptr() as usize - self.buf.as_ptr() as usize;
                    (start, d.len())
                });
                (r.rtype, r.crc, r.data.is_some(), range)
            }
            Err(ProtoError::Truncated) => return Err(self.eof(off)),
            Err(ProtoError::Invalid(message)) => {
                if torn(self) {
                    return Err(self.eof(off));
                }
                return Err(Error::Protobuf {
                    message,
                    path: path.to_path_buf(),
                    offset: off,
                });
            }
        };
        let data: Option<&[u8]> = data_range.map(|(s, l)| &self.buf[s..s + l]);
        if rtype != CRC_TYPE {
            let next = crc32c::crc32c_append(self.crc, data.unwrap_or_default());
            if next != crc {
                if torn(self) {
                    return Err(self.eof(off));
                }
                return Err(Error::RecordCrcMismatch {
                    path: path.to_path_buf(),
                    offset: off,
                });
            }
            self.crc = next;
        }
        self.last_valid_off = off + LEN_WORD + (n + pad) as u64;
        self.ends[self.cur] = self.last_valid_off;
        self.rec_seg = self.cur;
        self.rec_off = off;
        let data = if has_data {
            data_range.map(|(s, l)| &self.buf[s..s + l])
        } else {
            None
        };
        Ok(Some(RecordRef { rtype, crc, data }))
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, off)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, off)
}
