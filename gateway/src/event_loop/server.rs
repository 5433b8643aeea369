//! The forwarding server's side of a connection: authentication against an
//! `authorized_keys` file, then `direct-tcpip` to permitted destinations and, when
//! allowed, `exec`. Everything else is refused.
//!
//! A `direct-tcpip` destination written as an address is connected to at once; a name is
//! looked up on the loop's lookup threads while the channel waits unconfirmed, so a slow
//! resolver holds up that channel alone. Every address the name has is tried in turn, as
//! sshd does, within the one connect timeout.
//!
//! Log lines are one per event, `key=value` after a short verb, so that grep and
//! journald handle them: `connect`, `auth`, `channel`, `close`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::Registry;
use ssh_proto::auth::msg::Method;
use ssh_proto::auth::server::{AuthLimits, Outcome, ServerAuth, ServerAuthEvent};
use ssh_proto::authorized_keys::{AuthorizedKeys, ClientInfo, KeyOptions, LookupError};
use ssh_proto::config::Config;
use ssh_proto::connection::channels::{
    Channels, ChannelsConfig, Event as ChannelEvent, OwnedChannelType, OwnedGlobalRequest,
    OwnedRequest,
};
use ssh_proto::connection::msg::{ChannelRequestBody, ExitSignal, OpenFailureReason};
use ssh_proto::connection::policy::{Grants, ORIGINAL_COMMAND_ENV, Refusal, ServerPolicy, Verdict};
use ssh_proto::hostkey::PublicKey;
use ssh_proto::role::Role as SshRole;
use ssh_proto::transport::{Event as TransportEvent, Transport};

use super::conn::{Core, Ctx, End, Role};
use super::dial::{Dial, ip_literal};
use super::endpoint::{Endpoint, Io, Pipe, Socket, Want};
use super::listen::Accepted;
use super::resolve::Lookups;
use super::sock::{Phase, Sock};
use crate::rng::OsRng;

/// How often a session whose command may have exited is looked at, besides SIGCHLD.
const CHILD_POLL: Duration = Duration::from_millis(50);

/// The forwarding server's settings, shared by every connection.
#[derive(Debug)]
pub struct Settings {
    /// Transport settings with the host keys in them.
    pub config: Arc<Config>,
    pub authorized_keys: AuthorizedKeys,
    /// What clients may do; each login's key options narrow it further. An allowed
    /// `exec` runs with `sh -c` as the serving user.
    pub policy: Arc<ServerPolicy>,
    /// Unauthenticated connections at most; more are closed as they arrive.
    pub max_startups: usize,
    /// How long an outgoing connect for `direct-tcpip` may take, from the open to the
    /// connected socket: the name lookup and every address tried count against it.
    pub connect_timeout: Duration,
}

/// Who logged in.
#[derive(Debug)]
struct Login {
    user: String,
    grants: Grants,
}

/// A session channel's command.
#[derive(Debug)]
struct Session {
    child: Option<Child>,
    /// The command exited with this status; sent once its output is all out.
    exit: Option<std::process::ExitStatus>,
}

/// The server role of one connection.
pub(crate) struct ServerRole {
    settings: Arc<Settings>,
    peer: SocketAddr,
    auth: ServerAuth<KeyOptions>,
    /// The key that last verified, for the log line of the login.
    last_key: Option<String>,
    login: Option<Login>,
    sessions: HashMap<u32, Session>,
    poll_children_at: Option<Instant>,
    /// Where destination names are looked up.
    lookups: Lookups,
}

impl std::fmt::Debug for ServerRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerRole")
            .field("peer", &self.peer)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl super::EventLoop {
    /// Takes one SSH connection from a server listener, unless too many are still
    /// authenticating.
    pub(crate) fn accept_ssh(&mut self, accepted: Accepted, settings: &Arc<Settings>) {
        let Socket::Tcp(stream) = accepted.socket else {
            return;
        };
        let peer = accepted
            .peer
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        if self.startups >= settings.max_startups {
            log::warn!(
                "refuse from={peer} reason=\"too many unauthenticated connections (max-startups {})\"",
                settings.max_startups
            );
            return;
        }
        log::info!("connect from={peer}");
        let transport = Transport::new(
            Arc::clone(&settings.config),
            SshRole::Server,
            Box::new(OsRng),
            self.now,
        );
        let core = Core::new(stream, peer, transport);
        let role = ServerRole {
            settings: Arc::clone(settings),
            peer,
            auth: ServerAuth::new(settings.config.provider, AuthLimits::default()),
            last_key: None,
            login: None,
            sessions: HashMap::new(),
            poll_children_at: None,
            lookups: self.resolver.lookups(),
        };
        if let Err(e) = self.add_conn(core, Box::new(role), true) {
            log::warn!(
                "close from={peer} reason=\"{}\"",
                e.to_string().escape_debug()
            );
        }
    }
}

