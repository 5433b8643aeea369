//! A client for a running ssh-agent, over its Unix socket: list the keys it holds and have
//! it sign with one of them.
//!
//! The messages come from [`ssh_proto::agent`]; this module adds the socket, finds it the
//! way `ssh` does (the `IdentityAgent` option, else `SSH_AUTH_SOCK`), and bounds every
//! exchange with a deadline, because an agent that accepts the connection and never answers
//! would otherwise hang the client for good.
//!
//! The socket is blocking: one request at a time, each answered before the next is sent,
//! which is all public key authentication needs. After an error that leaves the stream out
//! of step (a timeout, a malformed reply) the connection is dropped, and the next request
//! connects afresh, so a late answer to an old request is never read as the answer to a new
//! one.
//!
//! ```no_run
//! use gateway::agent::AgentClient;
//!
//! # fn main() -> Result<(), gateway::agent::AgentError> {
//! if let Some(mut agent) = AgentClient::from_identity_agent(None)? {
//!     for id in agent.identities()? {
//!         println!("{} {}", id.key_type(), id.comment().escape_debug());
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssh_proto::agent::{self, CodecError, Framer};
use ssh_proto::hostkey::SignatureAlg;

pub use ssh_proto::agent::Identity;

/// How long one request may wait for its whole answer unless configured otherwise. An agent
/// that asks its user to confirm each signature (`ssh-add -c`) needs a person to click, so
/// this is generous; an agent that is simply stuck still fails in bounded time.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that holds the agent's socket path.
pub const SSH_AUTH_SOCK: &str = "SSH_AUTH_SOCK";

