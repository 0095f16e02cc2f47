//! Integration tests of `snapshotd-sealed`: encryption streams and key files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};

use snapshotd_sealed::{
    CryptoError, DecryptingReader, EncryptingWriter, HEADER_LEN, MIN_CHUNK_SIZE, MasterKey,
    TAG_LEN, decrypt_bytes, encrypt_bytes,
};

const CS: usize = MIN_CHUNK_SIZE as usize;

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn encrypt(key: &MasterKey, ctx: &str, plain: &[u8]) -> Vec<u8> {
    let mut w = EncryptingWriter::with_chunk_size(Vec::new(), key, ctx, MIN_CHUNK_SIZE).unwrap();
    // Uneven writes exercise the buffering.
    for part in plain.chunks(333) {
        w.write_all(part).unwrap();
    }
    w.finish().unwrap()
}

fn decrypt(key: &MasterKey, ctx: &str, enc: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut r = DecryptingReader::new(enc, key, ctx)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}

fn crypto_err(e: &std::io::Error) -> &CryptoError {
    CryptoError::from_io(e).unwrap_or_else(|| panic!("not a crypto error: {e}"))
}

#[test]
fn round_trip_sizes() {
    let key = MasterKey::generate();
    for n in [0, 1, CS - 1, CS, CS + 1, 3 * CS, 3 * CS + 5] {
        let plain = data(n);
        let enc = encrypt(&key, "f.tar.gz", &plain);
        let chunks = n.div_ceil(CS).max(1);
        assert_eq!(enc.len(), HEADER_LEN + n + chunks * TAG_LEN, "size {n}");
        if n > 0 {
            assert_ne!(
                &enc[HEADER_LEN..HEADER_LEN + n.min(16)],
                &plain[..n.min(16)]
            );
        }
        assert_eq!(decrypt(&key, "f.tar.gz", &enc).unwrap(), plain, "size {n}");
    }
}

#[test]
fn same_plaintext_encrypts_differently() {
    let key = MasterKey::generate();
    let a = encrypt(&key, "x", &data(100));
    let b = encrypt(&key, "x", &data(100));
    assert_ne!(a, b);
}

#[test]
fn wrong_key_is_refused() {
    let enc = encrypt(&MasterKey::generate(), "f", &data(3000));
    let e = decrypt(&MasterKey::generate(), "f", &enc).unwrap_err();
    assert!(
        matches!(crypto_err(&e), CryptoError::WrongKey { .. }),
        "{e}"
    );
}

#[test]
fn wrong_context_fails_authentication() {
    let key = MasterKey::generate();
    let enc = encrypt(&key, "shard-1.tar.gz", &data(3000));
    let e = decrypt(&key, "shard-2.tar.gz", &enc).unwrap_err();
    assert!(
        matches!(crypto_err(&e), CryptoError::Authentication { chunk: 0 }),
        "{e}"
    );
}

#[test]
fn truncation_is_detected() {
    let key = MasterKey::generate();
    let plain = data(3 * CS + 100);
    let enc = encrypt(&key, "f", &plain);
    let sealed = CS + TAG_LEN;
    // At a chunk boundary (the final chunk dropped), inside a chunk, inside the header.
    for cut in [
        HEADER_LEN + 2 * sealed,
        HEADER_LEN + 3 * sealed,
        enc.len() - 1,
        HEADER_LEN + 5,
        HEADER_LEN,
        20,
    ] {
        let e = decrypt(&key, "f", &enc[..cut]).unwrap_err();
        let c = crypto_err(&e);
        assert!(
            matches!(
                c,
                CryptoError::Authentication { .. } | CryptoError::Truncated { .. }
            ),
            "cut {cut}: {c}"
        );
    }
}

#[test]
fn reordered_and_duplicated_chunks_are_detected() {
    let key = MasterKey::generate();
    let enc = encrypt(&key, "f", &data(3 * CS + 100));
    let sealed = CS + TAG_LEN;
    let chunk = |i: usize| &enc[HEADER_LEN + i * sealed..HEADER_LEN + (i + 1) * sealed];
    let tail = &enc[HEADER_LEN + 3 * sealed..];
    let head = &enc[..HEADER_LEN];
    let swapped = [head, chunk(1), chunk(0), chunk(2), tail].concat();
    let e = decrypt(&key, "f", &swapped).unwrap_err();
    assert!(
        matches!(crypto_err(&e), CryptoError::Authentication { chunk: 0 }),
        "{e}"
    );
    let duplicated = [head, chunk(0), chunk(0), chunk(1), chunk(2), tail].concat();
    let e = decrypt(&key, "f", &duplicated).unwrap_err();
    assert!(
        matches!(crypto_err(&e), CryptoError::Authentication { chunk: 1 }),
        "{e}"
    );
}

#[test]
fn bit_flips_anywhere_are_detected() {
    let key = MasterKey::generate();
    let plain = data(2 * CS + 10);
    let enc = encrypt(&key, "f", &plain);
    for pos in (0..enc.len()).step_by(97).chain([enc.len() - 1, 63, 12]) {
        let mut bad = enc.clone();
        bad[pos] ^= 0x01;
        assert!(
            decrypt(&key, "f", &bad).is_err(),
            "flip at {pos} undetected"
        );
    }
}

#[test]
fn unfinished_writer_does_not_decrypt() {
    let key = MasterKey::generate();
    let mut out = Vec::new();
    {
        let mut w = EncryptingWriter::with_chunk_size(&mut out, &key, "f", MIN_CHUNK_SIZE).unwrap();
        w.write_all(&data(2 * CS + 3)).unwrap();
        // dropped without finish()
    }
    let e = decrypt(&key, "f", &out).unwrap_err();
    assert!(
        matches!(
            crypto_err(&e),
            CryptoError::Truncated { .. } | CryptoError::Authentication { .. }
        ),
        "{e}"
    );
}

#[test]
fn bytes_helpers_and_limit() {
    let key = MasterKey::generate();
    let enc = encrypt_bytes(&key, "r", b"hello").unwrap();
    assert_eq!(decrypt_bytes(&key, "r", &enc, 5).unwrap(), b"hello");
    assert!(matches!(
        decrypt_bytes(&key, "r", &enc, 4),
        Err(CryptoError::TooLarge { limit: 4 })
    ));
    assert!(matches!(
        decrypt_bytes(&key, "r", b"plain data", 100),
        Err(CryptoError::BadMagic)
    ));
}

#[test]
fn key_files() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.key");
    std::fs::write(&raw, [7u8; 32]).unwrap();
    let hexf = dir.path().join("hex.key");
    std::fs::write(&hexf, format!("{}\n", "07".repeat(32))).unwrap();
    let a = MasterKey::from_file(&raw).unwrap();
    let b = MasterKey::from_file(&hexf).unwrap();
    assert_eq!(a.key_id(), b.key_id());
    assert_eq!(a.key_id().len(), 16);
    assert!(!format!("{a:?}").contains("0707"));
    let short = dir.path().join("short.key");
    std::fs::write(&short, [1u8; 31]).unwrap();
    let e = MasterKey::from_file(&short).unwrap_err();
    assert!(e.to_string().contains("32 raw bytes or 64 hex"), "{e}");
    let badhex = dir.path().join("bad.key");
    std::fs::write(&badhex, "zz".repeat(32)).unwrap();
    assert!(MasterKey::from_file(&badhex).is_err());
    assert!(MasterKey::from_file(dir.path().join("missing")).is_err());
}
