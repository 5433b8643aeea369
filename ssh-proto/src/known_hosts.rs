//! OpenSSH `known_hosts` files: parsed, matched against a server's host key, appended to.
//!
//! The format is the one sshd(8) describes in its section SSH_KNOWN_HOSTS FILE FORMAT.
//! Each line holds an optional marker (`@revoked` or `@cert-authority`), the host names,
//! the key type, the base64 key blob and an optional comment, separated by spaces or
//! tabs. Host names are a comma list of patterns where `*` and `?` are wildcards and a
//! leading `!` negates, or one hashed name `|1|salt|hash` (the HMAC-SHA1 of the name,
//! keyed by the salt). A server on a port other than 22 is named `[host]:port`. Blank
//! lines and lines starting with `#` are comments.
//!
//! A lookup answers what ssh(1)'s host key check answers; the outcomes, each checked
//! against OpenSSH 9.2 itself (the files under `vectors/known_hosts/` record what `ssh`,
//! `ssh-keygen -F` and `ssh-keygen -H` said), are described on [`HostKeyStatus`].
//!
//! Host certificates are not supported yet: `@cert-authority` lines are parsed and kept,
//! but a lookup ignores them and says so at debug level; supporting them needs the
//! OpenSSH certificate format (its PROTOCOL.certkeys) in [`crate::hostkey`] first.
//!
//! The crate reads no files: the caller hands [`KnownHosts::parse`] the text and appends
//! the line [`entry_line`] makes. Parsing never fails and never panics: these files are
//! edited by hand, merged, and can be corrupt or hostile, so a line that does not parse
//! is skipped and reported as a [`LineWarning`] naming it, and every other line still
//! counts, as OpenSSH does.
//!
//! ```
//! use ssh_proto::hostkey::PublicKey;
//! use ssh_proto::known_hosts::{HostKeyStatus, KnownHosts, entry_line};
//!
//! let key = PublicKey::Ed25519([7; 32]);
//! let line = entry_line("bastion.example.com", 2222, &key, None).unwrap();
//! assert!(line.starts_with("[bastion.example.com]:2222 ssh-ed25519 AAAA"));
//!
//! let known = KnownHosts::parse(&format!("# mine\n{line}\n"));
//! assert!(known.warnings().is_empty());
//! assert_eq!(
//!     known.lookup("bastion.example.com", 2222, &key),
//!     HostKeyStatus::Known { line: 2 }
//! );
//! assert_eq!(
//!     known.lookup("bastion.example.com", 22, &key),
//!     HostKeyStatus::Unknown
//! );
//! ```

use core::fmt;

use sha1::{Digest, Sha1};

use crate::base64;
use crate::hostkey::PublicKey;
use crate::pattern::glob;
use crate::wire::Reader;

/// The port whose servers are named without brackets (RFC 4253 section 4.1).
pub const DEFAULT_PORT: u16 = 22;

/// The length of a hashed name's salt and of its hash: SHA-1's output, as OpenSSH writes
/// and requires them.
pub const SALT_LEN: usize = 20;

/// Lines longer than this many bytes are skipped unread, with a warning. The longest key
/// we accept (RSA with 8192 bits) takes about 1.4 KB of base64, so no real line comes
/// near; the cap bounds the work a hostile file can cause per line.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// A host pattern longer than this many bytes makes its line invalid. OpenSSH copies
/// each pattern into a 1024-byte buffer and a longer one never matches, so such a line
/// could never work there; the cap also bounds the cost of wildcard matching.
pub const MAX_PATTERN_LEN: usize = 1023;

/// At most this many warnings are kept; [`KnownHosts::invalid_lines`] counts them all.
/// A file of binary junk then costs memory for its own text and not many times more.
pub const MAX_WARNINGS: usize = 100;

const HASH_MAGIC: &str = "|1|";

/// Key types OpenSSH writes into `known_hosts` that this crate cannot verify. Lines with
/// them are kept so a lookup knows the host has keys of other types, as ssh(1) does;
/// any other unknown type name makes the line invalid.
const OTHER_OPENSSH_KEY_TYPES: [&str; 6] = [
    "ssh-dss",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-xmss@openssh.com",
];

