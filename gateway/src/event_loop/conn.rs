//! One SSH connection in the loop: its socket, its [`Transport`], its [`Channels`] and
//! the endpoints bound to them.
//!
//! A turn of a connection ([`Core::turn`]) reads what the socket has (bounded), decodes
//! and dispatches every whole packet, pumps the endpoints that have data into their
//! channels (one packet per endpoint per round, while output stays under a high-water
//! mark), and writes out what the transport produced until the socket would block. Write
//! interest is asked for only while output waits.
//!
//! The same holds for the endpoints: after anything that changes what an endpoint's
//! socket can use (data delivered, a window shut or opened, a phase or EOF), its interest
//! is brought in line with [`Sock::want`] by [`Core::sync_interest`], which calls the poll
//! only when the interest changes.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;
use ssh_proto::Error as ProtoError;
use ssh_proto::connection::channels::{Channels, Event as ChannelEvent, Input};
use ssh_proto::transport::{Event as TransportEvent, Transport};

use super::endpoint::Stream;
use super::sock::{Phase, Sock};

/// Bytes read from the socket per turn before other connections get theirs.
const READ_BUDGET: usize = 1024 * 1024;
/// The input buffer starts at this size and doubles, up to [`INBOX_MAX`], while reads
/// fill it: idle connections stay small, busy ones read in large gulps.
const INBOX_MIN: usize = 64 * 1024;
/// Room for the largest packet the transport accepts (256 KiB) and a read behind it.
const INBOX_MAX: usize = 1024 * 1024;
/// Packets pumped from endpoints into channels per turn.
const PUMP_BUDGET: usize = 64;
/// Output past which endpoints are not read until the socket takes some.
const OUTPUT_HIGH: usize = 1024 * 1024;
/// The most one read from an endpoint takes: one packet's payload at OpenSSH's maximum
/// packet size, whatever larger size a peer allows.
const MAX_READ: usize = 32 * 1024;

/// Why a connection ended, for its log line.
#[derive(Debug)]
pub(crate) enum End {
    /// The peer closed the TCP connection.
    Eof,
    Io(io::Error),
    Protocol(ProtoError),
    /// Our side decided to end it; the DISCONNECT is queued.
    Local(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Eof => write!(f, "connection closed by peer"),
            End::Io(e) => write!(f, "{e}"),
            End::Protocol(e) => write!(f, "{e}"),
            End::Local(why) => write!(f, "{why}"),
        }
    }
}

impl From<ProtoError> for End {
    fn from(e: ProtoError) -> Self {
        End::Protocol(e)
    }
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> Self {
        End::Io(e)
    }
}

/// What the rest of the loop lends a connection for one call.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) socks: &'a mut Slab<Sock>,
    pub(crate) now: Instant,
    /// This connection's index in the loop's table.
    pub(crate) index: usize,
    /// Deadlines of endpoints added during the call, for the loop's timer heap.
    pub(crate) new_timers: Vec<(Instant, usize)>,
}

impl Ctx<'_> {
    /// Adds an endpoint to the loop and registers it; a `Connecting` one gets its
    /// deadline in the timer heap. A socket joins before its channel is open (waiting
    /// for the peer's answer, or for a connect), so it is not asked to be read here; the
    /// sync after its channel opens does that.
    pub(crate) fn add_sock(&mut self, sock: Sock) -> io::Result<usize> {
        let entry = self.socks.vacant_entry();
        let index = entry.key();
        let phase = sock.phase;
        let sock = entry.insert(sock);
        let want = sock.want(|| false);
        if let Err(e) =
            sock.ep
                .register(self.registry, super::token(super::Kind::Sock, index), want)
        {
            self.socks.remove(index);
            return Err(e);
        }
        if let Phase::Connecting { deadline } = phase {
            self.new_timers.push((deadline, index));
        }
        Ok(index)
    }
}

/// Everything of a connection except its role.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) io: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) transport: Transport,
    /// Present once authentication succeeded.
    pub(crate) channels: Option<Channels>,
    /// Input read but not yet decoded is `inbox[in_start..in_end]`. The buffer is
    /// zeroed once when it grows, never per read.
    inbox: Vec<u8>,
    in_start: usize,
    in_end: usize,
    outbox: Vec<u8>,
    out_pos: usize,
    readable: bool,
    writable: bool,
    write_interest: bool,
    /// Channel id to the endpoint bound to it (an index into the loop's sockets).
    pub(crate) bindings: HashMap<u32, usize>,
    /// Endpoints that may have data to send, in turn order.
    ready: VecDeque<usize>,
    /// The last deadline given to the loop's timer heap.
    pub(crate) wake_at: Option<Instant>,
    /// When the last whole packet came from the peer: the client's keepalives count
    /// silence from then.
    pub(crate) last_received: Instant,
    token: Token,
}