impl ServerRole {
    /// The logged-in user's name as a log line shows it (see [`log_value`]).
    fn user(&self) -> String {
        self.login
            .as_ref()
            .map_or_else(|| "-".to_owned(), |l| log_value(l.user.as_bytes()))
    }

    fn lookup(&self, key: &PublicKey) -> Result<KeyOptions, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let ip: IpAddr = self.peer.ip();
        let client = ClientInfo::new(ip, None, now);
        match self.settings.authorized_keys.lookup(key, &client) {
            Ok(entry) => Ok(entry.options.clone()),
            Err(LookupError::NotListed) => Err("key not listed".to_owned()),
            Err(LookupError::Refused(_)) => Err("key refused by its options".to_owned()),
        }
    }

    fn decide_auth(&mut self, core: &mut Core) -> Result<(), End> {
        while let Some(event) = self.auth.poll_event() {
            let t = &mut core.transport;
            match event {
                ServerAuthEvent::PublicKeyQuery { key, .. } => {
                    let ok = self.lookup(&key).is_ok();
                    self.auth.answer_query(t, ok)?;
                }
                ServerAuthEvent::PublicKeyVerified { user, key, alg } => {
                    let fingerprint = key.fingerprint_sha256(self.settings.config.provider);
                    match self.lookup(&key) {
                        Ok(options) => {
                            self.last_key = Some(format!("{} {fingerprint}", alg.name()));
                            self.auth.accept(t, Outcome::Success(options))?;
                        }
                        Err(why) => {
                            log::info!(
                                "auth from={} user={} method=publickey key=\"{} {fingerprint}\" result=refused reason=\"{}\"",
                                self.peer,
                                log_value(user.as_bytes()),
                                alg.name(),
                                why.escape_debug()
                            );
                            self.auth.reject(t)?;
                        }
                    }
                }
                ServerAuthEvent::Password { .. }
                | ServerAuthEvent::KeyboardInteractive { .. }
                | ServerAuthEvent::InfoResponse { .. } => self.auth.reject(t)?,
                ServerAuthEvent::Authenticated {
                    user,
                    method,
                    permissions,
                } => {
                    log::info!(
                        "auth from={} user={} method={} key=\"{}\" result=accepted",
                        self.peer,
                        log_value(user.as_bytes()),
                        method.name(),
                        self.last_key.as_deref().unwrap_or("-")
                    );
                    debug_assert_eq!(method, Method::PublicKey);
                    self.login = Some(Login {
                        user,
                        grants: Grants::new(Arc::clone(&self.settings.policy), permissions),
                    });
                    core.channels = Some(Channels::new(ChannelsConfig::default())?);
                }
            }
        }
        Ok(())
    }

    fn open_direct(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        channel: u32,
        host: &[u8],
        port: u32,
        origin: &str,
    ) -> Result<(), End> {
        let shown = log_value(host);
        let host = String::from_utf8_lossy(host).into_owned();
        let refuse = |core: &mut Core, reason: OpenFailureReason, why: &str| -> Result<(), End> {
            log::info!(
                "channel from={} user={} type=direct-tcpip to={shown}:{port} origin={origin} result=refused reason=\"{why}\"",
                self.peer,
                self.user()
            );
            if let Some(channels) = core.channels.as_mut() {
                channels.reject(&mut core.transport, channel, reason, why)?;
            }
            Ok(())
        };
        // The policy refused ports above 65535 already.
        let Ok(port16) = u16::try_from(port) else {
            return refuse(
                core,
                OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                "bad port",
            );
        };
        let deadline = ctx.now + self.settings.connect_timeout;
        let label = format!("direct-tcpip to={shown}:{port} origin={origin}");
        // The endpoint gets its socket when a connect starts.
        let no_socket = Endpoint::new(Io::Pipes {
            up: [None, None],
            down: [None, None],
        });
        let mut sock = Sock::new(
            no_socket,
            ctx.index,
            channel,
            Phase::Resolving { deadline },
            label,
        );
        let literal = ip_literal(&host);
        if let Some(ip) = literal {
            let addrs = vec![SocketAddr::new(ip, port16)];
            sock.dial = Some(Box::new(Dial::new(addrs, deadline)));
        }
        let i = match ctx.add_sock(sock) {
            Ok(i) => i,
            Err(e) => return refuse(core, OpenFailureReason::RESOURCE_SHORTAGE, &e.to_string()),
        };
        if literal.is_none() {
            match self.lookups.submit(&host, port16, i) {
                Ok(ticket) => {
                    if let Some(sock) = ctx.socks.get_mut(i) {
                        sock.lookup = Some(ticket);
                    }
                    ctx.new_timers.push((deadline, i));
                }
                Err(why) => {
                    ctx.socks.remove(i);
                    return refuse(core, OpenFailureReason::RESOURCE_SHORTAGE, &why.to_string());
                }
            }
        }
        core.bindings.insert(channel, i);
        // An address starts connecting now; a name when its lookup answers.
        self.on_connect_ready(core, ctx, i)
    }

    /// The outgoing connect of endpoint `i` succeeded: the channel is confirmed and data
    /// starts to flow.
    fn connected(&mut self, core: &mut Core, ctx: &mut Ctx<'_>, i: usize) -> Result<(), End> {
        let Some(sock) = ctx.socks.get_mut(i) else {
            return Ok(());
        };
        sock.phase = Phase::Open;
        if let Some(addr) = sock.dial.take().and_then(|d| d.trying()) {
            log::debug!("{}: connected to {addr}", sock.label);
        }
        log::info!(
            "channel from={} user={} type={} result=accepted",
            self.peer,
            self.user(),
            sock.label
        );
        if let Some(channels) = core.channels.as_mut() {
            channels.accept(&mut core.transport, sock.channel)?;
        }
        core.queue(i, sock);
        core.sock_writable(ctx, i)
    }

    /// Opens a channel the policy allowed.
    fn open_allowed(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        channel: u32,
        kind: OwnedChannelType,
    ) -> Result<(), End> {
        match kind {
            OwnedChannelType::DirectTcpip {
                host,
                port,
                originator,
                originator_port,
            } => {
                let origin = format!("{}:{originator_port}", log_value(&originator));
                self.open_direct(core, ctx, channel, &host, port, &origin)
            }
            OwnedChannelType::Session => {
                self.sessions.insert(
                    channel,
                    Session {
                        child: None,
                        exit: None,
                    },
                );
                log::info!(
                    "channel from={} user={} type=session channel={channel} result=accepted",
                    self.peer,
                    self.user()
                );
                if let Some(channels) = core.channels.as_mut() {
                    channels.accept(&mut core.transport, channel)?;
                }
                Ok(())
            }
            other => {
                log::info!(
                    "channel from={} user={} type={} result=refused reason=\"not offered by this server\"",
                    self.peer,
                    self.user(),
                    channel_type_name(&other)
                );
                if let Some(channels) = core.channels.as_mut() {
                    channels.reject(
                        &mut core.transport,
                        channel,
                        OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                        "open failed",
                    )?;
                }
                Ok(())
            }
        }
    }

    fn on_request(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        channel: u32,
        request: OwnedRequest,
        want_reply: bool,
    ) -> Result<(), End> {
        let verdict = match &self.login {
            Some(login) => login.grants.check_request(&request),
            None => Verdict::Refuse(Refusal::Server),
        };
        let is_session = self.sessions.contains_key(&channel);
        let ok = match (verdict, &request) {
            (Verdict::Refuse(why), _) => {
                if why != Refusal::Keepalive {
                    log::info!(
                        "request from={} user={} channel={channel} type={} result=refused reason=\"{why}\"",
                        self.peer,
                        self.user(),
                        request_name(&request)
                    );
                }
                false
            }
            (Verdict::Allow, OwnedRequest::Exec { command }) if is_session => {
                let command = String::from_utf8_lossy(command).into_owned();
                self.exec(core, ctx, channel, &command, None)
            }
            (
                Verdict::RunForced {
                    command,
                    original_command,
                },
                _,
            ) if is_session => self.exec(core, ctx, channel, &command, original_command),
            // Window changes and signals for a command without a terminal: nothing to do.
            (Verdict::Allow, OwnedRequest::WindowChange(_) | OwnedRequest::Signal { .. }) => true,
            _ => {
                log::info!(
                    "request from={} user={} channel={channel} type={} result=refused reason=\"not offered by this server\"",
                    self.peer,
                    self.user(),
                    request_name(&request)
                );
                false
            }
        };
        if want_reply && let Some(channels) = core.channels.as_mut() {
            channels.reply(&mut core.transport, channel, ok)?;
        }
        Ok(())
    }

    /// Runs `sh -c COMMAND` with its streams bound to the session channel.
    /// With `original`, `run` is the key's forced command and `original` what the client
    /// asked for.
    fn exec(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        channel: u32,
        run: &str,
        original: Option<Vec<u8>>,
    ) -> bool {
        let refused = |why: &str| {
            log::info!(
                "request from={} user={} channel={channel} type=exec command={run:?} result=refused reason=\"{why}\"",
                self.peer,
                self.user()
            );
            false
        };
        if self
            .sessions
            .get(&channel)
            .is_some_and(|s| s.child.is_some())
        {
            return refused("session already has a command");
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(run)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(original) = &original {
            cmd.env(
                ORIGINAL_COMMAND_ENV,
                String::from_utf8_lossy(original).as_ref(),
            );
        }
        let spawned = cmd.spawn().and_then(|mut child| {
            let pipes = take_pipes(&mut child)?;
            Ok((child, pipes))
        });
        let (child, (stdin, stdout, stderr)) = match spawned {
            Ok(x) => x,
            Err(e) => return refused(&format!("spawn: {e}")),
        };
        let io = Io::Pipes {
            up: [Some(stdout), Some(stderr)],
            down: [Some(stdin), None],
        };
        let mut sock = Sock::new(
            Endpoint::new(io),
            ctx.index,
            channel,
            Phase::Open,
            format!("exec {run:?}"),
        );
        sock.hold_close = true;
        match ctx.add_sock(sock) {
            Ok(i) => {
                core.bindings.insert(channel, i);
                if let Some(sock) = ctx.socks.get_mut(i) {
                    core.queue(i, sock);
                }
            }
            Err(e) => return refused(&format!("register: {e}")),
        }
        log::info!(
            "request from={} user={} channel={channel} type=exec command={run:?} result=accepted",
            self.peer,
            self.user()
        );
        if let Some(session) = self.sessions.get_mut(&channel) {
            session.child = Some(child);
        }
        self.poll_children_at = Some(ctx.now + CHILD_POLL);
        true
    }

    /// Sends the exit status of every session whose command exited and whose output is
    /// all out, then closes its channel.
    fn reap(&mut self, core: &mut Core, ctx: &mut Ctx<'_>) -> Result<(), End> {
        let mut running = false;
        for (&channel, session) in &mut self.sessions {
            if session.exit.is_none()
                && let Some(child) = session.child.as_mut()
            {
                match child.try_wait() {
                    Ok(Some(status)) => session.exit = Some(status),
                    Ok(None) => running = true,
                    Err(_) => running = true,
                }
            }
            let Some(status) = session.exit else {
                continue;
            };
            let Some(&i) = core.bindings.get(&channel) else {
                continue;
            };
            let Some(sock) = ctx.socks.get_mut(i) else {
                continue;
            };
            if !sock.hold_close {
                continue;
            }
            if !sock.up_done() || !sock.eof_sent {
                running = true;
                continue;
            }
            sock.hold_close = false;
            if let Some(channels) = core.channels.as_mut() {
                let body = exit_body(status);
                channels.request(&mut core.transport, channel, &body, false)?;
            }
            core.close_channel(ctx, i)?;
        }
        self.poll_children_at = running.then(|| ctx.now + CHILD_POLL);
        Ok(())
    }
}

