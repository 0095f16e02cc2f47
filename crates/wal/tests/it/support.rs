//! Shared helpers: vector materialisation, entry hashing, script replay, harness documents.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use snapshotd_wal::{Entry, HardState, OpenMode, Snapshot, Wal, WalOptions, read_like_etcd};

/// Copies `shared/vectors/etcd-wal/<name>/wal` into a temp dir, gunzipping `.gz` files.
pub fn materialize(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = snapshotd_testutil::temp_dir();
    let dst = tmp.path().join("wal");
    materialize_into(name, &dst);
    (tmp, dst)
}

/// Copies the vector's WAL files into `dst` (created), gunzipping `.gz` files.
fn materialize_into(name: &str, dst: &Path) {
    let src = snapshotd_testutil::vector(&format!("etcd-wal/{name}/wal"));
    std::fs::create_dir_all(dst).expect("mkdir");
    for ent in std::fs::read_dir(&src).expect("read vector dir") {
        let p = ent.expect("entry").path();
        let fname = p
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf8")
            .to_owned();
        if let Some(base) = fname.strip_suffix(".gz") {
            let mut d = flate2::read::GzDecoder::new(std::fs::File::open(&p).expect("open gz"));
            let mut buf = Vec::new();
            d.read_to_end(&mut buf).expect("gunzip");
            std::fs::write(dst.join(base), buf).expect("write");
        } else {
            std::fs::copy(&p, dst.join(&fname)).expect("copy");
        }
    }
    make_writable(dst);
}

