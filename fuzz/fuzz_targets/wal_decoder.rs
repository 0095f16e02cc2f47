//! Fuzzes the etcd WAL frame/record decoder over arbitrary segment bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    snapshotd_wal::fuzz_decode(data);
});
