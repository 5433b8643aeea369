//! The forwarding server's name lookups, end to end in one process: a server loop whose
//! resolver answers each name only when the test says so, and this crate's client
//! carrying local forwards through it.
//!
//! What it proves:
//! - A lookup that hangs holds up its own channel only: another channel on the same
//!   connection carries data meanwhile, and when the answer comes, its channel connects.
//! - Every address a name has is tried in order: a first address that refuses gives way
//!   to the second.
//! - A failed lookup is CONNECT_FAILED for that channel, and the connection goes on.
//! - An answer that comes after the connect timeout is dropped, even when the endpoint's
//!   slot is held by another waiting lookup by then.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ssh_proto::authorized_keys::AuthorizedKeys;
use ssh_proto::config::Config;
use ssh_proto::connection::policy::ServerPolicy;
use ssh_proto::crypto::default_provider;
use ssh_proto::userkey::{KeyKind, UserKey};

use super::client::{ClientSetup, Listen, LocalForward, SessionKind};
use super::listen::Target;
use super::resolve::Resolve;
use super::server::Settings;
use super::{EventLoop, Stopper};
use crate::connect;
use crate::options::ClientOptions;
use crate::prompt::Prompter;
use crate::rng::OsRng;

/// How long any one step of these tests may take before it fails.
const STEP: Duration = Duration::from_secs(10);

/// A resolver that holds every lookup until the test answers its name.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    /// Names looked up, in order.
    asked: Vec<String>,
    /// Names the test answered: their addresses, or a failed lookup when empty.
    answers: HashMap<String, Vec<SocketAddr>>,
    /// Names whose lookup has returned to the pool.
    returned: Vec<String>,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().expect("gate")
    }

    fn answer(&self, host: &str, addrs: Vec<SocketAddr>) {
        self.lock().answers.insert(host.to_owned(), addrs);
        self.changed.notify_all();
    }

    /// Waits until `done` holds; panics after [`STEP`], saying what it waited for.
    fn wait(&self, what: &str, done: impl Fn(&GateState) -> bool) {
        let deadline = Instant::now() + STEP;
        let mut state = self.lock();
        while !done(&state) {
            assert!(Instant::now() < deadline, "{what}: {state:?}");
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(50))
                .expect("gate")
                .0;
        }
    }

    fn wait_asked(&self, host: &str) {
        self.wait(&format!("{host} looked up"), |s| {
            s.asked.iter().any(|h| h == host)
        });
    }

    fn wait_returned(&self, host: &str) {
        self.wait(&format!("{host} answered"), |s| {
            s.returned.iter().any(|h| h == host)
        });
    }
}

impl Resolve for Gate {
    fn resolve(&self, host: &str, _port: u16) -> io::Result<Vec<SocketAddr>> {
        let mut state = self.lock();
        state.asked.push(host.to_owned());
        self.changed.notify_all();
        let addrs = loop {
            if let Some(addrs) = state.answers.get(host) {
                break addrs.clone();
            }
            state = self.changed.wait(state).expect("gate");
        };
        state.returned.push(host.to_owned());
        self.changed.notify_all();
        if addrs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such name"));
        }
        Ok(addrs)
    }
}

/// A folder for the client's key file, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "gateway-{label}-{}-{:?}",
            std::process::id(),
            thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An echo service on `127.0.0.1` only, a thread per connection; its port.
fn echo_service() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("echo listener");
    let port = listener.local_addr().expect("echo address").port();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

/// The forwarding server and a client logged in to it, with one local forward per
/// target, each loop on a thread of its own.
struct Rig {
    forwards: Vec<SocketAddr>,
    stoppers: [Stopper; 2],
    threads: Vec<JoinHandle<()>>,
    _scratch: Scratch,
}

