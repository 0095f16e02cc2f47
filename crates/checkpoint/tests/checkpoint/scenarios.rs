//! Backend-independent scenarios: run against local dirs and InMemory here, and against
//! S3 (moto) in the interop suite.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use object_store::ObjectStoreExt;
use snapshotd_checkpoint::{
    Checkpoint, CheckpointOptions, Destination, Error, JobConfig, LockGuard, LockOptions,
    ManualClock, MasterKey, RejectReason, UnitRecord, Unlocked, inspect, layout, unlock,
};

/// Options with a manual clock, a short TTL and a refresh task that never fires on its own.
pub fn opts(clock: Arc<ManualClock>, key: Option<MasterKey>) -> CheckpointOptions {
    CheckpointOptions {
        config: JobConfig::new()
            .with("db", "telegraf")
            .with("rp", "autogen"),
        key,
        flush_interval: Duration::from_secs(3600),
        lock: LockOptions {
            ttl: Duration::from_secs(30),
            refresh_interval: Some(Duration::from_secs(3600)),
            skew_margin: Duration::ZERO,
            clock,
            hint: "test".into(),
            host: None,
        },
        ..CheckpointOptions::default()
    }
}

/// A manual clock at the current time.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc::now()))
}

fn rec(key: &str) -> UnitRecord {
    UnitRecord::new(key, key.len() as u64, format!("sha-of-{key}"))
}

/// Two lockers at once: exactly one wins, the other's error names the holder.
pub async fn two_lockers(dest: Destination) {
    let c = clock();
    let (a, b) = tokio::join!(
        Checkpoint::open(&dest, opts(c.clone(), None)),
        Checkpoint::open(&dest, opts(c.clone(), None)),
    );
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (Ok(_), Ok(_)) => panic!("both lockers won"),
        (Err(x), Err(y)) => panic!("both lockers lost: {x} / {y}"),
    };
    match &loser {
        Error::Locked { holder, .. } => {
            assert_eq!(holder.owner, winner.lock().info().owner);
            assert_eq!(holder.pid, std::process::id());
            assert_eq!(holder.epoch, winner.epoch());
        }
        other => panic!("expected Locked, got {other}"),
    }
    let msg = loser.to_string();
    assert!(msg.contains(&winner.lock().info().owner), "{msg}");
    assert!(msg.contains("snapshotd unlock"), "{msg}");
    winner.finish().await.expect("finish");
    // Released: the next one gets it with a higher epoch.
    let next = Checkpoint::open(&dest, opts(c, None))
        .await
        .expect("reopen");
    assert!(next.epoch() > 1);
    next.finish().await.expect("finish");
}

/// A raw race on the lock object: of N concurrent acquirers exactly one wins.
pub async fn lock_race(dest: Destination) {
    let c = clock();
    let lo = || LockOptions {
        clock: c.clone(),
        skew_margin: Duration::ZERO,
        ..LockOptions::default()
    };
    let tries = futures::future::join_all((0..6).map(|_| LockGuard::acquire(&dest, lo(), 1))).await;
    let wins: Vec<&LockGuard> = tries.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(wins.len(), 1, "exactly one winner");
    for r in &tries {
        if let Err(e) = r {
            assert!(matches!(e, Error::Locked { .. }), "{e}");
        }
    }
    wins[0].release().await.expect("release");
}

/// An expired lock is taken over with a bumped epoch; the old holder's refresh fails.
pub async fn expired_takeover(dest: Destination) {
    let c = clock();
    let a = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .expect("a");
    let a_info = a.lock().info();
    // Still live: refused.
    let err = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .expect_err("live lock");
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    c.advance(Duration::from_secs(31));
    let b = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .expect("takeover");
    assert_eq!(b.epoch(), a.epoch() + 1);
    assert_eq!(b.lock().taken_over_from(), Some(&a_info));
    let err = a
        .lock()
        .refresh_now()
        .await
        .expect_err("old holder deposed");
    assert!(matches!(err, Error::Deposed { .. }), "{err}");
    assert!(matches!(a.health(), Err(Error::Deposed { .. })));
    let err = a.record_now(rec("y")).expect_err("deposed holder stops");
    assert!(matches!(err, Error::Deposed { .. }), "{err}");
    let err = a.record(rec("x")).await.expect_err("deposed holder stops");
    assert!(matches!(err, Error::Deposed { .. }), "{err}");
    assert!(a.finish().await.is_err());
    b.finish().await.expect("b finish");
}

