//! OpenSSH `authorized_keys` files: the keys a user accepts, the options each key carries,
//! and the checks a server makes with them. The format is sshd(8), "AUTHORIZED_KEYS FILE
//! FORMAT"; where the manual is silent, this module does what OpenSSH's sshd does.
//!
//! Each line holds an optional options field, a key type, the base64 key blob and a
//! comment. Empty lines and lines whose first non-blank character is `#` are ignored.
//! [`AuthorizedKeys::parse`] never fails: a line it cannot use is skipped and reported as a
//! [`Warning`] with its line number and the reason, the way sshd logs a bad line and goes on
//! to the next. The file is the user's, and it may be corrupt or written by someone
//! hostile, so nothing in here panics and every line costs time linear in its length; lines
//! over [`MAX_LINE_LEN`] bytes are refused before they are looked at.
//!
//! Options are parsed once, into [`KeyOptions`], a value the server keeps with the
//! authenticated user and asks before it grants a pty, a forward or a command. An option
//! sshd does not know makes the line invalid, as it does in sshd, so a restriction never
//! goes unenforced because it was misspelt.
//!
//! [`AuthorizedKeys::lookup`] finds the line that authorises a key for a client: the first
//! line with that key whose `from=` patterns let the client in and whose `expiry-time` has
//! not passed. When every line with the key refuses, it says which lines and why, so the
//! server can log it as sshd does ("correct key but not from a permitted host").
//!
//! The module reads no file, clock or resolver: the caller passes the text, the client's
//! address and verified host name, and the time.
//!
//! ```
//! use std::net::IpAddr;
//!
//! use ssh_proto::authorized_keys::{AuthorizedKeys, ClientInfo};
//! use ssh_proto::base64;
//! use ssh_proto::hostkey::PublicKey;
//!
//! let key = PublicKey::Ed25519([7; 32]);
//! let text = format!(
//!     "# backups only, from the office\n\
//!      restrict,command=\"rsync --server .\",from=\"10.1.0.0/16\" ssh-ed25519 {} backup\n",
//!     base64::encode(&key.to_blob()),
//! );
//! let keys = AuthorizedKeys::parse(&text);
//! assert!(keys.warnings().is_empty());
//!
//! let office = ClientInfo::new("10.1.2.3".parse::<IpAddr>().unwrap(), None, 1_700_000_000);
//! let entry = keys.lookup(&key, &office).unwrap();
//! assert_eq!(entry.line, 2);
//! assert_eq!(entry.options.forced_command(), Some("rsync --server ."));
//! assert!(!entry.options.permits_pty());
//!
//! let elsewhere = ClientInfo::new("192.0.2.1".parse::<IpAddr>().unwrap(), None, 1_700_000_000);
//! assert!(keys.lookup(&key, &elsewhere).is_err());
//! ```
//!
//! Where this module is stricter than sshd, the line is skipped with a warning rather than
//! read differently: lines with NUL bytes (sshd reads up to the NUL), lines that are not
//! UTF-8 before their comment, and `from=` entries that look like addresses but are not in
//! the standard notation (sshd hands them to the C library, which reads `010.1` as
//! 8.0.0.1; a negated entry read differently would let in a client it was meant to keep
//! out). Key types other than Ed25519, RSA and ECDSA P-256 are reported as unsupported.

use core::fmt;
use std::net::IpAddr;

use crate::base64::{self, Base64Error};
use crate::hostkey::{KeyError, PublicKey};
use crate::pattern::glob;

/// The longest line accepted, in bytes, without its line terminator. sshd(8), "AUTHORIZED_KEYS
/// FILE FORMAT": lines may be "up to a limit of 8 kilobytes, which permits RSA keys up to 16
/// kilobits". It also bounds how many options one line can carry.
pub const MAX_LINE_LEN: usize = 8192;

/// The longest `permitopen` host sshd accepts is `NI_MAXHOST - 1` bytes.
const MAX_PERMIT_HOST_LEN: usize = 1024;

/// The largest `tunnel="n"` device number sshd accepts (`SSH_TUNID_MAX`).
const MAX_TUNNEL_UNIT: u32 = 0x7fff_fffd;

/// How many bytes of a value from the file a warning shows.
const SHOWN_MAX: usize = 64;

/// The key types OpenSSH reads in this file that this crate can hold. `rsa-sha2-256` and
/// `rsa-sha2-512` name RSA keys by their signature algorithms; OpenSSH's key reader accepts
/// them for an `ssh-rsa` blob, so they are accepted here too.
const SUPPORTED_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "rsa-sha2-256",
    "rsa-sha2-512",
];

/// The other key types OpenSSH reads in this file. A line naming one is reported as
/// unsupported rather than as an unknown option.
const OTHER_OPENSSH_TYPES: &[&str] = &[
    "ssh-dss",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-xmss@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-xmss-cert-v01@openssh.com",
];

/// The keys of one `authorized_keys` file, in file order, and the lines that were skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizedKeys {
    entries: Vec<Entry>,
    warnings: Vec<Warning>,
}

/// One usable line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The line number, counting from 1.
    pub line: usize,
    pub key: PublicKey,
    /// The text after the key, without surrounding blanks; sshd ignores it.
    pub comment: String,
    pub options: KeyOptions,
}

/// A line that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The line number, counting from 1.
    pub line: usize,
    pub error: LineError,
}

