//! Archive → status → restore against a synthetic member WAL (no etcd needed): committed
//! entries only, raft overwrites, resume without duplicates, gaps detected and refused,
//! one active archiver per destination.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod member;

use std::path::Path;
use std::time::Duration;

use member::{FakeMember, NODE, payload};
use snapshotd_checkpoint::Destination;
use snapshotd_etcd::{
    ArchiveEvent, ArchiveOptions, Catalog, Error, RestoreOptions, Target, archive, restore, status,
};
use snapshotd_wal::{Snapshot, WalReader};

struct Run {
    events: Vec<String>,
    gaps: Vec<(u64, u64)>,
}

async fn archive_once(dest: &Destination, data_dir: &Path, chunk_bytes: u64) -> Result<Run, Error> {
    let opts = ArchiveOptions {
        once: true,
        chunk_bytes,
        ..ArchiveOptions::new(data_dir)
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let mut run = Run {
        events: Vec::new(),
        gaps: Vec::new(),
    };
    let mut on = |e: ArchiveEvent| {
        if let ArchiveEvent::Gap(g) = &e {
            run.gaps.push((g.from, g.to));
        }
        run.events.push(format!("{e:?}"));
    };
    archive(dest, &opts, rx, &mut on).await?;
    Ok(run)
}

async fn restore_to(dest: &Destination, dir: &Path, target: Target) -> Result<u64, Error> {
    let opts = RestoreOptions {
        data_dir: dir.to_path_buf(),
        target,
        name: None,
        peer_urls: Vec::new(),
        key: None,
    };
    restore(dest, &opts).await.map(|r| r.index)
}

/// The restored WAL holds exactly the member's committed entries 1..=n.
fn check_restored(dir: &Path, n: u64, terms: impl Fn(u64) -> u64) {
    let got = WalReader::open(dir.join("member/wal"), Snapshot::default())
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(got.hardstate.commit, n);
    assert_eq!(got.entries.len() as u64, n);
    for e in got.entries.iter().skip(1) {
        assert_eq!(
            e.data.as_deref(),
            Some(&payload(e.index, terms(e.index))[..]),
            "entry {}",
            e.index
        );
    }
    let meta = snapshotd_etcd::pb::decode_metadata(got.metadata.as_deref().unwrap()).unwrap();
    assert_eq!(meta.node_id, NODE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_entries_only_and_resume_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = Destination::local(tmp.path().join("dest")).unwrap();
    let mut m = FakeMember::create(tmp.path());
    m.append(120, 10);
    archive_once(&dest, &m.data_dir, 4096).await.unwrap();
    let cat = Catalog::load(&dest, None).await.unwrap();
    assert_eq!(cat.archived_through(), 111, "uncommitted entries stay out");
    assert!(cat.chunks.len() > 3, "small chunks: {}", cat.chunks.len());
    // A new leader replaces the uncommitted tail; then more is written and committed.
    m.overwrite(115, 40);
    archive_once(&dest, &m.data_dir, 4096).await.unwrap();
    m.append(30, 0);
    archive_once(&dest, &m.data_dir, 1 << 20).await.unwrap();
    let cat = Catalog::load(&dest, None).await.unwrap();
    assert_eq!(cat.archived_through(), m.last);
    assert_eq!(cat.missing(), vec![]);
    let mut next = 1;
    for c in &cat.chunks {
        assert_eq!(c.info.first, next, "contiguous, never twice");
        next = c.info.last + 1;
    }
    let term_of = |i: u64| if i < 115 { 1 } else { 2 };
    for n in [1, 57, 114, 115, m.last] {
        let dir = tmp.path().join(format!("r{n}"));
        assert_eq!(restore_to(&dest, &dir, Target::Index(n)).await.unwrap(), n);
        check_restored(&dir, n, term_of);
    }
    let dir = tmp.path().join("latest");
    assert_eq!(
        restore_to(&dest, &dir, Target::Latest).await.unwrap(),
        m.last
    );
    assert!(
        snapshotd_etcd::verify(&dest, None)
            .await
            .unwrap()
            .problems
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_wal_starting_after_a_snapshot_is_a_gap_not_an_error() {
    // A restored member (or a follower sent a leader snapshot): its WAL holds a snapshot
    // record at 50 and entries from 51 on; 1..=50 were never in it.
    let tmp = tempfile::tempdir().unwrap();
    let dest = Destination::local(tmp.path().join("dest")).unwrap();
    let data_dir = tmp.path().join("restored");
    let meta = snapshotd_etcd::pb::encode_metadata(&snapshotd_etcd::pb::Metadata {
        node_id: NODE,
        cluster_id: member::CLUSTER,
    });
    let wal_dir = data_dir.join("member").join("wal");
    std::fs::create_dir_all(data_dir.join("member")).unwrap();
    let mut wal = snapshotd_wal::Wal::create_with(&wal_dir, &meta, &Default::default()).unwrap();
    wal.save_snapshot(&Snapshot::new(50, 2)).unwrap();
    let entries: Vec<_> = (51..=60)
        .map(|i| snapshotd_wal::Entry::new(i, 2, payload(i, 2)))
        .collect();
    wal.save(&snapshotd_wal::HardState::new(2, NODE, 60), &entries)
        .unwrap();
    wal.close().unwrap();
    let run = archive_once(&dest, &data_dir, 1 << 20).await.unwrap();
    assert_eq!(run.gaps, vec![(1, 50)], "{:?}", run.events);
    let cat = Catalog::load(&dest, None).await.unwrap();
    assert_eq!(cat.archived_through(), 60);
    assert_eq!(cat.chunks[0].info.first, 51);
    let err = restore_to(&dest, &tmp.path().join("r"), Target::Latest)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no base backup covers"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_before_archived_is_a_gap_reported_and_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = Destination::local(tmp.path().join("dest")).unwrap();
    let mut m = FakeMember::create(tmp.path());
    m.append(50, 0);
    let archived = m.last;
    archive_once(&dest, &m.data_dir, 1 << 20).await.unwrap();
    // The archiver is down while etcd writes, snapshots and purges.
    m.append(400, 0);
    let names: Vec<_> = std::fs::read_dir(m.wal_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(m.purge(m.last, 1) > 0, "segments purged: {names:?}");
    m.append(20, 0);
    let run = archive_once(&dest, &m.data_dir, 1 << 20).await.unwrap();
    let [(from, to)] = run.gaps[..] else {
        panic!("one gap: {:?}", run.events)
    };
    assert_eq!(from, archived + 1);
    assert!(to > from && to < m.last);
    let st = status(&dest, None).await.unwrap();
    assert_eq!(st.archived_through_index, m.last);
    assert_eq!(st.gaps.len(), 1);
    assert_eq!((st.gaps[0].from, st.gaps[0].to), (from, to));
    assert_eq!(
        st.restorable.as_ref().map(|r| (r.from, r.to)),
        Some((1, archived))
    );
    // Inside and after the gap: refused with the reason; before it: restored.
    for n in [from, to + 5] {
        let dir = tmp.path().join(format!("r{n}"));
        let err = restore_to(&dest, &dir, Target::Index(n))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gap") && err.contains(&format!("{from}..={to}")),
            "{err}"
        );
        assert!(!dir.exists(), "refused restore created {dir:?}");
    }
    let dir = tmp.path().join("r40");
    restore_to(&dest, &dir, Target::Index(40)).await.unwrap();
    check_restored(&dir, 40, |_| 1);
    // A later run does not report the same gap again and keeps archiving.
    m.append(5, 0);
    let run = archive_once(&dest, &m.data_dir, 1 << 20).await.unwrap();
    assert!(run.gaps.is_empty());
    assert_eq!(
        Catalog::load(&dest, None).await.unwrap().archived_through(),
        m.last
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_active_archiver_per_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = Destination::local(tmp.path().join("dest")).unwrap();
    let mut m = FakeMember::create(tmp.path());
    m.append(10, 0);
    let opts = ArchiveOptions {
        interval: Duration::from_millis(50),
        ..ArchiveOptions::new(&m.data_dir)
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (d2, o2) = (dest.clone(), opts.clone());
    let bg = tokio::spawn(async move { archive(&d2, &o2, rx, &mut |_| {}).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Catalog::load(&dest, None)
        .await
        .map(|c| c.archived_through())
        .unwrap_or(0)
        < 11
    {
        assert!(
            std::time::Instant::now() < deadline,
            "background archiver idle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = archive_once(&dest, &m.data_dir, 1 << 20)
        .await
        .err()
        .expect("second archiver refused");
    assert!(
        matches!(
            err.checkpoint_error(),
            Some(snapshotd_checkpoint::Error::Locked { .. })
        ),
        "{err}"
    );
    tx.send(true).unwrap();
    bg.await.unwrap().unwrap();
    // The holder released the lease on stop: a new run proceeds at once.
    m.append(3, 0);
    archive_once(&dest, &m.data_dir, 1 << 20).await.unwrap();
    assert_eq!(
        Catalog::load(&dest, None).await.unwrap().archived_through(),
        14
    );
    m.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_non_empty_target_and_unknown_archive_points() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = Destination::local(tmp.path().join("dest")).unwrap();
    let mut m = FakeMember::create(tmp.path());
    m.append(20, 0);
    archive_once(&dest, &m.data_dir, 1 << 20).await.unwrap();
    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep"), b"x").unwrap();
    let err = restore_to(&dest, &busy, Target::Latest).await.unwrap_err();
    assert!(matches!(err, Error::BadTarget { .. }), "{err}");
    assert_eq!(std::fs::read(busy.join("keep")).unwrap(), b"x");
    let early = chrono::Utc::now() - chrono::Duration::days(1);
    let err = restore_to(&dest, &tmp.path().join("t"), Target::Time(early))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotRestorable { .. }), "{err}");
    let now = chrono::Utc::now();
    assert_eq!(
        restore_to(&dest, &tmp.path().join("t2"), Target::Time(now))
            .await
            .unwrap(),
        21
    );
}

async fn wait_through(dest: &Destination, index: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while Catalog::load(dest, None)
        .await
        .map(|c| c.archived_through())
        .unwrap_or(0)
        < index
    {
        assert!(
            std::time::Instant::now() < deadline,
            "archive did not reach {index}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// etcd's purge of `.snap` files: oldest first beyond `keep`, each try-locked exclusively,
/// stopping at the first it cannot lock. Returns how many it removed.
fn purge_snaps(dir: &Path, keep: usize) -> usize {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    names.sort();
    let mut removed = 0;
    for p in names.iter().take(names.len().saturating_sub(keep)) {
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        if !snapshotd_wal::ofd::try_lock_exclusive(&f).unwrap() {
            break;
        }
        std::fs::remove_file(p).unwrap();
        removed += 1;
    }
    removed
}

fn write_snap(dir: &Path, term: u64, index: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{term:016x}-{index:016x}.snap")), b"snap").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_destination_keeps_segments_locked_then_no_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("dest");
    let dest = Destination::local(&root).unwrap();
    let mut m = FakeMember::create(tmp.path());
    m.append(30, 0);
    let snap_dir = m.data_dir.join("member").join("snap");
    write_snap(&snap_dir, 1, 10);
    let opts = ArchiveOptions {
        interval: Duration::from_millis(50),
        lock_ttl: Duration::from_secs(1),
        ..ArchiveOptions::new(&m.data_dir)
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (d2, o2) = (dest.clone(), opts.clone());
    let retries = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let r2 = retries.clone();
    let bg = tokio::spawn(async move {
        let mut on = |e: ArchiveEvent| {
            if matches!(e, ArchiveEvent::Retrying { .. }) {
                r2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        };
        archive(&d2, &o2, rx, &mut on).await
    });
    wait_through(&dest, m.last).await;
    let archived = m.last;
    // The destination disappears (a file where the directory was).
    std::fs::rename(&root, tmp.path().join("dest.away")).unwrap();
    std::fs::write(&root, b"not a directory").unwrap();
    m.append(300, 0);
    m.release(m.last);
    for i in 2..5 {
        write_snap(&snap_dir, 1, i * 100); // etcd keeps snapshotting meanwhile
    }
    tokio::time::sleep(Duration::from_millis(600)).await; // the archiver re-pins meanwhile
    assert_eq!(
        purge_snaps(&snap_dir, 1),
        0,
        "purge deleted a .snap file the archiver has not archived"
    );
    let before = snapshotd_wal::list_segments(&m.wal_dir()).unwrap().len();
    assert!(before >= 4, "segments cut: {before}");
    assert_eq!(
        m.purge_only(1),
        0,
        "purge deleted a segment the archiver still needs"
    );
    assert!(
        retries.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the failure was reported"
    );
    // The destination comes back: everything is archived, with no gap.
    std::fs::remove_file(&root).unwrap();
    std::fs::rename(tmp.path().join("dest.away"), &root).unwrap();
    wait_through(&dest, m.last).await;
    let cat = Catalog::load(&dest, None).await.unwrap();
    assert_eq!(cat.missing(), vec![]);
    assert!(cat.chunks.iter().any(|c| c.info.first == archived + 1));
    // Once archived, the locks go: etcd's purge proceeds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(m.purge_only(1) > 0, "archived segments are released");
    let cat = Catalog::load(&dest, None).await.unwrap();
    assert_eq!(cat.snaps.len(), 4, "every .snap archived: {:?}", cat.snaps);
    assert_eq!(
        purge_snaps(&snap_dir, 1),
        3,
        "archived .snap files are released"
    );
    tx.send(true).unwrap();
    bg.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_archive_needs_its_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = Destination::local(tmp.path().join("dest")).unwrap();
    let mut m = FakeMember::create(tmp.path());
    m.append(40, 0);
    let key = snapshotd_checkpoint::MasterKey::from_bytes([7; 32]);
    let opts = ArchiveOptions {
        once: true,
        key: Some(key.clone()),
        ..ArchiveOptions::new(&m.data_dir)
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    archive(&dest, &opts, rx, &mut |_| {}).await.unwrap();
    // Stored chunks are ciphertext: the payloads do not appear in them.
    let chunks = tmp.path().join("dest/chunks");
    for e in std::fs::read_dir(&chunks).unwrap() {
        let p = e.unwrap().path();
        assert!(p.to_string_lossy().ends_with(".wal.enc"), "{p:?}");
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.windows(8).any(|w| w == b"put k10 "),
            "plaintext in {p:?}"
        );
    }
    let with_key = RestoreOptions {
        data_dir: tmp.path().join("r"),
        target: Target::Latest,
        name: None,
        peer_urls: Vec::new(),
        key: Some(key),
    };
    assert_eq!(restore(&dest, &with_key).await.unwrap().index, m.last);
    check_restored(&tmp.path().join("r"), m.last, |_| 1);
    // Without the key nothing is trusted or decrypted; the target stays untouched.
    let without = RestoreOptions {
        data_dir: tmp.path().join("r2"),
        key: None,
        ..with_key
    };
    let err = restore(&dest, &without).await.unwrap_err().to_string();
    assert!(err.contains("encrypt"), "{err}");
    assert!(!tmp.path().join("r2").join("member").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_archives_everything_even_past_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = Destination::local(tmp.path().join("dest")).unwrap();
    let mut m = FakeMember::create(tmp.path());
    m.append(200, 0);
    let opts = ArchiveOptions {
        once: true,
        pass_bytes: 4096,
        chunk_bytes: 2048,
        ..ArchiveOptions::new(&m.data_dir)
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    archive(&dest, &opts, rx, &mut |_| {}).await.unwrap();
    assert_eq!(
        Catalog::load(&dest, None).await.unwrap().archived_through(),
        m.last
    );
}
