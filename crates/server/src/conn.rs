//! One connection: mux byte, request, dispatch, log line, close.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use snapshotd_store::{Store, StoreError};

use crate::admission::{Phase, Slot};
use crate::config::ServerConfig;
use crate::decode::{self, DecodeFailure, Decoded};
use crate::error::RequestError;
use crate::handlers;

/// The snapshotter's mux byte.
const MUX_SNAPSHOTTER: u8 = 0x03;

/// Serves one connection to completion and closes it; `slot` is its admission entry.
pub(crate) async fn handle<S>(
    mut stream: S,
    store: Arc<dyn Store>,
    config: Arc<ServerConfig>,
    cancel: CancellationToken,
    slot: &Slot,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let started = Instant::now();
    let mut kind = "none";
    let result = serve_one(&mut stream, &store, &config, &cancel, slot, &mut kind).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(out) => info!(
            request = kind,
            sent = out.sent,
            received = out.received,
            files = out.files,
            elapsed_ms,
            "request served"
        ),
        Err(e) => {
            crate::metrics::error(kind, e.reason());
            match &e {
                RequestError::Shutdown => debug!("closed idle connection at shutdown"),
                RequestError::Evicted => {
                    debug!(
                        elapsed_ms,
                        "evicted at the connection limit before a request"
                    )
                }
                RequestError::Timeout(_) | RequestError::BadMux(_) => {
                    info!(request = kind, error = %e, elapsed_ms, "connection closed")
                }
                RequestError::Store {
                    source: StoreError::NotFound { .. },
                    ..
                } => info!(request = kind, error = %e, "request failed"),
                _ => warn!(
                    request = kind,
                    error = %e,
                    error_chain = %crate::error::causes(&e),
                    bytes_sent = e.bytes_sent(),
                    elapsed_ms,
                    "request failed"
                ),
            }
        }
    }
    // Orderly close (FIN) so clients reading until EOF see the end of the reply.
    let _ = tokio::time::timeout(config.timeouts.write_idle, stream.shutdown()).await;
}

async fn serve_one<S>(
    stream: &mut S,
    store: &Arc<dyn Store>,
    config: &ServerConfig,
    cancel: &CancellationToken,
    slot: &Slot,
    kind: &mut &'static str,
) -> Result<handlers::Outcome, RequestError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mux = tokio::select! {
        () = cancel.cancelled() => return Err(RequestError::Shutdown),
        () = slot.evicted().cancelled() => return Err(RequestError::Evicted),
        r = tokio::time::timeout(config.timeouts.mux, stream.read_u8()) => match r {
            Err(_) => return Err(RequestError::Timeout("the mux byte")),
            Ok(Err(source)) => return Err(RequestError::Io { op: "read mux byte", source }),
            Ok(Ok(b)) => b,
        },
    };
    if mux != MUX_SNAPSHOTTER {
        return Err(RequestError::BadMux(mux));
    }
    slot.enter(Phase::Reading);
    let decoded = tokio::select! {
        () = cancel.cancelled() => return Err(RequestError::Shutdown),
        () = slot.evicted().cancelled() => return Err(RequestError::Evicted),
        r = decode::read_request(stream, config) => r,
    };
    slot.enter(Phase::Serving);
    let Decoded {
        request,
        error_replies,
    } = match decoded {
        Ok(d) => d,
        Err(DecodeFailure {
            error,
            error_replies,
        }) => {
            if error_replies && let Some(body) = crate::reply::error_reply(&error) {
                reply_then_drain(stream, &body, config).await;
            }
            return Err(error);
        }
    };
    *kind = request.kind();
    tracing::Span::current().record("request", *kind);
    metrics::counter!(crate::metrics::REQUESTS, "type" => *kind).increment(1);
    debug!(request = ?request, "request decoded");
    let result = handlers::dispatch(stream, store, config, request, error_replies).await;
    if let Err(e) = &result
        && error_replies
        && e.bytes_sent() == 0
        && let Some(body) = crate::reply::error_reply(e)
    {
        reply_then_drain(stream, &body, config).await;
    }
    result
}

/// Most bytes read and discarded after an error reply.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Sends an in-band error reply, half-closes, then reads and discards what the client is
/// still sending (bounded in bytes and by the request timeout), so that closing with unread
/// data does not reset the connection and destroy the reply. Best effort: the error is
/// logged by the caller either way.
async fn reply_then_drain<S>(stream: &mut S, body: &[u8], config: &ServerConfig)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if handlers::write_all(stream, body, config).await.is_err() {
        return;
    }
    if tokio::time::timeout(config.timeouts.write_idle, stream.shutdown())
        .await
        .is_err()
    {
        return;
    }
    let mut sink = tokio::io::sink();
    let mut limited = stream.take(DRAIN_LIMIT);
    let _ = tokio::time::timeout(
        config.timeouts.request,
        tokio::io::copy(&mut limited, &mut sink),
    )
    .await;
}
