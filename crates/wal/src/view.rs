//! Read-only opens: a lock-free reader (etcd's `OpenForRead`) and the point-in-time view
//! used by backups.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::decoder::{Decoder, Seg};
use crate::error::{Result, io_err};
use crate::fsutil::open_ro;
use crate::names::{list_segments, select_segments};
use crate::options::WalOptions;
use crate::pb::Snapshot;
use crate::read::{WalContents, read_all};
use crate::sys::{self, LockKind, TryLock};
use crate::walk::{EndOfLog, Walker};

/// One opened segment file.
#[derive(Debug)]
struct Opened {
    path: PathBuf,
    seq: u64,
    index: u64,
    file: File,
    len: u64,
}

fn open_selected(dir: &Path, snap: Snapshot) -> Result<Vec<Opened>> {
    let names = list_segments(dir)?;
    let selected = select_segments(&names, snap.index)?;
    let mut out = Vec::with_capacity(selected.len());
    for s in selected {
        let path = dir.join(&s.name);
        let file = open_ro(&path)?;
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        out.push(Opened {
            path,
            seq: s.seq,
            index: s.index,
            file,
            len,
        });
    }
    Ok(out)
}

fn segs_of<'a>(files: &'a [Opened], limits: Option<&[u64]>) -> Vec<Seg<'a>> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| Seg {
            path: &f.path,
            file: &f.file,
            limit: limits.and_then(|l| l.get(i).copied()).unwrap_or(f.len),
        })
        .collect()
}

/// A WAL opened read-only without any lock (etcd's `OpenForRead`): safe next to a running
/// writer, including a live etcd. Call [`WalReader::read_all`] once.
#[derive(Debug)]
pub struct WalReader {
    start: Snapshot,
    files: Vec<Opened>,
    max_record: u64,
}

impl WalReader {
    /// Opens the files selected for `snap` read-only.
    pub fn open(dir: impl AsRef<Path>, snap: Snapshot) -> Result<WalReader> {
        Self::open_with(dir, snap, &WalOptions::default())
    }

    /// Same as [`WalReader::open`] with explicit options (only `max_record_bytes` matters).
    pub fn open_with(
        dir: impl AsRef<Path>,
        snap: Snapshot,
        opts: &WalOptions,
    ) -> Result<WalReader> {
        Ok(WalReader {
            start: snap,
            files: open_selected(dir.as_ref(), snap)?,
            max_record: opts.max_record_bytes,
        })
    }

    /// Paths of the files this reader will read.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }

    /// Read-mode `ReadAll`: a partial last record ends the log normally.
    pub fn read_all(self) -> Result<WalContents> {
        let dec = Decoder::new(segs_of(&self.files, None), self.max_record);
        let mut walk = Walker::new(dec, EndOfLog::TornTailEnds);
        Ok(read_all(&mut walk, self.start)?.contents)
    }
}

/// One segment of a [`ReadView`].
#[derive(Debug)]
pub struct ViewSegment {
    path: PathBuf,
    seq: u64,
    index: u64,
    file: File,
    valid_len: u64,
    locked: bool,
}

impl ViewSegment {
    /// Path of the segment file when the view was opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Segment sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Raft index in the segment's name.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Bytes from offset 0 that hold only whole, CRC-valid records (no zero tail, no
    /// partial record). Shipping exactly these bytes yields a valid segment.
    pub fn valid_len(&self) -> u64 {
        self.valid_len
    }

    /// Whether this view holds a shared OFD lock on the file (false when a writer held it
    /// exclusively at open time; the writer's own lock then keeps purge away while it
    /// holds it, and the view's open handle keeps the bytes readable in any case).
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// A reader over exactly the first [`ViewSegment::valid_len`] bytes, through the handle
    /// opened with the view (works even if the path has since been unlinked).
    pub fn reader(&self) -> SegmentReader<'_> {
        SegmentReader {
            file: &self.file,
            pos: 0,
            end: self.valid_len,
        }
    }
}

