//! Helpers shared by the hostile-input tests of the transport (`hostile_version.rs`,
//! `hostile_packets.rs`, `hostile_kex.rs`), which turn what a hostile peer may try into
//! deterministic tests: bytes go into the sans-IO core, and each test checks what comes out
//! (the error and its disconnect reason, the SSH_MSG_DISCONNECT queued for the peer, a
//! reply, or silence) and that what the core holds stays under a stated bound.
//!
//! Three kinds of peer appear. Plain byte strings go straight into `Transport::decode`.
//! The simulator's `Pair` is two of our own transports with the bytes in flight exposed,
//! so a test can flip, cut, delete or insert bytes like a man in the middle. And [`Peer`]
//! is a peer written by hand from the crate's public parts (the KEXINIT builder, the key
//! exchange primitives, the packet sealer and opener), so it can send what our transport
//! never would: a low-order X25519 point, a guessed packet, a misplaced EXT_INFO, a host
//! key that changes on rekey.

use std::sync::Arc;
use std::time::Instant;

use ssh_proto::Error;
use ssh_proto::algorithms::{Algorithm, Cipher, Kex, Mac, Negotiated, Preferences};
use ssh_proto::config::{Config, Rng};
use ssh_proto::crypto::{CryptoProvider, Digest, default_provider};
use ssh_proto::hostkey::{HostKeyPair, PublicKey, SignatureAlg};
use ssh_proto::kex::{self, HashInputs, KexInit, SessionKeys};
use ssh_proto::msg::{DisconnectReason, MessageNumber};
use ssh_proto::packet::{DirectionKeys, Opened, Opener, Sealer};
use ssh_proto::role::Role;
use ssh_proto::sim::{Cut, Pair, SeededRng};
use ssh_proto::transport::{Event, Transport};
use ssh_proto::wire::{Reader, Writer};

// ---------------------------------------------------------------------------------------
// Configurations and plain packets

#[expect(
    clippy::disallowed_methods,
    reason = "the tests' clock needs an origin; only differences from it matter"
)]
pub fn origin() -> Instant {
    Instant::now()
}

pub fn provider() -> &'static dyn CryptoProvider {
    default_provider()
}

pub fn host_key(seed: u8) -> HostKeyPair {
    HostKeyPair::ed25519_from_seed(provider(), &[seed; 32])
}

pub fn client_config() -> Config {
    Config::default()
}

pub fn server_config() -> Config {
    Config {
        host_keys: vec![host_key(7)],
        ..Config::default()
    }
}

/// Preferences that allow one key exchange, cipher and MAC.
pub fn only(kex: Kex, cipher: Cipher, mac: Mac) -> Preferences {
    Preferences {
        kex: vec![kex],
        ciphers: vec![cipher],
        macs: vec![mac],
        ..Preferences::default()
    }
}

/// Every cipher with every MAC it can be used with (an AEAD cipher ignores the MAC).
pub fn cipher_suites() -> Vec<(Cipher, Mac)> {
    let mut out = Vec::new();
    for &cipher in Cipher::ALL {
        if cipher.is_aead() {
            out.push((cipher, Mac::HmacSha256Etm));
        } else {
            out.extend(Mac::ALL.iter().map(|&mac| (cipher, mac)));
        }
    }
    out
}

/// The MAC tag length a suite appends to every packet.
pub fn tag_len(cipher: Cipher, mac: Mac) -> usize {
    if cipher.is_aead() { 16 } else { mac.tag_len() }
}

/// How many bytes of a packet its receiver needs to learn the length: the first cipher
/// block when the length is encrypted with the rest (CTR without encrypt-then-MAC), four
/// bytes otherwise.
pub fn length_header_len(cipher: Cipher, mac: Mac) -> usize {
    if cipher.is_aead() || mac.is_etm() {
        4
    } else {
        16
    }
}

/// A plaintext binary packet (RFC 4253 section 6) around `payload`, as sent before keys.
pub fn plain_packet(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Sealer::plain().seal_with(&mut out, |p| p.extend_from_slice(payload));
    out
}

/// A plaintext packet with every framing field chosen by the caller, right or wrong.
pub fn raw_packet(packet_length: u32, padding_length: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_u32(packet_length);
    out.put_u8(padding_length);
    out.put_raw(body);
    out
}

/// The message `number` followed by `filler` bytes.
pub fn message(number: MessageNumber, filler: usize) -> Vec<u8> {
    let mut m = vec![number.0];
    m.resize(1 + filler, 0x61);
    m
}

