//! A client transport past key exchange (skipped), fed the server's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::transport_client(data);
});