/// Reads the valid prefix of a [`ViewSegment`].
#[derive(Debug)]
pub struct SegmentReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for SegmentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = (left.min(buf.len() as u64)) as usize;
        let got = read_at(self.file, &mut buf[..n], self.pos)?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += got as u64;
        Ok(got)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, off)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, off)
}

/// A consistent, point-in-time read-only view of a WAL (what a backup ships).
///
/// Opening never blocks and never disturbs a writer: every selected segment is opened
/// read-only and, where no writer holds it, share-locked (OFD `F_RDLCK`), so a purge —
/// ours or etcd's, which try-lock exclusively — cannot delete it until the view is dropped.
/// The valid length of each segment is fixed at open time: the view covers whole,
/// CRC-checked records only, even while a writer keeps appending.
#[derive(Debug)]
pub struct ReadView {
    start: Snapshot,
    segments: Vec<ViewSegment>,
    max_record: u64,
}

/// Re-reads of a tail segment that showed a hard error, to ride out a concurrent write
/// that was observed half-copied.
const TAIL_RETRIES: u32 = 3;

/// Opens a point-in-time view of the WAL in `dir` starting at `snap` (default options).
pub fn open_for_read(dir: impl AsRef<Path>, snap: Snapshot) -> Result<ReadView> {
    open_for_read_with(dir, snap, &WalOptions::default())
}

/// Opens a point-in-time view with explicit options. Fails on corruption (anything other
/// than a partial last record).
pub fn open_for_read_with(
    dir: impl AsRef<Path>,
    snap: Snapshot,
    opts: &WalOptions,
) -> Result<ReadView> {
    let dir = dir.as_ref();
    let files = open_selected(dir, snap)?;
    let mut locked = Vec::with_capacity(files.len());
    for f in &files {
        let got = sys::try_lock(&f.file, LockKind::Shared).map_err(io_err("lock", &f.path))?;
        locked.push(got == TryLock::Acquired);
    }
    let mut attempt = 0;
    let ends = loop {
        match scan(&files, opts.max_record_bytes) {
            Ok(ends) => break ends,
            Err(e) if attempt < TAIL_RETRIES && !locked.last().copied().unwrap_or(true) => {
                tracing::debug!(error = %e, "re-reading live WAL tail");
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    };
    let segments = files
        .into_iter()
        .zip(locked)
        .zip(ends)
        .map(|((f, locked), valid_len)| ViewSegment {
            path: f.path,
            seq: f.seq,
            index: f.index,
            file: f.file,
            valid_len,
            locked,
        })
        .collect();
    Ok(ReadView {
        start: snap,
        segments,
        max_record: opts.max_record_bytes,
    })
}

/// Decodes frames and the CRC chain; returns per-file valid lengths.
fn scan(files: &[Opened], max_record: u64) -> Result<Vec<u64>> {
    let dec = Decoder::new(segs_of(files, None), max_record);
    let mut walk = Walker::new(dec, EndOfLog::TornTailEnds);
    while walk.next_record()?.is_some() {}
    Ok(walk.source().ends().to_vec())
}

impl ReadView {
    /// The segments of the view, oldest first.
    pub fn segments(&self) -> &[ViewSegment] {
        &self.segments
    }

    /// The start snapshot the view was opened at.
    pub fn start(&self) -> Snapshot {
        self.start
    }

    /// Record size limit the view was opened with.
    pub(crate) fn max_record(&self) -> u64 {
        self.max_record
    }

    /// Read-mode `ReadAll` over exactly the view's valid bytes.
    pub fn read_all(&self) -> Result<WalContents> {
        let segs = self
            .segments
            .iter()
            .map(|s| Seg {
                path: &s.path,
                file: &s.file,
                limit: s.valid_len,
            })
            .collect();
        let dec = Decoder::new(segs, self.max_record);
        let mut walk = Walker::new(dec, EndOfLog::TornTailEnds);
        Ok(read_all(&mut walk, self.start)?.contents)
    }
}
