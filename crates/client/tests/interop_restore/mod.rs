//! Restore into real influxd 1.6.7 under faults: a run stopped between the metastore import
//! and its record, and influxd killed and restarted at the end of a shard upload.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use snapshotd_checkpoint::Destination;
use snapshotd_client::job::restore::RestoreJob;
use snapshotd_client::{
    BackupOptions, ClientError, Hooks, JobOptions, Progress, RestoreOptions, RestoreSummary,
    Storage,
};

use crate::client;
use crate::influxd::{Influxd, load_metrics};

/// A loaded influxd and a snapshotd backup of it (in the returned directory).
async fn backed_up() -> (Influxd, tempfile::TempDir) {
    let a = Influxd::start();
    load_metrics(&a, 3, 4);
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    let opts = BackupOptions {
        jobs: 2,
        ..Default::default()
    };
    snapshotd_client::backup::backup(&client(&a.bind), &dest, &opts, &Hooks::default())
        .await
        .unwrap();
    (a, dir)
}

/// `restore --db db2 [--rp RP] --newdb NEW` as the CLI runs it, checkpoint in `state`.
async fn restore_job(
    addr: &str,
    src: &std::path::Path,
    state: &std::path::Path,
    new_db: &str,
    rp: Option<&str>,
    stop_after_import: bool,
    hooks: &Hooks,
) -> Result<RestoreSummary, ClientError> {
    let rjob = RestoreJob {
        checkpoint: Some(Destination::local(state.join(new_db)).unwrap()),
        target: format!("{addr} database {new_db}"),
        key: None,
        stop_after_import,
    };
    let opts = RestoreOptions {
        db: Some("db2".into()),
        new_db: Some(new_db.into()),
        rp: rp.map(str::to_string),
        jobs: 1,
        ..Default::default()
    };
    let src = Destination::local(src).unwrap();
    let job = JobOptions::default();
    snapshotd_client::job::restore::run(&client(addr), &src, opts, &job, &rjob, hooks).await
}

/// Counts and sums of every measurement of `db.rp`, without the database's name.
fn data(s: &Influxd, db: &str, rp: &str) -> serde_json::Value {
    s.fingerprint(&[(db, rp)]).remove(0).1
}

fn databases(s: &Influxd) -> String {
    s.query("SHOW DATABASES").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn a_rerun_after_a_stop_between_import_and_its_record_completes() {
    let (a, dir) = backed_up().await;
    let b = Influxd::start();
    let state = tempfile::tempdir().unwrap();
    let (src, st) = (dir.path(), state.path());

    // The first run imports the metastore, then stops before recording the result.
    let err = restore_job(&b.bind, src, st, "copy", None, true, &Hooks::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Cancelled), "{err}");
    assert!(databases(&b).contains("\"copy\""), "the import happened");

    // The same command again: no second import ("database already exists"), every shard.
    let s = restore_job(&b.bind, src, st, "copy", None, false, &Hooks::default())
        .await
        .unwrap();
    assert_eq!(s.restored.len(), s.id_map.len());
    for rp in ["autogen", "rp2"] {
        assert_eq!(data(&a, "db2", rp), data(&b, "copy", rp), "{rp}");
    }

    // A database of that name made by someone else meanwhile is never adopted.
    restore_job(&b.bind, src, st, "other", None, true, &Hooks::default())
        .await
        .unwrap_err();
    b.query("DROP DATABASE other");
    b.query("CREATE DATABASE other");
    let err = restore_job(&b.bind, src, st, "other", None, false, &Hooks::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::ForeignDatabase { db, .. } if db == "other"),
        "{err}"
    );
    let left = b.query("SHOW RETENTION POLICIES ON other").to_string();
    assert!(
        !left.contains("rp2"),
        "the foreign database was altered: {left}"
    );
}

/// Kills influxd (once) as soon as the first shard upload has written its whole archive,
/// after `delay`, and starts it again on the same directory.
struct KillAfterFirstUpload {
    target: Arc<Mutex<Influxd>>,
    fired: AtomicBool,
    delay: Duration,
}

impl Progress for KillAfterFirstUpload {
    fn bytes(&self, _n: u64) {
        if !self.fired.swap(true, Ordering::SeqCst) {
            std::thread::sleep(self.delay);
            self.target.lock().unwrap().restart();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn influxd_killed_at_the_end_of_an_upload_is_never_reported_restored() {
    let (a, dir) = backed_up().await;
    let want = data(&a, "db2", "rp2");
    let state = tempfile::tempdir().unwrap();
    // Small one-day shards: each archive goes out in one write, and the kill lands while
    // influxd reads, installs, or just installed it.
    for (round, ms) in [0u64, 1, 2, 3, 4, 6, 10, 20].into_iter().enumerate() {
        let b = Arc::new(Mutex::new(Influxd::start()));
        let bind = b.lock().unwrap().bind.clone();
        let hooks = Hooks {
            progress: Arc::new(KillAfterFirstUpload {
                target: Arc::clone(&b),
                fired: AtomicBool::new(false),
                delay: Duration::from_millis(ms),
            }),
            ..Hooks::default()
        };
        let name = format!("k{round}");
        let st = state.path();
        let first = restore_job(&bind, dir.path(), st, &name, Some("rp2"), false, &hooks).await;
        if let Err(e) = &first {
            let msg = e.to_string();
            assert!(msg.contains("re-run the same command"), "{msg}");
            eprintln!("round {round} ({ms} ms): {msg}");
            let again = Hooks::default();
            restore_job(&bind, dir.path(), st, &name, Some("rp2"), false, &again)
                .await
                .unwrap();
        }
        // A success is a promise: every point is there (after the re-run, if one was asked).
        let got = data(&b.lock().unwrap(), &name, "rp2");
        assert_eq!(got, want, "round {round}: first run ok = {}", first.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn a_damaged_archive_found_on_the_upload_pass_is_not_installed() {
    let (_a, dir) = backed_up().await;
    // Flip the last byte (the gzip trailer) of every db2/rp2 archive: only the pass that
    // reads the whole file while uploading it can tell.
    let manifest = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "manifest"))
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let files = m["files"].as_array().unwrap();
    for f in files.iter().filter(|f| f["policy"] == "rp2") {
        let p = dir.path().join(f["fileName"].as_str().unwrap());
        let mut b = std::fs::read(&p).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x80;
        std::fs::write(&p, b).unwrap();
    }
    let b = Influxd::start();
    let state = tempfile::tempdir().unwrap();
    let err = restore_job(
        &b.bind,
        dir.path(),
        state.path(),
        "bad",
        Some("rp2"),
        false,
        &Hooks::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Integrity { .. }), "{err}");
    assert!(err.to_string().contains("not installed"), "{err}");
    let v = b.query("SELECT count(*) FROM \"bad\".\"rp2\"./.*/");
    assert!(
        v["results"][0]["series"].is_null(),
        "influxd installed a damaged shard: {v}"
    );
}
