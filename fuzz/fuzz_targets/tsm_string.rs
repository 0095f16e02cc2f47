//! Fuzzes snapshotd-tsm's string decoder (see snapshotd_tsm::fuzzing::strings).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    snapshotd_tsm::fuzzing::strings(data);
});
