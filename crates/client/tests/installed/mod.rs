//! Unacknowledged uploads (influxd) count as restored only when the server that read them is
//! still the one answering and holds files of the shard, or (after a restart) lists the
//! shard's files as they were sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use snapshotd_client::restore::restore;
use snapshotd_client::{ClientError, Hooks, RestoreOptions, Storage};

use crate::fake::{Fake, Received, Reply, capture, capture_dir};

/// A restore target answering type 6 like influxd did in the B1 capture; uploads (type 7)
/// take 600 ms (blocking a runtime worker: the tests run 4, so the client and the fake's
/// other connections still go on meanwhile). With `keeps_files` a type-0 backup of an uploaded shard returns what was
/// uploaded, otherwise nothing (a server restarted mid-install). With `drop_idle` the watch
/// connection is closed (as by a restart) once it was idle that long.
async fn target(keeps_files: bool, drop_idle: Option<Duration>) -> Fake {
    let map = capture(&capture_dir("B1_restore_portable_full"), "01-", ".s2c.bin");
    let stored: Arc<Mutex<HashMap<u64, Vec<u8>>>> = Arc::default();
    let responder = Arc::new(move |rec: &Received, _| match rec.kind {
        6 => Reply::Bytes(map.clone()),
        7 => {
            std::thread::sleep(Duration::from_millis(600));
            let id = rec.upload_id.unwrap();
            stored.lock().unwrap().insert(id, rec.tar.clone());
            Reply::Close
        }
        0 if keeps_files => {
            let id = rec.request.as_ref().unwrap().shard_id;
            match stored.lock().unwrap().get(&id) {
                Some(tar) => Reply::Bytes(tar.clone()),
                None => Reply::Close,
            }
        }
        _ => Reply::Close,
    });
    match drop_idle {
        Some(d) => Fake::start_dropping_idle(responder, d).await,
        None => Fake::start(responder).await,
    }
}

/// The fake drops a connection that sent nothing for this long: the idle watch goes during
/// the first upload (600 ms), as by a restart, while every request connection sends its
/// first bytes long before, even on a loaded machine (30 ms dropped a listing there).
const RESTART: Duration = Duration::from_millis(300);

async fn run(fake: &Fake) -> Result<usize, ClientError> {
    let src = Storage::local(&snapshotd_testutil::vector("influx/backups/A1_full"), false).unwrap();
    let o = RestoreOptions {
        jobs: 2,
        ..Default::default()
    };
    let s = restore(&crate::client(&fake.addr), &src, &o, &Hooks::default()).await?;
    Ok(s.restored.len())
}

fn listings(fake: &Fake) -> usize {
    fake.received().iter().filter(|r| r.kind == 0).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_server_process_holding_the_shard_files_is_trusted() {
    let fake = target(true, None).await;
    assert_eq!(run(&fake).await.unwrap(), 6);
    assert_eq!(listings(&fake), 6, "every shard was probed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_sending_no_tar_for_type_0_cannot_be_asked_and_passes() {
    // This fake sends no tar for type 0: it cannot be asked, so the probe accepts.
    let fake = target(false, None).await;
    assert_eq!(run(&fake).await.unwrap(), 6);
    assert_eq!(listings(&fake), 6, "each shard probed once");
}

/// influxd keeps nothing of an upload cut short (it sees a clean end of stream) yet stays
/// up: its type-0 backup of the shard is an empty tar, and the shard is not restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_server_holding_no_files_of_an_upload_fails_the_shard() {
    let map = capture(&capture_dir("B1_restore_portable_full"), "01-", ".s2c.bin");
    let fake = Fake::start(Arc::new(move |rec: &Received, _| match rec.kind {
        6 => Reply::Bytes(map.clone()),
        0 => Reply::Bytes(vec![0u8; 1024]), // an empty tar: its two end blocks
        _ => Reply::Close,
    }))
    .await;
    let err = run(&fake).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::NotInstalled { detail, .. } if detail.contains("none of its TSM files")),
        "{err}"
    );
    assert!(err.to_string().contains("re-run the same command"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_restart_a_shard_without_its_files_is_not_restored() {
    let fake = target(false, Some(RESTART)).await;
    let err = run(&fake).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::NotInstalled { detail, .. } if detail.contains(".tsm is missing")),
        "{err}"
    );
    assert!(err.to_string().contains("re-run the same command"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_restart_a_shard_listed_as_sent_is_restored() {
    let fake = target(true, Some(RESTART)).await;
    assert_eq!(run(&fake).await.unwrap(), 6);
    assert_eq!(listings(&fake), 6, "every shard was listed");
}

/// A shard's confirmation does not hold its upload slot: with one job, the next upload
/// reaches the server while the previous shard's probe (type 0) is still unanswered, and
/// every shard is still probed before the restore returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_next_upload_goes_on_while_a_shard_is_confirmed() {
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let stored: Arc<Mutex<HashMap<u64, Vec<u8>>>> = Arc::default();
    let map = capture(&capture_dir("B1_restore_portable_full"), "01-", ".s2c.bin");
    let ev = Arc::clone(&events);
    let fake = Fake::start(Arc::new(move |rec: &Received, _| match rec.kind {
        6 => Reply::Bytes(map.clone()),
        7 => {
            let id = rec.upload_id.unwrap();
            stored.lock().unwrap().insert(id, rec.tar.clone());
            ev.lock().unwrap().push(format!("upload {id}"));
            Reply::Close
        }
        0 => {
            let id = rec.request.as_ref().unwrap().shard_id;
            ev.lock().unwrap().push(format!("probe {id} asked"));
            // Long enough for the next upload to arrive meanwhile when it is not held back.
            std::thread::sleep(Duration::from_millis(300));
            ev.lock().unwrap().push(format!("probe {id} answered"));
            Reply::Bytes(stored.lock().unwrap().get(&id).cloned().unwrap_or_default())
        }
        _ => Reply::Close,
    }))
    .await;
    let src = Storage::local(&snapshotd_testutil::vector("influx/backups/A1_full"), false).unwrap();
    let o = RestoreOptions {
        jobs: 1,
        ..Default::default()
    };
    let s = restore(&crate::client(&fake.addr), &src, &o, &Hooks::default())
        .await
        .unwrap();
    assert_eq!(s.restored.len(), 6);
    let ev = events.lock().unwrap().clone();
    let pos = |e: &str| ev.iter().position(|x| x == e);
    // The first shard uploaded: another upload reached the server before its probe was
    // answered (held in the slot, the next upload would start only after it).
    let first = ev[0].strip_prefix("upload ").unwrap().to_string();
    let answered = pos(&format!("probe {first} answered")).unwrap();
    assert!(
        ev[1..answered].iter().any(|e| e.starts_with("upload")),
        "no upload while shard {first} was confirmed: {ev:?}"
    );
    assert_eq!(
        ev.iter().filter(|e| e.ends_with("answered")).count(),
        6,
        "{ev:?}"
    );
}
