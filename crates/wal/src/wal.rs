//! The writer: create, open (+ read back), save, save_snapshot, cut, release_lock_to, close.

use std::fs::File;
use std::path::{Path, PathBuf};

use fs2::FileExt;
use prost::Message;

use crate::decoder::{Decoder, Seg};
use crate::encoder::Encoder;
use crate::error::{Error, Result, io_err};
use crate::fsutil::{
    LOCK_RETRY_PAUSES_MS, METRIC_LAST_INDEX, METRIC_WRITE_BYTES, create_dir_all, datasync,
    lock_exclusive, open_rw, prepare_sync_thread, sync_dir, try_lock_exclusive, zero_to_end,
};
use crate::names::{SegmentName, list_segments, segment_name, select_segments, wal_exists};
use crate::options::WalOptions;
use crate::pb::{
    CRC_TYPE, ENTRY_TYPE, Entry, HardState, METADATA_TYPE, SNAPSHOT_TYPE, STATE_TYPE, Snapshot,
};
use crate::read::{WalContents, read_all_with};
use crate::record_size_ok;
use crate::sys;
use crate::walk::{EndOfLog, Walker};

/// What [`Wal::append`] left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Nothing was written (empty hard state, no entries).
    Nothing,
    /// Records are written but not yet synced; `must_sync` per raft's `MustSync`.
    Buffered {
        /// Whether durability requires an fsync now.
        must_sync: bool,
    },
    /// A cut happened, which synced everything written so far.
    Durable,
}

/// A segment this writer holds open and OFD-locked.
#[derive(Debug)]
struct Held {
    path: PathBuf,
    seq: u64,
    index: u64,
    file: File,
}

/// The preallocated, locked temp file the next cut will use (`0.tmp` / `1.tmp`).
#[derive(Debug)]
struct Spare {
    path: PathBuf,
    file: File,
}

/// An etcd-compatible WAL open for appending.
///
/// Obtained from [`Wal::create`] or from [`Wal::open`] followed by [`UnreadWal::read_all`].
/// Holds an exclusive OFD lock on every segment from the one the start snapshot selected
/// through the tail (plus the spare temp file) until [`Wal::release_lock_to`] or
/// [`Wal::close`]/drop.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    dir_file: File,
    opts: WalOptions,
    metadata: Option<Vec<u8>>,
    state: HardState,
    enti: u64,
    held: Vec<Held>,
    enc: Encoder,
    spare: Option<Spare>,
    spare_count: u64,
    closed: bool,
    /// Set once a write or sync failed: the file may hold a partial frame, and appending
    /// after it would turn a repairable tail into corruption. Holds the first failure.
    failed: Option<String>,
}

/// A WAL opened for writing whose records have not been read yet: call
/// [`UnreadWal::read_all`] to get its contents and a [`Wal`] ready to append.
#[derive(Debug)]
pub struct UnreadWal {
    dir: PathBuf,
    dir_file: File,
    opts: WalOptions,
    start: Snapshot,
    held: Vec<Held>,
}

/// Takes an exclusive `flock` (fs2) on the WAL directory itself, so two of our writers (or
/// a writer and our repair) never work on one directory. etcd does not see this lock; the
/// OFD segment locks are what exclude etcd.
fn lock_dir(dir: &Path) -> Result<File> {
    let f = File::open(dir).map_err(io_err("open directory", dir))?;
    for pause in LOCK_RETRY_PAUSES_MS
        .iter()
        .map(|&ms| Some(ms))
        .chain([None])
    {
        match f.try_lock_exclusive() {
            Ok(()) => return Ok(f),
            Err(e) if e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => match pause
            {
                Some(ms) => std::thread::sleep(std::time::Duration::from_millis(ms)),
                None => break,
            },
            Err(e) => return Err(io_err("lock directory", dir)(e)),
        }
    }
    Err(Error::Locked {
        path: dir.to_path_buf(),
    })
}

impl Wal {
    /// Creates a WAL in `dir` with default options (64,000,000-byte segments).
    pub fn create(dir: impl AsRef<Path>, metadata: &[u8]) -> Result<Wal> {
        Self::create_with(dir, metadata, &WalOptions::default())
    }

