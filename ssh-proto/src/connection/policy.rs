//! What a server lets an authenticated client do on the connection (RFC 4254): which
//! channels it may open, which channel requests and global requests it may make.
//!
//! Two parties decide. The operator writes a [`ServerPolicy`], shared by every
//! connection; the user's `authorized_keys` line gives the key's [`KeyOptions`]
//! (`restrict`, `no-pty`, `no-port-forwarding`, `permitopen=`, `permitlisten=`,
//! `command=`, as in sshd(8), "AUTHORIZED_KEYS FILE FORMAT"). [`Grants`] holds both for
//! one connection, and a thing is allowed only when both allow it. Nothing is allowed by
//! default: [`ServerPolicy::default`] refuses every channel and every request, and a kind
//! of channel or request this module does not know is refused.
//!
//! The server application runs every [`Event::OpenRequest`], [`Event::Request`] and
//! [`Event::GlobalRequest`] through [`Grants`] before it acts on it:
//!
//! ```
//! use std::sync::Arc;
//!
//! use ssh_proto::authorized_keys::KeyOptions;
//! use ssh_proto::connection::channels::{OwnedChannelType, OwnedRequest};
//! use ssh_proto::connection::msg::OpenFailureReason;
//! use ssh_proto::connection::policy::{Destination, Grants, ServerPolicy, Verdict};
//!
//! // `gateway serve --permit-open db.internal:5432 --allow-exec`
//! let policy = ServerPolicy {
//!     direct_tcpip: true,
//!     destinations: vec!["db.internal:5432".parse::<Destination>().unwrap()],
//!     session: true,
//!     exec: true,
//!     ..ServerPolicy::default()
//! };
//! let key = KeyOptions::parse(r#"restrict,command="uptime""#).unwrap();
//! let grants = Grants::new(Arc::new(policy), key);
//!
//! // `restrict` turned port forwarding off for this key, whatever the server allows.
//! let open = OwnedChannelType::DirectTcpip {
//!     host: b"db.internal".to_vec(),
//!     port: 5432,
//!     originator: b"127.0.0.1".to_vec(),
//!     originator_port: 40000,
//! };
//! let refusal = grants.check_open(&open).unwrap_err();
//! assert_eq!(refusal.reason(), OpenFailureReason::ADMINISTRATIVELY_PROHIBITED);
//!
//! // The key's forced command runs instead of the client's.
//! let exec = OwnedRequest::Exec { command: b"rm -rf /".to_vec() };
//! assert_eq!(
//!     grants.check_request(&exec),
//!     Verdict::RunForced {
//!         command: "uptime".to_owned(),
//!         original_command: Some(b"rm -rf /".to_vec()),
//!     },
//! );
//! ```
//!
//! Every check is pure except for one piece of connection state: after
//! `no-more-sessions@openssh.com` (OpenSSH's `PROTOCOL` section 2.2), later session
//! channels are refused. Each request is judged alone: per-channel state, such as
//! refusing a second `exec` on a session that already runs one or any request on a
//! channel that is not a session, stays with the application, which knows its channels.

use core::fmt;
use core::str::FromStr;
use std::net::Ipv6Addr;
use std::sync::Arc;

use crate::authorized_keys::{KeyOptions, PortSpec};
#[cfg(doc)]
use crate::connection::channels::{Channels, Event};
use crate::connection::channels::{OwnedChannelType, OwnedGlobalRequest, OwnedRequest};
use crate::connection::msg::OpenFailureReason;
use crate::pattern::glob;

/// The environment variable that carries the client's command when a forced command runs
/// instead, as sshd(8) sets it.
pub const ORIGINAL_COMMAND_ENV: &str = "SSH_ORIGINAL_COMMAND";

/// The longest host name a [`Destination`] accepts, in bytes: the DNS limit on a name
/// written as text (RFC 1035 section 2.3.4).
pub const MAX_HOST_LEN: usize = 253;

/// What the server's operator allows, for every connection and every user.
///
/// Each switch is off and each list empty by default, so `ServerPolicy::default()` allows
/// nothing at all. The key's options can only take away from what is allowed here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerPolicy {
    /// `session` channels (RFC 4254 section 6.1). Nothing runs in one unless one of
    /// `shell`, `exec` or `subsystems` allows it too.
    pub session: bool,
    /// `shell` requests (RFC 4254 section 6.5).
    pub shell: bool,
    /// `exec` requests (RFC 4254 section 6.5).
    pub exec: bool,
    /// The `subsystem` names allowed (RFC 4254 section 6.5), compared exactly.
    pub subsystems: Vec<String>,
    /// `pty-req` (RFC 4254 section 6.2), like sshd_config's `PermitTTY`.
    pub pty: bool,
    /// `x11-req` (RFC 4254 section 6.3.1), like `X11Forwarding`.
    pub x11: bool,
    /// `auth-agent-req@openssh.com` (OpenSSH's `PROTOCOL.agent`), like
    /// `AllowAgentForwarding`.
    pub agent: bool,
    /// The names an `env` request may set (RFC 4254 section 6.4), as `*`/`?` patterns
    /// matched case-sensitively, like sshd_config's `AcceptEnv`.
    pub accept_env: Vec<String>,
    /// `direct-tcpip` channels (RFC 4254 section 7.2), a client's local forward.
    pub direct_tcpip: bool,
    /// Where `direct-tcpip` may connect; empty allows any destination.
    pub destinations: Vec<Destination>,
    /// `direct-streamlocal@openssh.com` channels (OpenSSH's `PROTOCOL` section 2.4).
    pub direct_streamlocal: bool,
    /// `tcpip-forward` and its cancel (RFC 4254 section 7.1), a client's remote forward.
    pub tcpip_forward: bool,
    /// `streamlocal-forward@openssh.com` and its cancel (OpenSSH's `PROTOCOL` section 2.4).
    pub streamlocal_forward: bool,
}

