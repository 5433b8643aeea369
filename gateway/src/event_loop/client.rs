//! The client's side of a connection once it is authenticated: local forwards (`-L`),
//! a stdio forward (`-W`), and a session that runs a command or a shell with the
//! process's own standard streams.
//!
//! Authentication happens before the connection joins the loop, on the blocking driver,
//! because it may prompt on the terminal. The loop takes the socket, the transport and
//! whatever input was already read.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use ssh_proto::connection::channels::{
    Channels, ChannelsConfig, Event as ChannelEvent, OwnedChannelType, OwnedRequest,
};
use ssh_proto::connection::msg::{
    ChannelRequestBody, ChannelType, GlobalRequestBody, OpenFailureReason, PtyRequest,
    TerminalModes, TerminalOpcode, TerminalSize,
};
use ssh_proto::msg::DisconnectReason;
use ssh_proto::transport::Event as TransportEvent;

use super::conn::{Core, Ctx, End, Role};
use super::endpoint::{Endpoint, Io, Pipe};
use super::listen::{Accepted, Listener, Purpose, Target, no_such_address};
use super::sock::{Phase, Sock};
use crate::blocking::BlockingConn;

/// Where a `-L` forward listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    /// A port on both loopback addresses, 127.0.0.1 and ::1, as ssh listens when a
    /// forward names no bind address (or `localhost`): programs that try `localhost` as
    /// ::1 first find the forward there too. The forward works when either binds; a
    /// host without IPv6 simply has no ::1 listener. Port 0 binds 127.0.0.1 only, since
    /// the two would be given different ports.
    Loopback(u16),
    Unix(PathBuf),
}

impl Listen {
    /// The TCP addresses to bind, in order.
    fn tcp_addrs(&self) -> Vec<SocketAddr> {
        match *self {
            Listen::Tcp(a) => vec![a],
            Listen::Loopback(0) => vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
            Listen::Loopback(port) => vec![
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
            ],
            Listen::Unix(_) => Vec::new(),
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Loopback(port) => write!(f, "localhost:{port}"),
            Listen::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One local forward, with its listening address already resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalForward {
    pub listen: Listen,
    pub target: Target,
}

/// What the connection carries besides forwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// `-N`: forwards only.
    None,
    /// A command with `exec`, or a shell when `command` is `None`.
    Session {
        command: Option<String>,
        /// Ask for a pseudo-terminal.
        pty: Option<Pty>,
    },
    /// `-W host:port`: the standard streams carried to the target.
    Stdio(Target),
}

/// The pseudo-terminal a session asks for (RFC 4254 section 6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pty {
    /// The terminal type, as `TERM` names it.
    pub term: String,
    /// The terminal's size in characters and pixels, as `pty-req` carries it.
    pub size: TerminalSize,
    /// The local terminal's modes (RFC 4254 section 8), so the remote one behaves the
    /// same; empty leaves the server's defaults. Every opcode must take an argument.
    pub modes: Vec<(TerminalOpcode, u32)>,
}

/// What the client asks of the connection.
#[derive(Clone, Debug)]
pub struct ClientSetup {
    /// The server's name as the user gave it, for messages.
    pub host: String,
    pub session: SessionKind,
    pub local_forwards: Vec<LocalForward>,
    /// `ExitOnForwardFailure`: a forward that cannot listen, or a `-W` that cannot
    /// open, ends the client with status 255.
    pub exit_on_forward_failure: bool,
    /// `ServerAliveInterval` and `ServerAliveCountMax`.
    pub server_alive: Option<(Duration, u32)>,
}

/// How the client's connection ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The remote command's exit status, or 128 plus the signal number.
    pub exit_status: Option<u8>,
    /// Why the client failed, as one line; set when the exit status is 255.
    pub error: Option<String>,
    /// The local forwards' bound addresses, in the order given.
    pub bound: Vec<Option<SocketAddr>>,
    /// The transport's counters when the connection ended.
    pub stats: Option<ssh_proto::transport::Stats>,
}

