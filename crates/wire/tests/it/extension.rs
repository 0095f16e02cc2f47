//! The opt-in in-band error reply and the acknowledged shard upload (snapshotd extensions).

use bytes::BytesMut;
use snapshotd_wire::{
    BACKUP_MAGIC, ERROR_MAGIC, ErrorCode, ErrorReply, InfoCodec, Limits, MetaBackupCodec, Request,
    RequestCodec, RequestFrame, RequestType, ShardIdMapCodec, StreamStartCodec, UploadAck,
    UploadAckCodec, UploadHeader, WireError,
};
use tokio_util::codec::{Decoder, Encoder};

fn server_after(frame: &RequestFrame) -> RequestCodec {
    let mut b = BytesMut::new();
    frame.encode(&mut b).unwrap();
    let mut c = RequestCodec::new(Limits::default());
    assert_eq!(c.decode(&mut b).unwrap().as_ref(), Some(frame));
    c
}

#[test]
fn influx_clients_never_get_extension_frames() {
    let plain = RequestFrame::request(
        RequestType::ShardBackup,
        Request::new(RequestType::ShardBackup),
    );
    let mut c = server_after(&plain);
    assert!(!c.error_replies());
    let mut out = BytesMut::new();
    let err = c
        .encode(ErrorReply::new(ErrorCode::NotFound, "no shard 9"), &mut out)
        .unwrap_err();
    assert!(matches!(err, WireError::ErrorRepliesNotNegotiated));
    assert!(matches!(
        c.encode(UploadAck { files: 1 }, &mut out),
        Err(WireError::ErrorRepliesNotNegotiated)
    ));
    assert!(out.is_empty());
}

#[test]
fn opted_in_error_reaches_every_client_codec_as_remote() {
    let mut req = Request::new(RequestType::MetastoreBackup);
    req.error_replies = true;
    let line = String::from_utf8(req.to_json_line().unwrap()).unwrap();
    assert!(line.ends_with(",\"UploadSize\":0,\"SnapshotdErrorReplies\":true}\n"));
    let mut c = server_after(&RequestFrame::request(RequestType::MetastoreBackup, req));
    assert!(c.error_replies());
    let reply = ErrorReply::new(ErrorCode::Internal, "disk <full> & sad");
    let mut wire = BytesMut::new();
    c.encode(reply.clone(), &mut wire).unwrap();
    assert_eq!(&wire[..8], &ERROR_MAGIC.to_be_bytes());
    assert_ne!(&wire[..8], &BACKUP_MAGIC.to_be_bytes());

    let remote = |r: Result<(), WireError>| match r {
        Err(WireError::Remote(got)) => assert_eq!(got, reply),
        other => panic!("{other:?}"),
    };
    remote(
        MetaBackupCodec::new(Limits::default())
            .decode(&mut wire.clone())
            .map(|_| ()),
    );
    remote(
        InfoCodec::new(Limits::default())
            .decode(&mut wire.clone())
            .map(|_| ()),
    );
    remote(
        ShardIdMapCodec::new(Limits::default())
            .decode(&mut wire.clone())
            .map(|_| ()),
    );
    remote(
        StreamStartCodec::new(Limits::default())
            .decode(&mut wire.clone())
            .map(|_| ()),
    );
    remote(
        UploadAckCodec::new(Limits::default())
            .decode(&mut wire.clone())
            .map(|_| ()),
    );
}

#[test]
fn unknown_error_codes_from_newer_peers_decode() {
    let body = br#"{"Code":"quota_exceeded","Message":"m"}"#;
    let mut b = BytesMut::new();
    b.extend_from_slice(&ERROR_MAGIC.to_be_bytes());
    b.extend_from_slice(&(body.len() as u64).to_be_bytes());
    b.extend_from_slice(body);
    match InfoCodec::default().decode(&mut b) {
        Err(WireError::Remote(r)) => assert_eq!(r.code, ErrorCode::Unknown),
        other => panic!("{other:?}"),
    }
}

#[test]
fn acknowledged_upload_round_trip() {
    let h = UploadHeader {
        shard_id: 7,
        acknowledged: true,
    };
    assert_eq!(h.to_bytes()[1], 0x87);
    let mut c = server_after(&RequestFrame::ShardUpload(h));
    assert!(c.error_replies());
    let mut out = BytesMut::new();
    c.encode(UploadAck { files: 2 }, &mut out).unwrap();
    let mut client = UploadAckCodec::default();
    assert_eq!(
        client.decode_eof(&mut out).unwrap(),
        Some(UploadAck { files: 2 })
    );
}

#[test]
fn error_magic_cannot_start_a_normal_reply() {
    // Meta frame / id map magic, info JSON, and tar (a NUL-led header block is all zeros).
    let e = ERROR_MAGIC.to_be_bytes();
    assert_ne!(e, BACKUP_MAGIC.to_be_bytes());
    assert_ne!(e[0], b'{');
    assert_eq!(e[0], 0);
    assert!(e.iter().any(|&b| b != 0));
}

#[test]
fn opt_in_survives_a_later_decode_error() {
    let limits = Limits {
        max_upload_size: 10,
        ..Limits::default()
    };
    for opt_in in [false, true] {
        let mut r = Request::new(RequestType::MetaStoreUpdate);
        r.upload_size = 11;
        r.error_replies = opt_in;
        let mut b = BytesMut::from(&b"\x03\x06"[..]);
        b.extend_from_slice(&r.to_json_line().unwrap());
        let mut c = RequestCodec::new(limits);
        assert!(matches!(
            c.decode(&mut b),
            Err(WireError::UploadTooLarge { .. })
        ));
        assert_eq!(c.error_replies(), opt_in);
        let mut out = BytesMut::new();
        let sent = c.encode(
            ErrorReply::new(ErrorCode::BadRequest, "too large"),
            &mut out,
        );
        assert_eq!(sent.is_ok(), opt_in);
    }
}
