//! What a client sends: the request envelope (one type byte, then the JSON
//! request, then any upload payload) as one value.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{MUX_HEADER, Request, RequestType, SHARD_UPDATE_ACKED, WireError};

/// Header of a shard upload (type 7): the target shard id; the tar stream follows raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct UploadHeader {
    /// The (new) shard id on the receiving server.
    pub shard_id: u64,
    /// snapshotd extension: sent with type byte `0x87` instead of 7, asking the server for an
    /// [`UploadAck`](crate::UploadAck) or [`ErrorReply`](crate::ErrorReply) after the tar. An
    /// influx server closes such a connection with 0 bytes, so a client can fall back to 7.
    pub acknowledged: bool,
}

impl UploadHeader {
    /// A plain influx-compatible upload header.
    pub fn new(shard_id: u64) -> UploadHeader {
        UploadHeader {
            shard_id,
            acknowledged: false,
        }
    }

    /// The 10 bytes on the wire (mux, type byte, shard id BE).
    pub fn to_bytes(&self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[0] = MUX_HEADER;
        b[1] = if self.acknowledged {
            SHARD_UPDATE_ACKED
        } else {
            RequestType::ShardUpdate.as_u8()
        };
        b[2..].copy_from_slice(&self.shard_id.to_be_bytes());
        b
    }
}

/// One request as it travels client → server, mux byte included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFrame {
    /// Types 0–5: type byte + JSON + `\n`. `kind` is the envelope byte; the JSON `Type` key is
    /// [`Request::type_code`] (equal for every Go client).
    Request {
        /// The type byte.
        kind: RequestType,
        /// The JSON request.
        request: Request,
    },
    /// Type 6: JSON + `\n` + exactly `UploadSize` payload bytes (a raw `meta.Data` blob).
    MetaStoreUpdate {
        /// The JSON request; `upload_size` must equal `payload.len()`.
        request: Request,
        /// The metastore blob.
        payload: Bytes,
    },
    /// Type 7: the 8-byte shard id; the raw tar stream follows outside the codec.
    ShardUpload(UploadHeader),
}

impl RequestFrame {
    /// A types 0–5 frame whose JSON `Type` equals the type byte.
    pub fn request(kind: RequestType, mut request: Request) -> RequestFrame {
        request.type_code = kind.as_u8();
        if kind == RequestType::MetaStoreUpdate {
            request.upload_size = 0;
            return RequestFrame::MetaStoreUpdate {
                request,
                payload: Bytes::new(),
            };
        }
        RequestFrame::Request { kind, request }
    }

    /// A type-6 frame; sets `Type` and `UploadSize` from the payload.
    pub fn meta_store_update(mut request: Request, payload: Bytes) -> RequestFrame {
        request.type_code = RequestType::MetaStoreUpdate.as_u8();
        request.upload_size = i64::try_from(payload.len()).unwrap_or(i64::MAX);
        RequestFrame::MetaStoreUpdate { request, payload }
    }

    /// The request type (type 7 also for the acknowledged extension).
    pub fn kind(&self) -> RequestType {
        match self {
            RequestFrame::Request { kind, .. } => *kind,
            RequestFrame::MetaStoreUpdate { .. } => RequestType::MetaStoreUpdate,
            RequestFrame::ShardUpload(_) => RequestType::ShardUpdate,
        }
    }

    /// The JSON request, if this type carries one.
    pub fn json(&self) -> Option<&Request> {
        match self {
            RequestFrame::Request { request, .. }
            | RequestFrame::MetaStoreUpdate { request, .. } => Some(request),
            RequestFrame::ShardUpload(_) => None,
        }
    }

    /// Whether the client opted in to snapshotd's in-band replies (error replies / upload ack).
    pub fn wants_error_replies(&self) -> bool {
        match self {
            RequestFrame::Request { request, .. }
            | RequestFrame::MetaStoreUpdate { request, .. } => request.error_replies,
            RequestFrame::ShardUpload(h) => h.acknowledged,
        }
    }

    /// Appends the exact wire bytes (what a Go client writes) to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        match self {
            RequestFrame::Request { kind, request } => {
                if !kind.has_json() {
                    return Err(WireError::NotEncodable {
                        reason: "type 7 must be sent as RequestFrame::ShardUpload",
                    });
                }
                let json = request.to_json_line()?;
                dst.reserve(2 + json.len());
                dst.put_u8(MUX_HEADER);
                dst.put_u8(kind.as_u8());
                dst.put_slice(&json);
            }
            RequestFrame::MetaStoreUpdate { request, payload } => {
                if usize::try_from(request.upload_size).ok() != Some(payload.len()) {
                    return Err(WireError::UploadSizeMismatch {
                        declared: request.upload_size,
                        actual: payload.len(),
                    });
                }
                let json = request.to_json_line()?;
                dst.reserve(2 + json.len() + payload.len());
                dst.put_u8(MUX_HEADER);
                dst.put_u8(RequestType::MetaStoreUpdate.as_u8());
                dst.put_slice(&json);
                dst.put_slice(payload);
            }
            RequestFrame::ShardUpload(h) => dst.put_slice(&h.to_bytes()),
        }
        Ok(())
    }
}
