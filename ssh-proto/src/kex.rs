//! Key exchange: KEXINIT, the ECDH-style methods, the exchange hash and key derivation
//! (RFC 4253 sections 7 and 8, RFC 8731, and the ML-KEM/X25519 hybrid of
//! draft-ietf-sshm-mlkem-hybrid-kex).

use zeroize::Zeroizing;

use crate::algorithms::{self, Algorithm, Cipher, Kex, Mac, Negotiated, Preferences};
use crate::crypto::kem::{self, KexFailure, MlKem768Secret};
use crate::crypto::{CryptoProvider, Digest, HashAlg};
use crate::error::Error;
use crate::hostkey::SignatureAlg;
use crate::msg::{DisconnectReason, MessageNumber};
use crate::packet::DirectionKeys;
use crate::role::Role;
use crate::wire::{NameList, Reader, Writer};

/// The strict key exchange markers (OpenSSH `PROTOCOL` section 1.10), offered in the
/// first KEXINIT only.
pub const STRICT_CLIENT: &str = "kex-strict-c-v00@openssh.com";
pub const STRICT_SERVER: &str = "kex-strict-s-v00@openssh.com";
/// RFC 8308 section 2.1: the client's and server's "I accept EXT_INFO" markers.
pub const EXT_INFO_CLIENT: &str = "ext-info-c";
pub const EXT_INFO_SERVER: &str = "ext-info-s";

/// A parsed KEXINIT (RFC 4253 section 7.1). The name-lists borrow the packet.
#[derive(Clone, Debug)]
pub struct KexInit<'a> {
    pub kex: NameList<'a>,
    pub host_key: NameList<'a>,
    pub cipher_c2s: NameList<'a>,
    pub cipher_s2c: NameList<'a>,
    pub mac_c2s: NameList<'a>,
    pub mac_s2c: NameList<'a>,
    pub compression_c2s: NameList<'a>,
    pub compression_s2c: NameList<'a>,
    pub first_kex_packet_follows: bool,
}

impl<'a> KexInit<'a> {
    /// Parses a whole KEXINIT payload, message number included. A malformed one is a key
    /// exchange failure, as hostile input such as control bytes in names must be.
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        let fail = |e: crate::wire::WireError| {
            Error::protocol(
                DisconnectReason::KEY_EXCHANGE_FAILED,
                format!("KEXINIT: {e}"),
            )
        };
        let mut r = Reader::new(payload);
        r.u8("message number").map_err(fail)?;
        r.bytes(16, "cookie").map_err(fail)?;
        let init = Self {
            kex: r.name_list("kex_algorithms").map_err(fail)?,
            host_key: r.name_list("server_host_key_algorithms").map_err(fail)?,
            cipher_c2s: r
                .name_list("encryption_algorithms_client_to_server")
                .map_err(fail)?,
            cipher_s2c: r
                .name_list("encryption_algorithms_server_to_client")
                .map_err(fail)?,
            mac_c2s: r
                .name_list("mac_algorithms_client_to_server")
                .map_err(fail)?,
            mac_s2c: r
                .name_list("mac_algorithms_server_to_client")
                .map_err(fail)?,
            compression_c2s: r
                .name_list("compression_algorithms_client_to_server")
                .map_err(fail)?,
            compression_s2c: r
                .name_list("compression_algorithms_server_to_client")
                .map_err(fail)?,
            first_kex_packet_follows: {
                r.name_list("languages_client_to_server").map_err(fail)?;
                r.name_list("languages_server_to_client").map_err(fail)?;
                r.bool("first_kex_packet_follows").map_err(fail)?
            },
        };
        // The reserved uint32 is read but not judged: RFC 4253 reserves it for extension.
        r.u32("reserved").map_err(fail)?;
        Ok(init)
    }
}

