//! The fault filesystems a round mounts on its destination: a full (48 KiB) or read-only
//! tmpfs, or the EIO layer.

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

/// Mounts the destination faults on `dest`: a full or read-only tmpfs, or the EIO layer
/// (failing after a seeded 1 to 9 KiB).
pub(super) fn mount_faults(faults: &[Fault], dest: &Path, seed: u64) -> Result<FaultMounts> {
    if faults.contains(&Fault::Eio) {
        let backing = dest.with_file_name("eio-root");
        let eio = EioFs::mount(&backing, dest, Some(1024 + seed % 8192))?;
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
}

/// Unmounts the round's fault filesystems.
pub(super) fn unmount(mounts: FaultMounts) {
    for m in &mounts.tmpfs {
        let _ = Command::new("umount").arg(m).status();
    }
    drop(mounts.eio);
}
