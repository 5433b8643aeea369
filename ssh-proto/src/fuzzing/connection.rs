//! The connection-layer targets: a transport that logged in for real (key exchange
//! skipped, then a scripted password login through [`ServerAuth`] or [`ClientAuth`]), a
//! [`Channels`] beside it, and a script of the peer's messages and the application's
//! calls, interleaved.
//!
//! The input is one selector byte for the channel settings (see [`channels_config`]),
//! then [`Step`]s: an opcode byte and a fixed number of argument bytes each, missing
//! bytes read as 0. The peer's messages are framed as plaintext packets and go through
//! [`Transport::decode`], then to the layer their number belongs to, as an application
//! routes them (RFC 4254 to [`Channels::handle`], RFC 4252 to the authentication state).
//! Steps that name a channel take a byte that picks one of the live channels, or names an
//! id that may not exist, so short scripts reach real channels and stale ids alike.
//!
//! Besides "nothing panics", the harness keeps its own account of every channel (what we
//! advertised, what arrived, what the application read) and checks after every step:
//! - after any error but [`Error::Misuse`] the connection is closed, and every later call
//!   fails and sends nothing; misuse sends nothing either;
//! - [`Channels::buffered`] equals the bytes delivered and not yet read, which never
//!   exceed the window credit we advertised nor the largest window configured;
//! - the receive windows together stay within the budget plus one
//!   [`WINDOW_FLOOR`] per channel, and each announced initial window lies between the
//!   channel's floor and the configured one;
//! - [`Channels::len`] stays within `max_channels` and matches the channels the events
//!   announced, give or take those reported failed whose ids wait for the peer's CLOSE;
//! - every payload we send that is numbered 80 to 100 parses with
//!   [`crate::connection::msg`], a WINDOW_ADJUST goes out only for the channel a call was
//!   about, and channel data never exceeds what [`Channels::window`] allowed;
//! - a reply or result event comes only for a request that waits for one.
//!
//! Not checked: that the data we send stays within the window the peer granted, beyond
//! agreeing with what [`Channels::window`] reports; that would need the harness to count
//! the peer's windows itself from the messages it sends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::auth::client::{ClientAuth, ClientAuthEvent};
use crate::auth::msg::{Method, SERVICE_CONNECTION, SERVICE_USERAUTH};
use crate::auth::server::{AuthLimits, Outcome, ServerAuth, ServerAuthEvent};
use crate::connection::budget::{WINDOW_FLOOR, window_floor};
use crate::connection::channels::{Channels, ChannelsConfig, Event, Input};
use crate::connection::msg::{
    ChannelClose, ChannelData, ChannelEof, ChannelExtendedData, ChannelFailure, ChannelOpen,
    ChannelOpenConfirmation, ChannelOpenFailure, ChannelRequest, ChannelSuccess,
    ChannelWindowAdjust, ExtendedDataType, GlobalRequest, Message, OpenFailureReason,
    RequestFailure, RequestSuccess,
};
use crate::connection::window::WindowConfig;
use crate::crypto::default_provider;
use crate::error::Error;
use crate::msg::{DisconnectReason, MessageNumber};
use crate::packet::{Opened, Opener, Sealer};
use crate::role::Role;
use crate::transport::{Event as TransportEvent, Transport};
use crate::wire::Writer;

use super::{Failed, KexMode, new_transport, origin};

mod script;

pub use script::{
    ADJUSTS, MAX_PACKETS, Step, WINDOWS, channel_type, channels_config, global_body, request_body,
    script,
};
use script::{Cursor, entry, fill};

/// What [`connection_server`] or [`connection_client`] saw.
#[derive(Debug, Default)]
pub struct ConnectionOutcome {
    /// Steps read from the input.
    pub steps: usize,
    /// Packets from the peer that reached the layers above the transport.
    pub delivered: usize,
    /// Channels that opened, by either side.
    pub opened: usize,
    /// Channel events the application took.
    pub events: usize,
    /// Channel data delivered to the application, and sent by it.
    pub data_in: u64,
    pub data_out: u64,
    /// The first error that closed the connection.
    pub error: Option<Error>,
}

