//! `POST /write?db=&rp=&precision=`: line protocol into the store.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::{debug, warn};

use snapshotd_store::{Precision, StoreError};

use super::{HttpState, error_json, param, params, with_headers};

fn precision(p: Option<&str>) -> Option<Precision> {
    Some(match p.unwrap_or("") {
        "" | "n" | "ns" => Precision::Nanoseconds,
        "u" | "us" | "µ" => Precision::Microseconds,
        "ms" => Precision::Milliseconds,
        "s" => Precision::Seconds,
        "m" => Precision::Minutes,
        "h" => Precision::Hours,
        _ => return None,
    })
}

/// Handles `/write`.
pub(super) async fn write(
    State(state): State<HttpState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ps = params(raw.as_deref(), None);
    let Some(db) = param(&ps, "db")
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
    else {
        return error_json(StatusCode::BAD_REQUEST, "database is required");
    };
    let rp = param(&ps, "rp")
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    let Some(prec) = precision(param(&ps, "precision")) else {
        return error_json(StatusCode::BAD_REQUEST, "invalid precision");
    };
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() != b"identity")
    {
        return error_json(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "compressed request bodies are not supported; send plain line protocol",
        );
    }
    if body.is_empty() {
        return with_headers(StatusCode::NO_CONTENT.into_response());
    }
    let store = state.store.clone();
    let db2 = db.clone();
    let result =
        tokio::task::spawn_blocking(move || store.write_lines(&db2, rp.as_deref(), prec, &body))
            .await;
    match result {
        Ok(Ok(stats)) => {
            debug!(db, points = stats.points, shards = stats.shards, "write");
            metrics::counter!(crate::metrics::POINTS_WRITTEN).increment(stats.points);
            metrics::counter!(crate::metrics::HTTP_REQUESTS, "status" => "204").increment(1);
            with_headers(StatusCode::NO_CONTENT.into_response())
        }
        Ok(Err(e)) => {
            warn!(db, error = %e, "write rejected");
            let (status, msg) = match &e {
                StoreError::NotFound { what, name } => (
                    StatusCode::NOT_FOUND,
                    format!("{what} not found: \"{name}\""),
                ),
                StoreError::Invalid(m) => (StatusCode::BAD_REQUEST, m.clone()),
                StoreError::LimitExceeded { .. } => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            };
            error_json(status, &msg)
        }
        Err(e) => error_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("write task failed: {e}"),
        ),
    }
}
