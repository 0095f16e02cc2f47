//! `snapshotd restore --on-conflict merge` from `s3://` into the live influxd 1.6.7 that
//! was backed up: points written after the backup survive, a shard dropped after it comes
//! back, and what a user queries equals the union influx itself makes from the same writes.

use serde_json::Value;
use snapshotd_testutil::influxd::Influxd;

use super::{run, s3_url};
use crate::support::backup_env as env;

const T0: i64 = 1_609_459_200_000_000_000; // 2021-01-01T00:00:00Z
const DAY: i64 = 86_400_000_000_000;
const MIN10: i64 = 600_000_000_000;
/// Days of backed-up data (one shard per day in rp `rpx`).
const DAYS: i64 = 3;
/// Points per field in the backup: DAYS x 144 steps x 4 hosts.
const BACKUP_POINTS: i64 = DAYS * 144 * 4;
/// Points per field the live writes add (host `live` on day 1 and on day 20).
const LIVE_NEW_POINTS: i64 = 2 * 144;

/// The backed-up lines of database number `seed`: floats, integers, booleans and strings
/// every 10 min on 4 hosts, values depending on `seed`.
fn backup_lines(seed: i64) -> String {
    let mut s = String::new();
    for step in 0..DAYS * 144 {
        let t = T0 + step * MIN10;
        for h in 0..4 {
            let f = [0.1, 1e-7, 123_456.789, -2.5][(step as usize + h) % 4] * (step + seed) as f64;
            s.push_str(&format!(
                "cpu,host=h{h} usage={f:?},n={}i,up={},note=\"s{seed}-{step}\" {t}\n",
                step * 10 + h as i64 + seed * 100_000,
                step % 3 == 0
            ));
        }
    }
    s
}

/// The writes after the backup: host h1 on day 1 overwritten with other values (the
/// backup's must win), and a host of its own on days 1 and 20 (must be kept).
fn live_lines() -> String {
    let mut s = String::new();
    for step in 144..2 * 144 {
        let t = T0 + step * MIN10;
        s.push_str(&format!(
            "cpu,host=h1 usage=-1.0,n=-1i,up=false,note=\"live\" {t}\n"
        ));
        s.push_str(&format!("cpu,host=live usage=7.5,n=7i {t}\n"));
        s.push_str(&format!("cpu,host=live usage=8.5,n=8i {}\n", t + 20 * DAY));
    }
    s
}

/// Creates `db` with rp `rpx` (1-day shards, default).
fn create_db(i: &Influxd, db: &str) {
    i.query(&format!("CREATE DATABASE {db}"));
    i.query(&format!(
        "CREATE RETENTION POLICY rpx ON {db} DURATION 520w REPLICATION 1 SHARD DURATION 1d DEFAULT"
    ));
}

/// What the user sees: count, sum and last of every field, per series.
fn aggregates(i: &Influxd, db: &str) -> Value {
    let v = i.query(&format!(
        "SELECT count(*), last(*) FROM \"{db}\".rpx.cpu GROUP BY *; \
         SELECT sum(usage), sum(n) FROM \"{db}\".rpx.cpu GROUP BY *"
    ));
    assert!(v["results"][0]["series"].is_array(), "no data in {db}: {v}");
    v["results"].clone()
}

/// `SELECT count(usage)` over the whole of `db`.
fn count_usage(i: &Influxd, db: &str) -> i64 {
    let v = i.query(&format!("SELECT count(usage) FROM \"{db}\".rpx.cpu"));
    v["results"][0]["series"][0]["values"][0][1]
        .as_i64()
        .unwrap_or(0)
}

