//! Entry points for the key-format targets: OpenSSH private key files, public key lines,
//! `authorized_keys` and `known_hosts`. Each parses the input as a file of its kind,
//! checks every promise the parser makes about what it returns (lines numbered as read,
//! keys that round trip, lookups that agree with the entries), and reports what it found.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::fnv1a;
use crate::authorized_keys::{
    AuthorizedKeys, ClientInfo, Entry, LineError, LookupError,
    MAX_LINE_LEN as AUTHORIZED_MAX_LINE_LEN, Refusal, RefusalReason, Warning,
};
use crate::base64;
use crate::crypto::default_provider;
use crate::hostkey::{KeyError, PublicKey, RSA_MAX_BITS, RSA_MIN_BITS, SignatureAlg};
use crate::known_hosts::{
    Entry as KnownHostsEntry, EntryKey, HostKeyStatus, KnownHosts, MAX_WARNINGS, Marker,
    SALT_LEN as KNOWN_HOSTS_SALT_LEN, entry_line,
};
use crate::sim::SeededRng;
use crate::userkey::{
    Cipher as KeyFileCipher, MAX_KDF_ROUNDS, PrivateKeyFile, UserKey, UserKeyError,
    parse_public_key_line, public_key_line,
};
use crate::wire::Reader;

/// The passphrase of the encrypted throwaway keys under `vectors/userkeys/`. [`private_key`]
/// decrypts with it, so that seeds made from those files get through the cipher and
/// mutations reach the private section behind it.
pub const KEY_PASSPHRASE: &[u8] = b"throwaway test passphrase";

/// The most bcrypt rounds [`private_key`] derives a key for.
///
/// The parser lets a file ask for up to [`MAX_KDF_ROUNDS`], about 7 s of work: fine for a
/// person opening their own key, not for a fuzzer that wants thousands of runs a second.
/// The round count is one more field it mutates, and one mutation asking for the most
/// would take a quarter of the 30 s that `tests/run.sh` gives each target. Four rounds
/// take about 30 ms, and the encrypted seeds ask for one or two. Files over
/// [`MAX_KDF_ROUNDS`] are still decrypted, since they must be refused before any
/// derivation and so cost nothing.
pub const FUZZ_KDF_ROUNDS: u32 = 4;

/// What a decrypted Ed25519 or ECDSA key signs in [`private_key`].
const SIGNED: &[u8] = b"signed by a fuzzed key file";

/// What [`private_key`] found.
#[derive(Debug)]
pub struct PrivateKeyOutcome {
    /// The public key of the key file, or why [`PrivateKeyFile::parse`] refused it.
    pub file: Result<PublicKey, UserKeyError>,
    /// The public key of the decrypted key, or why decryption failed; `None` when it was
    /// not tried (see [`FUZZ_KDF_ROUNDS`]).
    pub decrypted: Option<Result<PublicKey, UserKeyError>>,
    /// The input read as a `.pub` line; `None` when it is not UTF-8.
    pub public_line: Option<Result<(PublicKey, String), UserKeyError>>,
}