/// A holder paused past expiry: its later flushes are ignored on load, its refresh fails,
/// and the caller sees the error.
pub async fn paused_holder_fenced(dest: Destination) {
    let clock_a = clock();
    let clock_b = clock();
    let a = Checkpoint::open(&dest, opts(clock_a.clone(), None))
        .await
        .expect("a");
    a.record(rec("u1")).await.expect("u1");
    a.flush().await.expect("flush u1");
    // A "pauses": its clock does not move, its refresh never runs. B's clock moves on.
    clock_b.advance(Duration::from_secs(60));
    let b = Checkpoint::open(&dest, opts(clock_b.clone(), None))
        .await
        .expect("b takes over");
    assert!(b.epoch() > a.epoch());
    assert!(b.done("u1").is_some(), "pre-takeover work is kept");
    // A wakes up and writes without knowing.
    a.record(rec("u2"))
        .await
        .expect("a still thinks it holds the lock");
    a.flush().await.expect("a's write lands");
    b.record(rec("u3")).await.expect("u3");
    b.flush().await.expect("flush u3");

    let seen = inspect(&dest, None).await.expect("inspect");
    assert!(seen.records.contains_key("u1"));
    assert!(seen.records.contains_key("u3"));
    assert!(!seen.records.contains_key("u2"), "fenced write trusted");
    let fenced: Vec<_> = seen
        .rejected
        .iter()
        .filter(|r| matches!(r.reason, RejectReason::Fenced { .. }))
        .collect();
    assert_eq!(fenced.len(), 1, "{:?}", seen.rejected);
    assert!(fenced[0].name.contains(&format!("{:020}-", a.epoch())));

    let err = a.lock().refresh_now().await.expect_err("refresh must fail");
    assert!(matches!(err, Error::Deposed { .. }), "{err}");
    let err = a.record(rec("u4")).await.expect_err("stopped");
    assert!(err.to_string().contains("lost"), "{err}");
    assert!(a.finish().await.is_err());
    b.finish().await.expect("b finish");

    // A fresh run sees the same picture.
    let c = Checkpoint::open(&dest, opts(clock_b, None))
        .await
        .expect("c");
    assert!(c.done("u1").is_some() && c.done("u3").is_some() && c.done("u2").is_none());
    assert!(
        c.resume()
            .rejected
            .iter()
            .any(|r| matches!(r.reason, RejectReason::Fenced { .. }))
    );
    c.finish().await.expect("c finish");
}

/// Records from several runs merge; a later record of the same key wins.
pub async fn resume_merges(dest: Destination, key: Option<MasterKey>) {
    let c = clock();
    let a = Checkpoint::open(&dest, opts(c.clone(), key.clone()))
        .await
        .expect("a");
    assert!(a.resume().records.is_empty());
    a.record(rec("one")).await.expect("rec");
    a.record(rec("two").with_payload(serde_json::json!({"files": ["x", "y"]})))
        .await
        .expect("rec");
    a.flush().await.expect("flush");
    a.record(UnitRecord::new("one", 99, "newer"))
        .await
        .expect("rec");
    let stats = a.finish().await.expect("finish");
    assert_eq!((stats.files, stats.records), (2, 3));

    let b = Checkpoint::open(&dest, opts(c.clone(), key.clone()))
        .await
        .expect("b");
    let r = b.resume();
    assert_eq!(r.files_read, 2);
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(b.done("one").map(|u| u.size), Some(99));
    assert_eq!(
        b.done("two").map(|u| u.payload.clone()),
        Some(serde_json::json!({"files": ["x", "y"]}))
    );
    b.record(rec("three")).await.expect("rec");
    b.finish().await.expect("finish");

    let c2 = Checkpoint::open(&dest, opts(c, key)).await.expect("c");
    assert_eq!(c2.resume().records.len(), 3);
    c2.finish_and_remove().await.expect("cleanup");
    let after = inspect(&dest, None).await.expect("inspect");
    assert!(after.job_id.is_none() && after.records.is_empty());
}

