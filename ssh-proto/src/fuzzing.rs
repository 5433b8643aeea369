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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::algorithms::{Cipher, Mac};
use crate::authorized_keys::{
    AuthorizedKeys, ClientInfo, Entry, LineError, LookupError,
    MAX_LINE_LEN as AUTHORIZED_MAX_LINE_LEN, Refusal, RefusalReason, Warning,
};
use crate::base64;
use crate::config::Config;
use crate::crypto::default_provider;
use crate::error::Error;
use crate::hostkey::{HostKeyPair, KeyError, PublicKey, RSA_MAX_BITS, RSA_MIN_BITS, SignatureAlg};
use crate::known_hosts::{
    Entry as KnownHostsEntry, EntryKey, HostKeyStatus, KnownHosts, MAX_WARNINGS, Marker,
    SALT_LEN as KNOWN_HOSTS_SALT_LEN, entry_line,
};
use crate::msg::{DisconnectReason, MessageNumber};
use crate::packet::{DirectionKeys, MAX_OVERHEAD, MAX_PACKET_LEN, Opened, Opener, Sealer};
use crate::role::Role;
use crate::sim::SeededRng;
use crate::transport::{Event, Transport};
use crate::userkey::{
    Cipher as KeyFileCipher, MAX_KDF_ROUNDS, PrivateKeyFile, UserKey, UserKeyError,
    parse_public_key_line, public_key_line,
};
use crate::version::{
    MAX_PREAMBLE_LINES, MAX_VERSION_LINE, PeerVersion, VersionError, VersionReader,
};
use crate::wire::{Reader, Writer};

pub mod connection;

