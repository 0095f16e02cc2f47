//! Where a job keeps its files: a local directory, `file://…`, `s3://bucket/prefix` or an
//! in-memory store, opened as an [`object_store`] backend plus a prefix inside it, and the
//! S3 connection settings ([`S3Options`]) that `s3://` destinations use.
//!
//! Knows nothing of checkpoints, encryption or what the files contain; reads no
//! environment variables (the binary builds [`S3Options`] with [`S3Options::from_lookup`]).
//!
//! ```
//! use snapshotd_dest::{Destination, S3Options};
//!
//! # fn main() -> Result<(), snapshotd_dest::Error> {
//! let tmp = tempfile::tempdir().map_err(|e| snapshotd_dest::Error::Io {
//!     path: "tempdir".into(),
//!     source: e,
//! })?;
//! let dest = Destination::open(&tmp.path().display().to_string(), &S3Options::default())?;
//! assert!(dest.local_root().is_some());
//! assert!(Destination::open("gs://bucket/x", &S3Options::default()).is_err());
//! # Ok(())
//! # }
//! ```

mod dest;
mod error;

pub use dest::{Destination, S3Options};
pub use error::{Error, Result};
