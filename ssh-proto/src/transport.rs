//! The SSH transport layer (RFC 4253) as a sans-IO state machine, for both roles.
//!
//! [`Transport`] owns no socket, thread or clock. The caller drives it:
//!
//! 1. Create it with [`Transport::new`]; it queues our version line and first KEXINIT.
//! 2. Append bytes read from the socket to a buffer it owns and call
//!    [`Transport::decode`] in a loop. Each call consumes bytes from the front of that
//!    buffer and may return one packet for the layer above (service requests,
//!    authentication and connection messages). Transport messages are handled inside. A
//!    call that consumes nothing and returns no packet needs more input.
//! 3. After every call, take [`Transport::poll_event`] until it returns `None`, and answer
//!    what needs an answer (a client must call [`Transport::accept_host_key`] or
//!    [`Transport::reject_host_key`] after [`Event::HostKey`]).
//! 4. Send messages of the layer above with [`Transport::send`]; while a key exchange runs
//!    they are held and go out after it, and [`Transport::can_send`] says when to stop
//!    producing more.
//! 5. Move bytes to send with [`Transport::poll_transmit`] and write them to the socket.
//! 6. Sleep no later than [`Transport::poll_timeout`] and then call
//!    [`Transport::handle_timeout`].
//!
//! Any error ends the connection: the call returns it, a DISCONNECT is queued for the
//! peer (unless the peer disconnected first), and every later call returns
//! [`Error::Closed`]. Flush the output and close the socket.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use zeroize::{Zeroize, Zeroizing};

use crate::algorithms::{Algorithm, Negotiated};
use crate::config::{Config, DEFAULT_SOFTWARE, Rng};
use crate::crypto::Digest;
use crate::error::Error;
use crate::hostkey::{PublicKey, SignatureAlg};
use crate::kex::{self, ClientSecret, KexInit, SessionKeys};
use crate::msg::{DisconnectReason, MessageNumber};
use crate::packet::{DirectionKeys, Opened, Opener, Sealer};
use crate::rekey::RekeyCounters;
use crate::role::Role;
use crate::timer::{Timer, TimerTable};
use crate::version::{self, PeerVersion, VersionReader};
use crate::wire::{Reader, Writer};

/// Something the application must know or decide.
#[derive(Debug)]
pub enum Event {
    /// Client role, first key exchange: the server proved it holds this host key (its
    /// signature over the exchange hash verified). Decide whether it is the right key and
    /// call [`Transport::accept_host_key`] or [`Transport::reject_host_key`]. No input is
    /// consumed until then.
    HostKey(PublicKey),
    /// A key exchange finished and new keys are in use both ways.
    KeysReady { negotiated: Negotiated, rekey: bool },
    /// Client role: the server's RFC 8308 extensions.
    ExtInfo(ExtInfo),
}

/// What the server announced in SSH_MSG_EXT_INFO (RFC 8308 section 3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtInfo {
    /// `server-sig-algs`: the signature algorithms the server accepts for user keys.
    pub server_sig_algs: Option<String>,
    /// `ping@openssh.com`: the server answers PING.
    pub ping: bool,
}

/// Traffic counters over the life of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes put on the wire and taken off it, packet framing and MACs included.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Key exchanges finished after the first.
    pub rekeys: u64,
}

/// One message for the layer above, decrypted in the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet<'b> {
    /// The packet's sequence number, for SSH_MSG_UNIMPLEMENTED.
    pub seq: u32,
    /// The payload, message number first.
    pub payload: &'b [u8],
}

/// What one call to [`Transport::decode`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'b> {
    /// Bytes to drop from the front of the input buffer.
    pub consumed: usize,
    pub packet: Option<Packet<'b>>,
}

impl Decoded<'_> {
    const NOTHING: Self = Self {
        consumed: 0,
        packet: None,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Version,
    Packets,
    Closed,
}

/// What a running key exchange waits for.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Our KEXINIT is out; the peer's has not come.
    KexInit,
    /// Server: waiting for KEX_ECDH_INIT.
    EcdhInit,
    /// Client: waiting for KEX_ECDH_REPLY.
    EcdhReply,
    /// Client: waiting for the application to judge the host key.
    HostKeyDecision,
    /// Our NEWKEYS is out; waiting for the peer's.
    NewKeys,
}

/// One key exchange in progress.
struct KexRun {
    step: Step,
    /// Our KEXINIT payload, hashed as I_C or I_S.
    ours: Vec<u8>,
    theirs: Vec<u8>,
    negotiated: Option<Negotiated>,
    /// The peer guessed its first kex packet wrong; drop the next packet (RFC 4253
    /// section 7).
    skip_guess: bool,
    client_secret: Option<ClientSecret>,
    q_c: Vec<u8>,
    /// Client, first exchange: keys waiting for the host key decision.
    pending: Option<SessionKeys>,
    /// Keys for incoming packets, installed when the peer's NEWKEYS arrives.
    incoming: Option<DirectionKeys>,
    newkeys_sent: bool,
    /// The sequence number our KEXINIT went out with, to recognise a peer that answers
    /// it with UNIMPLEMENTED.
    kexinit_seq: u32,
}

