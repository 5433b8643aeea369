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
//!   layer above it: after a login, a channel open is refused (RFC 4254 section 5.1) and a
//!   global request that wants a reply fails, so a client ends its session on its own.
//! - Started with [`TestServer::start_with_session`], it authenticates the same way and
//!   then runs `ssh-proto`'s [`Channels`] for one session that follows a
//!   [`SessionScript`]: it accepts the client's `session` channel and its `exec` or
//!   `shell`, opens the script's channels toward the client and waits for the answer to
//!   each, then sends the script's output, `exit-status`, EOF and CLOSE. Every request the
//!   client makes is recorded as it was on the wire, which is how a test shows what a
//!   client never asks for and never accepts.
//!
//! What each connection did is kept as a [`Record`], so a test can check the client's
//! story (its verbose log) against the server's: with authentication, every decision on a
//! credential and why it was refused, and who logged in with which method; with a
//! session, the client's requests and its answers to the server's channel opens.
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
use ssh_proto::connection::channels::{
    Channels, ChannelsConfig, Event as ChannelEvent, Input, OwnedChannelType, OwnedRequest,
};
use ssh_proto::connection::msg::{ChannelRequestBody, ChannelType, OpenFailureReason};
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
    /// What to do after a login; `None` refuses the connection protocol.
    session: Option<Arc<SessionScript>>,
}

impl AuthRules {
    /// Panics if a line of the `authorized_keys` text is unusable.
    fn new(config: AuthConfig, session: Option<Arc<SessionScript>>) -> AuthRules {
        let keys = AuthorizedKeys::parse(&config.authorized_keys);
        assert!(
            keys.warnings().is_empty(),
            "unusable authorized_keys lines: {:?}",
            keys.warnings()
        );
        AuthRules {
            config,
            keys,
            session,
        }
    }
}

/// What a server started with [`TestServer::start_with_session`] does once a client has
/// logged in and asked for `exec` or `shell` on its `session` channel.
#[derive(Clone, Debug, Default)]
pub struct SessionScript {
    /// Channels the server opens toward the client right after it accepts the command and
    /// before any output. Each answer goes into [`Record::opened_to_client`]; the output
    /// waits until every one has come, so a client that never answers is seen as such.
    pub opens: Vec<ChannelType<'static>>,
    /// What the command writes to its standard output.
    pub output: Vec<u8>,
    /// The `exit-status` sent after the output (RFC 4254 section 6.10).
    pub exit_status: u32,
}

/// A request the client sent, read from the wire before `ssh-proto` parsed its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSeen {
    /// The request name: `exec`, `auth-agent-req@openssh.com`, `tcpip-forward`...
    pub name: String,
    pub want_reply: bool,
}

impl RequestSeen {
    pub fn new(name: &str, want_reply: bool) -> RequestSeen {
        RequestSeen {
            name: name.to_owned(),
            want_reply,
        }
    }
}

/// How the client answered a channel the server opened toward it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenAnswer {
    /// CHANNEL_OPEN_CONFIRMATION. The server closes the channel at once.
    Confirmed,
    /// CHANNEL_OPEN_FAILURE with its reason code and description (RFC 4254 section 5.1).
    Refused {
        reason: OpenFailureReason,
        description: String,
    },
}