/// Why a line was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// The line is longer than [`MAX_LINE_LEN`]; holds its length.
    TooLong(usize),
    /// The line holds a NUL byte.
    NulByte,
    /// The line is not UTF-8 before its comment (only from [`AuthorizedKeys::parse_bytes`]).
    NotUtf8,
    /// The options field is invalid; sshd refuses such a line ("bad key options").
    Options(OptionError),
    /// An options field with no key after it.
    MissingKey,
    /// A key type OpenSSH does not know, escaped and cut short.
    UnknownKeyType(String),
    /// A key type OpenSSH knows but this crate cannot use.
    UnsupportedKeyType(&'static str),
    /// A key type with no key data after it.
    MissingKeyData,
    /// The key data is not canonical base64.
    Base64(Base64Error),
    /// The key blob does not parse.
    Key(KeyError),
    /// The line's key type names another kind of key than its blob holds.
    KeyTypeMismatch { named: String, blob: &'static str },
}

/// Why an options field is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionError {
    /// An option sshd(8) does not define, escaped and cut short.
    Unknown(String),
    /// An option that takes a quoted value was given none.
    MissingValue(&'static str),
    /// A flag was given a value.
    UnexpectedValue(&'static str),
    /// A value does not start with `"`.
    MissingQuote(&'static str),
    /// A quoted value runs to the end of the line.
    UnterminatedQuote,
    /// Something other than `,` or a blank follows an option.
    TrailingText(&'static str),
    /// `command`, `from` and `principals` may each appear once.
    Duplicate(&'static str),
    /// A value that cannot be read; `value` is escaped and cut short.
    InvalidValue {
        option: &'static str,
        reason: &'static str,
        value: String,
    },
    /// [`KeyOptions::parse`] was given more than an options field.
    NotAnOptionsField,
}

/// A key's options: what a login with it may do. [`KeyOptions::default`] is a line without
/// options, which permits everything the server permits.
///
/// The flags follow sshd: each starts enabled, `no-pty` and the like disable one, `restrict`
/// disables all of them, and `pty`, `port-forwarding`, `agent-forwarding`, `X11-forwarding`
/// and `user-rc` enable one again. They apply left to right, so `restrict,pty` permits a pty
/// and `pty,restrict` does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOptions {
    restricted: bool,
    port_forwarding: bool,
    agent_forwarding: bool,
    x11_forwarding: bool,
    pty: bool,
    user_rc: bool,
    cert_authority: bool,
    touch_required: bool,
    verify_required: bool,
    command: Option<String>,
    principals: Option<String>,
    from: Option<FromPatterns>,
    environment: Vec<(String, String)>,
    permit_open: Vec<PermitOpen>,
    permit_listen: Vec<PermitListen>,
    expiry: Vec<ExpiryTime>,
    tunnel: Option<TunnelDevice>,
}

/// A port in `permitopen` or `permitlisten`: a number, or `*` for any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortSpec {
    Any,
    Number(u16),
}

impl PortSpec {
    /// Whether `port` is this number, or any port for `*`.
    pub fn matches(self, port: u16) -> bool {
        match self {
            Self::Any => true,
            Self::Number(n) => n == port,
        }
    }
}

/// One `permitopen="host:port"`. sshd(8): "No pattern matching or name lookup is performed
/// on the specified hostnames"; the host is compared byte for byte, except that a host of
/// `*` allows any host, as in sshd's own check. IPv6 brackets are removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermitOpen {
    pub host: String,
    pub port: PortSpec,
}

/// One `permitlisten="[host:]port"`: the host is a pattern with `*` and `?`, `*` when only
/// a port was given. IPv6 brackets are removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermitListen {
    pub host: String,
    pub port: PortSpec,
}

/// `tunnel="n"`: the tun device a tunnel request is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelDevice {
    Any,
    Unit(u32),
}

/// An `expiry-time`: a calendar date and time, in UTC when written with `Z`, else in the
/// server's local time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    utc: bool,
}

/// The parsed `from="pattern-list"`, with its text for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FromPatterns {
    text: String,
    entries: Vec<FromEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct FromEntry {
    negated: bool,
    /// As written, for matching the address text (sshd compares it case-sensitively).
    pattern: String,
    /// Lowercased, for matching host names (sshd lowercases both sides).
    pattern_lower: String,
    /// Set when the entry is an address or `address/masklen`.
    net: Option<Net>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

/// What [`AuthorizedKeys::lookup`] needs to know about the client and the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientInfo<'a> {
    /// The client's address. An IPv4-mapped IPv6 address is treated as the IPv4 address,
    /// as sshd does.
    pub ip: IpAddr,
    /// The client's host name, only if it was checked the way sshd's `UseDNS` checks it
    /// (the reverse lookup's name resolves back to `ip`), since whoever controls the
    /// reverse zone chooses it. `None` matches host patterns against the address text, as
    /// sshd does when `UseDNS` is off; so does a name that reads as an address.
    pub host: Option<&'a str>,
    /// The time, in seconds since the Unix epoch, checked against `expiry-time`.
    pub now_unix: i64,
    /// The local time zone's offset from UTC in seconds (east positive), for `expiry-time`
    /// values written without `Z`. Zero treats them as UTC.
    pub utc_offset: i32,
}

impl<'a> ClientInfo<'a> {
    /// A client at `ip`, optionally with a verified host name, at `now_unix`, with local
    /// times read as UTC.
    pub fn new(ip: IpAddr, host: Option<&'a str>, now_unix: i64) -> Self {
        Self {
            ip,
            host,
            now_unix,
            utc_offset: 0,
        }
    }
}

/// Why [`AuthorizedKeys::lookup`] found no entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// No usable line holds the key.
    NotListed,
    /// Lines hold the key, and each refused this client; one refusal per line, in order.
    Refused(Vec<Refusal>),
}

