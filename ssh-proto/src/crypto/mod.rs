//! The cryptography the protocol needs, behind one small trait.
//!
//! The protocol code reaches ciphers, MACs, hashes and signatures only through
//! [`CryptoProvider`], so a build can choose `ring` (the default, and the fast one) or a
//! pure-Rust provider for targets where `ring` does not build. Both implement the same
//! trait and the tests run against each and across the two.
//!
//! X25519, ML-KEM-768 and AES-CTR are not behind the trait: one pure-Rust implementation
//! of each serves both providers (see [`kem`] and [`ctr`]). Nor is ECDSA signing, which
//! [`crate::userkey`] does with the `p256` crate's RFC 6979 signer for both: `ring` signs
//! ECDSA only with nonces from its own system randomness.

use core::fmt;

pub mod ctr;
mod encoding;
pub mod kem;
#[cfg(feature = "ring")]
pub mod ring;
#[cfg(feature = "rustcrypto")]
pub mod rustcrypto;

/// A hash function the protocol uses: for exchange hashes, key derivation, HMAC and
/// RSA signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha512,
}

impl HashAlg {
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

/// A hash value or MAC tag of up to 64 bytes, kept on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    bytes: [u8; 64],
    len: u8,
}

impl Digest {
    /// Panics if `bytes` is longer than 64: only the providers call this, with the output
    /// of SHA-256 or SHA-512.
    pub fn new(bytes: &[u8]) -> Self {
        let mut out = [0u8; 64];
        out[..bytes.len()].copy_from_slice(bytes);
        Self {
            bytes: out,
            len: bytes.len() as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Authentication failed: the tag or MAC did not match. Deliberately carries no detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unauthentic;

/// A streaming hash.
pub trait Hasher: Send {
    fn update(&mut self, data: &[u8]);
    fn finish(self: Box<Self>) -> Digest;
}

/// A keyed HMAC. `parts` are fed in order, as if concatenated, so the sequence number
/// and the packet need not be copied together.
pub trait HmacKey: Send {
    fn sign(&self, parts: &[&[u8]]) -> Digest;
    /// Compares in constant time.
    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> Result<(), Unauthentic>;
}

/// AES-GCM with a 128- or 256-bit key (RFC 5647 as OpenSSH's `aes*-gcm@openssh.com`).
pub trait AesGcmKey: Send {
    /// Encrypts `data` in place and returns the 16-byte tag over `aad` and the ciphertext.
    fn seal_in_place(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16];
    /// Checks the tag, then decrypts in place. On failure `data` may hold garbage.
    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), Unauthentic>;
}

/// OpenSSH's `chacha20-poly1305@openssh.com` (OpenSSH PROTOCOL.chacha20poly1305): a
/// 64-byte key whose second half encrypts the packet length and whose first half
/// encrypts the payload and keys Poly1305.
pub trait ChaChaPolyKey: Send {
    /// Decrypts the 4-byte length field of the packet with sequence number `seq`.
    fn decrypt_length(&self, seq: u32, encrypted: [u8; 4]) -> [u8; 4];
    /// Encrypts `packet` (the 4-byte length then the rest) in place; returns the tag.
    fn seal_in_place(&self, seq: u32, packet: &mut [u8]) -> [u8; 16];
    /// Checks the tag over `packet` (length included), then decrypts `packet[4..]` in
    /// place. The length bytes are left as they were.
    fn open_in_place(&self, seq: u32, packet: &mut [u8], tag: &[u8; 16])
    -> Result<(), Unauthentic>;
}

/// A public key's parts, as the wire carries them, for signature verification.
#[derive(Clone, Copy, Debug)]
pub enum VerifyKey<'a> {
    /// 32 bytes.
    Ed25519(&'a [u8]),
    /// Modulus and public exponent as unsigned big-endian magnitudes.
    Rsa {
        n: &'a [u8],
        e: &'a [u8],
        hash: HashAlg,
    },
    /// An uncompressed SEC1 point (0x04 || x || y), with SHA-256.
    EcdsaP256(&'a [u8]),
}

/// The cryptography provider. Implementations are stateless factories; keys they return
/// carry their own state.
pub trait CryptoProvider: Send + Sync + fmt::Debug {
    /// A short name for logs and benchmark reports, e.g. `ring`.
    fn name(&self) -> &'static str;

    fn hash(&self, alg: HashAlg) -> Box<dyn Hasher>;

    fn hmac(&self, alg: HashAlg, key: &[u8]) -> Box<dyn HmacKey>;

    /// `key` is 16 or 32 bytes; any other length is a caller bug and returns `None`.
    fn aes_gcm(&self, key: &[u8]) -> Option<Box<dyn AesGcmKey>>;

    fn chacha20_poly1305(&self, key: &[u8; 64]) -> Box<dyn ChaChaPolyKey>;

    /// The Ed25519 public key for a 32-byte seed (RFC 8032 section 5.1.5).
    fn ed25519_public(&self, seed: &[u8; 32]) -> [u8; 32];

    /// An Ed25519 signature (RFC 8032 section 5.1.6).
    fn ed25519_sign(&self, seed: &[u8; 32], msg: &[u8]) -> [u8; 64];

    /// Verifies `sig` (the raw signature, as inside the SSH signature blob) over `msg`.
    /// For ECDSA, `sig` is the SSH encoding: `mpint r` then `mpint s` (RFC 5656 section
    /// 3.1.2). For RSA, PKCS#1 v1.5 with the key's hash (RFC 8332).
    fn verify(&self, key: VerifyKey<'_>, msg: &[u8], sig: &[u8]) -> bool;

    /// An RSA PKCS#1 v1.5 signature over `msg` with `hash` (RFC 8017 section 8.2.1, as
    /// `rsa-sha2-256` and `rsa-sha2-512` use it, RFC 8332 section 3): exactly as long as the
    /// modulus. PKCS#1 v1.5 is deterministic, so every provider returns the same bytes.
    ///
    /// `None` if the key is outside 2048 to 8192 bits or its parts do not belong together.
    /// The caller checks the key when it loads it, so `None` is not expected in use.
    ///
    /// The default is the `rsa` crate's signer, which every build has (it also generates
    /// RSA keys); a provider overrides it with its own where it has one.
    fn rsa_sign(&self, key: &RsaPrivateParts<'_>, hash: HashAlg, msg: &[u8]) -> Option<Vec<u8>> {
        rsa_sign_portable(key, hash, msg)
    }
}

/// An RSA private key's parts, each an unsigned big-endian magnitude (leading zeros
/// allowed), for [`CryptoProvider::rsa_sign`].
///
/// OpenSSH key files hold `n`, `e`, `d`, `iqmp`, `p` and `q`; `dp` and `dq` are derived
/// when the key is loaded, because `ring` wants all eight and the arithmetic to derive
/// them belongs to a big-number library. `Debug` shows only the modulus size.
#[derive(Clone, Copy)]
pub struct RsaPrivateParts<'a> {
    pub n: &'a [u8],
    pub e: &'a [u8],
    pub d: &'a [u8],
    pub p: &'a [u8],
    pub q: &'a [u8],
    /// `d mod (p - 1)`.
    pub dp: &'a [u8],
    /// `d mod (q - 1)`.
    pub dq: &'a [u8],
    /// `q^-1 mod p`, OpenSSH's `iqmp`.
    pub iqmp: &'a [u8],
}

impl fmt::Debug for RsaPrivateParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = strip_leading_zeros(self.n);
        f.debug_struct("RsaPrivateParts")
            .field("modulus_bytes", &n.len())
            .finish_non_exhaustive()
    }
}

/// The `rsa` crate's PKCS#1 v1.5 signer, for the pure-Rust provider and for the keys that
/// `ring` refuses to sign with (see the `ring` provider).
///
/// Without its `getrandom` feature the crate signs without blinding. Its private-key
/// arithmetic is constant-time Montgomery exponentiation from `crypto-bigint`, as `ring`'s
/// is, and `ring` does not blind either; blinding would need randomness that a signature
/// with deterministic padding otherwise has no use for.
pub(crate) fn rsa_sign_portable(
    key: &RsaPrivateParts<'_>,
    hash: HashAlg,
    msg: &[u8],
) -> Option<Vec<u8>> {
    use rsa::BoxedUint;
    use sha2::{Digest as _, Sha256, Sha512};

    let n = strip_leading_zeros(key.n);
    if !(256..=1024).contains(&n.len()) {
        return None;
    }

    // The modulus and exponent are public; the secret parts get the modulus's precision
    // rather than one chosen by their own length.
    let n = BoxedUint::from_be_slice_vartime(n);
    let e = BoxedUint::from_be_slice_vartime(strip_leading_zeros(key.e));
    let precision = n.bits_precision();
    let secret = |v: &[u8]| BoxedUint::from_be_slice(strip_leading_zeros(v), precision).ok();
    let (d, p, q) = (secret(key.d)?, secret(key.p)?, secret(key.q)?);

    // `from_components` checks that p * q = n and that d inverts e modulo p - 1 and q - 1.
    let private = rsa::PrivateKey::from_components(n, e, d, vec![p, q]).ok()?;
    match hash {
        HashAlg::Sha256 => private
            .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg))
            .ok(),
        HashAlg::Sha512 => private
            .sign(rsa::Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg))
            .ok(),
    }
}

