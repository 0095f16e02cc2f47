//! Reading one request with `snapshotd-wire`'s codec under the read deadlines.

use std::time::SystemTime;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;

use snapshotd_store::{ImportRequest, TimeRange};
use snapshotd_wire::{GoTime, MUX_HEADER, RequestCodec, RequestFrame, RequestType, WireError};

use crate::config::ServerConfig;
use crate::error::RequestError;
use crate::request::{Request, non_empty};

/// Bytes read from the socket at a time while decoding.
const READ_CHUNK: usize = 8 * 1024;

/// A decoded request and whether the client opted in to in-band replies.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The request.
    pub(crate) request: Request,
    /// snapshotd extension: send error replies / upload acks instead of silent closes.
    pub(crate) error_replies: bool,
}

/// A request that could not be read, and whether its JSON had already opted in to in-band
/// error replies (so the failure can still be reported to a snapshotd client).
#[derive(Debug)]
pub(crate) struct DecodeFailure {
    /// What went wrong.
    pub(crate) error: RequestError,
    /// The client asked for error replies before the failure.
    pub(crate) error_replies: bool,
}

impl From<RequestError> for DecodeFailure {
    fn from(error: RequestError) -> Self {
        DecodeFailure {
            error,
            error_replies: false,
        }
    }
}

/// Reads the rest of the request (the mux byte was already consumed and checked).
///
/// Each read must arrive within `timeouts.request`; the whole request (a type-6 payload
/// included) within `timeouts.payload`.
pub(crate) async fn read_request<R: AsyncRead + Unpin>(
    io: &mut R,
    config: &ServerConfig,
) -> Result<Decoded, DecodeFailure> {
    let total = config.timeouts.payload.max(config.timeouts.request);
    match tokio::time::timeout(total, read_frame(io, config)).await {
        Ok(r) => r,
        Err(_) => Err(RequestError::Timeout("the complete request").into()),
    }
}

async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    config: &ServerConfig,
) -> Result<Decoded, DecodeFailure> {
    let mut codec = RequestCodec::new(config.limits);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    buf.extend_from_slice(&[MUX_HEADER]);
    loop {
        let decoded = codec.decode(&mut buf);
        if let Some(frame) = decoded.map_err(|e| failure(&codec, e))? {
            let error_replies = codec.error_replies();
            // Bytes after the header belong to the body (type 7 tar); the codec left them.
            let rest = buf.split().freeze();
            return Ok(Decoded {
                request: convert(frame, rest),
                error_replies,
            });
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        let n = match tokio::time::timeout(config.timeouts.request, io.read_buf(&mut buf)).await {
            Err(_) => {
                return Err(DecodeFailure {
                    error: RequestError::Timeout("the request"),
                    error_replies: codec.error_replies(),
                });
            }
            Ok(Err(source)) => {
                return Err(RequestError::Io {
                    op: "read request",
                    source,
                }
                .into());
            }
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            let eof = codec.decode_eof(&mut buf);
            return match eof.map_err(|e| failure(&codec, e))? {
                Some(frame) => Ok(Decoded {
                    error_replies: codec.error_replies(),
                    request: convert(frame, buf.split().freeze()),
                }),
                None => {
                    Err(RequestError::Protocol("connection closed before a request".into()).into())
                }
            };
        }
    }
}

fn failure(codec: &RequestCodec, e: WireError) -> DecodeFailure {
    let error = match e {
        WireError::UnknownRequestType { found } => RequestError::Unsupported(found),
        e => RequestError::Protocol(e.to_string()),
    };
    DecodeFailure {
        error,
        error_replies: codec.error_replies(),
    }
}

fn convert(frame: RequestFrame, rest: bytes::Bytes) -> Request {
    match frame {
        RequestFrame::ShardUpload(h) => Request::ShardUpload {
            shard_id: h.shard_id,
            prefix: rest,
            acknowledged: h.acknowledged,
        },
        RequestFrame::MetaStoreUpdate { request, payload } => Request::MetaUpdate {
            import: ImportRequest {
                backup_database: non_empty(request.backup_database),
                restore_database: non_empty(request.restore_database),
                backup_retention_policy: non_empty(request.backup_retention_policy),
                restore_retention_policy: non_empty(request.restore_retention_policy),
                include_users: false,
            },
            blob: payload,
        },
        RequestFrame::Request { kind, request } => match kind {
            RequestType::ShardBackup => Request::ShardBackup {
                shard_id: request.shard_id,
                since: since(&request.since),
            },
            RequestType::MetastoreBackup => Request::Metastore,
            RequestType::SeriesFileBackup => Request::SeriesFile,
            RequestType::DatabaseInfo => Request::DatabaseInfo {
                database: non_empty(request.backup_database),
            },
            RequestType::RetentionPolicyInfo => Request::RetentionPolicyInfo {
                database: request.backup_database,
                retention_policy: request.backup_retention_policy,
            },
            RequestType::ShardExport => Request::ShardExport {
                shard_id: request.shard_id,
                range: TimeRange {
                    start_ns: bound(&request.export_start, false),
                    end_ns: bound(&request.export_end, true),
                },
            },
            // The codec yields these as their own frame variants.
            RequestType::MetaStoreUpdate | RequestType::ShardUpdate => {
                Request::Unknown(kind.as_u8())
            }
        },
    }
}

/// Go's zero time means "everything"; other instants are kept exactly.
fn since(t: &GoTime) -> Option<SystemTime> {
    if t.is_zero() {
        return None;
    }
    Some(SystemTime::from(t.as_datetime()))
}

/// A window bound in Unix ns; the zero time (and anything before 1678 for a start or after
/// 2262 for an end) is unbounded, fixing influx's overflow of a zero `ExportEnd`.
fn bound(t: &GoTime, upper: bool) -> Option<i64> {
    if t.is_zero() {
        return None;
    }
    match t.unix_nanos() {
        Some(ns) => Some(ns),
        None => {
            let after_epoch = t.as_datetime().timestamp() > 0;
            match (upper, after_epoch) {
                (true, true) | (false, false) => None,
                (true, false) => Some(i64::MIN),
                (false, true) => Some(i64::MAX),
            }
        }
    }
}