/// A line that holds the key but refused the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub reason: RefusalReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// The client's address and host name do not match the line's `from=` patterns.
    FromMismatch,
    /// The line's `expiry-time` has passed.
    Expired,
}

impl AuthorizedKeys {
    /// Parses the text of an `authorized_keys` file. Lines end with LF or CR LF.
    pub fn parse(text: &str) -> Self {
        let mut keys = Self::default();
        for (index, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let result = check_size(line.as_bytes()).and_then(|()| parse_line(line));
            keys.push(index + 1, result);
        }
        keys
    }

    /// Parses the bytes of an `authorized_keys` file. A line that is not UTF-8 is skipped,
    /// unless only its comment is not, as with a comment written in Latin-1; that comment
    /// is kept with U+FFFD in place of each bad sequence.
    pub fn parse_bytes(bytes: &[u8]) -> Self {
        let mut keys = Self::default();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            let result = check_size(line).and_then(|()| match std::str::from_utf8(line) {
                Ok(text) => parse_line(text),
                Err(e) => parse_mostly_utf8(line, e.valid_up_to()),
            });
            keys.push(index + 1, result);
        }
        keys
    }

    fn push(&mut self, line: usize, result: Result<Option<ParsedLine>, LineError>) {
        match result {
            Ok(None) => {}
            Ok(Some(parsed)) => self.entries.push(Entry {
                line,
                key: parsed.key,
                comment: parsed.comment,
                options: parsed.options,
            }),
            Err(error) => self.warnings.push(Warning { line, error }),
        }
    }

    /// The usable lines, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The skipped lines, in file order.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The entry that authorises `key` for `client`: the first line with this key whose
    /// `from=` lets the client in and whose `expiry-time` has not passed. Like sshd, a line
    /// that refuses does not end the search; a later line with the same key may allow.
    ///
    /// `cert-authority` lines are never returned: their key signs certificates and does
    /// not log in itself, and certificates are not supported yet (it needs the certificate
    /// format, its signature check and the `principals` match).
    pub fn lookup(&self, key: &PublicKey, client: &ClientInfo<'_>) -> Result<&Entry, LookupError> {
        let mut refusals = Vec::new();
        for entry in &self.entries {
            if entry.options.cert_authority || entry.key != *key {
                continue;
            }

            // sshd checks the expiry first, then `from=`.
            let reason = if entry.options.is_expired(client.now_unix, client.utc_offset) {
                RefusalReason::Expired
            } else if !entry.options.from_allows(client.ip, client.host) {
                RefusalReason::FromMismatch
            } else {
                return Ok(entry);
            };
            log::debug!(
                "authorized_keys line={} refused client={}: {reason}",
                entry.line,
                client.ip
            );
            refusals.push(Refusal {
                line: entry.line,
                reason,
            });
        }
        Err(if refusals.is_empty() {
            LookupError::NotListed
        } else {
            LookupError::Refused(refusals)
        })
    }
}

impl Default for KeyOptions {
    fn default() -> Self {
        Self {
            restricted: false,
            port_forwarding: true,
            agent_forwarding: true,
            x11_forwarding: true,
            pty: true,
            user_rc: true,
            cert_authority: false,
            touch_required: true,
            verify_required: false,
            command: None,
            principals: None,
            from: None,
            environment: Vec::new(),
            permit_open: Vec::new(),
            permit_listen: Vec::new(),
            expiry: Vec::new(),
            tunnel: None,
        }
    }
}

impl KeyOptions {
    /// Parses an options field alone, as it appears before the key type, for example
    /// `restrict,pty,command="uptime"`. Blanks are allowed only inside quotes.
    pub fn parse(field: &str) -> Result<Self, OptionError> {
        let mut cursor = Cursor::new(field);
        let options = parse_options(&mut cursor)?;
        if cursor.at_end() {
            Ok(options)
        } else {
            Err(OptionError::NotAnOptionsField)
        }
    }

    /// Whether a pty may be allocated (`no-pty`, `restrict`, `pty`).
    pub fn permits_pty(&self) -> bool {
        self.pty
    }

    /// Whether TCP forwarding in either direction is allowed (`no-port-forwarding`,
    /// `restrict`, `port-forwarding`). See also [`Self::permits_open`].
    pub fn permits_port_forwarding(&self) -> bool {
        self.port_forwarding
    }

    /// Whether agent forwarding is allowed (`no-agent-forwarding`, `restrict`,
    /// `agent-forwarding`).
    pub fn permits_agent_forwarding(&self) -> bool {
        self.agent_forwarding
    }

    /// Whether X11 forwarding is allowed (`no-X11-forwarding`, `restrict`,
    /// `X11-forwarding`).
    pub fn permits_x11_forwarding(&self) -> bool {
        self.x11_forwarding
    }

    /// Whether `~/.ssh/rc` may run (`no-user-rc`, `restrict`, `user-rc`).
    pub fn permits_user_rc(&self) -> bool {
        self.user_rc
    }

    /// Whether `restrict` appeared, even if later options enabled things again.
    pub fn is_restricted(&self) -> bool {
        self.restricted
    }

    /// The `command="..."` to run instead of whatever the client asks for, with `\"`
    /// already turned into `"`. sshd(8): it applies to shell, command and subsystem
    /// requests alike, and the client's command goes into `SSH_ORIGINAL_COMMAND`.
    pub fn forced_command(&self) -> Option<&str> {
        self.command.as_deref()
    }

