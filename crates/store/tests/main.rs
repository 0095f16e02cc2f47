//! Integration tests of the built-in store (one binary, several modules).

mod common;
mod compaction;
mod hostile;
mod influx_shards;
mod kit;
mod meta_vectors;
mod perf;
mod wal_shards;
