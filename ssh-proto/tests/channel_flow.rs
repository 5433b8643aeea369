//! The whole channel path under load: two [`Channels`] over a real handshake in the
//! simulator, checking flow control (RFC 4254 section 5.2), fairness between channels,
//! thousands of channels at once, and random operation sequences.
//!
//! Channel data is never stored: every stream is a slice of one seeded table at an
//! offset of its own, so the receiver checks each message against the table as it
//! arrives and keeps only a byte count.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use ssh_proto::Error;
use ssh_proto::config::Config;
use ssh_proto::connection::channels::{Channels, ChannelsConfig, Event, Input};
use ssh_proto::connection::msg::{ChannelType, OpenFailureReason};
use ssh_proto::connection::window::WindowConfig;
use ssh_proto::crypto::default_provider;
use ssh_proto::hostkey::HostKeyPair;
use ssh_proto::rekey::RekeyLimits;
use ssh_proto::sim::{Cut, Pair, SeededRng, Side};
use ssh_proto::transport;

// ---------------------------------------------------------------------------------------
// Stream contents

/// The period of the data pattern: a prime above every maximum packet size used here, so
/// that one message never wraps and a shifted stream does not line up with itself.
const PERIOD: usize = 65_521;

/// The bytes every stream is cut from: `2 * PERIOD` seeded random bytes, so any slice of
/// up to `PERIOD` bytes starting in the first half is contiguous.
struct Pattern(Vec<u8>);

impl Pattern {
    fn new() -> Self {
        let mut rng = SeededRng::new(0x0f10_3c0d);
        let table: Vec<u8> = (0..PERIOD).map(|_| rng.next_u64() as u8).collect();
        Self(table.repeat(2))
    }

    /// Up to `len` bytes of stream `key` from `offset`; at most `PERIOD` at once.
    fn bytes(&self, key: u64, offset: u64, len: u64) -> &[u8] {
        let start = (key.wrapping_mul(7_919).wrapping_add(offset) % PERIOD as u64) as usize;
        let len = len.min(PERIOD as u64) as usize;
        &self.0[start..start + len]
    }

    /// Whether `data` is what stream `key` holds at `offset`.
    fn matches(&self, key: u64, offset: u64, data: &[u8]) -> bool {
        data.len() <= PERIOD && self.bytes(key, offset, data.len() as u64) == data
    }
}

// ---------------------------------------------------------------------------------------
// The rig

/// Index of the client in [`Rig::apps`] and in the per-side arrays of the models.
const CLIENT: usize = 0;
const SERVER: usize = 1;

/// What one side's application knows about data arriving on one of its channels.
#[derive(Debug, Default)]
struct Incoming {
    /// The pattern key of the stream.
    key: u64,
    /// Bytes handed to the application so far.
    received: u64,
    /// Bytes handed over and not yet reported with `consumed`.
    unread: u64,
}

/// One data message as the application saw it.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    channel: u32,
    len: usize,
    /// The transport's count of packets received, this one included.
    packet: u64,
}

/// One side's application.
struct App {
    ch: Channels,
    events: VecDeque<Event>,
    incoming: HashMap<u32, Incoming>,
    /// Report data as read as soon as it arrives.
    consume: bool,
    /// Keep an [`Arrival`] for every data message.
    record: bool,
    arrivals: Vec<Arrival>,
}

impl App {
    fn new(config: ChannelsConfig) -> Self {
        Self {
            ch: Channels::new(config).unwrap(),
            events: VecDeque::new(),
            incoming: HashMap::new(),
            consume: true,
            record: false,
            arrivals: Vec::new(),
        }
    }
}

struct Rig {
    pair: Pair,
    apps: [App; 2],
    pattern: Pattern,
}

/// A window that does not grow, so every bound below is exact.
fn fixed_window(window: usize, max_packet: usize) -> ChannelsConfig {
    ChannelsConfig {
        window: WindowConfig {
            initial: window as u32,
            max: window as u32,
            max_packet: max_packet as u32,
        },
        ..ChannelsConfig::default()
    }
}

impl Rig {
    /// A handshaken, authenticated pair; `configs` are the client's and the server's.
    fn new(configs: [ChannelsConfig; 2], seed: u64) -> Self {
        Self::with_rekey(configs, seed, RekeyLimits::default())
    }

    /// As [`Rig::new`], with both transports rekeying at `rekey`.
    fn with_rekey(configs: [ChannelsConfig; 2], seed: u64, rekey: RekeyLimits) -> Self {
        let provider = default_provider();
        let c = Config {
            provider,
            rekey,
            ..Config::default()
        };
        let s = Config {
            provider,
            rekey,
            host_keys: vec![HostKeyPair::ed25519_from_seed(provider, &[7; 32])],
            ..Config::default()
        };
        let mut pair = Pair::new(Arc::new(c), Arc::new(s), seed, Cut::Whole);
        pair.handshake().unwrap();
        pair.client.transport.set_authenticated();
        pair.server.transport.set_authenticated();
        Self {
            pair,
            apps: configs.map(App::new),
            pattern: Pattern::new(),
        }
    }

    /// One side's application and transport, borrowed together.
    fn parts(&mut self, who: usize) -> (&mut App, &mut transport::Transport) {
        let t = if who == CLIENT {
            &mut self.pair.client.transport
        } else {
            &mut self.pair.server.transport
        };
        (&mut self.apps[who], t)
    }

