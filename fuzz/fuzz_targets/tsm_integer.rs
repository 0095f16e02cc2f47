//! Fuzzes snapshotd-tsm's integer decoder (see snapshotd_tsm::fuzzing::integers).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    snapshotd_tsm::fuzzing::integers(data);
});
