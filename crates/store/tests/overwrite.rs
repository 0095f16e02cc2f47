//! A point written again (same series, field and time) reads back once with its last value,
//! whether the writes sit in the log tail, in separate TSM files or in a merged file; fields
//! not written again keep their value.

use std::path::Path;

use snapshotd_store::builtin::{Point, Value};
use snapshotd_store::{AdminStore, BuiltinStore, CompactionPolicy, Precision, RestoreLimits};

use crate::common::{TestResult, db};

/// No background compaction, and no merge at shutdown: each reopen cycle leaves one file.
fn open(dir: &Path) -> Result<BuiltinStore, snapshotd_store::StoreError> {
    let policy = CompactionPolicy::default()
        .with_background(false)
        .with_merge_files(100);
    BuiltinStore::open_with(dir, RestoreLimits::default(), policy)
}

fn write(s: &BuiltinStore, body: &str) -> TestResult {
    s.write_lines("o", None, Precision::Seconds, body.as_bytes())?;
    Ok(())
}

fn tsm_files(dir: &Path) -> usize {
    crate::common::tree(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tsm"))
        .count()
}

/// The one point of series `cpu,host=a` at time 10, and how many such points were read.
fn the_point(points: &[Point]) -> (usize, Option<Point>) {
    let hits: Vec<&Point> = points
        .iter()
        .filter(|p| p.time_ns == 10_000_000_000 && p.tags == [("host".into(), "a".into())])
        .collect();
    (hits.len(), hits.first().map(|p| (*p).clone()))
}

fn fields(p: Option<Point>) -> Vec<(String, Value)> {
    p.map(|p| p.fields).unwrap_or_default()
}

#[test]
fn last_write_wins_once_across_log_files_and_merges() -> TestResult {
    let tmp = snapshotd_testutil::temp_dir();
    let dir = tmp.path().join("data");
    let s = open(&dir)?;
    db(&s, "o")?;
    write(&s, "cpu,host=a x=1,y=1 10\ncpu,host=b x=7 10\n")?;
    drop(s); // compacts: file 1
    let s = open(&dir)?;
    write(&s, "cpu,host=a x=2 10\n")?;
    drop(s); // file 2
    let s = open(&dir)?;
    assert_eq!(tsm_files(&dir), 2, "one file per cycle");
    // The log tail, with the tag order of the line differing from the stored one.
    write(&s, "cpu,host=a x=3 10\n")?;
    let want = vec![
        ("x".into(), Value::Float(3.0)),
        ("y".into(), Value::Float(1.0)),
    ];
    let (n, p) = the_point(&s.read_points("o", None)?);
    assert_eq!((n, fields(p)), (1, want.clone()), "log tail over two files");
    let all = s.read_points("o", None)?;
    assert_eq!(all.len(), 2, "{all:?}");
    s.compact_all()?; // compacts the tail and merges the three files into one
    assert_eq!(tsm_files(&dir), 1);
    let (n, p) = the_point(&s.read_points("o", None)?);
    assert_eq!((n, fields(p)), (1, want), "merged file");
    write(&s, "cpu,host=a y=4 10\n")?;
    let (n, p) = the_point(&s.read_points("o", None)?);
    let want = vec![
        ("x".into(), Value::Float(3.0)),
        ("y".into(), Value::Float(4.0)),
    ];
    assert_eq!((n, fields(p)), (1, want), "log tail over a merged file");
    Ok(())
}