/// Starts a non-blocking connect to the next address of the endpoint's dial, in a new
/// socket that replaces the endpoint's descriptor, and sets the timer at which that
/// address is given up. The last error when no address is left to try.
fn start_connect(
    registry: &Registry,
    sock: &mut Sock,
    index: usize,
    now: Instant,
    timers: &mut Vec<(Instant, usize)>,
) -> Result<(), String> {
    let Some(dial) = sock.dial.as_mut() else {
        return Err("no address to connect to".to_owned());
    };
    loop {
        let attempt = dial.start(now, mio::net::TcpStream::connect)?;
        log::debug!("{}: connecting to {}", sock.label, attempt.addr);
        let _ = attempt.conn.set_nodelay(true);
        sock.ep.deregister(registry);
        sock.ep = Endpoint::socket(Socket::Tcp(attempt.conn));
        if let Err(e) = sock.ep.register(
            registry,
            super::token(super::Kind::Sock, index),
            Want::CONNECT,
        ) {
            dial.failed(e.to_string());
            continue;
        }
        sock.phase = Phase::Connecting {
            deadline: attempt.give_up,
        };
        timers.push((attempt.give_up, index));
        return Ok(());
    }
}

/// The exit-status (or exit-signal) request for a finished command (RFC 4254 section
/// 6.10).
fn exit_body(status: std::process::ExitStatus) -> ChannelRequestBody<'static> {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return ChannelRequestBody::ExitStatus {
            status: u32::try_from(code).unwrap_or(255),
        };
    }
    let name: &'static [u8] = match status.signal() {
        Some(1) => b"HUP",
        Some(2) => b"INT",
        Some(3) => b"QUIT",
        Some(6) => b"ABRT",
        Some(9) => b"KILL",
        Some(13) => b"PIPE",
        Some(14) => b"ALRM",
        Some(15) => b"TERM",
        Some(10) => b"USR1",
        Some(12) => b"USR2",
        Some(11) => b"SEGV",
        _ => b"KILL",
    };
    ChannelRequestBody::ExitSignal(ExitSignal {
        signal: name,
        core_dumped: status.core_dumped(),
        message: b"",
        language: b"",
    })
}

