//! Integration tests of the built-in store (one binary, several modules).

mod common;
mod compaction;
mod crash;
mod hostile;
mod influx_shards;
mod kit;
mod meta_vectors;
mod overwrite;
mod perf;
mod typed_errors;
mod wal_shards;