/// A line that was skipped because it does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineWarning {
    /// The line number, counting from 1.
    pub line: usize,
    /// Why it was skipped. Text from the file appears only escaped and cut short, so the
    /// reason is safe to print.
    pub reason: String,
}

impl fmt::Display for LineWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The marker that may start a line (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// `@cert-authority`: the key signs host certificates. Kept, but ignored by lookups.
    CertAuthority,
    /// `@revoked`: the key must never be accepted for the hosts the line names.
    Revoked,
}

/// The key on a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKey {
    /// A key of a type this crate supports.
    Key(PublicKey),
    /// A well-formed key of a type OpenSSH knows and this crate does not verify, such as
    /// `ecdsa-sha2-nistp384`. It never equals a server's key, but it tells a lookup that
    /// the host is known.
    Unsupported { key_type: String },
}

impl EntryKey {
    /// The key type name as the line gives it.
    pub fn key_type(&self) -> &str {
        match self {
            Self::Key(key) => key.key_type(),
            Self::Unsupported { key_type } => key_type,
        }
    }

    fn is(&self, key: &PublicKey) -> bool {
        matches!(self, Self::Key(k) if k == key)
    }
}

/// One pattern of a comma list, lowercased as OpenSSH lowercases patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    negated: bool,
    glob: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostNames {
    Patterns(Vec<Pattern>),
    Hashed {
        salt: [u8; SALT_LEN],
        hash: [u8; SALT_LEN],
    },
}

/// A line that parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    line: usize,
    marker: Option<Marker>,
    names: HostNames,
    key: EntryKey,
}

impl Entry {
    /// The line number, counting from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The marker the line starts with, if any.
    pub fn marker(&self) -> Option<Marker> {
        self.marker
    }

    /// The key the line holds.
    pub fn key(&self) -> &EntryKey {
        &self.key
    }

    /// Whether the host name is stored hashed (`|1|salt|hash`).
    pub fn is_hashed(&self) -> bool {
        matches!(self.names, HostNames::Hashed { .. })
    }

    /// Whether the line names the server at `host` and `port`, tried under the name
    /// [`host_port_name`] gives, as ssh(1) and `ssh-keygen -F` try it.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.matches_name(&host_port_name(host, port))
    }

    /// `name` must be lowercase already: patterns are stored lowercased, and hashed
    /// names were hashed from lowercase names by ssh(1) and by [`entry_line`].
    fn matches_name(&self, name: &str) -> bool {
        match &self.names {
            // A matching negated pattern rejects the line whatever else matched
            // (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT), so the order does not matter.
            HostNames::Patterns(patterns) => {
                let mut positive = false;
                for pattern in patterns {
                    if glob(pattern.glob.as_bytes(), name.as_bytes()) {
                        if pattern.negated {
                            return false;
                        }
                        positive = true;
                    }
                }
                positive
            }
            HostNames::Hashed { salt, hash } => hmac_sha1(salt, name.as_bytes()) == *hash,
        }
    }
}

/// What a `known_hosts` file says about a server's host key.
///
/// Only lines whose host names match are consulted, and `@cert-authority` lines never
/// are. The order of precedence follows ssh(1): a revocation beats everything, then an
/// exact match, then a different key of the same type, then keys of other types only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// A line for this host holds exactly this key; `line` is the first such line.
    Known { line: usize },
    /// An `@revoked` line for this host holds this key: refuse it, whatever else the file
    /// says. ssh(1) prints "REVOKED HOST KEY DETECTED" here.
    Revoked { line: usize },
    /// The host is known with a different key of the same type: the key has changed, or
    /// someone is in the middle. ssh(1) prints "REMOTE HOST IDENTIFICATION HAS CHANGED"
    /// and names `line`, the first such line, as the offending key. `old_key_type` is
    /// the type of that key, which is also the presented key's type.
    Changed {
        line: usize,
        old_key_type: &'static str,
    },
    /// The host is known only with keys of other types (these lines, in file order).
    ///
    /// This must be treated like [`HostKeyStatus::Changed`], never like
    /// [`HostKeyStatus::Unknown`]: OpenSSH (checked with 9.2) prints the same "REMOTE
    /// HOST IDENTIFICATION HAS CHANGED" warning and refuses under
    /// StrictHostKeyChecking=yes and accept-new. Were it treated as unknown, someone in
    /// the middle could skip the check by offering a key of another type than the one
    /// on file. It is a separate outcome so the message can say what happened.
    OtherTypesKnown { lines: Vec<usize> },
    /// No line names this host. With StrictHostKeyChecking=accept-new the caller may
    /// append [`entry_line`]; with `yes` it must refuse; with `ask` it asks.
    Unknown,
}

