//! `snapshotd backup | restore | verify` against real influxd 1.6.7 and its own
//! `influxd backup/restore -portable` (run via `cargo xtask interop influx`).

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../client/tests/support/influxd.rs"]
mod influxd;
mod interop_compress;
mod merge;
mod restack;
#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use influxd::{Influxd, LOADED, influxd_bin, load_metrics};
use support::backup_env::file_names;

fn snapshotd(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_snapshotd"))
        .env(
            "SNAPSHOTD_STATE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/snapshotd-state"),
        )
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "snapshotd {}: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `snapshotd backup --host HOST FLAGS... DEST`.
fn backup(host: &str, flags: &[&str], dest: &Path) -> Output {
    let mut args = vec!["backup", "--host", host];
    args.extend(flags);
    args.push(dest.to_str().unwrap());
    snapshotd(&args)
}

/// `snapshotd restore --host HOST FLAGS... SRC`.
fn restore(host: &str, flags: &[&str], src: &Path) -> Output {
    let mut args = vec!["restore", "--host", host];
    args.extend(flags);
    args.push(src.to_str().unwrap());
    snapshotd(&args)
}

fn influx_cli(args: &[&str]) -> Output {
    let out = Command::new(influxd_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "influxd {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `influxd restore -portable` of the backup in `src` into `target`.
fn influxd_restore(target: &Influxd, src: &Path) {
    influx_cli(&[
        "restore",
        "-portable",
        "-host",
        &target.bind,
        src.to_str().unwrap(),
    ]);
}

/// The fingerprint of everything `load_metrics` wrote into `s`, asserted to hold data.
fn loaded_fingerprint(s: &Influxd) -> Vec<(String, serde_json::Value)> {
    let f = s.fingerprint(LOADED);
    assert!(f.iter().all(|(_, v)| v["results"][0]["series"].is_array()));
    f
}

/// The fingerprint of one database/RP.
fn rp_fingerprint(s: &Influxd, db: &str, rp: &str) -> serde_json::Value {
    s.fingerprint(&[(db, rp)])[0].1.clone()
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

fn count(s: &Influxd, q: &str) -> i64 {
    let v = s.query(q);
    v["results"][0]["series"][0]["values"][0][1]
        .as_i64()
        .unwrap_or(0)
}

fn has_manifest(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".manifest")
    })
}

#[test]
#[ignore = "interop: run via cargo xtask interop influx"]
fn snapshotd_backup_restores_with_influxd_restore() {
    let a = Influxd::start();
    load_metrics(&a, 6, 16);
    let dest = snapshotd_testutil::temp_dir();
    let d = dest.path().join("bk");
    let out = backup(&a.bind, &["--jobs", "4", "--json"], &d);
    assert!(out.status.success());
    let summary = json_of(&out);
    assert_eq!(summary["status"], "ok");
    assert_eq!(summary["shards_done"], summary["shards_total"]);
    assert!(summary["shards_total"].as_u64().unwrap() >= 5);
    assert_eq!(summary["shards_skipped"], 0);
    assert!(summary["bytes_transferred"].as_u64().unwrap() > 0);
    assert!(has_manifest(&d));
    assert!(snapshotd(&["verify", d.to_str().unwrap()]).status.success());

    let b = Influxd::start();
    influxd_restore(&b, &d);
    let fa = loaded_fingerprint(&a);
    assert_eq!(fa, b.fingerprint(LOADED));
}

