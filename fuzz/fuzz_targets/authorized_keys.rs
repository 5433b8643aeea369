//! authorized_keys files: line by line parsing and lookups for fixed clients.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::authorized_keys(data);
});
