//! The snapshot service: serves the InfluxDB snapshotter protocol over any `Store`.
//!
//! Owns the accept loop, per-connection tasks, request dispatch, timeouts, connection limits
//! and graceful shutdown. It deliberately knows nothing about how a store keeps its data.
