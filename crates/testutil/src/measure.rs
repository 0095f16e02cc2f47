//! Whole-process measurements for the benchmarks that time a command beside its peer.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `name` parsed as a number, else `default`.
pub fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Wall time and peak RSS (KiB, sampled from /proc) of one command, which must succeed.
pub fn measure(cmd: &mut Command) -> (Duration, u64) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            for v in s.lines().filter_map(|l| l.strip_prefix("VmHWM:")) {
                let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                peak = peak.max(kb);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            let elapsed = start.elapsed();
            if !st.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("{cmd:?} failed: {err}");
            }
            return (elapsed, peak);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
