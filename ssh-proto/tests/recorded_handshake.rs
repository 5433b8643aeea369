//! Recorded handshakes with fixed secrets, checked against an independent computation.
//!
//! `vectors/handshake-*.txt` hold complete first key exchanges between our client and our
//! server: every input of the exchange hash, the X25519 (and ML-KEM) secrets, K, H, the
//! six derived keys and every byte each side sent. They were written by
//! `vectors/gen/handshake.py`, which rebuilds the exchange from the RFCs with Python's
//! standard library and the `cryptography` package and shares no code with this crate, so
//! a mistake here that is symmetric between our client and server (and would let them
//! agree with each other) still shows up as a difference from the record.
//!
//! The tests check, per record and per cryptography provider: the key agreement from the
//! fixed secrets; the kex functions (`client_start`, `server_respond`, `client_finish`,
//! `exchange_hash`, `derive`, `session_keys`); the host key signature over H; that the
//! recorded byte stream carries exactly the recorded values and opens with the recorded
//! keys; and that a fresh simulated pair with the same seed sends that stream again, byte
//! for byte.

use std::collections::HashMap;
use std::sync::Arc;

use ssh_proto::algorithms::{self, Algorithm, Cipher, Kex, Mac, Negotiated, Preferences};
use ssh_proto::config::Config;
use ssh_proto::crypto::{CryptoProvider, Digest, HashAlg, all_providers, kem};
use ssh_proto::hostkey::{HostKeyPair, PublicKey, SignatureAlg};
use ssh_proto::kex::{self, HashInputs, SharedSecret};
use ssh_proto::msg::MessageNumber;
use ssh_proto::packet::{DirectionKeys, Opened, Opener};
use ssh_proto::role::Role;
use ssh_proto::sim::{Cut, Pair};
use ssh_proto::wire::{Reader, Writer};
use zeroize::Zeroizing;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/");
const FILES: [&str; 2] = [
    "handshake-curve25519-sha256.txt",
    "handshake-mlkem768x25519-sha256.txt",
];

/// One recorded handshake: `key = value` lines, values in hex unless the file's header
/// says they are text.
struct Record {
    fields: HashMap<String, String>,
    file: &'static str,
    line: usize,
}

impl Record {
    fn text(&self, key: &str) -> &str {
        match self.fields.get(key) {
            Some(value) => value,
            None => panic!("{} line {}: no `{key}`", self.file, self.line),
        }
    }

