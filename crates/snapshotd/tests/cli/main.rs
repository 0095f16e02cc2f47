//! `snapshotd` as a user runs it, one test binary with a module per theme (fewer link steps
//! on CI), `wal` included. Interop suites are one binary per peer (`interop_etcd`,
//! `interop_influx`, `interop_s3`), run by `cargo xtask interop`.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../client/tests/fake/mod.rs"]
mod fake;
#[path = "../support/mod.rs"]
mod support;

mod backup;
mod encrypted;
mod errors;
mod forget;
mod points;
mod resume;
mod serve_launcher;
mod wal;