/// SSH_MSG_IGNORE carrying `len` bytes of data.
pub fn ignore(len: usize) -> Vec<u8> {
    let mut m = vec![MessageNumber::IGNORE.0];
    m.put_string(&vec![0x69; len]);
    m
}

pub fn ping(data: &[u8]) -> Vec<u8> {
    let mut m = vec![MessageNumber::PING.0];
    m.put_string(data);
    m
}

/// SSH_MSG_EXT_INFO (RFC 8308 section 2.3) announcing `count` extensions and holding
/// `extensions`, which need not agree with the count.
pub fn ext_info(count: u32, extensions: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut m = vec![MessageNumber::EXT_INFO.0];
    m.put_u32(count);
    for (name, value) in extensions {
        m.put_string(name);
        m.put_string(value);
    }
    m
}

pub fn debug_message(text: &str) -> Vec<u8> {
    let mut m = vec![MessageNumber::DEBUG.0];
    m.put_bool(true);
    m.put_string(text.as_bytes());
    m.put_string(b"");
    m
}

/// Splits what a transport sent before keys into its version line (terminator included)
/// and the plaintext packets after it.
pub fn split_plain_output(bytes: &[u8]) -> (&[u8], Vec<Vec<u8>>) {
    let end = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    let (line, rest) = bytes.split_at(end);
    (line, plain_packets(rest))
}

/// The payloads of consecutive plaintext packets. Panics on anything else: only our own
/// transport's output before keys is parsed with this.
pub fn plain_packets(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut buf = bytes.to_vec();
    let mut opener = Opener::plain();
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match opener
            .open(&mut buf[at..])
            .expect("a well-formed plaintext packet")
        {
            Opened::Packet { len, payload, .. } => {
                out.push(buf[at + payload.start..at + payload.end].to_vec());
                at += len;
            }
            Opened::NeedMore(_) => panic!("a truncated plaintext packet"),
        }
    }
    out
}

/// Checks that `payload` is SSH_MSG_DISCONNECT with `reason`; returns its description.
pub fn expect_disconnect(payload: &[u8], reason: DisconnectReason) -> String {
    let mut r = Reader::new(payload);
    assert_eq!(
        MessageNumber(r.u8("msg").unwrap()),
        MessageNumber::DISCONNECT
    );
    assert_eq!(DisconnectReason(r.u32("reason").unwrap()), reason);
    String::from_utf8(r.string("description").unwrap().to_vec()).unwrap()
}

/// Checks the error of a failed call: its variant (through `matches`) and its reason.
#[track_caller]
pub fn expect_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    reason: DisconnectReason,
    matches: impl FnOnce(&Error) -> bool,
) -> Error {
    let e = result.expect_err("the call must fail");
    assert_eq!(e.disconnect_reason(), reason, "{e:?}");
    assert!(matches(&e), "unexpected error {e:?}");
    e
}

#[track_caller]
pub fn expect_protocol_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    reason: DisconnectReason,
) -> Error {
    expect_error(result, reason, |e| matches!(e, Error::Protocol { .. }))
}

// ---------------------------------------------------------------------------------------
// Feeding a transport

/// What a transport handed up while it was fed.
#[derive(Debug, Default)]
pub struct Output {
    /// Packets for the layer above: sequence number and payload.
    pub packets: Vec<(u32, Vec<u8>)>,
    pub events: Vec<Event>,
}

impl Output {
    pub fn payloads(&self) -> Vec<&[u8]> {
        self.packets.iter().map(|(_, p)| &p[..]).collect()
    }

    pub fn has_ext_info(&self) -> bool {
        self.events.iter().any(|e| matches!(e, Event::ExtInfo(_)))
    }
}

/// Feeds `input` to `t` until it takes no more, answering host key questions with
/// `accept`. Consumed bytes leave `input`; after an error the rest stays there.
pub fn feed(
    t: &mut Transport,
    input: &mut Vec<u8>,
    now: Instant,
    accept: bool,
    out: &mut Output,
) -> Result<(), Error> {
    let mut start = 0;
    let result = loop {
        let decoded = match t.decode(&mut input[start..], now) {
            Ok(d) => d,
            Err(e) => break Err(e),
        };
        if let Some(packet) = decoded.packet {
            out.packets.push((packet.seq, packet.payload.to_vec()));
        }
        start += decoded.consumed;
        let mut failed = None;
        while let Some(event) = t.poll_event() {
            if let Event::HostKey(_) = event {
                let answer = if accept {
                    t.accept_host_key()
                } else {
                    Err(t.reject_host_key("refused by the test"))
                };
                if let Err(e) = answer {
                    failed = Some(e);
                }
            }
            out.events.push(event);
        }
        if let Some(e) = failed {
            break Err(e);
        }
        if decoded.consumed == 0 {
            break Ok(());
        }
    };
    input.drain(..start);
    result
}