    fn hex(&self, key: &str) -> Vec<u8> {
        let s = self.text(key);
        assert!(s.len().is_multiple_of(2), "{}: odd-length hex", self.name());
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A field that is absent where the negotiated algorithms leave it unused.
    fn hex_or_empty(&self, key: &str) -> Vec<u8> {
        if self.fields.contains_key(key) {
            self.hex(key)
        } else {
            Vec::new()
        }
    }

    fn array<const N: usize>(&self, key: &str) -> [u8; N] {
        let bytes = self.hex(key);
        bytes
            .try_into()
            .unwrap_or_else(|v: Vec<u8>| panic!("{}: `{key}` has {} bytes", self.name(), v.len()))
    }

    fn name(&self) -> String {
        format!("{} ({} line {})", self.text("name"), self.file, self.line)
    }

    fn kex(&self) -> Kex {
        Kex::from_name(self.text("kex")).unwrap()
    }

    fn cipher(&self) -> Cipher {
        Cipher::from_name(self.text("cipher")).unwrap()
    }

    fn mac(&self) -> Option<Mac> {
        match self.text("mac") {
            "none" => None,
            name => Some(Mac::from_name(name).unwrap()),
        }
    }

    fn negotiated(&self) -> Negotiated {
        Negotiated {
            kex: self.kex(),
            host_key: SignatureAlg::Ed25519,
            cipher_c2s: self.cipher(),
            cipher_s2c: self.cipher(),
            mac_c2s: self.mac(),
            mac_s2c: self.mac(),
            strict_kex: true,
        }
    }

    /// The random bytes `client_start` and `server_respond` took in the recorded run. For
    /// curve25519-sha256 only the X25519 scalar is used, so the rest is left zero.
    fn client_random(&self) -> [u8; 96] {
        let mut random = [0u8; 96];
        random[..32].copy_from_slice(&self.hex("client_x25519_scalar"));
        if self.kex() == Kex::MlKem768X25519Sha256 {
            random[32..64].copy_from_slice(&self.hex("mlkem_d"));
            random[64..].copy_from_slice(&self.hex("mlkem_z"));
        }
        random
    }

    fn server_random(&self) -> [u8; 64] {
        let mut random = [0u8; 64];
        random[..32].copy_from_slice(&self.hex("server_x25519_scalar"));
        if self.kex() == Kex::MlKem768X25519Sha256 {
            random[32..].copy_from_slice(&self.hex("mlkem_m"));
        }
        random
    }

    fn preferences(&self, side: &str) -> Preferences {
        let list = |kind: &str| self.text(&format!("{side}_{kind}")).to_owned();
        Preferences {
            kex: algorithms::apply_spec(Kex::ALL, &list("kex")).unwrap(),
            host_key: algorithms::apply_spec(&SignatureAlg::ALL, &list("host_key")).unwrap(),
            ciphers: algorithms::apply_spec(Cipher::ALL, &list("ciphers")).unwrap(),
            macs: algorithms::apply_spec(Mac::ALL, &list("macs")).unwrap(),
        }
    }

    fn host_key(&self, provider: &dyn CryptoProvider) -> HostKeyPair {
        HostKeyPair::ed25519_from_seed(provider, &self.array("host_key_seed"))
    }
}

fn records() -> Vec<Record> {
    let mut out = Vec::new();
    for file in FILES {
        let path = format!("{VECTORS}{file}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut current: Option<Record> = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if line.is_empty() {
                out.extend(current.take());
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                panic!("{path}:{}: not `key = value`", n + 1);
            };
            current
                .get_or_insert_with(|| Record {
                    fields: HashMap::new(),
                    file,
                    line: n + 1,
                })
                .fields
                .insert(key.trim().to_owned(), value.trim().to_owned());
        }
        out.extend(current);
    }
    // Two ciphers per key exchange method: one AEAD, one with a separate MAC.
    assert_eq!(out.len(), 4, "expected four recorded handshakes");
    out
}

/// X25519's part of Q_C or Q_S: the whole value, or the last 32 bytes of the hybrid's.
fn x25519_part(q: &[u8]) -> &[u8] {
    &q[q.len() - kem::X25519_LEN..]
}

#[test]
fn key_agreement_from_the_fixed_secrets() {
    for r in records() {
        let client = r.array::<32>("client_x25519_scalar");
        let server = r.array::<32>("server_x25519_scalar");
        let (q_c, q_s) = (r.hex("q_c"), r.hex("q_s"));
        assert_eq!(
            kem::x25519_public(&client),
            x25519_part(&q_c),
            "{}",
            r.name()
        );
        assert_eq!(
            kem::x25519_public(&server),
            x25519_part(&q_s),
            "{}",
            r.name()
        );

        let at_client = kem::x25519_shared(&client, x25519_part(&q_s)).unwrap();
        let at_server = kem::x25519_shared(&server, x25519_part(&q_c)).unwrap();
        let recorded = match r.kex() {
            Kex::MlKem768X25519Sha256 => r.hex("x25519_shared_secret"),
            _ => r.hex("shared_secret"),
        };
        assert_eq!(at_client[..], recorded[..], "{}", r.name());
        assert_eq!(at_server[..], recorded[..], "{}", r.name());

        if r.kex() == Kex::MlKem768X25519Sha256 {
            let (secret, ek) = kem::mlkem768_keygen(&r.array("mlkem_d"), &r.array("mlkem_z"));
            assert_eq!(ek[..], q_c[..kem::MLKEM768_PUBLIC_LEN], "{}", r.name());
            let (ciphertext, k_pq) =
                kem::mlkem768_encapsulate(&ek[..], &r.array("mlkem_m")).unwrap();
            assert_eq!(
                ciphertext[..],
                q_s[..kem::MLKEM768_CIPHERTEXT_LEN],
                "{}",
                r.name()
            );
            assert_eq!(k_pq[..], r.hex("mlkem_shared_secret")[..], "{}", r.name());
            let decapsulated = kem::mlkem768_decapsulate(&secret, &ciphertext[..]).unwrap();
            assert_eq!(decapsulated[..], k_pq[..], "{}", r.name());
        }
    }
}

