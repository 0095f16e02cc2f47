//! Compare-and-swap on a single small object: the primitive under the lock.
//!
//! Object stores with conditional writes (S3, InMemory) use `PutMode::Create` and
//! `PutMode::Update` on the ETag. object_store's local backend cannot do `Update`, so
//! local destinations serialize read-compare-write under an exclusive `flock` on a
//! sidecar `<name>.guard` file; the version there is the SHA-256 of the content.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use fs2::FileExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use snapshotd_dest::Destination;

/// Largest lock object we read.
const MAX_CAS_OBJECT: u64 = 64 * 1024;

/// An opaque version of the object (ETag/version, or a content hash locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub(crate) UpdateVersion);

/// Outcome of a conditional write that lost.
#[derive(Debug)]
pub enum CasOutcome<T> {
    /// The write happened.
    Done(T),
    /// The object exists (create) or changed / vanished (update).
    Conflict,
}

/// A CAS cell at one path.
#[derive(Debug, Clone)]
pub(crate) enum Cas {
    Object {
        store: Arc<dyn ObjectStore>,
        path: Path,
    },
    Local {
        file: PathBuf,
        guard: PathBuf,
    },
}

impl Cas {
    pub(crate) fn new(dest: &Destination, rel: &str) -> Self {
        match dest.local_file(rel) {
            Some(file) => {
                let mut guard = file.clone().into_os_string();
                guard.push(".guard");
                Cas::Local {
                    file,
                    guard: PathBuf::from(guard),
                }
            }
            None => Cas::Object {
                store: dest.store().clone(),
                path: dest.path(rel),
            },
        }
    }

    /// Reads the object, `None` if absent.
    pub(crate) async fn read(&self) -> Result<Option<(Bytes, Version)>> {
        match self {
            Cas::Object { store, path } => {
                let got = match store.get(path).await {
                    Ok(g) => g,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(Error::storage("get", path, e)),
                };
                if got.meta.size > MAX_CAS_OBJECT {
                    return Err(Error::Corrupt {
                        path: path.to_string(),
                        reason: format!("{} bytes, larger than any lock", got.meta.size),
                    });
                }
                let version = UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| Error::storage("get", path, e))?;
                Ok(Some((bytes, Version(version))))
            }
            Cas::Local { .. } => {
                let this = self.clone();
                blocking(move || this.local_read_locked()).await
            }
        }
    }

    /// Creates the object if absent.
    pub(crate) async fn create(&self, data: Bytes) -> Result<CasOutcome<Version>> {
        match self {
            Cas::Object { store, path } => {
                let opts = PutOptions::from(PutMode::Create);
                match store.put_opts(path, PutPayload::from(data), opts).await {
                    Ok(r) => Ok(CasOutcome::Done(Version(r.into()))),
                    Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::Precondition { .. }) => Ok(CasOutcome::Conflict),
                    // S3 answers 409 ConditionalRequestConflict to racing conditional
                    // creates; object_store does not retry it. The caller re-reads.
                    Err(e) if is_conflict(&e) => Ok(CasOutcome::Conflict),
                    Err(e) => Err(unsupported_or(e, path, "create")),
                }
            }
            Cas::Local { .. } => {
                let this = self.clone();
                blocking(move || this.local_swap(None, Some(&data))).await
            }
        }
    }

    /// Replaces the object if its version is still `expected`.
    pub(crate) async fn update(
        &self,
        expected: &Version,
        data: Bytes,
    ) -> Result<CasOutcome<Version>> {
        match self {
            Cas::Object { store, path } => {
                let opts = PutOptions::from(PutMode::Update(expected.0.clone()));
                match store.put_opts(path, PutPayload::from(data), opts).await {
                    Ok(r) => Ok(CasOutcome::Done(Version(r.into()))),
                    Err(object_store::Error::Precondition { .. })
                    | Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::NotFound { .. }) => Ok(CasOutcome::Conflict),
                    Err(e) => Err(unsupported_or(e, path, "conditional update")),
                }
            }
            Cas::Local { .. } => {
                let this = self.clone();
                let expected = expected.clone();
                blocking(move || this.local_swap(Some(&expected), Some(&data))).await
            }
        }
    }

    /// Deletes the object if its version is `expected` (or unconditionally when `None`).
    /// Object stores have no conditional delete: there the check is read-then-delete.
    pub(crate) async fn delete(&self, expected: Option<&Version>) -> Result<CasOutcome<()>> {
        match self {
            Cas::Object { store, path } => {
                if let Some(exp) = expected {
                    match self.read().await? {
                        Some((_, v)) if &v == exp => {}
                        _ => return Ok(CasOutcome::Conflict),
                    }
                }
                match store.delete(path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(CasOutcome::Done(())),
                    Err(e) => Err(Error::storage("delete", path, e)),
                }
            }
            Cas::Local { .. } => {
                let this = self.clone();
                let expected = expected.cloned();
                blocking(
                    move || match this.local_swap_any(expected.as_ref(), None)? {
                        CasOutcome::Done(_) => Ok(CasOutcome::Done(())),
                        CasOutcome::Conflict => Ok(CasOutcome::Conflict),
                    },
                )
                .await
            }
        }
    }

    fn guard(&self) -> Result<(std::fs::File, &PathBuf, &PathBuf)> {
        let Cas::Local { file, guard } = self else {
            return Err(Error::Unsupported {
                dest: String::new(),
                reason: "local CAS on a non-local store".into(),
            });
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let g = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(guard)
            .map_err(|e| Error::io(guard, e))?;
        g.lock_exclusive().map_err(|e| Error::io(guard, e))?;
        Ok((g, file, guard))
    }

    fn local_read_locked(&self) -> Result<Option<(Bytes, Version)>> {
        let (_g, file, _) = self.guard()?;
        local_read(file)
    }

    fn local_swap(
        &self,
        expected: Option<&Version>,
        data: Option<&Bytes>,
    ) -> Result<CasOutcome<Version>> {
        // `expected == None` means "create": the object must be absent.
        let (_g, file, _) = self.guard()?;
        let current = local_read(file)?;
        match (expected, &current) {
            (None, None) => {}
            (Some(exp), Some((_, v))) if v == exp => {}
            _ => return Ok(CasOutcome::Conflict),
        }
        local_write(file, data)
    }

    fn local_swap_any(
        &self,
        expected: Option<&Version>,
        data: Option<&Bytes>,
    ) -> Result<CasOutcome<Version>> {
        // Delete: `None` expected means unconditional.
        let (_g, file, _) = self.guard()?;
        if let Some(exp) = expected {
            match local_read(file)? {
                Some((_, v)) if &v == exp => {}
                _ => return Ok(CasOutcome::Conflict),
            }
        }
        local_write(file, data)
    }
}

