//! Public key blobs and their round trip, and signatures over the rest of the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::public_key(data);
});
