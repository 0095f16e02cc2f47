//! A restore point after a full run and a `--since` run: each shard is uploaded once, as
//! the union of both archives (the increment's copy of a file winning), every archive's
//! checksum checked on the way.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeZone;
use snapshotd_client::backup::backup;
use snapshotd_client::{ClientError, Hooks, Window};
use snapshotd_wire::GoTime;

use super::fake::{A1, Fake, Reply};
use super::{
    TS, client, failed_restore, flip_last_byte, good_backup, opts, restore_into_fake, tar_entries,
};

const TS2: &str = "20261123T022308Z";

/// A tar holding `entries` (name, data), as influxd streams a shard.
fn tar_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// Adds a `--since` run to the full backup of A1 in `dest`: shard 2's archive holds a new
/// TSM file and a rewritten copy of one of its files; every other shard's is empty.
/// Returns shard 2's entries as the union should hold them.
async fn add_increment(dest: &snapshotd_client::Storage) -> BTreeMap<String, Vec<u8>> {
    let a1 = Arc::new(A1::load());
    let full = tar_entries(&a1.shards[&2]);
    let (first, _) = full.iter().next().unwrap();
    let dir = first.rsplit_once('/').unwrap().0.to_string();
    let inc = vec![
        (first.clone(), b"rewritten".to_vec()),
        (format!("{dir}/000000009-000000001.tsm"), b"new".to_vec()),
    ];
    let inc_tar = tar_of(&inc);
    let fake = Fake::start(Arc::clone(&a1).responder(move |id, _, _| {
        Some(Reply::Bytes(match id {
            2 => inc_tar.clone(),
            _ => tar_of(&[]),
        }))
    }))
    .await;
    let mut o = opts();
    o.started = Some(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 2, 23, 8)
            .unwrap(),
    );
    o.window = Window::Since(GoTime::from_unix(1_795_000_000, 0).unwrap());
    backup(&client(&fake.addr), dest, &o, &Hooks::default())
        .await
        .unwrap();
    let mut union = full;
    union.extend(inc);
    union
}

#[tokio::test]
async fn an_incremental_point_uploads_each_shard_once_as_the_union() {
    let (dir, dest) = good_backup().await;
    let want2 = add_increment(&dest).await;
    assert!(dir.path().join(format!("{TS2}.manifest")).is_file());
    let (s, fake) = restore_into_fake(&dest).await;
    let s = s.unwrap();
    assert_eq!(s.manifest, format!("{TS2}.manifest"));
    assert!(s.checksums_verified);
    assert_eq!(s.stacked.len(), s.restored.len(), "{:?}", s.stacked);
    assert_eq!(
        s.stacked[1].to_string(),
        format!("shard 2: full {TS} + 1 incremental")
    );
    let uploads: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|r| r.kind == 7)
        .collect();
    let mut ids: Vec<u64> = uploads.iter().map(|r| r.upload_id.unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=6).collect::<Vec<_>>(), "one upload per shard");
    let a1 = A1::load();
    for r in &uploads {
        let id = r.upload_id.unwrap();
        let got = tar_entries(&r.tar);
        // B1's map keeps names and ids, so entries keep theirs.
        if id == 2 {
            assert_eq!(got, want2);
        } else {
            assert_eq!(got, tar_entries(&a1.shards[&id]), "shard {id}");
        }
    }
}

/// The full run's archive under an increment is still checked: a damaged one aborts the
/// shard's upload (no clean end) and names the file.
#[tokio::test]
async fn a_damaged_full_archive_under_an_increment_is_never_uploaded() {
    let (dir, dest) = good_backup().await;
    add_increment(&dest).await;
    flip_last_byte(&dir.path().join(format!("{TS}.s2.tar.gz")));
    let (err, fake) = failed_restore(&dest).await;
    assert!(matches!(err, ClientError::Integrity { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("{TS}.s2.tar.gz")),
        "{err}"
    );
    assert!(
        fake.received()
            .iter()
            .all(|r| r.kind != 7 || r.upload_id != Some(2)),
        "the damaged shard was uploaded"
    );
}
