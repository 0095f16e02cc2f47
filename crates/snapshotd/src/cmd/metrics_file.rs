//! `--metrics-file`: Prometheus text (node_exporter textfile collector format) written at
//! the end of a scheduled run, atomically (temporary file in the same directory + rename).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// What one run reports.
#[derive(Debug, Clone, Default)]
pub struct RunMetrics {
    /// Succeeded.
    pub ok: bool,
    /// Wall time.
    pub duration: Duration,
    /// Bytes written (backup), checked (verify) or deleted (forget).
    pub bytes: u64,
    /// Shards (backup, verify: files) or restore points removed (forget).
    pub units: u64,
}

/// Value of `name` in an earlier file, to carry the last success over a failed run.
fn previous(path: &Path, name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes the metrics of a `cmd` run (backup, verify, forget) on `dest` to `path`.
pub fn write(path: &Path, cmd: &str, dest: &str, m: &RunMetrics) -> anyhow::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let p = format!("snapshotd_{cmd}");
    let success = format!("{p}_last_success_timestamp_seconds");
    let last_ok = if m.ok {
        Some(now)
    } else {
        previous(path, &success)
    };
    let l = format!("{{dest=\"{}\"}}", label(dest));
    let mut text = String::new();
    let mut metric = |name: &str, help: &str, value: f64| {
        text.push_str(&format!(
            "# HELP {p}_{name} {help}\n# TYPE {p}_{name} gauge\n{p}_{name}{l} {value}\n"
        ));
    };
    metric(
        "last_run_timestamp_seconds",
        "End of the last run (Unix time).",
        now,
    );
    if let Some(t) = last_ok {
        metric(
            "last_success_timestamp_seconds",
            "End of the last successful run (Unix time).",
            t,
        );
    }
    metric(
        "success",
        "1 if the last run succeeded, else 0.",
        f64::from(u8::from(m.ok)),
    );
    metric(
        "duration_seconds",
        "Wall time of the last run.",
        m.duration.as_secs_f64(),
    );
    metric(
        "bytes",
        "Bytes written, checked or deleted by the last run.",
        m.bytes as f64,
    );
    metric(
        "units",
        "Shards or files handled, or restore points removed, by the last run.",
        m.units as f64,
    );
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| {
        format!(
            "--metrics-file: create a temporary file in {}",
            dir.display()
        )
    })?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("--metrics-file: write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("--metrics-file: rename into {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_keeps_the_last_success() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let f = dir.path().join("backup.prom");
        let ok = RunMetrics {
            ok: true,
            bytes: 5,
            units: 2,
            ..Default::default()
        };
        write(&f, "backup", "/b", &ok).unwrap_or_else(|e| panic!("{e}"));
        let first = previous(&f, "snapshotd_backup_last_success_timestamp_seconds");
        assert!(first.is_some_and(|t| t > 0.0));
        write(&f, "backup", "/b", &RunMetrics::default()).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            text.contains("snapshotd_backup_success{dest=\"/b\"} 0"),
            "{text}"
        );
        assert_eq!(
            previous(&f, "snapshotd_backup_last_success_timestamp_seconds"),
            first
        );
    }
}
