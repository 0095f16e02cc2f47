//! A write-ahead log byte-compatible with etcd 3.4's `wal` package.
//!
//! Owns segments, framing, the CRC-32C chain, OFD segment locks, cut, `release_lock_to`,
//! read-all, read-only point-in-time opens, verify and repair. Synchronous `std` I/O only.
//!
//! It deliberately knows nothing about raft semantics beyond the record types etcd stores,
//! nor about snapshots' contents, networks or async runtimes.
