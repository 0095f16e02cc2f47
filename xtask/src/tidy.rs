//! `cargo xtask tidy`: architecture invariants that fail the build.
//!
//! * The internal dependency graph (from `cargo metadata`) has only the edges
//!   docs/architecture.md allows ([`ALLOWED`]).
//! * Library crates neither read environment variables, print, nor exit the process.
//! * Every `.rs` / `.md` file docs/architecture.md names exists.
//! * Comments in crates/ say the rule instead of citing "spec §" (a fresh clone has no
//!   specs).

mod docs;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::util::{cargo, root};
use docs::check_doc_files;

/// The internal edges docs/architecture.md ("Bird's-eye view" and "Crate map") allows:
/// each crate and the workspace crates it may depend on (normal and build dependencies).
/// Dev-dependencies may also name `snapshotd-testutil` and the crate itself. Keep this table
/// and the doc in step: a new crate or edge goes in both.
const ALLOWED: &[(&str, &[&str])] = &[
    ("snapshotd-wire", &[]),
    ("snapshotd-wal", &[]),
    ("snapshotd-dest", &[]),
    ("snapshotd-sealed", &[]),
    ("snapshotd-influxql", &[]),
    ("snapshotd-tsm", &[]),
    ("snapshotd-testutil", &[]),
    ("xtask", &[]),
    (
        "snapshotd-checkpoint",
        &["snapshotd-dest", "snapshotd-sealed"],
    ),
    ("snapshotd-store", &["snapshotd-wal", "snapshotd-tsm"]),
    (
        "snapshotd-etcd",
        &[
            "snapshotd-wal",
            "snapshotd-checkpoint",
            "snapshotd-dest",
            "snapshotd-sealed",
        ],
    ),
    (
        "snapshotd-server",
        &["snapshotd-wire", "snapshotd-store", "snapshotd-influxql"],
    ),
    (
        "snapshotd-influxapi",
        &["snapshotd-tsm", "snapshotd-wire", "snapshotd-store"],
    ),
    (
        "snapshotd-client",
        &[
            "snapshotd-wire",
            "snapshotd-checkpoint",
            "snapshotd-dest",
            "snapshotd-sealed",
        ],
    ),
    (
        "snapshotd",
        &[
            "snapshotd-wire",
            "snapshotd-wal",
            "snapshotd-dest",
            "snapshotd-sealed",
            "snapshotd-checkpoint",
            "snapshotd-influxql",
            "snapshotd-influxapi",
            "snapshotd-tsm",
            "snapshotd-etcd",
            "snapshotd-store",
            "snapshotd-server",
            "snapshotd-client",
        ],
    ),
];

/// (crate, dependency, feature): normal dependencies that must turn default features off
/// and not enable the feature (the server sees only the `Store` traits, never the on-disk
/// store and its WAL).
const FEATURE_BANS: &[(&str, &str, &str)] = &[
    ("snapshotd-server", "snapshotd-store", "builtin"),
    ("snapshotd-influxapi", "snapshotd-store", "builtin"),
];

/// The crate that test code may depend on and nothing else may.
const TESTUTIL: &str = "snapshotd-testutil";

/// Extra edges allowed to dev-dependencies only: end-to-end tests that drive a crate through
/// the real service and client (the store served to `influxd backup`, the server under a real
/// client's load). Production code never takes these edges.
const DEV_ALLOWED: &[(&str, &[&str])] = &[
    ("snapshotd-store", &["snapshotd-server", "snapshotd-client"]),
    ("snapshotd-server", &["snapshotd-client"]),
];

/// Library crates exempt from the source rules: test support, which reads the paths of the
/// peer programs from the variables `cargo xtask interop` sets.
const SOURCE_RULE_EXEMPT: &[&str] = &[TESTUTIL];

/// What a library's src/ must not contain, and why.
const FORBIDDEN_IN_LIBRARIES: &[(&str, &str)] = &[
    ("env::var", "reads an environment variable"),
    ("print!", "prints"),
    ("println!", "prints"),
    ("process::exit", "exits the process"),
];

/// Files that still cite "spec §" and belong to other owners; each is to say the rule
/// instead. This list may only shrink.
const SPEC_CITATIONS_LEFT: &[&str] = &[];

/// Flags of `cargo xtask tidy` (none yet).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Entry point.
pub fn run(_args: Args) -> Result<()> {
    run_checks()
}

