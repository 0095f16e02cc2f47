//! Resumable-job bookkeeping on external storage (local directory, S3, or any
//! [`object_store`] backend with conditional writes).
//!
//! * [`Destination`]: opens a local path, `file://…` or `s3://bucket/prefix` and hands out
//!   the `Arc<dyn ObjectStore>` + prefix, so the job writes its own files the same way.
//! * [`LockGuard`]: a lease taken with a conditional create, refreshed with a conditional
//!   update on the ETag, taken over when expired with a bumped **epoch**. [`unlock`]
//!   removes a stale lock after showing its holder.
//! * [`Checkpoint`]: fed [`UnitRecord`]s ("unit done"), flushes them in the background
//!   as immutable, checksummed (or encrypted) record files named by epoch; on open it
//!   merges every trusted record of earlier runs ([`Resume`]), ignores and reports
//!   damaged or fenced files, and refuses a resume whose [`JobConfig`] differs.
//! * [`EncryptingWriter`] / [`DecryptingReader`]: chunked AES-256-GCM streams with
//!   HKDF-derived per-file keys, for checkpoint records and backup archives alike.
//!
//! It deliberately knows nothing about InfluxDB, the wire protocol or what a unit contains.
//! The on-storage format is described in `docs/checkpoint.md`.
//!
//! ```no_run
//! use snapshotd_checkpoint::{Checkpoint, CheckpointOptions, Destination, JobConfig,
//!     MasterKey, S3Options, UnitRecord};
//!
//! # async fn backup() -> Result<(), snapshotd_checkpoint::Error> {
//! let s3 = S3Options::from_lookup(|k| std::env::var(k).ok()); // the binary's environment
//! let dest = Destination::open("s3://bucket/backups/tonight", &s3)?;
//! let opts = CheckpointOptions {
//!     config: JobConfig::new().with("db", "telegraf").with("rp", "autogen"),
//!     key: Some(MasterKey::from_file("/etc/snapshotd/backup.key")?),
//!     ..CheckpointOptions::default()
//! };
//! let cp = Checkpoint::open(&dest, opts).await?; // Error::Locked names the holder
//! for shard in ["shard/1", "shard/2"] {
//!     if let Some(done) = cp.done(shard) {
//!         // Finished by an earlier run: verify `done.sha256` / `done.size`, then skip.
//!         let _ = done;
//!         continue;
//!     }
//!     cp.health()?; // stop if the lock was lost (fenced out)
//!     // ... write the archive through dest.rooted_store() (plain relative names) ...
//!     cp.record(UnitRecord::new(shard, 1234, "sha256-hex")).await?; // or record_now()
//! }
//! cp.finish().await?; // final flush + lock release
//! # Ok(()) }
//! ```

mod cas;
mod clock;
mod config;
mod error;
mod fetch;
mod files;
pub mod layout;
mod load;
mod lock;
mod record;
mod runner;

pub use cas::Version;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::JobConfig;
pub use error::{Error, Result, StopCause};
pub use files::{
    DecryptSummary, decrypt_destination, decrypt_dir, decrypt_file, encrypt_file, encrypted_name,
    plain_name,
};
pub use load::{RejectReason, Rejected, Resume, inspect};
pub use lock::{
    LockGuard, LockInfo, LockOptions, Unlocked, host_name, read_lock, unlock, unlock_owner,
};
pub use record::{MAX_KEY_LEN, MAX_PAYLOAD_LEN, UnitRecord};
pub use runner::{Checkpoint, CheckpointOptions, FlushStats, KEY_ID_SETTING};
pub use snapshotd_dest::{Destination, S3Options};
pub use snapshotd_sealed::PLAIN_MAGIC;
pub use snapshotd_sealed::{CryptoError, KEY_ID_LEN, KEY_LEN, MasterKey};
pub use snapshotd_sealed::{
    DEFAULT_CHUNK_SIZE, DecryptingReader, ENC_MAGIC, ENC_SUFFIX, EncryptingWriter, HEADER_LEN,
    MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, TAG_LEN, decrypt_bytes, encrypt_bytes, is_encrypted,
};
