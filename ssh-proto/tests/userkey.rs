//! User keys in OpenSSH's private key format, checked against OpenSSH's own tools.
//!
//! The files under `vectors/userkeys/` were written once by `ssh-keygen` (OpenSSH 9.2) and
//! are throwaway test keys (see the README there). Two tests run `ssh-keygen` live: it
//! reads back the files we write, and verifies our signatures wrapped as SSHSIG
//! (OpenSSH `PROTOCOL.sshsig`), so a signature that only our own verifier liked would fail.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proptest::prelude::*;
use ssh_proto::base64;
use ssh_proto::config::Rng;
use ssh_proto::crypto::{CryptoProvider, HashAlg, all_providers, digest};
use ssh_proto::hostkey::{KeyError, PublicKey, SignatureAlg};
use ssh_proto::sim::SeededRng;
use ssh_proto::userkey::{
    Cipher, KeyKind, MAX_KDF_ROUNDS, PrivateKeyFile, UserKey, UserKeyError, parse_public_key_line,
    public_key_line,
};
use ssh_proto::wire::{Reader, Writer};

/// Every stored file name starts with this.
const VECTOR_PREFIX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vectors/userkeys/throwaway-"
);
const PASSPHRASE: &[u8] = b"throwaway test passphrase";
const COMMENT: &str = "throwaway test key, not a secret";

/// Every stored key: file name, cipher, bcrypt rounds.
const FILES: [(&str, Cipher, Option<u32>); 10] = [
    ("ed25519", Cipher::None, None),
    ("ed25519-aes256-ctr-16-rounds", Cipher::Aes256Ctr, Some(16)),
    ("ed25519-aes256-gcm", Cipher::Aes256Gcm, Some(2)),
    ("ecdsa-p256", Cipher::None, None),
    ("ecdsa-p256-aes256-ctr", Cipher::Aes256Ctr, Some(2)),
    ("rsa-1024", Cipher::None, None),
    ("rsa-2048", Cipher::None, None),
    ("rsa-2048-aes256-ctr", Cipher::Aes256Ctr, Some(2)),
    ("rsa-2560", Cipher::None, None),
    ("rsa-3072-aes256-ctr", Cipher::Aes256Ctr, Some(2)),
];

