//! A server transport through its real key exchange, fed the client's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::kex_server(data);
});