/// Flushes both sides of `pair` and delivers what `sender` sent to the other side,
/// recording in `out` what that side handed up, even if it then failed.
pub fn deliver_into(pair: &mut Pair, sender: Role, out: &mut Output) -> Result<(), Error> {
    pair.flush();
    let now = pair.now;
    let (wire, receiver) = match sender {
        Role::Client => (std::mem::take(pair.c2s_in_flight()), &mut pair.server),
        Role::Server => (std::mem::take(pair.s2c_in_flight()), &mut pair.client),
    };
    receiver.inbox.extend(wire);
    feed(&mut receiver.transport, &mut receiver.inbox, now, true, out)
}

/// Delivers what `sender` sent to the other side.
pub fn deliver_from(pair: &mut Pair, sender: Role) -> Result<Output, Error> {
    let mut out = Output::default();
    deliver_into(pair, sender, &mut out).map(|()| out)
}

pub fn to_server(pair: &mut Pair) -> Result<Output, Error> {
    deliver_from(pair, Role::Client)
}

pub fn to_client(pair: &mut Pair) -> Result<Output, Error> {
    deliver_from(pair, Role::Server)
}

/// Checks that the server's side of `pair` failed and told the client why: the client
/// reads a DISCONNECT with `reason` from what the server queued.
#[track_caller]
pub fn client_hears_disconnect(pair: &mut Pair, reason: DisconnectReason) {
    let heard = to_client(pair);
    expect_error(heard, reason, |e| {
        matches!(e, Error::PeerDisconnected { .. })
    });
}

/// The same the other way.
#[track_caller]
pub fn server_hears_disconnect(pair: &mut Pair, reason: DisconnectReason) {
    let heard = to_server(pair);
    expect_error(heard, reason, |e| {
        matches!(e, Error::PeerDisconnected { .. })
    });
}

pub fn pair_with(client: Config, server: Config, seed: u64) -> Pair {
    Pair::new(Arc::new(client), Arc::new(server), seed, Cut::Whole)
}

/// A pair that finished its first key exchange with one cipher suite.
pub fn ready_pair(
    cipher: Cipher,
    mac: Mac,
    provider: &'static dyn CryptoProvider,
    seed: u64,
) -> Pair {
    let client = Config {
        provider,
        algorithms: only(Kex::Curve25519Sha256, cipher, mac),
        ..client_config()
    };
    let server = Config {
        provider,
        ..server_config()
    };
    let mut pair = pair_with(client, server, seed);
    pair.handshake().unwrap();
    pair
}

pub fn send(t: &mut Transport, payload: &[u8]) {
    t.send(|p| p.extend_from_slice(payload)).unwrap();
}

// ---------------------------------------------------------------------------------------
// A peer written by hand

/// A peer built from the crate's parts, playing the role opposite the transport under
/// test. It frames, seals and opens packets itself and does its half of key exchange step
/// by step, so a test can change any step.
pub struct Peer {
    pub role: Role,
    pub host_key: HostKeyPair,
    /// Our version line without its terminator, as it enters the exchange hash.
    pub version: Vec<u8>,
    /// The transport's version line without its terminator.
    pub their_version: Vec<u8>,
    pub sealer: Sealer,
    pub opener: Opener,
    /// Bytes from the transport not read yet.
    pub inbox: Vec<u8>,
    pub session_id: Option<Digest>,
    pub strict: bool,
    pub first_kex_done: bool,
    pub rng: SeededRng,
}

/// The peer's view of one key exchange once both KEXINITs are known.
pub struct Round {
    pub ours: Vec<u8>,
    pub theirs: Vec<u8>,
    pub negotiated: Negotiated,
}

/// KEX_ECDH_REPLY's three fields and the keys that go with them, before sending, so a test
/// can spoil one.
pub struct Reply {
    /// The exchange hash the signature covers.
    pub h: Digest,
    pub k_s: Vec<u8>,
    pub q_s: Vec<u8>,
    pub signature: Vec<u8>,
    pub keys: SessionKeys,
}

