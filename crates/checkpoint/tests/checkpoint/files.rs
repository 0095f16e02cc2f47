//! Encrypted backup files: naming convention and whole-directory decryption.

use snapshotd_checkpoint::{
    Error, MasterKey, decrypt_dir, decrypt_file, encrypt_file, encrypted_name, plain_name,
};

fn backup_dir(key: &MasterKey) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let plain = tempfile::tempdir().unwrap();
    let files: [(&str, Vec<u8>); 3] = [
        (
            "20260101T000000Z.s1.tar.gz",
            (0..300_000u32).map(|i| (i % 7) as u8).collect(),
        ),
        ("sub/20260101T000000Z.meta", b"meta bytes".to_vec()),
        ("empty.bin", Vec::new()),
    ];
    for (rel, data) in &files {
        let p = plain.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        let out = dir.path().join(encrypted_name(rel));
        encrypt_file(key, &p, &out, rel).unwrap();
        assert_ne!(std::fs::read(&out).unwrap(), *data);
    }
    std::fs::write(dir.path().join("20260101T000000Z.manifest"), b"{}").unwrap();
    std::fs::create_dir_all(dir.path().join("checkpoints/data")).unwrap();
    std::fs::write(dir.path().join("checkpoints/data/x.cpt"), b"bookkeeping").unwrap();
    dir
}

#[test]
fn names() {
    assert_eq!(encrypted_name("a/b.tar.gz"), "a/b.tar.gz.enc");
    assert_eq!(plain_name("a/b.tar.gz.enc"), Some("a/b.tar.gz"));
    assert_eq!(plain_name("a/b.tar.gz"), None);
    assert_eq!(plain_name(".enc"), None);
}

#[test]
fn decrypt_dir_restores_plain_layout() {
    let key = MasterKey::generate();
    let src = backup_dir(&key);
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("plain");
    let s = decrypt_dir(&key, src.path(), &dst).unwrap();
    assert_eq!((s.decrypted, s.copied), (3, 1));
    let big = std::fs::read(dst.join("20260101T000000Z.s1.tar.gz")).unwrap();
    assert_eq!(big.len(), 300_000);
    assert!(big.iter().enumerate().all(|(i, b)| *b == (i % 7) as u8));
    assert_eq!(
        std::fs::read(dst.join("sub/20260101T000000Z.meta")).unwrap(),
        b"meta bytes"
    );
    assert_eq!(std::fs::read(dst.join("empty.bin")).unwrap(), b"");
    assert_eq!(
        std::fs::read(dst.join("20260101T000000Z.manifest")).unwrap(),
        b"{}"
    );
    assert!(
        !dst.join("checkpoints").exists(),
        "bookkeeping is not part of the backup"
    );
    // Not into a non-empty directory, nor inside the source.
    assert!(matches!(
        decrypt_dir(&key, src.path(), &dst),
        Err(Error::InvalidDestination { .. })
    ));
    assert!(matches!(
        decrypt_dir(&key, src.path(), &src.path().join("inner")),
        Err(Error::InvalidDestination { .. })
    ));
}

#[test]
fn wrong_key_or_renamed_file_fails_without_output() {
    let key = MasterKey::generate();
    let src = backup_dir(&key);
    let out = tempfile::tempdir().unwrap();
    let e = decrypt_dir(&MasterKey::generate(), src.path(), &out.path().join("a")).unwrap_err();
    assert!(e.to_string().contains("wrong key"), "{e}");
    // A file moved to another name no longer authenticates.
    let enc = src.path().join("20260101T000000Z.s1.tar.gz.enc");
    let dst = out.path().join("b.tar.gz");
    let e = decrypt_file(&key, &enc, &dst, "b.tar.gz").unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(!dst.exists(), "no partial plaintext left behind");
    // Truncated archive.
    let data = std::fs::read(&enc).unwrap();
    std::fs::write(&enc, &data[..data.len() - 100]).unwrap();
    let e = decrypt_dir(&key, src.path(), &out.path().join("c")).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(!out.path().join("c/20260101T000000Z.s1.tar.gz").exists());
}