/// Why something was refused. [`Self::reason`] and [`Self::description`] give what goes
/// into CHANNEL_OPEN_FAILURE; `Display` gives a sentence for the server's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The server's policy does not allow it.
    Server,
    /// The key's `authorized_keys` options forbid it.
    Key,
    /// A session after the client sent `no-more-sessions@openssh.com`. sshd(8)
    /// disconnects at this point, calling it a possible attack; refusing the channel is
    /// enough to keep the promise and leaves the client's other channels alone.
    NoMoreSessions,
    /// A channel type or request that only a server sends, such as an `x11` channel or
    /// `exit-status`.
    ServerToClient,
    /// A channel type or request this module does not know.
    Unknown,
    /// A port over 65535, or a host, address or name that is empty, not UTF-8, or holds
    /// control characters.
    Malformed,
    /// `keepalive@openssh.com`: the expected answer is a failure, exactly as OpenSSH's
    /// sshd gives it. Not worth logging as a refusal.
    Keepalive,
}

impl Refusal {
    /// The CHANNEL_OPEN_FAILURE reason code (RFC 4254 section 5.1): UNKNOWN_CHANNEL_TYPE
    /// for a type this module does not know, ADMINISTRATIVELY_PROHIBITED for everything
    /// else.
    pub fn reason(self) -> OpenFailureReason {
        match self {
            Self::Unknown => OpenFailureReason::UNKNOWN_CHANNEL_TYPE,
            _ => OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
        }
    }

    /// The description for CHANNEL_OPEN_FAILURE. Like sshd, it says "open failed" and
    /// nothing about which rule refused, so a client cannot map the allow lists by probing.
    pub fn description(self) -> &'static str {
        match self {
            Self::Unknown => "unknown channel type",
            _ => "open failed",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Server => "not allowed by the server's policy",
            Self::Key => "forbidden by the key's authorized_keys options",
            Self::NoMoreSessions => "a session after no-more-sessions@openssh.com",
            Self::ServerToClient => "only a server sends this",
            Self::Unknown => "unknown to this server",
            Self::Malformed => "a malformed host, name or port",
            Self::Keepalive => "a keepalive, answered with failure as OpenSSH does",
        })
    }
}

/// What to do with a channel request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Do what was asked, and reply success when a reply is wanted.
    Allow,
    /// The key carries `command=`: run `command` instead of what was asked, with
    /// `original_command` in [`ORIGINAL_COMMAND_ENV`] when there is one (sshd(8),
    /// "AUTHORIZED_KEYS FILE FORMAT"). It is the client's command for `exec`, the
    /// subsystem name for `subsystem` (sshd puts the subsystem's configured command there;
    /// an application that maps names to commands may do the same), and none for `shell`.
    RunForced {
        command: String,
        original_command: Option<Vec<u8>>,
    },
    /// Do nothing, and reply failure when a reply is wanted.
    Refuse(Refusal),
}

impl Verdict {
    /// Whether the reply, when one is wanted, is success.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Refuse(_))
    }
}

/// The server's policy and the authenticated key's options, for one connection.
///
/// A login without key options (a password, or a key line with none) uses
/// [`KeyOptions::default`], which takes nothing away from the server's policy.
#[derive(Clone, Debug)]
pub struct Grants {
    policy: Arc<ServerPolicy>,
    key: KeyOptions,
    no_more_sessions: bool,
}

impl Grants {
    /// The grants of a connection whose user authenticated with `key`'s options.
    pub fn new(policy: Arc<ServerPolicy>, key: KeyOptions) -> Self {
        Self {
            policy,
            key,
            no_more_sessions: false,
        }
    }

    /// The server's policy.
    pub fn policy(&self) -> &ServerPolicy {
        &self.policy
    }

    /// The key's options, for what this module does not judge: `environment=` and
    /// `user-rc` for the application that starts a command.
    pub fn key(&self) -> &KeyOptions {
        &self.key
    }

    /// Whether the client sent `no-more-sessions@openssh.com`.
    pub fn no_more_sessions(&self) -> bool {
        self.no_more_sessions
    }

    /// Whether a channel the client asked to open may be accepted. On refusal, answer with
    /// [`Channels::reject`] using [`Refusal::reason`] and [`Refusal::description`].
    ///
    /// `direct-tcpip` needs the server's switch, the key's `permitopen=` (checked by
    /// [`KeyOptions::permits_open`]: off under `no-port-forwarding` or `restrict`, else an
    /// exact host string and a port or `*`), and a match in the server's destination list
    /// when it has one. `direct-streamlocal@openssh.com` needs the server's switch and the
    /// key's port forwarding, as in sshd.
    pub fn check_open(&self, kind: &OwnedChannelType) -> Result<(), Refusal> {
        match kind {
            OwnedChannelType::Session => {
                if self.no_more_sessions {
                    return Err(Refusal::NoMoreSessions);
                }
                allow(self.policy.session, Refusal::Server)
            }
            OwnedChannelType::DirectTcpip { host, port, .. } => {
                self.check_direct_tcpip(host, *port)
            }
            OwnedChannelType::DirectStreamlocal { socket_path } => {
                text(socket_path)?;
                allow(self.policy.direct_streamlocal, Refusal::Server)?;
                allow(self.key.permits_port_forwarding(), Refusal::Key)
            }
            OwnedChannelType::ForwardedTcpip { .. }
            | OwnedChannelType::ForwardedStreamlocal { .. }
            | OwnedChannelType::X11 { .. }
            | OwnedChannelType::AuthAgent => Err(Refusal::ServerToClient),
            OwnedChannelType::Other { .. } => Err(Refusal::Unknown),
        }
    }

    fn check_direct_tcpip(&self, host: &[u8], port: u32) -> Result<(), Refusal> {
        let host = text(host)?;
        let port = u16::try_from(port).map_err(|_| Refusal::Malformed)?;
        allow(self.policy.direct_tcpip, Refusal::Server)?;
        allow(self.key.permits_open(host, port), Refusal::Key)?;
        let listed = self
            .policy
            .destinations
            .iter()
            .any(|d| d.matches(host, port));
        allow(
            self.policy.destinations.is_empty() || listed,
            Refusal::Server,
        )
    }

