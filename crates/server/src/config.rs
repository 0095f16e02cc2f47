//! Tunables of the snapshot service: timeouts, connection limit, shutdown grace, size limits.

use std::time::Duration;

use snapshotd_wire::Limits;

/// Read/write deadlines for each phase of a connection: influx 1.6 sets none, so one
/// stalled peer could hold a connection forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed for the first (mux) byte after accept.
    pub mux: Duration,
    /// Longest silence while the request (header, JSON, type-6 payload) is being read.
    pub request: Duration,
    /// Time allowed for the whole request including a type-6 meta payload.
    pub payload: Duration,
    /// Longest silence while a type-7 tar is being uploaded.
    pub upload_idle: Duration,
    /// Longest time one chunk may take to be accepted by a (slow) reading client.
    pub write_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            mux: Duration::from_secs(30),
            request: Duration::from_secs(30),
            payload: Duration::from_secs(120),
            upload_idle: Duration::from_secs(120),
            write_idle: Duration::from_secs(120),
        }
    }
}

/// Configuration of a [`crate::SnapshotServer`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Phase timeouts.
    pub timeouts: Timeouts,
    /// Connections served at once. At the limit a new connection evicts the oldest one that
    /// has not sent a complete request yet; if every slot is serving, it is refused (with an
    /// in-band "busy" reply to clients that opt in to error replies).
    pub max_connections: usize,
    /// Connections one peer address may hold at once (same eviction rule per peer).
    pub max_connections_per_peer: usize,
    /// How long running streams may continue after shutdown was requested.
    pub shutdown_grace: Duration,
    /// Wire size limits (request JSON, type-6 payload), checked before allocation.
    pub limits: Limits,
    /// Size of the chunks streamed between the store thread and the socket, bytes.
    pub chunk_size: usize,
    /// Chunks buffered between the store thread and the socket (memory bound per stream).
    pub chunk_queue: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            timeouts: Timeouts::default(),
            max_connections: 256,
            max_connections_per_peer: 64,
            shutdown_grace: Duration::from_secs(30),
            limits: Limits::default(),
            chunk_size: 64 * 1024,
            chunk_queue: 4,
        }
    }
}