pub use connection::{ConnectionOutcome, connection_client, connection_server};

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
        match result {
            Ok(value) => {
                assert!(!self.closed, "a call succeeded after the connection closed");
                Some(value)
            }
            Err(e) => {
                self.failed(e);
                None
            }
        }
    }

    fn failed(&mut self, e: Error) {
        assert!(
            self.t.is_closed(),
            "the error left the connection open: {e}"
        );
        if !self.closed {
            log::trace!("fuzzed transport failed: {e}");
            self.closed = true;
            self.outcome.error = Some(e);
        }
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
// Keys, key files and key lists

/// The passphrase of the encrypted throwaway keys under `vectors/userkeys/`. [`private_key`]
/// decrypts with it, so that seeds made from those files get through the cipher and
/// mutations reach the private section behind it.
pub const KEY_PASSPHRASE: &[u8] = b"throwaway test passphrase";

/// The most bcrypt rounds [`private_key`] derives a key for.
///
/// The parser lets a file ask for up to [`MAX_KDF_ROUNDS`], about 7 s of work: fine for a
/// person opening their own key, not for a fuzzer that wants thousands of runs a second.
/// The round count is one more field it mutates, and one mutation asking for the most
/// would take a quarter of the 30 s that `tests/run.sh` gives each target. Four rounds
/// take about 30 ms, and the encrypted seeds ask for one or two. Files over
/// [`MAX_KDF_ROUNDS`] are still decrypted, since they must be refused before any
/// derivation and so cost nothing.
pub const FUZZ_KDF_ROUNDS: u32 = 4;

/// What a decrypted Ed25519 or ECDSA key signs in [`private_key`].
const SIGNED: &[u8] = b"signed by a fuzzed key file";

/// What [`private_key`] found.
#[derive(Debug)]
pub struct PrivateKeyOutcome {
    /// The public key of the key file, or why [`PrivateKeyFile::parse`] refused it.
    pub file: Result<PublicKey, UserKeyError>,
    /// The public key of the decrypted key, or why decryption failed; `None` when it was
    /// not tried (see [`FUZZ_KDF_ROUNDS`]).
    pub decrypted: Option<Result<PublicKey, UserKeyError>>,
    /// The input read as a `.pub` line; `None` when it is not UTF-8.
    pub public_line: Option<Result<(PublicKey, String), UserKeyError>>,
}

/// Reads `data` as an OpenSSH private key file and, when it is UTF-8, as a `.pub` line, and
/// checks that:
/// - a file that parses holds a sound public key (see [`check_public_key`]), is encrypted
///   exactly when it names a key derivation, and its key written as a `.pub` line reads
///   back as the same key;
/// - an encrypted file refuses a missing or empty passphrase, and one asking for more than
///   [`MAX_KDF_ROUNDS`] refuses any passphrase; a file in the clear decrypts the same with
///   and without one;
/// - a decrypted key has the file's public key, [`UserKey::to_openssh`] writes it as a file
///   that reads back as the same key and comment, and an Ed25519 or ECDSA key signs data
///   that its public key then verifies. RSA keys are not made to sign: an RSA signature
///   costs milliseconds, and what it would check (that the parts form a key pair) the
///   parser has already checked;
/// - a `.pub` line that parses is written back by [`public_key_line`] as a line that reads
///   back the same, and is never also a key file;
/// - no error message holds a control character: they quote bytes from the file.
pub fn private_key(data: &[u8]) -> PrivateKeyOutcome {
    let parsed = PrivateKeyFile::parse(data);
    let mut decrypted = None;
    match &parsed {
        Ok(file) => {
            check_public_key(file.public());
            assert_eq!(
                file.needs_passphrase(),
                file.cipher() != KeyFileCipher::None,
                "needs_passphrase disagrees with the cipher"
            );
            assert_eq!(
                file.needs_passphrase(),
                file.kdf_rounds().is_some(),
                "an encrypted file without a key derivation, or the reverse"
            );
            let line = public_key_line(file.public(), "");
            assert_eq!(
                parse_public_key_line(&line),
                Ok((file.public().clone(), String::new())),
                "the file's public key as a .pub line"
            );
            decrypted = decrypt_key_file(file, data);
        }
        Err(e) => check_message(&e.to_string()),
    }

    let public_line = core::str::from_utf8(data).ok().map(|text| {
        let result = parse_public_key_line(text);
        match &result {
            Ok((key, comment)) => {
                check_public_key(key);
                assert!(
                    parsed.is_err(),
                    "one input read both as a key file and as a .pub line"
                );
                assert!(
                    comment.trim() == comment && !comment.contains('\n'),
                    "comment {comment:?}"
                );
                let line = public_key_line(key, comment);
                assert_eq!(
                    parse_public_key_line(&line),
                    Ok((key.clone(), comment.clone())),
                    "the .pub line written back: {line:?}"
                );
            }
            Err(e) => check_message(&e.to_string()),
        }
        result
    });

    PrivateKeyOutcome {
        file: parsed.map(|file| file.public().clone()),
        decrypted,
        public_line,
    }
}

/// Decrypts a parsed key file as [`private_key`] describes, with [`KEY_PASSPHRASE`].
fn decrypt_key_file(file: &PrivateKeyFile, data: &[u8]) -> Option<Result<PublicKey, UserKeyError>> {
    let provider = default_provider();
    let result = match file.kdf_rounds() {
        None => {
            let without = file.decrypt(provider, None);
            let with = file.decrypt(provider, Some(KEY_PASSPHRASE));
            assert_eq!(
                key_summary(&without),
                key_summary(&with),
                "a passphrase changed how a file in the clear decrypts"
            );
            without
        }
        Some(rounds) => {
            for missing in [None, Some(&b""[..])] {
                assert_eq!(
                    file.decrypt(provider, missing).err(),
                    Some(UserKeyError::PassphraseRequired),
                    "an encrypted file with passphrase {missing:?}"
                );
            }
            if rounds <= MAX_KDF_ROUNDS && rounds > FUZZ_KDF_ROUNDS {
                return None;
            }
            let result = file.decrypt(provider, Some(KEY_PASSPHRASE));
            if rounds > MAX_KDF_ROUNDS {
                assert_eq!(
                    result.as_ref().err(),
                    Some(&UserKeyError::KdfRounds { rounds }),
                    "a file asking for {rounds} bcrypt rounds"
                );
            }
            result
        }
    };
    match &result {
        Ok(key) => check_user_key(file, key, data),
        Err(e) => check_message(&e.to_string()),
    }
    Some(result.map(|key| key.public().clone()))
}

/// What tells two decryptions apart, as far as a caller can see.
fn key_summary(key: &Result<UserKey, UserKeyError>) -> Result<(&PublicKey, &str), &UserKeyError> {
    key.as_ref().map(|key| (key.public(), key.comment()))
}

fn check_user_key(file: &PrivateKeyFile, key: &UserKey, data: &[u8]) {
    let provider = default_provider();
    assert_eq!(key.public(), file.public(), "decrypted to another key");

    let mut rng = SeededRng::new(fnv1a(data));
    let text = match key.to_openssh(key.comment(), None, &mut rng) {
        Ok(text) => text,
        Err(e) => panic!("a decrypted key could not be written back: {e}"),
    };
    let again = PrivateKeyFile::parse(text.as_bytes()).and_then(|f| f.decrypt(provider, None));
    assert_eq!(
        key_summary(&again),
        Ok((key.public(), key.comment())),
        "the key written back does not read back"
    );

    if !matches!(key.public(), PublicKey::Rsa { .. }) {
        for alg in SignatureAlg::ALL {
            if !key.public().supports(alg) {
                continue;
            }
            let sig = match key.sign(provider, alg, SIGNED) {
                Ok(sig) => sig,
                Err(e) => panic!("a decrypted key could not sign with {alg}: {e}"),
            };
            assert_eq!(
                key.public().verify(provider, alg, SIGNED, &sig),
                Ok(()),
                "a decrypted key's {alg} signature does not verify"
            );
        }
    }
}

/// What [`public_key`] found.
#[derive(Debug)]
pub struct PublicKeyOutcome {
    /// The whole input as a key blob.
    pub key: Result<PublicKey, KeyError>,
    /// The algorithms for which the input, read as a signed message, verified.
    pub verified: Vec<SignatureAlg>,
}

/// Reads `data` two ways and checks each:
/// - as a key blob. One that parses is sound (see [`check_public_key`]) and is the one
///   encoding of its key, as the parser promises: [`PublicKey::to_blob`] gives back
///   exactly `data` for every key type, RSA's mpints included, since the parser refuses
///   every encoding but the minimal one. No proper prefix of it parses, a byte more is
///   refused as trailing, and its fingerprint has OpenSSH's shape;
/// - as `string key-blob, string signature-blob` followed by the signed bytes, verified
///   with each signature algorithm. A signature names its algorithm, so it verifies for at
///   most one, only one the key supports, and not over any other bytes.
///
/// No error message holds a control character.
pub fn public_key(data: &[u8]) -> PublicKeyOutcome {
    let provider = default_provider();
    let key = PublicKey::from_blob(data);
    match &key {
        Ok(key) => {
            check_public_key(key);
            assert_eq!(
                key.to_blob(),
                data,
                "the key parsed from a blob writes another blob"
            );
            for end in 0..data.len() {
                assert!(
                    PublicKey::from_blob(&data[..end]).is_err(),
                    "the first {end} bytes of a key blob parsed"
                );
            }
            let longer = [data, &[0]].concat();
            assert_eq!(PublicKey::from_blob(&longer), Err(KeyError::TrailingBytes));
            let fingerprint = key.fingerprint_sha256(provider);
            let digest = fingerprint.strip_prefix("SHA256:").unwrap_or_default();
            assert!(
                digest.len() == 43 && base64::decode_unpadded(digest).is_ok_and(|d| d.len() == 32),
                "fingerprint {fingerprint}"
            );
        }
        Err(e) => check_message(&e.to_string()),
    }

    let mut verified = Vec::new();
    let mut r = Reader::new(data);
    if let Ok(blob) = r.string("key blob")
        && let Ok(sig) = r.string("signature blob")
        && let Ok(signer) = PublicKey::from_blob(blob)
    {
        let signed = r.remaining();
        for alg in SignatureAlg::ALL {
            match signer.verify(provider, alg, signed, sig) {
                Ok(()) => {
                    assert!(signer.supports(alg), "a {alg} signature from {signer:?}");
                    let other = [signed, b"!"].concat();
                    assert_eq!(
                        signer.verify(provider, alg, &other, sig),
                        Err(KeyError::BadSignature),
                        "a {alg} signature verified over other bytes too"
                    );
                    verified.push(alg);
                }
                Err(e) => check_message(&e.to_string()),
            }
        }
        assert!(
            verified.len() <= 1,
            "one signature verified for {verified:?}"
        );
    }
    PublicKeyOutcome { key, verified }
}

/// Checks what every parsed public key promises: its blob parses back to it, its type
/// and the algorithms it supports agree, and an RSA key has minimal parts and a size in
/// range.
fn check_public_key(key: &PublicKey) {
    assert_eq!(
        PublicKey::from_blob(&key.to_blob()).as_ref(),
        Ok(key),
        "a key's own blob does not parse back to it"
    );
    let bits = key.bits();
    match key {
        PublicKey::Rsa { e, n } => {
            assert!(
                (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits),
                "an RSA key of {bits} bits"
            );
            assert!(
                e.first().is_some_and(|&b| b != 0) && n.first().is_some_and(|&b| b != 0),
                "RSA parts with leading zeros: {key:?}"
            );
        }
        PublicKey::Ed25519(_) | PublicKey::EcdsaP256(_) => assert_eq!(bits, 256),
    }
    for alg in SignatureAlg::ALL {
        assert_eq!(
            key.supports(alg),
            alg.key_type() == key.key_type(),
            "{key:?} and {alg}"
        );
    }
}

/// Error messages and warnings quote bytes from files a hostile party may have written,
/// and the crate promises to escape them, so they are safe to print on a terminal.
fn check_message(message: &str) {
    assert!(
        !message.chars().any(char::is_control),
        "a control character in the message {message:?}"
    );
}

/// The time [`authorized_keys`] looks keys up at: 2023-11-14, between the expiry times of
/// the seeds.
const LOOKUP_TIME: i64 = 1_700_000_000;

/// What [`authorized_keys`] found.
#[derive(Debug, Default)]
pub struct AuthorizedKeysOutcome {
    pub entries: usize,
    pub warnings: usize,
    /// Lookups that found an entry.
    pub found: usize,
    /// Lookups that found lines with the key, all of which refused the client.
    pub refused: usize,
}

/// Parses `data` as an `authorized_keys` file and checks that:
/// - [`AuthorizedKeys::parse`] and [`AuthorizedKeys::parse_bytes`] agree on UTF-8;
/// - entries and warnings name lines of the input, in order, at most one each, and every
///   other line is blank or a comment;
/// - each line means the same alone as in the file: a line's result does not depend on
///   the lines around it;
/// - a warning's reason fits its line (a line over [`MAX_LINE_LEN`] is reported as too
///   long with its length, a NUL byte as such), and its message has no control character;
/// - each entry's key is sound (see [`check_public_key`]), its comment has no blanks
///   around it, and options without port forwarding permit no forward;
/// - [`AuthorizedKeys::lookup`] for the keys of the first lines, and one key that is not
///   in the seeds, answers for a few fixed clients as its documentation says.
pub fn authorized_keys(data: &[u8]) -> AuthorizedKeysOutcome {
    let keys = AuthorizedKeys::parse_bytes(data);
    if let Ok(text) = core::str::from_utf8(data) {
        assert_eq!(
            AuthorizedKeys::parse(text),
            keys,
            "parse and parse_bytes disagree"
        );
    }
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    check_line_numbers(
        keys.entries().iter().map(|e| e.line),
        keys.warnings().iter().map(|w| w.line),
        lines.len(),
    );

    let mut entries = keys.entries().iter().peekable();
    let mut warnings = keys.warnings().iter().peekable();
    for (index, &raw) in lines.iter().enumerate() {
        let number = index + 1;
        let alone = AuthorizedKeys::parse_bytes(raw);
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if let Some(entry) = entries.next_if(|e| e.line == number) {
            assert_eq!(
                alone.entries(),
                [Entry {
                    line: 1,
                    ..entry.clone()
                }],
                "line {number} alone"
            );
            assert!(alone.warnings().is_empty(), "line {number} alone");
            check_authorized_entry(entry, line);
        } else if let Some(warning) = warnings.next_if(|w| w.line == number) {
            assert_eq!(
                alone.warnings(),
                [Warning {
                    line: 1,
                    ..warning.clone()
                }],
                "line {number} alone"
            );
            assert!(alone.entries().is_empty(), "line {number} alone");
            check_message(&warning.to_string());
            match warning.error {
                LineError::TooLong(len) => assert!(
                    len == line.len() && len > AUTHORIZED_MAX_LINE_LEN,
                    "line {number} of {} bytes reported as {len} bytes long",
                    line.len()
                ),
                LineError::NulByte => assert!(line.contains(&0), "line {number}"),
                LineError::NotUtf8 => assert!(core::str::from_utf8(line).is_err()),
                _ => {}
            }
            if !matches!(warning.error, LineError::TooLong(_)) {
                assert!(line.len() <= AUTHORIZED_MAX_LINE_LEN, "line {number}");
            }
        } else {
            assert!(
                alone == AuthorizedKeys::default() && is_blank_or_comment(line),
                "line {number} neither used nor reported"
            );
        }
    }

    let mut outcome = AuthorizedKeysOutcome {
        entries: keys.entries().len(),
        warnings: keys.warnings().len(),
        ..AuthorizedKeysOutcome::default()
    };
    let mut probes: Vec<&PublicKey> = Vec::new();
    for entry in keys.entries() {
        if probes.len() == 4 {
            break;
        }
        if !probes.contains(&&entry.key) {
            probes.push(&entry.key);
        }
    }
    let absent = PublicKey::Ed25519([7; 32]);
    probes.push(&absent);
    for client in lookup_clients() {
        for key in &probes {
            match keys.lookup(key, &client) {
                Ok(_) => outcome.found += 1,
                Err(LookupError::Refused(_)) => outcome.refused += 1,
                Err(LookupError::NotListed) => {}
            }
            check_lookup(&keys, key, &client);
        }
    }
    outcome
}

/// Blank, or a comment: a `#` after blanks.
fn is_blank_or_comment(line: &[u8]) -> bool {
    matches!(
        line.iter().find(|&&b| b != b' ' && b != b'\t'),
        None | Some(b'#')
    )
}

fn check_authorized_entry(entry: &Entry, line: &[u8]) {
    check_public_key(&entry.key);
    let comment = &entry.comment;
    assert!(
        !comment.starts_with([' ', '\t'])
            && !comment.ends_with([' ', '\t'])
            && !comment.contains('\n'),
        "line {}: comment {comment:?}",
        entry.line
    );
    if let Ok(text) = core::str::from_utf8(line) {
        assert!(text.contains(comment.as_str()), "line {}", entry.line);
    }
    let options = &entry.options;
    if !options.permits_port_forwarding() {
        assert!(
            !options.permits_open("localhost", 22) && !options.permits_listen("localhost", 8022),
            "line {}: a forward without port forwarding",
            entry.line
        );
    }
}

/// The clients [`authorized_keys`] looks keys up for: an IPv4 address without a host name,
/// an IPv4-mapped IPv6 address with a mixed-case name, and an IPv6 address whose "name"
/// is an address, which must be ignored; at three times in three time zones.
fn lookup_clients() -> [ClientInfo<'static>; 3] {
    [
        ClientInfo::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), None, LOOKUP_TIME),
        ClientInfo {
            utc_offset: -5 * 3600,
            ..ClientInfo::new(
                IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped()),
                Some("Client.Example.COM"),
                LOOKUP_TIME + 400_000_000,
            )
        },
        ClientInfo {
            utc_offset: 3600,
            ..ClientInfo::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                Some("192.0.2.1"),
                0,
            )
        },
    ]
}

