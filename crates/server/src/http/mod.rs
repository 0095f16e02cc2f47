//! The operator-facing HTTP API over an [`AdminStore`]: `/write`, `/query`, `/ping`, `/metrics`.
//!
//! Request and response shapes follow InfluxDB 1.x so its tools (curl recipes, the `influx`
//! CLI for the supported statements) work unchanged.
//!
//! [`serve_http`] serves plain HTTP; [`serve_https`] terminates TLS with a [`TlsConfig`] (the
//! snapshot port's certificate, key and optional client CA) before any request is read.

/// The InfluxQL subset `/query` accepts (the `snapshotd-influxql` crate).
pub use snapshotd_influxql as influxql;
mod query;
mod select;
mod write;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use snapshotd_store::AdminStore;

use crate::tls::TlsConfig;

/// Renders the metrics page (e.g. a Prometheus recorder handle's `render`).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// Default largest `/write` or `/query` body, bytes (influx's default `max-body-size`).
///
/// Applies to the body as sent and, for a gzip `/write`, to the decompressed line protocol.
pub const MAX_BODY: usize = 25_000_000;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    store: Arc<dyn AdminStore>,
    metrics: Option<MetricsRender>,
    max_body: usize,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("metrics", &self.metrics.is_some())
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// State over `store`; `metrics` renders `/metrics` (404 when `None`).
    pub fn new(store: Arc<dyn AdminStore>, metrics: Option<MetricsRender>) -> Self {
        HttpState {
            store,
            metrics,
            max_body: MAX_BODY,
        }
    }

    /// Sets the body limit in bytes (raw body, and decompressed `/write` body); default [`MAX_BODY`].
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The body limit in bytes.
    pub fn max_body(&self) -> usize {
        self.max_body
    }
}

/// The router with every route.
pub fn router(state: HttpState) -> Router {
    let limit = state.max_body;
    Router::new()
        .route("/ping", get(ping).head(ping))
        .route("/write", post(write::write))
        .route("/query", get(query::query).post(query::query))
        .route("/metrics", get(metrics_page))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves the HTTP API on `listener` until `shutdown` resolves.
pub async fn serve_http<S>(
    listener: TcpListener,
    state: HttpState,
    shutdown: S,
) -> std::io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    info!(local = %listener.local_addr()?, "HTTP API listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Longest time an HTTPS client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// TLS handshakes in progress at once; connections beyond are closed right after accept.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Serves the HTTP API over TLS on `listener` until `shutdown` resolves.
///
/// With a client CA in `tls`, a client without a certificate signed by it fails the handshake
/// and never reaches a handler. Handshakes run concurrently (bounded by
/// [`MAX_PENDING_HANDSHAKES`] and [`TLS_HANDSHAKE_TIMEOUT`]); shutdown is graceful as for
/// [`serve_http`]: no new connections, requests in flight finish.
pub async fn serve_https<S>(
    listener: TcpListener,
    state: HttpState,
    tls: TlsConfig,
    shutdown: S,
) -> std::io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    info!(
        local = %listener.local_addr()?,
        client_auth = tls.authenticates_clients(),
        "HTTPS API listening"
    );
    let listener = HttpsListener::new(listener, tls)?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// TLS streams whose handshake completed, handed to `axum::serve` as its listener.
///
/// A background task accepts TCP connections and runs each handshake in its own task, so a
/// slow or hostile client never holds up the others. Dropping the listener (axum does so on
/// shutdown) stops the accept task, closes the socket and abandons pending handshakes.
struct HttpsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor: JoinHandle<()>,
}

impl HttpsListener {
    fn new(listener: TcpListener, tls: TlsConfig) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_tls(listener, tls, tx));
        Ok(HttpsListener {
            local,
            ready,
            acceptor,
        })
    }
}

impl Drop for HttpsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task only ends once this listener is dropped; never yield a stream.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Accepts TCP connections and hands each completed TLS handshake to `ready`.
async fn accept_tls(
    listener: TcpListener,
    tls: TlsConfig,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let (tcp, peer) = tokio::select! {
            () = ready.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: log and keep serving after a short pause.
                    warn!(error = %e, "HTTPS accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&pending).try_acquire_owned() else {
            debug!(%peer, "too many TLS handshakes in progress, closing");
            continue;
        };
        let tls = tls.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let handshake = tokio::select! {
                () = ready.closed() => return,
                r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(tcp)) => r,
            };
            drop(permit);
            match handshake {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => {
                    crate::metrics::error("http", "tls");
                    warn!(%peer, error = %e, "HTTPS TLS handshake failed");
                }
                Err(_) => {
                    crate::metrics::error("http", "timeout");
                    info!(%peer, "HTTPS TLS handshake timed out");
                }
            }
        });
    }
}

async fn ping() -> Response {
    with_headers(StatusCode::NO_CONTENT.into_response())
}

async fn metrics_page(axum::extract::State(state): axum::extract::State<HttpState>) -> Response {
    match &state.metrics {
        Some(render) => {
            let mut r = render().into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        None => error_json(StatusCode::NOT_FOUND, "metrics exporter not installed"),
    }
}

/// Adds influx's identification headers.
fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("X-Influxdb-Build", HeaderValue::from_static("OSS"));
    h.insert(
        "X-Influxdb-Version",
        HeaderValue::from_static(concat!("snapshotd-", env!("CARGO_PKG_VERSION"))),
    );
    r
}

/// `{"error":"..."}` with `status`, as influx answers failed requests.
fn error_json(status: StatusCode, msg: &str) -> Response {
    metrics::counter!(crate::metrics::HTTP_REQUESTS, "status" => status.as_str().to_string())
        .increment(1);
    json(status, &serde_json::json!({ "error": msg }))
}

/// A JSON response (keys in the order `body` serializes them).
fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    let mut r = (status, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    with_headers(r)
}

/// Parameters from the URL query string and, for form posts, the body (body wins).
fn params(raw_query: Option<&str>, form_body: Option<&[u8]>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = raw_query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    if let Some(b) = form_body {
        out.extend(form_urlencoded::parse(b).into_owned());
    }
    out
}

/// The last value of `key` in `params`.
fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