/// Why talking to the agent failed. Each displays as one sentence naming the socket.
#[derive(Debug)]
pub enum AgentError {
    /// The `IdentityAgent` value cannot be turned into a path.
    Config { value: String, why: String },
    /// The socket could not be connected to.
    Connect { path: PathBuf, source: io::Error },
    /// Reading or writing the socket failed.
    Io { path: PathBuf, source: io::Error },
    /// The whole answer did not arrive within the timeout.
    TimedOut { path: PathBuf, after: Duration },
    /// The agent closed the connection before its answer was complete.
    Closed { path: PathBuf },
    /// The agent answered SSH_AGENT_FAILURE. `action` says what it refused ("sign").
    Refused { path: PathBuf, action: &'static str },
    /// The agent's answer broke the protocol.
    Protocol { path: PathBuf, error: CodecError },
    /// The request was not sent: it cannot be made (too long, or a key that cannot make the
    /// signature asked for). A mistake by the caller, not the agent.
    Request { path: PathBuf, error: CodecError },
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { value, why } => {
                write!(
                    f,
                    "invalid IdentityAgent \"{}\": {why}",
                    value.escape_debug()
                )
            }
            Self::Connect { path, source } => write!(
                f,
                "could not connect to the agent at {}: {}",
                path.display(),
                io_text(source)
            ),
            Self::Io { path, source } => write!(
                f,
                "lost the connection to the agent at {}: {}",
                path.display(),
                io_text(source)
            ),
            Self::TimedOut { path, after } => write!(
                f,
                "the agent at {} did not answer within {}",
                path.display(),
                duration_text(*after)
            ),
            Self::Closed { path } => write!(
                f,
                "the agent at {} closed the connection without answering",
                path.display()
            ),
            Self::Refused { path, action } => {
                write!(f, "the agent at {} refused to {action}", path.display())
            }
            Self::Protocol { path, error } => {
                write!(f, "bad reply from the agent at {}: {error}", path.display())
            }
            Self::Request { path, error } => {
                write!(f, "could not ask the agent at {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect { source, .. } | Self::Io { source, .. } => Some(source),
            Self::Protocol { error, .. } | Self::Request { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The operating system's text for an IO error without Rust's " (os error N)" suffix, so
/// messages read like OpenSSH's ("No such file or directory").
fn io_text(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => match text.strip_suffix(&format!(" (os error {code})")) {
            Some(bare) => bare.to_owned(),
            None => text,
        },
        None => text,
    }
}

fn duration_text(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Where the agent's socket is, as `ssh` decides it from its `IdentityAgent` option
/// (ssh_config(5)); `None` in the result means no agent is to be used.
///
/// - unset (`identity_agent` is `None`) or `SSH_AUTH_SOCK`: the path in that environment
///   variable; no agent when it is unset or empty.
/// - `none`: no agent.
/// - `$NAME`: the path in the environment variable `NAME`; no agent when it is unset.
/// - anything else is a path: a leading `~` or `~/` becomes `HOME`, and `${NAME}` anywhere
///   becomes that variable's value, an error when it is unset.
///
/// `%` tokens (`%d`, `%h`, ...) name details of a connection, so whoever reads the
/// configuration expands them before calling this. `~user` is refused: finding another
/// user's home needs the password database, which the standard library does not read.
/// `env` looks up environment variables; pass [`process_env`] outside tests.
pub fn socket_path(
    identity_agent: Option<&str>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Option<PathBuf>, AgentError> {
    let value = match identity_agent {
        None | Some(SSH_AUTH_SOCK) => return Ok(non_empty(env(SSH_AUTH_SOCK))),
        Some("none") => return Ok(None),
        Some(value) => value,
    };
    let config_error = |why: &str| AgentError::Config {
        value: value.to_owned(),
        why: why.to_owned(),
    };

    if let Some(name) = value.strip_prefix('$').filter(|n| !n.starts_with('{')) {
        if !is_env_name(name) {
            return Err(config_error("not a valid environment variable name"));
        }
        return Ok(non_empty(env(name)));
    }

    let mut path = OsString::new();
    let mut rest = value;
    if let Some(tail) = value.strip_prefix('~') {
        if !(tail.is_empty() || tail.starts_with('/')) {
            return Err(config_error("only ~ and ~/ are expanded, not ~user"));
        }
        let Some(home) = non_empty(env("HOME")) else {
            return Err(config_error("HOME is not set, so ~ cannot be expanded"));
        };
        path.push(home);
        rest = tail;
    }

    while let Some((literal, after)) = rest.split_once("${") {
        path.push(literal);
        let Some((name, tail)) = after.split_once('}') else {
            return Err(config_error("\"${\" without a closing \"}\""));
        };
        if !is_env_name(name) {
            return Err(config_error(
                "not a valid environment variable name in ${...}",
            ));
        }
        let Some(var) = env(name) else {
            return Err(config_error(&format!(
                "the environment variable {name} is not set"
            )));
        };
        path.push(var);
        rest = tail;
    }
    path.push(rest);

    if path.is_empty() {
        return Err(config_error("the path is empty"));
    }
    Ok(Some(PathBuf::from(path)))
}

/// Looks a variable up in this process's environment, for [`socket_path`].
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

fn non_empty(value: Option<OsString>) -> Option<PathBuf> {
    value.filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// An environment variable name as OpenSSH accepts one: letters, digits and `_`, not
/// starting with a digit.
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A connection to an agent. Every request waits at most the timeout for its whole answer.
#[derive(Debug)]
pub struct AgentClient {
    path: PathBuf,
    /// `None` after an error that left the stream out of step; the next request reconnects.
    stream: Option<UnixStream>,
    framer: Framer,
    timeout: Duration,
}

impl AgentClient {
    /// Connects to the agent at `path`, with [`DEFAULT_TIMEOUT`].
    pub fn connect(path: impl Into<PathBuf>) -> Result<Self, AgentError> {
        Self::connect_with_timeout(path, DEFAULT_TIMEOUT)
    }

    /// Connects to the agent at `path`; each request then waits at most `timeout` for its
    /// answer. The connection is made at once, so a missing socket is reported here.
    pub fn connect_with_timeout(
        path: impl Into<PathBuf>,
        timeout: Duration,
    ) -> Result<Self, AgentError> {
        let mut client = Self {
            path: path.into(),
            stream: None,
            framer: Framer::new(),
            timeout: Duration::ZERO,
        };
        client.set_timeout(timeout);
        client.stream = Some(client.open()?);
        Ok(client)
    }

    /// Connects to the agent that `IdentityAgent` (or, when that is `None`, `SSH_AUTH_SOCK`)
    /// names, as [`socket_path`] resolves it in this process's environment. `Ok(None)`
    /// means no agent is configured.
    pub fn from_identity_agent(identity_agent: Option<&str>) -> Result<Option<Self>, AgentError> {
        match socket_path(identity_agent, &process_env)? {
            Some(path) => Self::connect(path).map(Some),
            None => Ok(None),
        }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long each request may wait for its whole answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets how long each later request may wait for its answer. Sockets have no zero
    /// timeout, so anything under a millisecond counts as one.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout.max(Duration::from_millis(1));
    }

    /// The keys the agent holds, usable or not (see [`Identity`]), in the agent's order,
    /// which is the order `ssh` tries them in.
    pub fn identities(&mut self) -> Result<Vec<Identity>, AgentError> {
        let mut request = Vec::new();
        agent::request_identities(&mut request);
        let reply = self.round_trip(&request)?;
        let identities =
            agent::parse_identities(&reply).map_err(|e| self.reply_error(e, "list its keys"))?;
        log::debug!(
            "agent: {} keys, {} usable, path={}",
            identities.len(),
            identities.iter().filter(|i| i.key().is_some()).count(),
            self.path.display()
        );
        Ok(identities)
    }

    /// Has the agent sign `data` with the key whose blob is `key_blob` (as listed by
    /// [`AgentClient::identities`]), making an `alg` signature. Returns the signature blob
    /// (`string algorithm, string signature`), checked to be of `alg`.
    pub fn sign(
        &mut self,
        key_blob: &[u8],
        data: &[u8],
        alg: SignatureAlg,
    ) -> Result<Vec<u8>, AgentError> {
        let mut request = Vec::new();
        agent::sign_request(&mut request, key_blob, data, alg).map_err(|error| {
            AgentError::Request {
                path: self.path.clone(),
                error,
            }
        })?;
        let reply = self.round_trip(&request)?;
        let signature =
            agent::parse_sign_response(&reply, alg).map_err(|e| self.reply_error(e, "sign"))?;
        log::trace!("agent: signed with {alg}, path={}", self.path.display());
        Ok(signature)
    }

    /// A refusal is a whole, well-formed reply and leaves the connection usable; any other
    /// bad reply means the agent cannot be trusted to stay in step, so the connection goes.
    fn reply_error(&mut self, error: CodecError, action: &'static str) -> AgentError {
        if error == CodecError::Refused {
            return AgentError::Refused {
                path: self.path.clone(),
                action,
            };
        }
        self.stream = None;
        AgentError::Protocol {
            path: self.path.clone(),
            error,
        }
    }

    fn open(&self) -> Result<UnixStream, AgentError> {
        UnixStream::connect(&self.path).map_err(|source| AgentError::Connect {
            path: self.path.clone(),
            source,
        })
    }

    /// Sends one request and reads its one reply, all within the timeout. Any failure drops
    /// the connection.
    fn round_trip(&mut self, request: &[u8]) -> Result<Vec<u8>, AgentError> {
        let stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                self.framer = Framer::new();
                self.open()?
            }
        };
        let deadline = Instant::now().checked_add(self.timeout);
        let reply = self.exchange(&stream, request, deadline)?;
        self.stream = Some(stream);
        Ok(reply)
    }

    fn exchange(
        &mut self,
        mut stream: &UnixStream,
        request: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, AgentError> {
        let mut rest = request;
        while !rest.is_empty() {
            stream
                .set_write_timeout(self.remaining(deadline)?)
                .map_err(|e| self.io_error(e))?;
            match stream.write(rest) {
                Ok(0) => return Err(self.closed()),
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }

        let mut buf = [0u8; 4096];
        loop {
            stream
                .set_read_timeout(self.remaining(deadline)?)
                .map_err(|e| self.io_error(e))?;
            let n = match stream.read(&mut buf) {
                Ok(0) => return Err(self.closed()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e)),
            };
            let mut input = buf.get(..n).unwrap_or_default();
            let message = self
                .framer
                .read_message(&mut input)
                .map_err(|error| self.protocol_error(error))?;
            if let Some(message) = message {
                if !input.is_empty() {
                    return Err(self.protocol_error(CodecError::Unsolicited));
                }
                return Ok(message);
            }
        }
    }

    /// The time left before `deadline`, as a socket timeout; an error once it has passed.
    fn remaining(&self, deadline: Option<Instant>) -> Result<Option<Duration>, AgentError> {
        let Some(deadline) = deadline else {
            return Ok(None);
        };
        match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> AgentError {
        AgentError::TimedOut {
            path: self.path.clone(),
            after: self.timeout,
        }
    }

    fn closed(&self) -> AgentError {
        AgentError::Closed {
            path: self.path.clone(),
        }
    }

    fn protocol_error(&self, error: CodecError) -> AgentError {
        AgentError::Protocol {
            path: self.path.clone(),
            error,
        }
    }

    /// A socket timeout reports as `WouldBlock` on Unix and `TimedOut` elsewhere; both mean
    /// the deadline passed.
    fn io_error(&self, source: io::Error) -> AgentError {
        match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.timed_out(),
            _ => AgentError::Io {
                path: self.path.clone(),
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(value: Option<&str>, vars: &[(&str, &str)]) -> Result<Option<PathBuf>, String> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        socket_path(value, &|name| vars.get(name).cloned()).map_err(|e| e.to_string())
    }

    fn some(path: &str) -> Result<Option<PathBuf>, String> {
        Ok(Some(PathBuf::from(path)))
    }

    #[test]
    fn ssh_auth_sock_is_the_default() {
        let env = [(SSH_AUTH_SOCK, "/run/agent.sock"), ("HOME", "/home/u")];
        assert_eq!(resolve(None, &env), some("/run/agent.sock"));
        assert_eq!(
            resolve(Some("SSH_AUTH_SOCK"), &env),
            some("/run/agent.sock")
        );
        assert_eq!(resolve(None, &[]), Ok(None));
        assert_eq!(resolve(None, &[(SSH_AUTH_SOCK, "")]), Ok(None));
        assert_eq!(resolve(Some("none"), &env), Ok(None));
    }

    #[test]
    fn dollar_name_reads_a_variable() {
        let env = [("MY_AGENT", "/tmp/a.sock")];
        assert_eq!(resolve(Some("$MY_AGENT"), &env), some("/tmp/a.sock"));
        assert_eq!(resolve(Some("$OTHER"), &env), Ok(None));
        let e = resolve(Some("$1BAD"), &env).unwrap_err();
        assert_eq!(
            e,
            "invalid IdentityAgent \"$1BAD\": not a valid environment variable name"
        );
        assert!(resolve(Some("$"), &env).is_err());
        assert!(resolve(Some("$A-B"), &env).is_err());
    }

    #[test]
    fn paths_expand_tilde_and_braced_variables() {
        let env = [("HOME", "/home/u"), ("XDG_RUNTIME_DIR", "/run/user/1000")];
        assert_eq!(resolve(Some("~"), &env), some("/home/u"));
        assert_eq!(
            resolve(Some("~/.ssh/agent"), &env),
            some("/home/u/.ssh/agent")
        );
        assert_eq!(
            resolve(Some("${XDG_RUNTIME_DIR}/ssh-agent.socket"), &env),
            some("/run/user/1000/ssh-agent.socket")
        );
        assert_eq!(
            resolve(Some("~/${XDG_RUNTIME_DIR}${XDG_RUNTIME_DIR}x"), &env),
            some("/home/u//run/user/1000/run/user/1000x")
        );
        assert_eq!(resolve(Some("/plain/path"), &env), some("/plain/path"));
        assert_eq!(resolve(Some("relative~"), &env), some("relative~"));

        let e = resolve(Some("~bob/agent"), &env).unwrap_err();
        assert!(e.contains("not ~user"), "{e}");
        let e = resolve(Some("~/x"), &[]).unwrap_err();
        assert!(e.contains("HOME is not set"), "{e}");
        let e = resolve(Some("${NOPE}/x"), &env).unwrap_err();
        assert!(e.contains("NOPE is not set"), "{e}");
        assert!(resolve(Some("${HOME"), &env).is_err());
        assert!(resolve(Some("${}"), &env).is_err());
        assert!(resolve(Some(""), &env).is_err());
    }

    #[test]
    fn io_errors_read_like_strerror() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_text(&e), "No such file or directory");
        let e = io::Error::other("custom");
        assert_eq!(io_text(&e), "custom");
        assert_eq!(duration_text(Duration::from_secs(30)), "30 s");
        assert_eq!(duration_text(Duration::from_millis(250)), "250 ms");
    }
}
