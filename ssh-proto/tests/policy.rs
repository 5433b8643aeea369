//! The server's connection policy (`connection::policy`) applied by a server application
//! to a real client's channels over a handshaken connection: what the client is refused
//! is what it hears on the wire.

#[expect(
    dead_code,
    reason = "the rig is shared by the Channels test files, and each uses a part of it"
)]
mod channels_rig;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use channels_rig::authenticated_pair;
use ssh_proto::Error;
use ssh_proto::authorized_keys::KeyOptions;
use ssh_proto::connection::channels::{Channels, ChannelsConfig, Event};
use ssh_proto::connection::msg::{
    ChannelRequestBody, ChannelType, GlobalRequestBody, OpenFailureReason, PtyRequest,
    TerminalModes, TerminalSize,
};
use ssh_proto::connection::policy::{Destination, Grants, Refusal, ServerPolicy, Verdict};
use ssh_proto::sim::{Pair, Side};
use ssh_proto::transport::Transport;

/// The server application: it runs every open and request through its [`Grants`] and
/// answers as they say, keeping each decision for the test to look at.
struct Server {
    grants: Grants,
    /// Each open the policy refused: the server's id for the channel, and why.
    refused: Vec<(u32, Refusal)>,
    /// Each channel request and its verdict, in order.
    verdicts: Vec<(u32, Verdict)>,
    /// Each global request's result, in order.
    globals: Vec<Result<(), Refusal>>,
}

impl Server {
    fn answer(&mut self, t: &mut Transport, ch: &mut Channels, event: Event) {
        match event {
            Event::OpenRequest { channel, kind } => match self.grants.check_open(&kind) {
                Ok(()) => ch.accept(t, channel).unwrap(),
                Err(refusal) => {
                    let (reason, text) = (refusal.reason(), refusal.description());
                    ch.reject(t, channel, reason, text).unwrap();
                    self.refused.push((channel, refusal));
                }
            },
            Event::Request {
                channel,
                request,
                want_reply,
            } => {
                let verdict = self.grants.check_request(&request);
                if want_reply {
                    ch.reply(t, channel, verdict.is_allowed()).unwrap();
                }
                self.verdicts.push((channel, verdict));
            }
            Event::GlobalRequest {
                request,
                want_reply,
            } => {
                let result = self.grants.check_global(&request);
                if want_reply {
                    ch.reply_global(t, result.is_ok(), None).unwrap();
                }
                self.globals.push(result);
            }
            other => panic!("the server did not expect {other:?}"),
        }
    }
}

struct Rig {
    pair: Pair,
    client: Channels,
    client_events: VecDeque<Event>,
    server_ch: Channels,
    server: Server,
}

impl Rig {
    /// A handshaken, authenticated pair whose server applies `policy` to a user who logged
    /// in with a key carrying `key_options`.
    fn new(policy: ServerPolicy, key_options: &str) -> Self {
        let pair = authenticated_pair(1);
        let key = if key_options.is_empty() {
            KeyOptions::default()
        } else {
            KeyOptions::parse(key_options).unwrap()
        };
        Self {
            pair,
            client: Channels::new(ChannelsConfig::default()).unwrap(),
            client_events: VecDeque::new(),
            server_ch: Channels::new(ChannelsConfig::default()).unwrap(),
            server: Server {
                grants: Grants::new(Arc::new(policy), key),
                refused: Vec::new(),
                verdicts: Vec::new(),
                globals: Vec::new(),
            },
        }
    }

    /// Moves bytes both ways, the server answering as it goes, until nothing is in flight.
    fn pump(&mut self) {
        for _ in 0..100 {
            self.pair.flush();
            let c2s = std::mem::take(self.pair.c2s_in_flight());
            let s2c = std::mem::take(self.pair.s2c_in_flight());
            if c2s.is_empty() && s2c.is_empty() {
                return;
            }
            let now = self.pair.now;
            let server = &mut self.server;
            feed(
                &mut self.pair.server,
                c2s,
                now,
                &mut self.server_ch,
                |t, ch, e| {
                    server.answer(t, ch, e);
                },
            )
            .unwrap();
            let events = &mut self.client_events;
            feed(
                &mut self.pair.client,
                s2c,
                now,
                &mut self.client,
                |_, _, e| events.push_back(e),
            )
            .unwrap();
        }
        panic!("the rig did not settle");
    }

    /// The client opens a channel of `kind`; returns its id and what it heard back.
    fn open(&mut self, kind: &ChannelType<'_>) -> (u32, Event) {
        let t = &mut self.pair.client.transport;
        let id = self.client.open(t, kind).unwrap();
        self.pump();
        (id, self.next_client_event())
    }

    /// The client sends `body` on `channel` wanting a reply; returns whether the server
    /// said yes, and the server's verdict.
    fn request(&mut self, channel: u32, body: &ChannelRequestBody<'_>) -> (bool, Verdict) {
        let t = &mut self.pair.client.transport;
        self.client.request(t, channel, body, true).unwrap();
        self.pump();
        let Event::RequestResult { channel: c, ok } = self.next_client_event() else {
            panic!("a request result");
        };
        assert_eq!(c, channel);
        let (_, verdict) = self.server.verdicts.pop().expect("a verdict");
        (ok, verdict)
    }

