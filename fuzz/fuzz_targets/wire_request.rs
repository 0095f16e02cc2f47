//! Fuzz target: `snapshotd_wire::fuzzing::request` (also replayed on stable by the wire tests).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| snapshotd_wire::fuzzing::request(data));
