//! Aggregate `SELECT`s over a measurement's stored values (count, sum, mean, min, max,
//! first, last), answered like influx: one row, time 0 unless a lone selector gives its
//! value's time; `agg(*)` gives one `agg_field` column per field.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use snapshotd_store::{AdminStore, Scalar, StoreError};

use super::influxql::{Aggregate, Call, Source};

/// What one column of the result needs to know about a field's values.
#[derive(Debug, Default, Clone)]
struct Acc {
    count: u64,
    sum_f: f64,
    sum_i: i128,
    any_float: bool,
    numeric: bool,
    other: Option<&'static str>,
    min: Option<(f64, i64, Value)>,
    max: Option<(f64, i64, Value)>,
    first: Option<(i64, Value)>,
    last: Option<(i64, Value)>,
}

impl Acc {
    fn add(&mut self, ns: i64, v: Scalar<'_>) {
        self.count += 1;
        let (num, json) = match v {
            Scalar::Float(f) => {
                self.any_float = true;
                (Some(f), go_float(f))
            }
            Scalar::Integer(i) => {
                self.sum_i += i128::from(i);
                (Some(i as f64), json!(i))
            }
            Scalar::Unsigned(u) => {
                self.sum_i += i128::from(u);
                (Some(u as f64), json!(u))
            }
            Scalar::Boolean(b) => {
                self.other = Some("boolean");
                (None, json!(b))
            }
            Scalar::Str(s) => {
                self.other = Some("string");
                (None, json!(s))
            }
        };
        if let Some(n) = num {
            self.numeric = true;
            self.sum_f += n;
            if self
                .min
                .as_ref()
                .is_none_or(|(m, t, _)| n < *m || (n == *m && ns < *t))
            {
                self.min = Some((n, ns, json.clone()));
            }
            if self
                .max
                .as_ref()
                .is_none_or(|(m, t, _)| n > *m || (n == *m && ns < *t))
            {
                self.max = Some((n, ns, json.clone()));
            }
        }
        if self.first.as_ref().is_none_or(|(t, _)| ns < *t) {
            self.first = Some((ns, json.clone()));
        }
        if self.last.as_ref().is_none_or(|(t, _)| ns >= *t) {
            self.last = Some((ns, json));
        }
    }

    /// The column's value and, for selectors, the time of the value chosen.
    fn result(&self, agg: Aggregate) -> Result<(Value, Option<i64>), String> {
        let numeric_only = matches!(
            agg,
            Aggregate::Sum | Aggregate::Mean | Aggregate::Min | Aggregate::Max
        );
        if numeric_only && let Some(kind) = self.other {
            return Err(format!("unsupported {} iterator type: {kind}", agg.name()));
        }
        let picked = |o: &Option<(f64, i64, Value)>| match o {
            Some((_, t, v)) => (v.clone(), Some(*t)),
            None => (Value::Null, None),
        };
        let timed = |o: &Option<(i64, Value)>| match o {
            Some((t, v)) => (v.clone(), Some(*t)),
            None => (Value::Null, None),
        };
        Ok(match agg {
            Aggregate::Count => (json!(self.count), None),
            Aggregate::Sum if !self.numeric => (Value::Null, None),
            Aggregate::Sum if self.any_float => (go_float(self.sum_f), None),
            Aggregate::Sum => (json!(self.sum_i), None),
            Aggregate::Mean if self.count == 0 => (Value::Null, None),
            Aggregate::Mean => (go_float(self.sum_f / self.count as f64), None),
            Aggregate::Min => picked(&self.min),
            Aggregate::Max => picked(&self.max),
            Aggregate::First => timed(&self.first),
            Aggregate::Last => timed(&self.last),
        })
    }
}

/// A result series: the measurement, column names and rows.
pub(super) struct Table {
    /// Series name (the measurement).
    pub(super) name: String,
    /// Column names, `time` first.
    pub(super) columns: Vec<String>,
    /// Rows (one for an aggregate query).
    pub(super) rows: Vec<Value>,
}

