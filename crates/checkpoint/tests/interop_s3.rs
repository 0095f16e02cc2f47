//! The checkpoint scenarios against a real S3-API server (moto), run by
//! `cargo xtask interop s3`, which exports SNAPSHOTD_S3_ENDPOINT, SNAPSHOTD_S3_BUCKET and
//! the AWS_* credentials.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

#[path = "checkpoint/scenarios.rs"]
mod scenarios;

use scenarios::Damage;
use snapshotd_checkpoint::{Destination, MasterKey, S3Options};

/// A destination under a fresh unique prefix of the test bucket.
fn s3() -> Destination {
    let endpoint = std::env::var("SNAPSHOTD_S3_ENDPOINT")
        .expect("SNAPSHOTD_S3_ENDPOINT (run via cargo xtask interop s3)");
    let bucket = std::env::var("SNAPSHOTD_S3_BUCKET").expect("SNAPSHOTD_S3_BUCKET");
    let mut opts = S3Options::from_lookup(|k| std::env::var(k).ok());
    opts.endpoint = Some(endpoint);
    let url = format!("s3://{bucket}/interop/{}", uuid::Uuid::new_v4());
    Destination::open(&url, &opts).expect("open s3 destination")
}

macro_rules! s3_test {
    ($name:ident, $call:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = "interop: run via cargo xtask interop s3"]
        async fn $name() {
            ($call)(s3()).await;
        }
    };
}

s3_test!(two_lockers, scenarios::two_lockers);
s3_test!(lock_race, scenarios::lock_race);
s3_test!(expired_takeover, scenarios::expired_takeover);
s3_test!(paused_holder_fenced, scenarios::paused_holder_fenced);
s3_test!(resume_merges, |d| scenarios::resume_merges(d, None));
s3_test!(resume_merges_encrypted, |d| scenarios::resume_merges(
    d,
    Some(MasterKey::generate())
));
s3_test!(config_mismatch, scenarios::config_mismatch);
s3_test!(unlock_shows_holder, scenarios::unlock_shows_holder);
s3_test!(background_flush, scenarios::background_flush);
s3_test!(refresh_keeps_lock, scenarios::refresh_keeps_lock);
s3_test!(namespaces, scenarios::namespaces);
s3_test!(compaction, scenarios::compaction);
s3_test!(
    decrypt_from_destination,
    scenarios::decrypt_from_destination
);
s3_test!(concurrent_refresh, scenarios::concurrent_refresh);
s3_test!(stale_epoch_file, scenarios::stale_epoch_file);
s3_test!(bit_flip_encrypted, |d| scenarios::tampered(
    d,
    Some(MasterKey::generate()),
    Damage::BitFlip
));
s3_test!(swap, |d| scenarios::tampered(d, None, Damage::Swap));
s3_test!(truncate, |d| scenarios::tampered(d, None, Damage::Truncate));
s3_test!(replay_encrypted, |d| scenarios::tampered(
    d,
    Some(MasterKey::generate()),
    Damage::Replay
));
