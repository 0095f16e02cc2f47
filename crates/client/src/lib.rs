//! Client for the snapshotter protocol and the portable backup / restore orchestrators.
//!
//! Owns talking to influxd or snapshotd, writing and reading the portable layout
//! (`TS.meta`, `TS.s<ID>.tar.gz`, `TS.manifest`), parallel shard transfer, verification and
//! resume. It deliberately knows nothing about how a server stores its data.
//!
//! - [`Client`]: one async method per request type (types 0/5 and 7 hand back the stream).
//! - [`backup::backup`], [`restore::restore`], [`verify::verify`]: the orchestrators, writing
//!   and reading through [`Storage`] (any `object_store`); [`filecheck`]: the file checks
//!   restore and verify share.
//! - [`job`]: the same under a checkpoint, as the CLI runs them (restore points, resume,
//!   locks), and `forget`; [`points`]: the catalog of restore points.
//! - [`Progress`] and [`UnitSink`]: how a caller watches a run and records finished files.

pub mod backup;
pub mod compress;
pub mod conn;
pub mod error;
pub mod filecheck;
pub mod hashio;
mod installed;
pub mod job;
pub mod layout;
pub mod limiter;
pub mod loadable;
mod offthread;
pub mod points;
pub mod progress;
mod proto;
pub mod reimport;
pub mod restore;
pub mod resume;
pub mod storage;
pub mod tarcheck;
pub mod timeout_io;
mod upload_gate;
pub mod verify;

pub use backup::{
    BackupOptions, BackupSummary, CommitGate, Hooks, OpenGate, ResumeFrom, RetryPolicy,
    TransferStats,
};
pub use compress::CompressionMode;
pub use conn::{Client, ClientConfig, IdMap, RenameNames, ShardPath, Window};
pub use error::{ClientError, Result};
pub use job::JobOptions;
pub use limiter::RateLimiter;
pub use points::RestorePoint;
pub use progress::{NoProgress, NoUnitSink, Progress, UnitDone, UnitSink};
pub use proto::TOOL_VERSION;
pub use restore::{RestoreOptions, RestoreResume, RestoreSummary, Stacked};
pub use storage::Storage;
pub use verify::VerifyReport;
