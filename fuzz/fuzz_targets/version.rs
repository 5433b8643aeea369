//! The version exchange in both roles, with reads cut as the first byte says.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::version(data);
});
