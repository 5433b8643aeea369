//! The default provider, built on `ring`: the fastest AES-GCM we have (hand-written
//! assembly with AES-NI and carry-less multiply), plus ChaCha20-Poly1305 in OpenSSH's
//! construction, HMAC, SHA-2, Ed25519, RSA signing, and RSA and P-256 verification.
//!
//! Everything that touches packet data works in place and allocates nothing per call.
//! Signature verification gets peer data (keys and signatures) and answers `false` for
//! anything malformed; nothing here panics on what a peer sends.
//!
//! `ring` does not wipe its key schedules when they drop; that is a property of the
//! crate, not something this wrapper can change. The pure-Rust provider does wipe them.

use super::encoding::{
    RSA_MAX_MODULUS_BYTES, constant_time_eq, ecdsa_fixed_signature, rsa_verify_inputs,
    strip_leading_zeros,
};
use ring::aead::chacha20_poly1305_openssh as openssh;
use ring::{aead, digest, hmac, signature};

use crate::crypto::{
    AesGcmKey, ChaChaPolyKey, CryptoProvider, Digest, HashAlg, Hasher, HmacKey, RsaPrivateParts,
    Unauthentic, VerifyKey, rsa_sign_portable,
};

/// The `ring` provider. Stateless: every key it returns carries its own state.
#[derive(Debug, Clone, Copy)]
pub struct Ring;

impl CryptoProvider for Ring {
    fn name(&self) -> &'static str {
        "ring"
    }

    fn hash(&self, alg: HashAlg) -> Box<dyn Hasher> {
        Box::new(RingHasher(digest::Context::new(digest_alg(alg))))
    }

    fn hmac(&self, alg: HashAlg, key: &[u8]) -> Box<dyn HmacKey> {
        let alg = match alg {
            HashAlg::Sha256 => hmac::HMAC_SHA256,
            HashAlg::Sha512 => hmac::HMAC_SHA512,
        };
        Box::new(RingHmac(hmac::Key::new(alg, key)))
    }

    fn aes_gcm(&self, key: &[u8]) -> Option<Box<dyn AesGcmKey>> {
        let alg = match key.len() {
            16 => &aead::AES_128_GCM,
            32 => &aead::AES_256_GCM,
            _ => return None,
        };
        let key = aead::UnboundKey::new(alg, key).ok()?;
        Some(Box::new(RingGcm(aead::LessSafeKey::new(key))))
    }

    fn chacha20_poly1305(&self, key: &[u8; 64]) -> Box<dyn ChaChaPolyKey> {
        // `ring` takes the 64 bytes as OpenSSH lays them out: K_2 (payload and Poly1305
        // key) first, K_1 (length) second.
        Box::new(RingChaCha {
            seal: openssh::SealingKey::new(key),
            open: openssh::OpeningKey::new(key),
        })
    }

    fn ed25519_public(&self, seed: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(signature::KeyPair::public_key(&ed25519_pair(seed)).as_ref());
        out
    }

    fn ed25519_sign(&self, seed: &[u8; 32], msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(ed25519_pair(seed).sign(msg).as_ref());
        out
    }

    fn verify(&self, key: VerifyKey<'_>, msg: &[u8], sig: &[u8]) -> bool {
        match key {
            VerifyKey::Ed25519(public) => {
                // `ring` checks both lengths and rejects a non-canonical `S`.
                signature::UnparsedPublicKey::new(&signature::ED25519, public)
                    .verify(msg, sig)
                    .is_ok()
            }
            VerifyKey::Rsa { n, e, hash } => verify_rsa(n, e, hash, msg, sig),
            VerifyKey::EcdsaP256(point) => verify_ecdsa_p256(point, msg, sig),
        }
    }

    fn rsa_sign(&self, key: &RsaPrivateParts<'_>, hash: HashAlg, msg: &[u8]) -> Option<Vec<u8>> {
        sign_rsa(key, hash, msg)
    }
}

fn digest_alg(alg: HashAlg) -> &'static digest::Algorithm {
    match alg {
        HashAlg::Sha256 => &digest::SHA256,
        HashAlg::Sha512 => &digest::SHA512,
    }
}

