//! Property tests: every type round-trips through its encoder and decoder, whatever the
//! segmentation of the bytes.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use snapshotd_wire::portable::{Manifest, ManifestFile, ManifestMeta, PortableData, SnapshotdInfo};
use snapshotd_wire::{
    ErrorCode, ErrorReply, GoTime, InfoCodec, InfoResponse, Limits, MetaBackup, MetaBackupCodec,
    Request, RequestCodec, RequestFrame, RequestType, ShardIdMap, ShardIdMapCodec, UploadAck,
    UploadAckCodec, UploadHeader, WireError,
};
use tokio_util::codec::Decoder;

fn go_time() -> impl Strategy<Value = GoTime> {
    prop_oneof![
        Just(GoTime::ZERO),
        (
            -62_135_596_800i64..253_402_300_799,
            prop_oneof![Just(0u32), 0u32..1_000_000_000],
            -1439i32..=1439,
        )
            .prop_map(|(s, ns, off_min)| {
                let off = chrono::FixedOffset::east_opt(off_min * 60).unwrap();
                let dt = chrono::DateTime::from_timestamp(s, ns)
                    .unwrap()
                    .with_timezone(&off);
                GoTime::new(dt).unwrap_or(GoTime::ZERO)
            }),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9_]{1,12}",
        any::<String>(),
        "[<>&\"\\\\\u{2028}\u{7}\u{8}\u{c}\n]{0,6}",
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        any::<u8>(),
        (name(), name(), name(), name()),
        any::<u64>(),
        (go_time(), go_time(), go_time()),
        any::<i64>(),
        any::<bool>(),
    )
        .prop_map(
            |(type_code, (bd, rd, brp, rrp), shard_id, (since, s, e), upload_size, x)| Request {
                type_code,
                backup_database: bd,
                restore_database: rd,
                backup_retention_policy: brp,
                restore_retention_policy: rrp,
                shard_id,
                since,
                export_start: s,
                export_end: e,
                upload_size,
                error_replies: x,
            },
        )
}

fn frame() -> impl Strategy<Value = RequestFrame> {
    prop_oneof![
        (0u8..6, request()).prop_map(|(k, request)| RequestFrame::Request {
            kind: RequestType::try_from(k).unwrap(),
            request
        }),
        (request(), proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(r, p)| {
            let mut f = RequestFrame::meta_store_update(r.clone(), Bytes::from(p));
            if let RequestFrame::MetaStoreUpdate { request, .. } = &mut f {
                request.type_code = r.type_code;
            }
            f
        }),
        (any::<u64>(), any::<bool>()).prop_map(|(shard_id, acknowledged)| {
            RequestFrame::ShardUpload(UploadHeader {
                shard_id,
                acknowledged,
            })
        }),
    ]
}

/// Decodes `bytes` fed in pieces cut at `cuts`, then EOF.
fn decode_split<D: Decoder<Error = WireError>>(
    mut codec: D,
    bytes: &[u8],
    cuts: &[usize],
) -> Vec<D::Item> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    for p in points {
        buf.extend_from_slice(&bytes[at..p]);
        at = p;
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf).unwrap() {
        out.push(f);
    }
    out
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 0..6)
}

