//! A small SSH server built on `ssh-proto`'s server role, for real clients to connect to.
//!
//! [`TestServer`] listens on a free loopback port and runs each connection on its own
//! thread: a [`Transport`] in [`Role::Server`] with an Ed25519 host key, driven by
//! [`BlockingConn`]. Above the transport it runs in one of two ways:
//!
//! - Started with [`TestServer::start`] or [`TestServer::start_with`], it does just enough
//!   for a client to reach authentication and give up there: it accepts the
//!   `ssh-userauth` service (RFC 4253 section 10) and answers every USERAUTH_REQUEST with
//!   USERAUTH_FAILURE offering only `publickey` (RFC 4252 section 5.1), so no login can
//!   succeed. The transport tests use this.
//! - Started with [`TestServer::start_with_auth`], it runs `ssh-proto`'s
//!   [`ServerAuth`] and decides as a gateway would, from an [`AuthConfig`]: keys from the
//!   text of an `authorized_keys` file (with its `from=` and `expiry-time` checks), a
//!   table of passwords, and one keyboard-interactive question. There is no connection
//!   layer above it yet: after a login, a channel open is refused (RFC 4254 section 5.1)
//!   and a global request that wants a reply fails, so a client ends its session on its
//!   own.
//!
//! What each connection did is kept as a [`Record`], so a test can check the client's
//! story (its verbose log) against the server's: with authentication, every decision on a
//! credential and why it was refused, and who logged in with which method.
//!
//! ```no_run
//! use std::time::Duration;
//! use interop::server::TestServer;
//!
//! let server = TestServer::start();
//! // ... run a client against server.port() ...
//! let records = server.wait_for_records(1, Duration::from_secs(10));
//! assert!(records[0].reached_auth());
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateway::blocking::{BlockingConn, DriveError};
use gateway::rng::OsRng;
use ssh_proto::Error as ProtoError;
use ssh_proto::algorithms::Negotiated;
use ssh_proto::auth::msg::{InfoRequest, Method, Prompt};
use ssh_proto::auth::server::{
    AuthLimits, DEFAULT_MAX_ATTEMPTS, Outcome, ServerAuth, ServerAuthEvent,
};
use ssh_proto::authorized_keys::{
    AuthorizedKeys, ClientInfo, KeyOptions, LookupError, RefusalReason,
};
use ssh_proto::config::Config;
use ssh_proto::hostkey::{HostKeyPair, PublicKey};
use ssh_proto::msg::{DisconnectReason, MessageNumber};
use ssh_proto::role::Role;
use ssh_proto::transport::{Event, Transport};
use ssh_proto::wire::{Reader, WireError, Writer};

/// How long one connection may last before the server gives up on it.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);

/// Authentication requests answered on one connection before the server hangs up. Real
/// clients give up after a few; the cap keeps a looping client from running forever.
const MAX_AUTH_REQUESTS: usize = 20;

/// The seed of the host key when none is given. Fixed, so a test run is reproducible;
/// this key guards nothing.
const DEFAULT_HOST_KEY_SEED: [u8; 32] = [0x42; 32];

/// One USERAUTH_REQUEST as it arrived (RFC 4252 section 5): the fields every method has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    pub user: String,
    pub service: String,
    pub method: String,
}

/// Who may log in to a server started with [`TestServer::start_with_auth`]. The same
/// rules apply to every user name, as with the sshd of [`crate::peers::Sshd`].
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// The text of an `authorized_keys` file. Its lines' `from=` patterns are matched
    /// against the client's address (there is no name lookup) and `expiry-time` against
    /// the clock.
    pub authorized_keys: String,
    /// `(user, password)` pairs. Password authentication is offered when there is one.
    pub passwords: Vec<(String, String)>,
    /// One keyboard-interactive question (the prompt, shown without echo) and the answer
    /// that lets any user in. The method is offered when this is set.
    pub question: Option<(String, String)>,
    /// Attempts per connection before the server hangs up (see [`ServerAuth`]).
    pub max_attempts: u32,
}

