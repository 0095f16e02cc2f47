//! Logged points to TSM: a [`PointSet`] gathers points per TSM key (series key + field) and
//! writes them as one TSM file, keys sorted, times ascending, a later write of the same
//! (series, field, time) replacing an earlier one as in influx.

use std::collections::HashMap;
use std::io::Write;

use snapshotd_tsm::{TsmWriter, Values};

use super::tsm::tsm_err;
use super::write::{Point, Value};
use crate::error::Result;

/// A series as written: measurement and tags (sorted by key).
type SeriesId = (String, Vec<(String, String)>);
/// (time, value) pairs of one field in log order.
type Column = Vec<(i64, Value)>;

/// The fields of one series, gathered in log order.
#[derive(Debug, Default)]
struct Series {
    fields: HashMap<String, Column>,
}

/// Points gathered for one TSM file. Points move in without per-value allocations once their
/// series and field are known; TSM keys are built and sorted only when writing.
#[derive(Debug, Default)]
pub(crate) struct PointSet {
    index: HashMap<SeriesId, usize>,
    series: Vec<Series>,
    values: usize,
    /// Field values dropped because their type differs from the field's first value.
    pub conflicts: u64,
}

impl PointSet {
    /// Adds a point's field values (in log order).
    pub(crate) fn add(&mut self, p: Point) {
        let mut tags = p.tags;
        tags.sort(); // one series whatever the tag order of the line
        let next = self.series.len();
        let id = *self.index.entry((p.measurement, tags)).or_insert(next);
        if id == next {
            self.series.push(Series::default());
        }
        let Some(series) = self.series.get_mut(id) else {
            return;
        };
        for (field, value) in p.fields {
            match series.fields.get_mut(&field) {
                Some(v) => v.push((p.time_ns, value)),
                None => {
                    series.fields.insert(field, vec![(p.time_ns, value)]);
                }
            }
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

    /// Writes the set as a TSM file to `w`; returns `w`.
    pub(crate) fn write_tsm<W: Write>(mut self, w: W, name: &str) -> Result<W> {
        let err = |e| tsm_err(name, e);
        let mut names: Vec<(SeriesId, usize)> =
            std::mem::take(&mut self.index).into_iter().collect();
        let mut series = std::mem::take(&mut self.series);
        let mut keyed: Vec<(Vec<u8>, Column)> = Vec::new();
        for ((measurement, tags), id) in names.drain(..) {
            let Some(s) = series.get_mut(id) else {
                continue;
            };
            let tags: Vec<(&str, &str)> =
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let sk = snapshotd_tsm::series_key(&measurement, &tags);
            for (field, vals) in std::mem::take(&mut s.fields) {
                keyed.push((
                    snapshotd_tsm::join_key(sk.as_bytes(), field.as_bytes()),
                    vals,
                ));
            }
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        // Series that escape to the same key become one key.
        keyed.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.1.append(&mut later.1);
            }
            same
        });
        let mut tw = TsmWriter::new(w);
        for (key, vals) in keyed {
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

    /// One key's values (see [`column`]).
    fn column(&mut self, vals: Column) -> Values {
        column(vals, &mut self.conflicts)
    }
}

/// One key's values from (time, value) pairs in write order: sorted by time, the last write
/// of a time kept, typed by the value at the earliest time (others counted in `conflicts`).
pub(crate) fn column(mut vals: Vec<(i64, Value)>, conflicts: &mut u64) -> Values {
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
            _ => *conflicts += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapshotd_tsm::TsmReader;

    fn point(tags: &[(&str, &str)], t: i64, v: Value) -> Point {
        Point {
            measurement: "m".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fields: vec![("f".into(), v)],
            time_ns: t,
        }
    }

    #[test]
    fn tag_order_last_write_and_type_conflicts() -> Result<()> {
        let mut set = PointSet::default();
        set.add(point(&[("b", "2"), ("a", "1")], 5, Value::Integer(1)));
        set.add(point(&[("a", "1"), ("b", "2")], 3, Value::Integer(2)));
        set.add(point(&[("a", "1"), ("b", "2")], 5, Value::Integer(3)));
        set.add(point(&[("a", "1"), ("b", "2")], 7, Value::Float(1.0)));
        set.add(point(&[], 1, Value::String(String::new())));
        let bytes = set.write_tsm(Vec::new(), "t.tsm")?;
        let mut r = TsmReader::open(std::io::Cursor::new(bytes)).map_err(|e| tsm_err("t", e))?;
        let keys: Vec<Vec<u8>> = r.keys().iter().map(|k| k.key.clone()).collect();
        assert_eq!(keys, [b"m#!~#f".to_vec(), b"m,a=1,b=2#!~#f".to_vec()]);
        let got = r.read_key(b"m,a=1,b=2#!~#f").map_err(|e| tsm_err("t", e))?;
        // One series whatever the tag order; the later write of time 5 wins; the float
        // written to an integer field is dropped.
        assert_eq!(got, Some(Values::Integer(vec![(3, 2), (5, 3)])));
        Ok(())
    }
}
