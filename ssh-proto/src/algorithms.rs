//! Algorithm names, preference lists in OpenSSH's syntax, and negotiation
//! (RFC 4253 section 7.1).

use core::fmt;

use crate::hostkey::SignatureAlg;

/// An algorithm with a wire name, one of a fixed set this crate implements.
pub trait Algorithm: Copy + Eq + fmt::Debug + 'static {
    /// Every algorithm of the kind, strongest and fastest first: the default order.
    const ALL: &'static [Self];
    /// What `-o` calls this kind, for error messages (`cipher`, `MAC`, ...).
    const KIND: &'static str;

    fn name(self) -> &'static str;

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }
}

/// Key exchange methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kex {
    /// ML-KEM-768 with X25519, SHA-256 (draft-ietf-sshm-mlkem-hybrid-kex; OpenSSH 10's
    /// default).
    MlKem768X25519Sha256,
    /// RFC 8731.
    Curve25519Sha256,
    /// The name libssh and OpenSSH used before RFC 8731; the same method.
    Curve25519Sha256Libssh,
}

impl Algorithm for Kex {
    const ALL: &'static [Self] = &[
        Self::MlKem768X25519Sha256,
        Self::Curve25519Sha256,
        Self::Curve25519Sha256Libssh,
    ];
    const KIND: &'static str = "key exchange method";

    fn name(self) -> &'static str {
        match self {
            Self::MlKem768X25519Sha256 => "mlkem768x25519-sha256",
            Self::Curve25519Sha256 => "curve25519-sha256",
            Self::Curve25519Sha256Libssh => "curve25519-sha256@libssh.org",
        }
    }
}

impl Algorithm for SignatureAlg {
    const ALL: &'static [Self] = &[
        Self::Ed25519,
        Self::EcdsaP256,
        Self::RsaSha512,
        Self::RsaSha256,
    ];
    const KIND: &'static str = "host key type";

    fn name(self) -> &'static str {
        SignatureAlg::name(self)
    }
}

/// Packet ciphers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// RFC 5647 as OpenSSH defines it (`PROTOCOL` section 1.6): the MAC negotiation is
    /// ignored and the length stays in the clear as associated data.
    Aes128Gcm,
    Aes256Gcm,
    /// OpenSSH's `PROTOCOL.chacha20poly1305`.
    ChaCha20Poly1305,
    /// RFC 4344 section 4, with a separate MAC.
    Aes128Ctr,
    Aes256Ctr,
}

impl Algorithm for Cipher {
    const ALL: &'static [Self] = &[
        Self::Aes128Gcm,
        Self::Aes256Gcm,
        Self::ChaCha20Poly1305,
        Self::Aes128Ctr,
        Self::Aes256Ctr,
    ];
    const KIND: &'static str = "cipher";

    fn name(self) -> &'static str {
        match self {
            Self::Aes128Gcm => "aes128-gcm@openssh.com",
            Self::Aes256Gcm => "aes256-gcm@openssh.com",
            Self::ChaCha20Poly1305 => "chacha20-poly1305@openssh.com",
            Self::Aes128Ctr => "aes128-ctr",
            Self::Aes256Ctr => "aes256-ctr",
        }
    }
}

impl Cipher {
    /// Whether the cipher authenticates the packet itself, making the MAC unused.
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            Self::Aes128Gcm | Self::Aes256Gcm | Self::ChaCha20Poly1305
        )
    }

    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes128Ctr => 16,
            Self::Aes256Gcm | Self::Aes256Ctr => 32,
            Self::ChaCha20Poly1305 => 64,
        }
    }

    /// The IV taken from key derivation: 12 bytes for GCM (RFC 5647 section 7.1), a
    /// 16-byte counter block for CTR, none for ChaCha20 (the nonce is the sequence number).
    pub fn iv_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => 12,
            Self::Aes128Ctr | Self::Aes256Ctr => 16,
            Self::ChaCha20Poly1305 => 0,
        }
    }

    /// The block size the padding rounds to (RFC 4253 section 6: at least 8).
    pub fn block_len(self) -> usize {
        match self {
            Self::ChaCha20Poly1305 => 8,
            _ => 16,
        }
    }
}

/// MACs, used only with the CTR ciphers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mac {
    /// OpenSSH's encrypt-then-MAC variants (`PROTOCOL` section 1.5): the MAC covers the
    /// ciphertext and the length stays in the clear.
    HmacSha256Etm,
    HmacSha512Etm,
    /// RFC 6668: MAC over the plaintext. Offered after the EtM forms for peers such as
    /// dropbear 2022 that lack them.
    HmacSha256,
    HmacSha512,
}

