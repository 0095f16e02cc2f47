//! Errors a [`crate::Store`] reports; the server maps them to protocol behaviour.

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in a store operation, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A database, retention policy or shard does not exist.
    #[error("{what} not found: {name}")]
    NotFound {
        /// Kind of object ("database", "retention policy", "shard").
        what: &'static str,
        /// Its name or id.
        name: String,
    },
    /// The operation conflicts with existing state (e.g. target database already exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Input (meta blob, tar stream, line protocol) is malformed or not allowed.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Stored data failed an integrity check.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A configured size or count limit was exceeded.
    #[error("{what} exceeds limit of {limit} (got {got})")]
    LimitExceeded {
        /// What was too large.
        what: &'static str,
        /// The limit in force.
        limit: u64,
        /// The size seen.
        got: u64,
    },
    /// The store does not support this operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Another process holds the store's lock.
    #[error("store is locked by another process: {0}")]
    Locked(String),
    /// An I/O error, with the path or operation that failed.
    #[error("i/o error on {context}")]
    Io {
        /// Path or operation.
        context: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other backend failure.
    #[error("backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Builds an `Io` error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}
