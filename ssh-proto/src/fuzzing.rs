//! Entry points for the fuzz targets in `fuzz/`, built only with the `fuzzing` feature.
//!
//! Each target under `fuzz/fuzz_targets` is a one-line call into this module, so the
//! checked-in corpus and the stored crash regressions replay through exactly the same code
//! in the ordinary test suite (`tests/fuzz_corpus.rs`), on stable Rust and without
//! libFuzzer. Every function drives the crate the way a careful caller would and panics
//! when one of the crate's promises breaks: a panic is what the fuzzer reports. The
//! functions also return what they saw, so tests can check that a seed reaches as deep
//! into the protocol as it was meant to.
//!
//! The transport drivers take the input as the peer's byte stream from its first byte, so
//! a seed is a version line followed by packets. What the stream does not say (how reads
//! are cut, when authentication succeeds, when the application sends) comes from a
//! generator seeded with a hash of the whole input: fixed for a given input, and with no
//! header in front of the version line for mutations to trip over.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::algorithms::{Cipher, Mac};
use crate::config::Config;
use crate::crypto::default_provider;
use crate::error::Error;
use crate::hostkey::HostKeyPair;
use crate::msg::{DisconnectReason, MessageNumber};
use crate::packet::{DirectionKeys, MAX_OVERHEAD, MAX_PACKET_LEN, Opened, Opener, Sealer};
use crate::role::Role;
use crate::sim::SeededRng;
use crate::transport::{Event, Transport};
use crate::version::{
    MAX_PREAMBLE_LINES, MAX_VERSION_LINE, PeerVersion, VersionError, VersionReader,
};
use crate::wire::Writer;

pub mod connection;
pub mod key_files;

pub use connection::{ConnectionOutcome, connection_client, connection_server};
pub use key_files::{
    AuthorizedKeysOutcome, FUZZ_KDF_ROUNDS, KEY_PASSPHRASE, KnownHostsOutcome, PrivateKeyOutcome,
    PublicKeyOutcome, authorized_keys, known_hosts, private_key, public_key,
};

/// A fuzz target: its file name under `fuzz/fuzz_targets` and the entry point it calls.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every fuzz target, for tests that replay the corpus of each.
pub const TARGETS: &[Target] = &[
    Target {
        name: "version",
        run: |data| {
            version(data);
        },
    },
    Target {
        name: "deframe",
        run: |data| {
            deframe(data);
        },
    },
    Target {
        name: "transport_server",
        run: |data| {
            transport_server(data);
        },
    },
    Target {
        name: "transport_client",
        run: |data| {
            transport_client(data);
        },
    },
    Target {
        name: "kex_server",
        run: |data| {
            kex_server(data);
        },
    },
    Target {
        name: "kex_client",
        run: |data| {
            kex_client(data);
        },
    },
    Target {
        name: "connection_server",
        run: |data| {
            connection_server(data);
        },
    },
    Target {
        name: "connection_client",
        run: |data| {
            connection_client(data);
        },
    },
    Target {
        name: "private_key",
        run: |data| {
            private_key(data);
        },
    },
    Target {
        name: "public_key",
        run: |data| {
            public_key(data);
        },
    },
    Target {
        name: "authorized_keys",
        run: |data| {
            authorized_keys(data);
        },
    },
    Target {
        name: "known_hosts",
        run: |data| {
            known_hosts(data);
        },
    },
];

/// The seed of the Ed25519 host key every fuzzed server holds.
pub const HOST_KEY_SEED: [u8; 32] = [0x42; 32];

/// The software version every fuzzed transport announces. Fixed, so that recorded
/// flights stay valid when the crate's own version changes: the version lines are hashed
/// into the session keys.
pub const SOFTWARE: &str = "fuzz";

/// The largest packet on the wire: length field, body and the longest MAC.
const MAX_WIRE_PACKET: usize = 4 + MAX_PACKET_LEN + 64;

// ---------------------------------------------------------------------------------------
// Version exchange

/// What [`version`] found in each role.
#[derive(Debug)]
pub struct VersionOutcome {
    pub client: VersionResult,
    pub server: VersionResult,
}