    /// What to do with a channel request on a session channel.
    ///
    /// `shell`, `exec` and `subsystem` must each be allowed by the server as asked; then a
    /// key with `command=` has the forced command run instead ([`Verdict::RunForced`]).
    /// `pty-req` needs the server's switch and the key's `pty` (off under `no-pty` and
    /// `restrict`); `x11-req` and `auth-agent-req@openssh.com` likewise with the key's X11
    /// and agent forwarding. `signal` is refused under a forced command, as sshd refuses
    /// to signal a forced command. `window-change` is allowed wherever sessions are.
    pub fn check_request(&self, request: &OwnedRequest) -> Verdict {
        let policy = &*self.policy;
        let checked = match request {
            OwnedRequest::Shell => return self.run(policy.shell, None),
            OwnedRequest::Exec { command } => return self.run(policy.exec, Some(command)),
            OwnedRequest::Subsystem { name } => {
                let listed = policy.subsystems.iter().any(|s| s.as_bytes() == name);
                return self.run(listed, Some(name));
            }
            OwnedRequest::PtyReq { .. } => {
                allow(policy.pty, Refusal::Server).and(allow(self.key.permits_pty(), Refusal::Key))
            }
            OwnedRequest::X11Req { .. } => allow(policy.x11, Refusal::Server)
                .and(allow(self.key.permits_x11_forwarding(), Refusal::Key)),
            OwnedRequest::AuthAgentReq => allow(policy.agent, Refusal::Server)
                .and(allow(self.key.permits_agent_forwarding(), Refusal::Key)),
            OwnedRequest::Env { name, .. } => text(name).and_then(|name| {
                let accepted = policy
                    .accept_env
                    .iter()
                    .any(|p| glob(p.as_bytes(), name.as_bytes()));
                allow(accepted, Refusal::Server)
            }),
            OwnedRequest::WindowChange(_) => allow(policy.session, Refusal::Server),
            OwnedRequest::Signal { .. } => allow(policy.session, Refusal::Server)
                .and(allow(self.key.forced_command().is_none(), Refusal::Key)),
            OwnedRequest::Keepalive => Err(Refusal::Keepalive),
            OwnedRequest::XonXoff { .. }
            | OwnedRequest::ExitStatus { .. }
            | OwnedRequest::ExitSignal { .. }
            | OwnedRequest::Eow => Err(Refusal::ServerToClient),
            OwnedRequest::Other { .. } => Err(Refusal::Unknown),
        };
        match checked {
            Ok(()) => Verdict::Allow,
            Err(refusal) => Verdict::Refuse(refusal),
        }
    }

    /// The verdict on something that runs a program: refused unless `allowed`, else the
    /// key's forced command when it has one.
    fn run(&self, allowed: bool, original: Option<&[u8]>) -> Verdict {
        if !allowed {
            return Verdict::Refuse(Refusal::Server);
        }
        match self.key.forced_command() {
            Some(command) => Verdict::RunForced {
                command: command.to_owned(),
                original_command: original.map(<[u8]>::to_vec),
            },
            None => Verdict::Allow,
        }
    }

    /// Whether a global request may go ahead; when a reply is wanted it is success for
    /// `Ok`, failure otherwise. For `tcpip-forward` the application still binds the
    /// listener and reports the port.
    ///
    /// `tcpip-forward` needs the server's switch and the key's `permitlisten=` (checked by
    /// [`KeyOptions::permits_listen`]); the streamlocal forwards need the server's switch
    /// and the key's port forwarding. A cancel is judged like the forward it cancels.
    /// `no-more-sessions@openssh.com` is accepted and remembered. `keepalive@openssh.com`
    /// gets [`Refusal::Keepalive`]. `hostkeys-00@openssh.com` is something servers send,
    /// and `hostkeys-prove-00@openssh.com` needs the host keys, which this module does not
    /// hold, so both are refused; OpenSSH's client then simply keeps its known hosts as
    /// they are.
    pub fn check_global(&mut self, request: &OwnedGlobalRequest) -> Result<(), Refusal> {
        match request {
            OwnedGlobalRequest::TcpipForward { address, port }
            | OwnedGlobalRequest::CancelTcpipForward { address, port } => {
                let port = u16::try_from(*port).map_err(|_| Refusal::Malformed)?;
                // Not `text`: an empty address is legal here and means every address
                // (RFC 4254 section 7.1).
                let address = std::str::from_utf8(address).map_err(|_| Refusal::Malformed)?;
                if address.chars().any(char::is_control) {
                    return Err(Refusal::Malformed);
                }
                allow(self.policy.tcpip_forward, Refusal::Server)?;
                allow(self.key.permits_listen(address, port), Refusal::Key)
            }
            OwnedGlobalRequest::StreamlocalForward { socket_path }
            | OwnedGlobalRequest::CancelStreamlocalForward { socket_path } => {
                text(socket_path)?;
                allow(self.policy.streamlocal_forward, Refusal::Server)?;
                allow(self.key.permits_port_forwarding(), Refusal::Key)
            }
            OwnedGlobalRequest::NoMoreSessions => {
                self.no_more_sessions = true;
                Ok(())
            }
            OwnedGlobalRequest::Keepalive => Err(Refusal::Keepalive),
            OwnedGlobalRequest::HostKeys(_) => Err(Refusal::ServerToClient),
            OwnedGlobalRequest::HostKeysProve(_) | OwnedGlobalRequest::Other { .. } => {
                Err(Refusal::Unknown)
            }
        }
    }
}

/// `Ok` when `allowed`, else the refusal.
fn allow(allowed: bool, refusal: Refusal) -> Result<(), Refusal> {
    if allowed { Ok(()) } else { Err(refusal) }
}

/// A host, path or name from the peer as text: UTF-8, not empty, no control characters.
fn text(bytes: &[u8]) -> Result<&str, Refusal> {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.is_empty() && !s.chars().any(char::is_control) => Ok(s),
        _ => Err(Refusal::Malformed),
    }
}

// ---------------------------------------------------------------------------------------
// Destinations

/// The host half of a [`Destination`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// One name or address, lowercased, without IPv6 brackets.
    Exact(String),
}

