//! Deep verify: decode every TSM block of every shard of a backup (CRCs, encodings, index
//! versus blocks, tombstones applied) and count field values and time ranges per
//! database / RP / measurement; and the check that compares those counts with a target.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use snapshotd_tsm::{Tombstones, TsmReader, Values, parse_series_key, split_key};

use crate::error::{InfluxApiError, Result};
use crate::http::{InfluxHttp, quote_ident};
use crate::shard::{Unpacked, unpack, walk};
use crate::source::{Backup, BackupShard};

/// Counts of one measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeasurementStats {
    /// Field values (what `count(*)` sums over fields), duplicates across TSM files once.
    pub values: u64,
    /// Earliest time (ns).
    pub min_time: i64,
    /// Latest time (ns).
    pub max_time: i64,
}

/// What [`deep_verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeepReport {
    /// Shards decoded.
    pub shards: u64,
    /// TSM files decoded.
    pub tsm_files: u64,
    /// Blocks decoded.
    pub blocks: u64,
    /// Per `(database, rp, measurement)`.
    pub measurements: BTreeMap<(String, String, String), MeasurementStats>,
}

/// Decodes every block of every shard of `backup` (only database `db` when given), in every
/// archive of every run (superseded ones too); the first corrupt block fails with the
/// shard, file and key named.
pub fn deep_verify(backup: &Backup, db: Option<&str>, tmp: &Path) -> Result<DeepReport> {
    decode(backup, db, tmp, true)
}

/// [`deep_verify`] of the archives a merge applies (superseded ones left out): the counts a
/// merge of this restore point writes, for `--check`.
pub fn deep_verify_applied(backup: &Backup, db: Option<&str>, tmp: &Path) -> Result<DeepReport> {
    decode(backup, db, tmp, false)
}

fn decode(backup: &Backup, db: Option<&str>, tmp: &Path, every: bool) -> Result<DeepReport> {
    let mut rep = DeepReport::default();
    for s in backup
        .shards
        .iter()
        .filter(|s| db.is_none_or(|d| s.database == d))
    {
        let s = if every { s.every_archive() } else { s.clone() };
        let u = unpack(&s, tmp)?;
        shard_stats(&u, &s, &mut rep)?;
    }
    Ok(rep)
}

/// Adds the counts of one unpacked shard to `rep` (every block decoded and checked). A point
/// held by several TSM files counts once; memory holds one key's times at a time.
pub(crate) fn shard_stats(u: &Unpacked, s: &BackupShard, rep: &mut DeepReport) -> Result<()> {
    rep.shards += 1;
    rep.tsm_files += u.files.len() as u64;
    let mut last: Option<(Vec<u8>, String)> = None;
    let mut add = |rep: &mut DeepReport, series: &[u8], times: &mut dyn Iterator<Item = i64>| {
        if last.as_ref().is_none_or(|(k, _)| k != series) {
            let m = std::str::from_utf8(series)
                .ok()
                .and_then(parse_series_key)
                .map(|(m, _)| m)
                .ok_or_else(|| {
                    crate::error::corrupt(
                        u.label.clone(),
                        format!("bad series key {}", String::from_utf8_lossy(series)),
                    )
                })?;
            last = Some((series.to_vec(), m));
        }
        let m = last.as_ref().map(|(_, m)| m.clone()).unwrap_or_default();
        let (mut n, mut lo, mut hi) = (0u64, i64::MAX, i64::MIN);
        for t in times {
            n += 1;
            lo = lo.min(t);
            hi = hi.max(t);
        }
        let st = rep
            .measurements
            .entry((s.database.clone(), s.policy.clone(), m))
            .or_insert(MeasurementStats {
                values: 0,
                min_time: i64::MAX,
                max_time: i64::MIN,
            });
        st.values += n;
        st.min_time = st.min_time.min(lo);
        st.max_time = st.max_time.max(hi);
        Ok(())
    };
    if u.files.len() < 2 {
        return walk(u, |series, _, vals| {
            rep.blocks += 1;
            add(
                rep,
                series,
                &mut (0..vals.len()).filter_map(|i| vals.time(i)),
            )
        });
    }
    walk_by_key(u, |key, blocks| {
        rep.blocks += blocks.len() as u64;
        let mut times: Vec<i64> = blocks
            .iter()
            .flat_map(|v| (0..v.len()).filter_map(|i| v.time(i)))
            .collect();
        times.sort_unstable();
        times.dedup();
        let (series, _) = split_key(key);
        add(rep, series, &mut times.into_iter())
    })
}

