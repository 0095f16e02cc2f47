//! Fuzzes snapshotd-tsm's bool decoder (see snapshotd_tsm::fuzzing::booleans).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    snapshotd_tsm::fuzzing::booleans(data);
});
