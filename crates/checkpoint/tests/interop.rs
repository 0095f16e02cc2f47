//! S3 interop tests.
