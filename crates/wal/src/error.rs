//! Typed errors. Display strings are etcd 3.4's where etcd has one, so tools can compare
//! error texts with etcd's own; context (paths, offsets) lives in fields.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the WAL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two metadata records in the read range differ (`ErrMetadataConflict`).
    #[error("wal: conflicting metadata found")]
    MetadataConflict,
    /// No segment covers the requested start snapshot, or the sequence has a gap.
    #[error("wal: file not found")]
    FileNotFound,
    /// A segment's leading crc record disagrees with the running CRC (`ErrCRCMismatch`).
    #[error("wal: crc mismatch")]
    CrcMismatch {
        /// Segment holding the crc record.
        path: PathBuf,
        /// Offset of the record's length word.
        offset: u64,
    },
    /// A record's CRC does not match its data and the frame is not a torn write.
    #[error("walpb: crc mismatch")]
    RecordCrcMismatch {
        /// Segment holding the record.
        path: PathBuf,
        /// Offset of the record's length word.
        offset: u64,
    },
    /// A snapshot record at the start index has a different term.
    #[error("wal: snapshot mismatch")]
    SnapshotMismatch,
    /// No snapshot record matches the start snapshot.
    #[error("wal: snapshot not found")]
    SnapshotNotFound,
    /// An entry index jumps past the entries read so far (corruption or wrong start).
    #[error("wal: slice bounds out of range")]
    SliceOutOfRange {
        /// Index of the start snapshot.
        snapshot_index: u64,
        /// Index of the offending entry.
        entry_index: u64,
        /// Number of entries collected when it was found.
        have: u64,
    },
    /// A streamed entry's index repeats or goes back (a raft overwrite, which
    /// [`crate::EntryStream`] does not resolve unless told to ignore indexes).
    #[error(
        "wal: entry {entry_index} overwrites entries up to {last_index}; streaming reads do not resolve raft overwrites"
    )]
    EntryOverwrite {
        /// Index of the offending entry.
        entry_index: u64,
        /// Index of the entry yielded before it.
        last_index: u64,
    },
    /// A frame announces a record at or above the configured maximum size.
    #[error("wal: max entry size limit exceeded")]
    MaxEntrySizeExceeded {
        /// Segment holding the frame.
        path: PathBuf,
        /// Offset of the length word.
        offset: u64,
        /// Announced record length.
        size: u64,
    },
    /// A frame is cut short or torn (partial/zeroed write at the end of the log).
    #[error("unexpected EOF")]
    UnexpectedEof {
        /// Segment holding the partial frame.
        path: PathBuf,
        /// Offset just after the last whole, valid record of that segment.
        offset: u64,
    },
    /// Another open file description holds the segment's lock.
    #[error("fileutil: file already locked")]
    Locked {
        /// The locked file.
        path: PathBuf,
    },
    /// A record with a type other than 1..=5.
    #[error("unexpected block type {record_type}")]
    UnexpectedRecordType {
        /// The type field found.
        record_type: i64,
    },
    /// Record bytes are not a valid protobuf message (text mirrors gogo-protobuf's).
    #[error("{message}")]
    Protobuf {
        /// The decoder's message, e.g. `proto: Record: illegal tag 0 (wire type 0)`.
        message: String,
        /// Segment holding the record.
        path: PathBuf,
        /// Offset of the record's length word.
        offset: u64,
    },
    /// A CRC-valid payload (entry, state, snapshot) failed to decode.
    #[error("wal: cannot decode {what} payload: {source}")]
    Payload {
        /// Which payload (`entry`, `hardstate`, `snapshot`).
        what: &'static str,
        /// The prost decode error.
        source: prost::DecodeError,
    },
    /// `create` was pointed at a directory that already holds `.wal` files.
    #[error("file already exists")]
    Exist {
        /// The directory.
        dir: PathBuf,
    },
    /// A record to be written is at or above the configured maximum record size, so no
    /// etcd 3.4 reader could read it back.
    #[error("wal: record of {size} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// Encoded record size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The last segment's name does not parse.
    #[error("bad wal name")]
    BadWalName {
        /// The name found.
        name: String,
    },
    /// An earlier write or fsync of this writer failed; its tail may hold a partial record
    /// (or, after a failed fsync, data the kernel dropped), so it refuses further appends.
    /// Drop it and open the WAL again (repairing if needed).
    #[error("wal: an earlier write or sync failed ({first}); reopen the WAL")]
    WriterFailed {
        /// The first failure, as it was reported.
        first: String,
    },
    /// A snapshot segment was asked for at an index below entries already written: the new
    /// segment would start before entries it does not hold.
    #[error(
        "wal: cannot start a segment at snapshot {snapshot_index}: entries up to {last_index} are already written"
    )]
    EntriesAfterSnapshot {
        /// Index of the snapshot asked for.
        snapshot_index: u64,
        /// Index of the last entry written.
        last_index: u64,
    },
    /// A thread panicked while holding the shared writer; it is no longer usable.
    #[error("wal: shared writer poisoned by a panicking thread")]
    Poisoned,
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, including the path.
        context: String,
        /// The OS error.
        source: io::Error,
    },
}

impl Error {
    /// True for the torn/partial-tail class that `repair` can fix (etcd's `io.ErrUnexpectedEOF`).
    pub fn is_unexpected_eof(&self) -> bool {
        matches!(self, Error::UnexpectedEof { .. })
    }

    /// Where the error happened, when it says: the file and, for errors about a record, the
    /// offset of its length word.
    pub fn location(&self) -> Option<(&Path, Option<u64>)> {
        match self {
            Error::CrcMismatch { path, offset }
            | Error::RecordCrcMismatch { path, offset }
            | Error::UnexpectedEof { path, offset }
            | Error::Protobuf { path, offset, .. }
            | Error::MaxEntrySizeExceeded { path, offset, .. } => Some((path, Some(*offset))),
            Error::Locked { path } => Some((path, None)),
            _ => None,
        }
    }
}

/// Builds an [`Error::Io`] closure: `.map_err(io_err("open", &path))`.
pub(crate) fn io_err<'a>(
    what: &'a str,
    path: &'a std::path::Path,
) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Error;

    #[test]
    fn location_names_the_file_and_the_record_when_known() {
        let at = Error::CrcMismatch {
            path: "0000000000000000-0000000000000000.wal".into(),
            offset: 64,
        };
        assert_eq!(
            at.location(),
            Some((Path::new("0000000000000000-0000000000000000.wal"), Some(64)))
        );
        let locked = Error::Locked {
            path: "x.wal".into(),
        };
        assert_eq!(locked.location(), Some((Path::new("x.wal"), None)));
        assert_eq!(Error::SnapshotNotFound.location(), None);
    }
}
