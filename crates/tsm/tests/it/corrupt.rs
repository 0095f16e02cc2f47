//! Corrupt input gives typed errors, never panics or huge allocations.

use std::collections::BTreeMap;
use std::io::Cursor;

use snapshotd_tsm::{ReaderLimits, TsmError, TsmReader, Values, write_values};

fn file() -> Vec<u8> {
    let mut m = BTreeMap::new();
    m.insert(
        b"k#!~#v".to_vec(),
        Values::Float((0..50).map(|i| (i, i as f64)).collect()),
    );
    write_values(Vec::new(), &m).unwrap_or_default()
}

fn read_all(b: Vec<u8>) -> Result<(), TsmError> {
    let mut r = TsmReader::open(Cursor::new(b))?;
    for k in r.keys().to_vec() {
        r.read_key(&k.key)?;
    }
    Ok(())
}

#[test]
fn flipped_crc_byte_is_a_crc_error() {
    let mut b = file();
    b[5] ^= 0x40;
    assert!(matches!(read_all(b), Err(TsmError::Crc { offset: 5, .. })));
}

#[test]
fn every_truncation_and_byte_flip_is_an_error_or_valid() {
    let good = file();
    assert!(read_all(good.clone()).is_ok());
    for cut in 0..good.len() {
        assert!(read_all(good[..cut].to_vec()).is_err(), "cut at {cut}");
    }
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0xFF;
        // A flip may land in an index time that still decodes consistently; it must never panic.
        let _ = read_all(b);
    }
}

#[test]
fn absurd_index_sizes_are_refused_before_allocation() {
    let mut b = file();
    let n = b.len();
    b[n - 8..].copy_from_slice(&5u64.to_be_bytes());
    let limits = ReaderLimits::default().with_max_index_bytes(16);
    let r = TsmReader::open_with_limits(Cursor::new(b), limits);
    assert!(matches!(
        r,
        Err(TsmError::LimitExceeded {
            what: "TSM index",
            ..
        })
    ));
}

#[test]
fn absurd_block_counts_with_valid_crcs_are_refused_before_allocation() {
    // A boolean block whose RLE timestamp section claims 2^40 times and whose value section
    // claims 2^40 booleans, with a correct CRC: only the count bound can stop it.
    let mut data = vec![2u8, 16];
    data.extend([0x20, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    data.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    data.extend([0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0xFF]);
    let mut w = snapshotd_tsm::TsmWriter::new(Vec::new());
    w.write_block(b"k#!~#b", 1, 1, &data).unwrap_or_default();
    let file = w.finish().unwrap_or_default();
    let err = read_all(file);
    assert!(
        matches!(err, Err(TsmError::LimitExceeded { what: "block value count", got, .. }) if got == 1 << 40),
        "{err:?}"
    );
}
