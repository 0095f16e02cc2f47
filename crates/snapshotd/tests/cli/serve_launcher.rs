//! The tests' `snapshotd serve` launcher (`support/serve.rs`): a port another process took
//! between choosing it and the server's bind is retried with new ports; any other failure
//! is reported with the server's stderr.

use std::cell::Cell;

use crate::support::serve::{free_addr, start};

#[test]
fn a_port_taken_before_the_bind_is_retried_with_a_new_one() {
    let work = snapshotd_testutil::temp_dir();
    // Another process listens there: a connect succeeds, the server's bind does not.
    let thief = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = thief.local_addr().unwrap().to_string();
    let picks = Cell::new(0);
    let (mut guard, listen) = start(&work.path().join("data"), || {
        picks.set(picks.get() + 1);
        let addr = if picks.get() == 1 {
            taken.clone()
        } else {
            free_addr()
        };
        (
            vec!["--no-http".into(), "--bind".into(), addr.clone()],
            vec![addr],
        )
    });
    assert_eq!(picks.get(), 2, "one retry after the stolen port");
    assert_ne!(listen, vec![taken]);
    assert!(guard.0.try_wait().unwrap().is_none(), "the server runs");
}

#[test]
fn another_start_failure_is_reported_with_the_servers_stderr() {
    let work = snapshotd_testutil::temp_dir();
    let data = work.path().join("data");
    let picks = Cell::new(0);
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        start(&data, || {
            picks.set(picks.get() + 1);
            // A non-loopback bind without TLS client certificates is refused at start.
            let addr = format!("0.0.0.0:{}", snapshotd_testutil::free_port());
            (
                vec!["--no-http".into(), "--bind".into(), addr.clone()],
                vec![addr],
            )
        })
    }));
    let msg = failed.err().expect("the start must fail");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("refusing") && msg.contains("0.0.0.0"), "{msg}");
    assert_eq!(picks.get(), 1, "not a port race: no retry");
}
