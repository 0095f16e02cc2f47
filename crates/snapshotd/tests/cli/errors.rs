//! What a user sees when a command cannot do what was asked: one clear line, the cause once,
//! a hint where one helps, and nothing created.

use crate::support::backup_env as env;
use crate::support::serve::serve;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn read_commands_never_create_a_missing_source() {
    let work = snapshotd_testutil::temp_dir();
    let missing = work.path().join("no-such-backup");
    let m = missing.to_str().unwrap();
    for args in [
        vec!["verify", m],
        vec!["restore", "--host", "127.0.0.1:1", m],
        vec!["unlock", m],
        vec!["snapshots", m],
        vec!["forget", "--keep-last", "1", m],
    ] {
        let out = env::run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("does not exist"), "{args:?}: {err}");
        assert!(!missing.exists(), "{args:?} created {m}");
    }
}

#[test]
fn a_refused_connection_is_reported_once() {
    let work = snapshotd_testutil::temp_dir();
    let port = snapshotd_testutil::free_port();
    let host = format!("127.0.0.1:{port}");
    let dest = work.path().join("bk");
    let out = env::run(&[
        "backup",
        "--host",
        &host,
        "--no-resume",
        dest.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("snapshotd: error:"))
        .unwrap_or_default();
    assert_eq!(line.matches("refused").count(), 1, "{err}");
    assert!(line.contains(&host), "{err}");
}

#[test]
fn an_http_port_gets_a_hint() {
    let work = snapshotd_testutil::temp_dir();
    let srv = serve(&work.path().join("data"));
    let dest = work.path().join("bk");
    let out = env::run(&[
        "backup",
        "--host",
        &srv.http,
        "--attempts",
        "1",
        dest.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("this looks like an HTTP port"), "{err}");
    assert!(err.contains("8088"), "{err}");
}