    /// The bytes `who` has been sent that it has not read off the pipe yet.
    fn pipe_to(&mut self, who: usize) -> &mut Vec<u8> {
        if who == CLIENT {
            self.pair.s2c_in_flight()
        } else {
            self.pair.c2s_in_flight()
        }
    }

    /// Hands `who` at most `max` bytes of what is in flight to it, possibly cutting a
    /// packet in two.
    fn deliver_to(&mut self, who: usize, max: usize) -> Result<(), Error> {
        self.pair.flush();
        let pipe = self.pipe_to(who);
        let wire = if max >= pipe.len() {
            std::mem::take(pipe)
        } else {
            let rest = pipe.split_off(max);
            std::mem::replace(pipe, rest)
        };
        let now = self.pair.now;
        let Self {
            pair,
            apps,
            pattern,
        } = self;
        let side = if who == CLIENT {
            &mut pair.client
        } else {
            &mut pair.server
        };
        deliver(side, &mut apps[who], pattern, wire, now)
    }

    /// Moves bytes both ways until nothing is in flight.
    fn pump(&mut self) {
        for _ in 0..100_000 {
            self.pair.flush();
            if self.pipe_to(CLIENT).is_empty() && self.pipe_to(SERVER).is_empty() {
                return;
            }
            self.deliver_to(SERVER, usize::MAX).unwrap();
            self.deliver_to(CLIENT, usize::MAX).unwrap();
        }
        panic!("the rig did not settle");
    }

    /// One `send_data` call on `who`'s `channel`, offering the next `len` bytes of
    /// stream `key` after `offset` (at most `PERIOD`). Returns what it took.
    fn send(&mut self, who: usize, channel: u32, key: u64, offset: u64, len: u64) -> usize {
        self.send_on(who, channel, false, key, offset, len)
    }

    /// As [`Rig::send`], as extended data of type STDERR when `stderr`.
    fn send_on(
        &mut self,
        who: usize,
        channel: u32,
        stderr: bool,
        key: u64,
        offset: u64,
        len: u64,
    ) -> usize {
        let Self {
            pair,
            apps,
            pattern,
        } = self;
        let t = if who == CLIENT {
            &mut pair.client.transport
        } else {
            &mut pair.server.transport
        };
        let data = pattern.bytes(key, offset, len);
        apps[who].ch.send_data(t, channel, stderr, data).unwrap()
    }

    /// The client opens `n` sessions and the server accepts them all. Returns (client id,
    /// server id) pairs; stream keys are `2k` upstream and `2k + 1` downstream.
    fn sessions(&mut self, n: usize) -> Vec<(u32, u32)> {
        let ids: Vec<u32> = (0..n)
            .map(|_| {
                let t = &mut self.pair.client.transport;
                self.apps[CLIENT].ch.open(t, &ChannelType::Session).unwrap()
            })
            .collect();
        self.deliver_to(SERVER, usize::MAX).unwrap();
        let mut pairs = Vec::with_capacity(n);
        for (k, &c) in ids.iter().enumerate() {
            let Some(Event::OpenRequest { channel: s, .. }) = self.apps[SERVER].events.pop_front()
            else {
                panic!("an open request for channel {k}");
            };
            let t = &mut self.pair.server.transport;
            self.apps[SERVER].ch.accept(t, s).unwrap();
            self.apps[SERVER].incoming.insert(s, incoming(2 * k as u64));
            self.apps[CLIENT]
                .incoming
                .insert(c, incoming(2 * k as u64 + 1));
            pairs.push((c, s));
        }
        self.deliver_to(CLIENT, usize::MAX).unwrap();
        for &(c, _) in &pairs {
            assert_eq!(
                self.apps[CLIENT].events.pop_front(),
                Some(Event::Opened { channel: c })
            );
        }
        assert!(self.apps[SERVER].events.is_empty());
        pairs
    }
}

fn incoming(key: u64) -> Incoming {
    Incoming {
        key,
        ..Incoming::default()
    }
}