/// The peer's version with the offset in the input just past its line, or why there was
/// none.
pub type VersionResult = Result<Option<(usize, PeerVersion)>, VersionError>;

/// Feeds `data[1..]` to a [`VersionReader`] in each role, in pieces whose sizes follow from
/// `data[0]`, and checks that:
/// - the reader never holds more than [`MAX_VERSION_LINE`] bytes between calls;
/// - a line it returns has the shape RFC 4253 section 4.2 requires, ends at a line feed,
///   and is byte for byte what was received;
/// - the cuts change nothing: the result equals that of one call with the whole input;
/// - once it has answered, every later call gets the same error.
pub fn version(data: &[u8]) -> VersionOutcome {
    let (cut, input) = match data.split_first() {
        Some((&cut, rest)) => (cut, rest),
        None => (0, data),
    };
    VersionOutcome {
        client: version_in(Role::Client, cut, input),
        server: version_in(Role::Server, cut, input),
    }
}

fn version_in(role: Role, cut: u8, input: &[u8]) -> VersionResult {
    let mut pieces = Pieces::new(u64::from(cut), 1 << (cut % 9));
    let mut reader = VersionReader::new(role);
    let mut offset = 0;
    let result = loop {
        // An empty read now and then, as a caller may well make.
        if pieces.rng.below(8) == 0 {
            assert_eq!(
                reader.feed(&[]),
                Ok(None),
                "an empty read must change nothing"
            );
        }
        let n = pieces.next(input.len() - offset);
        let piece = &input[offset..offset + n];
        let fed = reader.feed(piece);
        assert!(
            reader.buffered_len() <= MAX_VERSION_LINE,
            "the version reader holds {} bytes",
            reader.buffered_len()
        );
        match fed {
            Ok(None) => {}
            Ok(Some((consumed, peer))) => {
                assert!(
                    (1..=n).contains(&consumed),
                    "consumed {consumed} of a {n}-byte read"
                );
                let end = offset + consumed;
                check_peer_version(role, &input[..end], &peer);
                break Ok(Some((end, peer)));
            }
            Err(e) => break Err(e),
        }
        offset += n;
        if offset == input.len() {
            break Ok(None);
        }
    };

    match &result {
        Ok(Some(_)) => assert_eq!(
            reader.feed(b"SSH-2.0-again\r\n"),
            Err(VersionError::AlreadyComplete)
        ),
        Err(e) => {
            assert_eq!(reader.feed(b"SSH-2.0-again\r\n").as_ref(), Err(e));
            assert_eq!(&reader.closed(), e);
        }
        Ok(None) => assert_eq!(reader.closed(), VersionError::ClosedBeforeVersion),
    }

    let whole = VersionReader::new(role).feed(input);
    assert_eq!(
        whole, result,
        "cutting the input into reads changed the result"
    );
    result
}

/// `received` ends with the line feed that ended the version line.
fn check_peer_version(role: Role, received: &[u8], peer: &PeerVersion) {
    let Some(before_lf) = received.strip_suffix(b"\n") else {
        panic!("the version line did not end at a line feed");
    };
    let before_lf = before_lf.strip_suffix(b"\r").unwrap_or(before_lf);
    let line = peer.as_bytes();
    assert!(
        before_lf.ends_with(line),
        "the version line is not what was received"
    );
    assert!(
        line.len() < MAX_VERSION_LINE,
        "a {}-byte version line",
        line.len()
    );
    assert!(
        line.starts_with(b"SSH-2.0-") || line.starts_with(b"SSH-1.99-"),
        "accepted {peer}"
    );
    assert!(
        !line.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n'),
        "accepted {peer}"
    );
    assert!(matches!(peer.protocol(), "2.0" | "1.99"));
    let software = peer.software();
    assert!(!software.is_empty() && software.bytes().all(|b| b.is_ascii_graphic()));
    match role {
        Role::Server => assert_eq!(peer.preamble_lines(), 0, "a client sent preamble lines"),
        Role::Client => assert!(peer.preamble_lines() <= MAX_PREAMBLE_LINES),
    }
}

