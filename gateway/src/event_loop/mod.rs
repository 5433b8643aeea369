//! The event loop: one thread drives many SSH connections, listeners and forwarded
//! endpoints with mio.
//!
//! Everything lives in slabs addressed by the token it was registered with: the kind of
//! thing in the token's low bits, its index above them. A turn of the loop waits for
//! readiness (or the next deadline), takes one `now`, records each event on what it names,
//! fires due timers, then gives every connection that has something to do one bounded
//! turn ([`conn::Core::turn`]). A connection that still has work after its turn is served
//! again on the next turn without waiting, after the others have had theirs.
//!
//! Signals arrive as readiness too (SIGINT, SIGTERM and, for the client, SIGHUP start a
//! drain, which a client's session does not wait for; SIGCHLD tells the server a child
//! may have exited, SIGWINCH tells the client the terminal was resized); the handlers
//! themselves do nothing else.
//!
//! Nothing on the loop's thread may block, and a name lookup does: the forwarding server
//! resolves destination names on a few threads of their own ([`resolve`]), and the
//! loop's waker brings each answer back to the endpoint that waits for it.

pub mod client;
mod conn;
mod dial;
mod endpoint;
pub mod listen;
#[cfg(test)]
mod lookup_tests;
pub mod resolve;
pub mod server;
mod sock;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token, Waker};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGWINCH};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use ssh_proto::msg::DisconnectReason;

use conn::{Core, Ctx, End, Role};
use dial::Dial;
use resolve::Resolve;
use sock::{Phase, Sock};

/// How long a drain after SIGINT or SIGTERM may take before every connection is cut.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

/// What a token names, in its low bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Listener = 0,
    Conn = 1,
    Sock = 2,
    Signal = 3,
    Waker = 4,
}

const KIND_BITS: u32 = 3;

fn token(kind: Kind, index: usize) -> Token {
    Token((index << KIND_BITS) | kind as usize)
}

fn untoken(token: Token) -> (Option<Kind>, usize) {
    let kind = match token.0 & ((1 << KIND_BITS) - 1) {
        0 => Some(Kind::Listener),
        1 => Some(Kind::Conn),
        2 => Some(Kind::Sock),
        3 => Some(Kind::Signal),
        4 => Some(Kind::Waker),
        _ => None,
    };
    (kind, token.0 >> KIND_BITS)
}

/// A deadline in the timer heap. Entries are not removed when a deadline moves; a stale
/// one is recognised when it fires and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(usize),
    Sock(usize),
    /// A listener stopped accepting for want of descriptors: try it again.
    Listener(usize),
    /// A reconnecting client's next attempt.
    Reconnect,
}

/// How long a listener waits after running out of descriptors before it tries again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A connection: what it shares with every role, and its role.
#[derive(Debug)]
struct Conn {
    core: Core,
    role: Box<dyn Role>,
    /// Counted among the unauthenticated connections (see `max_startups`).
    startup: bool,
    /// In the queue of connections to serve this turn.
    dirty: bool,
}

impl std::fmt::Debug for dyn Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Role")
    }
}

/// Stops a loop from another thread: it drains and returns as on SIGTERM.
#[derive(Clone, Debug)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Stopper {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// The loop. See the module documentation.
pub struct EventLoop {
    poll: Poll,
    registry: Registry,
    events: Events,
    /// The events of one poll, copied out so that handling them may borrow the loop.
    ready: Vec<(Token, bool, bool)>,
    conns: Slab<Conn>,
    socks: Slab<Sock>,
    listeners: Slab<listen::Listener>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// Connections to serve this turn, in order.
    dirty: Vec<usize>,
    signals: Option<Signals>,
    stop_flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
    /// When the drain must end, once it started.
    draining: Option<Instant>,
    /// Unauthenticated server connections now.
    startups: usize,
    /// A forwards-only client that makes its connection again when it is lost.
    reconnect: Option<client::Reconnect>,
    /// The threads that look up the server's destination names.
    resolver: resolve::Pool,
    now: Instant,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("conns", &self.conns.len())
            .field("socks", &self.socks.len())
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

/// Whether this process started with SIGHUP ignored, from the `SigIgn` mask in
/// `/proc/self/status` (bit 0 is signal 1, SIGHUP); `false` when that cannot be read.
fn hangup_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & 1 != 0)
}