/// The name a server goes by in `known_hosts`: the host for port 22, `[host]:port`
/// otherwise (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT). Port 0 means the default, as in
/// OpenSSH. The host is lowercased (ASCII only), as ssh(1) lowercases the names it is
/// given, so lookups ignore case as OpenSSH's do.
pub fn host_port_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 0 || port == DEFAULT_PORT {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The hashed form `|1|salt|hash` of a name as [`host_port_name`] writes it: the salt and
/// the HMAC-SHA1 of the name keyed by it, both in base64. This is what ssh(1) writes when
/// HashKnownHosts is set (ssh_config(5)) and what `ssh-keygen -H` writes.
pub fn hash_host_name(name: &str, salt: &[u8; SALT_LEN]) -> String {
    let hash = hmac_sha1(salt, name.as_bytes());
    format!(
        "{HASH_MAGIC}{}|{}",
        base64::encode(salt),
        base64::encode(&hash)
    )
}

/// A host name [`entry_line`] refused because the line would not name that host alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidHostName {
    reason: &'static str,
}

impl fmt::Display for InvalidHostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host name cannot go into known_hosts: {}", self.reason)
    }
}

impl std::error::Error for InvalidHostName {}

/// The line to append to `known_hosts` for a server's key, without the line end: what
/// ssh(1) appends under StrictHostKeyChecking=accept-new or after the user said yes.
///
/// With a salt the name is hashed, as HashKnownHosts=yes asks (ssh_config(5)); the salt
/// must be 20 fresh random bytes from the caller, since the crate takes its randomness
/// from outside. The file may lack a final line end: the caller adds one before
/// appending if so.
///
/// The host is refused, rather than written, when the line would say something else
/// than "this host": when it is empty, holds whitespace, control bytes, commas or
/// wildcards, or starts with `!`, `|`, `@` or `#`, or when the name (with its port, if
/// any) is longer than [`MAX_PATTERN_LEN`]. A name like `evil,*` would otherwise trust
/// the key for every host.
pub fn entry_line(
    host: &str,
    port: u16,
    key: &PublicKey,
    salt: Option<[u8; SALT_LEN]>,
) -> Result<String, InvalidHostName> {
    check_host(host)?;
    let name = host_port_name(host, port);
    if name.len() > MAX_PATTERN_LEN {
        // The parser never matches a longer pattern, so the line would trust nothing.
        return Err(InvalidHostName {
            reason: "it is longer than a known_hosts name may be",
        });
    }
    let names = match salt {
        Some(salt) => hash_host_name(&name, &salt),
        None => name,
    };
    Ok(format!(
        "{names} {} {}",
        key.key_type(),
        base64::encode(&key.to_blob())
    ))
}

fn check_host(host: &str) -> Result<(), InvalidHostName> {
    let refuse = |reason| Err(InvalidHostName { reason });
    let bytes = host.as_bytes();
    match bytes.first() {
        None => return refuse("it is empty"),
        Some(b'!' | b'|' | b'@' | b'#') => {
            return refuse("it starts with a character known_hosts gives a meaning");
        }
        Some(_) => {}
    }
    if bytes.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return refuse("it holds whitespace or a control character");
    }
    if bytes.iter().any(|&b| matches!(b, b',' | b'*' | b'?')) {
        return refuse("it holds a comma or a wildcard");
    }
    Ok(())
}

/// A parsed `known_hosts` file.
#[derive(Clone, Debug, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
    warnings: Vec<LineWarning>,
    invalid_lines: usize,
}

