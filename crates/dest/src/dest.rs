//! Opening a destination (local directory, `file://`, `s3://bucket/prefix`, in-memory).

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::{Path, PathPart};

use crate::error::{Error, Result};

/// S3 connection settings. Build explicitly, or with [`S3Options::from_lookup`] over the
/// caller's environment (this library reads no environment variables itself).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint override for S3-compatible servers (e.g. `http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials.
    pub session_token: Option<String>,
    /// Permit plain `http://` endpoints. Implied for loopback endpoints.
    pub allow_http: bool,
    /// Web identity token file for AssumeRoleWithWebIdentity (EKS IRSA), used with
    /// `role_arn` when no access key is given.
    pub web_identity_token_file: Option<String>,
    /// Role to assume with the web identity token.
    pub role_arn: Option<String>,
    /// Session name for the assumed role (default `WebIdentitySession`).
    pub role_session_name: Option<String>,
    /// STS endpoint for the token exchange (default `https://sts.<region>.amazonaws.com`).
    pub sts_endpoint: Option<String>,
    /// ECS task role: the credentials path under `http://169.254.170.2`.
    pub container_credentials_relative_uri: Option<String>,
    /// EKS Pod Identity: the full credentials URI, used with `container_authorization_token_file`.
    pub container_credentials_full_uri: Option<String>,
    /// EKS Pod Identity: the file holding the authorization token.
    pub container_authorization_token_file: Option<String>,
    /// Caps how long one S3 request (at most 30 s) and its retries (at most 180 s, the
    /// client's defaults) may take, so an unresponsive endpoint fails the run in time.
    pub timeout: Option<std::time::Duration>,
}

