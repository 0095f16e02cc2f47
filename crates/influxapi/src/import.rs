//! The fast path of a merge for shards whose time range holds no data on the target: the
//! shard's TSM files are uploaded whole through the target's snapshotter port (type 7) into
//! the target's own shard for that range, instead of being rewritten point by point.
//!
//! What influxd 1.6 does with such an upload (checked against the real server by
//! `tests/interop_influx_merge.rs`): it writes each `.tsm` entry of the tar into the shard's
//! directory under the entry's own file name (an existing file of that name is replaced),
//! ignores every other entry (tombstones included), adds the new files to the shard and
//! reopens it; its cache is reloaded from the WAL, so points that others wrote into the
//! shard and that were not yet flushed survive. Hence the rules here:
//! - the target shard must be new (created by writing one of the backup's own points) and
//!   hold nothing else when checked just before the upload;
//! - the uploaded files are renumbered to generations [`GENERATION_OFFSET`] and above, which
//!   a shard created seconds ago cannot have reached, so no file of the target is replaced
//!   even when points written concurrently were already flushed to a TSM file;
//! - shards with tombstones are not uploaded (influxd would ignore the tombstones).

use std::collections::BTreeSet;
use std::io::{BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use flate2::read::MultiGzDecoder;
use snapshotd_wire::{InfoResponse, RequestType};

use crate::error::{InfluxApiError, Result, corrupt, io};
use crate::http::{InfluxHttp, Series};
use crate::line::UnsignedMode;
use crate::shard::{for_each_file, label, unpack};
use crate::source::BackupShard;

/// Uploaded TSM files get generation `GENERATION_OFFSET + their generation in the backup`.
pub const GENERATION_OFFSET: u64 = 100_000_000;

/// The largest generation that keeps influx's 9-digit file names in numeric order.
const MAX_GENERATION: u64 = 999_999_999;

/// What [`seed_line`] learned about a shard.
pub struct Seed {
    /// Its first point as one line of line protocol (`None` for an empty shard).
    pub line: Option<Vec<u8>>,
    /// Field values in that line.
    pub line_values: u64,
    /// Field values the shard holds (every block decoded and checked, tombstones applied).
    pub values: u64,
    /// Why the shard cannot be uploaded whole (tombstones, file names), if it cannot.
    pub not_uploadable: Option<String>,
}

/// `000000012-000000003.tsm` renamed to generation `GENERATION_OFFSET + 12`; `None` when
/// the name is not influx's `GEN-SEQ.tsm` or the new generation would not fit.
pub fn renumbered(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".tsm")?;
    let (g, seq) = stem.split_once('-')?;
    let g: u64 = g.parse().ok()?;
    let seq: u64 = seq.parse().ok()?;
    let ng = g.checked_add(GENERATION_OFFSET)?;
    (ng <= MAX_GENERATION && seq <= MAX_GENERATION).then(|| format!("{ng:09}-{seq:09}.tsm"))
}