/// Reads `data` as an OpenSSH private key file and, when it is UTF-8, as a `.pub` line, and
/// checks that:
/// - a file that parses holds a sound public key (see [`check_public_key`]), is encrypted
///   exactly when it names a key derivation, and its key written as a `.pub` line reads
///   back as the same key;
/// - an encrypted file refuses a missing or empty passphrase, and one asking for more than
///   [`MAX_KDF_ROUNDS`] refuses any passphrase; a file in the clear decrypts the same with
///   and without one;
/// - a decrypted key has the file's public key, [`UserKey::to_openssh`] writes it as a file
///   that reads back as the same key and comment, and an Ed25519 or ECDSA key signs data
///   that its public key then verifies. RSA keys are not made to sign: an RSA signature
///   costs milliseconds, and what it would check (that the parts form a key pair) the
///   parser has already checked;
/// - a `.pub` line that parses is written back by [`public_key_line`] as a line that reads
///   back the same, and is never also a key file;
/// - no error message holds a control character: they quote bytes from the file.
pub fn private_key(data: &[u8]) -> PrivateKeyOutcome {
    let parsed = PrivateKeyFile::parse(data);
    let mut decrypted = None;
    match &parsed {
        Ok(file) => {
            check_public_key(file.public());
            assert_eq!(
                file.needs_passphrase(),
                file.cipher() != KeyFileCipher::None,
                "needs_passphrase disagrees with the cipher"
            );
            assert_eq!(
                file.needs_passphrase(),
                file.kdf_rounds().is_some(),
                "an encrypted file without a key derivation, or the reverse"
            );
            let line = public_key_line(file.public(), "");
            assert_eq!(
                parse_public_key_line(&line),
                Ok((file.public().clone(), String::new())),
                "the file's public key as a .pub line"
            );
            decrypted = decrypt_key_file(file, data);
        }
        Err(e) => check_message(&e.to_string()),
    }

    let public_line = core::str::from_utf8(data).ok().map(|text| {
        let result = parse_public_key_line(text);
        match &result {
            Ok((key, comment)) => {
                check_public_key(key);
                assert!(
                    parsed.is_err(),
                    "one input read both as a key file and as a .pub line"
                );
                assert!(
                    comment.trim() == comment && !comment.contains('\n'),
                    "comment {comment:?}"
                );
                let line = public_key_line(key, comment);
                assert_eq!(
                    parse_public_key_line(&line),
                    Ok((key.clone(), comment.clone())),
                    "the .pub line written back: {line:?}"
                );
            }
            Err(e) => check_message(&e.to_string()),
        }
        result
    });

    PrivateKeyOutcome {
        file: parsed.map(|file| file.public().clone()),
        decrypted,
        public_line,
    }
}

/// Decrypts a parsed key file as [`private_key`] describes, with [`KEY_PASSPHRASE`].
fn decrypt_key_file(file: &PrivateKeyFile, data: &[u8]) -> Option<Result<PublicKey, UserKeyError>> {
    let provider = default_provider();
    let result = match file.kdf_rounds() {
        None => {
            let without = file.decrypt(provider, None);
            let with = file.decrypt(provider, Some(KEY_PASSPHRASE));
            assert_eq!(
                key_summary(&without),
                key_summary(&with),
                "a passphrase changed how a file in the clear decrypts"
            );
            without
        }
        Some(rounds) => {
            for missing in [None, Some(&b""[..])] {
                assert_eq!(
                    file.decrypt(provider, missing).err(),
                    Some(UserKeyError::PassphraseRequired),
                    "an encrypted file with passphrase {missing:?}"
                );
            }
            if rounds <= MAX_KDF_ROUNDS && rounds > FUZZ_KDF_ROUNDS {
                return None;
            }
            let result = file.decrypt(provider, Some(KEY_PASSPHRASE));
            if rounds > MAX_KDF_ROUNDS {
                assert_eq!(
                    result.as_ref().err(),
                    Some(&UserKeyError::KdfRounds { rounds }),
                    "a file asking for {rounds} bcrypt rounds"
                );
            }
            result
        }
    };
    match &result {
        Ok(key) => check_user_key(file, key, data),
        Err(e) => check_message(&e.to_string()),
    }
    Some(result.map(|key| key.public().clone()))
}

/// What tells two decryptions apart, as far as a caller can see.
fn key_summary(key: &Result<UserKey, UserKeyError>) -> Result<(&PublicKey, &str), &UserKeyError> {
    key.as_ref().map(|key| (key.public(), key.comment()))
}

fn check_user_key(file: &PrivateKeyFile, key: &UserKey, data: &[u8]) {
    let provider = default_provider();
    assert_eq!(key.public(), file.public(), "decrypted to another key");

    let mut rng = SeededRng::new(fnv1a(data));
    let text = match key.to_openssh(key.comment(), None, &mut rng) {
        Ok(text) => text,
        Err(e) => panic!("a decrypted key could not be written back: {e}"),
    };
    let again = PrivateKeyFile::parse(text.as_bytes()).and_then(|f| f.decrypt(provider, None));
    assert_eq!(
        key_summary(&again),
        Ok((key.public(), key.comment())),
        "the key written back does not read back"
    );

    if !matches!(key.public(), PublicKey::Rsa { .. }) {
        for alg in SignatureAlg::ALL {
            if !key.public().supports(alg) {
                continue;
            }
            let sig = match key.sign(provider, alg, SIGNED) {
                Ok(sig) => sig,
                Err(e) => panic!("a decrypted key could not sign with {alg}: {e}"),
            };
            assert_eq!(
                key.public().verify(provider, alg, SIGNED, &sig),
                Ok(()),
                "a decrypted key's {alg} signature does not verify"
            );
        }
    }
}

