//! The interop workload for the client and binary tests; the influxd launcher itself lives
//! in `snapshotd_testutil::influxd`.

#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub use snapshotd_testutil::influxd::{Influxd, influxd_bin};

/// Creates db1 (autogen, 7-day shards) and db2 (+ rp2 with 1-day shards) and writes a
/// metrics-like workload: `hosts` hosts every 10 minutes over `days` days from 2021-01-01.
pub fn load_metrics(s: &Influxd, hosts: u32, days: u32) {
    s.query("CREATE DATABASE db1");
    s.query("CREATE DATABASE db2");
    s.query("CREATE RETENTION POLICY rp2 ON db2 DURATION 520w REPLICATION 1 SHARD DURATION 1d");
    let t0: i64 = 1_609_459_200; // 2021-01-01T00:00:00Z
    let mut batch = String::new();
    let mut mem = String::new();
    let mut disk = String::new();
    for step in 0..(days * 144) {
        let t = (t0 + i64::from(step) * 600) * 1_000_000_000;
        for h in 0..hosts {
            let x = f64::from((step * 7 + h * 13) % 1000) / 10.0;
            batch.push_str(&format!(
                "cpu,host=h{h},region=eu usage_user={x},usage_system={},n={}i {t}\n",
                100.0 - x,
                step + h
            ));
            mem.push_str(&format!(
                "mem,host=h{h} used={}i,free={}i {t}\n",
                step * 3 + h,
                h
            ));
            if step % 6 == 0 {
                disk.push_str(&format!("disk,host=h{h},path=/ free={x} {t}\n"));
            }
        }
        if batch.len() > 400_000 {
            s.write("db1", None, &batch);
            s.write("db2", None, &mem);
            batch.clear();
            mem.clear();
        }
    }
    if !batch.is_empty() {
        s.write("db1", None, &batch);
        s.write("db2", None, &mem);
    }
    s.write("db2", Some("rp2"), &disk);
}

/// The databases/RPs `load_metrics` creates.
pub const LOADED: &[(&str, &str)] = &[("db1", "autogen"), ("db2", "autogen"), ("db2", "rp2")];
