//! snapshotd's opt-in in-band error reply (an extension; influx never sends it).

use std::fmt;

use bytes::{Buf, BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use crate::go_json::marshal_into;
use crate::magic::{ERROR_MAGIC, be_u64, is_prefix_of, reserve_toward};
use crate::{Limits, WireError};

/// Coarse class of a server-side failure, for programs; the message is for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request was malformed or violated a limit.
    BadRequest,
    /// The database, retention policy or shard does not exist.
    NotFound,
    /// The target of an import already exists.
    AlreadyExists,
    /// The request type is not supported (e.g. type 2).
    Unsupported,
    /// The server refused for lack of resources (too many connections, disk full).
    Unavailable,
    /// The server is at its connection limit and did not run the request; retry later.
    Busy,
    /// Any other server-side failure.
    Internal,
    /// A code this version does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        })
    }
}

/// An error reported in-band: `magic 0x59590BAD u64 BE | len u64 BE | JSON {"Code","Message"}`.
///
/// Sent by a snapshotd server *instead of* the normal reply, and only to a client that opted in
/// ([`Request::error_replies`](crate::Request) or an acknowledged upload). Its first 8 bytes
/// can never start a normal reply: the meta frame and id map use magic `0x59590101`, the info
/// reply starts with `{`, and a tar header starting with a NUL byte is an all-zero block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The class of failure.
    #[serde(rename = "Code")]
    pub code: ErrorCode,
    /// Human-readable detail.
    #[serde(rename = "Message", default)]
    pub message: String,
}

impl ErrorReply {
    /// A reply with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            code,
            message: message.into(),
        }
    }

    /// Appends the frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let mut json = Vec::new();
        marshal_into(self, &mut json).map_err(WireError::BadErrorReplyJson)?;
        dst.reserve(16 + json.len());
        dst.put_u64(ERROR_MAGIC);
        dst.put_u64(json.len() as u64);
        dst.put_slice(&json);
        Ok(())
    }
}

/// Result of looking for an error reply at the start of a response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ErrorProbe {
    /// Not an error reply: decode the normal response.
    NotError,
    /// Could still be one; wait for more bytes.
    NeedMore,
}

/// If `buf` starts with an error reply, decodes and consumes it and returns it as
/// `Err(WireError::Remote)`; otherwise says whether more bytes are needed to tell.
pub(crate) fn probe(buf: &mut BytesMut, limits: &Limits) -> Result<ErrorProbe, WireError> {
    if buf.len() < 8 {
        return Ok(if is_prefix_of(buf, ERROR_MAGIC) {
            ErrorProbe::NeedMore
        } else {
            ErrorProbe::NotError
        });
    }
    if be_u64(buf, 0) != Some(ERROR_MAGIC) {
        return Ok(ErrorProbe::NotError);
    }
    let Some(len) = be_u64(buf, 8) else {
        return Ok(ErrorProbe::NeedMore);
    };
    if len > limits.max_error_reply {
        return Err(WireError::ErrorReplyTooLarge {
            len,
            limit: limits.max_error_reply,
        });
    }
    let total = 16 + len as usize; // bounded by max_error_reply above
    if buf.len() < total {
        reserve_toward(buf, total);
        return Ok(ErrorProbe::NeedMore);
    }
    let frame = buf.split_to(total);
    let reply: ErrorReply =
        serde_json::from_slice(&frame[16..]).map_err(WireError::BadErrorReplyJson)?;
    Err(WireError::Remote(reply))
}

/// Drains any remaining bytes after `buf` has been consumed past a complete frame.
pub(crate) fn trailing(buf: &mut BytesMut, frame: &'static str) -> Result<(), WireError> {
    if buf.is_empty() {
        Ok(())
    } else {
        let extra = buf.len();
        buf.advance(extra);
        Err(WireError::TrailingBytes { frame, extra })
    }
}
