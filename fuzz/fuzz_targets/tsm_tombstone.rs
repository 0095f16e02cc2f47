//! Fuzzes snapshotd-tsm's tombstone decoder (see snapshotd_tsm::fuzzing::tombstones).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    snapshotd_tsm::fuzzing::tombstones(data);
});
