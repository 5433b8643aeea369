//! User keys: OpenSSH's private key files, `.pub` lines, and signing with the keys.
//!
//! A private key file (OpenSSH `PROTOCOL.key`) is base64 between
//! `-----BEGIN OPENSSH PRIVATE KEY-----` and `-----END OPENSSH PRIVATE KEY-----`:
//!
//! ```text
//! byte[15] "openssh-key-v1\0"
//! string   ciphername        "none", "aes256-ctr" or "aes256-gcm@openssh.com"
//! string   kdfname           "none" or "bcrypt"
//! string   kdfoptions        for bcrypt: string salt, uint32 rounds
//! uint32   number of keys    always 1
//! string   public key blob   in the clear, even when the rest is encrypted
//! string   private section   encrypted with the cipher (a GCM tag follows the string)
//! ```
//!
//! The private section holds two equal random `uint32` check values, the key's type and
//! private fields, its comment, and padding bytes 1, 2, 3, ... up to the cipher's block
//! size. With a wrong passphrase the check values come out as two unrelated numbers, which
//! is how a wrong passphrase is told apart from a corrupt file.
//!
//! The public key is readable without the passphrase, so a client can parse the file with
//! [`PrivateKeyFile::parse`], offer [`PrivateKeyFile::public`] to the server (RFC 4252
//! section 7 lets it ask whether a key would be accepted), and ask the user for the
//! passphrase only when the server says yes. [`PrivateKeyFile::decrypt`] then gives the
//! [`UserKey`] that signs.
//!
//! Everything here works on bytes the caller read and returns bytes the caller writes: the
//! module opens no file. Key files are the user's own but may still be corrupt or planted,
//! so every length is checked, the key derivation's cost is capped ([`MAX_KDF_ROUNDS`]),
//! and no input panics. Private keys, passphrase-derived keys and decrypted sections are
//! wiped from memory when dropped and never shown by `Debug`.

use core::convert::Infallible;
use core::fmt;

use p256::ecdsa::signature::Signer as _;
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use zeroize::Zeroizing;

use crate::base64::{self, Base64Error};
use crate::config::Rng;
use crate::crypto::ctr::AesCtr;
use crate::crypto::{CryptoProvider, HashAlg, RsaPrivateParts};
use crate::hostkey::{
    HostKeyPair, KeyError, PublicKey, RSA_MAX_BITS, RSA_MIN_VERIFY_BITS, SignatureAlg,
};
use crate::wire::{Reader, Writer};

const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";
const MAGIC: &[u8] = b"openssh-key-v1\0";
const NISTP256: &[u8] = b"nistp256";

/// The largest key file accepted, in bytes: OpenSSH's own limit for key files. An 8192-bit
/// RSA key with a long comment takes under 7 KiB.
pub const MAX_FILE_LEN: usize = 1 << 20;

/// The most bcrypt rounds a key file may ask for before we derive its key.
///
/// The round count is stored in the file, so a corrupt or planted file could ask for 2^32
/// rounds and hang the client for years: each round costs about 7 ms on current machines.
/// `ssh-keygen` writes 16 by default and hardening guides suggest 100; 1024 is ten times
/// that and takes about 7 s. A file over the cap can still be inspected (public key and
/// whether it is encrypted); only decrypting it is refused.
pub const MAX_KDF_ROUNDS: u32 = 1024;

/// The bcrypt rounds written by [`UserKey::to_openssh`]: `ssh-keygen`'s default.
pub const DEFAULT_KDF_ROUNDS: u32 = 16;

/// The salt length `ssh-keygen` writes.
const SALT_LEN: usize = 16;

/// `ssh-keygen` wraps the base64 at 70 columns.
const LINE_WIDTH: usize = 70;

const NOT_A_PAIR: UserKeyError = UserKeyError::InconsistentKey("rsa parts do not form a key pair");
/// A secret paired with another kind of public key: the constructors never make one.
const MISMATCHED_HALVES: UserKeyError =
    UserKeyError::InconsistentKey("the private and public halves are different kinds");

/// RSA key sizes [`UserKey::generate`] makes: 2048 bits is the smallest our own verifier
/// accepts ([`RSA_MIN_VERIFY_BITS`]), 8192 the largest any key may have.
pub const RSA_GENERATE_BITS: core::ops::RangeInclusive<usize> = RSA_MIN_VERIFY_BITS..=RSA_MAX_BITS;

