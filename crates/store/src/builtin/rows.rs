//! A shard's points as a query sees them: one point per (series, time), each field holding
//! its last write. Sources are added oldest first (TSM files in generation order, then the
//! log tail in write order), so a later write of the same series, field and time replaces
//! the earlier one wherever the two landed.

use std::collections::BTreeMap;

use super::write::{Point, Value};

/// A series (measurement, tags sorted by key) and a time.
type RowKey = (String, Vec<(String, String)>, i64);

/// Points gathered by (series, time), fields by name.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    rows: BTreeMap<RowKey, BTreeMap<String, Value>>,
}

impl Rows {
    /// Adds a point; its fields replace those already held for the same series and time.
    pub(crate) fn add(&mut self, p: Point) {
        let mut tags = p.tags;
        tags.sort();
        let row = self
            .rows
            .entry((p.measurement, tags, p.time_ns))
            .or_default();
        for (field, value) in p.fields {
            row.insert(field, value);
        }
    }

    /// The points by series then time, fields by name.
    pub(crate) fn into_points(self) -> Vec<Point> {
        self.rows
            .into_iter()
            .map(|((measurement, tags, time_ns), fields)| Point {
                measurement,
                tags,
                fields: fields.into_iter().collect(),
                time_ns,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(tags: &[(&str, &str)], t: i64, fields: &[(&str, i64)]) -> Point {
        Point {
            measurement: "m".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), Value::Integer(*v)))
                .collect(),
            time_ns: t,
        }
    }

    #[test]
    fn later_writes_replace_fields_of_the_same_series_and_time() {
        let mut rows = Rows::default();
        rows.add(p(&[("a", "1"), ("b", "2")], 5, &[("x", 1), ("y", 1)]));
        rows.add(p(&[("b", "2"), ("a", "1")], 5, &[("x", 2)]));
        rows.add(p(&[("a", "1"), ("b", "2")], 6, &[("x", 3)]));
        let got = rows.into_points();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].fields,
            [
                ("x".into(), Value::Integer(2)),
                ("y".into(), Value::Integer(1))
            ]
        );
        assert_eq!(got[1].time_ns, 6);
    }
}