/// Runs both halves of the key agreement from the recorded randomness and returns K as
/// both sides computed it, after checking Q_C, Q_S and K against the record.
fn agree(r: &Record, provider: &dyn CryptoProvider) -> (SharedSecret, SharedSecret) {
    let (secret, q_c) = kex::client_start(r.kex(), &r.client_random());
    assert_eq!(q_c, r.hex("q_c"), "{}", r.name());
    let (q_s, at_server) =
        kex::server_respond(provider, r.kex(), &q_c, &r.server_random()).unwrap();
    assert_eq!(q_s, r.hex("q_s"), "{}", r.name());
    let at_client = kex::client_finish(provider, &secret, &q_s).unwrap();
    assert_eq!(at_server.encoded(), r.hex("k"), "{}", r.name());
    assert_eq!(at_client.encoded(), r.hex("k"), "{}", r.name());
    (at_client, at_server)
}

fn check_direction(r: &Record, keys: &DirectionKeys, direction: &str) {
    let name = r.name();
    assert_eq!(keys.cipher, r.cipher(), "{name}");
    assert_eq!(keys.mac, r.mac(), "{name}");
    assert_eq!(keys.iv[..], r.hex(&format!("iv_{direction}")), "{name}");
    assert_eq!(keys.key[..], r.hex(&format!("key_{direction}")), "{name}");
    let mac_key = r.hex_or_empty(&format!("mac_key_{direction}"));
    assert_eq!(keys.mac_key[..], mac_key, "{name}");
}

#[test]
fn kex_functions_reproduce_the_recorded_hash_and_keys() {
    for provider in all_providers() {
        for r in records() {
            let name = r.name();
            let (k, _) = agree(&r, provider);
            assert_eq!(kex::hash_alg(r.kex()), HashAlg::Sha256);

            let (v_c, v_s, i_c, i_s) = (r.hex("v_c"), r.hex("v_s"), r.hex("i_c"), r.hex("i_s"));
            let (k_s, q_c, q_s) = (r.hex("k_s"), r.hex("q_c"), r.hex("q_s"));
            let inputs = HashInputs {
                client_version: &v_c,
                server_version: &v_s,
                client_kexinit: &i_c,
                server_kexinit: &i_s,
                host_key: &k_s,
                q_c: &q_c,
                q_s: &q_s,
            };
            let h = kex::exchange_hash(provider, HashAlg::Sha256, &inputs, &k);
            assert_eq!(h.as_bytes(), r.hex("h"), "{name}");
            // A first key exchange: the session id is this H.
            assert_eq!(r.hex("session_id"), r.hex("h"), "{name}");
            let session_id = Digest::new(&r.hex("session_id"));

            let negotiated = r.negotiated();
            let client =
                kex::session_keys(provider, Role::Client, &negotiated, &k, &h, &session_id);
            check_direction(&r, &client.outgoing, "c2s");
            check_direction(&r, &client.incoming, "s2c");
            let server =
                kex::session_keys(provider, Role::Server, &negotiated, &k, &h, &session_id);
            check_direction(&r, &server.outgoing, "s2c");
            check_direction(&r, &server.incoming, "c2s");

            let long = kex::derive(provider, HashAlg::Sha256, &k, &h, b'C', &session_id, 64);
            assert_eq!(long[..], r.hex("key_c2s_64"), "{name}");
            assert_eq!(long[..16], r.hex("key_c2s"), "{name}");
        }
    }
}