/// Builds our KEXINIT payload. `first` adds the strict-kex and ext-info markers, which
/// belong in the first KEXINIT only.
pub fn build_kexinit(
    role: Role,
    prefs: &Preferences,
    host_key_algs: &[SignatureAlg],
    cookie: [u8; 16],
    first: bool,
    strict: bool,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(512);
    p.put_u8(MessageNumber::KEXINIT.0);
    p.put_raw(&cookie);

    let mut kex: Vec<&str> = prefs.kex.iter().map(|k| k.name()).collect();
    if first {
        match role {
            Role::Client => kex.push(EXT_INFO_CLIENT),
            // The server sends EXT_INFO but accepts none, so it does not offer ext-info-s.
            Role::Server => {}
        }
        if strict {
            kex.push(match role {
                Role::Client => STRICT_CLIENT,
                Role::Server => STRICT_SERVER,
            });
        }
    }
    p.put_name_list(kex);
    p.put_name_list(host_key_algs.iter().map(|a| a.name()));
    for _ in 0..2 {
        p.put_name_list(prefs.ciphers.iter().map(|c| c.name()));
    }
    for _ in 0..2 {
        p.put_name_list(prefs.macs.iter().map(|m| m.name()));
    }
    for _ in 0..2 {
        p.put_name_list(["none"]);
    }
    p.put_name_list([]);
    p.put_name_list([]);
    p.put_bool(false);
    p.put_u32(0);
    p
}

/// Settles the algorithms from both KEXINITs (RFC 4253 section 7.1).
pub fn negotiate(
    client: &KexInit<'_>,
    server: &KexInit<'_>,
    strict_offered: bool,
) -> Result<Negotiated, Error> {
    let kex: Kex = algorithms::choose(client.kex.iter(), server.kex.iter())?;
    let host_key: SignatureAlg =
        algorithms::choose(client.host_key.iter(), server.host_key.iter())?;
    let cipher_c2s: Cipher =
        algorithms::choose(client.cipher_c2s.iter(), server.cipher_c2s.iter())?;
    let cipher_s2c: Cipher =
        algorithms::choose(client.cipher_s2c.iter(), server.cipher_s2c.iter())?;

    // OpenSSH PROTOCOL section 1.6: with an AEAD cipher the MAC list is not negotiated.
    let mac_c2s = if cipher_c2s.is_aead() {
        None
    } else {
        Some(algorithms::choose::<Mac>(
            client.mac_c2s.iter(),
            server.mac_c2s.iter(),
        )?)
    };
    let mac_s2c = if cipher_s2c.is_aead() {
        None
    } else {
        Some(algorithms::choose::<Mac>(
            client.mac_s2c.iter(),
            server.mac_s2c.iter(),
        )?)
    };

    for (ours, theirs) in [
        (client.compression_c2s, server.compression_c2s),
        (client.compression_s2c, server.compression_s2c),
    ] {
        if !(ours.contains("none") && theirs.contains("none")) {
            return Err(algorithms::NoCommonAlgorithm {
                kind: "compression method",
                client: ours.as_str().to_owned(),
                server: theirs.as_str().to_owned(),
            }
            .into());
        }
    }

    let strict_kex =
        strict_offered && client.kex.contains(STRICT_CLIENT) && server.kex.contains(STRICT_SERVER);
    Ok(Negotiated {
        kex,
        host_key,
        cipher_c2s,
        cipher_s2c,
        mac_c2s,
        mac_s2c,
        strict_kex,
    })
}

/// RFC 4253 section 7: a guessed first packet is right only when both sides' first
/// key exchange and host key algorithms agree.
pub fn guess_was_right(client: &KexInit<'_>, server: &KexInit<'_>) -> bool {
    client.kex.iter().next() == server.kex.iter().next()
        && client.host_key.iter().next() == server.host_key.iter().next()
}

/// The client's ephemeral secret, kept until the server's reply.
pub enum ClientSecret {
    X25519(Zeroizing<[u8; 32]>),
    Hybrid {
        x25519: Zeroizing<[u8; 32]>,
        mlkem: MlKem768Secret,
    },
}

impl core::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

/// The shared secret K, already encoded as it enters the exchange hash: an `mpint` for
/// curve25519-sha256 (RFC 8731 section 3.1), a `string` for the hybrid.
pub struct SharedSecret(Zeroizing<Vec<u8>>);

impl core::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

impl SharedSecret {
    pub fn encoded(&self) -> &[u8] {
        &self.0
    }
}

fn kex_failed(e: KexFailure) -> Error {
    Error::protocol(DisconnectReason::KEY_EXCHANGE_FAILED, e.0)
}

