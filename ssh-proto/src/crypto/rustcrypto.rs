//! The pure-Rust provider, for targets where `ring` or a C toolchain is not available:
//! `sha2`, `hmac`, `aes-gcm`, the original ChaCha20 from `chacha20` with `poly1305`,
//! `ed25519-dalek`, `rsa` and `p256`.
//!
//! It implements the same trait with the same acceptance rules as the `ring` provider (the
//! same RSA size bounds, uncompressed P-256 points only, the same SSH signature parsing),
//! so a signature verifies under one provider exactly when it verifies under the other;
//! the tests in `tests/crypto_vectors.rs` check each against the other.
//!
//! Keys are wiped when they drop (the crates' `zeroize` features). Packet operations work
//! in place and allocate nothing per call.

use super::encoding::{
    RSA_MAX_MODULUS_BYTES, constant_time_eq, ecdsa_fixed_signature, rsa_verify_inputs,
};
use chacha20::ChaCha20Legacy;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use ed25519_dalek::{Signer, Verifier};
use hmac::{Hmac, KeyInit, Mac};
use poly1305::Poly1305;
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

use crate::crypto::{
    AesGcmKey, ChaChaPolyKey, CryptoProvider, Digest, HashAlg, Hasher, HmacKey, RsaPrivateParts,
    Unauthentic, VerifyKey, rsa_sign_portable,
};

/// The pure-Rust provider. Stateless: every key it returns carries its own state.
#[derive(Debug, Clone, Copy)]
pub struct RustCrypto;

impl CryptoProvider for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn hash(&self, alg: HashAlg) -> Box<dyn Hasher> {
        match alg {
            HashAlg::Sha256 => Box::new(Sha::<Sha256>::default()),
            HashAlg::Sha512 => Box::new(Sha::<Sha512>::default()),
        }
    }

    fn hmac(&self, alg: HashAlg, key: &[u8]) -> Box<dyn HmacKey> {
        match alg {
            HashAlg::Sha256 => Box::new(HmacState::<Sha256>::new(key)),
            HashAlg::Sha512 => Box::new(HmacState::<Sha512>::new(key)),
        }
    }

    fn aes_gcm(&self, key: &[u8]) -> Option<Box<dyn AesGcmKey>> {
        match key.len() {
            16 => Some(Box::new(Gcm(aes_gcm::Aes128Gcm::new_from_slice(key).ok()?))),
            32 => Some(Box::new(Gcm(aes_gcm::Aes256Gcm::new_from_slice(key).ok()?))),
            _ => None,
        }
    }

    fn chacha20_poly1305(&self, key: &[u8; 64]) -> Box<dyn ChaChaPolyKey> {
        // OpenSSH PROTOCOL.chacha20poly1305: the first 32 bytes are K_2 (payload and
        // Poly1305 key), the last 32 are K_1 (length).
        let mut k_2 = Zeroizing::new([0u8; 32]);
        let mut k_1 = Zeroizing::new([0u8; 32]);
        let (first, second) = key.split_at(32);
        k_2.copy_from_slice(first);
        k_1.copy_from_slice(second);
        Box::new(ChaChaPoly { k_1, k_2 })
    }

    fn ed25519_public(&self, seed: &[u8; 32]) -> [u8; 32] {
        ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .to_bytes()
    }

    fn ed25519_sign(&self, seed: &[u8; 32], msg: &[u8]) -> [u8; 64] {
        ed25519_dalek::SigningKey::from_bytes(seed)
            .sign(msg)
            .to_bytes()
    }

    fn verify(&self, key: VerifyKey<'_>, msg: &[u8], sig: &[u8]) -> bool {
        match key {
            VerifyKey::Ed25519(public) => verify_ed25519(public, msg, sig),
            VerifyKey::Rsa { n, e, hash } => verify_rsa(n, e, hash, msg, sig),
            VerifyKey::EcdsaP256(point) => verify_ecdsa_p256(point, msg, sig),
        }
    }

    fn rsa_sign(&self, key: &RsaPrivateParts<'_>, hash: HashAlg, msg: &[u8]) -> Option<Vec<u8>> {
        rsa_sign_portable(key, hash, msg)
    }
}

#[derive(Default)]
struct Sha<D>(D);

impl<D> Hasher for Sha<D>
where
    D: sha2::Digest + Send,
{
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finish(self: Box<Self>) -> Digest {
        Digest::new(&self.0.finalize())
    }
}

/// The HMAC state after the key is absorbed; each MAC starts from a copy of it, so the
/// key is processed once per key, not once per packet.
struct HmacState<D: hmac::EagerHash>(Hmac<D>);

impl<D: hmac::EagerHash> HmacState<D> {
    #[expect(clippy::expect_used, reason = "HMAC has no failing key length")]
    fn new(key: &[u8]) -> Self {
        // HMAC takes keys of any length (RFC 2104 section 2 hashes long ones), so this
        // constructor has no failing input.
        Self(Hmac::new_from_slice(key).expect("HMAC accepts keys of any length"))
    }