fn vector(name: &str) -> String {
    let path = format!("{VECTOR_PREFIX}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn passphrase_for(cipher: Cipher) -> Option<&'static [u8]> {
    (cipher != Cipher::None).then_some(PASSPHRASE)
}

fn load(provider: &dyn CryptoProvider, name: &str) -> UserKey {
    let (_, cipher, _) = FILES.iter().find(|f| f.0 == name).unwrap();
    UserKey::from_openssh(provider, vector(name), passphrase_for(*cipher)).unwrap()
}

fn algorithms(key: &PublicKey) -> Vec<SignatureAlg> {
    SignatureAlg::ALL
        .into_iter()
        .filter(|alg| key.supports(*alg))
        .collect()
}

/// The decoded body of a key file, between the armour lines.
fn body(text: &str) -> Vec<u8> {
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::decode(b64).unwrap()
}

/// A body in armour, wrapped as `ssh-keygen` wraps it.
fn armour(body: &[u8]) -> String {
    let b64 = base64::encode(body);
    let mut out = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out + "-----END OPENSSH PRIVATE KEY-----\n"
}

/// The fields of a key file's body, to rebuild it with one of them changed.
#[derive(Clone)]
struct Parts {
    cipher: Vec<u8>,
    kdf: Vec<u8>,
    kdf_options: Vec<u8>,
    keys: u32,
    public: Vec<u8>,
    private: Vec<u8>,
    after: Vec<u8>,
}

impl Parts {
    fn of(text: &str) -> Self {
        let body = body(text);
        let mut r = Reader::new(&body);
        assert_eq!(r.bytes(15, "magic").unwrap(), b"openssh-key-v1\0");
        Self {
            cipher: r.string("c").unwrap().to_vec(),
            kdf: r.string("k").unwrap().to_vec(),
            kdf_options: r.string("o").unwrap().to_vec(),
            keys: r.u32("n").unwrap(),
            public: r.string("p").unwrap().to_vec(),
            private: r.string("s").unwrap().to_vec(),
            after: r.remaining().to_vec(),
        }
    }

    fn build(&self) -> String {
        let mut out = b"openssh-key-v1\0".to_vec();
        out.put_string(&self.cipher);
        out.put_string(&self.kdf);
        out.put_string(&self.kdf_options);
        out.put_u32(self.keys);
        out.put_string(&self.public);
        out.put_string(&self.private);
        out.extend_from_slice(&self.after);
        armour(&out)
    }
}

/// Hands out the given bytes in order, to make a file's random fields what we want.
struct Replay(Vec<u8>);

impl Rng for Replay {
    fn fill(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "the replay ran out");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
}

fn decrypt_err(text: &str, passphrase: Option<&[u8]>) -> UserKeyError {
    let provider = all_providers()[0];
    match UserKey::from_openssh(provider, text, passphrase) {
        Ok(_) => panic!("the file was accepted"),
        Err(e) => e,
    }
}

#[test]
fn every_file_is_inspected_without_the_passphrase() {
    for (name, cipher, rounds) in FILES {
        let file = PrivateKeyFile::parse(vector(name)).unwrap();
        let (public, comment) = parse_public_key_line(&vector(&format!("{name}.pub"))).unwrap();
        assert_eq!(file.public(), &public, "{name}");
        assert_eq!(comment, COMMENT);
        assert_eq!(file.cipher(), cipher, "{name}");
        assert_eq!(file.needs_passphrase(), cipher != Cipher::None, "{name}");
        assert_eq!(file.kdf_rounds(), rounds, "{name}");
    }
}

#[test]
fn every_file_decrypts_and_its_signatures_verify() {
    let data = b"session identifier and USERAUTH_REQUEST fields";
    for (name, cipher, _) in FILES {
        let mut signatures = Vec::new();
        for provider in all_providers() {
            let what = format!("{name} with {}", provider.name());
            let file = PrivateKeyFile::parse(vector(name)).unwrap();
            let key = file.decrypt(provider, passphrase_for(cipher)).unwrap();
            assert_eq!(key.public(), file.public(), "{what}");
            assert_eq!(key.comment(), COMMENT, "{what}");

            for alg in algorithms(key.public()) {
                if name == "rsa-1024" {
                    let err = key.sign(provider, alg, data).unwrap_err();
                    assert_eq!(err, UserKeyError::Key(KeyError::WeakRsaKey { bits: 1024 }));
                    continue;
                }
                let sig = key.sign(provider, alg, data).unwrap();
                for verifier in all_providers() {
                    let public = key.public();
                    assert_eq!(public.verify(verifier, alg, data, &sig), Ok(()), "{what}");
                    let err = public.verify(verifier, alg, b"other data", &sig);
                    assert_eq!(err, Err(KeyError::BadSignature), "{what}");
                }
                signatures.push((alg, sig));
            }

            let wrong = match key.public() {
                PublicKey::Ed25519(_) => SignatureAlg::RsaSha256,
                _ => SignatureAlg::Ed25519,
            };
            let err = key.sign(provider, wrong, data).unwrap_err();
            assert!(matches!(
                err,
                UserKeyError::Key(KeyError::KeyTypeMismatch { .. })
            ));
        }

        // Every algorithm here is deterministic (ECDSA through RFC 6979), so the
        // providers, whichever code they sign with, give the very same bytes.
        let per_provider = signatures.len() / all_providers().len();
        if per_provider == 0 {
            continue;
        }
        let (first, rest) = signatures.split_at(per_provider);
        for other in rest.chunks(per_provider) {
            assert_eq!(first, other, "{name}: the providers disagree");
        }
    }
}

#[test]
fn passphrases_wrong_missing_and_empty() {
    for (name, cipher, _) in FILES.into_iter().filter(|f| f.1 != Cipher::None) {
        let text = vector(name);
        assert_eq!(
            decrypt_err(&text, Some(b"wrong passphrase")),
            UserKeyError::WrongPassphrase,
            "{name} ({cipher:?})"
        );
        assert_eq!(decrypt_err(&text, None), UserKeyError::PassphraseRequired);
        assert_eq!(
            decrypt_err(&text, Some(b"")),
            UserKeyError::PassphraseRequired
        );
    }
    assert_eq!(
        UserKeyError::WrongPassphrase.to_string(),
        "incorrect passphrase for the key file"
    );

    // A passphrase given for a file in the clear is not needed and does no harm.
    let provider = all_providers()[0];
    let key = UserKey::from_openssh(provider, vector("ed25519"), Some(b"unused")).unwrap();
    assert_eq!(key.comment(), COMMENT);
}

#[test]
fn files_in_the_clear_are_rewritten_byte_for_byte() {
    // With ssh-keygen's check value replayed, our writer must give its exact file.
    let provider = all_providers()[0];
    for (name, ..) in FILES.into_iter().filter(|f| f.1 == Cipher::None) {
        let text = vector(name);
        let checkint = Parts::of(&text).private[..4].to_vec();
        let key = UserKey::from_openssh(provider, &text, None).unwrap();
        let written = key
            .to_openssh(COMMENT, None, &mut Replay(checkint))
            .unwrap();
        assert_eq!(written.as_str(), text, "{name}");
    }
}

#[test]
fn written_files_read_back_with_and_without_passphrase() {
    let provider = all_providers()[0];
    let mut rng = SeededRng::new(7);
    for name in ["ed25519", "ecdsa-p256", "rsa-2048"] {
        let key = load(provider, name);
        let clear = key.to_openssh("a comment", None, &mut rng).unwrap();
        let again = UserKey::from_openssh(provider, clear.as_str(), None).unwrap();
        assert_eq!(again.public(), key.public());
        assert_eq!(again.comment(), "a comment");

        let locked = key
            .to_openssh_with_rounds("", Some(b"new passphrase"), 2, &mut rng)
            .unwrap();
        let file = PrivateKeyFile::parse(locked.as_str()).unwrap();
        assert_eq!(
            (file.cipher(), file.kdf_rounds()),
            (Cipher::Aes256Ctr, Some(2))
        );
        assert_eq!(file.public(), key.public());
        let again = file.decrypt(provider, Some(b"new passphrase")).unwrap();
        assert_eq!(again.public(), key.public());
        let err = file.decrypt(provider, Some(PASSPHRASE)).unwrap_err();
        assert_eq!(err, UserKeyError::WrongPassphrase);

        // An empty passphrase means no encryption, as in ssh-keygen.
        let empty = key.to_openssh("", Some(b""), &mut rng).unwrap();
        assert!(
            !PrivateKeyFile::parse(empty.as_str())
                .unwrap()
                .needs_passphrase()
        );
    }

    let key = load(provider, "ed25519");
    for rounds in [0, MAX_KDF_ROUNDS + 1] {
        let err = key.to_openssh_with_rounds("", Some(b"p"), rounds, &mut rng);
        assert_eq!(err.unwrap_err(), UserKeyError::KdfRounds { rounds });
    }
}

#[test]
fn generated_keys_sign_and_round_trip() {
    for provider in all_providers() {
        let mut rng = SeededRng::new(11);
        for kind in [
            KeyKind::Ed25519,
            KeyKind::EcdsaP256,
            KeyKind::Rsa { bits: 2048 },
        ] {
            let key = UserKey::generate(provider, kind, &mut rng).unwrap();
            assert_eq!(key.comment(), "");
            let other = UserKey::generate(provider, kind, &mut rng).unwrap();
            assert_ne!(key.public(), other.public(), "{kind:?} twice gave one key");

            for alg in algorithms(key.public()) {
                let sig = key.sign(provider, alg, b"data").unwrap();
                for verifier in all_providers() {
                    assert_eq!(key.public().verify(verifier, alg, b"data", &sig), Ok(()));
                }
            }
            let text = key.to_openssh("", None, &mut rng).unwrap();
            let again = UserKey::from_openssh(provider, text.as_str(), None).unwrap();
            assert_eq!(again.public(), key.public(), "{kind:?}");
            if let PublicKey::Rsa { e, n } = key.public() {
                assert_eq!((e.as_slice(), n.len()), (&[1, 0, 1][..], 256));
            }
        }

        for bits in [0, 1024, 2047, 8193, 16384] {
            let err = UserKey::generate(provider, KeyKind::Rsa { bits }, &mut rng).unwrap_err();
            assert_eq!(err, UserKeyError::UnsupportedKeySize { bits });
        }
    }
}

#[test]
fn a_broken_generator_gives_no_ecdsa_key() {
    /// Always the same byte: zero is not a scalar, and all-ones is above the group order.
    struct Constant(u8);
    impl Rng for Constant {
        fn fill(&mut self, dest: &mut [u8]) {
            dest.fill(self.0);
        }
    }
    let provider = all_providers()[0];
    for byte in [0x00, 0xff] {
        let err = UserKey::generate(provider, KeyKind::EcdsaP256, &mut Constant(byte));
        assert_eq!(err.unwrap_err(), UserKeyError::BadRandomness);
    }
}

#[test]
fn debug_never_shows_the_secret() {
    let provider = all_providers()[0];
    let text = vector("ed25519");
    let key = UserKey::from_openssh(provider, &text, None).unwrap();
    // The 64-byte private field starts with the seed; its first bytes in hex and decimal.
    let private = Parts::of(&text).private;
    let seed = &private[8 + 4 + 11 + 4 + 32 + 4..][..8];
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let decimal = format!("{}, {}, {}", seed[0], seed[1], seed[2]);

    for shown in [
        format!("{key:?}"),
        format!("{:?}", PrivateKeyFile::parse(&text).unwrap()),
    ] {
        assert!(!shown.contains(&hex), "{shown}");
        assert!(!shown.contains(&decimal), "{shown}");
    }
    assert!(format!("{key:?}").contains("<redacted>"));
}

#[test]
fn public_key_lines() {
    for (name, ..) in FILES {
        let text = vector(&format!("{name}.pub"));
        let (key, comment) = parse_public_key_line(&text).unwrap();
        assert_eq!(public_key_line(&key, &comment), text.trim_end());
    }

    let ed = vector("ed25519.pub");
    let (key, _) = parse_public_key_line(&ed).unwrap();
    let b64 = ed.split(' ').nth(1).unwrap();
    assert_eq!(public_key_line(&key, ""), format!("ssh-ed25519 {b64}"));
    let (_, comment) = parse_public_key_line(&format!("ssh-ed25519 {b64}")).unwrap();
    assert_eq!(comment, "");
    let (_, comment) = parse_public_key_line(&format!("ssh-ed25519\t{b64}  two  words ")).unwrap();
    assert_eq!(comment, "two  words");

    for bad in [
        String::new(),
        "ssh-ed25519".into(),
        format!("ssh-rsa {b64} type differs"),
        format!("ssh-ed25519 {b64}!"),
        format!("ssh-ed25519 {}", &b64[..b64.len() - 4]),
        format!("{ed}{ed}"),
    ] {
        assert!(parse_public_key_line(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn not_openssh_keys_say_what_they_are() {
    let cases = [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n", "PEM private key"),
        ("-----BEGIN PRIVATE KEY-----\n", "PEM private key"),
        ("PuTTY-User-Key-File-3: ssh-ed25519\n", "PuTTY key"),
        (&vector("ed25519.pub"), "public key"),
        ("", "no -----BEGIN OPENSSH PRIVATE KEY----- line"),
        ("hello\n", "no -----BEGIN OPENSSH PRIVATE KEY----- line"),
    ];
    for (text, hint) in cases {
        let err = PrivateKeyFile::parse(text).unwrap_err();
        let UserKeyError::NotOpensshKey(said) = err else {
            panic!("{text:?}: {err:?}");
        };
        assert!(said.contains(hint), "{said}");
    }
    let err = PrivateKeyFile::parse([0xff, 0xfe, b'\n']).unwrap_err();
    assert!(matches!(err, UserKeyError::NotOpensshKey(_)));
}

#[test]
fn armour_is_tolerant_of_whitespace_only() {
    let text = vector("ed25519");
    let crlf = format!("\n  {}\n\n", text.replace('\n', "\r\n"));
    assert!(PrivateKeyFile::parse(&crlf).is_ok());

    let no_end = text.replace("-----END OPENSSH PRIVATE KEY-----", "");
    let after_end = format!("{text}more\n");
    let bad_base64 = text.replacen("b3Bl", "b3B!", 1);
    assert_eq!(
        PrivateKeyFile::parse(&no_end).unwrap_err(),
        UserKeyError::Malformed("armour: no END line")
    );
    assert_eq!(
        PrivateKeyFile::parse(&after_end).unwrap_err(),
        UserKeyError::Malformed("armour: text after the END line")
    );
    assert!(matches!(
        PrivateKeyFile::parse(&bad_base64).unwrap_err(),
        UserKeyError::Base64(_)
    ));

    let huge = format!("{text}{}", " ".repeat(1 << 20));
    assert!(matches!(
        PrivateKeyFile::parse(&huge).unwrap_err(),
        UserKeyError::TooLarge { .. }
    ));
}

#[test]
fn truncated_files_are_errors() {
    for name in [
        "ed25519",
        "ecdsa-p256-aes256-ctr",
        "rsa-2048",
        "ed25519-aes256-gcm",
    ] {
        let text = vector(name);
        let body = body(&text);
        for cut in 0..body.len() {
            let err = PrivateKeyFile::parse(armour(&body[..cut]));
            assert!(err.is_err(), "{name} cut at {cut}");
        }
        // Cut in the text: each line boundary and inside the last line.
        for cut in 0..text.len() {
            if text.is_char_boundary(cut) && PrivateKeyFile::parse(&text[..cut]).is_ok() {
                // Only a cut in the trailing newline leaves the whole file.
                assert!(cut >= text.len() - 1, "{name} cut at {cut}");
            }
        }
    }
}

#[test]
fn header_fields_are_checked() {
    let clear = Parts::of(&vector("ed25519"));
    let locked = Parts::of(&vector("ecdsa-p256-aes256-ctr"));

    let mut p = clear.clone();
    let mut body = body(&p.build());
    body[0] = b'O';
    assert_eq!(
        PrivateKeyFile::parse(armour(&body)).unwrap_err(),
        UserKeyError::Malformed("magic")
    );

    for keys in [0, 2, u32::MAX] {
        p = clear.clone();
        p.keys = keys;
        assert_eq!(
            PrivateKeyFile::parse(p.build()).unwrap_err(),
            UserKeyError::KeyCount(keys)
        );
    }

    for name in [
        "aes128-ctr",
        "3des-cbc",
        "chacha20-poly1305@openssh.com",
        "\x1b[2J",
    ] {
        p = locked.clone();
        p.cipher = name.as_bytes().to_vec();
        let err = PrivateKeyFile::parse(p.build()).unwrap_err();
        assert_eq!(
            err,
            UserKeyError::UnsupportedCipher(name.as_bytes().escape_ascii().to_string())
        );
    }
    p = locked.clone();
    p.kdf = b"scrypt".to_vec();
    let err = PrivateKeyFile::parse(p.build()).unwrap_err();
    assert_eq!(err, UserKeyError::UnsupportedKdf("scrypt".into()));

    // No cipher with a key derivation, or a cipher without one.
    p = locked.clone();
    p.cipher = b"none".to_vec();
    assert!(matches!(
        PrivateKeyFile::parse(p.build()),
        Err(UserKeyError::Malformed(_))
    ));
    p = clear.clone();
    p.cipher = b"aes256-ctr".to_vec();
    p.private.resize(p.private.len() + 8, 0);
    assert!(matches!(
        PrivateKeyFile::parse(p.build()),
        Err(UserKeyError::Malformed(_))
    ));
    p = clear.clone();
    p.kdf_options = vec![0];
    assert!(matches!(
        PrivateKeyFile::parse(p.build()),
        Err(UserKeyError::Malformed(_))
    ));

    // The private section must fill whole blocks; nothing may follow it.
    p = locked.clone();
    p.private.pop();
    let err = PrivateKeyFile::parse(p.build()).unwrap_err();
    assert_eq!(err, UserKeyError::Malformed("private section length"));
    p = clear.clone();
    p.after = vec![0];
    let err = PrivateKeyFile::parse(p.build()).unwrap_err();
    assert_eq!(err, UserKeyError::Malformed("trailing bytes"));

    // A public key in the clear that is another key than the private one.
    p = clear.clone();
    p.public[20] ^= 0xff;
    assert_eq!(
        decrypt_err(&p.build(), None),
        UserKeyError::PublicKeyMismatch
    );

    // A public key that does not parse.
    p = clear.clone();
    p.public[5] ^= 0xff;
    assert!(matches!(
        PrivateKeyFile::parse(p.build()),
        Err(UserKeyError::Key(_))
    ));
}

fn bcrypt_options(salt: &[u8], rounds: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_string(salt);
    out.put_u32(rounds);
    out
}

#[test]
fn absurd_rounds_are_refused_before_deriving() {
    let locked = Parts::of(&vector("ecdsa-p256-aes256-ctr"));
    for rounds in [MAX_KDF_ROUNDS + 1, u32::MAX] {
        let mut p = locked.clone();
        p.kdf_options = bcrypt_options(&[7; 16], rounds);
        // Still inspectable: the public key needs no derivation.
        let file = PrivateKeyFile::parse(p.build()).unwrap();
        assert_eq!(file.kdf_rounds(), Some(rounds));
        assert_eq!(
            file.public(),
            &load(all_providers()[0], "ecdsa-p256-aes256-ctr")
                .public()
                .clone()
        );
        let err = file
            .decrypt(all_providers()[0], Some(PASSPHRASE))
            .unwrap_err();
        assert_eq!(err, UserKeyError::KdfRounds { rounds });
        assert!(err.to_string().contains("ssh-keygen -p"), "{err}");
    }

    let mut p = locked.clone();
    for (options, what) in [
        (bcrypt_options(&[7; 16], 0), "bcrypt rounds"),
        (bcrypt_options(&[], 16), "bcrypt salt"),
        (
            [bcrypt_options(&[7; 16], 16), vec![0]].concat(),
            "kdf options",
        ),
        (vec![0, 0, 0, 16, 1, 2], "bcrypt salt"),
    ] {
        p.kdf_options = options;
        assert_eq!(
            PrivateKeyFile::parse(p.build()).unwrap_err(),
            UserKeyError::Malformed(what)
        );
    }
}

/// A file in the clear whose private section is replaced, padded to 8 bytes.
fn with_private(parts: &Parts, fields: &[u8], comment: &[u8]) -> String {
    let mut private = vec![1, 2, 3, 4, 1, 2, 3, 4];
    private.extend_from_slice(fields);
    private.put_string(comment);
    let mut pad = 1;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut p = parts.clone();
    p.private = private;
    p.build()
}

#[test]
fn private_sections_are_checked() {
    let ed = Parts::of(&vector("ed25519"));
    let mut r = Reader::new(&ed.private[8..]);
    let key_type = r.string("t").unwrap().to_vec();
    let public = r.string("p").unwrap().to_vec();
    let both = r.string("s").unwrap().to_vec();
    let fields = |public: &[u8], both: &[u8]| {
        let mut out = Vec::new();
        out.put_string(&key_type);
        out.put_string(public);
        out.put_string(both);
        out
    };
    assert!(
        UserKey::from_openssh(
            all_providers()[0],
            with_private(&ed, &fields(&public, &both), b""),
            None
        )
        .is_ok()
    );

    // Check values that differ, in a file in the clear: corruption, not a passphrase.
    let mut p = ed.clone();
    p.private[0] ^= 1;
    assert_eq!(
        decrypt_err(&p.build(), None),
        UserKeyError::Malformed("check values differ")
    );

    // Padding that is not 1, 2, 3, ...
    p = ed.clone();
    *p.private.last_mut().unwrap() = 0;
    assert_eq!(decrypt_err(&p.build(), None), UserKeyError::BadPadding);

    // The seed that does not give the public key; the public key repeated wrongly.
    let mut wrong_seed = both.clone();
    wrong_seed[0] ^= 1;
    let mut wrong_copy = both.clone();
    wrong_copy[63] ^= 1;
    for bad in [wrong_seed, wrong_copy] {
        let err = decrypt_err(&with_private(&ed, &fields(&public, &bad), b""), None);
        assert!(matches!(err, UserKeyError::InconsistentKey(_)), "{err:?}");
    }
    for (public, both) in [(&public[..31], &both[..]), (&public[..], &both[..63])] {
        let err = decrypt_err(&with_private(&ed, &fields(public, both), b""), None);
        assert!(matches!(err, UserKeyError::Malformed(_)), "{err:?}");
    }

    // Another valid key than the one in the clear part.
    let other = Parts::of(&vector("ed25519-aes256-gcm"));
    let mut p = ed.clone();
    p.public = other.public.clone();
    assert_eq!(
        decrypt_err(&p.build(), None),
        UserKeyError::PublicKeyMismatch
    );

    // A key type we do not have.
    let mut dss = Vec::new();
    dss.put_string(b"ssh-dss");
    let err = decrypt_err(&with_private(&ed, &dss, b""), None);
    assert_eq!(
        err,
        UserKeyError::Key(KeyError::UnsupportedKeyType("ssh-dss".into()))
    );
}

#[test]
fn ecdsa_scalars_are_checked() {
    let ec = Parts::of(&vector("ecdsa-p256"));
    let mut r = Reader::new(&ec.private[8..]);
    let key_type = r.string("t").unwrap().to_vec();
    r.string("curve").unwrap();
    let point = r.string("q").unwrap().to_vec();
    let fields = |curve: &[u8], d: &[u8]| {
        let mut out = Vec::new();
        out.put_string(&key_type);
        out.put_string(curve);
        out.put_string(&point);
        out.put_mpint(d);
        out
    };
    // The group order of P-256 (FIPS 186-4 D.1.2.3), and one more.
    let order = base64::decode("/////wAAAAD//////////7zm+q2nF56E87nKwvxjJVE=").unwrap();
    let mut above = order.clone();
    *above.last_mut().unwrap() += 1;

    for d in [&[][..], &order, &above, &[1][..], &[0xff; 33]] {
        let err = decrypt_err(&with_private(&ec, &fields(b"nistp256", d), b""), None);
        assert!(
            matches!(
                err,
                UserKeyError::InconsistentKey(_) | UserKeyError::Malformed(_)
            ),
            "{err:?}"
        );
    }
    let err = decrypt_err(&with_private(&ec, &fields(b"nistp384", &[1]), b""), None);
    assert_eq!(
        err,
        UserKeyError::Key(KeyError::WrongCurve("nistp384".into()))
    );
}

#[test]
fn rsa_parts_are_checked() {
    let rsa = Parts::of(&vector("rsa-2048"));
    let mut r = Reader::new(&rsa.private[8..]);
    let key_type = r.string("t").unwrap().to_vec();
    let parts: Vec<Vec<u8>> = (0..6)
        .map(|_| r.mpint_positive("m").unwrap().to_vec())
        .collect();
    let build = |parts: &[Vec<u8>]| {
        let mut out = Vec::new();
        out.put_string(&key_type);
        for part in parts {
            out.put_mpint(part);
        }
        with_private(&rsa, &out, b"")
    };
    assert!(UserKey::from_openssh(all_providers()[0], build(&parts), None).is_ok());

    // n, e, d, iqmp, p, q: break each in turn.
    for (i, what) in ["n", "e", "d", "iqmp", "p", "q"].into_iter().enumerate() {
        let mut bad = parts.clone();
        let last = bad[i].len() - 1;
        bad[i][last] ^= 2;
        let err = decrypt_err(&build(&bad), None);
        assert!(
            matches!(
                err,
                UserKeyError::InconsistentKey(_)
                    | UserKeyError::PublicKeyMismatch
                    | UserKeyError::Key(_)
            ),
            "{what}: {err:?}"
        );
    }
    let mut swapped = parts.clone();
    swapped.swap(4, 5);
    let err = decrypt_err(&build(&swapped), None);
    assert!(matches!(err, UserKeyError::InconsistentKey(_)), "{err:?}");
    let mut zero = parts.clone();
    zero[4] = vec![];
    assert!(matches!(
        decrypt_err(&build(&zero), None),
        UserKeyError::InconsistentKey(_)
    ));
    let mut wide = parts.clone();
    wide[2] = vec![0x7f; 300];
    assert!(matches!(
        decrypt_err(&build(&wide), None),
        UserKeyError::InconsistentKey(_)
    ));
}

#[test]
fn a_flipped_gcm_tag_or_ciphertext_fails() {
    let text = vector("ed25519-aes256-gcm");
    let mut p = Parts::of(&text);
    p.after[15] ^= 1;
    assert_eq!(
        decrypt_err(&p.build(), Some(PASSPHRASE)),
        UserKeyError::WrongPassphrase
    );
    let mut p = Parts::of(&text);
    p.private[40] ^= 1;
    assert_eq!(
        decrypt_err(&p.build(), Some(PASSPHRASE)),
        UserKeyError::WrongPassphrase
    );
    let mut p = Parts::of(&text);
    p.after.pop();
    assert_eq!(
        PrivateKeyFile::parse(p.build()).unwrap_err(),
        UserKeyError::Malformed("gcm tag")
    );
}

/// Runs `ssh-keygen` with `args`; its exit status, standard output and standard error.
fn ssh_keygen(args: &[&str], input: &[u8]) -> (bool, String, String) {
    use std::io::Write;

    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh-keygen from OpenSSH must be installed for this test");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder of its own under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ssh-proto-userkey-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes a file readable by its owner only, as ssh-keygen wants private keys.
    fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ssh-keygen -y` derives the public key from files we wrote, encrypted with our
/// default (16 bcrypt rounds, as ssh-keygen's own) or in the clear.
#[test]
fn ssh_keygen_reads_the_files_we_write() {
    let dir = TempDir::new("write");
    let provider = all_providers()[0];
    let mut rng = SeededRng::new(3);
    let kinds = [
        KeyKind::Ed25519,
        KeyKind::EcdsaP256,
        KeyKind::Rsa { bits: 2048 },
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let key = UserKey::generate(provider, kind, &mut rng).unwrap();
        let expected = key.public_line("");

        let clear = key
            .to_openssh("written by ssh-proto", None, &mut rng)
            .unwrap();
        let file = dir.write(&format!("clear-{i}"), clear.as_bytes());
        let (ok, out, err) = ssh_keygen(&["-y", "-f", path(&file)], b"");
        assert!(ok, "{kind:?}: {err}");
        assert_eq!(out.trim_end(), format!("{expected} written by ssh-proto"));

        let locked = key.to_openssh("", Some(b"pass phrase"), &mut rng).unwrap();
        let file = dir.write(&format!("locked-{i}"), locked.as_bytes());
        let (ok, out, err) = ssh_keygen(&["-y", "-P", "pass phrase", "-f", path(&file)], b"");
        assert!(ok, "{kind:?}: {err}");
        assert_eq!(out.trim_end(), expected);
        let (ok, ..) = ssh_keygen(&["-y", "-P", "wrong", "-f", path(&file)], b"");
        assert!(!ok, "{kind:?}: ssh-keygen took a wrong passphrase");
    }
}

/// The SSHSIG wrapper (OpenSSH `PROTOCOL.sshsig`) around a signature from `key`, armoured.
fn sshsig(
    provider: &dyn CryptoProvider,
    key: &UserKey,
    alg: SignatureAlg,
    namespace: &str,
    message: &[u8],
) -> String {
    let hash = digest(provider, HashAlg::Sha512, &[message]);
    let mut signed = b"SSHSIG".to_vec();
    signed.put_string(namespace.as_bytes());
    signed.put_string(b"");
    signed.put_string(b"sha512");
    signed.put_string(hash.as_bytes());
    let signature = key.sign(provider, alg, &signed).unwrap();

    let mut blob = b"SSHSIG".to_vec();
    blob.put_u32(1);
    blob.put_string(&key.public().to_blob());
    blob.put_string(namespace.as_bytes());
    blob.put_string(b"");
    blob.put_string(b"sha512");
    blob.put_string(&signature);

    let b64 = base64::encode(&blob);
    let mut out = String::from("-----BEGIN SSH SIGNATURE-----\n");
    for line in b64.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out + "-----END SSH SIGNATURE-----\n"
}

/// `ssh-keygen -Y verify` checks our signatures with OpenSSH's own code, for every stored
/// key, algorithm and provider; a changed message must fail there too.
#[test]
fn ssh_keygen_verifies_our_signatures() {
    let dir = TempDir::new("sshsig");
    let message = b"a message signed by ssh-proto\n";
    let mut count = 0;
    for provider in all_providers() {
        for (name, ..) in FILES.into_iter().filter(|f| f.0 != "rsa-1024") {
            let key = load(provider, name);
            let allowed = format!("tester@example {}\n", key.public_line(""));
            let allowed = dir.write("allowed_signers", allowed.as_bytes());
            for alg in algorithms(key.public()) {
                let sig = sshsig(provider, &key, alg, "file", message);
                let sig = dir.write("message.sig", sig.as_bytes());
                let args = [
                    "-Y",
                    "verify",
                    "-f",
                    path(&allowed),
                    "-I",
                    "tester@example",
                    "-n",
                    "file",
                    "-s",
                    path(&sig),
                ];
                let what = format!("{name} {alg} with {}", provider.name());
                let (ok, out, err) = ssh_keygen(&args, message);
                assert!(ok, "{what}: {out}{err}");
                assert!(out.starts_with("Good \"file\" signature"), "{what}: {out}");
                let (ok, ..) = ssh_keygen(&args, b"another message\n");
                assert!(!ok, "{what}: verified for another message");
                count += 1;
            }
        }
    }
    assert_eq!(count, 13 * all_providers().len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any byte of a file's body changed: an error or a key, never a panic. A key that
    /// loads still matches the public key in the clear.
    #[test]
    fn mutated_files_never_panic(
        which in 0usize..4,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let name = ["ed25519", "ecdsa-p256", "rsa-2048", "ed25519-aes256-gcm"][which];
        let mut body = body(&vector(name));
        let i = at.index(body.len());
        body[i] = byte;
        let provider = all_providers()[0];
        if let Ok(file) = PrivateKeyFile::parse(armour(&body)) {
            let passphrase = file.needs_passphrase().then_some(PASSPHRASE);
            if let Ok(key) = file.decrypt(provider, passphrase) {
                prop_assert_eq!(key.public(), file.public());
            }
        }
    }

    /// Arbitrary bodies, with the right magic or without.
    #[test]
    fn arbitrary_bodies_never_panic(
        magic in any::<bool>(),
        rest in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut body = if magic { b"openssh-key-v1\0".to_vec() } else { Vec::new() };
        body.extend_from_slice(&rest);
        let _ = UserKey::from_openssh(all_providers()[0], armour(&body), Some(b"p"));
    }
}
