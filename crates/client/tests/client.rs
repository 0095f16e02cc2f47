//! End-to-end tests of backup, restore and verify against a fake snapshotter serving the
//! influx 1.6.7 captures.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod chain;
mod fake;
mod installed;
mod jobs;
mod refusals;
mod retry;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeZone;
use fake::{A1, Fake, Received, Reply, capture, capture_dir};
use sha2::Digest;
use snapshotd_client::backup::backup;
use snapshotd_client::restore::restore;
use snapshotd_client::verify::verify;
use snapshotd_client::{
    BackupOptions, Client, ClientConfig, ClientError, Hooks, RestoreOptions, RetryPolicy, Storage,
    TransferStats,
};
use snapshotd_wire::portable::Manifest;

fn client(addr: &str) -> Client {
    let mut cfg = ClientConfig::new(addr);
    cfg.io_timeout = Duration::from_secs(20);
    Client::new(cfg)
}

fn opts() -> BackupOptions {
    BackupOptions {
        jobs: 3,
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        },
        started: Some(
            chrono::Utc
                .with_ymd_and_hms(2026, 11, 22, 2, 23, 8)
                .unwrap(),
        ),
        ..Default::default()
    }
}

const TS: &str = "20261122T022308Z";

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn read_manifest(dir: &std::path::Path) -> Manifest {
    Manifest::from_bytes(&std::fs::read(dir.join(format!("{TS}.manifest"))).unwrap()).unwrap()
}

#[tokio::test]
async fn backup_writes_influx_layout_with_checksums_and_sends_influx_bytes() {
    let a1 = Arc::new(A1::load());
    let fake = Fake::start(Arc::clone(&a1).responder(|_, _, _| None)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    let hooks = Hooks::default();
    let mut influx_like = client(&fake.addr).config().clone();
    influx_like.error_replies = false;
    let summary = backup(&Client::new(influx_like), &dest, &opts(), &hooks)
        .await
        .unwrap();
    assert_eq!(summary.manifest, format!("{TS}.manifest"));

    // Requests: type 1, type 3 with "", then one type 0 per shard — byte for byte what
    // `influxd backup -portable` sent (shards may arrive in any order) once the in-band
    // error opt-in is off.
    let got = fake.received();
    assert_eq!(got.len(), 8);
    assert_eq!(got[0].raw, a1.c2s[0]);
    assert_eq!(got[1].raw, a1.c2s[1]);
    let mut shard_reqs: Vec<Vec<u8>> = got[2..].iter().map(|r| r.raw.clone()).collect();
    let mut want: Vec<Vec<u8>> = a1.c2s[2..].to_vec();
    shard_reqs.sort();
    want.sort();
    assert_eq!(shard_reqs, want);

    // The .meta file is byte-identical to influx's.
    let influx = snapshotd_testutil::vector("influx/backups/A1_full");
    assert_eq!(
        std::fs::read(dir.path().join(format!("{TS}.meta"))).unwrap(),
        std::fs::read(influx.join("20261122T022308Z.meta")).unwrap()
    );

    // The manifest: influx's entries (order, sizes) plus checksums.
    let m = read_manifest(dir.path());
    let ours: Vec<_> = m
        .files
        .iter()
        .map(|f| (f.database.clone(), f.policy.clone(), f.shard_id, f.size))
        .collect();
    let theirs =
        Manifest::from_bytes(&std::fs::read(influx.join(format!("{TS}.manifest"))).unwrap())
            .unwrap();
    let theirs: Vec<_> = theirs
        .files
        .iter()
        .map(|f| (f.database.clone(), f.policy.clone(), f.shard_id, f.size))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(m.meta.size, 528);
    let info = m.snapshotd.as_ref().unwrap();
    assert!(info.complete);
    assert!(info.version.starts_with("snapshotd "));
    for f in &m.files {
        let stored = std::fs::read(dir.path().join(&f.file_name)).unwrap();
        assert_eq!(f.bytes, Some(stored.len() as u64));
        assert_eq!(
            f.sha256.as_deref(),
            Some(hex::encode(sha2::Sha256::digest(&stored)).as_str())
        );
        // The archive is the server's tar, unchanged.
        assert_eq!(gunzip(&stored), a1.shards[&f.shard_id]);
    }
    assert_eq!(TransferStats::get(&hooks.stats.shards_done), 6);
    let expected_tar: u64 = a1.shards.values().map(|t| t.len() as u64).sum();
    assert_eq!(
        TransferStats::get(&hooks.stats.bytes_transferred),
        expected_tar + 528
    );

    // And it verifies.
    let report = verify(&dest, 2, 1 << 20).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.without_checksum, 0);
}

