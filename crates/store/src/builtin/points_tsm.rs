//! Logged points to TSM: a [`PointSet`] gathers points per TSM key (series key + field) and
//! writes them as one TSM file, keys sorted, times ascending, a later write of the same
//! (series, field, time) replacing an earlier one as in influx.

use std::collections::BTreeMap;
use std::io::Write;

use snapshotd_tsm::{TsmWriter, Values};

use super::tsm::tsm_err;
use super::write::{Point, Value};
use crate::error::Result;

/// Points gathered for one TSM file.
#[derive(Debug, Default)]
pub(crate) struct PointSet {
    keys: BTreeMap<Vec<u8>, Vec<(i64, Value)>>,
    values: usize,
    /// Field values dropped because their type differs from the field's first value.
    pub conflicts: u64,
}

impl PointSet {
    /// Adds a point's field values (in log order).
    pub(crate) fn add(&mut self, p: Point) {
        let tags: Vec<(&str, &str)> = p
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let series = snapshotd_tsm::series_key(&p.measurement, &tags);
        for (field, value) in p.fields {
            let key = snapshotd_tsm::join_key(series.as_bytes(), field.as_bytes());
            self.keys.entry(key).or_default().push((p.time_ns, value));
            self.values += 1;
        }
    }

    /// Field values added so far.
    pub(crate) fn len(&self) -> usize {
        self.values
    }

    /// Whether nothing was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.values == 0
    }

    /// Writes the set as a TSM file to `w`; returns `w` (nothing is written when empty).
    pub(crate) fn write_tsm<W: Write>(mut self, w: W, name: &str) -> Result<W> {
        let err = |e| tsm_err(name, e);
        let mut tw = TsmWriter::new(w);
        let keys = std::mem::take(&mut self.keys);
        for (key, vals) in keys {
            let values = self.column(vals);
            tw.write(&key, &values).map_err(err)?;
        }
        if self.conflicts > 0 {
            tracing::warn!(
                file = name,
                dropped = self.conflicts,
                "field values of a conflicting type dropped"
            );
        }
        tw.finish().map_err(err)
    }

    /// One key's values: sorted by time, the last write of a time kept, typed by the first.
    fn column(&mut self, mut vals: Vec<(i64, Value)>) -> Values {
        vals.reverse(); // the stable sort then keeps the latest write of a time first
        vals.sort_by_key(|(t, _)| *t);
        vals.dedup_by_key(|(t, _)| *t);
        let mut out = match vals.first().map(|(_, v)| v) {
            Some(Value::Float(_)) | None => Values::Float(Vec::new()),
            Some(Value::Integer(_)) => Values::Integer(Vec::new()),
            Some(Value::Unsigned(_)) => Values::Unsigned(Vec::new()),
            Some(Value::Boolean(_)) => Values::Boolean(Vec::new()),
            Some(Value::String(_)) => Values::String(Vec::new()),
        };
        for (t, v) in vals {
            match (&mut out, v) {
                (Values::Float(o), Value::Float(x)) => o.push((t, x)),
                (Values::Integer(o), Value::Integer(x)) => o.push((t, x)),
                (Values::Unsigned(o), Value::Unsigned(x)) => o.push((t, x)),
                (Values::Boolean(o), Value::Boolean(x)) => o.push((t, x)),
                (Values::String(o), Value::String(x)) => o.push((t, x)),
                _ => self.conflicts += 1,
            }
        }
        out
    }
}
