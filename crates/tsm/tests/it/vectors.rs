//! TSM files written by influxd 1.6.7 (the shared golden backups) decode through our reader to
//! exactly the points of the line protocol that was written to make them.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;

use influxdb_line_protocol::{FieldValue, parse_lines};
use snapshotd_testutil::vector;
use snapshotd_tsm::{TsmReader, Values, join_key, series_key};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A comparable value: floats by bit pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum V {
    F(u64),
    I(i64),
    U(u64),
    B(bool),
    S(String),
}

type Points = BTreeMap<(Vec<u8>, i64), V>;
type Files = Vec<(String, Vec<u8>)>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Every `.tsm` member of the (optionally gzipped) tar at `path`, by name.
fn tsm_files(path: &Path, gz: bool) -> Res<Files> {
    let raw = std::fs::read(path)?;
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(Cursor::new(raw)))
    } else {
        Box::new(Cursor::new(raw))
    };
    let mut out = Vec::new();
    for e in tar::Archive::new(reader).entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        if name.ends_with(".tsm") {
            let mut b = Vec::new();
            e.read_to_end(&mut b)?;
            out.push((name, b));
        }
    }
    Ok(out)
}

fn decode(file: Vec<u8>, into: &mut Points) -> TestResult {
    let mut r = TsmReader::open(Cursor::new(file))?;
    for ki in r.keys().to_vec() {
        let vals = r.read_key(&ki.key)?.ok_or("key vanished")?;
        let pairs: Vec<(i64, V)> = match vals {
            Values::Float(v) => v.into_iter().map(|(t, x)| (t, V::F(x.to_bits()))).collect(),
            Values::Integer(v) => v.into_iter().map(|(t, x)| (t, V::I(x))).collect(),
            Values::Unsigned(v) => v.into_iter().map(|(t, x)| (t, V::U(x))).collect(),
            Values::Boolean(v) => v.into_iter().map(|(t, x)| (t, V::B(x))).collect(),
            Values::String(v) => v.into_iter().map(|(t, x)| (t, V::S(x))).collect(),
        };
        for (t, v) in pairs {
            assert!(
                into.insert((ki.key.clone(), t), v).is_none(),
                "duplicate point"
            );
        }
    }
    Ok(())
}

fn line_protocol(files: &[&str]) -> Res<Points> {
    let mut out = Points::new();
    for f in files {
        let text = std::fs::read_to_string(vector(&format!("influx/tools/{f}")))?;
        for line in parse_lines(&text) {
            let l = line?;
            let tags: Vec<(&str, &str)> = l
                .series
                .tag_set
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let series = series_key(l.series.measurement.as_str(), &tags);
            let t = l.timestamp.ok_or("line without a timestamp")?;
            for (name, v) in &l.field_set {
                let v = match v {
                    FieldValue::F64(x) => V::F(x.to_bits()),
                    FieldValue::I64(x) => V::I(*x),
                    FieldValue::U64(x) => V::U(*x),
                    FieldValue::Boolean(x) => V::B(*x),
                    FieldValue::String(x) => V::S(x.to_string()),
                };
                out.insert((join_key(series.as_bytes(), name.as_bytes()), t), v);
            }
        }
    }
    Ok(out)
}

#[test]
fn full_portable_backup_decodes_to_the_written_line_protocol() -> TestResult {
    let mut got = Points::new();
    for s in 1..=6 {
        let tar = vector(&format!(
            "influx/backups/A1_full/20261122T022308Z.s{s}.tar.gz"
        ));
        for (_, f) in tsm_files(&tar, true)? {
            decode(f, &mut got)?;
        }
    }
    let want = line_protocol(&["db1.lp", "db2_autogen.lp", "db2_rp2.lp"])?;
    assert_eq!(want.len(), 300 + 300 + 100);
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn export_and_legacy_backups_decode_to_subsets_and_the_extra_rows() -> TestResult {
    let db1 = line_protocol(&["db1.lp"])?;
    let mut exported = Points::new();
    for s in 1..=3 {
        let tar = vector(&format!(
            "influx/backups/A3_db1_export/20261122T022311Z.s{s}.tar.gz"
        ));
        for (_, f) in tsm_files(&tar, true)? {
            decode(f, &mut exported)?;
        }
    }
    // 117 rows of two fields, each equal to what was written.
    assert_eq!(exported.len(), 234);
    assert!(exported.iter().all(|(k, v)| db1.get(k) == Some(v)));
    let mut since = Points::new();
    for (_, f) in tsm_files(
        &vector("influx/backups/A4_legacy/db1.autogen.00003.01"),
        false,
    )? {
        decode(f, &mut since)?;
    }
    assert_eq!(since.len(), 40);
    assert!(
        since
            .keys()
            .all(|(k, _)| k.starts_with(b"cpu,host=h9,region=us#!~#"))
    );
    Ok(())
}

#[test]
fn our_encoder_reproduces_influx_blocks_byte_for_byte() -> TestResult {
    let mut blocks = 0;
    for s in 1..=6 {
        let tar = vector(&format!(
            "influx/backups/A1_full/20261122T022308Z.s{s}.tar.gz"
        ));
        for (name, f) in tsm_files(&tar, true)? {
            let mut r = TsmReader::open(Cursor::new(f.clone()))?;
            for ki in r.keys().to_vec() {
                for e in &ki.entries {
                    let data = r.read_block_data(e)?;
                    let mut ours = Vec::new();
                    snapshotd_tsm::encode_block(&r.read_block(ki.block_type, e)?, &mut ours)?;
                    assert_eq!(
                        ours,
                        data,
                        "{name} key {:?}",
                        String::from_utf8_lossy(&ki.key)
                    );
                    blocks += 1;
                }
            }
            // Re-writing every key through our writer gives the identical file.
            let mut all = BTreeMap::new();
            for ki in r.keys().to_vec() {
                all.insert(ki.key.clone(), r.read_key(&ki.key)?.ok_or("key")?);
            }
            assert_eq!(snapshotd_tsm::write_values(Vec::new(), &all)?, f, "{name}");
        }
    }
    assert_eq!(blocks, 28);
    Ok(())
}
