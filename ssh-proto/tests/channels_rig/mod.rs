//! The rig for the Channels tests: a handshaken simulator pair in which either side runs
//! [`Channels`] or is written by hand, sending raw connection messages and keeping every
//! payload it receives. Shared by the Channels test files, each of which uses a part; the
//! pair alone ([`authenticated_pair`]) serves the tests that drive the connection their own
//! way.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ssh_proto::Error;
use ssh_proto::config::Config;
use ssh_proto::connection::channels::{Channels, ChannelsConfig, Event, Input, OwnedChannelType};
use ssh_proto::connection::msg::{ChannelOpen, ChannelType, Message, OpenFailureReason};
use ssh_proto::connection::window::WindowConfig;
use ssh_proto::crypto::default_provider;
use ssh_proto::hostkey::HostKeyPair;
use ssh_proto::msg::{DisconnectReason, MessageNumber};
use ssh_proto::sim::{Cut, Pair, Side};
use ssh_proto::wire::Writer;

// ---------------------------------------------------------------------------------------
// The rig

/// One side's application: its channels, the events it saw and the bytes it read.
pub struct Peer {
    /// `None` for the hand-written client, which sees raw payloads only.
    pub ch: Option<Channels>,
    pub events: VecDeque<Event>,
    pub stdout: HashMap<u32, Vec<u8>>,
    pub stderr: HashMap<u32, Vec<u8>>,
    /// Report data as read as soon as it arrives.
    pub consume: bool,
    /// Payloads not routed to `ch` (all of them for a raw peer).
    pub raw: Vec<Vec<u8>>,
}

impl Peer {
    pub fn new(config: Option<ChannelsConfig>) -> Self {
        Self {
            ch: config.map(|c| Channels::new(c).unwrap()),
            events: VecDeque::new(),
            stdout: HashMap::new(),
            stderr: HashMap::new(),
            consume: true,
            raw: Vec::new(),
        }
    }

    pub fn ch(&mut self) -> &mut Channels {
        self.ch.as_mut().unwrap()
    }

    pub fn next_event(&mut self) -> Event {
        self.events.pop_front().expect("an event")
    }
}

pub struct Rig {
    pub pair: Pair,
    pub client: Peer,
    pub server: Peer,
}

pub fn config(initial: u32, max: u32, max_packet: u32) -> ChannelsConfig {
    ChannelsConfig {
        window: WindowConfig {
            initial,
            max,
            max_packet,
        },
        ..ChannelsConfig::default()
    }
}

impl Rig {
    /// A handshaken, authenticated pair; `client` is `None` for a hand-written client.
    pub fn new(client: Option<ChannelsConfig>, server: ChannelsConfig) -> Self {
        Self::with(client, Some(server))
    }

    /// A hand-written server against the client's [`Channels`].
    pub fn raw_server(client: ChannelsConfig) -> Self {
        Self::with(Some(client), None)
    }

    /// A handshaken, authenticated pair; `None` for a side written by hand.
    pub fn with(client: Option<ChannelsConfig>, server: Option<ChannelsConfig>) -> Self {
        Self {
            pair: authenticated_pair(1),
            client: Peer::new(client),
            server: Peer::new(server),
        }
    }

    pub fn both() -> Self {
        Self::new(Some(ChannelsConfig::default()), ChannelsConfig::default())
    }

    /// Delivers what the client sent to the server.
    pub fn server_reads(&mut self) -> Result<(), Error> {
        self.pair.flush();
        let wire = std::mem::take(self.pair.c2s_in_flight());
        let now = self.pair.now;
        deliver(&mut self.pair.server, wire, &mut self.server, now)
    }

    /// Delivers what the server sent to the client.
    pub fn client_reads(&mut self) -> Result<(), Error> {
        self.pair.flush();
        let wire = std::mem::take(self.pair.s2c_in_flight());
        let now = self.pair.now;
        deliver(&mut self.pair.client, wire, &mut self.client, now)
    }

