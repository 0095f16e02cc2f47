//! Writers and readers that hash, count, throttle and report what flows through them.

use std::io::{self, Read, Write};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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

/// Reads `r` to its end through a [`HashingReader`]: the hex SHA-256 and the byte count.
pub fn sha256_of(r: impl Read) -> io::Result<(String, u64)> {
    let mut reader = HashingReader::new(r);
    io::copy(&mut reader, &mut io::sink())?;
    Ok(reader.finish())
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The shared accounting of a metered stream: cancellation token, rate limit, progress and count.
struct Meter {
    limiter: Option<Arc<RateLimiter>>,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
    count: u64,
}

impl Meter {
    fn new(
        limiter: Option<Arc<RateLimiter>>,
        progress: Arc<dyn Progress>,
        cancel: CancellationToken,
    ) -> Self {
        Meter {
            limiter,
            progress,
            cancel,
            count: 0,
        }
    }

    /// Fails once the token is cancelled. The caller, which holds the same token, turns the
    /// failure into `ClientError::Cancelled`: the I/O error itself is never inspected.
    fn check(&self) -> io::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other("transfer stopped: the run was cancelled"));
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

/// A reader that counts, reports progress, honours a shared rate limit and a cancellation token.
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
        cancel: CancellationToken,
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

/// A writer that counts, reports progress, honours a shared rate limit and a cancellation token.
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
        cancel: CancellationToken,
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

    #[test]
    fn sha256_of_reads_to_the_end() {
        let data = vec![7u8; 300_000];
        assert_eq!(
            sha256_of(&data[..]).unwrap(),
            (sha256_hex(&data), data.len() as u64)
        );
    }

    #[test]
    fn metered_streams_stop_once_the_token_is_cancelled() {
        let token = CancellationToken::new();
        let progress: Arc<dyn Progress> = Arc::new(crate::progress::NoProgress);
        let mut r = MeteredReader::new(&b"abcdef"[..], None, Arc::clone(&progress), token.clone());
        let mut buf = [0u8; 3];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        let mut w = MeteredWriter::new(Vec::new(), None, progress, token.clone());
        w.write_all(b"xy").unwrap();
        token.cancel();
        assert!(r.read(&mut buf).is_err(), "a read after cancel fails");
        assert!(w.write(b"z").is_err(), "a write after cancel fails");
        assert_eq!((r.count(), w.count()), (3, 2));
    }
}