// ---------------------------------------------------------------------------------------
// Binary packets

/// The protections [`deframe`] picks from with its first byte: plaintext, then every
/// cipher, the CTR ciphers once with each MAC.
const PROTECTIONS: [(Option<Cipher>, Option<Mac>); 12] = [
    (None, None),
    (Some(Cipher::Aes128Gcm), None),
    (Some(Cipher::Aes256Gcm), None),
    (Some(Cipher::ChaCha20Poly1305), None),
    (Some(Cipher::Aes128Ctr), Some(Mac::HmacSha256Etm)),
    (Some(Cipher::Aes128Ctr), Some(Mac::HmacSha512Etm)),
    (Some(Cipher::Aes128Ctr), Some(Mac::HmacSha256)),
    (Some(Cipher::Aes128Ctr), Some(Mac::HmacSha512)),
    (Some(Cipher::Aes256Ctr), Some(Mac::HmacSha256Etm)),
    (Some(Cipher::Aes256Ctr), Some(Mac::HmacSha512Etm)),
    (Some(Cipher::Aes256Ctr), Some(Mac::HmacSha256)),
    (Some(Cipher::Aes256Ctr), Some(Mac::HmacSha512)),
];

/// How many protections [`deframe`] chooses from; its first byte is taken modulo this.
pub const DEFRAME_PROTECTIONS: u8 = PROTECTIONS.len() as u8;

/// The largest payload [`deframe`] seals: RFC 4253 section 6.1's 32768 bytes.
const MAX_PAYLOAD: usize = 32768;

/// [`deframe`] stops adding packets past this many bytes, to keep each run quick.
const MAX_STREAM: usize = 256 * 1024;

/// What [`deframe`] opened.
#[derive(Debug, Default)]
pub struct DeframeOutcome {
    /// Packets opened.
    pub opened: usize,
    /// The error that ended the stream, if one did.
    pub error: Option<Error>,
}

/// Opens packets from a stream the way a reader does: reads of random sizes appended to a
/// buffer, [`Opener::open`] at its front, consume and continue.
///
/// `data[0]` picks the protection (modulo [`DEFRAME_PROTECTIONS`]: plaintext, or a cipher
/// with fixed keys). `data[1]` picks how reads are cut (its high bits) and what the rest
/// is (its low bit):
/// - 0: the raw stream. Checked: nothing is opened outside the buffer, a packet's payload
///   is never empty, sequence numbers count up, and the opener never asks for more than
///   one packet of the largest size.
/// - 1: records `op, len_hi, len_lo, payload...`, each sealed with the same keys into a
///   valid packet, then `op & 3 == 1` flips one bit (at the position in two more bytes,
///   bit `op >> 2 & 7`) and `op & 3 == 2` cuts the stream short inside the packet;
///   `op & 0x80` pads the payload with zeros to `len`. Checked as well: every intact
///   packet opens to exactly what was sealed, and with keys no damaged packet or any after
///   it opens, and the error names a MAC failure even when the length was hit.
pub fn deframe(data: &[u8]) -> DeframeOutcome {
    let [selector, mode, rest @ ..] = data else {
        return DeframeOutcome::default();
    };
    let (cipher, mac) = PROTECTIONS[usize::from(*selector % DEFRAME_PROTECTIONS)];
    let keyed = cipher.is_some();
    let (mut opener, mut sealer) = protection(*selector);
    let cut = mode >> 1;
    let mut pieces = Pieces::new(
        u64::from(cut),
        [1, 7, 64, 1024, 1 << 16][usize::from(cut % 5)],
    );
    log::trace!(
        "deframe cipher={cipher:?} mac={mac:?} structured={}",
        mode & 1
    );

    if mode & 1 == 0 {
        return read_stream(&mut opener, rest, &mut pieces, |_, _| {});
    }

    let mut stream = Vec::new();
    let mut intact: Vec<Vec<u8>> = Vec::new();
    let mut damaged = false;
    let mut records = rest;
    while let [op, hi, lo, tail @ ..] = records
        && stream.len() < MAX_STREAM
    {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (body, tail) = tail.split_at(len.min(tail.len()));
        let mut payload = body.to_vec();
        if op & 0x80 != 0 {
            payload.resize(len, 0);
        }
        if payload.is_empty() {
            payload.push(*op);
        }
        payload.truncate(MAX_PAYLOAD);

        let (position, tail) = match (op & 3, tail) {
            (1, [a, b, tail @ ..]) => (usize::from(u16::from_be_bytes([*a, *b])), tail),
            (1, _) => (0, &[][..]),
            _ => (usize::from(*op), tail),
        };
        records = tail;

        let at = stream.len();
        let len = sealer.seal_with(&mut stream, |p| p.put_raw(&payload));
        match op & 3 {
            1 => {
                stream[at + position % len] ^= 1 << (op >> 2 & 7);
                damaged = true;
            }
            2 => {
                stream.truncate(at + position % len);
                damaged = true;
                break;
            }
            _ if !damaged => intact.push(payload),
            _ => {}
        }
    }

    let outcome = read_stream(&mut opener, &stream, &mut pieces, |i, payload| {
        if let Some(sealed) = intact.get(i) {
            assert_eq!(
                payload, sealed,
                "packet {i} opened to other bytes than were sealed"
            );
        } else {
            assert!(
                !keyed,
                "packet {i} opened although it or one before it was damaged"
            );
        }
    });
    if keyed || !damaged {
        assert!(
            outcome.opened >= intact.len(),
            "only {} of {} intact packets opened: {:?}",
            outcome.opened,
            intact.len(),
            outcome.error
        );
    }
    if !damaged {
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
    }
    if keyed && let Some(e) = &outcome.error {
        assert_eq!(
            e.disconnect_reason(),
            DisconnectReason::MAC_ERROR,
            "a damaged packet must fail as a MAC failure: {e}"
        );
    }
    outcome
}

