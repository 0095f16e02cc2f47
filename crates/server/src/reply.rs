//! Reply bodies, encoded with `snapshotd-wire`: meta frame, info paths, shard-id map,
//! and the opt-in in-band error reply / upload acknowledgement.

use bytes::BytesMut;
use snapshotd_store::{ShardIdMap, ShardPath, StoreError};
use snapshotd_wire::{ErrorCode, ErrorReply, InfoResponse, MetaBackup, UploadAck};

use crate::error::RequestError;

/// Type-1 reply: magic, blob, and the node JSON `null\n` that influx OSS always sends.
pub(crate) fn meta_frame(blob: Vec<u8>) -> BytesMut {
    let frame = MetaBackup::new(blob.into());
    let mut out = BytesMut::with_capacity(frame.encoded_len());
    frame.encode(&mut out);
    out
}

/// Types 3/4 reply: `{"Paths":[...]}\n` (`null` when empty), always with `/` separators.
pub(crate) fn paths_json(paths: &[ShardPath]) -> Result<BytesMut, RequestError> {
    let info = InfoResponse {
        paths: paths
            .iter()
            .map(|p| format!("{}/{}/{}", p.database, p.retention_policy, p.shard_id))
            .collect(),
    };
    let mut out = BytesMut::new();
    info.encode(&mut out)
        .map_err(|e| RequestError::Protocol(format!("encoding info reply: {e}")))?;
    Ok(out)
}

/// Type-6 reply: magic, pair count, pairs.
pub(crate) fn id_map(map: &ShardIdMap) -> BytesMut {
    let wire = snapshotd_wire::ShardIdMap {
        pairs: map.0.clone(),
    };
    let mut out = BytesMut::with_capacity(wire.encoded_len());
    wire.encode(&mut out);
    out
}

/// Acknowledgement of a `0x87` shard upload.
pub(crate) fn upload_ack(files: u64) -> BytesMut {
    let mut out = BytesMut::with_capacity(16);
    UploadAck { files }.encode(&mut out);
    out
}

/// The in-band "busy" reply for a refused client that opted in.
pub(crate) fn busy(limit: &str) -> Option<BytesMut> {
    let message = format!("server at connection limit: {limit}");
    let mut out = BytesMut::new();
    ErrorReply::new(ErrorCode::Busy, message)
        .encode(&mut out)
        .ok()?;
    Some(out)
}

/// The in-band error reply for a client that opted in.
pub(crate) fn error_reply(e: &RequestError) -> Option<BytesMut> {
    let code = match e {
        RequestError::Unsupported(_) => ErrorCode::Unsupported,
        RequestError::Protocol(_) | RequestError::Timeout(_) => ErrorCode::BadRequest,
        RequestError::Shutdown => ErrorCode::Unavailable,
        RequestError::Evicted => ErrorCode::Busy,
        _ => match e.store_error() {
            Some(StoreError::NotFound { .. }) => ErrorCode::NotFound,
            Some(StoreError::Conflict(_)) => ErrorCode::AlreadyExists,
            Some(StoreError::Invalid(_) | StoreError::LimitExceeded { .. }) => {
                ErrorCode::BadRequest
            }
            Some(StoreError::Unsupported(_)) => ErrorCode::Unsupported,
            Some(StoreError::Locked(_)) => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        },
    };
    let mut out = BytesMut::new();
    let message = crate::error::with_causes(e);
    ErrorReply::new(code, message).encode(&mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::BridgeError;

    #[test]
    fn an_error_reply_names_the_unreadable_file_and_the_os_error_once() {
        let e = RequestError::Bridge {
            op: "shard backup",
            source: BridgeError::Store {
                sent: 0,
                source: StoreError::io(
                    "read db/autogen/4/000000001-000000001.tsm",
                    std::io::Error::from_raw_os_error(5),
                ),
            },
        };
        let body = error_reply(&e).expect("a reply");
        let text = String::from_utf8_lossy(&body[16..]).into_owned();
        assert!(text.contains("\"Code\""), "{text}");
        assert_eq!(text.matches("000000001-000000001.tsm").count(), 1, "{text}");
        assert!(text.contains("Input/output error (os error 5)"), "{text}");
    }
}