/// What [`public_key`] found.
#[derive(Debug)]
pub struct PublicKeyOutcome {
    /// The whole input as a key blob.
    pub key: Result<PublicKey, KeyError>,
    /// The algorithms for which the input, read as a signed message, verified.
    pub verified: Vec<SignatureAlg>,
}

/// Reads `data` two ways and checks each:
/// - as a key blob. One that parses is sound (see [`check_public_key`]) and is the one
///   encoding of its key, as the parser promises: [`PublicKey::to_blob`] gives back
///   exactly `data` for every key type, RSA's mpints included, since the parser refuses
///   every encoding but the minimal one. No proper prefix of it parses, a byte more is
///   refused as trailing, and its fingerprint has OpenSSH's shape;
/// - as `string key-blob, string signature-blob` followed by the signed bytes, verified
///   with each signature algorithm. A signature names its algorithm, so it verifies for at
///   most one, only one the key supports, and not over any other bytes.
///
/// No error message holds a control character.
pub fn public_key(data: &[u8]) -> PublicKeyOutcome {
    let provider = default_provider();
    let key = PublicKey::from_blob(data);
    match &key {
        Ok(key) => {
            check_public_key(key);
            assert_eq!(
                key.to_blob(),
                data,
                "the key parsed from a blob writes another blob"
            );
            for end in 0..data.len() {
                assert!(
                    PublicKey::from_blob(&data[..end]).is_err(),
                    "the first {end} bytes of a key blob parsed"
                );
            }
            let longer = [data, &[0]].concat();
            assert_eq!(PublicKey::from_blob(&longer), Err(KeyError::TrailingBytes));
            let fingerprint = key.fingerprint_sha256(provider);
            let digest = fingerprint.strip_prefix("SHA256:").unwrap_or_default();
            assert!(
                digest.len() == 43 && base64::decode_unpadded(digest).is_ok_and(|d| d.len() == 32),
                "fingerprint {fingerprint}"
            );
        }
        Err(e) => check_message(&e.to_string()),
    }

    let mut verified = Vec::new();
    let mut r = Reader::new(data);
    if let Ok(blob) = r.string("key blob")
        && let Ok(sig) = r.string("signature blob")
        && let Ok(signer) = PublicKey::from_blob(blob)
    {
        let signed = r.remaining();
        for alg in SignatureAlg::ALL {
            match signer.verify(provider, alg, signed, sig) {
                Ok(()) => {
                    assert!(signer.supports(alg), "a {alg} signature from {signer:?}");
                    let other = [signed, b"!"].concat();
                    assert_eq!(
                        signer.verify(provider, alg, &other, sig),
                        Err(KeyError::BadSignature),
                        "a {alg} signature verified over other bytes too"
                    );
                    verified.push(alg);
                }
                Err(e) => check_message(&e.to_string()),
            }
        }
        assert!(
            verified.len() <= 1,
            "one signature verified for {verified:?}"
        );
    }
    PublicKeyOutcome { key, verified }
}

/// Checks what every parsed public key promises: its blob parses back to it, its type
/// and the algorithms it supports agree, and an RSA key has minimal parts and a size in
/// range.
fn check_public_key(key: &PublicKey) {
    assert_eq!(
        PublicKey::from_blob(&key.to_blob()).as_ref(),
        Ok(key),
        "a key's own blob does not parse back to it"
    );
    let bits = key.bits();
    match key {
        PublicKey::Rsa { e, n } => {
            assert!(
                (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits),
                "an RSA key of {bits} bits"
            );
            assert!(
                e.first().is_some_and(|&b| b != 0) && n.first().is_some_and(|&b| b != 0),
                "RSA parts with leading zeros: {key:?}"
            );
        }
        PublicKey::Ed25519(_) | PublicKey::EcdsaP256(_) => assert_eq!(bits, 256),
    }
    for alg in SignatureAlg::ALL {
        assert_eq!(
            key.supports(alg),
            alg.key_type() == key.key_type(),
            "{key:?} and {alg}"
        );
    }
}

/// Error messages and warnings quote bytes from files a hostile party may have written,
/// and the crate promises to escape them, so they are safe to print on a terminal.
fn check_message(message: &str) {
    assert!(
        !message.chars().any(char::is_control),
        "a control character in the message {message:?}"
    );
}