/// An opener and a sealer with the fixed keys of protection `selector` (modulo
/// [`DEFRAME_PROTECTIONS`]).
fn protection(selector: u8) -> (Opener, Sealer) {
    let (cipher, mac) = PROTECTIONS[usize::from(selector % DEFRAME_PROTECTIONS)];
    let mut opener = Opener::plain();
    let mut sealer = Sealer::plain();
    if let Some(cipher) = cipher {
        let keys = DirectionKeys {
            cipher,
            mac,
            iv: vec![0x1f; cipher.iv_len()].into(),
            key: vec![0x2e; cipher.key_len()].into(),
            mac_key: vec![0x3d; mac.map_or(0, Mac::key_len)].into(),
        };
        let provider = default_provider();
        let installed = opener
            .install(provider, &keys)
            .and_then(|()| sealer.install(provider, &keys, [0x5a; 255]));
        assert_eq!(installed, Ok(()), "fixed keys of the right lengths");
    }
    (opener, sealer)
}

/// Seals `payloads` with the fixed keys [`deframe`] uses for protection `selector`: the
/// stream to put after `[selector, mode]` for a raw-mode seed that opens.
pub fn sealed_stream(selector: u8, payloads: &[&[u8]]) -> Vec<u8> {
    let (_, mut sealer) = protection(selector);
    let mut stream = Vec::new();
    for payload in payloads {
        sealer.seal_with(&mut stream, |p| p.put_raw(payload));
    }
    stream
}

