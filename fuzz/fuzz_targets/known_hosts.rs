//! known_hosts files: parsing, host key lookups and appending the line for a new host.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::known_hosts(data);
});
