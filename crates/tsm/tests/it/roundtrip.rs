//! Files written by `TsmWriter` read back through `TsmReader`.

use std::collections::BTreeMap;
use std::io::Cursor;

use snapshotd_tsm::{TsmError, TsmReader, TsmWriter, Values, join_key, write_values};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn sample() -> BTreeMap<Vec<u8>, Values> {
    let mut m = BTreeMap::new();
    let ts = |n: i64| (0..n).map(move |i| 1_600_000_000_000_000_000 + i * 10_000_000_000);
    m.insert(
        join_key(b"cpu,host=a", b"f"),
        Values::Float(ts(2500).map(|t| (t, t as f64 / 3.0)).collect()),
    );
    m.insert(
        join_key(b"cpu,host=a", b"i"),
        Values::Integer(ts(1000).map(|t| (t, t % 97)).collect()),
    );
    m.insert(
        join_key(b"cpu,host=b", b"u"),
        Values::Unsigned(vec![(-5, u64::MAX), (7, 0)]),
    );
    m.insert(
        join_key(b"mem", b"b"),
        Values::Boolean(ts(1001).map(|t| (t, t % 3 == 0)).collect()),
    );
    m.insert(
        join_key(b"mem", b"s"),
        Values::String(vec![(1, String::new()), (2, "ü✓".into())]),
    );
    m
}

#[test]
fn written_files_read_back_with_1000_point_blocks() -> TestResult {
    let data = sample();
    let bytes = write_values(Vec::new(), &data)?;
    let mut r = TsmReader::open(Cursor::new(bytes))?;
    let keys: Vec<Vec<u8>> = r.keys().iter().map(|k| k.key.clone()).collect();
    assert_eq!(keys, data.keys().cloned().collect::<Vec<_>>());
    let blocks: Vec<usize> = r.keys().iter().map(|k| k.entries.len()).collect();
    assert_eq!(blocks, [3, 1, 1, 2, 1]);
    for (k, v) in &data {
        assert_eq!(r.read_key(k)?.as_ref(), Some(v));
    }
    assert_eq!(r.read_key(b"nope")?, None);
    Ok(())
}

#[test]
fn one_key_may_span_calls_but_order_is_enforced() -> TestResult {
    let mut w = TsmWriter::new(Vec::new()).with_max_points_per_block(2);
    w.write(b"a", &Values::Integer(vec![(1, 1), (2, 2), (3, 3)]))?;
    w.write(b"a", &Values::Integer(vec![(4, 4)]))?;
    let err = w.write(b"a", &Values::Integer(vec![(4, 5)]));
    assert!(
        matches!(
            err,
            Err(TsmError::TimeOrder {
                prev: 4,
                time: 4,
                ..
            })
        ),
        "{err:?}"
    );
    let err = w.write(b"a", &Values::Float(vec![(9, 1.0)]));
    assert!(matches!(err, Err(TsmError::TypeMismatch { .. })), "{err:?}");
    w.write(b"b", &Values::Boolean(vec![(1, true)]))?;
    assert!(matches!(
        w.write(b"a", &Values::Integer(vec![(9, 9)])),
        Err(TsmError::KeyOrder { .. })
    ));
    let err = w.write(b"c", &Values::Integer(vec![(2, 1), (2, 2)]));
    assert!(matches!(err, Err(TsmError::TimeOrder { .. })), "{err:?}");
    let bytes = w.finish()?;
    let mut r = TsmReader::open(Cursor::new(bytes))?;
    assert_eq!(r.keys().len(), 2);
    assert_eq!(r.keys()[0].entries.len(), 3);
    assert_eq!(
        r.read_key(b"a")?,
        Some(Values::Integer(vec![(1, 1), (2, 2), (3, 3), (4, 4)]))
    );
    assert!(matches!(
        TsmWriter::new(Vec::new()).finish(),
        Err(TsmError::Empty)
    ));
    Ok(())
}

#[test]
fn raw_block_copies_are_byte_identical() -> TestResult {
    let bytes = write_values(Vec::new(), &sample())?;
    let mut r = TsmReader::open(Cursor::new(bytes.clone()))?;
    let mut w = TsmWriter::new(Vec::new());
    for ki in r.keys().to_vec() {
        for e in &ki.entries {
            let data = r.read_block_data(e)?;
            w.write_block(&ki.key, e.min_time, e.max_time, &data)?;
        }
    }
    assert_eq!(w.finish()?, bytes);
    Ok(())
}