proptest! {
    #[test]
    fn go_time_string_round_trip(t in go_time()) {
        let s = t.to_string();
        prop_assert_eq!(GoTime::parse(&s).unwrap(), t);
    }

    #[test]
    fn request_json_round_trip(r in request()) {
        let line = r.to_json_line().unwrap();
        prop_assert_eq!(line.last(), Some(&b'\n'));
        prop_assert!(!line[..line.len() - 1].contains(&b'\n'), "Go never emits raw newlines");
        prop_assert_eq!(Request::from_json(&line[..line.len() - 1]).unwrap(), r);
    }

    #[test]
    fn request_frame_round_trip(f in frame(), c in cuts()) {
        let mut b = BytesMut::new();
        f.encode(&mut b).unwrap();
        let got = decode_split(RequestCodec::new(Limits::default()), &b, &c);
        prop_assert_eq!(got, vec![f]);
    }

    #[test]
    fn meta_backup_round_trip(meta in proptest::collection::vec(any::<u8>(), 0..2000),
                              node in proptest::collection::vec(any::<u8>(), 0..50),
                              c in cuts()) {
        let m = MetaBackup { meta: meta.into(), node: node.into() };
        let mut b = BytesMut::new();
        m.encode(&mut b);
        prop_assert_eq!(b.len(), m.encoded_len());
        prop_assert_eq!(decode_split(MetaBackupCodec::default(), &b, &c), vec![m]);
    }

    #[test]
    fn info_round_trip(paths in proptest::collection::vec(name(), 0..20), c in cuts()) {
        let r = InfoResponse { paths };
        let mut b = BytesMut::new();
        r.encode(&mut b).unwrap();
        prop_assert_eq!(decode_split(InfoCodec::default(), &b, &c), vec![r]);
    }

    #[test]
    fn id_map_round_trip(pairs in proptest::collection::vec(any::<(u64, u64)>(), 0..50), c in cuts()) {
        let m = ShardIdMap { pairs };
        let mut b = BytesMut::new();
        m.encode(&mut b);
        prop_assert_eq!(b.len(), m.encoded_len());
        prop_assert_eq!(decode_split(ShardIdMapCodec::default(), &b, &c), vec![m]);
    }

    #[test]
    fn error_reply_round_trip(msg in any::<String>(), code in 0usize..6, c in cuts()) {
        let codes = [ErrorCode::BadRequest, ErrorCode::NotFound, ErrorCode::AlreadyExists,
                     ErrorCode::Unsupported, ErrorCode::Unavailable, ErrorCode::Internal];
        let r = ErrorReply::new(codes[code], msg);
        let mut b = BytesMut::new();
        r.encode(&mut b).unwrap();
        let mut codec = ShardIdMapCodec::default();
        let mut buf = BytesMut::new();
        let mut res = Ok(None);
        let mut points: Vec<usize> = c.iter().map(|x| x % (b.len() + 1)).collect();
        points.push(b.len());
        points.sort();
        let mut at = 0;
        for p in points {
            buf.extend_from_slice(&b[at..p]);
            at = p;
            res = codec.decode(&mut buf);
            if res.is_err() { break; }
        }
        match res {
            Err(WireError::Remote(got)) => prop_assert_eq!(got, r),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn upload_ack_round_trip(files in any::<u64>(), c in cuts()) {
        let a = UploadAck { files };
        let mut b = BytesMut::new();
        a.encode(&mut b);
        prop_assert_eq!(decode_split(UploadAckCodec::default(), &b, &c), vec![a]);
    }

    #[test]
    fn portable_data_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2000), id in any::<u64>()) {
        let p = PortableData { data: data.into(), max_node_id: id };
        let bytes = p.to_file_bytes();
        prop_assert_eq!(PortableData::from_file_bytes(&bytes, &Limits::default()).unwrap(), p);
    }

    #[test]
    fn manifest_round_trip(
        files in proptest::collection::vec(
            (name(), name(), any::<u64>(), name(), any::<i64>(), proptest::option::of("[0-9a-f]{64}"), proptest::option::of(any::<u64>())),
            0..5),
        ext in proptest::option::of((name(), proptest::option::of(any::<u64>()), any::<bool>())),
    ) {
        let m = Manifest {
            meta: ManifestMeta { file_name: "x.meta".into(), size: 5, ..ManifestMeta::default() },
            files: files.into_iter().map(|(d, p, id, f, size, sha, bytes)| ManifestFile {
                database: d, policy: p, shard_id: id, file_name: f, size, last_modified: 0,
                sha256: sha, bytes,
            }).collect(),
            snapshotd: ext.map(|(db, shard, complete)| SnapshotdInfo {
                version: "v".into(), database: db, shard_id: shard, complete,
                ..SnapshotdInfo::default()
            }),
            ..Manifest::default()
        };
        let bytes = m.to_bytes().unwrap();
        prop_assert_ne!(bytes.last(), Some(&b'\n'));
        let back = Manifest::from_bytes(&bytes).unwrap();
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
        prop_assert_eq!(back, m);
    }
}
