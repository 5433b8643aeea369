//! A client past key exchange (skipped) and a password login, fed a script of the
//! server's connection messages and the application's channel calls.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::connection_client(data);
});