impl EventLoop {
    /// A loop with its own poll. With `signals`, SIGINT and SIGTERM start a drain and
    /// SIGCHLD and SIGWINCH are watched (only one loop per process should take them).
    /// SIGHUP is left alone unless [`EventLoop::watch_hangup`] asks for it, so that a
    /// server started under `nohup` keeps running when its terminal goes.
    pub fn new(signals: bool) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let signals = if signals {
            let mut s = Signals::new([SIGINT, SIGTERM, SIGCHLD, SIGWINCH])?;
            registry.register(&mut s, token(Kind::Signal, 0), Interest::READABLE)?;
            Some(s)
        } else {
            None
        };
        let waker = Arc::new(Waker::new(&registry, token(Kind::Waker, 0))?);
        Ok(EventLoop {
            poll,
            registry,
            events: Events::with_capacity(1024),
            ready: Vec::with_capacity(1024),
            conns: Slab::new(),
            socks: Slab::new(),
            listeners: Slab::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            signals,
            stop_flag: Arc::new(AtomicBool::new(false)),
            draining: None,
            startups: 0,
            reconnect: None,
            resolver: resolve::Pool::new(Arc::clone(&waker)),
            waker,
            now: Instant::now(),
        })
    }

    /// Looks up the forwarding server's destination names with `resolver` instead of the
    /// system's, from the next lookup on. Its calls may block: they are made on the
    /// loop's lookup threads.
    pub fn set_resolver(&mut self, resolver: Arc<dyn Resolve>) {
        self.resolver.set_resolver(resolver);
    }

    /// SIGHUP starts a drain too, as for an interactive client whose terminal went away,
    /// unless the process was started with SIGHUP ignored (`nohup`), which is left as it
    /// is, as ssh does. Does nothing on a loop made without signals.
    pub fn watch_hangup(&mut self) -> io::Result<()> {
        match &self.signals {
            Some(signals) if !hangup_ignored() => signals.add_signal(SIGHUP),
            _ => Ok(()),
        }
    }

    /// A handle that stops this loop from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            flag: Arc::clone(&self.stop_flag),
            waker: Arc::clone(&self.waker),
        }
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Listeners open now.
    pub fn listeners(&self) -> usize {
        self.listeners.len()
    }

    /// Adds a connection with its role and serves it on the next turn.
    fn add_conn(&mut self, core: Core, role: Box<dyn Role>, startup: bool) -> io::Result<usize> {
        let entry = self.conns.vacant_entry();
        let index = entry.key();
        let conn = entry.insert(Conn {
            core,
            role,
            startup,
            dirty: false,
        });
        conn.core
            .register(&self.registry, token(Kind::Conn, index))?;
        if startup {
            self.startups += 1;
        }
        self.mark_dirty(index);
        Ok(index)
    }

    fn mark_dirty(&mut self, index: usize) {
        if let Some(conn) = self.conns.get_mut(index)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(index);
        }
    }

    /// Runs until there is nothing left to drive: no connection, no listener and none of
    /// the process's own output left to write, or the drain after a stop signal ended.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            if self.conns.is_empty()
                && (self.listeners.is_empty() || self.draining.is_some())
                && !self.own_output_pending()
            {
                return Ok(());
            }
            if let Some(deadline) = self.draining
                && self.now >= deadline
            {
                self.cut_all("shutting down");
                return Ok(());
            }
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.now = Instant::now();
            let mut ready = std::mem::take(&mut self.ready);
            ready.clear();
            ready.extend(self.events.iter().map(|e| {
                let closed = e.is_read_closed() || e.is_write_closed() || e.is_error();
                (
                    e.token(),
                    e.is_readable() || closed,
                    e.is_writable() || closed,
                )
            }));
            for &(tok, readable, writable) in &ready {
                self.on_event(tok, readable, writable);
            }
            self.ready = ready;
            if self.stop_flag.swap(false, Ordering::AcqRel) {
                self.start_drain();
            }
            self.fire_timers();
            self.serve_dirty();
            if self.draining.is_some() {
                self.end_idle_connections();
            }
        }
    }

    /// Whether a closed channel's data for the process's own stdout or stderr still waits
    /// to be written. A session's last output often arrives just before its channel
    /// closes and the connection ends; like ssh, the process must not exit before a slow
    /// reader of its output has taken it all.
    fn own_output_pending(&self) -> bool {
        self.socks.iter().any(|(_, sock)| {
            sock.phase == Phase::Orphan && sock.down_pending() > 0 && sock.ep.is_own_stdio()
        })
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut next = self.timers.peek().map(|Reverse((at, _))| *at);
        if let Some(deadline) = self.draining {
            next = Some(next.map_or(deadline, |t| t.min(deadline)));
        }
        next.map(|t| t.saturating_duration_since(Instant::now()))
    }

    fn on_event(&mut self, tok: Token, readable: bool, writable: bool) {
        match untoken(tok) {
            (Some(Kind::Conn), i) => {
                if let Some(conn) = self.conns.get_mut(i) {
                    conn.core.on_event(readable, writable);
                    self.mark_dirty(i);
                }
            }
            (Some(Kind::Sock), i) => self.on_sock_event(i, readable, writable),
            (Some(Kind::Listener), i) => self.accept(i),
            (Some(Kind::Signal), _) => self.on_signals(),
            (Some(Kind::Waker), _) => {
                self.take_lookups();
                self.finish_reconnect();
            }
            (None, _) => {}
        }
    }

    /// Hands each finished name lookup to the endpoint waiting for it, which starts
    /// connecting. An answer whose endpoint is gone, or whose slot now holds another
    /// endpoint (a lookup number that is not the one asked for), is dropped.
    fn take_lookups(&mut self) {
        for answer in self.resolver.take_answers() {
            let i = answer.sock;
            let Some(sock) = self.socks.get_mut(i) else {
                continue;
            };
            let Phase::Resolving { deadline } = sock.phase else {
                continue;
            };
            if sock.lookup.as_ref().is_none_or(|t| t.id() != answer.id) {
                continue;
            }
            sock.lookup = None;
            sock.dial = Some(Box::new(Dial::from_lookup(answer.result, deadline)));
            let ci = sock.conn;
            self.with_conn(ci, |core, role, ctx| role.on_connect_ready(core, ctx, i));
        }
    }

    fn on_signals(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let (mut stop, mut child, mut winch) = (false, false, false);
        for signal in signals.pending() {
            match signal {
                SIGCHLD => child = true,
                SIGWINCH => winch = true,
                _ => {
                    log::info!("stopping on signal {signal}");
                    stop = true;
                }
            }
        }
        if child || winch {
            let indexes: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
            for i in indexes {
                self.with_conn(i, |core, role, ctx| {
                    if child {
                        role.on_child(core, ctx)?;
                    }
                    if winch {
                        role.on_window_size(core)?;
                    }
                    Ok(())
                });
            }
        }
        if stop {
            self.start_drain();
        }
    }

    /// Stops accepting; connections whose role will not wait (see [`Role::on_stop`])
    /// and those with no channel left are ended, the rest get [`DRAIN_TIME`] to finish.
    fn start_drain(&mut self) {
        if self.draining.is_some() {
            return;
        }
        log::debug!("stopping: no new connections; draining for up to {DRAIN_TIME:?}");
        self.draining = Some(self.now + DRAIN_TIME);
        for (_, mut listener) in std::mem::take(&mut self.listeners) {
            listener.deregister(&self.registry);
        }
        let all: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for i in all {
            self.with_conn(i, |core, role, _| role.on_stop(core));
        }
        self.end_idle_connections();
    }

    fn end_idle_connections(&mut self) {
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.core.channels.as_ref().is_none_or(|ch| ch.is_empty()))
            .map(|(i, _)| i)
            .collect();
        for i in idle {
            if let Some(conn) = self.conns.get_mut(i) {
                conn.core
                    .transport
                    .disconnect(DisconnectReason::BY_APPLICATION, "shutting down");
            }
            self.end_conn(i, End::Local("shutting down".to_owned()));
        }
    }

    fn cut_all(&mut self, why: &str) {
        let all: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for i in all {
            if let Some(conn) = self.conns.get_mut(i) {
                conn.core
                    .transport
                    .disconnect(DisconnectReason::BY_APPLICATION, why);
            }
            self.end_conn(i, End::Local(why.to_owned()));
        }
    }

    /// Runs `f` on connection `i` with the rest of the loop lent as a [`Ctx`]; an error
    /// ends the connection.
    fn with_conn(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Core, &mut dyn Role, &mut Ctx<'_>) -> Result<(), End>,
    ) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        let mut ctx = Ctx {
            registry: &self.registry,
            socks: &mut self.socks,
            now: self.now,
            index: i,
            new_timers: Vec::new(),
        };
        let result = f(&mut conn.core, &mut *conn.role, &mut ctx);
        let new_timers = std::mem::take(&mut ctx.new_timers);
        for (at, sock) in new_timers {
            self.timers.push(Reverse((at, Timer::Sock(sock))));
        }
        if let Err(end) = result {
            self.end_conn(i, end);
            return;
        }
        self.mark_dirty(i);
    }

    fn on_sock_event(&mut self, i: usize, readable: bool, writable: bool) {
        let Some(sock) = self.socks.get_mut(i) else {
            return;
        };
        sock.ep.on_event(readable, writable);
        match sock.phase {
            Phase::Orphan => {
                // Its channel and maybe its connection are gone: write what is left.
                let done = sock.flush_down().map_or(true, |_| sock.down_pending() == 0);
                if done {
                    let mut sock = self.socks.remove(i);
                    sock.ep.shutdown_down(&self.registry);
                    sock.ep.deregister(&self.registry);
                }
            }
            Phase::Connecting { .. } => {
                let ci = sock.conn;
                self.with_conn(ci, |core, role, ctx| role.on_connect_ready(core, ctx, i));
            }
            // No socket yet, or the peer's answer to our open is awaited.
            Phase::Resolving { .. } | Phase::Opening => {}
            Phase::Open => {
                let ci = sock.conn;
                self.with_conn(ci, |core, _, ctx| {
                    if writable {
                        core.sock_writable(ctx, i)?;
                    }
                    if readable && let Some(sock) = ctx.socks.get_mut(i) {
                        core.queue(i, sock);
                    }
                    Ok(())
                });
            }
        }
    }

    fn accept(&mut self, li: usize) {
        loop {
            let Some(listener) = self.listeners.get_mut(li) else {
                return;
            };
            let accepted = match listener.accept() {
                Ok(Some(a)) => a,
                Ok(None) => return,
                Err(e) => {
                    // Out of descriptors, most likely: connections wait in the backlog
                    // and are taken when the timer fires, with no busy loop meanwhile.
                    log::warn!("accept on {}: {e}", listener.describe());
                    self.timers
                        .push(Reverse((self.now + ACCEPT_RETRY, Timer::Listener(li))));
                    return;
                }
            };
            match listener.purpose.clone() {
                listen::Purpose::Ssh(settings) => self.accept_ssh(accepted, &settings),
                listen::Purpose::Forward { conn, target } => {
                    self.with_conn(conn, |core, role, ctx| {
                        role.on_forward_accepted(core, ctx, accepted, &target)
                    });
                }
            }
        }
    }

    fn fire_timers(&mut self) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > self.now {
                return;
            }
            self.timers.pop();
            match timer {
                Timer::Conn(i) => {
                    let due = self
                        .conns
                        .get(i)
                        .is_some_and(|c| c.core.wake_at == Some(at));
                    if due {
                        if let Some(conn) = self.conns.get_mut(i) {
                            conn.core.wake_at = None;
                        }
                        self.with_conn(i, |core, role, ctx| {
                            core.transport.handle_timeout(ctx.now)?;
                            role.on_timer(core, ctx)
                        });
                    }
                }
                Timer::Listener(li) => self.accept(li),
                Timer::Reconnect => self.try_reconnect(),
                Timer::Sock(i) => {
                    let Some(sock) = self.socks.get(i) else {
                        continue;
                    };
                    if let Phase::Resolving { deadline } | Phase::Connecting { deadline } =
                        sock.phase
                        && deadline <= self.now
                    {
                        let ci = sock.conn;
                        self.with_conn(ci, |core, role, ctx| role.on_connect_ready(core, ctx, i));
                    }
                }
            }
        }
    }

    fn serve_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for i in dirty {
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            conn.dirty = false;
            let mut ctx = Ctx {
                registry: &self.registry,
                socks: &mut self.socks,
                now: self.now,
                index: i,
                new_timers: Vec::new(),
            };
            let result = conn.core.turn(&mut *conn.role, &mut ctx);
            let new_timers = std::mem::take(&mut ctx.new_timers);
            let more = result.is_ok() && conn.core.has_work(&self.socks);
            for (at, sock) in new_timers {
                self.timers.push(Reverse((at, Timer::Sock(sock))));
            }
            if let Err(end) = result {
                self.end_conn(i, end);
                continue;
            }
            if conn.startup && conn.role.is_authenticated() {
                conn.startup = false;
                self.startups -= 1;
            }
            let wake = [conn.core.transport.poll_timeout(), conn.role.next_timer()]
                .into_iter()
                .flatten()
                .min();
            if wake != conn.core.wake_at {
                conn.core.wake_at = wake;
                if let Some(at) = wake {
                    self.timers.push(Reverse((at, Timer::Conn(i))));
                }
            }
            if conn.core.transport.is_closed() {
                conn.core.flush_final();
                if conn.core.output_pending() == 0 {
                    self.end_conn(i, End::Local("closed".to_owned()));
                    continue;
                }
            }
            if more {
                conn.dirty = true;
                self.dirty.push(i);
            }
        }
    }

    /// Ends connection `i`: sends what output it can, closes every endpoint of its
    /// channels and its listeners, and lets its role log why.
    fn end_conn(&mut self, i: usize, end: End) {
        let Some(mut conn) = self.conns.try_remove(i) else {
            return;
        };
        conn.core.flush_final();
        let _ = self.registry.deregister(&mut conn.core.io);
        if conn.startup {
            self.startups -= 1;
        }
        for (_, si) in conn.core.bindings.drain() {
            if let Some(mut sock) = self.socks.try_remove(si) {
                sock.ep.deregister(&self.registry);
            }
        }
        conn.role.on_end(&mut conn.core, &end);
        if self.plan_reconnect(i) {
            return;
        }
        let owned: Vec<usize> = self
            .listeners
            .iter()
            .filter(
                |(_, l)| matches!(l.purpose, listen::Purpose::Forward { conn, .. } if conn == i),
            )
            .map(|(li, _)| li)
            .collect();
        for li in owned {
            let mut listener = self.listeners.remove(li);
            listener.deregister(&self.registry);
        }
    }

    /// Adds a listener and starts accepting on it.
    fn add_listener(&mut self, listener: listen::Listener) -> io::Result<usize> {
        let entry = self.listeners.vacant_entry();
        let index = entry.key();
        let listener = entry.insert(listener);
        listener.register(&self.registry, token(Kind::Listener, index))?;
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::OwnedFd;

    use super::endpoint::{Endpoint, Io, Pipe, Stream};
    use super::*;

    /// A session's output that the reader has not taken when its channel closes: the
    /// loop must keep running until it is all written, not return and lose it.
    #[test]
    fn own_output_is_written_before_the_loop_returns() {
        const BYTES: usize = 300 * 1024;
        let (mut reader, writer) = std::io::pipe().expect("pipe");
        let mut event_loop = EventLoop::new(false).expect("event loop");
        // `restore`: put back on drop, as for the process's own stdout.
        let stdout = Pipe::new(OwnedFd::from(writer), true).expect("pipe endpoint");
        let ep = Endpoint::new(Io::Pipes {
            up: [None, None],
            down: [Some(stdout), None],
        });
        let entry = event_loop.socks.vacant_entry();
        let index = entry.key();
        let sock = entry.insert(Sock::new(ep, 0, 0, Phase::Orphan, "session".into()));
        sock.ep
            .register(
                &event_loop.registry,
                token(Kind::Sock, index),
                endpoint::Want::default(),
            )
            .expect("register");
        let data: Vec<u8> = (0..BYTES).map(|i| (i % 251) as u8).collect();
        let written = sock.deliver(Stream::Data, &data).expect("deliver");
        // More than a pipe holds, so most of it waits for the reader.
        assert!(written < BYTES, "the pipe took all {written} bytes");

        let reading = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let mut got = Vec::new();
            reader.read_to_end(&mut got).expect("read the pipe");
            got
        });
        event_loop.run().expect("run");
        // Closes the pipe if the loop returned with the endpoint still in it.
        drop(event_loop);
        let got = reading.join().expect("reader");
        assert_eq!(got.len(), BYTES);
        assert!(got == data, "the bytes differ");
    }
}