    /// Whether a direct-tcpip channel (a local forward, `ssh -L`) to `host:port` is
    /// allowed: never when port forwarding is off, always when no `permitopen` is given,
    /// else only to a listed destination.
    pub fn permits_open(&self, host: &str, port: u16) -> bool {
        if !self.port_forwarding {
            return false;
        }
        self.permit_open.is_empty()
            || self
                .permit_open
                .iter()
                .any(|p| p.port.matches(port) && (p.host == "*" || p.host == host))
    }

    /// Whether a remote forward (`ssh -R`) may listen on `host:port`: never when port
    /// forwarding is off, always when no `permitlisten` is given, else only where a
    /// listed pattern matches the lowercased host and the port.
    pub fn permits_listen(&self, host: &str, port: u16) -> bool {
        if !self.port_forwarding {
            return false;
        }
        let host = host.to_ascii_lowercase();
        self.permit_listen.is_empty()
            || self
                .permit_listen
                .iter()
                .any(|p| p.port.matches(port) && glob(p.host.as_bytes(), host.as_bytes()))
    }

    /// The `permitopen` destinations, in file order.
    pub fn permit_open(&self) -> &[PermitOpen] {
        &self.permit_open
    }

    /// The `permitlisten` entries, in file order.
    pub fn permit_listen(&self) -> &[PermitListen] {
        &self.permit_listen
    }

    /// Whether `from=` lets in a client at `client_ip`, with `client_host` if its name was
    /// verified (see [`ClientInfo::host`]). True when there is no `from=`.
    ///
    /// The rules are sshd's: each comma-separated pattern is tried against the address
    /// (as a network when it is `address` or `address/masklen`, else as a `*`/`?` pattern
    /// against the address text) and against the host name (as a pattern, ignoring case);
    /// any match of a `!` pattern refuses, and otherwise one positive match is needed.
    pub fn from_allows(&self, client_ip: IpAddr, client_host: Option<&str>) -> bool {
        let Some(from) = &self.from else {
            return true;
        };
        let ip = client_ip.to_canonical();
        let ip_text = ip.to_string();
        // Like sshd, ignore a host name that reads as an address: whoever controls the
        // reverse zone could otherwise name their host after an allowed address.
        let host = client_host
            .filter(|h| h.parse::<IpAddr>().is_err() && !looks_numeric(h))
            .map_or_else(|| ip_text.clone(), str::to_ascii_lowercase);

        let mut allowed = false;
        for entry in &from.entries {
            let address_match = match entry.net {
                Some(net) => net.contains(ip),
                None => glob(entry.pattern.as_bytes(), ip_text.as_bytes()),
            };
            let host_match = glob(entry.pattern_lower.as_bytes(), host.as_bytes());
            if address_match || host_match {
                if entry.negated {
                    return false;
                }
                allowed = true;
            }
        }
        allowed
    }

    /// The `from=` pattern list as written, for logs.
    pub fn from_patterns(&self) -> Option<&str> {
        self.from.as_ref().map(|f| f.text.as_str())
    }

    /// The `environment="NAME=value"` settings, in file order. As in sshd, the first
    /// setting of a name wins. sshd applies them only when `PermitUserEnvironment` allows.
    pub fn environment(&self) -> &[(String, String)] {
        &self.environment
    }

    /// Every `expiry-time` given; the earliest one counts.
    pub fn expiry_times(&self) -> &[ExpiryTime] {
        &self.expiry
    }

    /// Whether an `expiry-time` has passed at `now_unix`, with local times read at
    /// `utc_offset` seconds east of UTC. sshd refuses a key from the second after its
    /// expiry time.
    pub fn is_expired(&self, now_unix: i64, utc_offset: i32) -> bool {
        self.expiry
            .iter()
            .any(|t| t.unix_time(utc_offset) < now_unix)
    }

    /// Whether the line is `cert-authority`: its key signs user certificates.
    /// Certificates are not supported yet, so such a line authorises nothing here.
    pub fn is_cert_authority(&self) -> bool {
        self.cert_authority
    }

    /// The `principals="..."` list as written; sshd uses it only on `cert-authority` lines.
    pub fn principals(&self) -> Option<&str> {
        self.principals.as_deref()
    }

    /// `tunnel="n"`, the tun device forced for tunnel requests.
    pub fn tunnel(&self) -> Option<TunnelDevice> {
        self.tunnel
    }

    /// Whether security keys must prove a touch (`no-touch-required` turns it off).
    pub fn touch_required(&self) -> bool {
        self.touch_required
    }

    /// Whether security keys must prove user verification, such as a PIN
    /// (`verify-required`).
    pub fn verify_required(&self) -> bool {
        self.verify_required
    }
}

impl ExpiryTime {
    /// Whether the time was written with `Z` and so is in UTC.
    pub fn is_utc(&self) -> bool {
        self.utc
    }

    /// Seconds since the Unix epoch, reading a local time at `utc_offset` seconds east of
    /// UTC. A fixed offset is exact unless daylight saving time starts or ends between
    /// now and the expiry, when it can be one hour off.
    pub fn unix_time(&self, utc_offset: i32) -> i64 {
        let year = i64::from(self.year);
        let month = usize::from(self.month);
        let leap_day = i64::from(month > 2 && is_leap_year(year));
        let days = 365 * (year - 1970) + leaps_through(year - 1) - leaps_through(1969)
            + DAYS_BEFORE_MONTH
                .get(month.wrapping_sub(1))
                .copied()
                .unwrap_or(0)
            + leap_day
            + i64::from(self.day)
            - 1;
        let local = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        if self.utc {
            local
        } else {
            local - i64::from(utc_offset)
        }
    }
}

impl fmt::Display for ExpiryTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            if self.utc { " UTC" } else { " local time" }
        )
    }
}

