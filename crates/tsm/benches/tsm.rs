//! Benchmarks: TSM encode (TsmWriter) and decode (TsmReader: CRC + block decode) throughput per
//! value type. Throughput counts the raw points: 16 bytes per point (8-byte time + 8-byte value;
//! strings: 8 + the string's length). `SNAPSHOTD_BENCH_QUICK=1` makes a short smoke run.
#![allow(clippy::expect_used, missing_docs)] // bench setup: a failure must abort the run loudly

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use snapshotd_tsm::{TsmReader, Values, write_values};

/// Points per key; 100 keys of 1000-point blocks.
const POINTS: usize = 10_000;
const KEYS: usize = 10;

/// Realistic series: 10 s intervals with a little jitter on a tenth of them.
fn times() -> Vec<i64> {
    (0..POINTS as i64)
        .map(|i| {
            1_600_000_000_000_000_000 + i * 10_000_000_000 + if i % 10 == 3 { 7_000 } else { 0 }
        })
        .collect()
}

fn dataset(kind: &str) -> (BTreeMap<Vec<u8>, Values>, u64) {
    let ts = times();
    let mut m = BTreeMap::new();
    let mut raw = 0u64;
    for k in 0..KEYS {
        let v = match kind {
            "float" => Values::Float(
                ts.iter()
                    .enumerate()
                    .map(|(i, t)| (*t, 20.0 + ((i * 7 + k) % 113) as f64 * 0.37))
                    .collect(),
            ),
            "integer" => Values::Integer(
                ts.iter()
                    .enumerate()
                    .map(|(i, t)| (*t, ((i * 31 + k) % 5000) as i64))
                    .collect(),
            ),
            "unsigned" => Values::Unsigned(
                ts.iter()
                    .enumerate()
                    .map(|(i, t)| (*t, (i * 1013 + k) as u64))
                    .collect(),
            ),
            "boolean" => Values::Boolean(
                ts.iter()
                    .enumerate()
                    .map(|(i, t)| (*t, (i / 5 + k) % 2 == 0))
                    .collect(),
            ),
            _ => Values::String(
                ts.iter()
                    .enumerate()
                    .map(|(i, t)| (*t, format!("status-{} host-{k}", i % 17)))
                    .collect(),
            ),
        };
        raw += match &v {
            Values::String(p) => p.iter().map(|x| 8 + x.1.len() as u64).sum(),
            v => 16 * v.len() as u64,
        };
        m.insert(format!("m,host=h{k}#!~#{kind}").into_bytes(), v);
    }
    (m, raw)
}

fn codecs(c: &mut Criterion) {
    let quick = std::env::var_os("SNAPSHOTD_BENCH_QUICK").is_some();
    for kind in ["float", "integer", "unsigned", "boolean", "string"] {
        let (data, raw) = dataset(kind);
        let file = write_values(Vec::new(), &data).expect("write");
        let mut g = c.benchmark_group(format!("tsm_{kind}"));
        g.throughput(Throughput::Bytes(raw));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(if quick { 1 } else { 5 }));
        g.warm_up_time(Duration::from_millis(if quick { 200 } else { 1000 }));
        g.bench_function("encode", |b| {
            b.iter(|| {
                black_box(write_values(Vec::with_capacity(file.len()), &data).expect("write"))
            })
        });
        g.bench_function("decode", |b| {
            b.iter(|| {
                let mut r = TsmReader::open(Cursor::new(file.as_slice())).expect("open");
                for k in data.keys() {
                    black_box(r.read_key(k).expect("read"));
                }
            })
        });
        g.finish();
        eprintln!(
            "tsm_{kind}: {raw} raw bytes -> {} bytes on disk ({:.2} bytes/point)",
            file.len(),
            file.len() as f64 / (POINTS * KEYS) as f64
        );
    }
}

criterion_group!(benches, codecs);
criterion_main!(benches);
