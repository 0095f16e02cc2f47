//! Decoding of in-memory segment images, for fuzzing and for checking bytes that are not
//! (yet) files, e.g. a backup stream.

use std::path::{Path, PathBuf};

use crate::decoder::{Decoder, Seg, SegmentDecoder};
use crate::error::Result;
use crate::frame::DEFAULT_MAX_RECORD_BYTES;
use crate::pb::{RecordRef, Snapshot};
use crate::read::{WalContents, read_all};
use crate::walk::{EndOfLog, OneSegment, RecordSource, Walker};

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
    let end = if strict {
        EndOfLog::Strict
    } else {
        EndOfLog::TornTailEnds
    };
    let mut walk = Walker::new(Decoder::new(segs, DEFAULT_MAX_RECORD_BYTES), end);
    Ok(read_all(&mut walk, start)?.contents)
}

/// The `wal_decoder` fuzz target's body: splits `data` into up to four segment images
/// (first byte: count and cut points), checks that the positional and the streaming
/// decoder agree on each, and decodes them in both modes and at two starts. Must never
/// panic, hang or allocate beyond the input's size.
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
    for (i, seg) in segs.iter().enumerate() {
        decoders_agree(seg, i + 1 == segs.len());
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

/// What a decoder made of one segment image: its records (type, crc, data) and how it
/// stopped (`None`: clean end, or the error's text).
type Decoded = (Vec<(i64, u32, Option<Vec<u8>>)>, Option<String>);

fn own(rec: &RecordRef<'_>) -> (i64, u32, Option<Vec<u8>>) {
    (rec.rtype, rec.crc, rec.data.map(<[u8]>::to_vec))
}

/// Every record of a strict walk over `src`, and how it ended.
fn walk_all<S: RecordSource>(src: S) -> Decoded {
    let mut walk = Walker::new(src, EndOfLog::Strict);
    let mut out = Vec::new();
    loop {
        match walk.next_record() {
            Ok(Some(r)) => out.push(own(&r)),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

/// The positional decoder (read_all, views) and the streaming one (entry streams) must
/// agree on every segment image, record for record, and on how it ends. `is_last` picks
/// the torn-write rule of a log's last segment for both.
fn decoders_agree(seg: &[u8], is_last: bool) {
    let path = Path::new("segment-0");
    // A lone segment is the last one; a segment that is not last gets an empty one after
    // it, so the positional decoder applies the same rule.
    let mut segs = vec![Seg {
        path,
        file: &seg,
        limit: seg.len() as u64,
    }];
    let empty: &[u8] = &[];
    if !is_last {
        segs.push(Seg {
            path,
            file: &empty,
            limit: 0,
        });
    }
    let positional = walk_all(Decoder::new(segs, DEFAULT_MAX_RECORD_BYTES));
    let len = seg.len() as u64;
    let streamed = walk_all(OneSegment::new(SegmentDecoder::new(
        path,
        seg,
        len,
        is_last,
        DEFAULT_MAX_RECORD_BYTES,
    )));
    assert_eq!(positional, streamed, "the two decoders disagree");
}
