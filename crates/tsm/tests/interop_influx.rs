//! A TSM file written by `TsmWriter` is loaded by a real influxd 1.6.7 and queried
//! (`#[ignore]`: run by `cargo xtask interop influx`, or `cargo test -p snapshotd-tsm --test
//! interop_influx -- --ignored` with `influxd` on PATH or `SNAPSHOTD_INFLUXD_BIN`).
//!
//! The file (every field type, several measurements/series, keys of more than 1000 points, edge
//! values) is uploaded into a live shard the way `influxd restore -portable` does it (snapshotter
//! request type 7 with a tar), then count/sum/min/max/last per series and field are queried and
//! compared with what was written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use snapshotd_testutil::influxd::Influxd;
use snapshotd_tsm::{Values, join_key, write_values};

const T0: i64 = 1_609_459_200_000_000_000; // 2021-01-01T00:00:00Z
const STEP: i64 = 10_000_000_000;

fn times(n: usize) -> impl Iterator<Item = i64> {
    (0..n as i64).map(|i| T0 + 1_000_000_000 + i * STEP)
}

/// Series key -> field -> values.
fn dataset() -> BTreeMap<Vec<u8>, Values> {
    let mut m = BTreeMap::new();
    let mut put = |series: &str, field: &str, v: Values| {
        m.insert(join_key(series.as_bytes(), field.as_bytes()), v);
    };
    for (h, n) in [("h0", 2500), ("h1", 1001)] {
        // Multiples of 1/4 sum exactly in any order; -0.0 and large magnitudes included.
        let usage = times(n).enumerate().map(|(i, t)| {
            let x = match i % 7 {
                0 => -0.0,
                1 => 1e12,
                _ => (i as f64) * 0.25 - 300.0,
            };
            (t, x)
        });
        put(
            &format!("cpu,host={h},region=eu"),
            "usage",
            Values::Float(usage.collect()),
        );
        let count = times(n)
            .enumerate()
            .map(|(i, t)| (t, (i as i64 * 37) % 1000 - 500));
        put(
            &format!("cpu,host={h},region=eu"),
            "count",
            Values::Integer(count.collect()),
        );
    }
    let ext = [i64::MIN, -1, 0, 1, i64::MAX];
    put(
        "cpu,host=h2,region=us",
        "ext",
        Values::Integer(times(5).zip(ext).collect()),
    );
    put(
        "mem,host=h0",
        "free",
        Values::Unsigned(
            times(1200)
                .map(|t| (t, (t as u64 / 1_000_000_000) % 5000))
                .collect(),
        ),
    );
    put(
        "mem,host=h1",
        "free",
        Values::Unsigned(times(2).zip([0, u64::MAX]).collect()),
    );
    put(
        "mem,host=h0",
        "ok",
        Values::Boolean(
            times(1500)
                .enumerate()
                .map(|(i, t)| (t, i % 3 == 0))
                .collect(),
        ),
    );
    let labels = ["", "plain", "héllo wörld ✓", "with \"quotes\" and, commas"];
    put(
        "mem,host=h0",
        "label",
        Values::String(
            times(1100)
                .enumerate()
                .map(|(i, t)| (t, labels[i % 4].to_string()))
                .collect(),
        ),
    );
    m
}

/// Expected `[count, sum, min, max, last]` (JSON) of one key; `None` where the aggregate does
/// not apply to the type.
fn expected(v: &Values) -> Vec<Option<Json>> {
    fn num<T: Copy + Into<Json>>(xs: &[T], sum: Json, min: T, max: T) -> Vec<Option<Json>> {
        let last = xs.last().copied().map(Into::into);
        vec![
            Some(xs.len().into()),
            Some(sum),
            Some(min.into()),
            Some(max.into()),
            last,
        ]
    }
    match v {
        Values::Float(p) => {
            let xs: Vec<f64> = p.iter().map(|x| x.1).collect();
            let (lo, hi) = xs
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
            num(&xs, xs.iter().sum::<f64>().into(), lo, hi)
        }
        Values::Integer(p) => {
            let xs: Vec<i64> = p.iter().map(|x| x.1).collect();
            let sum = xs.iter().fold(0i64, |a, x| a.wrapping_add(*x));
            num(
                &xs,
                sum.into(),
                *xs.iter().min().unwrap(),
                *xs.iter().max().unwrap(),
            )
        }
        Values::Unsigned(p) => {
            let xs: Vec<u64> = p.iter().map(|x| x.1).collect();
            let sum = xs.iter().fold(0u64, |a, x| a.wrapping_add(*x));
            num(
                &xs,
                sum.into(),
                *xs.iter().min().unwrap(),
                *xs.iter().max().unwrap(),
            )
        }
        Values::Boolean(p) => vec![
            Some(p.len().into()),
            None,
            None,
            None,
            p.last().map(|x| x.1.into()),
        ],
        Values::String(p) => vec![
            Some(p.len().into()),
            None,
            None,
            None,
            p.last().map(|x| x.1.clone().into()),
        ],
    }
}

