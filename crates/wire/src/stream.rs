//! Raw streams (tar bodies) after a frame: the start-of-stream probe, the upload
//! acknowledgement, and handing the connection back as a plain reader.

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::{Decoder, Encoder, Framed};

use crate::error_reply::{self, ErrorProbe};
use crate::magic::{UPLOAD_ACK_MAGIC, be_u64, is_prefix_of};
use crate::{Limits, RequestFrame, WireError};

/// What a type-0/5 reply begins with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// Tar bytes follow (still in the read buffer): take them with [`into_raw_stream`].
    Data,
}

/// Client codec for a type-0/5 connection: encodes the request, then tells a tar body from an
/// opted-in [`ErrorReply`](crate::ErrorReply) without consuming any tar byte.
///
/// `decode` returns `Some(StreamStart::Data)` once 8 bytes show it is not an error reply (or at
/// EOF with fewer); `decode_eof` on an empty buffer returns `Ok(None)` (influx's 0-byte
/// failure). Afterwards the codec yields nothing and leaves every byte in the buffer.
#[derive(Debug, Clone, Default)]
pub struct StreamStartCodec {
    limits: Limits,
    done: bool,
}

impl StreamStartCodec {
    /// A codec with the given limits.
    pub fn new(limits: Limits) -> Self {
        StreamStartCodec {
            limits,
            done: false,
        }
    }
}

impl Decoder for StreamStartCodec {
    type Item = StreamStart;
    type Error = WireError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<StreamStart>, WireError> {
        if self.done || buf.is_empty() {
            return Ok(None);
        }
        match error_reply::probe(buf, &self.limits)? {
            ErrorProbe::NeedMore => Ok(None),
            ErrorProbe::NotError => {
                self.done = true;
                Ok(Some(StreamStart::Data))
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<StreamStart>, WireError> {
        if let Some(s) = self.decode(buf)? {
            return Ok(Some(s));
        }
        if self.done || buf.is_empty() {
            return Ok(None);
        }
        if buf.len() >= 8 {
            return Err(WireError::Truncated {
                frame: "error reply",
                buffered: buf.len(),
            });
        }
        // Fewer than 8 bytes that look like the start of an error magic: a short body.
        self.done = true;
        Ok(Some(StreamStart::Data))
    }
}

impl Encoder<RequestFrame> for StreamStartCodec {
    type Error = WireError;

    fn encode(&mut self, item: RequestFrame, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst)
    }
}

/// snapshotd's reply to an acknowledged shard upload (`magic 0x59590ACC | files u64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadAck {
    /// Number of shard files the server restored from the tar.
    pub files: u64,
}

impl UploadAck {
    /// Appends the 16-byte frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(16);
        dst.put_u64(UPLOAD_ACK_MAGIC);
        dst.put_u64(self.files);
    }
}

/// Client codec for an acknowledged upload: encodes the header, decodes [`UploadAck`] or an
/// error reply after the client has finished writing the tar (half-close).
#[derive(Debug, Clone, Default)]
pub struct UploadAckCodec {
    limits: Limits,
    done: bool,
}

impl UploadAckCodec {
    /// A codec with the given limits.
    pub fn new(limits: Limits) -> Self {
        UploadAckCodec {
            limits,
            done: false,
        }
    }
}

impl Decoder for UploadAckCodec {
    type Item = UploadAck;
    type Error = WireError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<UploadAck>, WireError> {
        if self.done {
            return error_reply::trailing(buf, "upload ack").map(|()| None);
        }
        if error_reply::probe(buf, &self.limits)? == ErrorProbe::NeedMore
            || is_prefix_of(buf, UPLOAD_ACK_MAGIC)
        {
            return Ok(None);
        }
        let magic = be_u64(buf, 0).unwrap_or_default();
        if magic != UPLOAD_ACK_MAGIC {
            return Err(WireError::BadMagic {
                frame: "upload ack",
                found: magic,
                expected: UPLOAD_ACK_MAGIC,
            });
        }
        let Some(files) = be_u64(buf, 8) else {
            return Ok(None);
        };
        let _ = buf.split_to(16);
        self.done = true;
        Ok(Some(UploadAck { files }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<UploadAck>, WireError> {
        match self.decode(buf)? {
            Some(f) => Ok(Some(f)),
            None if buf.is_empty() => Ok(None),
            None => Err(WireError::Truncated {
                frame: "upload ack",
                buffered: buf.len(),
            }),
        }
    }
}

impl Encoder<RequestFrame> for UploadAckCodec {
    type Error = WireError;

    fn encode(&mut self, item: RequestFrame, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst)
    }
}

/// Ends framing and returns the connection as one reader: first the bytes the codec had
/// already buffered (the start of the tar), then the rest of the socket.
///
/// Use it after [`RequestCodec`](crate::RequestCodec) yielded a
/// [`RequestFrame::ShardUpload`] (server) or [`StreamStartCodec`] yielded
/// [`StreamStart::Data`] (client). Nothing is buffered beyond what was already read. Writes
/// still buffered in the `Framed` are dropped, so flush before calling.
pub fn into_raw_stream<T: AsyncRead + Unpin, C>(
    framed: Framed<T, C>,
) -> tokio::io::Chain<std::io::Cursor<BytesMut>, T> {
    let parts = framed.into_parts();
    std::io::Cursor::new(parts.read_buf).chain(parts.io)
}