fn content_version(data: &[u8]) -> Version {
    Version(UpdateVersion {
        e_tag: Some(hex::encode(Sha256::digest(data))),
        version: None,
    })
}

fn local_read(file: &PathBuf) -> Result<Option<(Bytes, Version)>> {
    use std::io::Read;
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(file, e)),
    };
    let mut buf = Vec::new();
    f.take(MAX_CAS_OBJECT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(file, e))?;
    if buf.len() as u64 > MAX_CAS_OBJECT {
        return Err(Error::Corrupt {
            path: file.display().to_string(),
            reason: "larger than any lock".into(),
        });
    }
    let v = content_version(&buf);
    Ok(Some((Bytes::from(buf), v)))
}

/// Writes (temp file + fsync + rename) or deletes `file`.
fn local_write(file: &PathBuf, data: Option<&Bytes>) -> Result<CasOutcome<Version>> {
    let Some(data) = data else {
        return match std::fs::remove_file(file) {
            Ok(()) => Ok(CasOutcome::Done(content_version(&[]))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(CasOutcome::Done(content_version(&[])))
            }
            Err(e) => Err(Error::io(file, e)),
        };
    };
    let dir = file
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io(&dir, e))?;
    tmp.write_all(data).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(file, e))?;
    tmp.persist(file).map_err(|e| Error::io(file, e.error))?;
    Ok(CasOutcome::Done(content_version(data)))
}

fn is_conflict(e: &object_store::Error) -> bool {
    let msg = e.to_string();
    msg.contains("409") || msg.contains("ConditionalRequestConflict")
}

fn unsupported_or(e: object_store::Error, path: &Path, op: &'static str) -> Error {
    match e {
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. } => {
            Error::Unsupported {
                dest: path.to_string(),
                reason: format!("{op}: {e}"),
            }
        }
        other => Error::storage(op, path, other),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::task_failed("blocking"))?
}