impl KnownHosts {
    /// Parses a whole file. Lines end with LF or CRLF. Nothing fails: a line that does not
    /// parse is skipped and reported in [`KnownHosts::warnings`].
    pub fn parse(text: &str) -> Self {
        let mut known = Self::default();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index.saturating_add(1);
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            match parse_line(raw, line) {
                Ok(Some(entry)) => known.entries.push(entry),
                Ok(None) => {}
                Err(reason) => {
                    known.invalid_lines = known.invalid_lines.saturating_add(1);
                    if known.warnings.len() < MAX_WARNINGS {
                        known.warnings.push(LineWarning { line, reason });
                    }
                }
            }
        }
        known
    }

    /// Every line that parsed, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The lines skipped, in file order: the first [`MAX_WARNINGS`] of them.
    pub fn warnings(&self) -> &[LineWarning] {
        &self.warnings
    }

    /// How many lines were skipped, including those past [`MAX_WARNINGS`].
    pub fn invalid_lines(&self) -> usize {
        self.invalid_lines
    }

    /// The lines that name the server at `host` and `port`, whatever their marker or key:
    /// what `ssh-keygen -F` lists for that name.
    pub fn matching(&self, host: &str, port: u16) -> impl Iterator<Item = &Entry> {
        let name = host_port_name(host, port);
        self.entries.iter().filter(move |e| e.matches_name(&name))
    }

    /// What the file says about `key` as the host key of the server at `host` and `port`.
    ///
    /// The server is looked up under [`host_port_name`]. When a server on another port
    /// than 22 is not named at all under `[host]:port`, the plain `host` is tried too and
    /// an exact match there counts as known, as ssh(1) does ("checking without port
    /// identifier"). A revocation counts under either name; ssh(1) only warns about a
    /// key revoked under the plain name and goes on as if the host were unknown, which
    /// is weaker than this. A caller that also checks the server's address, as ssh(1)'s
    /// CheckHostIP does, calls this once more with the address.
    ///
    /// ssh(1) reads two files, `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`, and
    /// decides over both at once. To do the same, look the key up in each and take the
    /// strongest answer: a revocation in either, else a match in either, else a changed
    /// key, else other types, else unknown.
    pub fn lookup(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
        let name = host_port_name(host, port);
        let portless = (port != 0 && port != DEFAULT_PORT).then(|| host.to_ascii_lowercase());
        let matches_portless = |e: &Entry| portless.as_deref().is_some_and(|n| e.matches_name(n));

        // The key comparison comes first everywhere: it is cheaper than a hashed name.
        let revoked = self.entries.iter().find(|e| {
            e.marker == Some(Marker::Revoked)
                && e.key.is(key)
                && (e.matches_name(&name) || matches_portless(e))
        });
        if let Some(entry) = revoked {
            return HostKeyStatus::Revoked { line: entry.line };
        }

        let mut changed = None;
        let mut other_types = Vec::new();
        for entry in &self.entries {
            match entry.marker {
                Some(Marker::Revoked) => continue,
                Some(Marker::CertAuthority) => {
                    if entry.matches_name(&name) {
                        log::debug!(
                            "known_hosts line={} @cert-authority ignored: host certificates \
                             are not supported",
                            entry.line
                        );
                    }
                    continue;
                }
                None => {}
            }
            if !entry.matches_name(&name) {
                continue;
            }
            match &entry.key {
                EntryKey::Key(k) if k == key => return HostKeyStatus::Known { line: entry.line },
                EntryKey::Key(k) if k.key_type() == key.key_type() => {
                    changed.get_or_insert((entry.line, k.key_type()));
                }
                EntryKey::Key(_) | EntryKey::Unsupported { .. } => other_types.push(entry.line),
            }
        }
        if let Some((line, old_key_type)) = changed {
            return HostKeyStatus::Changed { line, old_key_type };
        }
        if !other_types.is_empty() {
            return HostKeyStatus::OtherTypesKnown { lines: other_types };
        }

        let portless_match = self
            .entries
            .iter()
            .find(|e| e.marker.is_none() && e.key.is(key) && matches_portless(e));
        match portless_match {
            Some(entry) => HostKeyStatus::Known { line: entry.line },
            None => HostKeyStatus::Unknown,
        }
    }
}

