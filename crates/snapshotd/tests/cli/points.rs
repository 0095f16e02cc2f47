//! Restore points: `snapshots`, `restore --at`, `verify --at`, and restore attempts that fail
//! before sending anything leaving nothing behind.

use std::path::Path;

use crate::support::backup_env::{self as env, file_names};
use crate::support::serve::{post, serve, serve_loaded};

/// Writes a few thousand more points into `db`, in a later week (a new shard).
fn write_more(http: &str) {
    let mut lines = String::new();
    for i in 0..5_000u64 {
        lines.push_str(&format!(
            "mem,host=h{} used={i}i {}\n",
            i % 7,
            1_770_000_000 + i * 60
        ));
    }
    let r = post(http, "/write?db=db&precision=s", lines.as_bytes());
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
}

/// The first statement result of `q` on the HTTP API at `http`.
fn query(http: &str, q: &str) -> serde_json::Value {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = post(http, &format!("/query?q={enc}"), b"");
    let body = r.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["results"][0].clone()
}

/// The restore points listed by `snapshots --json`.
fn points(dest: &Path) -> Vec<serde_json::Value> {
    let v = env::ok_json(&env::run(&["snapshots", "--json", dest.to_str().unwrap()]));
    v["points"].as_array().unwrap().clone()
}

#[test]
fn restore_at_an_older_point_restores_that_points_data() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let bk = work.path().join("bk");
    let b = bk.to_str().unwrap();
    let first = env::ok_json(&env::run(&["backup", "--host", &srv.addr, "--json", b]));
    write_more(&srv.http);
    let second = env::ok_json(&env::run(&["backup", "--host", &srv.addr, "--json", b]));
    let (id1, id2) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    let listed = points(&bk);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], id1);
    assert_eq!(listed[0]["databases"], serde_json::json!(["db"]));
    assert!(
        listed[1]["bytes"].as_u64() > listed[0]["bytes"].as_u64(),
        "{listed:?}"
    );
    let m1 = first["manifest"].as_str().unwrap();
    let m2 = second["manifest"].as_str().unwrap();
    let tsm = |m: &str| {
        let mut v: Vec<Vec<u8>> = env::content_of(&bk, m)
            .1
            .into_values()
            .map(|s| s.3)
            .collect();
        v.sort();
        v
    };
    assert_ne!(tsm(m1), tsm(m2));

    // By id, and by a time between the two points: both mean the first point.
    let t1 = listed[0]["time"].as_str().unwrap().to_string();
    for (i, at) in [id1, t1.as_str()].into_iter().enumerate() {
        let target = serve(&work.path().join(format!("target{i}")));
        let v = env::ok_json(&env::run(&[
            "restore",
            "--host",
            &target.addr,
            "--ack",
            "--at",
            at,
            "--json",
            b,
        ]));
        assert_eq!(v["id"], id1, "{v}");
        // What the user sees on the restored server: point 1's 40 000 cpu points, no mem.
        let cpu = query(&target.http, "SELECT count(usage) FROM db..cpu");
        assert_eq!(cpu["series"][0]["values"][0][1], 40_000, "{cpu}");
        let mem = query(&target.http, "SELECT count(used) FROM db..mem");
        assert!(mem.get("series").is_none(), "{mem}");
        let again = work.path().join(format!("again{i}"));
        env::backup_ok(&target.addr, &[], &again);
        assert_eq!(env::tsm_files(&again), restored_tsm(&bk, m1), "--at {at}");
    }
    // verify --at checks only that point.
    let v = env::ok_json(&env::run(&["verify", "--at", id1, "--json", b]));
    assert_eq!(v["manifests"], serde_json::json!([m1]), "{v}");
    let listed = points(&bk);
    assert!(listed[0]["verified_at"].is_string(), "{listed:?}");
    assert!(listed[1]["verified_at"].is_null(), "{listed:?}");
    // An unknown point is a clear error listing the points.
    let out = env::run(&[
        "restore",
        "--host",
        &srv.addr,
        "--at",
        "20200101T000000Z",
        b,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(id1) && err.contains(id2), "{err}");
}

/// Decompressed `.tsm` entries of the point `manifest`, sorted.
fn restored_tsm(dir: &Path, manifest: &str) -> Vec<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    for (_, (_, _, _, tar)) in env::content_of(dir, manifest).1 {
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy().ends_with(".tsm") {
                let mut d = Vec::new();
                e.read_to_end(&mut d).unwrap();
                out.push(d);
            }
        }
    }
    out.sort();
    out
}

/// Every file under `dir`, recursively (relative names).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(tree(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn failed_restores_leave_nothing_and_the_corrected_command_succeeds() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve_loaded(&work.path().join("data"));
    let key = work.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let k = key.to_str().unwrap();
    let plain = work.path().join("plain");
    let enc = work.path().join("enc");
    env::backup_ok(&srv.addr, &[], &plain);
    env::backup_ok(&srv.addr, &["--encrypt-key-file", k], &enc);
    let state = work.path().join("state");
    let s = state.to_str().unwrap();
    let before = (file_names(&plain), file_names(&enc));
    let listed = points(&enc);
    assert_eq!(listed[0]["encrypted"], true, "{listed:?}");
    assert_eq!(points(&plain)[0]["encrypted"], false);

    // A --db typo: refused before anything is sent; nothing recorded anywhere.
    let target = serve(&work.path().join("t1"));
    let restore = |flags: &[&str], src: &Path| {
        let mut a = vec!["restore", "--host", &target.addr, "--state-dir", s, "--ack"];
        a.extend_from_slice(flags);
        a.push(src.to_str().unwrap());
        env::run(&a)
    };
    let out = restore(&["--db", "bd", "--newdb", "copy"], &plain);
    assert!(!out.status.success());
    assert_eq!(
        tree(&state),
        Vec::<String>::new(),
        "a failed attempt left records"
    );
    env::ok(&restore(&["--db", "db", "--newdb", "copy"], &plain));

    // An encrypted backup without its key: a clear error, nothing left; then with the key.
    let out = restore(&["--db", "db", "--newdb", "copy2"], &enc);
    assert!(!out.status.success());
    assert_eq!(
        tree(&state),
        Vec::<String>::new(),
        "a failed attempt left records"
    );
    env::ok(&restore(
        &["--db", "db", "--newdb", "copy2", "--encrypt-key-file", k],
        &enc,
    ));

    // The backups themselves were only read.
    assert_eq!((file_names(&plain), file_names(&enc)), before);
    assert!(!plain.join("restore").exists() && !enc.join("restore").exists());
}

#[test]
fn snapshots_lists_influxd_made_portable_backups() {
    let src = snapshotd_testutil::vector("influx/backups/A1_full");
    let v = env::ok_json(&env::run(&["snapshots", "--json", src.to_str().unwrap()]));
    let p = &v["points"].as_array().unwrap()[0];
    assert_eq!(p["id"], "20261122T022308Z");
    assert_eq!(p["complete"], true);
    assert_eq!(p["shards"], 6);
    assert_eq!(p["by_snapshotd"], false);
    assert_eq!(p["kind"], "influxd");
    assert_eq!(p["encrypted"], false);
    assert!(!p["databases"].as_array().unwrap().is_empty(), "{p}");
    let out = env::run(&["snapshots", src.to_str().unwrap()]);
    env::ok(&out);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("20261122T022308Z") && table.contains("complete"),
        "{table}"
    );
}