impl Net {
    fn contains(self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The result of one line: `None` for blank and comment lines.
struct ParsedLine {
    key: PublicKey,
    comment: String,
    /// Where the comment starts in the line, in bytes.
    comment_start: usize,
    options: KeyOptions,
}

fn check_size(line: &[u8]) -> Result<(), LineError> {
    if line.len() > MAX_LINE_LEN {
        return Err(LineError::TooLong(line.len()));
    }
    if line.contains(&0) {
        return Err(LineError::NulByte);
    }
    Ok(())
}

/// A line that is UTF-8 up to `valid_up_to` only. It is usable when everything before its
/// comment lies in that prefix: the lossy conversion changes nothing there, so the line
/// means what it says, and only the comment gets replacement characters.
fn parse_mostly_utf8(line: &[u8], valid_up_to: usize) -> Result<Option<ParsedLine>, LineError> {
    let lossy = String::from_utf8_lossy(line);
    match parse_line(&lossy) {
        Ok(Some(parsed)) if parsed.comment_start <= valid_up_to => Ok(Some(parsed)),
        Ok(None) => Ok(None),
        _ => Err(LineError::NotUtf8),
    }
}

fn parse_line(line: &str) -> Result<Option<ParsedLine>, LineError> {
    let mut cursor = Cursor::new(line);
    cursor.skip_blanks();
    if cursor.at_end() || cursor.peek() == Some(b'#') {
        return Ok(None);
    }

    // Like sshd, read the line as a bare key first, and as options and a key only if the
    // first field is not a key type: the options field is optional and unmarked.
    let first = cursor.rest().split([' ', '\t']).next().unwrap_or("");
    let options = if is_key_type(first) {
        KeyOptions::default()
    } else {
        let start = cursor.clone();
        match parse_options(&mut cursor) {
            Ok(options) => options,
            Err(OptionError::Unknown(_)) if looks_like_key_line(start.rest()) => {
                return Err(LineError::UnknownKeyType(shown(first)));
            }
            Err(e) => return Err(LineError::Options(e)),
        }
    };
    cursor.skip_blanks();

    let type_name = cursor.take_while(|b| !is_blank(b));
    if type_name.is_empty() {
        return Err(LineError::MissingKey);
    }
    if !SUPPORTED_TYPES.contains(&type_name) {
        return Err(
            match OTHER_OPENSSH_TYPES.iter().find(|t| **t == type_name) {
                Some(known) => LineError::UnsupportedKeyType(known),
                None => LineError::UnknownKeyType(shown(type_name)),
            },
        );
    }
    cursor.skip_blanks();
    let data = cursor.take_while(|b| !is_blank(b));
    if data.is_empty() {
        return Err(LineError::MissingKeyData);
    }
    let blob = base64::decode(data).map_err(LineError::Base64)?;
    let key = PublicKey::from_blob(&blob).map_err(LineError::Key)?;
    let rsa_by_signature = matches!(type_name, "rsa-sha2-256" | "rsa-sha2-512");
    if key.key_type() != type_name && !(rsa_by_signature && matches!(key, PublicKey::Rsa { .. })) {
        return Err(LineError::KeyTypeMismatch {
            named: type_name.to_owned(),
            blob: key.key_type(),
        });
    }

    cursor.skip_blanks();
    let comment_start = cursor.pos;
    let comment = cursor.rest().trim_end_matches([' ', '\t']).to_owned();
    Ok(Some(ParsedLine {
        key,
        comment,
        comment_start,
        options,
    }))
}

fn is_key_type(name: &str) -> bool {
    SUPPORTED_TYPES.contains(&name) || OTHER_OPENSSH_TYPES.contains(&name)
}

/// Whether a line whose first field is not a known key type still looks like `TYPE BLOB`:
/// a first field without option syntax, then base64 that starts as every key blob does,
/// with the four-byte length of a short type name.
fn looks_like_key_line(line: &str) -> bool {
    let mut fields = line.split([' ', '\t']).filter(|f| !f.is_empty());
    let first = fields.next().unwrap_or("");
    let second = fields.next().unwrap_or("");
    !first.contains([',', '=', '"']) && second.starts_with("AAAA")
}

/// The flags of sshd(8)'s list. The negatable ones also take a `no-` prefix.
#[derive(Clone, Copy)]
enum Flag {
    Restrict,
    CertAuthority,
    VerifyRequired,
    PortForwarding,
    AgentForwarding,
    X11Forwarding,
    Pty,
    UserRc,
    TouchRequired,
}

const PLAIN_FLAGS: &[(&str, Flag)] = &[
    ("restrict", Flag::Restrict),
    ("cert-authority", Flag::CertAuthority),
    ("verify-required", Flag::VerifyRequired),
];

const NEGATABLE_FLAGS: &[(&str, Flag)] = &[
    ("port-forwarding", Flag::PortForwarding),
    ("agent-forwarding", Flag::AgentForwarding),
    ("x11-forwarding", Flag::X11Forwarding),
    ("pty", Flag::Pty),
    ("user-rc", Flag::UserRc),
    ("touch-required", Flag::TouchRequired),
];

/// The options that take a quoted value.
const VALUED: &[&str] = &[
    "command",
    "environment",
    "expiry-time",
    "from",
    "permitlisten",
    "permitopen",
    "principals",
    "tunnel",
];

enum Opt {
    Flag(Flag, bool),
    Valued,
}

fn lookup_option(name: &str) -> Option<(&'static str, Opt)> {
    let find = |table: &[(&'static str, Flag)], name: &str| {
        table
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .copied()
    };
    if let Some((n, flag)) = find(PLAIN_FLAGS, name).or_else(|| find(NEGATABLE_FLAGS, name)) {
        return Some((n, Opt::Flag(flag, true)));
    }
    let negated = name
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("no-"))
        .and_then(|_| name.get(3..));
    if let Some((n, flag)) = negated.and_then(|rest| find(NEGATABLE_FLAGS, rest)) {
        return Some((n, Opt::Flag(flag, false)));
    }
    VALUED
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .map(|n| (*n, Opt::Valued))
}

/// Reads the options field up to the first blank outside quotes. As in sshd, empty
/// options (a leading comma, two commas in a row) are passed over.
fn parse_options(cursor: &mut Cursor<'_>) -> Result<KeyOptions, OptionError> {
    let mut o = KeyOptions::default();
    while let Some(b) = cursor.peek() {
        if is_blank(b) {
            break;
        }
        if b == b',' {
            cursor.pos += 1;
            continue;
        }

        let name = cursor.take_while(|b| !matches!(b, b',' | b'=' | b' ' | b'\t'));
        let (canonical, opt) =
            lookup_option(name).ok_or_else(|| OptionError::Unknown(shown(name)))?;
        let has_value = cursor.peek() == Some(b'=');
        match opt {
            Opt::Flag(_, _) if has_value => return Err(OptionError::UnexpectedValue(canonical)),
            Opt::Flag(flag, on) => o.set_flag(flag, on),
            Opt::Valued if !has_value => return Err(OptionError::MissingValue(canonical)),
            Opt::Valued => {
                cursor.pos += 1;
                let value = dequote(cursor, canonical)?;
                o.set_value(canonical, value)?;
            }
        }

        match cursor.peek() {
            None | Some(b',' | b' ' | b'\t') => {}
            Some(_) => return Err(OptionError::TrailingText(canonical)),
        }
    }
    Ok(o)
}

/// Reads a `"..."` value. Only `\"` is an escape, standing for `"`; any other backslash
/// is kept as it is, as sshd keeps it.
fn dequote(cursor: &mut Cursor<'_>, option: &'static str) -> Result<String, OptionError> {
    if cursor.peek() != Some(b'"') {
        return Err(OptionError::MissingQuote(option));
    }
    cursor.pos += 1;

    let rest = cursor.rest();
    let mut out = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                cursor.pos += i + 1;
                return Ok(out);
            }
            '\\' if chars.peek().map(|&(_, next)| next) == Some('"') => {
                chars.next();
                out.push('"');
            }
            _ => out.push(c),
        }
    }
    Err(OptionError::UnterminatedQuote)
}

