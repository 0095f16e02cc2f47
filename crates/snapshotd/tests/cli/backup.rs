//! `snapshotd backup | restore | verify` as a user runs them, against a fake snapshotter
//! serving the influx 1.6.7 captures (no influxd needed).

use std::process::Output;
use std::sync::Arc;

use crate::fake::{A1, Fake, Received, Reply, capture, capture_dir};
use crate::support::serve::serve_no_http;

fn snapshotd(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_snapshotd"))
        .env(
            "SNAPSHOTD_STATE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/snapshotd-state"),
        )
        .args(args)
        .output()
        .unwrap()
}

async fn snapshotd_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        snapshotd(&a)
    })
    .await
    .unwrap()
}

fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_json_summary_then_verify_then_restore() {
    let a1 = Arc::new(A1::load());
    let src = Fake::start(Arc::clone(&a1).responder(|_, _, _| None)).await;
    let dir = snapshotd_testutil::temp_dir();
    let dest = dir.path().join("bk");
    let out = snapshotd_async(vec![
        "backup".into(),
        "--host".into(),
        src.addr.clone(),
        "--jobs".into(),
        "3".into(),
        "--json".into(),
        dest.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = stdout_json(&out);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "status",
        "dest",
        "shards_total",
        "shards_done",
        "shards_skipped",
        "bytes_transferred",
        "bytes_written",
        "elapsed_s",
    ] {
        assert!(keys.contains(&k), "missing {k} in {v}");
    }
    assert_eq!(v["status"], "ok");
    assert_eq!(v["shards_total"], 6);
    assert_eq!(v["shards_done"], 6);
    assert_eq!(v["shards_skipped"], 0);
    let tars: u64 = a1.shards.values().map(|t| t.len() as u64).sum();
    assert_eq!(v["bytes_transferred"], tars + 528);
    // Backup files only: `checkpoints/` is the resume bookkeeping, not counted.
    let on_disk: u64 = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    assert_eq!(v["bytes_written"], on_disk);

    let out = snapshotd(&["verify", dest.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK: 7 file(s)"));

    let b1 = capture_dir("B1_restore_portable_full");
    let map = capture(&b1, "01-", ".s2c.bin");
    let target = Fake::start(Arc::new(move |r: &Received, _| match r.kind {
        6 => Reply::Bytes(map.clone()),
        _ => Reply::Close,
    }))
    .await;
    let out = snapshotd_async(vec![
        "restore".into(),
        "--host".into(),
        target.addr.clone(),
        "--json".into(),
        dest.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = stdout_json(&out);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["checksums_verified"], true);
    assert_eq!(v["shards_done"], 6);
    assert_eq!(target.received().iter().filter(|r| r.kind == 7).count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_backup_reports_json_error_and_exit_code() {
    let a1 = Arc::new(A1::load());
    let src = Fake::start(a1.responder(|id, _, _| (id == 4).then_some(Reply::Close))).await;
    let dir = snapshotd_testutil::temp_dir();
    let dest = dir.path().join("bk");
    let out = snapshotd_async(vec![
        "backup".into(),
        "--host".into(),
        src.addr.clone(),
        "--attempts".into(),
        "1".into(),
        "--json".into(),
        dest.display().to_string(),
    ])
    .await;
    assert!(!out.status.success());
    let v = stdout_json(&out);
    assert_eq!(v["status"], "error");
    assert!(v["error"].as_str().unwrap().contains("shard 4"), "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no manifest was written"));
    assert!(!std::fs::read_dir(&dest).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".manifest")
    }));
    let out = snapshotd(&["verify", dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn verify_names_a_corrupted_file_in_an_influx_backup() {
    let src = snapshotd_testutil::vector("influx/backups/A1_full");
    let dir = snapshotd_testutil::temp_dir();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let out = snapshotd(&["verify", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    let victim = dir.path().join("20261122T022308Z.s3.tar.gz");
    let mut b = std::fs::read(&victim).unwrap();
    b.truncate(b.len() - 10);
    std::fs::write(&victim, b).unwrap();
    let out = snapshotd(&["verify", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v = stdout_json(&out);
    assert_eq!(v["status"], "error");
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert!(problems[0].as_str().unwrap().contains("s3.tar.gz"));
}

#[test]
fn unsafe_or_contradictory_flags_are_refused() {
    let out = snapshotd(&["restore", "--newdb", "x", "/nonexistent"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--db"));
    let out = snapshotd(&["backup", "--rp", "autogen", "/tmp/never-written"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--db"));
    let out = snapshotd(&[
        "backup",
        "--since",
        "2021-01-01T00:00:00Z",
        "--start",
        "2021-01-01T00:00:00Z",
        "x",
    ]);
    assert!(!out.status.success());
}

fn tar_entries(tar: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut out = std::collections::BTreeMap::new();
    for e in tar::Archive::new(tar).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(name, data);
    }
    out
}

#[test]
fn influx_backup_round_trips_through_snapshotd_serve() {
    let work = snapshotd_testutil::temp_dir();
    let (_srv, addr) = serve_no_http(&work.path().join("data"));
    let src = snapshotd_testutil::vector("influx/backups/A1_full");
    // The golden vector is shared and must stay untouched: no restore checkpoint in it.
    let out = snapshotd(&[
        "restore",
        "--host",
        &addr,
        "--ack",
        "--no-resume",
        "--json",
        src.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out)["shards_done"], 6);

    let dest = work.path().join("bk");
    let out = snapshotd(&["backup", "--host", &addr, "--json", dest.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out)["shards_done"], 6);
    assert!(
        snapshotd(&["verify", dest.to_str().unwrap()])
            .status
            .success()
    );

    // Every shard comes back with the TSM files influxd had backed up.
    let a1 = A1::load();
    for e in std::fs::read_dir(&dest).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let Some(id) = name
            .split(".s")
            .nth(1)
            .and_then(|r| r.strip_suffix(".tar.gz"))
            .and_then(|i| i.parse::<u64>().ok())
        else {
            continue;
        };
        let mut tar = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(&p).unwrap()),
            &mut tar,
        )
        .unwrap();
        let got: Vec<(String, Vec<u8>)> = tar_entries(&tar)
            .into_iter()
            .filter(|(n, _)| n.ends_with(".tsm"))
            .collect();
        let want: Vec<(String, Vec<u8>)> = tar_entries(&a1.shards[&id])
            .into_iter()
            .filter(|(n, _)| n.ends_with(".tsm"))
            .collect();
        assert_eq!(got, want, "shard {id}");
    }
}
