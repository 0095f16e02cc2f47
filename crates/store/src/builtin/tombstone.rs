//! TSM tombstone files of the built-in store, read through `snapshotd-tsm`.

use std::fs::File;
use std::io::{Seek, SeekFrom};

pub(crate) use snapshotd_tsm::Tombstones;

use crate::error::{Corruption, Result, StoreError};

/// Reads a tombstone file from an open handle (`path` names it in errors).
pub(crate) fn read(file: &mut File, path: &str) -> Result<Tombstones> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| StoreError::io(format!("read {path}"), e))?;
    Tombstones::read(&mut *file).map_err(|e| match e {
        snapshotd_tsm::TsmError::Io { source, .. } => {
            StoreError::io(format!("read {path}"), source)
        }
        e => Corruption::Tombstone {
            file: path.to_string(),
            detail: e.to_string(),
        }
        .into(),
    })
}
