//! Differential test of the Go-compatible JSON against Go's own `encoding/json`
//! (`#[ignore]`: needs `go` on PATH; run with
//! `cargo test -p snapshotd-wire --test interop_go -- --ignored`).
//!
//! `tests/go/gojson.go` decodes each line with Go and re-encodes it. For requests we encode,
//! Go must reproduce our bytes exactly; for hand-written inputs exercising Go's decoder
//! leniency, our decode + encode must equal Go's decode + encode, and we must reject exactly
//! what Go rejects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use snapshotd_wire::{GoTime, Request};

/// Runs the Go oracle over `lines`; returns one output line per input line.
fn go_roundtrip(lines: &[Vec<u8>]) -> Vec<String> {
    let prog = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/gojson.go");
    let cache = snapshotd_testutil::temp_dir();
    let mut child = Command::new(std::env::var("SNAPSHOTD_GO_BIN").unwrap_or("go".into()))
        .arg("run")
        .arg(&prog)
        .env("GOCACHE", cache.path().join("cache"))
        .env("GOPATH", cache.path().join("gopath"))
        .env("GO111MODULE", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("go on PATH");
    let mut stdin = child.stdin.take().unwrap();
    let input: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let got: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(got.len(), lines.len());
    got
}

fn weird_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_]{0,8}",
        "[<>&\"\\\\/\u{2028}\u{2029}\u{0}-\u{1f}\u{7f}é☃𝄞]{0,8}",
        any::<String>(),
    ]
}

fn go_time() -> impl Strategy<Value = GoTime> {
    prop_oneof![
        Just(GoTime::ZERO),
        (
            -62_135_596_800i64..253_402_300_799,
            prop_oneof![
                Just(0u32),
                0u32..1_000_000_000,
                (0u32..1000).prop_map(|m| m * 1_000_000)
            ],
            -1439i32..=1439,
        )
            .prop_map(|(s, ns, off)| {
                let off = chrono::FixedOffset::east_opt(off * 60).unwrap();
                let dt = chrono::DateTime::from_timestamp(s, ns)
                    .unwrap()
                    .with_timezone(&off);
                GoTime::new(dt).unwrap_or(GoTime::ZERO)
            }),
    ]
}

#[test]
#[ignore = "needs the Go toolchain"]
fn go_reproduces_our_request_bytes() {
    let strat = (
        any::<u8>(),
        [
            weird_string(),
            weird_string(),
            weird_string(),
            weird_string(),
        ],
        any::<u64>(),
        [go_time(), go_time(), go_time()],
        any::<i64>(),
    )
        .prop_map(|(t, [a, b, c, d], id, [s, e1, e2], up)| Request {
            type_code: t,
            backup_database: a,
            restore_database: b,
            backup_retention_policy: c,
            restore_retention_policy: d,
            shard_id: id,
            since: s,
            export_start: e1,
            export_end: e2,
            upload_size: up,
            error_replies: false,
        });
    let mut runner = TestRunner::new(Config::default());
    let reqs: Vec<Request> = (0..2000)
        .map(|_| strat.new_tree(&mut runner).unwrap().current())
        .collect();
    let lines: Vec<Vec<u8>> = reqs
        .iter()
        .map(|r| {
            let mut l = r.to_json_line().unwrap();
            l.pop();
            l
        })
        .collect();
    let go = go_roundtrip(&lines);
    for ((line, r), g) in lines.iter().zip(&reqs).zip(&go) {
        let ours = String::from_utf8(line.clone()).unwrap();
        assert_eq!(&ours, g, "Go re-encodes {r:?} differently");
    }
}

