//! [`ParallelGz`]: a `Write` that deflates chunks on worker threads and writes the gzip
//! members in order.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::worker::{Done, Job, worker};
use super::{
    CompressionMode, GzSettings, PROBE_EVERY, SAMPLE_BYTES, encode_member, shrinks_enough,
};

/// What a [`ParallelGz`] did with the bytes it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GzStats {
    /// Uncompressed bytes written.
    pub raw_bytes: u64,
    /// gzip bytes produced.
    pub out_bytes: u64,
    /// Members deflated at the configured level.
    pub deflated_members: u64,
    /// Members stored (level 0).
    pub stored_members: u64,
}

/// Splits what is written into chunks, deflates each as an independent gzip member on a
/// pool of worker threads, and writes the members to `inner` in order. Memory is bounded by
/// workers + 1 chunks in flight, each with its member. Call [`finish`](Self::finish)
/// to write the last member; a stream given no bytes still becomes a valid (empty) gzip.
pub struct ParallelGz<W: Write> {
    inner: Option<W>,
    settings: GzSettings,
    chunk: Vec<u8>,
    index: u64,
    /// The last sampling decision in `Auto` (None until the first sample).
    deflate: Option<bool>,
    scratch: Vec<u8>,
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<Done>>,
    spare_data: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
    stats: GzStats,
}

impl<W: Write> ParallelGz<W> {
    /// Wraps `inner`; threads start with the first full chunk.
    pub fn new(inner: W, mut settings: GzSettings) -> Self {
        settings.workers = settings.workers.max(1);
        settings.chunk = settings.chunk.max(1);
        settings.level = settings.level.min(9);
        ParallelGz {
            inner: Some(inner),
            chunk: Vec::with_capacity(settings.chunk),
            settings,
            index: 0,
            deflate: None,
            scratch: Vec::new(),
            jobs: None,
            threads: Vec::new(),
            pending: VecDeque::new(),
            spare_data: Vec::new(),
            spare_out: Vec::new(),
            stats: GzStats::default(),
        }
    }

    /// Counters so far (members still being deflated are not counted yet).
    pub fn stats(&self) -> GzStats {
        self.stats
    }

    /// Writes the last member, waits for every member to be written, and returns `inner`
    /// with the final counters.
    pub fn finish(mut self) -> io::Result<(W, GzStats)> {
        if !self.chunk.is_empty() || self.index == 0 {
            let data = std::mem::take(&mut self.chunk);
            if self.jobs.is_none() {
                // The whole stream fit in one chunk: no thread needed.
                let level = self.level_for(&data);
                let name = self.settings.filename.clone();
                let member = encode_member(&data, level, name.as_deref(), Vec::new())?;
                self.index += 1;
                self.write_member(&member, level)?;
            } else {
                self.dispatch(data)?;
            }
        }
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        self.shutdown();
        let inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        Ok((inner, self.stats))
    }

    /// Stops the workers without writing anything more and returns `inner` (for aborting).
    pub fn abandon(mut self) -> Option<W> {
        self.pending.clear();
        self.shutdown();
        self.inner.take()
    }

    /// The deflate level for the chunk `data` about to become member number `self.index`.
    fn level_for(&mut self, data: &[u8]) -> u32 {
        match self.settings.mode {
            CompressionMode::Gzip => self.settings.level,
            CompressionMode::None => 0,
            CompressionMode::Auto => {
                if self.deflate.is_none() || self.index.is_multiple_of(PROBE_EVERY) {
                    let sample = middle(data, SAMPLE_BYTES);
                    let yes = shrinks_enough(sample, self.settings.level, &mut self.scratch);
                    self.deflate = Some(yes);
                }
                if self.deflate == Some(true) {
                    self.settings.level
                } else {
                    0
                }
            }
        }
    }

    /// Hands a full chunk to the workers; writes finished members while too many are queued.
    fn dispatch(&mut self, data: Vec<u8>) -> io::Result<()> {
        if self.jobs.is_none() {
            self.start_workers()?;
        }
        let level = self.level_for(&data);
        let filename = if self.index == 0 {
            self.settings.filename.clone()
        } else {
            None
        };
        self.index += 1;
        let (tx, rx) = mpsc::sync_channel(1);
        let out = self.spare_out.pop().unwrap_or_default();
        let job = Job {
            data,
            out,
            level,
            filename,
            reply: tx,
        };
        let sent = self.jobs.as_ref().map(|j| j.send(job).is_ok());
        if sent != Some(true) {
            return Err(io::Error::other("gzip workers stopped"));
        }
        self.pending.push_back(rx);
        while self.pending.len() > self.settings.workers {
            self.drain_one()?;
        }
        // Write whatever is already done at the front, so output keeps flowing.
        while let Some(done) = self.pending.front().and_then(|rx| rx.try_recv().ok()) {
            self.pending.pop_front();
            self.take_done(done)?;
        }
        Ok(())
    }

    /// Waits for the oldest member and writes it.
    fn drain_one(&mut self) -> io::Result<()> {
        let Some(rx) = self.pending.pop_front() else {
            return Ok(());
        };
        let done = rx
            .recv()
            .map_err(|_| io::Error::other("a gzip worker stopped unexpectedly"))?;
        self.take_done(done)
    }

    fn take_done(&mut self, done: Done) -> io::Result<()> {
        let Done {
            mut data,
            level,
            member,
        } = done;
        let mut member = member?;
        self.write_member(&member, level)?;
        data.clear();
        member.clear();
        self.spare_data.push(data);
        self.spare_out.push(member);
        Ok(())
    }

    fn write_member(&mut self, member: &[u8], level: u32) -> io::Result<()> {
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        inner.write_all(member)?;
        self.stats.out_bytes += member.len() as u64;
        if level == 0 {
            self.stats.stored_members += 1;
        } else {
            self.stats.deflated_members += 1;
        }
        Ok(())
    }

    fn start_workers(&mut self) -> io::Result<()> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..self.settings.workers {
            let rx = Arc::clone(&rx);
            let t = std::thread::Builder::new()
                .name(format!("gzip-{i}"))
                .spawn(move || worker(&rx))?;
            self.threads.push(t);
        }
        self.jobs = Some(tx);
        Ok(())
    }

    fn shutdown(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::debug!("a gzip worker panicked");
            }
        }
    }
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.settings.chunk - self.chunk.len();
        let n = room.min(buf.len());
        self.chunk.extend_from_slice(&buf[..n]);
        self.stats.raw_bytes += n as u64;
        if self.chunk.len() == self.settings.chunk {
            let next = self
                .spare_data
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(self.settings.chunk));
            let full = std::mem::replace(&mut self.chunk, next);
            self.dispatch(full)?;
        }
        Ok(n)
    }

    /// Members are written as they complete; an unfinished chunk stays until `finish`,
    /// since gzip members cannot be flushed midway.
    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for ParallelGz<W> {
    fn drop(&mut self) {
        self.pending.clear();
        self.shutdown();
    }
}

/// At most `n` bytes from the middle of `data` (away from a leading tar header).
fn middle(data: &[u8], n: usize) -> &[u8] {
    if data.len() <= n {
        return data;
    }
    let start = (data.len() - n) / 2;
    &data[start..start + n]
}
