//! A small SSH server built on `ssh-proto`'s server role, for real clients to connect to.
//!
//! [`TestServer`] listens on a free loopback port and runs each connection on its own
//! thread: a [`Transport`] in [`Role::Server`] with an Ed25519 host key, driven by
//! [`BlockingConn`]. Above the transport it does just enough for a client to reach
//! authentication and give up there: it accepts the `ssh-userauth` service (RFC 4253
//! section 10) and answers every USERAUTH_REQUEST with USERAUTH_FAILURE offering only
//! `publickey` (RFC 4252 section 5.1). Authentication itself is not implemented in
//! `ssh-proto` yet, so no request can succeed here.
//!
//! What each connection did is kept as a [`Record`], so a test can check the client's
//! story (its verbose log) against the server's.
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
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gateway::blocking::{BlockingConn, DriveError};
use gateway::rng::OsRng;
use ssh_proto::Error as ProtoError;
use ssh_proto::algorithms::Negotiated;
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
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "client version: {:?}", self.peer_version)?;
        writeln!(f, "negotiated: {:?}", self.negotiated)?;
        writeln!(f, "rekeys: {}", self.rekeys)?;
        writeln!(f, "service request: {:?}", self.service_request)?;
        writeln!(f, "auth requests: {:?}", self.auth_requests)?;
        writeln!(f, "unexpected messages: {:?}", self.unexpected)?;
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
    pub fn start_with(mut config: Config) -> TestServer {
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
            thread::spawn(move || accept_loop(&listener, &config, &shared, &stop))
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
        guard.handlers.push(thread::spawn(move || {
            let record = serve(stream, config);
            let mut guard = lock(&shared_for_thread);
            guard.open.retain(|(open_id, _)| *open_id != id);
            guard.records.push(record);
        }));
    }
}

/// Runs one connection to its end and says what happened.
fn serve(stream: TcpStream, config: Arc<Config>) -> Record {
    let mut record = Record::default();
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
            if let Err((reason, why)) = answer(&mut conn.transport, &payload, &mut record) {
                conn.transport.disconnect(reason, &why);
                record.error = Some(format!("the server hung up: {why}"));
                break;
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

/// Answers one message for the layer above the transport. An error ends the connection
/// with that disconnect reason and text.
fn answer(
    transport: &mut Transport,
    payload: &[u8],
    record: &mut Record,
) -> Result<(), (DisconnectReason, String)> {
    let malformed = |e: WireError| (DisconnectReason::PROTOCOL_ERROR, e.to_string());
    let Some((&number, body)) = payload.split_first() else {
        return Err((DisconnectReason::PROTOCOL_ERROR, "empty message".to_owned()));
    };
    let mut r = Reader::new(body);
    let reply = match MessageNumber(number) {
        MessageNumber::SERVICE_REQUEST => {
            let service = r.utf8("service name").map_err(malformed)?;
            record.service_request = Some(service.to_owned());
            if service != "ssh-userauth" {
                return Err((
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
            let mut field = |what| {
                r.string(what)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .map_err(malformed)
            };
            let user = field("user name")?;
            let service = field("service name")?;
            let method = field("method name")?;
            record.auth_requests.push(AuthRequest {
                user,
                service,
                method,
            });
            if record.auth_requests.len() > MAX_AUTH_REQUESTS {
                return Err((
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
    reply.map_err(|e| (DisconnectReason::BY_APPLICATION, e.to_string()))
}