/// Checks [`AuthorizedKeys::lookup`] against its documentation: the first line with the
/// key, not `cert-authority`, unexpired and whose `from=` lets the client in; else, one
/// refusal with its reason for each line with the key, expiry checked first.
fn check_lookup(keys: &AuthorizedKeys, key: &PublicKey, client: &ClientInfo<'_>) {
    let with_key = keys
        .entries()
        .iter()
        .filter(|e| e.key == *key && !e.options.is_cert_authority());
    let reason = |e: &Entry| {
        if e.options.is_expired(client.now_unix, client.utc_offset) {
            Some(RefusalReason::Expired)
        } else if !e.options.from_allows(client.ip, client.host) {
            Some(RefusalReason::FromMismatch)
        } else {
            None
        }
    };
    match keys.lookup(key, client) {
        Ok(found) => {
            let first = with_key.clone().find(|e| reason(e).is_none());
            assert!(
                first.is_some_and(|e| core::ptr::eq(e, found)),
                "lookup found line {} for {client:?}, not the first that allows",
                found.line
            );
        }
        Err(LookupError::NotListed) => {
            assert_eq!(with_key.count(), 0, "a listed key reported as not listed");
        }
        Err(LookupError::Refused(refusals)) => {
            // `None` for a line that allows, which must not be among the refusals.
            let expected: Vec<Option<Refusal>> = with_key
                .map(|e| {
                    reason(e).map(|reason| Refusal {
                        line: e.line,
                        reason,
                    })
                })
                .collect();
            let got: Vec<Option<Refusal>> = refusals.iter().copied().map(Some).collect();
            assert!(
                !got.is_empty() && got == expected,
                "refusals {refusals:?} for {client:?}, expected {expected:?}"
            );
        }
    }
}

