//! Public host keys, their signatures, and the server's own host key.
//!
//! A key travels as a blob (RFC 4253 section 6.6): `string key-type` and then fields that
//! depend on the type. Three types are understood:
//!
//! | blob name | fields | defined in |
//! |---|---|---|
//! | `ssh-ed25519` | `string` 32-byte public key | RFC 8709 section 4 |
//! | `ssh-rsa` | `mpint e`, `mpint n` | RFC 4253 section 6.6 |
//! | `ecdsa-sha2-nistp256` | `string "nistp256"`, `string` Q | RFC 5656 section 3.1 |
//!
//! A signature is a blob too: `string signature-algorithm`, `string signature`. The
//! algorithm must be the one negotiated in the key exchange; RSA keys sign with SHA-256 or
//! SHA-512 (RFC 8332), and the SHA-1 `ssh-rsa` signature algorithm is refused.
//!
//! Every check that needs no cryptography happens before the provider is called, so a
//! hostile key (an 8193-bit modulus, a malformed point) costs a parse and nothing more.
//! Parsing is strict: a blob either is the one encoding of a key we accept or it is an
//! error, so two keys compare equal exactly when their blobs do.

use core::fmt;

use zeroize::Zeroizing;

use crate::base64;
use crate::crypto::{self, CryptoProvider, HashAlg, VerifyKey};
use crate::wire::{Reader, WireError, Writer};

const ED25519: &str = "ssh-ed25519";
const RSA: &str = "ssh-rsa";
const ECDSA_P256: &str = "ecdsa-sha2-nistp256";
const NISTP256: &[u8] = b"nistp256";

/// The smallest RSA modulus accepted, in bits: OpenSSH's floor
/// (`SSH_RSA_MINIMUM_MODULUS_SIZE`), so every key an OpenSSH client accepts works here.
pub const RSA_MIN_BITS: usize = 1024;

/// The smallest RSA modulus whose signatures are checked, in bits. Smaller keys from
/// [`RSA_MIN_BITS`] up still parse, so they can be listed, fingerprinted and compared with
/// `known_hosts`, but a signature from one is refused with [`KeyError::WeakRsaKey`] rather
/// than verified. This plays the part of OpenSSH's `RequiredRSASize` (whose default is
/// 1024), set to 2048 because both providers' RSA code (ring's `RSA_PKCS1_2048_8192_*` and
/// the same floor in the RustCrypto provider) refuses smaller moduli, and a clear error
/// beats an "incorrect signature" that looks like an attack.
pub const RSA_MIN_VERIFY_BITS: usize = 2048;

/// The largest RSA modulus accepted, in bits. Larger keys buy nothing and make every
/// verification slower, and a peer can choose the size; larger moduli are refused before
/// any arithmetic.
pub const RSA_MAX_BITS: usize = 8192;

/// The largest RSA public exponent accepted: 2^33 - 1. Both providers' RSA code (ring and
/// the `rsa` crate) refuse larger exponents, so refusing them at parse gives one answer
/// whichever provider runs, and says why. Every deployed key uses 65537; OpenSSH itself
/// leaves the limit to its cryptography library.
pub const RSA_MAX_EXPONENT: u64 = (1 << 33) - 1;

/// A signature algorithm for host keys and public key authentication, as negotiated in
/// KEXINIT's `server_host_key_algorithms` (RFC 4253 section 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlg {
    /// `ssh-ed25519` (RFC 8709).
    Ed25519,
    /// `rsa-sha2-256` (RFC 8332).
    RsaSha256,
    /// `rsa-sha2-512` (RFC 8332).
    RsaSha512,
    /// `ecdsa-sha2-nistp256` (RFC 5656).
    EcdsaP256,
}

impl SignatureAlg {
    /// Every algorithm, in our order of preference.
    pub const ALL: [Self; 4] = [
        Self::Ed25519,
        Self::EcdsaP256,
        Self::RsaSha512,
        Self::RsaSha256,
    ];

    /// The name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => ED25519,
            Self::RsaSha256 => "rsa-sha2-256",
            Self::RsaSha512 => "rsa-sha2-512",
            Self::EcdsaP256 => ECDSA_P256,
        }
    }

    /// The algorithm with this wire name. `ssh-rsa` (RSA with SHA-1) is not one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The blob name of the keys that sign with this algorithm.
    pub const fn key_type(self) -> &'static str {
        match self {
            Self::Ed25519 => ED25519,
            Self::RsaSha256 | Self::RsaSha512 => RSA,
            Self::EcdsaP256 => ECDSA_P256,
        }
    }
}