impl KeyOptions {
    fn set_flag(&mut self, flag: Flag, on: bool) {
        match flag {
            Flag::Restrict => {
                self.restricted = true;
                self.port_forwarding = false;
                self.agent_forwarding = false;
                self.x11_forwarding = false;
                self.pty = false;
                self.user_rc = false;
            }
            Flag::CertAuthority => self.cert_authority = true,
            Flag::VerifyRequired => self.verify_required = true,
            Flag::PortForwarding => self.port_forwarding = on,
            Flag::AgentForwarding => self.agent_forwarding = on,
            Flag::X11Forwarding => self.x11_forwarding = on,
            Flag::Pty => self.pty = on,
            Flag::UserRc => self.user_rc = on,
            Flag::TouchRequired => self.touch_required = on,
        }
    }

    fn set_value(&mut self, option: &'static str, value: String) -> Result<(), OptionError> {
        let invalid = |reason: &'static str, value: &str| OptionError::InvalidValue {
            option,
            reason,
            value: shown(value),
        };
        match option {
            "command" => set_once(&mut self.command, value, option)?,
            "principals" => set_once(&mut self.principals, value, option)?,
            "from" => {
                if self.from.is_some() {
                    return Err(OptionError::Duplicate(option));
                }
                let entries = parse_from(&value).map_err(|r| invalid(r, &value))?;
                self.from = Some(FromPatterns {
                    text: value,
                    entries,
                });
            }
            "environment" => {
                let (name, setting) = value
                    .split_once('=')
                    .ok_or_else(|| invalid("no '=' after the name", &value))?;
                let valid_name = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid_name {
                    return Err(invalid("the name must be letters, digits and '_'", &value));
                }
                if !self.environment.iter().any(|(n, _)| n == name) {
                    self.environment.push((name.to_owned(), setting.to_owned()));
                }
            }
            "expiry-time" => {
                let time = parse_expiry(&value).map_err(|r| invalid(r, &value))?;
                self.expiry.push(time);
            }
            "permitopen" => {
                let (host, port) = parse_host_port(&value).map_err(|r| invalid(r, &value))?;
                self.permit_open.push(PermitOpen { host, port });
            }
            "permitlisten" => {
                // sshd(8): the host is optional, and a bare port listens on any host.
                let spec = if value.contains(':') {
                    value.clone()
                } else {
                    format!("*:{value}")
                };
                let (host, port) = parse_host_port(&spec).map_err(|r| invalid(r, &value))?;
                self.permit_listen.push(PermitListen { host, port });
            }
            "tunnel" => {
                let device = if value.eq_ignore_ascii_case("any") {
                    TunnelDevice::Any
                } else {
                    parse_decimal(&value)
                        .filter(|&n| n <= u64::from(MAX_TUNNEL_UNIT))
                        .and_then(|n| u32::try_from(n).ok())
                        .map(TunnelDevice::Unit)
                        .ok_or_else(|| invalid("not a device number or \"any\"", &value))?
                };
                self.tunnel = Some(device);
            }
            _ => return Err(OptionError::Unknown(shown(option))),
        }
        Ok(())
    }
}