    fn next_client_event(&mut self) -> Event {
        self.client_events.pop_front().expect("a client event")
    }
}

/// Feeds `wire` to one side: connection messages go to `ch`, and each event it raises to
/// `on_event` with the side's transport.
fn feed(
    side: &mut Side,
    wire: Vec<u8>,
    now: Instant,
    ch: &mut Channels,
    mut on_event: impl FnMut(&mut Transport, &mut Channels, Event),
) -> Result<(), Error> {
    side.inbox.extend(wire);
    let mut start = 0;
    loop {
        let decoded = side.transport.decode(&mut side.inbox[start..], now)?;
        start += decoded.consumed;
        while side.transport.poll_event().is_some() {}
        if let Some(packet) = decoded.packet
            && packet.payload[0] >= 80
        {
            ch.handle(&mut side.transport, packet.payload, packet.seq, now)?;
            while let Some(event) = ch.poll_event() {
                on_event(&mut side.transport, ch, event);
            }
        }
        if decoded.consumed == 0 {
            break;
        }
    }
    side.inbox.drain(..start);
    Ok(())
}

fn direct_tcpip(host: &[u8], port: u32) -> ChannelType<'_> {
    ChannelType::DirectTcpip {
        host,
        port,
        originator_address: b"127.0.0.1",
        originator_port: 50000,
    }
}

/// `gateway serve --permit-open db.internal:5432 --permit-open [::1]:*`, and `--allow-exec`
/// when `exec`.
fn forwarding_server(exec: bool) -> ServerPolicy {
    ServerPolicy {
        direct_tcpip: true,
        destinations: vec![
            Destination::parse("db.internal:5432").unwrap(),
            Destination::parse("[::1]:*").unwrap(),
        ],
        session: exec,
        exec,
        ..ServerPolicy::default()
    }
}

fn open_failed(event: &Event) -> (OpenFailureReason, &str) {
    match event {
        Event::OpenFailed {
            reason,
            description,
            ..
        } => (*reason, description.as_str()),
        other => panic!("an open failure, got {other:?}"),
    }
}

#[test]
fn direct_tcpip_outside_the_allowed_destinations_is_administratively_prohibited() {
    let mut rig = Rig::new(forwarding_server(false), "");

    let (id, event) = rig.open(&direct_tcpip(b"db.internal", 5432));
    assert_eq!(event, Event::Opened { channel: id });
    let (id, event) = rig.open(&direct_tcpip(b"::1", 8080));
    assert_eq!(event, Event::Opened { channel: id });

    for (host, port) in [
        (&b"db.internal"[..], 22),
        (b"web.internal", 5432),
        (b"::2", 80),
    ] {
        let (_, event) = rig.open(&direct_tcpip(host, port));
        assert_eq!(
            open_failed(&event),
            (
                OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                "open failed"
            )
        );
        assert_eq!(rig.server.refused.pop().unwrap().1, Refusal::Server);
    }
    // Refused opens hold nothing on either side; the two accepted ones are still open.
    assert_eq!(rig.server_ch.len(), 2);
    assert_eq!(rig.client.len(), 2);
}