impl fmt::Display for SignatureAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key blob or signature blob was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// A field is truncated or has the wrong length or encoding.
    Malformed(&'static str),
    /// Bytes follow the last field of a key or signature blob.
    TrailingBytes,
    /// A key type we do not support, escaped and cut to 64 bytes.
    UnsupportedKeyType(String),
    /// An RSA modulus outside [`RSA_MIN_BITS`]..=[`RSA_MAX_BITS`].
    RsaModulusSize { bits: usize },
    /// An RSA key under [`RSA_MIN_VERIFY_BITS`] was asked to verify a signature.
    WeakRsaKey { bits: usize },
    /// An RSA key no RSA key pair can have, or one we refuse (see [`RSA_MAX_EXPONENT`]).
    InvalidRsaKey(&'static str),
    /// An ECDSA blob for a curve other than `nistp256`, escaped and cut to 64 bytes.
    WrongCurve(String),
    /// The ECDSA point is not a 65-byte uncompressed point.
    InvalidEcdsaPoint,
    /// The signature uses `ssh-rsa`, RSA with SHA-1, which is refused (RFC 8332 section 5
    /// deprecates it; SHA-1 has known chosen-prefix collisions).
    Sha1Refused,
    /// The signature names an algorithm other than the negotiated one (RFC 4253 section
    /// 6.6 requires the same). Holds the name sent, escaped and cut to 64 bytes.
    AlgorithmMismatch { expected: SignatureAlg, got: String },
    /// The key cannot make signatures of the negotiated algorithm.
    KeyTypeMismatch {
        key_type: &'static str,
        alg: SignatureAlg,
    },
    /// The signature does not verify.
    BadSignature,
}

impl From<WireError> for KeyError {
    fn from(e: WireError) -> Self {
        Self::Malformed(e.what)
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "malformed key or signature: bad {what}"),
            Self::TrailingBytes => f.write_str("malformed key or signature: trailing bytes"),
            Self::UnsupportedKeyType(name) => write!(f, "unsupported key type \"{name}\""),
            Self::RsaModulusSize { bits } => write!(
                f,
                "RSA key of {bits} bits refused: \
                 only {RSA_MIN_BITS} to {RSA_MAX_BITS} bits are accepted"
            ),
            Self::WeakRsaKey { bits } => write!(
                f,
                "RSA key of {bits} bits is too weak: \
                 signatures need at least {RSA_MIN_VERIFY_BITS} bits"
            ),
            Self::InvalidRsaKey(why) => write!(f, "invalid RSA key: {why}"),
            Self::WrongCurve(name) => {
                write!(f, "ecdsa-sha2-nistp256 key names the curve \"{name}\"")
            }
            Self::InvalidEcdsaPoint => {
                f.write_str("invalid ECDSA key: not a 65-byte uncompressed P-256 point")
            }
            Self::Sha1Refused => {
                f.write_str("refused an ssh-rsa signature: RSA with SHA-1 is insecure")
            }
            Self::AlgorithmMismatch { expected, got } => write!(
                f,
                "signature algorithm \"{got}\" does not match the negotiated {expected}"
            ),
            Self::KeyTypeMismatch { key_type, alg } => {
                write!(f, "a {key_type} key cannot make {alg} signatures")
            }
            Self::BadSignature => f.write_str("incorrect signature"),
        }
    }
}

impl std::error::Error for KeyError {}

/// A public key parsed from its SSH blob.
///
/// Values made by [`PublicKey::from_blob`] passed every check. A key can also be built by
/// hand (the fields of an enum's variants are public), so [`PublicKey::verify`] checks the
/// RSA limits again rather than trust them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// The 32-byte public key (RFC 8032 section 5.1.5).
    Ed25519([u8; 32]),
    /// Exponent and modulus as big-endian magnitudes without leading zeros.
    Rsa { e: Vec<u8>, n: Vec<u8> },
    /// The uncompressed SEC1 point, `0x04 || x || y`. Whether it lies on the curve is
    /// checked by the provider when it verifies; parsing would need curve arithmetic.
    EcdsaP256(Box<[u8; 65]>),
}

impl PublicKey {
    /// Parses a key blob, refusing unknown types, out-of-range RSA keys, other curves and
    /// trailing bytes.
    pub fn from_blob(blob: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let key_type = r.string("key type")?;
        let key = match key_type {
            b"ssh-ed25519" => {
                let raw = r.string("ed25519 public key")?;
                let key = raw
                    .try_into()
                    .map_err(|_| KeyError::Malformed("ed25519 public key"))?;
                Self::Ed25519(key)
            }
            b"ssh-rsa" => {
                let e = r.mpint_positive("rsa exponent")?;
                let n = r.mpint_positive("rsa modulus")?;
                check_rsa(e, n)?;
                Self::Rsa {
                    e: e.to_vec(),
                    n: n.to_vec(),
                }
            }
            b"ecdsa-sha2-nistp256" => {
                let curve = r.string("ecdsa curve name")?;
                if curve != NISTP256 {
                    return Err(KeyError::WrongCurve(escaped(curve)));
                }
                let point: [u8; 65] = r
                    .string("ecdsa point")?
                    .try_into()
                    .map_err(|_| KeyError::InvalidEcdsaPoint)?;
                if point[0] != 0x04 {
                    return Err(KeyError::InvalidEcdsaPoint);
                }
                Self::EcdsaP256(Box::new(point))
            }
            other => return Err(KeyError::UnsupportedKeyType(escaped(other))),
        };
        r.finish().map_err(|_| KeyError::TrailingBytes)?;
        Ok(key)
    }

