//! Level compaction: exactly-once contents with overwrites and tombstones, full blocks, crash
//! points, and a backup holding the inputs open across a merge.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::super::compact;
use super::super::shard_log::ShardLog;
use super::super::write::{Point, Value, encode_points};
use super::super::{backup, tsm};
use super::*;

type Key = (String, i64, String);
type Contents = BTreeMap<Key, String>;

const BATCHES: u64 = 5;
const PER_BATCH: u64 = 1500;
/// File 1 (batch 1) carries a tombstone deleting this key's values in this range.
const DELETED_KEY: &[u8] = b"m,b=1#!~#v";
const DELETED: (i64, i64) = (1000, 1999);

fn err(what: &str) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io(what, e)
}

fn point(tag: u64, t: i64, v: i64, s: String) -> Point {
    Point {
        measurement: "m".into(),
        tags: vec![("b".into(), format!("{tag}"))],
        fields: vec![
            ("v".into(), Value::Integer(v)),
            ("s".into(), Value::String(s)),
        ],
        time_ns: t,
    }
}

/// Batch `b`: its own times, plus (from batch 1 on) overwrites of the previous batch's
/// first 5 times with new values.
fn batch(b: u64) -> Vec<Point> {
    let mut out: Vec<Point> = (0..PER_BATCH)
        .map(|k| {
            let t = (b * 1000 + k) as i64;
            point(k % 3, t, t, format!("batch {b} point {k}"))
        })
        .collect();
    if b > 0 {
        for k in 0..5 {
            let t = ((b - 1) * 1000 + k) as i64;
            out.push(point(k % 3, t, -t - 1, format!("overwritten by {b}")));
        }
    }
    out
}

fn flatten(points: Vec<Point>, out: &mut Contents) {
    for p in points {
        for (f, v) in p.fields {
            out.insert((format!("{:?}", p.tags), p.time_ns, f), format!("{v:?}"));
        }
    }
}

/// What the shard holds: batches in order, later writes winning, file 1's tombstone
/// applied to the values of file 1 only.
fn expected() -> Contents {
    let mut out = Contents::new();
    for b in 0..BATCHES {
        let mut mine = Contents::new();
        flatten(batch(b), &mut mine);
        if b == 1 {
            let tag = format!("{:?}", vec![("b".to_string(), "1".to_string())]);
            mine.retain(|(tg, t, f), _| {
                !(tg == &tag && f == "v" && (DELETED.0..=DELETED.1).contains(t))
            });
        }
        out.extend(mine);
    }
    out
}

/// A shard with one TSM file per batch (file 1 with a tombstone file).
fn setup(dir: &Path) -> Result<Slot> {
    let slot: Slot = Arc::new(Mutex::new(Some(ShardLog::open(dir, 64 * 1024)?)));
    for b in 0..BATCHES {
        if let Some(w) = lock(&slot).as_mut() {
            w.append(encode_points(&batch(b).iter().collect::<Vec<_>>())?)?;
        }
        compact::compact(&slot, &|_| Ok(()))?;
    }
    let files = tsm_files(dir)?;
    assert_eq!(files.len() as u64, BATCHES);
    let name = tombstone_name(&files[1].2);
    let mut t = Tombstones::default();
    t.add(DELETED_KEY, DELETED.0, DELETED.1);
    let f = File::create(dir.join(name)).map_err(err("tombstone"))?;
    t.write_v4(f).map_err(|e| tsm_err("tombstone", e))?;
    Ok(slot)
}

/// Contents of the given open files (name, handle), each with its tombstones, in order.
fn read_items(items: &mut [backup::Item]) -> Result<Contents> {
    let mut tombs: BTreeMap<String, Tombstones> = BTreeMap::new();
    for it in items.iter_mut() {
        if let Some(stem) = it.rel.strip_suffix(".tombstone") {
            tombs.insert(stem.to_string(), tombstone::read(&mut it.file, &it.rel)?);
        }
    }
    let mut out = Contents::new();
    let none = Tombstones::default();
    for it in items.iter_mut() {
        if let Some(stem) = it.rel.strip_suffix(".tsm") {
            let d = tombs.get(stem).unwrap_or(&none);
            flatten(
                tsm::read_points(&mut it.file, it.len, &it.rel, d)?,
                &mut out,
            );
        }
    }
    Ok(out)
}

fn read_dir_contents(dir: &Path) -> Result<Contents> {
    read_items(&mut backup::opaque_files(dir)?)
}

fn same(got: &Contents, want: &Contents, what: &str) {
    let first = got.iter().zip(want).find(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first.is_none(),
        "{what}: {} values read, {} expected; first difference {first:?}",
        got.len(),
        want.len()
    );
}