fn read_stream(
    opener: &mut Opener,
    stream: &[u8],
    pieces: &mut Pieces,
    mut seen: impl FnMut(usize, &[u8]),
) -> DeframeOutcome {
    let mut outcome = DeframeOutcome::default();
    let mut buf = Vec::new();
    let mut start = 0;
    let mut fed = 0;
    loop {
        let available = buf.len() - start;
        match opener.open(&mut buf[start..]) {
            Ok(Opened::Packet { len, payload, seq }) => {
                assert!(len <= available, "a {len}-byte packet in {available} bytes");
                assert!(
                    payload.start == 5 && payload.start < payload.end && payload.end <= len,
                    "payload {payload:?} of a {len}-byte packet"
                );
                assert_eq!(
                    seq as usize, outcome.opened,
                    "sequence numbers count packets"
                );
                seen(outcome.opened, &buf[start..][payload]);
                outcome.opened += 1;
                start += len;
            }
            Ok(Opened::NeedMore(n)) => {
                assert!(
                    n > available,
                    "asked for {n} bytes with {available} buffered"
                );
                assert!(n <= MAX_WIRE_PACKET, "asked for {n} bytes");
                if fed == stream.len() {
                    return outcome;
                }
                buf.drain(..start);
                start = 0;
                let n = pieces.next(stream.len() - fed);
                buf.extend_from_slice(&stream[fed..fed + n]);
                fed += n;
            }
            Err(e) => {
                outcome.error = Some(e);
                return outcome;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Transport

/// Whether a transport driver runs the real key exchange or skips it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KexMode {
    /// [`Config::fuzz_skip_kex`]: plaintext from the first packet, as if a strict key
    /// exchange had finished, so mutations reach everything after key exchange.
    Skip,
    /// The real first key exchange, so KEXINIT parsing, negotiation and the ECDH messages
    /// get fuzzed.
    Real,
}

/// What a transport driver saw.
#[derive(Debug, Default)]
pub struct TransportOutcome {
    /// Packets handed to the layer above.
    pub delivered: usize,
    /// Key exchanges finished, from [`Event::KeysReady`].
    pub keys_ready: usize,
    /// The first error a call returned.
    pub error: Option<Error>,
}

/// A server that skips key exchange, fed `data` as the client's bytes. See [`drive`] for
/// what is checked.
pub fn transport_server(data: &[u8]) -> TransportOutcome {
    drive(Role::Server, KexMode::Skip, data)
}

/// A client that skips key exchange, fed `data` as the server's bytes.
pub fn transport_client(data: &[u8]) -> TransportOutcome {
    drive(Role::Client, KexMode::Skip, data)
}

/// A server running the real key exchange, fed `data` as the client's bytes: mutations of
/// a recorded client flight.
pub fn kex_server(data: &[u8]) -> TransportOutcome {
    drive(Role::Server, KexMode::Real, data)
}

/// A client running the real key exchange, fed `data` as the server's bytes.
pub fn kex_client(data: &[u8]) -> TransportOutcome {
    drive(Role::Client, KexMode::Real, data)
}

/// The transport a driver runs for `role` and `mode`. `tight` (used with
/// [`KexMode::Skip`] only) sets small rekey, pre-authentication and holding limits so that
/// short inputs reach them.
///
/// Everything about it is fixed, its randomness included, so the corpus generator can
/// record a real flight against the very transport the driver will build: replayed, the
/// flight then decrypts past NEWKEYS and the fuzzer mutates encrypted traffic too.
pub fn new_transport(role: Role, mode: KexMode, tight: bool, now: Instant) -> Transport {
    let config = config(role, mode, tight && mode == KexMode::Skip);
    let seed = match role {
        Role::Client => 0xc1,
        Role::Server => 0x5e,
    };
    Transport::new(config, role, Box::new(SeededRng::new(seed)), now)
}

fn config(role: Role, mode: KexMode, tight: bool) -> Arc<Config> {
    static CONFIGS: OnceLock<Vec<Arc<Config>>> = OnceLock::new();
    let all = CONFIGS.get_or_init(|| {
        let provider = default_provider();
        let host_key = HostKeyPair::ed25519_from_seed(provider, &HOST_KEY_SEED);
        let mut all = Vec::new();
        for role in [Role::Client, Role::Server] {
            for mode in [KexMode::Skip, KexMode::Real] {
                for tight in [false, true] {
                    let mut config = Config {
                        provider,
                        software: SOFTWARE.to_owned(),
                        fuzz_skip_kex: mode == KexMode::Skip,
                        ..Config::default()
                    };
                    if role == Role::Server {
                        config.host_keys.push(host_key.clone());
                    }
                    if tight {
                        config.rekey.bytes = 2048;
                        config.rekey.time = Duration::from_secs(10);
                        config.preauth_max_bytes = 8192;
                        config.preauth_max_packets = 64;
                        config.held_limit = 256;
                    }
                    all.push(Arc::new(config));
                }
            }
        }
        all
    });
    let index = usize::from(role == Role::Server) * 4
        + usize::from(mode == KexMode::Real) * 2
        + usize::from(tight);
    Arc::clone(&all[index])
}

/// Output a call may produce beyond twice the input it consumed and what the application
/// sent: our KEXINIT, a key exchange reply with NEWKEYS and EXT_INFO, a DISCONNECT.
const OUTPUT_SLACK: usize = 16 * 1024;

/// Payload bytes the driver sends as application data, a slice at a time.
const APP_DATA: [u8; 64] = [0xab; 64];

/// Runs a transport in `role` against `data` as the peer's bytes: reads cut at random,
/// events answered (host keys accepted), output drained after every call, an application
/// that sends now and then and reports authentication at a point the input decides, and a
/// clock that moves with the input and at the end jumps to the next deadlines. Checked
/// after every call:
/// - nothing panics;
/// - output stays within twice the input consumed, plus what the application sent, plus
///   a fixed allowance;
/// - the transport never waits for more than one packet of the largest size;
/// - nothing reaches the layer above before the first key exchange finished, no transport
///   message but SERVICE_REQUEST (server) or SERVICE_ACCEPT (client) ever does, and no
///   message numbered 80 or above does before authentication;
/// - before authentication a deadline no later than the pre-authentication one is always
///   set, and after `handle_timeout(now)` nothing due at `now` is left;
/// - once a call failed, the connection is closed and every later call fails, produces no
///   output and leaves no deadline.
pub fn drive(role: Role, mode: KexMode, data: &[u8]) -> TransportOutcome {
    let mut plan = SeededRng::new(fnv1a(data));
    let tight = mode == KexMode::Skip && plan.below(2) == 0;
    let auth_at = (plan.below(4) != 0).then(|| plan.below(data.len() + 1));
    let max_read = [1, 16, 256, 4096, usize::MAX][plan.below(5)];
    let mut pieces = Pieces::new(plan.next_u64(), max_read);

    let origin = origin();
    let config = config(role, mode, tight);
    let mut d = Driver {
        t: new_transport(role, mode, tight, origin),
        role,
        mode,
        now: origin,
        preauth_deadline: origin + config.preauth_timeout,
        inbox: Vec::new(),
        out: Vec::new(),
        authenticated: false,
        closed: false,
        quiet: false,
        consumed: 0,
        credit: 0,
        outcome: TransportOutcome::default(),
    };
    d.drain();
    assert!(
        d.out.starts_with(b"SSH-2.0-fuzz\r\n"),
        "the first bytes out are our version line"
    );
    d.check_deadlines();

    let mut fed = 0;
    let mut idle = Duration::ZERO;
    while fed < data.len() {
        let n = pieces.next(data.len() - fed);
        d.inbox.extend_from_slice(&data[fed..fed + n]);
        fed += n;

        if auth_at.is_some_and(|at| fed >= at) && !d.authenticated && d.t.is_ready() {
            d.t.set_authenticated();
            d.authenticated = true;
        }
        d.pump();
        if plan.below(4) == 0 {
            d.send(plan.below(APP_DATA.len()));
        }

        // The clock moves a millisecond per byte, with a few idle spells that together
        // stay under every deadline, so that timers fire in the middle of a stream without
        // cutting every long input short.
        d.now += Duration::from_millis(n as u64);
        if idle < Duration::from_secs(20) && plan.below(32) == 0 {
            d.now += Duration::from_secs(5);
            idle += Duration::from_secs(5);
        }
        d.timeout();
    }

    // The peer went quiet: let the next few deadlines pass.
    for _ in 0..3 {
        let Some(at) = d.t.poll_timeout() else {
            break;
        };
        d.now = d.now.max(at);
        d.timeout();
    }
    if plan.below(4) == 0 {
        d.t.disconnect(DisconnectReason::BY_APPLICATION, "fuzzing");
        d.closed = true;
        d.drain();
    }

    if d.closed {
        // Every call must now fail and change nothing.
        d.inbox
            .extend_from_slice(b"\0\0\0\x0c\x0a\x02\0\0\0\0\0\0\0\0\0\0");
        d.pump();
        d.send(1);
        d.now += Duration::from_secs(1);
        d.timeout();
        assert!(d.t.is_closed());
    }
    d.outcome
}

struct Driver {
    t: Transport,
    role: Role,
    mode: KexMode,
    now: Instant,
    preauth_deadline: Instant,
    /// Bytes received and not yet consumed, as a caller keeps them.
    inbox: Vec<u8>,
    /// The last output taken.
    out: Vec<u8>,
    authenticated: bool,
    /// A call failed or we disconnected.
    closed: bool,
    /// The output was drained after closing; nothing more may come.
    quiet: bool,
    /// Input consumed since the output was last drained.
    consumed: usize,
    /// Bytes the application may have caused to be sent, over the whole run.
    credit: usize,
    outcome: TransportOutcome,
}

impl Driver {
    /// Decodes what the inbox holds, as the call order in the transport docs says.
    fn pump(&mut self) {
        let mut start = 0;
        loop {
            let available = self.inbox.len() - start;
            let decoded = self.t.decode(&mut self.inbox[start..], self.now);
            let (consumed, unimplemented) = match decoded {
                Ok(decoded) => {
                    assert!(!self.closed, "decode succeeded after the connection closed");
                    assert!(decoded.consumed <= available);
                    let mut unimplemented = None;
                    if let Some(packet) = &decoded.packet {
                        assert!(decoded.consumed > 0, "a packet without consuming input");
                        check_delivered(&self.t, self.role, self.authenticated, packet.payload);
                        self.outcome.delivered += 1;
                        let n = packet.payload[0];
                        unimplemented = (n == 0 || n >= 0xa0).then_some(packet.seq);
                    }
                    (decoded.consumed, unimplemented)
                }
                Err(e) => {
                    self.failed(e);
                    self.drain();
                    break;
                }
            };
            start += consumed;
            self.consumed += consumed;
            self.events();
            if let Some(seq) = unimplemented {
                // What the layer above does with a message it does not know.
                self.credit += 5 + MAX_OVERHEAD;
                let sent = self.t.send_unimplemented(seq);
                self.result(sent);
            }
            self.drain();
            if consumed == 0 {
                break;
            }
        }
        self.inbox.drain(..start);
        if !self.closed {
            assert!(
                self.inbox.len() < MAX_WIRE_PACKET,
                "the transport waits with {} bytes unread",
                self.inbox.len()
            );
        }
    }

    /// Answers events as an application would.
    fn events(&mut self) {
        while let Some(event) = self.t.poll_event() {
            match event {
                Event::HostKey(_) => {
                    assert!(
                        self.role == Role::Client && self.mode == KexMode::Real,
                        "a host key to judge in {:?} {:?}",
                        self.role,
                        self.mode
                    );
                    let accepted = self.t.accept_host_key();
                    self.result(accepted);
                }
                Event::KeysReady { .. } => self.outcome.keys_ready += 1,
                Event::ExtInfo(_) => assert_eq!(self.role, Role::Client, "EXT_INFO for a server"),
            }
        }
    }

    /// Sends `len` bytes of channel data, if the transport takes more now.
    fn send(&mut self, len: usize) {
        if !self.closed && !self.t.can_send() {
            return;
        }
        self.credit += 9 + len + MAX_OVERHEAD;
        let sent = self.t.send(|p| {
            p.put_u8(MessageNumber::CHANNEL_DATA.0);
            p.put_u32(0);
            p.put_string(&APP_DATA[..len]);
        });
        self.result(sent);
        self.drain();
    }

    fn timeout(&mut self) {
        let fired = self.t.handle_timeout(self.now);
        if self.result(fired).is_some()
            && let Some(at) = self.t.poll_timeout()
        {
            assert!(at > self.now, "a deadline due now outlived handle_timeout");
        }
        self.events();
        self.drain();
        self.check_deadlines();
    }

    /// Checks a call's result against what came before.
    fn result<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        let mut failed = Failed::new(&self.t, &mut self.closed, &mut self.outcome.error);
        failed.check(result)
    }

    fn failed(&mut self, e: Error) {
        Failed::new(&self.t, &mut self.closed, &mut self.outcome.error).record(e);
    }

    /// Takes the output and checks how much there was.
    fn drain(&mut self) {
        self.out.clear();
        self.t.poll_transmit(&mut self.out);
        let produced = self.out.len();
        let budget = 2 * self.consumed + self.credit + OUTPUT_SLACK;
        assert!(
            produced <= budget,
            "{produced} bytes of output for {} bytes of input",
            self.consumed
        );
        assert!(
            !self.quiet || produced == 0,
            "{produced} bytes of output after the connection closed"
        );
        self.quiet = self.closed;
        self.consumed = 0;
    }

    fn check_deadlines(&self) {
        let next = self.t.poll_timeout();
        if self.closed {
            assert_eq!(next, None, "a deadline on a closed connection");
            assert!(!self.t.can_send(), "a closed connection takes data");
        } else if !self.authenticated {
            assert!(
                next.is_some_and(|at| at <= self.preauth_deadline),
                "no deadline covers authentication: the next is {:?} past it",
                next.map(|at| at.saturating_duration_since(self.preauth_deadline))
            );
        }
    }
}

/// Checks one payload the transport handed to the layer above.
fn check_delivered(t: &Transport, role: Role, authenticated: bool, payload: &[u8]) {
    let Some(&n) = payload.first() else {
        panic!("an empty payload reached the layer above");
    };
    let msg = MessageNumber(n);
    assert!(
        t.is_ready(),
        "{msg:?} reached the layer above before the first key exchange finished"
    );
    if msg.is_transport() {
        let expected = match role {
            Role::Server => MessageNumber::SERVICE_REQUEST,
            Role::Client => MessageNumber::SERVICE_ACCEPT,
        };
        assert_eq!(msg, expected, "a transport message reached the layer above");
    }
    assert!(
        authenticated || n < 80,
        "{msg:?} reached the layer above before authentication"
    );
}

// ---------------------------------------------------------------------------------------
// Helpers

/// A driver's account of how its connection ended, borrowed for one check: whether it is
/// closed, and the first error, which must have closed the transport.
pub(crate) struct Failed<'a> {
    t: &'a Transport,
    closed: &'a mut bool,
    error: &'a mut Option<Error>,
}

impl<'a> Failed<'a> {
    pub(crate) fn new(
        t: &'a Transport,
        closed: &'a mut bool,
        error: &'a mut Option<Error>,
    ) -> Self {
        Self { t, closed, error }
    }

    /// A call's result: its value, or `None` once its error is recorded. Nothing may
    /// succeed after the connection closed.
    pub(crate) fn check<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(value) => {
                assert!(
                    !*self.closed,
                    "a call succeeded after the connection closed"
                );
                Some(value)
            }
            Err(e) => {
                self.record(e);
                None
            }
        }
    }

    /// An error: the transport must be closed by it; the first one is kept.
    pub(crate) fn record(&mut self, e: Error) {
        assert!(
            self.t.is_closed(),
            "the error left the connection open: {e}"
        );
        if !*self.closed {
            log::trace!("fuzzed connection failed: {e}");
            *self.closed = true;
            *self.error = Some(e);
        }
    }
}

/// Cuts a stream into reads of random sizes, as a socket would.
struct Pieces {
    rng: SeededRng,
    max: usize,
}

impl Pieces {
    fn new(seed: u64, max: usize) -> Self {
        Self {
            rng: SeededRng::new(seed),
            max: max.max(1),
        }
    }

    /// The size of the next read, at least 1 unless nothing remains.
    fn next(&mut self, remaining: usize) -> usize {
        if remaining == 0 {
            0
        } else {
            1 + self.rng.below(self.max.min(remaining))
        }
    }
}

/// FNV-1a: a quick hash of the input, to seed the choices the input does not spell out.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The fuzzed transports' clock starts here. Only differences from it matter, so one
/// origin serves every run.
#[expect(
    clippy::disallowed_methods,
    reason = "the simulated clock needs an origin; only differences from it matter"
)]
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}
