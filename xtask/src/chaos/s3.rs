//! The S3 side of a campaign: a moto server (the venv `cargo xtask interop s3` installs) on a
//! loopback port with the campaign's bucket, and the environment a user gives `snapshotd`
//! for an `s3://` destination.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::env::{Proc, append_log, free_port, http, wait_until};

/// The campaign's bucket.
pub const BUCKET: &str = "chaos";

/// `s3://chaos/<name>`.
pub fn url(name: &str) -> String {
    format!("s3://{BUCKET}/{name}")
}

/// A moto S3 server on loopback. It keeps everything in memory: a restart after SIGKILL
/// comes back empty (the bucket is created again, the data is gone).
#[derive(Debug)]
pub struct Moto {
    /// The running process (None while killed).
    pub proc: Option<Proc>,
    /// Where it listens.
    pub addr: SocketAddr,
    bin: PathBuf,
    log: PathBuf,
}

impl Moto {
    /// Installs moto if needed, starts it and creates the bucket.
    pub fn start(log: &Path) -> Result<Moto> {
        let mut m = Moto {
            proc: None,
            addr: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            bin: crate::interop::moto_server()?,
            log: log.to_path_buf(),
        };
        m.restart()?;
        Ok(m)
    }

    /// (Re)starts moto on the same port and creates the bucket.
    pub fn restart(&mut self) -> Result<()> {
        self.proc = None;
        let log = append_log(&self.log)?;
        let child = Command::new(&self.bin)
            .args(["-H", "127.0.0.1", "-p", &self.addr.port().to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start moto_server")?;
        self.proc = Some(Proc { child });
        let addr = self.addr;
        wait_until(Duration::from_secs(30), || TcpStream::connect(addr).is_ok())
            .context("moto_server did not listen")?;
        let (code, body) = http(addr, "PUT", &format!("/{BUCKET}"), b"")?;
        if code != 200 {
            bail!(
                "create bucket {BUCKET}: HTTP {code}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }

    /// Whether the process has exited.
    pub fn dead(&mut self) -> bool {
        self.proc
            .as_mut()
            .is_none_or(|p| p.child.try_wait().ok().flatten().is_some())
    }
}

/// Gives `cmd` the S3 settings a user would: endpoint `endpoint` over plain HTTP, moto's
/// test credentials.
pub fn with_env(mut cmd: Command, endpoint: SocketAddr) -> Command {
    cmd.env("AWS_ENDPOINT_URL", format!("http://{endpoint}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1");
    cmd
}
