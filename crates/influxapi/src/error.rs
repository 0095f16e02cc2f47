//! The crate's error type.

/// Everything that can go wrong talking to influx or reading a backup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InfluxApiError {
    /// The HTTP request could not be sent or its answer read.
    #[error("{what} at {url}: {source}")]
    Http {
        /// What was being done.
        what: String,
        /// The target's base URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The target answered with an error status or an error in the result.
    #[error("{what}: the target answered {status}: {message}")]
    Server {
        /// What was being done (names the database / RP / shard).
        what: String,
        /// HTTP status code.
        status: u16,
        /// The error text the server returned.
        message: String,
    },
    /// Bad configuration given by the caller (URL, CA file...).
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// Which file and what was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The backup is malformed or corrupt.
    #[error("{context}: {message}")]
    Corrupt {
        /// Which file / shard / key.
        context: String,
        /// What is wrong.
        message: String,
    },
    /// A TSM decode error, with the shard and file it came from.
    #[error("{context}: {source}")]
    Tsm {
        /// Which shard and file.
        context: String,
        /// The decoder's error.
        #[source]
        source: snapshotd_tsm::TsmError,
    },
    /// A definition in the backup conflicts with the target's; nothing was overwritten.
    #[error("{0}")]
    Conflict(String),
    /// The operation was refused for safety (e.g. influxd still running).
    #[error("{0}")]
    Refused(String),
    /// The work was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
}

/// Shorthand result.
pub type Result<T, E = InfluxApiError> = std::result::Result<T, E>;

/// An `Io` error builder for `map_err`.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> InfluxApiError {
    let context = context.into();
    move |source| InfluxApiError::Io { context, source }
}

/// A `Corrupt` error.
pub(crate) fn corrupt(context: impl Into<String>, message: impl Into<String>) -> InfluxApiError {
    InfluxApiError::Corrupt {
        context: context.into(),
        message: message.into(),
    }
}