impl AuthConfig {
    /// Public keys from `authorized_keys` only, with the default attempt limit.
    pub fn new(authorized_keys: &str) -> AuthConfig {
        AuthConfig {
            authorized_keys: authorized_keys.to_owned(),
            passwords: Vec::new(),
            question: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// Also accepts `password` for `user`.
    pub fn password(mut self, user: &str, password: &str) -> AuthConfig {
        self.passwords.push((user.to_owned(), password.to_owned()));
        self
    }

    /// Also offers keyboard-interactive with one question.
    pub fn question(mut self, prompt: &str, answer: &str) -> AuthConfig {
        self.question = Some((prompt.to_owned(), answer.to_owned()));
        self
    }

    /// The methods offered, in the order FAILURE lists them.
    fn limits(&self) -> AuthLimits {
        let mut methods = vec![Method::PublicKey];
        if self.question.is_some() {
            methods.push(Method::KeyboardInteractive);
        }
        if !self.passwords.is_empty() {
            methods.push(Method::Password);
        }
        AuthLimits {
            max_attempts: self.max_attempts,
            methods,
            ..AuthLimits::default()
        }
    }
}

/// The configuration with its `authorized_keys` parsed once, shared by every connection.
#[derive(Debug)]
struct AuthRules {
    config: AuthConfig,
    keys: AuthorizedKeys,
}

/// One decision the server made on a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthAttempt {
    pub user: String,
    /// `publickey query` (a key offered without a signature), `publickey`, `password` or
    /// `keyboard-interactive`.
    pub method: String,
    /// The signature algorithm and key fingerprint for keys; empty otherwise.
    pub detail: String,
    /// `Err` says why it was refused: `key not in authorized_keys`, `from= mismatch (line
    /// N)`, `expired (line N)`, `wrong password`, `unknown user`, `wrong answer`.
    pub result: Result<(), String>,
}

impl fmt::Display for AuthAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.user, self.method)?;
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        match &self.result {
            Ok(()) => write!(f, ": accepted"),
            Err(why) => write!(f, ": refused, {why}"),
        }
    }
}

/// A finished login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub user: String,
    /// The method name on the wire.
    pub method: String,
    /// For `publickey`, the algorithm of the signature that verified.
    pub signature_alg: Option<String>,
    /// The options of the `authorized_keys` line that let the key in; the defaults for
    /// other methods.
    pub options: KeyOptions,
}

/// What happened on one connection, from the server's side.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// The client's identification line.
    pub peer_version: Option<String>,
    /// The algorithms of the first key exchange.
    pub negotiated: Option<Negotiated>,
    /// Key exchanges finished after the first.
    pub rekeys: u64,
    /// The service named in SERVICE_REQUEST, if one arrived.
    pub service_request: Option<String>,
    /// Every USERAUTH_REQUEST, in order.
    pub auth_requests: Vec<AuthRequest>,
    /// Message numbers that arrived for the layer above and that this server does not
    /// handle.
    pub unexpected: Vec<u8>,
    /// With authentication: every decision on a credential, in order.
    pub attempts: Vec<AuthAttempt>,
    /// With authentication: who logged in, once USERAUTH_SUCCESS went out.
    pub authenticated: Option<Authenticated>,
    /// With authentication: connection protocol messages (80 and up) after the login,
    /// each refused.
    pub after_auth: Vec<u8>,
    /// The client closed the connection or sent DISCONNECT: the normal end here.
    pub client_left: Option<String>,
    /// Anything else that ended the connection: a protocol error, an I/O error, the
    /// deadline, or the server hanging up on a request it refuses. `None` when the client
    /// simply left.
    pub error: Option<String>,
}

impl Record {
    /// Whether the client got as far as asking to authenticate: key exchange finished,
    /// the `ssh-userauth` service was requested, and a USERAUTH_REQUEST arrived.
    pub fn reached_auth(&self) -> bool {
        self.negotiated.is_some()
            && self.service_request.as_deref() == Some("ssh-userauth")
            && !self.auth_requests.is_empty()
    }

    /// Whether `user` logged in with `method` (its wire name).
    pub fn authenticated_as(&self, user: &str, method: &str) -> bool {
        self.authenticated
            .as_ref()
            .is_some_and(|a| a.user == user && a.method == method)
    }

    /// The reasons of every refused attempt, in order.
    pub fn refusals(&self) -> Vec<&str> {
        self.attempts
            .iter()
            .filter_map(|a| a.result.as_ref().err().map(String::as_str))
            .collect()
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "client version: {:?}", self.peer_version)?;
        writeln!(f, "negotiated: {:?}", self.negotiated)?;
        writeln!(f, "rekeys: {}", self.rekeys)?;
        writeln!(f, "service request: {:?}", self.service_request)?;
        writeln!(f, "auth requests: {:?}", self.auth_requests)?;
        writeln!(f, "unexpected messages: {:?}", self.unexpected)?;
        for attempt in &self.attempts {
            writeln!(f, "attempt: {attempt}")?;
        }
        writeln!(f, "authenticated: {:?}", self.authenticated)?;
        writeln!(f, "after authentication: {:?}", self.after_auth)?;
        writeln!(f, "client left: {:?}", self.client_left)?;
        write!(f, "error: {:?}", self.error)
    }
}