#[test]
#[ignore = "needs the Go toolchain"]
fn our_decoder_agrees_with_go_on_lenient_and_bad_inputs() {
    let cases: Vec<&str> = vec![
        r#"{}"#,
        r#"{"type":3,"backupdatabase":"db"}"#,
        r#"{"SHARDID":5,"ShardID":7}"#,
        r#"{"ShardID":5,"ShardID":null}"#,
        r#"{"Since":null,"Unknown":[1,{"a":2}],"x":"y"}"#,
        r#"{"ſhardID":9}"#,
        r#"{"Since":"2021-01-05T00:00:00.500+00:00"}"#,
        r#"{"Since":"2021-01-05T10:00:00.000000001-07:30"}"#,
        r#"{"ExportEnd":"0001-01-01T01:00:00+01:00"}"#,
        r#"{"BackupDatabase":"\u003cdb\u003e \ud834\udd1e \u2028"}"#,
        r#"  {"UploadSize":-5}  "#,
        r#"{"ShardID":-1}"#,
        r#"{"ShardID":1.5}"#,
        r#"{"ShardID":1e3}"#,
        r#"{"Type":256}"#,
        r#"{"BackupDatabase":1}"#,
        r#"{"UploadSize":"1"}"#,
        r#"{"Since":"2021-01-05"}"#,
        r#"{"Since":"2021-02-30T00:00:00Z"}"#,
        r#"{"Since":"2021-01-05T00:00:60Z"}"#,
        r#"{"Since":5}"#,
        r#"{"a":}"#,
        r#"[1]"#,
    ];
    // Documented deviations (docs/protocol.md §7): Go releases before 1.20 accept these, no Go
    // client produces them, and we reject them.
    let stricter: Vec<&str> = vec![
        r#"{"Since":"2021-01-05T00:00:00+24:00"}"#,
        r#"{"Since":"2021-01-05T00:00:00.1234567891Z"}"#,
        r#"null"#,
    ];
    let all: Vec<&str> = cases.iter().chain(&stricter).copied().collect();
    let lines: Vec<Vec<u8>> = all.iter().map(|c| c.as_bytes().to_vec()).collect();
    let mut go = go_roundtrip(&lines);
    let go_stricter = go.split_off(cases.len());
    for (case, g) in stricter.iter().zip(&go_stricter) {
        assert_ne!(
            g, "ERR",
            "Go now rejects {case}: drop it from the deviations"
        );
        assert!(Request::from_json(case.as_bytes()).is_err(), "{case}");
    }
    for (case, g) in cases.iter().zip(&go) {
        let ours = match Request::from_json(case.trim().as_bytes()) {
            Ok(r) => {
                let mut l = r.to_json_line().unwrap();
                l.pop();
                String::from_utf8(l).unwrap()
            }
            Err(_) => "ERR".to_owned(),
        };
        assert_eq!(&ours, g, "input {case}");
    }
}

#[test]
#[ignore = "needs the Go toolchain"]
fn go_reproduces_our_info_and_manifest_bytes() {
    use snapshotd_wire::InfoResponse;
    use snapshotd_wire::portable::{Manifest, ManifestFile, ManifestMeta};

    let mut runner = TestRunner::new(Config::default());
    let names = proptest::collection::vec(weird_string(), 0..4);
    let mut lines = Vec::new();
    let mut expect = Vec::new();
    for _ in 0..300 {
        let paths = names.new_tree(&mut runner).unwrap().current();
        let mut b = bytes::BytesMut::new();
        InfoResponse { paths }.encode(&mut b).unwrap();
        let text = String::from_utf8(b[..b.len() - 1].to_vec()).unwrap();
        lines.push(format!("I {text}").into_bytes());
        expect.push(text);

        let n = names.new_tree(&mut runner).unwrap().current();
        let m = Manifest {
            meta: ManifestMeta {
                file_name: n.first().cloned().unwrap_or_default(),
                size: n.len() as i64 * 1000,
                ..ManifestMeta::default()
            },
            files: n
                .iter()
                .enumerate()
                .map(|(i, s)| ManifestFile {
                    database: s.clone(),
                    policy: format!("{s}<rp>&"),
                    shard_id: u64::MAX - i as u64,
                    file_name: format!("x.s{i}.tar.gz"),
                    size: -(i as i64),
                    last_modified: 0,
                    ..ManifestFile::default()
                })
                .collect(),
            database: n.get(1).cloned().unwrap_or_default(),
            shard_id: n.len() as u64,
            ..Manifest::default()
        };
        let bytes = m.to_bytes().unwrap();
        // One line for Go: compact JSON of the same manifest.
        let compact: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        lines.push(format!("M {compact}").into_bytes());
        expect.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
    }
    // Influx's decoder ignores our extension keys: a manifest with them reads as one without.
    for path in [
        "A1_full/20261122T022308Z.manifest",
        "A2_db2/20261122T022310Z.manifest",
    ] {
        let orig = std::fs::read(snapshotd_testutil::vector(&format!(
            "influx/backups/{path}"
        )))
        .unwrap();
        let mut m = Manifest::from_bytes(&orig).unwrap();
        m.meta.sha256 = Some("00".repeat(32));
        m.meta.bytes = Some(533);
        for f in &mut m.files {
            f.sha256 = Some("ff".repeat(32));
            f.bytes = Some(700);
        }
        m.snapshotd = Some(snapshotd_wire::portable::SnapshotdInfo {
            version: "0.1.0".into(),
            database: "db2".into(),
            shard_id: Some(4),
            since: Some("2021-01-01T00:00:00Z".into()),
            complete: true,
            ..Default::default()
        });
        let ext = String::from_utf8(m.to_bytes().unwrap()).unwrap();
        lines.push(format!("M {}", ext.replace('\n', "")).into_bytes());
        expect.push(orig.iter().map(|b| format!("{b:02x}")).collect());
    }
    let go = go_roundtrip(&lines);
    for (e, g) in expect.iter().zip(&go) {
        assert_eq!(e, g);
    }
}
