//! Point-in-time shard backup: every file is opened before streaming starts (an open file
//! survives a concurrent unlink), WAL segments come from the log's read-only view and are
//! shipped up to their last whole record, with the view's segment locks held to the end.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use super::shard_log;
use super::tarout::TarOut;
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

/// Streams a point-in-time tar of the shard (files opened and log view taken beforehand)
/// to `out`.
pub(crate) fn backup(
    prefix: &str,
    since: Option<SystemTime>,
    items: Vec<Item>,
    log_view: Option<shard_log::LogView>,
    out: &mut dyn Write,
) -> Result<BackupStats> {
    let view = log_view;
    let segments = match &view {
        Some(v) => v.segments()?,
        None => Vec::new(),
    };
    let keep = |t: SystemTime| since.is_none_or(|s| t > s);
    let mut tar = TarOut::new(out);
    for mut item in items.into_iter().filter(|i| keep(i.mtime)) {
        let name = format!("{prefix}/{}", item.rel);
        tar.append(&name, item.len, item.mtime, &mut item.file)?;
    }
    for mut seg in segments.into_iter().filter(|s| keep(s.mtime)) {
        let name = format!("{prefix}/{}", seg.rel);
        tar.append(&name, seg.len, seg.mtime, &mut seg.reader)?;
    }
    let stats = tar.finish()?;
    drop(view); // segment locks are released only now, after the last byte
    Ok(stats)
}
