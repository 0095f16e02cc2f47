//! Adaptive, parallel gzip for shard archives.
//!
//! A shard stream is cut into chunks; each chunk becomes one independent gzip member, and
//! the members are written in order. Concatenated gzip members form one valid gzip stream
//! (RFC 1952 §2.2, read by Go's `gzip.Reader`, hence `influxd restore -portable`, and by
//! flate2's `MultiGzDecoder`), so the chunks of one large shard are deflated on every core
//! while memory stays bounded by chunk size × chunks in flight.
//!
//! In [`CompressionMode::Auto`] a sample of a chunk is deflated first and the chunk is
//! stored (deflate level 0: framing and CRC only) when the sample does not shrink by
//! [`MIN_SAVING_PERCENT`]. TSM files are already compressed: level 1 saves 11–36 % of them
//! (more for values with few decimals) for about three times the CPU of the whole stored
//! pipeline, while text-like files (line protocol, JSON, index logs) save 60–90 %; the bar
//! sits between the two. Decisions are re-taken every [`PROBE_EVERY`] chunks so that a
//! stream mixing compressible and incompressible files adapts.

mod member;
mod parallel;
mod worker;

pub use member::{encode_member, shrinks_enough};
pub use parallel::{GzStats, ParallelGz};

/// A chunk sample must shrink by at least this share to be worth compressing in `Auto`.
pub const MIN_SAVING_PERCENT: u64 = 50;

/// In `Auto`, every `PROBE_EVERY`-th chunk is sampled again (the others follow the last
/// decision); chunks are also sampled while no decision exists yet.
pub const PROBE_EVERY: u64 = 16;

/// Bytes of a chunk deflated to decide whether it is worth compressing.
pub const SAMPLE_BYTES: usize = 128 * 1024;

/// Uncompressed bytes per gzip member.
pub const DEFAULT_CHUNK: usize = 1024 * 1024;

/// How shard archives are compressed. Every mode writes a valid `.tar.gz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CompressionMode {
    /// Compress what shrinks by a useful margin, store the rest (the default).
    #[default]
    Auto,
    /// Always deflate at the configured level.
    Gzip,
    /// Never deflate: gzip framing with stored blocks (level 0).
    None,
}

impl CompressionMode {
    /// The flag spelling: `auto`, `gzip` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionMode::Auto => "auto",
            CompressionMode::Gzip => "gzip",
            CompressionMode::None => "none",
        }
    }
}

/// Everything a [`ParallelGz`] needs to know.
#[derive(Debug, Clone)]
pub struct GzSettings {
    /// Which chunks are deflated.
    pub mode: CompressionMode,
    /// Deflate level 1–9 for chunks that are compressed (0 stores everything).
    pub level: u32,
    /// Name recorded in the first member's header (`FNAME`), as influx does.
    pub filename: Option<Vec<u8>>,
    /// Threads deflating chunks (≥ 1).
    pub workers: usize,
    /// Uncompressed bytes per member (≥ 1).
    pub chunk: usize,
}

impl GzSettings {
    /// Settings for `mode` at `level` with one worker per core and 1 MiB members.
    pub fn new(mode: CompressionMode, level: u32) -> Self {
        GzSettings {
            mode,
            level: level.min(9),
            filename: None,
            workers: default_workers(),
            chunk: DEFAULT_CHUNK,
        }
    }
}

/// One deflating thread per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

#[cfg(test)]
mod tests;