fn take_pipes(child: &mut Child) -> io::Result<(Pipe, Pipe, Pipe)> {
    let missing = || io::Error::other("child pipe missing");
    let stdin = OwnedFd::from(child.stdin.take().ok_or_else(missing)?);
    let stdout = OwnedFd::from(child.stdout.take().ok_or_else(missing)?);
    let stderr = OwnedFd::from(child.stderr.take().ok_or_else(missing)?);
    Ok((
        Pipe::new(stdin, false)?,
        Pipe::new(stdout, false)?,
        Pipe::new(stderr, false)?,
    ))
}

fn request_name(request: &OwnedRequest) -> String {
    match request {
        OwnedRequest::PtyReq { .. } => "pty-req".to_owned(),
        OwnedRequest::Env { .. } => "env".to_owned(),
        OwnedRequest::Shell => "shell".to_owned(),
        OwnedRequest::Exec { .. } => "exec".to_owned(),
        OwnedRequest::Subsystem { .. } => "subsystem".to_owned(),
        OwnedRequest::WindowChange(_) => "window-change".to_owned(),
        OwnedRequest::Signal { .. } => "signal".to_owned(),
        OwnedRequest::Other { name, .. } => log_value(name),
        other => format!("{other:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap_or("other")
            .to_owned(),
    }
}

/// ` to=HOST:PORT` for a refused `direct-tcpip` open, so the log says which destination
/// was refused. The client chose the host, and a malformed one is refused here too, so it
/// goes through [`log_value`].
fn refused_destination(kind: &OwnedChannelType) -> String {
    match kind {
        OwnedChannelType::DirectTcpip { host, port, .. } => {
            format!(" to={}:{port}", log_value(host))
        }
        _ => String::new(),
    }
}

/// The longest value a peer chose that a log line shows, in characters.
const LOG_VALUE_MAX: usize = 128;

/// Bytes the client chose (a host name, an originator address, a channel or request
/// type), made safe for a `key=value` log line: control characters, backslashes and
/// quotes escaped, cut to [`LOG_VALUE_MAX`] characters, and quoted when a space or `=`
/// could otherwise pass for another field. Nothing the client sends can start a line of
/// its own or forge a field.
fn log_value(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(LOG_VALUE_MAX)
        .collect::<String>()
        .escape_debug()
        .collect();
    if text.chars().count() > LOG_VALUE_MAX {
        out.push_str("...");
    }
    if out.is_empty() || out.contains([' ', '=', '"']) {
        format!("\"{out}\"")
    } else {
        out
    }
}

fn channel_type_name(kind: &OwnedChannelType) -> String {
    match kind {
        OwnedChannelType::Session => "session".to_owned(),
        OwnedChannelType::DirectTcpip { .. } => "direct-tcpip".to_owned(),
        OwnedChannelType::ForwardedTcpip { .. } => "forwarded-tcpip".to_owned(),
        OwnedChannelType::DirectStreamlocal { .. } => "direct-streamlocal@openssh.com".to_owned(),
        OwnedChannelType::ForwardedStreamlocal { .. } => {
            "forwarded-streamlocal@openssh.com".to_owned()
        }
        OwnedChannelType::X11 { .. } => "x11".to_owned(),
        OwnedChannelType::AuthAgent => "auth-agent@openssh.com".to_owned(),
        OwnedChannelType::Other { name, .. } => log_value(name),
    }
}

impl Role for ServerRole {
    fn on_message(
        &mut self,
        core: &mut Core,
        _ctx: &mut Ctx<'_>,
        payload: &[u8],
        seq: u32,
    ) -> Result<(), End> {
        match payload.first() {
            Some(5 | 50..=79) => {
                self.auth.handle(&mut core.transport, payload)?;
                self.decide_auth(core)
            }
            _ => Ok(core.transport.send_unimplemented(seq)?),
        }
    }

    fn on_channel_event(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        event: ChannelEvent,
    ) -> Result<(), End> {
        match event {
            ChannelEvent::OpenRequest { channel, kind } => {
                let allowed = match &self.login {
                    Some(login) => login.grants.check_open(&kind),
                    None => Err(Refusal::Server),
                };
                if let Err(why) = allowed {
                    log::info!(
                        "channel from={} user={} type={}{} result=refused reason=\"{why}\"",
                        self.peer,
                        self.user(),
                        channel_type_name(&kind),
                        refused_destination(&kind)
                    );
                    if let Some(channels) = core.channels.as_mut() {
                        channels.reject(
                            &mut core.transport,
                            channel,
                            why.reason(),
                            why.description(),
                        )?;
                    }
                    return Ok(());
                }
                self.open_allowed(core, ctx, channel, kind)
            }
            ChannelEvent::Request {
                channel,
                request,
                want_reply,
            } => self.on_request(core, ctx, channel, request, want_reply),
            ChannelEvent::GlobalRequest {
                request,
                want_reply,
            } => {
                // Nothing global is offered here (no remote forwards): every allowed
                // request is one that only changes what the policy remembers.
                let ok = self
                    .login
                    .as_mut()
                    .is_some_and(|l| l.grants.check_global(&request).is_ok());
                if want_reply && let Some(channels) = core.channels.as_mut() {
                    let offered = ok
                        && !matches!(
                            request,
                            OwnedGlobalRequest::TcpipForward { .. }
                                | OwnedGlobalRequest::StreamlocalForward { .. }
                        );
                    channels.reply_global(&mut core.transport, offered, None)?;
                }
                Ok(())
            }
            ChannelEvent::Closed { channel } => {
                if let Some(i) = core.bindings.get(&channel).copied() {
                    log::debug!("channel {channel} closed (endpoint {i})");
                }
                if let Some(mut session) = self.sessions.remove(&channel)
                    && let Some(mut child) = session.child.take()
                    && session.exit.is_none()
                    && matches!(child.try_wait(), Ok(None))
                {
                    // The client went away first: the command goes too, as with sshd's
                    // SIGHUP on a closed session.
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Ok(())
            }
            ChannelEvent::Eof { .. } => self.reap(core, ctx),
            _ => Ok(()),
        }
    }

    fn on_transport_event(&mut self, _core: &mut Core, event: TransportEvent) -> Result<(), End> {
        if let TransportEvent::KeysReady { rekey: true, .. } = event {
            log::debug!("rekey from={}", self.peer);
        }
        Ok(())
    }

    fn next_timer(&self) -> Option<Instant> {
        self.poll_children_at
    }

    fn on_timer(&mut self, core: &mut Core, ctx: &mut Ctx<'_>) -> Result<(), End> {
        self.reap(core, ctx)
    }

    fn on_child(&mut self, core: &mut Core, ctx: &mut Ctx<'_>) -> Result<(), End> {
        self.reap(core, ctx)
    }

    /// Moves an outgoing connect on: a lookup that answered starts connecting to its
    /// first address, an address that failed or ran out of time gives way to the next,
    /// and a connected socket confirms the channel. When nothing is left to try, the
    /// channel is refused as CONNECT_FAILED with the last error.
    fn on_connect_ready(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        i: usize,
    ) -> Result<(), End> {
        let Some(sock) = ctx.socks.get_mut(i) else {
            return Ok(());
        };
        let moved = match sock.phase {
            Phase::Resolving { .. } if sock.dial.is_some() => {
                start_connect(ctx.registry, sock, i, ctx.now, &mut ctx.new_timers)
            }
            Phase::Resolving { deadline } if ctx.now >= deadline => {
                Err("name lookup timed out".to_owned())
            }
            Phase::Connecting { deadline } => {
                let failure = match sock.ep.take_connect_error() {
                    Ok(Some(e)) | Err(e) => e.to_string(),
                    Ok(None) if sock.ep.is_connected() => return self.connected(core, ctx, i),
                    Ok(None) if ctx.now >= deadline => "connect timed out".to_owned(),
                    Ok(None) => return Ok(()),
                };
                match sock.dial.as_mut() {
                    Some(dial) => {
                        log::debug!(
                            "{}: connect to {} failed: {failure}",
                            sock.label,
                            dial.trying()
                                .map_or_else(|| "-".to_owned(), |a| a.to_string())
                        );
                        dial.failed(failure);
                        start_connect(ctx.registry, sock, i, ctx.now, &mut ctx.new_timers)
                    }
                    None => Err(failure),
                }
            }
            Phase::Resolving { .. } | Phase::Opening | Phase::Open | Phase::Orphan => Ok(()),
        };
        let Err(why) = moved else {
            return Ok(());
        };
        log::info!(
            "channel from={} user={} type={} result=failed reason=\"{why}\"",
            self.peer,
            self.user(),
            sock.label
        );
        let channel = sock.channel;
        let mut sock = ctx.socks.remove(i);
        sock.ep.deregister(ctx.registry);
        core.bindings.remove(&channel);
        if let Some(channels) = core.channels.as_mut() {
            channels.reject(
                &mut core.transport,
                channel,
                OpenFailureReason::CONNECT_FAILED,
                &why,
            )?;
        }
        Ok(())
    }

    fn is_authenticated(&self) -> bool {
        self.login.is_some()
    }

    fn on_end(&mut self, core: &mut Core, end: &End) {
        let stats = core.transport.stats();
        log::info!(
            "close from={} user={} bytes_in={} bytes_out={} reason=\"{}\"",
            self.peer,
            self.user(),
            stats.bytes_received,
            stats.bytes_sent,
            // A peer's DISCONNECT carries a description of its choosing.
            end.to_string().escape_debug()
        );
        for session in self.sessions.values_mut() {
            if let Some(child) = session.child.as_mut()
                && matches!(child.try_wait(), Ok(None))
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::log_value;

    #[test]
    fn peer_chosen_values_cannot_forge_lines_or_fields() {
        assert_eq!(log_value(b"db.internal"), "db.internal");
        assert_eq!(
            log_value(b"x\nchannel from=1.2.3.4 result=accepted"),
            "\"x\\nchannel from=1.2.3.4 result=accepted\""
        );
        assert_eq!(log_value(b"a b"), "\"a b\"");
        assert_eq!(log_value(b"\"quoted\""), "\"\\\"quoted\\\"\"");
        assert_eq!(log_value(b"\x1b[2J"), "\\u{1b}[2J");
        assert_eq!(log_value(b""), "\"\"");
        let long = log_value(&[b'a'; 1000]);
        assert_eq!(long.len(), super::LOG_VALUE_MAX + 3);
        assert!(!log_value(b"\xff\xfe").contains('\n'));
    }
}
