//! Decoding of in-memory segment images, for fuzzing and for checking bytes that are not
//! (yet) files, e.g. a backup stream.

use std::path::{Path, PathBuf};

use crate::decoder::{Decoder, Seg, SegmentDecoder};
use crate::error::Result;
use crate::frame::DEFAULT_MAX_RECORD_BYTES;
use crate::pb::{CRC_TYPE, RecordRef, Snapshot};
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

/// Applies read_all's crc-record rule to `rec`; `Err` ends the walk with etcd's text.
fn crc_rule(rec: &RecordRef<'_>, running: &mut u32) -> std::result::Result<(), String> {
    if rec.rtype == CRC_TYPE {
        if *running != 0 && rec.crc != *running {
            return Err("wal: crc mismatch".into());
        }
        *running = rec.crc;
    }
    Ok(())
}

fn own(rec: &RecordRef<'_>) -> (i64, u32, Option<Vec<u8>>) {
    (rec.rtype, rec.crc, rec.data.map(<[u8]>::to_vec))
}

/// The positional decoder (read_all, views) and the streaming one (entry streams) must
/// agree on every segment image, record for record, and on how it ends. `is_last` picks
/// the torn-write rule of a log's last segment for both.
fn decoders_agree(seg: &[u8], is_last: bool) {
    let path = Path::new("segment-0");
    let positional: Decoded = {
        // A lone segment is the last one; a segment that is not last gets an empty one
        // after it, so the positional decoder applies the same rule.
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
        let mut dec = Decoder::new(segs, DEFAULT_MAX_RECORD_BYTES);
        let mut out = Vec::new();
        let end = loop {
            // A crc record leaves the decoder's running CRC as it was; others advance it.
            let before = dec.crc();
            let rec = match dec.next_record() {
                Ok(Some(r)) => {
                    let mut running = before;
                    let rule = crc_rule(&r, &mut running).map(|()| running);
                    (own(&r), rule)
                }
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            };
            match rec {
                (r, Ok(running)) => {
                    if r.0 == CRC_TYPE {
                        dec.set_crc(running);
                    }
                    out.push(r);
                }
                (_, Err(e)) => break Some(e),
            }
        };
        (out, end)
    };
    let streamed: Decoded = {
        let mut dec = SegmentDecoder::new(
            path,
            seg,
            seg.len() as u64,
            is_last,
            DEFAULT_MAX_RECORD_BYTES,
        );
        let mut running = 0u32;
        let mut out = Vec::new();
        let end = loop {
            let mut next = running;
            match dec.next_record(&mut next) {
                Ok(Some(r)) => {
                    if let Err(e) = crc_rule(&r, &mut next) {
                        break Some(e);
                    }
                    out.push(own(&r));
                }
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            }
            running = next;
        };
        (out, end)
    };
    assert_eq!(positional, streamed, "the two decoders disagree");
}
