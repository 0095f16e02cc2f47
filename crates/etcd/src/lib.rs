//! Continuous WAL archiving from live etcd 3.4 members and point-in-time restore.
//!
//! * [`archive()`]: beside a member, reads its `member/wal` read-only (shared OFD locks on
//!   segments not yet archived, so etcd's purge keeps them), stores **committed** entries as
//!   member-independent chunks of consecutive indexes (each an etcd-compatible WAL
//!   segment), copies `member/snap/*.snap`, records everything through the checkpoint
//!   crate's leased lock with fencing (one active archiver per DEST, others stand by), and
//!   records gaps when entries were purged before anyone archived them.
//! * [`backup()`]: a base backup through the Maintenance `Snapshot` RPC (digest checked),
//!   recorded with the raft index it holds (the db's consistent index) and its revision.
//! * [`Catalog`]: what DEST trusts; [`status()`] summarises it.
//! * [`restore()`]: chunks up to a raft index (or time) → a member data dir that
//!   `etcd --force-new-cluster` starts from, serving the keyspace as of that index.
//! * [`verify()`]: every chunk's digest, CRCs and index continuity.
//!
//! No printing, no environment reads, no process exit: the binary does those.

mod archive;
mod backup;
mod bolt;
mod catalog;
mod chunk;
mod connerr;
mod dbinfo;
mod error;
pub mod layout;
mod membership;
pub mod pb;
mod plan;
mod restore;
mod restore_wal;
mod session;
mod snapfile;
mod source;
mod status;
mod store;
mod verify;

pub use archive::{ArchiveEvent, ArchiveOptions, archive};
pub use backup::{
    BackupOptions, BackupReport, FetchedBase, backup, fetch_base, split_digest, store_base,
};
pub use catalog::{BaseInfo, BaseRecord, Catalog, ChunkInfo, ChunkRecord, GapInfo, SnapInfo};
pub use chunk::{Decoded, decode as decode_chunk, encode as encode_chunk};
pub use dbinfo::{DbInfo, read as read_db_info};
pub use error::{Error, Result};
pub use membership::{Member, Membership};
pub use plan::{Plan, plan, resolve};
pub use restore::{RestoreOptions, RestoreReport, Target, restore};
pub use session::{JOB, PassReport};
pub use status::{BaseSummary, Status, status};
pub use verify::{VerifyReport, verify};