/// The key pair for an Ed25519 seed (RFC 8032 section 5.1.5).
#[expect(
    clippy::expect_used,
    reason = "the seed's type rules out the only failure"
)]
fn ed25519_pair(seed: &[u8; 32]) -> signature::Ed25519KeyPair {
    // `from_seed_unchecked` fails only for a seed that is not 32 bytes, which the type
    // rules out. "Unchecked" means there is no public key to compare against.
    signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .expect("ring accepts every 32-byte Ed25519 seed")
}

struct RingHasher(digest::Context);

impl Hasher for RingHasher {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finish(self: Box<Self>) -> Digest {
        Digest::new(self.0.finish().as_ref())
    }
}

struct RingHmac(hmac::Key);

impl RingHmac {
    fn tag(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(part);
        }
        ctx.sign()
    }
}

impl HmacKey for RingHmac {
    fn sign(&self, parts: &[&[u8]]) -> Digest {
        Digest::new(self.tag(parts).as_ref())
    }

    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> Result<(), Unauthentic> {
        // `ring::hmac::verify` takes one contiguous input; the parts (sequence number and
        // packet) are not contiguous, so compute the tag and compare it here.
        if constant_time_eq(self.tag(parts).as_ref(), tag) {
            Ok(())
        } else {
            Err(Unauthentic)
        }
    }
}

struct RingGcm(aead::LessSafeKey);

impl AesGcmKey for RingGcm {
    fn seal_in_place(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        // The nonce is unique per key because the SSH layer derives it from a counter that
        // never repeats within one key (RFC 5647 section 7.1).
        let nonce = aead::Nonce::assume_unique_for_key(*nonce);
        match self
            .0
            .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), data)
        {
            Ok(tag) => tag_bytes(tag.as_ref()),
            Err(_) => {
                // Only an input over GCM's limit of about 64 GiB fails, far beyond any SSH
                // packet. Should it happen, send nothing readable: wipe the plaintext and
                // give a tag that the peer will refuse.
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
        let nonce = aead::Nonce::assume_unique_for_key(*nonce);
        self.0
            .open_in_place_separate_tag(
                nonce,
                aead::Aad::from(aad),
                aead::Tag::from(*tag),
                data,
                0..,
            )
            .map(|_| ())
            .map_err(|_| Unauthentic)
    }
}

fn tag_bytes(tag: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    if let Some(head) = tag.get(..16) {
        out.copy_from_slice(head);
    }
    out
}

struct RingChaCha {
    seal: openssh::SealingKey,
    open: openssh::OpeningKey,
}

impl ChaChaPolyKey for RingChaCha {
    fn decrypt_length(&self, seq: u32, encrypted: [u8; 4]) -> [u8; 4] {
        self.open.decrypt_packet_length(seq, encrypted)
    }

    fn seal_in_place(&self, seq: u32, packet: &mut [u8]) -> [u8; 16] {
        if packet.len() < openssh::PACKET_LENGTH_LEN {
            // A packet always starts with its 4-byte length; anything shorter is a caller
            // bug. `ring` would panic, so answer as for a failed seal: nothing readable
            // and a tag the peer will refuse.
            packet.fill(0);
            return [0; 16];
        }
        let mut tag = [0u8; openssh::TAG_LEN];
        self.seal.seal_in_place(seq, packet, &mut tag);
        tag
    }

    fn open_in_place(
        &self,
        seq: u32,
        packet: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), Unauthentic> {
        // `ring` checks the tag before it decrypts, and fails a packet shorter than its
        // length field instead of panicking.
        self.open
            .open_in_place(seq, packet, tag)
            .map(|_| ())
            .map_err(|_| Unauthentic)
    }
}

/// RSA PKCS#1 v1.5 (RFC 8017 section 8.2.2) with SHA-256 or SHA-512, as `rsa-sha2-256`
/// and `rsa-sha2-512` use it (RFC 8332 section 3).
fn verify_rsa(n: &[u8], e: &[u8], hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
    // `ring` wants minimal encodings; a caller that kept an mpint's sign byte is harmless.
    let mut padded = [0u8; RSA_MAX_MODULUS_BYTES];
    let Some((n, e, sig)) = rsa_verify_inputs(n, e, sig, &mut padded) else {
        return false;
    };

    let params = match hash {
        HashAlg::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        HashAlg::Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
    };
    signature::RsaPublicKeyComponents { n, e }
        .verify(params, msg, sig)
        .is_ok()
}