/// JSON equality with numbers compared by value (influxd prints whole floats without `.0`):
/// integers exactly, anything else as f64.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(p), Some(q), _, _) => p == q,
                (_, _, Some(p), Some(q)) => p == q,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        _ => a == b,
    }
}

/// The id of the shard of `db` (created by writing one sentinel point).
fn shard_id(s: &Influxd, db: &str) -> u64 {
    let v = s.query("SHOW SHARDS");
    for series in v["results"][0]["series"].as_array().unwrap() {
        for row in series["values"].as_array().unwrap() {
            if row[1] == db {
                return row[0].as_u64().unwrap();
            }
        }
    }
    panic!("no shard for {db}: {v}");
}

/// Uploads `tsm` into shard `id` as `influxd restore` does (type 7: mux, type, id, tar).
fn upload(s: &Influxd, id: u64, name: &str, tsm: &[u8]) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(tsm.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, name, tsm).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut c = TcpStream::connect(&s.bind).unwrap();
    c.write_all(&[0x03, 0x07]).unwrap();
    c.write_all(&id.to_be_bytes()).unwrap();
    c.write_all(&tar).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
}

/// `SELECT <aggs> FROM <measurement> GROUP BY *`, as series tag-string -> row.
fn aggregates(
    s: &Influxd,
    measurement: &str,
    field: &str,
    numeric: bool,
) -> BTreeMap<String, Vec<Json>> {
    let aggs = if numeric {
        format!("count({field}), sum({field}), min({field}), max({field}), last({field})")
    } else {
        format!("count({field}), last({field})")
    };
    let v = s.query(&format!(
        "SELECT {aggs} FROM \"tsmdb\".\"autogen\".\"{measurement}\" GROUP BY *"
    ));
    let mut out = BTreeMap::new();
    for series in v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let tags: BTreeMap<String, Json> = serde_json::from_value(series["tags"].clone()).unwrap();
        let key = tags
            .iter()
            .map(|(k, v)| format!(",{k}={}", v.as_str().unwrap()))
            .collect::<String>();
        let row = series["values"][0].as_array().unwrap()[1..].to_vec();
        out.insert(format!("{measurement}{key}"), row);
    }
    out
}

#[test]
#[ignore = "needs influxd 1.6.7: cargo xtask interop influx"]
fn influxd_loads_and_queries_our_tsm_file() {
    let s = Influxd::start();
    s.query("CREATE DATABASE tsmdb");
    s.write("tsmdb", None, &format!("sentinel v=1 {T0}\n"));
    let id = shard_id(&s, "tsmdb");
    let data = dataset();
    let tsm = write_values(Vec::new(), &data).unwrap();
    upload(
        &s,
        id,
        &format!("tsmdb/autogen/{id}/000000001-000000001.tsm"),
        &tsm,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while aggregates(&s, "cpu", "usage", true).is_empty() {
        assert!(
            Instant::now() < deadline,
            "influxd never showed the uploaded data"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut checked = 0;
    for (key, values) in &data {
        let (series, field) = snapshotd_tsm::split_key(key);
        let series = std::str::from_utf8(series).unwrap();
        let field = std::str::from_utf8(field).unwrap();
        let measurement = series.split(',').next().unwrap();
        let numeric = !matches!(values, Values::Boolean(_) | Values::String(_));
        let got = aggregates(&s, measurement, field, numeric);
        let row = got
            .get(series)
            .unwrap_or_else(|| panic!("{series} {field} missing: {got:?}"));
        let want: Vec<Json> = expected(values).into_iter().flatten().collect();
        assert!(
            row.len() == want.len() && row.iter().zip(&want).all(|(a, b)| same(a, b)),
            "{series} {field}: influxd says {row:?}, we wrote {want:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, data.len());
    // The sentinel written through influxd itself is still there, alongside our file.
    let v = s.query("SELECT count(v) FROM \"tsmdb\".\"autogen\".\"sentinel\"");
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 1, "{v}");
}
