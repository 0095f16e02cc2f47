//! Integration tests of snapshotd-wire (one binary, one module per topic).

// Test helpers outside #[test] fns may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod captures;
mod extension;
mod framed;
mod fuzz_corpus;
mod limits;
mod partial;
mod portable;
mod proptests;
mod util;
