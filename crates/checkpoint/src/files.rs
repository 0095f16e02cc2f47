//! Naming convention for encrypted backup files, and whole-directory decryption.
//!
//! An encrypted file is stored as `<plain relative path>.enc`; its key-derivation context
//! is the plain relative path with `/` separators (e.g. `20260101T000000Z.s1.tar.gz`),
//! so a file renamed or moved to another place in the backup fails authentication.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout;
use snapshotd_sealed::{CryptoError, MasterKey};
use snapshotd_sealed::{DecryptingReader, ENC_SUFFIX, EncryptingWriter};

/// The stored name of an encrypted file whose plain name is `plain`.
pub fn encrypted_name(plain: &str) -> String {
    format!("{plain}{ENC_SUFFIX}")
}

/// The plain name of a stored encrypted file (`None` if `stored` is not encrypted).
pub fn plain_name(stored: &str) -> Option<&str> {
    stored.strip_suffix(ENC_SUFFIX).filter(|p| !p.is_empty())
}

/// Totals of [`decrypt_dir`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecryptSummary {
    /// Encrypted files decrypted.
    pub decrypted: u64,
    /// Plain files copied unchanged.
    pub copied: u64,
    /// Plaintext bytes written.
    pub bytes: u64,
}

/// Encrypts local file `src` into `dst` (normally `encrypted_name(...)`), binding `context`.
pub fn encrypt_file(key: &MasterKey, src: &Path, dst: &Path, context: &str) -> Result<u64> {
    let input = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
    write_atomically(dst, |out| {
        let mut w = EncryptingWriter::new(out, key, context)?;
        let n = std::io::copy(&mut BufReader::new(input), &mut w)?;
        w.finish()?;
        Ok(n)
    })
}

/// Decrypts local file `src` into `dst`; a damaged or foreign file leaves no `dst`.
pub fn decrypt_file(key: &MasterKey, src: &Path, dst: &Path, context: &str) -> Result<u64> {
    let input = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
    let res = write_atomically(dst, |out| {
        let mut r = DecryptingReader::new(BufReader::new(input), key, context)?;
        std::io::copy(&mut r, out)
    });
    match res {
        Err(Error::Io { source, .. }) if CryptoError::from_io(&source).is_some() => {
            let reason = source.to_string();
            Err(Error::Corrupt {
                path: src.display().to_string(),
                reason,
            })
        }
        other => other,
    }
}

/// Writes `dst` through a temp file in the same directory, renamed into place on success.
fn write_atomically(
    dst: &Path,
    f: impl FnOnce(&mut BufWriter<&std::fs::File>) -> std::io::Result<u64>,
) -> Result<u64> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    let n = {
        let mut w = BufWriter::new(tmp.as_file());
        let n = f(&mut w).map_err(|e| Error::io(dst, e))?;
        w.flush().map_err(|e| Error::io(dst, e))?;
        n
    };
    tmp.as_file().sync_all().map_err(|e| Error::io(dst, e))?;
    tmp.persist_noclobber(dst)
        .map_err(|e| Error::io(dst, e.error))?;
    Ok(n)
}

/// Decrypts every `*.enc` file under `src` into `dst` (same relative layout, suffix
/// dropped) and copies the other files unchanged, skipping the `checkpoints/` bookkeeping
/// directory. `dst` must not exist or be empty. Stops at the first damaged file.
pub fn decrypt_dir(key: &MasterKey, src: &Path, dst: &Path) -> Result<DecryptSummary> {
    if !src.is_dir() {
        return Err(Error::InvalidDestination {
            url: src.display().to_string(),
            reason: "source is not a directory".into(),
        });
    }
    ensure_empty_dir(dst)?;
    let (src_c, dst_c) = (
        src.canonicalize().map_err(|e| Error::io(src, e))?,
        dst.canonicalize().map_err(|e| Error::io(dst, e))?,
    );
    if dst_c.starts_with(&src_c) {
        return Err(Error::InvalidDestination {
            url: dst.display().to_string(),
            reason: "target directory lies inside the source".into(),
        });
    }
    let mut summary = DecryptSummary::default();
    let mut stack: Vec<(PathBuf, String)> = vec![(src.to_path_buf(), String::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io(&dir, e))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(Error::io(
                    entry.path(),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "non-UTF-8 file name"),
                ));
            };
            let rel = if rel_dir.is_empty() {
                name.to_string()
            } else {
                format!("{rel_dir}/{name}")
            };
            let ft = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
            if ft.is_dir() {
                if rel != layout::DIR {
                    stack.push((entry.path(), rel));
                }
                continue;
            }
            if !ft.is_file() {
                continue; // symlinks, sockets: not part of a backup
            }
            match plain_name(&rel) {
                Some(plain) => {
                    let out = dst.join(plain);
                    summary.bytes += decrypt_file(key, &entry.path(), &out, plain)?;
                    summary.decrypted += 1;
                }
                None => {
                    let out = dst.join(&rel);
                    if let Some(p) = out.parent() {
                        std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
                    }
                    summary.bytes +=
                        std::fs::copy(entry.path(), &out).map_err(|e| Error::io(&out, e))?;
                    summary.copied += 1;
                }
            }
        }
    }
    Ok(summary)
}

