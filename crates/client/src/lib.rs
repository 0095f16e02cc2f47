//! Client for the snapshotter protocol and the portable backup / restore orchestrators.
//!
//! Owns talking to influxd or snapshotd, writing and reading the portable layout
//! (`TS.meta`, `TS.s<ID>.tar.gz`, `TS.manifest`), parallel shard transfer, verification and
//! resume. It deliberately knows nothing about how a server stores its data.