impl S3Options {
    /// Settings from the standard AWS variables, looked up through `lookup` (empty values
    /// count as unset): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`),
    /// `AWS_ALLOW_HTTP` (`true`/`1`), and the role credential sources:
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`,
    /// `AWS_ENDPOINT_URL_STS` (EKS IRSA), `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS),
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`
    /// (EKS Pod Identity). With none of them, the EC2 instance profile is used. The binary
    /// passes `|k| std::env::var(k).ok()`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |k: &str| lookup(k).filter(|v| !v.is_empty());
        Self {
            endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            allow_http: var("AWS_ALLOW_HTTP")
                .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
            web_identity_token_file: var("AWS_WEB_IDENTITY_TOKEN_FILE"),
            role_arn: var("AWS_ROLE_ARN"),
            role_session_name: var("AWS_ROLE_SESSION_NAME"),
            sts_endpoint: var("AWS_ENDPOINT_URL_STS"),
            container_credentials_relative_uri: var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            container_credentials_full_uri: var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            container_authorization_token_file: var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            timeout: None,
        }
    }

    /// The role credential settings as object_store configuration keys.
    #[cfg(feature = "s3")]
    fn credential_sources(&self) -> Vec<(object_store::aws::AmazonS3ConfigKey, &str)> {
        use object_store::aws::AmazonS3ConfigKey as K;
        [
            (K::WebIdentityTokenFile, &self.web_identity_token_file),
            (K::RoleArn, &self.role_arn),
            (K::RoleSessionName, &self.role_session_name),
            (K::StsEndpoint, &self.sts_endpoint),
            (
                K::ContainerCredentialsRelativeUri,
                &self.container_credentials_relative_uri,
            ),
            (
                K::ContainerCredentialsFullUri,
                &self.container_credentials_full_uri,
            ),
            (
                K::ContainerAuthorizationTokenFile,
                &self.container_authorization_token_file,
            ),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    #[cfg(feature = "s3")]
    fn http_allowed(&self) -> bool {
        self.allow_http
            || self.endpoint.as_deref().is_some_and(|e| {
                let rest = e.strip_prefix("http://").unwrap_or("");
                rest.starts_with("127.")
                    || rest.starts_with("localhost")
                    || rest.starts_with("[::1]")
            })
    }
}

/// Applies [`S3Options::timeout`]: a request gives up after `t` (at most 30 s, connecting
/// after at most 5 s) and its retries after `t` (at most 180 s).
#[cfg(feature = "s3")]
fn with_timeout(
    b: object_store::aws::AmazonS3Builder,
    t: std::time::Duration,
    allow_http: bool,
) -> object_store::aws::AmazonS3Builder {
    use std::time::Duration;
    // These options replace the builder's, `allow_http` included.
    let client = object_store::ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout(t.min(Duration::from_secs(30)))
        .with_connect_timeout(t.min(Duration::from_secs(5)));
    let retry = object_store::RetryConfig {
        retry_timeout: t.min(Duration::from_secs(180)),
        ..Default::default()
    };
    b.with_client_options(client).with_retry(retry)
}

/// Where a job keeps its files: an object store plus a prefix inside it.
#[derive(Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// For local destinations: the directory that `prefix` is relative to.
    local_root: Option<PathBuf>,
    display: String,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("url", &self.display)
            .finish()
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Destination {
    /// Opens `s3://bucket/prefix`, `file:///path`, or a plain local path (created if
    /// missing). S3 settings come from `s3` (ignored for local destinations).
    pub fn open(url: &str, s3: &S3Options) -> Result<Self> {
        if let Some(rest) = url.strip_prefix("s3://") {
            return Self::s3(url, rest, s3);
        }
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(Error::InvalidDestination {
                    url: url.into(),
                    reason: "file:// URLs need an absolute path (file:///dir)".into(),
                });
            }
            return Self::local(rest);
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(Error::InvalidDestination {
                url: url.into(),
                reason: format!("unsupported scheme {scheme:?} (use a path, file:// or s3://)"),
            });
        }
        if url.is_empty() {
            return Err(Error::InvalidDestination {
                url: url.into(),
                reason: "empty path".into(),
            });
        }
        Self::local(url)
    }

    /// A local directory (created if missing).
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let root = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&root).map_err(|e| {
            Error::InvalidDestination {
                url: dir.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            store: Arc::new(store),
            prefix: Path::default(),
            display: root.display().to_string(),
            local_root: Some(root),
        })
    }

    /// A fresh in-memory store (tests).
    pub fn memory() -> Self {
        Self::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            Path::default(),
            "memory://",
        )
    }

    /// Any object store with a prefix. Locking needs `PutMode::Create` and
    /// `PutMode::Update` support from the store.
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: Path, display: &str) -> Self {
        Self {
            store,
            prefix,
            local_root: None,
            display: display.to_string(),
        }
    }

    #[cfg(feature = "s3")]
    fn s3(url: &str, rest: &str, opts: &S3Options) -> Result<Self> {
        use object_store::aws::AmazonS3Builder;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::InvalidDestination {
                url: url.into(),
                reason: "missing bucket name (s3://bucket/prefix)".into(),
            });
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(opts.region.clone().unwrap_or_else(|| "us-east-1".into()))
            .with_allow_http(opts.http_allowed());
        if let Some(e) = &opts.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = &opts.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &opts.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        if let Some(t) = &opts.session_token {
            b = b.with_token(t);
        }
        for (key, value) in opts.credential_sources() {
            b = b.with_config(key, value);
        }
        if let Some(t) = opts.timeout {
            b = with_timeout(b, t, opts.http_allowed());
        }
        let store = b.build().map_err(|e| Error::InvalidDestination {
            url: url.into(),
            reason: e.to_string(),
        })?;
        let prefix =
            Path::parse(prefix.trim_matches('/')).map_err(|e| Error::InvalidDestination {
                url: url.into(),
                reason: e.to_string(),
            })?;
        Ok(Self::from_store(
            Arc::new(store),
            prefix,
            url.trim_end_matches('/'),
        ))
    }

    #[cfg(not(feature = "s3"))]
    fn s3(url: &str, _rest: &str, _opts: &S3Options) -> Result<Self> {
        Err(Error::InvalidDestination {
            url: url.into(),
            reason: "built without the `s3` feature".into(),
        })
    }

    /// The same store with `rel` appended to the prefix (e.g. a separate checkpoint
    /// namespace for a restore: `dest.child("restore/<id>")`).
    pub fn child(&self, rel: &str) -> Self {
        let prefix = self.path(rel);
        let display = format!(
            "{}/{}",
            self.display.trim_end_matches('/'),
            rel.trim_matches('/')
        );
        Self {
            store: self.store.clone(),
            prefix,
            local_root: self.local_root.clone(),
            display,
        }
    }

    /// The store re-rooted at the prefix (an object_store `PrefixStore`), for code that
    /// wants plain relative names such as `20260101T000000Z.manifest`.
    pub fn rooted_store(&self) -> Arc<dyn ObjectStore> {
        if self.prefix.parts().next().is_none() {
            return self.store.clone();
        }
        Arc::new(object_store::prefix::PrefixStore::new(
            self.store.clone(),
            self.prefix.clone(),
        ))
    }

    /// The object store (write backup files through it too).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The prefix inside the store under which everything of this destination lives.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The local directory of a local destination.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    /// The path of `rel` (a `/`-separated relative name) under the prefix.
    pub fn path(&self, rel: &str) -> Path {
        Path::from_iter(
            self.prefix
                .parts()
                .chain(rel.split('/').filter(|p| !p.is_empty()).map(PathPart::from)),
        )
    }

    /// The path of `p` relative to the prefix, or `None` if it lies outside it.
    pub fn relative(&self, p: &Path) -> Option<String> {
        let parts: Vec<String> = p
            .prefix_match(&self.prefix)?
            .map(|x| x.as_ref().to_string())
            .collect();
        Some(parts.join("/"))
    }

    /// The local filesystem path of `rel` for local destinations.
    pub fn local_file(&self, rel: &str) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        let mut p = root.clone();
        for part in self.prefix.parts() {
            p.push(part.as_ref());
        }
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            p.push(part);
        }
        Some(p)
    }
}