/// Calls `visit(key, blocks)` once per key of the shard's TSM files, keys in order, with
/// that key's blocks from every file (tombstones applied, each block checked): only one
/// key's blocks are in memory at a time.
fn walk_by_key(u: &Unpacked, mut visit: impl FnMut(&[u8], &[Values]) -> Result<()>) -> Result<()> {
    let mut readers = Vec::new();
    for (tsm, tomb) in &u.files {
        let ctx = format!("{}: {}", u.label, tsm.display());
        let tombs = match tomb {
            Some(p) => {
                let fh =
                    File::open(p).map_err(crate::error::io(format!("open {}", p.display())))?;
                Tombstones::read(fh).map_err(|source| InfluxApiError::Tsm {
                    context: format!("{}: {}", u.label, p.display()),
                    source,
                })?
            }
            None => Tombstones::default(),
        };
        let f = File::open(tsm).map_err(crate::error::io(format!("open {}", tsm.display())))?;
        let r = TsmReader::open(BufReader::new(f)).map_err(|source| InfluxApiError::Tsm {
            context: ctx.clone(),
            source,
        })?;
        readers.push((r, tombs, ctx));
    }
    let keys: BTreeSet<Vec<u8>> = readers
        .iter()
        .flat_map(|(r, _, _)| r.keys().iter().map(|k| k.key.clone()))
        .collect();
    let mut blocks = Vec::new();
    for key in keys {
        blocks.clear();
        for (r, tombs, ctx) in &mut readers {
            let Some(ki) = r.key_index(&key) else {
                continue;
            };
            let (typ, entries) = (ki.block_type, ki.entries.clone());
            for e in &entries {
                let mut v = r.read_block(typ, e).map_err(|source| InfluxApiError::Tsm {
                    context: format!("{ctx}: key {}", String::from_utf8_lossy(&key)),
                    source,
                })?;
                if !tombs.is_empty() {
                    v.retain_times(|t| !tombs.covers(&key, t));
                }
                if !v.is_empty() {
                    blocks.push(v);
                }
            }
        }
        if !blocks.is_empty() {
            visit(&key, &blocks)?;
        }
    }
    Ok(())
}

/// One compared measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRow {
    /// Database on the target.
    pub database: String,
    /// Retention policy.
    pub rp: String,
    /// Measurement.
    pub measurement: String,
    /// Field values in the backup.
    pub backup: u64,
    /// Field values on the target (`count(*)` summed over fields).
    pub target: u64,
    /// Whether the target's count satisfies the rule (equal, or at least for a merge).
    pub ok: bool,
}

/// What [`check_target`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// Every measurement compared.
    pub rows: Vec<CheckRow>,
}

impl CheckReport {
    /// The rows that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckRow> {
        self.rows.iter().filter(|r| !r.ok)
    }
}

