//! One test per limit: each violation is its own error, raised before allocating.

use bytes::{BufMut, BytesMut};
use snapshotd_wire::portable::{Manifest, MetaSummary, PortableData};
use snapshotd_wire::{
    BACKUP_MAGIC, ERROR_MAGIC, InfoCodec, Limits, MetaBackupCodec, Request, RequestCodec,
    RequestFrame, RequestType, ShardIdMapCodec, StreamStartCodec, WireError,
};
use tokio_util::codec::Decoder;

fn request_bytes(kind: RequestType, r: &Request) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(3);
    b.put_u8(kind.as_u8());
    b.put_slice(&r.to_json_line().unwrap());
    b
}

#[test]
fn request_json_limit() {
    let limits = Limits {
        max_request_json: 400,
        ..Limits::default()
    };
    let mut r = Request::new(RequestType::ShardBackup);
    r.backup_database = "x".repeat(100);
    let mut ok = request_bytes(RequestType::ShardBackup, &r);
    assert!(RequestCodec::new(limits).decode(&mut ok).unwrap().is_some());
    r.backup_database = "x".repeat(1000);
    let mut big = request_bytes(RequestType::ShardBackup, &r);
    // Error as soon as the limit is passed, even before the object ends.
    let mut head = big.split_to(500);
    let err = RequestCodec::new(limits).decode(&mut head).unwrap_err();
    assert!(
        matches!(err, WireError::RequestTooLarge { limit: 400 }),
        "{err}"
    );
}

#[test]
fn upload_size_limit_checked_before_reserving() {
    let limits = Limits {
        max_upload_size: 1000,
        ..Limits::default()
    };
    let mut r = Request::new(RequestType::MetaStoreUpdate);
    r.upload_size = 1001;
    let mut b = request_bytes(RequestType::MetaStoreUpdate, &r);
    let err = RequestCodec::new(limits).decode(&mut b).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::UploadTooLarge {
                size: 1001,
                limit: 1000
            }
        ),
        "{err}"
    );

    r.upload_size = i64::MAX;
    let mut b = request_bytes(RequestType::MetaStoreUpdate, &r);
    let cap = b.capacity();
    assert!(RequestCodec::new(Limits::default()).decode(&mut b).is_err());
    assert_eq!(b.capacity(), cap, "nothing reserved for a rejected size");

    r.upload_size = 1000;
    let mut b = request_bytes(RequestType::MetaStoreUpdate, &r);
    let mut codec = RequestCodec::new(limits);
    assert!(
        codec.decode(&mut b).unwrap().is_none(),
        "waits for the payload"
    );
    b.put_slice(&[7u8; 1000]);
    let f = codec.decode(&mut b).unwrap().unwrap();
    assert!(
        matches!(f, RequestFrame::MetaStoreUpdate { ref payload, .. } if payload.len() == 1000)
    );
}

#[test]
fn negative_upload_size_is_rejected() {
    for size in [-1, -2, i64::MIN] {
        let mut r = Request::new(RequestType::MetaStoreUpdate);
        r.upload_size = size;
        let mut b = request_bytes(RequestType::MetaStoreUpdate, &r);
        let err = RequestCodec::new(Limits::default())
            .decode(&mut b)
            .unwrap_err();
        assert!(
            matches!(err, WireError::NegativeUploadSize { size: s } if s == size),
            "{err}"
        );
    }
}

#[test]
fn info_response_limit() {
    let limits = Limits {
        max_info_response: 64,
        ..Limits::default()
    };
    let json = format!("{{\"Paths\":[\"{}\"]}}\n", "d/r/1\",\"".repeat(20));
    let mut b = BytesMut::from(json.as_bytes());
    let err = InfoCodec::new(limits).decode(&mut b).unwrap_err();
    assert!(
        matches!(err, WireError::InfoTooLarge { limit: 64 }),
        "{err}"
    );
    let mut small = BytesMut::from(&b"{\"Paths\":[\"d/r/1\"]}\n"[..]);
    assert!(InfoCodec::new(limits).decode(&mut small).unwrap().is_some());
}