/// The time [`authorized_keys`] looks keys up at: 2023-11-14, between the expiry times of
/// the seeds.
const LOOKUP_TIME: i64 = 1_700_000_000;

/// What [`authorized_keys`] found.
#[derive(Debug, Default)]
pub struct AuthorizedKeysOutcome {
    pub entries: usize,
    pub warnings: usize,
    /// Lookups that found an entry.
    pub found: usize,
    /// Lookups that found lines with the key, all of which refused the client.
    pub refused: usize,
}

/// Parses `data` as an `authorized_keys` file and checks that:
/// - [`AuthorizedKeys::parse`] and [`AuthorizedKeys::parse_bytes`] agree on UTF-8;
/// - entries and warnings name lines of the input, in order, at most one each, and every
///   other line is blank or a comment;
/// - each line means the same alone as in the file: a line's result does not depend on
///   the lines around it;
/// - a warning's reason fits its line (a line over [`MAX_LINE_LEN`] is reported as too
///   long with its length, a NUL byte as such), and its message has no control character;
/// - each entry's key is sound (see [`check_public_key`]), its comment has no blanks
///   around it, and options without port forwarding permit no forward;
/// - [`AuthorizedKeys::lookup`] for the keys of the first lines, and one key that is not
///   in the seeds, answers for a few fixed clients as its documentation says.
pub fn authorized_keys(data: &[u8]) -> AuthorizedKeysOutcome {
    let keys = AuthorizedKeys::parse_bytes(data);
    if let Ok(text) = core::str::from_utf8(data) {
        assert_eq!(
            AuthorizedKeys::parse(text),
            keys,
            "parse and parse_bytes disagree"
        );
    }
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    check_line_numbers(
        keys.entries().iter().map(|e| e.line),
        keys.warnings().iter().map(|w| w.line),
        lines.len(),
    );

    let mut entries = keys.entries().iter().peekable();
    let mut warnings = keys.warnings().iter().peekable();
    for (index, &raw) in lines.iter().enumerate() {
        let number = index + 1;
        let alone = AuthorizedKeys::parse_bytes(raw);
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if let Some(entry) = entries.next_if(|e| e.line == number) {
            assert_eq!(
                alone.entries(),
                [Entry {
                    line: 1,
                    ..entry.clone()
                }],
                "line {number} alone"
            );
            assert!(alone.warnings().is_empty(), "line {number} alone");
            check_authorized_entry(entry, line);
        } else if let Some(warning) = warnings.next_if(|w| w.line == number) {
            assert_eq!(
                alone.warnings(),
                [Warning {
                    line: 1,
                    ..warning.clone()
                }],
                "line {number} alone"
            );
            assert!(alone.entries().is_empty(), "line {number} alone");
            check_message(&warning.to_string());
            match warning.error {
                LineError::TooLong(len) => assert!(
                    len == line.len() && len > AUTHORIZED_MAX_LINE_LEN,
                    "line {number} of {} bytes reported as {len} bytes long",
                    line.len()
                ),
                LineError::NulByte => assert!(line.contains(&0), "line {number}"),
                LineError::NotUtf8 => assert!(core::str::from_utf8(line).is_err()),
                _ => {}
            }
            if !matches!(warning.error, LineError::TooLong(_)) {
                assert!(line.len() <= AUTHORIZED_MAX_LINE_LEN, "line {number}");
            }
        } else {
            assert!(
                alone == AuthorizedKeys::default() && is_blank_or_comment(line),
                "line {number} neither used nor reported"
            );
        }
    }

    let mut outcome = AuthorizedKeysOutcome {
        entries: keys.entries().len(),
        warnings: keys.warnings().len(),
        ..AuthorizedKeysOutcome::default()
    };
    let mut probes: Vec<&PublicKey> = Vec::new();
    for entry in keys.entries() {
        if probes.len() == 4 {
            break;
        }
        if !probes.contains(&&entry.key) {
            probes.push(&entry.key);
        }
    }
    let absent = PublicKey::Ed25519([7; 32]);
    probes.push(&absent);
    for client in lookup_clients() {
        for key in &probes {
            match keys.lookup(key, &client) {
                Ok(_) => outcome.found += 1,
                Err(LookupError::Refused(_)) => outcome.refused += 1,
                Err(LookupError::NotListed) => {}
            }
            check_lookup(&keys, key, &client);
        }
    }
    outcome
}

