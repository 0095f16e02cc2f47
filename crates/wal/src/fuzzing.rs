//! Decoding of in-memory segment images, for fuzzing and for checking bytes that are not
//! (yet) files, e.g. a backup stream.

use std::path::PathBuf;

use crate::decoder::{Decoder, Seg};
use crate::error::Result;
use crate::frame::DEFAULT_MAX_RECORD_BYTES;
use crate::pb::Snapshot;
use crate::read::{Mode, WalContents, read_all};

/// etcd's `ReadAll` over segment images held in memory (named `segment-<i>` in errors).
/// `strict` selects write-mode end-of-log rules (a partial last record is an error).
pub fn read_all_in_memory(
    segments: &[&[u8]],
    start: Snapshot,
    strict: bool,
) -> Result<WalContents> {
    let paths: Vec<PathBuf> = (0..segments.len())
        .map(|i| PathBuf::from(format!("segment-{i}")))
        .collect();
    let segs = segments
        .iter()
        .zip(&paths)
        .map(|(b, p)| Seg {
            path: p,
            file: b,
            limit: b.len() as u64,
        })
        .collect();
    let mut dec = Decoder::new(segs, DEFAULT_MAX_RECORD_BYTES);
    let mode = if strict { Mode::Write } else { Mode::Read };
    Ok(read_all(&mut dec, start, mode)?.contents)
}

/// The `wal_decoder` fuzz target's body: splits `data` into up to four segment images
/// (first byte: count and cut points) and decodes them in both modes and at two starts.
/// Must never panic, hang or allocate beyond the input's size.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let parts = usize::from(head % 4) + 1;
    let mut segs: Vec<&[u8]> = Vec::with_capacity(parts);
    let mut tail = rest;
    for i in 0..parts {
        if i + 1 == parts {
            segs.push(tail);
            break;
        }
        // Cut at an 8-byte boundary chosen from the data itself.
        let want = (tail.len() / (parts - i)) & !7;
        let (a, b) = tail.split_at(want.min(tail.len()));
        segs.push(a);
        tail = b;
    }
    for strict in [false, true] {
        for start in [Snapshot::new(0, 0), Snapshot::new(2, 1)] {
            if let Ok(c) = read_all_in_memory(&segs, start, strict) {
                // Entries are contiguous after the start snapshot.
                for (k, e) in c.entries.iter().enumerate() {
                    assert_eq!(
                        e.index,
                        start.index + 1 + k as u64,
                        "entries must be contiguous"
                    );
                }
            }
        }
    }
}
