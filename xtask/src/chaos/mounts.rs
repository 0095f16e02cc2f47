//! The fault filesystems a round mounts on its destination: a full (48 KiB) or read-only
//! tmpfs, or the EIO layer (failing writes, or armed later to fail reads).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::eio::EioFs;
use super::fault::Fault;

/// The fault filesystems of a round, unmounted by [`unmount`].
#[derive(Debug, Default)]
pub(super) struct FaultMounts {
    tmpfs: Vec<PathBuf>,
    eio: Option<EioFs>,
}

/// The directory the EIO layer mounted on `dest` passes through to (files put there before
/// mounting appear in `dest`).
pub(super) fn eio_backing(dest: &Path) -> PathBuf {
    dest.with_file_name("eio-root")
}

/// Mounts the destination faults on `dest`: a full or read-only tmpfs, or the EIO layer
/// (writes failing after a seeded 1 to 9 KiB; for reads it is mounted without a fault and
/// armed by the caller).
pub(super) fn mount_faults(faults: &[Fault], dest: &Path, seed: u64) -> Result<FaultMounts> {
    let read = faults.contains(&Fault::EioRead);
    if read || faults.contains(&Fault::Eio) {
        let budget = (!read).then_some(1024 + seed % 8192);
        let eio = EioFs::mount(&eio_backing(dest), dest, budget)?;
        return Ok(FaultMounts {
            tmpfs: Vec::new(),
            eio: Some(eio),
        });
    }
    let opts = if faults.contains(&Fault::Enospc) {
        "size=48k"
    } else if faults.contains(&Fault::ReadOnly) {
        "ro,size=1m"
    } else {
        return Ok(FaultMounts::default());
    };
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
        .arg(dest)
        .status()?;
    anyhow::ensure!(
        ok.success(),
        "mount tmpfs on {} failed (needs root)",
        dest.display()
    );
    Ok(FaultMounts {
        tmpfs: vec![dest.to_path_buf()],
        eio: None,
    })
}

impl FaultMounts {
    /// Whether nothing is mounted.
    pub(super) fn is_empty(&self) -> bool {
        self.tmpfs.is_empty() && self.eio.is_none()
    }

    /// The EIO layer, if mounted.
    pub(super) fn eio(&self) -> Option<&EioFs> {
        self.eio.as_ref()
    }
}

/// Unmounts the round's fault filesystems.
pub(super) fn unmount(mounts: FaultMounts) {
    for m in &mounts.tmpfs {
        let _ = Command::new("umount").arg(m).status();
    }
    drop(mounts.eio);
}
