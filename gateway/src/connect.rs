//! Reaching a server as a client: name lookup, TCP connect with a timeout, key exchange
//! with the host key checked against known_hosts, and authentication. Blocking, because
//! authentication may prompt on the terminal; the event loop takes the connection after.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssh_proto::Error as ProtoError;
use ssh_proto::algorithms::Algorithm;
use ssh_proto::auth::msg::Method;
use ssh_proto::config::Config;
use ssh_proto::hostkey::PublicKey;
use ssh_proto::rekey::RekeyLimits;
use ssh_proto::role::Role;
use ssh_proto::transport::{Event, Transport};

use crate::auth::{AuthError, Authenticator};
use crate::blocking::{BlockingConn, DriveError};
use crate::hostkeys;
use crate::options::ClientOptions;
use crate::prompt::Prompter;
use crate::rng::OsRng;
use crate::ssh_config::RekeyTime;

/// How long key exchange and authentication may take, each.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The transport settings the options ask for: algorithms and rekey limits.
pub fn transport_config(options: &ClientOptions) -> Config {
    let mut rekey = RekeyLimits::default();
    if let Some(limit) = options.rekey_limit {
        if let Some(bytes) = limit.bytes {
            rekey.bytes = bytes;
        }
        match limit.time {
            RekeyTime::Default => {}
            RekeyTime::Never => rekey.time = Duration::MAX,
            RekeyTime::After(t) => rekey.time = t,
        }
    }
    Config {
        algorithms: options.algorithms.clone(),
        rekey,
        ..Config::default()
    }
}

/// Connects and completes key exchange. With `verify`, the host key is checked as ssh
/// checks it (known_hosts, StrictHostKeyChecking); without, it is only reported.
pub fn handshake(
    host: &str,
    port: u16,
    options: &ClientOptions,
    prompter: &Prompter,
    verify: bool,
) -> Result<(BlockingConn, PublicKey), String> {
    let at = format!("{host} port {port}");
    let timeout = options.connect_timeout.unwrap_or(Duration::from_secs(75));
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("Could not resolve hostname {host}: {}", resolve_error(&e)))?
        .collect();
    let mut last = None;
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let stream = stream.ok_or_else(|| match last {
        Some(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            format!("connect to host {at}: Connection timed out")
        }
        Some(e) => format!("connect to host {at}: {}", os_error_text(&e)),
        None => format!("connect to host {at}: no address"),
    })?;

    let transport = Transport::new(
        Arc::new(transport_config(options)),
        Role::Client,
        Box::new(OsRng),
        Instant::now(),
    );
    let mut conn = BlockingConn::new(transport, stream).map_err(|e| format!("{at}: {e}"))?;
    let mut host_key = None;
    let mut refusal = None;
    let result = conn.run_until(
        Instant::now() + HANDSHAKE_TIMEOUT,
        |t, event| {
            if let Event::HostKey(key) = event {
                if verify
                    && let Err(why) =
                        hostkeys::verify(&options.host_keys, host, port, &key, prompter, &mut OsRng)
                {
                    let error = t.reject_host_key("host key not trusted");
                    refusal = Some(why);
                    return Err(error);
                }
                host_key = Some(key);
                t.accept_host_key()?;
            }
            Ok::<(), ProtoError>(())
        },
        |c| c.transport.is_ready(),
    );
    if let Some(why) = refusal {
        // A changed key comes with a warning of several lines; the last says why.
        let mut lines: Vec<&str> = why.lines().collect();
        let last = lines.pop().unwrap_or("host key verification failed");
        for line in lines {
            eprintln!("{line}");
        }
        return Err(last.to_owned());
    }
    result.map_err(|e| describe(&at, e))?;
    log_negotiated(&conn.transport);
    let key = host_key.ok_or_else(|| format!("{at}: no host key"))?;
    Ok((conn, key))
}

/// What the key exchange settled on, at debug level (`-v`), in the words of ssh's own
/// `kex:` debug lines.
fn log_negotiated(transport: &Transport) {
    let Some(n) = transport.negotiated() else {
        return;
    };
    let mac = |m: Option<ssh_proto::algorithms::Mac>| m.map_or("<implicit>", |m| m.name());
    log::debug!("kex: algorithm: {}", n.kex.name());
    log::debug!("kex: host key algorithm: {}", n.host_key.name());
    log::debug!(
        "kex: server->client cipher: {} MAC: {}",
        n.cipher_s2c.name(),
        mac(n.mac_s2c)
    );
    log::debug!(
        "kex: client->server cipher: {} MAC: {}",
        n.cipher_c2s.name(),
        mac(n.mac_c2s)
    );
}

/// Why a login failed, as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// The server accepted none of what could be tried: `user@host: Permission denied
    /// (publickey).`, which ssh prints without its own name in front.
    Denied(String),
    /// The connection failed on the way.
    Failed(String),
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(line) | Self::Failed(line) => f.write_str(line),
        }
    }
}

impl std::error::Error for LoginError {}

impl From<LoginError> for String {
    fn from(e: LoginError) -> String {
        e.to_string()
    }
}

/// Authenticates as `options.auth.user`; returns the method that succeeded.
pub fn authenticate(
    conn: &mut BlockingConn,
    options: &ClientOptions,
    prompter: &Prompter,
    host: &str,
    port: u16,
) -> Result<Method, LoginError> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    Authenticator::new(conn, &options.auth, prompter, host, deadline)
        .run()
        .map_err(|e| match e {
            AuthError::Denied(_) => {
                LoginError::Denied(format!("{}@{host}: {e}", options.auth.user))
            }
            AuthError::Drive(d) => LoginError::Failed(describe(&format!("{host} port {port}"), d)),
        })
}

/// One line in OpenSSH's words where OpenSSH has them.
pub fn describe(at: &str, e: DriveError) -> String {
    match e {
        DriveError::Protocol(ProtoError::NoCommonAlgorithm(n)) => {
            format!("Unable to negotiate with {at}: {n}")
        }
        DriveError::Eof => format!("Connection closed by {at}"),
        DriveError::Io(e) => format!("{at}: {}", os_error_text(&e)),
        DriveError::TimedOut => format!("{at}: operation timed out"),
        DriveError::Protocol(e) => format!("{at}: {e}"),
    }
}

/// The C library's text for an OS error, as ssh prints it: `Connection refused`, not
/// `Connection refused (os error 111)`.
pub(crate) fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn resolve_error(e: &std::io::Error) -> String {
    let text = os_error_text(e);
    text.strip_prefix("failed to lookup address information: ")
        .map_or_else(|| text.clone(), str::to_owned)
}
