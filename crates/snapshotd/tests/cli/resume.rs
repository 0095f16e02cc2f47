//! Resumable, locked backups as a user runs them, against `snapshotd serve` with a few MB:
//! kill -9 at seeded random moments and re-run, two backups at once, an expired lock taken
//! over from a paused (SIGSTOP) holder that is then fenced, tampered files.

use std::path::Path;
use std::time::Duration;

use crate::support::backup_env::{self as env, Lcg, file_names, flip};
use crate::support::serve::{serve, serve_loaded};
use crate::support::takeover::{self, LocalDir};

/// Kill cycles in CI; `SNAPSHOTD_KILL_CYCLES` raises it for a longer soak.
fn cycles() -> u64 {
    std::env::var("SNAPSHOTD_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// The checkpoint's trusted shard records: (count, sum of their tar sizes).
fn recorded(dest: &Path) -> (u64, u64) {
    let r = env::checkpoint_records(dest, None);
    let mut n = 0;
    let mut bytes = 0;
    for rec in r.records.values() {
        if rec.payload.get("shard_id").is_some_and(|v| v.is_u64()) {
            n += 1;
            bytes += rec.payload["manifest_size"].as_u64().unwrap();
        }
    }
    (n, bytes)
}

/// Each shard's tar entries as (path, size, bytes): the content a restore installs. Header
/// mtimes are left out: the server's idle compaction (after 30 s without writes) turns a
/// shard's log tail, encoded into the tar at backup time, into a file of the same bytes
/// with its own mtime, so runs on either side of it differ only there.
fn entries(shards: &std::collections::BTreeMap<u64, env::Shard>) -> Vec<(u64, String, Vec<u8>)> {
    use std::io::Read;
    let mut out = Vec::new();
    for (id, (_, _, _, tar)) in shards {
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((*id, path, data));
        }
    }
    out
}

#[test]
fn kill_nine_at_random_moments_then_rerun_resumes() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));

    // The reference: one uninterrupted run.
    let reference = work.path().join("ref");
    env::backup_ok(&srv.addr, &["--json"], &reference);
    let (meta_size, want) = env::content(&reference);
    let total: u64 = want.values().map(|s| s.2).sum();
    let largest = want.values().map(|s| s.2).max().unwrap();
    assert!(want.len() >= 5, "want several shards, got {}", want.len());
    // ~1.2 s per throttled run; kills at 50..1050 ms land mostly mid-transfer.
    let rate = (total - total / 6).to_string();

    let mut rng = Lcg(0x5eed_0008);
    let mut last = None;
    for cycle in 0..cycles() {
        let dest = work.path().join(format!("bk{cycle}"));
        let d = dest.to_str().unwrap().to_string();
        let mut child = env::spawn(&[
            "backup",
            "--host",
            &srv.addr,
            "--rate-limit",
            &rate,
            "--jobs",
            "2",
            "--json",
            &d,
        ]);
        std::thread::sleep(Duration::from_millis(50 + rng.next() % 1000));
        child.kill().unwrap(); // SIGKILL
        let killed = child.wait_with_output().unwrap();

        let (done_before, done_bytes) = if dest.join("checkpoints").exists() {
            recorded(&dest)
        } else {
            (0, 0)
        };
        let remaining = total - done_bytes;

        let v = env::ok_json(&env::run(&["backup", "--host", &srv.addr, "--json", &d]));
        let moved = v["bytes_transferred"].as_u64().unwrap();
        let resumed = v["resumed"] == true;
        eprintln!(
            "cycle {cycle}: killed run exit {:?}; {done_before} shard(s) recorded, \
             {remaining} of {total} tar bytes remained; re-run moved {moved}, skipped {}{}",
            killed.status.code(),
            v["shards_skipped"],
            if resumed {
                " (resumed)"
            } else {
                " (new point)"
            }
        );
        if resumed {
            assert!(
                moved <= remaining + meta_size + largest,
                "cycle {cycle}: moved {moved} > remaining {remaining} + meta + one shard"
            );
            assert_eq!(v["shards_skipped"].as_u64().unwrap(), done_before);
        } else {
            // The killed run had finished (or not started): this run is a new point.
            assert_eq!(v["shards_skipped"], 0, "{v}");
        }
        ok_verify(&dest);
        let manifest = v["manifest"].as_str().unwrap();
        let (got_meta, got) = env::content_of(&dest, manifest);
        assert_eq!(got_meta, meta_size, "cycle {cycle}");
        assert_eq!(entries(&got), entries(&want), "cycle {cycle}");
        last = Some(dest);
    }

    // The last result restores into a fresh server with the same data.
    let last = last.unwrap();
    let fresh = serve(&work.path().join("data2"));
    env::ok(&env::run(&[
        "restore",
        "--host",
        &fresh.addr,
        "--ack",
        "--json",
        last.to_str().unwrap(),
    ]));
    let again = work.path().join("again");
    env::backup_ok(&fresh.addr, &[], &again);
    assert_eq!(env::tsm_files(&again), env::tsm_files(&reference));
}