#[test]
fn the_keys_permitopen_narrows_the_servers_list() {
    let mut rig = Rig::new(forwarding_server(false), r#"permitopen="[::1]:6379""#);

    let (id, event) = rig.open(&direct_tcpip(b"::1", 6379));
    assert_eq!(event, Event::Opened { channel: id });
    // The server allows it, the key does not.
    let (_, event) = rig.open(&direct_tcpip(b"db.internal", 5432));
    assert_eq!(
        open_failed(&event).0,
        OpenFailureReason::ADMINISTRATIVELY_PROHIBITED
    );
    assert_eq!(rig.server.refused.pop().unwrap().1, Refusal::Key);
}

#[test]
fn sessions_and_unknown_channel_types_are_refused_by_a_forwarding_server() {
    let mut rig = Rig::new(forwarding_server(false), "");

    let (_, event) = rig.open(&ChannelType::Session);
    assert_eq!(
        open_failed(&event),
        (
            OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
            "open failed"
        )
    );
    let (_, event) = rig.open(&ChannelType::X11 {
        originator_address: b"127.0.0.1",
        originator_port: 6010,
    });
    assert_eq!(
        open_failed(&event).0,
        OpenFailureReason::ADMINISTRATIVELY_PROHIBITED
    );
    let (_, event) = rig.open(&ChannelType::Other {
        name: b"tun@openssh.com",
        data: &[0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff],
    });
    assert_eq!(
        open_failed(&event),
        (
            OpenFailureReason::UNKNOWN_CHANNEL_TYPE,
            "unknown channel type"
        )
    );
    assert!(rig.server_ch.is_empty());
}

#[test]
fn exec_is_refused_without_permission() {
    let policy = ServerPolicy {
        session: true,
        ..ServerPolicy::default()
    };
    let mut rig = Rig::new(policy, "");
    let (id, event) = rig.open(&ChannelType::Session);
    assert_eq!(event, Event::Opened { channel: id });

    let exec = ChannelRequestBody::Exec { command: b"id" };
    assert_eq!(
        rig.request(id, &exec),
        (false, Verdict::Refuse(Refusal::Server))
    );
    assert_eq!(
        rig.request(id, &ChannelRequestBody::Shell),
        (false, Verdict::Refuse(Refusal::Server))
    );
    let sftp = ChannelRequestBody::Subsystem { name: b"sftp" };
    assert_eq!(
        rig.request(id, &sftp),
        (false, Verdict::Refuse(Refusal::Server))
    );
}

#[test]
fn exec_runs_the_forced_command_when_allowed() {
    let mut rig = Rig::new(forwarding_server(true), r#"restrict,command="uptime""#);
    let (id, event) = rig.open(&ChannelType::Session);
    assert_eq!(event, Event::Opened { channel: id });

    let exec = ChannelRequestBody::Exec {
        command: b"cat /etc/shadow",
    };
    assert_eq!(
        rig.request(id, &exec),
        (
            true,
            Verdict::RunForced {
                command: "uptime".to_owned(),
                original_command: Some(b"cat /etc/shadow".to_vec()),
            }
        )
    );
    // restrict also took port forwarding away from this key.
    let (_, event) = rig.open(&direct_tcpip(b"db.internal", 5432));
    assert_eq!(
        open_failed(&event).0,
        OpenFailureReason::ADMINISTRATIVELY_PROHIBITED
    );
}

#[test]
fn pty_req_is_refused_under_no_pty() {
    let policy = ServerPolicy {
        session: true,
        exec: true,
        pty: true,
        ..ServerPolicy::default()
    };
    let pty = ChannelRequestBody::PtyReq(PtyRequest {
        term: b"xterm-256color",
        size: TerminalSize {
            cols: 80,
            rows: 24,
            width_px: 0,
            height_px: 0,
        },
        modes: TerminalModes::NONE,
    });

    let mut rig = Rig::new(policy.clone(), "no-pty");
    let (id, _) = rig.open(&ChannelType::Session);
    assert_eq!(
        rig.request(id, &pty),
        (false, Verdict::Refuse(Refusal::Key))
    );
    // The session goes on without a terminal.
    let exec = ChannelRequestBody::Exec { command: b"id" };
    assert_eq!(rig.request(id, &exec), (true, Verdict::Allow));

    let mut rig = Rig::new(policy, "");
    let (id, _) = rig.open(&ChannelType::Session);
    assert_eq!(rig.request(id, &pty), (true, Verdict::Allow));
}

#[test]
fn a_session_after_no_more_sessions_is_refused() {
    let mut rig = Rig::new(forwarding_server(true), "");
    let (first, event) = rig.open(&ChannelType::Session);
    assert_eq!(event, Event::Opened { channel: first });

    // OpenSSH's client sends it without wanting a reply.
    let t = &mut rig.pair.client.transport;
    let no_more = GlobalRequestBody::NoMoreSessions;
    rig.client.global_request(t, &no_more, false).unwrap();
    let (_, event) = rig.open(&ChannelType::Session);
    assert_eq!(rig.server.globals, [Ok(())]);
    assert_eq!(
        open_failed(&event).0,
        OpenFailureReason::ADMINISTRATIVELY_PROHIBITED
    );
    assert_eq!(rig.server.refused.pop().unwrap().1, Refusal::NoMoreSessions);

    // Forwards and the first session carry on.
    let (id, event) = rig.open(&direct_tcpip(b"db.internal", 5432));
    assert_eq!(event, Event::Opened { channel: id });
    let exec = ChannelRequestBody::Exec { command: b"id" };
    assert_eq!(rig.request(first, &exec), (true, Verdict::Allow));
}

#[test]
fn a_keepalive_gets_failure_and_the_connection_lives() {
    let mut rig = Rig::new(forwarding_server(false), "");
    let t = &mut rig.pair.client.transport;
    rig.client
        .global_request(t, &GlobalRequestBody::Keepalive, true)
        .unwrap();
    let forward = GlobalRequestBody::TcpipForward {
        address: b"",
        port: 8080,
    };
    rig.client.global_request(t, &forward, true).unwrap();
    rig.pump();

    let failure = Event::GlobalResult {
        ok: false,
        bound_port: None,
    };
    assert_eq!(rig.next_client_event(), failure);
    assert_eq!(rig.next_client_event(), failure);
    assert_eq!(
        rig.server.globals,
        [Err(Refusal::Keepalive), Err(Refusal::Server)]
    );
    let (id, event) = rig.open(&direct_tcpip(b"db.internal", 5432));
    assert_eq!(event, Event::Opened { channel: id });
}
