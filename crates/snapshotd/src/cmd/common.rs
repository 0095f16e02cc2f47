//! What the backup-family subcommands share: flags, the runtime, Ctrl-C, opening a source
//! that must exist, the state directory, errors printed once, and the progress display.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use snapshotd_checkpoint::Destination;
use snapshotd_client::{Client, ClientConfig, Hooks, JobOptions};

pub use super::progress::{TermProgress, human_bytes};

/// Flags of every command that talks to a snapshot server.
#[derive(Debug, clap::Args)]
pub struct ServerFlags {
    /// Snapshotter address (influxd `bind-address`, usually port 8088, or `snapshotd serve --bind`).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8088")]
    pub host: String,
    /// Shards transferred at once [default: number of cores; restore: at least 4].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Cap on the combined transfer rate, bytes per second (suffixes k, M, G, Ki, Mi, Gi).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = parse_rate)]
    pub rate_limit: Option<u64>,
    /// Give up on a connection that makes no progress for this long (on an S3 destination:
    /// a request, at most 30 s, and its retries, at most 180 s).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: humantime::Duration,
    /// Print one JSON summary object on stdout.
    #[arg(long)]
    pub json: bool,
}

impl ServerFlags {
    /// The client for `--host` with `--timeout`.
    pub fn client(&self) -> Client {
        let mut cfg = ClientConfig::new(self.host.clone());
        cfg.io_timeout = self.timeout.into();
        Client::new(cfg)
    }

    /// `--jobs`, defaulting to the number of cores.
    pub fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(default_jobs).max(1)
    }

    /// `--jobs` for a restore, defaulting to the number of cores but at least 4: an upload
    /// waits mostly on the target's disk (influxd writes and syncs each shard), so on few
    /// cores more uploads in flight finish many small shards sooner (49 shards: 0.60 → 0.46 s)
    /// and cost nothing on a few large ones (0.29 → 0.30 s).
    pub fn restore_jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| default_jobs().max(4)).max(1)
    }
}

/// Flags of the resumable, locked jobs (backup, restore).
#[derive(Debug, clap::Args)]
pub struct ResumeFlags {
    /// No checkpoint and no lock: nothing is recorded and a re-run starts over.
    #[arg(long)]
    pub no_resume: bool,
    /// Forget an interrupted run (also one made with other settings) and start a new one.
    #[arg(long)]
    pub restart: bool,
    /// Lock lease: a holder that stops refreshing for this long may be taken over.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub lock_ttl: humantime::Duration,
}

impl ResumeFlags {
    /// The library's job options.
    pub fn job(&self) -> JobOptions {
        JobOptions {
            resume: !self.no_resume,
            lock_ttl: self.lock_ttl.into(),
            restart: self.restart,
        }
    }
}

/// Parses a byte rate like `50M`, `512Ki` or `1000000`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a number of bytes per second"))?;
    let mult: u64 = match unit.trim_end_matches("/s").trim_end_matches('B') {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (use k, M, G, Ki, Mi, Gi)")),
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if v == 0 {
        return Err("the rate must be positive".into());
    }
    Ok(v)
}

/// Default parallelism: the number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// `s` as one file-name component of the state directory: ASCII letters, digits, `.` and `_`
/// kept, anything else `_`.
pub fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A multi-threaded runtime.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// Opens a destination a run writes to (a local directory is created if missing).
pub fn open_dest(url: &str) -> anyhow::Result<Destination> {
    open_dest_with(url, None)
}

/// [`open_dest`] for a run with `--timeout`: an S3 request and its retries give up after
/// it (capped at the S3 client's own 30 s / 180 s).
pub fn open_dest_timed(url: &str, timeout: std::time::Duration) -> anyhow::Result<Destination> {
    open_dest_with(url, Some(timeout))
}

fn open_dest_with(url: &str, timeout: Option<std::time::Duration>) -> anyhow::Result<Destination> {
    let mut s3 = super::s3_options();
    s3.timeout = timeout;
    Ok(Destination::open(url, &s3)?)
}

/// Opens a location that must already exist (restore, verify, unlock, snapshots, forget):
/// a missing local directory is an error, never created.
pub fn open_existing(url: &str) -> anyhow::Result<Destination> {
    open_existing_with(url, None)
}

/// [`open_existing`] for a run with `--timeout` (see [`open_dest_timed`]).
pub fn open_existing_timed(url: &str, timeout: std::time::Duration) -> anyhow::Result<Destination> {
    open_existing_with(url, Some(timeout))
}

fn open_existing_with(
    url: &str,
    timeout: Option<std::time::Duration>,
) -> anyhow::Result<Destination> {
    let local = match url.strip_prefix("file://") {
        Some(p) => Some(p),
        None if !url.contains("://") => Some(url),
        None => None,
    };
    if let Some(p) = local
        && !p.is_empty()
        && !std::path::Path::new(p).is_dir()
    {
        bail!("{url} does not exist or is not a directory (check the path; nothing was created)");
    }
    open_dest_with(url, timeout)
}

/// The user's state directory (restore checkpoints): `$SNAPSHOTD_STATE_DIR` via the flag,
/// else `$XDG_STATE_HOME/snapshotd`, else `~/.local/state/snapshotd`.
pub fn state_dir(flag: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(d) = flag {
        return Some(d.clone());
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("snapshotd"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".local/state/snapshotd"))
}

/// First Ctrl-C: stop the run cleanly (no manifest, no partial files); second: exit now.
pub fn stop_on_ctrl_c(rt: &tokio::runtime::Runtime, hooks: &Hooks, resumable: bool) {
    let cancel = hooks.cancel.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping transfers (Ctrl-C again to quit at once)");
            if resumable {
                eprintln!("re-run the same command to resume");
            }
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

/// An error with each cause printed once (a cause already quoted by the message before it
/// is left out), plus a hint when the reply looks like HTTP.
pub fn render(err: &anyhow::Error) -> String {
    render_chain(err.chain())
}

/// [`render`] of an error chain given as its links (outermost first).
pub fn render_chain<'a>(
    chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut out = String::new();
    for cause in chain {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    // "HTTP/1.1" read as the 8-byte magic of a snapshot reply.
    if out.contains("bad magic 0x485454502f31") {
        out.push_str(
            " (this looks like an HTTP port; the snapshot port is usually 8088, \
             e.g. --host 127.0.0.1:8088)",
        );
    }
    out
}

/// Prints a failed run's error once and picks the exit code.
pub fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("snapshotd: error: {}", render(err));
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("50M"), Ok(50_000_000));
        assert_eq!(parse_rate("4Mi"), Ok(4 << 20));
        assert_eq!(parse_rate("10MB/s"), Ok(10_000_000));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("3X").is_err());
    }

    #[test]
    fn causes_already_quoted_are_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = anyhow::Error::new(io)
            .context("connect to 127.0.0.1:1: connection refused")
            .context("backup failed");
        assert_eq!(
            render(&e),
            "backup failed: connect to 127.0.0.1:1: connection refused"
        );
        let e = anyhow::anyhow!("bad magic 0x485454502f312e31 in meta reply");
        assert!(render(&e).contains("this looks like an HTTP port"));
    }
}
