//! Encrypted backups (`--encrypt-key-file`) as a user runs them, against `snapshotd serve`:
//! every stored file is `<name>.enc`, resume works, `snapshotd decrypt` gives a plain portable
//! backup, `restore --encrypt-key-file` restores it, and tampering is an error.

use std::path::Path;

use crate::support::backup_env::{self as env, file_names, flip};
use crate::support::serve::{serve, serve_loaded};

fn recorded_shards(dest: &Path, key: &Path) -> usize {
    let r = env::checkpoint_records(dest, Some(key));
    r.records.keys().filter(|k| k.ends_with(".tar.gz")).count()
}

/// Waits until `child`, an encrypted backup into `dest`, has recorded two shards; kills it.
fn kill_after_two_shards(child: std::process::Child, dest: &Path, key: &Path) {
    env::kill_once(child, || {
        dest.join("checkpoints").exists() && recorded_shards(dest, key) >= 2
    });
}

#[test]
fn encrypted_backup_resumes_decrypts_restores_and_detects_tampering() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let key = work.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let k = key.to_str().unwrap();
    let reference = work.path().join("ref");
    env::backup_ok(&srv.addr, &[], &reference);
    let (_, want) = env::content(&reference);

    // Killed once mid-transfer, then resumed.
    let dest = work.path().join("enc");
    let d = dest.to_str().unwrap();
    let child = env::spawn(&[
        "backup",
        "--host",
        &srv.addr,
        "--rate-limit",
        "3M",
        "--encrypt-key-file",
        k,
        d,
    ]);
    kill_after_two_shards(child, &dest, &key);
    let v = env::json(&env::backup_ok(
        &srv.addr,
        &["--encrypt-key-file", k, "--json"],
        &dest,
    ));
    assert!(v["shards_skipped"].as_u64().unwrap() >= 2, "{v}");

    // Only the manifest is plain; it lists plain names.
    for n in file_names(&dest) {
        assert!(n.ends_with(".enc") || n.ends_with(".manifest"), "{n}");
    }
    let m = std::fs::read_to_string(dest.join(env::manifest_name(&dest))).unwrap();
    assert!(!m.contains(".enc"), "{m}");

    // Without the key, no plain point is added beside the encrypted ones.
    let before = file_names(&dest);
    let out = env::run(&["backup", "--host", &srv.addr, d]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--encrypt-key-file"));
    assert_eq!(file_names(&dest), before);

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
    let fresh = serve(&work.path().join("fresh"));
    env::ok(&env::run(&[
        "restore",
        "--host",
        &fresh.addr,
        "--ack",
        "--encrypt-key-file",
        k,
        "--json",
        d,
    ]));
    let back = work.path().join("back");
    env::backup_ok(&fresh.addr, &[], &back);
    assert_eq!(
        env::content(&back).1.len(),
        want.len(),
        "every shard came back"
    );

    // Tampering: one flipped bit in an archive fails decrypt and restore, naming it.
    let victim = dest.join(
        file_names(&dest)
            .into_iter()
            .find(|n| n.ends_with(".tar.gz.enc"))
            .unwrap(),
    );
    flip(&victim, 0x01);
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
    let other = serve(&work.path().join("other"));
    let out = env::run(&["restore", "--host", &other.addr, "--encrypt-key-file", k, d]);
    assert!(!out.status.success());
}

#[test]
fn a_tampered_encrypted_shard_stops_a_resume() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let key = work.path().join("key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let k = key.to_str().unwrap();
    let dest = work.path().join("enc");
    let d = dest.to_str().unwrap();
    let child = env::spawn(&[
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
    kill_after_two_shards(child, &dest, &key);
    // s1 is recorded first with --jobs 1.
    let victim = dest.join(
        file_names(&dest)
            .into_iter()
            .find(|n| n.ends_with(".s1.tar.gz.enc"))
            .unwrap(),
    );
    flip(&victim, 0x01);
    let out = env::run(&["backup", "--host", &srv.addr, "--encrypt-key-file", k, d]);
    assert!(!out.status.success(), "tampering must be an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s1.tar.gz.enc") && err.contains("modified"),
        "{err}"
    );
}
