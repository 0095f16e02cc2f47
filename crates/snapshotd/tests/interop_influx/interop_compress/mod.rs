//! `--compression auto` (the default) against real influxd 1.6.7: a backup whose large shards
//! are stored as multi-member gzip restores with `influxd restore -portable`.

use std::io::Read;
use std::path::Path;

use super::influxd::Influxd;
use super::{backup, influxd_restore, json_of, snapshotd};

/// Writes `days` 1-day shards of `hosts` hosts × 4 full-precision random floats every 10 s
/// (TSM that gzip barely shrinks, like real metrics) into database `cz`.
fn load_random_metrics(s: &Influxd, hosts: u32, days: u32) {
    s.query("CREATE DATABASE cz WITH SHARD DURATION 1d");
    let t0: i64 = 1_609_459_200;
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    };
    let mut batch = String::new();
    for step in 0..(days * 8640) {
        let t = (t0 + i64::from(step) * 10) * 1_000_000_000;
        for h in 0..hosts {
            let (a, b, c, d) = (rnd(), rnd(), rnd(), rnd());
            batch.push_str(&format!(
                "cpu,host=h{h} usr={a},sys={b},idle={c},wait={d} {t}\n"
            ));
        }
        if batch.len() > (2 << 20) {
            s.write("cz", None, &batch);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        s.write("cz", None, &batch);
    }
}

/// The number of gzip members in a file.
fn member_count(path: &Path) -> usize {
    let data = std::fs::read(path).unwrap();
    let mut rest = &data[..];
    let mut n = 0;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        let mut sink = Vec::new();
        d.read_to_end(&mut sink).unwrap();
        rest = d.into_inner();
        n += 1;
    }
    n
}

#[test]
#[ignore = "interop: run via cargo xtask interop influx"]
fn auto_compressed_backup_restores_with_influxd_restore() {
    let a = Influxd::start();
    load_random_metrics(&a, 20, 2);
    let work = snapshotd_testutil::temp_dir();
    let d = work.path().join("bk");
    // Defaults: --compression auto.
    let out = backup(&a.bind, &["--json"], &d);
    assert!(out.status.success());
    assert_eq!(json_of(&out)["status"], "ok");

    // The large shards went out stored, in several members: auto judged their TSM not
    // worth deflating, and each member is an independent gzip.
    let manifest = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "manifest"))
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{m}");
    for f in files {
        let tar = f["size"].as_u64().unwrap();
        let path = d.join(f["fileName"].as_str().unwrap());
        let stored = std::fs::metadata(&path).unwrap().len();
        assert!(
            tar > 4 << 20,
            "shard tar of {tar} bytes is too small for this test"
        );
        assert!(stored > tar * 95 / 100, "{stored} of {tar}: deflated?");
        assert!(member_count(&path) >= 4, "{}", path.display());
    }
    assert!(snapshotd(&["verify", d.to_str().unwrap()]).status.success());

    let b = Influxd::start();
    influxd_restore(&b, &d);
    let want = a.fingerprint(&[("cz", "autogen")]);
    assert_eq!(b.fingerprint(&[("cz", "autogen")]), want);
    let n = a.query("SELECT count(usr) FROM cz.autogen.cpu")["results"][0]["series"][0]["values"]
        [0][1]
        .as_i64()
        .unwrap();
    assert_eq!(n, 20 * 2 * 8640);
}