    /// Creates a WAL in `dir`: fails with [`Error::Exist`] if `dir` already holds `.wal`
    /// files; builds the first segment in `dir.tmp` and renames it into place atomically.
    pub fn create_with(dir: impl AsRef<Path>, metadata: &[u8], opts: &WalOptions) -> Result<Wal> {
        let dir = dir.as_ref();
        if wal_exists(dir) {
            return Err(Error::Exist {
                dir: dir.to_path_buf(),
            });
        }
        let tmp = tmp_dir_of(dir);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io_err("remove", &tmp))?;
        }
        create_dir_all(&tmp)?;
        let name = segment_name(0, 0);
        let tmp_path = tmp.join(&name);
        let file = open_rw(&tmp_path, true, true)?;
        lock_exclusive(&file, &tmp_path)?;
        sys::preallocate(&file, opts.segment_size_bytes)
            .map_err(io_err("preallocate", &tmp_path))?;
        let mut enc = Encoder::new(0, 0, !opts.unsafe_no_fsync);
        let io = |e| io_err("write", &tmp_path)(e);
        enc.encode(&file, CRC_TYPE, None).map_err(io)?;
        enc.encode(&file, METADATA_TYPE, Some(metadata))
            .map_err(io)?;
        let snap0 = Snapshot::default().encode_to_vec();
        enc.encode(&file, SNAPSHOT_TYPE, Some(&snap0)).map_err(io)?;
        enc.flush(&file).map_err(io)?;
        if !opts.unsafe_no_fsync {
            datasync(&file, &tmp_path)?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io_err("remove", dir))?;
        }
        std::fs::rename(&tmp, dir).map_err(io_err("rename", &tmp))?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        sync_dir(&parent)?;
        let dir_file = lock_dir(dir)?;
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            dir_file,
            opts: opts.clone(),
            metadata: Some(metadata.to_vec()),
            state: HardState::default(),
            enti: 0,
            held: vec![Held {
                path: dir.join(&name),
                seq: 0,
                index: 0,
                file,
            }],
            enc,
            spare: None,
            spare_count: 0,
            closed: false,
            failed: None,
        };
        wal.prepare_spare()?;
        Ok(wal)
    }

    /// Opens the WAL in `dir` for appending at start snapshot `snap` with default options.
    pub fn open(dir: impl AsRef<Path>, snap: Snapshot) -> Result<UnreadWal> {
        Self::open_with(dir, snap, &WalOptions::default())
    }

    /// Opens the WAL for appending: selects the files for `snap` (the last segment whose
    /// name index is at most `snap.index`, and every later one) and takes a non-blocking
    /// exclusive OFD lock on each (busy → [`Error::Locked`]).
    pub fn open_with(
        dir: impl AsRef<Path>,
        snap: Snapshot,
        opts: &WalOptions,
    ) -> Result<UnreadWal> {
        let dir = dir.as_ref();
        let names = list_segments(dir)?;
        let selected = select_segments(&names, snap.index)?;
        let mut held = Vec::with_capacity(selected.len());
        for SegmentName { name, seq, index } in selected {
            let path = dir.join(name);
            let file = open_rw(&path, false, false)?;
            try_lock_exclusive(&file, &path)?;
            held.push(Held {
                path,
                seq: *seq,
                index: *index,
                file,
            });
        }
        let dir_file = lock_dir(dir)?;
        Ok(UnreadWal {
            dir: dir.to_path_buf(),
            dir_file,
            opts: opts.clone(),
            start: snap,
            held,
        })
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Index of the last entry saved (or read back, or of a later snapshot).
    pub fn last_index(&self) -> u64 {
        self.enti
    }

    /// Paths of the segments currently locked by this writer, oldest first.
    pub fn locked_segments(&self) -> Vec<PathBuf> {
        self.held.iter().map(|h| h.path.clone()).collect()
    }

    fn tail(&self) -> Result<&Held> {
        self.held.last().ok_or(Error::FileNotFound)
    }

    fn prepare_spare(&mut self) -> Result<()> {
        let path = self.dir.join(format!("{}.tmp", self.spare_count % 2));
        let file = open_rw(&path, true, true)?;
        try_lock_exclusive(&file, &path)?;
        sys::preallocate(&file, self.opts.segment_size_bytes)
            .map_err(io_err("preallocate", &path))?;
        self.spare_count += 1;
        self.spare = Some(Spare { path, file });
        Ok(())
    }

    fn encode(&mut self, rtype: i64, data: Option<&[u8]>) -> Result<()> {
        let Some(tail) = self.held.last() else {
            return Err(Error::FileNotFound);
        };
        let before = self.enc.end_offset();
        self.enc
            .encode(&tail.file, rtype, data)
            .map_err(io_err("write", &tail.path))?;
        metrics::counter!(METRIC_WRITE_BYTES).increment(self.enc.end_offset() - before);
        Ok(())
    }

    fn encode_entry(&mut self, e: &Entry) -> Result<()> {
        let Some(tail) = self.held.last() else {
            return Err(Error::FileNotFound);
        };
        let before = self.enc.end_offset();
        self.enc
            .encode_entry(&tail.file, e)
            .map_err(io_err("write", &tail.path))?;
        metrics::counter!(METRIC_WRITE_BYTES).increment(self.enc.end_offset() - before);
        Ok(())
    }

    /// Refuses to continue after a failed write or sync (see [`Error::WriterFailed`]).
    fn check(&self) -> Result<()> {
        match &self.failed {
            Some(first) => Err(Error::WriterFailed {
                first: first.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Marks the writer failed when `r` is an error that may have left bytes on disk.
    fn poison_on_err<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r
            && !matches!(e, Error::RecordTooLarge { .. })
        {
            self.mark_failed(e);
        }
        r
    }

    /// Marks the writer failed (a write or a shared fsync of its tail failed), keeping the
    /// first failure as the reason it gives.
    pub(crate) fn mark_failed(&mut self, e: &Error) {
        if self.failed.is_none() {
            self.failed = Some(with_causes(e));
        }
    }

    /// Flushes buffered records and fdatasyncs the tail segment.
    pub fn sync(&mut self) -> Result<()> {
        self.check()?;
        let r = self.sync_inner();
        self.poison_on_err(r)
    }

    fn sync_inner(&mut self) -> Result<()> {
        let Some(tail) = self.held.last() else {
            return Err(Error::FileNotFound);
        };
        let (file, path) = (&tail.file, &tail.path);
        self.enc.flush(file).map_err(io_err("write", path))?;
        if !self.opts.unsafe_no_fsync {
            prepare_sync_thread(self.opts.sync_slice);
            datasync(file, path)?;
        }
        Ok(())
    }

    /// Appends `entries` then `hardstate` (if non-empty). Syncs when there are entries or
    /// the term or vote changed (raft's `MustSync`); cuts a new segment when the tail has
    /// grown past the segment size. Returns only after the fsync that makes it durable.
    pub fn save(&mut self, hardstate: &HardState, entries: &[Entry]) -> Result<()> {
        match self.append(hardstate, entries)? {
            Appended::Buffered { must_sync: true } => self.sync(),
            Appended::Buffered { must_sync: false } | Appended::Durable | Appended::Nothing => {
                Ok(())
            }
        }
    }

    /// `append` with the failure latch: see [`Error::WriterFailed`].
    pub(crate) fn append(&mut self, hardstate: &HardState, entries: &[Entry]) -> Result<Appended> {
        self.check()?;
        let r = self.append_inner(hardstate, entries);
        self.poison_on_err(r)
    }

    /// `save` without its final fsync: records are encoded (and a cut, which syncs, is made
    /// when due). Used by [`crate::SharedWal`] to share one fsync among concurrent savers.
    fn append_inner(&mut self, hardstate: &HardState, entries: &[Entry]) -> Result<Appended> {
        if hardstate.is_empty() && entries.is_empty() {
            return Ok(Appended::Nothing);
        }
        for e in entries {
            record_size_ok(ENTRY_TYPE, e.encoded_len(), self.opts.max_record_bytes)?;
        }
        let must_sync = !entries.is_empty()
            || hardstate.term != self.state.term
            || hardstate.vote != self.state.vote;
        for e in entries {
            self.encode_entry(e)?;
            self.enti = e.index;
        }
        if let Some(last) = entries.last() {
            metrics::gauge!(METRIC_LAST_INDEX).set(last.index as f64);
        }
        self.save_state(hardstate)?;
        if self.enc.flushed_offset() < self.opts.segment_size_bytes {
            return Ok(Appended::Buffered { must_sync });
        }
        self.cut()?;
        Ok(Appended::Durable)
    }

    /// Marks the save just appended as flushed in etcd's page-writer model without writing
    /// it: [`crate::SharedWal`] calls it after each save that must sync, so cut decisions
    /// (which look at etcd's flushed offset) match a serial run of the same saves, and its
    /// fsync leader then writes every pending save with one [`Wal::flush`].
    pub(crate) fn mark_flushed(&mut self) {
        self.enc.mark_flushed();
    }

    /// Writes buffered records to the tail file (the write half of [`Wal::sync`]), with the
    /// failure latch.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.check()?;
        let Some(tail) = self.held.last() else {
            return Err(Error::FileNotFound);
        };
        let r = self
            .enc
            .flush(&tail.file)
            .map_err(io_err("write", &tail.path));
        self.poison_on_err(r)
    }

    /// A second handle to the tail file (same open file description, so the OFD lock is
    /// unaffected) for an fsync outside any lock. Writes nothing: records that must be
    /// durable were already handed to the file by [`Wal::flush`].
    pub(crate) fn tail_for_sync(&self) -> Result<(File, PathBuf)> {
        self.check()?;
        let tail = self.tail()?;
        let file = tail.file.try_clone().map_err(io_err("dup", &tail.path))?;
        Ok((file, tail.path.clone()))
    }

    /// Whether fdatasync is skipped.
    pub(crate) fn no_fsync(&self) -> bool {
        self.opts.unsafe_no_fsync
    }

    /// The scheduler slice for threads that fsync (see [`WalOptions::sync_slice`]).
    pub(crate) fn sync_slice(&self) -> Option<std::time::Duration> {
        self.opts.sync_slice
    }

    fn save_state(&mut self, hs: &HardState) -> Result<()> {
        if hs.is_empty() {
            return Ok(());
        }
        self.state = *hs;
        let b = hs.encode_to_vec();
        self.encode(STATE_TYPE, Some(&b))
    }

    /// Appends a snapshot record and syncs (never cuts).
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<()> {
        self.check()?;
        let b = snap.encode_to_vec();
        let r = self.encode(SNAPSHOT_TYPE, Some(&b));
        self.poison_on_err(r)?;
        if self.enti < snap.index {
            self.enti = snap.index;
        }
        self.sync()
    }

    /// Starts a new segment named at `snap.index` whose first record after the headers is
    /// `snap`, and syncs it: a log opened at `snap` then reads only this segment and later
    /// ones, so every older segment can be released and purged. For a writer with nothing
    /// written after the snapshot (an etcd-named cut would be named `snap.index + 1`, which
    /// an open at `snap` cannot start from). Returns `false`, writing nothing, when the tail
    /// segment already starts at or after `snap.index`.
    pub fn cut_at_snapshot(&mut self, snap: &Snapshot) -> Result<bool> {
        self.check()?;
        if self.enti > snap.index {
            return Err(Error::EntriesAfterSnapshot {
                snapshot_index: snap.index,
                last_index: self.enti,
            });
        }
        if self.tail()?.index >= snap.index {
            return Ok(false);
        }
        let r = self.cut_named(snap.index, Some(snap));
        self.poison_on_err(r)?;
        self.enti = snap.index;
        Ok(true)
    }

    /// Starts a new segment named at the next entry's index (etcd's cut).
    fn cut(&mut self) -> Result<()> {
        self.cut_named(self.enti + 1, None)
    }

    /// Starts a new segment: trims the tail to its data, syncs it, fills the spare temp file
    /// with crc/metadata/state headers (and `snap`, if any), syncs, renames it into place as
    /// `(seq + 1, index)` and syncs the directory.
    fn cut_named(&mut self, index: u64, snap: Option<&Snapshot>) -> Result<()> {
        self.trim_tail()?;
        if !self.opts.unsafe_no_fsync {
            let tail = self.tail()?;
            datasync(&tail.file, &tail.path)?;
        }
        let seq = self.tail()?.seq + 1;
        let spare = match self.spare.take() {
            Some(s) => s,
            None => {
                self.prepare_spare()?;
                self.spare.take().ok_or(Error::FileNotFound)?
            }
        };
        let prev = self.enc.crc();
        self.enc = Encoder::new(0, prev, !self.opts.unsafe_no_fsync);
        self.held.push(Held {
            path: spare.path.clone(),
            seq,
            index,
            file: spare.file,
        });
        self.encode(CRC_TYPE, None)?;
        let md = self.metadata.clone();
        self.encode(METADATA_TYPE, md.as_deref())?;
        let st = self.state;
        self.save_state(&st)?;
        if let Some(snap) = snap {
            self.encode(SNAPSHOT_TYPE, Some(&snap.encode_to_vec()))?;
        }
        self.sync()?;
        let final_path = self.dir.join(segment_name(seq, index));
        std::fs::rename(&spare.path, &final_path).map_err(io_err("rename", &spare.path))?;
        if !self.opts.unsafe_no_fsync {
            sync_dir(&self.dir)?;
        }
        if let Some(t) = self.held.last_mut() {
            // Same open file description: the OFD lock stays held across the rename.
            t.path = final_path.clone();
        }
        tracing::info!(path = %final_path.display(), "created a new WAL segment");
        // An etcd cut readies the next spare now, as etcd does. A cut at a snapshot comes from
        // a log that caught up and is often going idle: the next cut makes its spare instead.
        if snap.is_none() {
            self.prepare_spare()?;
        }
        Ok(())
    }

    /// Releases the locks of segments that can no longer hold entries at or after `index`:
    /// keeps the newest segment whose name index is below `index` and everything after it.
    pub fn release_lock_to(&mut self, index: u64) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let smaller = match self.held.iter().position(|h| h.index >= index) {
            Some(i) => i as i64 - 1,
            None => self.held.len() as i64 - 1,
        };
        if smaller <= 0 {
            return Ok(());
        }
        self.held.drain(..smaller as usize);
        Ok(())
    }

    /// Syncs the tail, deletes the spare temp file and releases every lock.
    pub fn close(mut self) -> Result<()> {
        self.close_inner()
    }

    /// Closes like [`Wal::close`] after trimming the tail segment to its last record, which
    /// gives its preallocated space back (etcd keeps it; either way a reopen appends after
    /// the last record). For a log that is going to stay idle.
    pub fn close_trimmed(mut self) -> Result<()> {
        self.check()?;
        let r = self.trim_tail();
        self.poison_on_err(r)?;
        self.close_inner()
    }

    /// Writes what the encoder holds and cuts the tail segment's file after its last record.
    fn trim_tail(&mut self) -> Result<()> {
        let Some(tail) = self.held.last() else {
            return Err(Error::FileNotFound);
        };
        self.enc
            .flush(&tail.file)
            .map_err(io_err("write", &tail.path))?;
        let end = self.enc.end_offset();
        tail.file
            .set_len(end)
            .map_err(io_err("truncate", &tail.path))
    }

    fn close_inner(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if let Some(sp) = self.spare.take() {
            let _ = std::fs::remove_file(&sp.path);
        }
        let r = if self.held.is_empty() {
            Ok(())
        } else {
            self.sync()
        };
        self.held.clear();
        let _ = FileExt::unlock(&self.dir_file);
        r
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            if let Some(sp) = self.spare.take() {
                let _ = std::fs::remove_file(&sp.path);
            }
        }
    }
}