/// A transport under test wired to a [`Peer`].
pub struct Rig {
    pub t: Transport,
    pub peer: Peer,
    /// Bytes from the peer that the transport has not consumed yet.
    pub to_t: Vec<u8>,
    pub now: Instant,
    /// Everything the transport handed up.
    pub out: Output,
    pub accept_host_key: bool,
}

impl Rig {
    /// Starts `config` in `role` and has the peer send `peer_line` (its version line with
    /// whatever terminator the test wants); both version lines are read.
    pub fn new(role: Role, config: Config, peer_line: &[u8]) -> Self {
        let now = origin();
        let t = Transport::new(Arc::new(config), role, Box::new(SeededRng::new(3)), now);
        let version = peer_line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .expect("a version line ends with LF")
            .to_vec();
        let peer = Peer {
            role: role.peer(),
            host_key: host_key(9),
            version,
            their_version: Vec::new(),
            sealer: Sealer::plain(),
            opener: Opener::plain(),
            inbox: Vec::new(),
            session_id: None,
            strict: false,
            first_kex_done: false,
            rng: SeededRng::new(4),
        };
        let mut rig = Self {
            t,
            peer,
            to_t: peer_line.to_vec(),
            now,
            out: Output::default(),
            accept_host_key: true,
        };
        rig.pump().unwrap();
        let end = rig.peer.inbox.iter().position(|&b| b == b'\n').unwrap();
        let line: Vec<u8> = rig.peer.inbox.drain(..=end).collect();
        rig.peer.their_version = line.strip_suffix(b"\r\n").unwrap().to_vec();
        rig
    }

    /// A transport in `role` against a peer with an ordinary version line.
    pub fn standard(role: Role, config: Config) -> Self {
        Self::new(role, config, b"SSH-2.0-Scripted_1.0\r\n")
    }

    /// Lets the transport take what the peer sent, and moves its output to the peer.
    pub fn pump(&mut self) -> Result<(), Error> {
        let result = feed(
            &mut self.t,
            &mut self.to_t,
            self.now,
            self.accept_host_key,
            &mut self.out,
        );
        self.t.poll_transmit(&mut self.peer.inbox);
        result
    }

    /// The peer seals `payload` and sends it (not delivered until [`Rig::pump`]).
    pub fn send(&mut self, payload: &[u8]) {
        self.peer
            .sealer
            .seal_with(&mut self.to_t, |p| p.extend_from_slice(payload));
    }

    /// The next packet from the transport, with its sequence number, if a whole one came.
    pub fn try_recv(&mut self) -> Option<(u32, Vec<u8>)> {
        let opened = self.peer.opener.open(&mut self.peer.inbox).unwrap();
        match opened {
            Opened::NeedMore(_) => None,
            Opened::Packet { len, payload, seq } => {
                let p = self.peer.inbox[payload].to_vec();
                self.peer.inbox.drain(..len);
                Some((seq, p))
            }
        }
    }

    #[track_caller]
    pub fn recv(&mut self) -> Vec<u8> {
        self.try_recv().expect("a packet from the transport").1
    }

    /// Reads the transport's DISCONNECT and checks its reason.
    #[track_caller]
    pub fn expect_disconnect(&mut self, reason: DisconnectReason) -> String {
        let payload = self.recv();
        expect_disconnect(&payload, reason)
    }