/// Our CHANNEL_OPEN or OPEN_CONFIRMATION announces the configured maximum packet and
/// the configured initial window, or less when the budget is short, never below the floor.
fn assert_announced(initial_window: u32, max_packet: u32, window: WindowConfig) {
    assert_eq!(max_packet, window.max_packet);
    assert!(
        (window_floor(window.initial)..=window.initial).contains(&initial_window),
        "announced a window of {initial_window} for {window:?}"
    );
}

/// A server past a password login, fed a script from `data`. See the module docs.
pub fn connection_server(data: &[u8]) -> ConnectionOutcome {
    run(Role::Server, data)
}

/// A client past a password login, fed a script from `data`.
pub fn connection_client(data: &[u8]) -> ConnectionOutcome {
    run(Role::Client, data)
}

// ---------------------------------------------------------------------------------------
// The harness

/// Steps still run once the connection closed, to see that they all fail; more would
/// only spend time.
const STEPS_AFTER_CLOSE: usize = 4;

/// The harness's own account of one live channel, by our id.
#[derive(Debug, Default)]
struct Chan {
    /// Window credit we gave the peer: the initial window in our CHANNEL_OPEN or
    /// OPEN_CONFIRMATION plus every WINDOW_ADJUST we sent for it.
    advertised: u64,
    /// Data the peer sent that counted against the window.
    received: u64,
    /// Data delivered to the application and not reported read.
    held: u64,
    close_sent: bool,
    /// Our requests with `want_reply` not answered yet.
    ours_pending: u32,
}

enum Auth {
    Server(ServerAuth<()>),
    Client(ClientAuth),
}

struct Harness {
    t: Transport,
    auth: Auth,
    ch: Channels,
    config: ChannelsConfig,
    now: Instant,
    /// The peer's bytes not yet consumed by the transport.
    inbox: Vec<u8>,
    /// Frames the peer's payloads.
    sealer: Sealer,
    /// Reads our output, as the peer would.
    opener: Opener,
    /// Our output not yet read.
    wire: Vec<u8>,
    /// Our output went past a NEWKEYS and is no longer plaintext: a peer that ran a real
    /// key exchange in the middle of the script.
    opaque: bool,
    live: BTreeMap<u32, Chan>,
    /// Channels the peer confirmed with an unusable maximum packet size: reported failed
    /// at once, but their ids stay held until the peer's CLOSE answers ours, which is not
    /// reported. An id leaves this set when that CLOSE is handled.
    parting: BTreeSet<u32>,
    /// The peer's open requests waiting for accept or reject, by our id.
    pending_opens: Vec<u32>,
    /// One entry per peer channel request waiting for a reply, by our id.
    pending_replies: Vec<u32>,
    global_theirs: u32,
    global_ours: u32,
    /// A call failed, or we disconnected.
    closed: bool,
    /// The output was read after closing; nothing more may come.
    quiet: bool,
    outcome: ConnectionOutcome,
}

fn run(role: Role, data: &[u8]) -> ConnectionOutcome {
    let (selector, steps) = match data.split_first() {
        Some((&s, rest)) => (s, rest),
        None => (0, data),
    };
    let mut h = Harness::login(role, channels_config(selector));
    let mut c = Cursor { data: steps };
    let mut after_close = 0;
    while let Some(step) = Step::decode(&mut c) {
        if h.closed {
            after_close += 1;
            if after_close > STEPS_AFTER_CLOSE {
                break;
            }
        }
        h.outcome.steps += 1;
        h.step(step);
        h.check();
    }
    if h.closed {
        h.check_every_call_fails();
    }
    h.outcome
}