/// What a role does with what the connection cannot decide alone.
pub(crate) trait Role {
    /// A message that is neither transport nor connection protocol (the authentication
    /// layer's, on a server). Anything it does not know is answered UNIMPLEMENTED.
    fn on_message(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        payload: &[u8],
        seq: u32,
    ) -> Result<(), End>;

    /// A channel event the connection does not handle itself.
    fn on_channel_event(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        event: ChannelEvent,
    ) -> Result<(), End>;

    /// A transport event: a re-exchange's host key, new keys.
    fn on_transport_event(&mut self, core: &mut Core, event: TransportEvent) -> Result<(), End>;

    /// The connection joined the loop.
    fn start(&mut self, core: &mut Core, ctx: &mut Ctx<'_>) -> Result<(), End> {
        let _ = (core, ctx);
        Ok(())
    }

    /// The role's own next deadline.
    fn next_timer(&self) -> Option<Instant>;

    /// A deadline passed (the transport's has been handled).
    fn on_timer(&mut self, core: &mut Core, ctx: &mut Ctx<'_>) -> Result<(), End>;

    /// A bound endpoint finished and was removed: its channel is closed both ways.
    fn on_sock_closed(&mut self, core: &mut Core, ctx: &mut Ctx<'_>, channel: u32, sock: Sock) {
        let _ = (core, ctx, channel, sock);
    }

    /// An endpoint in [`Phase::Resolving`] got its lookup's answer, or one in
    /// [`Phase::Connecting`] became ready, or either one's deadline passed.
    fn on_connect_ready(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        sock: usize,
    ) -> Result<(), End> {
        let _ = (core, sock);
        ctx.socks.try_remove(sock);
        Ok(())
    }

    /// A listener this connection owns accepted a local connection for `target`.
    fn on_forward_accepted(
        &mut self,
        core: &mut Core,
        ctx: &mut Ctx<'_>,
        accepted: super::listen::Accepted,
        target: &super::listen::Target,
    ) -> Result<(), End> {
        let _ = (core, ctx, accepted, target);
        Ok(())
    }

    /// A child process may have exited (SIGCHLD).
    fn on_child(&mut self, core: &mut Core, ctx: &mut Ctx<'_>) -> Result<(), End> {
        let _ = (core, ctx);
        Ok(())
    }

    /// The terminal was resized (SIGWINCH).
    fn on_window_size(&mut self, core: &mut Core) -> Result<(), End> {
        let _ = core;
        Ok(())
    }

    /// A stop signal came (or a [`super::Stopper`]) and the drain starts. A role whose
    /// work must not wait for the drain returns an error here, which ends the connection
    /// at once.
    fn on_stop(&mut self, core: &mut Core) -> Result<(), End> {
        let _ = core;
        Ok(())
    }

    /// Whether the peer has authenticated (always, for a client once it is in the loop).
    fn is_authenticated(&self) -> bool;

    /// The connection ended; `end` says why.
    fn on_end(&mut self, core: &mut Core, end: &End);
}

impl Core {
    pub(crate) fn new(io: TcpStream, peer: SocketAddr, transport: Transport) -> Core {
        Core {
            io,
            peer,
            transport,
            channels: None,
            inbox: vec![0; INBOX_MIN],
            in_start: 0,
            in_end: 0,
            outbox: Vec::new(),
            out_pos: 0,
            readable: true,
            writable: true,
            write_interest: false,
            bindings: HashMap::new(),
            ready: VecDeque::new(),
            wake_at: None,
            last_received: Instant::now(),
            token: Token(usize::MAX),
        }
    }

    /// Starts from input a blocking driver already read, and packets it already
    /// decoded for the layer above.
    pub(crate) fn set_leftover_input(&mut self, input: Vec<u8>) {
        if input.len() > self.inbox.len() / 2 {
            self.inbox
                .resize((input.len() * 2).min(INBOX_MAX).max(input.len()), 0);
        }
        self.inbox[..input.len()].copy_from_slice(&input);
        self.in_start = 0;
        self.in_end = input.len();
    }