fn ok_verify(dest: &Path) {
    let out = env::run(&["verify", dest.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "verify {}: {}{}",
        dest.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_run_makes_a_new_point_and_only_an_interrupted_one_is_resumed() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let dest = work.path().join("bk");
    let d = dest.to_str().unwrap();
    let first = env::ok_json(&env::run(&["backup", "--host", &srv.addr, "--json", d]));
    let second = env::ok_json(&env::run(&["backup", "--host", &srv.addr, "--json", d]));
    assert_eq!(second["resumed"], false, "{second}");
    assert_ne!(first["id"], second["id"]);
    assert!(second["bytes_transferred"].as_u64().unwrap() > 0);
    // Other settings after a completed run: simply another point.
    let third = env::ok_json(&env::run(&[
        "backup", "--host", &srv.addr, "--db", "db", "--json", d,
    ]));
    assert_eq!(third["resumed"], false, "{third}");

    // A run that failed before writing anything (a database typo) does not block others.
    let out = env::run(&["backup", "--host", &srv.addr, "--db", "bd", d]);
    assert!(!out.status.success());
    env::ok(&env::run(&["backup", "--host", &srv.addr, "--db", "db", d]));

    // Other settings after an interrupted run: a clear choice, then --restart.
    let child = env::spawn(&["backup", "--host", &srv.addr, "--rate-limit", "2M", d]);
    env::kill_once(child, || recorded(&dest).0 >= 1);
    let out = env::run(&["backup", "--host", &srv.addr, "--db", "db", d]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("different settings") && err.contains("db:") && err.contains("--restart"),
        "{err}"
    );
    assert_eq!(
        err.matches("different settings").count(),
        1,
        "cause printed once: {err}"
    );
    let v = env::ok_json(&env::run(&[
        "backup",
        "--host",
        &srv.addr,
        "--db",
        "db",
        "--restart",
        "--json",
        d,
    ]));
    assert_eq!(v["resumed"], false, "{v}");
    let points = env::ok_json(&env::run(&["snapshots", "--json", d]));
    let states: Vec<bool> = points["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["complete"].as_bool().unwrap())
        .collect();
    assert_eq!(states, [true, true, true, true, false, true], "{points}");
}

#[test]
fn cron_six_runs_with_the_third_killed_make_five_complete_points() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let dest = work.path().join("nightly");
    let d = dest.to_str().unwrap();
    let mut ids = Vec::new();
    for run in 1..=6 {
        if run == 3 {
            let child = env::spawn(&["backup", "--host", &srv.addr, "--rate-limit", "2M", d]);
            env::kill_once(child, || recorded(&dest).0 >= 2);
            let listed = env::ok_json(&env::run(&["snapshots", "--json", d]));
            let partial = &listed["points"].as_array().unwrap()[2];
            assert_eq!(
                partial["complete"], false,
                "a killed run is partial: {listed}"
            );
            continue;
        }
        let v = env::ok_json(&env::run(&["backup", "--host", &srv.addr, "--json", d]));
        assert_eq!(v["resumed"], run == 4, "run {run}: {v}");
        if run == 4 {
            assert!(v["shards_skipped"].as_u64().unwrap() >= 2, "{v}");
        }
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let listed = env::ok_json(&env::run(&["snapshots", "--json", d]));
    let points = listed["points"].as_array().unwrap();
    let got: Vec<&str> = points.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids, "{listed}");
    for p in points {
        assert_eq!(p["complete"], true, "{p}");
        assert_eq!(
            p["shards"].as_u64(),
            Some(env::content(&dest).1.len() as u64),
            "{p}"
        );
    }
    ok_verify(&dest);
}

#[test]
fn two_backups_at_once_exactly_one_runs() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let dest = work.path().join("bk");
    let d = dest.to_str().unwrap();
    let args = ["backup", "--host", &srv.addr, "--rate-limit", "4M", d];
    let a = env::spawn(&args);
    let b = env::spawn(&args);
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    let (winner, loser) = match (a.status.success(), b.status.success()) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => panic!(
            "exactly one must succeed: {:?} {} / {:?} {}",
            a.status,
            String::from_utf8_lossy(&a.stderr),
            b.status,
            String::from_utf8_lossy(&b.stderr)
        ),
    };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("is locked by") && err.contains("pid"), "{err}");
    assert!(winner.status.success());
    ok_verify(&dest);
}

#[test]
fn paused_holder_is_taken_over_after_expiry_and_fenced() {
    let work = snapshotd_testutil::temp_dir();
    let dest = LocalDir(work.path().join("bk"));
    takeover::paused_holder_is_taken_over_after_expiry_and_fenced(work.path(), &dest);
}

