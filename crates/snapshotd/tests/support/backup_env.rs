//! The `snapshotd` binary as a user runs it (backup command lines, exit status, `--json`
//! summaries, killing a run once it made progress), and backup directories read back:
//! file listings, manifests, comparison by content, checkpoint records.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `snapshotd` binary under test.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snapshotd"));
    // Restore checkpoints go to the state directory: keep the tests' out of $HOME.
    c.env("SNAPSHOTD_STATE_DIR", STATE_DIR);
    c
}

/// The state directory the tests' runs use.
pub const STATE_DIR: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/snapshotd-state");

/// Runs `snapshotd ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

/// Starts `snapshotd ARGS` with piped output.
pub fn spawn(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The `--json` summary printed on stdout.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Asserts success, showing stderr otherwise.
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`ok`], then the `--json` summary.
pub fn ok_json(out: &Output) -> serde_json::Value {
    ok(out);
    json(out)
}

/// The ids of the complete points `snapshots --json` printed in `out` (asserted to succeed).
pub fn complete_point_ids(out: &Output) -> Vec<String> {
    ok_json(out)["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["complete"] == true)
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `snapshotd backup --host ADDR FLAGS... DEST` and asserts it succeeded.
pub fn backup_ok(addr: &str, flags: &[&str], dest: &Path) -> Output {
    let out = bin()
        .args(["backup", "--host", addr])
        .args(flags)
        .arg(dest)
        .output()
        .unwrap();
    ok(&out);
    out
}

/// Polls `progress` every 20 ms until it holds (failing with "no progress" after 30 s),
/// then kills `child` (SIGKILL) and reaps it.
pub fn kill_once(mut child: Child, mut progress: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !progress() {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A tiny seeded generator (no `rand` dependency needed for test timing choices).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next pseudo-random value.
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// The manifest of a backup directory (the only one).
pub fn manifest(dir: &Path) -> serde_json::Value {
    let m = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "manifest"))
        .unwrap_or_else(|| panic!("no manifest in {}", dir.display()));
    serde_json::from_slice(&std::fs::read(m).unwrap()).unwrap()
}

/// One shard of a backup: database, retention policy, tar size, tar bytes.
pub type Shard = (String, String, u64, Vec<u8>);

/// What must be equal between two backups of the same data: per shard (db, rp, id, tar
/// size, decompressed tar bytes), and the meta's size.
pub fn content(dir: &Path) -> (u64, BTreeMap<u64, Shard>) {
    content_of(dir, &manifest_name(dir))
}

/// [`content`] of the restore point whose manifest is `manifest`.
pub fn content_of(dir: &Path, manifest: &str) -> (u64, BTreeMap<u64, Shard>) {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(manifest)).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for f in m["files"].as_array().unwrap() {
        let name = f["fileName"].as_str().unwrap();
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(dir.join(name)).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        out.insert(
            f["shardID"].as_u64().unwrap(),
            (
                f["database"].as_str().unwrap().to_string(),
                f["policy"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
                tar,
            ),
        );
    }
    (m["meta"]["size"].as_u64().unwrap(), out)
}

/// Decompressed `.tsm` entries of every shard archive of a local backup, sorted (shard IDs
/// may differ between the backups compared).
pub fn tsm_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, (_, _, _, tar)) in content(dir).1 {
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

/// Sends a signal with `kill(1)`.
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

/// Waits until `path` exists.
pub fn wait_for(path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// File name of the (only) manifest in a backup directory.
pub fn manifest_name(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .find(|n| n.ends_with(".manifest"))
        .unwrap_or_else(|| panic!("no manifest in {}", dir.display()))
}

/// Sorted names of the regular files at the top of a backup directory.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// Every top-level file of a backup directory with its bytes.
pub fn top_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Flips the bits of `mask` in the middle byte of a file.
pub fn flip(p: &Path, mask: u8) {
    let mut b = std::fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= mask;
    std::fs::write(p, b).unwrap();
}

/// The checkpoint records of a local backup destination (`key` for encrypted ones).
pub fn checkpoint_records(dest: &Path, key: Option<&Path>) -> snapshotd_checkpoint::Resume {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let d = snapshotd_checkpoint::Destination::local(dest).unwrap();
    let k = key.map(|k| snapshotd_checkpoint::MasterKey::from_file(k).unwrap());
    rt.block_on(snapshotd_checkpoint::inspect(&d, k.as_ref()))
        .unwrap()
}