#[test]
#[ignore = "interop: run via cargo xtask interop influx"]
fn encrypted_backup_decrypts_into_what_influxd_restore_accepts() {
    let a = Influxd::start();
    load_metrics(&a, 4, 10);
    let work = snapshotd_testutil::temp_dir();
    let key = work.path().join("key");
    std::fs::write(&key, [0x42u8; 32]).unwrap();
    let k = key.to_str().unwrap();
    let enc = work.path().join("enc");
    assert!(
        backup(&a.bind, &["--encrypt-key-file", k], &enc)
            .status
            .success()
    );
    // Nothing but the manifest is readable without the key.
    for n in file_names(&enc) {
        assert!(n.ends_with(".enc") || n.ends_with(".manifest"), "{n}");
    }
    let plain = work.path().join("plain");
    let out = snapshotd(&[
        "decrypt",
        "--encrypt-key-file",
        k,
        enc.to_str().unwrap(),
        plain.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        snapshotd(&["verify", plain.to_str().unwrap()])
            .status
            .success()
    );

    let b = Influxd::start();
    influxd_restore(&b, &plain);
    let fa = loaded_fingerprint(&a);
    assert_eq!(fa, b.fingerprint(LOADED));

    // And snapshotd restores the encrypted backup directly, given the key.
    let c = Influxd::start();
    assert!(
        restore(&c.bind, &["--encrypt-key-file", k], &enc)
            .status
            .success()
    );
    assert_eq!(fa, c.fingerprint(LOADED));
}

#[test]
#[ignore = "interop: run via cargo xtask interop influx"]
fn influxd_backup_restores_with_snapshotd_restore() {
    let a = Influxd::start();
    load_metrics(&a, 4, 10);
    let dest = snapshotd_testutil::temp_dir();
    let d = dest.path().join("ib");
    influx_cli(&["backup", "-portable", "-host", &a.bind, d.to_str().unwrap()]);
    // verify reads influx's backups too (sizes and structure only).
    let v = snapshotd(&["verify", d.to_str().unwrap()]);
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).contains("written by influxd"));

    let c = Influxd::start();
    let out = restore(&c.bind, &["--json"], &d);
    assert!(out.status.success());
    assert_eq!(json_of(&out)["status"], "ok");
    assert_eq!(a.fingerprint(LOADED), c.fingerprint(LOADED));

    // A second restore of the same databases is refused with a clear message.
    let again = restore(&c.bind, &[], &d);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
#[ignore = "interop: run via cargo xtask interop influx"]
fn snapshotd_round_trip_with_renames_shard_and_window() {
    let a = Influxd::start();
    load_metrics(&a, 4, 10);
    let work = snapshotd_testutil::temp_dir();
    let full = work.path().join("full");
    assert!(backup(&a.bind, &[], &full).status.success());
    let t = Influxd::start();

    // --db/--newdb: db1 under a new name.
    let ok = restore(&t.bind, &["--db", "db1", "--newdb", "db1copy"], &full);
    assert!(ok.status.success());
    assert_eq!(
        rp_fingerprint(&a, "db1", "autogen"),
        rp_fingerprint(&t, "db1copy", "autogen")
    );

    // --rp/--newrp: one RP of db2 into a new database and RP.
    let ok = restore(
        &t.bind,
        &[
            "--db", "db2", "--newdb", "db2x", "--rp", "rp2", "--newrp", "rp2x",
        ],
        &full,
    );
    assert!(ok.status.success());
    assert_eq!(
        rp_fingerprint(&a, "db2", "rp2"),
        rp_fingerprint(&t, "db2x", "rp2x")
    );

    // --newdb without --db is refused before anything is sent.
    let bad = restore(&t.bind, &["--newdb", "x"], &full);
    assert!(!bad.status.success());

    // --shard: one shard of db2/rp2 (one day of `disk`).
    let shards = a.query("SHOW SHARDS");
    let rows = shards["results"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "db2")
        .unwrap()["values"]
        .as_array()
        .unwrap()
        .clone();
    let row = rows.iter().find(|r| r[2] == "rp2").unwrap();
    let (id, start, end) = (
        row[0].as_u64().unwrap().to_string(),
        row[4].as_str().unwrap().to_string(),
        row[5].as_str().unwrap().to_string(),
    );
    let one = work.path().join("one");
    assert!(
        backup(
            &a.bind,
            &["--db", "db2", "--rp", "rp2", "--shard", &id],
            &one
        )
        .status
        .success()
    );
    assert!(
        restore(&t.bind, &["--db", "db2", "--newdb", "db2one"], &one)
            .status
            .success()
    );
    let want = count(
        &a,
        &format!("SELECT count(free) FROM db2.rp2.disk WHERE time >= '{start}' AND time < '{end}'"),
    );
    assert!(want > 0);
    assert_eq!(count(&t, "SELECT count(free) FROM db2one.rp2.disk"), want);

    // --start/--end: an export window of db1 (block-granular, so compare inside it).
    let win = work.path().join("win");
    let (ws, we) = ("2021-01-03T00:00:00Z", "2021-01-05T12:00:00Z");
    assert!(
        backup(&a.bind, &["--db", "db1", "--start", ws, "--end", we], &win)
            .status
            .success()
    );
    assert!(
        restore(&t.bind, &["--db", "db1", "--newdb", "db1win"], &win)
            .status
            .success()
    );
    let q = |db: &str| {
        format!(
            "SELECT count(usage_user) FROM {db}.autogen.cpu WHERE time >= '{ws}' AND time <= '{we}'"
        )
    };
    let want = count(&a, &q("db1"));
    assert!(want > 0);
    assert_eq!(count(&t, &q("db1win")), want);
}

