//! The packet opener on raw or sealed-then-damaged streams, for every cipher.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::deframe(data);
});