    pub(crate) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.token = token;
        registry.register(&mut self.io, token, Interest::READABLE)
    }

    pub(crate) fn on_event(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }

    /// Bytes produced and not yet taken by the socket.
    pub(crate) fn output_pending(&self) -> usize {
        self.output_len()
    }

    fn output_len(&self) -> usize {
        self.outbox.len() - self.out_pos + self.transport.pending_output()
    }

    /// Whether another turn right away would make progress without any new event.
    pub(crate) fn has_work(&self, socks: &Slab<Sock>) -> bool {
        (self.readable && !self.transport.is_closed())
            || (self.output_len() < OUTPUT_HIGH
                && self.transport.can_send()
                && self
                    .ready
                    .iter()
                    .any(|&i| socks.get(i).is_some_and(|s| s.phase == Phase::Open)))
    }

    /// Puts an endpoint in the queue to be read, once.
    pub(crate) fn queue(&mut self, index: usize, sock: &mut Sock) {
        if !sock.queued && sock.phase == Phase::Open && sock.wants_read() {
            sock.queued = true;
            self.ready.push_back(index);
        }
    }

    /// One turn: read, dispatch, pump, write.
    pub(crate) fn turn(&mut self, role: &mut dyn Role, ctx: &mut Ctx<'_>) -> Result<(), End> {
        self.flush_output()?;
        let mut budget = READ_BUDGET;
        loop {
            let (read, eof) = self.read_input(budget)?;
            self.process_input(role, ctx)?;
            if eof {
                return Err(End::Eof);
            }
            budget = budget.saturating_sub(read);
            if read == 0 || !self.readable || budget == 0 {
                break;
            }
        }
        for _ in 0..4 {
            let pumped = self.pump(ctx)?;
            self.flush_output()?;
            if !pumped || self.output_len() > 0 {
                break;
            }
        }
        self.update_interest(ctx.registry)
    }

    /// Writes what is queued, best effort, before the connection is dropped.
    pub(crate) fn flush_final(&mut self) {
        let _ = self.flush_output();
    }

