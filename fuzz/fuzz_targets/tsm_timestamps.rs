//! Fuzzes snapshotd-tsm's timestamps decoder (see snapshotd_tsm::fuzzing::timestamps).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    snapshotd_tsm::fuzzing::timestamps(data);
});