/// Entry and warning line numbers: each list in increasing order, each number a line of
/// the input (`1..=lines`), and no line in both.
fn check_line_numbers(
    entries: impl Iterator<Item = usize> + Clone,
    warnings: impl Iterator<Item = usize> + Clone,
    lines: usize,
) {
    for (what, numbers) in [
        ("entry", entries.clone().collect::<Vec<_>>()),
        ("warning", warnings.clone().collect()),
    ] {
        assert!(
            numbers.iter().all(|n| (1..=lines).contains(n)),
            "{what} line numbers {numbers:?} outside 1..={lines}"
        );
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "{what} line numbers out of order: {numbers:?}"
        );
    }
    let mut both: Vec<usize> = entries.chain(warnings).collect();
    let count = both.len();
    both.sort_unstable();
    both.dedup();
    assert_eq!(both.len(), count, "a line both used and reported");
}

/// The names [`known_hosts`] always looks up, besides those it takes from the input: a
/// plain name, a bracketed one with a port, a hashed one and a negated one in the seeds.
const KNOWN_HOSTS_PROBES: [(&str, u16); 4] = [
    ("plain.example.com", 22),
    ("port.example.com", 2222),
    ("hashed.example.com", 22),
    ("bad.neg.example.com", 22),
];

/// What [`known_hosts`] found.
#[derive(Debug, Default)]
pub struct KnownHostsOutcome {
    pub entries: usize,
    pub invalid_lines: usize,
    /// What each lookup answered, in the order they were made.
    pub statuses: Vec<HostKeyStatus>,
}

