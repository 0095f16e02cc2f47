//! Errors a [`crate::Store`] reports; the server maps them to protocol behaviour.
//!
//! The top-level variants are the categories a caller acts on (not found, conflict, invalid
//! input, corrupt data, limit, unsupported, locked, I/O); the typed enum inside each names
//! the database, shard or file concerned and renders a message that says how to fix it.

mod corrupt;
mod input;
mod state;

pub use corrupt::{Corruption, MarkerKind, MarkerProblem, MetaProblem, TsmProblem};
pub use input::{
    DurationField, DurationProblem, InvalidInput, LineProblem, MetaFormat, NameKind, TarProblem,
};
pub use state::{Conflict, Locked, Unsupported};

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
    Conflict(Conflict),
    /// Input (meta blob, tar stream, line protocol, names) is malformed or not allowed.
    #[error("invalid input: {0}")]
    Invalid(InvalidInput),
    /// Stored data failed an integrity check.
    #[error("corrupt data: {0}")]
    Corrupt(Corruption),
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
    Unsupported(Unsupported),
    /// Another process holds a lock the store needs.
    #[error("store is locked by another process: {0}")]
    Locked(Locked),
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

impl From<Conflict> for StoreError {
    fn from(e: Conflict) -> Self {
        StoreError::Conflict(e)
    }
}

impl From<InvalidInput> for StoreError {
    fn from(e: InvalidInput) -> Self {
        StoreError::Invalid(e)
    }
}

impl From<Corruption> for StoreError {
    fn from(e: Corruption) -> Self {
        StoreError::Corrupt(e)
    }
}

impl From<Unsupported> for StoreError {
    fn from(e: Unsupported) -> Self {
        StoreError::Unsupported(e)
    }
}

impl From<Locked> for StoreError {
    fn from(e: Locked) -> Self {
        StoreError::Locked(e)
    }
}

#[cfg(test)]
mod tests;
