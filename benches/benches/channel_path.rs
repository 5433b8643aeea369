//! The channel path against the packet path it runs on, in memory.
//!
//! One run measures, for each suite, all interleaved in rounds (see the harness), the
//! same 32 KiB of channel data per packet going from a client to a server:
//!
//! - **packet**: the packet layer alone: a `Sealer` frames the CHANNEL_DATA message into a
//!   reused buffer and seals it, an `Opener` opens it in place;
//! - **transport**: a whole `Transport` pair after a real handshake, without channels:
//!   the client's `send` of a ready-made CHANNEL_DATA message, `poll_transmit`, and the
//!   server's `decode`. This is the reference the channel rows are held to;
//! - **1 channel**: a `Channels` on each side of the same kind of pair. The client's
//!   `Channels::send_data` writes the message, the server's `Transport::decode` hands it to
//!   its `Channels::handle`, which gives the data back borrowed, and the server reports it
//!   read with `Channels::consumed`. The WINDOW_ADJUSTs that earns are carried back and
//!   handled by the client, so the window never shuts;
//! - **1000 channels**: the same with 1,000 channels open, one packet per channel in turn,
//!   as an event loop gives every channel its turn.
//!
//! Every row carries [`BATCH`] packets per `poll_transmit`, as one socket write would, and
//! everything runs in one thread. Each row is printed with its ratio to the transport and
//! packet rows of the same suite; the goal is a channel path at 0.8 of the transport or
//! better, since channels only add a table lookup, window counting and one adjust per
//! megabyte.
//!
//! `cargo bench -p benches --bench channel_path` runs it; `-- --quick` takes fewer
//! samples, any other argument keeps only the rows whose name contains it, and
//! `BENCH_SAMPLES`, `BENCH_SAMPLE_MS` and `BENCH_WARMUP_MS` change how much each row
//! runs. Run without `--bench` (as `cargo test --all-targets` does), it only checks that
//! every row delivers what it sends.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::harness::{self, Args, Case, Measured, Plan};
use benches::machine;
use benches::setup::{Connected, connected, direction_keys};
use ssh_proto::algorithms::{Algorithm, Cipher};
use ssh_proto::connection::channels::{Channels, ChannelsConfig, Event, Input};
use ssh_proto::connection::msg::ChannelType;
use ssh_proto::crypto::{CryptoProvider, all_providers};
use ssh_proto::msg::MessageNumber;
use ssh_proto::packet::{MAX_OVERHEAD, Opened, Opener, Sealer};
use ssh_proto::transport::Transport;

/// Channel data per packet: the default maximum packet size of a channel (see
/// `WindowConfig`), which is what OpenSSH uses too.
const DATA: usize = 32 * 1024;

/// CHANNEL_DATA's header (RFC 4254 section 5.2): the message number, the recipient
/// channel and the data string's length.
const HEADER: usize = 1 + 4 + 4;

/// Packets sealed before each `poll_transmit`, as an event loop would fill one socket
/// write: 4 x 32 KiB.
const BATCH: u64 = 4;

/// Channels in the many-channel rows.
const MANY: usize = 1000;

/// What runs: ring's AES-GCM (the default and fastest), ring's ChaCha20-Poly1305 (the
/// slowest AEAD, where the channel layer's share is smallest), and the pure-Rust AES-GCM.
const SUITES: [(&str, Cipher); 3] = [
    ("ring", Cipher::Aes128Gcm),
    ("ring", Cipher::ChaCha20Poly1305),
    ("rustcrypto", Cipher::Aes128Gcm),
];

/// The default plan: longer than the packet path's, as the 1,000-channel rows are the
/// noisiest, and still about half a minute for all rows.
const PLAN: Plan = Plan {
    warmup: Duration::from_millis(250),
    sample: Duration::from_millis(80),
    samples: 21,
};

/// What a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Packet { suite: usize },
    Transport { suite: usize },
    Channels { suite: usize, count: usize },
}

impl Kind {
    fn suite(self) -> usize {
        match self {
            Kind::Packet { suite } | Kind::Transport { suite } | Kind::Channels { suite, .. } => {
                suite
            }
        }
    }
}

fn provider(name: &str) -> &'static dyn CryptoProvider {
    all_providers()
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap()
}

/// The suite's name: the provider and the cipher without its `@openssh.com`.
fn suite_label(suite: usize) -> String {
    let (provider, cipher) = SUITES[suite];
    format!(
        "{provider} {}",
        cipher.name().trim_end_matches("@openssh.com")
    )
}