fn tmp_dir_of(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_os_string();
    while s.len() > 1 && (s.to_string_lossy().ends_with('/')) {
        let l = s.len() - 1;
        s = s.to_string_lossy()[..l].into();
    }
    s.push(".tmp");
    PathBuf::from(s)
}

impl UnreadWal {
    /// Paths of the segments this open locked, oldest first.
    pub fn locked_segments(&self) -> Vec<PathBuf> {
        self.held.iter().map(|h| h.path.clone()).collect()
    }

    /// etcd's write-mode `ReadAll`: reads every record (a partial last record is an
    /// [`Error::UnexpectedEof`]: run [`crate::repair`] and open again), zeroes the tail of
    /// the last segment after the last valid record, and returns a writer positioned there.
    pub fn read_all(self) -> Result<(Wal, WalContents)> {
        self.read_all_with(true)
    }

    /// [`UnreadWal::read_all`] without keeping the entries (`contents.entries` is empty;
    /// metadata, hard state and every check are the same): reopens a writer on a log of any
    /// size in constant memory.
    pub fn into_writer(self) -> Result<(Wal, WalContents)> {
        self.read_all_with(false)
    }

    fn read_all_with(self, keep_entries: bool) -> Result<(Wal, WalContents)> {
        let mut segs = Vec::with_capacity(self.held.len());
        for h in &self.held {
            let limit = h.file.metadata().map_err(io_err("stat", &h.path))?.len();
            segs.push(Seg {
                path: &h.path,
                file: &h.file,
                limit,
            });
        }
        let dec = Decoder::new(segs, self.opts.max_record_bytes);
        let mut walk = Walker::new(dec, EndOfLog::Strict);
        let out = read_all_with(&mut walk, self.start, keep_entries)?;
        let off = walk.source().last_valid_off();
        let crc = walk.source().crc();
        drop(walk);
        let tail = self.held.last().ok_or(Error::FileNotFound)?;
        zero_to_end(&tail.file, &tail.path, off)?;
        let writeback = !self.opts.unsafe_no_fsync;
        let mut wal = Wal {
            dir: self.dir,
            dir_file: self.dir_file,
            opts: self.opts,
            metadata: out.contents.metadata.clone(),
            state: HardState::default(),
            enti: out.last_entry_index,
            held: self.held,
            enc: Encoder::new(off, crc, writeback),
            spare: None,
            spare_count: 0,
            closed: false,
            failed: None,
        };
        wal.prepare_spare()?;
        Ok((wal, out.contents))
    }
}

/// An error with its causes (`fdatasync PATH: Input/output error (os error 5)`), kept as the
/// reason a latched writer gives.
fn with_causes(e: &Error) -> String {
    let mut out = e.to_string();
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}