    /// Moves bytes both ways until nothing is in flight.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            self.pair.flush();
            if self.pair.c2s_in_flight().is_empty() && self.pair.s2c_in_flight().is_empty() {
                return;
            }
            self.server_reads().unwrap();
            self.client_reads().unwrap();
        }
        panic!("the rig did not settle");
    }

    /// The hand-written client sends one payload; returns how the server took it.
    pub fn raw(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.pair
            .client
            .transport
            .send(|p| p.extend_from_slice(payload))
            .unwrap();
        self.server_reads()
    }

    /// The hand-written server sends one payload; returns how the client took it.
    pub fn raw_to_client(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.pair
            .server
            .transport
            .send(|p| p.extend_from_slice(payload))
            .unwrap();
        self.client_reads()
    }

    /// The client refused what it got with PROTOCOL_ERROR, and the server heard it.
    #[track_caller]
    pub fn expect_client_disconnect(&mut self, result: Result<(), Error>) {
        let e = result.expect_err("the client must end the connection");
        assert_eq!(
            e.disconnect_reason(),
            DisconnectReason::PROTOCOL_ERROR,
            "{e:?}"
        );
        assert!(self.pair.client.transport.is_closed());
        match self.server_reads() {
            Err(Error::PeerDisconnected { reason, .. }) => {
                assert_eq!(reason, DisconnectReason::PROTOCOL_ERROR);
            }
            other => panic!("the server must hear a DISCONNECT, got {other:?}"),
        }
    }

    /// The server refused what it got with PROTOCOL_ERROR, and the client heard it.
    #[track_caller]
    pub fn expect_disconnect(&mut self, result: Result<(), Error>) {
        let e = result.expect_err("the server must end the connection");
        assert_eq!(
            e.disconnect_reason(),
            DisconnectReason::PROTOCOL_ERROR,
            "{e:?}"
        );
        assert!(self.pair.server.transport.is_closed());
        match self.client_reads() {
            Err(Error::PeerDisconnected { reason, .. }) => {
                assert_eq!(reason, DisconnectReason::PROTOCOL_ERROR);
            }
            other => panic!("the client must hear a DISCONNECT, got {other:?}"),
        }
    }

    /// The raw client opens a session with `window` and `max_packet`; the server accepts.
    /// Returns the server's id for it.
    pub fn raw_session(&mut self, sender: u32, window: u32, max_packet: u32) -> u32 {
        self.raw_session_window(sender, window, max_packet).0
    }

    /// As [`Rig::raw_session`], also returning the initial window the server announced.
    pub fn raw_session_window(&mut self, sender: u32, window: u32, max_packet: u32) -> (u32, u32) {
        self.raw(&open_msg(sender, window, max_packet)).unwrap();
        let Event::OpenRequest { channel, kind } = self.server.next_event() else {
            panic!("an open request");
        };
        assert_eq!(kind, OwnedChannelType::Session);
        let t = &mut self.pair.server.transport;
        self.server.ch.as_mut().unwrap().accept(t, channel).unwrap();
        self.client_reads().unwrap();
        let got = self.client.raw.pop().unwrap();
        let Ok(Message::ChannelOpenConfirmation(m)) = Message::parse(&got) else {
            panic!("an OPEN_CONFIRMATION, got {got:?}");
        };
        assert_eq!((m.recipient, m.sender), (sender, channel));
        (channel, m.initial_window)
    }

    /// The client's Channels opens a session and the hand-written server confirms it as
    /// its channel `sender` with `window` and `max_packet`. Returns the client's id; the
    /// client has seen nothing yet.
    pub fn raw_confirmed(&mut self, sender: u32, window: u32, max_packet: u32) -> u32 {
        let t = &mut self.pair.client.transport;
        let c = self.client.ch().open(t, &ChannelType::Session).unwrap();
        self.server_reads().unwrap();
        let got = self.server.raw.pop().unwrap();
        let Ok(Message::ChannelOpen(m)) = Message::parse(&got) else {
            panic!("a CHANNEL_OPEN, got {got:?}");
        };
        assert_eq!(m.sender, c);
        self.raw_to_client(&confirm_msg(c, sender, window, max_packet))
            .unwrap();
        c
    }

    /// The client opens a session and the server accepts it. Returns (client id, server
    /// id).
    pub fn session(&mut self) -> (u32, u32) {
        let t = &mut self.pair.client.transport;
        let c = self.client.ch().open(t, &ChannelType::Session).unwrap();
        self.server_reads().unwrap();
        let Event::OpenRequest { channel: s, kind } = self.server.next_event() else {
            panic!("an open request");
        };
        assert_eq!(kind, OwnedChannelType::Session);
        let t = &mut self.pair.server.transport;
        self.server.ch().accept(t, s).unwrap();
        self.client_reads().unwrap();
        assert_eq!(self.client.next_event(), Event::Opened { channel: c });
        (c, s)
    }
}

