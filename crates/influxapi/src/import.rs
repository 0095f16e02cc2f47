//! Opt-in fast path of a merge for shards whose time range holds no data on the target: the
//! shard's files are uploaded whole through the target's snapshotter port (type 7) into the
//! target's own shard for that range, instead of being rewritten point by point.
//!
//! The target shard is created by writing one of the backup's own points through `/write`;
//! it is used only when its shard group has exactly the backup shard's time range, so the
//! upload replaces nothing but that point. Points written by others into that range between
//! the emptiness check and the upload would be replaced: the caller only offers shards that
//! ended in the past.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use flate2::read::MultiGzDecoder;

use crate::error::{InfluxApiError, Result, corrupt, io};
use crate::http::{InfluxHttp, Series};
use crate::line::UnsignedMode;
use crate::shard::{for_each_file, label, unpack};
use crate::source::BackupShard;

/// The first point of the shard as one line of line protocol (`None` for an empty shard) and
/// the number of field values the shard holds (every block decoded and checked).
pub fn seed_line(s: &BackupShard, tmp: &Path) -> Result<(Option<Vec<u8>>, u64)> {
    let u = unpack(s, tmp)?;
    let mut stats = crate::deep::DeepReport::default();
    crate::deep::shard_stats(&u, s, &mut stats)?;
    let values = stats.measurements.values().map(|m| m.values).sum();
    let mut seed = None;
    let r = for_each_file(&u, |r, tombs, ctx| {
        if seed.is_some() {
            return Ok(());
        }
        let mut out = Vec::new();
        crate::series::series_lines(
            r,
            tombs,
            UnsignedMode::Native,
            ctx,
            &mut out,
            &mut |o, _| {
                seed = Some(std::mem::take(o));
                Err(InfluxApiError::Cancelled)
            },
        )
    });
    match r {
        Ok(()) | Err(InfluxApiError::Cancelled) => Ok((seed, values)),
        Err(e) => Err(e),
    }
}

/// Field values the target holds in `[start, end)` of `db`/`rp` (`count(*)` summed).
pub async fn values_in_range(
    http: &InfluxHttp,
    db: &str,
    rp: &str,
    start: i64,
    end: i64,
) -> Result<u64> {
    let q = format!(
        "SELECT count(*) FROM {}.{}./.*/ WHERE time >= {start} AND time < {end}",
        crate::http::quote_ident(db),
        crate::http::quote_ident(rp)
    );
    let series = http
        .query(
            Some(db),
            &q,
            &format!("count the values of {db}/{rp} in a shard range"),
        )
        .await?;
    Ok(series
        .iter()
        .flat_map(|s| s.values.iter())
        .flat_map(|row| row.iter().skip(1))
        .filter_map(serde_json::Value::as_u64)
        .sum())
}

/// The ID of the target shard of `db`/`rp` whose group is exactly `[start, end)`.
pub async fn target_shard(
    http: &InfluxHttp,
    db: &str,
    rp: &str,
    start: i64,
    end: i64,
) -> Result<Option<u64>> {
    let series = http
        .query(None, "SHOW SHARDS", "list the target's shards")
        .await?;
    Ok(find_shard(&series, db, rp, start, end))
}

fn find_shard(series: &[Series], db: &str, rp: &str, start: i64, end: i64) -> Option<u64> {
    let s = series.iter().find(|s| s.name == db)?;
    let (id, r, st, en) = (
        s.column("id")?,
        s.column("retention_policy")?,
        s.column("start_time")?,
        s.column("end_time")?,
    );
    let time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| t.timestamp_nanos_opt())
    };
    s.values.iter().find_map(|row| {
        let ok = row.get(r)?.as_str()? == rp
            && time(row.get(st)?)? == start
            && time(row.get(en)?)? == end;
        if ok { row.get(id)?.as_u64() } else { None }
    })
}

/// Uploads the shard's single backup file as target shard `new_id` of `db`/`rp` through the
/// snapshotter at `addr` (blocking), entries renamed to `db/rp/new_id/<file>`.
pub fn upload_shard(s: &BackupShard, addr: &str, db: &str, rp: &str, new_id: u64) -> Result<()> {
    let lbl = label(s);
    let [file] = s.files.as_slice() else {
        return Err(corrupt(
            lbl,
            "several backup runs hold this shard: not uploaded whole",
        ));
    };
    let mut sock = TcpStream::connect(addr)
        .map_err(io(format!("{lbl}: connect to the snapshotter at {addr}")))?;
    let _ = sock.set_read_timeout(Some(Duration::from_secs(600)));
    sock.write_all(&snapshotd_wire::UploadHeader::new(new_id).to_bytes())
        .map_err(io(format!("{lbl}: upload header to {addr}")))?;
    let f = std::fs::File::open(file).map_err(io(format!("open {}", file.display())))?;
    let mut ar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(f)));
    let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, &mut sock));
    let ctx = format!("{lbl}: {}", file.display());
    for e in ar.entries().map_err(io(ctx.clone()))? {
        let mut e = e.map_err(|e| corrupt(ctx.clone(), format!("tar/gzip: {e}")))?;
        let path = e.path().map_err(|e| corrupt(ctx.clone(), e.to_string()))?;
        let Some(base) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let mut h = e.header().clone();
        b.append_data(&mut h, format!("{db}/{rp}/{new_id}/{base}"), &mut e)
            .map_err(io(format!("{lbl}: send {base} to {addr}")))?;
    }
    let w = b
        .into_inner()
        .map_err(io(format!("{lbl}: finish the upload")))?;
    w.into_inner().map_err(|e| InfluxApiError::Io {
        context: format!("{lbl}: send"),
        source: e.into_error(),
    })?;
    sock.shutdown(std::net::Shutdown::Write)
        .map_err(io(format!("{lbl}: close the upload")))?;
    // influxd closes the connection once the shard is restored.
    let mut rest = Vec::new();
    let _ = (&mut sock).take(64 * 1024).read_to_end(&mut rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_the_shard_with_the_exact_group_range() {
        let s: Series = serde_json::from_value(serde_json::json!({
            "name": "imp",
            "columns": ["id", "database", "retention_policy", "shard_group", "start_time", "end_time", "expiry_time", "owners"],
            "values": [[11, "imp", "autogen", 11, "2021-01-01T00:00:00Z", "2021-01-02T00:00:00Z", "2021-01-02T00:00:00Z", ""],
                       [12, "imp", "autogen", 12, "2021-01-02T00:00:00Z", "2021-01-03T00:00:00Z", "2021-01-03T00:00:00Z", ""]]
        }))
        .unwrap();
        let day = 86_400_000_000_000i64;
        let t0 = 1_609_459_200_000_000_000i64;
        assert_eq!(
            find_shard(
                std::slice::from_ref(&s),
                "imp",
                "autogen",
                t0 + day,
                t0 + 2 * day
            ),
            Some(12)
        );
        assert_eq!(
            find_shard(std::slice::from_ref(&s), "imp", "autogen", t0, t0 + 7 * day),
            None
        );
        assert_eq!(find_shard(&[s], "imp", "other", t0, t0 + day), None);
    }
}
