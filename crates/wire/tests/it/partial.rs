//! Partial reads, EOF mid-frame and protocol errors, in the style of tokio-util's codec tests.

use bytes::{BufMut, BytesMut};
use snapshotd_wire::{
    BACKUP_MAGIC, InfoCodec, Limits, MetaBackup, MetaBackupCodec, Request, RequestCodec,
    RequestFrame, RequestType, ShardIdMap, ShardIdMapCodec, StreamStart, StreamStartCodec,
    UploadAck, UploadAckCodec, UploadHeader, WireError,
};
use tokio_util::codec::Decoder;

use crate::util::decode_bytewise;

fn upload_frame() -> Vec<u8> {
    let f = RequestFrame::meta_store_update(
        Request::new(RequestType::MetaStoreUpdate),
        bytes::Bytes::from_static(b"\x08\x00\x10\x0d"),
    );
    let mut b = BytesMut::new();
    f.encode(&mut b).unwrap();
    b.to_vec()
}

/// Every strict prefix of `full` must yield `Ok(None)` from `decode` and `Truncated` (or a
/// clean `Ok(None)` for the empty prefix) from `decode_eof`.
fn check_prefixes<D: Decoder<Error = WireError>>(mk: impl Fn() -> D, full: &[u8]) {
    for n in 0..full.len() {
        let mut buf = BytesMut::from(&full[..n]);
        let mut c = mk();
        assert!(
            c.decode(&mut buf).unwrap().is_none(),
            "prefix {n} decoded early"
        );
        match c.decode_eof(&mut buf) {
            Ok(None) if n == 0 => {}
            Err(WireError::Truncated { buffered, .. }) => assert_eq!(buffered, n),
            other => panic!("prefix {n}: {:?}", other.map(|o| o.is_some())),
        }
    }
}

#[test]
fn request_prefixes_wait_then_report_truncation() {
    check_prefixes(|| RequestCodec::new(Limits::default()), &upload_frame());
    let mut b = BytesMut::new();
    RequestFrame::request(
        RequestType::DatabaseInfo,
        Request::new(RequestType::DatabaseInfo),
    )
    .encode(&mut b)
    .unwrap();
    check_prefixes(|| RequestCodec::new(Limits::default()), &b);
    check_prefixes(
        || RequestCodec::new(Limits::default()),
        &UploadHeader::new(9).to_bytes(),
    );
}

#[test]
fn response_prefixes_wait_then_report_truncation() {
    let mut m = BytesMut::new();
    MetaBackup::new(bytes::Bytes::from_static(b"blob")).encode(&mut m);
    check_prefixes(|| MetaBackupCodec::new(Limits::default()), &m);
    let mut s = BytesMut::new();
    ShardIdMap {
        pairs: vec![(1, 2), (3, 4)],
    }
    .encode(&mut s);
    check_prefixes(|| ShardIdMapCodec::new(Limits::default()), &s);
    check_prefixes(
        || InfoCodec::new(Limits::default()),
        b"{\"Paths\":[\"a/b/1\"]}",
    );
    let mut a = BytesMut::new();
    UploadAck { files: 3 }.encode(&mut a);
    check_prefixes(|| UploadAckCodec::new(Limits::default()), &a);
}

#[test]
fn bytewise_feed_equals_whole_feed() {
    let frame = upload_frame();
    let (slow, rest) = decode_bytewise(&mut RequestCodec::new(Limits::default()), &frame).unwrap();
    assert_eq!(slow.len(), 1);
    assert!(rest.is_empty());
    let mut s = BytesMut::new();
    ShardIdMap::default().encode(&mut s);
    let (f, _) = decode_bytewise(&mut ShardIdMapCodec::new(Limits::default()), &s).unwrap();
    assert_eq!(f, vec![ShardIdMap::default()]);
}

#[test]
fn empty_connection_is_a_clean_none() {
    let mut empty = BytesMut::new();
    assert!(
        RequestCodec::default()
            .decode_eof(&mut empty)
            .unwrap()
            .is_none()
    );
    assert!(
        MetaBackupCodec::default()
            .decode_eof(&mut empty)
            .unwrap()
            .is_none()
    );
    assert!(
        InfoCodec::default()
            .decode_eof(&mut empty)
            .unwrap()
            .is_none()
    );
    assert!(
        ShardIdMapCodec::default()
            .decode_eof(&mut empty)
            .unwrap()
            .is_none()
    );
    assert!(
        StreamStartCodec::default()
            .decode_eof(&mut empty)
            .unwrap()
            .is_none()
    );
}