/// A simulator pair with the default settings and a fixed Ed25519 host key, handshaken and
/// marked authenticated, so that the connection layer can start at once; `seed` drives the
/// pair's randomness.
pub fn authenticated_pair(seed: u64) -> Pair {
    let provider = default_provider();
    let c = Config {
        provider,
        ..Config::default()
    };
    let s = Config {
        provider,
        host_keys: vec![HostKeyPair::ed25519_from_seed(provider, &[7; 32])],
        ..Config::default()
    };
    let mut pair = Pair::new(Arc::new(c), Arc::new(s), seed, Cut::Whole);
    pair.handshake().unwrap();
    pair.client.transport.set_authenticated();
    pair.server.transport.set_authenticated();
    pair
}

/// Feeds `wire` to one side: connection messages go to its [`Channels`], data is kept
/// (and reported read when the peer consumes), events are collected.
pub fn deliver(
    side: &mut Side,
    wire: Vec<u8>,
    peer: &mut Peer,
    now: std::time::Instant,
) -> Result<(), Error> {
    side.inbox.extend(wire);
    let mut start = 0;
    let result = loop {
        let decoded = match side.transport.decode(&mut side.inbox[start..], now) {
            Ok(d) => d,
            Err(e) => break Err(e),
        };
        start += decoded.consumed;
        while side.transport.poll_event().is_some() {}
        if let Some(packet) = decoded.packet {
            match peer.ch.as_mut() {
                Some(ch) if packet.payload[0] >= 80 => {
                    match ch.handle(&mut side.transport, packet.payload, packet.seq, now) {
                        Ok(Some(Input::Data {
                            channel,
                            stderr,
                            data,
                        })) => {
                            let store = if stderr {
                                &mut peer.stderr
                            } else {
                                &mut peer.stdout
                            };
                            store.entry(channel).or_default().extend_from_slice(data);
                            if peer.consume
                                && let Err(e) =
                                    ch.consumed(&mut side.transport, channel, data.len(), now)
                            {
                                break Err(e);
                            }
                        }
                        Ok(None) => {}
                        Err(e) => break Err(e),
                    }
                    while let Some(event) = ch.poll_event() {
                        peer.events.push_back(event);
                    }
                }
                _ => peer.raw.push(packet.payload.to_vec()),
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
// Raw messages

pub fn open_msg(sender: u32, window: u32, max_packet: u32) -> Vec<u8> {
    let mut p = Vec::new();
    ChannelOpen {
        sender,
        initial_window: window,
        max_packet,
        channel_type: ChannelType::Session,
    }
    .write(&mut p);
    p
}

pub fn confirm_msg(recipient: u32, sender: u32, window: u32, max_packet: u32) -> Vec<u8> {
    let mut p = recipient_msg(MessageNumber::CHANNEL_OPEN_CONFIRMATION, recipient);
    p.put_u32(sender);
    p.put_u32(window);
    p.put_u32(max_packet);
    p
}

pub fn recipient_msg(number: MessageNumber, recipient: u32) -> Vec<u8> {
    let mut p = vec![number.0];
    p.put_u32(recipient);
    p
}

pub fn adjust_msg(recipient: u32, by: u32) -> Vec<u8> {
    let mut p = recipient_msg(MessageNumber::CHANNEL_WINDOW_ADJUST, recipient);
    p.put_u32(by);
    p
}

pub fn data_msg(recipient: u32, data: &[u8]) -> Vec<u8> {
    let mut p = recipient_msg(MessageNumber::CHANNEL_DATA, recipient);
    p.put_string(data);
    p
}

/// The OPEN_FAILURE reasons among the raw payloads, with their recipients.
pub fn open_failures(raw: &[Vec<u8>]) -> Vec<(u32, OpenFailureReason)> {
    raw.iter()
        .filter_map(|p| match Message::parse(p) {
            Ok(Message::ChannelOpenFailure(f)) => Some((f.recipient, f.reason)),
            _ => None,
        })
        .collect()
}
