//! A client transport through its real key exchange, fed the server's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::kex_client(data);
});