/// Blank, or a comment: a `#` after blanks.
fn is_blank_or_comment(line: &[u8]) -> bool {
    matches!(
        line.iter().find(|&&b| b != b' ' && b != b'\t'),
        None | Some(b'#')
    )
}

fn check_authorized_entry(entry: &Entry, line: &[u8]) {
    check_public_key(&entry.key);
    let comment = &entry.comment;
    assert!(
        !comment.starts_with([' ', '\t'])
            && !comment.ends_with([' ', '\t'])
            && !comment.contains('\n'),
        "line {}: comment {comment:?}",
        entry.line
    );
    if let Ok(text) = core::str::from_utf8(line) {
        assert!(text.contains(comment.as_str()), "line {}", entry.line);
    }
    let options = &entry.options;
    if !options.permits_port_forwarding() {
        assert!(
            !options.permits_open("localhost", 22) && !options.permits_listen("localhost", 8022),
            "line {}: a forward without port forwarding",
            entry.line
        );
    }
}

/// The clients [`authorized_keys`] looks keys up for: an IPv4 address without a host name,
/// an IPv4-mapped IPv6 address with a mixed-case name, and an IPv6 address whose "name"
/// is an address, which must be ignored; at three times in three time zones.
fn lookup_clients() -> [ClientInfo<'static>; 3] {
    [
        ClientInfo::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), None, LOOKUP_TIME),
        ClientInfo {
            utc_offset: -5 * 3600,
            ..ClientInfo::new(
                IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped()),
                Some("Client.Example.COM"),
                LOOKUP_TIME + 400_000_000,
            )
        },
        ClientInfo {
            utc_offset: 3600,
            ..ClientInfo::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                Some("192.0.2.1"),
                0,
            )
        },
    ]
}

/// Checks [`AuthorizedKeys::lookup`] against its documentation: the first line with the
/// key, not `cert-authority`, unexpired and whose `from=` lets the client in; else, one
/// refusal with its reason for each line with the key, expiry checked first.
fn check_lookup(keys: &AuthorizedKeys, key: &PublicKey, client: &ClientInfo<'_>) {
    let with_key = keys
        .entries()
        .iter()
        .filter(|e| e.key == *key && !e.options.is_cert_authority());
    let reason = |e: &Entry| {
        if e.options.is_expired(client.now_unix, client.utc_offset) {
            Some(RefusalReason::Expired)
        } else if !e.options.from_allows(client.ip, client.host) {
            Some(RefusalReason::FromMismatch)
        } else {
            None
        }
    };
    match keys.lookup(key, client) {
        Ok(found) => {
            let first = with_key.clone().find(|e| reason(e).is_none());
            assert!(
                first.is_some_and(|e| core::ptr::eq(e, found)),
                "lookup found line {} for {client:?}, not the first that allows",
                found.line
            );
        }
        Err(LookupError::NotListed) => {
            assert_eq!(with_key.count(), 0, "a listed key reported as not listed");
        }
        Err(LookupError::Refused(refusals)) => {
            // `None` for a line that allows, which must not be among the refusals.
            let expected: Vec<Option<Refusal>> = with_key
                .map(|e| {
                    reason(e).map(|reason| Refusal {
                        line: e.line,
                        reason,
                    })
                })
                .collect();
            let got: Vec<Option<Refusal>> = refusals.iter().copied().map(Some).collect();
            assert!(
                !got.is_empty() && got == expected,
                "refusals {refusals:?} for {client:?}, expected {expected:?}"
            );
        }
    }
}

/// Entry and warning line numbers: each list in increasing order, each number a line of
/// the input (`1..=lines`), and no line in both.
fn check_line_numbers(
    entries: impl Iterator<Item = usize> + Clone,
    warnings: impl Iterator<Item = usize> + Clone,
    lines: usize,
) {
    for (what, numbers) in [
        ("entry", entries.clone().collect::<Vec<_>>()),
        ("warning", warnings.clone().collect()),
    ] {
        assert!(
            numbers.iter().all(|n| (1..=lines).contains(n)),
            "{what} line numbers {numbers:?} outside 1..={lines}"
        );
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "{what} line numbers out of order: {numbers:?}"
        );
    }
    let mut both: Vec<usize> = entries.chain(warnings).collect();
    let count = both.len();
    both.sort_unstable();
    both.dedup();
    assert_eq!(both.len(), count, "a line both used and reported");
}

