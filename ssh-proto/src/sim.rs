//! An in-memory client and server pair with a controlled clock, for tests and
//! benchmarks.
//!
//! Everything is deterministic from a seed: the randomness both sides use and the way
//! bytes in flight are cut into reads. Cutting at every possible boundary finds bugs
//! that whole-packet reads hide, such as state kept across a partial packet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, Rng};
use crate::error::Error;
use crate::role::Role;
use crate::transport::{Event, Transport};

/// A small, fast, seeded generator (SplitMix64). For tests only: it is not a
/// cryptographic generator and must never feed real keys.
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n`; `n` must not be zero.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

impl Rng for SeededRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// How bytes in flight are handed to the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Everything in flight at once.
    Whole,
    /// One byte per read.
    Bytes,
    /// Reads of random size between 1 and the given maximum.
    Random(usize),
    /// The first `n` bytes of the stream, then everything else: run once per `n` to cut
    /// at every boundary.
    At(usize),
}

/// One side of the pair: its transport, its unread input and what it received.
#[derive(Debug)]
pub struct Side {
    pub transport: Transport,
    /// Bytes received but not yet consumed by the transport.
    pub inbox: Vec<u8>,
    /// Payloads delivered to the layer above, in order.
    pub received: Vec<Vec<u8>>,
    /// Events seen, in order, as their `Debug` text.
    pub events: Vec<String>,
    /// Key exchanges finished, the first included.
    pub kex_count: usize,
    /// Bytes this side has put on the wire so far.
    pub sent_bytes: usize,
    /// Accept the server's host key when asked (client role).
    pub accept_host_key: bool,
}

impl Side {
    fn new(transport: Transport) -> Self {
        Self {
            transport,
            inbox: Vec::new(),
            received: Vec::new(),
            events: Vec::new(),
            kex_count: 0,
            sent_bytes: 0,
            accept_host_key: true,
        }
    }

    /// Consumes all the input the transport can take now.
    fn pump_input(&mut self, now: Instant) -> Result<(), Error> {
        let mut start = 0;
        loop {
            let decoded = self.transport.decode(&mut self.inbox[start..], now);
            let decoded = match decoded {
                Ok(d) => d,
                Err(e) => {
                    self.inbox.drain(..start);
                    return Err(e);
                }
            };
            if let Some(packet) = decoded.packet {
                self.received.push(packet.payload.to_vec());
            }
            start += decoded.consumed;
            let progressed = decoded.consumed > 0;
            self.drain_events()?;
            if !progressed {
                break;
            }
        }
        self.inbox.drain(..start);
        Ok(())
    }

    fn drain_events(&mut self) -> Result<(), Error> {
        while let Some(event) = self.transport.poll_event() {
            self.events.push(format!("{event:?}"));
            match event {
                Event::HostKey(_) if self.accept_host_key => self.transport.accept_host_key()?,
                Event::HostKey(_) => return Err(self.transport.reject_host_key("not trusted")),
                Event::KeysReady { .. } => self.kex_count += 1,
                Event::ExtInfo(_) => {}
            }
        }
        Ok(())
    }
}

/// A client and a server connected by two in-memory pipes.
#[derive(Debug)]
pub struct Pair {
    pub client: Side,
    pub server: Side,
    /// The simulated clock.
    pub now: Instant,
    pub cut: Cut,
    /// Bytes sent but not yet delivered, per direction.
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    /// Bytes of each stream delivered so far, for [`Cut::At`].
    c2s_delivered: usize,
    s2c_delivered: usize,
    cut_rng: SeededRng,
}

impl Pair {
    /// Builds the pair. Both sides get their own generator derived from `seed`.
    #[expect(
        clippy::disallowed_methods,
        reason = "the simulated clock needs an origin; only differences from it matter"
    )]
    pub fn new(client: Arc<Config>, server: Arc<Config>, seed: u64, cut: Cut) -> Self {
        let now = Instant::now();
        let client = Transport::new(
            client,
            Role::Client,
            Box::new(SeededRng::new(seed ^ 0x00c1_1e47)),
            now,
        );
        let server = Transport::new(
            server,
            Role::Server,
            Box::new(SeededRng::new(seed ^ 0x005e_4ee4)),
            now,
        );
        Self {
            client: Side::new(client),
            server: Side::new(server),
            now,
            cut,
            c2s: Vec::new(),
            s2c: Vec::new(),
            c2s_delivered: 0,
            s2c_delivered: 0,
            cut_rng: SeededRng::new(seed.rotate_left(17)),
        }
    }

    /// Moves the clock forward and fires due timers on both sides.
    pub fn advance(&mut self, by: Duration) -> Result<(), Error> {
        self.now += by;
        self.client.transport.handle_timeout(self.now)?;
        self.server.transport.handle_timeout(self.now)
    }

    /// One round: both sides flush output, then each receives one read of what is in
    /// flight. Returns whether any byte moved.
    pub fn step(&mut self) -> Result<bool, Error> {
        let before = self.c2s.len() + self.s2c.len();
        self.client.sent_bytes += take_output(&mut self.client.transport, &mut self.c2s);
        self.server.sent_bytes += take_output(&mut self.server.transport, &mut self.s2c);
        let mut moved = self.c2s.len() + self.s2c.len() != before;

        let n = Self::cut_len(
            self.cut,
            &mut self.cut_rng,
            self.c2s.len(),
            self.c2s_delivered,
        );
        if n > 0 {
            self.server.inbox.extend(self.c2s.drain(..n));
            self.c2s_delivered += n;
            moved = true;
        }
        let n = Self::cut_len(
            self.cut,
            &mut self.cut_rng,
            self.s2c.len(),
            self.s2c_delivered,
        );
        if n > 0 {
            self.client.inbox.extend(self.s2c.drain(..n));
            self.s2c_delivered += n;
            moved = true;
        }
        self.server.pump_input(self.now)?;
        self.client.pump_input(self.now)?;
        Ok(moved)
    }

    fn cut_len(cut: Cut, rng: &mut SeededRng, available: usize, delivered: usize) -> usize {
        if available == 0 {
            return 0;
        }
        match cut {
            Cut::Whole => available,
            Cut::Bytes => 1,
            Cut::Random(max) => 1 + rng.below(max.clamp(1, available)),
            Cut::At(at) if delivered < at => (at - delivered).min(available),
            Cut::At(_) => available,
        }
    }

    /// Steps until nothing moves. Fails if it takes more than `max_steps` rounds.
    pub fn settle(&mut self, max_steps: usize) -> Result<(), Error> {
        for _ in 0..max_steps {
            if !self.step()? {
                return Ok(());
            }
        }
        Err(Error::Misuse("the simulation did not settle"))
    }

    /// Runs until both sides finished the first key exchange.
    pub fn handshake(&mut self) -> Result<(), Error> {
        for _ in 0..1_000_000 {
            if self.client.transport.is_ready() && self.server.transport.is_ready() {
                return Ok(());
            }
            if !self.step()? {
                return Err(Error::Misuse("the handshake stalled"));
            }
        }
        Err(Error::Misuse("the handshake did not finish"))
    }

    /// The bytes in flight from client to server, for tests that tamper with them.
    pub fn c2s_in_flight(&mut self) -> &mut Vec<u8> {
        &mut self.c2s
    }

    /// The bytes in flight from server to client.
    pub fn s2c_in_flight(&mut self) -> &mut Vec<u8> {
        &mut self.s2c
    }

    /// Flushes both sides' output into the pipes without delivering it.
    pub fn flush(&mut self) {
        self.client.sent_bytes += take_output(&mut self.client.transport, &mut self.c2s);
        self.server.sent_bytes += take_output(&mut self.server.transport, &mut self.s2c);
    }
}

fn take_output(transport: &mut Transport, pipe: &mut Vec<u8>) -> usize {
    let before = pipe.len();
    transport.poll_transmit(pipe);
    pipe.len() - before
}
