//! Each tidy rule flags what it must and passes what it allows.

use std::path::PathBuf;

use super::docs::file_names;
use super::{Dep, Package, check_graph, code_lines};

fn dep(name: &str, kind: &str) -> Dep {
    Dep {
        name: name.into(),
        kind: kind.into(),
        default_features: false,
        features: vec![],
    }
}

fn pkg(name: &str, deps: Vec<Dep>) -> Package {
    Package {
        name: name.into(),
        dir: PathBuf::new(),
        is_lib: true,
        internal: deps,
    }
}

#[test]
fn forbidden_edges_and_unknown_crates_are_flagged() {
    let ok = pkg(
        "snapshotd-checkpoint",
        vec![
            dep("snapshotd-dest", "normal"),
            dep("snapshotd-testutil", "dev"),
            dep("snapshotd-checkpoint", "dev"),
        ],
    );
    assert!(check_graph(&[ok]).is_empty());
    let bad = pkg("snapshotd-client", vec![dep("snapshotd-server", "normal")]);
    let problems = check_graph(&[bad]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("snapshotd-client depends on snapshotd-server"));
    let testutil_in_lib = pkg("snapshotd-wal", vec![dep("snapshotd-testutil", "normal")]);
    assert_eq!(check_graph(&[testutil_in_lib]).len(), 1);
    assert_eq!(check_graph(&[pkg("snapshotd-new", vec![])]).len(), 1);
}

#[test]
fn the_server_may_not_pull_the_builtin_store() {
    let mut store = dep("snapshotd-store", "normal");
    assert!(
        check_graph(&[pkg(
            "snapshotd-server",
            vec![dep("snapshotd-store", "normal")]
        )])
        .is_empty()
    );
    store.features = vec!["builtin".into()];
    assert_eq!(
        check_graph(&[pkg("snapshotd-server", vec![store])]).len(),
        1
    );
    let mut defaults = dep("snapshotd-store", "normal");
    defaults.default_features = true;
    assert_eq!(
        check_graph(&[pkg("snapshotd-server", vec![defaults])]).len(),
        1
    );
    let mut dev = dep("snapshotd-store", "dev");
    dev.features = vec!["builtin".into()];
    assert!(check_graph(&[pkg("snapshotd-server", vec![dev])]).is_empty());
}

#[test]
fn comment_lines_are_not_code() {
    let text =
        "//! println!(\"doc\")\nlet x = 1; // println!\n    /// env::var\nstd::process::exit(1);";
    let lines: Vec<usize> = code_lines(text).map(|(i, _)| i).collect();
    assert_eq!(lines, [1, 3]);
}

#[test]
fn file_names_expand_braces_and_skip_bare_extensions() {
    assert_eq!(
        file_names("one module per subcommand (`src/cmd/{serve,wal}.rs`), see [wal.md](wal.md)."),
        ["src/cmd/serve.rs", "src/cmd/wal.rs", "wal.md", "wal.md"]
    );
    assert!(file_names("names a `.rs` or `.md` file").is_empty());
}