/// Parses `data` (made UTF-8 by replacing what is not) as a `known_hosts` file and checks
/// that:
/// - at most [`MAX_WARNINGS`] warnings are kept and [`KnownHosts::invalid_lines`] counts
///   them all;
/// - entries and warnings name lines of the input, in order, at most one each, and when
///   every warning was kept, every other line is blank or a comment;
/// - each line means the same alone as in the file, and warnings have no control
///   characters;
/// - supported keys are sound (see [`check_public_key`]), and a key kept as unsupported
///   is not of a supported type;
/// - for a few fixed host names and the first names of the first lines, on their ports:
///   [`KnownHosts::matching`] lists the entries that [`Entry::matches`] the name, and
///   [`KnownHosts::lookup`] of the first keys in the file, and one that is not, answers as
///   [`HostKeyStatus`] documents;
/// - [`entry_line`] refuses exactly the names its documentation lists, and a line it
///   writes, hashed or not, reads back alone as the key of that host, and appended to the
///   file makes the key known unless a revocation or an earlier exact match answers
///   first.
pub fn known_hosts(data: &[u8]) -> KnownHostsOutcome {
    let text = String::from_utf8_lossy(data);
    let known = KnownHosts::parse(&text);
    let lines: Vec<&str> = text.split('\n').collect();
    let warnings = known.warnings();
    assert_eq!(
        warnings.len(),
        known.invalid_lines().min(MAX_WARNINGS),
        "{} invalid lines",
        known.invalid_lines()
    );
    assert!(known.entries().len() + known.invalid_lines() <= lines.len());
    check_line_numbers(
        known.entries().iter().map(KnownHostsEntry::line),
        warnings.iter().map(|w| w.line),
        lines.len(),
    );
    let probes = known_hosts_probes(&lines);
    // Which entries name each probe, with and without its port: worked out once, as hashed
    // names cost an HMAC each time.
    let named: Vec<ProbeMatches> = probes
        .iter()
        .map(|(host, port)| ProbeMatches::new(&known, host, *port))
        .collect();

    for warning in warnings {
        check_message(&warning.to_string());
        let alone = KnownHosts::parse(lines[warning.line - 1]);
        assert!(
            alone.entries().is_empty()
                && alone.warnings().len() == 1
                && alone.warnings()[0].reason == warning.reason,
            "line {} alone: {:?}",
            warning.line,
            alone.warnings()
        );
    }
    for (index, entry) in known.entries().iter().enumerate() {
        match entry.key() {
            EntryKey::Key(key) => check_public_key(key),
            EntryKey::Unsupported { key_type } => assert!(
                !["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"].contains(&key_type.as_str()),
                "a supported key type kept as unsupported"
            ),
        }
        let alone = KnownHosts::parse(lines[entry.line() - 1]);
        let [single] = alone.entries() else {
            panic!("line {} alone: {:?}", entry.line(), alone.warnings());
        };
        assert!(
            alone.warnings().is_empty()
                && single.key() == entry.key()
                && single.marker() == entry.marker()
                && single.is_hashed() == entry.is_hashed()
                && probes
                    .iter()
                    .zip(&named)
                    .all(|((h, p), named)| single.matches(h, *p) == named.exact[index]),
            "line {} means something else alone",
            entry.line()
        );
    }
    if known.invalid_lines() == warnings.len() {
        let mut used = vec![false; lines.len()];
        for n in known
            .entries()
            .iter()
            .map(KnownHostsEntry::line)
            .chain(warnings.iter().map(|w| w.line))
        {
            used[n - 1] = true;
        }
        for (index, line) in lines.iter().enumerate() {
            if !used[index] {
                let first = line.split([' ', '\t', '\r']).find(|f| !f.is_empty());
                assert!(
                    first.is_none_or(|f| f.starts_with('#')),
                    "line {} neither used nor reported",
                    index + 1
                );
            }
        }
    }

    let mut keys: Vec<PublicKey> = Vec::new();
    for entry in known.entries() {
        if keys.len() == 3 {
            break;
        }
        if let EntryKey::Key(key) = entry.key()
            && !keys.contains(key)
        {
            keys.push(key.clone());
        }
    }
    keys.push(PublicKey::Ed25519([7; 32]));

    let mut statuses = Vec::new();
    for ((host, port), named) in probes.iter().zip(&named) {
        let matching: Vec<usize> = known
            .matching(host, *port)
            .map(KnownHostsEntry::line)
            .collect();
        let expected: Vec<usize> = known
            .entries()
            .iter()
            .zip(&named.exact)
            .filter(|(_, exact)| **exact)
            .map(|(e, _)| e.line())
            .collect();
        assert_eq!(matching, expected, "matching({host:?}, {port})");
        for key in &keys {
            let status = known.lookup(host, *port, key);
            assert_eq!(
                status,
                expected_status(&known, named, key),
                "lookup({host:?}, {port}, {key:?})"
            );
            statuses.push(status);
        }
    }

    for (i, ((host, port), named)) in probes.iter().zip(&named).enumerate() {
        check_appended(&known, named, &text, host, *port, &keys[0], i);
    }

    KnownHostsOutcome {
        entries: known.entries().len(),
        invalid_lines: known.invalid_lines(),
        statuses,
    }
}

