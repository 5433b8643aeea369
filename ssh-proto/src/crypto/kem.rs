//! The key-agreement primitives behind `curve25519-sha256` (RFC 8731) and
//! `mlkem768x25519-sha256` (draft-ietf-sshm-mlkem-hybrid-kex), common to both providers.
//!
//! Every function here is deterministic: the protocol core owns no source of randomness,
//! so its caller hands in the random bytes (the X25519 scalar, the ML-KEM seeds `d` and
//! `z`, the ML-KEM message `m`). That also makes the known-answer tests of RFC 7748 and
//! FIPS 203 direct.
//!
//! Whatever comes from the peer is checked here and a bad value returns [`KexFailure`],
//! never a panic: a public key or ciphertext of the wrong length, an ML-KEM encapsulation
//! key that fails the FIPS 203 section 7.2 modulus check, and an X25519 exchange whose
//! result is all zero.

use core::fmt;

use ml_kem::array::Array;
use ml_kem::kem::{Decapsulate, KeyExport};
use ml_kem::{B32, Seed};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

/// X25519 scalars, public values and shared secrets are all 32 bytes (RFC 7748 section 5).
pub const X25519_LEN: usize = 32;

/// An ML-KEM-768 encapsulation key: 384 k + 32 bytes with k = 3 (FIPS 203 section 8).
pub const MLKEM768_PUBLIC_LEN: usize = 1184;

/// An ML-KEM-768 ciphertext: 32 (d_u k + d_v) bytes with d_u = 10, d_v = 4, k = 3
/// (FIPS 203 section 8).
pub const MLKEM768_CIPHERTEXT_LEN: usize = 1088;

/// A shared secret from X25519 or ML-KEM, wiped when dropped.
pub type SharedSecret = Zeroizing<[u8; 32]>;

/// An ML-KEM-768 ciphertext, on the heap: it is big and made once per key exchange.
pub type MlKem768Ciphertext = Box<[u8; MLKEM768_CIPHERTEXT_LEN]>;

/// The peer's value was malformed or gave an all-zero shared secret.
///
/// The text says which check failed, for the disconnect message and the logs; it never
/// holds key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KexFailure(pub &'static str);

impl fmt::Display for KexFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for KexFailure {}

/// The X25519 public value for `secret`: X25519(secret, 9) (RFC 7748 section 6.1).
///
/// The scalar is clamped as RFC 7748 section 5 says, so any 32 random bytes will do.
pub fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    // `StaticSecret` wipes its copy of the scalar when it drops.
    let secret = StaticSecret::from(*secret);
    PublicKey::from(&secret).to_bytes()
}

/// The X25519 shared secret between our `secret` and the peer's public value.
///
/// Fails if the peer's value is not 32 bytes, or if the result is all zero: RFC 7748
/// section 6.1 lets a party check for that, and RFC 8731 section 3 requires SSH to abort,
/// because a peer that sends a low-order point would otherwise force a secret that anyone
/// can compute.
pub fn x25519_shared(secret: &[u8; 32], peer_public: &[u8]) -> Result<SharedSecret, KexFailure> {
    let peer: [u8; X25519_LEN] = peer_public
        .try_into()
        .map_err(|_| KexFailure("X25519 public key is not 32 bytes"))?;

    let secret = StaticSecret::from(*secret);
    let shared = secret.diffie_hellman(&PublicKey::from(peer));
    let shared = Zeroizing::new(shared.to_bytes());

    // OR of every byte, so the time taken does not depend on where a non-zero byte is.
    if shared.iter().fold(0u8, |acc, b| acc | b) == 0 {
        return Err(KexFailure("X25519 shared secret is all zero"));
    }
    Ok(shared)
}

/// An ML-KEM-768 decapsulation key.
///
/// The key is wiped when dropped (the `ml-kem` crate's `zeroize` feature), and `Debug`
/// prints nothing of it.
pub struct MlKem768Secret(ml_kem::ml_kem_768::DecapsulationKey);

impl fmt::Debug for MlKem768Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MlKem768Secret(..)")
    }
}

/// FIPS 203 `ML-KEM.KeyGen_internal(d, z)` (algorithm 16): the decapsulation key and the
/// encoded encapsulation key, which goes to the peer.
///
/// `d` and `z` must be fresh random bytes from the caller. The same pair always gives the
/// same keys, which is what the FIPS 203 known-answer tests check.
pub fn mlkem768_keygen(d: &[u8; 32], z: &[u8; 32]) -> (MlKem768Secret, Box<[u8; 1184]>) {
    // The 64-byte seed form is d || z (FIPS 203 section 7.1 and its seed encoding).
    let mut seed = Seed::default();
    seed[..32].copy_from_slice(d);
    seed[32..].copy_from_slice(z);

    let key = ml_kem::ml_kem_768::DecapsulationKey::from_seed(seed);
    seed.as_mut_slice().zeroize();

    let mut public = Box::new([0u8; MLKEM768_PUBLIC_LEN]);
    public.copy_from_slice(key.encapsulation_key().to_bytes().as_slice());
    (MlKem768Secret(key), public)
}

