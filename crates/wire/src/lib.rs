//! The InfluxDB 1.x snapshotter wire protocol (the port-8088 backup/restore service).
//!
//! Types and [tokio-util codecs](tokio_util::codec) byte-compatible with influxd 1.6/1.8 and
//! its `influxd backup` / `influxd restore` clients, with hard size limits ([`Limits`]) checked
//! before any allocation. No sockets, no storage, no retries. The protocol as implemented,
//! including snapshotd's opt-in extensions, is described in `docs/protocol.md`.
//!
//! | side | codec | decodes | encodes |
//! |---|---|---|---|
//! | server | [`RequestCodec`] | [`RequestFrame`] | [`MetaBackup`], [`InfoResponse`], [`ShardIdMap`], opt-in [`ErrorReply`] / [`UploadAck`] |
//! | client, type 1 | [`MetaBackupCodec`] | [`MetaBackup`] | [`RequestFrame`] |
//! | client, types 3/4 | [`InfoCodec`] | [`InfoResponse`] | [`RequestFrame`] |
//! | client, type 6 | [`ShardIdMapCodec`] | [`ShardIdMap`] | [`RequestFrame`] |
//! | client, types 0/5 | [`StreamStartCodec`] | [`StreamStart`] (tar follows raw) | [`RequestFrame`] |
//! | client, acked type 7 | [`UploadAckCodec`] | [`UploadAck`] | [`RequestFrame`] |
//!
//! Tar bodies are never framed: after the header, [`into_raw_stream`] (or
//! `Framed::into_parts`) hands back the transport plus the bytes already buffered.
//! Portable-backup files live in [`portable`].
//!
//! # Example: a server decodes a request and replies
//!
//! ```
//! use bytes::BytesMut;
//! use snapshotd_wire::{InfoResponse, Limits, RequestCodec, RequestFrame, RequestType};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! // What `influxd backup -portable -db db1` sends on its second connection.
//! let mut buf = BytesMut::from(&b"\x03\x03{\"Type\":3,\"BackupDatabase\":\"db1\",\
//! \"RestoreDatabase\":\"\",\"BackupRetentionPolicy\":\"\",\"RestoreRetentionPolicy\":\"\",\
//! \"ShardID\":0,\"Since\":\"0001-01-01T00:00:00Z\",\"ExportStart\":\"0001-01-01T00:00:00Z\",\
//! \"ExportEnd\":\"0001-01-01T00:00:00Z\",\"UploadSize\":0}\n"[..]);
//!
//! let mut codec = RequestCodec::new(Limits::default());
//! let frame = codec.decode(&mut buf)?.expect("a complete request");
//! let RequestFrame::Request { kind, request } = frame else { unreachable!() };
//! assert_eq!(kind, RequestType::DatabaseInfo);
//! assert_eq!(request.backup_database, "db1");
//!
//! let mut out = BytesMut::new();
//! let reply = InfoResponse { paths: vec!["db1/autogen/1".into()] };
//! codec.encode(reply, &mut out)?;
//! assert_eq!(&out[..], b"{\"Paths\":[\"db1/autogen/1\"]}\n");
//! # Ok::<(), snapshotd_wire::WireError>(())
//! ```
//!
//! # Example: a client asks for the metastore and reads the reply
//!
//! With a socket this is `Framed::new(tcp, MetaBackupCodec::new(limits))`, then `send` and
//! `next`; here the bytes are shown directly.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use snapshotd_wire::{Limits, MetaBackup, MetaBackupCodec, Request, RequestFrame, RequestType};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = MetaBackupCodec::new(Limits::default());
//! let mut out = BytesMut::new();
//! codec.encode(RequestFrame::request(RequestType::MetastoreBackup, Request::default()), &mut out)?;
//! assert_eq!(out.len(), 239); // byte for byte what `influxd backup` sends
//! assert!(out.starts_with(b"\x03\x01{\"Type\":1,\"BackupDatabase\":\"\""));
//!
//! // The server's reply: magic, metaLen, blob, nodeLen, `null\n`.
//! let mut reply = BytesMut::new();
//! MetaBackup::new(Bytes::from_static(b"\x08\x00")).encode(&mut reply);
//! let frame = codec.decode_eof(&mut reply)?.expect("a complete frame");
//! assert_eq!(&frame.meta[..], b"\x08\x00");
//! assert_eq!(&frame.node[..], b"null\n");
//! # Ok::<(), snapshotd_wire::WireError>(())
//! ```

mod error;
mod error_reply;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod go_json;
mod go_time;
mod info;
mod json_scan;
mod limits;
mod magic;
mod meta_backup;
pub mod portable;
mod request;
mod request_codec;
mod request_type;
mod shard_id_map;
mod stream;

pub use error::WireError;
pub use error_reply::{ErrorCode, ErrorReply};
pub use frame::{RequestFrame, UploadHeader};
pub use go_time::{GO_ZERO_TIME, GoTime};
pub use info::{InfoCodec, InfoResponse, ShardPath};
pub use limits::Limits;
pub use magic::{BACKUP_MAGIC, ERROR_MAGIC, UPLOAD_ACK_MAGIC};
pub use meta_backup::{MetaBackup, MetaBackupCodec, NULL_NODE};
pub use request::{ERROR_REPLIES_KEY, Request};
pub use request_codec::RequestCodec;
pub use request_type::{MUX_HEADER, RequestType, SHARD_UPDATE_ACKED};
pub use shard_id_map::{ShardIdMap, ShardIdMapCodec};
pub use stream::{StreamStart, StreamStartCodec, UploadAck, UploadAckCodec, into_raw_stream};