/// A key file or `.pub` line was refused, or a key could not sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserKeyError {
    /// The text is not an OpenSSH private key; says what it looks like instead.
    NotOpensshKey(&'static str),
    /// Over [`MAX_FILE_LEN`] bytes.
    TooLarge { len: usize },
    /// The base64 between the armour lines does not decode.
    Base64(Base64Error),
    /// A field is missing, truncated or impossible; names what was being read.
    Malformed(&'static str),
    /// A cipher other than `none`, `aes256-ctr` and `aes256-gcm@openssh.com`, escaped and
    /// cut to 64 bytes.
    UnsupportedCipher(String),
    /// A key derivation other than `none` and `bcrypt`, escaped and cut to 64 bytes.
    UnsupportedKdf(String),
    /// OpenSSH files hold exactly one key.
    KeyCount(u32),
    /// The file asks for more bcrypt rounds than [`MAX_KDF_ROUNDS`], or a writer was asked
    /// for a count outside 1 to [`MAX_KDF_ROUNDS`].
    KdfRounds { rounds: u32 },
    /// The file is encrypted and no passphrase (or an empty one) was given.
    PassphraseRequired,
    /// The check values did not match after decryption (or the GCM tag failed).
    WrongPassphrase,
    /// The padding after the comment is not 1, 2, 3, ...
    BadPadding,
    /// The private key does not belong to the public key stored in clear.
    PublicKeyMismatch,
    /// The private key's own parts disagree (an Ed25519 seed that does not give the
    /// public key, RSA primes whose product is not the modulus, ...).
    InconsistentKey(&'static str),
    /// The public key, or a key and signature algorithm, was refused.
    Key(KeyError),
    /// The provider could not make the signature.
    SigningFailed,
    /// [`UserKey::generate`] was asked for an RSA size outside [`RSA_GENERATE_BITS`].
    UnsupportedKeySize { bits: usize },
    /// [`UserKey::generate`] got no usable key from the random generator.
    BadRandomness,
}

impl From<KeyError> for UserKeyError {
    fn from(e: KeyError) -> Self {
        Self::Key(e)
    }
}

impl fmt::Display for UserKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOpensshKey(what) => write!(f, "not an OpenSSH private key: {what}"),
            Self::TooLarge { len } => write!(
                f,
                "key file of {len} bytes refused: the limit is {MAX_FILE_LEN} bytes"
            ),
            Self::Base64(e) => write!(f, "malformed key file: {e}"),
            Self::Malformed(what) => write!(f, "malformed key file: bad {what}"),
            Self::UnsupportedCipher(name) => write!(
                f,
                "key file encrypted with unsupported cipher \"{name}\" \
                 (supported: aes256-ctr, aes256-gcm@openssh.com)"
            ),
            Self::UnsupportedKdf(name) => {
                write!(f, "key file uses unsupported key derivation \"{name}\"")
            }
            Self::KeyCount(n) => write!(f, "key file holds {n} keys; exactly 1 is supported"),
            Self::KdfRounds { rounds } => write!(
                f,
                "{rounds} bcrypt rounds refused: 1 to {MAX_KDF_ROUNDS} are accepted \
                 (`ssh-keygen -p -a 100 -f FILE` re-encrypts a key with fewer)"
            ),
            Self::PassphraseRequired => {
                f.write_str("the key file is encrypted: a passphrase is needed")
            }
            Self::WrongPassphrase => f.write_str("incorrect passphrase for the key file"),
            Self::BadPadding => f.write_str("malformed key file: bad padding"),
            Self::PublicKeyMismatch => {
                f.write_str("malformed key file: the private key does not match the public key")
            }
            Self::InconsistentKey(why) => write!(f, "invalid private key: {why}"),
            Self::Key(e) => e.fmt(f),
            Self::SigningFailed => f.write_str("the cryptography provider could not sign"),
            Self::UnsupportedKeySize { bits } => write!(
                f,
                "cannot generate an RSA key of {bits} bits: choose {} to {}",
                RSA_GENERATE_BITS.start(),
                RSA_GENERATE_BITS.end()
            ),
            Self::BadRandomness => {
                f.write_str("the random generator gave no valid key after many tries")
            }
        }
    }
}

impl std::error::Error for UserKeyError {}

/// How a key file's private section is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    None,
    /// `aes256-ctr`, what `ssh-keygen` writes.
    Aes256Ctr,
    /// `aes256-gcm@openssh.com`, written by `ssh-keygen -Z aes256-gcm@openssh.com`.
    Aes256Gcm,
}

impl Cipher {
    /// The name in the file.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Aes256Ctr => "aes256-ctr",
            Self::Aes256Gcm => "aes256-gcm@openssh.com",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        [Self::None, Self::Aes256Ctr, Self::Aes256Gcm]
            .into_iter()
            .find(|c| c.name().as_bytes() == name)
    }

    /// The private section is padded to this: 8 in the clear, as OpenSSH does, else the
    /// cipher's block.
    const fn block_size(self) -> usize {
        match self {
            Self::None => 8,
            Self::Aes256Ctr | Self::Aes256Gcm => 16,
        }
    }
}

/// The key derivation's parameters. Neither is secret: both sit in clear in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kdf {
    None,
    Bcrypt { salt: Vec<u8>, rounds: u32 },
}

/// An OpenSSH private key file, parsed but not yet decrypted.
///
/// ```
/// # use ssh_proto::userkey::PrivateKeyFile;
/// # let text = include_str!("../../vectors/userkeys/throwaway-ed25519-aes256-ctr-16-rounds");
/// let file = PrivateKeyFile::parse(text)?;
/// assert!(file.needs_passphrase());
/// assert_eq!(file.public().key_type(), "ssh-ed25519");
/// # Ok::<(), ssh_proto::userkey::UserKeyError>(())
/// ```
pub struct PrivateKeyFile {
    public: PublicKey,
    cipher: Cipher,
    kdf: Kdf,
    /// The private section as stored: ciphertext, or the key itself when unencrypted.
    private: Zeroizing<Vec<u8>>,
    /// The GCM tag that follows the private section; zeros for the other ciphers.
    tag: [u8; 16],
}

impl PrivateKeyFile {
    /// Parses the file's text. Nothing is decrypted and no passphrase is needed; the
    /// private section is only checked for its length.
    pub fn parse(text: impl AsRef<[u8]>) -> Result<Self, UserKeyError> {
        let body = dearmor(text.as_ref())?;
        let mut r = Reader::new(&body);
        if r.bytes(MAGIC.len(), "magic").ok() != Some(MAGIC) {
            return Err(UserKeyError::Malformed("magic"));
        }

        let cipher_name = r.string("cipher name").map_err(malformed)?;
        let kdf_name = r.string("kdf name").map_err(malformed)?;
        let kdf_options = r.string("kdf options").map_err(malformed)?;
        let keys = r.u32("number of keys").map_err(malformed)?;
        if keys != 1 {
            return Err(UserKeyError::KeyCount(keys));
        }
        let public_blob = r.string("public key").map_err(malformed)?;
        let private = r.string("private section").map_err(malformed)?;

        let cipher = Cipher::from_name(cipher_name)
            .ok_or_else(|| UserKeyError::UnsupportedCipher(escaped(cipher_name)))?;
        let kdf = match kdf_name {
            b"none" if kdf_options.is_empty() => Kdf::None,
            b"none" => return Err(UserKeyError::Malformed("kdf options for kdf none")),
            b"bcrypt" => parse_bcrypt_options(kdf_options)?,
            other => return Err(UserKeyError::UnsupportedKdf(escaped(other))),
        };
        // OpenSSH pairs no cipher with no key derivation and nothing else.
        if (cipher == Cipher::None) != (kdf == Kdf::None) {
            return Err(UserKeyError::Malformed("cipher and kdf pairing"));
        }

        let mut tag = [0u8; 16];
        if cipher == Cipher::Aes256Gcm {
            tag = r.array("gcm tag").map_err(malformed)?;
        }
        r.finish().map_err(malformed)?;

        if private.is_empty() || !private.len().is_multiple_of(cipher.block_size()) {
            return Err(UserKeyError::Malformed("private section length"));
        }
        let public = PublicKey::from_blob(public_blob)?;

        Ok(Self {
            public,
            cipher,
            kdf,
            private: Zeroizing::new(private.to_vec()),
            tag,
        })
    }