/// [`KNOWN_HOSTS_PROBES`], then the first names of lines that are not comments, each with
/// its port, so that mutations of the names in the file are looked up too; eight at most.
fn known_hosts_probes(lines: &[&str]) -> Vec<(String, u16)> {
    let mut probes: Vec<(String, u16)> = KNOWN_HOSTS_PROBES
        .iter()
        .map(|&(host, port)| (host.to_owned(), port))
        .collect();
    for line in lines {
        if probes.len() == 8 {
            break;
        }
        let mut fields = line.split([' ', '\t', '\r']).filter(|f| !f.is_empty());
        let Some(mut names) = fields.next().filter(|f| !f.starts_with('#')) else {
            continue;
        };
        if names.starts_with('@') {
            match fields.next() {
                Some(next) => names = next,
                None => continue,
            }
        }
        let name = names.split(',').next().unwrap_or_default();
        let name = name.strip_prefix('!').unwrap_or(name);
        let bracketed = name
            .strip_prefix('[')
            .and_then(|rest| rest.rsplit_once("]:"))
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)));
        let (host, port) = bracketed.unwrap_or((name, 22));
        let probe = (host.to_owned(), port);
        if !probes.contains(&probe) {
            probes.push(probe);
        }
    }
    probes
}

/// Which entries of a file name one probe: `exact[i]` when entry `i` matches
/// `[host]:port` (or `host` for port 22), `portless[i]` when it matches the plain `host`
/// and the port is not 22.
struct ProbeMatches {
    exact: Vec<bool>,
    portless: Vec<bool>,
}

