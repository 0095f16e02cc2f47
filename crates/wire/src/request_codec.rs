//! The server-side codec: decodes the request envelope, encodes the replies.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::json_scan::{JsonScan, Scan};
use crate::magic::{be_u64, reserve_toward};
use crate::{
    ErrorReply, InfoResponse, Limits, MUX_HEADER, MetaBackup, Request, RequestFrame, RequestType,
    SHARD_UPDATE_ACKED, ShardIdMap, UploadAck, UploadHeader, WireError,
};

#[derive(Debug, Clone, Default)]
enum State {
    /// Reading mux byte, type byte and JSON.
    #[default]
    Header,
    /// JSON parsed; waiting for `\n` + `payload` bytes of a type-6 request.
    Payload {
        kind: RequestType,
        request: Box<Request>,
        json_end: usize,
        payload: usize,
    },
    /// A frame was yielded: one request per connection; bytes after it belong to the caller.
    Done,
}

/// Server codec: one [`RequestFrame`] per connection, then the replies.
///
/// Decoding reads the mux byte (`0x03`, else [`WireError::UnknownMux`]), the type byte (0–7 or
/// the `0x87` acknowledged upload, else [`WireError::UnknownRequestType`]), then
/// * types 0–6: one JSON object (≤ [`Limits::max_request_json`]) decoded with Go semantics,
///   followed by exactly one `\n`; for type 6 exactly `UploadSize` payload bytes
///   (negative → [`WireError::NegativeUploadSize`], above [`Limits::max_upload_size`] →
///   [`WireError::UploadTooLarge`], both before anything is reserved);
/// * type 7: the 8-byte big-endian shard id. The tar stream that follows is **not** consumed:
///   take it with [`into_raw_stream`](crate::into_raw_stream) (or `Framed::into_parts`, whose
///   `read_buf` holds the first tar bytes).
///
/// After the frame the decoder yields `Ok(None)` forever and leaves later bytes in the buffer.
/// `decode_eof` on an empty connection is `Ok(None)`; mid-frame it is [`WireError::Truncated`].
///
/// Encoding writes [`MetaBackup`], [`InfoResponse`], [`ShardIdMap`] exactly as influx does;
/// [`ErrorReply`] and [`UploadAck`] only if the decoded request opted in, otherwise
/// [`WireError::ErrorRepliesNotNegotiated`] (an influx client must never see them).
#[derive(Debug, Clone, Default)]
pub struct RequestCodec {
    limits: Limits,
    state: State,
    scan: JsonScan,
    opted_in: bool,
}

impl RequestCodec {
    /// A codec with the given limits.
    pub fn new(limits: Limits) -> Self {
        RequestCodec {
            limits,
            ..RequestCodec::default()
        }
    }