/// One destination `direct-tcpip` may reach, written `HOST:PORT` as on
/// `gateway serve --permit-open`: `HOST` is a name, an IPv4 address, an IPv6 address in
/// brackets, or `*` for any; `PORT` is 1 to 65535, or `*` for any.
///
/// A requested host matches by text, the way sshd(8) matches `permitopen`: no name is
/// looked up and no pattern is expanded, so an allowed name does not allow its address.
/// Unlike `permitopen`, case is ignored, IPv6 brackets are removed, and two IPv6 addresses
/// match when they are the same address written differently (`::1` and `0::1`).
///
/// ```
/// use ssh_proto::connection::policy::Destination;
///
/// let d: Destination = "[2001:db8::5]:*".parse().unwrap();
/// assert!(d.matches("2001:DB8:0::5", 22));
/// assert!(!d.matches("2001:db8::6", 22));
///
/// let e = "::1:22".parse::<Destination>().unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     r#"invalid destination "::1:22": an IPv6 address must be in brackets, as in [::1]:22"#,
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    host: HostPattern,
    port: PortSpec,
}

/// Why a `HOST:PORT` did not parse; `Display` gives one sentence naming the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationError {
    input: String,
    why: &'static str,
}

impl DestinationError {
    /// What was wrong, without the input.
    pub fn why(&self) -> &'static str {
        self.why
    }
}

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid destination {:?}: {}", self.input, self.why)
    }
}

impl std::error::Error for DestinationError {}

impl Destination {
    /// Any host on any port.
    pub const ANY: Destination = Destination {
        host: HostPattern::Any,
        port: PortSpec::Any,
    };

    /// Parses `HOST:PORT`, `[IPV6]:PORT`, with `*` for either half.
    pub fn parse(input: &str) -> Result<Self, DestinationError> {
        let error = |why| DestinationError {
            input: input.to_owned(),
            why,
        };
        let (host, port) = split_host_port(input).map_err(error)?;
        Ok(Self {
            host: parse_host(host).map_err(error)?,
            port: parse_port(port).map_err(error)?,
        })
    }

    /// The host half.
    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    /// The port half.
    pub fn port(&self) -> PortSpec {
        self.port
    }

    /// Whether a connection to `host` (as the client sent it) on `port` is to this
    /// destination.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if !self.port.matches(port) {
            return false;
        }
        let HostPattern::Exact(allowed) = &self.host else {
            return true;
        };
        let host = unbracket(host);
        if host.eq_ignore_ascii_case(allowed) {
            return true;
        }
        // Both IPv6: compare the addresses, whatever zeros were left out.
        match (host.parse::<Ipv6Addr>(), allowed.parse::<Ipv6Addr>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostPattern::Exact(h) => f.write_str(h)?,
        }
        match self.port {
            PortSpec::Any => f.write_str(":*"),
            PortSpec::Number(n) => write!(f, ":{n}"),
        }
    }
}

/// `h` without the brackets of `[h]`.
fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn split_host_port(input: &str) -> Result<(&str, &str), &'static str> {
    if let Some(rest) = input.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("a '[' without its ']'")?;
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err("brackets must hold an IPv6 address");
        }
        let port = after
            .strip_prefix(':')
            .ok_or("expected HOST:PORT, with ':' after the ']'")?;
        return Ok((inside, port));
    }
    let (host, port) = input
        .rsplit_once(':')
        .ok_or("expected HOST:PORT, such as db.internal:5432")?;
    if host.contains(':') {
        return Err("an IPv6 address must be in brackets, as in [::1]:22");
    }
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<HostPattern, &'static str> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host.is_empty() {
        return Err("the host is empty; write * for any host");
    }
    if host.len() > MAX_HOST_LEN {
        return Err("the host is longer than 253 bytes");
    }
    if host.parse::<Ipv6Addr>().is_ok() {
        return Ok(HostPattern::Exact(host.to_ascii_lowercase()));
    }
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    if !host.bytes().all(name_byte) {
        return Err(
            "the host must be a name, an address or *; patterns such as *.example.com \
             are not supported",
        );
    }
    Ok(HostPattern::Exact(host.to_ascii_lowercase()))
}