#[test]
#[ignore = "interop: run via cargo xtask interop influx"]
fn killed_backup_leaves_no_manifest_and_fails_verify() {
    let a = Influxd::start();
    load_metrics(&a, 6, 16);
    let work = snapshotd_testutil::temp_dir();
    let d = work.path().join("killed");
    // A low rate limit keeps the backup running long enough to be killed half-way.
    let mut child = snapshotd_testutil::ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_snapshotd"))
            .args([
                "backup",
                "--host",
                &a.bind,
                "--jobs",
                "2",
                "--rate-limit",
                "20k",
            ])
            .arg(&d)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let meta_written = d.is_dir()
            && std::fs::read_dir(&d)
                .unwrap()
                .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".meta"));
        if meta_written {
            break;
        }
        assert!(Instant::now() < deadline, "backup never started");
        assert!(child.0.try_wait().unwrap().is_none(), "backup ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "backup finished before it could be killed"
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(!has_manifest(&d));
    let v = snapshotd(&["verify", d.to_str().unwrap()]);
    assert!(!v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).contains("no *.manifest"));
}

/// `SELECT count(v) FROM m` in `db` on `srv` (0 when the database holds no such points).
fn points_in(srv: &Influxd, db: &str, m: &str) -> u64 {
    let v = srv.query(&format!(
        "SELECT count(v) FROM \"{db}\".\"autogen\".\"{m}\""
    ));
    v["results"][0]["series"][0]["values"][0][1]
        .as_u64()
        .unwrap_or(0)
}

#[test]
#[ignore = "interop: run via cargo xtask interop influx"]
fn restore_at_an_older_point_restores_that_points_data_into_influxd() {
    let a = Influxd::start();
    let q = a.query("CREATE DATABASE pts");
    assert!(q["results"][0]["error"].is_null(), "{q}");
    let lines = |from: u64, n: u64| -> String {
        (from..from + n)
            .map(|i| {
                format!(
                    "m,host=h{} v={i}i {}\n",
                    i % 3,
                    1_700_000_000_000_000_000u64 + i * 1_000_000_000
                )
            })
            .collect()
    };
    a.write("pts", None, &lines(0, 1000));
    let work = snapshotd_testutil::temp_dir();
    let d = work.path().join("nightly");
    let first = json_of(&backup(&a.bind, &["--json"], &d));
    a.write("pts", None, &lines(1000, 500));
    let second = json_of(&backup(&a.bind, &["--json"], &d));
    assert_eq!(points_in(&a, "pts", "m"), 1500);
    assert_ne!(first["id"], second["id"]);

    // The older point into a fresh influxd: exactly its 1000 points.
    let c = Influxd::start();
    let id = first["id"].as_str().unwrap();
    let out = restore(&c.bind, &["--db", "pts", "--at", id, "--json"], &d);
    assert!(out.status.success());
    assert_eq!(json_of(&out)["id"], id);
    assert_eq!(points_in(&c, "pts", "m"), 1000);
    // The newest (default) into another: all 1500.
    let e = Influxd::start();
    let out = restore(&e.bind, &["--db", "pts"], &d);
    assert!(out.status.success());
    assert_eq!(points_in(&e, "pts", "m"), 1500);
}
