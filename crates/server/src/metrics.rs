//! Metric names and helpers (the `metrics` facade; the binary installs an exporter).

/// Requests served, label `type` (request type name).
pub const REQUESTS: &str = "snapshotd_requests_total";
/// Requests that failed, labels `type` and `reason`.
pub const ERRORS: &str = "snapshotd_request_errors_total";
/// Bytes sent to clients (tar streams, meta frames, info, id maps).
pub const BYTES_SENT: &str = "snapshotd_bytes_sent_total";
/// Bytes received from clients (meta payloads and uploaded tars).
pub const BYTES_RECEIVED: &str = "snapshotd_bytes_received_total";
/// Connections currently being served.
pub const ACTIVE_CONNECTIONS: &str = "snapshotd_active_connections";
/// Connections refused because every slot was serving (closed, or told "busy" in-band).
pub const REJECTED_CONNECTIONS: &str = "snapshotd_connections_rejected_total";
/// Connections without a complete request closed to make room for a newer connection.
pub const EVICTED_CONNECTIONS: &str = "snapshotd_connections_evicted_total";
/// In-band "busy" replies sent to refused clients that opted in to error replies.
pub const BUSY_REPLIES: &str = "snapshotd_busy_replies_total";
/// HTTP requests, labels `path` and `status`.
pub const HTTP_REQUESTS: &str = "snapshotd_http_requests_total";
/// Points written over HTTP `/write`.
pub const POINTS_WRITTEN: &str = "snapshotd_points_written_total";

/// Counts one failed request of `kind` for `reason`.
pub(crate) fn error(kind: &'static str, reason: &'static str) {
    metrics::counter!(ERRORS, "type" => kind, "reason" => reason).increment(1);
}

/// Adds `n` bytes to the sent counter.
pub(crate) fn sent(n: u64) {
    metrics::counter!(BYTES_SENT).increment(n);
}

/// Adds `n` bytes to the received counter.
pub(crate) fn received(n: u64) {
    metrics::counter!(BYTES_RECEIVED).increment(n);
}

/// Decrements the active-connections gauge when dropped.
pub(crate) struct ActiveGuard;

impl ActiveGuard {
    /// Increments the gauge.
    pub(crate) fn new() -> Self {
        metrics::gauge!(ACTIVE_CONNECTIONS).increment(1.0);
        ActiveGuard
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        metrics::gauge!(ACTIVE_CONNECTIONS).decrement(1.0);
    }
}