fn names(dir: &Path) -> Result<Vec<String>> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map_err(err("ls"))?
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

#[test]
fn a_merge_keeps_every_value_once_in_full_blocks() -> Result<()> {
    let d = tempfile::tempdir().map_err(err("tempdir"))?;
    let slot = setup(d.path())?;
    same(
        &read_dir_contents(d.path())?,
        &expected(),
        "before the merge",
    );
    let m = merge(&slot, Pick::All, &|_| Ok(()))?.ok_or(StoreError::Backend("no merge".into()))?;
    assert_eq!(m.inputs as u64, BATCHES);
    assert!(m.bytes_out < m.bytes_in, "{m:?}");
    // One file, sorting after its inputs; no tombstone or marker left.
    assert_eq!(names(d.path())?, [".compacted", "000000005-000000002.tsm"]);
    same(
        &read_dir_contents(d.path())?,
        &expected(),
        "after the merge",
    );
    let path = d.path().join("000000005-000000002.tsm");
    let mut r = TsmReader::open(File::open(&path).map_err(err("open"))?)
        .map_err(|e| tsm_err("merged", e))?;
    let keys = r.keys().to_vec();
    assert!(keys.windows(2).all(|w| w[0].key < w[1].key), "keys sorted");
    for k in &keys {
        let mut counts = Vec::new();
        for e in &k.entries {
            let data = r.read_block_data(e).map_err(|e| tsm_err("merged", e))?;
            counts.push(snapshotd_tsm::block_count(&data).map_err(|e| tsm_err("m", e))?);
        }
        let (last, full) = counts
            .split_last()
            .ok_or(StoreError::Backend("no block".into()))?;
        assert!(
            full.iter().all(|&c| c == 1000) && *last <= 1000,
            "{counts:?}"
        );
    }
    Ok(())
}

#[test]
fn a_crash_at_any_step_of_a_merge_loses_and_duplicates_nothing() -> Result<()> {
    for step in [Step::Written, Step::Committed, Step::Installed] {
        let d = tempfile::tempdir().map_err(err("tempdir"))?;
        let slot = setup(d.path())?;
        let crash = move |s: Step| {
            if s == step {
                return Err(StoreError::Backend(
                    format!("simulated crash at {s:?}").into(),
                ));
            }
            Ok(())
        };
        assert!(
            merge(&slot, Pick::All, &crash).is_err(),
            "{step:?} did not fire"
        );
        drop(slot); // the process dies here
        drop(ShardLog::open(d.path(), 64 * 1024)?); // recovery, as at the next start
        same(
            &read_dir_contents(d.path())?,
            &expected(),
            &format!("{step:?}"),
        );
        let tsm: Vec<String> = names(d.path())?;
        let stray = tsm
            .iter()
            .filter(|n| n.ends_with(".tmp") || *n == ".merging");
        assert_eq!(stray.count(), 0, "{step:?}: {tsm:?}");
        let n = tsm_files(d.path())?.len();
        let want = if step == Step::Written {
            BATCHES as usize
        } else {
            1
        };
        assert_eq!(n, want, "{step:?}: rolled forward only when committed");
    }
    Ok(())
}

#[test]
fn a_backup_holding_the_inputs_reads_them_across_a_merge() -> Result<()> {
    let d = tempfile::tempdir().map_err(err("tempdir"))?;
    let slot = setup(d.path())?;
    let mut held = {
        let _g = lock(&slot); // as a backup opens its files
        backup::opaque_files(d.path())?
    };
    let tiered = merge(&slot, Pick::Tiered(2), &|_| Ok(()))?;
    assert_eq!(tiered.map(|m| m.inputs as u64), Some(BATCHES));
    assert_eq!(tsm_files(d.path())?.len(), 1);
    same(
        &read_items(&mut held)?,
        &expected(),
        "files opened before the merge",
    );
    same(
        &read_dir_contents(d.path())?,
        &expected(),
        "files after the merge",
    );
    // Nothing left to merge; a later small file is not merged with the large one.
    assert_eq!(merge(&slot, Pick::Tiered(2), &|_| Ok(()))?, None);
    if let Some(w) = lock(&slot).as_mut() {
        w.append(encode_points(&[&point(0, 9_000, 1, "late".into())])?)?;
    }
    compact::compact(&slot, &|_| Ok(()))?;
    assert_eq!(tsm_files(d.path())?.len(), 2);
    assert_eq!(merge(&slot, Pick::Tiered(2), &|_| Ok(()))?, None);
    assert!(merge(&slot, Pick::All, &|_| Ok(()))?.is_some());
    assert_eq!(tsm_files(d.path())?.len(), 1);
    Ok(())
}
