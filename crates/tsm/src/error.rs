//! The crate's error type.

use std::io;

/// Everything that can go wrong reading or writing TSM data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsmError {
    /// An I/O call on the underlying reader or writer failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The bytes are not a valid TSM file, block, section or tombstone.
    #[error("corrupt TSM data: {0}")]
    Corrupt(String),
    /// A block's stored CRC-32 does not match its data.
    #[error(
        "corrupt TSM data: block at offset {offset} has CRC {stored:#010x}, data gives {computed:#010x}"
    )]
    Crc {
        /// File offset of the block.
        offset: u64,
        /// CRC stored in the file.
        stored: u32,
        /// CRC computed over the block data.
        computed: u32,
    },
    /// A size or count is larger than the limit in force (checked before allocating).
    #[error("{what} of {got} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was too large.
        what: &'static str,
        /// The limit in force.
        limit: u64,
        /// The size seen.
        got: u64,
    },
    /// Keys were given to the writer out of ascending byte order.
    #[error("key {key:?} written after {prev:?}: TSM keys must be written in ascending order")]
    KeyOrder {
        /// The key written before.
        prev: String,
        /// The offending key.
        key: String,
    },
    /// Values of one key were not strictly ascending in time.
    #[error("key {key:?}: time {time} does not follow {prev}: times must be strictly ascending")]
    TimeOrder {
        /// The key concerned.
        key: String,
        /// The previous time.
        prev: i64,
        /// The offending time.
        time: i64,
    },
    /// Blocks of one key were given with different value types.
    #[error("key {key:?}: {got} values written to a key holding {expected} values")]
    TypeMismatch {
        /// The key concerned.
        key: String,
        /// The key's type so far.
        expected: crate::BlockType,
        /// The type given now.
        got: crate::BlockType,
    },
    /// A value cannot be represented in a TSM block.
    #[error("unsupported value: {0}")]
    Unsupported(String),
    /// `finish` was called on a writer that received no values (influx cannot load such a file).
    #[error("no values written: a TSM file needs at least one block")]
    Empty,
}

/// Result alias of this crate.
pub type Result<T, E = TsmError> = std::result::Result<T, E>;

/// A [`TsmError::Corrupt`] with the given message.
pub(crate) fn corrupt(msg: impl std::fmt::Display) -> TsmError {
    TsmError::Corrupt(msg.to_string())
}

/// A [`TsmError::Io`] builder for `map_err`.
pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> TsmError {
    move |source| TsmError::Io { context, source }
}

/// Lossy printable form of a key for error messages.
pub(crate) fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}
