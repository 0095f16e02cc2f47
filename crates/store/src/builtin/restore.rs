//! Shard restore from a tar stream: every entry validated, kept files written to a staging
//! directory beside the shard, then swapped in atomically (rename dance + directory fsync).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Component, Path, PathBuf};

use tar::{Archive, EntryType};

use super::meta_store::fsync_dir;
use super::shard_log;
use crate::error::{InvalidInput, Result, StoreError, TarProblem};
use crate::types::{RestoreStats, ShardPath};

/// Bounds applied to a restore stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreLimits {
    /// Largest single file, bytes.
    pub max_entry_bytes: u64,
    /// Largest total of kept payload bytes.
    pub max_total_bytes: u64,
    /// Most tar entries (kept or skipped).
    pub max_entries: u64,
    /// Largest GNU long-name or PAX extension record.
    pub max_extension_bytes: u64,
}

impl Default for RestoreLimits {
    fn default() -> Self {
        RestoreLimits {
            max_entry_bytes: 16 << 30,
            max_total_bytes: 1 << 40,
            max_entries: 1_000_000,
            max_extension_bytes: 64 * 1024,
        }
    }
}

/// Prefix of staging and retired directories; `open` cleans them up after a crash.
pub(crate) const STAGING_PREFIX: &str = ".restore-";
/// Prefix of the directory holding the previous shard during the swap.
pub(crate) const RETIRED_PREFIX: &str = ".retired-";

/// Counts bytes pulled from the stream (to detect a missing end-of-archive marker).
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

/// The refusal of the tar stream restoring `shard`, at entry `entry` when known.
fn bad_tar(shard: &ShardPath, entry: Option<&str>, problem: TarProblem) -> StoreError {
    InvalidInput::Tar {
        shard: Some(Box::new(shard.clone())),
        entry: entry.map(str::to_string),
        problem,
    }
    .into()
}

/// A tar reader failure as a tar problem.
fn unreadable(e: io::Error) -> TarProblem {
    TarProblem::Unreadable {
        detail: e.to_string(),
    }
}

