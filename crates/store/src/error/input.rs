//! Input a store refuses: line protocol, names, durations, metastore blobs, tar streams.
//! Each variant names what was refused and how to send something acceptable.

use std::fmt;

use crate::types::ShardPath;

/// Input that is malformed or not allowed; the request must be fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A line of a line-protocol write; the whole batch was refused.
    #[error("line {line}: {problem} (write to database {database}; nothing was written)")]
    Line {
        /// Target database.
        database: String,
        /// 1-based line number in the batch.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// A database or retention policy name that cannot be a directory name.
    #[error(
        "invalid {what} name {name:?}: a name must be 1-255 bytes, not start with '.' and \
         hold no '/', '\\' or NUL"
    )]
    Name {
        /// What was named.
        what: NameKind,
        /// The refused name.
        name: String,
    },
    /// A retention-policy duration out of range.
    #[error("retention policy {retention_policy}: {field} {problem}")]
    Duration {
        /// The retention policy being defined.
        retention_policy: String,
        /// Which duration.
        field: DurationField,
        /// What is wrong with it.
        problem: DurationProblem,
    },
    /// A write named no retention policy and the database has no default.
    #[error(
        "database {database} has no default retention policy; name one in the write (rp=) \
         or create a default"
    )]
    NoDefaultRetentionPolicy {
        /// The database.
        database: String,
    },
    /// A metastore blob that does not decode.
    #[error("{format} protobuf does not decode ({detail}); send the .meta file of a backup")]
    MetaBlob {
        /// Which message.
        format: MetaFormat,
        /// The decoder's complaint.
        detail: String,
    },
    /// A tar stream (shard upload or backup) refused; the shard was left as it was.
    #[error("{}", tar_message(shard.as_deref(), entry.as_deref(), problem))]
    Tar {
        /// The shard being restored, when known.
        shard: Option<Box<ShardPath>>,
        /// The offending entry's name, when known.
        entry: Option<String>,
        /// What is wrong.
        problem: TarProblem,
    },
}

fn tar_message(shard: Option<&ShardPath>, entry: Option<&str>, problem: &TarProblem) -> String {
    let mut out = String::from("tar stream");
    if let Some(s) = shard {
        out.push_str(&format!(
            " for shard {} ({}/{})",
            s.shard_id, s.database, s.retention_policy
        ));
    }
    if let Some(e) = entry {
        out.push_str(&format!(", entry {e:?}"));
    }
    out.push_str(&format!(
        ": {problem}; send a shard archive written by `snapshotd backup` or `influxd backup`"
    ));
    if shard.is_some() {
        out.push_str(" (the shard was left unchanged)");
    }
    out
}

/// What is wrong with a line of line protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// The bytes are not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The line does not parse.
    #[error("{detail}")]
    Syntax {
        /// The parser's complaint.
        detail: String,
    },
    /// The timestamp times the precision overflows nanoseconds.
    #[error("timestamp out of range (check the precision parameter)")]
    TimestampOutOfRange,
    /// The point is older than the retention policy keeps.
    #[error(
        "point is beyond retention policy {retention_policy} (older than its duration); \
         write newer points or use a retention policy with a longer duration"
    )]
    BeyondRetention {
        /// The retention policy written to.
        retention_policy: String,
    },
}

/// What a refused name named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameKind {
    /// A database name.
    Database,
    /// A retention policy name.
    RetentionPolicy,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Database => "database",
            NameKind::RetentionPolicy => "retention policy",
        })
    }
}

/// Which duration of a retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationField {
    /// How long data is kept.
    Retention,
    /// How much time one shard group covers.
    ShardGroup,
}

impl fmt::Display for DurationField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DurationField::Retention => "duration",
            DurationField::ShardGroup => "shard group duration",
        })
    }
}

/// What is wrong with a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationProblem {
    /// Non-zero and shorter than one hour.
    #[error("must be 0 or at least 1h")]
    ShorterThanHour,
    /// Longer than 64-bit nanoseconds hold (about 292 years).
    #[error("is too large (at most about 292 years)")]
    TooLarge,
}

/// Which metastore message failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetaFormat {
    /// influx `meta.Data`.
    MetaData,
    /// The portable `.meta` file's `PortableData` wrapper.
    PortableData,
}

impl fmt::Display for MetaFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetaFormat::MetaData => "meta.Data",
            MetaFormat::PortableData => "PortableData",
        })
    }
}

/// What is wrong with a tar stream or one of its entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TarProblem {
    /// The tar reader failed (bad header checksum, short read, ...).
    #[error("unreadable ({detail})")]
    Unreadable {
        /// The reader's complaint.
        detail: String,
    },
    /// A long-name or PAX record ended early.
    #[error("extension header truncated")]
    TruncatedExtension,
    /// A PAX record does not parse.
    #[error("malformed PAX header")]
    MalformedPax,
    /// A PAX record overrides the entry size.
    #[error("PAX size override is not supported")]
    PaxSizeOverride,
    /// A link (hard, symbolic or PAX `linkpath`).
    #[error("links are not allowed")]
    Link,
    /// An entry name that is not UTF-8.
    #[error("entry name is not UTF-8")]
    NameNotUtf8,
    /// Not a regular file or directory.
    #[error("only regular files are allowed (type {kind})")]
    NotRegularFile {
        /// The tar entry type, as the tar reader names it.
        kind: String,
    },
    /// Absolute, `..` or empty path components.
    #[error("unsafe path")]
    UnsafePath,
    /// A name without the `<db>/<rp>/<id>/` prefix.
    #[error("name lacks the <db>/<rp>/<id>/ prefix")]
    ShortName,
    /// An entry's data ended early.
    #[error("entry truncated")]
    EntryTruncated,
    /// The stream ended without its end-of-archive marker.
    #[error("truncated: no end-of-archive marker")]
    NoEndMarker,
}