fn set_once(
    slot: &mut Option<String>,
    value: String,
    option: &'static str,
) -> Result<(), OptionError> {
    if slot.is_some() {
        return Err(OptionError::Duplicate(option));
    }
    *slot = Some(value);
    Ok(())
}

/// `host:port` or `[host]:port` as sshd's `permitopen` takes it. The port is 1 to 65535
/// or `*`.
fn parse_host_port(spec: &str) -> Result<(String, PortSpec), &'static str> {
    let (host, port, raw_host_len) = if let Some(inner) = spec.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or("'[' without ']'")?;
        let port = after
            .strip_prefix(':')
            .ok_or("no ':port' after the bracketed host")?;
        (host, port, host.len() + 2)
    } else {
        let (host, port) = spec.split_once(':').ok_or("no ':port' after the host")?;
        if host.contains('/') {
            return Err("'/' is not a host and port separator");
        }
        (host, port, host.len())
    };
    if raw_host_len > MAX_PERMIT_HOST_LEN {
        return Err("host name too long");
    }

    let port = if port == "*" {
        PortSpec::Any
    } else {
        parse_decimal(port)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|&n| n != 0)
            .map(PortSpec::Number)
            .ok_or("the port must be 1 to 65535 or *")?
    };
    Ok((host.to_owned(), port))
}

/// Decimal digits only (no sign, no blanks), saturating far above any valid value.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// The `from=` pattern list. Any entry sshd would refuse to match with (an empty entry, a
/// mask longer than the address, bits set outside the mask) makes sshd refuse the key on
/// every login, so the line is refused here when it is read.
fn parse_from(list: &str) -> Result<Vec<FromEntry>, &'static str> {
    list.split(',')
        .map(|item| {
            let (negated, pattern) = match item.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, item),
            };
            if pattern.is_empty() {
                return Err("empty pattern in the list");
            }
            let net = match parse_cidr(pattern)? {
                Some(net) => Some(net),
                None if looks_numeric(pattern) => {
                    return Err("an address not in standard notation");
                }
                None => None,
            };
            Ok(FromEntry {
                negated,
                pattern: pattern.to_owned(),
                pattern_lower: pattern.to_ascii_lowercase(),
                net,
            })
        })
        .collect()
}

/// `address` or `address/masklen`. `Ok(None)` when the entry is not in that form (it is
/// then a wildcard pattern); an error when it is but makes no network.
fn parse_cidr(pattern: &str) -> Result<Option<Net>, &'static str> {
    let (addr, prefix) = match pattern.split_once('/') {
        Some((addr, len)) => match parse_decimal(len) {
            Some(n) if n <= 128 => (addr, Some(n)),
            _ => return Ok(None),
        },
        None => (pattern, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return Ok(None);
    };

    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(n) if n <= u64::from(max) => u8::try_from(n).map_err(|_| "mask too long")?,
        Some(_) => return Err("mask longer than the address"),
    };
    let net = Net { addr, prefix };
    if net.masked() != addr {
        return Err("address has bits set outside the mask");
    }
    Ok(Some(net))
}

