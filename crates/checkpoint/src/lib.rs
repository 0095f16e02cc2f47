//! Resumable-job bookkeeping on external storage (local directory or S3).
//!
//! Owns the lock with TTL and fencing epochs, periodic flushing of "unit done" records,
//! per-record checksums, optional AES-256-GCM encryption, and loading for resume.
//!
//! It deliberately knows nothing about InfluxDB, the wire protocol or what a unit contains.