/// One channel the server opened toward the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenToClient {
    /// The channel type name, `x11` or `auth-agent@openssh.com` say.
    pub kind: String,
    /// `None` while the client has not answered.
    pub answer: Option<OpenAnswer>,
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
    /// With authentication and no session: connection protocol messages (80 and up)
    /// after the login, each refused.
    pub after_auth: Vec<u8>,
    /// With a session: the type of every channel the client opened, in order.
    pub client_opens: Vec<String>,
    /// With a session: every channel request the client sent, in order, whatever channel
    /// it named.
    pub channel_requests: Vec<RequestSeen>,
    /// With a session: every global request the client sent, in order.
    pub global_requests: Vec<RequestSeen>,
    /// With a session: the channels the server opened toward the client, in order, and
    /// the answer to each.
    pub opened_to_client: Vec<OpenToClient>,
    /// With a session: the output, `exit-status`, EOF and CLOSE have all gone out.
    pub session_finished: bool,
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
        writeln!(f, "client opened: {:?}", self.client_opens)?;
        writeln!(f, "channel requests: {:?}", self.channel_requests)?;
        writeln!(f, "global requests: {:?}", self.global_requests)?;
        for open in &self.opened_to_client {
            writeln!(f, "opened {}: {:?}", open.kind, open.answer)?;
        }
        writeln!(f, "session finished: {}", self.session_finished)?;
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
        TestServer::start_inner(config, Some(Arc::new(AuthRules::new(auth, None))))
    }

    /// Starts a server that authenticates clients as [`TestServer::start_with_auth`]
    /// does (and panics as it does on an unusable `authorized_keys` line), then runs one
    /// session per connection by `script`.
    pub fn start_with_session(
        config: Config,
        auth: AuthConfig,
        script: SessionScript,
    ) -> TestServer {
        let rules = AuthRules::new(auth, Some(Arc::new(script)));
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
        session: rules.session.clone().map(Session::new),
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
        // Output held back by a full window or a key exchange goes out once it can.
        let output_waiting = auth.as_ref().is_some_and(Authenticating::output_waiting);
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
            |c| {
                !c.packets.is_empty()
                    || c.transport.is_closed()
                    || (output_waiting && c.transport.can_send())
            },
        );
        if record.peer_version.is_none() {
            record.peer_version = conn.transport.peer_version().map(|v| v.to_string());
        }
        if let Err(e) = result {
            break Err(e);
        }
        let mut hangup = None;
        while let Some(payload) = conn.packets.pop_front() {
            let result = match &mut auth {
                None => answer(&mut conn.transport, &payload, &mut record),
                Some(auth) => auth.answer(&mut conn.transport, &payload, &mut record),
            };
            if let Err(h) = result {
                hangup = Some(h);
                break;
            }
        }
        if hangup.is_none()
            && let Some(auth) = &mut auth
        {
            hangup = auth.progress(&mut conn.transport, &mut record).err();
        }
        match hangup {
            None => {}
            Some(Hangup::Send(reason, why)) => {
                conn.transport.disconnect(reason, &why);
                record.error = Some(format!("the server hung up: {why}"));
            }
            Some(Hangup::Sent(why)) => {
                record.error = Some(format!("the server hung up: {why}"));
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
    /// The connection layer after a login, when the server runs a session.
    session: Option<Session>,
    rules: Arc<AuthRules>,
    client_ip: IpAddr,
}

impl Authenticating {
    /// Routes one message: authentication messages (5 and 50 to 79) to [`ServerAuth`],
    /// then makes every decision it asks for. After a login, the connection protocol goes
    /// to the [`Session`], or without one is refused message by message; before it, the
    /// transport lets no such message through.
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
            80.. if self.machine.is_authenticated() => match &mut self.session {
                Some(session) => session.handle(transport, payload, record),
                None => {
                    record.after_auth.push(number);
                    refuse_connection_protocol(transport, payload).map_err(by_application)
                }
            },
            _ => {
                record.unexpected.push(number);
                Ok(())
            }
        }
    }

    /// Moves the session on after a batch of messages; see [`Session::progress`].
    fn progress(&mut self, transport: &mut Transport, record: &mut Record) -> Result<(), Hangup> {
        match &mut self.session {
            Some(session) => session.progress(transport, record),
            None => Ok(()),
        }
    }

    /// Whether the session has output that only waits for the transport.
    fn output_waiting(&self) -> bool {
        self.session.as_ref().is_some_and(Session::output_waiting)
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

/// A failure of one of the server's own calls, which ends the connection with a
/// DISCONNECT.
fn by_application(e: ProtoError) -> Hangup {
    Hangup::Send(DisconnectReason::BY_APPLICATION, e.to_string())
}

/// The connection layer of a server started with [`TestServer::start_with_session`]:
/// `ssh-proto`'s [`Channels`] and where the [`SessionScript`] has got to.
struct Session {
    script: Arc<SessionScript>,
    channels: Channels,
    /// The client's session channel, once accepted.
    session: Option<u32>,
    stage: Stage,
    /// Channels opened toward the client, as our local id and their index in
    /// [`Record::opened_to_client`].
    ours: Vec<(u32, usize)>,
}

/// Where a [`Session`] has got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for `exec` or `shell`.
    Command,
    /// The script's opens are out; waiting for the client to answer every one.
    Answers,
    /// Sending the output; this many bytes of it have gone.
    Output(usize),
    /// The exit status, EOF and CLOSE have gone.
    Finished,
}