/// Restores `tar` into `shard_dir`, the directory of `shard` (tar prefix `db/rp/id`).
pub(crate) fn restore(
    shard_dir: &Path,
    shard: &ShardPath,
    tar: &mut dyn Read,
    limits: &RestoreLimits,
) -> Result<RestoreStats> {
    let parent = shard_dir.parent().ok_or_else(|| {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "shard directory has no parent");
        StoreError::io(format!("restore into {}", shard_dir.display()), e)
    })?;
    let id = &shard.shard_id.to_string();
    let prefix = [shard.database.as_str(), shard.retention_policy.as_str(), id];
    let staging = parent.join(format!(
        "{STAGING_PREFIX}{id}-{:08x}",
        rand::random::<u32>()
    ));
    fs::create_dir_all(parent)
        .and_then(|()| fs::create_dir(&staging))
        .map_err(|e| StoreError::io(format!("create {}", staging.display()), e))?;
    let result = unpack(&staging, shard, prefix, tar, limits).and_then(|stats| {
        swap_in(shard_dir, &staging, parent, id)?;
        Ok(stats)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

fn unpack(
    staging: &Path,
    shard: &ShardPath,
    prefix: [&str; 3],
    tar: &mut dyn Read,
    limits: &RestoreLimits,
) -> Result<RestoreStats> {
    let mut archive = Archive::new(Counting { inner: tar, n: 0 });
    let mut stats = RestoreStats::default();
    let mut seen = 0u64;
    let mut long_name: Option<Vec<u8>> = None;
    let mut pax_path: Option<Vec<u8>> = None;
    let mut end_of_last = 0u64;
    let mut dirs_made: Vec<PathBuf> = Vec::new();
    let bad = |entry: Option<&str>, problem| bad_tar(shard, entry, problem);
    let tar_err = |e| bad(None, unreadable(e));
    {
        let entries = archive.entries().map_err(tar_err)?.raw(true);
        for entry in entries {
            let mut entry = entry.map_err(tar_err)?;
            seen += 1;
            if seen > limits.max_entries {
                return Err(StoreError::LimitExceeded {
                    what: "tar entry count",
                    limit: limits.max_entries,
                    got: seen,
                });
            }
            let size = entry.header().entry_size().map_err(tar_err)?;
            end_of_last = entry
                .raw_file_position()
                .saturating_add(size.div_ceil(512).saturating_mul(512));
            let kind = entry.header().entry_type();
            match kind {
                EntryType::GNULongName | EntryType::XHeader | EntryType::XGlobalHeader => {
                    if size > limits.max_extension_bytes {
                        return Err(StoreError::LimitExceeded {
                            what: "tar extension header",
                            limit: limits.max_extension_bytes,
                            got: size,
                        });
                    }
                    let mut buf = Vec::with_capacity(size as usize);
                    (&mut entry)
                        .take(size)
                        .read_to_end(&mut buf)
                        .map_err(tar_err)?;
                    if buf.len() as u64 != size {
                        return Err(bad(None, TarProblem::TruncatedExtension));
                    }
                    match kind {
                        EntryType::GNULongName => {
                            while buf.last() == Some(&0) {
                                buf.pop();
                            }
                            long_name = Some(buf);
                        }
                        EntryType::XHeader => {
                            pax_path = parse_pax(&buf).map_err(|p| bad(None, p))?;
                        }
                        _ => {}
                    }
                    continue;
                }
                _ => {}
            }
            let name = match (long_name.take(), pax_path.take()) {
                (_, Some(p)) => p,
                (Some(l), None) => l,
                (None, None) => entry.path_bytes().into_owned(),
            };
            let name = String::from_utf8(name).map_err(|_| bad(None, TarProblem::NameNotUtf8))?;
            if kind == EntryType::Directory {
                stats.skipped += 1;
                continue;
            }
            if !matches!(kind, EntryType::Regular | EntryType::Continuous) {
                let kind = format!("{kind:?}");
                return Err(bad(Some(&name), TarProblem::NotRegularFile { kind }));
            }
            let rel = match checked_rel(&name, prefix).map_err(|p| bad(Some(&name), p))? {
                Some(rel) => rel,
                None => {
                    stats.skipped += 1;
                    continue;
                }
            };
            if !is_kept(&rel) {
                stats.skipped += 1;
                continue;
            }
            if size > limits.max_entry_bytes {
                return Err(StoreError::LimitExceeded {
                    what: "tar entry size",
                    limit: limits.max_entry_bytes,
                    got: size,
                });
            }
            let total = stats.bytes.saturating_add(size);
            if total > limits.max_total_bytes {
                return Err(StoreError::LimitExceeded {
                    what: "restored shard size",
                    limit: limits.max_total_bytes,
                    got: total,
                });
            }
            let dest = rel
                .iter()
                .fold(staging.to_path_buf(), |p, c| p.join(c.as_str()));
            if let Some(dir) = dest.parent().filter(|d| *d != staging)
                && !dirs_made.iter().any(|d| d == dir)
            {
                fs::create_dir_all(dir)
                    .map_err(|e| StoreError::io(format!("create {}", dir.display()), e))?;
                dirs_made.push(dir.to_path_buf());
            }
            let copied = write_file(&dest, &mut entry, size)?
                .map_err(|e| bad(Some(&name), unreadable(e)))?;
            if copied != size {
                return Err(bad(Some(&name), TarProblem::EntryTruncated));
            }
            stats.files += 1;
            stats.bytes = total;
        }
    }
    if archive.into_inner().n < end_of_last.saturating_add(512) {
        return Err(bad(None, TarProblem::NoEndMarker));
    }
    for d in &dirs_made {
        fsync_dir(d)?;
    }
    fsync_dir(staging)?;
    Ok(stats)
}

/// Copies `size` bytes of `src` into a new file `dest`, fsynced. The outer error is the
/// file's (write, fsync), the inner one the tar stream's (read).
fn write_file(dest: &Path, src: &mut dyn Read, size: u64) -> Result<io::Result<u64>> {
    let ctx = || format!("write {}", dest.display());
    // The staging directory is ours alone (no links in it), so truncating is safe; a
    // repeated name (influx's exact-fit export duplicate) keeps the last copy.
    let file = File::create(dest).map_err(|e| StoreError::io(ctx(), e))?;
    let mut w = BufWriter::with_capacity(256 * 1024, file);
    let copied = match copy(&mut src.take(size), &mut w) {
        Ok(n) => n,
        Err(Failed::Read(e)) => return Ok(Err(e)),
        Err(Failed::Write(e)) => return Err(StoreError::io(ctx(), e)),
    };
    let file = w
        .into_inner()
        .map_err(|e| StoreError::io(ctx(), e.into_error()))?;
    file.sync_all().map_err(|e| StoreError::io(ctx(), e))?;
    Ok(Ok(copied))
}

/// Which side of a copy failed.
enum Failed {
    Read(io::Error),
    Write(io::Error),
}

/// `io::copy` that tells a read failure (the tar stream) from a write failure (the disk).
fn copy(src: &mut dyn Read, dst: &mut dyn io::Write) -> std::result::Result<u64, Failed> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = match src.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failed::Read(e)),
        };
        dst.write_all(&buf[..k]).map_err(Failed::Write)?;
        n += k as u64;
    }
}

fn parse_pax(buf: &[u8]) -> std::result::Result<Option<Vec<u8>>, TarProblem> {
    let mut path = None;
    for ext in tar::PaxExtensions::new(buf) {
        let ext = ext.map_err(|_| TarProblem::MalformedPax)?;
        match ext.key_bytes() {
            b"path" => path = Some(ext.value_bytes().to_vec()),
            b"size" => return Err(TarProblem::PaxSizeOverride),
            b"linkpath" => return Err(TarProblem::Link),
            _ => {}
        }
    }
    Ok(path)
}