/// The client role.
pub(crate) struct ClientRole {
    setup: ClientSetup,
    outcome: Rc<RefCell<Outcome>>,
    /// The session or stdio channel, once opened.
    main_channel: Option<u32>,
    /// The session finished (its channel closed); the connection is being ended.
    done: bool,
    alive: Option<Alive>,
    /// Our session requests waiting for replies, oldest first: replies come in request
    /// order (RFC 4254 section 5.4).
    replies: VecDeque<&'static str>,
    /// `pty-req` has gone out, so a new terminal size can follow it.
    pty_requested: bool,
    /// The terminal was resized before `pty-req` went out: the size then may be stale.
    resized_early: bool,
}

/// `ServerAliveInterval` bookkeeping, with ssh's semantics: after a whole interval
/// without a packet from the server a keepalive goes out, and again after each further
/// silent interval; when the silence outlasts `count_max` of them the client gives up.
/// So a server gone silent is dropped `count_max + 1` intervals after it was last heard.
#[derive(Debug)]
struct Alive {
    interval: Duration,
    count_max: u32,
    next: Instant,
    /// When the server was last heard from, as of the last check.
    heard: Instant,
    /// Keepalives sent since then.
    missed: u32,
}

impl std::fmt::Debug for ClientRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRole")
            .field("host", &self.setup.host)
            .finish_non_exhaustive()
    }
}

/// Makes a new authenticated connection to the same server, for `--reconnect`. It
/// blocks (connect, key exchange, authentication), so it runs on a thread of its own,
/// never on the loop's.
pub type Reconnector = Box<dyn FnMut() -> Result<BlockingConn, String> + Send>;

/// The first wait before reconnecting, and the longest.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// The wait after `delay` when an attempt failed: twice as long, up to [`RECONNECT_MAX`].
fn next_delay(delay: Duration) -> Duration {
    (delay * 2).min(RECONNECT_MAX)
}

/// What an attempt's thread hands back: the connector, for the next attempt, and what
/// it made.
type Attempt = (Reconnector, Result<BlockingConn, String>);

/// A forwards-only client that reconnects when its connection is lost: the listeners
/// stay bound meanwhile (local connections that arrive are closed at once), and attempts
/// back off from 1 s to 30 s.
///
/// An attempt runs on a thread with the [`Reconnector`] moved into it, and the loop
/// goes on meanwhile: it keeps closing what arrives at the listeners, and a stop signal
/// still ends it within the drain time, however long the attempt hangs. The thread
/// sends the connector back with its result and wakes the loop.
pub(crate) struct Reconnect {
    /// `None` while an attempt holds it.
    connect: Option<Reconnector>,
    attempt: Option<mpsc::Receiver<Attempt>>,
    setup: ClientSetup,
    outcome: Rc<RefCell<Outcome>>,
    delay: Duration,
    /// The connection the forward listeners use now.
    pub(crate) conn: Option<usize>,
}

