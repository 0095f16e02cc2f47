//! `snapshotd` against a real etcd 3.4.23 on loopback, one test binary: `live` (the WAL of a
//! running member: dump, locks, point-in-time copies) and `pitr` (archive, base backups,
//! point-in-time restore). Run by `cargo xtask interop etcd`.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod live;
mod pitr;
