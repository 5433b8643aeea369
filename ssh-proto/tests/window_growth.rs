//! Receive-window growth end to end (RFC 4254 section 5.2): two [`Channels`] with the
//! default settings over a handshaken simulator pair whose link has a one-way delay, a
//! bandwidth and a bounded send buffer, the way a TCP connection looks to the event loop.
//! It checks that a bulk channel's window grows with the bandwidth-delay product and no
//! further than the rule in `connection::window` says, that it stops at the 16 MiB
//! maximum, and that many channels together stay within the connection's budget.
//!
//! The reader reads every byte as it arrives, so the window, and not the application, is
//! what can hold the writer back.
//!
//! It runs with the `ring` provider only: it moves about a gibibyte through the cipher,
//! which takes a second with `ring` and several minutes with the pure-Rust provider in a
//! debug build, and nothing it checks depends on the cipher.
#![cfg(feature = "ring")]

#[expect(
    dead_code,
    reason = "the rig is shared by the Channels test files, and each uses a part of it"
)]
mod channels_rig;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use channels_rig::authenticated_pair;
use ssh_proto::connection::budget::WINDOW_FLOOR;
use ssh_proto::connection::channels::{Channels, ChannelsConfig, Event, Input};
use ssh_proto::connection::msg::ChannelType;
use ssh_proto::sim::{Pair, Side};
use ssh_proto::transport;

const MIB: u64 = 1 << 20;
const CLIENT: usize = 0;
const SERVER: usize = 1;

/// The simulated clock advances in steps of this much.
const TICK: Duration = Duration::from_millis(1);

/// What the link hands over at once at most: a batch of TCP segments.
const CHUNK: usize = 64 << 10;

/// The bytes the writer may have queued on the link and not yet serialised, like a
/// socket's send buffer. A writer never waits for credit while it waits for the link, so
/// without a bound the queue would grow with the window and hide the round trip.
const SEND_BUFFER: u64 = 128 << 10;

// ---------------------------------------------------------------------------------------
// The link

/// One direction of a link: FIFO, `rate` bytes per second, `delay` from the end of
/// serialisation to arrival.
struct Link {
    rate: u64,
    delay: Duration,
    /// When the link finishes serialising what it holds.
    free_at: Instant,
    in_flight: VecDeque<(Instant, Vec<u8>)>,
}

impl Link {
    fn new(rate: u64, delay: Duration, now: Instant) -> Self {
        Self {
            rate,
            delay,
            free_at: now,
            in_flight: VecDeque::new(),
        }
    }

    fn send(&mut self, now: Instant, bytes: &[u8]) {
        for chunk in bytes.chunks(CHUNK) {
            let start = self.free_at.max(now);
            let nanos = chunk.len() as u64 * 1_000_000_000 / self.rate;
            self.free_at = start + Duration::from_nanos(nanos);
            self.in_flight
                .push_back((self.free_at + self.delay, chunk.to_vec()));
        }
    }

    /// Bytes accepted and not yet serialised at `now`.
    fn backlog(&self, now: Instant) -> u64 {
        let left = self.free_at.saturating_duration_since(now);
        (left.as_nanos() * u128::from(self.rate) / 1_000_000_000) as u64
    }

