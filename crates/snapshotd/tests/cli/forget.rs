//! `snapshotd forget` end to end on a local destination: the policy, dry run, what is
//! deleted (only the forgotten points' files), metrics, and a race with a running backup.

use std::path::Path;
use std::time::Duration;

use crate::support::backup_env::{self as env, file_names};
use crate::support::serve::serve_loaded;

fn ids(dest: &Path) -> Vec<String> {
    env::complete_point_ids(&env::run(&["snapshots", "--json", dest.to_str().unwrap()]))
}

#[test]
fn forget_keeps_what_the_policy_says_and_deletes_only_its_files() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let dest = work.path().join("bk");
    let d = dest.to_str().unwrap();
    let backup_prom = work.path().join("backup.prom");
    let bp = backup_prom.to_str().unwrap();
    for _ in 0..4 {
        env::backup_ok(&srv.addr, &["--metrics-file", bp], &dest);
    }
    let text = std::fs::read_to_string(&backup_prom).unwrap();
    for want in [
        "snapshotd_backup_success{dest=",
        "snapshotd_backup_last_success_timestamp_seconds{dest=",
        "snapshotd_backup_units{dest=",
        "# TYPE snapshotd_backup_bytes gauge",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(text.contains("} 1\n"), "success 1: {text}");
    // A failed run says so and keeps the last success time.
    let last_ok = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("snapshotd_backup_last_success_timestamp_seconds{"))
            .map(str::to_string)
    };
    let out = env::run(&[
        "backup",
        "--host",
        "127.0.0.1:1",
        "--attempts",
        "1",
        "--metrics-file",
        bp,
        d,
    ]);
    assert!(!out.status.success());
    let after = std::fs::read_to_string(&backup_prom).unwrap();
    assert!(
        after.contains("snapshotd_backup_success{dest=") && after.contains("} 0\n"),
        "{after}"
    );
    assert_eq!(last_ok(&after), last_ok(&text));
    let verify_prom = work.path().join("verify.prom");
    env::ok(&env::run(&[
        "verify",
        "--metrics-file",
        verify_prom.to_str().unwrap(),
        d,
    ]));
    let text = std::fs::read_to_string(&verify_prom).unwrap();
    assert!(text.contains("snapshotd_verify_success{dest="), "{text}");
    // A file that is not part of any point stays.
    std::fs::write(dest.join("README.txt"), "mine").unwrap();
    let all = ids(&dest);
    assert_eq!(all.len(), 4);

    let before = file_names(&dest);
    let v = env::ok_json(&env::run(&[
        "forget",
        "--keep-last",
        "2",
        "--dry-run",
        "--json",
        d,
    ]));
    assert_eq!(v["remove"], serde_json::json!([all[1], all[0]]), "{v}");
    assert_eq!(file_names(&dest), before, "a dry run deletes nothing");

    let prom = work.path().join("forget.prom");
    let v = env::ok_json(&env::run(&[
        "forget",
        "--keep-last",
        "2",
        "--json",
        "--metrics-file",
        prom.to_str().unwrap(),
        d,
    ]));
    assert_eq!(v["files"].as_u64().unwrap() % 2, 0, "{v}");
    assert_eq!(ids(&dest), all[2..].to_vec());
    assert!(
        file_names(&dest)
            .iter()
            .all(|f| !f.starts_with(&all[0]) && !f.starts_with(&all[1]))
    );
    assert!(dest.join("README.txt").exists());
    env::ok(&env::run(&["verify", d]));
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("snapshotd_forget_success{dest="), "{text}");
    assert!(
        text.contains("snapshotd_forget_units{") && text.contains("} 2\n"),
        "{text}"
    );

    let out = env::run(&["forget", d]);
    assert!(
        !out.status.success(),
        "no rule: refuse rather than delete everything"
    );
}

#[test]
fn forget_racing_a_backup_breaks_neither() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let dest = work.path().join("bk");
    let d = dest.to_str().unwrap();
    env::backup_ok(&srv.addr, &[], &dest);
    env::backup_ok(&srv.addr, &[], &dest);
    let backup = env::spawn(&[
        "backup",
        "--host",
        &srv.addr,
        "--rate-limit",
        "3M",
        "--json",
        d,
    ]);
    // Start forget while the backup holds the lock and is writing its point.
    let lock = dest.join("checkpoints/LOCK");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read(&lock)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["hint"] == "snapshotd backup" && v["released"] != true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let forget = env::run(&["forget", "--keep-last", "1", "--json", d]);
    let backup = backup.wait_with_output().unwrap();
    let b = env::ok_json(&backup);
    let f = env::ok_json(&forget);
    // forget waited for the backup: the new point is the one kept.
    assert_eq!(f["remove"].as_array().unwrap().len(), 2, "{f}");
    assert_eq!(ids(&dest), [b["id"].as_str().unwrap().to_string()]);
    env::ok(&env::run(&["verify", d]));
}

#[test]
fn forget_leaves_the_points_a_running_restore_reads() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let dest = work.path().join("bk");
    let d = dest.to_str().unwrap();
    env::backup_ok(&srv.addr, &[], &dest);
    env::backup_ok(&srv.addr, &[], &dest);
    let all = ids(&dest);
    let target = crate::support::serve::serve(&work.path().join("target"));
    let restore = env::spawn(&[
        "restore",
        "--host",
        &target.addr,
        "--ack",
        "--rate-limit",
        "2M",
        "--at",
        &all[0],
        "--json",
        d,
    ]);
    let marks = dest.join("checkpoints/readers");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&marks).map_or(0, |r| r.count()) == 0 {
        assert!(std::time::Instant::now() < deadline, "no reader mark");
        std::thread::sleep(Duration::from_millis(10));
    }
    let f = env::ok_json(&env::run(&["forget", "--keep-last", "1", "--json", d]));
    assert_eq!(f["in_use"], serde_json::json!([all[0]]), "{f}");
    assert_eq!(f["remove"], serde_json::json!([]), "{f}");
    let r = env::ok_json(&restore.wait_with_output().unwrap());
    assert_eq!(r["id"], all[0].as_str(), "{r}");
    assert_eq!(
        std::fs::read_dir(&marks).map_or(0, |r| r.count()),
        0,
        "mark removed"
    );
    // Once the restore is done, the point goes.
    let f = env::ok_json(&env::run(&["forget", "--keep-last", "1", "--json", d]));
    assert_eq!(f["remove"], serde_json::json!([all[0]]), "{f}");
    assert_eq!(ids(&dest), all[1..].to_vec());
}
