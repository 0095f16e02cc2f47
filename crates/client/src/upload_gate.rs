//! A shard upload that can be aborted without influxd installing it.
//!
//! influxd installs an uploaded shard once its tar stream ends, and a stream that ends at an
//! entry boundary without the end-of-archive marker ends too. So an upload whose source turns
//! out damaged (checksum, gzip or tar error, found on the same pass) must never send the
//! marker and must end with a reset, not a close: the [`Gate`] refuses every write once
//! poisoned (the tar builder writes the marker when dropped), [`Abort`] poisons it unless the
//! upload completed, and the socket is set to reset on close (zero linger).

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A writer that fails every write and flush once its flag is set.
pub(crate) struct Gate<W> {
    inner: W,
    poisoned: Arc<AtomicBool>,
}

impl<W: Write> Gate<W> {
    /// An open gate in front of `inner`.
    pub(crate) fn new(inner: W) -> Self {
        Gate {
            inner,
            poisoned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// An [`Abort`] guard that poisons this gate when dropped armed.
    pub(crate) fn abort_guard(&self) -> Abort {
        Abort(Some(Arc::clone(&self.poisoned)))
    }

    /// The writer behind the gate.
    pub(crate) fn into_inner(self) -> W {
        self.inner
    }

    fn check(&self) -> io::Result<()> {
        match self.poisoned.load(Ordering::SeqCst) {
            true => Err(io::Error::other("upload aborted")),
            false => Ok(()),
        }
    }
}

impl<W: Write> Write for Gate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

/// Poisons its gate when dropped, unless [`Abort::disarm`]ed: declare it after the tar
/// builder so that it drops first.
pub(crate) struct Abort(Option<Arc<AtomicBool>>);

impl Abort {
    /// The upload is complete and checked: let the end-of-archive marker through.
    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Abort {
    fn drop(&mut self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_guard_stops_the_end_marker_of_a_dropped_builder() {
        let mut out = Vec::new();
        {
            let gate = Gate::new(&mut out);
            let mut builder = tar::Builder::new(gate);
            let _abort = builder.get_ref().abort_guard();
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            builder
                .append_data(&mut h, "a/b/1/x.tsm", &b"abc"[..])
                .unwrap();
        }
        // One entry (header + padded data), no end-of-archive marker.
        assert_eq!(out.len(), 1024);
        let mut done = Vec::new();
        {
            let gate = Gate::new(&mut done);
            let builder = tar::Builder::new(gate);
            let mut abort = builder.get_ref().abort_guard();
            abort.disarm();
            builder.into_inner().unwrap();
        }
        assert_eq!(done.len(), 1024, "the marker goes out once disarmed");
    }
}