    /// The key blob, as it goes into KEX_ECDH_REPLY, USERAUTH_REQUEST and key files.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_string(self.key_type().as_bytes());
        match self {
            Self::Ed25519(key) => out.put_string(key),
            Self::Rsa { e, n } => {
                out.put_mpint(e);
                out.put_mpint(n);
            }
            Self::EcdsaP256(point) => {
                out.put_string(NISTP256);
                out.put_string(&point[..]);
            }
        }
        out
    }

    /// The blob's type name: `ssh-ed25519`, `ssh-rsa` or `ecdsa-sha2-nistp256`.
    pub fn key_type(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => ED25519,
            Self::Rsa { .. } => RSA,
            Self::EcdsaP256(_) => ECDSA_P256,
        }
    }

    /// Whether this key makes signatures of `alg`.
    pub fn supports(&self, alg: SignatureAlg) -> bool {
        self.key_type() == alg.key_type()
    }

    /// The key size as `ssh-keygen -l` prints it: the RSA modulus length, or 256.
    pub fn bits(&self) -> usize {
        match self {
            Self::Rsa { n, .. } => bit_len(n),
            Self::Ed25519(_) | Self::EcdsaP256(_) => 256,
        }
    }

    /// The type as OpenSSH names it to people ("ED25519 key fingerprint is ...").
    pub fn openssh_label(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ED25519",
            Self::Rsa { .. } => "RSA",
            Self::EcdsaP256(_) => "ECDSA",
        }
    }

    /// The fingerprint OpenSSH prints and `known_hosts` users compare: `SHA256:` and the
    /// unpadded base64 of the SHA-256 of the blob.
    pub fn fingerprint_sha256(&self, provider: &dyn CryptoProvider) -> String {
        let hash = crypto::digest(provider, HashAlg::Sha256, &[&self.to_blob()]);
        format!("SHA256:{}", base64::encode_unpadded(hash.as_bytes()))
    }

    /// Checks `signature_blob` (`string alg-name, string signature`, RFC 4253 section 6.6)
    /// over `data` with this key, for the negotiated algorithm `alg`.
    pub fn verify(
        &self,
        provider: &dyn CryptoProvider,
        alg: SignatureAlg,
        data: &[u8],
        signature_blob: &[u8],
    ) -> Result<(), KeyError> {
        let mut r = Reader::new(signature_blob);
        let name = r.string("signature algorithm name")?;
        let sig = r.string("signature")?;
        r.finish().map_err(|_| KeyError::TrailingBytes)?;

        if name != alg.name().as_bytes() {
            if name == RSA.as_bytes() {
                return Err(KeyError::Sha1Refused);
            }
            return Err(KeyError::AlgorithmMismatch {
                expected: alg,
                got: escaped(name),
            });
        }

        let verified = match (self, alg) {
            (Self::Ed25519(key), SignatureAlg::Ed25519) => {
                // RFC 8709 section 6: the signature is the 64-byte R || S.
                if sig.len() != 64 {
                    return Err(KeyError::Malformed("ed25519 signature length"));
                }
                provider.verify(VerifyKey::Ed25519(key), data, sig)
            }
            (Self::Rsa { e, n }, SignatureAlg::RsaSha256 | SignatureAlg::RsaSha512) => {
                let e = strip_leading_zeros(e);
                let n = strip_leading_zeros(n);
                check_rsa(e, n)?;
                let bits = bit_len(n);
                if bits < RSA_MIN_VERIFY_BITS {
                    return Err(KeyError::WeakRsaKey { bits });
                }
                let hash = match alg {
                    SignatureAlg::RsaSha512 => HashAlg::Sha512,
                    _ => HashAlg::Sha256,
                };
                let sig = rsa_signature_to_modulus_length(sig, n.len())?;
                provider.verify(VerifyKey::Rsa { n, e, hash }, data, &sig)
            }
            (Self::EcdsaP256(point), SignatureAlg::EcdsaP256) => {
                check_ecdsa_signature(sig)?;
                provider.verify(VerifyKey::EcdsaP256(&point[..]), data, sig)
            }
            _ => {
                return Err(KeyError::KeyTypeMismatch {
                    key_type: self.key_type(),
                    alg,
                });
            }
        };
        if verified {
            Ok(())
        } else {
            Err(KeyError::BadSignature)
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ed25519(key) => write!(f, "Ed25519({})", Hex(key)),
            Self::Rsa { e, n } => write!(
                f,
                "Rsa {{ bits: {}, e: {}, n: {} }}",
                bit_len(n),
                Hex(e),
                Hex(n)
            ),
            Self::EcdsaP256(point) => write!(f, "EcdsaP256({})", Hex(&point[..])),
        }
    }
}

/// The server's own host key.
///
/// Only Ed25519 for now: RSA and ECDSA host keys would need signing in the provider trait,
/// which has only Ed25519 signing. The seed is wiped from memory when the pair (or a clone
/// of it) is dropped, and `Debug` shows only the public half.
#[derive(Clone)]
pub struct HostKeyPair {
    seed: Zeroizing<[u8; 32]>,
    public: PublicKey,
}

impl HostKeyPair {
    /// The Ed25519 key pair for a 32-byte seed (RFC 8032 section 5.1.5). The pair keeps its
    /// own copy; the caller wipes `seed` when it no longer needs it.
    pub fn ed25519_from_seed(provider: &dyn CryptoProvider, seed: &[u8; 32]) -> Self {
        let seed = Zeroizing::new(*seed);
        let public = PublicKey::Ed25519(provider.ed25519_public(&seed));
        Self { seed, public }
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `data` with the negotiated algorithm `alg` and returns the whole signature
    /// blob: `string "ssh-ed25519"`, `string signature` (RFC 8709 section 6). Fails only if
    /// the key cannot sign with `alg`, which the caller can rule out with
    /// `public().supports(alg)`.
    pub fn sign(
        &self,
        provider: &dyn CryptoProvider,
        alg: SignatureAlg,
        data: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        if alg != SignatureAlg::Ed25519 {
            return Err(KeyError::KeyTypeMismatch {
                key_type: self.public.key_type(),
                alg,
            });
        }
        let sig = provider.ed25519_sign(&self.seed, data);
        let mut out = Vec::with_capacity(4 + ED25519.len() + 4 + sig.len());
        out.put_string(ED25519.as_bytes());
        out.put_string(&sig);
        Ok(out)
    }
}

impl fmt::Debug for HostKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKeyPair")
            .field("public", &self.public)
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// The limits on RSA keys, on minimal big-endian magnitudes. Checked at parse and again
/// before verifying, and always before any arithmetic.
fn check_rsa(e: &[u8], n: &[u8]) -> Result<(), KeyError> {
    // The byte length bounds the bit length, so a huge modulus is refused without looking
    // at more than its first byte.
    if n.len() > RSA_MAX_BITS / 8 {
        return Err(KeyError::RsaModulusSize { bits: bit_len(n) });
    }
    let bits = bit_len(n);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(KeyError::RsaModulusSize { bits });
    }
    if n.last().is_none_or(|b| b & 1 == 0) {
        return Err(KeyError::InvalidRsaKey("the modulus is even"));
    }

