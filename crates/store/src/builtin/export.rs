//! Shard export restricted to a time window: TSM files filtered at block granularity as
//! influx 1.6 does (minus its bugs: no duplicate for an exact fit, no abort on a gap, `None`
//! bounds are ±∞); the log's points inside the window are shipped as TSM files.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::SystemTime;

use super::backup::Item;
use super::shard_log::LogView;
use super::tarout::TarOut;
use super::{marker, tail, tsm};
use crate::error::{Result, StoreError};
use crate::types::{BackupStats, TimeRange};

/// Removes a scratch directory when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Streams the export tar of one shard to `out`.
pub(crate) fn export(
    prefix: &str,
    tmp_root: &Path,
    range: TimeRange,
    files: Vec<Item>,
    view: Option<LogView>,
    out: &mut dyn Write,
) -> Result<BackupStats> {
    let (s, e) = (
        range.start_ns.unwrap_or(i64::MIN),
        range.end_ns.unwrap_or(i64::MAX),
    );
    let scratch = Scratch(tmp_root.join(format!("export-{:016x}", rand::random::<u64>())));
    fs::create_dir_all(&scratch.0)
        .map_err(|err| StoreError::io(format!("create {}", scratch.0.display()), err))?;
    let names: Vec<String> = files.iter().map(|f| f.rel.clone()).collect();
    let mut tar = TarOut::new(out);
    for mut item in files {
        let name = format!("{prefix}/{}", item.rel);
        if !item.rel.ends_with(".tsm") {
            tar.append(&name, item.len, item.mtime, &mut item.file)?;
            continue;
        }
        export_tsm(&mut tar, &name, &mut item, &scratch.0, s, e)?;
    }
    if let Some(view) = view {
        // Chunk by chunk: memory is bounded whatever the size of the shard's log.
        let first_gen = marker::max_generation(names.iter().map(String::as_str)) + 1;
        tail::append_tail(&mut tar, prefix, first_gen, &view, &|t| range.contains(t))?;
    }
    tar.finish()
}

fn export_tsm(
    tar: &mut TarOut<'_>,
    name: &str,
    item: &mut Item,
    scratch: &Path,
    s: i64,
    e: i64,
) -> Result<()> {
    let index = tsm::read_index(&mut item.file, item.len, name)?;
    if index.keys.is_empty() || !tsm::overlaps(index.min, index.max, s, e) {
        return Ok(());
    }
    if index.min >= s && index.max <= e {
        item.file
            .seek(SeekFrom::Start(0))
            .map_err(|err| StoreError::io(format!("read {name}"), err))?;
        return tar.append(name, item.len, item.mtime, &mut item.file);
    }
    let tmp = scratch.join(format!("{:016x}.tsm.tmp", rand::random::<u64>()));
    let out = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|err| StoreError::io(format!("create {}", tmp.display()), err))?;
    let (blocks, mut filtered) = tsm::filter(&mut item.file, &index, s, e, out, name)?;
    if blocks > 0 {
        let len = filtered
            .stream_position()
            .map_err(|err| StoreError::io(format!("read {}", tmp.display()), err))?;
        filtered
            .seek(SeekFrom::Start(0))
            .map_err(|err| StoreError::io(format!("read {}", tmp.display()), err))?;
        tar.append(name, len, SystemTime::now(), &mut filtered)?;
    }
    let _ = fs::remove_file(&tmp);
    Ok(())
}