    /// The public key, readable without the passphrase.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Whether [`Self::decrypt`] needs a passphrase.
    pub fn needs_passphrase(&self) -> bool {
        self.cipher != Cipher::None
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The bcrypt rounds the file asks for, if it is encrypted: a caller can warn before a
    /// slow derivation, or see that it is over [`MAX_KDF_ROUNDS`].
    pub fn kdf_rounds(&self) -> Option<u32> {
        match self.kdf {
            Kdf::None => None,
            Kdf::Bcrypt { rounds, .. } => Some(rounds),
        }
    }

    /// Decrypts the private section and checks the key in it. The passphrase is ignored
    /// for an unencrypted file; an encrypted one needs a non-empty passphrase (`ssh-keygen`
    /// treats an empty one as "no encryption").
    pub fn decrypt(
        &self,
        provider: &dyn CryptoProvider,
        passphrase: Option<&[u8]>,
    ) -> Result<UserKey, UserKeyError> {
        let mut section = self.private.clone();
        match &self.kdf {
            Kdf::None => {}
            Kdf::Bcrypt { salt, rounds } => {
                let passphrase = passphrase
                    .filter(|p| !p.is_empty())
                    .ok_or(UserKeyError::PassphraseRequired)?;
                if *rounds > MAX_KDF_ROUNDS {
                    return Err(UserKeyError::KdfRounds { rounds: *rounds });
                }
                let (key, iv) = derive_key_iv(passphrase, salt, *rounds)?;
                self.decrypt_section(provider, &key, &iv, &mut section)?;
            }
        }

        let key = parse_private_section(provider, &section, self.needs_passphrase())?;
        if key.public != self.public {
            return Err(UserKeyError::PublicKeyMismatch);
        }
        Ok(key)
    }

    fn decrypt_section(
        &self,
        provider: &dyn CryptoProvider,
        key: &[u8; 32],
        iv: &[u8; 16],
        section: &mut [u8],
    ) -> Result<(), UserKeyError> {
        match self.cipher {
            Cipher::None => Ok(()),
            Cipher::Aes256Ctr => {
                let mut aes = AesCtr::new(key, iv).ok_or(UserKeyError::Malformed("cipher key"))?;
                aes.apply(section);
                Ok(())
            }
            Cipher::Aes256Gcm => {
                // OpenSSH's GCM takes the first 12 derived IV bytes as the nonce of its one
                // message, with no additional data.
                let mut nonce = [0u8; 12];
                nonce.copy_from_slice(&iv[..12]);
                let aead = provider
                    .aes_gcm(key)
                    .ok_or(UserKeyError::Malformed("cipher key"))?;
                aead.open_in_place(&nonce, &[], section, &self.tag)
                    .map_err(|_| UserKeyError::WrongPassphrase)
            }
        }
    }
}

impl fmt::Debug for PrivateKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeyFile")
            .field("public", &self.public)
            .field("cipher", &self.cipher)
            .field("kdf_rounds", &self.kdf_rounds())
            .finish_non_exhaustive()
    }
}

/// What [`UserKey::generate`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    EcdsaP256,
    /// RSA with public exponent 65537 and a modulus of `bits` bits.
    Rsa {
        bits: usize,
    },
}

/// A private key that signs: Ed25519, ECDSA P-256 or RSA.
///
/// The secret parts are wiped from memory when the key (or a clone) is dropped, and
/// `Debug` shows only the public key and comment.
#[derive(Clone)]
pub struct UserKey {
    public: PublicKey,
    secret: Secret,
    comment: String,
}

#[derive(Clone)]
enum Secret {
    /// The 32-byte seed (RFC 8032 section 5.1.5).
    Ed25519(Zeroizing<[u8; 32]>),
    /// The scalar, big-endian.
    EcdsaP256(Zeroizing<[u8; 32]>),
    Rsa(Box<RsaSecret>),
}

/// The private RSA parts as minimal big-endian magnitudes; `n` and `e` are in the public
/// key. `dp` and `dq` are not in OpenSSH's files and are derived when the key is loaded.
#[derive(Clone)]
struct RsaSecret {
    d: Zeroizing<Vec<u8>>,
    p: Zeroizing<Vec<u8>>,
    q: Zeroizing<Vec<u8>>,
    iqmp: Zeroizing<Vec<u8>>,
    dp: Zeroizing<Vec<u8>>,
    dq: Zeroizing<Vec<u8>>,
}

impl UserKey {
    /// Parses and decrypts a private key file in one call; see [`PrivateKeyFile`] to look
    /// at the public key before asking for a passphrase.
    pub fn from_openssh(
        provider: &dyn CryptoProvider,
        text: impl AsRef<[u8]>,
        passphrase: Option<&[u8]>,
    ) -> Result<Self, UserKeyError> {
        PrivateKeyFile::parse(text)?.decrypt(provider, passphrase)
    }