#[test]
fn tampered_checkpoint_and_archive_are_not_trusted() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let reference = work.path().join("ref");
    env::backup_ok(&srv.addr, &[], &reference);
    let (_, want) = env::content(&reference);

    let dest = work.path().join("bk");
    let d = dest.to_str().unwrap();
    let child = env::spawn(&["backup", "--host", &srv.addr, "--rate-limit", "2M", d]);
    // Wait for at least three recorded shards, then kill.
    env::kill_once(child, || {
        dest.join("checkpoints").exists() && recorded(&dest).0 >= 3
    });
    let (n, _) = recorded(&dest);

    // Flip a bit in one record file and in one recorded archive (same size).
    let data_dir = dest.join("checkpoints/data");
    let mut cpts: Vec<_> = std::fs::read_dir(&data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cpts.sort();
    let victim = cpts.last().unwrap();
    flip(victim, 0x10);
    let archives: Vec<_> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    flip(&archives[0], 0x10);
    let (n_after, _) = recorded(&dest);
    assert!(
        n_after < n,
        "a damaged record file must not count ({n_after} of {n})"
    );

    let v = env::ok_json(&env::run(&["backup", "--host", &srv.addr, "--json", d]));
    assert!(v["shards_skipped"].as_u64().unwrap() < n, "{v}");
    ok_verify(&dest);
    assert_eq!(env::content(&dest).1, want);
}

#[test]
fn restore_rerun_after_a_partial_restore_uploads_only_what_is_missing() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let bk = work.path().join("bk");
    let b = bk.to_str().unwrap();
    env::backup_ok(&srv.addr, &[], &bk);
    let (_, shards) = env::content(&bk);
    let total: u64 = shards.values().map(|s| s.2).sum();

    let target = serve(&work.path().join("target"));
    let state = work.path().join("state");
    let args = [
        "restore",
        "--host",
        &target.addr,
        "--state-dir",
        state.to_str().unwrap(),
        "--ack",
        "--jobs",
        "1",
        "--json",
    ];
    let mut throttled = args.to_vec();
    throttled.extend(["--rate-limit", "2M", b]);
    let child = env::spawn(&throttled);
    // Kill once the import's intent, the import and a few shards are recorded.
    let cp = state.join("restore");
    env::kill_once(child, || {
        let n = std::fs::read_dir(&cp)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_dir(e.ok()?.path().join("checkpoints/data")).ok())
            .map_or(0, |d| d.count());
        n >= 4
    });

    let mut rerun = args.to_vec();
    rerun.push(b);
    let v = env::ok_json(&env::run(&rerun));
    eprintln!("restore re-run: {v}");
    let skipped = v["shards_skipped"].as_u64().unwrap();
    assert!(skipped >= 2, "{v}");
    assert!(v["bytes_transferred"].as_u64().unwrap() < total, "{v}");
    assert_eq!(
        v["id_map"].as_array().unwrap().len(),
        shards.len(),
        "every shard is in the id map: {v}"
    );
    // The finished restore removed its checkpoint; the target has the same data.
    assert_eq!(
        cp.read_dir().unwrap().count(),
        0,
        "restore checkpoint left behind"
    );
    assert!(
        !bk.join("restore").exists(),
        "nothing is written into the backup"
    );
    let again = work.path().join("again");
    env::backup_ok(&target.addr, &[], &again);
    assert_eq!(env::tsm_files(&again), env::tsm_files(&bk));
    // The backup itself is untouched.
    ok_verify(&bk);
}

#[test]
fn no_resume_writes_no_checkpoint_and_reruns_start_new_backups() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let dest = work.path().join("bk");
    env::backup_ok(&srv.addr, &["--no-resume"], &dest);
    env::backup_ok(&srv.addr, &["--no-resume"], &dest);
    assert!(!dest.join("checkpoints").exists());
    let manifests = file_names(&dest)
        .iter()
        .filter(|n| n.ends_with(".manifest"))
        .count();
    assert_eq!(manifests, 2);
    ok_verify(&dest);
}

#[test]
fn ctrl_c_says_how_to_resume_and_the_same_command_does() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let dest = work.path().join("bk");
    let d = dest.to_str().unwrap();
    let args = [
        "backup",
        "--host",
        &srv.addr,
        "--rate-limit",
        "2M",
        "--json",
        d,
    ];
    let child = env::spawn(&args);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while recorded(&dest).0 < 2 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    env::signal(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("re-run the same command to resume"), "{err}");
    let v = env::json(&out);
    assert_eq!(v["status"], "error", "{v}");
    let v = env::ok_json(&env::run(&["backup", "--host", &srv.addr, "--json", d]));
    assert_eq!(v["resumed"], true, "{v}");
    assert!(v["shards_skipped"].as_u64().unwrap() >= 2, "{v}");
}