impl std::fmt::Debug for Reconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconnect")
            .field("host", &self.setup.host)
            .field("delay", &self.delay)
            .field("attempting", &self.attempt.is_some())
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl super::EventLoop {
    /// Takes an authenticated client connection from the blocking driver into the loop:
    /// binds the local forwards, opens the session or stdio channel. The outcome fills in
    /// as the loop runs; read it after [`super::EventLoop::run`] returns.
    ///
    /// With `reconnect` (forwards only), a lost connection is made again with it instead
    /// of ending the loop.
    pub fn add_client(
        &mut self,
        conn: BlockingConn,
        setup: ClientSetup,
        reconnect: Option<Reconnector>,
    ) -> Result<Rc<RefCell<Outcome>>, String> {
        let outcome = Rc::new(RefCell::new(Outcome::default()));
        let index = self.add_client_conn(conn, setup.clone(), &outcome)?;

        for forward in &setup.local_forwards {
            match self.bind_forward(forward, index) {
                Ok(bound) => outcome.borrow_mut().bound.push(bound),
                Err(line) => {
                    if setup.exit_on_forward_failure {
                        self.cut_all("forwarding failed");
                        return Err(format!("{line}; Could not request local forwarding."));
                    }
                    eprintln!("{line}");
                    eprintln!("Could not request local forwarding.");
                    outcome.borrow_mut().bound.push(None);
                }
            }
        }
        if let Some(connect) = reconnect {
            self.reconnect = Some(Reconnect {
                connect: Some(connect),
                attempt: None,
                setup,
                outcome: Rc::clone(&outcome),
                delay: RECONNECT_FIRST,
                conn: Some(index),
            });
        }
        Ok(outcome)
    }

    /// Binds the listeners of one local forward for connection `conn`. Returns the first
    /// TCP address bound (`None` for a Unix socket), or ssh's words for why none was:
    /// `bind [127.0.0.1]:8080: Address already in use`. When some of a forward's addresses bind and others do not, the
    /// forward works and each failure is a warning, as with ssh; a loopback ::1 that the
    /// host does not have is passed over in silence.
    fn bind_forward(
        &mut self,
        forward: &LocalForward,
        conn: usize,
    ) -> Result<Option<SocketAddr>, String> {
        let purpose = || Purpose::Forward {
            conn,
            target: forward.target.clone(),
        };
        if let Listen::Unix(path) = &forward.listen {
            return Listener::unix(path, purpose())
                .and_then(|l| {
                    let bound = l.local_addr();
                    self.add_listener(l).map(|_| bound)
                })
                .map_err(|e| {
                    format!(
                        "bind {}: {}",
                        path.display(),
                        crate::connect::os_error_text(&e)
                    )
                });
        }
        let mut first = None;
        let mut failures = Vec::new();
        for addr in forward.listen.tcp_addrs() {
            let bound = Listener::tcp(addr, purpose()).and_then(|l| {
                let bound = l.local_addr();
                self.add_listener(l).map(|_| bound)
            });
            match bound {
                Ok(bound) => {
                    first = first.or(bound).or(Some(addr));
                }
                Err(e)
                    if matches!(forward.listen, Listen::Loopback(_))
                        && addr.is_ipv6()
                        && no_such_address(&e) => {}
                Err(e) => failures.push(format!(
                    "bind [{}]:{}: {}",
                    addr.ip(),
                    addr.port(),
                    crate::connect::os_error_text(&e)
                )),
            }
        }
        match first {
            Some(bound) => {
                for line in failures {
                    eprintln!("{line}");
                }
                Ok(Some(bound))
            }
            None => Err(failures.join("; ")),
        }
    }

    /// Adds one authenticated connection with a client role and starts it.
    fn add_client_conn(
        &mut self,
        conn: BlockingConn,
        setup: ClientSetup,
        outcome: &Rc<RefCell<Outcome>>,
    ) -> Result<usize, String> {
        let (transport, stream, input, packets) = conn.into_parts();
        let peer = stream
            .peer_addr()
            .map_err(|e| format!("{}: {e}", setup.host))?;
        stream
            .set_nonblocking(true)
            .map_err(|e| format!("{}: {e}", setup.host))?;
        let mut core = Core::new(mio::net::TcpStream::from_std(stream), peer, transport);
        core.set_leftover_input(input);
        core.channels = Some(Channels::new(ChannelsConfig::default()).map_err(|e| e.to_string())?);
        let alive = setup.server_alive.map(|(interval, count_max)| Alive {
            interval,
            count_max,
            next: core.last_received + interval,
            heard: core.last_received,
            missed: 0,
        });
        let role = ClientRole {
            setup,
            outcome: Rc::clone(outcome),
            main_channel: None,
            done: false,
            alive,
            replies: VecDeque::new(),
            pty_requested: false,
            resized_early: false,
        };
        let index = self
            .add_conn(core, Box::new(role), false)
            .map_err(|e| e.to_string())?;
        // Messages that came in behind USERAUTH_SUCCESS, on the blocking driver.
        for payload in packets {
            self.with_conn(index, |core, role, ctx| {
                core.dispatch_leftover(role, ctx, &payload)
            });
        }
        self.with_conn(index, |core, role, ctx| role.start(core, ctx));
        Ok(index)
    }

    /// Connection `index` ended: when it is the one a reconnecting client uses, keep the
    /// listeners and schedule the first attempt. Returns whether it did.
    pub(crate) fn plan_reconnect(&mut self, index: usize) -> bool {
        let Some(state) = self.reconnect.as_mut() else {
            return false;
        };
        if state.conn != Some(index) || self.draining.is_some() {
            return false;
        }
        state.conn = None;
        let why = state.outcome.borrow_mut().error.take();
        eprintln!(
            "gateway: {}; reconnecting in {} s",
            why.as_deref()
                .unwrap_or("connection lost")
                .trim_end_matches('.'),
            state.delay.as_secs()
        );
        let at = self.now + state.delay;
        self.timers
            .push(std::cmp::Reverse((at, super::Timer::Reconnect)));
        true
    }

    /// The reconnect timer fired: start an attempt on a thread of its own. Its result
    /// comes back through the loop's waker to [`Self::finish_reconnect`].
    pub(crate) fn try_reconnect(&mut self) {
        let waker = Arc::clone(&self.waker);
        let Some(state) = self.reconnect.as_mut() else {
            return;
        };
        if state.conn.is_some() || state.attempt.is_some() || self.draining.is_some() {
            return;
        }
        let Some(mut connect) = state.connect.take() else {
            return;
        };
        let (done, attempt) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name("reconnect".to_owned())
            .spawn(move || {
                let result = connect();
                // The loop may be gone (it stopped while this attempt hung); then nobody
                // wants the result, and the connection it made closes as it drops.
                if done.send((connect, result)).is_ok() {
                    let _ = waker.wake();
                }
            });
        match spawned {
            Ok(_) => state.attempt = Some(attempt),
            Err(e) => {
                // The connector moved into the closure that failed to start, so there is
                // nothing to try again with: end as a lost connection without reconnect.
                let line = format!("cannot start a reconnect attempt: {e}");
                state.outcome.borrow_mut().error = Some(line);
                self.give_up_reconnecting();
            }
        }
    }

    /// Reconnecting cannot go on: the loop stops (the listeners close, as on a stop
    /// signal) so that the client ends and reports the error already in its outcome.
    fn give_up_reconnecting(&mut self) {
        self.reconnect = None;
        self.cut_all("reconnect failed");
        self.start_drain();
    }

    /// The loop's waker rang: when it was for a finished reconnect attempt, take its
    /// connection into the loop and move the listeners to it, or schedule the next
    /// attempt after a longer wait.
    pub(crate) fn finish_reconnect(&mut self) {
        let Some(state) = self.reconnect.as_mut() else {
            return;
        };
        let Some(attempt) = state.attempt.as_ref() else {
            return;
        };
        let (connect, result) = match attempt.try_recv() {
            Ok(done) => done,
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => {
                // The attempt's thread ended without an answer: it panicked, and took
                // the connector with it.
                state.outcome.borrow_mut().error = Some("reconnect attempt failed".to_owned());
                self.give_up_reconnecting();
                return;
            }
        };
        state.attempt = None;
        state.connect = Some(connect);
        if self.draining.is_some() {
            return;
        }
        let Some(mut state) = self.reconnect.take() else {
            return;
        };
        let added =
            result.and_then(|conn| self.add_client_conn(conn, state.setup.clone(), &state.outcome));
        match added {
            Ok(index) => {
                eprintln!("gateway: reconnected to {}", state.setup.host);
                state.conn = Some(index);
                state.delay = RECONNECT_FIRST;
                let mut listeners = Vec::new();
                for (li, listener) in &mut self.listeners {
                    if let Purpose::Forward { conn, .. } = &mut listener.purpose {
                        *conn = index;
                        listeners.push(li);
                    }
                }
                self.reconnect = Some(state);
                for li in listeners {
                    self.accept(li);
                }
            }
            Err(e) => {
                eprintln!("gateway: {e}");
                state.delay = next_delay(state.delay);
                eprintln!("gateway: reconnecting in {} s", state.delay.as_secs());
                let at = Instant::now() + state.delay;
                self.timers
                    .push(std::cmp::Reverse((at, super::Timer::Reconnect)));
                self.reconnect = Some(state);
            }
        }
    }
}

