//! `POST /write?db=&rp=&precision=`: line protocol into the store.
//!
//! Bodies may be gzip-encoded (`Content-Encoding: gzip` or `x-gzip`), as influx 1.x accepts
//! them; the decompressed line protocol is bounded by the same limit as a plain body.

use std::io::{ErrorKind, Read};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::read::MultiGzDecoder;
use tracing::{debug, warn};

use snapshotd_store::{Precision, StoreError, WriteStats};

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

/// How a `/write` body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Plain line protocol.
    Identity,
    /// gzip (one or more members), as influx clients send it.
    Gzip,
}

/// The body's encoding from `Content-Encoding`; `None` when unsupported.
fn encoding(headers: &HeaderMap) -> Option<Encoding> {
    let Some(v) = headers.get(header::CONTENT_ENCODING) else {
        return Some(Encoding::Identity);
    };
    let v = v.to_str().ok()?.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("identity") {
        Some(Encoding::Identity)
    } else if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

/// Why a gzip body could not be decompressed.
#[derive(Debug, thiserror::Error)]
enum GunzipError {
    /// The decompressed body is larger than the limit.
    #[error("request body too large: decompressed body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in force, bytes.
        limit: usize,
    },
    /// The body is not valid gzip (bad header, corrupt data, truncated, bad checksum).
    #[error("invalid gzip body: {0}")]
    Corrupt(#[source] std::io::Error),
}

/// Decompresses `body`, never holding more than `limit` decompressed bytes.
fn gunzip_bounded(body: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    const FIRST: usize = 64 * 1024;
    let mut dec = MultiGzDecoder::new(body);
    let mut out: Vec<u8> = Vec::new();
    let mut len = 0;
    loop {
        if len == out.len() {
            if len >= limit {
                // Full: the body fits only if the stream ends exactly here.
                let mut probe = [0u8; 1];
                loop {
                    match dec.read(&mut probe) {
                        Ok(0) => {
                            out.truncate(len);
                            return Ok(out);
                        }
                        Ok(_) => return Err(GunzipError::TooLarge { limit }),
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(GunzipError::Corrupt(e)),
                    }
                }
            }
            // Grow geometrically, capped at the limit (exact, so capacity never exceeds it).
            let grow = len.max(FIRST).min(limit - len);
            out.reserve_exact(grow);
            out.resize(len + grow, 0);
        }
        match dec.read(out.get_mut(len..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(GunzipError::Corrupt(e)),
        }
    }
    out.truncate(len);
    Ok(out)
}

/// Why a `/write` failed on the blocking side.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// The gzip body could not be decompressed.
    #[error(transparent)]
    Gunzip(#[from] GunzipError),
    /// The store refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Handles `/write`.
pub(super) async fn write(
    State(state): State<HttpState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // A body over the limit as sent (or one that failed to arrive) in influx's error shape.
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return error_json(rejection.status(), &rejection.body_text()),
    };
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
    let Some(enc) = encoding(&headers) else {
        let got = headers
            .get(header::CONTENT_ENCODING)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return error_json(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("unsupported Content-Encoding \"{got}\"; supported: gzip, x-gzip, identity"),
        );
    };
    if body.is_empty() {
        return with_headers(StatusCode::NO_CONTENT.into_response());
    }
    let store = state.store.clone();
    let limit = state.max_body();
    let db2 = db.clone();
    // Decompression and the write both run off the async runtime.
    let result = tokio::task::spawn_blocking(move || -> Result<WriteStats, WriteError> {
        match enc {
            Encoding::Identity => Ok(store.write_lines(&db2, rp.as_deref(), prec, &body)?),
            Encoding::Gzip => {
                let lines = gunzip_bounded(&body, limit)?;
                drop(body);
                if lines.is_empty() {
                    return Ok(WriteStats::default());
                }
                Ok(store.write_lines(&db2, rp.as_deref(), prec, &lines)?)
            }
        }
    })
    .await;
    match result {
        Ok(Ok(stats)) => {
            debug!(db, points = stats.points, shards = stats.shards, "write");
            metrics::counter!(crate::metrics::POINTS_WRITTEN).increment(stats.points);
            metrics::counter!(crate::metrics::HTTP_REQUESTS, "status" => "204").increment(1);
            with_headers(StatusCode::NO_CONTENT.into_response())
        }
        Ok(Err(WriteError::Gunzip(e))) => {
            warn!(db, error = %e, "gzip body rejected");
            let status = match e {
                GunzipError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                GunzipError::Corrupt(_) => StatusCode::BAD_REQUEST,
            };
            error_json(status, &e.to_string())
        }
        Ok(Err(WriteError::Store(e))) => {
            let cause = crate::error::with_causes(&e);
            warn!(db, error = %cause, "write rejected");
            let (status, msg) = match &e {
                StoreError::NotFound { what, name } => (
                    StatusCode::NOT_FOUND,
                    format!("{what} not found: \"{name}\""),
                ),
                StoreError::Invalid(m) => (StatusCode::BAD_REQUEST, m.to_string()),
                StoreError::LimitExceeded { .. } => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, cause),
            };
            error_json(status, &msg)
        }
        Err(e) => error_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("write task failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod cause_tests {
    use super::*;

    #[test]
    fn a_disk_full_write_error_names_the_os_error() {
        let e = StoreError::io(
            "write db/autogen/1/wal",
            std::io::Error::from_raw_os_error(28),
        );
        let msg = crate::error::with_causes(&e);
        assert!(
            msg.starts_with("i/o error on write db/autogen/1/wal: "),
            "{msg}"
        );
        assert!(msg.contains("os error 28"), "{msg}");
    }
}
