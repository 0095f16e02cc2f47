//! The client library against real influxd 1.6.7 (run via `cargo xtask interop influx`).

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/influxd.rs"]
mod influxd;
mod interop_restore;

use std::time::Duration;

use influxd::{Influxd, LOADED, load_metrics};
use snapshotd_client::backup::backup;
use snapshotd_client::restore::restore;
use snapshotd_client::verify::verify;
use snapshotd_client::{
    BackupOptions, Client, ClientConfig, ClientError, Hooks, RestoreOptions, RetryPolicy, Storage,
    TransferStats,
};

fn client(addr: &str) -> Client {
    let mut cfg = ClientConfig::new(addr);
    cfg.io_timeout = Duration::from_secs(60);
    Client::new(cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn every_request_type_against_influxd() {
    let a = Influxd::start();
    load_metrics(&a, 3, 9);
    let c = client(&a.bind);

    // Type 1: the metastore.
    let blob = c.metastore_backup().await.unwrap();
    assert!(!blob.is_empty());
    let summary = snapshotd_wire::portable::MetaSummary::decode_blob(
        &blob,
        &snapshotd_wire::Limits::default(),
    )
    .unwrap();
    let names: Vec<&str> = summary.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["db1", "db2"]);

    // Types 3 and 4: listings, with influx's silent close for unknown names.
    let all = c.database_info("").await.unwrap();
    let rp2 = c.retention_policy_info("db2", "rp2").await.unwrap();
    assert!(rp2.len() >= 9 && rp2.iter().all(|p| p.db == "db2" && p.rp == "rp2"));
    assert_eq!(all.len(), summary.shards().count());
    assert!(matches!(
        c.database_info("nope").await,
        Err(ClientError::NoData { .. })
    ));

    // Types 0/6/7 through the orchestrators, into a fresh server.
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    let opts = BackupOptions {
        jobs: 4,
        ..Default::default()
    };
    let hooks = Hooks::default();
    let s = backup(&c, &dest, &opts, &hooks).await.unwrap();
    assert_eq!(s.files.len(), all.len() + 1);
    assert_eq!(
        TransferStats::get(&hooks.stats.shards_done),
        all.len() as u64
    );
    assert!(verify(&dest, 2, 1 << 26).await.unwrap().ok());

    let b = Influxd::start();
    let r = restore(
        &client(&b.bind),
        &dest,
        &RestoreOptions {
            jobs: 4,
            ..Default::default()
        },
        &Hooks::default(),
    )
    .await
    .unwrap();
    assert!(r.checksums_verified);
    assert_eq!(r.restored.len(), all.len());
    assert_eq!(a.fingerprint(LOADED), b.fingerprint(LOADED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: run via cargo xtask interop influx"]
async fn missing_shard_fails_naming_it_after_retries() {
    let a = Influxd::start();
    load_metrics(&a, 1, 2);
    let dir = tempfile::tempdir().unwrap();
    let dest = Storage::local(dir.path(), false).unwrap();
    let opts = BackupOptions {
        db: Some("db1".into()),
        rp: Some("autogen".into()),
        shard: Some(999),
        retry: RetryPolicy {
            attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        },
        ..Default::default()
    };
    let err = backup(&client(&a.bind), &dest, &opts, &Hooks::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::ShardFailed { shard_id: 999, attempts: 2, source, .. }
            if matches!(**source, ClientError::NoData { .. })),
        "{err}"
    );
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".manifest")
    }));
}
