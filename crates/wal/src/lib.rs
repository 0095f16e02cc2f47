//! A write-ahead log byte-compatible with etcd 3.4's `wal` package.
//!
//! Files written here are read by etcd 3.4.23 and files written by etcd are read here:
//! same segment names, 8-byte-aligned frames, CRC-32C chain across segments, preallocated
//! 64,000,000-byte segments, OFD locks on Linux (so a live etcd and these tools exclude each
//! other), and etcd's rules for torn writes, raft overwrites and snapshot matching.
//! Synchronous `std` I/O only; it knows nothing about what the entries mean.
//!
//! * [`Wal::create`] / [`Wal::open`] + [`UnreadWal::read_all`]: the writer
//!   ([`Wal::save`], [`Wal::save_snapshot`], [`Wal::release_lock_to`], [`Wal::close`]).
//! * [`WalReader`]: lock-free read-only open (etcd's `OpenForRead`), safe next to etcd.
//! * [`open_for_read`]: a point-in-time [`ReadView`] for backups — per segment, the path and
//!   the byte length holding only whole, CRC-valid records; purge cannot delete its files.
//! * [`SharedWal`]: group commit — concurrent savers share one fsync.
//! * [`verify`], [`verify_log`], [`repair`], [`valid_snapshot_entries`], [`purge`], each
//!   with a `_with` form taking the log's [`WalOptions`].
//!
//! Beyond that: [`etcd`] (etcd-exact open + `ReadAll` outcomes), [`format`](mod@format) (segment names,
//! record types, limits), [`metrics`] (metric names), [`fuzz`] (in-memory decoding), and
//! behind the opt-in `tuning` feature `SharedWal::with_commit_delay` and
//! `WalOptions::sync_slice`.
//!
//! ```
//! use snapshotd_wal::{Entry, HardState, Snapshot, Wal, WalOptions, WalReader};
//!
//! # fn main() -> Result<(), snapshotd_wal::Error> {
//! let tmp = tempfile::tempdir().map_err(|e| snapshotd_wal::Error::Io {
//!     context: "tempdir".into(),
//!     source: e,
//! })?;
//! let dir = tmp.path().join("wal");
//! let opts = WalOptions::default().segment_size_bytes(1 << 20);
//!
//! let mut wal = Wal::create_with(&dir, b"node-1", &opts)?;
//! wal.save(&HardState::new(1, 1, 0), &[Entry::new(1, 1, b"a".to_vec()), Entry::new(2, 1, b"b".to_vec())])?;
//! // A new leader overwrites the uncommitted entry 2.
//! wal.save(&HardState::new(2, 1, 1), &[Entry::new(2, 2, b"c".to_vec())])?;
//! wal.close()?;
//!
//! let got = WalReader::open(&dir, Snapshot::new(0, 0))?.read_all()?;
//! assert_eq!(got.metadata.as_deref(), Some(&b"node-1"[..]));
//! assert_eq!(got.hardstate, HardState::new(2, 1, 1));
//! let data: Vec<_> = got.entries.iter().map(|e| e.data.clone().unwrap_or_default()).collect();
//! assert_eq!(data, [b"a".to_vec(), b"c".to_vec()]);
//!
//! // Reopen for appending: reads everything back and continues the CRC chain.
//! let (mut wal, contents) = Wal::open_with(&dir, Snapshot::new(0, 0), &opts)?.read_all()?;
//! assert_eq!(contents.entries.len(), 2);
//! wal.save(&HardState::new(2, 1, 2), &[Entry::new(3, 2, b"d".to_vec())])?;
//! wal.close()?;
//! # Ok(())
//! # }
//! ```

mod compat;
mod decoder;
mod encoder;
mod error;
mod frame;
mod fsutil;
mod fuzzing;
mod group;
mod maintenance;
mod names;
mod options;
mod pb;
mod prefetch;
mod read;
mod stream;
mod sys;
mod view;
mod wal;
mod walk;

// The everyday API: write, read, view, stream, check and repair a log.
pub use error::{Error, Result};
pub use group::{GroupCommitStats, SharedWal};
pub use maintenance::{
    LogSummary, RepairOutcome, purge, repair, repair_with, try_repair, try_repair_with,
    valid_snapshot_entries, valid_snapshot_entries_with, verify, verify_log, verify_log_with,
    verify_with,
};
pub use names::wal_exists;
pub use options::WalOptions;
pub use pb::{Entry, HardState, Snapshot};
pub use read::WalContents;
pub use stream::EntryStream;
pub use view::{
    ReadView, SegmentReader, ViewSegment, WalReader, open_for_read, open_for_read_with,
};
pub use wal::{UnreadWal, Wal};

pub mod ofd;

pub mod etcd {
    //! etcd emulation for tools that must report exactly what etcd 3.4.23 would: its open
    //! + `ReadAll` outcome, error for error.
    pub use crate::compat::{EtcdReadOutcome, OpenMode, read_like_etcd};
}

pub mod format {
    //! The on-disk format: segment names, record types, the raw record message and the
    //! default limits.
    pub use crate::frame::DEFAULT_MAX_RECORD_BYTES;
    pub use crate::names::{
        SegmentName, list_segments, parse_segment_name, segment_name, select_segments,
    };
    pub use crate::options::DEFAULT_SEGMENT_SIZE_BYTES;
    pub use crate::pb::{
        CRC_TYPE, ENTRY_TYPE, METADATA_TYPE, Record, SNAPSHOT_TYPE, STATE_TYPE, entry_type,
    };
}

pub mod metrics {
    //! Names of the metrics this crate records through the `metrics` facade.
    pub use crate::fsutil::{METRIC_FSYNC_SECONDS, METRIC_LAST_INDEX, METRIC_WRITE_BYTES};
}

pub mod fuzz {
    //! Decoding of in-memory segment images: the fuzz target's body and `ReadAll` over bytes
    //! that are not files.
    pub use crate::fuzzing::{fuzz_decode, read_all_in_memory};
}

// Paths from before the modules above, kept so existing callers compile.
#[doc(hidden)]
pub use etcd::{EtcdReadOutcome, OpenMode, read_like_etcd};
#[doc(hidden)]
pub use format::{
    CRC_TYPE, DEFAULT_MAX_RECORD_BYTES, DEFAULT_SEGMENT_SIZE_BYTES, ENTRY_TYPE, METADATA_TYPE,
    Record, SNAPSHOT_TYPE, STATE_TYPE, SegmentName, entry_type, list_segments, parse_segment_name,
    segment_name, select_segments,
};
#[doc(hidden)]
pub use fuzz::{fuzz_decode, read_all_in_memory};
#[doc(hidden)]
pub use metrics::{METRIC_FSYNC_SECONDS, METRIC_LAST_INDEX, METRIC_WRITE_BYTES};

/// Refuses records that no etcd 3.4 reader would accept (`N + padding >= limit`).
pub(crate) fn record_size_ok(rtype: i64, data_len: usize, limit: u64) -> Result<()> {
    let n = pb::record_len(rtype, u32::MAX, Some(data_len));
    let (_, pad) = frame::encode_len(n);
    let size = (n + pad) as u64;
    if size >= limit {
        return Err(Error::RecordTooLarge { size, limit });
    }
    Ok(())
}
