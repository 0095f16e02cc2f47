//! Property tests: every codec and whole files round-trip, edge values included.

use std::collections::BTreeMap;
use std::io::Cursor;

use proptest::prelude::*;
use snapshotd_tsm::codec::{boolean, float, integer, string, timestamp};
use snapshotd_tsm::{TsmReader, Values, write_values};

const MAX: usize = 1 << 20;

fn edge_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        Just(-1),
        -1000i64..1000,
        any::<i64>()
    ]
}

fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::MAX),
        Just(0),
        Just(1 << 60),
        0u64..1000,
        any::<u64>()
    ]
}

/// Any float bit pattern but the end marker: NaN payloads, infinities, -0.0, subnormals.
fn edge_f64_bits() -> impl Strategy<Value = u64> {
    let special = prop_oneof![
        Just(f64::NAN.to_bits()),
        Just(0x7FF0_0000_0000_0001u64),
        Just(0xFFF8_0000_0000_0001u64),
        Just(f64::INFINITY.to_bits()),
        Just(f64::NEG_INFINITY.to_bits()),
        Just((-0.0f64).to_bits()),
        Just(1u64),
        (0i32..100).prop_map(|x| f64::from(x).to_bits()),
    ];
    prop_oneof![special, any::<u64>()].prop_filter("end marker", |b| *b != float::END)
}

/// Sequences shaped like real timestamps: regular runs (RLE), equal runs, jitter, any.
fn times() -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        (
            any::<i64>(),
            prop_oneof![-3i64..3, any::<i64>()],
            1usize..1200
        )
            .prop_map(|(t0, step, n)| (0..n as i64)
                .map(|i| t0.wrapping_add(step.wrapping_mul(i)))
                .collect()),
        (edge_i64(), 1usize..50).prop_map(|(t, n)| vec![t; n]),
        (
            -5_000_000_000i64..5_000_000_000,
            prop::collection::vec(0i64..1_000_000, 0..1100)
        )
            .prop_map(|(t0, ds)| ds
                .iter()
                .scan(t0, |t, d| {
                    *t += d * 1000;
                    Some(*t)
                })
                .collect()),
        prop::collection::vec(edge_i64(), 0..200),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn timestamps_round_trip(ts in times()) {
        let mut b = Vec::new();
        timestamp::encode(&ts, &mut b);
        if ts.is_empty() {
            prop_assert!(b.is_empty());
        } else {
            prop_assert_eq!(timestamp::count(&b)?, ts.len() as u64);
            prop_assert_eq!(timestamp::decode(&b, MAX)?, ts);
        }
    }

    #[test]
    fn integers_round_trip(v in prop_oneof![
        prop::collection::vec(edge_i64(), 0..1100),
        (edge_i64(), edge_i64(), 1usize..1100)
            .prop_map(|(a, d, n)| (0..n as i64).map(|i| a.wrapping_add(d.wrapping_mul(i))).collect()),
    ]) {
        let mut b = Vec::new();
        integer::encode(&v, &mut b);
        prop_assert_eq!(integer::decode(&b, MAX)?, v);
    }

    #[test]
    fn unsigned_round_trip(v in prop::collection::vec(edge_u64(), 0..1100)) {
        let mut b = Vec::new();
        integer::encode_unsigned(&v, &mut b);
        prop_assert_eq!(integer::decode_unsigned(&b, MAX)?, v);
    }

    #[test]
    fn floats_round_trip_bit_exact(bits in prop::collection::vec(edge_f64_bits(), 0..1100)) {
        let v: Vec<f64> = bits.iter().map(|b| f64::from_bits(*b)).collect();
        let mut b = Vec::new();
        float::encode(&v, &mut b)?;
        let got: Vec<u64> = float::decode(&b, MAX)?.iter().map(|x| x.to_bits()).collect();
        prop_assert_eq!(got, bits);
    }

    #[test]
    fn booleans_round_trip(v in prop::collection::vec(any::<bool>(), 0..1100)) {
        let mut b = Vec::new();
        boolean::encode(&v, &mut b);
        prop_assert_eq!(boolean::decode(&b, MAX)?, v);
    }

    #[test]
    fn strings_round_trip(v in prop::collection::vec(
        prop_oneof![Just(String::new()), "\\PC{0,30}", "[a-c]{0,20}"], 0..100),
        long in "[a-zé✓]{0,1}".prop_map(|s| s.repeat(5000))) {
        let mut v = v;
        v.push(long);
        let mut b = Vec::new();
        string::encode(&v, &mut b)?;
        prop_assert_eq!(string::decode(&b, MAX)?, v);
    }
}

/// Strictly increasing times from any start (negative included), 1..=n points.
fn series(n: usize) -> impl Strategy<Value = Vec<i64>> {
    (
        any::<i32>(),
        prop::collection::vec(1i64..1_000_000_000_000, 0..n),
    )
        .prop_map(|(t0, ds)| {
            let t0 = i64::from(t0) * 1_000_000_000;
            std::iter::once(t0)
                .chain(ds.iter().scan(t0, |t, d| {
                    *t += d;
                    Some(*t)
                }))
                .collect()
        })
}

fn any_values() -> impl Strategy<Value = Values> {
    let n = 2100;
    prop_oneof![
        series(n).prop_flat_map(
            |ts| prop::collection::vec(edge_f64_bits(), ts.len()).prop_map(move |b| Values::Float(
                ts.iter()
                    .zip(b)
                    .map(|(t, x)| (*t, f64::from_bits(x)))
                    .collect()
            ))
        ),
        series(n).prop_flat_map(|ts| prop::collection::vec(edge_i64(), ts.len())
            .prop_map(move |v| Values::Integer(ts.iter().copied().zip(v).collect()))),
        series(n).prop_flat_map(|ts| prop::collection::vec(edge_u64(), ts.len())
            .prop_map(move |v| Values::Unsigned(ts.iter().copied().zip(v).collect()))),
        series(n).prop_flat_map(|ts| prop::collection::vec(any::<bool>(), ts.len())
            .prop_map(move |v| Values::Boolean(ts.iter().copied().zip(v).collect()))),
        series(300).prop_flat_map(|ts| prop::collection::vec("\\PC{0,40}", ts.len())
            .prop_map(move |v| Values::String(ts.iter().copied().zip(v).collect()))),
    ]
}

/// Compares values with floats by bit pattern.
fn same(a: &Values, b: &Values) -> bool {
    match (a, b) {
        (Values::Float(x), Values::Float(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| p.0 == q.0 && p.1.to_bits() == q.1.to_bits())
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn files_round_trip(data in prop::collection::btree_map(
        prop::collection::vec(any::<u8>(), 1..40), any_values(), 1..6)) {
        let bytes = write_values(Vec::new(), &data)?;
        let mut r = TsmReader::open(Cursor::new(bytes))?;
        prop_assert_eq!(r.keys().len(), data.len());
        let mut back = BTreeMap::new();
        for (k, v) in &data {
            let ki = r.key_index(k).ok_or_else(|| TestCaseError::fail("key missing"))?;
            prop_assert_eq!(ki.entries.len(), v.len().div_ceil(1000));
            back.insert(k.clone(), r.read_key(k)?.ok_or_else(|| TestCaseError::fail("key missing"))?);
        }
        for (k, v) in &data {
            prop_assert!(same(v, &back[k]), "key {:?}", k);
        }
    }
}
