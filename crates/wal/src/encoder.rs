//! Record encoder: CRC chaining, framing, one contiguous write buffer, and a model of
//! etcd's page writer.
//!
//! etcd's encoder writes each frame through a page writer that flushes whole 4096-byte
//! pages once it passes a 128 KiB watermark. *When* bytes reach the file decides where etcd
//! cuts segments (the cut check looks at the file offset of flushed bytes), so
//! [`PageModel`] replays that arithmetic exactly, without I/O. The bytes themselves go into
//! one buffer, encoded with a single copy of each payload, and reach the file in large
//! page-aligned writes: at every sync, and whenever [`SPILL`] bytes are pending, in which
//! case writeback of the spilled pages is started at once so that it overlaps the encoding
//! of the rest of the save and the final fdatasync has less to wait for.

use std::fs::File;
use std::io;

use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

use crate::frame::encode_len;
use crate::pb::{ENTRY_TYPE, Entry};

/// etcd's flush granularity: 8 sectors of 512 bytes.
pub(crate) const PAGE: u64 = 4096;
/// etcd's page-writer watermark: buffered bytes before a flush is forced.
pub(crate) const WATERMARK: u64 = 128 * 1024;
/// Pending bytes after which whole pages are written out and their writeback started.
pub(crate) const SPILL: usize = 256 * 1024;
/// Buffer capacity kept after a flush (a huge record's buffer is released).
const KEEP_CAPACITY: usize = 4 * SPILL;

/// etcd's page writer reduced to its offsets: how far the file would have been written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageModel {
    /// Offset up to which etcd would have handed bytes to the file.
    flushed: u64,
    /// Bytes etcd would still hold in its buffer.
    buffered: u64,
}

impl PageModel {
    fn new(offset: u64) -> Self {
        PageModel {
            flushed: offset,
            buffered: 0,
        }
    }

    fn end(&self) -> u64 {
        self.flushed + self.buffered
    }

    /// One `Write(p)` of `n` bytes on etcd's page writer.
    fn write(&mut self, mut n: u64) {
        loop {
            if n + self.buffered <= WATERMARK {
                self.buffered += n;
                return;
            }
            // Top up the partial page at the end of the buffer first, so flushes stay aligned.
            let slack = PAGE - self.end() % PAGE;
            if slack != PAGE {
                let take = slack.min(n);
                self.buffered += take;
                n -= take;
                if take < slack {
                    return;
                }
            }
            self.flush();
            if n > PAGE {
                let whole = n / PAGE * PAGE;
                self.flushed += whole;
                n -= whole;
            }
        }
    }

    fn flush(&mut self) {
        self.flushed += self.buffered;
        self.buffered = 0;
    }
}

/// Encodes records into frames with a running CRC, buffering them for the file.
#[derive(Debug)]
pub(crate) struct Encoder {
    crc: u32,
    model: PageModel,
    /// Encoded bytes not yet written to the file.
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    written: u64,
    /// Whether to start writeback of spilled pages (off when fsync is disabled).
    writeback: bool,
    /// Scratch for an entry's header fields.
    hdr: Vec<u8>,
}

impl Encoder {
    /// An encoder writing at `offset` whose chain continues from `prev_crc`.
    pub(crate) fn new(offset: u64, prev_crc: u32, writeback: bool) -> Self {
        Encoder {
            crc: prev_crc,
            model: PageModel::new(offset),
            buf: Vec::new(),
            written: offset,
            writeback,
            hdr: Vec::with_capacity(48),
        }
    }

    /// Running CRC after the last record encoded.
    pub(crate) fn crc(&self) -> u32 {
        self.crc
    }

    /// Offset etcd would have flushed to (its `Seek(0, SeekCurrent)`): the cut check.
    pub(crate) fn flushed_offset(&self) -> u64 {
        self.model.flushed
    }

    /// Offset after every byte encoded so far, written or not.
    pub(crate) fn end_offset(&self) -> u64 {
        self.written + self.buf.len() as u64
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
        let len = data.map(<[u8]>::len);
        let rec = record_head_len(rtype, self.crc, len) + len.unwrap_or(0);
        let (word, pad) = encode_len(rec);
        self.buf.reserve(8 + rec + pad);
        self.buf.extend_from_slice(&word.to_le_bytes());
        push_record_head(&mut self.buf, rtype, self.crc, len);
        if let Some(d) = data {
            self.buf.extend_from_slice(d);
        }
        self.finish_frame(file, rec, pad)
    }