    /// A new key from the caller's random generator. RSA keys come from the `rsa` crate
    /// (`ring` cannot generate them) with e = 65537; `bits` must be in
    /// [`RSA_GENERATE_BITS`]. A 4096-bit RSA key can take several seconds.
    ///
    /// `rng` must be a cryptographic generator. One that repeats itself is caught for
    /// ECDSA ([`UserKeyError::BadRandomness`]) but not for RSA, whose prime search would
    /// never find two different primes and so would not return.
    pub fn generate(
        provider: &dyn CryptoProvider,
        kind: KeyKind,
        rng: &mut dyn Rng,
    ) -> Result<Self, UserKeyError> {
        match kind {
            KeyKind::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill(&mut seed[..]);
                let public = PublicKey::Ed25519(provider.ed25519_public(&seed));
                Ok(Self::new(public, Secret::Ed25519(seed)))
            }
            KeyKind::EcdsaP256 => {
                // A random 32-byte string is a valid scalar unless it is zero or at least
                // the group order, a chance of about 2^-32; a generator that keeps failing
                // is broken.
                for _ in 0..64 {
                    let mut scalar = Zeroizing::new([0u8; 32]);
                    rng.fill(&mut scalar[..]);
                    if let Some(point) = ecdsa_public(&scalar) {
                        let public = PublicKey::EcdsaP256(Box::new(point));
                        return Ok(Self::new(public, Secret::EcdsaP256(scalar)));
                    }
                }
                Err(UserKeyError::BadRandomness)
            }
            KeyKind::Rsa { bits } => generate_rsa(bits, rng),
        }
    }

    fn new(public: PublicKey, secret: Secret) -> Self {
        Self {
            public,
            secret,
            comment: String::new(),
        }
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The same key as a server's host key. Only Ed25519 keys can be, since host keys
    /// sign only with Ed25519 (see [`HostKeyPair`]).
    pub fn to_host_key(&self, provider: &dyn CryptoProvider) -> Option<HostKeyPair> {
        match &self.secret {
            Secret::Ed25519(seed) => Some(HostKeyPair::ed25519_from_seed(provider, seed)),
            _ => None,
        }
    }

    /// The comment stored with the key in its file; empty for a generated key. Bytes that
    /// are not UTF-8 were replaced with U+FFFD.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// Signs `data` with `alg` and returns the SSH signature blob: `string alg-name`,
    /// `string signature` (RFC 4253 section 6.6), as USERAUTH_REQUEST carries it
    /// (RFC 4252 section 7).
    ///
    /// Ed25519 (RFC 8709) and RSA PKCS#1 v1.5 (RFC 8332) are deterministic by design, and
    /// ECDSA takes its nonce from RFC 6979, so no randomness is needed. RSA keys under
    /// [`RSA_MIN_VERIFY_BITS`] are refused, as our verifier refuses them.
    pub fn sign(
        &self,
        provider: &dyn CryptoProvider,
        alg: SignatureAlg,
        data: &[u8],
    ) -> Result<Vec<u8>, UserKeyError> {
        if !self.public.supports(alg) {
            return Err(KeyError::KeyTypeMismatch {
                key_type: self.public.key_type(),
                alg,
            }
            .into());
        }

        let sig = match (&self.secret, &self.public) {
            (Secret::Ed25519(seed), _) => provider.ed25519_sign(seed, data).to_vec(),
            (Secret::EcdsaP256(scalar), _) => ecdsa_sign(scalar, data)?,
            (Secret::Rsa(secret), PublicKey::Rsa { e, n }) => {
                let bits = self.public.bits();
                if bits < RSA_MIN_VERIFY_BITS {
                    return Err(KeyError::WeakRsaKey { bits }.into());
                }
                let hash = match alg {
                    SignatureAlg::RsaSha512 => HashAlg::Sha512,
                    _ => HashAlg::Sha256,
                };
                provider
                    .rsa_sign(&secret.parts(n, e), hash, data)
                    .ok_or(UserKeyError::SigningFailed)?
            }
            (Secret::Rsa(_), _) => return Err(MISMATCHED_HALVES),
        };

        let mut blob = Vec::with_capacity(8 + alg.name().len() + sig.len());
        blob.put_string(alg.name().as_bytes());
        blob.put_string(&sig);
        Ok(blob)
    }

    /// The key as an OpenSSH private key file, as `ssh-keygen` writes it: encrypted with
    /// aes256-ctr under a bcrypt key of [`DEFAULT_KDF_ROUNDS`] rounds when `passphrase` is
    /// given and not empty, in the clear otherwise. `rng` supplies the salt and the check
    /// value.
    pub fn to_openssh(
        &self,
        comment: &str,
        passphrase: Option<&[u8]>,
        rng: &mut dyn Rng,
    ) -> Result<Zeroizing<String>, UserKeyError> {
        self.to_openssh_with_rounds(comment, passphrase, DEFAULT_KDF_ROUNDS, rng)
    }

    /// [`Self::to_openssh`] with a chosen number of bcrypt rounds (`ssh-keygen -a`), from 1
    /// to [`MAX_KDF_ROUNDS`] so that every file written can be read back.
    pub fn to_openssh_with_rounds(
        &self,
        comment: &str,
        passphrase: Option<&[u8]>,
        rounds: u32,
        rng: &mut dyn Rng,
    ) -> Result<Zeroizing<String>, UserKeyError> {
        if !(1..=MAX_KDF_ROUNDS).contains(&rounds) {
            return Err(UserKeyError::KdfRounds { rounds });
        }
        let passphrase = passphrase.filter(|p| !p.is_empty());
        let cipher = if passphrase.is_some() {
            Cipher::Aes256Ctr
        } else {
            Cipher::None
        };

        let mut kdf_options = Vec::new();
        let mut salt = [0u8; SALT_LEN];
        if passphrase.is_some() {
            rng.fill(&mut salt);
            kdf_options.put_string(&salt);
            kdf_options.put_u32(rounds);
        }

        let mut checkint = [0u8; 4];
        rng.fill(&mut checkint);
        let mut section = self.private_section(comment, checkint, cipher.block_size())?;
        if let Some(passphrase) = passphrase {
            let (key, iv) = derive_key_iv(passphrase, &salt, rounds)?;
            let mut aes =
                AesCtr::new(&key[..], &iv).ok_or(UserKeyError::Malformed("cipher key"))?;
            aes.apply(&mut section);
        }

        let public = self.public.to_blob();
        let kdf_name: &[u8] = if passphrase.is_some() {
            b"bcrypt"
        } else {
            b"none"
        };
        // Sized up front: the body holds the private key in the clear when there is no
        // passphrase, and a reallocation would leave a copy behind.
        let capacity = MAGIC.len() + 40 + kdf_options.len() + public.len() + section.len();
        let mut body = Zeroizing::new(Vec::with_capacity(capacity));
        body.put_raw(MAGIC);
        body.put_string(cipher.name().as_bytes());
        body.put_string(kdf_name);
        body.put_string(&kdf_options);
        body.put_u32(1);
        body.put_string(&public);
        body.put_string(&section);

        let encoded = Zeroizing::new(base64::encode(&body));
        let lines = encoded.len().div_ceil(LINE_WIDTH);
        let mut out = Zeroizing::new(String::with_capacity(
            BEGIN.len() + END.len() + encoded.len() + lines + 2,
        ));
        out.push_str(BEGIN);
        out.push('\n');
        for line in encoded.as_bytes().chunks(LINE_WIDTH) {
            // Base64 is ASCII, so every chunk is a whole string.
            out.push_str(core::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
        Ok(out)
    }

    /// The `.pub` line for this key: `TYPE BASE64 COMMENT`, without a newline.
    pub fn public_line(&self, comment: &str) -> String {
        public_key_line(&self.public, comment)
    }

    /// The private section before encryption: check values, key, comment, padding.
    fn private_section(
        &self,
        comment: &str,
        checkint: [u8; 4],
        block: usize,
    ) -> Result<Zeroizing<Vec<u8>>, UserKeyError> {
        let fields = self.private_fields()?;
        let fields_len: usize = fields.iter().map(|f| 4 + f.len()).sum();
        let key_type = self.public.key_type();
        let capacity = 8 + 4 + key_type.len() + fields_len + 4 + comment.len() + block;

        let mut out = Zeroizing::new(Vec::with_capacity(capacity));
        out.put_raw(&checkint);
        out.put_raw(&checkint);
        out.put_string(key_type.as_bytes());
        for field in &fields {
            match *field {
                Field::String(v) => out.put_string(v),
                Field::Mpint(v) => out.put_mpint(v),
                Field::Joined(a, b) => {
                    out.put_u32(u32::try_from(a.len() + b.len()).unwrap_or(u32::MAX));
                    out.put_raw(a);
                    out.put_raw(b);
                }
            }
        }
        out.put_string(comment.as_bytes());
        let mut pad = 1u8;
        while !out.len().is_multiple_of(block) {
            out.push(pad);
            pad = pad.wrapping_add(1);
        }
        Ok(out)
    }

    /// The key's fields in the private section, after the type (OpenSSH `PROTOCOL.key`
    /// section 3): for Ed25519 the public key, then seed and public key again as one
    /// string; for ECDSA the curve, point and scalar; for RSA `n`, `e`, `d`, `iqmp`, `p`,
    /// `q`.
    fn private_fields(&self) -> Result<Vec<Field<'_>>, UserKeyError> {
        Ok(match (&self.secret, &self.public) {
            (Secret::Ed25519(seed), PublicKey::Ed25519(public)) => {
                vec![Field::String(public), Field::Joined(&seed[..], public)]
            }
            (Secret::EcdsaP256(scalar), PublicKey::EcdsaP256(point)) => vec![
                Field::String(NISTP256),
                Field::String(&point[..]),
                Field::Mpint(&scalar[..]),
            ],
            (Secret::Rsa(s), PublicKey::Rsa { e, n }) => vec![
                Field::Mpint(n),
                Field::Mpint(e),
                Field::Mpint(&s.d),
                Field::Mpint(&s.iqmp),
                Field::Mpint(&s.p),
                Field::Mpint(&s.q),
            ],
            // The constructors pair each secret with its own kind of public key.
            _ => return Err(MISMATCHED_HALVES),
        })
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserKey")
            .field("public", &self.public)
            .field("comment", &self.comment)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl RsaSecret {
    fn parts<'a>(&'a self, n: &'a [u8], e: &'a [u8]) -> RsaPrivateParts<'a> {
        RsaPrivateParts {
            n,
            e,
            d: &self.d,
            p: &self.p,
            q: &self.q,
            dp: &self.dp,
            dq: &self.dq,
            iqmp: &self.iqmp,
        }
    }
}

/// One field of a private section, borrowed from the key.
#[derive(Clone, Copy)]
enum Field<'a> {
    String(&'a [u8]),
    Mpint(&'a [u8]),
    /// One string made of two parts, written without joining them in a buffer.
    Joined(&'a [u8], &'a [u8]),
}

impl Field<'_> {
    /// An upper bound on the bytes after the length field (an mpint may gain a zero).
    fn len(&self) -> usize {
        match self {
            Self::String(v) | Self::Mpint(v) => v.len() + 1,
            Self::Joined(a, b) => a.len() + b.len(),
        }
    }
}

/// Parses a `.pub` file or line: `TYPE BASE64 [COMMENT]`, as `ssh-keygen` writes it. The
/// type must name the blob's own type. Returns the key and the comment (empty if none).
///
/// ```
/// # use ssh_proto::userkey::parse_public_key_line;
/// let line = "ssh-ed25519 \
///     AAAAC3NzaC1lZDI1NTE5AAAAIK3j7FCdJUD9JsW8b1pRfGw4A0RoWMf2yjvOPfpdaGsE me@host";
/// let (key, comment) = parse_public_key_line(line)?;
/// assert_eq!((key.key_type(), comment.as_str()), ("ssh-ed25519", "me@host"));
/// # Ok::<(), ssh_proto::userkey::UserKeyError>(())
/// ```
pub fn parse_public_key_line(text: &str) -> Result<(PublicKey, String), UserKeyError> {
    let line = text.trim();
    if line.contains('\n') {
        return Err(UserKeyError::Malformed(
            "public key line: more than one line",
        ));
    }
    let mut fields = line.splitn(3, [' ', '\t']);
    let key_type = fields.next().unwrap_or_default();
    let encoded = fields
        .next()
        .ok_or(UserKeyError::Malformed("public key line: no key"))?;
    let comment = fields.next().unwrap_or_default().trim();

    let blob = base64::decode(encoded).map_err(UserKeyError::Base64)?;
    let key = PublicKey::from_blob(&blob)?;
    if key.key_type() != key_type {
        return Err(UserKeyError::Malformed(
            "public key line: type differs from the key",
        ));
    }
    Ok((key, comment.to_owned()))
}

/// A `.pub` line for `key`: `TYPE BASE64 COMMENT`, or `TYPE BASE64` with no comment.
pub fn public_key_line(key: &PublicKey, comment: &str) -> String {
    let mut line = format!("{} {}", key.key_type(), base64::encode(&key.to_blob()));
    if !comment.is_empty() {
        line.push(' ');
        line.push_str(comment);
    }
    line
}

/// The base64 between the armour lines, decoded. Blank lines and spaces around lines are
/// tolerated, and CRLF line ends; anything but whitespace after the END line is not.
fn dearmor(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, UserKeyError> {
    if text.len() > MAX_FILE_LEN {
        return Err(UserKeyError::TooLarge { len: text.len() });
    }
    let text = core::str::from_utf8(text)
        .map_err(|_| UserKeyError::NotOpensshKey("the text is not UTF-8"))?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(BEGIN) => {}
        first => return Err(UserKeyError::NotOpensshKey(what_it_is(first.unwrap_or("")))),
    }

    let mut encoded = Zeroizing::new(String::with_capacity(text.len()));
    let mut ended = false;
    for line in lines.by_ref() {
        if line == END {
            ended = true;
            break;
        }
        encoded.push_str(line);
    }
    if !ended {
        return Err(UserKeyError::Malformed("armour: no END line"));
    }
    if lines.next().is_some() {
        return Err(UserKeyError::Malformed("armour: text after the END line"));
    }
    base64::decode(encoded.as_bytes())
        .map(Zeroizing::new)
        .map_err(UserKeyError::Base64)
}

/// A hint for a file that does not start with the OpenSSH armour.
fn what_it_is(first_line: &str) -> &'static str {
    if first_line.starts_with("-----BEGIN") && first_line.contains("PRIVATE KEY") {
        "it is a PEM private key; `ssh-keygen -p -f FILE` rewrites it in the OpenSSH format"
    } else if first_line.starts_with("PuTTY-User-Key-File") {
        "it is a PuTTY key; export it from PuTTYgen in the OpenSSH format"
    } else if first_line.starts_with("ssh-") || first_line.starts_with("ecdsa-") {
        "it is a public key, not a private key"
    } else {
        "no -----BEGIN OPENSSH PRIVATE KEY----- line"
    }
}

