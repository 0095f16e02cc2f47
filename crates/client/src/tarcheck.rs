//! Streaming validation of a tar archive while it is copied verbatim elsewhere.
//!
//! Influx signals a failed shard download only by closing the connection: with zero bytes or
//! in the middle of the archive. A complete archive ends with the end-of-archive marker (two
//! zero blocks); anything else is an incomplete download.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;

/// What a validated archive contained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TarStats {
    /// Total bytes of the archive (what influx's manifest calls the shard's size).
    pub bytes: u64,
    /// Number of file entries (extension headers not counted).
    pub entries: u64,
}

/// Why a stream is not a complete archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarCheckError {
    /// Not a single byte arrived.
    #[error("empty stream")]
    Empty,
    /// The archive is cut short or malformed.
    #[error("{detail}")]
    Incomplete {
        /// Bytes seen.
        bytes: u64,
        /// What was wrong.
        detail: String,
    },
    /// Reading the source or writing the copy failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads `src` to its end, copies every byte unchanged to `copy`, and checks that the bytes
/// form a complete tar archive: every entry's data present and an end-of-archive marker of at
/// least two zero blocks, followed by nothing but zero padding.
pub fn copy_validated<R: Read, W: Write>(src: R, copy: W) -> Result<TarStats, TarCheckError> {
    copy_validated_with(src, copy, |_| {})
}

/// [`copy_validated`], calling `on_entry` with the name of every file entry.
pub fn copy_validated_with<R: Read, W: Write>(
    src: R,
    copy: W,
    mut on_entry: impl FnMut(&str),
) -> Result<TarStats, TarCheckError> {
    let mut tee = Tee {
        inner: src,
        copy,
        count: 0,
    };
    let mut entries = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    {
        let mut archive = tar::Archive::new(&mut tee);
        let iter = archive
            .entries()
            .map_err(|e| incomplete_or_io(e, 0, "reading the first header"))?;
        for entry in iter {
            let mut entry = entry.map_err(|e| incomplete_or_io(e, 0, "reading a tar header"))?;
            let want = entry.size();
            let mut got = 0u64;
            loop {
                let n = entry.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            if got != want {
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                return Err(TarCheckError::Incomplete {
                    bytes: 0,
                    detail: format!("entry {name:?} has {got} of {want} data bytes"),
                });
            }
            if entry.header().entry_type().is_file() {
                on_entry(&String::from_utf8_lossy(&entry.path_bytes()));
            }
            entries += 1;
        }
    }
    let at_end_header = tee.count;
    if at_end_header == 0 {
        return Err(TarCheckError::Empty);
    }
    // The tar reader stops either at the first zero block (already consumed) or at EOF on a
    // block boundary. Whatever follows must be zero padding completing the marker.
    let mut trailing = 0u64;
    loop {
        let n = tee.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Err(TarCheckError::Incomplete {
                bytes: tee.count,
                detail: "data after the end-of-archive marker".into(),
            });
        }
        trailing += n as u64;
    }
    let total = tee.count;
    if trailing < BLOCK as u64 || at_end_header % BLOCK as u64 != 0 {
        return Err(TarCheckError::Incomplete {
            bytes: total,
            detail: "missing end-of-archive marker (stream cut short)".into(),
        });
    }
    tee.copy.flush()?;
    Ok(TarStats {
        bytes: total,
        entries,
    })
}

fn incomplete_or_io(e: io::Error, bytes: u64, ctx: &str) -> TarCheckError {
    match e.kind() {
        io::ErrorKind::Other | io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
            TarCheckError::Incomplete {
                bytes,
                detail: format!("{ctx}: {e}"),
            }
        }
        _ => TarCheckError::Io(e),
    }
}

struct Tee<R, W> {
    inner: R,
    copy: W,
    count: u64,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn complete_archive_is_copied_verbatim() {
        let a = archive(&[("db/rp/1/000000001-000000001.tsm", &[7u8; 806])]);
        let mut out = Vec::new();
        let st = copy_validated(&a[..], &mut out).unwrap();
        assert_eq!(out, a);
        assert_eq!(st.bytes, a.len() as u64);
        assert_eq!(st.entries, 1);
    }

    #[test]
    fn empty_tar_of_only_the_marker_is_complete() {
        let a = vec![0u8; 1024];
        let st = copy_validated(&a[..], &mut Vec::new()).unwrap();
        assert_eq!((st.bytes, st.entries), (1024, 0));
    }

    #[test]
    fn zero_bytes_is_empty() {
        assert!(matches!(
            copy_validated(&[][..], &mut Vec::new()),
            Err(TarCheckError::Empty)
        ));
    }

    #[test]
    fn every_truncation_point_is_detected() {
        let a = archive(&[("a/b/1/x.tsm", &[1u8; 700]), ("a/b/1/y.tsm", &[2u8; 10])]);
        for cut in 1..=a.len() - 512 {
            let r = copy_validated(&a[..cut], &mut Vec::new());
            assert!(r.is_err(), "cut at {cut} accepted");
        }
        // Cutting inside the second zero block is also incomplete.
        assert!(copy_validated(&a[..a.len() - 511], &mut Vec::new()).is_err());
    }

    #[test]
    fn garbage_after_marker_is_rejected() {
        let mut a = archive(&[("a/b/1/x.tsm", b"hi")]);
        a.extend_from_slice(b"junk");
        assert!(copy_validated(&a[..], &mut Vec::new()).is_err());
    }
}