/// Connections the server is serving now, and what finished ones did.
#[derive(Debug, Default)]
struct Shared {
    records: Vec<Record>,
    /// Clones of open sockets, shut down when the server stops so their threads end.
    open: Vec<(u64, TcpStream)>,
    handlers: Vec<JoinHandle<()>>,
}

/// An SSH server of our own on a free loopback port. Stops, and ends every connection,
/// when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    host_key: PublicKey,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with the default configuration: every algorithm `ssh-proto`
    /// implements, strict key exchange, and the fixed Ed25519 host key.
    pub fn start() -> TestServer {
        TestServer::start_with(Config::default())
    }

    /// Starts a server with `config`. If it holds no host key, the fixed Ed25519 key is
    /// added.
    pub fn start_with(config: Config) -> TestServer {
        TestServer::start_inner(config, None)
    }

    /// Starts a server with `config` that authenticates clients by `auth` with
    /// `ssh-proto`'s [`ServerAuth`]. Panics if a line of the `authorized_keys` text is
    /// unusable: a test that meant to authorise a key must not silently fail to.
    pub fn start_with_auth(config: Config, auth: AuthConfig) -> TestServer {
        let keys = AuthorizedKeys::parse(&auth.authorized_keys);
        assert!(
            keys.warnings().is_empty(),
            "unusable authorized_keys lines: {:?}",
            keys.warnings()
        );
        let rules = AuthRules { config: auth, keys };
        TestServer::start_inner(config, Some(Arc::new(rules)))
    }

    fn start_inner(mut config: Config, auth: Option<Arc<AuthRules>>) -> TestServer {
        if config.host_keys.is_empty() {
            config.host_keys.push(HostKeyPair::ed25519_from_seed(
                config.provider,
                &DEFAULT_HOST_KEY_SEED,
            ));
        }
        let host_key = config.host_keys[0].public().clone();
        let config = Arc::new(config);

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            thread::spawn(move || accept_loop(&listener, &config, auth.as_ref(), &shared, &stop))
        };
        TestServer {
            addr,
            host_key,
            shared,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The host key clients see (the first one, when the config held several).
    pub fn host_key(&self) -> &PublicKey {
        &self.host_key
    }

    /// The records of every connection that has ended so far, in the order they ended.
    pub fn records(&self) -> Vec<Record> {
        lock(&self.shared).records.clone()
    }

    /// Waits until `count` connections have ended and returns all records. Panics with
    /// what it has if they do not end within `timeout`.
    pub fn wait_for_records(&self, count: usize, timeout: Duration) -> Vec<Record> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.records();
            if records.len() >= count {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} connections ended within {timeout:?}; records so far:\n{}",
                records.len(),
                records
                    .iter()
                    .map(Record::to_string)
                    .collect::<Vec<_>>()
                    .join("\n--\n")
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the acceptor, which sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let handlers = {
            let mut shared = lock(&self.shared);
            for (_, stream) in &shared.open {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            std::mem::take(&mut shared.handlers)
        };
        for handler in handlers {
            let _ = handler.join();
        }
    }
}

/// A poisoned lock means a connection thread panicked; its record is lost, but the other
/// records are still worth showing.
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(
    listener: &TcpListener,
    config: &Arc<Config>,
    auth: Option<&Arc<AuthRules>>,
    shared: &Arc<Mutex<Shared>>,
    stop: &AtomicBool,
) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else {
            continue;
        };
        let id = next_id;
        next_id += 1;
        let mut guard = lock(shared);
        if let Ok(clone) = stream.try_clone() {
            guard.open.push((id, clone));
        }
        let (config, shared_for_thread) = (Arc::clone(config), Arc::clone(shared));
        let auth = auth.map(Arc::clone);
        guard.handlers.push(thread::spawn(move || {
            let record = serve(stream, config, auth);
            let mut guard = lock(&shared_for_thread);
            guard.open.retain(|(open_id, _)| *open_id != id);
            guard.records.push(record);
        }));
    }
}

