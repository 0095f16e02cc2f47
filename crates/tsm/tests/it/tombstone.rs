//! Tombstone files of every version, written and read, and applied by the reader.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use snapshotd_tsm::{Tombstones, TsmError, TsmReader, Values, write_values};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn record(key: &[u8], min: i64, max: i64) -> Vec<u8> {
    let mut v = (key.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(key);
    v.extend_from_slice(&min.to_be_bytes());
    v.extend_from_slice(&max.to_be_bytes());
    v
}

fn gz(data: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data)?;
    e.finish()
}

#[test]
fn all_versions_parse() -> TestResult {
    let read = |b: &[u8]| Tombstones::read(b);
    let mut v4 = vec![0, 0, 0x15, 0x04];
    v4.extend(gz(&record(b"a#!~#f", 10, 20))?);
    v4.extend(gz(&record(b"b#!~#f", 5, 5))?);
    let t = read(&v4)?;
    assert!(t.covers(b"a#!~#f", 10) && t.covers(b"a#!~#f", 20) && !t.covers(b"a#!~#f", 21));
    assert!(t.covers(b"b#!~#f", 5) && !t.covers(b"c#!~#f", 5));
    let mut v3 = vec![0, 0, 0x15, 0x03];
    v3.extend(gz(&[record(b"k", 1, 2), record(b"k", 8, 9)].concat())?);
    assert_eq!(read(&v3)?.ranges(b"k"), &[(1, 2), (8, 9)]);
    let mut v2 = vec![0, 0, 0x15, 0x02];
    v2.extend(record(b"k", 1, 2));
    assert!(read(&v2)?.covers(b"k", 2));
    v2.truncate(v2.len() - 3);
    assert!(matches!(read(&v2), Err(TsmError::Corrupt(_))));
    assert!(read(b"cpu#!~#v\nmem#!~#x\n")?.covers(b"mem#!~#x", i64::MIN));
    assert_eq!(read(b"")?, Tombstones::default());
    let mut bad = vec![0, 0, 0x15, 0x02];
    bad.extend(u32::MAX.to_be_bytes());
    assert!(matches!(read(&bad), Err(TsmError::LimitExceeded { .. })));
    Ok(())
}

#[test]
fn written_v4_files_read_back_and_append() -> TestResult {
    let mut t = Tombstones::default();
    t.add(b"cpu#!~#v", i64::MIN, i64::MAX);
    t.add(b"mem#!~#x", -5, 5);
    let mut file = Vec::new();
    t.write_v4(&mut file)?;
    assert_eq!(&file[..4], &[0, 0, 0x15, 0x04]);
    let mut more = Tombstones::default();
    more.add(b"mem#!~#x", 100, 200);
    more.append_v4_member(&mut file)?;
    let back = Tombstones::read(file.as_slice())?;
    assert_eq!(back.ranges(b"mem#!~#x"), &[(-5, 5), (100, 200)]);
    assert_eq!(back.iter().count(), 3);
    Ok(())
}

#[test]
fn reader_applies_tombstones_when_asked() -> TestResult {
    let mut m = BTreeMap::new();
    m.insert(
        b"k#!~#v".to_vec(),
        Values::Integer((0..2000).map(|i| (i, i)).collect()),
    );
    let mut r = TsmReader::open(Cursor::new(write_values(Vec::new(), &m)?))?;
    let mut t = Tombstones::default();
    t.add(b"k#!~#v", 10, 1499);
    let live = r.read_key_filtered(b"k#!~#v", Some(&t))?.ok_or("key")?;
    assert_eq!(live.len(), 2000 - 1490);
    assert_eq!((live.time(9), live.time(10)), (Some(9), Some(1500)));
    assert_eq!(r.read_key(b"k#!~#v")?.map(|v| v.len()), Some(2000));
    Ok(())
}