fn strip_leading_zeros(mut bytes: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// Hashes `parts` in one call.
pub fn digest(provider: &dyn CryptoProvider, alg: HashAlg, parts: &[&[u8]]) -> Digest {
    let mut h = provider.hash(alg);
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// The provider a default build uses: `ring` when enabled, else the pure-Rust one.
pub fn default_provider() -> &'static dyn CryptoProvider {
    #[cfg(feature = "ring")]
    {
        &ring::Ring
    }
    #[cfg(all(not(feature = "ring"), feature = "rustcrypto"))]
    {
        &rustcrypto::RustCrypto
    }
}

/// Every provider compiled in, for tests and benchmarks that run against each.
#[expect(
    clippy::vec_init_then_push,
    reason = "each provider is behind its own feature"
)]
pub fn all_providers() -> Vec<&'static dyn CryptoProvider> {
    let mut all: Vec<&'static dyn CryptoProvider> = Vec::new();
    #[cfg(feature = "ring")]
    all.push(&ring::Ring);
    #[cfg(feature = "rustcrypto")]
    all.push(&rustcrypto::RustCrypto);
    all
}

#[cfg(not(any(feature = "ring", feature = "rustcrypto")))]
compile_error!("ssh-proto needs a cryptography provider: enable `ring` or `rustcrypto`");