/// The shard's first point, its value count and whether it can be uploaded whole.
pub fn seed_line(s: &BackupShard, tmp: &Path) -> Result<Seed> {
    let u = unpack(s, tmp)?;
    let mut stats = crate::deep::DeepReport::default();
    crate::deep::shard_stats(&u, s, &mut stats)?;
    let values = stats.measurements.values().map(|m| m.values).sum();
    // Unpacked files are named `<run index>-<name>`: archives of other runs may be empty
    // (an increment that found nothing new), but only one run may hold TSM files.
    let runs: BTreeSet<&str> = u
        .files
        .iter()
        .filter_map(|(p, _)| p.file_name()?.to_str()?.split_once('-'))
        .map(|(run, _)| run)
        .collect();
    let not_uploadable = if runs.len() > 1 {
        Some("several backup runs hold its TSM files".to_string())
    } else if u.tombstones > 0 {
        Some("it has deleted points (tombstones), which influxd does not apply on upload".into())
    } else {
        u.files
            .iter()
            .filter_map(|(p, _)| p.file_name()?.to_str())
            .map(|n| n.split_once('-').map_or(n, |(_, base)| base))
            .find(|n| renumbered(n).is_none())
            .map(|n| format!("its file {n} is not named GEN-SEQ.tsm with a small generation"))
    };
    let mut line = None;
    let mut line_values = 0;
    let r = for_each_file(&u, |r, tombs, ctx| {
        if line.is_some() {
            return Ok(());
        }
        let mut out = Vec::new();
        crate::series::series_lines(
            r,
            tombs,
            UnsignedMode::Native,
            ctx,
            &mut out,
            &mut |o, fields| {
                line = Some(std::mem::take(o));
                line_values = fields as u64;
                Err(InfluxApiError::Cancelled)
            },
        )
    });
    match r {
        Ok(()) | Err(InfluxApiError::Cancelled) => Ok(Seed {
            line,
            line_values,
            values,
            not_uploadable,
        }),
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

/// `(id, start, end)` of every shard of `db`/`rp` on the target (`SHOW SHARDS`).
pub async fn target_shards(http: &InfluxHttp, db: &str, rp: &str) -> Result<Vec<(u64, i64, i64)>> {
    let series = http
        .query(None, "SHOW SHARDS", "list the target's shards")
        .await?;
    Ok(shards_in(&series, db, rp))
}

/// The ID of the shard in `shards` whose group is exactly `[start, end)`.
pub fn exact_shard(shards: &[(u64, i64, i64)], start: i64, end: i64) -> Option<u64> {
    shards
        .iter()
        .find(|(_, s, e)| *s == start && *e == end)
        .map(|(id, _, _)| *id)
}

fn shards_in(series: &[Series], db: &str, rp: &str) -> Vec<(u64, i64, i64)> {
    let Some(s) = series.iter().find(|s| s.name == db) else {
        return Vec::new();
    };
    let cols = (
        s.column("id"),
        s.column("retention_policy"),
        s.column("start_time"),
        s.column("end_time"),
    );
    let (Some(id), Some(r), Some(st), Some(en)) = cols else {
        return Vec::new();
    };
    let time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| t.timestamp_nanos_opt())
    };
    s.values
        .iter()
        .filter_map(|row| {
            (row.get(r)?.as_str()? == rp)
                .then(|| {
                    Some((
                        row.get(id)?.as_u64()?,
                        time(row.get(st)?)?,
                        time(row.get(en)?)?,
                    ))
                })
                .flatten()
        })
        .collect()
}