/// FIPS 203 `ML-KEM.Encaps_internal(ek, m)` (algorithm 17) against the peer's encapsulation
/// key: the ciphertext to send back and the shared secret.
///
/// The peer's key goes through the input checks of FIPS 203 section 7.2 first: it must be
/// 1184 bytes, and every coefficient it encodes must be below q (the modulus check), else
/// this returns [`KexFailure`]. `m` must be fresh random bytes from the caller.
pub fn mlkem768_encapsulate(
    public: &[u8],
    m: &[u8; 32],
) -> Result<(MlKem768Ciphertext, SharedSecret), KexFailure> {
    let encoded = Array::try_from(public)
        .map_err(|_| KexFailure("ML-KEM-768 public key is not 1184 bytes"))?;
    let key = ml_kem::ml_kem_768::EncapsulationKey::new(&encoded)
        .map_err(|_| KexFailure("ML-KEM-768 public key fails the FIPS 203 modulus check"))?;

    let mut m = B32::from(*m);
    let (ciphertext, mut shared) = key.encapsulate_deterministic(&m);
    m.as_mut_slice().zeroize();

    let mut out = Box::new([0u8; MLKEM768_CIPHERTEXT_LEN]);
    out.copy_from_slice(ciphertext.as_slice());
    Ok((out, take_shared(&mut shared)))
}

/// FIPS 203 `ML-KEM.Decaps_internal(dk, c)` (algorithm 18): the shared secret for the
/// peer's ciphertext.
///
/// Only the length is checked (FIPS 203 section 7.3, the ciphertext type check). A
/// ciphertext of the right length that was tampered with does not fail here: ML-KEM's
/// implicit rejection returns a pseudorandom secret instead, so the key exchange fails
/// later when the exchange hashes differ, and no error reveals what went wrong.
pub fn mlkem768_decapsulate(
    secret: &MlKem768Secret,
    ciphertext: &[u8],
) -> Result<SharedSecret, KexFailure> {
    let mut shared = secret
        .0
        .decapsulate_slice(ciphertext)
        .map_err(|_| KexFailure("ML-KEM-768 ciphertext is not 1088 bytes"))?;
    Ok(take_shared(&mut shared))
}

/// Moves an ML-KEM shared key into a wiped-on-drop array and wipes the original.
fn take_shared(shared: &mut ml_kem::SharedKey) -> SharedSecret {
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(shared.as_slice());
    shared.as_mut_slice().zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x25519_agrees_both_ways() {
        let a = [0x11u8; 32];
        let b = [0x22u8; 32];
        let ab = x25519_shared(&a, &x25519_public(&b)).unwrap();
        let ba = x25519_shared(&b, &x25519_public(&a)).unwrap();
        assert_eq!(*ab, *ba);
    }

    #[test]
    fn x25519_rejects_bad_peers() {
        let a = [0x11u8; 32];
        assert!(x25519_shared(&a, &[9u8; 31]).is_err());
        assert!(x25519_shared(&a, &[9u8; 33]).is_err());
        assert!(x25519_shared(&a, &[]).is_err());
        // u = 0 and u = 1 are points of small order: every scalar maps them to zero.
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(
            x25519_shared(&a, &[0u8; 32]),
            Err(KexFailure("X25519 shared secret is all zero"))
        );
        assert!(x25519_shared(&a, &one).is_err());
    }

    #[test]
    fn mlkem_round_trip() {
        let (secret, public) = mlkem768_keygen(&[1; 32], &[2; 32]);
        let (ct, k1) = mlkem768_encapsulate(&public[..], &[3; 32]).unwrap();
        let k2 = mlkem768_decapsulate(&secret, &ct[..]).unwrap();
        assert_eq!(*k1, *k2);

        // Same inputs, same outputs: the caller's randomness is the only randomness.
        let (_, again) = mlkem768_keygen(&[1; 32], &[2; 32]);
        assert_eq!(public, again);
    }

    #[test]
    fn mlkem_implicit_rejection_is_silent() {
        let (secret, public) = mlkem768_keygen(&[4; 32], &[5; 32]);
        let (mut ct, k) = mlkem768_encapsulate(&public[..], &[6; 32]).unwrap();
        ct[0] ^= 1;
        let other = mlkem768_decapsulate(&secret, &ct[..]).unwrap();
        assert_ne!(*k, *other);
    }

    #[test]
    fn mlkem_rejects_bad_lengths_and_keys() {
        let (secret, public) = mlkem768_keygen(&[7; 32], &[8; 32]);
        assert!(mlkem768_encapsulate(&public[..1183], &[0; 32]).is_err());
        assert!(mlkem768_encapsulate(&[0u8; 1185], &[0; 32]).is_err());
        assert!(mlkem768_decapsulate(&secret, &[0u8; 1087]).is_err());
        assert!(mlkem768_decapsulate(&secret, &[0u8; 1089]).is_err());

        // Coefficients are 12-bit values; 0xfff is above q = 3329, so the modulus check
        // of FIPS 203 section 7.2 must fail.
        let mut bad = *public;
        bad[0] = 0xff;
        bad[1] |= 0x0f;
        assert_eq!(
            mlkem768_encapsulate(&bad[..], &[0; 32]).map(|_| ()),
            Err(KexFailure(
                "ML-KEM-768 public key fails the FIPS 203 modulus check"
            ))
        );
    }

    #[test]
    fn secret_debug_is_opaque() {
        let (secret, _) = mlkem768_keygen(&[9; 32], &[10; 32]);
        assert_eq!(format!("{secret:?}"), "MlKem768Secret(..)");
    }
}