/// The process's standard streams as an endpoint: stdin up, stdout and stderr down.
/// Their old flags are put back when it goes.
fn stdio_endpoint(with_stdin: bool) -> io::Result<Endpoint> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>| -> io::Result<OwnedFd> {
        Ok(rustix::io::fcntl_dupfd_cloexec(fd, 3)?)
    };
    let stdin = if with_stdin {
        Some(Pipe::new(dup(rustix::stdio::stdin())?, true)?)
    } else {
        None
    };
    let stdout = Pipe::new(dup(rustix::stdio::stdout())?, true)?;
    let stderr = Pipe::new(dup(rustix::stdio::stderr())?, true)?;
    Ok(Endpoint::new(Io::Pipes {
        up: [stdin, None],
        down: [Some(stdout), Some(stderr)],
    }))
}

impl ClientRole {
    /// Opens the session or stdio channel.
    fn open_main(&mut self, core: &mut Core, ctx: &mut Ctx<'_>) -> Result<(), End> {
        let Some(channels) = core.channels.as_mut() else {
            return Ok(());
        };
        let (kind, label) = match &self.setup.session {
            SessionKind::None => return Ok(()),
            SessionKind::Session { .. } => (OpenKind::Session, "session".to_owned()),
            SessionKind::Stdio(target) => (
                OpenKind::Target(target.clone()),
                format!("stdio forward to {target}"),
            ),
        };
        let channel = match &kind {
            OpenKind::Session => channels.open(&mut core.transport, &ChannelType::Session)?,
            OpenKind::Target(target) => open_target(channels, &mut core.transport, target, None)?,
        };
        let ep = stdio_endpoint(true).map_err(|e| End::Local(format!("standard streams: {e}")))?;
        let mut sock = Sock::new(ep, ctx.index, channel, Phase::Opening, label);
        // A session is closed by the server, after its exit status; only a stdio
        // forward ends when both directions have.
        sock.hold_close = matches!(kind, OpenKind::Session);
        let i = ctx
            .add_sock(sock)
            .map_err(|e| End::Local(format!("standard streams: {e}")))?;
        core.bindings.insert(channel, i);
        self.main_channel = Some(channel);
        Ok(())
    }