/// A resume with other settings (or another key) is refused, naming the setting.
pub async fn config_mismatch(dest: Destination) {
    let c = clock();
    let a = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .expect("a");
    a.record(rec("u")).await.expect("rec");
    a.finish().await.expect("finish");
    let mut other = opts(c.clone(), None);
    other.config = other.config.with("db", "other");
    let err = Checkpoint::open(&dest, other).await.expect_err("mismatch");
    assert!(matches!(err, Error::ConfigMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("db: checkpoint has \"telegraf\", now \"other\""),
        "{msg}"
    );
    let err = Checkpoint::open(&dest, opts(c.clone(), Some(MasterKey::generate())))
        .await
        .expect_err("key mismatch");
    assert!(err.to_string().contains("encryption.key_id"), "{err}");
    // The refusals released the lock: the original settings still resume.
    let b = Checkpoint::open(&dest, opts(c, None))
        .await
        .expect("same config");
    assert!(b.done("u").is_some());
    b.finish().await.expect("finish");
}

/// `unlock` shows the holder and removes the lock; the holder is then deposed.
pub async fn unlock_shows_holder(dest: Destination) {
    let c = clock();
    assert_eq!(
        unlock(&dest).await.expect("unlock none"),
        Unlocked::NotLocked
    );
    let a = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .expect("a");
    let info = a.lock().info();
    match unlock(&dest).await.expect("unlock") {
        Unlocked::Removed(held) => {
            assert_eq!(held, info);
            assert_eq!(held.hint, "test");
            assert_eq!(held.epoch, a.epoch());
        }
        other => panic!("expected Removed, got {other:?}"),
    }
    assert_eq!(unlock(&dest).await.expect("again"), Unlocked::NotLocked);
    assert_eq!(
        snapshotd_checkpoint::read_lock(&dest).await.expect("read"),
        None
    );
    let b = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .expect("b after unlock");
    assert!(b.epoch() > a.epoch(), "epochs never repeat");
    let b_epoch = b.epoch();
    assert!(a.lock().refresh_now().await.is_err());
    b.finish().await.expect("b");
    assert!(a.finish().await.is_err());

    // A holder removed before it wrote any fence: its epoch is still never reused.
    let lo = LockOptions {
        clock: c.clone(),
        skew_margin: Duration::ZERO,
        ..LockOptions::default()
    };
    // What `Checkpoint::open` would ask for: one above the newest fence.
    let raw = LockGuard::acquire(&dest, lo, b_epoch + 1)
        .await
        .expect("raw");
    let raw_epoch = raw.epoch();
    assert!(matches!(
        unlock(&dest).await.expect("unlock"),
        Unlocked::Removed(_)
    ));
    let d = Checkpoint::open(&dest, opts(c, None)).await.expect("d");
    assert!(d.epoch() > raw_epoch, "{} vs {raw_epoch}", d.epoch());
    d.finish().await.expect("d");
    assert!(
        raw.release().await.is_err(),
        "the removed holder cannot release"
    );
}

/// The background tick flushes without explicit calls.
pub async fn background_flush(dest: Destination) {
    let c = clock();
    let mut o = opts(c, None);
    o.flush_interval = Duration::from_millis(50);
    let a = Checkpoint::open(&dest, o).await.expect("a");
    a.record(rec("ticked")).await.expect("rec");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = inspect(&dest, None).await.expect("inspect");
        if seen.records.contains_key("ticked") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tick flush never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.finish().await.expect("finish");
}

/// Writes two record files ("a" then "b") and returns their names.
async fn two_files(dest: &Destination, key: Option<MasterKey>) -> (String, String) {
    let c = clock();
    let a = Checkpoint::open(dest, opts(c, key)).await.expect("a");
    a.record(rec("a")).await.expect("rec");
    a.flush().await.expect("flush");
    a.record(rec("b")).await.expect("rec");
    a.flush().await.expect("flush");
    let e = a.epoch();
    a.finish().await.expect("finish");
    (layout::data(e, 1), layout::data(e, 2))
}

async fn get(dest: &Destination, rel: &str) -> Vec<u8> {
    let r = dest.store().get(&dest.path(rel)).await.expect("get");
    r.bytes().await.expect("bytes").to_vec()
}

async fn put(dest: &Destination, rel: &str, data: Vec<u8>) {
    dest.store()
        .put(&dest.path(rel), Bytes::from(data).into())
        .await
        .expect("put");
}

/// How to damage the two files written by [`two_files`].
#[derive(Debug, Clone, Copy)]
pub enum Damage {
    /// Flip one bit in the middle of the first file.
    BitFlip,
    /// Cut the first file short.
    Truncate,
    /// Exchange the two files' contents.
    Swap,
    /// Re-publish the first file under a later sequence number of the same epoch.
    Replay,
}

/// Damaged checkpoint files are detected, reported, and never trusted; strict mode refuses.
pub async fn tampered(dest: Destination, key: Option<MasterKey>, damage: Damage) {
    let (f1, f2) = two_files(&dest, key.clone()).await;
    let d1 = get(&dest, &f1).await;
    let d2 = get(&dest, &f2).await;
    let mut expect_bad = vec![f1.clone()];
    match damage {
        Damage::BitFlip => {
            let mut d = d1.clone();
            let mid = d.len() / 2;
            d[mid] ^= 0x10;
            put(&dest, &f1, d).await;
        }
        Damage::Truncate => put(&dest, &f1, d1[..d1.len() - 7].to_vec()).await,
        Damage::Swap => {
            put(&dest, &f1, d2).await;
            put(&dest, &f2, d1).await;
            expect_bad.push(f2.clone());
        }
        Damage::Replay => {
            // Same epoch as the last fence, so the name passes the fence check: the
            // content must give it away.
            let (e, _) =
                layout::parse_data(f1.rsplit('/').next().unwrap_or_default()).expect("name");
            let fake = layout::data(e, 7);
            put(&dest, &fake, d1).await;
            expect_bad = vec![fake];
        }
    }
    let seen = inspect(&dest, key.as_ref()).await.expect("inspect");
    let bad: Vec<&str> = seen
        .rejected
        .iter()
        .filter(|r| r.is_integrity_failure())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(bad, expect_bad, "{damage:?}: {:?}", seen.rejected);
    if let Damage::Replay = damage {
        assert_eq!(seen.records.len(), 2);
    } else {
        assert!(
            !seen.records.contains_key("a"),
            "{damage:?}: damaged record trusted"
        );
        assert!(seen.files_read < 2, "{damage:?}: damaged file was merged");
    }
    // Resume reports it; strict mode refuses.
    let c = clock();
    let mut strict = opts(c.clone(), key.clone());
    strict.strict = true;
    let err = Checkpoint::open(&dest, strict)
        .await
        .expect_err("strict refuses");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let lenient = Checkpoint::open(&dest, opts(c, key))
        .await
        .expect("lenient");
    assert!(
        lenient
            .resume()
            .rejected
            .iter()
            .any(|r| r.is_integrity_failure())
    );
    lenient.finish().await.expect("finish");
}

/// A record file of an older epoch that appears after a newer holder's fence is ignored.
pub async fn stale_epoch_file(dest: Destination) {
    let (f1, _) = two_files(&dest, None).await;
    let d1 = get(&dest, &f1).await;
    // A later run at a newer epoch fences epoch 1 as it stood.
    let c = clock();
    let b = Checkpoint::open(&dest, opts(c, None)).await.expect("b");
    b.finish().await.expect("finish");
    // Now an epoch-1 file appears that the fence did not list (a delayed write).
    let (e, _) = layout::parse_data(f1.rsplit('/').next().unwrap_or_default()).expect("name");
    let late = layout::data(e, 3);
    put(&dest, &late, d1).await;
    let seen = inspect(&dest, None).await.expect("inspect");
    let r = seen
        .rejected
        .iter()
        .find(|r| r.name == late)
        .expect("reported");
    assert!(
        matches!(r.reason, RejectReason::Fenced { epoch, .. } if epoch == e),
        "{r:?}"
    );
    assert_eq!(seen.records.len(), 2);
}

/// The background refresh keeps the lease alive past its first expiry.
pub async fn refresh_keeps_lock(dest: Destination) {
    let c = clock();
    let mut o = opts(c.clone(), None);
    o.lock.refresh_interval = Some(Duration::from_millis(20));
    let a = Checkpoint::open(&dest, o).await.expect("a");
    let first_expiry = a.lock().info().expires;
    c.advance(Duration::from_secs(20));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = snapshotd_checkpoint::read_lock(&dest)
            .await
            .expect("read")
            .expect("held");
        if now.expires > first_expiry {
            assert_eq!(now.owner, a.lock().info().owner);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lock never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the first expiry, yet still held.
    c.advance(Duration::from_secs(15));
    let err = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .expect_err("still held");
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    a.finish().await.expect("finish");
}

/// Independent namespaces (e.g. backup and restore) lock and resume independently.
pub async fn namespaces(dest: Destination) {
    let c = clock();
    let a = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .expect("root");
    let r = dest.child("restore/job-1");
    let b = Checkpoint::open(&r, opts(c.clone(), None))
        .await
        .expect("child");
    b.record(rec("restored")).await.expect("rec");
    b.finish().await.expect("finish");
    a.finish().await.expect("finish");
    assert!(
        inspect(&r, None)
            .await
            .expect("inspect")
            .records
            .contains_key("restored")
    );
    assert!(
        inspect(&dest, None)
            .await
            .expect("inspect")
            .records
            .is_empty()
    );
}

/// Many record files are merged into one on open; fencing still holds afterwards.
pub async fn compaction(dest: Destination) {
    let c = clock();
    let mut o = opts(c.clone(), None);
    o.compact_after_files = 3;
    let a = Checkpoint::open(&dest, o.clone()).await.expect("a");
    for k in ["k1", "k2", "k3", "k4"] {
        a.record(rec(k)).await.expect("rec");
        a.flush().await.expect("flush");
    }
    a.record(UnitRecord::new("k1", 7, "newest"))
        .await
        .expect("rec");
    let a_epoch = a.epoch();
    a.finish().await.expect("finish");
    assert_eq!(inspect(&dest, None).await.expect("inspect").files_read, 5);

    let b = Checkpoint::open(&dest, o.clone()).await.expect("b");
    assert_eq!(b.resume().records.len(), 4);
    assert_eq!(b.done("k1").map(|r| r.size), Some(7));
    b.record(rec("k5")).await.expect("rec");
    b.finish().await.expect("finish");

    let seen = inspect(&dest, None).await.expect("inspect");
    assert_eq!(seen.files_read, 2, "compacted file + one new file");
    assert!(seen.rejected.is_empty(), "{:?}", seen.rejected);
    assert_eq!(seen.records.len(), 5);
    assert_eq!(seen.records.get("k1").map(|r| r.size), Some(7));
    // The merged originals are gone.
    let old = dest.path(&layout::data(a_epoch, 1));
    assert!(dest.store().head(&old).await.is_err());
    // A late write of the old epoch is still fenced.
    let late = layout::data(a_epoch, 9);
    let sample = get(&dest, &layout::data(b_epoch_of(&seen), 1)).await;
    put(&dest, &late, sample).await;
    let seen = inspect(&dest, None).await.expect("inspect");
    assert!(
        seen.rejected
            .iter()
            .any(|r| r.name == late && matches!(r.reason, RejectReason::Fenced { .. }))
    );
}

fn b_epoch_of(seen: &snapshotd_checkpoint::Resume) -> u64 {
    seen.merged
        .iter()
        .filter_map(|n| layout::parse_data(n).map(|(e, _)| e))
        .max()
        .expect("a merged file")
}

/// Concurrent refreshes of one holder (background tick + a flush after a pause) never
/// make it think it was deposed.
pub async fn concurrent_refresh(dest: Destination) {
    let c = clock();
    let a = Checkpoint::open(&dest, opts(c, None)).await.expect("a");
    let results = futures::future::join_all((0..5).map(|_| a.lock().refresh_now())).await;
    for r in results {
        r.expect("refresh");
    }
    a.record(rec("after")).await.expect("rec");
    a.finish().await.expect("finish");
}

/// An encrypted backup stored in the destination decrypts into a plain local directory.
pub async fn decrypt_from_destination(dest: Destination) {
    use snapshotd_checkpoint::{decrypt_destination, encrypt_bytes, encrypted_name};
    let key = MasterKey::generate();
    let archive: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
    let name = "20260101T000000Z.s7.tar.gz";
    let sealed = encrypt_bytes(&key, name, &archive).expect("encrypt");
    put(&dest, &encrypted_name(name), sealed).await;
    put(&dest, "20260101T000000Z.manifest", b"{}".to_vec()).await;
    let cp = Checkpoint::open(&dest, opts(clock(), Some(key.clone())))
        .await
        .expect("cp");
    cp.finish().await.expect("finish");
    let out = tempfile::tempdir().expect("tempdir");
    let plain = out.path().join("plain");
    let s = decrypt_destination(&key, &dest, &plain)
        .await
        .expect("decrypt");
    assert_eq!((s.decrypted, s.copied), (1, 1));
    assert_eq!(std::fs::read(plain.join(name)).expect("read"), archive);
    assert!(!plain.join("checkpoints").exists());
    let wrong = decrypt_destination(&MasterKey::generate(), &dest, &out.path().join("w")).await;
    assert!(wrong.is_err());
    assert!(!out.path().join("w").join(name).exists());
}