impl Net {
    fn masked(self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

/// Whether a pattern that is not a standard address could still be one to the C library
/// sshd passes it to (`010.1`, `0x0a000001`, `fe80::1%eth0`): digits, hex and dots from a
/// digit on, or any `:`, with no wildcard.
fn looks_numeric(pattern: &str) -> bool {
    if pattern.contains(['*', '?']) {
        return false;
    }
    let addr = pattern.split('/').next().unwrap_or(pattern);
    let digit_first = addr.bytes().next().is_some_and(|b| b.is_ascii_digit());
    addr.contains(':')
        || (digit_first
            && addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b'x' | b'X')))
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, then `Z` for UTC (sshd(8),
/// `expiry-time`; newer OpenSSH also takes `UTC`, which is accepted too).
fn parse_expiry(text: &str) -> Result<ExpiryTime, &'static str> {
    let (digits, utc) = if text.len() > 1 && text.ends_with(['Z', 'z']) {
        (text.get(..text.len() - 1).unwrap_or(""), true)
    } else if text.len() > 3
        && text
            .get(text.len() - 3..)
            .is_some_and(|s| s.eq_ignore_ascii_case("UTC"))
    {
        (text.get(..text.len() - 3).unwrap_or(""), true)
    } else {
        (text, false)
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not YYYYMMDD[Z], YYYYMMDDHHMM[Z] or YYYYMMDDHHMMSS[Z]");
    }

    let field = |at: usize, len: usize| -> u16 {
        digits
            .get(at..at + len)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let narrow = |v: u16| u8::try_from(v).unwrap_or(u8::MAX);
    let time = ExpiryTime {
        year: field(0, 4),
        month: narrow(field(4, 2)),
        day: narrow(field(6, 2)),
        hour: narrow(field(8, 2)),
        minute: narrow(field(10, 2)),
        second: narrow(field(12, 2)),
        utc,
    };

    if time.year < 1970 {
        return Err("before 1970");
    }
    let month_days = match time.month {
        2 if is_leap_year(i64::from(time.year)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return Err("no such month"),
    };
    if time.day == 0 || time.day > month_days {
        return Err("no such day in that month");
    }
    // A 60th second is allowed for a leap second, as strptime allows it.
    if time.hour > 23 || time.minute > 59 || time.second > 60 {
        return Err("no such time of day");
    }
    // sshd takes a time of zero to mean "no expiry" and refuses it.
    if utc && time.unix_time(0) == 0 {
        return Err("the epoch itself");
    }
    Ok(time)
}

const DAYS_BEFORE_MONTH: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Leap years from year 1 through `year`.
fn leaps_through(year: i64) -> i64 {
    year / 4 - year / 100 + year / 400
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A value from the file as a warning shows it: escaped, and cut to [`SHOWN_MAX`] bytes.
fn shown(text: &str) -> String {
    let mut end = text.len().min(SHOWN_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.get(..end).unwrap_or("");
    let mut out: String = cut.chars().flat_map(char::escape_debug).collect();
    if end < text.len() {
        out.push_str("...");
    }
    out
}

/// A read position in one line. Every position it stops at is an ASCII delimiter or an
/// end, so slices taken from it always fall on character boundaries.
#[derive(Clone)]
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    /// Advances over bytes that satisfy `keep`, which must hold for every byte of a
    /// multi-byte character or for none of them (true of every ASCII test used here).
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.text.get(start..self.pos).unwrap_or("")
    }

    fn skip_blanks(&mut self) {
        self.take_while(is_blank);
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong(len) => {
                write!(f, "line of {len} bytes, over the {MAX_LINE_LEN}-byte limit")
            }
            Self::NulByte => f.write_str("line holds a NUL byte"),
            Self::NotUtf8 => f.write_str("line is not UTF-8 before its comment"),
            Self::Options(e) => write!(f, "bad key options: {e}"),
            Self::MissingKey => f.write_str("options with no key after them"),
            Self::UnknownKeyType(name) => write!(f, "unknown key type \"{name}\""),
            Self::UnsupportedKeyType(name) => write!(f, "key type {name} is not supported"),
            Self::MissingKeyData => f.write_str("key type with no key data after it"),
            Self::Base64(e) => write!(f, "key data: {e}"),
            Self::Key(e) => write!(f, "key: {e}"),
            Self::KeyTypeMismatch { named, blob } => {
                write!(f, "line names key type {named} but the key is {blob}")
            }
        }
    }
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(name) => write!(f, "unknown option \"{name}\""),
            Self::MissingValue(name) => write!(f, "{name} needs a quoted value"),
            Self::UnexpectedValue(name) => write!(f, "{name} takes no value"),
            Self::MissingQuote(name) => write!(f, "the value of {name} must start with '\"'"),
            Self::UnterminatedQuote => f.write_str("quoted value without its closing '\"'"),
            Self::TrailingText(name) => write!(f, "text after {name} before the next ','"),
            Self::Duplicate(name) => write!(f, "{name} given more than once"),
            Self::InvalidValue {
                option,
                reason,
                value,
            } => write!(f, "{option}=\"{value}\": {reason}"),
            Self::NotAnOptionsField => f.write_str("text after the options field"),
        }
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotListed => f.write_str("key not listed"),
            Self::Refused(refusals) => {
                f.write_str("key listed but refused")?;
                for (i, r) in refusals.iter().enumerate() {
                    f.write_str(if i == 0 { ": " } else { "; " })?;
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FromMismatch => "client not permitted by from=",
            Self::Expired => "expiry-time has passed",
        })
    }
}

impl std::error::Error for LineError {}
impl std::error::Error for OptionError {}
impl std::error::Error for LookupError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_sshd_patterns() {
        let yes = [
            ("*", ""),
            ("*", "anything"),
            ("a?c", "abc"),
            ("*.example.com", "host.example.com"),
            ("192.168.1.*", "192.168.1.200"),
            ("*a*b", "xxaxxb"),
            ("a**b", "ab"),
            ("", ""),
        ];
        let no = [
            ("?", ""),
            ("a?c", "ac"),
            ("*.example.com", "example.com"),
            ("abc", "abcd"),
            ("abc", "ab"),
            ("*a*b", "xxaxxbx"),
            ("", "a"),
        ];
        for (p, t) in yes {
            assert!(glob(p.as_bytes(), t.as_bytes()), "{p} should match {t}");
        }
        for (p, t) in no {
            assert!(
                !glob(p.as_bytes(), t.as_bytes()),
                "{p} should not match {t}"
            );
        }
    }

    /// Every pattern over `a`, `b`, `*` and `?` up to 5 long against every text over `a` and
    /// `b` up to 5 long, compared with the plain recursive definition.
    #[test]
    fn glob_agrees_with_the_recursive_definition() {
        fn reference(p: &[u8], t: &[u8]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some((b'*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
                Some((&c, rest)) => {
                    t.first().is_some_and(|&tc| c == b'?' || c == tc) && reference(rest, &t[1..])
                }
            }
        }
        fn all(alphabet: &[u8], max: usize) -> Vec<Vec<u8>> {
            let mut out = vec![Vec::new()];
            let mut layer = vec![Vec::new()];
            for _ in 0..max {
                layer = layer
                    .iter()
                    .flat_map(|s| alphabet.iter().map(move |&c| [s.as_slice(), &[c]].concat()))
                    .collect();
                out.extend(layer.iter().cloned());
            }
            out
        }
        let texts = all(b"ab", 5);
        for p in all(b"ab*?", 5) {
            for t in &texts {
                assert_eq!(glob(&p, t), reference(&p, t), "{:?} {:?}", p, t);
            }
        }
    }

    /// A pattern that takes a backtracking matcher exponential time is answered here after
    /// at most pattern length times text length steps.
    #[test]
    fn glob_is_not_exponential() {
        let pattern = "*a".repeat(60) + "b";
        let text = "a".repeat(4000);
        assert!(!glob(pattern.as_bytes(), text.as_bytes()));
        assert!(glob(pattern.as_bytes(), (text + "b").as_bytes()));
    }
}