impl Session {
    fn new(script: Arc<SessionScript>) -> Session {
        Session {
            script,
            channels: Channels::new(ChannelsConfig::default())
                .expect("the default channel configuration is valid"),
            session: None,
            stage: Stage::Command,
            ours: Vec::new(),
        }
    }

    /// Records what the client sent, hands the message to [`Channels`] and answers every
    /// event that follows.
    fn handle(
        &mut self,
        transport: &mut Transport,
        payload: &[u8],
        record: &mut Record,
    ) -> Result<(), Hangup> {
        self.note(payload, record);
        // RFC 4254 section 4 to 5: 80 to 82 and 90 to 100. Anything else numbered 80 or
        // more is recorded and left alone, so the sequence number that an UNIMPLEMENTED
        // reply would need (which the blocking driver does not keep) is never used.
        let number = payload.first().copied().unwrap_or_default();
        if !matches!(number, 80..=82 | 90..=100) {
            record.unexpected.push(number);
            return Ok(());
        }
        let now = Instant::now();
        // A DISCONNECT is queued already for any error from the peer's message.
        let input = self
            .channels
            .handle(transport, payload, 0, now)
            .map_err(|e| Hangup::Sent(e.to_string()))?;
        // The client's bytes (its standard input) are read and dropped.
        if let Some(Input::Data { channel, data, .. }) = input {
            self.channels
                .consumed(transport, channel, data.len(), now)
                .map_err(by_application)?;
        }
        while let Some(event) = self.channels.poll_event() {
            self.on_event(transport, event, record)
                .map_err(by_application)?;
        }
        Ok(())
    }

    /// Records the client's opens, requests, and answers to our opens from the wire, so
    /// the record says what was sent whatever `ssh-proto` makes of it: a confirmation
    /// with an unusable maximum packet size, say, reaches the application as a failure.
    fn note(&mut self, payload: &[u8], record: &mut Record) {
        let mut r = Reader::new(payload.get(1..).unwrap_or_default());
        let lossy = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
        match payload.first().copied().map(MessageNumber) {
            Some(MessageNumber::CHANNEL_OPEN) => {
                if let Ok(kind) = r.string("channel type") {
                    record.client_opens.push(lossy(kind));
                }
            }
            Some(MessageNumber::CHANNEL_REQUEST) => {
                if let (Ok(_), Ok(name), Ok(want_reply)) =
                    (r.u32("recipient"), r.string("type"), r.bool("want reply"))
                {
                    record.channel_requests.push(RequestSeen {
                        name: lossy(name),
                        want_reply,
                    });
                }
            }
            Some(MessageNumber::GLOBAL_REQUEST) => {
                if let Ok(name) = r.string("request name")
                    && let Ok(want_reply) = r.bool("want reply")
                {
                    record.global_requests.push(RequestSeen {
                        name: lossy(name),
                        want_reply,
                    });
                }
            }
            Some(MessageNumber::CHANNEL_OPEN_CONFIRMATION) => {
                if let Ok(recipient) = r.u32("recipient") {
                    self.answered(recipient, OpenAnswer::Confirmed, record);
                }
            }
            Some(MessageNumber::CHANNEL_OPEN_FAILURE) => {
                if let (Ok(recipient), Ok(reason), Ok(description)) = (
                    r.u32("recipient"),
                    r.u32("reason code"),
                    r.string("description"),
                ) {
                    let answer = OpenAnswer::Refused {
                        reason: OpenFailureReason(reason),
                        description: lossy(description),
                    };
                    self.answered(recipient, answer, record);
                }
            }
            _ => {}
        }
    }

