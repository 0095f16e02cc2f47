//! Read-ahead for the decoder: one helper thread reads the next chunk of a segment while the
//! decoder checks and copies out the current one, so the page-cache copy of `pread` runs on
//! another core. Buffers move between the two threads (no copy); the decoder falls back to
//! its own synchronous read whenever a prefetched chunk is missing, short or failed, so
//! errors and end-of-file are always reported by the same code path as without read-ahead.

use std::fs::File;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Room kept in front of a prefetched chunk for the tail of the previous window (a record
/// that straddles two chunks is moved there, so the window stays contiguous).
pub(crate) const RESERVE: usize = 1 << 20;

/// A chunk to read: `len` bytes at `off` of `file`, into `buf[RESERVE..RESERVE + len]`.
struct Job {
    file: Arc<File>,
    off: u64,
    len: usize,
    buf: Vec<u8>,
}

/// A chunk read (or not): bytes at `buf[RESERVE..RESERVE + got]`.
pub(crate) struct Chunk {
    /// Which segment (decoder's index) and offset the chunk starts at.
    pub(crate) seg: usize,
    pub(crate) off: u64,
    pub(crate) buf: Vec<u8>,
    /// Bytes read; `None` when the read failed (the decoder re-reads and reports it).
    pub(crate) got: Option<usize>,
}

/// The helper thread and the one request it may have in flight.
pub(crate) struct Prefetcher {
    jobs: Option<SyncSender<(usize, Job)>>,
    done: Receiver<Chunk>,
    thread: Option<JoinHandle<()>>,
    /// Segment index and offset of the request in flight.
    pending: Option<(usize, u64)>,
}

impl Prefetcher {
    /// Starts the helper thread; `None` if the thread cannot be spawned.
    pub(crate) fn start() -> Option<Self> {
        let (jobs, job_rx) = sync_channel::<(usize, Job)>(1);
        let (done_tx, done) = sync_channel::<Chunk>(1);
        let thread = std::thread::Builder::new()
            .name("wal-readahead".into())
            .spawn(move || {
                while let Ok((seg, mut job)) = job_rx.recv() {
                    let end = RESERVE + job.len;
                    let got = read_full(&job.file, &mut job.buf[RESERVE..end], job.off);
                    let chunk = Chunk {
                        seg,
                        off: job.off,
                        buf: job.buf,
                        got,
                    };
                    if done_tx.send(chunk).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Prefetcher {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            pending: None,
        })
    }

    /// The request in flight, if any.
    pub(crate) fn pending(&self) -> Option<(usize, u64)> {
        self.pending
    }

    /// Asks for `len` bytes at `off` of segment `seg` (`file`), read into `buf` (resized to
    /// hold [`RESERVE`] + `len`). Only one request may be in flight.
    pub(crate) fn request(
        &mut self,
        seg: usize,
        file: Arc<File>,
        off: u64,
        len: usize,
        mut buf: Vec<u8>,
    ) {
        if self.pending.is_some() {
            return;
        }
        if buf.len() < RESERVE + len {
            buf.resize(RESERVE + len, 0);
        }
        let job = Job {
            file,
            off,
            len,
            buf,
        };
        if let Some(tx) = &self.jobs
            && tx.send((seg, job)).is_ok()
        {
            self.pending = Some((seg, off));
        }
    }

    /// Waits for the request in flight; `None` if there is none (or the thread is gone).
    pub(crate) fn take(&mut self) -> Option<Chunk> {
        self.pending.take()?;
        self.done.recv().ok()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Close the job channel, let a read in flight finish and join: the thread holds a
        // duplicate of a segment's file, whose lock must be gone once the decoder is.
        self.jobs = None;
        while self.done.try_recv().is_ok() {}
        if self.pending.take().is_some() {
            let _ = self.done.recv();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads up to `buf.len()` bytes at `off`, stopping early only at end of file.
fn read_full(file: &File, buf: &mut [u8], off: u64) -> Option<usize> {
    let mut got = 0;
    while got < buf.len() {
        match crate::decoder::read_at(file, &mut buf[got..], off + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(got)
}