/// The names [`known_hosts`] always looks up, besides those it takes from the input: a
/// plain name, a bracketed one with a port, a hashed one and a negated one in the seeds.
const KNOWN_HOSTS_PROBES: [(&str, u16); 4] = [
    ("plain.example.com", 22),
    ("port.example.com", 2222),
    ("hashed.example.com", 22),
    ("bad.neg.example.com", 22),
];

/// What [`known_hosts`] found.
#[derive(Debug, Default)]
pub struct KnownHostsOutcome {
    pub entries: usize,
    pub invalid_lines: usize,
    /// What each lookup answered, in the order they were made.
    pub statuses: Vec<HostKeyStatus>,
}

/// Parses `data` (made UTF-8 by replacing what is not) as a `known_hosts` file and checks
/// that:
/// - at most [`MAX_WARNINGS`] warnings are kept and [`KnownHosts::invalid_lines`] counts
///   them all;
/// - entries and warnings name lines of the input, in order, at most one each, and when
///   every warning was kept, every other line is blank or a comment;
/// - each line means the same alone as in the file, and warnings have no control
///   characters;
/// - supported keys are sound (see [`check_public_key`]), and a key kept as unsupported
///   is not of a supported type;
/// - for a few fixed host names and the first names of the first lines, on their ports:
///   [`KnownHosts::matching`] lists the entries that [`Entry::matches`] the name, and
///   [`KnownHosts::lookup`] of the first keys in the file, and one that is not, answers as
///   [`HostKeyStatus`] documents;
/// - [`entry_line`] refuses exactly the names its documentation lists, and a line it
///   writes, hashed or not, reads back alone as the key of that host, and appended to the
///   file makes the key known unless a revocation or an earlier exact match answers
///   first.
pub fn known_hosts(data: &[u8]) -> KnownHostsOutcome {
    let text = String::from_utf8_lossy(data);
    let known = KnownHosts::parse(&text);
    let lines: Vec<&str> = text.split('\n').collect();
    let warnings = known.warnings();
    assert_eq!(
        warnings.len(),
        known.invalid_lines().min(MAX_WARNINGS),
        "{} invalid lines",
        known.invalid_lines()
    );
    assert!(known.entries().len() + known.invalid_lines() <= lines.len());
    check_line_numbers(
        known.entries().iter().map(KnownHostsEntry::line),
        warnings.iter().map(|w| w.line),
        lines.len(),
    );
    let probes = known_hosts_probes(&lines);
    // Which entries name each probe, with and without its port: worked out once, as hashed
    // names cost an HMAC each time.
    let named: Vec<ProbeMatches> = probes
        .iter()
        .map(|(host, port)| ProbeMatches::new(&known, host, *port))
        .collect();

    for warning in warnings {
        check_message(&warning.to_string());
        let alone = KnownHosts::parse(lines[warning.line - 1]);
        assert!(
            alone.entries().is_empty()
                && alone.warnings().len() == 1
                && alone.warnings()[0].reason == warning.reason,
            "line {} alone: {:?}",
            warning.line,
            alone.warnings()
        );
    }
    for (index, entry) in known.entries().iter().enumerate() {
        match entry.key() {
            EntryKey::Key(key) => check_public_key(key),
            EntryKey::Unsupported { key_type } => assert!(
                !["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"].contains(&key_type.as_str()),
                "a supported key type kept as unsupported"
            ),
        }
        let alone = KnownHosts::parse(lines[entry.line() - 1]);
        let [single] = alone.entries() else {
            panic!("line {} alone: {:?}", entry.line(), alone.warnings());
        };
        assert!(
            alone.warnings().is_empty()
                && single.key() == entry.key()
                && single.marker() == entry.marker()
                && single.is_hashed() == entry.is_hashed()
                && probes
                    .iter()
                    .zip(&named)
                    .all(|((h, p), named)| single.matches(h, *p) == named.exact[index]),
            "line {} means something else alone",
            entry.line()
        );
    }
    if known.invalid_lines() == warnings.len() {
        let mut used = vec![false; lines.len()];
        for n in known
            .entries()
            .iter()
            .map(KnownHostsEntry::line)
            .chain(warnings.iter().map(|w| w.line))
        {
            used[n - 1] = true;
        }
        for (index, line) in lines.iter().enumerate() {
            if !used[index] {
                let first = line.split([' ', '\t', '\r']).find(|f| !f.is_empty());
                assert!(
                    first.is_none_or(|f| f.starts_with('#')),
                    "line {} neither used nor reported",
                    index + 1
                );
            }
        }
    }

    let mut keys: Vec<PublicKey> = Vec::new();
    for entry in known.entries() {
        if keys.len() == 3 {
            break;
        }
        if let EntryKey::Key(key) = entry.key()
            && !keys.contains(key)
        {
            keys.push(key.clone());
        }
    }
    keys.push(PublicKey::Ed25519([7; 32]));

    let mut statuses = Vec::new();
    for ((host, port), named) in probes.iter().zip(&named) {
        let matching: Vec<usize> = known
            .matching(host, *port)
            .map(KnownHostsEntry::line)
            .collect();
        let expected: Vec<usize> = known
            .entries()
            .iter()
            .zip(&named.exact)
            .filter(|(_, exact)| **exact)
            .map(|(e, _)| e.line())
            .collect();
        assert_eq!(matching, expected, "matching({host:?}, {port})");
        for key in &keys {
            let status = known.lookup(host, *port, key);
            assert_eq!(
                status,
                expected_status(&known, named, key),
                "lookup({host:?}, {port}, {key:?})"
            );
            statuses.push(status);
        }
    }

    for (i, ((host, port), named)) in probes.iter().zip(&named).enumerate() {
        check_appended(&known, named, &text, host, *port, &keys[0], i);
    }

    KnownHostsOutcome {
        entries: known.entries().len(),
        invalid_lines: known.invalid_lines(),
        statuses,
    }
}

