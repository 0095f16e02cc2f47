//! Storage failures: a store wrapper that fails writes to chosen paths.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use snapshotd_checkpoint::{Checkpoint, Destination, Error, UnitRecord};

use crate::scenarios::{clock, opts};

/// Fails every put whose path contains the configured substring.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn ObjectStore>,
    fail: Mutex<Option<String>>,
}

impl Flaky {
    fn set(&self, pattern: Option<&str>) {
        *self.fail.lock().unwrap() = pattern.map(str::to_string);
    }

    fn check(&self, p: &Path) -> object_store::Result<()> {
        match self.fail.lock().unwrap().as_deref() {
            Some(pat) if p.as_ref().contains(pat) => Err(object_store::Error::Generic {
                store: "flaky",
                source: "injected failure".into(),
            }),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "flaky({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn flaky() -> (Arc<Flaky>, Destination) {
    let f = Arc::new(Flaky {
        inner: Arc::new(object_store::memory::InMemory::new()),
        fail: Mutex::new(None),
    });
    let dest = Destination::from_store(f.clone(), Path::default(), "flaky://");
    (f, dest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_flush_stops_the_job_and_loses_only_unflushed_units() {
    let (f, dest) = flaky();
    let c = clock();
    let a = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .unwrap();
    a.record(UnitRecord::new("kept", 1, "x")).await.unwrap();
    a.flush().await.unwrap();
    f.set(Some("checkpoints/data/"));
    a.record(UnitRecord::new("lost", 1, "x")).await.unwrap();
    let err = a.flush().await.unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(a.health().is_err(), "sticky");
    assert!(matches!(
        a.record_now(UnitRecord::new("z", 1, "x")),
        Err(Error::Stopped(_))
    ));
    assert!(a.finish().await.is_err());
    f.set(None);
    // The failed holder stopped refreshing without releasing: its lease must run out.
    assert!(matches!(
        Checkpoint::open(&dest, opts(c.clone(), None)).await,
        Err(Error::Locked { .. })
    ));
    c.advance(Duration::from_secs(31));
    let b = Checkpoint::open(&dest, opts(c, None)).await.unwrap();
    assert!(b.done("kept").is_some());
    assert!(
        b.done("lost").is_none(),
        "unflushed work is redone, never invented"
    );
    b.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_refresh_errors_are_retried_until_the_lease_runs_out() {
    let (f, dest) = flaky();
    let c = clock();
    let a = Checkpoint::open(&dest, opts(c.clone(), None))
        .await
        .unwrap();
    f.set(Some("checkpoints/LOCK"));
    let err = a.lock().refresh_now().await.unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err}");
    assert!(
        a.health().is_ok(),
        "a failed refresh within the lease is not fatal"
    );
    f.set(None);
    a.lock().refresh_now().await.unwrap();
    f.set(Some("checkpoints/LOCK"));
    c.advance(Duration::from_secs(31));
    let err = a.lock().refresh_now().await.unwrap_err();
    assert!(matches!(err, Error::Deposed { .. }), "{err}");
    assert!(a.health().is_err());
    f.set(None);
    assert!(a.finish().await.is_err());
}
