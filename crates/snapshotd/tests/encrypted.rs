//! Encrypted backups (`--encrypt-key-file`) as a user runs them, against `snapshotd serve`:
//! every stored file is `<name>.enc`, resume works, `snapshotd decrypt` gives a plain portable
//! backup, `restore --encrypt-key-file` restores it, and tampering is an error.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support {
    pub mod backup_env;
}

use std::path::Path;
use std::time::Duration;

use support::backup_env as env;

fn stored_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

fn flip(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x01;
    std::fs::write(p, b).unwrap();
}

fn recorded_shards(dest: &Path, key: &Path) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let d = snapshotd_checkpoint::Destination::local(dest).unwrap();
    let k = snapshotd_checkpoint::MasterKey::from_file(key).unwrap();
    let r = rt
        .block_on(snapshotd_checkpoint::inspect(&d, Some(&k)))
        .unwrap();
    r.records.keys().filter(|k| k.ends_with(".tar.gz")).count()
}

#[test]
fn encrypted_backup_resumes_decrypts_restores_and_detects_tampering() {
    let work = snapshotd_testutil::temp_dir();
    let srv = env::serve(&work.path().join("data"));
    env::load(&srv);
    let key = work.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let k = key.to_str().unwrap();
    let reference = work.path().join("ref");
    env::ok(&env::run(&[
        "backup",
        "--host",
        &srv.addr,
        reference.to_str().unwrap(),
    ]));
    let (_, want) = env::content(&reference);

    // Killed once mid-transfer, then resumed.
    let dest = work.path().join("enc");
    let d = dest.to_str().unwrap();
    let mut child = env::spawn(&[
        "backup",
        "--host",
        &srv.addr,
        "--rate-limit",
        "3M",
        "--encrypt-key-file",
        k,
        d,
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(dest.join("checkpoints").exists() && recorded_shards(&dest, &key) >= 2) {
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = env::run(&[
        "backup",
        "--host",
        &srv.addr,
        "--encrypt-key-file",
        k,
        "--json",
        d,
    ]);
    env::ok(&out);
    let v = env::json(&out);
    assert!(v["shards_skipped"].as_u64().unwrap() >= 2, "{v}");

    // Only the manifest is plain; it lists plain names.
    for n in stored_names(&dest) {
        assert!(n.ends_with(".enc") || n.ends_with(".manifest"), "{n}");
    }
    let m = std::fs::read_to_string(dest.join(env::manifest_name(&dest))).unwrap();
    assert!(!m.contains(".enc"), "{m}");

    // Without the key the settings differ (key id) and nothing is touched.
    let out = env::run(&["backup", "--host", &srv.addr, d]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("encryption.key_id"));

    // decrypt → a plain portable backup equal to the reference.
    let plain = work.path().join("plain");
    env::ok(&env::run(&[
        "decrypt",
        "--encrypt-key-file",
        k,
        d,
        plain.to_str().unwrap(),
    ]));
    env::ok(&env::run(&["verify", plain.to_str().unwrap()]));
    assert_eq!(env::content(&plain).1, want);

    // verify: without the key it says the backup is encrypted; with it, every file checks.
    let out = env::run(&["verify", d]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("--encrypt-key-file"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    env::ok(&env::run(&["verify", "--encrypt-key-file", k, d]));

    // restore --encrypt-key-file into a fresh server.
    let fresh = env::serve(&work.path().join("fresh"));
    let out = env::run(&[
        "restore",
        "--host",
        &fresh.addr,
        "--ack",
        "--encrypt-key-file",
        k,
        "--json",
        d,
    ]);
    env::ok(&out);
    let back = work.path().join("back");
    env::ok(&env::run(&[
        "backup",
        "--host",
        &fresh.addr,
        back.to_str().unwrap(),
    ]));
    assert_eq!(
        env::content(&back).1.len(),
        want.len(),
        "every shard came back"
    );

    // Tampering: one flipped bit in an archive fails decrypt and restore, naming it.
    let victim = dest.join(
        stored_names(&dest)
            .into_iter()
            .find(|n| n.ends_with(".tar.gz.enc"))
            .unwrap(),
    );
    flip(&victim);
    let out = env::run(&[
        "decrypt",
        "--encrypt-key-file",
        k,
        d,
        work.path().join("plain2").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&name),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env::run(&["verify", "--encrypt-key-file", k, d]);
    assert!(
        !out.status.success(),
        "verify must reject a tampered encrypted archive"
    );
    let other = env::serve(&work.path().join("other"));
    let out = env::run(&["restore", "--host", &other.addr, "--encrypt-key-file", k, d]);
    assert!(!out.status.success());
}

#[test]
fn a_tampered_encrypted_shard_stops_a_resume() {
    let work = snapshotd_testutil::temp_dir();
    let srv = env::serve(&work.path().join("data"));
    env::load(&srv);
    let key = work.path().join("key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let k = key.to_str().unwrap();
    let dest = work.path().join("enc");
    let d = dest.to_str().unwrap();
    let mut child = env::spawn(&[
        "backup",
        "--host",
        &srv.addr,
        "--rate-limit",
        "3M",
        "--jobs",
        "1",
        "--encrypt-key-file",
        k,
        d,
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(dest.join("checkpoints").exists() && recorded_shards(&dest, &key) >= 2) {
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // s1 is recorded first with --jobs 1.
    let victim = dest.join(
        stored_names(&dest)
            .into_iter()
            .find(|n| n.ends_with(".s1.tar.gz.enc"))
            .unwrap(),
    );
    flip(&victim);
    let out = env::run(&["backup", "--host", &srv.addr, "--encrypt-key-file", k, d]);
    assert!(!out.status.success(), "tampering must be an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s1.tar.gz.enc") && err.contains("modified"),
        "{err}"
    );
}