impl ProbeMatches {
    fn new(known: &KnownHosts, host: &str, port: u16) -> Self {
        let has_port = port != 0 && port != 22;
        let entries = known.entries();
        Self {
            exact: entries.iter().map(|e| e.matches(host, port)).collect(),
            portless: entries
                .iter()
                .map(|e| has_port && e.matches(host, 22))
                .collect(),
        }
    }
}

/// What [`HostKeyStatus`] says [`KnownHosts::lookup`] answers, worked out from the
/// entries: an `@revoked` line with the key under `[host]:port` or the plain host; else
/// the first unmarked line for `[host]:port` with the key; else the first such line with
/// another key of its type; else all such lines, of other types; else the first
/// unmarked line with the key under the plain host, for a port other than 22.
fn expected_status(known: &KnownHosts, named: &ProbeMatches, key: &PublicKey) -> HostKeyStatus {
    let holds = |e: &KnownHostsEntry| e.key() == &EntryKey::Key(key.clone());
    let entries: Vec<(&KnownHostsEntry, bool, bool)> = known
        .entries()
        .iter()
        .zip(&named.exact)
        .zip(&named.portless)
        .map(|((e, &exact), &portless)| (e, exact, portless))
        .collect();

    if let Some((e, ..)) = entries.iter().find(|(e, exact, portless)| {
        e.marker() == Some(Marker::Revoked) && holds(e) && (*exact || *portless)
    }) {
        return HostKeyStatus::Revoked { line: e.line() };
    }
    let named: Vec<&KnownHostsEntry> = entries
        .iter()
        .filter(|(e, exact, _)| e.marker().is_none() && *exact)
        .map(|(e, ..)| *e)
        .collect();
    if let Some(e) = named.iter().find(|e| holds(e)) {
        return HostKeyStatus::Known { line: e.line() };
    }
    if let Some(e) = named.iter().find(|e| e.key().key_type() == key.key_type()) {
        return HostKeyStatus::Changed {
            line: e.line(),
            old_key_type: key.key_type(),
        };
    }
    if !named.is_empty() {
        return HostKeyStatus::OtherTypesKnown {
            lines: named.iter().map(|e| e.line()).collect(),
        };
    }
    match entries
        .iter()
        .find(|(e, _, portless)| e.marker().is_none() && holds(e) && *portless)
    {
        Some((e, ..)) => HostKeyStatus::Known { line: e.line() },
        None => HostKeyStatus::Unknown,
    }
}