fn parse_bcrypt_options(options: &[u8]) -> Result<Kdf, UserKeyError> {
    let mut r = Reader::new(options);
    let salt = r.string("bcrypt salt").map_err(malformed)?;
    let rounds = r.u32("bcrypt rounds").map_err(malformed)?;
    r.finish()
        .map_err(|_| UserKeyError::Malformed("kdf options"))?;
    if salt.is_empty() {
        return Err(UserKeyError::Malformed("bcrypt salt"));
    }
    if rounds == 0 {
        return Err(UserKeyError::Malformed("bcrypt rounds"));
    }
    Ok(Kdf::Bcrypt {
        salt: salt.to_vec(),
        rounds,
    })
}

type CipherKey = Zeroizing<[u8; 32]>;
type CipherIv = Zeroizing<[u8; 16]>;

/// bcrypt_pbkdf (OpenSSH's `bcrypt_pbkdf.c`) for the AES-256 key and a 16-byte IV.
///
/// OpenSSH derives `key length + IV length` bytes: 48 for aes256-ctr, 44 for GCM with its
/// 12-byte IV. bcrypt_pbkdf interleaves its 32-byte blocks with a stride set by the output
/// length, 2 for both, so the 44 bytes are the first 44 of the 48 and one derivation
/// serves both ciphers.
///
/// The crate's scratch memory is ours, so it is wiped too; the SHA-512 of the passphrase
/// that the crate computes internally is not, which only the crate could change.
fn derive_key_iv(
    passphrase: &[u8],
    salt: &[u8],
    rounds: u32,
) -> Result<(CipherKey, CipherIv), UserKeyError> {
    let mut out = Zeroizing::new([0u8; 48]);
    let mut scratch = Zeroizing::new([0u8; 64]);
    bcrypt_pbkdf::bcrypt_pbkdf_with_memory(
        passphrase,
        salt,
        rounds,
        &mut out[..],
        &mut scratch[..],
    )
    .map_err(|_| UserKeyError::Malformed("bcrypt parameters"))?;

    let (key_bytes, iv_bytes) = out.split_at(32);
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(key_bytes);
    let mut iv = Zeroizing::new([0u8; 16]);
    iv.copy_from_slice(iv_bytes);
    Ok((key, iv))
}