/// Runs one connection to its end and says what happened.
fn serve(stream: TcpStream, config: Arc<Config>, rules: Option<Arc<AuthRules>>) -> Record {
    let mut record = Record::default();
    let client_ip = stream
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let mut auth = rules.map(|rules| Authenticating {
        machine: ServerAuth::new(config.provider, rules.config.limits()),
        rules,
        client_ip,
    });
    let transport = Transport::new(config, Role::Server, Box::new(OsRng), Instant::now());
    let mut conn = match BlockingConn::new(transport, stream) {
        Ok(conn) => conn,
        Err(e) => {
            record.error = Some(format!("socket setup: {e}"));
            return record;
        }
    };
    let deadline = Instant::now() + CONNECTION_DEADLINE;
    let result = loop {
        let result = conn.run_until(
            deadline,
            |_, event| {
                if let Event::KeysReady { negotiated, rekey } = event {
                    if rekey {
                        record.rekeys += 1;
                    } else {
                        record.negotiated = Some(negotiated);
                    }
                }
                Ok::<(), ProtoError>(())
            },
            |c| !c.packets.is_empty() || c.transport.is_closed(),
        );
        if record.peer_version.is_none() {
            record.peer_version = conn.transport.peer_version().map(|v| v.to_string());
        }
        if let Err(e) = result {
            break Err(e);
        }
        while let Some(payload) = conn.packets.pop_front() {
            let result = match &mut auth {
                None => answer(&mut conn.transport, &payload, &mut record),
                Some(auth) => auth.answer(&mut conn.transport, &payload, &mut record),
            };
            match result {
                Ok(()) => {}
                Err(Hangup::Send(reason, why)) => {
                    conn.transport.disconnect(reason, &why);
                    record.error = Some(format!("the server hung up: {why}"));
                    break;
                }
                Err(Hangup::Sent(why)) => {
                    record.error = Some(format!("the server hung up: {why}"));
                    break;
                }
            }
        }
        if conn.transport.is_closed() {
            // Send the DISCONNECT; the peer may already be gone.
            let _ = conn.flush();
            break Ok(());
        }
    };
    match result {
        Ok(()) => {}
        Err(DriveError::Eof) => record.client_left = Some("closed the connection".to_owned()),
        Err(DriveError::Protocol(ProtoError::PeerDisconnected {
            reason,
            description,
        })) => {
            record.client_left = Some(format!(
                "sent DISCONNECT ({}): {description}",
                reason.describe()
            ));
        }
        // A reset after the client's last packet is how some clients leave.
        Err(DriveError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
            record.client_left = Some("reset the connection".to_owned());
        }
        Err(e) => record.error = Some(e.to_string()),
    }
    record
}

/// Why the server ends a connection.
enum Hangup {
    /// It should send DISCONNECT with this reason and text.
    Send(DisconnectReason, String),
    /// `ssh-proto` has queued the DISCONNECT already; the text says why.
    Sent(String),
}

impl From<(DisconnectReason, String)> for Hangup {
    fn from((reason, why): (DisconnectReason, String)) -> Hangup {
        Hangup::Send(reason, why)
    }
}

/// Answers one message for the layer above the transport, refusing every login. An
/// error ends the connection.
fn answer(transport: &mut Transport, payload: &[u8], record: &mut Record) -> Result<(), Hangup> {
    let malformed = |e: WireError| (DisconnectReason::PROTOCOL_ERROR, e.to_string());
    let Some((&number, body)) = payload.split_first() else {
        return Err(Hangup::Send(
            DisconnectReason::PROTOCOL_ERROR,
            "empty message".to_owned(),
        ));
    };
    let mut r = Reader::new(body);
    let reply = match MessageNumber(number) {
        MessageNumber::SERVICE_REQUEST => {
            let service = r.utf8("service name").map_err(malformed)?;
            record.service_request = Some(service.to_owned());
            if service != "ssh-userauth" {
                return Err(Hangup::Send(
                    DisconnectReason::SERVICE_NOT_AVAILABLE,
                    format!("service {service:?} is not offered"),
                ));
            }
            transport.send(|p| {
                p.put_u8(MessageNumber::SERVICE_ACCEPT.0);
                p.put_string(service.as_bytes());
            })
        }
        MessageNumber::USERAUTH_REQUEST => {
            record
                .auth_requests
                .push(request_head(payload).map_err(malformed)?);
            if record.auth_requests.len() > MAX_AUTH_REQUESTS {
                return Err(Hangup::Send(
                    DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE,
                    "too many authentication requests".to_owned(),
                ));
            }
            // RFC 4252 section 5.1: the methods that may continue, and no partial success.
            transport.send(|p| {
                p.put_u8(MessageNumber::USERAUTH_FAILURE.0);
                p.put_name_list(["publickey"]);
                p.put_bool(false);
            })
        }
        _ => {
            record.unexpected.push(number);
            Ok(())
        }
    };
    reply.map_err(|e| Hangup::Send(DisconnectReason::BY_APPLICATION, e.to_string()))
}