impl Harness {
    /// A transport of `role` past version exchange (key exchange skipped) and a password
    /// login, each side of it driven through the real authentication state.
    fn login(role: Role, config: ChannelsConfig) -> Self {
        let now = origin();
        let t = new_transport(role, KexMode::Skip, false, now);
        let auth = match role {
            Role::Server => Auth::Server(ServerAuth::new(
                default_provider(),
                AuthLimits {
                    methods: vec![Method::Password],
                    ..AuthLimits::default()
                },
            )),
            Role::Client => Auth::Client(ClientAuth::new("fuzz")),
        };
        let ch = match Channels::new(config) {
            Ok(ch) => ch,
            Err(e) => panic!("channel settings {config:?} refused: {e}"),
        };
        let mut h = Self {
            t,
            auth,
            ch,
            config,
            now,
            inbox: Vec::new(),
            sealer: Sealer::plain(),
            opener: Opener::plain(),
            wire: Vec::new(),
            opaque: false,
            live: BTreeMap::new(),
            parting: BTreeSet::new(),
            pending_opens: Vec::new(),
            pending_replies: Vec::new(),
            global_theirs: 0,
            global_ours: 0,
            closed: false,
            quiet: false,
            outcome: ConnectionOutcome::default(),
        };
        h.t.poll_transmit(&mut h.wire);
        let Some(rest) = h.wire.strip_prefix(b"SSH-2.0-fuzz\r\n") else {
            panic!("the first bytes out are not our version line");
        };
        h.wire = rest.to_vec();

        h.inbox.extend_from_slice(b"SSH-2.0-peer\r\n");
        let mut service = vec![MessageNumber::SERVICE_REQUEST.0];
        service.put_string(SERVICE_USERAUTH.as_bytes());
        match role {
            Role::Server => {
                let mut login = vec![MessageNumber::USERAUTH_REQUEST.0];
                login.put_string(b"fuzz");
                login.put_string(SERVICE_CONNECTION.as_bytes());
                login.put_string(Method::Password.name().as_bytes());
                login.put_bool(false);
                login.put_string(b"secret");
                h.peer(&service);
                h.peer(&login);
            }
            Role::Client => {
                let started = match &mut h.auth {
                    Auth::Client(auth) => auth.start(&mut h.t),
                    Auth::Server(_) => Err(Error::Misuse("a server does not start")),
                };
                h.result(started);
                h.take_output(None);
                service[0] = MessageNumber::SERVICE_ACCEPT.0;
                h.peer(&service);
                h.peer(&[MessageNumber::USERAUTH_SUCCESS.0]);
            }
        }
        let done = match &h.auth {
            Auth::Server(auth) => auth.is_authenticated(),
            Auth::Client(auth) => auth.is_authenticated(),
        };
        assert!(
            done && !h.closed,
            "the scripted login failed: {:?}",
            h.outcome
        );
        h.outcome = ConnectionOutcome::default();
        h
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Raw(payload) => self.peer(&payload),
            Step::Open {
                kind,
                sender,
                window,
                max_packet,
            } => {
                let mut p = Vec::new();
                ChannelOpen {
                    sender: u32::from(sender),
                    initial_window: entry(&WINDOWS, window).unwrap_or(0),
                    max_packet: entry(&MAX_PACKETS, max_packet).unwrap_or(0),
                    channel_type: channel_type(kind),
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::Confirm {
                channel,
                sender,
                window,
                max_packet,
            } => {
                let mut p = Vec::new();
                ChannelOpenConfirmation {
                    recipient: self.pick(channel),
                    sender: u32::from(sender),
                    initial_window: entry(&WINDOWS, window).unwrap_or(0),
                    max_packet: entry(&MAX_PACKETS, max_packet).unwrap_or(0),
                    extra: b"",
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::OpenFailure { channel, reason } => {
                let mut p = Vec::new();
                ChannelOpenFailure {
                    recipient: self.pick(channel),
                    reason: OpenFailureReason(u32::from(reason)),
                    description: b"refused",
                    language: b"",
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::Adjust { channel, by } => {
                let mut p = Vec::new();
                ChannelWindowAdjust {
                    recipient: self.pick(channel),
                    bytes_to_add: entry(&ADJUSTS, by).unwrap_or(0),
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::Data { channel, len } => {
                let mut p = Vec::new();
                ChannelData {
                    recipient: self.pick(channel),
                    data: fill(len),
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::ExtendedData {
                channel,
                data_type,
                len,
            } => {
                let mut p = Vec::new();
                ChannelExtendedData {
                    recipient: self.pick(channel),
                    data_type: ExtendedDataType(u32::from(data_type)),
                    data: fill(len),
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::Eof { channel } => {
                let mut p = Vec::new();
                ChannelEof {
                    recipient: self.pick(channel),
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::Close { channel } => {
                let mut p = Vec::new();
                ChannelClose {
                    recipient: self.pick(channel),
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::Request {
                channel,
                kind,
                want_reply,
            } => {
                let mut p = Vec::new();
                ChannelRequest {
                    recipient: self.pick(channel),
                    want_reply,
                    body: request_body(kind),
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::RequestReply { channel, ok } => {
                let mut p = Vec::new();
                let recipient = self.pick(channel);
                if ok {
                    ChannelSuccess { recipient }.write(&mut p);
                } else {
                    ChannelFailure { recipient }.write(&mut p);
                }
                self.peer(&p);
            }
            Step::GlobalRequest { kind, want_reply } => {
                let mut p = Vec::new();
                GlobalRequest {
                    want_reply,
                    body: global_body(kind),
                }
                .write(&mut p);
                self.peer(&p);
            }
            Step::GlobalReply { kind } => {
                let mut p = Vec::new();
                match kind % 3 {
                    0 => RequestFailure.write(&mut p),
                    1 => RequestSuccess::EMPTY.write(&mut p),
                    _ => RequestSuccess::write_bound_port(u32::from(kind), &mut p),
                }
                self.peer(&p);
            }
            Step::Bare(number) => self.peer(&[number]),
            app => self.app_step(app),
        }
    }

    fn app_step(&mut self, step: Step) {
        let now = self.now;
        match step {
            Step::Accept { which } => {
                let id = self.take_pending_open(which);
                self.call(None, |ch, t| ch.accept(t, id));
            }
            Step::Reject { which, reason } => {
                let id = self.take_pending_open(which);
                let reason = OpenFailureReason(u32::from(reason));
                if self
                    .call(None, |ch, t| ch.reject(t, id, reason, "not here"))
                    .is_some()
                {
                    self.live.remove(&id);
                }
            }
            Step::Reply { which, ok } => {
                let waiting = !self.pending_replies.is_empty();
                let id = if waiting {
                    self.pending_replies
                        .remove(usize::from(which) % self.pending_replies.len())
                } else {
                    u32::from(which & 0x0f)
                };
                let replied = self.call(None, |ch, t| ch.reply(t, id, ok)).is_some();
                if !self.closed {
                    assert_eq!(
                        replied, waiting,
                        "a reply on channel {id} with a request waiting: {waiting}"
                    );
                }
            }
            Step::ReplyGlobal { kind } => {
                let (ok, port) = match kind % 3 {
                    0 => (false, None),
                    1 => (true, None),
                    _ => (true, Some(u32::from(kind))),
                };
                let waiting = self.global_theirs > 0;
                let replied = self
                    .call(None, |ch, t| ch.reply_global(t, ok, port))
                    .is_some();
                if replied {
                    self.global_theirs -= 1;
                }
                if !self.closed {
                    assert_eq!(replied, waiting, "a global reply, one waiting: {waiting}");
                }
            }
            Step::SendData {
                channel,
                stderr,
                len,
            } => {
                let id = self.pick(channel);
                let window = self.ch.window(id);
                let could = self.t.can_send();
                let data = fill(len);
                let Some(n) = self.call(None, |ch, t| ch.send_data(t, id, stderr, data)) else {
                    return;
                };
                assert!(
                    n <= data.len() && n <= window && (could || n == 0),
                    "send_data took {n} of {} bytes with a window of {window}",
                    data.len()
                );
                self.outcome.data_out += n as u64;
            }
            Step::Consumed { channel, amount } => {
                let id = self.pick(channel);
                let held = self.live.get(&id).map_or(0, |c| c.held);
                let held = usize::try_from(held).unwrap_or(usize::MAX);
                let n = match amount % 6 {
                    0 => held,
                    1 => held / 2,
                    2 => 1,
                    3 => 0,
                    4 => held.saturating_add(1000),
                    _ => usize::MAX,
                };
                if self
                    .call(Some(id), |ch, t| ch.consumed(t, id, n, now))
                    .is_some()
                    && let Some(c) = self.live.get_mut(&id)
                {
                    c.held -= c.held.min(n as u64);
                }
            }
            Step::SendEof { channel } => {
                let id = self.pick(channel);
                self.call(None, |ch, t| ch.eof(t, id));
            }
            Step::SendClose { channel } => {
                let id = self.pick(channel);
                if self.call(None, |ch, t| ch.close(t, id)).is_some()
                    && let Some(c) = self.live.get_mut(&id)
                {
                    c.close_sent = true;
                }
            }
            Step::OpenChannel { kind } => {
                let kind = channel_type(kind);
                if let Some(id) = self.call(None, |ch, t| ch.open(t, &kind)) {
                    assert!(
                        self.closed || self.live.contains_key(&id),
                        "open gave id {id} but no CHANNEL_OPEN from it went out"
                    );
                }
            }
            Step::SendRequest {
                channel,
                kind,
                want_reply,
            } => {
                let id = self.pick(channel);
                let body = request_body(kind);
                if self
                    .call(None, |ch, t| ch.request(t, id, &body, want_reply))
                    .is_some()
                    && want_reply
                    && let Some(c) = self.live.get_mut(&id)
                {
                    c.ours_pending += 1;
                }
            }
            Step::SendGlobal { kind, want_reply } => {
                let body = global_body(kind);
                if self
                    .call(None, |ch, t| ch.global_request(t, &body, want_reply))
                    .is_some()
                    && want_reply
                {
                    self.global_ours += 1;
                }
            }
            Step::Wait { ms } => {
                self.now += Duration::from_millis(u64::from(ms));
                let fired = self.t.handle_timeout(self.now);
                self.result(fired);
                self.take_output(None);
            }
            Step::Disconnect => {
                self.t
                    .disconnect(DisconnectReason::BY_APPLICATION, "fuzzing");
                self.closed = true;
                self.take_output(None);
            }
            peer => panic!("{peer:?} is a peer step"),
        }
    }

    /// Our id for a channel byte: below 0xf0 one of the live channels (if any), 0xff the
    /// largest id, otherwise the low four bits, which may name no channel.
    fn pick(&self, b: u8) -> u32 {
        if b < 0xf0
            && !self.live.is_empty()
            && let Some(&id) = self.live.keys().nth(usize::from(b) % self.live.len())
        {
            return id;
        }
        if b == 0xff {
            u32::MAX
        } else {
            u32::from(b & 0x0f)
        }
    }

    /// One of the open requests waiting for an answer, or a small id if none is.
    fn take_pending_open(&mut self, which: u8) -> u32 {
        if self.pending_opens.is_empty() {
            u32::from(which & 0x0f)
        } else {
            self.pending_opens
                .remove(usize::from(which) % self.pending_opens.len())
        }
    }

    /// The peer sends `payload`, framed as a plaintext packet.
    fn peer(&mut self, payload: &[u8]) {
        self.sealer
            .seal_with(&mut self.inbox, |p| p.put_raw(payload));
        self.pump();
    }

    /// Decodes what the inbox holds and routes each packet as an application would.
    fn pump(&mut self) {
        let mut inbox = std::mem::take(&mut self.inbox);
        let mut start = 0;
        loop {
            let decoded = self.t.decode(&mut inbox[start..], self.now);
            let decoded = match decoded {
                Ok(decoded) => decoded,
                Err(e) => {
                    self.failed(e);
                    self.take_output(None);
                    break;
                }
            };
            assert!(!self.closed, "decode succeeded after the connection closed");
            start += decoded.consumed;
            self.transport_events();
            if let Some(packet) = decoded.packet {
                self.route(packet.payload, packet.seq);
            } else {
                // What the transport answered by itself (UNIMPLEMENTED, PONG, KEXINIT).
                self.take_output(None);
            }
            if decoded.consumed == 0 {
                break;
            }
        }
        inbox.drain(..start);
        self.inbox = inbox;
    }

    fn transport_events(&mut self) {
        while let Some(event) = self.t.poll_event() {
            if let TransportEvent::HostKey(_) = event {
                // A peer that ran a whole key exchange in the middle of the script; its
                // host key is not one we know.
                let e = self.t.reject_host_key("not the fuzzed server's key");
                self.failed(e);
            }
        }
    }

    /// Hands one packet to the layer its number belongs to.
    fn route(&mut self, payload: &[u8], seq: u32) {
        let Some(&n) = payload.first() else {
            panic!("an empty payload reached the layer above");
        };
        self.outcome.delivered += 1;
        if n >= MessageNumber::GLOBAL_REQUEST.0 {
            self.connection_message(payload, seq);
        } else if matches!(n, 5 | 6 | 50..=79) {
            let result = match &mut self.auth {
                Auth::Server(auth) => auth.handle(&mut self.t, payload),
                Auth::Client(auth) => auth.handle(&mut self.t, payload),
            };
            self.result(result);
            self.take_output(None);
            self.auth_events();
        } else {
            let sent = self.t.send_unimplemented(seq);
            self.result(sent);
            self.take_output(None);
        }
    }

    fn connection_message(&mut self, payload: &[u8], seq: u32) {
        let parsed = Message::parse(payload).ok();
        let context = parsed
            .and_then(|m| m.recipient())
            .filter(|id| self.live.contains_key(id));
        // Extended data of a type other than STDERR counts against the window and is
        // dropped inside, unless it crossed our CLOSE.
        let dropped = match parsed {
            Some(Message::ChannelExtendedData(m)) if m.data_type != ExtendedDataType::STDERR => {
                Some((m.recipient, m.data.len()))
            }
            _ => None,
        };

        let handled = self.ch.handle(&mut self.t, payload, seq, self.now);
        match handled {
            Ok(Some(Input::Data { channel, data, .. })) => {
                assert!(!self.closed, "handle succeeded after the connection closed");
                let len = data.len() as u64;
                self.received(channel, len, true);
                self.outcome.data_in += len;
            }
            Ok(None) => {
                assert!(!self.closed, "handle succeeded after the connection closed");
                if let Some((id, len)) = dropped
                    && self.live.get(&id).is_some_and(|c| !c.close_sent)
                {
                    self.received(id, len as u64, false);
                }
                // The peer's CLOSE answers ours for a channel reported failed: its id is
                // free now.
                if let Some(Message::ChannelClose(m)) = parsed {
                    self.parting.remove(&m.recipient);
                }
            }
            Err(e) => self.failed(e),
        }
        self.take_output(context);
        self.channel_events();
    }

    /// Counts `len` bytes the peer sent on `id` against the credit we gave it.
    fn received(&mut self, id: u32, len: u64, held: bool) {
        let Some(c) = self.live.get_mut(&id) else {
            panic!("data for channel {id}, which no event announced");
        };
        assert!(
            !c.close_sent,
            "data on channel {id} delivered after our CLOSE"
        );
        c.received += len;
        if held {
            c.held += len;
        }
        assert!(
            c.received <= c.advertised,
            "channel {id} took {} bytes on {} bytes of credit",
            c.received,
            c.advertised
        );
    }

    /// Runs one call of the application on the channels and checks what it did.
    fn call<T>(
        &mut self,
        context: Option<u32>,
        f: impl FnOnce(&mut Channels, &mut Transport) -> Result<T, Error>,
    ) -> Option<T> {
        let result = f(&mut self.ch, &mut self.t);
        let misuse = matches!(result, Err(Error::Misuse(_))) && !self.closed;
        let value = match result {
            Ok(value) => {
                assert!(!self.closed, "a call succeeded after the connection closed");
                Some(value)
            }
            Err(Error::Misuse(what)) if !self.closed => {
                assert!(!self.t.is_closed(), "misuse ({what}) closed the connection");
                None
            }
            Err(e) => {
                self.failed(e);
                None
            }
        };
        let sent = self.take_output(context);
        assert!(!misuse || sent == 0, "a refused call sent {sent} messages");
        self.channel_events();
        value
    }

    /// Checks a call's result that is not the channels'.
    fn result<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        let mut failed = Failed::new(&self.t, &mut self.closed, &mut self.outcome.error);
        failed.check(result)
    }

    fn failed(&mut self, e: Error) {
        Failed::new(&self.t, &mut self.closed, &mut self.outcome.error).record(e);
    }

    fn auth_events(&mut self) {
        loop {
            let answered = match &mut self.auth {
                Auth::Server(auth) => match auth.poll_event() {
                    None => break,
                    Some(ServerAuthEvent::Password { .. }) => {
                        auth.accept(&mut self.t, Outcome::Success(()))
                    }
                    Some(ServerAuthEvent::PublicKeyQuery { .. }) => {
                        auth.answer_query(&mut self.t, false)
                    }
                    Some(ServerAuthEvent::Authenticated { .. }) => Ok(()),
                    Some(_) => auth.reject(&mut self.t),
                },
                Auth::Client(auth) => match auth.poll_event() {
                    None => break,
                    Some(ClientAuthEvent::ServiceAccepted) => {
                        auth.request_password(&mut self.t, b"secret")
                    }
                    Some(_) => Ok(()),
                },
            };
            self.result(answered);
            self.take_output(None);
        }
    }

    /// Takes the channel events as the application would, checking each against the
    /// harness's account.
    fn channel_events(&mut self) {
        while let Some(event) = self.ch.poll_event() {
            assert!(!self.closed, "{event:?} after the connection closed");
            self.outcome.events += 1;
            match event {
                Event::OpenRequest { channel, .. } => {
                    assert!(
                        u64::from(channel) < u64::from(self.config.max_channels),
                        "id {channel} past the cap of {}",
                        self.config.max_channels
                    );
                    let old = self.live.insert(channel, Chan::default());
                    assert!(old.is_none(), "an open request reuses live id {channel}");
                    self.parting.remove(&channel);
                    self.pending_opens.push(channel);
                }
                Event::Opened { channel } => {
                    assert!(self.live.contains_key(&channel), "{channel} opened unknown");
                    self.outcome.opened += 1;
                }
                Event::OpenFailed { channel, .. } | Event::Closed { channel } => {
                    let Some(c) = self.live.remove(&channel) else {
                        panic!("channel {channel} ended without being live");
                    };
                    if matches!(event, Event::OpenFailed { .. }) && c.close_sent {
                        self.parting.insert(channel);
                    }
                    self.pending_opens.retain(|&id| id != channel);
                    self.pending_replies.retain(|&id| id != channel);
                }
                Event::Request {
                    channel,
                    want_reply,
                    ..
                } => {
                    assert!(self.live.contains_key(&channel), "request on {channel}");
                    if want_reply {
                        self.pending_replies.push(channel);
                    }
                }
                Event::Eof { channel } => {
                    assert!(self.live.contains_key(&channel), "EOF on {channel}");
                }
                Event::GlobalRequest { want_reply, .. } => {
                    self.global_theirs += u32::from(want_reply);
                }
                Event::RequestResult { channel, .. } => {
                    let pending = self.live.get_mut(&channel).map(|c| &mut c.ours_pending);
                    match pending {
                        Some(n) if *n > 0 => *n -= 1,
                        _ => panic!("a request result on {channel} nobody waited for"),
                    }
                }
                Event::GlobalResult { .. } => {
                    assert!(self.global_ours > 0, "a global result nobody waited for");
                    self.global_ours -= 1;
                }
                Event::Writable { channel } => {
                    assert!(
                        self.ch.window(channel) > 0,
                        "channel {channel} writable with a shut window"
                    );
                }
            }
        }
    }

    /// Reads our output as the peer would and checks every connection message in it.
    /// `context` is the channel the call was about, the only one a WINDOW_ADJUST may be
    /// for. Returns the number of packets.
    fn take_output(&mut self, context: Option<u32>) -> usize {
        let before = self.wire.len();
        self.t.poll_transmit(&mut self.wire);
        assert!(
            !self.quiet || self.wire.len() == before,
            "output after the connection closed"
        );
        self.quiet = self.closed;
        if self.opaque {
            self.wire.clear();
            return 0;
        }

        let mut wire = std::mem::take(&mut self.wire);
        let mut start = 0;
        let mut packets = 0;
        loop {
            let (len, payload) = match self.opener.open(&mut wire[start..]) {
                Ok(Opened::Packet { len, payload, .. }) => (len, payload),
                Ok(Opened::NeedMore(_)) => break,
                Err(e) => panic!("our own output does not open: {e}"),
            };
            let Some(payload) = wire.get(start..).and_then(|w| w.get(payload)) else {
                panic!("a payload outside its packet");
            };
            packets += 1;
            if payload.first() == Some(&MessageNumber::NEWKEYS.0) {
                self.opaque = true;
                wire.clear();
                start = 0;
                break;
            }
            self.emitted(payload, context);
            start += len;
        }
        wire.drain(..start);
        self.wire = wire;
        packets
    }

    fn emitted(&mut self, payload: &[u8], context: Option<u32>) {
        let Some(&n) = payload.first() else {
            panic!("we sent an empty payload");
        };
        if !(MessageNumber::GLOBAL_REQUEST.0..=MessageNumber::CHANNEL_FAILURE.0).contains(&n) {
            return;
        }
        let msg = match Message::parse(payload) {
            Ok(msg) => msg,
            Err(e) => panic!("we sent message {n} that our own parser refuses: {e}"),
        };
        let window = self.config.window;
        match msg {
            Message::ChannelOpen(m) => {
                assert_announced(m.initial_window, m.max_packet, window);
                let old = self.live.insert(
                    m.sender,
                    Chan {
                        advertised: u64::from(m.initial_window),
                        ..Chan::default()
                    },
                );
                assert!(old.is_none(), "CHANNEL_OPEN reuses live id {}", m.sender);
                self.parting.remove(&m.sender);
            }
            Message::ChannelOpenConfirmation(m) => {
                assert_announced(m.initial_window, m.max_packet, window);
                let Some(c) = self.live.get_mut(&m.sender) else {
                    panic!("we confirmed channel {}, which is not live", m.sender);
                };
                assert_eq!(c.advertised, 0, "channel {} confirmed twice", m.sender);
                c.advertised = u64::from(m.initial_window);
                self.outcome.opened += 1;
            }
            // A CLOSE we send by ourselves: in answer to the peer's, or for a channel the
            // peer confirmed with an unusable maximum packet size.
            Message::ChannelClose(_) => {
                if let Some(c) = context.and_then(|id| self.live.get_mut(&id)) {
                    c.close_sent = true;
                }
            }
            Message::ChannelWindowAdjust(m) => {
                let c = context.and_then(|id| self.live.get_mut(&id));
                let Some(c) = c else {
                    panic!("a window adjust no call asked for: {m:?} in context {context:?}");
                };
                assert!(m.bytes_to_add > 0, "an empty window adjust");
                c.advertised += u64::from(m.bytes_to_add);
            }
            _ => {}
        }
    }

    /// The checks after every step.
    fn check(&self) {
        if self.closed {
            assert!(self.t.is_closed(), "closed, but the transport is not");
            return;
        }
        assert!(!self.t.is_closed(), "the transport closed without an error");
        let cap = usize::try_from(self.config.max_channels).unwrap_or(usize::MAX);
        assert!(
            self.ch.len() <= cap && self.ch.slot_count() <= cap,
            "{} live channels in {} slots, cap {cap}",
            self.ch.len(),
            self.ch.slot_count()
        );
        assert_eq!(
            self.ch.len(),
            self.live.len() + self.parting.len(),
            "{} channels held; live: {:?}, parting: {:?}",
            self.ch.len(),
            self.live,
            self.parting
        );
        for (&id, c) in &self.live {
            let buffered = self.ch.buffered(id) as u64;
            assert_eq!(buffered, c.held, "bytes held on channel {id}");
            assert!(
                buffered <= u64::from(self.config.window.max) && c.received <= c.advertised,
                "channel {id}: {c:?}"
            );
        }
        let windows: u64 = self
            .live
            .keys()
            .map(|&id| u64::from(self.ch.receive_window(id)))
            .sum();
        let floors = self.live.len() as u64 * u64::from(WINDOW_FLOOR);
        assert!(
            windows <= self.config.budget + floors,
            "{windows} bytes of windows on {} channels, budget {}",
            self.live.len(),
            self.config.budget
        );
    }

    /// Once closed, every call fails and sends nothing.
    fn check_every_call_fails(&mut self) {
        let now = self.now;
        let kind = channel_type(0);
        let body = request_body(3);
        let global = global_body(5);
        let results = [
            self.ch.open(&mut self.t, &kind).map(drop),
            self.ch.accept(&mut self.t, 0),
            self.ch
                .reject(&mut self.t, 0, OpenFailureReason::CONNECT_FAILED, ""),
            self.ch.request(&mut self.t, 0, &body, true),
            self.ch.reply(&mut self.t, 0, true),
            self.ch.global_request(&mut self.t, &global, true),
            self.ch.reply_global(&mut self.t, true, None),
            self.ch.send_data(&mut self.t, 0, false, b"x").map(drop),
            self.ch.consumed(&mut self.t, 0, 1, now),
            self.ch.eof(&mut self.t, 0),
            self.ch.close(&mut self.t, 0),
            self.ch
                .handle(&mut self.t, &[0x60, 0, 0, 0, 0], 0, now)
                .map(drop),
        ];
        for (i, result) in results.into_iter().enumerate() {
            assert!(
                result.is_err(),
                "call {i} succeeded after the connection closed"
            );
        }
        assert!(self.ch.poll_event().is_none(), "an event after closing");
        self.take_output(None);
    }
}
