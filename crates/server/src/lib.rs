//! The snapshot service: serves the InfluxDB snapshotter protocol over any `Store`.
//!
//! Owns the accept loop, per-connection tasks, request dispatch, timeouts, connection limits
//! and graceful shutdown. It deliberately knows nothing about how a store keeps its data.
//!
//! [`SnapshotServer`] speaks the port-8088 protocol (so `influxd backup/restore -portable`
//! work against it); [`http`] is the operator API (`/write`, `/query`, `/ping`, `/metrics`)
//! over an [`snapshotd_store::AdminStore`]. [`bind`] holds the bind-address security policy.

mod admission;
pub mod bind;
mod bridge;
mod busy;
mod config;
mod conn;
mod decode;
mod error;
mod handlers;
pub mod http;
pub mod metrics;
mod reply;
mod request;
mod server;
pub mod tls;

pub use config::{ServerConfig, Timeouts};
pub use server::SnapshotServer;