/// The fields every USERAUTH_REQUEST has (RFC 4252 section 5), for the record.
fn request_head(payload: &[u8]) -> Result<AuthRequest, WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let mut field = |what| {
        r.string(what)
            .map(|s| String::from_utf8_lossy(s).into_owned())
    };
    Ok(AuthRequest {
        user: field("user name")?,
        service: field("service name")?,
        method: field("method name")?,
    })
}

/// A connection's authentication: `ssh-proto`'s machine and the rules it is decided by.
struct Authenticating {
    machine: ServerAuth<KeyOptions>,
    rules: Arc<AuthRules>,
    client_ip: IpAddr,
}

impl Authenticating {
    /// Routes one message: authentication messages (5 and 50 to 79) to [`ServerAuth`],
    /// then makes every decision it asks for. After a login, the connection protocol is
    /// refused message by message; before it, the transport lets no such message through.
    fn answer(
        &mut self,
        transport: &mut Transport,
        payload: &[u8],
        record: &mut Record,
    ) -> Result<(), Hangup> {
        let Some(&number) = payload.first() else {
            return Err(Hangup::Send(
                DisconnectReason::PROTOCOL_ERROR,
                "empty message".to_owned(),
            ));
        };
        match number {
            5 | 50..=79 => {
                if number == MessageNumber::SERVICE_REQUEST.0 {
                    let mut r = Reader::new(&payload[1..]);
                    record.service_request = r
                        .string("service name")
                        .ok()
                        .map(|s| String::from_utf8_lossy(s).into_owned());
                }
                if number == MessageNumber::USERAUTH_REQUEST.0
                    && let Ok(head) = request_head(payload)
                {
                    record.auth_requests.push(head);
                }
                self.machine
                    .handle(transport, payload)
                    .map_err(|e| Hangup::Sent(e.to_string()))?;
                self.decide_all(transport, record)
            }
            80.. if self.machine.is_authenticated() => {
                record.after_auth.push(number);
                refuse_connection_protocol(transport, payload)
                    .map_err(|e| Hangup::Send(DisconnectReason::BY_APPLICATION, e.to_string()))
            }
            _ => {
                record.unexpected.push(number);
                Ok(())
            }
        }
    }

    /// Answers every event [`ServerAuth`] has for us.
    fn decide_all(&mut self, t: &mut Transport, record: &mut Record) -> Result<(), Hangup> {
        while let Some(event) = self.machine.poll_event() {
            self.decide(t, event, record)
                .map_err(|e| Hangup::Sent(e.to_string()))?;
        }
        Ok(())
    }

