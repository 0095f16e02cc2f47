//! Environments only some workloads need, started on first use: a `snapshotd serve` whose data
//! dir is a small tmpfs (store faults) and a single-member etcd 3.4.23 (archive rounds).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::eio::EioFs;
use super::env::{Proc, Server, append_log, free_port, http, wait_until};

/// The lazily started environments.
#[derive(Debug, Default)]
pub struct Extra {
    /// `snapshotd serve` on a tmpfs data dir.
    pub store: Option<StoreEnv>,
    /// `snapshotd serve` on the EIO layer.
    pub store_eio: Option<StoreEnv>,
    /// The etcd member.
    pub etcd: Option<Etcd>,
}

/// A tmpfs mounted by xtask, unmounted when dropped.
#[derive(Debug)]
pub struct Mount(pub PathBuf);

impl Mount {
    /// Mounts a tmpfs with `opts` (e.g. `size=64m`) on `dir` (created); needs root.
    pub fn tmpfs(dir: &Path, opts: &str) -> Result<Mount> {
        std::fs::create_dir_all(dir)?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(dir)
            .status()?;
        if !ok.success() {
            bail!("mount tmpfs on {} failed (needs root)", dir.display());
        }
        Ok(Mount(dir.to_path_buf()))
    }

    /// `mount -o remount,<opts>`; an error names what the kernel refused.
    pub fn remount(&self, opts: &str) -> Result<()> {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .output()?;
        if !out.status.success() {
            bail!(
                "remount {opts} {}: {}",
                self.0.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `snapshotd serve` over a data dir on a 128 MiB tmpfs or on the EIO layer (the server is
/// dropped first, then the filesystem).
#[derive(Debug)]
pub struct StoreEnv {
    /// The server.
    pub server: Server,
    /// The EIO layer under its data dir, if that is where it runs.
    pub eio: Option<EioFs>,
    /// Its data dir's tmpfs, if that is where it runs.
    pub mount: Option<Mount>,
    log: PathBuf,
}

impl StoreEnv {
    /// Mounts the tmpfs under `work` and starts the server on it.
    pub fn start(bin: &Path, work: &Path) -> Result<StoreEnv> {
        let mount = Mount::tmpfs(&work.join("store-fs"), "size=128m")?;
        let log = work.join("store.log");
        let server = Server::start(bin, &mount.0.join("data"), &log)?;
        Ok(StoreEnv {
            server,
            eio: None,
            mount: Some(mount),
            log,
        })
    }

    /// Mounts the EIO layer (no fault yet) under `work` and starts the server on it.
    pub fn start_eio(bin: &Path, work: &Path) -> Result<StoreEnv> {
        let mnt = work.join("store-eio");
        let eio = EioFs::mount(&work.join("store-eio-root"), &mnt, None)?;
        let log = work.join("store-eio.log");
        let server = Server::start(bin, &mnt.join("data"), &log)?;
        Ok(StoreEnv {
            server,
            eio: Some(eio),
            mount: None,
            log,
        })
    }

    /// The server's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

/// A single etcd 3.4.23 member on loopback ports.
#[derive(Debug)]
pub struct Etcd {
    /// The running process (None while killed).
    pub proc: Option<Proc>,
    /// Its data dir.
    pub data: PathBuf,
    /// Client address (HTTP gateway).
    pub client: SocketAddr,
    peer: SocketAddr,
    bin: PathBuf,
    log: PathBuf,
}

impl Etcd {
    /// Starts a fresh member under `dir` (`SNAPSHOTD_ETCD_BIN` or `etcd` on PATH).
    pub fn start(dir: &Path) -> Result<Etcd> {
        let bin = std::env::var_os("SNAPSHOTD_ETCD_BIN")
            .map(PathBuf::from)
            .or_else(|| crate::util::which("etcd"))
            .context("etcd 3.4 not found (set SNAPSHOTD_ETCD_BIN)")?;
        std::fs::create_dir_all(dir)?;
        let mut e = Etcd {
            proc: None,
            data: dir.join("member-data"),
            client: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            peer: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            bin,
            log: dir.join("etcd.log"),
        };
        e.restart()?;
        Ok(e)
    }

    /// (Re)starts etcd on the same ports and data dir and waits until it is healthy.
    pub fn restart(&mut self) -> Result<()> {
        self.proc = None;
        let child = serve_member(
            &self.bin,
            "chaos",
            &self.data,
            self.client,
            self.peer,
            &self.log,
            false,
        )?;
        self.proc = Some(Proc { child });
        healthy(self.client)
    }

    /// Whether the process has exited.
    pub fn dead(&mut self) -> bool {
        self.proc
            .as_mut()
            .is_none_or(|p| p.child.try_wait().ok().flatten().is_some())
    }

    /// The etcd binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }
}

/// Spawns an etcd member `name` over `data` (`force`: `--force-new-cluster`, as for a
/// restored data dir).
pub fn serve_member(
    bin: &Path,
    name: &str,
    data: &Path,
    client: SocketAddr,
    peer: SocketAddr,
    log: &Path,
    force: bool,
) -> Result<std::process::Child> {
    let log = append_log(log)?;
    let (c, p) = (format!("http://{client}"), format!("http://{peer}"));
    let mut cmd = Command::new(bin);
    cmd.args(["--name", name, "--data-dir"])
        .arg(data)
        .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
        .args([
            "--listen-peer-urls",
            &p,
            "--initial-advertise-peer-urls",
            &p,
        ])
        .args(["--initial-cluster", &format!("{name}={p}")]);
    if force {
        cmd.arg("--force-new-cluster");
    }
    cmd.stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("start etcd")
}

/// Waits up to 40 s for `/health` of the member at `client` to say healthy.
pub fn healthy(client: SocketAddr) -> Result<()> {
    wait_until(Duration::from_secs(40), || {
        http(client, "GET", "/health", b"")
            .is_ok_and(|(c, b)| c == 200 && String::from_utf8_lossy(&b).contains("true"))
    })
    .with_context(|| format!("etcd at {client} did not become healthy"))
}