/// [`KNOWN_HOSTS_PROBES`], then the first names of lines that are not comments, each with
/// its port, so that mutations of the names in the file are looked up too; eight at most.
fn known_hosts_probes(lines: &[&str]) -> Vec<(String, u16)> {
    let mut probes: Vec<(String, u16)> = KNOWN_HOSTS_PROBES
        .iter()
        .map(|&(host, port)| (host.to_owned(), port))
        .collect();
    for line in lines {
        if probes.len() == 8 {
            break;
        }
        let mut fields = line.split([' ', '\t', '\r']).filter(|f| !f.is_empty());
        let Some(mut names) = fields.next().filter(|f| !f.starts_with('#')) else {
            continue;
        };
        if names.starts_with('@') {
            match fields.next() {
                Some(next) => names = next,
                None => continue,
            }
        }
        let name = names.split(',').next().unwrap_or_default();
        let name = name.strip_prefix('!').unwrap_or(name);
        let bracketed = name
            .strip_prefix('[')
            .and_then(|rest| rest.rsplit_once("]:"))
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)));
        let (host, port) = bracketed.unwrap_or((name, 22));
        let probe = (host.to_owned(), port);
        if !probes.contains(&probe) {
            probes.push(probe);
        }
    }
    probes
}

/// Which entries of a file name one probe: `exact[i]` when entry `i` matches
/// `[host]:port` (or `host` for port 22), `portless[i]` when it matches the plain `host`
/// and the port is not 22.
struct ProbeMatches {
    exact: Vec<bool>,
    portless: Vec<bool>,
}

impl ProbeMatches {
    fn new(known: &KnownHosts, host: &str, port: u16) -> Self {
        let has_port = port != 0 && port != 22;
        let entries = known.entries();
        Self {
            exact: entries.iter().map(|e| e.matches(host, port)).collect(),
            portless: entries
                .iter()
                .map(|e| has_port && e.matches(host, 22))
                .collect(),
        }
    }
}