/// Reads the decrypted private section: check values, one key, comment, padding.
fn parse_private_section(
    provider: &dyn CryptoProvider,
    section: &[u8],
    encrypted: bool,
) -> Result<UserKey, UserKeyError> {
    let mut r = Reader::new(section);
    let check1 = r.u32("check value").map_err(malformed)?;
    let check2 = r.u32("check value").map_err(malformed)?;
    if check1 != check2 {
        // Encrypted, this is what a wrong key gives; in the clear, the file is corrupt.
        return Err(if encrypted {
            UserKeyError::WrongPassphrase
        } else {
            UserKeyError::Malformed("check values differ")
        });
    }

    let key_type = r.string("private key type").map_err(malformed)?;
    let (public, secret) = match key_type {
        b"ssh-ed25519" => read_ed25519(provider, &mut r)?,
        b"ecdsa-sha2-nistp256" => read_ecdsa(&mut r)?,
        b"ssh-rsa" => read_rsa(&mut r)?,
        other => return Err(KeyError::UnsupportedKeyType(escaped(other)).into()),
    };
    let comment = r.string("comment").map_err(malformed)?;
    let comment = String::from_utf8_lossy(comment).into_owned();

    // Padding 1, 2, 3, ... to the block size, as OpenSSH checks it.
    let padding_ok = r
        .remaining()
        .iter()
        .enumerate()
        .all(|(i, &b)| usize::from(b) == (i + 1) & 0xff);
    if !padding_ok {
        return Err(UserKeyError::BadPadding);
    }

    Ok(UserKey {
        public,
        secret,
        comment,
    })
}

