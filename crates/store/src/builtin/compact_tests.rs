//! Crash points of a compaction (failpoint hook) and purges under live views.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::super::tombstone::Tombstones;
use super::super::write::{Point, Value, encode_points};
use super::super::{Slot, lock, tsm};
use super::*;

type Key = (String, i64, String);

fn points(batch: u64, n: u64) -> Vec<Point> {
    (0..n)
        .map(|k| Point {
            measurement: "m".into(),
            tags: vec![("b".into(), format!("{}", k % 3))],
            fields: vec![
                ("v".into(), Value::Integer((batch * 1000 + k) as i64)),
                (
                    "s".into(),
                    Value::String(format!("batch {batch} point {k}")),
                ),
            ],
            time_ns: (batch * 1000 + k) as i64,
        })
        .collect()
}

fn append(slot: &Slot, from: u64, to: u64) -> Result<()> {
    let mut g = lock(slot);
    let w = g.as_mut().ok_or(StoreError::Backend("closed".into()))?;
    for b in from..to {
        let pts = points(b, 20);
        w.append(encode_points(&pts.iter().collect::<Vec<_>>())?)?;
    }
    Ok(())
}

/// Every (series, time, field) value readable from the shard: TSM files, then the log tail.
fn read_all(dir: &Path) -> Result<Vec<(Key, String)>> {
    let log = ShardLog::open(dir, 64 * 1024)?; // first: recovery finishes a committed compaction
    let mut out = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| StoreError::io("ls", e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tsm"))
        .collect();
    names.sort();
    let mut all = Vec::new();
    for n in names {
        let mut f = File::open(dir.join(&n)).map_err(|e| StoreError::io("open", e))?;
        all.extend(tsm::read_points(&mut f, 0, &n, &Tombstones::default())?);
    }
    if let Some(v) = log.view()? {
        for e in v.indexed() {
            all.extend(write::decode_entry(&e?.1, v.dir())?);
        }
    }
    for p in all {
        for (f, v) in p.fields {
            let key = (format!("{:?}", p.tags), p.time_ns, f);
            out.push((key, format!("{v:?}")));
        }
    }
    out.sort();
    Ok(out)
}

fn expected(batches: u64) -> Vec<(Key, String)> {
    let mut out: Vec<(Key, String)> = (0..batches)
        .flat_map(|b| points(b, 20))
        .flat_map(|p| {
            let tags = format!("{:?}", p.tags);
            p.fields
                .into_iter()
                .map(move |(f, v)| ((tags.clone(), p.time_ns, f), format!("{v:?}")))
        })
        .collect();
    out.sort();
    out
}

/// Asserts equal value lists, reporting sizes and the first difference only.
fn same(got: &[(Key, String)], want: &[(Key, String)], what: &str) {
    let first = got.iter().zip(want).find(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first.is_none(),
        "{what}: {} values read, {} written; first difference {first:?}",
        got.len(),
        want.len()
    );
}

fn open_slot(dir: &Path) -> Result<Slot> {
    Ok(Arc::new(Mutex::new(Some(ShardLog::open(dir, 64 * 1024)?))))
}

fn crash_at(step: Step) -> impl Fn(Step) -> Result<()> {
    move |s| {
        if s == step {
            Err(StoreError::Backend(
                format!("simulated crash at {s:?}").into(),
            ))
        } else {
            Ok(())
        }
    }
}

fn no_crash(_: Step) -> Result<()> {
    Ok(())
}

#[test]
fn a_crash_at_any_step_loses_and_duplicates_nothing() -> Result<()> {
    for step in [
        Step::TsmWritten,
        Step::Committed,
        Step::Installed,
        Step::Purged,
    ] {
        let d = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
        let slot = open_slot(d.path())?;
        append(&slot, 0, 120)?;
        let crashed = compact(&slot, &crash_at(step));
        assert!(crashed.is_err(), "{step:?}: the failpoint did not fire");
        drop(slot); // the process dies here: no further cleanup
        same(
            &read_all(d.path())?,
            &expected(120),
            &format!("after a crash at {step:?}"),
        );
        // Reopened, the store compacts again and keeps taking writes, still exactly once.
        let slot = open_slot(d.path())?;
        let o = compact(&slot, &no_crash)?.ok_or(StoreError::Backend("no log".into()))?;
        assert_eq!((o.through, o.pending), (120, 0), "{step:?}");
        append(&slot, 120, 130)?;
        drop(slot);
        same(
            &read_all(d.path())?,
            &expected(130),
            &format!("{step:?} then more writes"),
        );
    }
    Ok(())
}

#[test]
fn reopen_replays_only_the_tail_and_old_segments_are_purged() -> Result<()> {
    let d = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
    let slot = open_slot(d.path())?;
    append(&slot, 0, 200)?;
    let before = {
        let log = d.path().join(shard_log::DIR);
        snapshotd_wal::list_segments(&log).map_err(|e| shard_log::wal_err(&log, e))?
    };
    assert!(
        before.len() >= 4,
        "want several segments, got {}",
        before.len()
    );
    let o = compact(&slot, &no_crash)?.ok_or(StoreError::Backend("no log".into()))?;
    assert!(o.purged >= before.len() - 2, "{o:?}");
    append(&slot, 200, 205)?;
    drop(slot);
    let log = ShardLog::open(d.path(), 64 * 1024)?;
    assert_eq!((log.compacted, log.last_index()), (200, 205));
    let tail = log.view()?.map(|v| v.indexed().count()).unwrap_or(0);
    assert_eq!(tail, 5, "only the tail is replayed");
    drop(log);
    same(&read_all(d.path())?, &expected(205), "after reopen");
    Ok(())
}

#[test]
fn a_compaction_that_catches_up_leaves_no_entry_on_disk_even_in_one_segment() -> Result<()> {
    let d = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
    let wal_dir = d.path().join(shard_log::DIR);
    let slot = open_slot(d.path())?;
    append(&slot, 0, 10)?;
    let segs =
        |dir: &Path| snapshotd_wal::list_segments(dir).map_err(|e| shard_log::wal_err(dir, e));
    assert_eq!(segs(&wal_dir)?.len(), 1, "a small shard: one segment");
    let o = compact(&slot, &no_crash)?.ok_or(StoreError::Backend("no log".into()))?;
    assert_eq!((o.through, o.purged, o.pending), (10, 1, 0), "{o:?}");
    let left = segs(&wal_dir)?;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].index, 10, "the new segment starts at the marker");
    // Nothing to gain from a second cut: an idle pass purges nothing and cuts nothing.
    let o = compact(&slot, &no_crash)?.ok_or(StoreError::Backend("no log".into()))?;
    assert_eq!((o.purged, segs(&wal_dir)?.len()), (0, 1));
    drop(slot);
    // Reopened with no entry after the marker, the log continues from it.
    let slot = open_slot(d.path())?;
    let last = lock(&slot).as_ref().map(ShardLog::last_index);
    assert_eq!(last, Some(10));
    append(&slot, 10, 12)?;
    let tail = lock(&slot)
        .as_ref()
        .map(|w| w.view())
        .transpose()?
        .flatten()
        .map(|v| {
            v.indexed()
                .map(|e| e.map(|(i, _)| i))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    assert_eq!(tail, Some(vec![11, 12]));
    drop(slot);
    same(
        &read_all(d.path())?,
        &expected(12),
        "after reopen and more writes",
    );
    Ok(())
}

#[test]
fn a_purge_during_a_held_view_deletes_nothing_it_holds() -> Result<()> {
    let d = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
    let wal_dir = d.path().join(shard_log::DIR);
    let slot = open_slot(d.path())?;
    append(&slot, 0, 150)?;
    let view = lock(&slot)
        .as_ref()
        .map(|w| w.view())
        .transpose()?
        .flatten()
        .ok_or(StoreError::Backend("no view".into()))?;
    let held: Vec<String> = snapshotd_wal::list_segments(&wal_dir)
        .map_err(|e| shard_log::wal_err(&wal_dir, e))?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let o = compact(&slot, &no_crash)?.ok_or(StoreError::Backend("no log".into()))?;
    assert_eq!((o.through, o.purged), (150, 0), "purged under a live view");
    for n in &held {
        assert!(wal_dir.join(n).exists(), "{n} deleted while a view held it");
    }
    // The view still reads every entry it was opened on.
    assert_eq!(view.indexed().count(), 150);
    drop(view);
    let o = compact(&slot, &no_crash)?.ok_or(StoreError::Backend("no log".into()))?;
    assert!(
        o.purged > 0,
        "the held-back purge runs once the view is gone"
    );
    append(&slot, 150, 300)?;
    drop(slot);
    let by_key: BTreeMap<Key, String> = read_all(d.path())?.into_iter().collect();
    assert_eq!(by_key.len(), expected(300).len());
    Ok(())
}