/// What [`HostKeyStatus`] says [`KnownHosts::lookup`] answers, worked out from the
/// entries: an `@revoked` line with the key under `[host]:port` or the plain host; else
/// the first unmarked line for `[host]:port` with the key; else the first such line with
/// another key of its type; else all such lines, of other types; else the first
/// unmarked line with the key under the plain host, for a port other than 22.
fn expected_status(known: &KnownHosts, named: &ProbeMatches, key: &PublicKey) -> HostKeyStatus {
    let holds = |e: &KnownHostsEntry| e.key() == &EntryKey::Key(key.clone());
    let entries: Vec<(&KnownHostsEntry, bool, bool)> = known
        .entries()
        .iter()
        .zip(&named.exact)
        .zip(&named.portless)
        .map(|((e, &exact), &portless)| (e, exact, portless))
        .collect();

    if let Some((e, ..)) = entries.iter().find(|(e, exact, portless)| {
        e.marker() == Some(Marker::Revoked) && holds(e) && (*exact || *portless)
    }) {
        return HostKeyStatus::Revoked { line: e.line() };
    }
    let named: Vec<&KnownHostsEntry> = entries
        .iter()
        .filter(|(e, exact, _)| e.marker().is_none() && *exact)
        .map(|(e, ..)| *e)
        .collect();
    if let Some(e) = named.iter().find(|e| holds(e)) {
        return HostKeyStatus::Known { line: e.line() };
    }
    if let Some(e) = named.iter().find(|e| e.key().key_type() == key.key_type()) {
        return HostKeyStatus::Changed {
            line: e.line(),
            old_key_type: key.key_type(),
        };
    }
    if !named.is_empty() {
        return HostKeyStatus::OtherTypesKnown {
            lines: named.iter().map(|e| e.line()).collect(),
        };
    }
    match entries
        .iter()
        .find(|(e, _, portless)| e.marker().is_none() && holds(e) && *portless)
    {
        Some((e, ..)) => HostKeyStatus::Known { line: e.line() },
        None => HostKeyStatus::Unknown,
    }
}

/// Whether [`entry_line`]'s documentation lets it write a line for `host`: not empty, no
/// whitespace, control byte, comma or wildcard, no `!`, `|`, `@` or `#` in front, and a
/// name with its port no longer than the longest pattern the parser matches.
fn writable_host(host: &str, port: u16) -> bool {
    let bytes = host.as_bytes();
    crate::known_hosts::host_port_name(host, port).len() <= crate::known_hosts::MAX_PATTERN_LEN
        && !matches!(bytes.first(), None | Some(b'!' | b'|' | b'@' | b'#'))
        && !bytes
            .iter()
            .any(|&b| b <= b' ' || b == 0x7f || matches!(b, b',' | b'*' | b'?'))
}

/// Checks the line [`entry_line`] writes for `host` and `port`, hashed for odd `probe`
/// numbers: alone and appended to `text`, the text of `known`.
fn check_appended(
    known: &KnownHosts,
    named: &ProbeMatches,
    text: &str,
    host: &str,
    port: u16,
    key: &PublicKey,
    probe: usize,
) {
    let salt = (probe % 2 == 1).then_some([probe as u8; KNOWN_HOSTS_SALT_LEN]);
    let line = match entry_line(host, port, key, salt) {
        Ok(line) => {
            assert!(
                writable_host(host, port),
                "wrote a line for {host:?}: {line}"
            );
            line
        }
        Err(e) => {
            assert!(!writable_host(host, port), "refused {host:?}: {e}");
            return;
        }
    };
    assert!(!line.contains(['\n', '\r']), "{line:?}");

    let alone = KnownHosts::parse(&line);
    let [entry] = alone.entries() else {
        panic!(
            "the line written for {host:?} port {port} does not read back: {:?}",
            alone.warnings()
        );
    };
    assert!(
        entry.is_hashed() == salt.is_some()
            && entry.key() == &EntryKey::Key(key.clone())
            && entry.marker().is_none()
            && entry.matches(host, port),
        "the line written for {host:?} port {port} reads back as {entry:?}"
    );
    assert_eq!(
        alone.lookup(host, port, key),
        HostKeyStatus::Known { line: 1 }
    );

    let lines = text.split('\n').count();
    let (separator, at) = if text.is_empty() || text.ends_with('\n') {
        ("", lines)
    } else {
        ("\n", lines + 1)
    };
    let appended = KnownHosts::parse(&format!("{text}{separator}{line}"));
    let before = known.lookup(host, port, key);
    let expected = match before {
        HostKeyStatus::Revoked { .. } => before,
        HostKeyStatus::Known { line }
            if known
                .entries()
                .iter()
                .zip(&named.exact)
                .any(|(e, exact)| e.line() == line && *exact) =>
        {
            before
        }
        _ => HostKeyStatus::Known { line: at },
    };
    assert_eq!(
        appended.lookup(host, port, key),
        expected,
        "after appending the line for {host:?} port {port}"
    );
}
