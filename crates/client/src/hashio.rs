//! Writers and readers that hash, count, throttle and report what flows through them.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::limiter::RateLimiter;
use crate::progress::Progress;

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Passes writes through while computing their SHA-256 and length.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Returns the inner writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Passes reads through while computing their SHA-256 and length.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The hex digest and byte count of everything read so far.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The marker inside the I/O error a cancelled transfer reports.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub struct CancelledIo;

/// The error a cancelled transfer reports (not `Interrupted`, which `std::io` retries).
pub fn cancelled() -> io::Error {
    io::Error::other(CancelledIo)
}

/// Whether `e` is (or wraps) the error of a cancelled transfer.
pub fn is_cancelled(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<CancelledIo>())
}

/// The shared accounting of a metered stream: cancel flag, rate limit, progress and count.
struct Meter {
    limiter: Option<Arc<RateLimiter>>,
    progress: Arc<dyn Progress>,
    cancel: Arc<AtomicBool>,
    count: u64,
}

impl Meter {
    fn new(
        limiter: Option<Arc<RateLimiter>>,
        progress: Arc<dyn Progress>,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        Meter {
            limiter,
            progress,
            cancel,
            count: 0,
        }
    }

    /// Fails with [`cancelled`] once the cancel flag is set.
    fn check(&self) -> io::Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        Ok(())
    }

    /// Accounts `n` bytes that passed: waits for the rate limit, counts, reports progress.
    fn pass(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(l) = &self.limiter {
            l.acquire_blocking(n);
        }
        self.count += n as u64;
        self.progress.bytes(n as u64);
    }
}

/// A reader that counts, reports progress, honours a shared rate limit and a cancel flag.
pub struct MeteredReader<R> {
    inner: R,
    meter: Meter,
}

impl<R: Read> MeteredReader<R> {
    /// Wraps `inner`.
    pub fn new(
        inner: R,
        limiter: Option<Arc<RateLimiter>>,
        progress: Arc<dyn Progress>,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        let meter = Meter::new(limiter, progress, cancel);
        MeteredReader { inner, meter }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.meter.count
    }
}

impl<R: Read> Read for MeteredReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.meter.check()?;
        let n = self.inner.read(buf)?;
        self.meter.pass(n);
        Ok(n)
    }
}

/// A writer that counts, reports progress, honours a shared rate limit and a cancel flag.
pub struct MeteredWriter<W> {
    inner: W,
    meter: Meter,
}

impl<W: Write> MeteredWriter<W> {
    /// Wraps `inner`.
    pub fn new(
        inner: W,
        limiter: Option<Arc<RateLimiter>>,
        progress: Arc<dyn Progress>,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        let meter = Meter::new(limiter, progress, cancel);
        MeteredWriter { inner, meter }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.meter.count
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for MeteredWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.meter.check()?;
        let n = self.inner.write(buf)?;
        self.meter.pass(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_writer_matches_one_shot_digest() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, hex, n) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(
            hex,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(hex, sha256_hex(b"hello world"));
    }
}