/// A repeatable, non-trivial payload.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// A CHANNEL_DATA message for the peer's channel 0 carrying [`DATA`] bytes, as
/// `Channels::send_data` writes it.
fn data_message() -> Vec<u8> {
    let mut message = Vec::with_capacity(HEADER + DATA);
    message.push(MessageNumber::CHANNEL_DATA.0);
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(DATA as u32).to_be_bytes());
    message.extend_from_slice(&pattern(DATA));
    message
}

/// The packet layer alone: frame and seal into a reused buffer, then open it in place.
fn packet(suite: usize) -> impl FnMut(u64) {
    let (name, cipher) = SUITES[suite];
    let keys = direction_keys(cipher, None);
    let mut sealer = Sealer::plain();
    sealer.install(provider(name), &keys, [0x5a; 255]).unwrap();
    let mut opener = Opener::plain();
    opener.install(provider(name), &keys).unwrap();

    let message = data_message();
    let mut wire = Vec::with_capacity(message.len() + MAX_OVERHEAD);
    let mut round = move |wire: &mut Vec<u8>, message: &[u8]| {
        wire.clear();
        sealer.seal_with(wire, |out| out.extend_from_slice(message));
        match opener.open(wire) {
            Ok(Opened::Packet { payload, .. }) => payload,
            other => panic!("the packet did not open: {other:?}"),
        }
    };

    let opened = round(&mut wire, &message);
    assert!(wire[opened] == message[..], "the packet path garbled data");

    move |n| {
        for _ in 0..n {
            let opened = round(black_box(&mut wire), black_box(&message));
            black_box(&wire[opened]);
        }
    }
}

/// Decodes every packet in `wire`, clears it, and returns how many packets it held.
/// `each` gets every payload with its sequence number.
fn decode_all(
    transport: &mut Transport,
    wire: &mut Vec<u8>,
    now: Instant,
    mut each: impl FnMut(&mut Transport, &[u8], u32),
) -> u64 {
    let mut start = 0;
    let mut packets = 0;
    while start < wire.len() {
        let decoded = transport.decode(&mut wire[start..], now).unwrap();
        assert!(decoded.consumed > 0, "the transport stalled");
        start += decoded.consumed;
        if let Some(packet) = decoded.packet {
            each(transport, packet.payload, packet.seq);
            packets += 1;
        }
    }
    wire.clear();
    packets
}

/// The transport without channels: ready-made CHANNEL_DATA messages sent, transmitted and
/// decoded.
fn transport(suite: usize) -> impl FnMut(u64) {
    let (name, cipher) = SUITES[suite];
    let Connected {
        mut client,
        mut server,
        now,
    } = connected(provider(name), cipher, None);
    let message = data_message();
    let mut wire = Vec::new();

    client.send(|out| out.extend_from_slice(&message)).unwrap();
    client.poll_transmit(&mut wire);
    let delivered = decode_all(&mut server, &mut wire, now, |_, payload, _| {
        assert!(payload == message, "the transport garbled data");
    });
    assert_eq!(delivered, 1);

    move |n| {
        let mut left = n;
        while left > 0 {
            let count = left.min(BATCH);
            for _ in 0..count {
                client
                    .send(|out| out.extend_from_slice(black_box(&message)))
                    .unwrap();
            }
            client.poll_transmit(&mut wire);
            let delivered = decode_all(&mut server, &mut wire, now, |_, payload, _| {
                black_box(payload);
            });
            assert_eq!(delivered, count);
            left -= count;
        }
    }
}

/// One side's channels and its transport.
struct End {
    transport: Transport,
    channels: Channels,
}

impl End {
    /// Decodes everything in `wire` and hands each message to the channels: data to
    /// `on_data`, then every event to `on_event`. Returns the packets decoded.
    fn receive(
        &mut self,
        wire: &mut Vec<u8>,
        now: Instant,
        mut on_data: impl FnMut(&mut Channels, &mut Transport, u32, &[u8]),
        mut on_event: impl FnMut(&mut Channels, &mut Transport, Event),
    ) -> u64 {
        let channels = &mut self.channels;
        decode_all(&mut self.transport, wire, now, |transport, payload, seq| {
            assert!(
                payload[0] >= MessageNumber::GLOBAL_REQUEST.0,
                "not a connection message: {}",
                payload[0]
            );
            if let Some(Input::Data { channel, data, .. }) =
                channels.handle(transport, payload, seq, now).unwrap()
            {
                on_data(channels, transport, channel, data);
            }
            while let Some(event) = channels.poll_event() {
                on_event(channels, transport, event);
            }
        })
    }
}

/// Channels over a transport pair: the client sends, the server reads.
struct ChannelPath {
    client: End,
    server: End,
    now: Instant,
    /// Each channel's id at the client and at the server, in the order they take turns.
    ids: Vec<(u32, u32)>,
    /// The channel whose turn is next.
    next: usize,
    data: Vec<u8>,
    /// Bytes from client to server, and back.
    wire: Vec<u8>,
    back: Vec<u8>,
}