    fn decide(
        &mut self,
        t: &mut Transport,
        event: ServerAuthEvent<KeyOptions>,
        record: &mut Record,
    ) -> Result<(), ProtoError> {
        let rules = Arc::clone(&self.rules);
        match event {
            ServerAuthEvent::PublicKeyQuery { user, key, alg } => {
                let found = self.lookup(&key);
                let accept = found.is_ok();
                record.attempts.push(AuthAttempt {
                    detail: key_detail(alg.name(), &key),
                    user,
                    method: "publickey query".to_owned(),
                    result: found.map(drop),
                });
                self.machine.answer_query(t, accept)
            }
            ServerAuthEvent::PublicKeyVerified { user, key, alg } => {
                let found = self.lookup(&key);
                record.attempts.push(AuthAttempt {
                    detail: key_detail(alg.name(), &key),
                    user,
                    method: Method::PublicKey.name().to_owned(),
                    result: found.as_ref().map(drop).map_err(Clone::clone),
                });
                match found {
                    Ok(options) => self.machine.accept(t, Outcome::Success(options)),
                    Err(_) => self.machine.reject(t),
                }
            }
            ServerAuthEvent::Password { user, password } => {
                let result = match rules.config.passwords.iter().find(|(u, _)| *u == user) {
                    None => Err("unknown user".to_owned()),
                    Some((_, good)) if good.as_bytes() == password.as_slice() => Ok(()),
                    Some(_) => Err("wrong password".to_owned()),
                };
                let accept = result.is_ok();
                record.attempts.push(AuthAttempt {
                    user,
                    method: Method::Password.name().to_owned(),
                    detail: String::new(),
                    result,
                });
                if accept {
                    self.machine
                        .accept(t, Outcome::Success(KeyOptions::default()))
                } else {
                    self.machine.reject(t)
                }
            }
            ServerAuthEvent::KeyboardInteractive { .. } => match &rules.config.question {
                Some((prompt, _)) => self.machine.send_info_request(
                    t,
                    &InfoRequest {
                        name: String::new(),
                        instruction: String::new(),
                        prompts: vec![Prompt {
                            text: prompt.clone(),
                            echo: false,
                        }],
                    },
                ),
                None => self.machine.reject(t),
            },
            ServerAuthEvent::InfoResponse { user, responses } => {
                let expected = rules.config.question.as_ref().map(|(_, a)| a.as_bytes());
                let result = match (expected, responses.as_slice()) {
                    (Some(answer), [given]) if given.as_slice() == answer => Ok(()),
                    _ => Err("wrong answer".to_owned()),
                };
                let accept = result.is_ok();
                record.attempts.push(AuthAttempt {
                    user,
                    method: Method::KeyboardInteractive.name().to_owned(),
                    detail: String::new(),
                    result,
                });
                if accept {
                    self.machine
                        .accept(t, Outcome::Success(KeyOptions::default()))
                } else {
                    self.machine.reject(t)
                }
            }
            ServerAuthEvent::Authenticated {
                user,
                method,
                permissions,
            } => {
                // The algorithm of the last accepted signature, when a key logged in.
                let signature_alg = (method == Method::PublicKey)
                    .then(|| {
                        record
                            .attempts
                            .iter()
                            .rev()
                            .find(|a| a.method == "publickey" && a.result.is_ok())
                            .and_then(|a| a.detail.split_whitespace().next())
                            .map(str::to_owned)
                    })
                    .flatten();
                record.authenticated = Some(Authenticated {
                    user,
                    method: method.name().to_owned(),
                    signature_alg,
                    options: permissions,
                });
                Ok(())
            }
        }
    }

    /// The options of the line that authorises `key` for this client now, or why none
    /// does.
    fn lookup(&self, key: &PublicKey) -> Result<KeyOptions, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let client = ClientInfo::new(self.client_ip, None, now);
        match self.rules.keys.lookup(key, &client) {
            Ok(entry) => Ok(entry.options.clone()),
            Err(LookupError::NotListed) => Err("key not in authorized_keys".to_owned()),
            Err(LookupError::Refused(refusals)) => Err(refusals
                .iter()
                .map(|r| match r.reason {
                    RefusalReason::FromMismatch => format!("from= mismatch (line {})", r.line),
                    RefusalReason::Expired => format!("expired (line {})", r.line),
                })
                .collect::<Vec<_>>()
                .join(", ")),
        }
    }
}

/// `ALG SHA256:...`, how a key appears in the record.
fn key_detail(alg: &str, key: &PublicKey) -> String {
    format!(
        "{alg} {}",
        key.fingerprint_sha256(ssh_proto::crypto::default_provider())
    )
}

/// Refuses a connection protocol message (RFC 4254): a channel open gets OPEN_FAILURE
/// with "administratively prohibited" (section 5.1), a global request that wants a reply
/// gets REQUEST_FAILURE (section 4). Anything else needs no answer.
fn refuse_connection_protocol(transport: &mut Transport, payload: &[u8]) -> Result<(), ProtoError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    match payload.first().copied().map(MessageNumber) {
        Some(MessageNumber::CHANNEL_OPEN) => {
            let _channel_type = r.string("channel type");
            let Ok(sender) = r.u32("sender channel") else {
                return Ok(());
            };
            transport.send(|p| {
                p.put_u8(MessageNumber::CHANNEL_OPEN_FAILURE.0);
                p.put_u32(sender);
                // SSH_OPEN_ADMINISTRATIVELY_PROHIBITED.
                p.put_u32(1);
                p.put_string(b"this test server has no connection layer");
                p.put_string(b"");
            })
        }
        Some(MessageNumber::GLOBAL_REQUEST) => {
            let _name = r.string("request name");
            if r.bool("want reply") == Ok(true) {
                transport.send(|p| p.put_u8(MessageNumber::REQUEST_FAILURE.0))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}