    fn fail(&mut self, core: &mut Core, line: String) -> End {
        core.transport
            .disconnect(DisconnectReason::BY_APPLICATION, "disconnected by user");
        self.outcome.borrow_mut().error = Some(line.clone());
        End::Local(line)
    }

    /// The session channel is open: ask for a terminal, then the command or shell.
    fn start_session(&mut self, core: &mut Core, channel: u32) -> Result<(), End> {
        let SessionKind::Session { command, pty } = &self.setup.session else {
            return Ok(());
        };
        let Some(channels) = core.channels.as_mut() else {
            return Ok(());
        };
        if let Some(pty) = pty {
            let mut encoded = Vec::new();
            TerminalModes::encode(pty.modes.iter().copied(), &mut encoded)
                .map_err(|e| End::Local(format!("pty-req: {e}")))?;
            let modes =
                TerminalModes::parse(&encoded).map_err(|e| End::Local(format!("pty-req: {e}")))?;
            let body = ChannelRequestBody::PtyReq(PtyRequest {
                term: pty.term.as_bytes(),
                size: pty.size,
                modes,
            });
            channels.request(&mut core.transport, channel, &body, true)?;
            self.replies.push_back("PTY allocation");
            self.pty_requested = true;
            if self.resized_early {
                send_window_change(channels, &mut core.transport, channel)?;
            }
        }
        self.replies
            .push_back(if command.is_some() { "exec" } else { "shell" });
        let body = match command {
            Some(c) => ChannelRequestBody::Exec {
                command: c.as_bytes(),
            },
            None => ChannelRequestBody::Shell,
        };
        channels.request(&mut core.transport, channel, &body, true)?;
        Ok(())
    }

    fn keepalive(&mut self, core: &mut Core, now: Instant) -> Result<(), End> {
        let Some(alive) = self.alive.as_mut() else {
            return Ok(());
        };
        if now < alive.next {
            return Ok(());
        }
        if core.last_received != alive.heard {
            alive.heard = core.last_received;
            alive.missed = 0;
        }
        // The clock runs from the last packet, as ssh's does from its last read: traffic
        // in the meantime moves the next check instead of spending a keepalive.
        let silent_until = alive.heard + alive.interval;
        if now < silent_until {
            alive.next = silent_until;
            return Ok(());
        }
        alive.next = now + alive.interval;
        // ssh gives up at the check after `count_max` keepalives went unanswered; with a
        // count of 0 it gives up at the first silent one without sending any.
        if alive.missed >= alive.count_max {
            let line = format!("Timeout, server {} not responding.", self.setup.host);
            return Err(self.fail(core, line));
        }
        alive.missed += 1;
        if let Some(channels) = core.channels.as_mut() {
            channels.global_request(&mut core.transport, &GlobalRequestBody::Keepalive, true)?;
        }
        Ok(())
    }
}

