//! Integration tests of snapshotd-tsm: writer/reader round trips, property tests, influx-written
//! vectors, corrupt input, tombstones and the fuzz corpus replay.

mod corpus;
mod corrupt;
mod props;
mod roundtrip;
mod tombstone;
mod vectors;
