//! Line protocol for whole series: the fields of one series (adjacent keys in a TSM file) are
//! merged by time, block by block, so each timestamp becomes one line carrying every field
//! present at that time, with at most one decoded block per field in memory.

use std::io::{Read, Seek, Write};

use snapshotd_tsm::{IndexEntry, Tombstones, TsmReader, Values, split_key};

use crate::error::{InfluxApiError, Result};
use crate::line::{UnsignedMode, push_field_key, push_value};

/// One field's position: its blocks and the current decoded block.
struct Cursor {
    key: Vec<u8>,
    field_at: usize,
    typ: snapshotd_tsm::BlockType,
    entries: Vec<IndexEntry>,
    next: usize,
    block: Values,
    pos: usize,
}

impl Cursor {
    /// The time of the current point, loading (and tombstone-filtering) blocks as needed;
    /// `None` when the field is exhausted.
    fn time<R: Read + Seek>(
        &mut self,
        r: &mut TsmReader<R>,
        tombs: &Tombstones,
        ctx: &str,
    ) -> Result<Option<i64>> {
        while self.pos >= self.block.len() {
            let Some(e) = self.entries.get(self.next) else {
                return Ok(None);
            };
            self.next += 1;
            let mut v = r
                .read_block(self.typ, e)
                .map_err(|source| InfluxApiError::Tsm {
                    context: format!("{ctx}: key {}", String::from_utf8_lossy(&self.key)),
                    source,
                })?;
            if !tombs.is_empty() {
                v.retain_times(|t| !tombs.covers(&self.key, t));
            }
            self.block = v;
            self.pos = 0;
        }
        Ok(self.block.time(self.pos))
    }
}

/// Writes the lines of every series of `r` into `out`, calling `line_done(out, values)` after
/// each line (it may drain `out`). `ctx` names the shard and file in errors.
pub fn series_lines<R: Read + Seek>(
    r: &mut TsmReader<R>,
    tombs: &Tombstones,
    unsigned: UnsignedMode,
    ctx: &str,
    out: &mut Vec<u8>,
    line_done: &mut dyn FnMut(&mut Vec<u8>, usize) -> Result<()>,
) -> Result<()> {
    let n = r.keys().len();
    let mut k = 0;
    while k < n {
        let series = match r.keys().get(k) {
            Some(ki) => split_key(&ki.key).0.to_vec(),
            None => break,
        };
        let mut cursors = Vec::new();
        while let Some(ki) = r.keys().get(k) {
            let (s, f) = split_key(&ki.key);
            if s != series.as_slice() {
                break;
            }
            cursors.push(Cursor {
                key: ki.key.clone(),
                field_at: ki.key.len() - f.len(),
                typ: ki.block_type,
                entries: ki.entries.clone(),
                next: 0,
                block: Values::empty(ki.block_type),
                pos: 0,
            });
            k += 1;
        }
        one_series(
            r,
            tombs,
            unsigned,
            ctx,
            &series,
            &mut cursors,
            out,
            line_done,
        )?;
    }
    Ok(())
}

/// Emits the lines of one series from its field cursors, in time order.
#[allow(clippy::too_many_arguments)]
fn one_series<R: Read + Seek>(
    r: &mut TsmReader<R>,
    tombs: &Tombstones,
    unsigned: UnsignedMode,
    ctx: &str,
    series: &[u8],
    cursors: &mut [Cursor],
    out: &mut Vec<u8>,
    line_done: &mut dyn FnMut(&mut Vec<u8>, usize) -> Result<()>,
) -> Result<()> {
    let mut times = vec![None; cursors.len()];
    loop {
        for (c, t) in cursors.iter_mut().zip(times.iter_mut()) {
            *t = c.time(r, tombs, ctx)?;
        }
        let Some(min) = times.iter().flatten().min().copied() else {
            return Ok(());
        };
        out.extend_from_slice(series);
        let mut sep = b' ';
        let mut fields = 0;
        for (c, t) in cursors.iter_mut().zip(&times) {
            if *t != Some(min) {
                continue;
            }
            out.push(sep);
            sep = b',';
            push_field_key(out, c.key.get(c.field_at..).unwrap_or_default());
            out.push(b'=');
            let key = &c.key;
            let show = || format!("{ctx}: key {}", String::from_utf8_lossy(key));
            push_value(out, &c.block, c.pos, unsigned, &show)?;
            c.pos += 1;
            fields += 1;
        }
        let _ = writeln!(out, " {min}");
        line_done(out, fields)?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use snapshotd_tsm::{join_key, write_values};

    use super::*;

    #[test]
    fn fields_of_a_series_share_lines_by_time_and_tombstones_apply() {
        let mut data = BTreeMap::new();
        data.insert(
            join_key(b"m,h=a", b"f"),
            Values::Float(vec![(1, 0.5), (2, 1.5)]),
        );
        data.insert(
            join_key(b"m,h=a", b"i"),
            Values::Integer(vec![(2, 7), (3, 8)]),
        );
        data.insert(
            join_key(b"m,h=a", b"s"),
            Values::String(vec![(3, "x".into())]),
        );
        data.insert(join_key(b"n", b"b"), Values::Boolean(vec![(9, true)]));
        let bytes = write_values(Vec::new(), &data).unwrap();
        let mut r = TsmReader::open(std::io::Cursor::new(bytes)).unwrap();
        let mut tombs = Tombstones::default();
        tombs.add(b"m,h=a#!~#i", 3, 3);
        let (mut out, mut counts) = (Vec::new(), Vec::new());
        series_lines(
            &mut r,
            &tombs,
            UnsignedMode::Refuse,
            "t",
            &mut out,
            &mut |_, n| {
                counts.push(n);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "m,h=a f=0.5 1\nm,h=a f=1.5,i=7i 2\nm,h=a s=\"x\" 3\nn b=true 9\n"
        );
        assert_eq!(counts, vec![1, 2, 1, 1]);
    }
}
