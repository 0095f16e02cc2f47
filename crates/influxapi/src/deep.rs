//! Deep verify: decode every TSM block of every shard of a backup (CRCs, encodings, index
//! versus blocks, tombstones applied) and count field values and time ranges per
//! database / RP / measurement; and the check that compares those counts with a target.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use snapshotd_tsm::{TsmReader, join_key, parse_series_key};

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

/// Decodes every block of every shard of `backup` (only database `db` when given); the first
/// corrupt block fails with the shard, file and key named.
pub fn deep_verify(backup: &Backup, db: Option<&str>, tmp: &Path) -> Result<DeepReport> {
    let mut rep = DeepReport::default();
    for s in backup
        .shards
        .iter()
        .filter(|s| db.is_none_or(|d| s.database == d))
    {
        let u = unpack(s, tmp)?;
        shard_stats(&u, s, &mut rep)?;
    }
    Ok(rep)
}

/// Adds the counts of one unpacked shard to `rep` (every block decoded and checked).
pub(crate) fn shard_stats(u: &Unpacked, s: &BackupShard, rep: &mut DeepReport) -> Result<()> {
    {
        let multi = keys_in_several_files(u)?;
        let mut seen: HashMap<Vec<u8>, HashSet<i64>> = HashMap::new();
        let mut last: Option<(Vec<u8>, String)> = None;
        rep.shards += 1;
        rep.tsm_files += u.files.len() as u64;
        walk(u, |series, field, vals| {
            rep.blocks += 1;
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
            let key = join_key(series, field);
            let mut n = 0u64;
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            let dedupe = multi.contains(&key).then(|| seen.entry(key).or_default());
            let mut dedupe = dedupe;
            for i in 0..vals.len() {
                let Some(t) = vals.time(i) else { continue };
                if let Some(set) = dedupe.as_mut()
                    && !set.insert(t)
                {
                    continue;
                }
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
        })?;
    }
    Ok(())
}

/// Keys that appear in more than one TSM file of the shard (their points may repeat).
fn keys_in_several_files(u: &Unpacked) -> Result<HashSet<Vec<u8>>> {
    let mut count: HashMap<Vec<u8>, u32> = HashMap::new();
    if u.files.len() < 2 {
        return Ok(HashSet::new());
    }
    for (tsm, _) in &u.files {
        let f = File::open(tsm).map_err(crate::error::io(format!("open {}", tsm.display())))?;
        let r = TsmReader::open(BufReader::new(f)).map_err(|source| InfluxApiError::Tsm {
            context: format!("{}: {}", u.label, tsm.display()),
            source,
        })?;
        for k in r.keys() {
            *count.entry(k.key.clone()).or_default() += 1;
        }
    }
    Ok(count
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect())
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