#[test]
fn server_signature_over_h_verifies() {
    for provider in all_providers() {
        for r in records() {
            let name = r.name();
            let (h, k_s, signature) = (r.hex("h"), r.hex("k_s"), r.hex("signature"));
            let pair = r.host_key(provider);
            assert_eq!(pair.public().to_blob(), k_s, "{name}");
            // Ed25519 is deterministic, so our signer must make the recorded signature.
            assert_eq!(
                pair.sign(provider, SignatureAlg::Ed25519, &h).unwrap(),
                signature,
                "{name}"
            );

            let key = PublicKey::from_blob(&k_s).unwrap();
            key.verify(provider, SignatureAlg::Ed25519, &h, &signature)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut other = h.clone();
            other[0] ^= 1;
            assert!(
                key.verify(provider, SignatureAlg::Ed25519, &other, &signature)
                    .is_err(),
                "{name}: a signature over H verified for another hash"
            );
        }
    }
}

/// Splits off the version line, without its CR LF.
fn version_line(stream: &[u8]) -> (&[u8], &[u8]) {
    let end = stream.windows(2).position(|w| w == b"\r\n").unwrap();
    (&stream[..end], &stream[end + 2..])
}

/// Opens every packet of `stream` in order, switching to `keys` after NEWKEYS (with the
/// sequence number back at zero, as strict kex wants), and returns the payloads.
fn open_all(
    provider: &dyn CryptoProvider,
    mut stream: Vec<u8>,
    keys: &DirectionKeys,
) -> Vec<Vec<u8>> {
    let mut opener = Opener::plain();
    let mut payloads = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let Opened::Packet { len, payload, .. } = opener.open(&mut stream[at..]).unwrap() else {
            panic!("a truncated packet at offset {at}");
        };
        let payload = stream[at..][payload].to_vec();
        at += len;
        if payload == [MessageNumber::NEWKEYS.0] {
            opener.install(provider, keys).unwrap();
            opener.seq = 0;
        }
        payloads.push(payload);
    }
    payloads
}

fn keys(r: &Record, direction: &str) -> DirectionKeys {
    DirectionKeys {
        cipher: r.cipher(),
        mac: r.mac(),
        iv: Zeroizing::new(r.hex(&format!("iv_{direction}"))),
        key: Zeroizing::new(r.hex(&format!("key_{direction}"))),
        mac_key: Zeroizing::new(r.hex_or_empty(&format!("mac_key_{direction}"))),
    }
}

fn message(number: MessageNumber, body: &[u8]) -> Vec<u8> {
    let mut m = vec![number.0];
    m.put_string(body);
    m
}

/// The recorded values are the ones on the recorded wire, and the recorded keys open it.
/// This ties the hash checks above to the replay below.
#[test]
fn recorded_stream_carries_the_recorded_values() {
    for provider in all_providers() {
        for r in records() {
            let name = r.name();
            let c2s = r.hex("c2s");
            let (v_c, rest) = version_line(&c2s);
            assert_eq!(v_c, r.hex("v_c"), "{name}");
            let sent = open_all(provider, rest.to_vec(), &keys(&r, "c2s"));
            let mut ecdh_init = vec![MessageNumber::KEX_ECDH_INIT.0];
            ecdh_init.put_string(&r.hex("q_c"));
            assert_eq!(
                sent,
                [
                    r.hex("i_c"),
                    ecdh_init,
                    vec![MessageNumber::NEWKEYS.0],
                    message(MessageNumber::SERVICE_REQUEST, b"ssh-userauth"),
                ],
                "{name}"
            );

            let s2c = r.hex("s2c");
            let (v_s, rest) = version_line(&s2c);
            assert_eq!(v_s, r.hex("v_s"), "{name}");
            let sent = open_all(provider, rest.to_vec(), &keys(&r, "s2c"));
            assert_eq!(sent.len(), 5, "{name}");
            assert_eq!(sent[0], r.hex("i_s"), "{name}");
            let mut reply = Reader::new(&sent[1]);
            assert_eq!(reply.u8("msg").unwrap(), MessageNumber::KEX_ECDH_REPLY.0);
            assert_eq!(reply.string("K_S").unwrap(), r.hex("k_s"), "{name}");
            assert_eq!(reply.string("Q_S").unwrap(), r.hex("q_s"), "{name}");
            assert_eq!(reply.string("sig").unwrap(), r.hex("signature"), "{name}");
            reply.finish().unwrap();
            assert_eq!(sent[2], [MessageNumber::NEWKEYS.0], "{name}");
            assert_eq!(sent[3][0], MessageNumber::EXT_INFO.0, "{name}");
            assert_eq!(
                sent[4],
                message(MessageNumber::SERVICE_ACCEPT, b"ssh-userauth"),
                "{name}"
            );
        }
    }
}

