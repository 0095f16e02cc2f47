//! Integration tests of snapshotd-checkpoint against local directories and InMemory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod files;
mod flaky;
mod scenarios;

use scenarios::Damage;
use snapshotd_checkpoint::{Destination, MasterKey};

/// A fresh local destination (its temp dir lives as long as the returned guard).
fn local() -> (tempfile::TempDir, Destination) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = Destination::local(dir.path().join("dest")).expect("local dest");
    (dir, dest)
}

macro_rules! both_backends {
    ($name:ident, $call:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local_dir() {
                let (_g, dest) = local();
                ($call)(dest).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_memory() {
                ($call)(Destination::memory()).await;
            }
        }
    };
}

both_backends!(two_lockers, scenarios::two_lockers);
both_backends!(lock_race, scenarios::lock_race);
both_backends!(expired_takeover, scenarios::expired_takeover);
both_backends!(paused_holder_fenced, scenarios::paused_holder_fenced);
both_backends!(resume_merges, |d| scenarios::resume_merges(d, None));
both_backends!(resume_merges_encrypted, |d| scenarios::resume_merges(
    d,
    Some(MasterKey::generate())
));
both_backends!(config_mismatch, scenarios::config_mismatch);
both_backends!(unlock_shows_holder, scenarios::unlock_shows_holder);
both_backends!(background_flush, scenarios::background_flush);
both_backends!(refresh_keeps_lock, scenarios::refresh_keeps_lock);
both_backends!(namespaces, scenarios::namespaces);
both_backends!(compaction, scenarios::compaction);
both_backends!(
    decrypt_from_destination,
    scenarios::decrypt_from_destination
);
both_backends!(concurrent_refresh, scenarios::concurrent_refresh);
both_backends!(stale_epoch_file, scenarios::stale_epoch_file);
both_backends!(bit_flip, |d| scenarios::tampered(d, None, Damage::BitFlip));
both_backends!(truncate, |d| scenarios::tampered(d, None, Damage::Truncate));
both_backends!(swap, |d| scenarios::tampered(d, None, Damage::Swap));
both_backends!(replay, |d| scenarios::tampered(d, None, Damage::Replay));
both_backends!(bit_flip_encrypted, |d| scenarios::tampered(
    d,
    Some(MasterKey::generate()),
    Damage::BitFlip
));
both_backends!(truncate_encrypted, |d| scenarios::tampered(
    d,
    Some(MasterKey::generate()),
    Damage::Truncate
));
both_backends!(swap_encrypted, |d| scenarios::tampered(
    d,
    Some(MasterKey::generate()),
    Damage::Swap
));
both_backends!(replay_encrypted, |d| scenarios::tampered(
    d,
    Some(MasterKey::generate()),
    Damage::Replay
));