impl Algorithm for Mac {
    const ALL: &'static [Self] = &[
        Self::HmacSha256Etm,
        Self::HmacSha512Etm,
        Self::HmacSha256,
        Self::HmacSha512,
    ];
    const KIND: &'static str = "MAC";

    fn name(self) -> &'static str {
        match self {
            Self::HmacSha256Etm => "hmac-sha2-256-etm@openssh.com",
            Self::HmacSha512Etm => "hmac-sha2-512-etm@openssh.com",
            Self::HmacSha256 => "hmac-sha2-256",
            Self::HmacSha512 => "hmac-sha2-512",
        }
    }
}

impl Mac {
    pub fn is_etm(self) -> bool {
        matches!(self, Self::HmacSha256Etm | Self::HmacSha512Etm)
    }

    pub fn hash(self) -> crate::crypto::HashAlg {
        match self {
            Self::HmacSha256Etm | Self::HmacSha256 => crate::crypto::HashAlg::Sha256,
            Self::HmacSha512Etm | Self::HmacSha512 => crate::crypto::HashAlg::Sha512,
        }
    }

    /// RFC 6668 section 2: the key is as long as the hash output.
    pub fn key_len(self) -> usize {
        self.hash().output_len()
    }

    pub fn tag_len(self) -> usize {
        self.hash().output_len()
    }
}

/// A preference list given in OpenSSH's `-o Ciphers=...` syntax was not understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadAlgorithmList {
    pub kind: &'static str,
    pub spec: String,
    pub reason: String,
}

impl fmt::Display for BadAlgorithmList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad {} list '{}': {}", self.kind, self.spec, self.reason)
    }
}

impl std::error::Error for BadAlgorithmList {}

/// Applies an OpenSSH algorithm list to `current`, as `ssh_config(5)` describes it: a
/// plain list replaces it; a leading `+` appends, `-` removes and `^` puts the named
/// algorithms first. Names after `+`, `-` and `^` may use the `*` and `?` wildcards.
pub fn apply_spec<A: Algorithm>(current: &[A], spec: &str) -> Result<Vec<A>, BadAlgorithmList> {
    let bad = |reason: String| BadAlgorithmList {
        kind: A::KIND,
        spec: spec.to_owned(),
        reason,
    };
    let (mode, body) = match spec.as_bytes().first() {
        Some(b'+' | b'-' | b'^') => (spec.as_bytes()[0], &spec[1..]),
        _ => (b'=', spec),
    };

    let mut named = Vec::new();
    for pattern in body.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let before = named.len();
        let wild = pattern.contains(['*', '?']);
        if wild && mode == b'=' {
            return Err(bad(format!(
                "wildcard '{pattern}' needs a leading +, - or ^"
            )));
        }
        for &alg in A::ALL {
            if wildmatch(pattern, alg.name()) && !named.contains(&alg) {
                named.push(alg);
            }
        }
        if named.len() == before && !wild {
            return Err(bad(format!("unsupported {} '{pattern}'", A::KIND)));
        }
    }

    let list = match mode {
        b'+' => {
            let mut list = current.to_vec();
            list.extend(named.iter().filter(|a| !current.contains(a)));
            list
        }
        b'-' => current
            .iter()
            .copied()
            .filter(|a| !named.contains(a))
            .collect(),
        b'^' => {
            let mut list = named.clone();
            list.extend(current.iter().filter(|a| !named.contains(a)));
            list
        }
        _ => named,
    };
    if list.is_empty() {
        return Err(bad("no algorithm left".into()));
    }
    Ok(list)
}

/// Glob matching with `*` and `?`, as OpenSSH's `match_pattern`, in bounded time.
pub fn wildmatch(pattern: &str, name: &str) -> bool {
    crate::pattern::glob(pattern.as_bytes(), name.as_bytes())
}

/// The algorithms one side offers, most preferred first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preferences {
    pub kex: Vec<Kex>,
    pub host_key: Vec<SignatureAlg>,
    pub ciphers: Vec<Cipher>,
    pub macs: Vec<Mac>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            kex: Kex::ALL.to_vec(),
            host_key: SignatureAlg::ALL.to_vec(),
            ciphers: Cipher::ALL.to_vec(),
            macs: Mac::ALL.to_vec(),
        }
    }
}