    // An exponent over 8 bytes is certainly over the limit; one of up to 8 fits a u64.
    let exponent = match e.len() {
        0..=8 => e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        _ => u64::MAX,
    };
    if exponent > RSA_MAX_EXPONENT {
        return Err(KeyError::InvalidRsaKey(
            "the public exponent is over 2^33 - 1",
        ));
    }
    if exponent < 3 || exponent & 1 == 0 {
        return Err(KeyError::InvalidRsaKey(
            "the public exponent is not an odd number from 3",
        ));
    }
    Ok(())
}

/// RFC 8332 section 3 makes the RSA signature exactly as long as the modulus. Some
/// implementations drop leading zero bytes, and OpenSSH accepts that by padding them back,
/// so we do too; a longer signature is refused.
fn rsa_signature_to_modulus_length(
    sig: &[u8],
    modulus_len: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, KeyError> {
    match modulus_len.checked_sub(sig.len()) {
        None => Err(KeyError::Malformed("rsa signature longer than the modulus")),
        Some(0) => Ok(sig.into()),
        Some(missing) => {
            let mut padded = vec![0u8; missing];
            padded.extend_from_slice(sig);
            Ok(padded.into())
        }
    }
}

/// RFC 5656 section 3.1.2: the signature is `mpint r`, `mpint s`, each in [1, 2^256).
/// The provider parses it again; checking the shape here gives both providers the same
/// input and one error for a malformed blob.
fn check_ecdsa_signature(sig: &[u8]) -> Result<(), KeyError> {
    let mut r = Reader::new(sig);
    for what in ["ecdsa signature r", "ecdsa signature s"] {
        let v = r.mpint_positive(what)?;
        if v.is_empty() || v.len() > 32 {
            return Err(KeyError::Malformed(what));
        }
    }
    r.finish().map_err(|_| KeyError::TrailingBytes)
}

fn strip_leading_zeros(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    v.get(start..).unwrap_or_default()
}

/// The bit length of a big-endian magnitude.
fn bit_len(v: &[u8]) -> usize {
    let v = strip_leading_zeros(v);
    match v.first() {
        None => 0,
        Some(&top) => {
            let top_bits = (u8::BITS - top.leading_zeros()) as usize;
            (v.len() - 1).saturating_mul(8).saturating_add(top_bits)
        }
    }
}

/// Peer bytes made safe for a message: escaped, and cut to 64 bytes.
fn escaped(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let cut = bytes.get(..MAX).unwrap_or(bytes);
    let mut out = cut.escape_ascii().to_string();
    if cut.len() < bytes.len() {
        out.push_str("...");
    }
    out
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use proptest::prelude::*;

    use super::*;
    use crate::crypto::{AesGcmKey, ChaChaPolyKey, Hasher, HmacKey, all_providers};

    /// `ssh-keygen -lf` output for keys made by ssh-keygen; see the file's header.
    const FINGERPRINTS: &str = include_str!("../../vectors/fingerprints.txt");
    /// Signatures made by Python `cryptography` and by `ssh-keygen -Y sign`.
    const SIGNATURES: &str = include_str!("../../vectors/hostkey-signatures.txt");

    /// The vector files' records: blocks of `name: value` lines between blank lines.
    fn records(text: &str) -> Vec<Vec<(&str, &str)>> {
        let mut out = Vec::new();
        let mut current = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if line.trim().is_empty() {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                continue;
            }
            current.push(line.split_once(": ").expect("a `name: value` line"));
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }

    fn field<'a>(record: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
        record.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn hex(text: &str) -> Vec<u8> {
        assert!(text.len().is_multiple_of(2));
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    struct SigVector {
        source: String,
        key: Vec<u8>,
        seed: Option<[u8; 32]>,
        alg: SignatureAlg,
        data: Vec<u8>,
        sig: Vec<u8>,
    }

    fn signature_vectors() -> Vec<SigVector> {
        let all: Vec<SigVector> = records(SIGNATURES)
            .iter()
            .map(|r| SigVector {
                source: field(r, "source").unwrap().to_owned(),
                key: base64::decode(field(r, "key").unwrap()).unwrap(),
                seed: field(r, "seed").map(|s| hex(s).try_into().unwrap()),
                alg: SignatureAlg::from_name(field(r, "alg").unwrap()).unwrap(),
                data: hex(field(r, "data").unwrap()),
                sig: base64::decode(field(r, "sig").unwrap()).unwrap(),
            })
            .collect();
        assert_eq!(all.len(), 12, "the vector file lost records");
        all
    }

    fn string(v: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_string(v);
        out
    }

    /// A signature blob with the given algorithm name and signature bytes.
    fn sig_blob(name: &str, sig: &[u8]) -> Vec<u8> {
        let mut out = string(name.as_bytes());
        out.put_string(sig);
        out
    }

    /// The signature bytes inside a signature blob.
    fn inner_sig(blob: &[u8]) -> Vec<u8> {
        let mut r = Reader::new(blob);
        r.string("name").unwrap();
        r.string("sig").unwrap().to_vec()
    }

    fn rsa_blob(e: &[u8], n: &[u8]) -> Vec<u8> {
        let mut out = string(b"ssh-rsa");
        out.put_mpint(e);
        out.put_mpint(n);
        out
    }

    fn ecdsa_blob(curve: &[u8], point: &[u8]) -> Vec<u8> {
        let mut out = string(ECDSA_P256.as_bytes());
        out.put_string(curve);
        out.put_string(point);
        out
    }

    /// An odd modulus of exactly `bits` bits.
    fn modulus(bits: usize) -> Vec<u8> {
        let mut n = vec![0xffu8; bits.div_ceil(8)];
        let top_bits = bits % 8;
        if top_bits != 0 {
            n[0] = 0xff >> (8 - top_bits);
        }
        n
    }

    /// Passes everything to a real provider and records the signatures it is asked to
    /// verify, to show what reaches the provider and what never does.
    #[derive(Debug)]
    struct Spy {
        inner: &'static dyn CryptoProvider,
        verified: Mutex<Vec<Vec<u8>>>,
    }

    impl Spy {
        fn new() -> Self {
            Self {
                inner: all_providers()[0],
                verified: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<Vec<u8>> {
            self.verified.lock().unwrap().clone()
        }
    }

    impl CryptoProvider for Spy {
        fn name(&self) -> &'static str {
            "spy"
        }
        fn hash(&self, alg: HashAlg) -> Box<dyn Hasher> {
            self.inner.hash(alg)
        }
        fn hmac(&self, alg: HashAlg, key: &[u8]) -> Box<dyn HmacKey> {
            self.inner.hmac(alg, key)
        }
        fn aes_gcm(&self, key: &[u8]) -> Option<Box<dyn AesGcmKey>> {
            self.inner.aes_gcm(key)
        }
        fn chacha20_poly1305(&self, key: &[u8; 64]) -> Box<dyn ChaChaPolyKey> {
            self.inner.chacha20_poly1305(key)
        }
        fn ed25519_public(&self, seed: &[u8; 32]) -> [u8; 32] {
            self.inner.ed25519_public(seed)
        }
        fn ed25519_sign(&self, seed: &[u8; 32], msg: &[u8]) -> [u8; 64] {
            self.inner.ed25519_sign(seed, msg)
        }
        fn verify(&self, key: VerifyKey<'_>, msg: &[u8], sig: &[u8]) -> bool {
            self.verified.lock().unwrap().push(sig.to_vec());
            self.inner.verify(key, msg, sig)
        }
    }

    #[test]
    fn fingerprints_match_ssh_keygen() {
        let records = records(FINGERPRINTS);
        assert_eq!(records.len(), 7, "the vector file lost records");
        for provider in all_providers() {
            for record in &records {
                let public = field(record, "pub").unwrap();
                let expected = field(record, "lf").unwrap();
                let [key_type, b64, comment] = public.split(' ').collect::<Vec<_>>()[..] else {
                    panic!("bad .pub line {public}");
                };

                let blob = base64::decode(b64).unwrap();
                let key = PublicKey::from_blob(&blob).unwrap();
                assert_eq!(key.key_type(), key_type);
                assert_eq!(key.to_blob(), blob, "{key_type} does not round-trip");

                let line = format!(
                    "{} {} {comment} ({})",
                    key.bits(),
                    key.fingerprint_sha256(provider),
                    key.openssh_label()
                );
                assert_eq!(line, expected, "provider {}", provider.name());
            }
        }
    }

    #[test]
    fn signature_vectors_verify() {
        for provider in all_providers() {
            for v in signature_vectors() {
                let what = format!("{} {} ({})", provider.name(), v.alg, v.source);
                let key = PublicKey::from_blob(&v.key).unwrap();
                assert!(key.supports(v.alg));
                if key.key_type() == "ssh-rsa" && key.bits() < RSA_MIN_VERIFY_BITS {
                    let err = key.verify(provider, v.alg, &v.data, &v.sig);
                    assert_eq!(
                        err,
                        Err(KeyError::WeakRsaKey { bits: key.bits() }),
                        "{what}"
                    );
                    continue;
                }
                assert_eq!(
                    key.verify(provider, v.alg, &v.data, &v.sig),
                    Ok(()),
                    "{what}"
                );

                // One flipped bit in the data or in the signature's last byte.
                let mut data = v.data.clone();
                data[0] ^= 1;
                let err = key.verify(provider, v.alg, &data, &v.sig);
                assert_eq!(err, Err(KeyError::BadSignature), "{what}");
                let mut sig = v.sig.clone();
                *sig.last_mut().unwrap() ^= 0x10;
                let err = key.verify(provider, v.alg, &v.data, &sig);
                assert_eq!(err, Err(KeyError::BadSignature), "{what}");

                // The other RSA hash is a different algorithm, not a second chance.
                let other = match v.alg {
                    SignatureAlg::RsaSha256 => SignatureAlg::RsaSha512,
                    SignatureAlg::RsaSha512 => SignatureAlg::RsaSha256,
                    _ => continue,
                };
                let err = key.verify(provider, other, &v.data, &v.sig).unwrap_err();
                assert!(
                    matches!(err, KeyError::AlgorithmMismatch { .. }),
                    "{what}: {err:?}"
                );
                let relabelled = sig_blob(other.name(), &inner_sig(&v.sig));
                let err = key.verify(provider, other, &v.data, &relabelled);
                assert_eq!(err, Err(KeyError::BadSignature), "{what}");
            }
        }
    }

    #[test]
    fn ed25519_signer_reproduces_the_vector() {
        let vectors = signature_vectors();
        let v = vectors.iter().find(|v| v.seed.is_some()).unwrap();
        for provider in all_providers() {
            let pair = HostKeyPair::ed25519_from_seed(provider, &v.seed.unwrap());
            assert_eq!(pair.public().to_blob(), v.key);

            // Ed25519 is deterministic: the same seed and data give the same signature.
            let sig = pair.sign(provider, SignatureAlg::Ed25519, &v.data).unwrap();
            assert_eq!(sig, v.sig, "provider {}", provider.name());

            let sig = pair
                .sign(provider, SignatureAlg::Ed25519, b"exchange hash")
                .unwrap();
            for verifier in all_providers() {
                let ok =
                    pair.public()
                        .verify(verifier, SignatureAlg::Ed25519, b"exchange hash", &sig);
                assert_eq!(ok, Ok(()));
            }

            let err = pair
                .sign(provider, SignatureAlg::RsaSha256, b"x")
                .unwrap_err();
            assert!(matches!(err, KeyError::KeyTypeMismatch { .. }));
        }
    }

    #[test]
    fn host_key_debug_shows_no_secret() {
        let provider = all_providers()[0];
        let seed = [0x5a; 32];
        let pair = HostKeyPair::ed25519_from_seed(provider, &seed);
        let shown = format!("{pair:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("5a5a5a5a"), "{shown}");
        assert!(!shown.contains("90, 90, 90"), "{shown}");
    }

    #[test]
    fn sha1_rsa_signatures_are_refused() {
        assert_eq!(SignatureAlg::from_name("ssh-rsa"), None);
        let v = signature_vectors()
            .into_iter()
            .find(|v| v.alg == SignatureAlg::RsaSha256 && v.key.len() > 200)
            .unwrap();
        let key = PublicKey::from_blob(&v.key).unwrap();
        let sha1 = sig_blob("ssh-rsa", &inner_sig(&v.sig));
        for alg in [SignatureAlg::RsaSha256, SignatureAlg::RsaSha512] {
            let spy = Spy::new();
            assert_eq!(
                key.verify(&spy, alg, &v.data, &sha1),
                Err(KeyError::Sha1Refused)
            );
            assert!(spy.calls().is_empty());
        }
    }

    #[test]
    fn algorithm_must_match_the_negotiated_one() {
        let vectors = signature_vectors();
        let ed = vectors
            .iter()
            .find(|v| v.alg == SignatureAlg::Ed25519)
            .unwrap();
        let key = PublicKey::from_blob(&ed.key).unwrap();
        let spy = Spy::new();

        let renamed = sig_blob("ssh-ed448", &inner_sig(&ed.sig));
        let err = key
            .verify(&spy, SignatureAlg::Ed25519, &ed.data, &renamed)
            .unwrap_err();
        assert_eq!(
            err,
            KeyError::AlgorithmMismatch {
                expected: SignatureAlg::Ed25519,
                got: "ssh-ed448".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "signature algorithm \"ssh-ed448\" does not match the negotiated ssh-ed25519"
        );

        // The blob names the negotiated algorithm, but the key cannot make it.
        let as_rsa = sig_blob("rsa-sha2-256", &inner_sig(&ed.sig));
        let err = key
            .verify(&spy, SignatureAlg::RsaSha256, &ed.data, &as_rsa)
            .unwrap_err();
        assert_eq!(
            err,
            KeyError::KeyTypeMismatch {
                key_type: "ssh-ed25519",
                alg: SignatureAlg::RsaSha256
            }
        );

        // A control byte in the name is escaped in the message.
        let hostile = sig_blob("ssh-\x1b[2J", &inner_sig(&ed.sig));
        let err = key
            .verify(&spy, SignatureAlg::Ed25519, &ed.data, &hostile)
            .unwrap_err();
        assert!(err.to_string().contains("ssh-\\x1b[2J"), "{err}");
        assert!(spy.calls().is_empty());
    }

    #[test]
    fn rsa_modulus_limits() {
        let e = [0x01, 0x00, 0x01];
        for bits in [RSA_MIN_BITS, 2047, 2048, 3072, RSA_MAX_BITS] {
            let key = PublicKey::from_blob(&rsa_blob(&e, &modulus(bits))).unwrap();
            assert_eq!(key.bits(), bits);
        }
        for bits in [512, RSA_MIN_BITS - 1, RSA_MAX_BITS + 1, 16384, 65536] {
            let err = PublicKey::from_blob(&rsa_blob(&e, &modulus(bits))).unwrap_err();
            assert_eq!(err, KeyError::RsaModulusSize { bits });
        }
        assert_eq!(
            KeyError::RsaModulusSize { bits: 8193 }.to_string(),
            "RSA key of 8193 bits refused: only 1024 to 8192 bits are accepted"
        );
    }

    #[test]
    fn oversized_rsa_key_never_reaches_the_provider() {
        // A hostile peer's RSA host key over 8192 bits is refused before verifying. A key
        // built by hand skips the parser, so verify() must check again.
        let key = PublicKey::Rsa {
            e: vec![1, 0, 1],
            n: modulus(RSA_MAX_BITS + 1),
        };
        let sig = sig_blob("rsa-sha2-256", &vec![0x42; 1025]);
        let spy = Spy::new();
        let err = key.verify(&spy, SignatureAlg::RsaSha256, b"data", &sig);
        assert_eq!(
            err,
            Err(KeyError::RsaModulusSize {
                bits: RSA_MAX_BITS + 1
            })
        );
        assert!(spy.calls().is_empty());

        // Leading zeros in a hand-built modulus do not hide its size either way.
        let mut n = vec![0; 4];
        n.extend_from_slice(&modulus(2048));
        let key = PublicKey::Rsa {
            e: vec![0, 1, 0, 1],
            n,
        };
        assert_eq!(key.bits(), 2048);
        assert_eq!(PublicKey::from_blob(&key.to_blob()).unwrap().bits(), 2048);
    }

    #[test]
    fn rsa_exponent_and_parity() {
        let n = modulus(2048);
        for e in [&[3][..], &[1, 0, 1], &[0x01, 0xff, 0xff, 0xff, 0xff]] {
            assert!(PublicKey::from_blob(&rsa_blob(e, &n)).is_ok(), "e = {e:?}");
        }
        for e in [
            &[][..],
            &[1],
            &[2],
            &[1, 0, 0],
            &[0x02, 0x00, 0x00, 0x00, 0x01],
            &[1, 0, 0, 0, 0, 0, 0, 0, 1],
        ] {
            let err = PublicKey::from_blob(&rsa_blob(e, &n)).unwrap_err();
            assert!(
                matches!(err, KeyError::InvalidRsaKey(_)),
                "e = {e:?}: {err:?}"
            );
        }

        let mut even = n.clone();
        *even.last_mut().unwrap() = 0xfe;
        let err = PublicKey::from_blob(&rsa_blob(&[1, 0, 1], &even)).unwrap_err();
        assert_eq!(err, KeyError::InvalidRsaKey("the modulus is even"));

        // Non-minimal and negative mpints are malformed, not reinterpreted.
        let mut blob = string(b"ssh-rsa");
        blob.put_string(&[0, 1, 0, 1]);
        blob.put_mpint(&n);
        assert!(matches!(
            PublicKey::from_blob(&blob),
            Err(KeyError::Malformed(_))
        ));
        let mut blob = string(b"ssh-rsa");
        blob.put_mpint(&[1, 0, 1]);
        blob.put_string(&n);
        assert!(matches!(
            PublicKey::from_blob(&blob),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn weak_rsa_keys_parse_but_do_not_verify() {
        let vectors = signature_vectors();
        let v = vectors
            .iter()
            .find(|v| v.alg == SignatureAlg::RsaSha256 && v.key.len() < 200)
            .unwrap();
        let key = PublicKey::from_blob(&v.key).unwrap();
        assert_eq!(key.bits(), 1024);
        let spy = Spy::new();
        let err = key.verify(&spy, v.alg, &v.data, &v.sig).unwrap_err();
        assert_eq!(err, KeyError::WeakRsaKey { bits: 1024 });
        assert_eq!(
            err.to_string(),
            "RSA key of 1024 bits is too weak: signatures need at least 2048 bits"
        );
        assert!(spy.calls().is_empty());
    }

    #[test]
    fn rsa_signature_length() {
        let vectors = signature_vectors();
        let v = vectors
            .iter()
            .find(|v| v.alg == SignatureAlg::RsaSha256 && v.key.len() > 200)
            .unwrap();
        let key = PublicKey::from_blob(&v.key).unwrap();
        let len = inner_sig(&v.sig).len();
        assert_eq!(len * 8, key.bits());

        // Shorter: padded with zeros to the modulus length, as OpenSSH does.
        let spy = Spy::new();
        let short = sig_blob("rsa-sha2-256", &vec![0x42; len - 1]);
        assert_eq!(
            key.verify(&spy, v.alg, &v.data, &short),
            Err(KeyError::BadSignature)
        );
        let seen = spy.calls();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].len(), len);
        assert_eq!(seen[0][0], 0);

        // Longer: refused before the provider sees it.
        let spy = Spy::new();
        let long = sig_blob("rsa-sha2-256", &vec![0x42; len + 1]);
        let err = key.verify(&spy, v.alg, &v.data, &long).unwrap_err();
        assert!(matches!(err, KeyError::Malformed(_)));
        assert!(spy.calls().is_empty());
    }

    #[test]
    fn ecdsa_blob_checks() {
        let vectors = signature_vectors();
        let v = vectors
            .iter()
            .find(|v| v.alg == SignatureAlg::EcdsaP256)
            .unwrap();
        let PublicKey::EcdsaP256(point) = PublicKey::from_blob(&v.key).unwrap() else {
            panic!("not an ECDSA key");
        };
        assert!(PublicKey::from_blob(&ecdsa_blob(b"nistp256", &point[..])).is_ok());

        for curve in [
            &b"nistp384"[..],
            b"nistp521",
            b"",
            b"NISTP256",
            b"nistp256\0",
        ] {
            let err = PublicKey::from_blob(&ecdsa_blob(curve, &point[..])).unwrap_err();
            assert!(matches!(err, KeyError::WrongCurve(_)), "{curve:?}: {err:?}");
        }

        let compressed = [&[0x02][..], &point[1..33]].concat();
        let mut hybrid = point.to_vec();
        hybrid[0] = 0x06;
        for bad in [
            &point[..64],
            &[&point[..], &[0]].concat(),
            &compressed,
            &hybrid,
            &[],
        ] {
            let err = PublicKey::from_blob(&ecdsa_blob(b"nistp256", bad)).unwrap_err();
            assert_eq!(err, KeyError::InvalidEcdsaPoint, "{} bytes", bad.len());
        }
    }

    #[test]
    fn ecdsa_signature_shape() {
        let vectors = signature_vectors();
        let v = vectors
            .iter()
            .find(|v| v.alg == SignatureAlg::EcdsaP256)
            .unwrap();
        let key = PublicKey::from_blob(&v.key).unwrap();
        let inner = inner_sig(&v.sig);

        // The provider receives the inner `mpint r, mpint s` as the trait says.
        let spy = Spy::new();
        assert_eq!(key.verify(&spy, v.alg, &v.data, &v.sig), Ok(()));
        assert_eq!(spy.calls(), std::slice::from_ref(&inner));

        let mut r = Reader::new(&inner);
        let r_value = r.mpint_positive("r").unwrap().to_vec();
        let s_value = r.mpint_positive("s").unwrap().to_vec();
        let build = |r: &[u8], s: &[u8], extra: &[u8]| {
            let mut body = Vec::new();
            body.put_mpint(r);
            body.put_mpint(s);
            body.extend_from_slice(extra);
            sig_blob(ECDSA_P256, &body)
        };

        let spy = Spy::new();
        let trailing = build(&r_value, &s_value, &[0]);
        assert_eq!(
            key.verify(&spy, v.alg, &v.data, &trailing),
            Err(KeyError::TrailingBytes)
        );
        for (r, s) in [
            (&[][..], &s_value[..]),
            (&r_value, &[]),
            (&[1; 33], &s_value),
        ] {
            let err = key
                .verify(&spy, v.alg, &v.data, &build(r, s, &[]))
                .unwrap_err();
            assert!(matches!(err, KeyError::Malformed(_)), "{err:?}");
        }
        let only_r = sig_blob(ECDSA_P256, &inner[..inner.len() - s_value.len() - 5]);
        assert!(key.verify(&spy, v.alg, &v.data, &only_r).is_err());
        assert!(spy.calls().is_empty());
    }

    #[test]
    fn ed25519_lengths_and_unknown_types() {
        for len in [0, 31, 33, 64] {
            let mut blob = string(b"ssh-ed25519");
            blob.put_string(&vec![7; len]);
            let err = PublicKey::from_blob(&blob).unwrap_err();
            assert_eq!(err, KeyError::Malformed("ed25519 public key"), "{len}");
        }

        let key = PublicKey::Ed25519([7; 32]);
        let spy = Spy::new();
        for len in [0, 63, 65] {
            let sig = sig_blob("ssh-ed25519", &vec![1; len]);
            let err = key
                .verify(&spy, SignatureAlg::Ed25519, b"data", &sig)
                .unwrap_err();
            assert_eq!(err, KeyError::Malformed("ed25519 signature length"));
        }
        assert!(spy.calls().is_empty());

        for name in [
            &b"ssh-dss"[..],
            b"sk-ssh-ed25519@openssh.com",
            b"ssh-ed25519-cert-v01@openssh.com",
        ] {
            let mut blob = string(name);
            blob.put_string(&[7; 32]);
            let err = PublicKey::from_blob(&blob).unwrap_err();
            assert_eq!(
                err,
                KeyError::UnsupportedKeyType(String::from_utf8(name.to_vec()).unwrap())
            );
        }
        let err = PublicKey::from_blob(&string(&[b'x'; 1000])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unsupported key type \"{}...\"", "x".repeat(64))
        );
    }

    #[test]
    fn truncated_and_trailing_bytes() {
        for v in signature_vectors() {
            let key = PublicKey::from_blob(&v.key).unwrap();
            for cut in 0..v.key.len() {
                assert!(
                    PublicKey::from_blob(&v.key[..cut]).is_err(),
                    "{} cut at {cut}",
                    v.alg
                );
            }
            let mut longer = v.key.clone();
            longer.push(0);
            assert_eq!(PublicKey::from_blob(&longer), Err(KeyError::TrailingBytes));

            let spy = Spy::new();
            for cut in 0..v.sig.len() {
                assert!(key.verify(&spy, v.alg, &v.data, &v.sig[..cut]).is_err());
            }
            let mut longer = v.sig.clone();
            longer.push(0);
            assert_eq!(
                key.verify(&spy, v.alg, &v.data, &longer),
                Err(KeyError::TrailingBytes)
            );
            assert!(spy.calls().is_empty(), "a broken blob reached the provider");
        }
    }

    #[test]
    fn names_round_trip() {
        for alg in SignatureAlg::ALL {
            assert_eq!(SignatureAlg::from_name(alg.name()), Some(alg));
        }
        assert_eq!(SignatureAlg::from_name("ssh-dss"), None);
        assert_eq!(SignatureAlg::RsaSha512.key_type(), "ssh-rsa");
        let key = PublicKey::Ed25519([1; 32]);
        assert!(key.supports(SignatureAlg::Ed25519));
        assert!(!key.supports(SignatureAlg::RsaSha256));
        assert_eq!((key.bits(), key.openssh_label()), (256, "ED25519"));
    }

    proptest! {
        #[test]
        fn arbitrary_blobs_never_panic(blob in proptest::collection::vec(any::<u8>(), 0..300)) {
            // A blob that parses is the one encoding of its key.
            if let Ok(key) = PublicKey::from_blob(&blob) {
                prop_assert_eq!(key.to_blob(), blob);
            }
        }

        #[test]
        fn mutated_vectors_never_panic(
            which in 0usize..12,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            in_sig in any::<bool>(),
        ) {
            let v = &signature_vectors()[which];
            let (mut key_blob, mut sig) = (v.key.clone(), v.sig.clone());
            let target = if in_sig { &mut sig } else { &mut key_blob };
            let i = at.index(target.len());
            let changed = target[i] != byte;
            target[i] = byte;

            let provider = all_providers()[0];
            match PublicKey::from_blob(&key_blob) {
                Ok(key) => {
                    prop_assert_eq!(key.to_blob(), key_blob);
                    let result = key.verify(provider, v.alg, &v.data, &sig);
                    if changed {
                        prop_assert!(result.is_err());
                    }
                }
                Err(_) => prop_assert!(changed),
            }
        }
    }
}
