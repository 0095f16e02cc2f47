//! Point-in-time shard backup: every file is opened before streaming starts (an open file
//! survives a concurrent unlink); the log entries not yet compacted come from the log's
//! read-only view taken at the same instant and are shipped as TSM files (influxd ignores
//! WAL segments), with the view held to the end.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use super::tarout::TarOut;
use super::{marker, shard_log, tail};
use crate::error::{Result, StoreError};
use crate::types::BackupStats;

/// One file to ship: tar name suffix (after `db/rp/id/`), open handle, length, mtime.
pub(crate) struct Item {
    /// Name relative to the shard directory, `/`-separated.
    pub rel: String,
    /// Open handle (read from its start).
    pub file: File,
    /// Bytes to ship.
    pub len: u64,
    /// Modification time.
    pub mtime: SystemTime,
}

/// Opens the shard's top-level regular files (TSM, tombstones, other opaque files), by name.
pub(crate) fn opaque_files(shard_dir: &Path) -> Result<Vec<Item>> {
    let ctx = |e| StoreError::io(format!("read {}", shard_dir.display()), e);
    let mut names: Vec<String> = fs::read_dir(shard_dir)
        .map_err(ctx)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for rel in names {
        let path = shard_dir.join(&rel);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(format!("open {}", path.display()), e)),
        };
        let md = file
            .metadata()
            .map_err(|e| StoreError::io(format!("stat {}", path.display()), e))?;
        out.push(Item {
            rel,
            file,
            len: md.len(),
            mtime: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    Ok(out)
}

/// Whether influxd loads a shard file of this name (TSM data and tombstones).
pub(crate) fn is_loadable(rel: &str) -> bool {
    rel.ends_with(".tsm") || rel.ends_with(".tombstone")
}

/// Streams a point-in-time tar of the shard (files opened and log view taken beforehand)
/// to `out`: its TSM and tombstone files, then the log tail as TSM files.
pub(crate) fn backup(
    prefix: &str,
    since: Option<SystemTime>,
    items: Vec<Item>,
    log_view: Option<shard_log::LogView>,
    out: &mut dyn Write,
) -> Result<BackupStats> {
    let keep = |t: SystemTime| since.is_none_or(|s| t > s);
    let first_gen = marker::max_generation(items.iter().map(|i| i.rel.as_str())) + 1;
    let mut tar = TarOut::new(out);
    for mut item in items.into_iter().filter(|i| is_loadable(&i.rel)) {
        if keep(item.mtime) {
            let name = format!("{prefix}/{}", item.rel);
            tar.append(&name, item.len, item.mtime, &mut item.file)?;
        }
    }
    if let Some(view) = &log_view
        && view.newest_mtime().is_none_or(keep)
    {
        tail::append_tail(&mut tar, prefix, first_gen, view, &|_| true)?;
    }
    let stats = tar.finish()?;
    drop(log_view); // the view (and what it keeps from purge) ends only after the last byte
    Ok(stats)
}
