//! Integration tests of the snapshot service and HTTP API over an in-memory store double.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod builtin;
mod captures;
mod common;
mod exhaustion;
mod extensions;
mod hostile;
mod http;
mod memstore;
mod metrics;
mod requests;
mod tls;