/// Like [`decrypt_dir`] for any destination (e.g. `s3://…`): every object under the
/// prefix is downloaded next to its final place in `dst`, then decrypted (`*.enc`) or
/// kept as is. Objects under `checkpoints/` are skipped.
pub async fn decrypt_destination(
    key: &MasterKey,
    src: &snapshotd_dest::Destination,
    dst: &Path,
) -> Result<DecryptSummary> {
    use futures::{StreamExt, TryStreamExt};
    use object_store::ObjectStoreExt;

    if let Some(root) = src.local_root()
        && src.prefix().parts().next().is_none()
    {
        let (key, root, dst) = (key.clone(), root.to_path_buf(), dst.to_path_buf());
        return tokio::task::spawn_blocking(move || decrypt_dir(&key, &root, &dst))
            .await
            .map_err(Error::task_failed("decrypt"))?;
    }
    ensure_empty_dir(dst)?;
    let prefix = src.prefix().clone();
    let objects: Vec<object_store::ObjectMeta> = src
        .store()
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::storage("list", &prefix, e))?;
    let mut summary = DecryptSummary::default();
    for meta in objects {
        let Some(rel) = src.relative(&meta.location) else {
            continue;
        };
        if rel.is_empty() || rel == layout::DIR || rel.starts_with(&format!("{}/", layout::DIR)) {
            continue;
        }
        if rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(Error::Corrupt {
                path: meta.location.to_string(),
                reason: "object name is not a safe relative path".into(),
            });
        }
        let plain = plain_name(&rel);
        let out = dst.join(plain.unwrap_or(&rel));
        let dir = out.parent().unwrap_or(dst).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io(&dir, e))?;
        {
            let got = src
                .store()
                .get(&meta.location)
                .await
                .map_err(|e| Error::storage("get", &meta.location, e))?;
            let mut stream = got.into_stream();
            let mut f = tmp.as_file();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Error::storage("get", &meta.location, e))?;
                f.write_all(&chunk).map_err(|e| Error::io(tmp.path(), e))?;
            }
        }
        match plain {
            Some(plain) => {
                let (key, from, to, ctx) = (
                    key.clone(),
                    tmp.path().to_path_buf(),
                    out.clone(),
                    plain.to_string(),
                );
                let n = tokio::task::spawn_blocking(move || decrypt_file(&key, &from, &to, &ctx))
                    .await
                    .map_err(Error::task_failed("decrypt"))?
                    .map_err(|e| match e {
                        Error::Corrupt { reason, .. } => Error::Corrupt {
                            path: meta.location.to_string(),
                            reason,
                        },
                        other => other,
                    })?;
                summary.bytes += n;
                summary.decrypted += 1;
            }
            None => {
                tmp.as_file().sync_all().map_err(|e| Error::io(&out, e))?;
                tmp.persist_noclobber(&out)
                    .map_err(|e| Error::io(&out, e.error))?;
                summary.bytes += meta.size;
                summary.copied += 1;
            }
        }
    }
    Ok(summary)
}

fn ensure_empty_dir(dst: &Path) -> Result<()> {
    if dst.exists() {
        let mut entries = std::fs::read_dir(dst).map_err(|e| Error::io(dst, e))?;
        if entries.next().is_some() {
            return Err(Error::InvalidDestination {
                url: dst.display().to_string(),
                reason: "target directory is not empty".into(),
            });
        }
    }
    std::fs::create_dir_all(dst).map_err(|e| Error::io(dst, e))
}
