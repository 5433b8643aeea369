//! A server transport past key exchange (skipped), fed the client's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::transport_server(data);
});