    fn absorb(&self, parts: &[&[u8]]) -> Hmac<D> {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac
    }
}

impl<D> HmacKey for HmacState<D>
where
    D: hmac::EagerHash,
    Hmac<D>: Send,
{
    fn sign(&self, parts: &[&[u8]]) -> Digest {
        Digest::new(&self.absorb(parts).finalize().into_bytes())
    }

    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> Result<(), Unauthentic> {
        // `verify_slice` compares in constant time and refuses a tag of the wrong length.
        self.absorb(parts)
            .verify_slice(tag)
            .map_err(|_| Unauthentic)
    }
}

struct Gcm<A>(A);

impl<A> AesGcmKey for Gcm<A>
where
    A: aes_gcm::AeadInOut<
            NonceSize = aes_gcm::aead::consts::U12,
            TagSize = aes_gcm::aead::consts::U16,
        > + Send,
{
    fn seal_in_place(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let nonce = aes_gcm::Nonce::from(*nonce);
        match self.0.encrypt_inout_detached(&nonce, aad, data.into()) {
            Ok(tag) => tag.into(),
            Err(_) => {
                // Only an input over GCM's limit of about 64 GiB fails, far beyond any SSH
                // packet; as in the `ring` provider, send nothing readable.
                data.fill(0);
                [0; 16]
            }
        }
    }

    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), Unauthentic> {
        // `aes-gcm` checks the tag in constant time before it decrypts anything.
        let nonce = aes_gcm::Nonce::from(*nonce);
        let tag = aes_gcm::Tag::from(*tag);
        self.0
            .decrypt_inout_detached(&nonce, aad, data.into(), &tag)
            .map_err(|_| Unauthentic)
    }
}

/// `chacha20-poly1305@openssh.com`, built from the original ChaCha20 (64-bit nonce and
/// 64-bit block counter) and Poly1305 as OpenSSH's PROTOCOL.chacha20poly1305 describes:
///
/// - the nonce of both ChaCha20 instances is the packet sequence number as an 8-byte
///   big-endian integer;
/// - K_1 encrypts the 4-byte packet length, from block counter 0;
/// - K_2's keystream block 0 gives the Poly1305 key (its first 32 bytes), and the rest of
///   the packet is encrypted from block counter 1;
/// - the tag is Poly1305 over the whole encrypted packet, length included.
struct ChaChaPoly {
    k_1: Zeroizing<[u8; 32]>,
    k_2: Zeroizing<[u8; 32]>,
}

impl ChaChaPoly {
    fn nonce(seq: u32) -> chacha20::LegacyNonce {
        u64::from(seq).to_be_bytes().into()
    }

    /// The K_2 cipher positioned at block 1, and Poly1305 keyed from block 0.
    fn payload_cipher(&self, seq: u32) -> (ChaCha20Legacy, Poly1305) {
        let mut cipher = ChaCha20Legacy::new(&(*self.k_2).into(), &Self::nonce(seq));
        let mut block_0 = Zeroizing::new([0u8; 64]);
        cipher.apply_keystream(&mut block_0[..]);

        let mut poly_key = poly1305::Key::default();
        poly_key.copy_from_slice(&block_0[..32]);
        let mac = Poly1305::new(&poly_key);
        zeroize::Zeroize::zeroize(poly_key.as_mut_slice());
        (cipher, mac)
    }

    fn length_cipher(&self, seq: u32) -> ChaCha20Legacy {
        ChaCha20Legacy::new(&(*self.k_1).into(), &Self::nonce(seq))
    }
}

impl ChaChaPolyKey for ChaChaPoly {
    fn decrypt_length(&self, seq: u32, encrypted: [u8; 4]) -> [u8; 4] {
        let mut length = encrypted;
        self.length_cipher(seq).apply_keystream(&mut length);
        length
    }

    fn seal_in_place(&self, seq: u32, packet: &mut [u8]) -> [u8; 16] {
        let Some((length, body)) = packet.split_first_chunk_mut::<4>() else {
            // A packet always starts with its 4-byte length; anything shorter is a caller
            // bug. Answer as the `ring` provider does: nothing readable, a refused tag.
            packet.fill(0);
            return [0; 16];
        };
        self.length_cipher(seq).apply_keystream(length);

        let (mut cipher, mac) = self.payload_cipher(seq);
        cipher.apply_keystream(body);
        mac.compute_unpadded(packet).into()
    }

    fn open_in_place(
        &self,
        seq: u32,
        packet: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), Unauthentic> {
        if packet.len() < 4 {
            // Shorter than its own length field: not a packet, as `ring` also decides.
            return Err(Unauthentic);
        }
        let (mut cipher, mac) = self.payload_cipher(seq);

        // Authenticate first: nothing is decrypted unless the tag matches.
        let expected = mac.compute_unpadded(packet);
        if !constant_time_eq(&expected, tag) {
            return Err(Unauthentic);
        }

        if let Some(body) = packet.get_mut(4..) {
            cipher.apply_keystream(body);
        }
        Ok(())
    }
}