fn read_ed25519(
    provider: &dyn CryptoProvider,
    r: &mut Reader<'_>,
) -> Result<(PublicKey, Secret), UserKeyError> {
    let public: [u8; 32] = r
        .string("ed25519 public key")
        .ok()
        .and_then(|p| p.try_into().ok())
        .ok_or(UserKeyError::Malformed("ed25519 public key"))?;
    // The "private key" is the seed followed by the public key again.
    let both = r
        .string("ed25519 private key")
        .ok()
        .filter(|b| b.len() == 64)
        .ok_or(UserKeyError::Malformed("ed25519 private key"))?;
    let (seed_bytes, again) = both.split_at(32);
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(seed_bytes);

    if again != public || provider.ed25519_public(&seed) != public {
        return Err(UserKeyError::InconsistentKey(
            "the ed25519 seed does not give its public key",
        ));
    }
    Ok((PublicKey::Ed25519(public), Secret::Ed25519(seed)))
}

fn read_ecdsa(r: &mut Reader<'_>) -> Result<(PublicKey, Secret), UserKeyError> {
    let curve = r.string("ecdsa curve name").map_err(malformed)?;
    if curve != NISTP256 {
        return Err(KeyError::WrongCurve(escaped(curve)).into());
    }
    let point: [u8; 65] = r
        .string("ecdsa public key")
        .ok()
        .and_then(|p| p.try_into().ok())
        .ok_or(KeyError::InvalidEcdsaPoint)?;
    let d = r.mpint_positive("ecdsa private key").map_err(malformed)?;
    let start = 32usize
        .checked_sub(d.len())
        .ok_or(UserKeyError::Malformed("ecdsa private key"))?;
    let mut scalar = Zeroizing::new([0u8; 32]);
    scalar[start..].copy_from_slice(d);

    match ecdsa_public(&scalar) {
        Some(derived) if derived == point => {}
        Some(_) => {
            return Err(UserKeyError::InconsistentKey(
                "the ecdsa scalar does not give its public key",
            ));
        }
        None => {
            return Err(UserKeyError::InconsistentKey(
                "the ecdsa scalar is zero or not below the group order",
            ));
        }
    }
    Ok((
        PublicKey::EcdsaP256(Box::new(point)),
        Secret::EcdsaP256(scalar),
    ))
}

/// OpenSSH's private RSA fields: `n`, `e`, `d`, `iqmp`, `p`, `q` (in that order, unlike
/// the public blob's `e`, `n`).
fn read_rsa(r: &mut Reader<'_>) -> Result<(PublicKey, Secret), UserKeyError> {
    let mut next = |what| r.mpint_positive(what).map_err(malformed);
    let n = next("rsa modulus")?;
    let e = next("rsa exponent")?;
    let d = next("rsa private exponent")?;
    let iqmp = next("rsa iqmp")?;
    let p = next("rsa prime p")?;
    let q = next("rsa prime q")?;

    // The public checks first (size, exponent), through the one parser for key blobs.
    let public = PublicKey::from_blob(
        &PublicKey::Rsa {
            e: e.to_vec(),
            n: n.to_vec(),
        }
        .to_blob(),
    )?;
    let secret = rsa_secret(n, e, d, p, q)?;
    if strip_leading_zeros(&secret.iqmp) != iqmp {
        return Err(UserKeyError::InconsistentKey("rsa iqmp is not q^-1 mod p"));
    }
    Ok((public, Secret::Rsa(Box::new(secret))))
}

/// Checks RSA private parts with the `rsa` crate (p * q = n, d inverts e modulo p - 1 and
/// q - 1) and derives the CRT values that `ring` wants and OpenSSH does not store.
fn rsa_secret(n: &[u8], e: &[u8], d: &[u8], p: &[u8], q: &[u8]) -> Result<RsaSecret, UserKeyError> {
    use rsa::BoxedUint;

    let n_value = BoxedUint::from_be_slice_vartime(n);
    let precision = n_value.bits_precision();
    let secret = |v: &[u8]| {
        BoxedUint::from_be_slice(v, precision)
            .map(Zeroizing::new)
            .map_err(|_| UserKeyError::InconsistentKey("rsa part wider than the modulus"))
    };
    let (d_value, p_value, q_value) = (secret(d)?, secret(p)?, secret(q)?);

    let key = rsa::PrivateKey::from_components(
        n_value,
        BoxedUint::from_be_slice_vartime(e),
        (*d_value).clone(),
        vec![(*p_value).clone(), (*q_value).clone()],
    )
    .map_err(|_| NOT_A_PAIR)?;

    let magnitude = |v: &BoxedUint| {
        let bytes = Zeroizing::new(v.to_be_bytes());
        Zeroizing::new(strip_leading_zeros(&bytes).to_vec())
    };
    let dp = key.dp().map(magnitude).ok_or(NOT_A_PAIR)?;
    let dq = key.dq().map(magnitude).ok_or(NOT_A_PAIR)?;
    let iqmp = key
        .crt_coefficient()
        .map(Zeroizing::new)
        .map(|v| magnitude(&v))
        .ok_or(NOT_A_PAIR)?;

    Ok(RsaSecret {
        d: Zeroizing::new(d.to_vec()),
        p: Zeroizing::new(p.to_vec()),
        q: Zeroizing::new(q.to_vec()),
        iqmp,
        dp,
        dq,
    })
}

