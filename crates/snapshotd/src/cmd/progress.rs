//! The progress display on stderr: a bar with percentage and ETA on a terminal, log lines
//! (labelled with the command, e.g. `restore`) otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use snapshotd_client::Progress;

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// Logs one line under the command's own target (`backup`, `restore`).
fn log(verb: &str, warn: bool, line: &str) {
    match (verb, warn) {
        ("restore", false) => tracing::info!(target: "restore", "{line}"),
        ("restore", true) => tracing::warn!(target: "restore", "{line}"),
        (_, false) => tracing::info!(target: "backup", "{line}"),
        (_, true) => tracing::warn!(target: "backup", "{line}"),
    }
}

/// Progress on stderr: an indicatif bar on a terminal, plain log lines otherwise.
pub struct TermProgress {
    bar: Option<ProgressBar>,
    verb: &'static str,
    units: AtomicU64,
    done: AtomicU64,
    bytes: AtomicU64,
    by_bytes: std::sync::atomic::AtomicBool,
}

impl TermProgress {
    /// A progress reporter for `verb` ("backup", "restore").
    pub fn new(verb: &'static str) -> Arc<Self> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_prefix(verb);
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Arc::new(TermProgress {
            bar,
            verb,
            units: Default::default(),
            done: Default::default(),
            bytes: Default::default(),
            by_bytes: Default::default(),
        })
    }

    fn shards_msg(&self) -> String {
        format!(
            "shards {}/{}, {}",
            self.done.load(Ordering::Relaxed),
            self.units.load(Ordering::Relaxed),
            human_bytes(self.bytes.load(Ordering::Relaxed))
        )
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for TermProgress {
    fn plan(&self, units: u64, bytes: Option<u64>) {
        self.units.store(units, Ordering::Relaxed);
        let Some(b) = &self.bar else {
            log(self.verb, false, &format!("{units} shard(s) to transfer"));
            return;
        };
        // With a byte total the bar follows bytes; else (a backup: the server does not say
        // how large a shard is) it follows finished shards.
        let (len, template) = match bytes {
            Some(total) => {
                self.by_bytes.store(true, Ordering::Relaxed);
                (
                    total,
                    "{prefix} [{elapsed_precise}] {wide_bar} {percent}% {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {msg}",
                )
            }
            None => (
                units,
                "{prefix} [{elapsed_precise}] {wide_bar} {percent}% (ETA {eta}) {msg}",
            ),
        };
        b.set_length(len);
        b.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_message(self.shards_msg());
    }

    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.bar
            && self.by_bytes.load(Ordering::Relaxed)
        {
            b.inc(n);
        }
    }

    fn retrying(&self, name: &str, attempt: u32, error: &str) {
        let line = format!("{name}: attempt {attempt} failed ({error}); retrying");
        match &self.bar {
            Some(b) => b.println(line),
            None => log(self.verb, true, &line),
        }
    }

    fn unit_done(&self, name: &str, bytes: u64) {
        self.done.fetch_add(1, Ordering::Relaxed);
        match &self.bar {
            Some(b) => {
                if !self.by_bytes.load(Ordering::Relaxed) {
                    b.inc(1);
                }
                b.set_message(self.shards_msg());
            }
            None => log(
                self.verb,
                false,
                &format!("{name} ({}), {}", human_bytes(bytes), self.shards_msg()),
            ),
        }
    }

    fn message(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => log(self.verb, false, msg),
        }
    }
}
