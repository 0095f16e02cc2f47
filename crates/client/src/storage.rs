//! The backup location: a flat namespace of named objects behind `object_store`.
//!
//! A local directory today; any other `ObjectStore` (S3 through the checkpoint crate) plugs
//! in through [`Storage::from_store`] without a second code path.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use tokio::io::AsyncRead;
use tokio_util::io::StreamReader;

use crate::error::{ClientError, Result};

/// Bytes buffered per open writer before a multipart upload starts (S3's minimum part size).
pub const WRITE_BUFFER: usize = 5 * 1024 * 1024;
/// Parts of one writer in flight at once.
const WRITE_CONCURRENCY: usize = 2;

/// A backup location holding the files of one or more portable backups.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    display: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("display", &self.display)
            .finish()
    }
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Object name relative to the location.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

impl Storage {
    /// A local directory; created (with parents) when `create` is set.
    pub fn local(dir: &std::path::Path, create: bool) -> Result<Self> {
        if create {
            std::fs::create_dir_all(dir)
                .map_err(|e| ClientError::io(format!("create {}", dir.display()), e))?;
        } else if !dir.is_dir() {
            return Err(ClientError::NotADirectory {
                path: dir.display().to_string(),
            });
        }
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| ClientError::storage(dir.display(), e))?;
        Ok(Storage {
            store: Arc::new(store),
            display: dir.display().to_string(),
        })
    }

    /// Any object store; `display` names it in messages.
    pub fn from_store(store: Arc<dyn ObjectStore>, display: impl Into<String>) -> Self {
        Storage {
            store,
            display: display.into(),
        }
    }

    /// Human-readable name of the location.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// A streaming writer for `name`. The object becomes visible only when the writer is shut
    /// down successfully; aborting it leaves nothing under `name`.
    pub fn writer(&self, name: &str) -> BufWriter {
        BufWriter::with_capacity(Arc::clone(&self.store), Path::from(name), WRITE_BUFFER)
            .with_max_concurrency(WRITE_CONCURRENCY)
    }

    /// Writes a small object atomically; fails if `name` already exists.
    pub async fn put_new(&self, name: &str, data: Bytes) -> Result<()> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.store
            .put_opts(&Path::from(name), PutPayload::from(data), opts)
            .await
            .map(|_| ())
            .map_err(|e| ClientError::storage(self.path_of(name), e))
    }

    /// Writes a small object atomically, replacing any existing one.
    pub async fn put(&self, name: &str, data: Bytes) -> Result<()> {
        self.store
            .put(&Path::from(name), PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(|e| ClientError::storage(self.path_of(name), e))
    }

    /// Size of `name`, or `None` if it does not exist.
    pub async fn size(&self, name: &str) -> Result<Option<u64>> {
        match self.store.head(&Path::from(name)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ClientError::storage(self.path_of(name), e)),
        }
    }

    /// Reads a whole object of at most `limit` bytes.
    pub async fn get_bounded(&self, name: &str, limit: u64) -> Result<Bytes> {
        let size = self
            .size(name)
            .await?
            .ok_or_else(|| ClientError::MissingFile {
                path: self.path_of(name),
            })?;
        if size > limit {
            return Err(ClientError::FileTooLarge {
                path: self.path_of(name),
                size,
                limit,
            });
        }
        let got = self
            .store
            .get(&Path::from(name))
            .await
            .map_err(|e| ClientError::storage(self.path_of(name), e))?;
        got.bytes()
            .await
            .map_err(|e| ClientError::storage(self.path_of(name), e))
    }

    /// A streaming reader over an object.
    pub async fn reader(&self, name: &str) -> Result<impl AsyncRead + Send + Unpin + 'static> {
        let got = self
            .store
            .get(&Path::from(name))
            .await
            .map_err(|e| ClientError::storage(self.path_of(name), e))?;
        let stream = got
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()));
        Ok(StreamReader::new(stream.boxed()))
    }

    /// A reader for blocking threads: the file itself on local storage (no per-chunk task
    /// hand-offs), the bridged stream elsewhere. Call from within a tokio runtime.
    pub async fn blocking_reader(&self, name: &str) -> Result<Box<dyn std::io::Read + Send>> {
        let got = self
            .store
            .get(&Path::from(name))
            .await
            .map_err(|e| ClientError::storage(self.path_of(name), e))?;
        let range = got.range.clone();
        match got.payload {
            GetResultPayload::File(mut file, _) => {
                use std::io::{Read, Seek, SeekFrom};
                file.seek(SeekFrom::Start(range.start))
                    .map_err(|e| ClientError::io(format!("read {}", self.path_of(name)), e))?;
                Ok(Box::new(file.take(range.end.saturating_sub(range.start))))
            }
            GetResultPayload::Stream(stream) => {
                let stream = stream.map_err(|e| std::io::Error::other(e.to_string()));
                Ok(Box::new(tokio_util::io::SyncIoBridge::new(
                    StreamReader::new(stream.boxed()),
                )))
            }
        }
    }

    /// The objects directly in the location (no sub-directories), sorted by name.
    pub async fn list(&self) -> Result<Vec<Entry>> {
        let res = self
            .store
            .list_with_delimiter(None)
            .await
            .map_err(|e| ClientError::storage(&self.display, e))?;
        let mut out: Vec<Entry> = res
            .objects
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                Some(Entry { name, size: m.size })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes an object; a missing one is fine.
    pub async fn delete(&self, name: &str) -> Result<()> {
        match self.store.delete(&Path::from(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(ClientError::storage(self.path_of(name), e)),
        }
    }

    /// `location/name` for messages.
    pub fn path_of(&self, name: &str) -> String {
        format!("{}/{}", self.display.trim_end_matches('/'), name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writer_publishes_only_on_shutdown_and_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::local(dir.path(), false).unwrap();
        let mut w = s.writer("a.bin");
        w.write_all(b"partial").await.unwrap();
        assert_eq!(s.size("a.bin").await.unwrap(), None);
        w.abort().await.unwrap();
        assert_eq!(s.size("a.bin").await.unwrap(), None);

        let mut w = s.writer("a.bin");
        w.write_all(b"complete").await.unwrap();
        w.shutdown().await.unwrap();
        assert_eq!(s.size("a.bin").await.unwrap(), Some(8));
        let mut r = s.reader("a.bin").await.unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"complete");
        assert_eq!(
            s.list().await.unwrap(),
            vec![Entry {
                name: "a.bin".into(),
                size: 8
            }]
        );
    }

    #[tokio::test]
    async fn blocking_reader_reads_the_whole_object() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::local(dir.path(), false).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        s.put_new("big", Bytes::from(data.clone())).await.unwrap();
        let mut r = s.blocking_reader("big").await.unwrap();
        let got = tokio::task::spawn_blocking(move || {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut v).unwrap();
            v
        })
        .await
        .unwrap();
        assert_eq!(got, data);
        assert!(s.blocking_reader("absent").await.is_err());
    }

    #[tokio::test]
    async fn put_new_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::local(dir.path(), false).unwrap();
        s.put_new("m", Bytes::from_static(b"1")).await.unwrap();
        assert!(s.put_new("m", Bytes::from_static(b"2")).await.is_err());
        assert_eq!(&s.get_bounded("m", 10).await.unwrap()[..], b"1");
        assert!(s.get_bounded("m", 0).await.is_err());
    }
}