/// Runs `SELECT calls FROM source`; `Ok(None)` when the measurement holds no values.
pub(super) fn run(
    store: &dyn AdminStore,
    calls: &[Call],
    source: &Source,
    default_db: Option<&str>,
) -> Result<Option<Table>, String> {
    let Some(db) = source.database.as_deref().or(default_db) else {
        return Err("database name required".to_string());
    };
    let mut fields: BTreeMap<String, Acc> = BTreeMap::new();
    store
        .scan_values(
            db,
            source.retention_policy.as_deref(),
            &source.measurement,
            &mut |f, ns, v| {
                if let Some(a) = fields.get_mut(f) {
                    a.add(ns, v);
                } else {
                    let mut a = Acc::default();
                    a.add(ns, v);
                    fields.insert(f.to_string(), a);
                }
            },
        )
        .map_err(|e| match e {
            StoreError::NotFound { .. } => format!("{e} (database {db})"),
            e => e.to_string(),
        })?;
    if fields.is_empty() {
        return Ok(None);
    }
    let (columns, cells, times) = columns(calls, &fields)?;
    let lone_selector = calls.len() == 1 && calls[0].aggregate.is_selector() && cells.len() == 1;
    let time = match (lone_selector, times.first()) {
        (true, Some(Some(t))) => *t,
        _ => 0,
    };
    let mut row = vec![json!(time_string(time))];
    row.extend(cells);
    let mut names = vec!["time".to_string()];
    names.extend(columns);
    Ok(Some(Table {
        name: source.measurement.clone(),
        columns: names,
        rows: vec![Value::Array(row)],
    }))
}

type Columns = (Vec<String>, Vec<Value>, Vec<Option<i64>>);

/// Column names (influx's: `count`, `count_1`, …; `count_usage` for `count(*)`) and cells.
fn columns(calls: &[Call], fields: &BTreeMap<String, Acc>) -> Result<Columns, String> {
    let empty = Acc::default();
    let (mut names, mut cells, mut times) = (Vec::new(), Vec::new(), Vec::new());
    for c in calls {
        let targets: Vec<(String, &Acc)> = match &c.field {
            Some(f) => vec![(
                c.aggregate.name().to_string(),
                fields.get(f).unwrap_or(&empty),
            )],
            None => fields
                .iter()
                .filter(|(_, a)| {
                    !c.aggregate.is_selector() || a.other.is_none() || {
                        matches!(c.aggregate, Aggregate::First | Aggregate::Last)
                    }
                })
                .map(|(f, a)| (format!("{}_{f}", c.aggregate.name()), a))
                .collect(),
        };
        for (base, acc) in targets {
            let (v, t) = acc.result(c.aggregate)?;
            let mut name = base.clone();
            let mut n = 0;
            while names.contains(&name) {
                n += 1;
                name = format!("{base}_{n}");
            }
            names.push(name);
            cells.push(v);
            times.push(t);
        }
    }
    Ok((names, cells, times))
}

/// A float as Go's JSON encoder writes it: integral values without a fraction (`-300`,
/// not `-300.0`), so replies read the same as influxd's.
fn go_float(f: f64) -> Value {
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53: every integral f64 below is exact
    if f.fract() == 0.0 && f.abs() < LIMIT {
        return json!(f as i64);
    }
    json!(f)
}

/// RFC 3339 with nanoseconds trimmed of trailing zeros, as Go's `RFC3339Nano`.
fn time_string(ns: i64) -> String {
    let dt = chrono::DateTime::from_timestamp_nanos(ns);
    let secs = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = ns.rem_euclid(1_000_000_000);
    if frac == 0 {
        return format!("{secs}Z");
    }
    let digits = format!("{frac:09}");
    format!("{secs}.{}Z", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_trim_trailing_zeros_like_go() {
        assert_eq!(time_string(0), "1970-01-01T00:00:00Z");
        assert_eq!(time_string(1_500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(
            time_string(1_767_225_600_000_000_001),
            "2026-01-01T00:00:00.000000001Z"
        );
    }

    #[test]
    fn integer_sums_stay_integers_and_mixed_become_floats() {
        let mut a = Acc::default();
        a.add(1, Scalar::Integer(i64::MAX));
        a.add(2, Scalar::Integer(1));
        assert_eq!(
            a.result(Aggregate::Sum).ok(),
            Some((json!(i128::from(i64::MAX) + 1), None))
        );
        a.add(3, Scalar::Float(0.5));
        assert!(
            a.result(Aggregate::Sum)
                .ok()
                .is_some_and(|(v, _)| v.is_f64())
        );
        assert_eq!(a.result(Aggregate::Count).ok(), Some((json!(3), None)));
        assert_eq!(a.result(Aggregate::Last).ok(), Some((json!(0.5), Some(3))));
        assert_eq!(a.result(Aggregate::Min).ok(), Some((json!(0.5), Some(3))));
    }

    #[test]
    fn integral_floats_print_like_go() {
        assert_eq!(go_float(-300.0).to_string(), "-300");
        assert_eq!(go_float(0.25).to_string(), "0.25");
        assert!(go_float(1e300).is_f64());
    }

    #[test]
    fn numeric_functions_refuse_strings() {
        let mut a = Acc::default();
        a.add(1, Scalar::Str("x"));
        assert!(a.result(Aggregate::Sum).is_err());
        assert_eq!(a.result(Aggregate::First).ok(), Some((json!("x"), Some(1))));
    }
}