    /// Whether the request asked for snapshotd's in-band replies. Set as soon as its JSON
    /// parsed, so it also tells after a later decode error (e.g. [`WireError::UploadTooLarge`])
    /// whether the server may answer with an [`ErrorReply`].
    pub fn error_replies(&self) -> bool {
        self.opted_in
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn finish(&mut self, frame: RequestFrame) -> Option<RequestFrame> {
        self.opted_in = frame.wants_error_replies();
        self.state = State::Done;
        Some(frame)
    }

    fn decode_header(&mut self, buf: &mut BytesMut) -> Result<Option<RequestFrame>, WireError> {
        let Some(&mux) = buf.first() else {
            return Ok(None);
        };
        if mux != MUX_HEADER {
            return Err(WireError::UnknownMux { found: mux });
        }
        let Some(&tb) = buf.get(1) else {
            return Ok(None);
        };
        let kind = if tb == SHARD_UPDATE_ACKED {
            RequestType::ShardUpdate
        } else {
            RequestType::try_from(tb)?
        };
        if kind == RequestType::ShardUpdate {
            let Some(shard_id) = be_u64(buf, 2) else {
                return Ok(None);
            };
            buf.advance(10);
            let header = UploadHeader {
                shard_id,
                acknowledged: tb == SHARD_UPDATE_ACKED,
            };
            return Ok(self.finish(RequestFrame::ShardUpload(header)));
        }
        let limit = self.limits.max_request_json;
        let json = &buf[2..buf.len().min(2 + limit)];
        let end = match self.scan.scan(json) {
            Scan::Complete(end) => end,
            Scan::NotObject { found, offset } => {
                return Err(WireError::NotAJsonObject { found, offset });
            }
            Scan::Incomplete if self.scan.scanned() >= limit => {
                return Err(WireError::RequestTooLarge { limit });
            }
            Scan::Incomplete => return Ok(None),
        };
        let request = Request::from_json(&json[..=end])?;
        // Known from here on, so a server can still answer in-band when a later check fails.
        self.opted_in = request.error_replies;
        let payload = if kind == RequestType::MetaStoreUpdate {
            let size = request.upload_size;
            let size = u64::try_from(size).map_err(|_| WireError::NegativeUploadSize { size })?;
            if size > self.limits.max_upload_size {
                return Err(WireError::UploadTooLarge {
                    size,
                    limit: self.limits.max_upload_size,
                });
            }
            usize::try_from(size).map_err(|_| WireError::UploadTooLarge {
                size,
                limit: self.limits.max_upload_size,
            })?
        } else {
            0
        };
        self.state = State::Payload {
            kind,
            request: Box::new(request),
            json_end: 2 + end + 1,
            payload,
        };
        self.decode_payload(buf)
    }

    fn decode_payload(&mut self, buf: &mut BytesMut) -> Result<Option<RequestFrame>, WireError> {
        let State::Payload {
            json_end, payload, ..
        } = &self.state
        else {
            return Ok(None);
        };
        let (json_end, payload) = (*json_end, *payload);
        let Some(&nl) = buf.get(json_end) else {
            return Ok(None);
        };
        if nl != b'\n' {
            return Err(WireError::MissingNewline { found: nl });
        }
        let total = json_end + 1 + payload;
        if buf.len() < total {
            reserve_toward(buf, total);
            return Ok(None);
        }
        let State::Payload { kind, request, .. } = std::mem::take(&mut self.state) else {
            return Ok(None);
        };
        let mut frame = buf.split_to(total);
        frame.advance(json_end + 1);
        let frame = if kind == RequestType::MetaStoreUpdate {
            RequestFrame::MetaStoreUpdate {
                request: *request,
                payload: Bytes::from(frame),
            }
        } else {
            RequestFrame::Request {
                kind,
                request: *request,
            }
        };
        Ok(self.finish(frame))
    }
}

impl Decoder for RequestCodec {
    type Item = RequestFrame;
    type Error = WireError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RequestFrame>, WireError> {
        match self.state {
            State::Header => self.decode_header(buf),
            State::Payload { .. } => self.decode_payload(buf),
            State::Done => Ok(None),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<RequestFrame>, WireError> {
        if let Some(f) = self.decode(buf)? {
            return Ok(Some(f));
        }
        match self.state {
            State::Done => Ok(None),
            State::Header if buf.is_empty() => Ok(None),
            _ => Err(WireError::Truncated {
                frame: "request",
                buffered: buf.len(),
            }),
        }
    }
}

impl Encoder<MetaBackup> for RequestCodec {
    type Error = WireError;

    fn encode(&mut self, item: MetaBackup, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst);
        Ok(())
    }
}

impl Encoder<InfoResponse> for RequestCodec {
    type Error = WireError;

    fn encode(&mut self, item: InfoResponse, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst)
    }
}

impl Encoder<ShardIdMap> for RequestCodec {
    type Error = WireError;

    fn encode(&mut self, item: ShardIdMap, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst);
        Ok(())
    }
}

impl Encoder<ErrorReply> for RequestCodec {
    type Error = WireError;

    fn encode(&mut self, item: ErrorReply, dst: &mut BytesMut) -> Result<(), WireError> {
        if !self.opted_in {
            return Err(WireError::ErrorRepliesNotNegotiated);
        }
        item.encode(dst)
    }
}

impl Encoder<UploadAck> for RequestCodec {
    type Error = WireError;

    fn encode(&mut self, item: UploadAck, dst: &mut BytesMut) -> Result<(), WireError> {
        if !self.opted_in {
            return Err(WireError::ErrorRepliesNotNegotiated);
        }
        item.encode(dst);
        Ok(())
    }
}