fn generate_rsa(bits: usize, rng: &mut dyn Rng) -> Result<UserKey, UserKeyError> {
    if !RSA_GENERATE_BITS.contains(&bits) {
        return Err(UserKeyError::UnsupportedKeySize { bits });
    }
    let key =
        rsa::PrivateKey::new(&mut RandCore(rng), bits).map_err(|_| UserKeyError::BadRandomness)?;

    let magnitude = |v: &rsa::BoxedUint| {
        let bytes = Zeroizing::new(v.to_be_bytes());
        Zeroizing::new(strip_leading_zeros(&bytes).to_vec())
    };
    let n = key.n_bytes();
    let e = key.e_bytes();
    let d = magnitude(key.d());
    let [first, second] = key.primes() else {
        return Err(UserKeyError::InconsistentKey("rsa key without two primes"));
    };
    let (mut p, mut q) = (magnitude(first.as_ref()), magnitude(second.as_ref()));
    // OpenSSL, and so `ssh-keygen`, stores the larger prime as p; `ring` signs with such
    // keys directly.
    if (q.len(), &q[..]) > (p.len(), &p[..]) {
        core::mem::swap(&mut p, &mut q);
    }

    let secret = rsa_secret(&n, &e, &d, &p, &q)?;
    let public = PublicKey::from_blob(
        &PublicKey::Rsa {
            e: e.to_vec(),
            n: n.to_vec(),
        }
        .to_blob(),
    )?;
    Ok(UserKey::new(public, Secret::Rsa(Box::new(secret))))
}

/// The uncompressed public point for a P-256 scalar, or `None` if the scalar is zero or
/// not below the group order.
fn ecdsa_public(scalar: &[u8; 32]) -> Option<[u8; 65]> {
    let key = p256::ecdsa::SigningKey::from_slice(scalar).ok()?;
    let point = key.verifying_key().to_sec1_point(false);
    point.as_bytes().try_into().ok()
}

/// ECDSA P-256 with SHA-256 (RFC 5656 section 3.1.2), its nonce from RFC 6979 so that
/// no randomness is needed. Returns the SSH encoding: `mpint r`, `mpint s`.
///
/// One implementation for both providers, like X25519 and AES-CTR: `ring` signs ECDSA
/// only with nonces drawn from its own `SystemRandom`, which the sans-IO core does not use.
fn ecdsa_sign(scalar: &[u8; 32], data: &[u8]) -> Result<Vec<u8>, UserKeyError> {
    let key =
        p256::ecdsa::SigningKey::from_slice(scalar).map_err(|_| UserKeyError::SigningFailed)?;
    let sig: p256::ecdsa::Signature = key
        .try_sign(data)
        .map_err(|_| UserKeyError::SigningFailed)?;
    let (r, s) = sig.split_bytes();
    let mut out = Vec::with_capacity(2 * (4 + 33));
    out.put_mpint(&r);
    out.put_mpint(&s);
    Ok(out)
}

/// The caller's [`Rng`] as the `rand_core` generator the `rsa` crate's key generation
/// takes.
struct RandCore<'a>(&'a mut dyn Rng);

impl rsa::rand_core::TryRng for RandCore<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.0.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.0.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

/// The caller promises a cryptographic generator: [`Rng`] is the one the whole core uses
/// for keys and nonces.
impl rsa::rand_core::TryCryptoRng for RandCore<'_> {}

fn malformed(e: crate::wire::WireError) -> UserKeyError {
    UserKeyError::Malformed(e.what)
}

fn strip_leading_zeros(mut bytes: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// File bytes made safe for a message: escaped, and cut to 64 bytes.
fn escaped(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let cut = bytes.get(..MAX).unwrap_or(bytes);
    let mut out = cut.escape_ascii().to_string();
    if cut.len() < bytes.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::all_providers;
    use crate::sim::SeededRng;

    const ED25519: &str = include_str!("../../vectors/userkeys/throwaway-ed25519");

    #[test]
    fn padding_and_check_values() {
        let provider = all_providers()[0];
        let key = UserKey::from_openssh(provider, ED25519, None).unwrap();
        for block in [8, 16] {
            let section = key.private_section("c", [1, 2, 3, 4], block).unwrap();
            assert_eq!(section.len() % block, 0);
            let parsed = parse_private_section(provider, &section, false).unwrap();
            assert_eq!(parsed.public, key.public);
            assert_eq!(parsed.comment, "c");

            // Every padding byte is checked, including a zero where 1 belongs.
            let mut bad = section.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x40;
            let err = parse_private_section(provider, &bad, false).map(|_| ());
            assert_eq!(err, Err(UserKeyError::BadPadding));
        }

        let mut section = key.private_section("", [1, 2, 3, 4], 8).unwrap();
        section[7] = 5;
        let clear = parse_private_section(provider, &section, false).map(|_| ());
        assert_eq!(clear, Err(UserKeyError::Malformed("check values differ")));
        let encrypted = parse_private_section(provider, &section, true).map(|_| ());
        assert_eq!(encrypted, Err(UserKeyError::WrongPassphrase));
    }

    #[test]
    fn rand_core_adapter_passes_bytes_through() {
        use rsa::rand_core::TryRng;

        let mut a = SeededRng::new(9);
        let mut b = SeededRng::new(9);
        let mut adapter = RandCore(&mut a);
        let mut direct = [0u8; 12];
        b.fill(&mut direct);
        let mut via = [0u8; 12];
        adapter.try_fill_bytes(&mut via).unwrap();
        assert_eq!(via, direct);
    }

    #[test]
    fn escaped_names_are_cut() {
        assert_eq!(escaped(b"aes\x1b[2J"), "aes\\x1b[2J");
        assert_eq!(escaped(&[b'x'; 100]), format!("{}...", "x".repeat(64)));
    }
}