/// The size of the terminal on stdin; 80x24 when there is none.
pub fn terminal_size() -> TerminalSize {
    let size = rustix::termios::tcgetwinsize(rustix::stdio::stdin()).ok();
    TerminalSize {
        cols: size.map_or(80, |s| u32::from(s.ws_col)),
        rows: size.map_or(24, |s| u32::from(s.ws_row)),
        width_px: size.map_or(0, |s| u32::from(s.ws_xpixel)),
        height_px: size.map_or(0, |s| u32::from(s.ws_ypixel)),
    }
}

/// Tells the server the terminal's size now (RFC 4254 section 6.7). A session channel
/// that is already closing needs no size: that is not an error.
fn send_window_change(
    channels: &mut Channels,
    transport: &mut ssh_proto::transport::Transport,
    channel: u32,
) -> Result<(), End> {
    let body = ChannelRequestBody::WindowChange(terminal_size());
    match channels.request(transport, channel, &body, false) {
        Ok(()) => Ok(()),
        Err(ssh_proto::Error::Misuse(why)) => {
            log::debug!("channel {channel}: window-change not sent: {why}");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// What the main channel is.
enum OpenKind {
    Session,
    Target(Target),
}

/// ssh's words for the reason codes of CHANNEL_OPEN_FAILURE (RFC 4254 section 5.1).
fn open_failure_text(reason: OpenFailureReason) -> String {
    match reason {
        OpenFailureReason::ADMINISTRATIVELY_PROHIBITED => "administratively prohibited".to_owned(),
        OpenFailureReason::CONNECT_FAILED => "connect failed".to_owned(),
        OpenFailureReason::UNKNOWN_CHANNEL_TYPE => "unknown channel type".to_owned(),
        OpenFailureReason::RESOURCE_SHORTAGE => "resource shortage".to_owned(),
        OpenFailureReason(n) => format!("unknown reason {n}"),
    }
}

/// Opens `direct-tcpip` or `direct-streamlocal@openssh.com` to `target`.
fn open_target(
    channels: &mut Channels,
    transport: &mut ssh_proto::transport::Transport,
    target: &Target,
    origin: Option<SocketAddr>,
) -> Result<u32, ssh_proto::Error> {
    let (origin_host, origin_port) = match origin {
        Some(a) => (a.ip().to_string(), u32::from(a.port())),
        None => ("127.0.0.1".to_owned(), 0),
    };
    match target {
        Target::Tcp { host, port } => channels.open(
            transport,
            &ChannelType::DirectTcpip {
                host: host.as_bytes(),
                port: u32::from(*port),
                originator_address: origin_host.as_bytes(),
                originator_port: origin_port,
            },
        ),
        Target::Unix(path) => channels.open(
            transport,
            &ChannelType::DirectStreamlocal {
                socket_path: path.as_os_str().as_encoded_bytes(),
                reserved: b"",
                reserved_uint: 0,
            },
        ),
    }
}

/// The signal numbers of `exit-signal` names (RFC 4254 section 6.10), for 128 + n.
fn signal_number(name: &[u8]) -> u8 {
    match name {
        b"HUP" => 1,
        b"INT" => 2,
        b"QUIT" => 3,
        b"ILL" => 4,
        b"ABRT" => 6,
        b"FPE" => 8,
        b"KILL" => 9,
        b"USR1" => 10,
        b"SEGV" => 11,
        b"USR2" => 12,
        b"PIPE" => 13,
        b"ALRM" => 14,
        b"TERM" => 15,
        _ => 127,
    }
}

impl Role for ClientRole {
    fn start(&mut self, core: &mut Core, ctx: &mut Ctx<'_>) -> Result<(), End> {
        self.open_main(core, ctx)
    }

    fn on_message(
        &mut self,
        core: &mut Core,
        _ctx: &mut Ctx<'_>,
        _payload: &[u8],
        seq: u32,
    ) -> Result<(), End> {
        Ok(core.transport.send_unimplemented(seq)?)
    }

    fn on_channel_event(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        event: ChannelEvent,
    ) -> Result<(), End> {
        match event {
            ChannelEvent::OpenRequest { channel, kind } => {
                // Nothing was asked of the server that would open channels to us.
                let name = match kind {
                    OwnedChannelType::ForwardedTcpip { .. } => "forwarded-tcpip",
                    OwnedChannelType::X11 { .. } => "x11",
                    OwnedChannelType::AuthAgent => "auth-agent@openssh.com",
                    _ => "this channel type",
                };
                log::debug!("refusing {name} channel {channel} opened by the server");
                if let Some(channels) = core.channels.as_mut() {
                    channels.reject(
                        &mut core.transport,
                        channel,
                        OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                        "not requested",
                    )?;
                }
                Ok(())
            }
            ChannelEvent::Opened { channel } => {
                if Some(channel) == self.main_channel {
                    self.start_session(core, channel)?;
                }
                Ok(())
            }
            ChannelEvent::OpenFailed {
                channel,
                reason,
                description,
            } => {
                let line = format!(
                    "channel {channel}: open failed: {}: {}",
                    open_failure_text(reason),
                    crate::terminal_text::safe(&description, false)
                );
                if let Some(i) = core.bindings.remove(&channel)
                    && let Some(mut sock) = ctx.socks.try_remove(i)
                {
                    sock.ep.deregister(ctx.registry);
                }
                if Some(channel) == self.main_channel {
                    let line = match self.setup.session {
                        SessionKind::Stdio(_) => format!("{line}\nstdio forwarding failed"),
                        _ => line,
                    };
                    return Err(self.fail(core, line));
                }
                eprintln!("{line}");
                Ok(())
            }
            ChannelEvent::RequestResult { channel, ok } => {
                if Some(channel) != self.main_channel {
                    return Ok(());
                }
                let what = self.replies.pop_front().unwrap_or("channel");
                // A refused pty-req is not fatal; ssh says so and goes on. A refused
                // command is.
                if !ok {
                    let line = format!("{what} request failed on channel {channel}");
                    if what == "PTY allocation" {
                        eprintln!("{line}");
                    } else {
                        return Err(self.fail(core, line));
                    }
                }
                Ok(())
            }
            ChannelEvent::Request {
                channel,
                request,
                want_reply,
            } => {
                if Some(channel) == self.main_channel {
                    match request {
                        OwnedRequest::ExitStatus { status } => {
                            self.outcome.borrow_mut().exit_status =
                                Some(u8::try_from(status & 0xff).unwrap_or(255));
                        }
                        OwnedRequest::ExitSignal {
                            signal, message, ..
                        } => {
                            let n = signal_number(&signal);
                            let text = String::from_utf8_lossy(&message);
                            log::debug!(
                                "remote command killed by signal {}{}",
                                String::from_utf8_lossy(&signal),
                                if text.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {text}")
                                }
                            );
                            self.outcome.borrow_mut().exit_status = Some(128 + n);
                        }
                        _ => {}
                    }
                }
                if want_reply && let Some(channels) = core.channels.as_mut() {
                    channels.reply(&mut core.transport, channel, false)?;
                }
                Ok(())
            }
            ChannelEvent::GlobalRequest { want_reply, .. } => {
                // hostkeys-00@openssh.com and anything else: nothing to do.
                if want_reply && let Some(channels) = core.channels.as_mut() {
                    channels.reply_global(&mut core.transport, false, None)?;
                }
                Ok(())
            }
            ChannelEvent::Closed { channel } if Some(channel) == self.main_channel => {
                self.done = true;
                core.transport
                    .disconnect(DisconnectReason::BY_APPLICATION, "disconnected by user");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn on_transport_event(&mut self, _core: &mut Core, event: TransportEvent) -> Result<(), End> {
        if let TransportEvent::KeysReady { rekey: true, .. } = event {
            log::debug!("rekeyed with {}", self.setup.host);
        }
        Ok(())
    }

    fn next_timer(&self) -> Option<Instant> {
        self.alive.as_ref().map(|a| a.next)
    }

    fn on_timer(&mut self, core: &mut Core, ctx: &mut Ctx<'_>) -> Result<(), End> {
        self.keepalive(core, ctx.now)
    }

    fn on_forward_accepted(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        accepted: Accepted,
        target: &Target,
    ) -> Result<(), End> {
        let Some(channels) = core.channels.as_mut() else {
            return Ok(());
        };
        let channel = match open_target(channels, &mut core.transport, target, accepted.peer) {
            Ok(c) => c,
            // The channel table is full: this connection is refused, others go on.
            Err(ssh_proto::Error::Misuse(why)) => {
                log::warn!("local connection for {target} dropped: {why}");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let origin = accepted
            .peer
            .map_or_else(|| "unix socket".to_owned(), |a| a.to_string());
        let label = format!("forward from {origin} to {target}");
        log::debug!("channel {channel}: {label}");
        let sock = Sock::new(
            Endpoint::accepted(accepted.socket),
            ctx.index,
            channel,
            Phase::Opening,
            label,
        );
        match ctx.add_sock(sock) {
            Ok(i) => {
                core.bindings.insert(channel, i);
            }
            Err(e) => {
                log::warn!("local connection for {target}: {e}");
            }
        }
        Ok(())
    }

    /// A channel request takes no window (RFC 4254 section 5.2 counts only data), so
    /// a resize goes out whatever the session's window is; one that comes before
    /// `pty-req` is sent right after it.
    fn on_window_size(&mut self, core: &mut Core) -> Result<(), End> {
        let SessionKind::Session { pty: Some(_), .. } = &self.setup.session else {
            return Ok(());
        };
        let (Some(channel), true) = (self.main_channel, self.pty_requested) else {
            self.resized_early = true;
            return Ok(());
        };
        if let Some(channels) = core.channels.as_mut() {
            send_window_change(channels, &mut core.transport, channel)?;
        }
        Ok(())
    }

    /// A session ends at once, as ssh's does on SIGHUP, SIGINT or SIGTERM: its user
    /// asked it to stop, and an interactive one would otherwise hold the terminal in raw
    /// mode through the drain, or for all of it if the shell never exits. The end is
    /// quiet and, with no exit status from the server, the status is 255. Forwards, `-N`
    /// and `-W` keep the drain: connections under way get the time to finish.
    fn on_stop(&mut self, core: &mut Core) -> Result<(), End> {
        if !matches!(self.setup.session, SessionKind::Session { .. }) {
            return Ok(());
        }
        self.done = true;
        core.transport
            .disconnect(DisconnectReason::BY_APPLICATION, "disconnected by user");
        Err(End::Local("stopped by a signal".to_owned()))
    }

    fn is_authenticated(&self) -> bool {
        true
    }

    fn on_end(&mut self, core: &mut Core, end: &End) {
        let mut outcome = self.outcome.borrow_mut();
        outcome.stats = Some(core.transport.stats());
        if self.done || outcome.error.is_some() {
            return;
        }
        let host = &self.setup.host;
        let line = match end {
            End::Eof => format!("Connection to {host} closed by remote host."),
            End::Protocol(ssh_proto::Error::PeerDisconnected {
                reason,
                description,
            }) => format!(
                "Received disconnect from {} port {}:{}: {}",
                core.peer.ip(),
                core.peer.port(),
                reason.0,
                crate::terminal_text::safe(description, false)
            ),
            End::Local(why) => why.clone(),
            // As ssh words it; the OS's text without Rust's "(os error N)".
            End::Io(e) => {
                let text = e.to_string();
                let text = text.split(" (os error").next().unwrap_or(&text);
                format!("Read from remote host {host}: {text}")
            }
            other => format!("Connection to {host}: {other}"),
        };
        outcome.error = Some(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_waits_double_from_one_second_up_to_thirty() {
        let mut delay = RECONNECT_FIRST;
        let mut waits = vec![delay.as_secs()];
        for _ in 0..7 {
            delay = next_delay(delay);
            waits.push(delay.as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