/// Compares the counts of `db` in `rep` with database `new_db` on the target; with
/// `at_least` (after a merge, where the target also holds its own points) the target may have
/// more, otherwise the counts must be equal.
pub async fn check_target(
    http: &InfluxHttp,
    rep: &DeepReport,
    db: &str,
    new_db: &str,
    at_least: bool,
) -> Result<CheckReport> {
    let mut out = CheckReport::default();
    for ((_, rp, m), st) in rep.measurements.iter().filter(|((d, _, _), _)| d == db) {
        let q = format!(
            "SELECT count(*) FROM {}.{}.{}",
            quote_ident(new_db),
            quote_ident(rp),
            quote_ident(m)
        );
        let what = format!("count measurement {m} in {new_db}/{rp}");
        let series = http.query(Some(new_db), &q, &what).await?;
        let target: u64 = series
            .iter()
            .flat_map(|s| s.values.iter())
            .flat_map(|row| row.iter().skip(1))
            .filter_map(serde_json::Value::as_u64)
            .sum();
        let ok = if at_least {
            target >= st.values
        } else {
            target == st.values
        };
        out.rows.push(CheckRow {
            database: new_db.to_string(),
            rp: rp.clone(),
            measurement: m.clone(),
            backup: st.values,
            target,
            ok,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use snapshotd_tsm::{join_key, write_values};

    use super::*;

    fn tsm(points: &[(&[u8], &[i64])]) -> Vec<u8> {
        let data: BTreeMap<Vec<u8>, Values> = points
            .iter()
            .map(|(series, ts)| {
                let v = ts.iter().map(|t| (*t, *t as f64)).collect();
                (join_key(series, b"f"), Values::Float(v))
            })
            .collect();
        write_values(Vec::new(), &data).unwrap()
    }

    #[test]
    fn points_in_several_tsm_files_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("s.tar.gz");
        let files = [
            ("000000001-000000001.tsm", tsm(&[(b"m,h=a", &[1, 2, 3])])),
            (
                "000000002-000000001.tsm",
                tsm(&[(b"m,h=a", &[3, 4]), (b"m,h=b", &[5])]),
            ),
            ("000000003-000000001.tsm", tsm(&[(b"n", &[9])])),
        ];
        shard_archive(&gz, &files);
        let s = BackupShard {
            database: "db".into(),
            policy: "rp".into(),
            shard_id: 1,
            files: vec![gz],
            runs: vec!["r.manifest".into()],
            superseded: Vec::new(),
        };
        let u = unpack(&s, dir.path()).unwrap();
        let mut rep = DeepReport::default();
        shard_stats(&u, &s, &mut rep).unwrap();
        let m = &rep.measurements[&("db".into(), "rp".into(), "m".into())];
        assert_eq!((m.values, m.min_time, m.max_time), (5, 1, 5));
        let n = &rep.measurements[&("db".into(), "rp".into(), "n".into())];
        assert_eq!(n.values, 1);
        assert_eq!((rep.tsm_files, rep.blocks), (3, 4));
    }

    /// A gzip'd tar of `(file name in shard 1 of db/rp, bytes)` at `path`.
    fn shard_archive(path: &Path, entries: &[(&str, Vec<u8>)]) {
        let named: Vec<(String, &[u8])> = entries
            .iter()
            .map(|(name, bytes)| (format!("db/rp/1/{name}"), bytes.as_slice()))
            .collect();
        let named: Vec<(&str, &[u8])> = named.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        crate::test_archive::archive(path, &named);
    }

    #[test]
    fn a_later_runs_tombstone_applies_to_an_earlier_runs_tsm_file() {
        let dir = tempfile::tempdir().unwrap();
        let (full, incr) = (dir.path().join("a.tar.gz"), dir.path().join("b.tar.gz"));
        shard_archive(
            &full,
            &[("000000001-000000001.tsm", tsm(&[(b"m,h=a", &[1, 2, 3])]))],
        );
        // The increment: only the tombstone, written after a DELETE of time 2.
        let mut tombs = Tombstones::default();
        tombs.add(&join_key(b"m,h=a", b"f"), 2, 2);
        let mut tomb_bytes = Vec::new();
        tombs.write_v4(&mut tomb_bytes).unwrap();
        shard_archive(&incr, &[("000000001-000000001.tombstone", tomb_bytes)]);
        let s = BackupShard {
            database: "db".into(),
            policy: "rp".into(),
            shard_id: 1,
            files: vec![full, incr],
            runs: vec!["a.manifest".into(), "b.manifest".into()],
            superseded: Vec::new(),
        };
        let u = unpack(&s, dir.path()).unwrap();
        assert_eq!(u.tombstones, 1);
        let mut rep = DeepReport::default();
        shard_stats(&u, &s, &mut rep).unwrap();
        let m = &rep.measurements[&("db".into(), "rp".into(), "m".into())];
        assert_eq!((m.values, m.min_time, m.max_time), (2, 1, 3));
    }
}
