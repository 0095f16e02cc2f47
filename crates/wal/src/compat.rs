//! etcd's open + `ReadAll` outcome in one call, error for error, for tools that must report
//! exactly what etcd would (the `snapshotd wal dump` CLI, interop tests).

use std::path::Path;

use crate::error::Error;
use crate::options::WalOptions;
use crate::pb::Snapshot;
use crate::read::WalContents;
use crate::view::WalReader;
use crate::wal::Wal;

/// Which of etcd's opens to mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenMode {
    /// `OpenForRead`: no locks; a partial last record is accepted.
    Read,
    /// `Open`: OFD locks, strict end of log, tail zeroed; closed again afterwards.
    Write,
}

/// What etcd's open + `ReadAll` would have reported.
#[derive(Debug, Default)]
pub struct EtcdReadOutcome {
    /// Error from the open step (e.g. `wal: file not found`, `fileutil: file already locked`).
    pub open_error: Option<Error>,
    /// Error from `ReadAll` (read mode also reports `wal: snapshot not found` here while
    /// still returning the data, exactly as etcd does).
    pub read_error: Option<Error>,
    /// What `ReadAll` returned (empty on errors other than snapshot-not-found).
    pub contents: WalContents,
}

/// Opens `dir` at `snap` in `mode` and reads everything, reporting like etcd 3.4.23.
pub fn read_like_etcd(
    dir: &Path,
    snap: Snapshot,
    mode: OpenMode,
    opts: &WalOptions,
) -> EtcdReadOutcome {
    let mut out = EtcdReadOutcome::default();
    match mode {
        OpenMode::Read => match WalReader::open_with(dir, snap, opts) {
            Err(e) => out.open_error = Some(e),
            Ok(r) => match r.read_all() {
                Err(e) => out.read_error = Some(e),
                Ok(c) => {
                    if !c.snapshot_found {
                        out.read_error = Some(Error::SnapshotNotFound);
                    }
                    out.contents = c;
                }
            },
        },
        OpenMode::Write => match Wal::open_with(dir, snap, opts) {
            Err(e) => out.open_error = Some(e),
            Ok(u) => match u.read_all() {
                Err(e) => out.read_error = Some(e),
                Ok((wal, c)) => {
                    // etcd 3.4's write-mode ReadAll drops ErrSnapshotNotFound (the error is
                    // overwritten when the encoder is set up), so none is reported here.
                    if let Err(e) = wal.close() {
                        out.read_error = Some(e);
                    }
                    out.contents = c;
                }
            },
        },
    }
    out
}