impl ChannelPath {
    /// Opens `count` sessions from the client, accepted by the server, with the default
    /// windows (2 MiB, adjusted after each megabyte read) and maximum packet (32 KiB).
    fn new(suite: usize, count: usize) -> Self {
        let (name, cipher) = SUITES[suite];
        let Connected {
            client,
            server,
            now,
        } = connected(provider(name), cipher, None);
        // A budget that gives every channel its whole default window, so the rows measure
        // the per-packet cost of the channel path rather than how a tight budget is shared.
        let config = || {
            let mut config = ChannelsConfig::default();
            config.budget = config
                .budget
                .max(count as u64 * u64::from(config.window.initial));
            config
        };
        let mut client = End {
            transport: client,
            channels: Channels::new(config()).unwrap(),
        };
        let mut server = End {
            transport: server,
            channels: Channels::new(config()).unwrap(),
        };

        let ours: Vec<u32> = (0..count)
            .map(|_| {
                client
                    .channels
                    .open(&mut client.transport, &ChannelType::Session)
                    .unwrap()
            })
            .collect();
        let mut wire = Vec::new();
        client.transport.poll_transmit(&mut wire);
        let mut theirs = Vec::with_capacity(count);
        server.receive(
            &mut wire,
            now,
            |_, _, _, _| panic!("data before any channel is open"),
            |channels, transport, event| match event {
                Event::OpenRequest { channel, .. } => {
                    channels.accept(transport, channel).unwrap();
                    theirs.push(channel);
                }
                other => panic!("unexpected at the server: {other:?}"),
            },
        );
        server.transport.poll_transmit(&mut wire);
        let mut opened = 0;
        client.receive(
            &mut wire,
            now,
            |_, _, _, _| panic!("data before any channel is open"),
            |_, _, event| match event {
                Event::Opened { .. } => opened += 1,
                other => panic!("unexpected at the client: {other:?}"),
            },
        );
        assert_eq!((theirs.len(), opened), (count, count));

        let mut path = Self {
            client,
            server,
            now,
            // One connection keeps its order, so the server saw the opens in ours.
            ids: ours.into_iter().zip(theirs).collect(),
            next: 0,
            data: pattern(DATA),
            wire,
            back: Vec::new(),
        };
        // One packet on every channel, outside the timing, checking every byte.
        for _ in 0..count.div_ceil(BATCH as usize) {
            path.batch(BATCH, true);
        }
        path
    }

    fn run(&mut self, n: u64) {
        let mut left = n;
        while left > 0 {
            let count = left.min(BATCH);
            self.batch(count, false);
            left -= count;
        }
    }

    /// Sends `count` packets, one per channel in turn, carries them to the server, which
    /// reads them and reports them consumed, and carries its adjusts back to the client.
    /// With `check`, compares every byte delivered with what was sent.
    fn batch(&mut self, count: u64, check: bool) {
        let first = self.next;
        for _ in 0..count {
            let (channel, _) = self.ids[self.next];
            let sent = self
                .client
                .channels
                .send_data(
                    &mut self.client.transport,
                    channel,
                    false,
                    black_box(&self.data),
                )
                .unwrap();
            assert_eq!(sent, DATA, "the window shut or the transport held output");
            self.next += 1;
            if self.next == self.ids.len() {
                self.next = 0;
            }
        }
        self.client.transport.poll_transmit(&mut self.wire);

        let (now, ids, data) = (self.now, &self.ids, &self.data);
        let mut turn = first;
        let delivered = self.server.receive(
            &mut self.wire,
            now,
            |channels, transport, channel, got| {
                assert_eq!(channel, ids[turn].1, "data arrived on the wrong channel");
                assert!(!check || got == data, "the channel path garbled data");
                black_box(got);
                channels
                    .consumed(transport, channel, got.len(), now)
                    .unwrap();
                turn = (turn + 1) % ids.len();
            },
            |_, _, event| panic!("unexpected at the server: {event:?}"),
        );
        assert_eq!(delivered, count);

        if self.server.transport.pending_output() > 0 {
            self.server.transport.poll_transmit(&mut self.back);
            self.client.receive(
                &mut self.back,
                now,
                |_, _, _, _| panic!("the server sent data"),
                // The window never shuts here, so `Writable` would be a surprise too.
                |_, _, event| panic!("unexpected at the client: {event:?}"),
            );
        }
    }
}

