//! The crate's error type.

/// Why a destination could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A destination URL or path could not be understood or opened.
    #[error("invalid destination {url:?}: {reason}")]
    InvalidDestination {
        /// The URL or path as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// Local file I/O failed (creating or resolving a local directory).
    #[error("I/O on {path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with a path.
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