/// An SSH transport connection, client or server. See the module docs for the call order.
pub struct Transport {
    role: Role,
    config: Arc<Config>,
    rng: Box<dyn Rng>,
    phase: Phase,
    versions: VersionReader,
    our_version: Vec<u8>,
    peer_version: Option<PeerVersion>,
    opener: Opener,
    sealer: Sealer,
    /// Sealed bytes waiting for the socket.
    out: Vec<u8>,
    /// Messages of the layer above, each behind a u32 length, held during key exchange.
    held: Vec<u8>,
    kex: Option<Box<KexRun>>,
    session_id: Option<Digest>,
    first_kex_done: bool,
    strict: bool,
    /// Server: the client offered ext-info-c, so EXT_INFO follows our first NEWKEYS.
    send_ext_info: bool,
    /// Client: the next packet may be EXT_INFO (RFC 8308 section 2.4).
    ext_info_window: bool,
    ext_info_seen: bool,
    server_host_key: Option<PublicKey>,
    negotiated: Option<Negotiated>,
    authenticated: bool,
    preauth_bytes: u64,
    preauth_packets: u64,
    counters: RekeyCounters,
    stats: Stats,
    timers: TimerTable,
    last_now: Instant,
    events: VecDeque<Event>,
    error: Option<Error>,
}

