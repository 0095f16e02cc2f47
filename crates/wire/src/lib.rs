//! The InfluxDB 1.x snapshotter wire protocol (the port-8088 backup/restore service).
//!
//! Owns request/response types, the JSON request with Go's exact encoding, the meta-backup
//! frame, the shard-id map, the shard-upload header, the portable backup's `.meta` wrapper and
//! `.manifest`, and tokio-util codecs with hard size limits checked before allocation.
//!
//! It deliberately knows nothing about sockets, storage or retries: types and codecs only.