    /// The first answer to one of our opens is the one recorded.
    fn answered(&self, recipient: u32, answer: OpenAnswer, record: &mut Record) {
        let Some(&(_, i)) = self.ours.iter().find(|(id, _)| *id == recipient) else {
            return;
        };
        if let Some(open) = record.opened_to_client.get_mut(i)
            && open.answer.is_none()
        {
            open.answer = Some(answer);
        }
    }

    fn on_event(
        &mut self,
        t: &mut Transport,
        event: ChannelEvent,
        record: &mut Record,
    ) -> Result<(), ProtoError> {
        match event {
            ChannelEvent::OpenRequest {
                channel,
                kind: OwnedChannelType::Session,
            } if self.session.is_none() => {
                self.channels.accept(t, channel)?;
                self.session = Some(channel);
            }
            ChannelEvent::OpenRequest { channel, .. } => self.channels.reject(
                t,
                channel,
                OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                "this server opens one session and nothing else",
            )?,
            ChannelEvent::Request {
                channel,
                request,
                want_reply,
            } => {
                let run = Some(channel) == self.session
                    && self.stage == Stage::Command
                    && matches!(request, OwnedRequest::Exec { .. } | OwnedRequest::Shell);
                if want_reply {
                    self.channels.reply(t, channel, run)?;
                }
                if run {
                    self.open_toward_client(t, record)?;
                }
            }
            // A channel the client should have refused: recorded from the wire, and
            // closed here so it cannot hold the session open.
            ChannelEvent::Opened { channel } if self.ours.iter().any(|(id, _)| *id == channel) => {
                self.channels.close(t, channel)?;
            }
            ChannelEvent::GlobalRequest { want_reply, .. } if want_reply => {
                self.channels.reply_global(t, false, None)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Opens every channel of the script toward the client, all before any answer can
    /// come, so their local ids are distinct.
    fn open_toward_client(
        &mut self,
        t: &mut Transport,
        record: &mut Record,
    ) -> Result<(), ProtoError> {
        for kind in &self.script.opens {
            let id = self.channels.open(t, kind)?;
            record.opened_to_client.push(OpenToClient {
                kind: String::from_utf8_lossy(kind.name()).into_owned(),
                answer: None,
            });
            self.ours.push((id, record.opened_to_client.len() - 1));
        }
        self.stage = Stage::Answers;
        Ok(())
    }

    /// Once every open has its answer, sends the output as the window allows, then
    /// `exit-status`, EOF and CLOSE (RFC 4254 sections 6.10 and 5.3).
    fn progress(&mut self, t: &mut Transport, record: &mut Record) -> Result<(), Hangup> {
        let Some(channel) = self.session else {
            return Ok(());
        };
        if t.is_closed() {
            return Ok(());
        }
        let answered = self.ours.iter().all(|&(_, i)| {
            record
                .opened_to_client
                .get(i)
                .is_some_and(|o| o.answer.is_some())
        });
        if self.stage == Stage::Answers && answered {
            self.stage = Stage::Output(0);
        }
        let Stage::Output(mut sent) = self.stage else {
            return Ok(());
        };
        let script = Arc::clone(&self.script);
        while let Some(rest) = script.output.get(sent..).filter(|r| !r.is_empty()) {
            let n = self
                .channels
                .send_data(t, channel, false, rest)
                .map_err(by_application)?;
            if n == 0 {
                self.stage = Stage::Output(sent);
                return Ok(());
            }
            sent += n;
        }
        let status = ChannelRequestBody::ExitStatus {
            status: script.exit_status,
        };
        self.channels
            .request(t, channel, &status, false)
            .and_then(|()| self.channels.eof(t, channel))
            .and_then(|()| self.channels.close(t, channel))
            .map_err(by_application)?;
        self.stage = Stage::Finished;
        record.session_finished = true;
        Ok(())
    }

    /// Whether output is due and the client's window has room for it, so that only the
    /// transport (a key exchange in progress) holds it back.
    fn output_waiting(&self) -> bool {
        matches!(self.stage, Stage::Output(_))
            && self.session.is_some_and(|c| self.channels.window(c) > 0)
    }
}
