//! A disk whose fsync is slow, for `cargo xtask bench wal --fsync-delay-ms N`: the FUSE
//! passthrough in crates/wal/benches/slowfs (fusepy in a venv under target/), mounted under
//! target/slowfs/mnt while the bench runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{root, step, target_dir, which};

/// A mounted slow-fsync filesystem; unmounted when dropped.
pub struct SlowFs {
    mnt: PathBuf,
    child: Child,
}

impl SlowFs {
    /// Mounts it with fsync delayed by `delay_ms`.
    pub fn mount(delay_ms: u64) -> Result<SlowFs> {
        let fusermount =
            which("fusermount").context("fusermount not found: apt-get install fuse libfuse2")?;
        let py = fusepy_python()?;
        let base = target_dir().join("slowfs");
        let (backing, mnt) = (base.join("root"), base.join("mnt"));
        if is_mounted(&mnt)? {
            let _ = Command::new(&fusermount).arg("-u").arg(&mnt).status();
        }
        std::fs::create_dir_all(&backing)?;
        std::fs::create_dir_all(&mnt)?;
        let script = root().join("crates/wal/benches/slowfs/slowfs.py");
        let child = Command::new(&py)
            .arg(&script)
            .arg(&backing)
            .arg(&mnt)
            .arg(format!("{}", delay_ms as f64 / 1000.0))
            .stdout(Stdio::null())
            .spawn()
            .context("start slowfs.py")?;
        let mut fs = SlowFs { mnt, child };
        let t = Instant::now();
        while !is_mounted(&fs.mnt)? {
            if let Some(st) = fs.child.try_wait()? {
                bail!("slowfs.py exited before mounting ({st}); is libfuse2 installed?");
            }
            if t.elapsed() > Duration::from_secs(15) {
                bail!("slowfs did not mount {} within 15 s", fs.mnt.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "xtask: slowfs: {} mounted, fsync delayed by {delay_ms} ms",
            fs.mnt.display()
        );
        Ok(fs)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mnt
    }
}

impl Drop for SlowFs {
    fn drop(&mut self) {
        if let Some(f) = which("fusermount") {
            let _ = Command::new(f).arg("-u").arg(&self.mnt).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The python of a venv under target/ with fusepy installed (created once).
pub fn fusepy_python() -> Result<PathBuf> {
    let venv = target_dir().join("slowfs-venv");
    let py = venv.join("bin").join("python");
    if !py.is_file()
        || !Command::new(&py)
            .args(["-c", "import fuse"])
            .stderr(Stdio::null())
            .status()?
            .success()
    {
        let python3 = which("python3").context("python3 not found")?;
        step(
            "create slowfs venv",
            Command::new(python3).args(["-m", "venv"]).arg(&venv),
        )?;
        step(
            "install fusepy",
            Command::new(venv.join("bin").join("pip")).args([
                "install",
                "--quiet",
                "fusepy==3.0.1",
            ]),
        )?;
    }
    Ok(py)
}

/// Whether `mnt` is a mount point (listed in /proc/mounts).
pub fn is_mounted(mnt: &Path) -> Result<bool> {
    let mounts = std::fs::read_to_string("/proc/mounts")?;
    let want = mnt.to_string_lossy();
    Ok(mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(want.as_ref())))
}
