//! TSM files of the built-in store, through `snapshotd-tsm`: the index, the block-granular
//! time filter used by export (blocks copied verbatim, index rebuilt), and decoding a file
//! into points.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;

use snapshotd_tsm::{KeyIndex, TsmError, TsmReader, TsmWriter, Values};

use super::tombstone::Tombstones;
use super::write::{Point, Value};
use crate::error::{Corruption, Result, StoreError, TsmProblem};

/// A parsed TSM index with the file's time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    /// Key sections in key order.
    pub keys: Vec<KeyIndex>,
    /// Smallest block min time (i64::MAX when empty).
    pub min: i64,
    /// Largest block max time (i64::MIN when empty).
    pub max: i64,
}

/// The corruption of TSM file `name`.
fn corrupt(name: &str, problem: TsmProblem) -> StoreError {
    Corruption::Tsm {
        file: name.to_string(),
        problem,
    }
    .into()
}

/// The store error for a TSM failure in file `name`.
pub(crate) fn tsm_err(name: &str, e: TsmError) -> StoreError {
    match e {
        TsmError::LimitExceeded { what, limit, got } => {
            StoreError::LimitExceeded { what, limit, got }
        }
        TsmError::Io { context, source } => StoreError::io(format!("{context} {name}"), source),
        e => corrupt(
            name,
            TsmProblem::Format {
                detail: e.to_string(),
            },
        ),
    }
}

/// Reads and strictly validates the index of a TSM file.
pub(crate) fn read_index(file: &mut File, _len: u64, name: &str) -> Result<Index> {
    let r = TsmReader::open(&mut *file).map_err(|e| tsm_err(name, e))?;
    let (min, max) = r.time_range().unwrap_or((i64::MAX, i64::MIN));
    Ok(Index {
        keys: r.keys().to_vec(),
        min,
        max,
    })
}

/// Whether `[a, b]` intersects `[s, e]` (all inclusive).
pub(crate) fn overlaps(a: i64, b: i64, s: i64, e: i64) -> bool {
    a <= e && b >= s
}

/// Writes to `out` a TSM file holding only the blocks of `src` that intersect `[s, e]`,
/// copied verbatim (CRC checked), with the index rebuilt; returns the number of blocks kept
/// (0 = nothing worth keeping: the caller drops the output).
pub(crate) fn filter(
    src: &mut File,
    index: &Index,
    s: i64,
    e: i64,
    out: File,
    name: &str,
) -> Result<(u64, File)> {
    let err = |e| tsm_err(name, e);
    let mut r = TsmReader::open(&mut *src).map_err(err)?;
    let mut w = TsmWriter::new(BufWriter::with_capacity(256 * 1024, out));
    let mut blocks = 0u64;
    for ks in &index.keys {
        for ent in ks
            .entries
            .iter()
            .filter(|x| overlaps(x.min_time, x.max_time, s, e))
        {
            let data = r.read_block_data(ent).map_err(err)?;
            w.write_block(&ks.key, ent.min_time, ent.max_time, &data)
                .map_err(err)?;
            blocks += 1;
        }
    }
    let buf = if blocks == 0 {
        w.into_inner()
    } else {
        w.finish().map_err(err)?
    };
    let file = buf
        .into_inner()
        .map_err(|e| StoreError::io(format!("write filtered TSM {name}"), e.into_error()))?;
    Ok((blocks, file))
}

/// Decodes every point of a TSM file, one [`Point`] per (series, time) with its fields in key
/// order, values covered by `deleted` dropped.
pub(crate) fn read_points(
    file: &mut File,
    _len: u64,
    name: &str,
    deleted: &Tombstones,
) -> Result<Vec<Point>> {
    let err = |e| tsm_err(name, e);
    let mut r = TsmReader::open(&mut *file).map_err(err)?;
    let mut rows: BTreeMap<(usize, i64), Point> = BTreeMap::new();
    let mut series_ids: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for ks in r.keys().to_vec() {
        let (series, field) = snapshotd_tsm::split_key(&ks.key);
        let next = series_ids.len();
        let sid = *series_ids.entry(series.to_vec()).or_insert(next);
        let text =
            std::str::from_utf8(series).map_err(|_| corrupt(name, TsmProblem::SeriesKeyNotUtf8))?;
        let (measurement, tags) = snapshotd_tsm::parse_series_key(text).ok_or_else(|| {
            corrupt(
                name,
                TsmProblem::BadSeriesKey {
                    key: text.to_string(),
                },
            )
        })?;
        let field = String::from_utf8_lossy(field).into_owned();
        let values = r.read_key_filtered(&ks.key, Some(deleted)).map_err(err)?;
        for (t, v) in values.map(points).unwrap_or_default() {
            rows.entry((sid, t))
                .or_insert_with(|| Point {
                    measurement: measurement.clone(),
                    tags: tags.clone(),
                    fields: Vec::new(),
                    time_ns: t,
                })
                .fields
                .push((field.clone(), v));
        }
    }
    Ok(rows.into_values().collect())
}

/// Typed TSM values as the store's (time, value) pairs.
pub(crate) fn points(v: Values) -> Vec<(i64, Value)> {
    match v {
        Values::Float(v) => v.into_iter().map(|(t, x)| (t, Value::Float(x))).collect(),
        Values::Integer(v) => v.into_iter().map(|(t, x)| (t, Value::Integer(x))).collect(),
        Values::Unsigned(v) => v
            .into_iter()
            .map(|(t, x)| (t, Value::Unsigned(x)))
            .collect(),
        Values::Boolean(v) => v.into_iter().map(|(t, x)| (t, Value::Boolean(x))).collect(),
        Values::String(v) => v.into_iter().map(|(t, x)| (t, Value::String(x))).collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn series_keys_parse_as_before() {
        let (m, tags) =
            snapshotd_tsm::parse_series_key(r"cpu,host=h0,region=eu").unwrap_or_default();
        assert_eq!((m.as_str(), tags.len()), ("cpu", 2));
    }
}