/// Runs every check and fails listing every problem found.
pub fn run_checks() -> Result<()> {
    let root = root();
    let packages = workspace_packages()?;
    let mut problems = check_graph(&packages);
    problems.extend(check_library_sources(&root, &packages)?);
    problems.extend(check_doc_files(&root)?);
    problems.extend(check_spec_citations(&root)?);
    if problems.is_empty() {
        eprintln!("xtask: tidy: ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    bail!("tidy found {} problem(s)", problems.len());
}

/// One workspace member as `cargo metadata` describes it.
struct Package {
    name: String,
    dir: PathBuf,
    is_lib: bool,
    /// Every workspace-internal dependency.
    internal: Vec<Dep>,
}

/// A dependency on another workspace member.
struct Dep {
    name: String,
    /// `normal`, `dev` or `build`.
    kind: String,
    /// Whether the dependency keeps its default features.
    default_features: bool,
    /// Features it enables explicitly.
    features: Vec<String>,
}

/// The workspace members with their internal dependencies (`cargo metadata --no-deps`).
fn workspace_packages() -> Result<Vec<Package>> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("parse cargo metadata")?;
    let pkgs = meta["packages"]
        .as_array()
        .context("metadata: no packages")?;
    let names: Vec<&str> = pkgs.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut out = Vec::new();
    for p in pkgs {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
        let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
        let is_lib = p["targets"].as_array().is_some_and(|ts| {
            ts.iter().any(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "lib"))
            })
        });
        let internal = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                let dep = d["name"].as_str()?;
                names.contains(&dep).then(|| Dep {
                    name: dep.to_owned(),
                    kind: d["kind"].as_str().unwrap_or("normal").to_owned(),
                    default_features: d["uses_default_features"].as_bool().unwrap_or(true),
                    features: d["features"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f.as_str().map(str::to_owned))
                        .collect(),
                })
            })
            .collect();
        out.push(Package {
            name,
            dir,
            is_lib,
            internal,
        });
    }
    Ok(out)
}

/// Whether `DEV_ALLOWED` lets `krate`'s tests depend on `dep`.
fn dev_allowed(krate: &str, dep: &str) -> bool {
    DEV_ALLOWED
        .iter()
        .any(|(k, deps)| *k == krate && deps.contains(&dep))
}

/// Every internal edge must be allowed; every member must be in the table.
fn check_graph(packages: &[Package]) -> Vec<String> {
    let mut problems = Vec::new();
    for p in packages {
        let Some((_, allowed)) = ALLOWED.iter().find(|(n, _)| *n == p.name) else {
            problems.push(format!(
                "crate {} is not in the allowed dependency graph: add it to docs/architecture.md \
                 and to ALLOWED in xtask/src/tidy.rs",
                p.name
            ));
            continue;
        };
        for d in &p.internal {
            let ok = allowed.contains(&d.name.as_str())
                || (d.kind == "dev" && (d.name == TESTUTIL || d.name == p.name))
                || (d.kind == "dev" && dev_allowed(&p.name, &d.name));
            if !ok {
                problems.push(format!(
                    "{} depends on {} ({}), an edge docs/architecture.md does not allow: \
                     remove the dependency, or change the architecture (doc and ALLOWED in \
                     xtask/src/tidy.rs) first",
                    p.name, d.name, d.kind
                ));
            }
            problems.extend(feature_ban(&p.name, d));
        }
    }
    problems
}

/// A problem when `dep` of `krate` is a normal dependency that may enable a banned feature.
fn feature_ban(krate: &str, dep: &Dep) -> Option<String> {
    let (_, _, feature) = FEATURE_BANS
        .iter()
        .find(|(c, d, _)| *c == krate && *d == dep.name)?;
    let enabled = dep.default_features || dep.features.iter().any(|f| f == feature);
    (dep.kind == "normal" && enabled).then(|| {
        format!(
            "{krate} uses {} with default features or `{feature}`, which docs/architecture.md \
             forbids: set `default-features = false` and leave `{feature}` off",
            dep.name
        )
    })
}

/// Library crates' src/ must not read env vars, print or exit (comment lines aside).
fn check_library_sources(root: &Path, packages: &[Package]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for p in packages {
        if !p.is_lib || SOURCE_RULE_EXEMPT.contains(&p.name.as_str()) {
            continue;
        }
        for file in rust_files(&p.dir.join("src"))? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("read {}", file.display()))?;
            for (i, line) in code_lines(&text) {
                for (needle, what) in FORBIDDEN_IN_LIBRARIES {
                    if line.contains(needle) {
                        problems.push(format!(
                            "{}:{}: library crate {} {what} (`{needle}`); only the binary \
                             (crates/snapshotd) may: take the value as a parameter or return it",
                            rel(root, &file),
                            i + 1,
                            p.name
                        ));
                    }
                }
            }
        }
    }
    Ok(problems)
}

/// Comments in crates/ must not cite "spec §" (outside the shrinking baseline).
fn check_spec_citations(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for file in rust_files(&root.join("crates"))? {
        let name = rel(root, &file);
        if SPEC_CITATIONS_LEFT.contains(&name.as_str()) {
            continue;
        }
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        for (i, line) in text.lines().enumerate() {
            if line.contains("spec §") {
                problems.push(format!(
                    "{name}:{}: a comment cites \"spec §\"; a fresh clone has no specs: state \
                     the rule itself",
                    i + 1
                ));
            }
        }
    }
    Ok(problems)
}

/// Lines that are not `//` comments, with their index.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

/// Every `.rs` file under `dir` (none if it does not exist), skipping `target/`.
pub(crate) fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.with_context(|| format!("read {}", d.display()))?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    todo.push(path);
                }
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `path` relative to the workspace root, for messages.
pub(crate) fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
