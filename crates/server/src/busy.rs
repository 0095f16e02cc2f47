//! Refusing a connection when every slot is serving: a client that opted in to in-band error
//! replies is told "busy" (so it can retry and report the real cause); any other client gets
//! influx's silent close.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use crate::admission::BusySlot;
use crate::config::{ServerConfig, Timeouts};
use crate::decode;

/// Time a refused client gets to send the request that says whether it wants a busy reply.
pub(crate) const BUSY_READ: Duration = Duration::from_secs(2);

/// Most bytes read and discarded after the busy reply (so closing does not reset it away).
const BUSY_DRAIN: u64 = 256 * 1024;

/// The limits used to read a refused request: short deadlines, and no type-6 payload is
/// buffered (its size check fails after the opt-in is known, which is all that is needed).
fn refusal_config(config: &ServerConfig) -> ServerConfig {
    let mut c = config.clone();
    c.timeouts = Timeouts {
        mux: BUSY_READ,
        request: BUSY_READ,
        payload: BUSY_READ,
        upload_idle: BUSY_READ,
        write_idle: BUSY_READ,
    };
    c.limits.max_upload_size = 0;
    c
}

/// Reads the refused client's request and answers "busy" if it opted in, then closes.
pub(crate) async fn refuse<S>(mut stream: S, config: Arc<ServerConfig>, slot: BusySlot)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let short = refusal_config(&config);
    let mux = tokio::time::timeout(BUSY_READ, stream.read_u8()).await;
    if !matches!(mux, Ok(Ok(snapshotd_wire::MUX_HEADER))) {
        return;
    }
    let opted_in = match decode::read_request(&mut stream, &short).await {
        Ok(d) => d.error_replies,
        Err(f) => f.error_replies,
    };
    if !opted_in {
        debug!(
            limit = slot.limit(),
            "connection limit reached, closing (no opt-in to error replies)"
        );
        let _ = tokio::time::timeout(BUSY_READ, stream.shutdown()).await;
        return;
    }
    let Some(body) = crate::reply::busy(slot.limit()) else {
        return;
    };
    metrics::counter!(crate::metrics::BUSY_REPLIES).increment(1);
    debug!(
        limit = slot.limit(),
        "connection limit reached, told the client it is busy"
    );
    if tokio::time::timeout(BUSY_READ, stream.write_all(&body))
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::time::timeout(BUSY_READ, stream.shutdown()).await;
    let mut sink = tokio::io::sink();
    let mut limited = (&mut stream).take(BUSY_DRAIN);
    let _ = tokio::time::timeout(BUSY_READ, tokio::io::copy(&mut limited, &mut sink)).await;
}
