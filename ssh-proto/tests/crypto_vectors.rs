//! Known-answer tests for every cryptography provider compiled in, and cross-checks
//! between providers: what one seals the other opens, what one signs the other verifies.
//!
//! The vectors live as text files under `vectors/` at the workspace root; each file's
//! header names its source. A file is a list of records separated by blank lines, each
//! line `key = value` (values in hex unless the file says otherwise), `#` starts a comment.

use std::collections::HashMap;

use ssh_proto::crypto::kem::{
    self, KexFailure, MLKEM768_CIPHERTEXT_LEN, MLKEM768_PUBLIC_LEN, X25519_LEN,
};
use ssh_proto::crypto::{CryptoProvider, HashAlg, Unauthentic, VerifyKey, all_providers, digest};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/");

/// One record of a vector file.
struct Record {
    fields: HashMap<String, String>,
    line: usize,
}

impl Record {
    fn text(&self, key: &str) -> &str {
        match self.fields.get(key) {
            Some(value) => value,
            None => panic!("record at line {} has no `{key}`", self.line),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    fn hex(&self, key: &str) -> Vec<u8> {
        unhex(self.text(key))
    }

    fn array<const N: usize>(&self, key: &str) -> [u8; N] {
        match self.hex(key).try_into() {
            Ok(a) => a,
            Err(v) => panic!(
                "`{key}` at line {} has {} bytes, not {N}",
                self.line,
                v.len()
            ),
        }
    }

    /// A name for assertion messages.
    fn name(&self) -> String {
        match self.fields.get("name").or(self.fields.get("case")) {
            Some(name) => format!("{name} (line {})", self.line),
            None => format!("line {}", self.line),
        }
    }
}

fn records(file: &str) -> Vec<Record> {
    let path = format!("{VECTORS}{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));

    let mut out = Vec::new();
    let mut current = Record {
        fields: HashMap::new(),
        line: 0,
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !current.fields.is_empty() {
                out.push(std::mem::replace(
                    &mut current,
                    Record {
                        fields: HashMap::new(),
                        line: 0,
                    },
                ));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            panic!("{path}:{}: not `key = value`", n + 1);
        };
        if current.fields.is_empty() {
            current.line = n + 1;
        }
        current
            .fields
            .insert(key.trim().to_owned(), value.trim().to_owned());
    }
    if !current.fields.is_empty() {
        out.push(current);
    }
    assert!(!out.is_empty(), "{path} has no records");
    out
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

/// Every ordered pair of providers, including each with itself.
fn pairs() -> Vec<(&'static dyn CryptoProvider, &'static dyn CryptoProvider)> {
    let all = all_providers();
    let mut out = Vec::new();
    for a in &all {
        for b in &all {
            out.push((*a, *b));
        }
    }
    out
}

fn hash_alg(name: &str) -> HashAlg {
    match name {
        "sha256" => HashAlg::Sha256,
        "sha512" => HashAlg::Sha512,
        other => panic!("unknown hash {other}"),
    }
}

#[test]
fn at_least_one_provider() {
    assert!(!all_providers().is_empty());
    let names: Vec<_> = all_providers().iter().map(|p| p.name()).collect();
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique);
}

#[test]
fn sha2_fips180() {
    for p in all_providers() {
        for r in records("sha2-fips180.txt") {
            let msg = r.hex("msg");
            for (key, alg) in [("sha256", HashAlg::Sha256), ("sha512", HashAlg::Sha512)] {
                if !r.has(key) {
                    continue;
                }
                let want = r.hex(key);
                assert_eq!(
                    digest(p, alg, &[&msg]).as_bytes(),
                    want,
                    "{} {}",
                    p.name(),
                    r.name()
                );
                assert_eq!(want.len(), alg.output_len());

                // Fed one byte at a time, the stream must give the same digest.
                let mut h = p.hash(alg);
                for b in &msg {
                    h.update(std::slice::from_ref(b));
                }
                assert_eq!(
                    h.finish().as_bytes(),
                    want,
                    "{} {} streamed",
                    p.name(),
                    r.name()
                );
            }
        }
    }
}

#[test]
fn hmac_rfc4231() {
    for (a, b) in pairs() {
        for r in records("hmac-rfc4231.txt") {
            let key = r.hex("key");
            let data = r.hex("data");
            let (head, tail) = data.split_at(data.len() / 3);
            for (field, alg) in [("sha256", HashAlg::Sha256), ("sha512", HashAlg::Sha512)] {
                let want = r.hex(field);
                let signer = a.hmac(alg, &key);
                let verifier = b.hmac(alg, &key);
                let who = format!("{} -> {} {} {field}", a.name(), b.name(), r.name());

                assert_eq!(signer.sign(&[&data]).as_bytes(), want, "{who}");
                assert_eq!(
                    signer.sign(&[head, tail]).as_bytes(),
                    want,
                    "{who} in parts"
                );
                assert_eq!(
                    signer.sign(&[&[], head, &[], tail]).as_bytes(),
                    want,
                    "{who}"
                );
                assert_eq!(verifier.verify(&[head, tail], &want), Ok(()), "{who}");

                let mut bad = want.clone();
                *bad.last_mut().unwrap() ^= 1;
                assert_eq!(verifier.verify(&[&data], &bad), Err(Unauthentic), "{who}");
                assert_eq!(
                    verifier.verify(&[&data], &want[..16]),
                    Err(Unauthentic),
                    "{who}"
                );
                assert_eq!(verifier.verify(&[&data], &[]), Err(Unauthentic), "{who}");
                assert_eq!(
                    verifier.verify(&[&data, &[0]], &want),
                    Err(Unauthentic),
                    "{who}"
                );
            }
        }
    }
}

#[test]
fn aes_gcm_known_answers() {
    for p in all_providers() {
        for r in records("aes-gcm.txt") {
            let key = p.aes_gcm(&r.hex("key")).unwrap();
            let iv: [u8; 12] = r.array("iv");
            let aad = r.hex("aad");
            let plain = r.hex("plain");
            let cipher = r.hex("cipher");
            let tag: [u8; 16] = r.array("tag");
            let who = format!("{} {}", p.name(), r.name());

            let mut buf = plain.clone();
            assert_eq!(key.seal_in_place(&iv, &aad, &mut buf), tag, "{who}");
            assert_eq!(buf, cipher, "{who}");

            assert_eq!(
                key.open_in_place(&iv, &aad, &mut buf, &tag),
                Ok(()),
                "{who}"
            );
            assert_eq!(buf, plain, "{who}");

            let mut bad_tag = tag;
            bad_tag[15] ^= 0x80;
            let mut buf = cipher.clone();
            assert_eq!(
                key.open_in_place(&iv, &aad, &mut buf, &bad_tag),
                Err(Unauthentic)
            );

            if !cipher.is_empty() {
                let mut buf = cipher.clone();
                buf[0] ^= 1;
                assert_eq!(
                    key.open_in_place(&iv, &aad, &mut buf, &tag),
                    Err(Unauthentic)
                );
            }
            let mut other_aad = aad.clone();
            other_aad.push(0);
            let mut buf = cipher.clone();
            assert_eq!(
                key.open_in_place(&iv, &other_aad, &mut buf, &tag),
                Err(Unauthentic)
            );
        }
    }
}

#[test]
fn aes_gcm_across_providers() {
    for (a, b) in pairs() {
        for key_len in [16, 32] {
            let key: Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0x5c).collect();
            let sealer = a.aes_gcm(&key).unwrap();
            let opener = b.aes_gcm(&key).unwrap();
            let who = format!("{} -> {} AES-{}", a.name(), b.name(), key_len * 8);

            for (seq, len) in [(0u64, 0usize), (1, 16), (2, 35), (3, 32 * 1024 + 12)] {
                // RFC 5647 section 7.1: a 4-byte fixed field, then an 8-byte counter.
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(&[9, 8, 7, 6]);
                nonce[4..].copy_from_slice(&seq.to_be_bytes());
                let aad = (len as u32).to_be_bytes();
                let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();

                let mut buf = plain.clone();
                let tag = sealer.seal_in_place(&nonce, &aad, &mut buf);
                assert!(len == 0 || buf != plain, "{who}");
                assert_eq!(
                    opener.open_in_place(&nonce, &aad, &mut buf, &tag),
                    Ok(()),
                    "{who}"
                );
                assert_eq!(buf, plain, "{who}");
            }
        }
    }
}

#[test]
fn aes_gcm_refuses_other_key_lengths() {
    for p in all_providers() {
        for len in [0, 15, 24, 33] {
            assert!(p.aes_gcm(&vec![0; len]).is_none(), "{} {len}", p.name());
        }
    }
}

#[test]
fn chacha20_poly1305_known_answers() {
    for p in all_providers() {
        for r in records("chacha20-poly1305-openssh.txt") {
            let key = p.chacha20_poly1305(&r.array("key"));
            let seq: u32 = r.text("seq").parse().unwrap();
            let plain = r.hex("plain");
            let cipher = r.hex("cipher");
            let tag: [u8; 16] = r.array("tag");
            let who = format!("{} {}", p.name(), r.name());

            let mut buf = plain.clone();
            assert_eq!(key.seal_in_place(seq, &mut buf), tag, "{who}");
            assert_eq!(buf, cipher, "{who}");

            let length: [u8; 4] = cipher[..4].try_into().unwrap();
            assert_eq!(key.decrypt_length(seq, length), plain[..4], "{who}");

            assert_eq!(key.open_in_place(seq, &mut buf, &tag), Ok(()), "{who}");
            assert_eq!(
                buf[..4],
                cipher[..4],
                "{who}: the length bytes stay encrypted"
            );
            assert_eq!(buf[4..], plain[4..], "{who}");
        }
    }
}

#[test]
fn chacha20_poly1305_refuses_tampering() {
    for p in all_providers() {
        for r in records("chacha20-poly1305-openssh.txt") {
            let key = p.chacha20_poly1305(&r.array("key"));
            let seq: u32 = r.text("seq").parse().unwrap();
            let cipher = r.hex("cipher");
            let tag: [u8; 16] = r.array("tag");
            let who = format!("{} {}", p.name(), r.name());

            // A flipped bit anywhere in the packet, the length included, or in the tag.
            for at in [0, 3, 4, cipher.len() - 1] {
                let mut buf = cipher.clone();
                buf[at] ^= 0x20;
                assert_eq!(
                    key.open_in_place(seq, &mut buf, &tag),
                    Err(Unauthentic),
                    "{who}"
                );
            }
            let mut bad_tag = tag;
            bad_tag[0] ^= 1;
            let mut buf = cipher.clone();
            assert_eq!(
                key.open_in_place(seq, &mut buf, &bad_tag),
                Err(Unauthentic),
                "{who}"
            );

            // The sequence number is the nonce: the same bytes under another one fail.
            let mut buf = cipher.clone();
            let other = seq.wrapping_add(1);
            assert_eq!(
                key.open_in_place(other, &mut buf, &tag),
                Err(Unauthentic),
                "{who}"
            );
        }
    }
}

#[test]
fn chacha20_poly1305_across_providers() {
    let mut key = [0u8; 64];
    for (i, b) in key.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(29).wrapping_add(1);
    }
    for (a, b) in pairs() {
        let sealer = a.chacha20_poly1305(&key);
        let opener = b.chacha20_poly1305(&key);
        let who = format!("{} -> {}", a.name(), b.name());
        for (seq, body) in [
            (0u32, 12usize),
            (1, 60),
            (0xffff_fffe, 1020),
            (42, 32 * 1024 + 28),
        ] {
            let mut packet = (body as u32).to_be_bytes().to_vec();
            packet.extend((0..body).map(|i| (i % 251) as u8));
            let plain = packet.clone();

            let tag = sealer.seal_in_place(seq, &mut packet);
            let length: [u8; 4] = packet[..4].try_into().unwrap();
            assert_eq!(opener.decrypt_length(seq, length), plain[..4], "{who}");
            assert_eq!(
                opener.open_in_place(seq, &mut packet, &tag),
                Ok(()),
                "{who}"
            );
            assert_eq!(packet[4..], plain[4..], "{who}");
        }
    }
}

#[test]
fn ed25519_rfc8032() {
    for (a, b) in pairs() {
        for r in records("ed25519-rfc8032.txt") {
            let seed: [u8; 32] = r.array("seed");
            let public = r.hex("public");
            let msg = r.hex("msg");
            let sig = r.hex("sig");
            let who = format!("{} -> {} line {}", a.name(), b.name(), r.line);

            assert_eq!(a.ed25519_public(&seed)[..], public, "{who}");
            let made = a.ed25519_sign(&seed, &msg);
            assert_eq!(made[..], sig, "{who}");
            assert!(b.verify(VerifyKey::Ed25519(&public), &msg, &made), "{who}");

            let mut wrong_msg = msg.clone();
            wrong_msg.push(0);
            assert!(
                !b.verify(VerifyKey::Ed25519(&public), &wrong_msg, &sig),
                "{who}"
            );
            let mut flipped = sig.clone();
            flipped[10] ^= 4;
            assert!(
                !b.verify(VerifyKey::Ed25519(&public), &msg, &flipped),
                "{who}"
            );
            assert!(
                !b.verify(VerifyKey::Ed25519(&public), &msg, &sig[..63]),
                "{who}"
            );
            assert!(
                !b.verify(VerifyKey::Ed25519(&public[..31]), &msg, &sig),
                "{who}"
            );
        }
    }
}

#[test]
fn ed25519_sign_and_verify_across_providers() {
    for (a, b) in pairs() {
        for seed_byte in [0u8, 1, 0x7f, 0xff] {
            let seed = [seed_byte; 32];
            let msg = vec![seed_byte; 300];
            let public = a.ed25519_public(&seed);
            assert_eq!(public, b.ed25519_public(&seed));
            let sig = a.ed25519_sign(&seed, &msg);
            assert_eq!(sig, b.ed25519_sign(&seed, &msg), "Ed25519 is deterministic");
            assert!(b.verify(VerifyKey::Ed25519(&public), &msg, &sig));
        }
    }
}

#[test]
fn rsa_pkcs1_verify() {
    for p in all_providers() {
        for r in records("rsa-verify.txt") {
            let n = r.hex("n");
            let e = r.hex("e");
            let key = VerifyKey::Rsa {
                n: &n,
                e: &e,
                hash: hash_alg(r.text("hash")),
            };
            let want = r.text("valid") == "1";
            let got = p.verify(key, &r.hex("msg"), &r.hex("sig"));
            assert_eq!(got, want, "{} {}", p.name(), r.name());
        }
    }
}

#[test]
fn ecdsa_p256_verify() {
    for p in all_providers() {
        for r in records("ecdsa-p256-verify.txt") {
            let q = r.hex("q");
            let want = r.text("valid") == "1";
            let got = p.verify(VerifyKey::EcdsaP256(&q), &r.hex("msg"), &r.hex("sig"));
            assert_eq!(got, want, "{} {}", p.name(), r.name());
        }
    }
}

#[test]
fn x25519_rfc7748() {
    let all = records("x25519-rfc7748.txt");
    let mut seen = [0usize; 4];
    for r in &all {
        if r.has("scalar") {
            seen[0] += 1;
            let shared = kem::x25519_shared(&r.array("scalar"), &r.hex("u")).unwrap();
            assert_eq!(shared[..], r.hex("out"), "{}", r.name());
        } else if r.has("iterations") {
            seen[1] += 1;
            let rounds: usize = r.text("iterations").parse().unwrap();
            let mut k = [0u8; X25519_LEN];
            k[0] = 9;
            let mut u = k;
            for _ in 0..rounds {
                let next = *kem::x25519_shared(&k, &u).unwrap();
                u = k;
                k = next;
            }
            assert_eq!(k[..], r.hex("out"), "{}", r.name());
        } else if r.has("alice_private") {
            seen[2] += 1;
            let a: [u8; 32] = r.array("alice_private");
            let b: [u8; 32] = r.array("bob_private");
            assert_eq!(kem::x25519_public(&a)[..], r.hex("alice_public"));
            assert_eq!(kem::x25519_public(&b)[..], r.hex("bob_public"));
            let shared = r.hex("shared");
            assert_eq!(
                kem::x25519_shared(&a, &r.hex("bob_public")).unwrap()[..],
                shared
            );
            assert_eq!(
                kem::x25519_shared(&b, &r.hex("alice_public")).unwrap()[..],
                shared
            );
        } else if r.has("low_order") {
            seen[3] += 1;
            let point = r.hex("low_order");
            for secret in [[1u8; 32], [0x42; 32], [0xff; 32]] {
                assert_eq!(
                    kem::x25519_shared(&secret, &point),
                    Err(KexFailure("X25519 shared secret is all zero")),
                    "{}",
                    r.name()
                );
            }
        }
    }
    assert!(
        seen.iter().all(|&n| n > 0),
        "every kind of record is present: {seen:?}"
    );
}

#[test]
fn x25519_refuses_wrong_lengths() {
    let secret = [7u8; 32];
    let public = kem::x25519_public(&[8; 32]);
    assert!(kem::x25519_shared(&secret, &public).is_ok());
    for len in [0, 31, 33, 64] {
        let mut bad = public.to_vec();
        bad.resize(len, 1);
        assert_eq!(
            kem::x25519_shared(&secret, &bad),
            Err(KexFailure("X25519 public key is not 32 bytes"))
        );
    }
}

#[test]
fn mlkem768_known_answers() {
    let mut seen = [0usize; 3];
    for r in records("mlkem768-kat.txt") {
        match r.text("kind") {
            "keygen" => {
                seen[0] += 1;
                let (_, ek) = kem::mlkem768_keygen(&r.array("d"), &r.array("z"));
                assert_eq!(ek[..], r.hex("ek"), "{}", r.name());
            }
            "encaps" => {
                seen[1] += 1;
                let (c, k) = kem::mlkem768_encapsulate(&r.hex("ek"), &r.array("m")).unwrap();
                assert_eq!(c[..], r.hex("c"), "{}", r.name());
                assert_eq!(k[..], r.hex("k"), "{}", r.name());
            }
            "decaps" => {
                seen[2] += 1;
                let (secret, _) = kem::mlkem768_keygen(&r.array("d"), &r.array("z"));
                let k = kem::mlkem768_decapsulate(&secret, &r.hex("c")).unwrap();
                assert_eq!(k[..], r.hex("k"), "{}", r.name());
            }
            other => panic!("unknown kind {other}"),
        }
    }
    assert!(
        seen.iter().all(|&n| n > 0),
        "every kind of record is present: {seen:?}"
    );
}

#[test]
fn mlkem768_refuses_wrong_lengths_and_bad_keys() {
    let (secret, public) = kem::mlkem768_keygen(&[1; 32], &[2; 32]);
    let (c, k) = kem::mlkem768_encapsulate(&public[..], &[3; 32]).unwrap();
    assert_eq!(
        kem::mlkem768_decapsulate(&secret, &c[..]).unwrap()[..],
        k[..]
    );

    let short_key = Err(KexFailure("ML-KEM-768 public key is not 1184 bytes"));
    for len in [0, MLKEM768_PUBLIC_LEN - 1, MLKEM768_PUBLIC_LEN + 1] {
        let mut bad = public.to_vec();
        bad.resize(len, 0);
        assert_eq!(
            kem::mlkem768_encapsulate(&bad, &[3; 32]).map(|_| ()),
            short_key
        );
    }

    let short_ct = Err(KexFailure("ML-KEM-768 ciphertext is not 1088 bytes"));
    for len in [
        0,
        32,
        MLKEM768_CIPHERTEXT_LEN - 1,
        MLKEM768_CIPHERTEXT_LEN + 1,
    ] {
        let mut bad = c.to_vec();
        bad.resize(len, 0);
        assert_eq!(
            kem::mlkem768_decapsulate(&secret, &bad).map(|_| ()),
            short_ct
        );
    }

    // FIPS 203 section 7.2 modulus check: a 12-bit coefficient of 0xfff (above q = 3329)
    // in the last polynomial of t.
    let mut bad = *public;
    bad[MLKEM768_PUBLIC_LEN - 33] = 0xff;
    bad[MLKEM768_PUBLIC_LEN - 34] |= 0xf0;
    assert_eq!(
        kem::mlkem768_encapsulate(&bad[..], &[3; 32]).map(|_| ()),
        Err(KexFailure(
            "ML-KEM-768 public key fails the FIPS 203 modulus check"
        ))
    );
}
