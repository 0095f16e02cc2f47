//! Allocation bounds of [`super::TsmReader`].

/// Allocation bounds applied while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderLimits {
    /// Largest index loaded into memory.
    pub max_index_bytes: u64,
    /// Largest block (CRC included) read into memory.
    pub max_block_bytes: u32,
    /// Most points decoded from one block.
    pub max_block_values: usize,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            max_index_bytes: 512 * 1024 * 1024,
            max_block_bytes: 64 * 1024 * 1024,
            max_block_values: 1 << 20,
        }
    }
}

impl ReaderLimits {
    /// These limits with a different index bound.
    pub fn with_max_index_bytes(mut self, n: u64) -> Self {
        self.max_index_bytes = n;
        self
    }

    /// These limits with a different per-block value bound.
    pub fn with_max_block_values(mut self, n: usize) -> Self {
        self.max_block_values = n;
        self
    }
}
