//! AES in counter mode for the legacy `aes128-ctr` and `aes256-ctr` ciphers (RFC 4344
//! section 4), and for the private keys in OpenSSH key files.
//!
//! Both providers share this one implementation from the `aes` and `ctr` crates: CTR is
//! only offered for peers that lack AES-GCM and ChaCha20-Poly1305, so it is not on the fast
//! path that justifies a second implementation.
//!
//! RFC 4344 section 4 treats the IV as one 128-bit big-endian integer that is incremented
//! by one per block and wraps modulo 2^128, which is exactly `ctr`'s `Ctr128BE` flavour.
//! The cipher is a stream: it carries its position from one packet to the next for the
//! life of the key, so one `AesCtr` serves one direction of one connection.

use core::fmt;

use aes::{Aes128, Aes256};
use ctr::cipher::{InnerIvInit, StreamCipher, StreamCipherSeek};
use ctr::{Ctr128BE, CtrCore, flavors};

/// One direction of `aes128-ctr` or `aes256-ctr`: the key schedule and the position in the
/// keystream. The key schedule is wiped when the value is dropped.
///
/// The position is kept here as a block counter and an offset into that block, and a
/// `Ctr128BE` over a borrowed key schedule is set up at that position for each call. That
/// costs no key expansion, and it lets [`AesCtr::peek`] look ahead through a shared
/// reference (the `ctr` crate's own state cannot be cloned).
#[derive(Clone)]
pub struct AesCtr {
    key: Key,
    /// The counter block at the current position: the IV plus the blocks used so far,
    /// modulo 2^128 (RFC 4344 section 4).
    counter: u128,
    /// Keystream bytes of block `counter` already used: 0 except after a call whose length
    /// was not a multiple of 16.
    used: u8,
}

#[derive(Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per direction of a connection; boxing the bigger key schedule \
              would save 256 bytes at the cost of an indirection on every packet"
)]
enum Key {
    Aes128(Aes128),
    Aes256(Aes256),
}

impl AesCtr {
    /// Sets up the cipher at the start of the keystream. `key` must be 16 bytes (AES-128)
    /// or 32 bytes (AES-256); any other length is a caller bug and returns `None`.
    pub fn new(key: &[u8], iv: &[u8; 16]) -> Option<Self> {
        use aes::cipher::KeyInit;

        let key = match key.len() {
            16 => Key::Aes128(Aes128::new_from_slice(key).ok()?),
            32 => Key::Aes256(Aes256::new_from_slice(key).ok()?),
            _ => return None,
        };
        Some(Self {
            key,
            counter: u128::from_be_bytes(*iv),
            used: 0,
        })
    }

    /// Encrypts or decrypts `buf` in place and moves the position past it.
    ///
    /// SSH only ever passes whole blocks, but any length works: a partial block leaves the
    /// rest of its keystream for the next call.
    pub fn apply(&mut self, buf: &mut [u8]) {
        self.xor_keystream(buf);

        let total = usize::from(self.used) + buf.len();
        // Both conversions are lossless: a block count fits in u128, and the remainder of
        // a division by 16 fits in u8.
        self.counter = self.counter.wrapping_add((total / 16) as u128);
        self.used = (total % 16) as u8;
    }

    /// Decrypts one block at the current position without moving the position.
    ///
    /// A receiver needs the packet length, which sits in the first block, before it knows
    /// how many bytes make up the packet; it peeks at that block, waits for the rest, then
    /// decrypts the whole packet with [`AesCtr::apply`].
    pub fn peek(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut out = *block;
        self.xor_keystream(&mut out);
        out
    }

    /// The key length in bits, for logs.
    pub fn key_bits(&self) -> u16 {
        match self.key {
            Key::Aes128(_) => 128,
            Key::Aes256(_) => 256,
        }
    }

    /// XORs `buf` with the keystream from the current position, leaving the position.
    fn xor_keystream(&self, buf: &mut [u8]) {
        let iv = self.counter.to_be_bytes().into();
        match &self.key {
            Key::Aes128(aes) => {
                let core = CtrCore::<&Aes128, flavors::Ctr128BE>::inner_iv_init(aes, &iv);
                xor_from(Ctr128BE::from_core(core), self.used, buf);
            }
            Key::Aes256(aes) => {
                let core = CtrCore::<&Aes256, flavors::Ctr128BE>::inner_iv_init(aes, &iv);
                xor_from(Ctr128BE::from_core(core), self.used, buf);
            }
        }
    }
}

