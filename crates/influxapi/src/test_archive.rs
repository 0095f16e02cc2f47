//! Backup archives written by unit tests.

#![allow(clippy::unwrap_used)]

use std::path::Path;

/// Writes a gzip'd tar of `(entry name, bytes)` to `path`, as a backup run stores a shard.
pub(crate) fn archive(path: &Path, entries: &[(&str, &[u8])]) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut b = tar::Builder::new(gz);
    for (name, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *bytes).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}
