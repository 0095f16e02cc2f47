//! influx TSM1 files both ways: the block codecs (timestamps, float, integer, unsigned,
//! boolean, string), the index and footer, tombstone files, a streaming [`TsmWriter`] and a
//! bounded [`TsmReader`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use snapshotd_tsm::{TsmReader, Values, join_key, write_values};
//!
//! let mut data = BTreeMap::new();
//! data.insert(join_key(b"cpu,host=a", b"usage"), Values::Float(vec![(1, 0.5), (2, 0.75)]));
//! let bytes = write_values(Vec::new(), &data)?;
//! let mut r = TsmReader::open(std::io::Cursor::new(bytes))?;
//! assert_eq!(r.read_key(b"cpu,host=a#!~#usage")?, Some(Values::Float(vec![(1, 0.5), (2, 0.75)])));
//! # Ok::<(), snapshotd_tsm::TsmError>(())
//! ```

mod block;
pub mod codec;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod key;
mod reader;
mod tombstone;
mod values;
mod writer;

pub use block::{block_count, decode_block, encode_block, split_block};
pub use error::{Result, TsmError};
pub use index::{
    ENTRY_SIZE, FOOTER_SIZE, HEADER_SIZE, IndexEntry, KeyIndex, MAGIC, VERSION, parse_index,
    write_key_section,
};
pub use key::{FIELD_SEPARATOR, join_key, parse_series_key, series_key, split_key};
pub use reader::{ReaderLimits, TsmReader};
pub use tombstone::{MAX_TOMBSTONE_BYTES, Tombstones};
pub use values::{BlockType, Values};
pub use writer::{DEFAULT_MAX_POINTS_PER_BLOCK, TsmWriter, write_values};