impl Rig {
    fn start(label: &str, gate: &Arc<Gate>, connect_timeout: Duration, targets: &[Target]) -> Rig {
        let provider = default_provider();
        let scratch = Scratch::new(label);
        let host_key = UserKey::generate(provider, KeyKind::Ed25519, &mut OsRng)
            .expect("host key")
            .to_host_key(provider)
            .expect("an ed25519 key is a host key");
        let client_key = UserKey::generate(provider, KeyKind::Ed25519, &mut OsRng).expect("key");
        let identity = scratch.0.join("id_ed25519");
        let text = client_key
            .to_openssh("lookup test", None, &mut OsRng)
            .expect("key file");
        std::fs::write(&identity, text.as_bytes()).expect("write the key");

        let settings = Arc::new(Settings {
            config: Arc::new(Config {
                host_keys: vec![host_key],
                ..Config::default()
            }),
            authorized_keys: AuthorizedKeys::parse(&client_key.public_line("lookup test")),
            policy: Arc::new(ServerPolicy {
                direct_tcpip: true,
                ..ServerPolicy::default()
            }),
            max_startups: 10,
            connect_timeout,
        });
        let (tx, rx) = mpsc::channel();
        let resolver = Arc::clone(gate) as Arc<dyn Resolve>;
        let server = thread::spawn(move || {
            let mut event_loop = EventLoop::new(false).expect("server loop");
            event_loop.set_resolver(resolver);
            let addr = event_loop
                .listen_ssh(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), settings)
                .expect("listen");
            tx.send((addr, event_loop.stopper())).expect("send");
            event_loop.run().expect("server loop");
        });
        let (server_addr, server_stop) = rx.recv().expect("the server listens");

        let (tx, rx) = mpsc::channel();
        let targets = targets.to_vec();
        let client = thread::spawn(move || run_client(server_addr, &identity, targets, &tx));
        let (forwards, client_stop) = rx.recv_timeout(STEP).expect("the client logs in");
        Rig {
            forwards,
            stoppers: [client_stop, server_stop],
            threads: vec![client, server],
            _scratch: scratch,
        }
    }

    /// A connection to the local end of forward `n`.
    fn connect(&self, n: usize) -> TcpStream {
        let stream = TcpStream::connect(self.forwards[n]).expect("connect to the forward");
        stream.set_read_timeout(Some(STEP)).expect("read timeout");
        stream
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for stopper in &self.stoppers {
            stopper.stop();
        }
        // After a failure the loops may be stuck (that may be the failure): the test
        // ends without them.
        if thread::panicking() {
            return;
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Logs in to the server at `addr` and runs a client loop with a local forward to each
/// target; sends the forwards' bound addresses and a handle that stops the loop.
fn run_client(
    addr: SocketAddr,
    identity: &Path,
    targets: Vec<Target>,
    started: &mpsc::Sender<(Vec<SocketAddr>, Stopper)>,
) {
    let mut options = ClientOptions::default();
    options.batch_mode = true;
    options.auth.user = "lookup-test".to_owned();
    options.auth.identity_files = vec![identity.to_path_buf()];
    options.auth.identities_only = true;
    options.auth.agent = None;
    let prompter = Prompter::batch();
    let host = addr.ip().to_string();
    let (mut conn, _) =
        connect::handshake(&host, addr.port(), &options, &prompter, false).expect("handshake");
    connect::authenticate(&mut conn, &options, &prompter, &host, addr.port()).expect("login");
    let forwards = targets
        .into_iter()
        .map(|target| LocalForward {
            listen: Listen::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            target,
        })
        .collect();
    let setup = ClientSetup {
        host,
        session: SessionKind::None,
        local_forwards: forwards,
        exit_on_forward_failure: true,
        server_alive: None,
    };
    let mut event_loop = EventLoop::new(false).expect("client loop");
    let outcome = event_loop
        .add_client(conn, setup, None)
        .expect("add client");
    let bound = outcome
        .borrow()
        .bound
        .iter()
        .map(|b| b.expect("the forward listens"))
        .collect();
    started.send((bound, event_loop.stopper())).expect("send");
    event_loop.run().expect("client loop");
}

fn tcp(host: &str, port: u16) -> Target {
    Target::Tcp {
        host: host.to_owned(),
        port,
    }
}

/// Sends `bytes` through `stream` and reads back what the echo returns.
fn echo(stream: &mut TcpStream, bytes: usize, seed: u8) {
    let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8 ^ seed).collect();
    let mut writer = stream.try_clone().expect("clone");
    let sent = data.clone();
    let sender = thread::spawn(move || writer.write_all(&sent).expect("write"));
    let mut got = vec![0u8; bytes];
    stream.read_exact(&mut got).expect("read the echo");
    sender.join().expect("sender");
    assert!(got == data, "the echo differs");
}

/// Waits for the forward's connection to be closed by the client, as it is when the
/// channel's open failed.
fn closed(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes came through a channel that should have failed"),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the forward's connection is still open: {e}"),
    }
    started.elapsed()
}