#[test]
fn id_map_pair_limit_checked_before_reserving() {
    let limits = Limits {
        max_id_map_pairs: 3,
        ..Limits::default()
    };
    for n in [4u64, u64::MAX / 16, u64::MAX] {
        let mut b = BytesMut::new();
        b.put_u64(BACKUP_MAGIC);
        b.put_u64(n);
        let cap = b.capacity();
        let err = ShardIdMapCodec::new(limits).decode(&mut b).unwrap_err();
        assert!(
            matches!(err, WireError::TooManyPairs { pairs, limit: 3 } if pairs == n),
            "{err}"
        );
        assert_eq!(b.capacity(), cap);
    }
}

#[test]
fn meta_blob_limit_checked_before_reserving() {
    let limits = Limits {
        max_meta_blob: 100,
        ..Limits::default()
    };
    let mut b = BytesMut::new();
    b.put_u64(BACKUP_MAGIC);
    b.put_u64(u64::MAX);
    let cap = b.capacity();
    let err = MetaBackupCodec::new(limits).decode(&mut b).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::MetaBlobTooLarge {
                len: u64::MAX,
                limit: 100
            }
        ),
        "{err}"
    );
    assert_eq!(b.capacity(), cap);
    // Also bounds `.meta` files and summaries.
    let file = PortableData::new(vec![0u8; 200].into()).to_file_bytes();
    assert!(matches!(
        PortableData::from_file_bytes(&file, &limits),
        Err(WireError::MetaBlobTooLarge { .. })
    ));
    assert!(matches!(
        MetaSummary::decode_blob(&[0u8; 101], &limits),
        Err(WireError::MetaBlobTooLarge {
            len: 101,
            limit: 100
        })
    ));
}

#[test]
fn node_json_limit() {
    let limits = Limits {
        max_node_json: 4,
        ..Limits::default()
    };
    let mut b = BytesMut::new();
    b.put_u64(BACKUP_MAGIC);
    b.put_u64(0);
    b.put_u64(5);
    let err = MetaBackupCodec::new(limits).decode(&mut b).unwrap_err();
    assert!(
        matches!(err, WireError::NodeJsonTooLarge { len: 5, limit: 4 }),
        "{err}"
    );
}

#[test]
fn error_reply_limit() {
    let limits = Limits {
        max_error_reply: 10,
        ..Limits::default()
    };
    let mut b = BytesMut::new();
    b.put_u64(ERROR_MAGIC);
    b.put_u64(11);
    let err = StreamStartCodec::new(limits).decode(&mut b).unwrap_err();
    assert!(
        matches!(err, WireError::ErrorReplyTooLarge { len: 11, limit: 10 }),
        "{err}"
    );
}

#[test]
fn manifest_size_limit() {
    let big = vec![b' '; Manifest::MAX_BYTES + 1];
    assert!(matches!(
        Manifest::from_bytes(&big),
        Err(WireError::ManifestTooLarge { .. })
    ));
}

#[test]
fn defaults_are_the_documented_values() {
    let l = Limits::default();
    assert_eq!(l.max_request_json, 64 * 1024);
    assert_eq!(l.max_upload_size, 64 << 20);
    assert_eq!(l.max_info_response, 16 << 20);
    assert_eq!(l.max_id_map_pairs, 1 << 20);
    assert_eq!(l.max_meta_blob, 64 << 20);
    assert_eq!(l.max_node_json, 64 * 1024);
    assert_eq!(l.max_error_reply, 64 * 1024);
}

#[test]
fn announced_lengths_do_not_preallocate_memory() {
    // Within the limits, but nothing sent yet: memory must follow the bytes that arrive.
    let mut r = Request::new(RequestType::MetaStoreUpdate);
    r.upload_size = 60 << 20;
    let mut b = request_bytes(RequestType::MetaStoreUpdate, &r);
    assert!(RequestCodec::default().decode(&mut b).unwrap().is_none());
    assert!(b.capacity() < 1 << 20, "reserved {}", b.capacity());

    let mut m = BytesMut::new();
    m.put_u64(BACKUP_MAGIC);
    m.put_u64(60 << 20);
    assert!(MetaBackupCodec::default().decode(&mut m).unwrap().is_none());
    assert!(m.capacity() < 1 << 20, "reserved {}", m.capacity());

    let mut s = BytesMut::new();
    s.put_u64(BACKUP_MAGIC);
    s.put_u64(1 << 20);
    assert!(ShardIdMapCodec::default().decode(&mut s).unwrap().is_none());
    assert!(s.capacity() < 1 << 20, "reserved {}", s.capacity());
}
