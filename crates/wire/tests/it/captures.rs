//! Every captured influxd 1.6.7 connection decodes, and re-encodes byte for byte.

use bytes::BytesMut;
use snapshotd_wire::portable::{MetaSummary, PortableData};
use snapshotd_wire::{
    GoTime, InfoCodec, Limits, MetaBackupCodec, NULL_NODE, RequestCodec, RequestFrame, RequestType,
    ShardIdMapCodec, StreamStart, StreamStartCodec,
};

use crate::util::{connections, decode_all, decode_bytewise};

fn reencode(f: &RequestFrame) -> Vec<u8> {
    let mut out = BytesMut::new();
    f.encode(&mut out).unwrap();
    out.to_vec()
}

#[test]
fn every_request_decodes_and_reencodes_identically() {
    let mut seen = [0usize; 8];
    for c in connections() {
        let (frames, rest) = decode_all(&mut RequestCodec::new(Limits::default()), &c.c2s)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(frames.len(), 1, "{}", c.name);
        let f = &frames[0];
        assert_eq!(f.kind().as_u8(), c.kind, "{}", c.name);
        assert!(!f.wants_error_replies(), "{}: influx never opts in", c.name);
        seen[usize::from(c.kind)] += 1;
        let enc = reencode(f);
        match f {
            RequestFrame::ShardUpload(h) => {
                assert_eq!(enc, c.c2s[..10], "{}", c.name);
                assert!(!h.acknowledged);
                // The tar stays in the read buffer for the caller, untouched.
                assert_eq!(&rest[..], &c.c2s[10..], "{}", c.name);
                assert_eq!(rest.len() % 512, 0, "{}: tar is 512-aligned", c.name);
            }
            _ => {
                assert_eq!(enc, c.c2s, "{}", c.name);
                assert!(rest.is_empty(), "{}", c.name);
            }
        }
        // Same result when the peer trickles one byte at a time.
        let (slow, _) = decode_bytewise(&mut RequestCodec::new(Limits::default()), &c.c2s).unwrap();
        assert_eq!(slow, frames, "{}", c.name);
    }
    assert_eq!(seen, [15, 6, 0, 5, 0, 3, 4, 11], "capture set changed");
}

#[test]
fn request_fields_match_the_capture_readme() {
    let by_name = |n: &str| {
        let c = connections().into_iter().find(|c| c.name == n).unwrap();
        let (mut f, _) = decode_all(&mut RequestCodec::new(Limits::default()), &c.c2s).unwrap();
        f.remove(0)
    };
    let RequestFrame::Request { kind, request } =
        by_name("A3_backup_portable_db1_export/04-type5-ShardExport")
    else {
        panic!("not a JSON request")
    };
    assert_eq!(kind, RequestType::ShardExport);
    assert_eq!(request.backup_database, "db1");
    assert_eq!(request.backup_retention_policy, "autogen");
    assert_eq!(request.shard_id, 2);
    assert!(request.since.is_zero());
    assert_eq!(
        request.export_start,
        GoTime::parse("2021-01-05T00:00:00Z").unwrap()
    );
    assert_eq!(request.export_end.to_string(), "2021-01-12T12:00:00Z");

    let RequestFrame::MetaStoreUpdate { request, payload } =
        by_name("B2_restore_portable_db2_rp2_renamed/01-type6-MetaStoreUpdate")
    else {
        panic!("not an upload")
    };
    assert_eq!(request.restore_database, "db2copy");
    assert_eq!(request.restore_retention_policy, "rp2copy");
    assert_eq!(request.upload_size, 528);
    assert_eq!(payload.len(), 528);
    // The uploaded blob is the one in the portable `.meta` of A2.
    let meta = std::fs::read(snapshotd_testutil::vector(
        "influx/backups/A2_db2/20261122T022310Z.meta",
    ))
    .unwrap();
    let wrapped = PortableData::from_file_bytes(&meta, &Limits::default()).unwrap();
    assert_eq!(wrapped.data, payload);

    let RequestFrame::ShardUpload(h) =
        by_name("B2_restore_portable_db2_rp2_renamed/03-type7-ShardUpdate")
    else {
        panic!("not an upload")
    };
    assert_eq!(h.shard_id, 8);
}

