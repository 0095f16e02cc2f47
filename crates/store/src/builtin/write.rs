//! Line protocol: parsing a batch (with `influxdb-line-protocol`), timestamps to ns, and the
//! encoding of the points stored in one shard WAL entry (a JSON array of points).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use influxdb_line_protocol::{FieldValue, ParsedLine, parse_lines, split_lines};
use serde::{Deserialize, Serialize};

use crate::error::{Corruption, InvalidInput, LineProblem, Result, StoreError};
use crate::types::Precision;

/// A field value of a stored point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// 64-bit float.
    Float(f64),
    /// Signed integer (`i` suffix).
    Integer(i64),
    /// Unsigned integer (`u` suffix).
    Unsigned(u64),
    /// String.
    String(String),
    /// Boolean.
    Boolean(bool),
}

/// One stored point: measurement, tags, fields and a ns timestamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Measurement name.
    #[serde(rename = "m")]
    pub measurement: String,
    /// Tags in line order.
    #[serde(rename = "t")]
    pub tags: Vec<(String, String)>,
    /// Fields in line order.
    #[serde(rename = "f")]
    pub fields: Vec<(String, Value)>,
    /// Unix nanoseconds.
    #[serde(rename = "ts")]
    pub time_ns: i64,
}

/// A parsed point with its 1-based line number in the batch.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// 1-based line number in the batch.
    pub line_no: usize,
    /// The point (timestamp in ns).
    pub point: Point,
}

fn multiplier(p: Precision) -> i64 {
    match p {
        Precision::Nanoseconds => 1,
        Precision::Microseconds => 1_000,
        Precision::Milliseconds => 1_000_000,
        Precision::Seconds => 1_000_000_000,
        Precision::Minutes => 60_000_000_000,
        Precision::Hours => 3_600_000_000_000,
    }
}

/// Now in Unix ns.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses a whole batch; any bad line fails the batch with its 1-based line number.
pub(crate) fn parse_batch(
    database: &str,
    body: &[u8],
    precision: Precision,
) -> Result<Vec<Parsed>> {
    let bad = |line, problem| -> StoreError {
        InvalidInput::Line {
            database: database.to_string(),
            line,
            problem,
        }
        .into()
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        bad(line, LineProblem::NotUtf8)
    })?;
    let now = now_ns();
    let mult = multiplier(precision);
    let mut out = Vec::new();
    let mut line_no = 1usize;
    for piece in split_lines(text) {
        let this_line = line_no;
        line_no += piece.matches('\n').count() + 1;
        for parsed in parse_lines(piece) {
            let parsed = parsed.map_err(|e| {
                let detail = e.to_string();
                bad(this_line, LineProblem::Syntax { detail })
            })?;
            let ts = match parsed.timestamp {
                Some(t) => t
                    .checked_mul(mult)
                    .ok_or_else(|| bad(this_line, LineProblem::TimestampOutOfRange))?,
                None => now,
            };
            out.push(Parsed {
                line_no: this_line,
                point: to_point(&parsed, ts),
            });
        }
    }
    Ok(out)
}

/// Largest encoded WAL entry we build (the WAL refuses records of 10 MiB and more).
pub(crate) const MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;

/// Encodes points as stored WAL entries (JSON arrays of at most [`MAX_ENTRY_BYTES`]).
pub(crate) fn encode_points(points: &[&Point]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut cur = vec![b'['];
    for p in points {
        let one = serde_json::to_vec(p).map_err(|e| StoreError::Backend(Box::new(e)))?;
        if one.len() + 2 > MAX_ENTRY_BYTES {
            return Err(StoreError::LimitExceeded {
                what: "encoded point",
                limit: MAX_ENTRY_BYTES as u64,
                got: one.len() as u64,
            });
        }
        if cur.len() + one.len() + 1 > MAX_ENTRY_BYTES {
            cur.push(b']');
            out.push(std::mem::replace(&mut cur, vec![b'[']));
        }
        if cur.len() > 1 {
            cur.push(b',');
        }
        cur.extend_from_slice(&one);
    }
    if cur.len() > 1 {
        cur.push(b']');
        out.push(cur);
    }
    Ok(out)
}

/// Decodes a stored WAL entry of the shard log in `dir`.
pub(crate) fn decode_entry(data: &[u8], dir: &Path) -> Result<Vec<Point>> {
    serde_json::from_slice(data).map_err(|e| {
        Corruption::LogEntry {
            dir: dir.to_path_buf(),
            detail: e.to_string(),
        }
        .into()
    })
}

fn to_point(l: &ParsedLine<'_>, time_ns: i64) -> Point {
    let tags = l
        .series
        .tag_set
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string()))
        .collect();
    let fields = l
        .field_set
        .iter()
        .map(|(k, v)| {
            let v = match v {
                FieldValue::I64(i) => Value::Integer(*i),
                FieldValue::U64(u) => Value::Unsigned(*u),
                FieldValue::F64(f) => Value::Float(*f),
                FieldValue::String(s) => Value::String(s.as_str().to_string()),
                FieldValue::Boolean(b) => Value::Boolean(*b),
            };
            (k.as_str().to_string(), v)
        })
        .collect();
    Point {
        measurement: l.series.measurement.as_str().to_string(),
        tags,
        fields,
        time_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_parses_scales_and_round_trips() -> Result<()> {
        let body =
            b"# comment\ncpu,host=a\\ b value=1.5,n=3i 2\n\nmem s=\"x \\\"y\\\"\",ok=true 3\n";
        let got = parse_batch("db", body, Precision::Seconds)?;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].point.time_ns, 2_000_000_000);
        assert_eq!(got[1].line_no, 4);
        let entries = encode_points(&got.iter().map(|p| &p.point).collect::<Vec<_>>())?;
        assert_eq!(entries.len(), 1);
        let pts = decode_entry(&entries[0], Path::new("wal"))?;
        assert_eq!(pts[0].tags, vec![("host".into(), "a b".into())]);
        assert_eq!(pts[0].fields[1], ("n".into(), Value::Integer(3)));
        assert_eq!(
            pts[1].fields[0],
            ("s".into(), Value::String("x \"y\"".into()))
        );
        assert_eq!(pts[1].time_ns, 3_000_000_000);
        Ok(())
    }

    #[test]
    fn large_batches_split_into_bounded_entries() -> Result<()> {
        let big = "x".repeat(400_000);
        let body: String = (0..12).map(|i| format!("m s=\"{big}\" {i}\n")).collect();
        let got = parse_batch("db", body.as_bytes(), Precision::Nanoseconds)?;
        let entries = encode_points(&got.iter().map(|p| &p.point).collect::<Vec<_>>())?;
        assert!(entries.len() >= 2);
        assert!(entries.iter().all(|e| e.len() <= MAX_ENTRY_BYTES));
        let back: Vec<Point> = entries
            .iter()
            .map(|e| decode_entry(e, Path::new("wal")))
            .collect::<Result<Vec<_>>>()?
            .concat();
        assert_eq!(back, got.into_iter().map(|p| p.point).collect::<Vec<_>>());
        Ok(())
    }

    #[test]
    fn bad_line_is_named() {
        let err = parse_batch(
            "db",
            b"cpu value=1 1\ncpu value= 2\n",
            Precision::Nanoseconds,
        );
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("line 2"), "{msg}");
        let err = parse_batch(
            "db",
            b"cpu value=1 9223372036854775807\n",
            Precision::Seconds,
        );
        assert!(matches!(err, Err(StoreError::Invalid(_))));
    }
}