/// The components after `db/rp/id`, or `None` when the entry belongs to another shard.
/// Absolute paths, `.`/`..` components and empty components are refused outright.
fn checked_rel(
    name: &str,
    prefix: [&str; 3],
) -> std::result::Result<Option<Vec<String>>, TarProblem> {
    let path = Path::new(name);
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => {
                parts.push(s.to_str().ok_or(TarProblem::NameNotUtf8)?.to_string())
            }
            _ => return Err(TarProblem::UnsafePath),
        }
    }
    if name.contains('\\') || name.contains('\0') {
        return Err(TarProblem::UnsafePath);
    }
    if parts.len() < 4 || parts[..3] != prefix {
        return Ok(None);
    }
    Ok(Some(parts.split_off(3)))
}

/// Kept: top-level `.tsm` and `.tombstone` files and our WAL segments.
fn is_kept(rel: &[String]) -> bool {
    match rel {
        [f] => f.ends_with(".tsm") || f.ends_with(".tombstone"),
        _ => shard_log::is_log_file(rel),
    }
}

/// Replaces `shard_dir` by `staging`: old → retired, staging → shard, fsync, drop retired.
fn swap_in(shard_dir: &Path, staging: &Path, parent: &Path, id: &str) -> Result<()> {
    let retired = parent.join(format!(
        "{RETIRED_PREFIX}{id}-{:08x}",
        rand::random::<u32>()
    ));
    let had_old = shard_dir.exists();
    if had_old {
        fs::rename(shard_dir, &retired)
            .map_err(|e| StoreError::io(format!("retire {}", shard_dir.display()), e))?;
    }
    if let Err(e) = fs::rename(staging, shard_dir) {
        if had_old {
            let _ = fs::rename(&retired, shard_dir);
        }
        return Err(StoreError::io(
            format!("install {}", shard_dir.display()),
            e,
        ));
    }
    fsync_dir(parent)?;
    if had_old && let Err(e) = fs::remove_dir_all(&retired) {
        tracing::warn!(path = %retired.display(), error = %e, "could not remove retired shard");
    }
    Ok(())
}

/// Repairs an interrupted swap under an RP directory: a shard directory missing while a
/// retired copy exists is put back; staging leftovers and retired copies are removed.
pub(crate) fn recover_rp_dir(rp_dir: &Path) -> Result<()> {
    let rd = match fs::read_dir(rp_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(format!("read {}", rp_dir.display()), e)),
    };
    let names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    for n in &names {
        if n.starts_with(STAGING_PREFIX) {
            let _ = fs::remove_dir_all(rp_dir.join(n));
        } else if let Some(rest) = n.strip_prefix(RETIRED_PREFIX) {
            let id = rest.split('-').next().unwrap_or_default();
            let shard = rp_dir.join(id);
            if !id.is_empty() && !shard.exists() {
                fs::rename(rp_dir.join(n), &shard)
                    .map_err(|e| StoreError::io(format!("recover {}", shard.display()), e))?;
            } else {
                let _ = fs::remove_dir_all(rp_dir.join(n));
            }
        }
    }
    fsync_dir(rp_dir)
}

/// Writes nothing: used by tests to prove a path is refused.
#[cfg(test)]
pub(crate) fn check_name(
    name: &str,
    prefix: [&str; 3],
) -> std::result::Result<Option<Vec<String>>, TarProblem> {
    checked_rel(name, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_componentwise() {
        let p = ["db", "rp", "1"];
        assert!(check_name("/db/rp/1/a.tsm", p).is_err());
        assert!(check_name("db/rp/1/../2/a.tsm", p).is_err());
        assert!(check_name("db/rp/1/./a.tsm", p).is_ok()); // `.` components are dropped
        assert_eq!(check_name("db/rp/10/a.tsm", p).ok(), Some(None));
        assert_eq!(
            check_name("db/rp/1/a.tsm", p).ok(),
            Some(Some(vec!["a.tsm".to_string()]))
        );
    }

    #[test]
    fn empty_tar_without_marker_is_refused() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
        let shard = dir.path().join("1");
        fs::create_dir(&shard).map_err(|e| StoreError::io("mkdir", e))?;
        let mut empty: &[u8] = &[];
        let loc = ShardPath {
            database: "d".into(),
            retention_policy: "r".into(),
            shard_id: 1,
        };
        let r = restore(&shard, &loc, &mut empty, &RestoreLimits::default());
        assert!(matches!(
            r,
            Err(StoreError::Invalid(InvalidInput::Tar {
                problem: TarProblem::NoEndMarker,
                ..
            }))
        ));
        let mut ok: &[u8] = &[0u8; 1024];
        let r = restore(&shard, &loc, &mut ok, &RestoreLimits::default())?;
        assert_eq!(r.files, 0);
        Ok(())
    }
}
