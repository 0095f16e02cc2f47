//! Harnesses shared by the cargo-fuzz targets (`fuzz/fuzz_targets/tsm_*.rs`) and the
//! corpus-replay test, so both run the same code. Each feeds arbitrary bytes to one decoder
//! with small limits and asserts its invariants: no panic, limits respected, and whatever
//! decodes re-encodes to bytes that decode to the same values.

use std::io::Cursor;

use crate::codec::{boolean, float, integer, string, timestamp};
use crate::{ReaderLimits, Tombstones, TsmReader, TsmWriter, Values};

/// Most values a harness lets a decoder return.
pub const MAX_VALUES: usize = 4096;

/// Timestamp sections: the count matches the decoded length, and re-encoding round-trips.
pub fn timestamps(data: &[u8]) {
    if let Ok(ts) = timestamp::decode(data, MAX_VALUES) {
        assert!(ts.len() <= MAX_VALUES);
        assert_eq!(timestamp::count(data).ok(), Some(ts.len() as u64));
        let mut b = Vec::new();
        timestamp::encode(&ts, &mut b);
        assert_eq!(timestamp::decode(&b, MAX_VALUES).ok(), Some(ts));
    }
}

/// Float sections: decoded bit patterns re-encode and decode identically.
pub fn floats(data: &[u8]) {
    if let Ok(v) = float::decode(data, MAX_VALUES) {
        assert!(v.len() <= MAX_VALUES);
        let mut b = Vec::new();
        assert!(
            float::encode(&v, &mut b).is_ok(),
            "decoded floats must re-encode"
        );
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let again = float::decode(&b, MAX_VALUES).unwrap_or_default();
        assert_eq!(bits(&again), bits(&v));
    }
}

/// Integer sections.
pub fn integers(data: &[u8]) {
    if let Ok(v) = integer::decode(data, MAX_VALUES) {
        assert!(v.len() <= MAX_VALUES);
        let mut b = Vec::new();
        integer::encode(&v, &mut b);
        assert_eq!(integer::decode(&b, MAX_VALUES).ok(), Some(v));
    }
}

/// Unsigned sections.
pub fn unsigned(data: &[u8]) {
    if let Ok(v) = integer::decode_unsigned(data, MAX_VALUES) {
        let mut b = Vec::new();
        integer::encode_unsigned(&v, &mut b);
        assert_eq!(integer::decode_unsigned(&b, MAX_VALUES).ok(), Some(v));
    }
}

/// Boolean sections.
pub fn booleans(data: &[u8]) {
    if let Ok(v) = boolean::decode(data, MAX_VALUES) {
        assert!(v.len() <= MAX_VALUES);
        let mut b = Vec::new();
        boolean::encode(&v, &mut b);
        assert_eq!(boolean::decode(&b, MAX_VALUES).ok(), Some(v));
    }
}

/// String sections.
pub fn strings(data: &[u8]) {
    if let Ok(v) = string::decode(data, MAX_VALUES) {
        assert!(v.len() <= MAX_VALUES);
        let mut b = Vec::new();
        assert!(string::encode(&v, &mut b).is_ok());
        assert_eq!(string::decode(&b, MAX_VALUES).ok(), Some(v));
    }
}

/// Whole files: open with small limits, read every key; whatever reads is written again
/// and reads back the same.
pub fn reader(data: &[u8]) {
    let limits = ReaderLimits::default()
        .with_max_index_bytes(1 << 16)
        .with_max_block_values(MAX_VALUES);
    let Ok(mut r) = TsmReader::open_with_limits(Cursor::new(data), limits) else {
        return;
    };
    let mut good: Vec<(Vec<u8>, Values)> = Vec::new();
    for ki in r.keys().to_vec() {
        // Blocks of one key may overlap in time; only strictly ordered keys can be rewritten.
        if let Ok(Some(v)) = r.read_key(&ki.key)
            && (1..v.len()).all(|i| v.time(i - 1) < v.time(i))
        {
            good.push((ki.key, v));
        }
    }
    let mut w = TsmWriter::new(Vec::new());
    for (k, v) in &good {
        assert!(w.write(k, v).is_ok(), "decoded key must re-encode");
    }
    let Ok(bytes) = w.finish() else { return };
    let Ok(mut back) = TsmReader::open(Cursor::new(bytes)) else {
        unreachable!("our own file must open")
    };
    for (k, v) in good {
        let again = back.read_key(&k).ok().flatten();
        let same = match (&again, &v) {
            (Some(Values::Float(a)), Values::Float(b)) => a
                .iter()
                .map(|p| (p.0, p.1.to_bits()))
                .eq(b.iter().map(|p| (p.0, p.1.to_bits()))),
            _ => again.as_ref() == Some(&v),
        };
        assert!(same, "key read back differently");
    }
}

/// Tombstone files: what parses is written as v4 and parses back the same.
pub fn tombstones(data: &[u8]) {
    if let Ok(t) = Tombstones::read(data) {
        let mut b = Vec::new();
        assert!(t.write_v4(&mut b).is_ok());
        assert_eq!(Tombstones::read(b.as_slice()).ok(), Some(t));
    }
}
