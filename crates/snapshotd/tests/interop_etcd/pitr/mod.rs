//! `snapshotd etcd backup|archive|status|restore|verify` against real etcd 3.4.23 on loopback:
//! archivers beside live members, restores to seeded raft indexes started with
//! `etcd --force-new-cluster` and compared with the live cluster's keyspace at the same
//! revision. Run by `cargo xtask interop etcd`.

mod base;
pub(crate) mod cluster;
mod expect;
mod purge;
mod tls;

use std::time::Duration;

use cluster::{raft_index, s, signal, snapshotd, start_archiver, start_cluster, wait_archived};
use expect::{check_restore, write_ops, writes_by_index};

/// Seeded targets in `lo..=hi` (xorshift; the seed is printed for reproduction).
fn targets(seed: u64, lo: u64, hi: u64, n: usize) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            lo + x % (hi - lo + 1)
        })
        .collect()
}

fn seed() -> u64 {
    let seed = std::env::var("SNAPSHOTD_ETCD_PITR_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::process::id() as u64 * 2654435761);
    eprintln!("SNAPSHOTD_ETCD_PITR_SEED={seed}");
    seed
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn single_member_archive_then_restore_to_seeded_indexes() {
    let tmp = snapshotd_testutil::temp_dir();
    let dest = tmp.path().join("archive");
    let members = start_cluster(tmp.path(), 1, &["--snapshot-count", "40"]);
    let m = &members[0];
    // Archivers SIGKILLed at seeded points while keys are written; each re-run continues
    // from the last archived index (the dead holder's lease is released at once).
    let seed = seed();
    let delays = targets(seed, 50, 1500, 4);
    for (cycle, delay) in delays.iter().enumerate() {
        let log = tmp.path().join(format!("archiver-{cycle}.log"));
        let mut a = start_archiver(&m.data, s(&dest), "5s", &log);
        write_ops(&m.client, cycle * 35, 35);
        std::thread::sleep(Duration::from_millis(*delay));
        signal(a.0.id(), "-KILL");
        a.0.wait().unwrap();
    }
    let _archiver = start_archiver(&m.data, s(&dest), "5s", &tmp.path().join("archiver.log"));
    write_ops(&m.client, 140, 20);
    let head = raft_index(&m.client);
    let st = wait_archived(&dest, head, Duration::from_secs(30));
    // Status loads only an archive with every entry once, in order; no gaps.
    assert_eq!(st["gaps"], serde_json::json!([]), "{st}");
    assert_eq!(st["restorable"]["from"], 1);
    assert_eq!(st["restorable"]["to"], st["archived_through_index"]);
    assert!(
        st["chunks"].as_u64().unwrap() >= 4,
        "archived across passes: {st}"
    );
    assert!(
        !st["snaps"].as_array().unwrap().is_empty(),
        ".snap files archived: {st}"
    );

    let writes = writes_by_index(&m.data.join("member").join("wal"));
    let first_write = writes.iter().find(|w| w.1).unwrap().0;
    for n in targets(seed, first_write, head, 4) {
        check_restore(s(&dest), tmp.path(), &m.client, &m.name, &writes, Some(n));
    }
    check_restore(s(&dest), tmp.path(), &m.client, &m.name, &writes, None);
    check_restore(
        s(&dest),
        tmp.path(),
        &m.client,
        &m.name,
        &writes,
        Some(first_write - 1),
    );

    // Past the head: refused, nothing written.
    let beyond = tmp.path().join("beyond");
    let o = snapshotd(&[
        "etcd",
        "restore",
        s(&dest),
        "--data-dir",
        s(&beyond),
        "--to-index",
        &(head + 500).to_string(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot restore to index") && err.contains("ends at index"),
        "{err}"
    );
    assert!(!beyond.exists(), "a refused restore created its target");
    let o = snapshotd(&[
        "etcd",
        "restore",
        s(&dest),
        "--data-dir",
        s(&beyond),
        "--to-index",
        "0",
    ]);
    assert!(
        !o.status.success(),
        "index 0 is before the oldest restorable point"
    );
    // Verify reads every chunk; a flipped byte in one is found and named, and restore
    // refuses to use it.
    let v = snapshotd(&["etcd", "verify", s(&dest)]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let mut chunks: Vec<_> = std::fs::read_dir(dest.join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    chunks.sort();
    let victim = chunks.last().unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    let at = bytes.len() - 30;
    bytes[at] ^= 0x10;
    std::fs::write(victim, bytes).unwrap();
    let v = snapshotd(&["etcd", "verify", s(&dest)]);
    assert!(!v.status.success());
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(
        String::from_utf8_lossy(&v.stderr).contains(name),
        "verify names {name}"
    );
    let o = snapshotd(&["etcd", "restore", s(&dest), "--data-dir", s(&beyond)]);
    assert!(!o.status.success(), "restore used a damaged chunk");
    assert!(String::from_utf8_lossy(&o.stderr).contains(name));
}

/// The index every member's WAL shows committed after sequential writes: etcd writes a
/// commit-only hard state without syncing, so in a multi-member cluster the newest entry's
/// commit reaches the WAL file with the next write.
fn committed_in_wal(client: &str) -> u64 {
    raft_index(client) - 1
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn three_members_one_archiver_each_takeover_and_fencing() {
    let tmp = snapshotd_testutil::temp_dir();
    let dest = tmp.path().join("archive");
    let members = start_cluster(tmp.path(), 3, &["--snapshot-count", "50"]);
    let mut archivers: Vec<_> = members
        .iter()
        .map(|m| {
            start_archiver(
                &m.data,
                s(&dest),
                "2s",
                &tmp.path().join(format!("arch-{}.log", m.name)),
            )
        })
        .collect();
    let live = &members[0].client;
    write_ops(live, 0, 50);
    let st = wait_archived(&dest, committed_in_wal(live), Duration::from_secs(30));
    let first = st["holder"]["pid"].as_u64().unwrap() as u32;

    // SIGKILL the active archiver: another takes over after the lease, with no gap.
    let k = archivers
        .iter()
        .position(|a| a.0.id() == first)
        .expect("holder is ours");
    signal(first, "-KILL");
    write_ops(live, 50, 50);
    let st = wait_archived(&dest, committed_in_wal(live), Duration::from_secs(40));
    let second = st["holder"]["pid"].as_u64().unwrap() as u32;
    assert_ne!(second, first, "{st}");
    assert_eq!(st["gaps"], serde_json::json!([]), "{st}");

    // SIGSTOP the new holder past its lease: the last one takes over; the woken one is fenced.
    signal(second, "-STOP");
    write_ops(live, 100, 40);
    let st = wait_archived(&dest, committed_in_wal(live), Duration::from_secs(40));
    let third = st["holder"]["pid"].as_u64().unwrap() as u32;
    assert!(third != first && third != second, "{st}");
    signal(second, "-CONT");
    std::thread::sleep(Duration::from_secs(2));
    write_ops(live, 140, 20);
    let head = committed_in_wal(live);
    let st = wait_archived(&dest, head, Duration::from_secs(30));
    assert_eq!(
        st["holder"]["pid"].as_u64().unwrap() as u32,
        third,
        "the fenced one did not come back: {st}"
    );
    assert_eq!(st["gaps"], serde_json::json!([]), "{st}");
    assert_eq!(
        st["restorable"]["to"].as_u64().unwrap(),
        st["archived_through_index"].as_u64().unwrap()
    );
    let woken = std::fs::read_to_string(tmp.path().join(format!(
        "arch-{}.log",
        members[archivers.iter().position(|a| a.0.id() == second).unwrap()].name
    )))
    .unwrap();
    assert!(
        woken.contains("\"retrying\"") || woken.contains("\"standby\""),
        "woken holder stood down: {woken}"
    );
    archivers.remove(k);
    drop(archivers);

    let v = snapshotd(&["etcd", "verify", s(&dest)]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let writes = writes_by_index(&members[1].data.join("member").join("wal"));
    let first_write = writes.iter().find(|w| w.1).unwrap().0;
    for n in targets(seed(), first_write, head, 3) {
        check_restore(s(&dest), tmp.path(), live, "m1", &writes, Some(n));
    }
    check_restore(s(&dest), tmp.path(), live, "m2", &writes, None);
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn purge_pressure_locked_segments_survive_and_a_stopped_archiver_shows_a_gap() {
    let tmp = snapshotd_testutil::temp_dir();
    let dest = tmp.path().join("archive");
    let flags = [
        "--snapshot-count",
        "10",
        "--max-wals",
        "1",
        "--max-snapshots",
        "1",
    ];
    let members = start_cluster(tmp.path(), 1, &flags);
    let m = &members[0];
    let (wal, log) = (m.data.join("member").join("wal"), tmp.path().join("m0.log"));
    let archiver = start_archiver(&m.data, s(&dest), "3s", &tmp.path().join("archiver.log"));
    write_ops(&m.client, 0, 20);
    let archived = raft_index(&m.client);
    wait_archived(&dest, archived, Duration::from_secs(30));

    // DEST unreachable (a file where the directory was) while > 3 segments are cut.
    std::fs::rename(&dest, tmp.path().join("away")).unwrap();
    std::fs::write(&dest, b"unreachable").unwrap();
    purge::write_big(&m.client, "a", 260);
    let cut = purge::segment_indexes(&wal).len();
    assert!(cut >= 4, "segments cut: {cut}");
    // A purge cycle after the cut found the oldest segment locked (etcd released its own
    // lock on it at its snapshots since; the archiver's lock is what is left).
    let refused = purge::wal_lock_refusals(&log);
    purge::wait_wal_lock_refusal(&log, refused, 2 * purge::PURGE_INTERVAL);
    let kept = purge::segment_indexes(&wal);
    assert!(
        kept[0] <= archived + 1,
        "segment holding entry {} purged: {kept:?}",
        archived + 1
    );

    // DEST back: the archiver catches up with no gap.
    std::fs::remove_file(&dest).unwrap();
    std::fs::rename(tmp.path().join("away"), &dest).unwrap();
    let head = raft_index(&m.client);
    let st = wait_archived(&dest, head, Duration::from_secs(120));
    assert_eq!(st["gaps"], serde_json::json!([]), "{st}");
    // Archived segments are released: etcd's next purge removes the one it kept for us.
    purge::wait_segment_purged(&wal, &log, archived + 1, 3 * purge::PURGE_INTERVAL);

    // Archiver stopped for good: etcd purges unarchived entries; status and the next run
    // report the gap, and a restore into it is refused. The gap exists only once the
    // segment holding the first unarchived entry is gone: wait for exactly that (a purge
    // line alone may be a `.snap` file, logged by a cycle that ran before the segment was
    // released).
    drop(archiver);
    let through = cluster::status(&dest)["archived_through_index"]
        .as_u64()
        .unwrap();
    assert_eq!(through, head, "nothing was written after the catch-up");
    purge::write_big(&m.client, "b", 200);
    purge::wait_segment_purged(&wal, &log, through + 1, 4 * purge::PURGE_INTERVAL);
    write_ops(&m.client, 20, 5);
    let o = cluster::archive_once(&m.data, &dest, 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("GAP"));
    let st = cluster::status(&dest);
    let gap = &st["gaps"][0];
    assert_eq!(gap["from"].as_u64().unwrap(), head + 1, "{st}");
    let inside = gap["to"].as_u64().unwrap().to_string();
    let o = snapshotd(&[
        "etcd",
        "restore",
        s(&dest),
        "--data-dir",
        s(&tmp.path().join("r")),
        "--to-index",
        &inside,
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("gap"));
}