    pub fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        self.peer.rng.fill(&mut out);
        out
    }

    /// A KEXINIT from the peer, the crate's way, with `prefs`.
    pub fn kexinit(&mut self, prefs: &Preferences) -> Vec<u8> {
        let host_keys: &[SignatureAlg] = match self.peer.role {
            Role::Server => &[SignatureAlg::Ed25519],
            Role::Client => &SignatureAlg::ALL,
        };
        let cookie = self.random::<16>();
        let first = !self.peer.first_kex_done;
        kex::build_kexinit(self.peer.role, prefs, host_keys, cookie, first, true)
    }

    /// The transport's next KEXINIT, skipping nothing: it must come next.
    #[track_caller]
    pub fn recv_kexinit(&mut self) -> Vec<u8> {
        let theirs = self.recv();
        assert_eq!(MessageNumber(theirs[0]), MessageNumber::KEXINIT);
        theirs
    }

    /// Settles the algorithms from the peer's side, as the transport must too.
    pub fn negotiate(&mut self, ours: Vec<u8>, theirs: Vec<u8>) -> Round {
        let first = !self.peer.first_kex_done;
        let negotiated = {
            let o = KexInit::parse(&ours).unwrap();
            let t = KexInit::parse(&theirs).unwrap();
            let (c, s) = match self.peer.role {
                Role::Client => (&o, &t),
                Role::Server => (&t, &o),
            };
            kex::negotiate(c, s, first).unwrap()
        };
        if first {
            self.peer.strict = negotiated.strict_kex;
        }
        Round {
            ours,
            theirs,
            negotiated,
        }
    }

    /// Sends the peer's KEXINIT, lets the transport answer, and reads its KEXINIT (already
    /// waiting on the first exchange).
    pub fn exchange_kexinit(&mut self, ours: Vec<u8>) -> Round {
        self.send(&ours);
        self.pump().unwrap();
        let theirs = self.recv_kexinit();
        self.negotiate(ours, theirs)
    }

    /// The exchange hash as the peer computes it.
    pub fn exchange_hash(
        &self,
        round: &Round,
        k_s: &[u8],
        q_c: &[u8],
        q_s: &[u8],
        k: &kex::SharedSecret,
    ) -> Digest {
        let (client_version, server_version, client_kexinit, server_kexinit) = match self.peer.role
        {
            Role::Client => (
                &self.peer.version,
                &self.peer.their_version,
                &round.ours,
                &round.theirs,
            ),
            Role::Server => (
                &self.peer.their_version,
                &self.peer.version,
                &round.theirs,
                &round.ours,
            ),
        };
        let inputs = HashInputs {
            client_version,
            server_version,
            client_kexinit,
            server_kexinit,
            host_key: k_s,
            q_c,
            q_s,
        };
        kex::exchange_hash(provider(), kex::hash_alg(round.negotiated.kex), &inputs, k)
    }

    /// Peer as server: reads KEX_ECDH_INIT and computes the reply with its host key.
    pub fn answer_ecdh_init(&mut self, round: &Round) -> Reply {
        let init = self.recv();
        let mut r = Reader::new(&init);
        assert_eq!(
            MessageNumber(r.u8("msg").unwrap()),
            MessageNumber::KEX_ECDH_INIT
        );
        let q_c = r.string("Q_C").unwrap().to_vec();
        let random = self.random::<64>();
        let (q_s, k) =
            kex::server_respond(provider(), round.negotiated.kex, &q_c, &random).unwrap();
        let k_s = self.peer.host_key.public().to_blob();
        let h = self.exchange_hash(round, &k_s, &q_c, &q_s, &k);
        let session_id = *self.peer.session_id.get_or_insert(h);
        let signature = self
            .peer
            .host_key
            .sign(provider(), round.negotiated.host_key, h.as_bytes())
            .unwrap();
        let keys = kex::session_keys(
            provider(),
            Role::Server,
            &round.negotiated,
            &k,
            &h,
            &session_id,
        );
        Reply {
            h,
            k_s,
            q_s,
            signature,
            keys,
        }
    }

    pub fn send_reply(&mut self, reply: &Reply) {
        let mut m = vec![MessageNumber::KEX_ECDH_REPLY.0];
        m.put_string(&reply.k_s);
        m.put_string(&reply.q_s);
        m.put_string(&reply.signature);
        self.send(&m);
    }

    /// Sends NEWKEYS and switches the peer's outgoing keys.
    pub fn send_newkeys(&mut self, keys: &DirectionKeys) {
        self.send(&[MessageNumber::NEWKEYS.0]);
        self.peer
            .sealer
            .install(provider(), keys, [0x5a; 255])
            .unwrap();
        if self.peer.strict {
            self.peer.sealer.seq = 0;
        }
    }

    /// Reads the transport's NEWKEYS and switches the peer's incoming keys.
    #[track_caller]
    pub fn recv_newkeys(&mut self, keys: &DirectionKeys) {
        assert_eq!(self.recv(), [MessageNumber::NEWKEYS.0]);
        self.peer.opener.install(provider(), keys).unwrap();
        if self.peer.strict {
            self.peer.opener.seq = 0;
        }
        self.peer.first_kex_done = true;
    }

    /// Peer as server: the rest of a key exchange after KEXINITs, done right.
    pub fn serve(&mut self, round: &Round) {
        self.pump().unwrap();
        let reply = self.answer_ecdh_init(round);
        self.send_reply(&reply);
        self.send_newkeys(&reply.keys.outgoing);
        self.pump().unwrap();
        self.recv_newkeys(&reply.keys.incoming);
    }

    /// Peer as client: sends KEX_ECDH_INIT for `kex` (not delivered until a pump).
    pub fn send_ecdh_init(&mut self, kex: Kex) -> (kex::ClientSecret, Vec<u8>) {
        let random = self.random::<96>();
        let (secret, q_c) = kex::client_start(kex, &random);
        let mut m = vec![MessageNumber::KEX_ECDH_INIT.0];
        m.put_string(&q_c);
        self.send(&m);
        (secret, q_c)
    }

    /// Peer as client: reads the reply, checks the signature over the hash the peer
    /// computed, and exchanges NEWKEYS.
    pub fn finish_client_kex(&mut self, round: &Round, secret: kex::ClientSecret, q_c: &[u8]) {
        self.pump().unwrap();
        let reply = self.recv();
        let mut r = Reader::new(&reply);
        assert_eq!(
            MessageNumber(r.u8("msg").unwrap()),
            MessageNumber::KEX_ECDH_REPLY
        );
        let k_s = r.string("K_S").unwrap();
        let q_s = r.string("Q_S").unwrap();
        let signature = r.string("signature").unwrap();
        let k = kex::client_finish(provider(), &secret, q_s).unwrap();
        let h = self.exchange_hash(round, k_s, q_c, q_s, &k);
        PublicKey::from_blob(k_s)
            .unwrap()
            .verify(
                provider(),
                round.negotiated.host_key,
                h.as_bytes(),
                signature,
            )
            .expect("the transport signed the hash the peer computed");
        let session_id = *self.peer.session_id.get_or_insert(h);
        let keys = kex::session_keys(
            provider(),
            Role::Client,
            &round.negotiated,
            &k,
            &h,
            &session_id,
        );
        self.recv_newkeys(&keys.incoming);
        self.send_newkeys(&keys.outgoing);
        self.pump().unwrap();
    }

    /// Peer as client: the rest of a key exchange after KEXINITs, done right.
    pub fn client_kex(&mut self, round: &Round) {
        let (secret, q_c) = self.send_ecdh_init(round.negotiated.kex);
        self.finish_client_kex(round, secret, &q_c);
    }

    /// A whole first key exchange with default preferences on the peer's side. A server
    /// under test sends EXT_INFO right after NEWKEYS; it is read and returned.
    pub fn handshake(&mut self) -> Option<Vec<u8>> {
        let ours = self.kexinit(&Preferences::default());
        let round = self.exchange_kexinit(ours);
        match self.peer.role {
            Role::Server => {
                self.serve(&round);
                None
            }
            Role::Client => {
                self.client_kex(&round);
                let ext_info = self.recv();
                assert_eq!(MessageNumber(ext_info[0]), MessageNumber::EXT_INFO);
                Some(ext_info)
            }
        }
    }

    /// A key exchange after the first, started by the peer.
    pub fn rekey(&mut self) {
        let ours = self.kexinit(&Preferences::default());
        let round = self.exchange_kexinit(ours);
        match self.peer.role {
            Role::Server => self.serve(&round),
            Role::Client => self.client_kex(&round),
        }
    }
}

/// A new transport with its deadlines measured from `now`.
pub fn fresh(role: Role, config: Config, now: Instant) -> Transport {
    Transport::new(Arc::new(config), role, Box::new(SeededRng::new(1)), now)
}

/// A transport in `role` that has read the peer's version line and is in its packet
/// phase, with its greeting already taken.
pub fn in_packet_phase(role: Role, now: Instant) -> Transport {
    let mut t = fresh(role, server_config(), now);
    let mut line = b"SSH-2.0-Hostile_1\r\n".to_vec();
    assert_eq!(t.decode(&mut line, now).unwrap().consumed, line.len());
    let mut greeting = Vec::new();
    t.poll_transmit(&mut greeting);
    t
}

/// Checks that `t` failed before keys and queued a plaintext DISCONNECT with `reason`,
/// and nothing else.
#[track_caller]
pub fn queued_plain_disconnect(t: &mut Transport, reason: DisconnectReason) -> String {
    assert!(t.is_closed());
    let mut sent = Vec::new();
    t.poll_transmit(&mut sent);
    let packets = plain_packets(&sent);
    assert_eq!(packets.len(), 1, "one DISCONNECT and nothing else");
    expect_disconnect(&packets[0], reason)
}