#[test]
fn every_response_decodes_and_reencodes_identically() {
    let limits = Limits::default();
    let mut checked = 0;
    for c in connections() {
        let mut out = BytesMut::new();
        match c.kind {
            1 => {
                let (f, _) = decode_all(&mut MetaBackupCodec::new(limits), &c.s2c).unwrap();
                assert_eq!(f.len(), 1, "{}", c.name);
                assert_eq!(f[0].node, NULL_NODE);
                assert_eq!(f[0].meta.len(), 528);
                let s = MetaSummary::decode_blob(&f[0].meta, &limits).unwrap();
                assert_eq!(s.max_shard_id, 6);
                f[0].encode(&mut out);
                let (slow, _) = decode_bytewise(&mut MetaBackupCodec::new(limits), &c.s2c).unwrap();
                assert_eq!(slow, f);
            }
            3 => {
                let (f, _) = decode_all(&mut InfoCodec::new(limits), &c.s2c).unwrap();
                assert_eq!(f.len(), 1, "{}", c.name);
                assert!(f[0].shard_paths().all(|p| p.is_ok()), "{}", c.name);
                f[0].encode(&mut out).unwrap();
                let (slow, _) = decode_bytewise(&mut InfoCodec::new(limits), &c.s2c).unwrap();
                assert_eq!(slow, f);
            }
            6 => {
                let (f, _) = decode_all(&mut ShardIdMapCodec::new(limits), &c.s2c).unwrap();
                assert_eq!(f.len(), 1, "{}", c.name);
                f[0].encode(&mut out);
                let (slow, _) = decode_bytewise(&mut ShardIdMapCodec::new(limits), &c.s2c).unwrap();
                assert_eq!(slow, f);
            }
            0 | 5 => {
                let (f, rest) = decode_all(&mut StreamStartCodec::new(limits), &c.s2c).unwrap();
                assert_eq!(f, vec![StreamStart::Data], "{}", c.name);
                assert_eq!(&rest[..], &c.s2c[..], "tar bytes are not consumed");
                out.extend_from_slice(&rest);
            }
            7 => assert!(c.s2c.is_empty(), "influx never answers a shard upload"),
            k => panic!("unexpected type {k}"),
        }
        assert_eq!(&out[..], &c.s2c[..], "{}", c.name);
        checked += 1;
    }
    assert_eq!(checked, 44);
}

#[test]
fn id_maps_carry_the_documented_pairs() {
    let limits = Limits::default();
    let maps: Vec<_> = connections()
        .into_iter()
        .filter(|c| c.kind == 6)
        .map(|c| {
            let (mut f, _) = decode_all(&mut ShardIdMapCodec::new(limits), &c.s2c).unwrap();
            (c.name, f.remove(0))
        })
        .collect();
    let get = |p: &str| &maps.iter().find(|(n, _)| n.starts_with(p)).unwrap().1;
    let mut b1 = get("B1").pairs.clone();
    b1.sort();
    assert_eq!(b1, (1..=6).map(|i| (i, i)).collect::<Vec<_>>());
    assert_eq!(get("B2").new_id(5), Some(7));
    assert_eq!(get("B2").new_id(6), Some(8));
    assert_eq!(get("B3").new_id(3), Some(11));
    assert!(get("B4").is_empty(), "conflict = nothing imported");
}

#[test]
fn info_paths_split_like_go() {
    let c = connections()
        .into_iter()
        .find(|c| c.name.starts_with("A1") && c.kind == 3)
        .unwrap();
    let (f, _) = decode_all(&mut InfoCodec::new(Limits::default()), &c.s2c).unwrap();
    let ids: Vec<(String, String, u64)> = f[0]
        .shard_paths()
        .map(|p| {
            let p = p.unwrap();
            (p.db, p.rp, p.id)
        })
        .collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(ids[0], ("db1".into(), "autogen".into(), 1));
    assert_eq!(ids[5], ("db2".into(), "rp2".into(), 6));
}
