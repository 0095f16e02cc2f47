//! docs/architecture.md must name only files that exist.
//!
//! A name (`view.rs`, `src/cmd/{serve,wal}.rs`, `protocol.md`) is looked up relative to the
//! workspace root, to docs/, and inside the crate whose bullet of the crate map it appears
//! in (any file of that crate whose path ends with the name); outside a crate's bullet,
//! anywhere under crates/ and xtask/.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{rel, rust_files};

/// The doc checked.
const DOC: &str = "docs/architecture.md";

/// One problem per name in the doc that matches no file.
pub(super) fn check_doc_files(root: &Path) -> Result<Vec<String>> {
    let path = root.join(DOC);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let everywhere = [root.join("crates"), root.join("xtask")];
    let mut context: Option<PathBuf> = None;
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.starts_with("- ") || line.starts_with("**") {
            context = crate_of(root, line);
        }
        for name in file_names(line) {
            let dirs: Vec<PathBuf> = match &context {
                Some(c) => vec![c.clone()],
                None => everywhere.to_vec(),
            };
            if !exists(root, &dirs, &name)? {
                problems.push(format!(
                    "{DOC}:{}: names `{name}`, which does not exist{}: fix the doc",
                    i + 1,
                    context
                        .as_ref()
                        .map(|c| format!(" in {}", rel(root, c)))
                        .unwrap_or_default()
                ));
            }
        }
    }
    Ok(problems)
}

/// The crate directory a crate-map bullet (`- `crates/wire` …`, `- `xtask` …`) is about.
fn crate_of(root: &Path, line: &str) -> Option<PathBuf> {
    let rest = line.strip_prefix("- `")?;
    let name = rest.split('`').next()?;
    let dir = root.join(name.trim_end_matches('/'));
    (name.starts_with("crates/") || name == "xtask" || name == "fuzz/")
        .then_some(dir)
        .filter(|d| d.is_dir())
}

/// The `.rs` / `.md` names on a line, brace lists expanded.
pub(super) fn file_names(line: &str) -> Vec<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_./{},-".contains(c);
    let mut out = Vec::new();
    for run in line.split(|c: char| !allowed(c)) {
        let run = run.trim_end_matches([',', '.', ';', ':']);
        let named = run.len() > 3 && !run.starts_with('.');
        if !named || !(run.ends_with(".rs") || run.ends_with(".md")) {
            continue;
        }
        if let (Some(open), Some(close)) = (run.find('{'), run.find('}')) {
            let (head, tail) = (&run[..open], &run[close + 1..]);
            for alt in run[open + 1..close].split(',') {
                out.push(format!("{head}{alt}{tail}"));
            }
        } else {
            out.extend(run.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
        }
    }
    out
}

/// Whether `name` is a file relative to the root, to docs/, or a path suffix of a file
/// under one of `dirs`.
fn exists(root: &Path, dirs: &[PathBuf], name: &str) -> Result<bool> {
    if root.join(name).is_file() || root.join("docs").join(name).is_file() {
        return Ok(true);
    }
    let suffix = format!("/{}", name.trim_start_matches("./"));
    for d in dirs {
        if d.join(name).is_file() {
            return Ok(true);
        }
        let found = if name.ends_with(".rs") {
            rust_files(d)?
        } else {
            md_files(d)
        };
        if found.iter().any(|f| f.to_string_lossy().ends_with(&suffix)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `.md` files directly in `dir` and its `docs/` (crate READMEs and the like).
fn md_files(dir: &Path) -> Vec<PathBuf> {
    [dir.to_path_buf(), dir.join("docs")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect()
}
