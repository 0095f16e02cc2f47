//! Integration tests of `snapshotd-dest`: opening destinations from URLs and paths, S3 settings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use snapshotd_dest::{Destination, Error, S3Options};

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

#[test]
fn s3_options_read_role_credential_sources() {
    let env = |k: &str| {
        Some(
            match k {
                "AWS_WEB_IDENTITY_TOKEN_FILE" => "/var/run/token",
                "AWS_ROLE_ARN" => "arn:aws:iam::123456789012:role/backup",
                "AWS_ROLE_SESSION_NAME" => "snapshotd",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" => "/v2/credentials/x",
                "AWS_ACCESS_KEY_ID" => "",
                _ => return None,
            }
            .to_owned(),
        )
    };
    let o = S3Options::from_lookup(env);
    assert_eq!(o.web_identity_token_file.as_deref(), Some("/var/run/token"));
    assert_eq!(
        o.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/backup")
    );
    assert_eq!(o.role_session_name.as_deref(), Some("snapshotd"));
    assert_eq!(
        o.container_credentials_relative_uri.as_deref(),
        Some("/v2/credentials/x")
    );
    assert_eq!(o.access_key_id, None, "empty values count as unset");
    assert_eq!(
        (o.sts_endpoint, o.container_credentials_full_uri),
        (None, None)
    );
}

/// With a web identity token and a role (EKS IRSA) and no access key, requests are signed
/// with credentials from AssumeRoleWithWebIdentity: the configured STS endpoint is called
/// (here a bare TCP listener, so the exchange itself fails).
#[cfg(feature = "s3")]
#[tokio::test]
async fn web_identity_credentials_are_fetched_from_sts() {
    let sts = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    sts.set_nonblocking(true).unwrap();
    let port = sts.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "header.payload.signature").unwrap();
    let opts = S3Options {
        endpoint: Some("http://127.0.0.1:1".into()),
        web_identity_token_file: Some(token.display().to_string()),
        role_arn: Some("arn:aws:iam::123456789012:role/backup".into()),
        sts_endpoint: Some(format!("https://127.0.0.1:{port}")),
        ..S3Options::default()
    };
    let d = Destination::open("s3://bucket/p", &opts).unwrap();
    let (store, path) = (d.store(), d.path("x"));
    let get = object_store::ObjectStoreExt::get(store.as_ref(), &path);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), get).await;
    assert!(sts.accept().is_ok(), "the STS endpoint was never contacted");
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

/// An endpoint that accepts connections and never answers (a blackhole) fails a request
/// with `timeout` set instead of hanging for the client's default minutes.
#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_timeout_bounds_a_silent_endpoint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let opts = S3Options {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        timeout: Some(std::time::Duration::from_millis(500)),
        ..S3Options::default()
    };
    let d = Destination::open("s3://bucket/p", &opts).unwrap();
    let (store, path) = (d.store(), d.path("x"));
    let get = object_store::ObjectStoreExt::get(store.as_ref(), &path);
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), get).await;
    let err = r
        .expect("the request did not give up on its own")
        .unwrap_err();
    assert!(err.to_string().contains("GET"), "{err}");
}