/// Ed25519 (RFC 8032 section 5.1.7), with the same rules as `ring`: `S` must be below the
/// group order, and the check is the cofactorless one, as in OpenSSH.
fn verify_ed25519(public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(public) = <&[u8; 32]>::try_from(public) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return false;
    };
    key.verify(msg, &sig).is_ok()
}

/// RSA PKCS#1 v1.5 (RFC 8017 section 8.2.2) with SHA-256 or SHA-512, as `rsa-sha2-256`
/// and `rsa-sha2-512` use it (RFC 8332 section 3).
fn verify_rsa(n: &[u8], e: &[u8], hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
    let mut padded = [0u8; RSA_MAX_MODULUS_BYTES];
    let Some((n, e, sig)) = rsa_verify_inputs(n, e, sig, &mut padded) else {
        return false;
    };

    // The size bounds were checked above; these limits only restate them for the crate,
    // which also refuses an even modulus and an exponent that is even, below 3 or over
    // 2^33 - 1, as `ring` does.
    let n = rsa::BoxedUint::from_be_slice_vartime(n);
    let e = rsa::BoxedUint::from_be_slice_vartime(e);
    let Ok(key) = rsa::PublicKey::new_with_size_limits(n, e, 1024..=8192) else {
        return false;
    };

    match hash {
        HashAlg::Sha256 => {
            let scheme = rsa::Pkcs1v15Sign::new::<Sha256>();
            key.verify(scheme, &<Sha256 as sha2::Digest>::digest(msg), sig)
                .is_ok()
        }
        HashAlg::Sha512 => {
            let scheme = rsa::Pkcs1v15Sign::new::<Sha512>();
            key.verify(scheme, &<Sha512 as sha2::Digest>::digest(msg), sig)
                .is_ok()
        }
    }
}

/// ECDSA over P-256 with SHA-256 (RFC 5656 section 3.1.2, `ecdsa-sha2-nistp256`). Both
/// low and high `s` are accepted, as OpenSSH and `ring` do.
fn verify_ecdsa_p256(point: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    // RFC 5656 section 3.1 sends the uncompressed form; `ring` accepts nothing else.
    if point.len() != 65 || point.first() != Some(&0x04) {
        return false;
    }
    let Some(fixed) = ecdsa_fixed_signature(sig) else {
        return false;
    };
    let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
        return false;
    };
    // `from_slice` refuses r or s of zero or not below the group order.
    let Ok(sig) = p256::ecdsa::Signature::from_slice(&fixed) else {
        return false;
    };
    p256::ecdsa::signature::Verifier::verify(&key, msg, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chacha_keystream_layout() {
        // With an all-zero payload the ciphertext is the keystream itself, so the body
        // must equal K_2's stream from byte 64 (block 1) and the length K_1's from byte 0.
        let mut key = [0u8; 64];
        key[..32].fill(0x02);
        key[32..].fill(0x01);
        let seq = 0x0102_0304;
        let mut packet = [0u8; 4 + 64];
        RustCrypto
            .chacha20_poly1305(&key)
            .seal_in_place(seq, &mut packet);

        let nonce = ChaChaPoly::nonce(seq);
        assert_eq!(nonce.as_slice(), [0, 0, 0, 0, 1, 2, 3, 4]);
        let mut stream_2 = [0u8; 128];
        ChaCha20Legacy::new(&[0x02; 32].into(), &nonce).apply_keystream(&mut stream_2);
        let mut stream_1 = [0u8; 4];
        ChaCha20Legacy::new(&[0x01; 32].into(), &nonce).apply_keystream(&mut stream_1);
        assert_eq!(packet[..4], stream_1);
        assert_eq!(packet[4..], stream_2[64..]);
    }

    #[test]
    fn chacha_short_packets_do_not_panic() {
        let key = RustCrypto.chacha20_poly1305(&[3; 64]);
        let mut short = [1u8, 2, 3];
        assert_eq!(key.seal_in_place(0, &mut short), [0; 16]);
        assert_eq!(short, [0; 3]);
        assert_eq!(key.open_in_place(0, &mut short, &[0; 16]), Err(Unauthentic));
    }

    #[test]
    fn verify_refuses_garbage_without_panicking() {
        let msg = b"m";
        for sig in [&[][..], &[0u8; 3][..], &[0xffu8; 64][..], &[0u8; 2000][..]] {
            assert!(!RustCrypto.verify(VerifyKey::Ed25519(&[0; 32]), msg, sig));
            assert!(!RustCrypto.verify(VerifyKey::Ed25519(&[0; 5]), msg, sig));
            assert!(!RustCrypto.verify(VerifyKey::EcdsaP256(&[4; 65]), msg, sig));
            assert!(!RustCrypto.verify(VerifyKey::EcdsaP256(&[]), msg, sig));
            for n in [&[][..], &[0xff; 256][..], &[0xff; 1025][..]] {
                let key = VerifyKey::Rsa {
                    n,
                    e: &[1, 0, 1],
                    hash: HashAlg::Sha256,
                };
                assert!(!RustCrypto.verify(key, msg, sig));
            }
        }
    }
}