/// A lookup the resolver holds blocks neither the connection nor its other channels;
/// when it answers with an address that refuses and then one that works, the channel
/// connects to the second.
#[test]
fn a_hanging_lookup_holds_up_only_its_own_channel() {
    let echo_port = echo_service();
    let gate = Arc::new(Gate::default());
    let rig = Rig::start(
        "lookup-hang",
        &gate,
        Duration::from_secs(30),
        &[
            tcp("slow.test", echo_port),
            tcp("127.0.0.1", echo_port),
            tcp("nowhere.test", echo_port),
        ],
    );

    let mut slow = rig.connect(0);
    slow.write_all(b"held back").expect("write");
    gate.wait_asked("slow.test");

    // The lookup hangs; an address on the same connection carries data meanwhile.
    let mut direct = rig.connect(1);
    echo(&mut direct, 256 * 1024, 1);

    // A name that fails is refused, and the connection lives on.
    gate.answer("nowhere.test", Vec::new());
    let mut nowhere = rig.connect(2);
    closed(&mut nowhere);
    echo(&mut direct, 64 * 1024, 2);

    // `127.0.0.2` refuses (the echo listens on `127.0.0.1` only): the next address serves.
    let refuses = SocketAddr::from(([127, 0, 0, 2], echo_port));
    let serves = SocketAddr::from(([127, 0, 0, 1], echo_port));
    gate.answer("slow.test", vec![refuses, serves]);
    let mut got = [0u8; 9];
    slow.read_exact(&mut got)
        .expect("the held-back bytes come back");
    assert_eq!(&got, b"held back");
    echo(&mut slow, 64 * 1024, 3);
}

/// An answer after the deadline is dropped. By the time it comes, the endpoint's slot
/// holds another channel's lookup; given the stale answer (an address that refuses),
/// that channel would fail, and it does not.
#[test]
fn a_late_answer_is_dropped_even_when_its_slot_is_reused() {
    let echo_port = echo_service();
    let gate = Arc::new(Gate::default());
    let timeout = Duration::from_millis(1500);
    let rig = Rig::start(
        "lookup-late",
        &gate,
        timeout,
        &[tcp("late.test", echo_port), tcp("next.test", echo_port)],
    );

    let mut late = rig.connect(0);
    gate.wait_asked("late.test");
    let waited = closed(&mut late);
    assert!(waited < STEP, "the lookup's deadline did not end it");

    let mut next = rig.connect(1);
    next.write_all(b"second").expect("write");
    gate.wait_asked("next.test");
    gate.answer(
        "late.test",
        vec![SocketAddr::from(([127, 0, 0, 2], echo_port))],
    );
    gate.wait_returned("late.test");
    // Time for the loop to take the stale answer, well inside the second deadline.
    thread::sleep(timeout / 4);

    gate.answer(
        "next.test",
        vec![SocketAddr::from(([127, 0, 0, 1], echo_port))],
    );
    let mut got = [0u8; 6];
    next.read_exact(&mut got)
        .expect("the second channel connects");
    assert_eq!(&got, b"second");
}
