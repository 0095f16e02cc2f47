//! A streaming USTAR writer shaped like Go's `archive/tar` output (no directory entries,
//! mode 0644, whole-second mtimes, two zero blocks at the end, no record padding).

use std::io::{self, BufWriter, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, StoreError};
use crate::types::BackupStats;

/// Counts bytes written through it.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Fails with `UnexpectedEof` when the source ends before `left` bytes; remembers whether
/// an error came from the source (a read) rather than from the stream (a write).
struct Exact<'a> {
    inner: &'a mut dyn Read,
    left: u64,
    read_failed: bool,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let cap = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let k = self.inner.read(&mut buf[..cap]).inspect_err(|e| {
            self.read_failed = e.kind() != io::ErrorKind::Interrupted;
        })?;
        if k == 0 {
            self.read_failed = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being archived",
            ));
        }
        self.left -= k as u64;
        Ok(k)
    }
}

/// The tar stream being written to the caller's writer.
pub(crate) struct TarOut<'a> {
    builder: tar::Builder<Counting<BufWriter<&'a mut dyn Write>>>,
    files: u64,
}

fn out_err(e: io::Error) -> StoreError {
    StoreError::io("write tar stream", e)
}

impl<'a> TarOut<'a> {
    /// Starts a tar stream on `out` (buffered, 256 KiB).
    pub(crate) fn new(out: &'a mut dyn Write) -> Self {
        let w = Counting {
            inner: BufWriter::with_capacity(256 * 1024, out),
            n: 0,
        };
        let mut builder = tar::Builder::new(w);
        builder.mode(tar::HeaderMode::Complete);
        TarOut { builder, files: 0 }
    }

    /// Appends one regular file of exactly `size` bytes read from `data`.
    pub(crate) fn append(
        &mut self,
        name: &str,
        size: u64,
        mtime: SystemTime,
        data: &mut dyn Read,
    ) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size);
        let secs = mtime
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        h.set_mtime(secs);
        let mut exact = Exact {
            inner: data,
            left: size,
            read_failed: false,
        };
        let r = self.builder.append_data(&mut h, name, &mut exact);
        r.map_err(|e| match exact.read_failed {
            true => StoreError::io(format!("read {name}"), e),
            false => out_err(e),
        })?;
        self.files += 1;
        Ok(())
    }

    /// Writes the end-of-archive marker, flushes, and reports the figures.
    pub(crate) fn finish(self) -> Result<BackupStats> {
        let files = self.files;
        let mut w = self.builder.into_inner().map_err(out_err)?;
        w.flush().map_err(out_err)?;
        Ok(BackupStats { files, bytes: w.n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing;

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(5))
        }
    }

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn context(e: StoreError) -> String {
        match e {
            StoreError::Io { context, .. } => context,
            other => panic!("not an i/o error: {other:?}"),
        }
    }

    #[test]
    fn a_failed_read_names_the_file_and_a_failed_write_the_stream() {
        let mut sink = Vec::new();
        let mut tar = TarOut::new(&mut sink);
        let e = tar
            .append(
                "db/rp/4/000000001-000000001.tsm",
                10,
                UNIX_EPOCH,
                &mut Failing,
            )
            .unwrap_err();
        assert_eq!(context(e), "read db/rp/4/000000001-000000001.tsm");
        let mut out = Failing;
        let mut tar = TarOut::new(&mut out);
        let big = vec![7u8; 1 << 20];
        let e = tar
            .append("db/rp/4/a.tsm", big.len() as u64, UNIX_EPOCH, &mut &big[..])
            .unwrap_err();
        assert_eq!(context(e), "write tar stream");
    }
}
