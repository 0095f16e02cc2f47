//! Tunables shared by the writer and the readers.

use std::time::Duration;

use crate::frame::DEFAULT_MAX_RECORD_BYTES;

/// etcd's default segment size: 64,000,000 bytes (decimal).
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64_000_000;

/// Options for creating, opening and reading a WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// Size new segments are preallocated to, and the offset past which a save cuts a new
    /// segment (etcd's `SegmentSizeBytes`).
    pub segment_size_bytes: u64,
    /// Records announcing this many bytes (plus padding) or more are rejected on read and
    /// refused on write (etcd 3.4: 10 MiB). Also bounded by the bytes left in the file.
    pub max_record_bytes: u64,
    /// Skip fdatasync (etcd's `--unsafe-no-fsync`); only for tests and benchmarks.
    pub unsafe_no_fsync: bool,
    /// Opt-in (feature `tuning`), Linux: the scheduler time slice given to each thread the first time it
    /// fsyncs this WAL (`sched_setattr` custom slice, kept by the thread afterwards). A
    /// short slice (e.g. 100 µs) lets a saver woken by its finished fdatasync preempt
    /// CPU-bound neighbours instead of waiting up to a scheduler tick. `None`: unchanged.
    pub(crate) sync_slice: Option<Duration>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            unsafe_no_fsync: false,
            sync_slice: None,
        }
    }
}

impl WalOptions {
    /// Sets the segment size (tests use small values to force cuts).
    pub fn segment_size_bytes(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// Sets the maximum record size.
    pub fn max_record_bytes(mut self, bytes: u64) -> Self {
        self.max_record_bytes = bytes;
        self
    }

    /// Disables fdatasync.
    pub fn unsafe_no_fsync(mut self, yes: bool) -> Self {
        self.unsafe_no_fsync = yes;
        self
    }

    /// Opt-in (feature `tuning`; no production path uses it): gives threads that fsync this
    /// WAL a scheduler time slice of `slice` (Linux `sched_setattr`; the kernel accepts
    /// 100 µs to 100 ms), kept by the thread afterwards. A short slice (e.g. 100 µs) lets a
    /// saver woken by its finished fdatasync preempt CPU-bound neighbours.
    #[cfg(feature = "tuning")]
    pub fn sync_slice(mut self, slice: Duration) -> Self {
        self.sync_slice = Some(slice);
        self
    }
}