#[tokio::test]
async fn truncated_first_attempt_is_retried_into_a_fresh_file() {
    let a1 = Arc::new(A1::load());
    let fake = Fake::start(Arc::clone(&a1).responder(|id, n, tar| {
        (id == 2 && n == 0).then(|| Reply::Bytes(tar[..tar.len() / 2].to_vec()))
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    backup(&client(&fake.addr), &dest, &opts(), &Hooks::default())
        .await
        .unwrap();
    let tries = fake
        .received()
        .iter()
        .filter(|r| r.kind == 0 && r.request.as_ref().unwrap().shard_id == 2)
        .count();
    assert_eq!(tries, 2);
    let stored = std::fs::read(dir.path().join(format!("{TS}.s2.tar.gz"))).unwrap();
    assert_eq!(
        gunzip(&stored),
        a1.shards[&2],
        "partial attempt leaked into the file"
    );
    assert!(verify(&dest, 1, 1 << 20).await.unwrap().ok());
}

#[tokio::test]
async fn a_shard_that_keeps_failing_fails_the_backup_without_a_manifest() {
    let a1 = Arc::new(A1::load());
    let fake =
        Fake::start(Arc::clone(&a1).responder(|id, _, _| (id == 3).then_some(Reply::Close))).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    let err = backup(&client(&fake.addr), &dest, &opts(), &Hooks::default())
        .await
        .unwrap_err();
    match &err {
        ClientError::ShardFailed {
            shard_id,
            attempts,
            source,
            ..
        } => {
            assert_eq!((*shard_id, *attempts), (3, 3));
            assert!(matches!(**source, ClientError::NoData { .. }), "{source}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("shard 3"), "{err}");
    assert!(!dir.path().join(format!("{TS}.manifest")).exists());
    assert!(!dir.path().join(format!("{TS}.s3.tar.gz")).exists());
    let report = verify(&dest, 1, 1 << 20).await.unwrap();
    assert!(!report.ok());
    assert!(
        report.problems[0].contains("no *.manifest"),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn a_stream_ending_without_end_marker_is_truncation() {
    let a1 = Arc::new(A1::load());
    // Cut exactly before the end-of-archive marker: every entry is complete, so only the
    // marker check can tell.
    let fake =
        Fake::start(Arc::clone(&a1).responder(|id, _, tar| {
            (id == 1).then(|| Reply::Bytes(tar[..tar.len() - 1024].to_vec()))
        }))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    let mut o = opts();
    o.shard = Some(1);
    o.db = Some("db1".into());
    o.rp = Some("autogen".into());
    let err = backup(&client(&fake.addr), &dest, &o, &Hooks::default())
        .await
        .unwrap_err();
    let ClientError::ShardFailed { source, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(**source, ClientError::TruncatedTar { .. }),
        "{source}"
    );
    // --shard sends no listing request.
    assert!(fake.received().iter().all(|r| r.kind != 3 && r.kind != 4));
}

/// Damages the last byte of the file at `p` (the gzip trailer: the archive no longer checks).
fn flip_last_byte(p: &std::path::Path) {
    let mut b = std::fs::read(p).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x80;
    std::fs::write(p, &b).unwrap();
}

/// Restores `dest` (defaults) into a fake influxd answering as influxd did in B1; the
/// outcome and the fake, to check what it received.
async fn restore_into_fake(
    dest: &Storage,
) -> (
    snapshotd_client::Result<snapshotd_client::RestoreSummary>,
    Fake,
) {
    let b1 = capture_dir("B1_restore_portable_full");
    let fake = restore_target(capture(&b1, "01-", ".s2c.bin")).await;
    let out = restore(
        &client(&fake.addr),
        dest,
        &RestoreOptions::default(),
        &Hooks::default(),
    )
    .await;
    (out, fake)
}

/// [`restore_into_fake`] that is expected to fail; the error and the fake.
async fn failed_restore(dest: &Storage) -> (ClientError, Fake) {
    let (out, fake) = restore_into_fake(dest).await;
    (out.unwrap_err(), fake)
}

async fn good_backup() -> (tempfile::TempDir, Storage) {
    let a1 = Arc::new(A1::load());
    let fake = Fake::start(a1.responder(|_, _, _| None)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    backup(&client(&fake.addr), &dest, &opts(), &Hooks::default())
        .await
        .unwrap();
    (dir, dest)
}

#[tokio::test]
async fn verify_catches_bit_flips_truncation_and_missing_files() {
    // Bit flip inside an archive.
    let (dir, dest) = good_backup().await;
    let p = dir.path().join(format!("{TS}.s2.tar.gz"));
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&p, &b).unwrap();
    let r = verify(&dest, 2, 1 << 20).await.unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("s2.tar.gz") && r.problems[0].contains("sha256"));

    // Truncated meta.
    let (dir, dest) = good_backup().await;
    let p = dir.path().join(format!("{TS}.meta"));
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 3]).unwrap();
    let r = verify(&dest, 2, 1 << 20).await.unwrap();
    assert!(!r.ok());
    assert!(r.problems[0].contains(".meta"), "{:?}", r.problems);

    // Missing archive.
    let (dir, dest) = good_backup().await;
    std::fs::remove_file(dir.path().join(format!("{TS}.s5.tar.gz"))).unwrap();
    let r = verify(&dest, 2, 1 << 20).await.unwrap();
    assert_eq!(r.problems.len(), 1);
    assert!(r.problems[0].contains("s5.tar.gz") && r.problems[0].contains("missing"));
}

#[tokio::test]
async fn verify_checks_structure_of_influx_written_backups() {
    for name in ["A1_full", "A2_db2", "A3_db1_export"] {
        let src = Storage::local(
            &snapshotd_testutil::vector(&format!("influx/backups/{name}")),
            false,
        )
        .unwrap();
        let r = verify(&src, 2, 1 << 20).await.unwrap();
        assert!(r.ok(), "{name}: {:?}", r.problems);
        assert!(r.without_checksum > 0);
        assert!(r.notes.iter().any(|n| n.contains("written by influxd")));
    }
}

/// A fake restore target answering type 6 with `map_reply`, keeping each type-7 upload and
/// answering a type-0 backup of an uploaded shard with it (as influxd lists what it installed).
async fn restore_target(map_reply: Vec<u8>) -> Fake {
    let stored: Arc<Mutex<HashMap<u64, Vec<u8>>>> = Arc::default();
    Fake::start(Arc::new(move |rec: &Received, _| match rec.kind {
        6 => Reply::Bytes(map_reply.clone()),
        7 => {
            if let Some(id) = rec.upload_id {
                stored.lock().unwrap().insert(id, rec.tar.clone());
            }
            Reply::Close
        }
        0 => {
            let id = rec.request.as_ref().map(|r| r.shard_id);
            match id.and_then(|id| stored.lock().unwrap().get(&id).cloned()) {
                Some(tar) => Reply::Bytes(tar),
                None => Reply::Close,
            }
        }
        _ => Reply::Close,
    }))
    .await
}

fn tar_entries(tar: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(tar);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(name, data);
    }
    out
}

#[tokio::test]
async fn restore_of_an_influx_backup_sends_what_influxd_restore_sends() {
    let b1 = capture_dir("B1_restore_portable_full");
    let fake = restore_target(capture(&b1, "01-", ".s2c.bin")).await;
    let src = Storage::local(&snapshotd_testutil::vector("influx/backups/A1_full"), false).unwrap();
    let o = RestoreOptions {
        jobs: 2,
        ..Default::default()
    };
    let s = restore(&client(&fake.addr), &src, &o, &Hooks::default())
        .await
        .unwrap();
    assert_eq!(s.restored, (1..=6).map(|i| (i, i)).collect::<Vec<_>>());
    assert!(!s.checksums_verified);
    let got = fake.received();
    // The type-6 request is byte-identical to influxd restore's, payload = the raw blob.
    assert_eq!(got[0].kind, 6);
    assert_eq!(got[0].raw, capture(&b1, "01-", ".c2s.bin"));
    assert_eq!(got[0].payload.len(), 528);
    // Each type-7 upload carries the same entries as influxd restore's.
    let mut want = BTreeMap::new();
    for i in 2..=7 {
        let c = capture(&b1, &format!("{i:02}-"), ".c2s.bin");
        let id = u64::from_be_bytes(c[2..10].try_into().unwrap());
        want.insert(id, tar_entries(&c[10..]));
    }
    let mut have = BTreeMap::new();
    for r in got.iter().filter(|r| r.kind == 7) {
        have.insert(r.upload_id.unwrap(), tar_entries(&r.tar));
    }
    assert_eq!(have, want);
}

#[tokio::test]
async fn restore_renames_database_rp_and_shard_ids() {
    let b2 = capture_dir("B2_restore_portable_db2_rp2_renamed");
    let fake = restore_target(capture(&b2, "01-", ".s2c.bin")).await;
    let src = Storage::local(&snapshotd_testutil::vector("influx/backups/A2_db2"), false).unwrap();
    let o = RestoreOptions {
        db: Some("db2".into()),
        new_db: Some("db2copy".into()),
        rp: Some("rp2".into()),
        new_rp: Some("rp2copy".into()),
        jobs: 2,
        ..Default::default()
    };
    let s = restore(&client(&fake.addr), &src, &o, &Hooks::default())
        .await
        .unwrap();
    assert_eq!(s.restored, vec![(5, 7), (6, 8)]);
    let got = fake.received();
    assert_eq!(got[0].raw, capture(&b2, "01-", ".c2s.bin"));
    for r in got.iter().filter(|r| r.kind == 7) {
        let id = r.upload_id.unwrap();
        let entries = tar_entries(&r.tar);
        assert!(!entries.is_empty());
        for name in entries.keys() {
            assert!(
                name.starts_with(&format!("db2copy/rp2copy/{id}/")),
                "entry {name} not renamed"
            );
        }
    }
    // Shard 4 (db2/autogen) was filtered out by --rp.
    assert_eq!(got.iter().filter(|r| r.kind == 7).count(), 2);
}

#[tokio::test]
async fn existing_database_gives_a_clear_error_and_uploads_nothing() {
    let b4 = capture_dir("B4_restore_portable_conflict");
    let fake = restore_target(capture(&b4, "01-", ".s2c.bin")).await;
    let src = Storage::local(&snapshotd_testutil::vector("influx/backups/A2_db2"), false).unwrap();
    let o = RestoreOptions {
        db: Some("db2".into()),
        jobs: 1,
        ..Default::default()
    };
    let err = restore(&client(&fake.addr), &src, &o, &Hooks::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NothingImported));
    assert!(err.to_string().contains("already exists"));
    assert!(fake.received().iter().all(|r| r.kind != 7));
}

/// A checksummed archive is hashed on the upload pass: a damaged one fails naming it, and
/// its upload never ends cleanly (it is reset before the end-of-archive marker, so influxd
/// installs nothing of it).
#[tokio::test]
async fn corrupted_archive_is_never_uploaded_whole() {
    let (dir, dest) = good_backup().await;
    flip_last_byte(&dir.path().join(format!("{TS}.s4.tar.gz")));
    let (err, fake) = failed_restore(&dest).await;
    assert!(matches!(err, ClientError::Integrity { .. }), "{err}");
    assert!(err.to_string().contains("s4.tar.gz"), "{err}");
    assert!(err.to_string().contains("not installed"), "{err}");
    // The fake logs an upload only when it ended with a clean close.
    assert!(
        fake.received()
            .iter()
            .all(|r| r.kind != 7 || r.upload_id != Some(4)),
        "the damaged shard was uploaded whole"
    );
}

#[tokio::test]
async fn newdb_without_db_is_refused_before_connecting() {
    let b1 = capture_dir("B1_restore_portable_full");
    let fake = restore_target(capture(&b1, "01-", ".s2c.bin")).await;
    let src = Storage::local(&snapshotd_testutil::vector("influx/backups/A1_full"), false).unwrap();
    let o = RestoreOptions {
        new_db: Some("x".into()),
        ..Default::default()
    };
    let err = restore(&client(&fake.addr), &src, &o, &Hooks::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NewDbNeedsDb));
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn snapshotd_backup_round_trips_through_restore() {
    let (_dir, dest) = good_backup().await;
    let (s, fake) = restore_into_fake(&dest).await;
    assert!(s.unwrap().checksums_verified);
    let a1 = A1::load();
    for r in fake.received().iter().filter(|r| r.kind == 7) {
        let id = r.upload_id.unwrap();
        assert_eq!(tar_entries(&r.tar), tar_entries(&a1.shards[&id]));
    }
}

#[tokio::test]
async fn runs_started_in_the_same_second_get_distinct_ordered_names() {
    let a1 = Arc::new(A1::load());
    let fake = Fake::start(a1.responder(|_, _, _| None)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    let c = client(&fake.addr);
    let first = backup(&c, &dest, &opts(), &Hooks::default()).await.unwrap();
    let second = backup(&c, &dest, &opts(), &Hooks::default()).await.unwrap();
    assert_eq!(first.timestamp, TS);
    assert_eq!(second.timestamp, "20261122T022309Z");
    assert!(second.manifest > first.manifest);
    let r = verify(&dest, 2, 1 << 20).await.unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!(r.manifests.len(), 2);
}

#[tokio::test]
async fn acknowledged_uploads_report_server_failures() {
    let b1 = capture_dir("B1_restore_portable_full");
    let map = capture(&b1, "01-", ".s2c.bin");
    let src = Storage::local(&snapshotd_testutil::vector("influx/backups/A1_full"), false).unwrap();
    let o = RestoreOptions {
        jobs: 2,
        acknowledged: true,
        ..Default::default()
    };
    // Shard 3's restore fails on the server; every other upload is acknowledged.
    let m = map.clone();
    let fake = Fake::start(Arc::new(move |rec: &Received, _| match rec.kind {
        6 => Reply::Bytes(m.clone()),
        0x87 if rec.upload_id == Some(3) => {
            let mut b = bytes::BytesMut::new();
            snapshotd_wire::ErrorReply::new(snapshotd_wire::ErrorCode::Internal, "disk full")
                .encode(&mut b)
                .unwrap();
            Reply::Bytes(b.to_vec())
        }
        0x87 => {
            let mut b = bytes::BytesMut::new();
            snapshotd_wire::UploadAck { files: 1 }.encode(&mut b);
            Reply::Bytes(b.to_vec())
        }
        _ => Reply::Close,
    }))
    .await;
    let err = restore(&client(&fake.addr), &src, &o, &Hooks::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(err.to_string().contains("s3.tar.gz"), "{err}");

    // A server that does not acknowledge (influxd closes 0x87 with nothing) is an error too.
    let fake = Fake::start(Arc::new(move |rec: &Received, _| match rec.kind {
        6 => Reply::Bytes(map.clone()),
        _ => Reply::Close,
    }))
    .await;
    let err = restore(&client(&fake.addr), &src, &o, &Hooks::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NoData { .. }), "{err}");
    assert!(err.to_string().contains("--ack"), "{err}");
}

#[tokio::test]
async fn a_broken_manifest_does_not_hide_the_others() {
    let (dir, dest) = good_backup().await;
    std::fs::write(dir.path().join("20991231T000000Z.manifest"), b"{not json").unwrap();
    let r = verify(&dest, 2, 1 << 20).await.unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("20991231T000000Z.manifest"));
    assert_eq!(r.manifests, vec![format!("{TS}.manifest")]);
    assert_eq!(r.files_checked, 7);
}

/// Cancels the run's token once the first shard is done.
struct CancelAfterFirst(tokio_util::sync::CancellationToken);

impl snapshotd_client::UnitSink for CancelAfterFirst {
    fn unit_done(&self, unit: &snapshotd_client::UnitDone) {
        if unit.shard_id.is_some() {
            self.0.cancel();
        }
    }
}

#[tokio::test]
async fn cancelling_a_run_stops_it_without_a_manifest() {
    let a1 = Arc::new(A1::load());
    let fake = Fake::start(a1.responder(|_, _, _| None)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    let mut hooks = Hooks::default();
    hooks.units = Arc::new(CancelAfterFirst(hooks.cancel.clone()));
    let mut o = opts();
    o.jobs = 1;
    let err = backup(&client(&fake.addr), &dest, &o, &hooks)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Cancelled), "{err}");
    assert_eq!(TransferStats::get(&hooks.stats.shards_done), 1);
    assert!(!dir.path().join(format!("{TS}.manifest")).exists());
    // Only the one finished shard was requested.
    assert_eq!(fake.received().iter().filter(|r| r.kind == 0).count(), 1);
}

#[tokio::test]
async fn a_damaged_influx_archive_stops_restore_before_anything_is_sent() {
    // influx 1.6's retry bug: a partial download followed by a complete one in one file.
    let src = snapshotd_testutil::vector("influx/backups/A1_full");
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let a1 = A1::load();
    let tar = &a1.shards[&2];
    let mut doubled = tar[..tar.len() / 2].to_vec();
    doubled.extend_from_slice(tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &doubled).unwrap();
    std::fs::write(
        dir.path().join("20261122T022308Z.s2.tar.gz"),
        gz.finish().unwrap(),
    )
    .unwrap();
    let store = Storage::local(dir.path(), false).unwrap();
    let (err, fake) = failed_restore(&store).await;
    assert!(err.to_string().contains("s2.tar.gz"), "{err}");
    assert!(fake.received().is_empty());
}