impl core::fmt::Debug for Transport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transport")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("negotiated", &self.negotiated)
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Starts a connection: our version line and first KEXINIT are queued at once (RFC
    /// 4253 section 7.1 lets both sides send KEXINIT without waiting).
    pub fn new(config: Arc<Config>, role: Role, rng: Box<dyn Rng>, now: Instant) -> Self {
        // A software name that breaks RFC 4253 section 4.2 falls back to ours.
        let line = version::version_line(&config.software, None)
            .or_else(|_| version::version_line(DEFAULT_SOFTWARE, None))
            .unwrap_or_else(|_| b"SSH-2.0-gateway\r\n".to_vec());
        let our_version = line.strip_suffix(b"\r\n").unwrap_or(&line).to_vec();
        let mut timers = TimerTable::default();
        timers.set(Timer::Banner, now + config.banner_timeout);
        // A limit past what the clock can count means none.
        if let Some(at) = now.checked_add(config.preauth_timeout) {
            timers.set(Timer::PreAuth, at);
        }

        let mut t = Self {
            role,
            rng,
            phase: Phase::Version,
            versions: VersionReader::new(role),
            our_version,
            peer_version: None,
            opener: Opener::plain(),
            sealer: Sealer::plain(),
            out: line,
            held: Vec::new(),
            kex: None,
            session_id: None,
            first_kex_done: false,
            strict: false,
            send_ext_info: false,
            ext_info_window: false,
            ext_info_seen: false,
            server_host_key: None,
            negotiated: None,
            authenticated: false,
            preauth_bytes: 0,
            preauth_packets: 0,
            counters: RekeyCounters::new(now),
            stats: Stats::default(),
            timers,
            last_now: now,
            events: VecDeque::new(),
            error: None,
            config,
        };
        if !t.skips_kex() {
            t.start_kex(now);
        }
        t
    }

    #[cfg(feature = "fuzzing")]
    fn skips_kex(&self) -> bool {
        self.config.fuzz_skip_kex
    }

    #[cfg(not(feature = "fuzzing"))]
    fn skips_kex(&self) -> bool {
        false
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's identification string, without its line terminator.
    pub fn peer_version(&self) -> Option<&PeerVersion> {
        self.peer_version.as_ref()
    }

    /// The algorithms of the last finished key exchange.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The session identifier: the first exchange hash (RFC 4253 section 7.2).
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session_id.as_ref().map(Digest::as_bytes)
    }

    /// Client role: the server's host key, once the first key exchange verified it.
    pub fn server_host_key(&self) -> Option<&PublicKey> {
        self.server_host_key.as_ref()
    }

    /// Whether the first key exchange has finished both ways.
    pub fn is_ready(&self) -> bool {
        self.first_kex_done && self.phase == Phase::Packets
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Whether a key exchange is running now.
    pub fn is_rekeying(&self) -> bool {
        self.kex.is_some()
    }

    /// Tells the transport that authentication succeeded (RFC 4252 section 5.1): the
    /// pre-authentication deadline and traffic caps end, and PING gets answers.
    ///
    /// Rekeying waits for this: OpenSSH refuses a key re-exchange before authentication,
    /// so limits reached earlier take effect now.
    pub fn set_authenticated(&mut self) {
        self.authenticated = true;
        self.timers.stop(Timer::PreAuth);
        if self.first_kex_done && self.kex.is_none() && self.phase == Phase::Packets {
            let due = self.counters.deadline(&self.config.rekey);
            if due.is_some_and(|due| due <= self.last_now) {
                log::debug!("rekey reason=time");
                self.start_kex(self.last_now);
            } else {
                self.arm_rekey_timer();
                self.maybe_rekey();
            }
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Moves the bytes waiting to be sent into `out`. When `out` is empty the buffers are
    /// swapped, so nothing is copied and both keep their capacity.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            core::mem::swap(out, &mut self.out);
        } else {
            out.append(&mut self.out);
        }
    }

    /// Bytes waiting for [`Transport::poll_transmit`].
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Whether the layer above may send more now. False while a key exchange holds more
    /// than the configured limit, and after the connection closed.
    pub fn can_send(&self) -> bool {
        self.phase != Phase::Closed && self.held.len() < self.config.held_limit
    }

    /// The earliest deadline: call [`Transport::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            None
        } else {
            self.timers.next()
        }
    }

    /// Fires every deadline due at `now`: banner, authentication and key exchange
    /// deadlines end the connection; the rekey deadline starts a key exchange.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.check_open()?;
        self.last_now = now;
        while let Some(timer) = self.timers.take_expired(now) {
            match timer {
                Timer::Banner if self.phase == Phase::Version => {
                    return Err(self.fail(Error::Timeout("no version line from the peer")));
                }
                Timer::PreAuth if !self.authenticated => {
                    return Err(self.fail(Error::Timeout("authentication took too long")));
                }
                Timer::Kex if self.kex.is_some() => {
                    return Err(self.fail(Error::Timeout("key exchange took too long")));
                }
                Timer::Rekey if self.kex.is_none() && self.first_kex_done && self.authenticated => {
                    log::debug!("rekey reason=time");
                    self.start_kex(now);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Sends a message of the layer above. `fill` appends the payload, message number
    /// first, straight into the output buffer. During a key exchange the message is held
    /// and sent when new keys are in place (RFC 4253 section 7.1).
    pub fn send(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        self.try_send(|p| {
            fill(p);
            true
        })
        .map(drop)
    }

    /// As [`Transport::send`], but `fill` may decline by returning false, and then no
    /// message is sent and nothing of what it appended stays. Returns whether a message
    /// was sent (or held for after the key exchange).
    pub fn try_send(&mut self, fill: impl FnOnce(&mut Vec<u8>) -> bool) -> Result<bool, Error> {
        self.check_open()?;
        if self.holding() {
            let at = self.held.len();
            self.held.put_u32(0);
            if !fill(&mut self.held) {
                self.held.truncate(at);
                return Ok(false);
            }
            let len = (self.held.len() - at - 4) as u32;
            self.held[at..at + 4].copy_from_slice(&len.to_be_bytes());
            return Ok(true);
        }
        let n = self.sealer.try_seal_with(&mut self.out, fill);
        if n == 0 {
            return Ok(false);
        }
        self.sealed(n);
        self.maybe_rekey();
        Ok(true)
    }

    /// Sends a message whose length would say something about a secret in it (a password,
    /// keyboard-interactive answers): its padding rounds the packet up to a multiple of 64
    /// bytes, as OpenSSH does for the same messages. Otherwise as [`Transport::send`].
    pub fn send_secret(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        const ROUND_TO: usize = 64;
        self.check_open()?;
        if self.holding() {
            // Held messages are sealed later with ordinary padding; a key exchange is rare
            // enough during authentication that this is accepted.
            return self.send(fill);
        }
        let n = self.sealer.seal_padded(&mut self.out, ROUND_TO, fill);
        self.sealed(n);
        self.maybe_rekey();
        Ok(())
    }

    /// Replies SSH_MSG_UNIMPLEMENTED to the packet with sequence number `seq` (RFC 4253
    /// section 11.4), for messages the layer above does not know.
    pub fn send_unimplemented(&mut self, seq: u32) -> Result<(), Error> {
        self.send(|p| {
            p.put_u8(MessageNumber::UNIMPLEMENTED.0);
            p.put_u32(seq);
        })
    }

    /// Ends the connection with SSH_MSG_DISCONNECT. Flush the output, then close.
    pub fn disconnect(&mut self, reason: DisconnectReason, description: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.phase == Phase::Packets {
            self.seal_disconnect(reason, description);
        }
        self.phase = Phase::Closed;
        self.error = Some(Error::Closed);
        self.kex = None;
        self.held.zeroize();
    }

    /// Client role: the host key from [`Event::HostKey`] is trusted; finish the exchange.
    pub fn accept_host_key(&mut self) -> Result<(), Error> {
        self.check_open()?;
        let Some(run) = self
            .kex
            .as_mut()
            .filter(|r| r.step == Step::HostKeyDecision)
        else {
            return Err(Error::Misuse("no host key is waiting for a decision"));
        };
        let Some(keys) = run.pending.take() else {
            return Err(Error::Misuse("no host key is waiting for a decision"));
        };
        run.incoming = Some(keys.incoming);
        run.step = Step::NewKeys;
        self.send_newkeys(&keys.outgoing)
    }

    /// Client role: the host key from [`Event::HostKey`] is refused. The connection ends
    /// with HOST_KEY_NOT_VERIFIABLE and `why` is returned as the error.
    pub fn reject_host_key(&mut self, why: &str) -> Error {
        self.fail(Error::HostKey(why.to_owned().into()))
    }

    /// Decodes input from the front of `buf`, decrypting in place. Returns how much was
    /// consumed and, at most, one packet for the layer above. Call again while it
    /// consumes something.
    pub fn decode<'b>(&mut self, buf: &'b mut [u8], now: Instant) -> Result<Decoded<'b>, Error> {
        self.check_open()?;
        self.last_now = now;

        if self.phase == Phase::Version {
            return match self.versions.feed(buf) {
                Ok(None) => Ok(Decoded {
                    consumed: buf.len(),
                    packet: None,
                }),
                Ok(Some((consumed, peer))) => {
                    log::debug!("peer version={peer}");
                    self.peer_version = Some(peer);
                    self.phase = Phase::Packets;
                    self.timers.stop(Timer::Banner);
                    if self.skips_kex() {
                        self.skip_kex(now);
                    }
                    Ok(Decoded {
                        consumed: consumed.max(1),
                        packet: None,
                    })
                }
                Err(e) => {
                    let detail = e.to_string();
                    Err(self.fail(Error::protocol(e.reason(), detail)))
                }
            };
        }

        if self
            .kex
            .as_ref()
            .is_some_and(|r| r.step == Step::HostKeyDecision)
        {
            return Ok(Decoded::NOTHING);
        }

        let (len, range, seq) = match self.opener.open(buf) {
            Ok(Opened::NeedMore(_)) => return Ok(Decoded::NOTHING),
            Ok(Opened::Packet { len, payload, seq }) => (len, payload, seq),
            Err(e) => return Err(self.fail(e)),
        };
        self.counters.received(len);
        self.stats.bytes_received += len as u64;
        self.stats.packets_received += 1;
        if !self.authenticated {
            self.preauth_bytes = self.preauth_bytes.saturating_add(len as u64);
            self.preauth_packets += 1;
            if self.preauth_bytes > self.config.preauth_max_bytes
                || self.preauth_packets > self.config.preauth_max_packets
            {
                return Err(self.fail(Error::protocol(
                    DisconnectReason::PROTOCOL_ERROR,
                    "too much traffic before authentication",
                )));
            }
        }

        let whole: &'b [u8] = buf;
        let payload = &whole[range];
        match self.handle_packet(payload, seq, now) {
            Ok(deliver) => {
                self.maybe_rekey();
                let packet = deliver.then_some(Packet { seq, payload });
                Ok(Decoded {
                    consumed: len,
                    packet,
                })
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        match self.phase {
            Phase::Closed => Err(self.error.clone().unwrap_or(Error::Closed)),
            _ => Ok(()),
        }
    }

    /// Ends the connection for `e`, telling the peer why unless the peer left first.
    fn fail(&mut self, e: Error) -> Error {
        if self.phase == Phase::Closed {
            return e;
        }
        log::debug!("transport failed role={:?} error={e}", self.role);
        if self.phase == Phase::Packets && !matches!(e, Error::PeerDisconnected { .. }) {
            let text = match &e {
                Error::Protocol { detail, .. } => detail.to_string(),
                other => other.to_string(),
            };
            self.seal_disconnect(e.disconnect_reason(), &text);
        }
        self.phase = Phase::Closed;
        self.error = Some(Error::Closed);
        self.kex = None;
        self.held.zeroize();
        e
    }

    fn seal_disconnect(&mut self, reason: DisconnectReason, description: &str) {
        self.seal(|p| {
            p.put_u8(MessageNumber::DISCONNECT.0);
            p.put_u32(reason.0);
            p.put_string(description.as_bytes());
            p.put_string(b"");
        });
    }

    /// Whether messages of the layer above must wait: before the first key exchange and
    /// between our KEXINIT and our NEWKEYS.
    fn holding(&self) -> bool {
        !self.first_kex_done && !self.skips_kex()
            || self.kex.as_ref().is_some_and(|r| !r.newkeys_sent)
    }

    fn seal(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        let n = self.sealer.seal_with(&mut self.out, fill);
        self.sealed(n);
    }

    /// Counts a packet of `n` bytes just sealed into the output.
    fn sealed(&mut self, n: usize) {
        self.counters.sent(n);
        self.stats.bytes_sent += n as u64;
        self.stats.packets_sent += 1;
    }

    fn random<const N: usize>(&mut self) -> Zeroizing<[u8; N]> {
        let mut bytes = Zeroizing::new([0u8; N]);
        self.rng.fill(&mut bytes[..]);
        bytes
    }

    /// Sets the rekey-by-time timer from the current keys' start, or clears it when the
    /// configured limit never comes.
    fn arm_rekey_timer(&mut self) {
        match self.counters.deadline(&self.config.rekey) {
            Some(at) => self.timers.set(Timer::Rekey, at),
            None => self.timers.stop(Timer::Rekey),
        }
    }

    fn maybe_rekey(&mut self) {
        if self.first_kex_done
            && self.authenticated
            && self.kex.is_none()
            && self.phase == Phase::Packets
            && self.counters.volume_due(&self.config.rekey)
        {
            log::debug!("rekey reason=volume");
            self.start_kex(self.last_now);
        }
    }

    /// The host key algorithms we can offer: a client offers its preferences, a server
    /// those its keys can sign.
    fn host_key_algs(&self) -> Vec<SignatureAlg> {
        let prefs = &self.config.algorithms.host_key;
        match self.role {
            Role::Client => prefs.clone(),
            Role::Server => prefs
                .iter()
                .copied()
                .filter(|alg| {
                    self.config
                        .host_keys
                        .iter()
                        .any(|k| k.public().supports(*alg))
                })
                .collect(),
        }
    }

    fn start_kex(&mut self, now: Instant) {
        let cookie = *self.random::<16>();
        let first = !self.first_kex_done;
        let ours = kex::build_kexinit(
            self.role,
            &self.config.algorithms,
            &self.host_key_algs(),
            cookie,
            first,
            self.config.strict_kex,
        );
        let kexinit_seq = self.sealer.seq;
        self.seal(|p| p.put_raw(&ours));
        self.timers.set(Timer::Kex, now + self.config.kex_timeout);
        self.timers.stop(Timer::Rekey);
        self.kex = Some(Box::new(KexRun {
            step: Step::KexInit,
            ours,
            theirs: Vec::new(),
            negotiated: None,
            skip_guess: false,
            client_secret: None,
            q_c: Vec::new(),
            pending: None,
            incoming: None,
            newkeys_sent: false,
            kexinit_seq,
        }));
    }

    /// Fuzzing builds: behave as if a strict key exchange without encryption had
    /// finished.
    fn skip_kex(&mut self, now: Instant) {
        self.first_kex_done = true;
        self.strict = true;
        self.session_id = Some(Digest::new(&[0; 32]));
        self.counters.reset(now);
        self.arm_rekey_timer();
    }

    /// Handles one packet. Returns whether it goes to the layer above.
    fn handle_packet(&mut self, payload: &[u8], seq: u32, now: Instant) -> Result<bool, Error> {
        let msg = MessageNumber(payload.first().copied().unwrap_or(0));
        let ext_info_window = core::mem::take(&mut self.ext_info_window);

        if let Some(run) = self.kex.as_mut()
            && run.skip_guess
        {
            run.skip_guess = false;
            log::debug!("ignoring the peer's wrongly guessed kex packet msg={msg:?}");
            return Ok(false);
        }

        // Strict key exchange (OpenSSH PROTOCOL section 1.10): during the first exchange
        // only its own messages may arrive, and KEXINIT must be the very first packet.
        if !self.first_kex_done && !self.skips_kex() {
            let strict_known = self.kex.as_ref().is_some_and(|r| r.negotiated.is_some());
            let kex_message = matches!(
                msg,
                MessageNumber::KEXINIT
                    | MessageNumber::NEWKEYS
                    | MessageNumber::KEX_ECDH_INIT
                    | MessageNumber::KEX_ECDH_REPLY
                    | MessageNumber::DISCONNECT
            );
            if strict_known && self.strict && !kex_message {
                return Err(Error::protocol(
                    DisconnectReason::PROTOCOL_ERROR,
                    format!("strict key exchange violated: {msg:?} during the first key exchange"),
                ));
            }
            // Only the generic transport messages (1 to 4) may come alongside the first
            // key exchange; a service request or anything above needs keys in place.
            if !kex_message && !matches!(msg.0, 1..=4) {
                return Err(Error::protocol(
                    DisconnectReason::PROTOCOL_ERROR,
                    format!("{msg:?} before the first key exchange finished"),
                ));
            }
        }

        match msg {
            MessageNumber::DISCONNECT => {
                let mut r = Reader::new(&payload[1..]);
                let reason = DisconnectReason(r.u32("reason code")?);
                let description = String::from_utf8_lossy(r.string("description")?);
                Err(Error::PeerDisconnected {
                    reason,
                    description: description.into_owned(),
                })
            }
            MessageNumber::IGNORE => Ok(false),
            MessageNumber::DEBUG => {
                let mut r = Reader::new(&payload[1..]);
                let display = r.bool("always_display")?;
                let text = r.string("message")?;
                log::debug!(
                    "peer debug message always_display={display} text={:?}",
                    String::from_utf8_lossy(&text[..text.len().min(256)])
                );
                Ok(false)
            }
            MessageNumber::UNIMPLEMENTED => {
                let seq = Reader::new(&payload[1..]).u32("sequence number")?;
                if self.kex.as_ref().is_some_and(|r| r.kexinit_seq == seq) {
                    return Err(Error::protocol(
                        DisconnectReason::KEY_EXCHANGE_FAILED,
                        "the peer refused our key exchange",
                    ));
                }
                log::debug!("peer does not implement our packet seq={seq}");
                Ok(false)
            }
            MessageNumber::SERVICE_REQUEST if self.role == Role::Server => Ok(true),
            MessageNumber::SERVICE_ACCEPT if self.role == Role::Client => Ok(true),
            MessageNumber::EXT_INFO => self.handle_ext_info(payload, ext_info_window),
            MessageNumber::KEXINIT => self.handle_kexinit(payload, seq, now),
            MessageNumber::KEX_ECDH_INIT if self.role == Role::Server => {
                self.handle_ecdh_init(payload)
            }
            MessageNumber::KEX_ECDH_REPLY if self.role == Role::Client => {
                self.handle_ecdh_reply(payload)
            }
            MessageNumber::NEWKEYS => self.handle_newkeys(now),
            MessageNumber::PING => {
                // OpenSSH PROTOCOL section 1.9: answered only after authentication and
                // outside key exchange, so a flood before that costs us nothing.
                if self.authenticated && self.kex.is_none() {
                    let data = Reader::new(&payload[1..]).string("ping data")?;
                    self.seal(|p| {
                        p.put_u8(MessageNumber::PONG.0);
                        p.put_string(data);
                    });
                }
                Ok(false)
            }
            MessageNumber::PONG => Ok(false),
            _ if msg.is_transport() => {
                if self.kex.is_some() {
                    return Err(Error::protocol(
                        DisconnectReason::PROTOCOL_ERROR,
                        format!("unexpected {msg:?} during key exchange"),
                    ));
                }
                self.seal(|p| {
                    p.put_u8(MessageNumber::UNIMPLEMENTED.0);
                    p.put_u32(seq);
                });
                Ok(false)
            }
            _ if !self.authenticated && msg.0 >= 80 => Err(Error::protocol(
                DisconnectReason::PROTOCOL_ERROR,
                format!("{msg:?} before authentication"),
            )),
            _ => Ok(true),
        }
    }

    /// RFC 8308 section 2.4: a client accepts EXT_INFO only as the first packet after the
    /// first NEWKEYS, and only once.
    fn handle_ext_info(&mut self, payload: &[u8], in_window: bool) -> Result<bool, Error> {
        if self.role != Role::Client || !in_window || self.ext_info_seen {
            return Err(Error::protocol(
                DisconnectReason::PROTOCOL_ERROR,
                "EXT_INFO where it is not allowed",
            ));
        }
        self.ext_info_seen = true;
        let mut r = Reader::new(&payload[1..]);
        let count = r.u32("extension count")?;
        let mut info = ExtInfo::default();
        // The count is not trusted: each round reads, and a short packet ends it with an
        // error at the first missing field.
        for _ in 0..count {
            let name = r.string("extension name")?;
            let value = r.string("extension value")?;
            match name {
                b"server-sig-algs" => {
                    let list = crate::wire::NameList::parse(value).ok_or(Error::protocol(
                        DisconnectReason::PROTOCOL_ERROR,
                        "bad server-sig-algs",
                    ))?;
                    info.server_sig_algs = Some(list.as_str().to_owned());
                }
                b"ping@openssh.com" => info.ping = value == b"0",
                _ => {}
            }
        }
        log::debug!("server extensions {info:?}");
        self.events.push_back(Event::ExtInfo(info));
        Ok(false)
    }

    fn handle_kexinit(&mut self, payload: &[u8], seq: u32, now: Instant) -> Result<bool, Error> {
        if self.kex.is_none() {
            self.start_kex(now);
        }
        let first = !self.first_kex_done;
        let role = self.role;
        let strict_offered = self.config.strict_kex && first;
        let Some(run) = self.kex.as_mut() else {
            return Err(Error::Misuse("key exchange vanished"));
        };
        if run.step != Step::KexInit {
            return Err(Error::protocol(
                DisconnectReason::PROTOCOL_ERROR,
                "KEXINIT twice",
            ));
        }
        run.theirs = payload.to_vec();

        let ours = KexInit::parse(&run.ours)?;
        let theirs = KexInit::parse(&run.theirs)?;
        let (client, server) = match role {
            Role::Client => (&ours, &theirs),
            Role::Server => (&theirs, &ours),
        };
        let mut negotiated = kex::negotiate(client, server, strict_offered)?;
        if first {
            self.strict = negotiated.strict_kex;
            if self.strict && seq != 0 {
                return Err(Error::protocol(
                    DisconnectReason::PROTOCOL_ERROR,
                    "strict key exchange violated: KEXINIT was not the first packet",
                ));
            }
            self.send_ext_info = role == Role::Server && theirs.kex.contains(kex::EXT_INFO_CLIENT);
        }
        negotiated.strict_kex = self.strict;
        log::debug!(
            "negotiated kex={} hostkey={} cipher_c2s={} cipher_s2c={} mac_c2s={:?} \
             mac_s2c={:?} strict={}",
            negotiated.kex.name(),
            negotiated.host_key.name(),
            negotiated.cipher_c2s.name(),
            negotiated.cipher_s2c.name(),
            negotiated.mac_c2s.map(Algorithm::name),
            negotiated.mac_s2c.map(Algorithm::name),
            negotiated.strict_kex,
        );

        run.skip_guess = theirs.first_kex_packet_follows && !kex::guess_was_right(client, server);
        run.negotiated = Some(negotiated);
        match role {
            Role::Server => {
                run.step = Step::EcdhInit;
                Ok(false)
            }
            Role::Client => {
                let random = self.random::<96>();
                let (secret, q_c) = kex::client_start(negotiated.kex, &random);
                let Some(run) = self.kex.as_mut() else {
                    return Err(Error::Misuse("key exchange vanished"));
                };
                run.client_secret = Some(secret);
                run.step = Step::EcdhReply;
                self.seal(|p| {
                    p.put_u8(MessageNumber::KEX_ECDH_INIT.0);
                    p.put_string(&q_c);
                });
                if let Some(run) = self.kex.as_mut() {
                    run.q_c = q_c;
                }
                Ok(false)
            }
        }
    }

    /// Takes the running key exchange out of `self` if it is at `step`. Handlers put it
    /// back when they are done; on error it is dropped with the connection.
    fn take_step(&mut self, step: Step, msg: &str) -> Result<(Box<KexRun>, Negotiated), Error> {
        match self.kex.take() {
            Some(run) if run.step == step => match run.negotiated {
                Some(n) => Ok((run, n)),
                None => Err(Error::Misuse("negotiation missing")),
            },
            _ => Err(Error::protocol(
                DisconnectReason::PROTOCOL_ERROR,
                format!("unexpected {msg}"),
            )),
        }
    }

    fn peer_version_line(&self) -> &[u8] {
        self.peer_version.as_ref().map_or(&[][..], |v| v.as_bytes())
    }

    /// Server: RFC 5656 section 4 / RFC 8731 section 3: answer Q_C, sign H, send NEWKEYS.
    fn handle_ecdh_init(&mut self, payload: &[u8]) -> Result<bool, Error> {
        let (mut run, negotiated) = self.take_step(Step::EcdhInit, "KEX_ECDH_INIT")?;
        let mut r = Reader::new(&payload[1..]);
        let q_c = r.string("Q_C")?;
        r.finish()?;

        let config = Arc::clone(&self.config);
        let provider = config.provider;
        let Some(host_key) = config
            .host_keys
            .iter()
            .find(|k| k.public().supports(negotiated.host_key))
        else {
            return Err(Error::Misuse("no host key for the negotiated algorithm"));
        };
        let random = self.random::<64>();
        let (q_s, k) = kex::server_respond(provider, negotiated.kex, q_c, &random)?;

        let k_s = host_key.public().to_blob();
        let inputs = kex::HashInputs {
            client_version: self.peer_version_line(),
            server_version: &self.our_version,
            client_kexinit: &run.theirs,
            server_kexinit: &run.ours,
            host_key: &k_s,
            q_c,
            q_s: &q_s,
        };
        let alg = kex::hash_alg(negotiated.kex);
        let h = kex::exchange_hash(provider, alg, &inputs, &k);
        let session_id = *self.session_id.get_or_insert(h);
        let signature = host_key
            .sign(provider, negotiated.host_key, h.as_bytes())
            .map_err(|_| Error::Misuse("the host key cannot sign with the negotiated algorithm"))?;
        let keys = kex::session_keys(provider, self.role, &negotiated, &k, &h, &session_id);

        self.seal(|p| {
            p.put_u8(MessageNumber::KEX_ECDH_REPLY.0);
            p.put_string(&k_s);
            p.put_string(&q_s);
            p.put_string(&signature);
        });
        run.incoming = Some(keys.incoming);
        run.step = Step::NewKeys;
        self.kex = Some(run);
        self.send_newkeys(&keys.outgoing)?;
        Ok(false)
    }

    /// Client: check the server's signature over H, then ask the application about the
    /// host key (first exchange) or insist it is unchanged (rekey).
    fn handle_ecdh_reply(&mut self, payload: &[u8]) -> Result<bool, Error> {
        let (mut run, negotiated) = self.take_step(Step::EcdhReply, "KEX_ECDH_REPLY")?;
        let mut r = Reader::new(&payload[1..]);
        let k_s = r.string("K_S")?;
        let q_s = r.string("Q_S")?;
        let signature = r.string("signature")?;
        r.finish()?;

        let host_key = PublicKey::from_blob(k_s)
            .map_err(|e| Error::HostKey(format!("server host key: {e}").into()))?;
        if !host_key.supports(negotiated.host_key) {
            return Err(Error::HostKey(
                "host key does not match the negotiated type".into(),
            ));
        }
        let provider = self.config.provider;
        let Some(secret) = run.client_secret.take() else {
            return Err(Error::Misuse("client secret missing"));
        };
        let k = kex::client_finish(provider, &secret, q_s)?;
        drop(secret);
        let inputs = kex::HashInputs {
            client_version: &self.our_version,
            server_version: self.peer_version_line(),
            client_kexinit: &run.ours,
            server_kexinit: &run.theirs,
            host_key: k_s,
            q_c: &run.q_c,
            q_s,
        };
        let alg = kex::hash_alg(negotiated.kex);
        let h = kex::exchange_hash(provider, alg, &inputs, &k);
        host_key
            .verify(provider, negotiated.host_key, h.as_bytes(), signature)
            .map_err(|e| {
                Error::HostKey(format!("the server's signature did not verify: {e}").into())
            })?;

        let session_id = *self.session_id.get_or_insert(h);
        let keys = kex::session_keys(provider, self.role, &negotiated, &k, &h, &session_id);

        if self.first_kex_done {
            if self.server_host_key.as_ref() != Some(&host_key) {
                return Err(Error::HostKey(
                    "the server's host key changed during rekey".into(),
                ));
            }
            run.incoming = Some(keys.incoming);
            run.step = Step::NewKeys;
            self.kex = Some(run);
            self.send_newkeys(&keys.outgoing)?;
        } else {
            run.pending = Some(keys);
            run.step = Step::HostKeyDecision;
            self.kex = Some(run);
            self.server_host_key = Some(host_key.clone());
            self.events.push_back(Event::HostKey(host_key));
        }
        Ok(false)
    }

    /// Sends NEWKEYS, switches outgoing keys, and releases held messages.
    fn send_newkeys(&mut self, outgoing: &DirectionKeys) -> Result<(), Error> {
        self.seal(|p| p.put_u8(MessageNumber::NEWKEYS.0));
        let pad = *self.random::<255>();
        self.sealer.install(self.config.provider, outgoing, pad)?;
        if self.strict {
            self.sealer.seq = 0;
        }
        if let Some(run) = self.kex.as_mut() {
            run.newkeys_sent = true;
        }

        if !self.first_kex_done && self.send_ext_info {
            let sig_algs: Vec<&str> = SignatureAlg::ALL.iter().map(|a| a.name()).collect();
            self.seal(|p| {
                p.put_u8(MessageNumber::EXT_INFO.0);
                p.put_u32(2);
                p.put_string(b"server-sig-algs");
                p.put_name_list(sig_algs);
                p.put_string(b"ping@openssh.com");
                p.put_string(b"0");
            });
        }

        // Held messages may carry passwords: the buffer is wiped once they are sealed.
        let held = Zeroizing::new(core::mem::take(&mut self.held));
        let mut r = Reader::new(&held);
        while let Ok(message) = r.string("held message") {
            self.seal(|p| p.put_raw(message));
        }
        Ok(())
    }

    fn handle_newkeys(&mut self, now: Instant) -> Result<bool, Error> {
        let (mut run, negotiated) = self.take_step(Step::NewKeys, "NEWKEYS")?;
        let Some(incoming) = run.incoming.take().filter(|_| run.newkeys_sent) else {
            return Err(Error::protocol(
                DisconnectReason::PROTOCOL_ERROR,
                "unexpected NEWKEYS",
            ));
        };
        self.opener.install(self.config.provider, &incoming)?;
        if self.strict {
            self.opener.seq = 0;
        }

        let rekey = self.first_kex_done;
        self.stats.rekeys += u64::from(rekey);
        if !rekey && self.role == Role::Client {
            self.ext_info_window = true;
        }
        self.first_kex_done = true;
        self.kex = None;
        self.negotiated = Some(negotiated);
        self.counters.reset(now);
        self.timers.stop(Timer::Kex);
        self.arm_rekey_timer();
        log::debug!("keys ready role={:?} rekey={rekey}", self.role);
        self.events
            .push_back(Event::KeysReady { negotiated, rekey });
        Ok(false)
    }
}
