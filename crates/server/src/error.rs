//! Why a request failed; logged with context and counted by reason.

use std::io;

use snapshotd_store::StoreError;

use crate::bridge::BridgeError;

/// Errors that end a snapshot connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The first byte was not the snapshotter's mux byte.
    #[error("handler not registered for mux byte {0:#04x}")]
    BadMux(u8),
    /// The client was silent too long in a read phase.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The request could not be decoded.
    #[error("bad request: {0}")]
    Protocol(String),
    /// Request type the service does not implement (2, ≥ 8).
    #[error("request type {0} not supported")]
    Unsupported(u8),
    /// The store failed.
    #[error("{op}: {source}")]
    Store {
        /// What the server was doing.
        op: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// Streaming between store and socket failed.
    #[error("{op}: {source}")]
    Bridge {
        /// What the server was doing.
        op: &'static str,
        /// Details.
        #[source]
        source: BridgeError,
    },
    /// Writing a reply or reading the socket failed.
    #[error("socket {op}: {source}")]
    Io {
        /// What the server was doing.
        op: &'static str,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// Shutting down before the request was read.
    #[error("server shutting down")]
    Shutdown,
    /// Closed before its request was complete to make room for a newer connection.
    #[error("evicted at the connection limit before the request was complete")]
    Evicted,
}

impl RequestError {
    /// Metric label for the failure class.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            RequestError::BadMux(_) => "bad_mux",
            RequestError::Timeout(_) => "timeout",
            RequestError::Protocol(_) => "protocol",
            RequestError::Unsupported(_) => "unsupported",
            RequestError::Store { source, .. } => store_reason(source),
            RequestError::Bridge { source, .. } => match source {
                BridgeError::Store { source, .. } => store_reason(source),
                BridgeError::Socket { source, .. } if source.kind() == io::ErrorKind::TimedOut => {
                    "timeout"
                }
                BridgeError::Socket { .. } => "socket",
                BridgeError::Join(_) => "internal",
            },
            RequestError::Io { .. } => "socket",
            RequestError::Shutdown => "shutdown",
            RequestError::Evicted => "evicted",
        }
    }

    /// The store error behind this failure, if any.
    pub(crate) fn store_error(&self) -> Option<&StoreError> {
        match self {
            RequestError::Store { source, .. }
            | RequestError::Bridge {
                source: BridgeError::Store { source, .. },
                ..
            } => Some(source),
            _ => None,
        }
    }

    /// Bytes of the reply already sent when the error happened (0 when unknown/none).
    pub(crate) fn bytes_sent(&self) -> u64 {
        match self {
            RequestError::Bridge {
                source: BridgeError::Store { sent, .. },
                ..
            } => *sent,
            RequestError::Bridge {
                source: BridgeError::Socket { bytes, .. },
                ..
            } => *bytes,
            _ => 0,
        }
    }
}

fn store_reason(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound { .. } => "not_found",
        StoreError::Conflict(_) => "conflict",
        StoreError::Invalid(_) => "invalid",
        StoreError::LimitExceeded { .. } => "limit",
        StoreError::Unsupported(_) => "unsupported",
        StoreError::Corrupt(_) => "corrupt",
        StoreError::Locked(_) => "locked",
        StoreError::Io { .. } => "store_io",
        _ => "store",
    }
}

/// An error's sources (not the error itself), joined with `: `.
pub(crate) fn causes(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// An error with its chain of causes (`i/o error on PATH: No space left on device (os error
/// 28)`), so a reply names the real fault; a cause whose text the message already holds (an
/// error that prints its source) is not repeated.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}