/// Every row of the report, in the order printed.
fn kinds() -> Vec<Kind> {
    (0..SUITES.len())
        .flat_map(|suite| {
            [
                Kind::Packet { suite },
                Kind::Transport { suite },
                Kind::Channels { suite, count: 1 },
                Kind::Channels { suite, count: MANY },
            ]
        })
        .collect()
}

/// What the row carries packets through, as the table shows it.
fn path_label(kind: Kind) -> String {
    match kind {
        Kind::Packet { .. } => "packet".to_owned(),
        Kind::Transport { .. } => "transport".to_owned(),
        Kind::Channels { count: 1, .. } => "1 channel".to_owned(),
        Kind::Channels { count, .. } => format!("{count} channels"),
    }
}

/// The row's name, which the command line filters on.
fn name(kind: Kind) -> String {
    format!("{} {}", path_label(kind), suite_label(kind.suite()))
}

/// Sets the row up and checks that it delivers what it sends.
fn build(kind: Kind) -> Case<'static> {
    let run: Box<dyn FnMut(u64)> = match kind {
        Kind::Packet { suite } => Box::new(packet(suite)),
        Kind::Transport { suite } => Box::new(transport(suite)),
        Kind::Channels { suite, count } => {
            let mut path = ChannelPath::new(suite, count);
            Box::new(move |n| path.run(n))
        }
    };
    Case::new(name(kind), DATA as u64, run)
}

fn main() {
    let args = Args::from_env();

    let kinds: Vec<Kind> = kinds()
        .into_iter()
        .filter(|&kind| args.picks(&name(kind)))
        .collect();
    let mut cases: Vec<Case<'_>> = kinds.iter().map(|&kind| build(kind)).collect();

    if !args.bench {
        for case in &mut cases {
            case.run_once(BATCH + 1);
        }
        println!(
            "channel_path: {} cases deliver what they send; run `cargo bench -p benches \
             --bench channel_path` for figures",
            cases.len()
        );
        return;
    }

    let plan = if args.quick { Plan::QUICK } else { PLAN }.with_env();
    let load_before = machine::load_average();
    let measured = harness::measure(&mut cases, plan);
    let on_cpu = measured.iter().all(|m| !m.cpu.is_empty());
    print_header(plan, &load_before, on_cpu);
    print_table(&kinds, &measured);
}

fn print_header(plan: Plan, load_before: &str, on_cpu: bool) {
    plan.print_header(load_before);
    let clock = if on_cpu {
        "this thread's CPU time"
    } else {
        "wall-clock time (this thread's CPU time is not available here)"
    };
    println!(
        "GB/s:     10^9 bytes of channel data per second of {clock}, each byte sealed, \
         opened and read; median sample"
    );
    println!("wall:     the same over wall-clock time, which also counts other processes");
    println!("spread:   (fastest - slowest sample) / median sample");
    println!("x packet: / the packet row of the same suite (Sealer + Opener only)");
    println!("x transp: / the transport row of the same suite (a Transport pair, no channels)");
    println!(
        "          Every ratio is the median over rounds of the quotient of two samples of \
         the same round."
    );
    println!("goal:     channel rows against 0.8 of the transport row");
    println!();
    println!(
        "Every row: {DATA} bytes of channel data per packet, {BATCH} packets per \
         poll_transmit, one thread."
    );
    println!();
}

fn print_table(kinds: &[Kind], measured: &[Measured]) {
    let find = |kind: Kind| kinds.iter().position(|&k| k == kind).map(|i| &measured[i]);
    let ratio = |m: &Measured, reference: Option<&Measured>| match reference {
        Some(r) => format!("{:.2}", m.ratio_to(r)),
        None => "-".to_owned(),
    };

    println!(
        "{:<20} {:>6} {:>6} {:>7} {:>8} {:>8}  goal",
        "row", "GB/s", "wall", "spread", "x packet", "x transp"
    );
    let mut section = None;
    for (&kind, m) in kinds.iter().zip(measured) {
        let suite = kind.suite();
        if section != Some(suite) {
            println!("{}", suite_label(suite));
            section = Some(suite);
        }
        let packet = find(Kind::Packet { suite }).filter(|_| kind != Kind::Packet { suite });
        let transp = match kind {
            Kind::Channels { .. } => find(Kind::Transport { suite }),
            _ => None,
        };
        let goal = match transp {
            Some(t) if m.ratio_to(t) >= 0.8 => "ok",
            Some(_) => "BELOW",
            None => "",
        };
        println!(
            "  {:<18} {:>6.2} {:>6.2} {:>6.1}% {:>8} {:>8}  {}",
            path_label(kind),
            m.median(),
            m.wall_median(),
            m.spread_percent(),
            ratio(m, packet),
            ratio(m, transp),
            goal
        );
    }
}