/// Client: makes the ephemeral key and the value Q_C sent in KEX_ECDH_INIT. `random`
/// supplies 96 bytes: 32 for X25519 and 64 for ML-KEM's key generation seeds.
pub fn client_start(kex: Kex, random: &[u8; 96]) -> (ClientSecret, Vec<u8>) {
    let mut x = Zeroizing::new([0u8; 32]);
    x.copy_from_slice(&random[..32]);
    let x_public = kem::x25519_public(&x);
    match kex {
        Kex::Curve25519Sha256 | Kex::Curve25519Sha256Libssh => {
            (ClientSecret::X25519(x), x_public.to_vec())
        }
        Kex::MlKem768X25519Sha256 => {
            let mut d = [0u8; 32];
            let mut z = [0u8; 32];
            d.copy_from_slice(&random[32..64]);
            z.copy_from_slice(&random[64..96]);
            let (mlkem, public) = kem::mlkem768_keygen(&d, &z);
            let mut q_c = Vec::with_capacity(kem::MLKEM768_PUBLIC_LEN + 32);
            q_c.extend_from_slice(&public[..]);
            q_c.extend_from_slice(&x_public);
            (ClientSecret::Hybrid { x25519: x, mlkem }, q_c)
        }
    }
}

/// Server: answers Q_C with Q_S and computes K. `random` supplies 64 bytes: 32 for
/// X25519 and 32 for the ML-KEM encapsulation.
pub fn server_respond(
    provider: &dyn CryptoProvider,
    kex: Kex,
    q_c: &[u8],
    random: &[u8; 64],
) -> Result<(Vec<u8>, SharedSecret), Error> {
    let mut x = Zeroizing::new([0u8; 32]);
    x.copy_from_slice(&random[..32]);
    let x_public = kem::x25519_public(&x);
    match kex {
        Kex::Curve25519Sha256 | Kex::Curve25519Sha256Libssh => {
            let shared = kem::x25519_shared(&x, q_c).map_err(kex_failed)?;
            Ok((x_public.to_vec(), mpint_secret(&shared[..])))
        }
        Kex::MlKem768X25519Sha256 => {
            if q_c.len() != kem::MLKEM768_PUBLIC_LEN + 32 {
                return Err(kex_failed(KexFailure(
                    "hybrid client value of the wrong length",
                )));
            }
            let (ek, x_peer) = q_c.split_at(kem::MLKEM768_PUBLIC_LEN);
            let mut m = [0u8; 32];
            m.copy_from_slice(&random[32..]);
            let (ciphertext, k_pq) = kem::mlkem768_encapsulate(ek, &m).map_err(kex_failed)?;
            let k_cl = kem::x25519_shared(&x, x_peer).map_err(kex_failed)?;
            let mut q_s = Vec::with_capacity(kem::MLKEM768_CIPHERTEXT_LEN + 32);
            q_s.extend_from_slice(&ciphertext[..]);
            q_s.extend_from_slice(&x_public);
            Ok((q_s, hybrid_secret(provider, &k_pq[..], &k_cl[..])))
        }
    }
}

/// Client: computes K from the server's Q_S.
pub fn client_finish(
    provider: &dyn CryptoProvider,
    secret: &ClientSecret,
    q_s: &[u8],
) -> Result<SharedSecret, Error> {
    match secret {
        ClientSecret::X25519(x) => {
            let shared = kem::x25519_shared(x, q_s).map_err(kex_failed)?;
            Ok(mpint_secret(&shared[..]))
        }
        ClientSecret::Hybrid { x25519, mlkem } => {
            if q_s.len() != kem::MLKEM768_CIPHERTEXT_LEN + 32 {
                return Err(kex_failed(KexFailure(
                    "hybrid server value of the wrong length",
                )));
            }
            let (ciphertext, x_peer) = q_s.split_at(kem::MLKEM768_CIPHERTEXT_LEN);
            let k_pq = kem::mlkem768_decapsulate(mlkem, ciphertext).map_err(kex_failed)?;
            let k_cl = kem::x25519_shared(x25519, x_peer).map_err(kex_failed)?;
            Ok(hybrid_secret(provider, &k_pq[..], &k_cl[..]))
        }
    }
}

fn mpint_secret(shared: &[u8]) -> SharedSecret {
    let mut k = Zeroizing::new(Vec::with_capacity(40));
    k.put_mpint(shared);
    SharedSecret(k)
}