/// Parses one line without its line end: `Ok(None)` for a blank line or a comment,
/// `Err` with the reason for a line to skip.
fn parse_line(text: &str, line: usize) -> Result<Option<Entry>, String> {
    if text.len() > MAX_LINE_LEN {
        return Err(format!(
            "skipped a line of {} bytes: lines over {MAX_LINE_LEN} bytes are not read",
            text.len()
        ));
    }

    // Fields are separated by spaces and tabs only, as in OpenSSH; other whitespace
    // stays inside a field and makes it fail to parse.
    let mut fields = text.split([' ', '\t']).filter(|f| !f.is_empty());
    let Some(mut first) = fields.next() else {
        return Ok(None);
    };
    if first.starts_with('#') {
        return Ok(None);
    }

    let marker = if first.starts_with('@') {
        let marker = match first {
            "@cert-authority" => Marker::CertAuthority,
            "@revoked" => Marker::Revoked,
            other => return Err(format!("unknown marker \"{}\"", escaped(other))),
        };
        first = fields.next().ok_or("no host names after the marker")?;
        if first.starts_with('@') {
            return Err("more than one marker".into());
        }
        Some(marker)
    } else {
        None
    };

    let names = parse_names(first)?;
    let key_type = fields
        .next()
        .filter(|f| !f.starts_with('#'))
        .ok_or("no key type after the host names")?;
    let data = fields
        .next()
        .filter(|f| !f.starts_with('#'))
        .ok_or_else(|| format!("no key data after the key type \"{}\"", escaped(key_type)))?;
    let key = parse_key(key_type, data)?;

    // Anything further is the comment, which OpenSSH does not use either.
    Ok(Some(Entry {
        line,
        marker,
        names,
        key,
    }))
}

fn parse_names(field: &str) -> Result<HostNames, String> {
    if field.starts_with('|') {
        // One hashed name, and nothing else, in the whole field.
        let bad = |what: &str| Err(format!("malformed hashed host name: {what}"));
        let Some(rest) = field.strip_prefix(HASH_MAGIC) else {
            return bad("it does not start with |1|");
        };
        let Some((salt, hash)) = rest.split_once('|') else {
            return bad("no | between salt and hash");
        };
        let Some(salt) = decode_sha1_len(salt) else {
            return bad("the salt is not 20 bytes of base64");
        };
        let Some(hash) = decode_sha1_len(hash) else {
            return bad("the hash is not 20 bytes of base64");
        };
        return Ok(HostNames::Hashed { salt, hash });
    }

    let mut patterns = Vec::new();
    for pattern in field.split(',') {
        let (negated, glob) = match pattern.strip_prefix('!') {
            Some(glob) => (true, glob),
            None => (false, pattern),
        };
        if glob.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "a host pattern of {} bytes: patterns over {MAX_PATTERN_LEN} bytes never match",
                glob.len()
            ));
        }
        patterns.push(Pattern {
            negated,
            glob: glob.to_ascii_lowercase(),
        });
    }
    Ok(HostNames::Patterns(patterns))
}

/// Canonical padded base64 of exactly 20 bytes. Strict decoding makes comparing bytes the
/// same as OpenSSH's comparing the hash as text.
fn decode_sha1_len(text: &str) -> Option<[u8; SALT_LEN]> {
    base64::decode(text).ok()?.try_into().ok()
}

fn parse_key(key_type: &str, data: &str) -> Result<EntryKey, String> {
    let supported = is_supported_type(key_type);
    let other = OTHER_OPENSSH_KEY_TYPES.contains(&key_type);
    if !supported && !other {
        return Err(format!("unknown key type \"{}\"", escaped(key_type)));
    }

    let blob = base64::decode(data).map_err(|e| format!("key data: {e}"))?;
    if other {
        // Not a type we can parse; the blob must at least say it is one.
        let mut r = Reader::new(&blob);
        return match r.string("key type") {
            Ok(name) if name == key_type.as_bytes() => Ok(EntryKey::Unsupported {
                key_type: key_type.to_owned(),
            }),
            _ => Err(format!("the key data is not a {key_type} key")),
        };
    }

    let key = PublicKey::from_blob(&blob).map_err(|e| format!("key data: {e}"))?;
    if key.key_type() != key_type {
        return Err(format!(
            "the key type field says {key_type} but the key is {}",
            key.key_type()
        ));
    }
    Ok(EntryKey::Key(key))
}