/// Shard IDs of `db`/`rp` as the snapshotter at `addr` lists them (type 4, blocking): the
/// upload goes there only when they equal the IDs the HTTP API lists, i.e. when `addr` is
/// the snapshotter of the same server.
pub fn snapshotter_shards(addr: &str, db: &str, rp: &str) -> Result<Vec<u64>> {
    let what = format!("ask the snapshotter at {addr} for the shards of {db}/{rp}");
    let mut sock = connect(addr, &what)?;
    let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
    let mut req = snapshotd_wire::Request::new(RequestType::RetentionPolicyInfo);
    req.backup_database = db.to_string();
    req.backup_retention_policy = rp.to_string();
    let mut bytes = vec![snapshotd_wire::MUX_HEADER, req.type_code];
    req.encode_json(&mut bytes)
        .map_err(|e| corrupt(what.clone(), e.to_string()))?;
    sock.write_all(&bytes).map_err(io(what.clone()))?;
    let limit = snapshotd_wire::Limits::default().max_info_response as u64;
    let mut raw = Vec::new();
    (&mut sock)
        .take(limit + 1)
        .read_to_end(&mut raw)
        .map_err(io(what.clone()))?;
    if raw.len() as u64 > limit {
        return Err(corrupt(what, format!("reply larger than {limit} bytes")));
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let info = InfoResponse::from_json(&raw).map_err(|e| corrupt(what.clone(), e.to_string()))?;
    let mut ids = Vec::new();
    for p in info.shard_paths() {
        let p = p.map_err(|e| corrupt(what.clone(), e.to_string()))?;
        if p.db == db && p.rp == rp {
            ids.push(p.id);
        }
    }
    Ok(ids)
}

/// A TCP connection to `addr`, giving up after 5 s per address.
pub fn connect(addr: &str, what: &str) -> Result<TcpStream> {
    let addrs = addr
        .to_socket_addrs()
        .map_err(io(format!("{what}: resolve {addr}")))?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
    Err(io(format!("{what}: connect to {addr}"))(e))
}

/// Uploads the TSM files of the shard's backup files (of which [`seed_line`] found one run
/// holding TSM files) as target shard `new_id` of `db`/`rp` through the snapshotter at
/// `addr` (blocking), entries renamed to `db/rp/new_id/<renumbered file>`.
pub fn upload_shard(s: &BackupShard, addr: &str, db: &str, rp: &str, new_id: u64) -> Result<()> {
    let lbl = label(s);
    let mut sock = connect(addr, &format!("{lbl}: upload to the snapshotter"))?;
    let _ = sock.set_read_timeout(Some(Duration::from_secs(600)));
    sock.write_all(&snapshotd_wire::UploadHeader::new(new_id).to_bytes())
        .map_err(io(format!("{lbl}: upload header to {addr}")))?;
    let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, &mut sock));
    for file in &s.files {
        send_tsm_entries(&mut b, file, &lbl, (db, rp, new_id), addr)?;
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

/// Appends the `.tsm` entries of backup archive `file` to the upload `b`, renamed to
/// `db/rp/new_id/<renumbered file>`.
fn send_tsm_entries<W: Write>(
    b: &mut tar::Builder<W>,
    file: &Path,
    lbl: &str,
    (db, rp, new_id): (&str, &str, u64),
    addr: &str,
) -> Result<()> {
    let f = std::fs::File::open(file).map_err(io(format!("open {}", file.display())))?;
    let mut ar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(f)));
    let ctx = format!("{lbl}: {}", file.display());
    for e in ar.entries().map_err(io(ctx.clone()))? {
        let mut e = e.map_err(|e| corrupt(ctx.clone(), format!("tar/gzip: {e}")))?;
        let path = e.path().map_err(|e| corrupt(ctx.clone(), e.to_string()))?;
        // influxd reads only `.tsm` entries; each goes in under a generation the target
        // shard cannot have used (see the module comment).
        let Some(base) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(renumbered)
        else {
            continue;
        };
        let mut h = e.header().clone();
        b.append_data(&mut h, format!("{db}/{rp}/{new_id}/{base}"), &mut e)
            .map_err(io(format!("{lbl}: send {base} to {addr}")))?;
    }
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
                       [12, "imp", "autogen", 12, "2021-01-02T00:00:00Z", "2021-01-03T00:00:00Z", "2021-01-03T00:00:00Z", ""],
                       [13, "imp", "other", 13, "2021-01-02T00:00:00Z", "2021-01-03T00:00:00Z", "2021-01-03T00:00:00Z", ""]]
        }))
        .unwrap();
        let day = 86_400_000_000_000i64;
        let t0 = 1_609_459_200_000_000_000i64;
        let shards = shards_in(std::slice::from_ref(&s), "imp", "autogen");
        assert_eq!(shards.len(), 2);
        assert_eq!(exact_shard(&shards, t0 + day, t0 + 2 * day), Some(12));
        assert_eq!(exact_shard(&shards, t0, t0 + 7 * day), None);
        assert_eq!(shards_in(std::slice::from_ref(&s), "imp", "other")[0].0, 13);
        assert!(shards_in(&[s], "nodb", "autogen").is_empty());
    }

    #[test]
    fn renumbers_into_generations_a_new_shard_cannot_have() {
        assert_eq!(
            renumbered("000000001-000000001.tsm").as_deref(),
            Some("100000001-000000001.tsm")
        );
        assert_eq!(
            renumbered("000000012-000000003.tsm").as_deref(),
            Some("100000012-000000003.tsm")
        );
        assert_eq!(renumbered("900000000-000000001.tsm"), None);
        assert_eq!(renumbered("000000001-000000001.tombstone"), None);
        assert_eq!(renumbered("fields.idx"), None);
        assert_eq!(renumbered("x-1.tsm"), None);
    }
}