    /// Everything that has arrived by `now`.
    fn arrived(&mut self, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some((at, _)) = self.in_flight.front()
            && *at <= now
        {
            let (_, chunk) = self.in_flight.pop_front().unwrap();
            out.extend_from_slice(&chunk);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// The network

/// A client writing bulk data to a server over a [`Link`] each way.
struct Net {
    pair: Pair,
    ch: [Channels; 2],
    /// `links[x]` carries bytes to side `x`.
    links: [Link; 2],
    /// Bytes each side received per channel, all read at once.
    received: [HashMap<u32, u64>; 2],
    /// The client's channels the server confirmed, and the server's ids, in order.
    opened: Vec<u32>,
    accepted: Vec<u32>,
    closed: [Vec<u32>; 2],
}

impl Net {
    /// A handshaken pair with `config` on both sides and a link of `rate` bytes per second
    /// and `rtt` round trip.
    fn new(config: ChannelsConfig, rate: u64, rtt: Duration) -> Self {
        let pair = authenticated_pair(3);
        let now = pair.now;
        Self {
            pair,
            ch: [config, config].map(|c| Channels::new(c).unwrap()),
            links: [0, 1].map(|_| Link::new(rate, rtt / 2, now)),
            received: Default::default(),
            opened: Vec::new(),
            accepted: Vec::new(),
            closed: Default::default(),
        }
    }

    /// The client opens `n` sessions, which the server accepts as they arrive. Returns
    /// the (client, server) ids once all are confirmed.
    fn open(&mut self, n: usize) -> Vec<(u32, u32)> {
        let first = self.opened.len();
        for _ in 0..n {
            let t = &mut self.pair.client.transport;
            self.ch[CLIENT].open(t, &ChannelType::Session).unwrap();
        }
        while self.opened.len() < first + n {
            self.tick(&[]);
        }
        self.opened[first..]
            .iter()
            .copied()
            .zip(self.accepted[first..].iter().copied())
            .collect()
    }

    /// One tick: the client writes on `writers` while their windows and the send buffer
    /// allow, output goes onto the links, time passes, and what arrived is read.
    fn tick(&mut self, writers: &[u32]) {
        static ZEROS: [u8; 32 << 10] = [0; 32 << 10];
        let now = self.pair.now;
        let mut busy = !writers.is_empty();
        while busy {
            busy = false;
            for &c in writers {
                // The link drains during the tick, so the buffer takes that much more.
                let room = SEND_BUFFER + self.links[SERVER].rate * TICK.as_millis() as u64 / 1000;
                let queued = self.links[SERVER].backlog(now)
                    + self.pair.client.transport.pending_output() as u64;
                if queued >= room {
                    break;
                }
                let t = &mut self.pair.client.transport;
                busy |= self.ch[CLIENT].send_data(t, c, false, &ZEROS).unwrap() > 0;
            }
            self.flush(now);
        }
        self.flush(now);

        self.pair.advance(TICK).unwrap();
        let now = self.pair.now;
        for who in [SERVER, CLIENT] {
            let wire = self.links[who].arrived(now);
            if !wire.is_empty() {
                self.deliver(who, &wire, now);
            }
        }
    }

    fn flush(&mut self, now: Instant) {
        self.pair.flush();
        let up = std::mem::take(self.pair.c2s_in_flight());
        self.links[SERVER].send(now, &up);
        let down = std::mem::take(self.pair.s2c_in_flight());
        self.links[CLIENT].send(now, &down);
    }

    /// Feeds `wire` to side `who`: data is counted and read at once, opens are accepted.
    fn deliver(&mut self, who: usize, wire: &[u8], now: Instant) {
        let side: &mut Side = if who == CLIENT {
            &mut self.pair.client
        } else {
            &mut self.pair.server
        };
        let ch = &mut self.ch[who];
        side.inbox.extend_from_slice(wire);
        let mut start = 0;
        let mut events = Vec::new();
        loop {
            let decoded = side
                .transport
                .decode(&mut side.inbox[start..], now)
                .unwrap();
            start += decoded.consumed;
            if let Some(packet) = decoded.packet {
                let input = ch
                    .handle(&mut side.transport, packet.payload, packet.seq, now)
                    .unwrap();
                if let Some(Input::Data { channel, data, .. }) = input {
                    let n = data.len();
                    *self.received[who].entry(channel).or_default() += n as u64;
                    ch.consumed(&mut side.transport, channel, n, now).unwrap();
                }
                events.extend(std::iter::from_fn(|| ch.poll_event()));
            }
            while let Some(event) = side.transport.poll_event() {
                if let transport::Event::HostKey(_) = event {
                    side.transport.accept_host_key().unwrap();
                }
            }
            if decoded.consumed == 0 {
                break;
            }
        }
        side.inbox.drain(..start);

        for event in events {
            match event {
                Event::OpenRequest { channel, .. } => {
                    ch.accept(&mut side.transport, channel).unwrap();
                    self.accepted.push(channel);
                }
                Event::Opened { channel } => self.opened.push(channel),
                Event::Closed { channel } => self.closed[who].push(channel),
                Event::Writable { .. } => {}
                other => panic!("side {who}: unexpected {other:?}"),
            }
        }
    }

    /// The sum of the server's receive windows over `channels`.
    fn windows(&self, channels: &[(u32, u32)]) -> u64 {
        channels
            .iter()
            .map(|&(_, s)| u64::from(self.ch[SERVER].receive_window(s)))
            .sum()
    }
}

/// The rate of a link whose bandwidth-delay product over `rtt` is `bdp` bytes.
fn rate_for(bdp: u64, rtt: Duration) -> u64 {
    (bdp as u128 * 1_000_000_000 / rtt.as_nanos()) as u64
}

/// One bulk channel for `rtts` round trips over a link with product `bdp`. Returns the
/// window after each round trip and the bytes received in the last `last` of them.
fn one_channel(bdp: u64, rtts: usize, last: usize) -> (Vec<u64>, u64) {
    let rtt = Duration::from_millis(40);
    let mut net = Net::new(ChannelsConfig::default(), rate_for(bdp, rtt), rtt);
    let [(c, s)] = net.open(1)[..] else {
        panic!("one channel");
    };
    let ticks = (rtt.as_millis() / TICK.as_millis()) as usize;
    let mut windows = Vec::new();
    let mut before_last = 0;
    for round in 0..rtts {
        if round == rtts - last {
            before_last = net.received[SERVER][&s];
        }
        for _ in 0..ticks {
            net.tick(&[c]);
        }
        windows.push(u64::from(net.ch[SERVER].receive_window(s)));
    }
    (windows, net.received[SERVER][&s] - before_last)
}

// ---------------------------------------------------------------------------------------
// Tests

/// On links of different bandwidth-delay products the window doubles while the writer
/// runs out of credit and waits, as the rule in `connection::window` describes, then stays:
/// no growth where 2 MiB already covers the path, more on a longer one, never more than
/// four times the product, and the link busy once it settles. At 1.5 and 3 MiB the initial
/// window alone could carry at most two thirds of what the link can.
#[test]
fn the_window_grows_with_the_bandwidth_delay_product_and_then_stops() {
    for (bdp, expected) in [
        (512 << 10, 2 * MIB),
        (3 * MIB / 2, 4 * MIB),
        (3 * MIB, 8 * MIB),
    ] {
        let (windows, last) = one_channel(bdp, 60, 10);
        let settled = *windows.last().unwrap();

        assert_eq!(settled, expected, "product {bdp}: windows {windows:?}");
        // Settled for the second half of the run.
        assert!(
            windows[30..].iter().all(|&w| w == settled),
            "product {bdp}: windows {windows:?}"
        );
        assert!(
            (bdp..=4 * bdp).contains(&settled),
            "product {bdp}: {settled} is not near the product"
        );
        // The link is busy: over the last ten round trips, at least 95% of what it carries.
        assert!(
            last >= 10 * bdp * 95 / 100,
            "product {bdp}: {last} bytes in ten round trips"
        );
    }
}

/// A path whose product is beyond what one channel may hold: the window doubles up to the
/// 16 MiB maximum and stops there, and the channel then carries 12 to 16 MiB per round
/// trip, where the initial window could carry 2 MiB at most.
#[test]
fn the_window_stops_at_16_mib_on_a_long_fat_path() {
    let (windows, last) = one_channel(64 * MIB, 14, 4);
    assert_eq!(windows[0], 2 * MIB, "it starts at 2 MiB: {windows:?}");
    assert!(
        windows.windows(2).all(|w| w[1] >= w[0]),
        "never shrinks: {windows:?}"
    );
    assert_eq!(*windows.last().unwrap(), 16 * MIB, "{windows:?}");
    assert!(windows[8..].iter().all(|&w| w == 16 * MIB), "{windows:?}");
    // A window per round trip, less what read data waits for its adjust (at most half).
    let per_rtt = last / 4;
    assert!(
        (12 * MIB..=16 * MIB).contains(&per_rtt),
        "{per_rtt} bytes per round trip"
    );
}

/// Many channels on a long fat path, each of which would grow to 16 MiB, share a budget
/// of 32 MiB: the windows together never pass the budget plus one floor per channel.
/// Channels opened on the spent budget start at the floor and still carry data; when
/// channels close, their share goes to the others, late ones included; and once every
/// channel is closed the whole budget is back.
#[test]
fn many_channels_share_the_budget() {
    const BUDGET: u64 = 32 * MIB;
    let rtt = Duration::from_millis(40);
    let config = ChannelsConfig {
        budget: BUDGET,
        ..ChannelsConfig::default()
    };
    let mut net = Net::new(config, rate_for(64 * MIB, rtt), rtt);
    let ticks = (rtt.as_millis() / TICK.as_millis()) as usize;
    let floor = u64::from(WINDOW_FLOOR);

    // Runs `rtts` round trips with every channel in `live` writing, checking the budget
    // after every tick.
    let run = |net: &mut Net, live: &[(u32, u32)], rtts: usize| {
        let writers: Vec<u32> = live.iter().map(|&(c, _)| c).collect();
        for _ in 0..rtts * ticks {
            net.tick(&writers);
            let budget = net.ch[SERVER].budget();
            assert!(budget.used() <= BUDGET);
            let windows = net.windows(live);
            assert!(
                windows <= BUDGET + live.len() as u64 * floor,
                "{windows} bytes of windows on {} channels",
                live.len()
            );
            for &(_, s) in live {
                assert!(u64::from(net.ch[SERVER].receive_window(s)) <= 16 * MIB);
            }
        }
    };

    // Eight channels open with full windows and grow until the budget is spent.
    let first = net.open(8);
    assert_eq!(net.windows(&first), 8 * 2 * MIB);
    run(&mut net, &first, 12);
    assert_eq!(
        net.ch[SERVER].budget().free(),
        0,
        "the budget is what stopped growth"
    );
    assert_eq!(net.windows(&first), BUDGET + 8 * floor);
    assert!(
        first
            .iter()
            .any(|&(_, s)| u64::from(net.ch[SERVER].receive_window(s)) > 2 * MIB),
        "they grew"
    );

    // Four more open on the spent budget: they start at the floor and carry data.
    let late = net.open(4);
    for &(_, s) in &late {
        assert_eq!(u64::from(net.ch[SERVER].receive_window(s)), floor);
    }
    let all: Vec<(u32, u32)> = first.iter().chain(&late).copied().collect();
    run(&mut net, &all, 4);
    for &(_, s) in &late {
        assert!(
            net.received[SERVER][&s] >= 4 * floor,
            "a floor per round trip at least"
        );
    }

    // Half the first channels close; the others, late ones included, take their share.
    let (closing, staying) = first.split_at(4);
    let before = net.ch[SERVER].budget().used();
    let held: u64 = closing
        .iter()
        .map(|&(_, s)| u64::from(net.ch[SERVER].receive_window(s)) - floor)
        .sum();
    for &(c, _) in closing {
        let t = &mut net.pair.client.transport;
        net.ch[CLIENT].close(t, c).unwrap();
    }
    let rest: Vec<(u32, u32)> = staying.iter().chain(&late).copied().collect();
    while net.closed[SERVER].len() < 4 {
        net.tick(&[]);
    }
    assert_eq!(net.ch[SERVER].budget().used(), before - held);
    for _ in 0..16 * 40 {
        run(&mut net, &rest, 0);
        net.tick(&rest.iter().map(|&(c, _)| c).collect::<Vec<_>>());
    }
    for &(_, s) in &late {
        assert!(
            u64::from(net.ch[SERVER].receive_window(s)) > floor,
            "late channel {s} grew"
        );
    }
    assert_eq!(net.windows(&rest), BUDGET + 8 * floor, "spent again");

    // Every channel closes: the whole budget is back.
    for &(c, _) in &rest {
        let t = &mut net.pair.client.transport;
        net.ch[CLIENT].close(t, c).unwrap();
    }
    while net.closed[SERVER].len() < 12 || net.closed[CLIENT].len() < 12 {
        net.tick(&[]);
    }
    assert_eq!(net.ch[SERVER].budget().used(), 0);
    assert!(net.ch[SERVER].is_empty());
}
