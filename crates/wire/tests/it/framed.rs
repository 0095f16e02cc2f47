//! The codecs driven through tokio-util's `Framed` over an in-memory duplex pipe.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use snapshotd_wire::{
    InfoCodec, InfoResponse, Limits, MetaBackup, MetaBackupCodec, Request, RequestCodec,
    RequestFrame, RequestType, ShardIdMap, ShardIdMapCodec, StreamStart, StreamStartCodec,
    UploadHeader, into_raw_stream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Framed;

#[tokio::test]
async fn meta_backup_over_framed() {
    let (a, b) = tokio::io::duplex(64);
    let server = tokio::spawn(async move {
        let mut s = Framed::new(b, RequestCodec::new(Limits::default()));
        let f = s.next().await.unwrap().unwrap();
        assert_eq!(f.kind(), RequestType::MetastoreBackup);
        s.send(MetaBackup::new(Bytes::from(vec![9u8; 1000])))
            .await
            .unwrap();
    });
    let mut c = Framed::new(a, MetaBackupCodec::new(Limits::default()));
    c.send(RequestFrame::request(
        RequestType::MetastoreBackup,
        Request::default(),
    ))
    .await
    .unwrap();
    let m = c.next().await.unwrap().unwrap();
    assert_eq!(m.meta.len(), 1000);
    assert!(c.next().await.is_none(), "EOF after the frame");
    server.await.unwrap();
}

#[tokio::test]
async fn info_and_id_map_over_framed() {
    let (a, b) = tokio::io::duplex(16);
    let server = tokio::spawn(async move {
        let mut s = Framed::new(b, RequestCodec::default());
        s.next().await.unwrap().unwrap();
        s.send(InfoResponse::default()).await.unwrap();
    });
    let mut c = Framed::new(a, InfoCodec::default());
    c.send(RequestFrame::request(
        RequestType::DatabaseInfo,
        Request::default(),
    ))
    .await
    .unwrap();
    assert_eq!(c.next().await.unwrap().unwrap(), InfoResponse::default());
    server.await.unwrap();

    let (a, b) = tokio::io::duplex(16);
    let server = tokio::spawn(async move {
        let mut s = Framed::new(b, RequestCodec::default());
        let f = s.next().await.unwrap().unwrap();
        let RequestFrame::MetaStoreUpdate { payload, .. } = f else {
            panic!()
        };
        assert_eq!(&payload[..], b"blob");
        s.send(ShardIdMap {
            pairs: vec![(5, 7)],
        })
        .await
        .unwrap();
    });
    let mut c = Framed::new(a, ShardIdMapCodec::default());
    c.send(RequestFrame::meta_store_update(
        Request::default(),
        Bytes::from_static(b"blob"),
    ))
    .await
    .unwrap();
    assert_eq!(c.next().await.unwrap().unwrap().new_id(5), Some(7));
    server.await.unwrap();
}

#[tokio::test]
async fn shard_upload_hands_over_the_tar_stream() {
    let tar: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let (mut a, b) = tokio::io::duplex(128);
    let expect = tar.clone();
    let server = tokio::spawn(async move {
        let mut s = Framed::new(b, RequestCodec::default());
        let f = s.next().await.unwrap().unwrap();
        assert_eq!(f, RequestFrame::ShardUpload(UploadHeader::new(11)));
        let mut body = Vec::new();
        into_raw_stream(s).read_to_end(&mut body).await.unwrap();
        assert_eq!(body, expect);
    });
    // Header and tar in one write, as the Go client's buffered copy often does.
    let mut all = UploadHeader::new(11).to_bytes().to_vec();
    all.extend_from_slice(&tar);
    a.write_all(&all).await.unwrap();
    a.shutdown().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn tar_response_hands_over_the_stream() {
    let tar = vec![0u8; 2048];
    let (a, mut b) = tokio::io::duplex(100);
    let body = tar.clone();
    let server = tokio::spawn(async move {
        let mut req = Vec::new();
        while !req.contains(&b'\n') {
            let mut chunk = [0u8; 64];
            let n = b.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            req.extend_from_slice(&chunk[..n]);
        }
        b.write_all(&body).await.unwrap();
    });
    let mut c = Framed::new(a, StreamStartCodec::default());
    c.send(RequestFrame::request(
        RequestType::ShardBackup,
        Request::default(),
    ))
    .await
    .unwrap();
    assert_eq!(c.next().await.unwrap().unwrap(), StreamStart::Data);
    let mut got = Vec::new();
    into_raw_stream(c).read_to_end(&mut got).await.unwrap();
    assert_eq!(got, tar);
    server.await.unwrap();
}

#[tokio::test]
async fn eof_mid_frame_is_truncated_through_framed_read() {
    let mut frame = bytes::BytesMut::new();
    ShardIdMap {
        pairs: vec![(1, 2), (3, 4)],
    }
    .encode(&mut frame);
    let (mut a, b) = tokio::io::duplex(8);
    let writer = tokio::spawn(async move {
        // Dribble all but the last byte, in small writes, then close.
        for chunk in frame[..frame.len() - 1].chunks(3) {
            a.write_all(chunk).await.unwrap();
        }
        a.shutdown().await.unwrap();
    });
    let mut r = tokio_util::codec::FramedRead::new(b, ShardIdMapCodec::default());
    match r.next().await {
        Some(Err(snapshotd_wire::WireError::Truncated { buffered: 47, .. })) => {}
        other => panic!("{other:?}"),
    }
    writer.await.unwrap();
}
