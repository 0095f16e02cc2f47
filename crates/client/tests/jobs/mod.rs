//! The jobs as the CLI runs them, at library level: restore points, resume of an interrupted
//! run only, and restore attempts that leave nothing behind.

use std::sync::Arc;
use std::time::Duration;

use snapshotd_checkpoint::Destination;
use snapshotd_client::job::restore::RestoreJob;
use snapshotd_client::{
    BackupOptions, Hooks, JobOptions, RestoreOptions, RetryPolicy, Storage, TransferStats,
};

use crate::fake::{A1, Fake, Reply};

fn opts(attempts: u32) -> BackupOptions {
    BackupOptions {
        jobs: 2,
        retry: RetryPolicy {
            attempts,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        },
        ..Default::default()
    }
}

async fn points(dir: &std::path::Path) -> Vec<(String, bool)> {
    let s = Storage::local(dir, false).unwrap();
    snapshotd_client::points::list_points(&s)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.id, p.complete))
        .collect()
}

#[tokio::test]
async fn each_run_is_a_new_point_and_only_an_interrupted_one_resumes() {
    let a1 = Arc::new(A1::load());
    let good = Fake::start(Arc::clone(&a1).responder(|_, _, _| None)).await;
    // Shard 3 never arrives: the run fails after recording the others.
    let bad =
        Fake::start(Arc::clone(&a1).responder(|id, _, _| (id == 3).then_some(Reply::Close))).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::local(dir.path()).unwrap();
    let job = JobOptions::default();

    let first = snapshotd_client::job::backup::run(
        &crate::client(&good.addr),
        &dest,
        opts(3),
        &job,
        &Hooks::default(),
    )
    .await
    .unwrap();
    assert!(!first.resumed);

    let err = snapshotd_client::job::backup::run(
        &crate::client(&bad.addr),
        &dest,
        opts(1),
        &job,
        &Hooks::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("shard 3"), "{err}");
    let listed = points(dir.path()).await;
    assert_eq!(listed.len(), 2);
    assert!(!listed[1].1, "the failed run is a partial point");
    let partial = listed[1].0.clone();

    let hooks = Hooks::default();
    let resumed = snapshotd_client::job::backup::run(
        &crate::client(&good.addr),
        &dest,
        opts(3),
        &job,
        &hooks,
    )
    .await
    .unwrap();
    assert!(resumed.resumed);
    assert_eq!(resumed.summary.timestamp, partial, "same point continued");
    assert!(TransferStats::get(&hooks.stats.shards_skipped) >= 1);

    let again = snapshotd_client::job::backup::run(
        &crate::client(&good.addr),
        &dest,
        opts(3),
        &job,
        &Hooks::default(),
    )
    .await
    .unwrap();
    assert!(!again.resumed, "a completed run is never resumed");
    let listed = points(dir.path()).await;
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|p| p.1), "{listed:?}");
}

#[tokio::test]
async fn a_restore_that_sent_nothing_leaves_no_checkpoint() {
    let a1 = Arc::new(A1::load());
    // The fake refuses the metastore import (it closes on type 6).
    let fake = Fake::start(Arc::clone(&a1).responder(|_, _, _| None)).await;
    // A copy: the restore marks the points it reads in its source.
    let vector = snapshotd_testutil::vector("influx/backups/A1_full");
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&vector).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, copy.path().join(p.file_name().unwrap())).unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let cp_dir = state.path().join("restore/target");
    let rjob = RestoreJob {
        checkpoint: Some(Destination::local(&cp_dir).unwrap()),
        target: "fake".into(),
        key: None,
        stop_after_import: false,
    };
    let opts = RestoreOptions {
        jobs: 1,
        ..Default::default()
    };
    let err = snapshotd_client::job::restore::run(
        &crate::client(&fake.addr),
        &Destination::local(copy.path()).unwrap(),
        opts,
        &JobOptions::default(),
        &rjob,
        &Hooks::default(),
    )
    .await;
    assert!(err.is_err());
    assert!(
        !cp_dir.exists(),
        "a restore that sent nothing left its checkpoint"
    );
}
