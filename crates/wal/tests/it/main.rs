//! Integration tests of `snapshotd-wal`: golden vectors from etcd 3.4.23, byte-identical
//! replay, writer semantics, point-in-time views and streaming reads, corruption, crash
//! recovery, fuzz corpus.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod corpus;
mod corruption;
mod crash;
mod failure;
mod large_records;
mod readahead;
mod replay;
mod stream;
mod support;
mod vectors;
mod view;
mod writer;