/// Skips `used` bytes of the keystream, then XORs `buf` with what follows.
fn xor_from<C: StreamCipher + StreamCipherSeek>(mut stream: C, used: u8, buf: &mut [u8]) {
    if used != 0 {
        stream.seek(u32::from(used));
    }
    // `apply_keystream` panics only when the keystream runs out, which a 128-bit counter
    // reaches after 2^128 blocks; RFC 4344 section 3.1 rekeys long before that.
    stream.apply_keystream(buf);
}

impl fmt::Debug for AesCtr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key schedule and the counter stay out of logs.
        f.debug_struct("AesCtr")
            .field("key_bits", &self.key_bits())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // NIST SP 800-38A appendix F.5.1 (CTR-AES128.Encrypt) and F.5.5 (CTR-AES256.Encrypt):
    // the initial counter block is f0f1...feff and it is incremented as one big-endian
    // 128-bit integer, as RFC 4344 requires.
    const PLAIN: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                         30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    const COUNTER: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

    fn iv() -> [u8; 16] {
        unhex(COUNTER).try_into().unwrap()
    }

    #[test]
    fn sp800_38a_aes128() {
        let key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
        let mut buf = unhex(PLAIN);
        AesCtr::new(&key, &iv()).unwrap().apply(&mut buf);
        assert_eq!(
            buf,
            unhex(
                "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff\
                 5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"
            )
        );
    }

    #[test]
    fn sp800_38a_aes256() {
        let key = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let mut buf = unhex(PLAIN);
        AesCtr::new(&key, &iv()).unwrap().apply(&mut buf);
        assert_eq!(
            buf,
            unhex(
                "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5\
                 2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
            )
        );
    }

    #[test]
    fn streams_across_calls_of_any_length() {
        let key = [7u8; 32];
        let mut whole = vec![0x5a; 100];
        AesCtr::new(&key, &iv()).unwrap().apply(&mut whole);

        let mut pieces = vec![0x5a; 100];
        let mut c = AesCtr::new(&key, &iv()).unwrap();
        let (a, rest) = pieces.split_at_mut(5);
        let (b, rest) = rest.split_at_mut(16);
        let (d, e) = rest.split_at_mut(40);
        for part in [a, b, d, e] {
            c.apply(part);
        }
        assert_eq!(whole, pieces);
    }

    #[test]
    fn peek_does_not_advance() {
        let key = [1u8; 16];
        let plain = [0x42u8; 48];
        let mut sealed = plain;
        AesCtr::new(&key, &iv()).unwrap().apply(&mut sealed);

        let mut opener = AesCtr::new(&key, &iv()).unwrap();
        let first: [u8; 16] = sealed[..16].try_into().unwrap();
        assert_eq!(opener.peek(&first), plain[..16]);
        assert_eq!(opener.peek(&first), plain[..16]);

        let mut buf = sealed;
        opener.apply(&mut buf[..16]);
        let second: [u8; 16] = sealed[16..32].try_into().unwrap();
        assert_eq!(opener.peek(&second), plain[16..32]);
        opener.apply(&mut buf[16..]);
        assert_eq!(buf, plain);
    }

    #[test]
    fn counter_wraps_modulo_2_pow_128() {
        // RFC 4344 section 4: X = (X + 1) mod 2^128. The block after ff..ff uses 00..00.
        let key = [9u8; 16];
        let mut wrapped = [0u8; 32];
        AesCtr::new(&key, &[0xff; 16]).unwrap().apply(&mut wrapped);
        let mut from_zero = [0u8; 16];
        AesCtr::new(&key, &[0; 16]).unwrap().apply(&mut from_zero);
        assert_eq!(wrapped[16..], from_zero);
    }

    #[test]
    fn rejects_other_key_lengths_and_hides_keys() {
        assert!(AesCtr::new(&[0; 24], &[0; 16]).is_none());
        assert!(AesCtr::new(&[], &[0; 16]).is_none());
        let c = AesCtr::new(&[0xab; 16], &[0; 16]).unwrap();
        let shown = format!("{c:?}");
        assert_eq!(shown, "AesCtr { key_bits: 128, .. }");
    }
}