/// The shard IDs of `db` and their start times.
fn shards(i: &Influxd, db: &str) -> Vec<(i64, String)> {
    let v = i.query("SHOW SHARDS");
    let series = v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(s) = series.iter().find(|s| s["name"] == db) else {
        return Vec::new();
    };
    s["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), r[4].as_str().unwrap().to_string()))
        .collect()
}

/// After the backup: the live writes go into `db`, its day-0 shard is dropped (lost), and
/// database `expect_<db>` gets the union as influx makes it (live writes, then the backup's
/// points written over them).
fn diverge(i: &Influxd, db: &str, seed: i64) {
    i.write(db, Some("rpx"), &live_lines());
    let day0 = shards(i, db)
        .into_iter()
        .find(|(_, start)| start == "2021-01-01T00:00:00Z")
        .expect("day-0 shard");
    i.query(&format!("DROP SHARD {}", day0.0));
    let expect = format!("expect_{db}");
    create_db(i, &expect);
    i.write(&expect, Some("rpx"), &live_lines());
    i.write(&expect, Some("rpx"), &backup_lines(seed));
    assert_eq!(
        count_usage(i, &expect),
        BACKUP_POINTS + LIVE_NEW_POINTS,
        "the expected union"
    );
    assert_ne!(aggregates(i, db), aggregates(i, &expect), "{db} lost data");
}

/// `snapshotd restore --on-conflict merge --json` of `db` from `url` into `i`.
fn merge(i: &Influxd, url: &str, db: &str, extra: &[&str]) -> std::process::Output {
    let http = format!("http://{}", i.http);
    let mut args = vec![
        "restore",
        "--db",
        db,
        "--on-conflict",
        "merge",
        "--http",
        &http,
        "--host",
        &i.bind,
        "--json",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let out = run(&args);
    eprintln!(
        "merge {db} {extra:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Merges `db` (twice: the second run must change nothing) and checks the union; returns
/// the first run's number of shards uploaded whole.
fn merge_twice_equals_union(i: &Influxd, url: &str, db: &str, extra: &[&str]) -> usize {
    let v = env::ok_json(&merge(i, url, db, extra));
    let whole = v["shards_uploaded_whole"].as_array().unwrap().len();
    let expect = format!("expect_{db}");
    assert_eq!(count_usage(i, db), BACKUP_POINTS + LIVE_NEW_POINTS, "{db}");
    let union = aggregates(i, &expect);
    assert_eq!(aggregates(i, db), union, "{db} != the union");
    // A second identical run writes the same points with the same values: same result.
    let again = env::ok_json(&merge(i, url, db, extra));
    assert_eq!(again["shards_uploaded_whole"], serde_json::json!([]));
    assert_eq!(aggregates(i, db), union, "{db} after the second merge");
    whole
}

#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn merge_from_s3_into_live_influxd_equals_the_union() {
    let work = snapshotd_testutil::temp_dir();
    let i = Influxd::start();
    for (seed, db) in [(1, "m1"), (2, "m2"), (3, "m3")] {
        create_db(&i, db);
        i.write(db, Some("rpx"), &backup_lines(seed));
    }
    let (url, enc_url) = (s3_url(), s3_url());
    env::ok(&run(&["backup", "--host", &i.bind, &url]));
    let key = work.path().join("key");
    std::fs::write(&key, [0x5au8; 32]).unwrap();
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, [0x11u8; 32]).unwrap();
    let k = key.to_str().unwrap();
    let backup_enc = [
        "backup",
        "--host",
        &i.bind,
        "--db",
        "m3",
        "--encrypt-key-file",
    ];
    env::ok(&run(&[&backup_enc[..], &[k, &enc_url]].concat()));
    for (seed, db) in [(1, "m1"), (2, "m2"), (3, "m3")] {
        diverge(&i, db, seed);
    }

    // Default mode: the dropped day-0 shard is uploaded whole, the others point by point.
    assert_eq!(merge_twice_equals_union(&i, &url, "m1", &[]), 1);
    // Every shard through /write.
    assert_eq!(
        merge_twice_equals_union(&i, &url, "m2", &["--merge-mode", "points"]),
        0
    );

    // Encrypted: without the key, or with another one, the run fails saying so and the
    // live database is left as it was.
    let (before, shards_before) = (aggregates(&i, "m3"), shards(&i, "m3"));
    let out = merge(&i, &enc_url, "m3", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("holds encrypted files")
            && err.contains("pass --encrypt-key-file")
            && !err.contains("wrong key"),
        "{err}"
    );
    let out = merge(
        &i,
        &enc_url,
        "m3",
        &["--encrypt-key-file", wrong.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("wrong key"), "{err}");
    assert_eq!(aggregates(&i, "m3"), before, "a failed merge wrote nothing");
    assert_eq!(
        shards(&i, "m3"),
        shards_before,
        "a failed merge created no shard"
    );
    assert_eq!(
        merge_twice_equals_union(&i, &enc_url, "m3", &["--encrypt-key-file", k]),
        1
    );
}

/// `snapshotd backup --json` of database `db` to `url`; returns the restore point's id.
fn backup_point(i: &Influxd, db: &str, url: &str) -> String {
    let v = env::ok_json(&run(&[
        "backup", "--host", &i.bind, "--db", db, "--json", url,
    ]));
    v["id"].as_str().unwrap().to_string()
}

/// `--at` picks the restore point a merge writes: a later point on the same prefix, whose
/// values differ, is not applied.
#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn merge_from_s3_at_an_older_restore_point_writes_that_points_values() {
    let i = Influxd::start();
    create_db(&i, "at1");
    i.write("at1", Some("rpx"), &backup_lines(4));
    let url = s3_url();
    let first = backup_point(&i, "at1", &url);
    // The live writes land before the second restore point, so it holds them.
    diverge(&i, "at1", 4);
    let second = backup_point(&i, "at1", &url);
    assert_ne!(first, second);
    let v = env::ok_json(&merge(&i, &url, "at1", &["--at", &first]));
    assert_eq!(
        v["shards_uploaded_whole"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    assert_eq!(count_usage(&i, "at1"), BACKUP_POINTS + LIVE_NEW_POINTS);
    assert_eq!(
        aggregates(&i, "at1"),
        aggregates(&i, "expect_at1"),
        "the first point's values over the live ones"
    );
}

/// Field values of one backup of `backup_lines`: 4 fields per line.
const BACKUP_VALUES: i64 = BACKUP_POINTS * 4;
/// Points (one field each) of one night's new data (`night_lines`).
const NIGHT_POINTS: i64 = DAYS * 144;
/// Points (two fields each) written before the `--since` backup (`increment_lines`).
const INCREMENT_POINTS: i64 = 144;

/// The new points of night `k`: host `night<k>` every 10 min over the backed-up days.
fn night_lines(k: i64) -> String {
    (0..NIGHT_POINTS)
        .map(|step| format!("cpu,host=night{k} usage={k}.25 {}\n", T0 + step * MIN10))
        .collect()
}

/// Points written between the last full backup and the `--since` one: host `inc` on day 2.
fn increment_lines() -> String {
    (2 * 144..2 * 144 + INCREMENT_POINTS)
        .map(|step| {
            format!(
                "cpu,host=inc usage={step}.5,n={step}i {}\n",
                T0 + step * MIN10
            )
        })
        .collect()
}

/// Nightly full backups into one DEST plus an incremental one: a merge reads each shard
/// from its newest full run and the `--since` run after it (not every run, oldest first),
/// says how many older runs and archives it left out, and the result is the union.
#[test]
#[ignore = "interop: run via cargo xtask interop s3"]
fn merge_of_nightly_full_backups_reads_each_shard_from_its_newest_full_run() {
    let i = Influxd::start();
    create_db(&i, "n1");
    i.write("n1", Some("rpx"), &backup_lines(7));
    let url = s3_url();
    // Three nights, each adding points and taking a full backup.
    for k in 1..=3 {
        i.write("n1", Some("rpx"), &night_lines(k));
        backup_point(&i, "n1", &url);
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    i.write("n1", Some("rpx"), &increment_lines());
    let incr = [
        "backup", "--host", &i.bind, "--db", "n1", "--since", &since, "--json", &url,
    ];
    env::ok_json(&run(&incr));
    diverge(&i, "n1", 7);
    let news: String = (1..=3).map(night_lines).collect::<String>() + &increment_lines();
    i.write("expect_n1", Some("rpx"), &news);

    // --check: the target holds at least the values of the archives applied.
    let v = env::ok_json(&merge(&i, &url, "n1", &["--check"]));
    // Each of the 3 shards: the two older full runs' archives are left out.
    assert_eq!(v["runs_superseded"], 2, "{v}");
    assert_eq!(v["archives_superseded"], 6, "{v}");
    // The dropped day-0 shard: its increment archive is empty, so one run holds its TSM
    // files and it is uploaded whole.
    assert_eq!(v["shards_uploaded_whole"], serde_json::json!([1]), "{v}");
    // The newest full run holds every point once, the increment its own (plus, at most,
    // what a compaction rewrote meanwhile); every run oldest first would be 3 x the
    // backup_lines, 1 + 2 + 3 nights and the increment.
    let newest = BACKUP_VALUES + 3 * NIGHT_POINTS + 2 * INCREMENT_POINTS;
    let values = v["values"].as_i64().unwrap();
    assert!(
        (newest..=2 * newest).contains(&values),
        "{values} value(s) written, the newest full run and the increment hold {newest}: {v}"
    );
    assert!(2 * newest < 3 * BACKUP_VALUES + 6 * NIGHT_POINTS + 2 * INCREMENT_POINTS);
    let expected = BACKUP_POINTS + LIVE_NEW_POINTS + 3 * NIGHT_POINTS + INCREMENT_POINTS;
    assert_eq!(count_usage(&i, "n1"), expected);
    assert_eq!(
        aggregates(&i, "n1"),
        aggregates(&i, "expect_n1"),
        "the newest night's points and the increment over the live ones"
    );
}
