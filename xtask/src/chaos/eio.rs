//! EIO faults: xtask/chaos/eiofs.py (the slowfs FUSE passthrough, failing writes and fsync,
//! or reads of the files matching a pattern, with EIO once a byte budget is spent) mounted
//! over a directory, the fault set at run time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::slowfs::{fusepy_python, is_mounted};
use crate::util::root;

/// A mounted failing filesystem; unmounted when dropped (its backing files are kept).
#[derive(Debug)]
pub struct EioFs {
    mnt: PathBuf,
    control: PathBuf,
    log: PathBuf,
    child: Child,
}

impl EioFs {
    /// Mounts the passthrough of `backing` at `mnt` (both created) with `budget` bytes before
    /// writes fail (`None`: no fault yet). Needs root and libfuse2.
    pub fn mount(backing: &Path, mnt: &Path, budget: Option<u64>) -> Result<EioFs> {
        let py = fusepy_python()?;
        std::fs::create_dir_all(backing)?;
        std::fs::create_dir_all(mnt)?;
        let control = backing.with_extension("budget");
        let log_path = backing.with_extension("log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(py)
            .arg(root().join("xtask/chaos/eiofs.py"))
            .arg(backing)
            .arg(mnt)
            .arg(&control)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start eiofs.py")?;
        let mut fs = EioFs {
            mnt: mnt.to_path_buf(),
            control,
            log: log_path,
            child,
        };
        fs.set(budget)?;
        let t = Instant::now();
        while !is_mounted(&fs.mnt)? {
            if let Some(st) = fs.child.try_wait()? {
                bail!(
                    "eiofs.py exited before mounting ({st}; log {}); needs root and libfuse2",
                    backing.with_extension("log").display()
                );
            }
            if t.elapsed() > Duration::from_secs(15) {
                bail!("eiofs did not mount {} within 15 s", fs.mnt.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(fs)
    }

    /// Writes fail after `budget` more bytes (`None`: the fault is cleared).
    pub fn set(&self, budget: Option<u64>) -> Result<()> {
        self.control(&budget.map_or("-1".to_string(), |b| b.to_string()))
    }

    /// Reads of the files whose path below the mount point matches the glob `pattern` fail
    /// once `after` bytes of them were read (the write fault, if any, is cleared).
    pub fn set_read(&self, pattern: &str, after: u64) -> Result<()> {
        self.control(&serde_json::json!({ "read": after, "pattern": pattern }).to_string())
    }

    /// EIO errors the layer returned since it was mounted (each is a line of its log).
    pub fn trips(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("eiofs: EIO "))
            .count()
    }

    /// Replaces the control file's text.
    fn control(&self, text: &str) -> Result<()> {
        // A new file (rename) so the filesystem sees the change at once.
        let tmp = self.control.with_extension("budget.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.control)?;
        Ok(())
    }
}

impl Drop for EioFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