/// The hybrid's K: SHA-256 over the ML-KEM secret then the X25519 secret, as a string.
fn hybrid_secret(provider: &dyn CryptoProvider, k_pq: &[u8], k_cl: &[u8]) -> SharedSecret {
    let digest = crate::crypto::digest(provider, HashAlg::Sha256, &[k_pq, k_cl]);
    let mut k = Zeroizing::new(Vec::with_capacity(36));
    k.put_string(digest.as_bytes());
    SharedSecret(k)
}

/// Every key exchange here hashes with SHA-256.
pub fn hash_alg(_kex: Kex) -> HashAlg {
    HashAlg::Sha256
}

/// The inputs of the exchange hash H (RFC 4253 section 8, RFC 5656 section 4).
#[derive(Debug)]
pub struct HashInputs<'a> {
    pub client_version: &'a [u8],
    pub server_version: &'a [u8],
    pub client_kexinit: &'a [u8],
    pub server_kexinit: &'a [u8],
    pub host_key: &'a [u8],
    pub q_c: &'a [u8],
    pub q_s: &'a [u8],
}

pub fn exchange_hash(
    provider: &dyn CryptoProvider,
    alg: HashAlg,
    inputs: &HashInputs<'_>,
    k: &SharedSecret,
) -> Digest {
    let mut h = provider.hash(alg);
    for field in [
        inputs.client_version,
        inputs.server_version,
        inputs.client_kexinit,
        inputs.server_kexinit,
        inputs.host_key,
        inputs.q_c,
        inputs.q_s,
    ] {
        // The u32 cast cannot truncate: every field is bounded by the packet size.
        h.update(&(field.len() as u32).to_be_bytes());
        h.update(field);
    }
    h.update(k.encoded());
    h.finish()
}

/// RFC 4253 section 7.2: key `letter` of `len` bytes, extended by hashing K || H || the
/// key so far for as long as needed.
pub fn derive(
    provider: &dyn CryptoProvider,
    alg: HashAlg,
    k: &SharedSecret,
    h: &Digest,
    letter: u8,
    session_id: &Digest,
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 64));
    let first = crate::crypto::digest(
        provider,
        alg,
        &[k.encoded(), h.as_bytes(), &[letter], session_id.as_bytes()],
    );
    out.extend_from_slice(first.as_bytes());
    while out.len() < len {
        let next = crate::crypto::digest(provider, alg, &[k.encoded(), h.as_bytes(), &out]);
        out.extend_from_slice(next.as_bytes());
    }
    out.truncate(len);
    out
}

/// The keys for both directions, named from our side.
#[derive(Debug)]
pub struct SessionKeys {
    pub outgoing: DirectionKeys,
    pub incoming: DirectionKeys,
}

/// Derives both directions' keys (RFC 4253 section 7.2: IVs are A and B, keys C and D,
/// MAC keys E and F; the first of each pair is client to server).
pub fn session_keys(
    provider: &dyn CryptoProvider,
    role: Role,
    negotiated: &Negotiated,
    k: &SharedSecret,
    h: &Digest,
    session_id: &Digest,
) -> SessionKeys {
    let alg = hash_alg(negotiated.kex);
    let direction = |cipher: Cipher, mac: Option<Mac>, [iv, key, mac_key]: [u8; 3]| DirectionKeys {
        cipher,
        mac,
        iv: derive(provider, alg, k, h, iv, session_id, cipher.iv_len()),
        key: derive(provider, alg, k, h, key, session_id, cipher.key_len()),
        mac_key: derive(
            provider,
            alg,
            k,
            h,
            mac_key,
            session_id,
            mac.map_or(0, Mac::key_len),
        ),
    };
    let c2s = direction(
        negotiated.cipher_c2s,
        negotiated.mac_c2s,
        [b'A', b'C', b'E'],
    );
    let s2c = direction(
        negotiated.cipher_s2c,
        negotiated.mac_s2c,
        [b'B', b'D', b'F'],
    );
    match role {
        Role::Client => SessionKeys {
            outgoing: c2s,
            incoming: s2c,
        },
        Role::Server => SessionKeys {
            outgoing: s2c,
            incoming: c2s,
        },
    }
}
