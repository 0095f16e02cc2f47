//! Fuzzes snapshotd-tsm's float decoder (see snapshotd_tsm::fuzzing::floats).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    snapshotd_tsm::fuzzing::floats(data);
});
