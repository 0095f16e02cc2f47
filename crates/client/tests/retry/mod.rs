//! The metastore and info requests against a busy, refusing or silent server: retried with
//! backoff, and every final failure names its real cause.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use snapshotd_client::backup::RetryPolicy;
use snapshotd_client::{Client, ClientConfig, ClientError};
use snapshotd_wire::{ErrorCode, ErrorReply};

use crate::fake::{A1, Fake, Received, Reply};

fn busy_frame() -> Vec<u8> {
    let mut b = BytesMut::new();
    ErrorReply::new(
        ErrorCode::Busy,
        "server at connection limit (256 connections busy serving requests)",
    )
    .encode(&mut b)
    .unwrap();
    b.to_vec()
}

fn quick_client(addr: &str) -> Client {
    let mut cfg = ClientConfig::new(addr);
    cfg.io_timeout = Duration::from_millis(400);
    cfg.retry = RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
    };
    Client::new(cfg)
}

/// The JSON line with the opt-in key removed, to compare with what influxd backup sent.
fn without_opt_in(raw: &[u8]) -> Vec<u8> {
    let s = String::from_utf8(raw.to_vec()).unwrap();
    s.replace(",\"SnapshotdErrorReplies\":true", "")
        .into_bytes()
}

#[tokio::test]
async fn a_busy_server_is_retried_and_the_metastore_arrives() {
    let a1 = Arc::new(A1::load());
    let a = Arc::clone(&a1);
    let fake = Fake::start(Arc::new(move |rec: &Received, n| match (rec.kind, n) {
        (1, 0 | 1) => Reply::Bytes(busy_frame()),
        (1, _) => Reply::Bytes(a.meta_frame.clone()),
        (3, 0) => Reply::Bytes(busy_frame()),
        (3, _) => Reply::Bytes(a.info.clone()),
        _ => Reply::Close,
    }))
    .await;
    let c = quick_client(&fake.addr);
    let blob = c.metastore_backup().await.unwrap();
    assert!(!blob.is_empty());
    let shards = c.database_info("").await.unwrap();
    assert_eq!(shards.len(), 6);
    let got = fake.received();
    assert_eq!(got.iter().filter(|r| r.kind == 1).count(), 3);
    assert_eq!(got.iter().filter(|r| r.kind == 3).count(), 2);
    // Every attempt opted in, and is otherwise exactly influxd backup's request.
    for r in &got {
        assert!(r.request.as_ref().unwrap().error_replies);
    }
    assert_eq!(without_opt_in(&got[0].raw), a1.c2s[0]);
    assert_eq!(without_opt_in(&got[3].raw), a1.c2s[1]);
}

#[tokio::test]
async fn a_server_busy_on_every_attempt_is_reported_as_at_connection_limit() {
    let fake = Fake::start(Arc::new(|_: &Received, _| Reply::Bytes(busy_frame()))).await;
    let err = quick_client(&fake.addr)
        .metastore_backup()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::ServerBusy { attempts: 4, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("server at connection limit"), "{text}");
    assert!(text.contains("metastore backup"), "{text}");
    assert!(!text.contains("missing database"), "{text}");
    assert_eq!(
        fake.received().len(),
        4,
        "bounded: exactly the policy's attempts"
    );
}

#[tokio::test]
async fn other_in_band_errors_are_reported_once_without_retrying() {
    let mut b = BytesMut::new();
    ErrorReply::new(ErrorCode::NotFound, "database \"nope\" not found")
        .encode(&mut b)
        .unwrap();
    let frame = b.to_vec();
    let fake = Fake::start(Arc::new(move |_: &Received, _| Reply::Bytes(frame.clone()))).await;
    let err = quick_client(&fake.addr)
        .database_info("nope")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Remote {
                code: ErrorCode::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("not found"), "{err}");
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_reported_as_refused_at_once() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let err = quick_client(&addr).metastore_backup().await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    // Accepts, reads the request, then says nothing and keeps the connection open.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let err = quick_client(&addr).metastore_backup().await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    held.abort();
}

#[tokio::test]
async fn a_silent_close_on_the_metastore_request_is_retried() {
    let a1 = Arc::new(A1::load());
    let fake = Fake::start(Arc::new(move |rec: &Received, n| match (rec.kind, n) {
        (1, 0) => Reply::Close,
        (1, _) => Reply::Bytes(a1.meta_frame.clone()),
        _ => Reply::Close,
    }))
    .await;
    quick_client(&fake.addr).metastore_backup().await.unwrap();
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn a_metastore_reply_cut_short_is_retried_then_reported_as_cut_short() {
    let a1 = Arc::new(A1::load());
    let a = Arc::clone(&a1);
    let fake = Fake::start(Arc::new(move |_: &Received, n| {
        let half = a.meta_frame[..a.meta_frame.len() / 2].to_vec();
        if n == 0 {
            Reply::Bytes(half)
        } else {
            Reply::Bytes(a.meta_frame.clone())
        }
    }))
    .await;
    quick_client(&fake.addr).metastore_backup().await.unwrap();
    assert_eq!(fake.received().len(), 2);

    let a = Arc::clone(&a1);
    let always_cut = Fake::start(Arc::new(move |_: &Received, _| {
        Reply::Bytes(a.meta_frame[..a.meta_frame.len() / 2].to_vec())
    }))
    .await;
    let err = quick_client(&always_cut.addr)
        .metastore_backup()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reply cut short"), "{err}");
    assert!(err.to_string().contains("closed mid-frame"), "{err}");
    assert_eq!(always_cut.received().len(), 4);
}

#[tokio::test]
async fn a_shard_stream_the_server_cannot_read_says_why() {
    let mut b = BytesMut::new();
    let why = "shard backup: store failed after 0 bytes sent: i/o error on read \
               db/autogen/4/000000001-000000001.tsm: Input/output error (os error 5)";
    ErrorReply::new(ErrorCode::Internal, why)
        .encode(&mut b)
        .unwrap();
    let frame = b.to_vec();
    let fake = Fake::start(Arc::new(move |_: &Received, _| Reply::Bytes(frame.clone()))).await;
    let shard = snapshotd_client::ShardPath {
        db: "db".into(),
        rp: "autogen".into(),
        id: 4,
    };
    let Err(err) = quick_client(&fake.addr)
        .shard_stream(&shard, snapshotd_client::Window::Full)
        .await
    else {
        panic!("an error reply was taken for tar bytes");
    };
    assert!(
        matches!(
            err,
            ClientError::Remote {
                code: ErrorCode::Internal,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("000000001-000000001.tsm"), "{err}");
    let got = fake.received();
    let opted_in = got[0].request.as_ref().is_some_and(|r| r.error_replies);
    assert!(opted_in, "type 0 asks for in-band errors");
}

#[tokio::test]
async fn a_shard_stream_keeps_every_tar_byte_it_looked_at() {
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let sent = body.clone();
    let fake = Fake::start(Arc::new(move |_: &Received, _| Reply::Bytes(sent.clone()))).await;
    let shard = snapshotd_client::ShardPath {
        db: "db".into(),
        rp: "autogen".into(),
        id: 4,
    };
    let mut s = quick_client(&fake.addr)
        .shard_stream(&shard, snapshotd_client::Window::Full)
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut s, &mut got)
        .await
        .unwrap();
    assert_eq!(got, body);
}
