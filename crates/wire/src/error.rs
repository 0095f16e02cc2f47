//! The crate's error type.

use std::io;

use crate::ErrorReply;

/// Everything a codec or a portable-format helper can report.
///
/// Every size limit has its own variant carrying the offending value and the limit, so callers
/// can log precisely and tests can assert which bound tripped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// I/O error of the underlying transport (required by tokio-util's `Decoder`).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The first byte was not the snapshotter mux byte `0x03`.
    #[error("unknown mux header byte {found:#04x} (snapshotter is 0x03)")]
    UnknownMux {
        /// The byte received.
        found: u8,
    },
    /// The request type byte is not one of 0–7 (nor a snapshotd extension).
    #[error("unknown request type byte {found}")]
    UnknownRequestType {
        /// The byte received.
        found: u8,
    },
    /// The JSON request grew past [`Limits::max_request_json`](crate::Limits) bytes.
    #[error("request JSON exceeds {limit} bytes")]
    RequestTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The request did not start with a JSON object.
    #[error("request is not a JSON object (found byte {found:#04x} at offset {offset})")]
    NotAJsonObject {
        /// The unexpected byte.
        found: u8,
        /// Offset of that byte inside the JSON part.
        offset: usize,
    },
    /// An info-response entry is not `db/rp/id`.
    #[error("path {path:?}: {reason}")]
    BadShardPath {
        /// The entry received.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The JSON request could not be decoded with Go `encoding/json` semantics.
    #[error("invalid request JSON: {0}")]
    BadRequestJson(#[source] serde_json::Error),
    /// The byte after the JSON request was not the newline a Go encoder always writes.
    #[error("expected newline after request JSON, found byte {found:#04x}")]
    MissingNewline {
        /// The byte found instead.
        found: u8,
    },
    /// A type-6 request carried a negative `UploadSize` (influx 1.6 panics on it).
    #[error("negative UploadSize {size}")]
    NegativeUploadSize {
        /// The value received.
        size: i64,
    },
    /// A type-6 `UploadSize` above [`Limits::max_upload_size`](crate::Limits).
    #[error("UploadSize {size} exceeds limit {limit}")]
    UploadTooLarge {
        /// The value received.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// An upload frame whose payload length disagrees with its `UploadSize`.
    #[error("UploadSize {declared} does not match payload length {actual}")]
    UploadSizeMismatch {
        /// `UploadSize` in the request.
        declared: i64,
        /// Bytes in the payload.
        actual: usize,
    },
    /// A response frame did not start with the expected 8-byte magic.
    #[error("bad magic {found:#018x} in {frame} (expected {expected:#018x})")]
    BadMagic {
        /// Which frame was being decoded.
        frame: &'static str,
        /// The magic found.
        found: u64,
        /// The magic expected.
        expected: u64,
    },
    /// `metaLen` of a meta-backup frame (or a `.meta` blob) above [`Limits::max_meta_blob`](crate::Limits).
    #[error("meta blob of {len} bytes exceeds limit {limit}")]
    MetaBlobTooLarge {
        /// The declared length.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// `nodeLen` of a meta-backup frame above [`Limits::max_node_json`](crate::Limits).
    #[error("node JSON of {len} bytes exceeds limit {limit}")]
    NodeJsonTooLarge {
        /// The declared length.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// An info response above [`Limits::max_info_response`](crate::Limits).
    #[error("info response exceeds {limit} bytes")]
    InfoTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The info response JSON could not be decoded.
    #[error("invalid info response JSON: {0}")]
    BadInfoJson(#[source] serde_json::Error),
    /// A shard-id map announcing more pairs than [`Limits::max_id_map_pairs`](crate::Limits).
    #[error("shard-id map announces {pairs} pairs, limit {limit}")]
    TooManyPairs {
        /// The announced pair count.
        pairs: u64,
        /// The configured limit.
        limit: u64,
    },
    /// An error reply body above [`Limits::max_error_reply`](crate::Limits).
    #[error("error reply of {len} bytes exceeds limit {limit}")]
    ErrorReplyTooLarge {
        /// The declared length.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// An error reply body that is not the expected JSON.
    #[error("invalid error reply JSON: {0}")]
    BadErrorReplyJson(#[source] serde_json::Error),
    /// The peer reported an error in-band (snapshotd extension, opt-in).
    #[error("server error {}: {}", .0.code, .0.message)]
    Remote(ErrorReply),
    /// The stream ended in the middle of a frame.
    #[error("connection closed mid-frame while reading {frame} ({buffered} bytes buffered)")]
    Truncated {
        /// Which frame was being decoded.
        frame: &'static str,
        /// Bytes that had arrived.
        buffered: usize,
    },
    /// Bytes arrived after a response that must be the last thing on the connection.
    #[error("{extra} unexpected bytes after {frame}")]
    TrailingBytes {
        /// Which frame they followed.
        frame: &'static str,
        /// Number of extra bytes.
        extra: usize,
    },
    /// A time outside what Go's RFC 3339 JSON encoding can represent.
    #[error("time not representable as Go RFC 3339: {reason}")]
    BadTime {
        /// Why.
        reason: &'static str,
    },
    /// The server tried to send an error reply to a client that did not opt in.
    #[error("in-band error replies were not requested by this client")]
    ErrorRepliesNotNegotiated,
    /// A protobuf (`.meta` wrapper or `meta.Data`) failed to decode.
    #[error("invalid {what} protobuf: {source}")]
    BadProtobuf {
        /// Which message.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: prost::DecodeError,
    },
    /// A value that has no wire form (e.g. type 7 as a JSON request).
    #[error("cannot encode: {reason}")]
    NotEncodable {
        /// Why.
        reason: &'static str,
    },
    /// A `.manifest` could not be decoded or encoded.
    #[error("invalid manifest JSON: {0}")]
    BadManifest(#[source] serde_json::Error),
    /// A `.manifest` file above the given limit.
    #[error("manifest of {len} bytes exceeds limit {limit}")]
    ManifestTooLarge {
        /// The file length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}