fn configs(
    r: &Record,
    client_provider: &'static dyn CryptoProvider,
    server_provider: &'static dyn CryptoProvider,
) -> (Config, Config) {
    let client = Config {
        provider: client_provider,
        software: r.text("client_software").to_owned(),
        algorithms: r.preferences("client"),
        ..Config::default()
    };
    let server = Config {
        provider: server_provider,
        software: r.text("server_software").to_owned(),
        algorithms: r.preferences("server"),
        host_keys: vec![r.host_key(server_provider)],
        ..Config::default()
    };
    (client, server)
}

/// Steps the pair until nothing moves, appending every byte each side sends to `c2s` and
/// `s2c`. With `Cut::Whole` each step delivers all that is in flight.
fn run(pair: &mut Pair, c2s: &mut Vec<u8>, s2c: &mut Vec<u8>) {
    for _ in 0..100 {
        pair.flush();
        c2s.extend_from_slice(pair.c2s_in_flight());
        s2c.extend_from_slice(pair.s2c_in_flight());
        if !pair.step().unwrap() {
            return;
        }
        assert!(pair.c2s_in_flight().is_empty() && pair.s2c_in_flight().is_empty());
    }
    panic!("the pair did not settle");
}

fn assert_same_bytes(got: &[u8], recorded: &[u8], what: &str) {
    if let Some(at) = got.iter().zip(recorded).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {at}");
    }
    assert_eq!(got.len(), recorded.len(), "{what}: lengths differ");
}

#[test]
fn simulated_pair_replays_the_recorded_bytes() {
    for client_provider in all_providers() {
        for server_provider in all_providers() {
            for r in records() {
                let what = format!(
                    "{} with {} client and {} server",
                    r.name(),
                    client_provider.name(),
                    server_provider.name()
                );
                let (client, server) = configs(&r, client_provider, server_provider);
                let seed = r.text("seed").parse().unwrap();
                let mut pair = Pair::new(Arc::new(client), Arc::new(server), seed, Cut::Whole);
                let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
                run(&mut pair, &mut c2s, &mut s2c);
                assert!(pair.client.transport.is_ready(), "{what}");
                assert!(pair.server.transport.is_ready(), "{what}");

                let request = message(MessageNumber::SERVICE_REQUEST, b"ssh-userauth");
                pair.client
                    .transport
                    .send(|p| p.extend_from_slice(&request))
                    .unwrap();
                run(&mut pair, &mut c2s, &mut s2c);
                assert_eq!(pair.server.received, [request], "{what}");
                let accept = message(MessageNumber::SERVICE_ACCEPT, b"ssh-userauth");
                pair.server
                    .transport
                    .send(|p| p.extend_from_slice(&accept))
                    .unwrap();
                run(&mut pair, &mut c2s, &mut s2c);
                assert_eq!(pair.client.received, [accept], "{what}");

                assert_same_bytes(&c2s, &r.hex("c2s"), &format!("{what}: client to server"));
                assert_same_bytes(&s2c, &r.hex("s2c"), &format!("{what}: server to client"));

                let session_id = r.hex("session_id");
                assert_eq!(
                    pair.client.transport.session_id(),
                    Some(&session_id[..]),
                    "{what}"
                );
                assert_eq!(
                    pair.server.transport.session_id(),
                    Some(&session_id[..]),
                    "{what}"
                );
                assert_eq!(
                    pair.client.transport.negotiated(),
                    Some(&r.negotiated()),
                    "{what}"
                );
                assert_eq!(
                    pair.server.transport.negotiated(),
                    Some(&r.negotiated()),
                    "{what}"
                );
                let host_key = pair.client.transport.server_host_key().unwrap();
                assert_eq!(host_key.to_blob(), r.hex("k_s"), "{what}");
            }
        }
    }
}
