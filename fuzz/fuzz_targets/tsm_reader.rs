//! Fuzzes snapshotd-tsm's reader decoder (see snapshotd_tsm::fuzzing::reader).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    snapshotd_tsm::fuzzing::reader(data);
});
