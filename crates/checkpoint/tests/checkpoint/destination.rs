//! Opening destinations from URLs and paths.

use snapshotd_checkpoint::{Destination, Error, S3Options};

#[test]
fn local_paths_and_file_urls() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a/b");
    let d = Destination::open(p.to_str().unwrap(), &S3Options::default()).unwrap();
    assert!(p.is_dir(), "created");
    assert_eq!(d.local_root(), Some(p.canonicalize().unwrap().as_path()));
    let url = format!("file://{}", p.display());
    let d2 = Destination::open(&url, &S3Options::default()).unwrap();
    assert_eq!(d2.local_root(), d.local_root());
    assert_eq!(d.path("checkpoints/LOCK").to_string(), "checkpoints/LOCK");
}

#[test]
fn bad_urls_are_refused() {
    for url in ["", "gs://bucket/x", "file://relative", "s3:///prefix"] {
        let e = Destination::open(url, &S3Options::default()).unwrap_err();
        assert!(matches!(e, Error::InvalidDestination { .. }), "{url}: {e}");
    }
}

#[cfg(feature = "s3")]
#[test]
fn s3_url_sets_prefix() {
    let opts = S3Options {
        endpoint: Some("http://127.0.0.1:1".into()),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        ..S3Options::default()
    };
    let d = Destination::open("s3://bucket/some/prefix/", &opts).unwrap();
    assert_eq!(d.prefix().to_string(), "some/prefix");
    assert_eq!(
        d.path("checkpoints/LOCK").to_string(),
        "some/prefix/checkpoints/LOCK"
    );
    assert_eq!(d.to_string(), "s3://bucket/some/prefix");
    assert!(d.local_root().is_none());
}

#[tokio::test]
async fn rooted_store_and_child_share_the_prefix() {
    use object_store::ObjectStoreExt;
    let mem: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::memory::InMemory::new());
    let d = Destination::from_store(
        mem.clone(),
        object_store::path::Path::from("a/b"),
        "mem://a/b",
    );
    d.rooted_store()
        .put(
            &object_store::path::Path::from("x.manifest"),
            bytes::Bytes::from_static(b"m").into(),
        )
        .await
        .unwrap();
    let got = mem
        .get(&object_store::path::Path::from("a/b/x.manifest"))
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"m");
    let c = d.child("restore/1");
    assert_eq!(
        c.path("checkpoints/LOCK").to_string(),
        "a/b/restore/1/checkpoints/LOCK"
    );
    assert_eq!(c.to_string(), "mem://a/b/restore/1");
}