    /// Reads until `WouldBlock`, the budget, or a full buffer. Returns the bytes read and
    /// whether the peer closed.
    fn read_input(&mut self, budget: usize) -> Result<(usize, bool), End> {
        let mut total = 0;
        while self.readable && total < budget {
            if self.in_end == self.inbox.len() {
                if self.in_start > 0 {
                    self.inbox.copy_within(self.in_start..self.in_end, 0);
                    self.in_end -= self.in_start;
                    self.in_start = 0;
                } else if self.inbox.len() < INBOX_MAX {
                    let grown = (self.inbox.len() * 2).min(INBOX_MAX);
                    self.inbox.resize(grown, 0);
                } else {
                    // Full of whole packets not yet decoded: decode them first.
                    break;
                }
            }
            match self.io.read(&mut self.inbox[self.in_end..]) {
                Ok(0) => return Ok((total, true)),
                Ok(n) => {
                    self.in_end += n;
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((total, false))
    }

    /// Decodes and dispatches every whole packet in the input.
    fn process_input(&mut self, role: &mut dyn Role, ctx: &mut Ctx<'_>) -> Result<(), End> {
        let mut start = self.in_start;
        let result = self.process_from(&mut start, role, ctx);
        self.in_start = start;
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        }
        result
    }

    fn process_from(
        &mut self,
        start: &mut usize,
        role: &mut dyn Role,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), End> {
        loop {
            let mut inbox = std::mem::take(&mut self.inbox);
            let step = self.decode_one(&mut inbox, start, role, ctx);
            self.inbox = inbox;
            if !step? {
                return Ok(());
            }
        }
    }

    /// Decodes one packet at `start` and dispatches it. Returns whether to go on.
    fn decode_one(
        &mut self,
        inbox: &mut [u8],
        start: &mut usize,
        role: &mut dyn Role,
        ctx: &mut Ctx<'_>,
    ) -> Result<bool, End> {
        let decoded = self
            .transport
            .decode(&mut inbox[*start..self.in_end], ctx.now)?;
        *start += decoded.consumed;
        let progressed = decoded.consumed > 0 || decoded.packet.is_some();
        if let Some(packet) = decoded.packet {
            self.last_received = ctx.now;
            let (payload, seq) = (packet.payload, packet.seq);
            match payload.first() {
                Some(80..) if self.channels.is_some() => {
                    self.dispatch_channel(role, ctx, payload, seq)?;
                }
                _ => role.on_message(self, ctx, payload, seq)?,
            }
        }
        while let Some(event) = self.transport.poll_event() {
            role.on_transport_event(self, event)?;
        }
        Ok(progressed && !self.transport.is_closed())
    }

    fn dispatch_channel(
        &mut self,
        role: &mut dyn Role,
        ctx: &mut Ctx<'_>,
        payload: &[u8],
        seq: u32,
    ) -> Result<(), End> {
        let Some(channels) = self.channels.as_mut() else {
            return Ok(());
        };
        let input = channels.handle(&mut self.transport, payload, seq, ctx.now)?;
        if let Some(Input::Data {
            channel,
            stderr,
            data,
        }) = input
        {
            let stream = if stderr { Stream::Ext } else { Stream::Data };
            self.deliver(ctx, channel, stream, data)?;
        }
        self.drain_channel_events(role, ctx)
    }

    /// A connection protocol message the blocking driver read behind the end of
    /// authentication. Its sequence number is not known; only an UNIMPLEMENTED reply
    /// would need it, and no message of numbers 80 to 100 gets one.
    pub(crate) fn dispatch_leftover(
        &mut self,
        role: &mut dyn Role,
        ctx: &mut Ctx<'_>,
        payload: &[u8],
    ) -> Result<(), End> {
        match payload.first() {
            Some(80..=100) => self.dispatch_channel(role, ctx, payload, 0),
            _ => Ok(()),
        }
    }

    /// Hands every queued channel event to its handler.
    pub(crate) fn drain_channel_events(
        &mut self,
        role: &mut dyn Role,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), End> {
        while let Some(event) = self.channels.as_mut().and_then(Channels::poll_event) {
            self.on_channel_event(role, ctx, event)?;
        }
        Ok(())
    }

    fn on_channel_event(
        &mut self,
        role: &mut dyn Role,
        ctx: &mut Ctx<'_>,
        event: ChannelEvent,
    ) -> Result<(), End> {
        match event {
            ChannelEvent::Writable { channel } => {
                if let Some(&i) = self.bindings.get(&channel)
                    && let Some(sock) = ctx.socks.get_mut(i)
                {
                    self.queue(i, sock);
                    self.sync_interest(ctx, i)?;
                }
                Ok(())
            }
            ChannelEvent::Eof { channel } => {
                if let Some(&i) = self.bindings.get(&channel)
                    && let Some(sock) = ctx.socks.get_mut(i)
                {
                    sock.down_eof = true;
                    sock.maybe_shut_down(ctx.registry);
                    self.maybe_close(ctx, i)?;
                    self.sync_interest(ctx, i)?;
                }
                role.on_channel_event(self, ctx, ChannelEvent::Eof { channel })
            }
            ChannelEvent::Closed { channel } => {
                if let Some(i) = self.bindings.remove(&channel) {
                    self.release(ctx, i, role, channel);
                }
                role.on_channel_event(self, ctx, ChannelEvent::Closed { channel })
            }
            ChannelEvent::Opened { channel } => {
                if let Some(&i) = self.bindings.get(&channel)
                    && let Some(sock) = ctx.socks.get_mut(i)
                {
                    sock.phase = Phase::Open;
                    self.queue(i, sock);
                    if sock.down_shut && sock.up_done() {
                        // The local side went away while the open was in flight.
                        self.close_channel(ctx, i)?;
                    }
                    self.sync_interest(ctx, i)?;
                }
                role.on_channel_event(self, ctx, ChannelEvent::Opened { channel })
            }
            other => role.on_channel_event(self, ctx, other),
        }
    }

    /// A channel closed both ways: its endpoint goes, after writing what it still holds.
    fn release(&mut self, ctx: &mut Ctx<'_>, i: usize, role: &mut dyn Role, channel: u32) {
        let Some(sock) = ctx.socks.get_mut(i) else {
            return;
        };
        sock.phase = Phase::Orphan;
        sock.down_eof = true;
        let _ = sock.flush_down();
        // What is left is written as the socket takes it, so the socket is kept, asked
        // for writes only; if the poll refuses that, the rest is dropped with it.
        let keep = sock.down_pending() > 0 && sock.sync_interest(ctx.registry, || false).is_ok();
        if !keep {
            let mut sock = ctx.socks.remove(i);
            sock.ep.deregister(ctx.registry);
            role.on_sock_closed(self, ctx, channel, sock);
        }
    }

    /// Writes channel data to its endpoint and credits the window for what was written.
    fn deliver(
        &mut self,
        ctx: &mut Ctx<'_>,
        channel: u32,
        stream: Stream,
        data: &[u8],
    ) -> Result<(), End> {
        let written = match self.bindings.get(&channel) {
            Some(&i) => match ctx.socks.get_mut(i) {
                Some(sock) => match sock.deliver(stream, data) {
                    Ok(n) => {
                        // What the socket did not take waits for a writable event.
                        if n < data.len() {
                            self.sync_interest(ctx, i)?;
                        }
                        n
                    }
                    Err(e) => {
                        log::debug!("channel {channel}: {}: write: {e}", sock.label);
                        self.fail_sock(ctx, i)?;
                        data.len()
                    }
                },
                None => data.len(),
            },
            // Nothing bound (a session before its command runs): the data is dropped.
            None => data.len(),
        };
        if written > 0
            && let Some(channels) = self.channels.as_mut()
        {
            channels.consumed(&mut self.transport, channel, written, ctx.now)?;
        }
        Ok(())
    }

    /// The endpoint became writable: write what waits and credit the window.
    pub(crate) fn sock_writable(&mut self, ctx: &mut Ctx<'_>, i: usize) -> Result<(), End> {
        let Some(sock) = ctx.socks.get_mut(i) else {
            return Ok(());
        };
        let channel = sock.channel;
        let orphan = sock.phase == Phase::Orphan;
        let written = match sock.flush_down() {
            Ok(n) => n,
            Err(e) => {
                log::debug!("channel {channel}: {}: write: {e}", sock.label);
                if orphan {
                    let mut sock = ctx.socks.remove(i);
                    sock.ep.deregister(ctx.registry);
                    return Ok(());
                }
                return self.fail_sock(ctx, i);
            }
        };
        if orphan {
            if sock.down_pending() == 0 {
                let mut sock = ctx.socks.remove(i);
                sock.ep.shutdown_down(ctx.registry);
                sock.ep.deregister(ctx.registry);
            }
            return Ok(());
        }
        sock.maybe_shut_down(ctx.registry);
        if written > 0
            && let Some(channels) = self.channels.as_mut()
        {
            channels.consumed(&mut self.transport, channel, written, ctx.now)?;
        }
        self.maybe_close(ctx, i)?;
        self.sync_interest(ctx, i)
    }

    /// Brings endpoint `i`'s registration in line with [`Sock::want`], the peer's
    /// window for its channel included. A socket the poll refuses is failed like one
    /// that broke: without events it would never be served again.
    pub(crate) fn sync_interest(&mut self, ctx: &mut Ctx<'_>, i: usize) -> Result<(), End> {
        let Some(sock) = ctx.socks.get_mut(i) else {
            return Ok(());
        };
        let channels = self.channels.as_ref();
        let channel = sock.channel;
        let window_open = || channels.is_some_and(|c| c.window(channel) > 0);
        if let Err(e) = sock.sync_interest(ctx.registry, window_open) {
            log::debug!("channel {channel}: {}: poll: {e}", sock.label);
            return self.fail_sock(ctx, i);
        }
        Ok(())
    }

    /// The endpoint broke (reset, closed pipe): it carries nothing more either way and
    /// its channel is closed as soon as it may be.
    pub(crate) fn fail_sock(&mut self, ctx: &mut Ctx<'_>, i: usize) -> Result<(), End> {
        let Some(sock) = ctx.socks.get_mut(i) else {
            return Ok(());
        };
        sock.up_eof = [true; 2];
        // Without this, the channel's close would keep the endpoint as an orphan with
        // bytes to write and no events to write them on, for good.
        sock.discard_down();
        sock.down_eof = true;
        sock.down_shut = true;
        sock.eof_sent = true;
        sock.hold_close = false;
        sock.ep.deregister(ctx.registry);
        if sock.phase == Phase::Open {
            self.close_channel(ctx, i)?;
        }
        Ok(())
    }

    /// Closes the channel of a finished endpoint.
    pub(crate) fn maybe_close(&mut self, ctx: &mut Ctx<'_>, i: usize) -> Result<(), End> {
        if ctx.socks.get(i).is_some_and(Sock::finished) {
            self.close_channel(ctx, i)?;
        }
        Ok(())
    }

    pub(crate) fn close_channel(&mut self, ctx: &mut Ctx<'_>, i: usize) -> Result<(), End> {
        let Some(sock) = ctx.socks.get_mut(i) else {
            return Ok(());
        };
        if sock.close_sent {
            return Ok(());
        }
        sock.close_sent = true;
        if let Some(channels) = self.channels.as_mut() {
            channels.close(&mut self.transport, sock.channel)?;
        }
        // Nothing more is read for a closed channel.
        self.sync_interest(ctx, i)
    }

    /// Sends EOF on the channel once every up stream of its endpoint ended.
    fn maybe_eof(&mut self, ctx: &mut Ctx<'_>, i: usize) -> Result<(), End> {
        let Some(sock) = ctx.socks.get_mut(i) else {
            return Ok(());
        };
        if sock.phase == Phase::Open && !sock.eof_sent && !sock.close_sent && sock.up_done() {
            sock.eof_sent = true;
            if let Some(channels) = self.channels.as_mut() {
                channels.eof(&mut self.transport, sock.channel)?;
            }
        }
        self.maybe_close(ctx, i)
    }

    /// Reads queued endpoints into their channels, one packet each per round. Returns
    /// whether anything was sent.
    fn pump(&mut self, ctx: &mut Ctx<'_>) -> Result<bool, End> {
        let mut packets = 0;
        let mut sent = false;
        while packets < PUMP_BUDGET && self.output_len() < OUTPUT_HIGH && self.transport.can_send()
        {
            let Some(i) = self.ready.pop_front() else {
                break;
            };
            let Some(sock) = ctx.socks.get_mut(i) else {
                continue;
            };
            sock.queued = false;
            if sock.phase != Phase::Open || sock.close_sent {
                continue;
            }
            let Some(channels) = self.channels.as_mut() else {
                break;
            };
            let channel = sock.channel;
            let window = channels.window(channel);
            if window == 0 {
                // Event::Writable puts it back, and asks for reads again.
                self.sync_interest(ctx, i)?;
                continue;
            }
            let Some(stream) = Stream::BOTH
                .into_iter()
                .find(|&s| sock.ep.has_up(s) && !sock.up_eof[s as usize] && sock.ep.up_ready(s))
            else {
                continue;
            };
            // The socket is read straight into the packet, so the data is not copied
            // between the kernel and the cipher.
            let ext = stream == Stream::Ext;
            let max = window.min(MAX_READ);
            let read = channels.send_data_with(&mut self.transport, channel, ext, max, |buf| {
                sock.ep.read(stream, buf)
            })?;
            let Some(read) = read else {
                // Nothing was read: the window and the transport were checked above.
                self.sync_interest(ctx, i)?;
                continue;
            };
            match read {
                Ok(0) => {
                    sock.up_eof[stream as usize] = true;
                    self.maybe_eof(ctx, i)?;
                }
                Ok(_) => {
                    packets += 1;
                    sent = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("channel {channel}: {}: read: {e}", sock.label);
                    self.fail_sock(ctx, i)?;
                    continue;
                }
            }
            if let Some(sock) = ctx.socks.get_mut(i) {
                self.queue(i, sock);
                // A read that ended the stream, or data that shut the window, stops
                // reads; the comparison is all this costs while neither happened.
                self.sync_interest(ctx, i)?;
            }
        }
        Ok(sent)
    }

    /// Moves the transport's output to the socket until it would block.
    fn flush_output(&mut self) -> Result<(), End> {
        loop {
            if self.out_pos == self.outbox.len() {
                self.outbox.clear();
                self.out_pos = 0;
                self.transport.poll_transmit(&mut self.outbox);
                if self.outbox.is_empty() {
                    return Ok(());
                }
            }
            if !self.writable {
                return Ok(());
            }
            match self.io.write(&self.outbox[self.out_pos..]) {
                Ok(0) => return Err(End::Eof),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Asks for write readiness only while output waits.
    fn update_interest(&mut self, registry: &Registry) -> Result<(), End> {
        let want_write = self.output_len() > 0;
        if want_write != self.write_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.io, self.token, interest)?;
            self.write_interest = want_write;
        }
        Ok(())
    }
}
