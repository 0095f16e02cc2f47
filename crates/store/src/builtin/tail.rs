//! The log tail of a shard view, encoded on the fly as TSM files inside a backup or export
//! tar, so every shard archive holds only files influxd loads. Memory is bounded: points
//! are gathered [`CHUNK_VALUES`] field values at a time, each chunk becoming its own file.

use std::time::SystemTime;

use super::points_tsm::PointSet;
use super::shard_log::LogView;
use super::tarout::TarOut;
use super::{marker, write};
use crate::error::Result;

/// Field values per TSM file built from a log tail.
pub(crate) const CHUNK_VALUES: usize = 250_000;

/// Appends the view's points for which `keep(time)` holds as TSM files named from
/// generation `first_gen` up, dated by the view's newest segment (so backups of unchanged
/// data are byte-identical); returns the number of files appended.
pub(crate) fn append_tail(
    tar: &mut TarOut<'_>,
    prefix: &str,
    first_gen: u64,
    view: &LogView,
    keep: &dyn Fn(i64) -> bool,
) -> Result<u64> {
    let mtime = view.newest_mtime().unwrap_or(SystemTime::UNIX_EPOCH);
    let mut generation = first_gen;
    let mut set = PointSet::default();
    for entry in view.indexed() {
        let (_, data) = entry?;
        for p in write::decode_entry(&data, view.dir())? {
            if keep(p.time_ns) {
                set.add(p);
            }
        }
        if set.len() >= CHUNK_VALUES {
            flush(tar, prefix, generation, mtime, std::mem::take(&mut set))?;
            generation += 1;
        }
    }
    if !set.is_empty() {
        flush(tar, prefix, generation, mtime, set)?;
        generation += 1;
    }
    Ok(generation - first_gen)
}

fn flush(
    tar: &mut TarOut<'_>,
    prefix: &str,
    generation: u64,
    mtime: SystemTime,
    set: PointSet,
) -> Result<()> {
    let name = marker::tsm_name(generation);
    let buf = set.write_tsm(Vec::new(), &name)?;
    let full = format!("{prefix}/{name}");
    tar.append(&full, buf.len() as u64, mtime, &mut &buf[..])
}