/// Feeds `wire` to one side: connection messages go to its [`Channels`], data is checked
/// against the pattern and counted (and reported read when the application consumes at
/// once), events are queued for the test. A packet cut short waits in the inbox.
fn deliver(
    side: &mut Side,
    app: &mut App,
    pattern: &Pattern,
    wire: Vec<u8>,
    now: Instant,
) -> Result<(), Error> {
    if side.inbox.is_empty() {
        side.inbox = wire;
    } else {
        side.inbox.extend_from_slice(&wire);
    }
    let mut start = 0;
    let result = loop {
        let decoded = match side.transport.decode(&mut side.inbox[start..], now) {
            Ok(d) => d,
            Err(e) => break Err(e),
        };
        start += decoded.consumed;
        if let Some(packet) = decoded.packet {
            assert!(
                packet.payload[0] >= 80,
                "only connection messages after auth"
            );
            let input = app
                .ch
                .handle(&mut side.transport, packet.payload, packet.seq, now);
            match input {
                Ok(Some(Input::Data { channel, data, .. })) => {
                    let inc = app
                        .incoming
                        .get_mut(&channel)
                        .unwrap_or_else(|| panic!("data on unknown channel {channel}"));
                    assert!(
                        pattern.matches(inc.key, inc.received, data),
                        "channel {channel}: {} bytes at offset {} are not the stream's",
                        data.len(),
                        inc.received
                    );
                    inc.received += data.len() as u64;
                    if app.record {
                        app.arrivals.push(Arrival {
                            channel,
                            len: data.len(),
                            packet: side.transport.stats().packets_received,
                        });
                    }
                    if app.consume {
                        let r = app
                            .ch
                            .consumed(&mut side.transport, channel, data.len(), now);
                        if let Err(e) = r {
                            break Err(e);
                        }
                    } else {
                        inc.unread += data.len() as u64;
                    }
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            while let Some(event) = app.ch.poll_event() {
                app.events.push_back(event);
            }
        }
        // Rekeys run inside the transport; only the first exchange asks about the host key.
        while let Some(event) = side.transport.poll_event() {
            if let transport::Event::HostKey(_) = event
                && let Err(e) = side.transport.accept_host_key()
            {
                return Err(e);
            }
        }
        if decoded.consumed == 0 {
            break Ok(());
        }
    };
    side.inbox.drain(..start);
    result
}

// ---------------------------------------------------------------------------------------
// 1. A stalled reader

/// The most framing one CHANNEL_DATA adds on the wire with an AEAD cipher: 9 bytes of
/// message header (RFC 4254 section 5.2), 5 of packet length and padding length, at most
/// 19 of padding for a 16-byte block (RFC 4253 section 6) and a 16-byte tag. Rounded up.
const FRAMING: usize = 64;

/// The reader stops reading while the writer tries to push 1 GiB, then reads again and
/// all of it arrives.
///
/// The full 1 GiB is sealed and opened with the negotiated cipher in the resume phase. With
/// dependencies optimised in the test profile that is quick, so nothing is scaled down.
/// The stream crosses the default rekey-by-volume limit, so a key exchange runs in the
/// middle of it.
#[test]
fn a_stalled_reader_holds_the_writer_to_one_window_then_a_gibibyte_arrives() {
    const WINDOW: usize = 2 << 20;
    const PACKET: usize = 32 << 10;
    const TOTAL: u64 = 1 << 30;
    let mut rig = Rig::new([fixed_window(WINDOW, PACKET); 2], 11);
    let [(c, s)] = rig.sessions(1)[..] else {
        panic!("one session");
    };
    let key = rig.apps[SERVER].incoming[&s].key;
    rig.apps[SERVER].consume = false;
    let negotiated = rig.pair.client.transport.negotiated().unwrap();
    assert!(
        negotiated.cipher_c2s.is_aead(),
        "FRAMING counts an AEAD's tag"
    );

    // Stalled: one attempt per packet of the 1 GiB, each offering more than a packet,
    // with part of what is in flight delivered now and then, so bytes sit everywhere at
    // once: the transport's output, the pipe, and a packet cut in two in the reader's
    // inbox.
    let mut rng = SeededRng::new(5);
    let mut sent = 0u64;
    let mut calls_that_sent = 0;
    let mut wire_when_shut = None;
    for attempt in 0..TOTAL / PACKET as u64 {
        let n = rig.send(CLIENT, c, key, sent, TOTAL - sent);
        assert!(n <= PACKET, "one packet per call");
        if n > 0 {
            calls_that_sent += 1;
        }
        sent += n as u64;
        if attempt % 7 == 0 {
            let max = rng.below(3 * PACKET);
            rig.deliver_to(SERVER, max).unwrap();
        }

        let delivered = rig.apps[SERVER].incoming[&s].received;
        let undelivered = (sent - delivered) as usize;
        let wire = rig.pair.client.transport.pending_output()
            + rig.pipe_to(SERVER).len()
            + rig.pair.server.inbox.len();
        assert!(
            sent as usize <= WINDOW,
            "nothing was read, so no credit came back"
        );
        assert!(undelivered <= WINDOW);
        assert!(
            wire <= undelivered + (undelivered / PACKET + 1) * FRAMING,
            "{wire} bytes on the wire for {undelivered} bytes of data"
        );
        assert!(wire <= WINDOW + WINDOW / PACKET * FRAMING);
        assert!(
            rig.pair.server.inbox.len() < PACKET + FRAMING,
            "the reader holds at most one packet it has not decoded"
        );
        assert!(rig.apps[SERVER].ch.buffered(s) <= WINDOW);
        assert_eq!(rig.apps[SERVER].ch.buffered(s) as u64, delivered);

        if sent as usize == WINDOW && wire_when_shut.is_none() {
            wire_when_shut = Some(rig.pair.client.transport.stats().bytes_sent);
        }
    }
    rig.pump();
    assert_eq!(sent as usize, WINDOW, "exactly one window went out");
    assert_eq!(calls_that_sent, WINDOW / PACKET, "in full packets");
    assert_eq!(rig.apps[CLIENT].ch.window(c), 0);
    assert_eq!(
        Some(rig.pair.client.transport.stats().bytes_sent),
        wire_when_shut,
        "nothing at all was sent once the window shut"
    );
    assert_eq!(rig.apps[SERVER].ch.buffered(s), WINDOW);
    assert_eq!(rig.apps[SERVER].incoming[&s].unread as usize, WINDOW);
    assert!(rig.apps[CLIENT].events.is_empty(), "no Writable while shut");

    // Resume: the backlog is read and the reader keeps up from here on.
    rig.apps[SERVER].consume = true;
    let now = rig.pair.now;
    let t = &mut rig.pair.server.transport;
    rig.apps[SERVER].ch.consumed(t, s, WINDOW, now).unwrap();
    rig.apps[SERVER].incoming.get_mut(&s).unwrap().unread = 0;
    let mut stalls = 0;
    while sent < TOTAL {
        let n = rig.send(CLIENT, c, key, sent, TOTAL - sent);
        sent += n as u64;
        let received = rig.apps[SERVER].incoming[&s].received;
        assert!(
            (sent - received) as usize <= WINDOW,
            "credit only for bytes read"
        );
        if n == 0 {
            // One stall per window, plus one while the key exchange holds output: the
            // adjusts keep pace with reading.
            stalls += 1;
            assert!(
                stalls <= TOTAL as usize / WINDOW + 1,
                "stalled at {sent} bytes"
            );
            let shut = rig.apps[CLIENT].ch.window(c) == 0;
            rig.pump();
            // A writer stopped by a shut window is told when to go on.
            if shut {
                let events: Vec<Event> = rig.apps[CLIENT].events.drain(..).collect();
                assert_eq!(events, [Event::Writable { channel: c }]);
            }
        }
    }
    rig.pump();
    assert_eq!(rig.apps[SERVER].incoming[&s].received, TOTAL);
    assert_eq!(rig.apps[SERVER].ch.buffered(s), 0);
    assert!(
        rig.pair.client.transport.stats().rekeys >= 1,
        "the stream crossed a rekey"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Bulk beside interactive

/// `bulk` channels saturated with data and one interactive channel typing one byte and
/// waiting for its echo, the client sending round robin once per channel per round.
/// Returns the most packets the client put on the wire between a keystroke being typed
/// and the keystroke's own packet, counted at the sender and again at the receiver.
fn keystroke_latency(bulk: usize, rounds: usize, seed: u64) -> (u64, u64) {
    const PACKET: usize = 32 << 10;
    let mut rig = Rig::new([fixed_window(2 << 20, PACKET); 2], seed);
    let ids = rig.sessions(bulk + 1);
    let (ic, is) = ids[bulk];
    let (up_key, down_key) = (2 * bulk as u64, 2 * bulk as u64 + 1);
    rig.apps[SERVER].record = true;
    let mut rng = SeededRng::new(seed);

    let mut bulk_sent = vec![0u64; bulk];
    let (mut typed, mut echoed) = (0u64, 0u64);
    let (mut worst_sent, mut worst_delivered) = (0, 0);
    for round in 0..rounds {
        // The user types when the previous keystroke's echo is back, at a random point
        // of the round: before any channel's turn or after any bulk channel's.
        let waiting = rig.apps[CLIENT].incoming[&ic].received < typed;
        let type_at = (!waiting).then(|| rng.below(bulk + 1));
        let mut typed_after = None;
        for (k, &(c, _)) in ids[..bulk].iter().enumerate() {
            if type_at == Some(k) {
                typed_after = Some(rig.pair.client.transport.stats().packets_sent);
            }
            // A bulk writer offers all it has; the call takes one packet of it.
            let n = rig.send(CLIENT, c, 2 * k as u64, bulk_sent[k], u64::MAX);
            assert_eq!(
                n, PACKET,
                "bulk channel {k}: one full packet per call, every round ({round})"
            );
            bulk_sent[k] += n as u64;
        }
        if type_at == Some(bulk) {
            typed_after = Some(rig.pair.client.transport.stats().packets_sent);
        }
        if let Some(before) = typed_after {
            let ahead = rig.pair.client.transport.stats().packets_sent - before;
            assert_eq!(rig.send(CLIENT, ic, up_key, typed, 1), 1);
            typed += 1;
            worst_sent = worst_sent.max(ahead);
            rig.pump();

            // The receiver's count of client packets when the keystroke arrived, less
            // the client's count when it was typed, less the keystroke itself.
            let arrival = rig.apps[SERVER]
                .arrivals
                .iter()
                .rfind(|a| a.channel == is)
                .copied()
                .unwrap();
            assert_eq!(arrival.len, 1);
            worst_delivered = worst_delivered.max(arrival.packet - before - 1);
        }

        // The server echoes in its own turn; the echo is back within the round.
        if echoed < rig.apps[SERVER].incoming[&is].received {
            assert_eq!(rig.send(SERVER, is, down_key, echoed, 1), 1);
            echoed += 1;
        }
        rig.pump();
        assert_eq!(
            rig.apps[CLIENT].incoming[&ic].received, typed,
            "echo within the round"
        );
        rig.apps[SERVER].arrivals.clear();
    }
    assert_eq!(
        typed as usize, rounds,
        "every echo was back in time for the next key"
    );
    for (k, &(_, s)) in ids[..bulk].iter().enumerate() {
        assert_eq!(rig.apps[SERVER].incoming[&s].received, bulk_sent[k]);
        assert_eq!(
            bulk_sent[k],
            (rounds * PACKET) as u64,
            "saturated every round"
        );
    }
    // Sender and receiver count the same packets.
    assert_eq!(
        rig.pair.client.transport.stats().packets_sent,
        rig.pair.server.transport.stats().packets_received
    );
    (worst_sent, worst_delivered)
}

#[test]
fn a_keystroke_waits_behind_at_most_one_bulk_packet() {
    // 2,000 rounds move 62.5 MiB of bulk data next to 2,000 keystrokes.
    let (sent, delivered) = keystroke_latency(1, 2_000, 21);
    // Typed before the bulk channel's turn, exactly one bulk packet goes first; never two.
    assert_eq!(sent, 1);
    assert_eq!(delivered, 1);
}

#[test]
fn a_keystroke_waits_behind_one_packet_per_bulk_channel() {
    let (sent, delivered) = keystroke_latency(4, 500, 22);
    assert_eq!(sent, 4);
    assert_eq!(delivered, 4);
}

// ---------------------------------------------------------------------------------------
// 3. Ten thousand channels

/// 10,000 channels open at once on one connection, below the default cap of 16,384, each
/// moving 64 KiB each way (1.25 GiB in all) with every byte checked.
#[test]
fn ten_thousand_channels_move_64_kib_each_way() {
    const N: usize = 10_000;
    const LEN: u64 = 64 << 10;
    // A window of half the stream and packets of a quarter of it: every channel needs
    // adjusts to finish.
    const PACKET: usize = 16 << 10;
    let mut rig = Rig::new([fixed_window(32 << 10, PACKET); 2], 31);
    let ids = rig.sessions(N);
    assert_eq!(rig.apps[CLIENT].ch.len(), N);
    assert_eq!(rig.apps[SERVER].ch.len(), N);

    let mut up = vec![0u64; N];
    let mut down = vec![0u64; N];
    let mut rounds = 0;
    while up.iter().chain(&down).any(|&n| n < LEN) {
        rounds += 1;
        // 64 KiB at 16 KiB a packet: the adjust for each packet is back before the
        // channel's next turn, so no round is lost to a shut window.
        assert!(rounds <= 4, "still sending after four rounds");
        // One send per channel per direction per round; what is in flight moves every
        // thousand channels so that the pipes stay small.
        for (k, &(c, s)) in ids.iter().enumerate() {
            up[k] += rig.send(CLIENT, c, 2 * k as u64, up[k], LEN - up[k]) as u64;
            down[k] += rig.send(SERVER, s, 2 * k as u64 + 1, down[k], LEN - down[k]) as u64;
            if k % 1_000 == 999 {
                rig.pump();
            }
        }
        rig.pump();
    }
    assert_eq!(rounds, 4);

    for (k, &(c, s)) in ids.iter().enumerate() {
        assert_eq!(
            rig.apps[SERVER].incoming[&s].received, LEN,
            "channel {k} up"
        );
        assert_eq!(
            rig.apps[CLIENT].incoming[&c].received, LEN,
            "channel {k} down"
        );
        assert_eq!(rig.apps[SERVER].ch.buffered(s), 0);
    }

    // Every channel closes, and both tables are empty again.
    for &(c, _) in &ids {
        let t = &mut rig.pair.client.transport;
        rig.apps[CLIENT].ch.close(t, c).unwrap();
    }
    rig.pump();
    assert_eq!(rig.apps[CLIENT].ch.slot_count(), 0);
    assert_eq!(rig.apps[SERVER].ch.slot_count(), 0);
    let closed = |app: &App| {
        app.events
            .iter()
            .filter(|e| matches!(e, Event::Closed { .. }))
            .count()
    };
    assert_eq!(closed(&rig.apps[CLIENT]), N);
    assert_eq!(closed(&rig.apps[SERVER]), N);
}

// ---------------------------------------------------------------------------------------
// 4. Random operation sequences

/// One step of a random run. `pick` chooses among the channels live on that side.
#[derive(Clone, Copy, Debug)]
enum Op {
    Open {
        from: usize,
        accept: bool,
    },
    Send {
        from: usize,
        pick: usize,
        len: u64,
        stderr: bool,
    },
    Consume {
        by: usize,
        pick: usize,
        len: u64,
    },
    Eof {
        from: usize,
        pick: usize,
    },
    Close {
        from: usize,
        pick: usize,
    },
    /// Hands `to` at most `len` bytes of what is in flight, cutting packets anywhere.
    Deliver {
        to: usize,
        len: usize,
    },
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..2usize;
    let pick = 0..8usize;
    prop_oneof![
        2 => (who.clone(), prop::bool::weighted(0.8))
            .prop_map(|(from, accept)| Op::Open { from, accept }),
        6 => (who.clone(), pick.clone(), 1..6_000u64, prop::bool::weighted(0.2))
            .prop_map(|(from, pick, len, stderr)| Op::Send { from, pick, len, stderr }),
        4 => (who.clone(), pick.clone(), 0..8_000u64)
            .prop_map(|(by, pick, len)| Op::Consume { by, pick, len }),
        1 => (who.clone(), pick.clone()).prop_map(|(from, pick)| Op::Eof { from, pick }),
        1 => (who.clone(), pick).prop_map(|(from, pick)| Op::Close { from, pick }),
        6 => (who, 1..5_000usize).prop_map(|(to, len)| Op::Deliver { to, len }),
        1 => Just(Op::Tick),
    ]
}

/// The test's own record of one channel, both sides. Arrays are indexed by side.
#[derive(Debug, Default)]
struct Logical {
    /// The local id on each side, once known.
    id: [Option<u32>; 2],
    /// Whether the accepting side takes it.
    accept: bool,
    /// `send_data` may be called: the opener saw Opened, the acceptor accepted.
    open: [bool; 2],
    eof_sent: [bool; 2],
    eof_seen: [bool; 2],
    /// CLOSE went out, by the application or by [`Channels`] answering the peer's.
    close_sent: [bool; 2],
    app_closed: [bool; 2],
    /// What had arrived when the application sent CLOSE; nothing arrives after it.
    received_at_close: [u64; 2],
    /// The id is free on that side: Closed, OpenFailed or rejected.
    done: [bool; 2],
    /// `send_data` took nothing for a shut window: the writer waits for Writable, as the
    /// documentation of `send_data` asks, so a lost Writable is a deadlock.
    blocked: [bool; 2],
    /// Bytes the application still wants to send, and bytes `send_data` took.
    backlog: [u64; 2],
    sent: [u64; 2],
    /// Bytes that arrived, once the side is done with the channel.
    received_final: [u64; 2],
}

impl Logical {
    fn sendable(&self, x: usize) -> bool {
        self.open[x] && !self.eof_sent[x] && !self.close_sent[x] && !self.done[x]
    }

    fn writing(&self, x: usize) -> bool {
        self.sendable(x) && !self.blocked[x] && self.backlog[x] > 0
    }

    fn live(&self, x: usize) -> bool {
        self.id[x].is_some() && !self.done[x]
    }
}

/// Data from side `x` of channel `l` is stream `2l + x`.
fn key(l: usize, x: usize) -> u64 {
    2 * l as u64 + x as u64
}

/// Small windows and packets, so that random sizes hit every limit, with growth up to
/// four times the initial window or none.
fn config() -> impl Strategy<Value = ChannelsConfig> {
    (1..8_192u32, 1..=4u32, 1..2_048u32).prop_map(|(initial, grow, max_packet)| ChannelsConfig {
        window: WindowConfig {
            initial,
            max: initial * grow,
            max_packet,
        },
        ..ChannelsConfig::default()
    })
}

#[derive(Debug)]
struct Model {
    /// The client's and the server's settings.
    configs: [ChannelsConfig; 2],
    ls: Vec<Logical>,
    /// Per side, the channels it opened that the other side has not heard of yet, in
    /// order.
    opening: [VecDeque<usize>; 2],
}

impl Model {
    /// The channel live on side `x` with local id `id`; two would mean an id reused
    /// before CLOSE went both ways.
    fn by_id(&self, x: usize, id: u32) -> usize {
        let mut found = self
            .ls
            .iter()
            .enumerate()
            .filter(|(_, l)| l.live(x) && l.id[x] == Some(id))
            .map(|(i, _)| i);
        let l = found
            .next()
            .unwrap_or_else(|| panic!("side {x}: no channel {id}"));
        assert_eq!(found.next(), None, "side {x}: id {id} live twice");
        l
    }

    /// The `pick`th channel live on side `x` that `fit` allows.
    fn choose(&self, x: usize, pick: usize, fit: impl Fn(&Logical) -> bool) -> Option<usize> {
        let live: Vec<usize> = (0..self.ls.len())
            .filter(|&i| self.ls[i].live(x) && fit(&self.ls[i]))
            .collect();
        (!live.is_empty()).then(|| live[pick % live.len()])
    }

    fn received(&self, rig: &Rig, l: usize, x: usize) -> u64 {
        let c = &self.ls[l];
        match c.id[x] {
            Some(id) if !c.done[x] => rig.apps[x].incoming[&id].received,
            _ => c.received_final[x],
        }
    }

    fn apply(&mut self, rig: &mut Rig, op: Op) {
        match op {
            Op::Open { from, accept } => {
                let (app, t) = rig.parts(from);
                let id = app.ch.open(t, &ChannelType::Session).unwrap();
                assert!(
                    !self
                        .ls
                        .iter()
                        .any(|l| l.live(from) && l.id[from] == Some(id)),
                    "side {from}: id {id} handed out while still live"
                );
                let l = self.ls.len();
                let mut c = Logical {
                    accept,
                    ..Logical::default()
                };
                c.id[from] = Some(id);
                self.ls.push(c);
                self.opening[from].push_back(l);
                rig.apps[from]
                    .incoming
                    .insert(id, incoming(key(l, 1 - from)));
            }
            Op::Send {
                from,
                pick,
                len,
                stderr,
            } => {
                if let Some(l) = self.choose(from, pick, |c| c.sendable(from)) {
                    self.ls[l].backlog[from] += len;
                    if !self.ls[l].blocked[from] {
                        self.send_one(rig, l, from, stderr);
                    }
                }
            }
            Op::Consume { by, pick, len } => {
                if let Some(l) = self.choose(by, pick, |_| true) {
                    self.consume(rig, l, by, len);
                }
            }
            Op::Eof { from, pick } => {
                if let Some(l) = self.choose(from, pick, |c| c.sendable(from)) {
                    let id = self.ls[l].id[from].unwrap();
                    let (app, t) = rig.parts(from);
                    app.ch.eof(t, id).unwrap();
                    self.ls[l].eof_sent[from] = true;
                    self.ls[l].backlog[from] = 0;
                }
            }
            Op::Close { from, pick } => {
                let fit = |c: &Logical| c.open[from] && !c.close_sent[from];
                if let Some(l) = self.choose(from, pick, fit) {
                    self.close(rig, l, from);
                }
            }
            Op::Deliver { to, len } => self.deliver(rig, to, len),
            Op::Tick => rig.pair.advance(Duration::from_millis(3)).unwrap(),
        }
        self.check(rig);
    }

    fn close(&mut self, rig: &mut Rig, l: usize, x: usize) {
        let id = self.ls[l].id[x].unwrap();
        let (app, t) = rig.parts(x);
        app.ch.close(t, id).unwrap();
        let received = self.received(rig, l, x);
        let c = &mut self.ls[l];
        c.close_sent[x] = true;
        c.app_closed[x] = true;
        c.received_at_close[x] = received;
        c.backlog[x] = 0;
    }

    /// One `send_data` call from side `x`; stdout and stderr share one stream, since
    /// they share the window and arrive in the order sent.
    fn send_one(&mut self, rig: &mut Rig, l: usize, x: usize, stderr: bool) {
        let c = &self.ls[l];
        let id = c.id[x].unwrap();
        let n = rig.send_on(x, id, stderr, key(l, x), c.sent[x], c.backlog[x]) as u64;
        let peer_max_packet = self.configs[1 - x].window.max_packet;
        assert!(
            n <= c.backlog[x] && n <= u64::from(peer_max_packet),
            "one packet at most"
        );
        let shut = n == 0 && rig.apps[x].ch.window(id) == 0;
        let c = &mut self.ls[l];
        c.sent[x] += n;
        c.backlog[x] -= n;
        c.blocked[x] = shut;
    }

    fn consume(&mut self, rig: &mut Rig, l: usize, x: usize, len: u64) {
        let id = self.ls[l].id[x].unwrap();
        let now = rig.pair.now;
        let (app, t) = rig.parts(x);
        let inc = app.incoming.get_mut(&id).unwrap();
        let n = len.min(inc.unread);
        inc.unread -= n;
        app.ch.consumed(t, id, n as usize, now).unwrap();
    }

    fn deliver(&mut self, rig: &mut Rig, to: usize, len: usize) {
        rig.deliver_to(to, len).unwrap();
        while let Some(event) = rig.apps[to].events.pop_front() {
            self.on_event(rig, to, event);
        }
    }

    fn on_event(&mut self, rig: &mut Rig, x: usize, event: Event) {
        let y = 1 - x;
        match event {
            Event::OpenRequest { channel, .. } => {
                let l = self.opening[y].pop_front().expect("an open from the peer");
                assert!(
                    !self
                        .ls
                        .iter()
                        .any(|c| c.live(x) && c.id[x] == Some(channel)),
                    "side {x}: id {channel} handed out while still live"
                );
                self.ls[l].id[x] = Some(channel);
                let (app, t) = rig.parts(x);
                if self.ls[l].accept {
                    app.ch.accept(t, channel).unwrap();
                    app.incoming.insert(channel, incoming(key(l, y)));
                    self.ls[l].open[x] = true;
                } else {
                    let reason = OpenFailureReason::ADMINISTRATIVELY_PROHIBITED;
                    app.ch.reject(t, channel, reason, "no").unwrap();
                    self.ls[l].done[x] = true;
                }
            }
            Event::Opened { channel } => {
                let l = self.by_id(x, channel);
                let c = &mut self.ls[l];
                assert!(c.accept && !c.open[x]);
                c.open[x] = true;
            }
            Event::OpenFailed { channel, .. } => {
                let l = self.by_id(x, channel);
                let c = &mut self.ls[l];
                assert!(!c.accept && !c.open[x]);
                c.done[x] = true;
                rig.apps[x].incoming.remove(&channel);
            }
            Event::Eof { channel } => {
                let l = self.by_id(x, channel);
                let c = &mut self.ls[l];
                assert!(c.eof_sent[y] && !c.eof_seen[x]);
                c.eof_seen[x] = true;
            }
            Event::Closed { channel } => {
                let l = self.by_id(x, channel);
                let inc = rig.apps[x].incoming.remove(&channel).unwrap();
                let c = &mut self.ls[l];
                // CLOSE both ways: the peer's has arrived, and ours went out, first or
                // just now in answer.
                assert!(
                    c.close_sent[y],
                    "side {x}: Closed before the peer sent CLOSE"
                );
                if !c.close_sent[x] {
                    assert!(c.app_closed[y], "an answer to a CLOSE nobody sent");
                    c.close_sent[x] = true;
                    c.backlog[x] = 0;
                }
                c.done[x] = true;
                c.received_final[x] = inc.received;
            }
            Event::Writable { channel } => {
                let l = self.by_id(x, channel);
                let c = &mut self.ls[l];
                // The library may have moved on since (a CLOSE in the same read), so only
                // the model's view at this point of the event order is checked.
                assert!(c.sendable(x));
                c.blocked[x] = false;
            }
            other => panic!("side {x}: unexpected {other:?}"),
        }
    }

    /// What must hold after every step.
    fn check(&self, rig: &Rig) {
        for (l, c) in self.ls.iter().enumerate() {
            for x in [CLIENT, SERVER] {
                let y = 1 - x;
                let received = self.received(rig, l, x);
                // Content and order were checked as each message arrived; this is the count.
                assert!(
                    received <= c.sent[y],
                    "channel {l}: more arrived than was sent"
                );
                if c.app_closed[x] {
                    assert_eq!(
                        received, c.received_at_close[x],
                        "channel {l}: data handed over after our CLOSE"
                    );
                }
                if c.eof_seen[x] && !c.app_closed[x] {
                    assert_eq!(received, c.sent[y], "channel {l}: data after EOF");
                }
                let Some(id) = c.id[x].filter(|_| !c.done[x]) else {
                    continue;
                };
                let buffered = rig.apps[x].ch.buffered(id);
                let max = self.configs[x].window.max;
                assert_eq!(buffered as u64, rig.apps[x].incoming[&id].unread);
                assert!(
                    buffered <= max as usize,
                    "channel {l}: {buffered} held on {x}"
                );
                // Credit comes back only for bytes read: the writer is never further
                // ahead of the reader than the largest window.
                if !c.app_closed[x] {
                    let read = received - buffered as u64;
                    assert!(
                        c.sent[y] <= read + u64::from(max),
                        "channel {l}: past the window"
                    );
                }
            }
        }
    }

    /// The readers read everything and the writers write their backlogs, round robin,
    /// until nothing is left. Fails when a round puts nothing on the wire while a writer
    /// still waits: no later round could change that.
    fn drain(&mut self, rig: &mut Rig) {
        // Far more rounds than the largest backlog through a one-byte window needs.
        for _ in 0..1_000_000 {
            for x in [CLIENT, SERVER] {
                for l in 0..self.ls.len() {
                    if self.ls[l].live(x) {
                        self.consume(rig, l, x, u64::MAX);
                    }
                }
                for l in 0..self.ls.len() {
                    if self.ls[l].writing(x) {
                        self.send_one(rig, l, x, false);
                    }
                }
            }
            rig.pair.flush();
            let quiet = rig.pipe_to(CLIENT).is_empty() && rig.pipe_to(SERVER).is_empty();
            let waiting = self
                .ls
                .iter()
                .any(|c| (0..2).any(|x| c.sendable(x) && c.backlog[x] > 0));
            match (quiet, waiting) {
                (true, false) => return,
                (true, true) => panic!("a writer waits and nothing is in flight: a deadlock"),
                _ => {}
            }
            self.deliver(rig, SERVER, usize::MAX);
            self.deliver(rig, CLIENT, usize::MAX);
            self.check(rig);
        }
        panic!("the channels did not drain");
    }

    /// After [`Model::drain`]: every open resolved, and every byte sent arrived unless the
    /// receiver itself closed while it was in flight.
    fn check_drained(&self, rig: &Rig) {
        assert!(self.opening.iter().all(VecDeque::is_empty));
        for (l, c) in self.ls.iter().enumerate() {
            for x in [CLIENT, SERVER] {
                assert!(
                    c.open[x] || c.done[x],
                    "channel {l} still opening on side {x}"
                );
                if !c.app_closed[x] {
                    assert_eq!(
                        self.received(rig, l, x),
                        c.sent[1 - x],
                        "channel {l} to {x}"
                    );
                }
            }
        }
    }

    /// Both sides close what is left; afterwards no id is held anywhere.
    fn close_all(&mut self, rig: &mut Rig) {
        for x in [CLIENT, SERVER] {
            for l in 0..self.ls.len() {
                let c = &self.ls[l];
                if c.live(x) && c.open[x] && !c.close_sent[x] {
                    self.close(rig, l, x);
                }
            }
        }
        self.drain(rig);
        assert!(self.ls.iter().all(|c| c.done == [true, true]));
        assert_eq!(rig.apps[CLIENT].ch.slot_count(), 0);
        assert_eq!(rig.apps[SERVER].ch.slot_count(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random steps on both sides over a real connection: no error from any legal
    /// sequence, every stream arrives whole and in order, reading everything unblocks every
    /// writer, the receive side never holds more than its window, and an id comes back
    /// only after CLOSE went both ways.
    #[test]
    fn random_channel_operations_keep_every_invariant(
        seed in any::<u64>(),
        configs in [config(), config()],
        rekey_often in any::<bool>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        // Half the runs rekey every few KiB, so key exchanges start between any two
        // steps and hold channel messages while they run (RFC 4253 section 7.1).
        let rekey = if rekey_often {
            RekeyLimits {
                bytes: 4 << 10,
                ..RekeyLimits::default()
            }
        } else {
            RekeyLimits::default()
        };
        let mut rig = Rig::with_rekey(configs, seed, rekey);
        for who in [CLIENT, SERVER] {
            rig.apps[who].consume = false;
        }
        let mut model = Model {
            configs,
            ls: Vec::new(),
            opening: Default::default(),
        };
        for op in ops {
            model.apply(&mut rig, op);
        }
        model.drain(&mut rig);
        model.check_drained(&rig);
        model.close_all(&mut rig);
    }
}