/// Whether [`entry_line`]'s documentation lets it write a line for `host`: not empty, no
/// whitespace, control byte, comma or wildcard, no `!`, `|`, `@` or `#` in front, and a
/// name with its port no longer than the longest pattern the parser matches.
fn writable_host(host: &str, port: u16) -> bool {
    let bytes = host.as_bytes();
    crate::known_hosts::host_port_name(host, port).len() <= crate::known_hosts::MAX_PATTERN_LEN
        && !matches!(bytes.first(), None | Some(b'!' | b'|' | b'@' | b'#'))
        && !bytes
            .iter()
            .any(|&b| b <= b' ' || b == 0x7f || matches!(b, b',' | b'*' | b'?'))
}

/// Checks the line [`entry_line`] writes for `host` and `port`, hashed for odd `probe`
/// numbers: alone and appended to `text`, the text of `known`.
fn check_appended(
    known: &KnownHosts,
    named: &ProbeMatches,
    text: &str,
    host: &str,
    port: u16,
    key: &PublicKey,
    probe: usize,
) {
    let salt = (probe % 2 == 1).then_some([probe as u8; KNOWN_HOSTS_SALT_LEN]);
    let line = match entry_line(host, port, key, salt) {
        Ok(line) => {
            assert!(
                writable_host(host, port),
                "wrote a line for {host:?}: {line}"
            );
            line
        }
        Err(e) => {
            assert!(!writable_host(host, port), "refused {host:?}: {e}");
            return;
        }
    };
    assert!(!line.contains(['\n', '\r']), "{line:?}");

    let alone = KnownHosts::parse(&line);
    let [entry] = alone.entries() else {
        panic!(
            "the line written for {host:?} port {port} does not read back: {:?}",
            alone.warnings()
        );
    };
    assert!(
        entry.is_hashed() == salt.is_some()
            && entry.key() == &EntryKey::Key(key.clone())
            && entry.marker().is_none()
            && entry.matches(host, port),
        "the line written for {host:?} port {port} reads back as {entry:?}"
    );
    assert_eq!(
        alone.lookup(host, port, key),
        HostKeyStatus::Known { line: 1 }
    );

    let lines = text.split('\n').count();
    let (separator, at) = if text.is_empty() || text.ends_with('\n') {
        ("", lines)
    } else {
        ("\n", lines + 1)
    };
    let appended = KnownHosts::parse(&format!("{text}{separator}{line}"));
    let before = known.lookup(host, port, key);
    let expected = match before {
        HostKeyStatus::Revoked { .. } => before,
        HostKeyStatus::Known { line }
            if known
                .entries()
                .iter()
                .zip(&named.exact)
                .any(|(e, exact)| e.line() == line && *exact) =>
        {
            before
        }
        _ => HostKeyStatus::Known { line: at },
    };
    assert_eq!(
        appended.lookup(host, port, key),
        expected,
        "after appending the line for {host:?} port {port}"
    );
}

// ---------------------------------------------------------------------------------------
// Helpers

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