/// RSA PKCS#1 v1.5 signing with SHA-256 or SHA-512 (RFC 8332 section 3).
///
/// `ring` signs with keys of 2048 to 4096 bits whose primes are each half the modulus and a
/// multiple of 512 bits, with an exponent of at least 65537: every key `ssh-keygen` makes
/// at its usual sizes. Other keys (8192 bits, 2560 bits, e = 3) go to the `rsa` crate;
/// PKCS#1 v1.5 is deterministic, so the signature is the same bytes either way.
///
/// `ring` takes a `&dyn SecureRandom` for signing, a sealed trait that the caller's
/// [`crate::config::Rng`] cannot implement. Its PKCS#1 v1.5 padding never reads it (only
/// PSS salts do), so a `SystemRandom` is passed to satisfy the signature and no operating
/// system randomness is drawn.
fn sign_rsa(key: &RsaPrivateParts<'_>, hash: HashAlg, msg: &[u8]) -> Option<Vec<u8>> {
    let components = ring::rsa::KeyPairComponents {
        public_key: ring::rsa::PublicKeyComponents {
            n: strip_leading_zeros(key.n),
            e: strip_leading_zeros(key.e),
        },
        d: strip_leading_zeros(key.d),
        p: strip_leading_zeros(key.p),
        q: strip_leading_zeros(key.q),
        dP: strip_leading_zeros(key.dp),
        dQ: strip_leading_zeros(key.dq),
        qInv: strip_leading_zeros(key.iqmp),
    };
    let Ok(pair) = signature::RsaKeyPair::from_components(&components) else {
        return rsa_sign_portable(key, hash, msg);
    };

    let encoding = match hash {
        HashAlg::Sha256 => &signature::RSA_PKCS1_SHA256,
        HashAlg::Sha512 => &signature::RSA_PKCS1_SHA512,
    };
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(encoding, &ring::rand::SystemRandom::new(), msg, &mut sig)
        .ok()?;
    Some(sig)
}

/// ECDSA over P-256 with SHA-256 (RFC 5656 section 3.1.2, `ecdsa-sha2-nistp256`).
fn verify_ecdsa_p256(point: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    // RFC 5656 section 3.1 sends the uncompressed form; refuse the compressed one so both
    // providers accept exactly the same keys.
    if point.len() != 65 || point.first() != Some(&0x04) {
        return false;
    }
    let Some(fixed) = ecdsa_fixed_signature(sig) else {
        return false;
    };
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(msg, &fixed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chacha_short_packets_do_not_panic() {
        let key = Ring.chacha20_poly1305(&[3; 64]);
        let mut short = [1u8, 2, 3];
        assert_eq!(key.seal_in_place(0, &mut short), [0; 16]);
        assert_eq!(short, [0; 3]);
        assert_eq!(key.open_in_place(0, &mut short, &[0; 16]), Err(Unauthentic));
    }

    #[test]
    fn verify_refuses_garbage_without_panicking() {
        let msg = b"m";
        for sig in [&[][..], &[0u8; 3][..], &[0xffu8; 64][..], &[0u8; 2000][..]] {
            assert!(!Ring.verify(VerifyKey::Ed25519(&[0; 32]), msg, sig));
            assert!(!Ring.verify(VerifyKey::Ed25519(&[0; 5]), msg, sig));
            assert!(!Ring.verify(VerifyKey::EcdsaP256(&[4; 65]), msg, sig));
            assert!(!Ring.verify(VerifyKey::EcdsaP256(&[]), msg, sig));
            for n in [&[][..], &[0xff; 256][..], &[0xff; 1025][..]] {
                let key = VerifyKey::Rsa {
                    n,
                    e: &[1, 0, 1],
                    hash: HashAlg::Sha256,
                };
                assert!(!Ring.verify(key, msg, sig));
            }
        }
    }
}
