//! Durable metastore file and the data-directory lock.
//!
//! The meta is one `meta.Data` protobuf at `<data_dir>/meta/meta.db`, replaced atomically
//! (temp file + fsync + rename + directory fsync). An exclusive `fs2` lock on
//! `<data_dir>/LOCK` keeps a second process out of the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use fs2::FileExt;

use crate::error::{Corruption, InvalidInput, Locked, MetaProblem, Result, StoreError};
use crate::meta::{Data, MAX_META_BYTES};

/// Holds the data-directory lock for as long as it lives.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the exclusive lock on `<dir>/LOCK`, failing fast when another process holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(format!("open {}", path.display()), e))?;
        file.try_lock_exclusive()
            .map_err(|_| Locked::DataDir { lock_file: path })?;
        Ok(DirLock { _file: file })
    }
}

/// Path of the meta file inside a data directory.
pub(crate) fn meta_path(dir: &Path) -> PathBuf {
    dir.join("meta").join("meta.db")
}

/// Loads the meta file, or a fresh `Data` with a random cluster id when absent.
pub(crate) fn load(dir: &Path) -> Result<Data> {
    let path = meta_path(dir);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Data {
                cluster_id: rand::random::<u64>(),
                ..Default::default()
            });
        }
        Err(e) => return Err(StoreError::io(format!("open {}", path.display()), e)),
    };
    let mut buf = Vec::new();
    file.take(MAX_META_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| StoreError::io(format!("read {}", path.display()), e))?;
    Data::decode_blob(&buf).map_err(|e| {
        let detail = match e {
            StoreError::Invalid(InvalidInput::MetaBlob { detail, .. }) => detail,
            other => other.to_string(),
        };
        Corruption::Metastore {
            path,
            problem: MetaProblem::Undecodable { detail },
        }
        .into()
    })
}

/// Removes temp files a crash may have left beside the meta file.
pub(crate) fn clean_temps(dir: &Path) {
    let meta_dir = dir.join("meta");
    if let Ok(rd) = fs::read_dir(&meta_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("meta.tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Saves the meta atomically.
pub(crate) fn save(dir: &Path, data: &Data) -> Result<()> {
    atomic_write(&meta_path(dir), &data.encode_blob())
}

/// Writes `bytes` to `path` atomically and durably.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().ok_or_else(|| {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no parent");
        StoreError::io(format!("write {}", path.display()), e)
    })?;
    fs::create_dir_all(parent)
        .map_err(|e| StoreError::io(format!("create {}", parent.display()), e))?;
    let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io(format!("write {}", path.display()), e));
    }
    fsync_dir(parent)
}

/// fsyncs a directory so renames and creations inside it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("fsync dir {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_second_lock_refused() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
        let _lock = DirLock::acquire(dir.path())?;
        assert!(matches!(
            DirLock::acquire(dir.path()),
            Err(StoreError::Locked(_))
        ));
        let mut data = load(dir.path())?;
        data.max_shard_id = 42;
        save(dir.path(), &data)?;
        assert_eq!(load(dir.path())?, data);
        Ok(())
    }
}