#[test]
fn bad_mux_and_type_bytes_are_typed_errors() {
    let mut b = BytesMut::from(&b"\x04"[..]);
    assert!(matches!(
        RequestCodec::default().decode(&mut b),
        Err(WireError::UnknownMux { found: 4 })
    ));
    for t in [8u8, 9, 0x80, 0xff] {
        let mut b = BytesMut::from(&[3u8, t][..]);
        assert!(matches!(
            RequestCodec::default().decode(&mut b),
            Err(WireError::UnknownRequestType { found }) if found == t
        ));
    }
}

#[test]
fn json_errors_are_typed() {
    type Check = fn(&WireError) -> bool;
    let cases: [(&[u8], Check); 4] = [
        (b"\x03\x01[1]\n", |e| {
            matches!(e, WireError::NotAJsonObject { found: b'[', .. })
        }),
        (b"\x03\x01{\"ShardID\":-1}\n", |e| {
            matches!(e, WireError::BadRequestJson(_))
        }),
        (b"\x03\x01{} \n", |e| {
            matches!(e, WireError::MissingNewline { found: b' ' })
        }),
        (b"\x03\x01{\"a\":}\n", |e| {
            matches!(e, WireError::BadRequestJson(_))
        }),
    ];
    for (input, check) in cases {
        let err = RequestCodec::default()
            .decode(&mut BytesMut::from(input))
            .unwrap_err();
        assert!(check(&err), "{input:?}: {err}");
    }
}

#[test]
fn go_decoder_leniency_is_reproduced() {
    // Whitespace before the object, odd key case, unknown keys, nulls: all accepted like Go.
    let mut b = BytesMut::from(
        &b"\x03\x00 \r\n{\"shardid\":4,\"BACKUPDATABASE\":\"db\",\"Since\":null,\"Extra\":[{}]}\n"
            [..],
    );
    let f = RequestCodec::default().decode(&mut b).unwrap().unwrap();
    let RequestFrame::Request { kind, request } = f else {
        panic!()
    };
    assert_eq!(kind, RequestType::ShardBackup);
    assert_eq!(request.shard_id, 4);
    assert_eq!(request.backup_database, "db");
    assert_eq!(request.type_code, 0, "missing Type = zero");
}

#[test]
fn bad_magic_and_trailing_bytes() {
    let mut b = BytesMut::new();
    b.put_u64(0x1234);
    b.put_u64(0);
    assert!(matches!(
        ShardIdMapCodec::default().decode(&mut b),
        Err(WireError::BadMagic { found: 0x1234, .. })
    ));
    let mut b = BytesMut::new();
    b.put_u64(BACKUP_MAGIC);
    b.put_u64(0);
    b.put_u8(0);
    let mut c = ShardIdMapCodec::default();
    assert!(c.decode(&mut b).unwrap().unwrap().is_empty());
    assert!(matches!(
        c.decode_eof(&mut b),
        Err(WireError::TrailingBytes { extra: 1, .. })
    ));
}

#[test]
fn stream_start_leaves_every_tar_byte() {
    let tar = [0u8; 1024];
    let mut b = BytesMut::from(&tar[..]);
    let mut c = StreamStartCodec::default();
    assert_eq!(c.decode(&mut b).unwrap(), Some(StreamStart::Data));
    assert_eq!(b.len(), 1024);
    assert_eq!(c.decode(&mut b).unwrap(), None);
    assert_eq!(c.decode_eof(&mut b).unwrap(), None);
    assert_eq!(b.len(), 1024);
}

#[test]
fn server_decoder_leaves_bytes_after_the_frame() {
    let mut b = BytesMut::from(&UploadHeader::new(42).to_bytes()[..]);
    b.put_slice(b"tar bytes");
    let mut c = RequestCodec::default();
    let f = c.decode(&mut b).unwrap().unwrap();
    assert_eq!(f, RequestFrame::ShardUpload(UploadHeader::new(42)));
    assert_eq!(c.decode(&mut b).unwrap(), None);
    assert_eq!(c.decode_eof(&mut b).unwrap(), None);
    assert_eq!(&b[..], b"tar bytes");
}