    /// Appends an entry record, copying its payload once (same bytes as encoding the entry
    /// with prost and passing it to [`Encoder::encode`]).
    pub(crate) fn encode_entry(&mut self, file: &File, e: &Entry) -> io::Result<()> {
        let mut hdr = std::mem::take(&mut self.hdr);
        hdr.clear();
        prost::encoding::int32::encode(1, &e.r#type, &mut hdr);
        prost::encoding::uint64::encode(2, &e.term, &mut hdr);
        prost::encoding::uint64::encode(3, &e.index, &mut hdr);
        let data = e.data.as_deref();
        if let Some(d) = data {
            encode_key(4, WireType::LengthDelimited, &mut hdr);
            encode_varint(d.len() as u64, &mut hdr);
        }
        let body = data.unwrap_or_default();
        self.crc = crc32c::crc32c_append(self.crc, &hdr);
        self.crc = crc32c::crc32c_append(self.crc, body);
        let len = hdr.len() + body.len();
        let rec = record_head_len(ENTRY_TYPE, self.crc, Some(len)) + len;
        let (word, pad) = encode_len(rec);
        self.buf.reserve(8 + rec + pad);
        self.buf.extend_from_slice(&word.to_le_bytes());
        push_record_head(&mut self.buf, ENTRY_TYPE, self.crc, Some(len));
        self.buf.extend_from_slice(&hdr);
        self.buf.extend_from_slice(body);
        self.hdr = hdr;
        self.finish_frame(file, rec, pad)
    }

    /// Pads the frame just appended, advances the page model by etcd's two writes (length
    /// word, then record plus padding) and spills whole pages when enough is pending.
    fn finish_frame(&mut self, file: &File, rec: usize, pad: usize) -> io::Result<()> {
        self.buf.resize(self.buf.len() + pad, 0);
        self.model.write(8);
        self.model.write((rec + pad) as u64);
        if self.buf.len() >= SPILL {
            self.spill(file)?;
        }
        Ok(())
    }

    /// Writes the pending whole pages and starts their writeback.
    fn spill(&mut self, file: &File) -> io::Result<()> {
        let end = self.end_offset();
        let n = (end / PAGE * PAGE).saturating_sub(self.written) as usize;
        if n == 0 {
            return Ok(());
        }
        write_all_at(file, &self.buf[..n], self.written)?;
        if self.writeback
            && let Err(e) = crate::sys::start_writeback(file, self.written, n as u64)
        {
            // Advisory only (e.g. unsupported by the filesystem): stop asking.
            tracing::debug!(error = %e, "sync_file_range failed; fdatasync will do the work");
            self.writeback = false;
        }
        self.written += n as u64;
        self.buf.drain(..n);
        Ok(())
    }

    /// Records etcd's page-writer flush in the model only: the bytes stay pending until the
    /// next [`Encoder::flush`] or spill (group commit writes many saves at once).
    pub(crate) fn mark_flushed(&mut self) {
        self.model.flush();
    }

    /// Writes out everything pending (etcd's page-writer flush).
    pub(crate) fn flush(&mut self, file: &File) -> io::Result<()> {
        self.model.flush();
        if self.buf.is_empty() {
            return Ok(());
        }
        write_all_at(file, &self.buf, self.written)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(KEEP_CAPACITY);
        }
        Ok(())
    }
}

/// Size of a record's fields before its data bytes (type, crc, and data key + length).
fn record_head_len(rtype: i64, crc: u32, data_len: Option<usize>) -> usize {
    let mut n = 2 + encoded_len_varint(rtype as u64) + encoded_len_varint(u64::from(crc));
    if let Some(l) = data_len {
        n += 1 + encoded_len_varint(l as u64);
    }
    n
}

/// Appends a record's fields before its data bytes (gogo's `Record.Marshal` order).
fn push_record_head(out: &mut Vec<u8>, rtype: i64, crc: u32, data_len: Option<usize>) {
    out.push(0x08);
    encode_varint(rtype as u64, out);
    out.push(0x10);
    encode_varint(u64::from(crc), out);
    if let Some(l) = data_len {
        out.push(0x1a);
        encode_varint(l as u64, out);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::encode_record;
    use prost::Message;

    fn frames_via_prost(entries: &[Entry]) -> Vec<u8> {
        let mut crc = 7u32;
        let mut out = Vec::new();
        for e in entries {
            let b = e.encode_to_vec();
            crc = crc32c::crc32c_append(crc, &b);
            let mut rec = Vec::new();
            encode_record(&mut rec, ENTRY_TYPE, crc, Some(&b));
            let (word, pad) = encode_len(rec.len());
            out.extend_from_slice(&word.to_le_bytes());
            out.extend_from_slice(&rec);
            out.resize(out.len() + pad, 0);
        }
        out
    }

    #[test]
    fn entry_fast_path_matches_prost_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let mut entries = Vec::new();
        for (i, size) in [0usize, 1, 7, 100, 127, 128, 1000, 16384, 300_000]
            .into_iter()
            .enumerate()
        {
            let mut e = Entry::new(u64::MAX - i as u64, i as u64 * 1000, vec![i as u8; size]);
            e.r#type = [0, 1, 2, -1][i % 4];
            entries.push(e);
        }
        entries.push(Entry {
            r#type: 0,
            term: 0,
            index: 0,
            data: None,
        });
        let mut enc = Encoder::new(0, 7, false);
        for e in &entries {
            enc.encode_entry(&file, e).unwrap();
        }
        enc.flush(&file).unwrap();
        let on_disk = std::fs::read(dir.path().join("f")).unwrap();
        assert_eq!(on_disk, frames_via_prost(&entries));
        assert_eq!(enc.end_offset(), on_disk.len() as u64);
    }
}
