//! Helpers shared by the snapshotd integration tests. Each test file includes them with
//! `mod support;` and uses what it needs (hence `dead_code` is allowed here).

#![allow(dead_code)]

pub mod backup_env;
pub mod serve;
pub mod takeover;
