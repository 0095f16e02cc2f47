//! One backed-up shard: its `.tar.gz` files (gzip possibly multi-member) unpacked into a
//! private temp dir (TSM needs random access), then walked block by block with tombstones
//! applied, one block in memory at a time.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use snapshotd_tsm::{Tombstones, TsmReader, Values, split_key};

use crate::error::{InfluxApiError, Result, corrupt, io};
use crate::source::BackupShard;

/// A shard's TSM files unpacked on local disk, oldest first.
pub struct Unpacked {
    _dir: tempfile::TempDir,
    /// `(tsm path, tombstone path)` in write order (run, then file name).
    pub files: Vec<(PathBuf, Option<PathBuf>)>,
    /// `.tombstone` entries found in any archive (also those of a TSM file another run holds).
    pub tombstones: usize,
    /// Label used in errors: `database/rp/shard`.
    pub label: String,
}

/// The `db/rp/id` label of a shard used in every error.
pub fn label(s: &BackupShard) -> String {
    format!("shard {} of {}/{}", s.shard_id, s.database, s.policy)
}

/// Unpacks the `.tsm` and `.tombstone` entries of every file of `shard` under `tmp`.
pub fn unpack(shard: &BackupShard, tmp: &Path) -> Result<Unpacked> {
    let lbl = label(shard);
    let dir = tempfile::Builder::new()
        .prefix("snapshotd-merge-")
        .tempdir_in(tmp)
        .map_err(io(format!("{lbl}: create a temp dir in {}", tmp.display())))?;
    let mut files = Vec::new();
    let mut tombstones = 0;
    for (run, path) in shard.files.iter().enumerate() {
        let ctx = format!("{lbl}: {}", path.display());
        let f = File::open(path).map_err(io(format!("open {}", path.display())))?;
        let mut ar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(f)));
        let entries = ar.entries().map_err(io(ctx.clone()))?;
        let mut tsms = Vec::new();
        for e in entries {
            let mut e = e.map_err(|e| corrupt(ctx.clone(), format!("tar/gzip: {e}")))?;
            let name = e.path().map_err(|e| corrupt(ctx.clone(), e.to_string()))?;
            let Some(base) = name
                .file_name()
                .and_then(|b| b.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if !(base.ends_with(".tsm") || base.ends_with(".tombstone")) {
                continue;
            }
            let out = dir.path().join(format!("{run:05}-{base}"));
            let mut w = File::create(&out).map_err(io(format!("write {}", out.display())))?;
            std::io::copy(&mut e, &mut w)
                .map_err(|e| corrupt(ctx.clone(), format!("{base}: {e}")))?;
            if base.ends_with(".tsm") {
                tsms.push(out);
            } else {
                tombstones += 1;
            }
        }
        tsms.sort();
        files.extend(tsms.into_iter().map(|t| (t, None)));
    }
    pair_tombstones(dir.path(), shard.files.len(), &mut files);
    Ok(Unpacked {
        _dir: dir,
        files,
        tombstones,
        label: lbl,
    })
}

/// Gives each unpacked `RUN-NAME.tsm` its tombstones: the newest `R-NAME.tombstone` of its
/// run or a later one (influx rewrites a tombstone file whole, so the newest holds every
/// deletion; an increment carries a newer one without the older TSM file it belongs to).
fn pair_tombstones(dir: &Path, runs: usize, files: &mut [(PathBuf, Option<PathBuf>)]) {
    for (tsm, tomb) in files.iter_mut() {
        let Some((run, name)) = file_name(tsm).split_once('-').and_then(|(r, n)| {
            let stem = n.strip_suffix(".tsm")?;
            Some((r.parse::<usize>().ok()?, stem.to_string()))
        }) else {
            continue;
        };
        *tomb = (run..runs)
            .rev()
            .map(|r| dir.join(format!("{r:05}-{name}.tombstone")))
            .find(|p| p.is_file());
    }
}

/// Opens each TSM file of `u` in order with its tombstones and calls `f(reader, tombstones,
/// context)`, the context naming the shard and file for errors.
pub fn for_each_file(
    u: &Unpacked,
    mut f: impl FnMut(&mut TsmReader<BufReader<File>>, &Tombstones, &str) -> Result<()>,
) -> Result<()> {
    for (tsm, tomb) in &u.files {
        let ctx = format!("{}: {}", u.label, file_name(tsm));
        let tombs = match tomb {
            Some(p) => {
                let fh = File::open(p).map_err(io(format!("open {}", p.display())))?;
                Tombstones::read(fh).map_err(|source| InfluxApiError::Tsm {
                    context: format!("{}: {}", u.label, file_name(p)),
                    source,
                })?
            }
            None => Tombstones::default(),
        };
        let fh = File::open(tsm).map_err(io(format!("open {}", tsm.display())))?;
        let mut r = TsmReader::open(BufReader::new(fh)).map_err(|source| InfluxApiError::Tsm {
            context: ctx.clone(),
            source,
        })?;
        f(&mut r, &tombs, &ctx)?;
    }
    Ok(())
}

/// Calls `visit(series, field, values)` for every block of every TSM file in order, with
/// deleted points removed; each block is CRC-checked and checked against its index entry.
pub fn walk(
    u: &Unpacked,
    mut visit: impl FnMut(&[u8], &[u8], &Values) -> Result<()>,
) -> Result<()> {
    for_each_file(u, |r, tombs, ctx| {
        let n = r.keys().len();
        for k in 0..n {
            let Some(ki) = r.keys().get(k) else { break };
            let (key, typ, entries) = (ki.key.clone(), ki.block_type, ki.entries.clone());
            let (series, field) = split_key(&key);
            for e in &entries {
                let mut v = r.read_block(typ, e).map_err(|source| InfluxApiError::Tsm {
                    context: format!("{ctx}: key {}", String::from_utf8_lossy(&key)),
                    source,
                })?;
                if !tombs.is_empty() {
                    v.retain_times(|t| !tombs.covers(&key, t));
                }
                if !v.is_empty() {
                    visit(series, field, &v)?;
                }
            }
        }
        Ok(())
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