/// A shared, read-only-use copy of a vector (the single-node vector is 128 MB decompressed),
/// materialised once per target directory under `CARGO_TARGET_TMPDIR` and reused by every
/// test process, so nothing accumulates in the system temp dir. Never open it in write mode.
pub fn shared_copy(name: &str) -> &'static Path {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("etcd-wal-vectors");
    let done = root.join(name);
    if !done.join("wal").is_dir() {
        // Stage under a private name, then rename: concurrent test processes race safely.
        let staging = root.join(format!("{name}.staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        materialize_into(name, &staging.join("wal"));
        if std::fs::rename(&staging, &done).is_err() {
            // Another process finished first; its copy is identical.
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    Box::leak(done.join("wal").into_boxed_path())
}

/// Vector files are read-only on disk; copies must be writable for write-mode opens.
pub fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for ent in std::fs::read_dir(dir).expect("read dir") {
        let p = ent.expect("entry").path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// Loads a vector's JSON file.
pub fn vector_json(name: &str, file: &str) -> Value {
    let p = snapshotd_testutil::vector(&format!("etcd-wal/{name}/{file}"));
    serde_json::from_slice(&std::fs::read(p).expect("read json")).expect("parse json")
}

/// The vectors' `entries_sha256`.
pub fn entries_sha256(entries: &[Entry]) -> String {
    let mut h = Sha256::new();
    for e in entries {
        let d = e.data.as_ref().map_or_else(|| "-".to_owned(), hex::encode);
        h.update(format!("{} {} {} {}\n", e.index, e.term, e.r#type, d).as_bytes());
    }
    hex::encode(h.finalize())
}

pub fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).expect("read file")))
}

/// One scripted operation (the harness's script format).
#[derive(Debug, Clone)]
pub enum Op {
    Save(HardState, Vec<Entry>),
    Snapshot(Snapshot),
    ReleaseLockTo(u64),
    Sync,
}

/// A harness script.
#[derive(Debug, Clone)]
pub struct Script {
    pub metadata: Vec<u8>,
    pub ops: Vec<Op>,
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

pub fn parse_script(v: &Value) -> Script {
    let metadata = hex::decode(v["metadata_hex"].as_str().unwrap_or("")).expect("metadata hex");
    let mut ops = Vec::new();
    for o in v["ops"].as_array().expect("ops") {
        if let Some(s) = o.get("save") {
            let hs = s
                .get("hardstate")
                .filter(|h| !h.is_null())
                .map(|h| HardState::new(u(h, "term"), u(h, "vote"), u(h, "commit")))
                .unwrap_or_default();
            let ents = s["entries"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| Entry {
                            r#type: e["type"].as_i64().unwrap_or(0) as i32,
                            term: u(e, "term"),
                            index: u(e, "index"),
                            data: e["data_hex"]
                                .as_str()
                                .map(|h| hex::decode(h).expect("data hex")),
                        })
                        .collect()
                })
                .unwrap_or_default();
            ops.push(Op::Save(hs, ents));
        } else if let Some(s) = o.get("snapshot") {
            ops.push(Op::Snapshot(Snapshot::new(u(s, "index"), u(s, "term"))));
        } else if let Some(i) = o.get("release_lock_to") {
            ops.push(Op::ReleaseLockTo(i.as_u64().expect("index")));
        } else if o.get("sync").is_some() {
            ops.push(Op::Sync);
        } else {
            panic!("unknown op {o}");
        }
    }
    Script { metadata, ops }
}

/// Serialises a script back to the harness's JSON.
pub fn script_json(s: &Script) -> Value {
    let ops: Vec<Value> = s
        .ops
        .iter()
        .map(|o| match o {
            Op::Save(hs, ents) => json!({"save": {
                "hardstate": {"term": hs.term, "vote": hs.vote, "commit": hs.commit},
                "entries": ents.iter().map(|e| json!({
                    "index": e.index, "term": e.term, "type": e.r#type,
                    "data_hex": e.data.as_ref().map(hex::encode),
                })).collect::<Vec<_>>(),
            }}),
            Op::Snapshot(sn) => json!({"snapshot": {"index": sn.index, "term": sn.term}}),
            Op::ReleaseLockTo(i) => json!({"release_lock_to": i}),
            Op::Sync => json!({"sync": true}),
        })
        .collect();
    json!({"metadata_hex": hex::encode(&s.metadata), "ops": ops})
}

pub fn run_ops(wal: &mut Wal, ops: &[Op]) {
    for (i, o) in ops.iter().enumerate() {
        let r = match o {
            Op::Save(hs, e) => wal.save(hs, e),
            Op::Snapshot(s) => wal.save_snapshot(s),
            Op::ReleaseLockTo(i) => wal.release_lock_to(*i),
            Op::Sync => wal.sync(),
        };
        r.unwrap_or_else(|e| panic!("op {i}: {e}"));
    }
}

/// Runs `script` through our writer into `dir` with the given segment size.
pub fn write_script(dir: &Path, script: &Script, segment_bytes: u64) {
    let opts = WalOptions::default().segment_size_bytes(segment_bytes);
    let mut wal = Wal::create_with(dir, &script.metadata, &opts).expect("create");
    run_ops(&mut wal, &script.ops);
    wal.close().expect("close");
}

/// The harness's `read` document (without entries unless `with_entries`).
pub fn read_doc(dir: &Path, start: Snapshot, mode: OpenMode, with_entries: bool) -> Value {
    let o = read_like_etcd(dir, start, mode, &WalOptions::default());
    let c = &o.contents;
    let mut v = json!({
        "mode": match mode { OpenMode::Read => "read", OpenMode::Write => "write" },
        "start": {"index": start.index, "term": start.term},
        "open_error": o.open_error.as_ref().map(|e| e.to_string()),
        "read_error": o.read_error.as_ref().map(|e| e.to_string()),
        "metadata_hex": c.metadata.as_ref().map(hex::encode),
        "hardstate": {"term": c.hardstate.term, "vote": c.hardstate.vote, "commit": c.hardstate.commit},
        "num_entries": c.entries.len(),
        "first_index": c.entries.first().map_or(0, |e| e.index),
        "last_index": c.entries.last().map_or(0, |e| e.index),
    });
    if with_entries {
        v["entries"] = c
            .entries
            .iter()
            .map(|e| {
                json!({"index": e.index, "term": e.term, "type": e.r#type,
                            "data_hex": e.data.as_ref().map(hex::encode)})
            })
            .collect();
    } else {
        v["entries_sha256"] = json!(entries_sha256(&c.entries));
    }
    v
}

/// Sorted `(name, bytes)` of the `.wal` files in `dir`.
pub fn wal_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .map(|p| {
            let n = p
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf8")
                .to_owned();
            (n, std::fs::read(&p).expect("read"))
        })
        .collect();
    v.sort();
    v
}