fn is_supported_type(key_type: &str) -> bool {
    matches!(key_type, "ssh-ed25519" | "ssh-rsa" | "ecdsa-sha2-nistp256")
}

/// Text from the file made safe for a message: escaped, and cut to 64 characters.
fn escaped(text: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    out
}

/// HMAC-SHA1 (RFC 2104) with a 20-byte key, as OpenSSH hashes host names. The key is
/// shorter than SHA-1's 64-byte block, so it is only padded with zeros.
fn hmac_sha1(key: &[u8; SALT_LEN], message: &[u8]) -> [u8; SALT_LEN] {
    const BLOCK: usize = 64;
    let mut inner_pad = [0x36u8; BLOCK];
    let mut outer_pad = [0x5cu8; BLOCK];
    for ((i, o), k) in inner_pad.iter_mut().zip(outer_pad.iter_mut()).zip(key) {
        *i ^= k;
        *o ^= k;
    }

    let inner = Sha1::new()
        .chain_update(inner_pad)
        .chain_update(message)
        .finalize();
    Sha1::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_sha1_matches_rfc2202() {
        // RFC 2202 section 3, test cases 1 and 3: the two with 20-byte keys.
        assert_eq!(
            hmac_sha1(&[0x0b; 20], b"Hi There").to_vec(),
            unhex("b617318655057264e28bc0b6fb378c8ef146be00")
        );
        assert_eq!(
            hmac_sha1(&[0xaa; 20], &[0xdd; 50]).to_vec(),
            unhex("125d7342b9ac11cd91a39af48aa17b4f63f175d3")
        );
    }

    #[test]
    fn glob_follows_openssh_wildcards() {
        let cases: &[(&str, &str, bool)] = &[
            ("host.example.com", "host.example.com", true),
            ("host.example.com", "host.example.co", false),
            ("host.example.co", "host.example.com", false),
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("?", "", false),
            ("?", "a", true),
            ("??", "a", false),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "a.b.example.com", true),
            ("*.example.com", "example.com", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbYcZ", false),
            ("a*c", "abcbc", true),
            ("*c", "abcbcd", false),
            ("**", "x", true),
            ("192.0.2.?", "192.0.2.7", true),
            ("192.0.2.?", "192.0.2.17", false),
            ("[*]:2222", "[h.example.com]:2222", true),
            ("[*]:2222", "[h.example.com]:22222", false),
        ];
        for &(pattern, name, want) in cases {
            assert_eq!(
                glob(pattern.as_bytes(), name.as_bytes()),
                want,
                "{pattern:?} against {name:?}"
            );
        }
    }

    #[test]
    fn glob_is_not_exponential() {
        // The recursive matcher would take about 2^40 steps here.
        let pattern = "*a".repeat(40) + "b";
        let name = "a".repeat(200);
        assert!(!glob(pattern.as_bytes(), name.as_bytes()));
        assert!(glob(pattern.as_bytes(), (name + "b").as_bytes()));
    }

    #[test]
    fn names_with_ports_are_bracketed_and_lowercased() {
        assert_eq!(host_port_name("Host.Example.COM", 22), "host.example.com");
        assert_eq!(host_port_name("host", 0), "host");
        assert_eq!(host_port_name("HOST", 2222), "[host]:2222");
        assert_eq!(host_port_name("::1", 2222), "[::1]:2222");
    }

    #[test]
    fn patterns_are_lowercased_and_split() {
        let entry = parse_line("A.example.com,!B* ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH", 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            entry.names,
            HostNames::Patterns(vec![
                Pattern {
                    negated: false,
                    glob: "a.example.com".into()
                },
                Pattern {
                    negated: true,
                    glob: "b*".into()
                },
            ])
        );
        assert_eq!(entry.key, EntryKey::Key(PublicKey::Ed25519([7; 32])));
    }

    #[test]
    fn escaped_cuts_and_escapes() {
        assert_eq!(escaped("ssh-foo"), "ssh-foo");
        assert_eq!(escaped("a\u{1b}[2J\0"), "a\\u{1b}[2J\\u{0}");
        let long = "x".repeat(65);
        assert_eq!(escaped(&long), format!("{}...", "x".repeat(64)));
        assert_eq!(escaped(&long[..64]), "x".repeat(64));
    }
}