fn parse_port(port: &str) -> Result<PortSpec, &'static str> {
    const WHY: &str = "the port must be a number from 1 to 65535, or *";
    if port == "*" {
        return Ok(PortSpec::Any);
    }
    // `u16::from_str` takes a leading '+'; a port is digits only.
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WHY);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(WHY),
        Ok(n) => Ok(PortSpec::Number(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::msg::TerminalSize;

    const SIZE: TerminalSize = TerminalSize {
        cols: 80,
        rows: 24,
        width_px: 0,
        height_px: 0,
    };

    /// A policy that allows everything, with no destination or subsystem lists beyond
    /// `sftp` and `LANG`/`LC_*`.
    fn open_policy() -> ServerPolicy {
        ServerPolicy {
            session: true,
            shell: true,
            exec: true,
            subsystems: vec!["sftp".to_owned()],
            pty: true,
            x11: true,
            agent: true,
            accept_env: vec!["LANG".to_owned(), "LC_*".to_owned()],
            direct_tcpip: true,
            destinations: Vec::new(),
            direct_streamlocal: true,
            tcpip_forward: true,
            streamlocal_forward: true,
        }
    }

    fn grants(policy: ServerPolicy, key: &str) -> Grants {
        let key = if key.is_empty() {
            KeyOptions::default()
        } else {
            KeyOptions::parse(key).unwrap()
        };
        Grants::new(Arc::new(policy), key)
    }

    fn tcpip(host: &[u8], port: u32) -> OwnedChannelType {
        OwnedChannelType::DirectTcpip {
            host: host.to_vec(),
            port,
            originator: b"192.0.2.9".to_vec(),
            originator_port: 50000,
        }
    }

    fn every_channel_type() -> Vec<OwnedChannelType> {
        vec![
            OwnedChannelType::Session,
            tcpip(b"db", 5432),
            OwnedChannelType::ForwardedTcpip {
                connected_address: b"0.0.0.0".to_vec(),
                connected_port: 80,
                originator: b"192.0.2.9".to_vec(),
                originator_port: 50000,
            },
            OwnedChannelType::DirectStreamlocal {
                socket_path: b"/run/app.sock".to_vec(),
            },
            OwnedChannelType::ForwardedStreamlocal {
                socket_path: b"/run/app.sock".to_vec(),
            },
            OwnedChannelType::X11 {
                originator: b"127.0.0.1".to_vec(),
                originator_port: 6010,
            },
            OwnedChannelType::AuthAgent,
            OwnedChannelType::Other {
                name: b"tun@openssh.com".to_vec(),
                data: Vec::new(),
            },
        ]
    }

    fn every_request() -> Vec<OwnedRequest> {
        vec![
            OwnedRequest::PtyReq {
                term: b"xterm".to_vec(),
                size: SIZE,
                modes: vec![0],
            },
            OwnedRequest::X11Req {
                single_connection: false,
                auth_protocol: b"MIT-MAGIC-COOKIE-1".to_vec(),
                auth_cookie: b"00".to_vec(),
                screen: 0,
            },
            OwnedRequest::Env {
                name: b"LANG".to_vec(),
                value: b"C".to_vec(),
            },
            OwnedRequest::Shell,
            OwnedRequest::Exec {
                command: b"id".to_vec(),
            },
            OwnedRequest::Subsystem {
                name: b"sftp".to_vec(),
            },
            OwnedRequest::XonXoff {
                client_can_do: true,
            },
            OwnedRequest::ExitStatus { status: 0 },
            OwnedRequest::ExitSignal {
                signal: b"KILL".to_vec(),
                core_dumped: false,
                message: Vec::new(),
            },
            OwnedRequest::Eow,
            OwnedRequest::AuthAgentReq,
            OwnedRequest::Keepalive,
            OwnedRequest::WindowChange(SIZE),
            OwnedRequest::Signal {
                name: b"INT".to_vec(),
            },
            OwnedRequest::Other {
                name: b"break".to_vec(),
                data: vec![0, 0, 0, 0],
            },
        ]
    }

    fn every_global() -> Vec<OwnedGlobalRequest> {
        vec![
            OwnedGlobalRequest::TcpipForward {
                address: b"localhost".to_vec(),
                port: 8080,
            },
            OwnedGlobalRequest::CancelTcpipForward {
                address: b"localhost".to_vec(),
                port: 8080,
            },
            OwnedGlobalRequest::StreamlocalForward {
                socket_path: b"/tmp/s".to_vec(),
            },
            OwnedGlobalRequest::CancelStreamlocalForward {
                socket_path: b"/tmp/s".to_vec(),
            },
            OwnedGlobalRequest::Keepalive,
            OwnedGlobalRequest::HostKeys(vec![b"blob".to_vec()]),
            OwnedGlobalRequest::HostKeysProve(vec![b"blob".to_vec()]),
            OwnedGlobalRequest::Other {
                name: b"example@example.com".to_vec(),
                data: Vec::new(),
            },
        ]
    }

    // -----------------------------------------------------------------------------------
    // Nothing unless allowed: every kind of channel and request is refused by default

    #[test]
    fn the_default_policy_refuses_every_channel_request_and_global_request() {
        let mut g = grants(ServerPolicy::default(), "");
        for kind in every_channel_type() {
            assert!(g.check_open(&kind).is_err(), "{kind:?}");
        }
        for request in every_request() {
            assert!(!g.check_request(&request).is_allowed(), "{request:?}");
        }
        for request in every_global() {
            assert!(g.check_global(&request).is_err(), "{request:?}");
        }
    }

    #[test]
    fn types_only_a_server_sends_and_unknown_types_are_refused_even_by_an_open_policy() {
        let g = grants(open_policy(), "");
        let refused: Vec<_> = every_channel_type()
            .iter()
            .filter_map(|k| g.check_open(k).err())
            .collect();
        assert_eq!(
            refused,
            [
                Refusal::ServerToClient, // forwarded-tcpip
                Refusal::ServerToClient, // forwarded-streamlocal
                Refusal::ServerToClient, // x11
                Refusal::ServerToClient, // auth-agent
                Refusal::Unknown,        // tun@openssh.com
            ]
        );
    }

    #[test]
    fn refusals_map_to_open_failure_reasons_and_say_little_on_the_wire() {
        let cases = [
            (
                Refusal::Server,
                OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
            ),
            (Refusal::Key, OpenFailureReason::ADMINISTRATIVELY_PROHIBITED),
            (
                Refusal::NoMoreSessions,
                OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
            ),
            (
                Refusal::ServerToClient,
                OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
            ),
            (
                Refusal::Malformed,
                OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
            ),
            (Refusal::Unknown, OpenFailureReason::UNKNOWN_CHANNEL_TYPE),
        ];
        for (refusal, reason) in cases {
            assert_eq!(refusal.reason(), reason, "{refusal:?}");
            let expected = if refusal == Refusal::Unknown {
                "unknown channel type"
            } else {
                "open failed"
            };
            assert_eq!(refusal.description(), expected);
        }
    }

    // -----------------------------------------------------------------------------------
    // Channel opens

    #[test]
    fn channel_opens_follow_the_server_and_the_key() {
        use Refusal::{Key, Server};
        let all = open_policy();
        let db_only = ServerPolicy {
            destinations: vec![Destination::parse("db.internal:5432").unwrap()],
            ..open_policy()
        };
        let no_tcpip = ServerPolicy {
            direct_tcpip: false,
            ..open_policy()
        };
        let no_local = ServerPolicy {
            direct_streamlocal: false,
            ..open_policy()
        };
        let no_session = ServerPolicy {
            session: false,
            ..open_policy()
        };
        let open = |policy: &ServerPolicy, key: &str, kind: &OwnedChannelType| {
            grants(policy.clone(), key).check_open(kind)
        };
        let local = OwnedChannelType::DirectStreamlocal {
            socket_path: b"/run/app.sock".to_vec(),
        };
        let session = OwnedChannelType::Session;
        let db = tcpip(b"db.internal", 5432);
        let web = tcpip(b"web", 80);

        // The server's switch and destination list.
        assert_eq!(open(&all, "", &web), Ok(()));
        assert_eq!(open(&no_tcpip, "", &web), Err(Server));
        assert_eq!(open(&db_only, "", &db), Ok(()));
        assert_eq!(open(&db_only, "", &web), Err(Server));
        assert_eq!(
            open(&db_only, "", &tcpip(b"db.internal", 5433)),
            Err(Server)
        );

        // no-port-forwarding and restrict, applied left to right.
        assert_eq!(open(&all, "no-port-forwarding", &web), Err(Key));
        assert_eq!(open(&all, "restrict", &web), Err(Key));
        assert_eq!(open(&all, "restrict,port-forwarding", &web), Ok(()));
        assert_eq!(open(&all, "port-forwarding,restrict", &web), Err(Key));

        // permitopen: an exact host (case counts, as in sshd), a port or *.
        assert_eq!(open(&all, r#"permitopen="web:80""#, &web), Ok(()));
        assert_eq!(open(&all, r#"permitopen="web:81""#, &web), Err(Key));
        assert_eq!(open(&all, r#"permitopen="web:*""#, &web), Ok(()));
        assert_eq!(open(&all, r#"permitopen="*:80""#, &web), Ok(()));
        assert_eq!(open(&all, r#"permitopen="WEB:80""#, &web), Err(Key));
        assert_eq!(
            open(&all, r#"restrict,permitopen="web:80""#, &web),
            Err(Key)
        );

        // Both lists exist: both must allow.
        assert_eq!(open(&db_only, r#"permitopen="web:80""#, &web), Err(Server));
        assert_eq!(open(&db_only, r#"permitopen="web:80""#, &db), Err(Key));
        assert_eq!(
            open(&db_only, r#"permitopen="db.internal:5432""#, &db),
            Ok(())
        );

        // direct-streamlocal goes with port forwarding, as in sshd.
        assert_eq!(open(&all, "", &local), Ok(()));
        assert_eq!(open(&no_local, "", &local), Err(Server));
        assert_eq!(open(&all, "no-port-forwarding", &local), Err(Key));
        assert_eq!(open(&all, "restrict", &local), Err(Key));

        // restrict leaves sessions alone; the server decides.
        assert_eq!(open(&all, "", &session), Ok(()));
        assert_eq!(open(&all, "restrict", &session), Ok(()));
        assert_eq!(open(&no_session, "", &session), Err(Server));
    }

    #[test]
    fn malformed_destinations_are_refused_before_any_list_is_consulted() {
        let g = grants(open_policy(), "");
        let cases: &[(&[u8], u32)] = &[
            (b"web", 65536),
            (b"web", u32::MAX),
            (b"", 80),
            (b"\xff\xfe", 80),
            (b"web\0.evil", 80),
            (b"web\n", 80),
        ];
        for &(host, port) in cases {
            assert_eq!(
                g.check_open(&tcpip(host, port)),
                Err(Refusal::Malformed),
                "{host:?}:{port}"
            );
        }
        let nul_path = OwnedChannelType::DirectStreamlocal {
            socket_path: b"/run/a\0b".to_vec(),
        };
        assert_eq!(g.check_open(&nul_path), Err(Refusal::Malformed));
        // The largest port is fine.
        assert_eq!(g.check_open(&tcpip(b"web", 65535)), Ok(()));
    }

    #[test]
    fn no_more_sessions_refuses_later_sessions_only() {
        let mut g = grants(open_policy(), "");
        assert_eq!(g.check_open(&OwnedChannelType::Session), Ok(()));
        assert!(!g.no_more_sessions());

        assert_eq!(g.check_global(&OwnedGlobalRequest::NoMoreSessions), Ok(()));
        assert!(g.no_more_sessions());
        assert_eq!(
            g.check_open(&OwnedChannelType::Session),
            Err(Refusal::NoMoreSessions)
        );
        assert_eq!(g.check_open(&tcpip(b"web", 80)), Ok(()));
        // Sent twice, still accepted, still in force.
        assert_eq!(g.check_global(&OwnedGlobalRequest::NoMoreSessions), Ok(()));
        assert_eq!(
            g.check_open(&OwnedChannelType::Session),
            Err(Refusal::NoMoreSessions)
        );
    }

    // -----------------------------------------------------------------------------------
    // Channel requests

    #[test]
    fn channel_requests_follow_the_server_and_the_key() {
        use Refusal::{Keepalive, Key, Malformed, Server, ServerToClient, Unknown};
        let no = Verdict::Refuse;
        let yes = Verdict::Allow;
        let all = open_policy();
        let none = ServerPolicy::default();
        let check = |policy: &ServerPolicy, key: &str, request: &OwnedRequest| {
            let verdict = grants(policy.clone(), key).check_request(request);
            assert_eq!(verdict.is_allowed(), verdict == Verdict::Allow);
            verdict
        };
        let requests = every_request();
        let [pty, x11, ..] = &requests[..] else {
            panic!("pty-req and x11-req come first");
        };
        let agent = &OwnedRequest::AuthAgentReq;
        let env = |name: &[u8]| OwnedRequest::Env {
            name: name.to_vec(),
            value: b"x".to_vec(),
        };
        let subsystem = |name: &[u8]| OwnedRequest::Subsystem {
            name: name.to_vec(),
        };
        let signal = &OwnedRequest::Signal {
            name: b"INT".to_vec(),
        };
        let resize = &OwnedRequest::WindowChange(SIZE);

        // pty-req: PermitTTY, no-pty, restrict and pty, left to right.
        assert_eq!(check(&all, "", pty), yes);
        assert_eq!(check(&none, "", pty), no(Server));
        assert_eq!(check(&all, "no-pty", pty), no(Key));
        assert_eq!(check(&all, "restrict", pty), no(Key));
        assert_eq!(check(&all, "restrict,pty", pty), yes);
        assert_eq!(check(&all, "pty,restrict", pty), no(Key));

        // x11-req and auth-agent-req@openssh.com likewise.
        assert_eq!(check(&all, "", x11), yes);
        assert_eq!(check(&none, "", x11), no(Server));
        assert_eq!(check(&all, "no-X11-forwarding", x11), no(Key));
        assert_eq!(check(&all, "restrict", x11), no(Key));
        assert_eq!(check(&all, "restrict,X11-forwarding", x11), yes);
        assert_eq!(check(&all, "", agent), yes);
        assert_eq!(check(&none, "", agent), no(Server));
        assert_eq!(check(&all, "no-agent-forwarding", agent), no(Key));
        assert_eq!(check(&all, "restrict", agent), no(Key));
        assert_eq!(check(&all, "restrict,agent-forwarding", agent), yes);

        // env: AcceptEnv patterns, case-sensitive.
        assert_eq!(check(&all, "", &env(b"LANG")), yes);
        assert_eq!(check(&all, "", &env(b"LC_ALL")), yes);
        assert_eq!(check(&all, "", &env(b"LD_PRELOAD")), no(Server));
        assert_eq!(check(&all, "", &env(b"lang")), no(Server));
        assert_eq!(check(&all, "", &env(b"LC_\xff")), no(Malformed));

        // subsystem: exact names.
        assert_eq!(check(&all, "", &subsystem(b"sftp")), yes);
        assert_eq!(check(&all, "", &subsystem(b"netconf")), no(Server));
        assert_eq!(check(&all, "", &subsystem(b"SFTP")), no(Server));

        // window-change and signal go where sessions go; no signal to a forced command.
        assert_eq!(check(&all, "restrict", resize), yes);
        assert_eq!(check(&none, "", resize), no(Server));
        assert_eq!(check(&all, "", signal), yes);
        assert_eq!(check(&none, "", signal), no(Server));
        assert_eq!(check(&all, r#"command="uptime""#, signal), no(Key));

        // What a client never sends to a server, and what nobody knows.
        assert_eq!(check(&all, "", &OwnedRequest::Keepalive), no(Keepalive));
        assert_eq!(check(&all, "", &OwnedRequest::Eow), no(ServerToClient));
        assert_eq!(check(&all, "", &requests[6]), no(ServerToClient)); // xon-xoff
        assert_eq!(check(&all, "", &requests[7]), no(ServerToClient)); // exit-status
        assert_eq!(check(&all, "", &requests[8]), no(ServerToClient)); // exit-signal
        assert_eq!(check(&all, "", &requests[14]), no(Unknown)); // break
    }

    #[test]
    fn programs_run_only_as_the_server_allows() {
        let exec = OwnedRequest::Exec {
            command: b"id".to_vec(),
        };
        let sftp = OwnedRequest::Subsystem {
            name: b"sftp".to_vec(),
        };
        let only_exec = ServerPolicy {
            session: true,
            exec: true,
            ..ServerPolicy::default()
        };
        let g = grants(only_exec.clone(), "");
        assert_eq!(g.check_request(&exec), Verdict::Allow);
        assert_eq!(
            g.check_request(&OwnedRequest::Shell),
            Verdict::Refuse(Refusal::Server)
        );
        assert_eq!(g.check_request(&sftp), Verdict::Refuse(Refusal::Server));

        // A forced command does not open what the server keeps shut.
        let g = grants(only_exec, r#"command="uptime""#);
        assert!(matches!(g.check_request(&exec), Verdict::RunForced { .. }));
        assert_eq!(
            g.check_request(&OwnedRequest::Shell),
            Verdict::Refuse(Refusal::Server)
        );
        assert_eq!(g.check_request(&sftp), Verdict::Refuse(Refusal::Server));
        let g = grants(ServerPolicy::default(), r#"command="uptime""#);
        assert_eq!(g.check_request(&exec), Verdict::Refuse(Refusal::Server));
    }

    #[test]
    fn a_forced_command_replaces_shell_exec_and_subsystem() {
        let g = grants(open_policy(), r#"restrict,command="rsync --server \"x\"""#);
        let forced = |original: Option<&[u8]>| Verdict::RunForced {
            command: r#"rsync --server "x""#.to_owned(),
            original_command: original.map(<[u8]>::to_vec),
        };
        assert_eq!(g.check_request(&OwnedRequest::Shell), forced(None));
        assert_eq!(
            g.check_request(&OwnedRequest::Exec {
                command: b"cat /etc/shadow \xff".to_vec()
            }),
            forced(Some(b"cat /etc/shadow \xff"))
        );
        assert_eq!(
            g.check_request(&OwnedRequest::Subsystem {
                name: b"sftp".to_vec()
            }),
            forced(Some(b"sftp"))
        );
        assert!(forced(None).is_allowed());
        // restrict still refuses the pty around it.
        let pty = &every_request()[0];
        assert_eq!(g.check_request(pty), Verdict::Refuse(Refusal::Key));
    }

    // -----------------------------------------------------------------------------------
    // Global requests

    #[test]
    fn global_requests_follow_the_server_and_the_key() {
        use Refusal::{Keepalive, Key, Malformed, Server, ServerToClient, Unknown};
        let all = open_policy();
        let none = ServerPolicy::default();
        let check = |policy: &ServerPolicy, key: &str, request: &OwnedGlobalRequest| {
            let mut g = grants(policy.clone(), key);
            let result = g.check_global(request);
            assert!(!g.no_more_sessions());
            result
        };
        let forward = |address: &[u8], port| OwnedGlobalRequest::TcpipForward {
            address: address.to_vec(),
            port,
        };
        let fwd = &forward(b"localhost", 8080);
        let globals = every_global();
        let [_, cancel, local, cancel_local, ..] = &globals[..] else {
            panic!("the forwards come first");
        };

        // tcpip-forward: the server's switch, port forwarding, permitlisten.
        assert_eq!(check(&all, "", fwd), Ok(()));
        assert_eq!(check(&all, "", &forward(b"", 8080)), Ok(()));
        assert_eq!(check(&none, "", fwd), Err(Server));
        assert_eq!(check(&all, "no-port-forwarding", fwd), Err(Key));
        assert_eq!(check(&all, "restrict", fwd), Err(Key));
        assert_eq!(check(&all, r#"permitlisten="localhost:8080""#, fwd), Ok(()));
        assert_eq!(
            check(&all, r#"permitlisten="localhost:9090""#, fwd),
            Err(Key)
        );
        assert_eq!(
            check(&all, r#"permitlisten="8080""#, &forward(b"0.0.0.0", 8080)),
            Ok(())
        );
        assert_eq!(
            check(&all, "", &forward(b"localhost", 65536)),
            Err(Malformed)
        );
        assert_eq!(check(&all, "", &forward(b"\xff", 80)), Err(Malformed));
        assert_eq!(check(&all, "", cancel), Ok(()));
        assert_eq!(check(&none, "", cancel), Err(Server));
        assert_eq!(check(&all, "no-port-forwarding", cancel), Err(Key));

        // The streamlocal forwards go with port forwarding, as in sshd.
        assert_eq!(check(&all, "", local), Ok(()));
        assert_eq!(check(&none, "", local), Err(Server));
        assert_eq!(check(&all, "restrict", local), Err(Key));
        assert_eq!(check(&all, "", cancel_local), Ok(()));
        assert_eq!(check(&all, "no-port-forwarding", cancel_local), Err(Key));

        // Answered with failure, as OpenSSH's sshd answers them.
        assert_eq!(
            check(&all, "", &OwnedGlobalRequest::Keepalive),
            Err(Keepalive)
        );
        assert_eq!(check(&all, "", &globals[5]), Err(ServerToClient)); // hostkeys-00
        assert_eq!(check(&all, "", &globals[6]), Err(Unknown)); // hostkeys-prove-00
        assert_eq!(check(&all, "", &globals[7]), Err(Unknown));
    }

    #[test]
    fn destinations_parse_and_print_back() {
        let cases = [
            ("db.internal:5432", "db.internal:5432"),
            ("DB.Internal:5432", "db.internal:5432"),
            ("10.0.0.5:22", "10.0.0.5:22"),
            ("[::1]:22", "[::1]:22"),
            ("[2001:DB8::5]:*", "[2001:db8::5]:*"),
            ("*:443", "*:443"),
            ("db:*", "db:*"),
            ("*:*", "*:*"),
            ("host_1-a:65535", "host_1-a:65535"),
        ];
        for (input, printed) in cases {
            let d = Destination::parse(input).unwrap();
            assert_eq!(d.to_string(), printed, "{input}");
            assert_eq!(Destination::parse(printed), Ok(d), "{input}");
        }
        assert_eq!(Destination::parse("*:*"), Ok(Destination::ANY));
        let d: Destination = "[::1]:22".parse().unwrap();
        assert_eq!(d.host(), &HostPattern::Exact("::1".to_owned()));
        assert_eq!(d.port(), PortSpec::Number(22));
    }

    #[test]
    fn bad_destinations_say_what_is_wrong() {
        let why = |input: &str| Destination::parse(input).unwrap_err().why();
        let form = "expected HOST:PORT, such as db.internal:5432";
        let port = "the port must be a number from 1 to 65535, or *";
        let name = "the host must be a name, an address or *; patterns such as \
                    *.example.com are not supported";
        let brackets = "brackets must hold an IPv6 address";

        assert_eq!(why("db"), form);
        assert_eq!(why(""), form);
        assert_eq!(why(":22"), "the host is empty; write * for any host");
        for bad_port in [
            "db:", "db:0", "db:65536", "db:+22", "db:-1", "db: 22", "db:ssh",
        ] {
            assert_eq!(why(bad_port), port, "{bad_port}");
        }
        assert_eq!(
            why("::1:22"),
            "an IPv6 address must be in brackets, as in [::1]:22"
        );
        assert_eq!(why("[::1:22"), "a '[' without its ']'");
        assert_eq!(why("[::1]22"), "expected HOST:PORT, with ':' after the ']'");
        assert_eq!(why("[db]:22"), brackets);
        assert_eq!(why("[*]:22"), brackets);
        assert_eq!(why("*.example.com:22"), name);
        assert_eq!(why("db internal:22"), name);
        assert_eq!(why("d\u{e9}j\u{e0}:22"), name);

        let long = format!("{}:22", "a".repeat(MAX_HOST_LEN + 1));
        assert_eq!(why(&long), "the host is longer than 253 bytes");
        assert!(Destination::parse(&format!("{}:22", "a".repeat(MAX_HOST_LEN))).is_ok());

        let e = Destination::parse("db:0").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("invalid destination \"db:0\": {port}")
        );
    }

    #[test]
    fn destinations_match_by_text_ignoring_case_and_brackets() {
        let cases = [
            ("db.internal:5432", "db.internal", 5432, true),
            ("db.internal:5432", "DB.INTERNAL", 5432, true),
            ("db.internal:5432", "db.internal", 5433, false),
            ("db.internal:5432", "db.internal.", 5432, false),
            ("db.internal:5432", "10.0.0.5", 5432, false),
            ("db.internal:5432", "db.internal.evil", 5432, false),
            ("db.internal:*", "db.internal", 1, true),
            ("*:5432", "anything", 5432, true),
            ("*:5432", "anything", 22, false),
            ("*:*", "", 1, true),
            ("10.0.0.5:22", "10.0.0.5", 22, true),
            ("10.0.0.5:22", "010.0.0.5", 22, false),
            ("[::1]:22", "::1", 22, true),
            ("[::1]:22", "[::1]", 22, true),
            ("[::1]:22", "0:0:0:0:0:0:0:1", 22, true),
            ("[::1]:22", "::2", 22, false),
            ("[::1]:22", "127.0.0.1", 22, false),
            ("[2001:db8::5]:*", "[2001:DB8:0::5]", 8080, true),
        ];
        for (allowed, host, port, expected) in cases {
            let d = Destination::parse(allowed).unwrap();
            assert_eq!(
                d.matches(host, port),
                expected,
                "{allowed} vs {host}:{port}"
            );
        }
    }
}
