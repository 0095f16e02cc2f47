//! Refusals before anything is sent: each typed error names what was asked for, with the fix.

use snapshotd_client::restore::restore;
use snapshotd_client::{ClientError, Hooks, RestoreOptions, Storage};

use crate::fake::{capture, capture_dir};
use crate::{client, restore_target};

/// Runs a restore of `src` into a fake target; returns the error and whether the target
/// received nothing.
async fn refused(src: &Storage, o: RestoreOptions) -> (ClientError, bool) {
    let b1 = capture_dir("B1_restore_portable_full");
    let fake = restore_target(capture(&b1, "01-", ".s2c.bin")).await;
    let err = restore(&client(&fake.addr), src, &o, &Hooks::default())
        .await
        .unwrap_err();
    (err, fake.received().is_empty())
}

fn a1() -> Storage {
    Storage::local(&snapshotd_testutil::vector("influx/backups/A1_full"), false).unwrap()
}

#[tokio::test]
async fn a_shard_of_another_database_is_not_in_the_backup() {
    let o = RestoreOptions {
        db: Some("db1".into()),
        shard: Some(5),
        ..Default::default()
    };
    let (err, nothing_sent) = refused(&a1(), o).await;
    assert!(nothing_sent);
    assert!(
        matches!(&err, ClientError::ShardNotInBackup { shard: 5, db: Some(d), rp: None, available }
            if d == "db1" && available == &[1, 2, 3]),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(
            "shard 5 is not in the backup (for --db db1 --rp <any>); it holds shard(s) 1, 2, 3"
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn a_name_that_escapes_its_directory_is_refused() {
    let o = RestoreOptions {
        db: Some("db1".into()),
        new_db: Some("../x".into()),
        ..Default::default()
    };
    let (err, nothing_sent) = refused(&a1(), o).await;
    assert!(nothing_sent);
    assert!(
        matches!(&err, ClientError::InvalidName { name } if name == "../x"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_directory_without_manifest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = Storage::local(dir.path(), false).unwrap();
    let (err, nothing_sent) = refused(&src, RestoreOptions::default()).await;
    assert!(nothing_sent);
    let want = dir.path().display().to_string();
    assert!(
        matches!(&err, ClientError::NoManifest { location } if *location == want),
        "{err:?}"
    );
    assert!(err.to_string().contains("no *.manifest in"), "{err}");
}

#[tokio::test]
async fn small_files_missing_or_oversized_are_named() {
    let src = a1();
    let err = src.get_bounded("nope.meta", 1024).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::MissingFile { path } if path.ends_with("nope.meta")),
        "{err:?}"
    );
    let err = src
        .get_bounded("20261122T022308Z.manifest", 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::FileTooLarge { path, limit: 10, .. } if path.ends_with(".manifest")),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("more than the limit of 10"),
        "{err}"
    );
}

#[test]
fn reading_from_a_missing_directory_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("nope");
    let err = Storage::local(&gone, false).err().unwrap();
    assert!(matches!(&err, ClientError::NotADirectory { path } if path.ends_with("nope")));
    assert!(err.to_string().contains("is not a directory"), "{err}");
    assert!(!gone.exists());
}
