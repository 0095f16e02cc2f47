//! Record encoder: CRC chaining, framing, and a page-aligned write buffer.
//!
//! The buffer flushes in whole 4096-byte pages once it passes a 128 KiB watermark, and
//! fully on sync. Besides keeping writes sector-aligned, this reproduces *when* bytes reach
//! the file, which decides where etcd cuts segments (the cut check looks at the file
//! offset of flushed bytes), so our segments match etcd's byte for byte.

use std::fs::File;
use std::io;

use crate::frame::encode_len;
use crate::pb::encode_record;

/// Flush granularity: 8 sectors of 512 bytes.
pub(crate) const PAGE: u64 = 4096;
/// Buffered bytes before a flush is forced.
pub(crate) const WATERMARK: usize = 128 * 1024;

/// A write buffer in front of a file, writing at an explicit offset.
#[derive(Debug)]
pub(crate) struct PageWriter {
    buf: Vec<u8>,
    /// File offset at which the buffer's first byte will be written.
    flushed: u64,
}

impl PageWriter {
    pub(crate) fn new(offset: u64) -> Self {
        PageWriter {
            buf: Vec::with_capacity(WATERMARK + PAGE as usize),
            flushed: offset,
        }
    }

    /// Offset of the bytes already handed to the file (etcd's `Seek(0, SeekCurrent)`).
    pub(crate) fn flushed_offset(&self) -> u64 {
        self.flushed
    }

    /// Offset after every byte written so far, buffered or not.
    pub(crate) fn end_offset(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    pub(crate) fn write(&mut self, file: &File, mut p: &[u8]) -> io::Result<()> {
        loop {
            if p.len() + self.buf.len() <= WATERMARK {
                self.buf.extend_from_slice(p);
                return Ok(());
            }
            // Top up the partial page at the end of the buffer first, so flushes stay aligned.
            let slack = (PAGE - self.end_offset() % PAGE) as usize;
            if slack != PAGE as usize {
                let take = slack.min(p.len());
                self.buf.extend_from_slice(&p[..take]);
                p = &p[take..];
                if take < slack {
                    return Ok(());
                }
            }
            self.flush(file)?;
            if p.len() > PAGE as usize {
                let whole = p.len() / PAGE as usize * PAGE as usize;
                write_all_at(file, &p[..whole], self.flushed)?;
                self.flushed += whole as u64;
                p = &p[whole..];
            }
        }
    }

    /// Writes out everything buffered.
    pub(crate) fn flush(&mut self, file: &File) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        write_all_at(file, &self.buf, self.flushed)?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Encodes records into frames with a running CRC.
#[derive(Debug)]
pub(crate) struct Encoder {
    pub(crate) pw: PageWriter,
    crc: u32,
    scratch: Vec<u8>,
}

impl Encoder {
    /// An encoder writing at `offset` whose chain continues from `prev_crc`.
    pub(crate) fn new(offset: u64, prev_crc: u32) -> Self {
        Encoder {
            pw: PageWriter::new(offset),
            crc: prev_crc,
            scratch: Vec::new(),
        }
    }

    /// Running CRC after the last record encoded.
    pub(crate) fn crc(&self) -> u32 {
        self.crc
    }

    /// Appends one record; its `crc` field becomes the running CRC including `data`.
    pub(crate) fn encode(
        &mut self,
        file: &File,
        rtype: i64,
        data: Option<&[u8]>,
    ) -> io::Result<()> {
        if let Some(d) = data {
            self.crc = crc32c::crc32c_append(self.crc, d);
        }
        self.scratch.clear();
        encode_record(&mut self.scratch, rtype, self.crc, data);
        let (word, pad) = encode_len(self.scratch.len());
        self.pw.write(file, &word.to_le_bytes())?;
        self.scratch.resize(self.scratch.len() + pad, 0);
        let body = std::mem::take(&mut self.scratch);
        let r = self.pw.write(file, &body);
        self.scratch = body;
        r
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], off: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, off)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut off: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, buf, off)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        off += n as u64;
    }
    Ok(())
}
