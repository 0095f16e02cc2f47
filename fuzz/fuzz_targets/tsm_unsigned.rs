//! Fuzzes snapshotd-tsm's unsigned decoder (see snapshotd_tsm::fuzzing::unsigned).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    snapshotd_tsm::fuzzing::unsigned(data);
});
