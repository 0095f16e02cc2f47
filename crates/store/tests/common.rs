//! Helpers shared by the test modules.

use std::io::Read;
use std::path::PathBuf;

use flate2::read::GzDecoder;
use snapshotd_store::builtin::{Point, Value};
use snapshotd_store::meta::PortableData;
use snapshotd_store::{AdminStore, BuiltinStore, DatabaseSpec, ImportRequest, Store};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Sequence numbers of writer `w` (points `p,w=W s=SEQi`) in `points`, in time order.
pub fn seqs(points: &[Point], w: u64) -> Vec<i64> {
    let mut got: Vec<(i64, i64)> = points
        .iter()
        .filter(|p| p.tags.iter().any(|(k, v)| k == "w" && *v == w.to_string()))
        .filter_map(|p| match p.fields.first() {
            Some((_, Value::Integer(i))) => Some((p.time_ns, *i)),
            _ => None,
        })
        .collect();
    got.sort();
    got.into_iter().map(|(_, s)| s).collect()
}

/// Asserts that writer `w`'s points in a restored backup are a prefix of its batches of 3
/// holding at least the `acked` points acknowledged before the backup began; returns how many.
pub fn assert_acked_prefix(restored: &[Point], w: u64, acked: u64, label: &str) -> u64 {
    let got = seqs(restored, w);
    let n = got.len() as u64;
    assert!(n >= acked, "{label} writer {w}: {n} < acked {acked}");
    assert_eq!(n % 3, 0, "{label} writer {w}: torn batch");
    assert!(
        got == (0..n as i64).collect::<Vec<_>>(),
        "{label} writer {w}: not a prefix"
    );
    n
}

pub const A1: &str = "influx/backups/A1_full/20261122T022308Z";
pub const A2: &str = "influx/backups/A2_db2/20261122T022310Z";
pub const A3: &str = "influx/backups/A3_db1_export/20261122T022311Z";

/// The raw meta.Data blob of a portable backup.
pub fn meta_blob(base: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let file = std::fs::read(snapshotd_testutil::vector(&format!("{base}.meta")))?;
    Ok(PortableData::unwrap_blob(&file)?)
}

/// The uncompressed shard tar of a portable backup.
pub fn shard_tar(base: &str, id: u64) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let path = snapshotd_testutil::vector(&format!("{base}.s{id}.tar.gz"));
    let mut out = Vec::new();
    GzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut out)?;
    Ok(out)
}

/// Creates database `name` with the default retention policy.
pub fn db(s: &BuiltinStore, name: &str) -> TestResult {
    s.create_database(&DatabaseSpec {
        name: name.into(),
        retention_policy: None,
    })?;
    Ok(())
}

/// A fresh store in a temp dir (kept alive by the returned guard).
pub fn store() -> Result<(tempfile::TempDir, BuiltinStore), Box<dyn std::error::Error>> {
    let dir = snapshotd_testutil::temp_dir();
    let store = BuiltinStore::open(dir.path().join("data"))?;
    Ok((dir, store))
}

/// A store holding A1 (meta imported, all six TSM shards restored).
pub fn a1_store() -> Result<(tempfile::TempDir, BuiltinStore), Box<dyn std::error::Error>> {
    let (dir, s) = store()?;
    let map = s.import_meta(&meta_blob(A1)?, &ImportRequest::default())?;
    for (old, new) in map.0 {
        let tar = shard_tar(A1, old)?;
        s.restore_shard(new, &mut tar.as_slice())?;
    }
    Ok((dir, s))
}

/// Backup of a shard as bytes.
pub fn backup(s: &dyn Store, id: u64) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    s.backup_shard(id, None, &mut out)?;
    Ok(out)
}

/// Every path below `dir`, sorted (to prove nothing was written outside a target).
pub fn tree(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Points in a canonical form: one point per (measurement, tags, time) with every field
/// written for it (the last write of a field wins), fields by name, points by series then
/// time. Log and TSM reads of the same writes compare equal in this form.
pub fn canon(points: Vec<snapshotd_store::builtin::Point>) -> Vec<snapshotd_store::builtin::Point> {
    use std::collections::BTreeMap;
    type Key = (String, Vec<(String, String)>, i64);
    let mut rows: BTreeMap<Key, BTreeMap<String, snapshotd_store::builtin::Value>> =
        BTreeMap::new();
    for p in points {
        let mut tags = p.tags;
        tags.sort();
        let row = rows.entry((p.measurement, tags, p.time_ns)).or_default();
        for (k, v) in p.fields {
            row.insert(k, v);
        }
    }
    rows.into_iter()
        .map(
            |((measurement, tags, time_ns), f)| snapshotd_store::builtin::Point {
                measurement,
                tags,
                fields: f.into_iter().collect(),
                time_ns,
            },
        )
        .collect()
}