/// What a key exchange settled on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub kex: Kex,
    pub host_key: SignatureAlg,
    pub cipher_c2s: Cipher,
    pub cipher_s2c: Cipher,
    /// `None` when the cipher is an AEAD and the MAC is unused.
    pub mac_c2s: Option<Mac>,
    pub mac_s2c: Option<Mac>,
    /// Both sides offered strict key exchange in their first KEXINIT.
    pub strict_kex: bool,
}

/// Negotiation found nothing in common for one kind of algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoCommonAlgorithm {
    pub kind: &'static str,
    pub client: String,
    pub server: String,
}

impl fmt::Display for NoCommonAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no matching {} found: client offered {}; server offered {}",
            self.kind, self.client, self.server
        )
    }
}

/// RFC 4253 section 7.1: the first of the client's algorithms that the server also
/// offers. Names the crate does not know are skipped, whichever side sent them.
pub fn choose<'a, A: Algorithm>(
    client: impl Iterator<Item = &'a str> + Clone,
    server: impl Iterator<Item = &'a str> + Clone,
) -> Result<A, NoCommonAlgorithm> {
    for name in client.clone() {
        if let Some(alg) = A::from_name(name)
            && server.clone().any(|s| s == name)
        {
            return Ok(alg);
        }
    }
    Err(NoCommonAlgorithm {
        kind: A::KIND,
        client: shorten(client),
        server: shorten(server),
    })
}

/// A name list for an error message, cut short if a hostile peer sent a huge one.
fn shorten<'a>(names: impl Iterator<Item = &'a str>) -> String {
    const MAX: usize = 512;
    let mut out = String::new();
    for name in names {
        if !out.is_empty() {
            out.push(',');
        }
        if out.len() + name.len() > MAX {
            out.push_str("...");
            break;
        }
        out.push_str(name);
    }
    if out.is_empty() {
        "(nothing)".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssh_list_syntax() {
        let all = Cipher::ALL;
        assert_eq!(apply_spec(all, "aes256-ctr").unwrap(), [Cipher::Aes256Ctr]);
        assert_eq!(
            apply_spec(&[Cipher::Aes128Gcm], "+aes128-ctr,aes256-ctr").unwrap(),
            [Cipher::Aes128Gcm, Cipher::Aes128Ctr, Cipher::Aes256Ctr]
        );
        assert_eq!(
            apply_spec(all, "-*-ctr").unwrap(),
            [
                Cipher::Aes128Gcm,
                Cipher::Aes256Gcm,
                Cipher::ChaCha20Poly1305
            ]
        );
        assert_eq!(
            apply_spec(all, "^chacha20-poly1305@openssh.com").unwrap()[0],
            Cipher::ChaCha20Poly1305
        );
        assert!(apply_spec(all, "3des-cbc").is_err());
        assert!(apply_spec(all, "aes*").is_err());
        assert!(apply_spec(all, "-*").is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildmatch("*-ctr", "aes128-ctr"));
        assert!(wildmatch("aes???-ctr", "aes256-ctr"));
        assert!(!wildmatch("aes??-ctr", "aes256-ctr"));
        assert!(wildmatch("*", ""));
        assert!(!wildmatch("?", ""));
        assert!(wildmatch("a*b*c", "aXXbYYc"));
        assert!(!wildmatch("a*b*c", "aXXbYY"));
        // Exponential for naive recursion; must return at once.
        let name = "a".repeat(5000);
        assert!(!wildmatch(&format!("{}b", "*a".repeat(40)), &name));
    }

    #[test]
    fn client_order_wins() {
        let client = "curve25519-sha256,mlkem768x25519-sha256".split(',');
        let server = "mlkem768x25519-sha256,curve25519-sha256".split(',');
        assert_eq!(choose::<Kex>(client, server), Ok(Kex::Curve25519Sha256));
    }

    #[test]
    fn nothing_in_common_names_both_offers() {
        let err = choose::<Cipher>("aes128-ctr".split(','), "3des-cbc,foo".split(',')).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("aes128-ctr") && text.contains("3des-cbc,foo"),
            "{text}"
        );
    }

    #[test]
    fn huge_offers_are_cut_in_messages() {
        let huge = vec!["x"; 100_000].join(",");
        let err = choose::<Cipher>(huge.split(','), "aes128-ctr".split(',')).unwrap_err();
        assert!(err.client.len() < 600);
    }
}
