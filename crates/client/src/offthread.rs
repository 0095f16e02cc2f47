//! A writer that hands its bytes to a thread of its own, so the caller (a shard's pipeline
//! reading the socket and checking the tar) does not also pay for what the inner writer does
//! (sha256 and the file write). Memory: at most `DEPTH` chunks of `CHUNK` bytes in flight.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes gathered before a chunk is handed over.
const CHUNK: usize = 1024 * 1024;
/// Chunks queued for the writer thread at most.
const DEPTH: usize = 4;

/// Writes into `W` on a thread of its own; [`OffThread::finish`] returns `W` once written.
pub struct OffThread<W> {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> OffThread<W> {
    /// Starts the writer thread for `inner`.
    pub fn new(inner: W) -> io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let thread = std::thread::Builder::new()
            .name("shard-writer".into())
            .spawn(move || drain(inner, rx))?;
        Ok(OffThread {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands over what is buffered, waits for the thread, and returns the inner writer (or
    /// the thread's first error).
    pub fn finish(mut self) -> io::Result<W> {
        self.send()?;
        self.tx = None;
        self.join()
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let Some(tx) = &self.tx else {
            return Err(io::Error::other("the writer thread is finished"));
        };
        if tx.send(chunk).is_err() {
            // The thread stopped on an error: report that error, not the closed channel.
            self.tx = None;
            return match self.join() {
                Ok(_) => Err(io::Error::other("the writer thread stopped early")),
                Err(e) => Err(e),
            };
        }
        Ok(())
    }

    fn join(&mut self) -> io::Result<W> {
        let Some(t) = self.thread.take() else {
            return Err(io::Error::other("the writer thread was already joined"));
        };
        t.join()
            .map_err(|_| io::Error::other("the writer thread panicked"))?
    }
}

/// Writes every chunk received into `inner`, then flushes it.
fn drain<W: Write>(mut inner: W, rx: Receiver<Vec<u8>>) -> io::Result<W> {
    for chunk in rx {
        inner.write_all(&chunk)?;
    }
    inner.flush()?;
    Ok(inner)
}

impl<W: Write + Send + 'static> Write for OffThread<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    /// Hands over what is buffered; the inner writer is flushed by [`OffThread::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl<W> Drop for OffThread<W> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_and_whole() {
        let mut w = OffThread::new(Vec::new()).expect("start");
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        for part in data.chunks(4093) {
            w.write_all(part).expect("write");
        }
        assert_eq!(w.finish().expect("finish"), data);
    }

    /// A writer that fails after `left` bytes.
    #[derive(Debug)]
    struct Failing {
        left: usize,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.left {
                return Err(io::Error::other("disk full"));
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_inner_error_reaches_the_caller() {
        let mut w = OffThread::new(Failing { left: CHUNK }).expect("start");
        let chunk = vec![7u8; CHUNK];
        let mut failed = None;
        for _ in 0..(DEPTH + 4) {
            if let Err(e) = w.write_all(&chunk) {
                failed = Some(e);
                break;
            }
        }
        let err = match failed {
            Some(e) => e,
            None => w.finish().expect_err("finish must fail"),
        };
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
