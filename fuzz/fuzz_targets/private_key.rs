//! OpenSSH private key files, decrypted when they ask for few bcrypt rounds, and .pub lines.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ssh_proto::fuzzing::private_key(data);
});
