//! Stored data that failed an integrity check. Each variant names the file or directory;
//! the fix is to restore the shard (or the metastore) from a backup.

use std::fmt;
use std::path::PathBuf;

use super::input::NameKind;

/// Stored data that failed an integrity check; never returned as if it were good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// A TSM file (index, block, CRC or series key).
    #[error("TSM file {file}: {problem}; restore the shard from a backup")]
    Tsm {
        /// The file (path, or name within its shard).
        file: String,
        /// What failed.
        problem: TsmProblem,
    },
    /// A TSM tombstone file.
    #[error("tombstone {file}: {detail}; restore the shard from a backup")]
    Tombstone {
        /// The file.
        file: String,
        /// The reader's complaint.
        detail: String,
    },
    /// A compaction or merge marker of a shard.
    #[error(
        "{}: {problem} {kind} marker; restore the shard from a backup",
        path.display()
    )]
    Marker {
        /// The marker file.
        path: PathBuf,
        /// Which marker.
        kind: MarkerKind,
        /// What is wrong with it.
        problem: MarkerProblem,
    },
    /// The metastore file or a name inside it.
    #[error(
        "metastore {}: {problem}; restore the metastore from a backup",
        path.display()
    )]
    Metastore {
        /// The metastore file.
        path: PathBuf,
        /// What is wrong with it.
        problem: MetaProblem,
    },
    /// A shard's write log (CRC, record, index sequence).
    #[error(
        "shard log {}: {detail}; stop the store and run `snapshotd wal verify` on it, or \
         restore the shard from a backup",
        dir.display()
    )]
    ShardLog {
        /// The log directory.
        dir: PathBuf,
        /// The log reader's complaint.
        detail: String,
    },
    /// A shard's write log disappeared while the store had it open.
    #[error(
        "shard log {} vanished while open; something outside the store removed it",
        dir.display()
    )]
    ShardLogMissing {
        /// The log directory.
        dir: PathBuf,
    },
    /// An entry of a shard log that does not decode as points.
    #[error(
        "shard log {}: entry does not decode as points ({detail}); restore the shard from \
         a backup",
        dir.display()
    )]
    LogEntry {
        /// The log directory.
        dir: PathBuf,
        /// The decoder's complaint.
        detail: String,
    },
}

/// What failed in a TSM file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsmProblem {
    /// The TSM reader or writer refused it.
    #[error("{detail}")]
    Format {
        /// The reader's complaint.
        detail: String,
    },
    /// A series key that is not UTF-8.
    #[error("series key not UTF-8")]
    SeriesKeyNotUtf8,
    /// A series key that does not parse as `measurement,tag=value...`.
    #[error("bad series key {key:?}")]
    BadSeriesKey {
        /// The key.
        key: String,
    },
}

/// Which marker of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MarkerKind {
    /// `.compacted`: the log index compacted through.
    Compaction,
    /// `.merging`: a committed merge of TSM files.
    Merge,
}

impl fmt::Display for MarkerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MarkerKind::Compaction => "compaction",
            MarkerKind::Merge => "merge",
        })
    }
}

/// What is wrong with a marker (rendered before "<kind> marker").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MarkerProblem {
    /// Larger than a marker can be.
    #[error("{len} bytes, more than a")]
    TooLarge {
        /// Its size.
        len: u64,
    },
    /// Not in the marker's format.
    #[error("not a")]
    Malformed,
}

/// What is wrong with the metastore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetaProblem {
    /// The file does not decode.
    #[error("does not decode ({detail})")]
    Undecodable {
        /// The decoder's complaint.
        detail: String,
    },
    /// It names a database or retention policy that cannot be a directory name.
    #[error("holds invalid {what} name {name:?}")]
    BadName {
        /// What was named.
        what: NameKind,
        /// The name.
        name: String,
    },
}
