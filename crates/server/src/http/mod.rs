//! The operator-facing HTTP API over an [`AdminStore`]: `/write`, `/query`, `/ping`, `/metrics`.
//!
//! Request and response shapes follow InfluxDB 1.x so its tools (curl recipes, the `influx`
//! CLI for the supported statements) work unchanged.

pub mod influxql;
mod query;
mod write;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tracing::info;

use snapshotd_store::AdminStore;

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
