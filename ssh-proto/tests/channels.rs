//! The channel multiplexer (`connection::channels`) over a real handshake: both sides
//! running [`Channels`] for the ordinary flows, and a hand-written client sending raw
//! connection messages for what a hostile peer may try.

mod channels_rig;

use channels_rig::*;
use ssh_proto::Error;
use ssh_proto::connection::budget::WINDOW_FLOOR;
use ssh_proto::connection::channels::{ChannelsConfig, Event, OwnedChannelType, OwnedRequest};
use ssh_proto::connection::msg::{
    ChannelRequestBody, ChannelType, ExitSignal, OpenFailureReason, PtyRequest, TerminalModes,
    TerminalSize,
};
use ssh_proto::msg::MessageNumber;
use ssh_proto::wire::Writer;

// ---------------------------------------------------------------------------------------
// Ordinary flows, both sides running Channels

#[test]
fn session_exec_data_eof_exit_status_close_and_id_reuse() {
    let mut rig = Rig::both();
    let (c, s) = rig.session();

    // exec with a reply.
    let t = &mut rig.pair.client.transport;
    let exec = ChannelRequestBody::Exec {
        command: b"echo \xffhi",
    };
    rig.client.ch().request(t, c, &exec, true).unwrap();
    rig.server_reads().unwrap();
    assert_eq!(
        rig.server.next_event(),
        Event::Request {
            channel: s,
            request: OwnedRequest::Exec {
                command: b"echo \xffhi".to_vec()
            },
            want_reply: true,
        }
    );
    let t = &mut rig.pair.server.transport;
    rig.server.ch().reply(t, s, true).unwrap();
    // A second reply has no request to answer.
    assert!(matches!(
        rig.server.ch().reply(t, s, true),
        Err(Error::Misuse(_))
    ));
    rig.client_reads().unwrap();
    assert_eq!(
        rig.client.next_event(),
        Event::RequestResult {
            channel: c,
            ok: true
        }
    );

    // Data both ways, stdout and stderr apart, exact bytes.
    let t = &mut rig.pair.server.transport;
    assert_eq!(
        rig.server.ch().send_data(t, s, false, b"hello\n").unwrap(),
        6
    );
    assert_eq!(rig.server.ch().send_data(t, s, true, b"oops").unwrap(), 4);
    let t = &mut rig.pair.client.transport;
    assert_eq!(rig.client.ch().send_data(t, c, false, b"input").unwrap(), 5);
    rig.pump();
    assert_eq!(rig.client.stdout[&c], b"hello\n");
    assert_eq!(rig.client.stderr[&c], b"oops");
    assert_eq!(rig.server.stdout[&s], b"input");
    assert!(rig.server.stderr.is_empty());

    // EOF, then exit-status without a reply.
    let t = &mut rig.pair.server.transport;
    rig.server.ch().eof(t, s).unwrap();
    assert!(matches!(
        rig.server.ch().send_data(t, s, false, b"late"),
        Err(Error::Misuse(_))
    ));
    let status = ChannelRequestBody::ExitStatus { status: 3 };
    rig.server.ch().request(t, s, &status, false).unwrap();
    rig.client_reads().unwrap();
    assert_eq!(rig.client.next_event(), Event::Eof { channel: c });
    assert_eq!(
        rig.client.next_event(),
        Event::Request {
            channel: c,
            request: OwnedRequest::ExitStatus { status: 3 },
            want_reply: false,
        }
    );

    // The server closes; the client's Channels answers CLOSE by itself.
    let t = &mut rig.pair.server.transport;
    rig.server.ch().close(t, s).unwrap();
    assert_eq!(
        rig.server.ch().len(),
        1,
        "the id is held until the peer's CLOSE"
    );
    rig.pump();
    assert_eq!(rig.client.next_event(), Event::Closed { channel: c });
    assert_eq!(rig.server.next_event(), Event::Closed { channel: s });
    assert!(rig.client.events.is_empty() && rig.server.events.is_empty());
    assert_eq!(rig.client.ch().slot_count(), 0);
    assert_eq!(rig.server.ch().slot_count(), 0);

    // Both ids are reused.
    assert_eq!(rig.session(), (c, s));
}

#[test]
fn direct_tcpip_rejected_then_accepted() {
    let mut rig = Rig::both();
    let target = ChannelType::DirectTcpip {
        host: b"db.internal",
        port: 5432,
        originator_address: b"127.0.0.1",
        originator_port: 40000,
    };
    let t = &mut rig.pair.client.transport;
    let c = rig.client.ch().open(t, &target).unwrap();
    rig.server_reads().unwrap();
    let Event::OpenRequest { channel: s, kind } = rig.server.next_event() else {
        panic!("an open request");
    };
    assert_eq!(
        kind,
        OwnedChannelType::DirectTcpip {
            host: b"db.internal".to_vec(),
            port: 5432,
            originator: b"127.0.0.1".to_vec(),
            originator_port: 40000,
        }
    );
    let t = &mut rig.pair.server.transport;
    rig.server
        .ch()
        .reject(
            t,
            s,
            OpenFailureReason::CONNECT_FAILED,
            "connection refused",
        )
        .unwrap();
    assert_eq!(rig.server.ch().slot_count(), 0);
    rig.client_reads().unwrap();
    assert_eq!(
        rig.client.next_event(),
        Event::OpenFailed {
            channel: c,
            reason: OpenFailureReason::CONNECT_FAILED,
            description: "connection refused".into(),
        }
    );
    assert_eq!(rig.client.ch().slot_count(), 0);

    // The same request accepted carries data.
    let t = &mut rig.pair.client.transport;
    let c = rig.client.ch().open(t, &target).unwrap();
    rig.server_reads().unwrap();
    let Event::OpenRequest { channel: s, .. } = rig.server.next_event() else {
        panic!("an open request");
    };
    let t = &mut rig.pair.server.transport;
    rig.server.ch().accept(t, s).unwrap();
    rig.client_reads().unwrap();
    assert_eq!(rig.client.next_event(), Event::Opened { channel: c });
    let t = &mut rig.pair.client.transport;
    assert_eq!(
        rig.client.ch().send_data(t, c, false, b"SELECT 1").unwrap(),
        8
    );
    rig.pump();
    assert_eq!(rig.server.stdout[&s], b"SELECT 1");
}

/// The byte at `offset` of what channel `id` sends in direction `dir`.
fn pattern(id: u32, dir: u8, offset: usize) -> u8 {
    (offset as u32)
        .wrapping_mul(31)
        .wrapping_add(id.wrapping_mul(7))
        .wrapping_add(u32::from(dir) * 101) as u8
}

#[test]
fn a_thousand_channels_move_64_kib_each_way_round_robin() {
    const N: usize = 1000;
    const LEN: usize = 64 << 10;
    // A small window so that every channel needs several adjusts.
    let cfg = config(16 << 10, 16 << 10, 8 << 10);
    let mut rig = Rig::new(Some(cfg), cfg);

    let t = &mut rig.pair.client.transport;
    let ids: Vec<u32> = (0..N)
        .map(|_| rig.client.ch().open(t, &ChannelType::Session).unwrap())
        .collect();
    rig.server_reads().unwrap();
    let mut pairs = Vec::new();
    while let Some(Event::OpenRequest { channel, .. }) = rig.server.events.pop_front() {
        let t = &mut rig.pair.server.transport;
        rig.server.ch().accept(t, channel).unwrap();
        pairs.push(channel);
    }
    assert_eq!(pairs.len(), N);
    rig.client_reads().unwrap();
    assert_eq!(rig.client.events.len(), N);
    rig.client.events.clear();

    let up: Vec<Vec<u8>> = ids
        .iter()
        .map(|&id| (0..LEN).map(|i| pattern(id, 0, i)).collect())
        .collect();
    let down: Vec<Vec<u8>> = pairs
        .iter()
        .map(|&id| (0..LEN).map(|i| pattern(id, 1, i)).collect())
        .collect();
    let mut sent_up = vec![0; N];
    let mut sent_down = vec![0; N];

    let done = |up: &[usize], down: &[usize]| up.iter().chain(down).all(|&n| n == LEN);
    for _round in 0..10_000 {
        if done(&sent_up, &sent_down) {
            break;
        }
        // One send per channel per direction per round.
        for k in 0..N {
            let t = &mut rig.pair.client.transport;
            let n = rig
                .client
                .ch()
                .send_data(t, ids[k], false, &up[k][sent_up[k]..]);
            sent_up[k] += n.unwrap();
            let t = &mut rig.pair.server.transport;
            let n = rig
                .server
                .ch()
                .send_data(t, pairs[k], false, &down[k][sent_down[k]..]);
            sent_down[k] += n.unwrap();
        }
        rig.pump();
    }
    assert!(done(&sent_up, &sent_down));

    for k in 0..N {
        assert_eq!(rig.server.stdout[&pairs[k]], up[k], "channel {k} upstream");
        assert_eq!(
            rig.client.stdout[&ids[k]], down[k],
            "channel {k} downstream"
        );
    }
}

#[test]
fn a_stalled_reader_shuts_the_window_and_an_adjust_reopens_it() {
    const WINDOW: usize = 64 << 10;
    const PACKET: usize = 16 << 10;
    let cfg = config(WINDOW as u32, WINDOW as u32, PACKET as u32);
    let mut rig = Rig::new(Some(cfg), cfg);
    let (c, s) = rig.session();
    rig.server.consume = false;

    let data = vec![0x5a; 1 << 20];
    let mut sent = 0;
    for _ in 0..20 {
        let t = &mut rig.pair.client.transport;
        let n = rig
            .client
            .ch()
            .send_data(t, c, false, &data[sent..])
            .unwrap();
        assert!(n <= PACKET, "one packet per call");
        sent += n;
        rig.pump();
        let buffered = rig.server.ch().buffered(s);
        assert!(buffered <= WINDOW + PACKET, "{buffered}");
    }
    assert_eq!(sent, WINDOW, "exactly one window went out");
    assert_eq!(rig.client.ch().window(c), 0);
    let t = &mut rig.pair.client.transport;
    assert_eq!(rig.client.ch().send_data(t, c, false, &data).unwrap(), 0);
    assert_eq!(rig.server.ch().buffered(s), WINDOW);
    assert_eq!(rig.server.stdout[&s].len(), WINDOW);
    assert!(rig.client.events.is_empty());

    // The reader catches up: credit comes back and the writer hears about it.
    let now = rig.pair.now;
    let t = &mut rig.pair.server.transport;
    rig.server.ch().consumed(t, s, WINDOW, now).unwrap();
    assert_eq!(rig.server.ch().buffered(s), 0);
    rig.pump();
    assert_eq!(rig.client.next_event(), Event::Writable { channel: c });
    assert_eq!(rig.client.ch().window(c), PACKET);
    let t = &mut rig.pair.client.transport;
    assert_eq!(
        rig.client.ch().send_data(t, c, false, &data).unwrap(),
        PACKET
    );
}

/// `send_data_with` reads straight into the packet: a read gets no more room than the
/// window and the maximum packet allow, data and stderr arrive as `send_data`'s would, and
/// a read that gives nothing or fails sends nothing and takes nothing from the window.
#[test]
fn data_read_into_the_packet_arrives_and_an_empty_or_failed_read_sends_nothing() {
    const WINDOW: usize = 64 << 10;
    const PACKET: usize = 16 << 10;
    let cfg = config(WINDOW as u32, WINDOW as u32, PACKET as u32);
    let mut rig = Rig::new(Some(cfg), cfg);
    let (c, s) = rig.session();

    let t = &mut rig.pair.client.transport;
    let read = rig
        .client
        .ch()
        .send_data_with(t, c, false, usize::MAX, |buf| {
            assert_eq!(buf.len(), PACKET, "room is the maximum packet");
            buf[..5].copy_from_slice(b"hello");
            Ok::<_, &str>(5)
        })
        .unwrap();
    assert_eq!(read, Some(Ok(5)));
    let read = rig
        .client
        .ch()
        .send_data_with(t, c, true, 3, |buf| {
            assert_eq!(buf.len(), 3, "room is what the caller allows");
            buf.copy_from_slice(b"err");
            Ok::<_, &str>(3)
        })
        .unwrap();
    assert_eq!(read, Some(Ok(3)));
    assert_eq!(rig.client.ch().window(c), PACKET);

    let packets = t.stats().packets_sent;
    let ch = rig.client.ch();
    assert_eq!(
        ch.send_data_with(t, c, false, 100, |_| Ok::<_, &str>(0))
            .unwrap(),
        Some(Ok(0))
    );
    assert_eq!(
        ch.send_data_with(t, c, false, 100, |_| Err("broken"))
            .unwrap(),
        Some(Err("broken"))
    );
    assert_eq!(
        ch.send_data_with(t, c, false, 0, |_| -> Result<usize, &str> {
            panic!("no room")
        })
        .unwrap(),
        None
    );
    assert!(matches!(
        ch.send_data_with(t, c, false, 10, |_| Ok::<_, &str>(11)),
        Err(Error::Misuse(_))
    ));
    assert_eq!(t.stats().packets_sent, packets, "nothing was sent");
    rig.pump();
    assert_eq!(rig.server.stdout[&s], b"hello");
    assert_eq!(rig.server.stderr[&s], b"err");

    // The window runs out: the last read gets what is left, then none is made.
    let t = &mut rig.pair.client.transport;
    let ch = rig.client.ch();
    let mut sent = 8;
    while let Some(read) = ch
        .send_data_with(t, c, false, usize::MAX, |buf| Ok::<_, &str>(buf.len()))
        .unwrap()
    {
        sent += read.unwrap();
    }
    assert_eq!(sent, WINDOW);
    assert_eq!(ch.window(c), 0);
}

#[test]
fn global_requests_and_replies() {
    use ssh_proto::connection::channels::OwnedGlobalRequest;
    use ssh_proto::connection::msg::GlobalRequestBody;

    let mut rig = Rig::both();
    let t = &mut rig.pair.client.transport;
    let fwd = GlobalRequestBody::TcpipForward {
        address: b"localhost",
        port: 0,
    };
    rig.client.ch().global_request(t, &fwd, true).unwrap();
    rig.client
        .ch()
        .global_request(t, &GlobalRequestBody::Keepalive, true)
        .unwrap();
    rig.server_reads().unwrap();
    assert_eq!(
        rig.server.next_event(),
        Event::GlobalRequest {
            request: OwnedGlobalRequest::TcpipForward {
                address: b"localhost".to_vec(),
                port: 0
            },
            want_reply: true,
        }
    );
    let t = &mut rig.pair.server.transport;
    rig.server.ch().reply_global(t, true, Some(40123)).unwrap();
    rig.server.ch().reply_global(t, false, None).unwrap();
    rig.client_reads().unwrap();
    assert_eq!(
        rig.client.next_event(),
        Event::GlobalResult {
            ok: true,
            bound_port: Some(40123)
        }
    );
    assert_eq!(
        rig.client.next_event(),
        Event::GlobalResult {
            ok: false,
            bound_port: None
        }
    );
}

/// Every session request of RFC 4254 section 6 and OpenSSH's `eow@openssh.com` crosses
/// the wire and reaches the other side's application field by field, with its
/// `want_reply` as sent.
#[test]
fn every_session_request_reaches_the_peer_field_by_field() {
    let mut rig = Rig::both();
    let (c, s) = rig.session();
    let modes = [1u8, 0, 0, 0, 3, 53, 0, 0, 0, 1, 0];
    let size = TerminalSize {
        cols: 132,
        rows: 43,
        width_px: 1056,
        height_px: 688,
    };

    // From the client, as ssh sends them before and during a session.
    let client_requests: Vec<(ChannelRequestBody<'_>, bool, OwnedRequest)> = vec![
        (
            ChannelRequestBody::PtyReq(PtyRequest {
                term: b"xterm-256color",
                size,
                modes: TerminalModes::parse(&modes).unwrap(),
            }),
            true,
            OwnedRequest::PtyReq {
                term: b"xterm-256color".to_vec(),
                size,
                modes: modes.to_vec(),
            },
        ),
        (
            ChannelRequestBody::Env {
                name: b"LANG",
                value: b"C.UTF-8",
            },
            false,
            OwnedRequest::Env {
                name: b"LANG".to_vec(),
                value: b"C.UTF-8".to_vec(),
            },
        ),
        (ChannelRequestBody::Shell, true, OwnedRequest::Shell),
        (
            ChannelRequestBody::Exec { command: b"uptime" },
            true,
            OwnedRequest::Exec {
                command: b"uptime".to_vec(),
            },
        ),
        (
            ChannelRequestBody::Subsystem { name: b"sftp" },
            true,
            OwnedRequest::Subsystem {
                name: b"sftp".to_vec(),
            },
        ),
        (
            ChannelRequestBody::WindowChange(TerminalSize { cols: 80, ..size }),
            false,
            OwnedRequest::WindowChange(TerminalSize { cols: 80, ..size }),
        ),
        (
            ChannelRequestBody::Signal { name: b"INT" },
            false,
            OwnedRequest::Signal {
                name: b"INT".to_vec(),
            },
        ),
        (
            ChannelRequestBody::XonXoff {
                client_can_do: true,
            },
            false,
            OwnedRequest::XonXoff {
                client_can_do: true,
            },
        ),
        (ChannelRequestBody::Eow, false, OwnedRequest::Eow),
    ];
    for (body, want_reply, expected) in &client_requests {
        let t = &mut rig.pair.client.transport;
        rig.client.ch().request(t, c, body, *want_reply).unwrap();
        rig.server_reads().unwrap();
        assert_eq!(
            rig.server.next_event(),
            Event::Request {
                channel: s,
                request: expected.clone(),
                want_reply: *want_reply,
            },
            "{:?}",
            String::from_utf8_lossy(body.name())
        );
        if *want_reply {
            let t = &mut rig.pair.server.transport;
            rig.server.ch().reply(t, s, false).unwrap();
            rig.client_reads().unwrap();
            assert_eq!(
                rig.client.next_event(),
                Event::RequestResult {
                    channel: c,
                    ok: false
                }
            );
        }
    }

    // From the server, as a session ends: its status, then the signal that ended it.
    let t = &mut rig.pair.server.transport;
    let status = ChannelRequestBody::ExitStatus { status: 130 };
    rig.server.ch().request(t, s, &status, false).unwrap();
    rig.client_reads().unwrap();
    assert_eq!(
        rig.client.next_event(),
        Event::Request {
            channel: c,
            request: OwnedRequest::ExitStatus { status: 130 },
            want_reply: false,
        }
    );
    let t = &mut rig.pair.server.transport;
    let exit = ChannelRequestBody::ExitSignal(ExitSignal {
        signal: b"SEGV",
        core_dumped: true,
        message: b"Segmentation fault",
        language: b"",
    });
    rig.server.ch().request(t, s, &exit, false).unwrap();
    rig.client_reads().unwrap();
    assert_eq!(
        rig.client.next_event(),
        Event::Request {
            channel: c,
            request: OwnedRequest::ExitSignal {
                signal: b"SEGV".to_vec(),
                core_dumped: true,
                message: b"Segmentation fault".to_vec(),
            },
            want_reply: false,
        }
    );
}

// ---------------------------------------------------------------------------------------
// Hostile clients: a hand-written client against the server's Channels

fn hostile() -> Rig {
    Rig::new(None, ChannelsConfig::default())
}

#[test]
fn initial_window_of_zero_waits_for_an_adjust() {
    let mut rig = hostile();
    let s = rig.raw_session(9, 0, 32768);
    assert_eq!(rig.server.ch().window(s), 0);
    let before = rig.pair.server.transport.pending_output();
    let t = &mut rig.pair.server.transport;
    for _ in 0..100 {
        assert_eq!(rig.server.ch().send_data(t, s, false, b"x").unwrap(), 0);
    }
    assert_eq!(
        rig.pair.server.transport.pending_output(),
        before,
        "nothing is sent"
    );

    rig.raw(&adjust_msg(s, 3)).unwrap();
    assert_eq!(rig.server.next_event(), Event::Writable { channel: s });
    let t = &mut rig.pair.server.transport;
    assert_eq!(
        rig.server.ch().send_data(t, s, false, b"abcdef").unwrap(),
        3
    );
    assert_eq!(rig.server.ch().send_data(t, s, false, b"def").unwrap(), 0);
    rig.client_reads().unwrap();
    let got = rig.client.raw.pop().unwrap();
    assert_eq!(got, data_msg(9, b"abc"));
}

#[test]
fn window_adjust_overflow_disconnects() {
    let mut rig = hostile();
    let s = rig.raw_session(0, 10, 32768);
    let r = rig.raw(&adjust_msg(s, u32::MAX - 9));
    rig.expect_disconnect(r);
}

#[test]
fn window_adjust_of_zero_does_nothing() {
    let mut rig = hostile();
    let s = rig.raw_session(0, 10, 32768);
    rig.raw(&adjust_msg(s, 0)).unwrap();
    assert_eq!(rig.server.ch().window(s), 10);
    assert!(rig.server.events.is_empty());
}

#[test]
fn window_adjust_for_a_closing_channel_is_ignored() {
    let mut rig = hostile();
    let s = rig.raw_session(0, 10, 32768);
    let t = &mut rig.pair.server.transport;
    rig.server.ch().close(t, s).unwrap();
    rig.raw(&adjust_msg(s, u32::MAX)).unwrap();
    assert!(rig.server.events.is_empty());
    assert!(!rig.pair.server.transport.is_closed());
}

#[test]
fn window_adjust_for_an_unknown_id_disconnects() {
    let mut rig = hostile();
    let r = rig.raw(&adjust_msg(7, 1));
    rig.expect_disconnect(r);
}

#[test]
fn data_beyond_the_window_disconnects() {
    let mut rig = Rig::new(None, config(1024, 1024, 1024));
    let s = rig.raw_session(0, 1 << 20, 32768);
    rig.server.consume = false;
    rig.raw(&data_msg(s, &[1; 1024])).unwrap();
    assert_eq!(rig.server.ch().buffered(s), 1024);
    let r = rig.raw(&data_msg(s, &[2]));
    rig.expect_disconnect(r);
}

#[test]
fn data_over_the_maximum_packet_disconnects() {
    let mut rig = Rig::new(None, config(1 << 20, 1 << 20, 1024));
    let s = rig.raw_session(0, 1 << 20, 32768);
    rig.raw(&data_msg(s, &[1; 1024])).unwrap();
    let r = rig.raw(&data_msg(s, &[1; 1025]));
    rig.expect_disconnect(r);
}

#[test]
fn open_with_a_bad_maximum_packet_is_refused() {
    let mut rig = hostile();
    for (sender, max) in [(4, 0), (5, (1 << 31) + 1), (6, u32::MAX)] {
        rig.raw(&open_msg(sender, 1 << 20, max)).unwrap();
    }
    assert!(rig.server.events.is_empty());
    assert_eq!(rig.server.ch().slot_count(), 0);
    rig.client_reads().unwrap();
    let prohibited = OpenFailureReason::ADMINISTRATIVELY_PROHIBITED;
    assert_eq!(
        open_failures(&rig.client.raw),
        vec![(4, prohibited), (5, prohibited), (6, prohibited)]
    );
    // 2^31 itself is allowed.
    rig.raw_session(7, 1, 1 << 31);
}

#[test]
fn opens_past_the_cap_get_resource_shortage_and_memory_returns() {
    const CAP: u32 = 4;
    const FLOOD: u32 = 100_000;
    let mut rig = Rig::new(
        None,
        ChannelsConfig {
            max_channels: CAP,
            ..ChannelsConfig::default()
        },
    );
    for sender in 0..CAP {
        rig.raw(&open_msg(sender, 1 << 20, 32768)).unwrap();
    }
    assert_eq!(rig.server.events.len(), CAP as usize);

    let one = open_msg(1000, 1 << 20, 32768);
    let mut refused = 0;
    for _ in 0..FLOOD / 1000 {
        let t = &mut rig.pair.client.transport;
        for _ in 0..1000 {
            t.send(|p| p.extend_from_slice(&one)).unwrap();
        }
        rig.server_reads().unwrap();
        rig.client_reads().unwrap();
        refused += open_failures(&rig.client.raw)
            .iter()
            .filter(|f| **f == (1000, OpenFailureReason::RESOURCE_SHORTAGE))
            .count();
        rig.client.raw.clear();
    }
    assert_eq!(refused, FLOOD as usize);
    assert_eq!(
        rig.server.events.len(),
        CAP as usize,
        "no event for a refused open"
    );
    assert_eq!(rig.server.ch().slot_count(), CAP as usize);

    // Rejecting the pending opens frees everything.
    while let Some(Event::OpenRequest { channel, .. }) = rig.server.events.pop_front() {
        let t = &mut rig.pair.server.transport;
        let reason = OpenFailureReason::ADMINISTRATIVELY_PROHIBITED;
        rig.server.ch().reject(t, channel, reason, "no").unwrap();
    }
    assert_eq!(rig.server.ch().slot_count(), 0);
    assert!(rig.server.ch().is_empty());
    assert_eq!(
        rig.server.ch().budget().used(),
        0,
        "every window's share is back"
    );
}

/// The initial windows of all channels come out of one per-connection budget: once it is
/// spent a channel starts at the floor, still carries data, and a finished channel's
/// share goes to the next one.
#[test]
fn initial_windows_share_the_connection_budget() {
    const FULL: u32 = 2 << 20;
    let share = FULL - WINDOW_FLOOR;
    let budget = 2 * u64::from(share) + u64::from(share / 2);
    let mut rig = Rig::new(
        None,
        ChannelsConfig {
            budget,
            ..ChannelsConfig::default()
        },
    );
    let opened: Vec<(u32, u32)> = (0..5)
        .map(|sender| rig.raw_session_window(sender, 1 << 20, 32768))
        .collect();
    let windows: Vec<u32> = opened.iter().map(|&(_, w)| w).collect();
    assert_eq!(
        windows,
        [
            FULL,
            FULL,
            WINDOW_FLOOR + share / 2,
            WINDOW_FLOOR,
            WINDOW_FLOOR
        ]
    );
    let ch = rig.server.ch();
    assert_eq!(ch.budget().used(), budget, "all of it is granted");
    let total: u64 = opened
        .iter()
        .map(|&(s, _)| u64::from(ch.receive_window(s)))
        .sum();
    assert_eq!(total, budget + 5 * u64::from(WINDOW_FLOOR));

    // A channel at its floor takes a whole floor of data, and not a byte more.
    let (last, _) = opened[4];
    rig.server.consume = false;
    rig.raw(&data_msg(last, &[7; WINDOW_FLOOR as usize]))
        .unwrap();
    assert_eq!(rig.server.ch().buffered(last), WINDOW_FLOOR as usize);

    // The first channel closes; its share goes back, and the next channel gets it all.
    let (first, _) = opened[0];
    rig.raw(&recipient_msg(MessageNumber::CHANNEL_CLOSE, first))
        .unwrap();
    assert_eq!(rig.server.next_event(), Event::Closed { channel: first });
    assert_eq!(rig.server.ch().budget().free(), u64::from(share));
    let (_, window) = rig.raw_session_window(9, 1 << 20, 32768);
    assert_eq!(window, FULL);
    assert_eq!(rig.server.ch().budget().free(), 0);

    let r = rig.raw(&data_msg(last, &[8]));
    rig.expect_disconnect(r);
}

#[test]
fn confirmation_for_a_channel_not_opening_disconnects() {
    let mut rig = hostile();
    let s = rig.raw_session(0, 10, 32768);
    let mut p = recipient_msg(MessageNumber::CHANNEL_OPEN_CONFIRMATION, s);
    p.put_u32(0);
    p.put_u32(1 << 20);
    p.put_u32(32768);
    let r = rig.raw(&p);
    rig.expect_disconnect(r);
}

#[test]
fn confirmation_for_an_unknown_id_disconnects() {
    let mut rig = hostile();
    let mut p = recipient_msg(MessageNumber::CHANNEL_OPEN_CONFIRMATION, 3);
    p.put_u32(0);
    p.put_u32(1 << 20);
    p.put_u32(32768);
    let r = rig.raw(&p);
    rig.expect_disconnect(r);
}

#[test]
fn close_twice_disconnects() {
    let mut rig = hostile();
    let s = rig.raw_session(5, 10, 32768);
    rig.raw(&recipient_msg(MessageNumber::CHANNEL_CLOSE, s))
        .unwrap();
    assert_eq!(rig.server.next_event(), Event::Closed { channel: s });
    rig.client_reads().unwrap();
    assert_eq!(
        rig.client.raw.pop().unwrap(),
        recipient_msg(MessageNumber::CHANNEL_CLOSE, 5),
        "the server answers CLOSE"
    );
    let r = rig.raw(&recipient_msg(MessageNumber::CHANNEL_CLOSE, s));
    rig.expect_disconnect(r);
}

#[test]
fn data_crossing_our_close_is_dropped_and_after_the_peers_close_disconnects() {
    let mut rig = hostile();
    let s = rig.raw_session(0, 10, 32768);
    let t = &mut rig.pair.server.transport;
    rig.server.ch().close(t, s).unwrap();
    rig.raw(&data_msg(s, b"in flight")).unwrap();
    assert!(!rig.server.stdout.contains_key(&s));
    assert_eq!(rig.server.ch().buffered(s), 0);

    rig.raw(&recipient_msg(MessageNumber::CHANNEL_CLOSE, s))
        .unwrap();
    assert_eq!(rig.server.next_event(), Event::Closed { channel: s });
    let r = rig.raw(&data_msg(s, b"late"));
    rig.expect_disconnect(r);
}

#[test]
fn unsolicited_replies_are_discarded() {
    let mut rig = hostile();
    let s = rig.raw_session(0, 10, 32768);
    let t = &mut rig.pair.client.transport;
    for i in 0..10_000u32 {
        let p = match i % 4 {
            0 => recipient_msg(MessageNumber::CHANNEL_SUCCESS, s),
            1 => recipient_msg(MessageNumber::CHANNEL_FAILURE, s),
            2 => vec![MessageNumber::REQUEST_SUCCESS.0],
            _ => vec![MessageNumber::REQUEST_FAILURE.0],
        };
        t.send(|out| out.extend_from_slice(&p)).unwrap();
    }
    rig.server_reads().unwrap();
    assert!(rig.server.events.is_empty());
    assert!(rig.server.ch().poll_event().is_none());
    assert!(!rig.pair.server.transport.is_closed());
}

#[test]
fn too_many_unanswered_requests_disconnect() {
    let mut rig = hostile();
    let s = rig.raw_session(0, 10, 32768);
    let mut p = recipient_msg(MessageNumber::CHANNEL_REQUEST, s);
    p.put_string(b"shell");
    p.put_bool(true);
    for _ in 0..64 {
        rig.raw(&p).unwrap();
    }
    assert_eq!(rig.server.events.len(), 64);
    let r = rig.raw(&p);
    rig.expect_disconnect(r);
}

#[test]
fn truncated_and_trailing_bytes_are_parse_errors() {
    let mut truncated = recipient_msg(MessageNumber::CHANNEL_DATA, 0);
    truncated.put_u32(100);
    truncated.extend_from_slice(b"short");
    let mut trailing = adjust_msg(0, 1);
    trailing.push(0);
    let cut_open = open_msg(0, 1, 32768)[..12].to_vec();
    for bad in [truncated, trailing, cut_open] {
        let mut rig = hostile();
        rig.raw_session(0, 10, 32768);
        let r = rig.raw(&bad);
        rig.expect_disconnect(r);
    }
}

#[test]
fn unknown_connection_numbers_get_unimplemented() {
    let mut rig = hostile();
    let before = rig.pair.server.transport.stats().packets_sent;
    rig.raw(&[85, 1, 2, 3]).unwrap();
    assert!(!rig.pair.server.transport.is_closed());
    assert!(rig.server.events.is_empty());
    // The transport answers with UNIMPLEMENTED and takes the client's copy for itself.
    assert_eq!(rig.pair.server.transport.stats().packets_sent, before + 1);
    rig.client_reads().unwrap();
    assert!(rig.client.raw.is_empty());
}

// ---------------------------------------------------------------------------------------
// Global requests whose body does not parse (RFC 4254 section 4, OpenSSH's `PROTOCOL`
// section 2.5): refused, or ignored when no reply is wanted; never fatal.

fn global_msg(name: &[u8], want_reply: bool, body: &[u8]) -> Vec<u8> {
    let mut p = vec![MessageNumber::GLOBAL_REQUEST.0];
    p.put_string(name);
    p.put_bool(want_reply);
    p.extend_from_slice(body);
    p
}

const HOSTKEYS: &[u8] = b"hostkeys-00@openssh.com";
const KEEPALIVE: &[u8] = b"keepalive@openssh.com";

/// Host key lists OpenSSH's client would fail to read: a length past the end, a length
/// cut short, a whole key followed by a stray byte.
fn bad_host_key_lists() -> Vec<Vec<u8>> {
    let mut past_the_end = Vec::new();
    past_the_end.put_u32(1000);
    past_the_end.extend_from_slice(b"short");
    let mut trailing = Vec::new();
    trailing.put_string(b"ssh-ed25519 key");
    trailing.push(0);
    vec![past_the_end, vec![0, 0], trailing]
}

#[test]
fn a_host_key_list_that_does_not_parse_is_ignored_by_the_client() {
    use ssh_proto::connection::channels::OwnedGlobalRequest;

    let mut rig = Rig::raw_server(ChannelsConfig::default());
    for list in bad_host_key_lists() {
        rig.raw_to_client(&global_msg(HOSTKEYS, false, &list))
            .unwrap();
    }
    assert!(rig.client.events.is_empty(), "{:?}", rig.client.events);
    assert!(!rig.pair.client.transport.is_closed());
    rig.server_reads().unwrap();
    assert!(rig.server.raw.is_empty(), "no reply was asked for");

    // Asked with a reply wanted, which the protocol never does, it is refused.
    rig.raw_to_client(&global_msg(HOSTKEYS, true, &bad_host_key_lists()[0]))
        .unwrap();
    rig.server_reads().unwrap();
    assert_eq!(rig.server.raw, [vec![MessageNumber::REQUEST_FAILURE.0]]);

    // A list that parses still reaches the application.
    let mut good = Vec::new();
    good.put_string(b"key");
    rig.raw_to_client(&global_msg(HOSTKEYS, false, &good))
        .unwrap();
    assert_eq!(
        rig.client.next_event(),
        Event::GlobalRequest {
            request: OwnedGlobalRequest::HostKeys(vec![b"key".to_vec()]),
            want_reply: false,
        }
    );
}

#[test]
fn a_keepalive_with_trailing_bytes_is_refused_not_fatal() {
    use ssh_proto::connection::channels::OwnedGlobalRequest;

    let mut rig = hostile();
    rig.raw(&global_msg(KEEPALIVE, true, b"\0\0\0\x01"))
        .unwrap();
    assert!(rig.server.events.is_empty());
    rig.client_reads().unwrap();
    assert_eq!(rig.client.raw, [vec![MessageNumber::REQUEST_FAILURE.0]]);
    assert!(!rig.pair.server.transport.is_closed());

    // Without a reply wanted it is dropped; a well-formed one goes to the application.
    rig.raw(&global_msg(KEEPALIVE, false, b"x")).unwrap();
    rig.raw(&global_msg(KEEPALIVE, true, b"")).unwrap();
    assert_eq!(
        rig.server.next_event(),
        Event::GlobalRequest {
            request: OwnedGlobalRequest::Keepalive,
            want_reply: true,
        }
    );
    assert!(rig.server.events.is_empty());
}

/// Replies go out in the order of the requests (RFC 4254 section 4), so a refusal this
/// layer makes itself waits behind the requests the application has not answered yet.
#[test]
fn a_refusal_waits_its_turn_behind_requests_the_application_answers() {
    let mut rig = hostile();
    let mut forward = Vec::new();
    forward.put_string(b"localhost");
    forward.put_u32(0);
    rig.raw(&global_msg(b"tcpip-forward", true, &forward))
        .unwrap();
    rig.raw(&global_msg(KEEPALIVE, true, b"trailing")).unwrap();
    rig.raw(&global_msg(b"tcpip-forward", true, &forward[..3]))
        .unwrap();
    rig.raw(&global_msg(b"tcpip-forward", true, &forward))
        .unwrap();
    assert_eq!(rig.server.events.len(), 2);
    rig.client_reads().unwrap();
    assert!(
        rig.client.raw.is_empty(),
        "nothing may overtake the first reply"
    );

    let t = &mut rig.pair.server.transport;
    rig.server.ch().reply_global(t, true, Some(40000)).unwrap();
    rig.client_reads().unwrap();
    let mut bound = vec![MessageNumber::REQUEST_SUCCESS.0];
    bound.put_u32(40000);
    let failure = vec![MessageNumber::REQUEST_FAILURE.0];
    assert_eq!(rig.client.raw, [bound, failure.clone(), failure.clone()]);

    let t = &mut rig.pair.server.transport;
    rig.server.ch().reply_global(t, false, None).unwrap();
    assert!(rig.server.ch().reply_global(t, false, None).is_err());
    rig.raw(&global_msg(KEEPALIVE, true, b"trailing")).unwrap();
    rig.client_reads().unwrap();
    assert_eq!(rig.client.raw[3..], [failure.clone(), failure]);
}

#[test]
fn refusals_count_against_the_cap_on_unanswered_requests() {
    let mut rig = hostile();
    rig.raw(&global_msg(KEEPALIVE, true, b"")).unwrap();
    for _ in 0..63 {
        rig.raw(&global_msg(KEEPALIVE, true, b"x")).unwrap();
    }
    let r = rig.raw(&global_msg(KEEPALIVE, true, b"x"));
    rig.expect_disconnect(r);
}

#[test]
fn a_global_request_whose_header_does_not_parse_disconnects() {
    let whole = global_msg(KEEPALIVE, true, b"");
    let mut name_past_the_end = whole.clone();
    name_past_the_end[1..5].copy_from_slice(&[0, 0, 1, 0]);
    for bad in [name_past_the_end, whole[..whole.len() - 1].to_vec()] {
        let mut rig = hostile();
        let r = rig.raw(&bad);
        rig.expect_disconnect(r);
    }
}

// ---------------------------------------------------------------------------------------
// Hostile servers: a hand-written server against the client's Channels

fn hostile_server() -> Rig {
    Rig::raw_server(ChannelsConfig::default())
}

/// A confirmation that opens a channel the client confirms as usable.
fn confirmed(rig: &mut Rig, sender: u32, window: u32) -> u32 {
    let c = rig.raw_confirmed(sender, window, 32768);
    assert_eq!(rig.client.next_event(), Event::Opened { channel: c });
    c
}

#[test]
fn a_confirmation_with_a_bad_maximum_packet_closes_the_channel() {
    for max_packet in [0, (1 << 31) + 1, u32::MAX] {
        let mut rig = hostile_server();
        let c = rig.raw_confirmed(70, 1 << 20, max_packet);
        // The application hears at once that the open failed, and nothing else.
        let Event::OpenFailed {
            channel,
            reason,
            description,
        } = rig.client.next_event()
        else {
            panic!("an open failure");
        };
        assert_eq!(channel, c);
        assert_eq!(reason, OpenFailureReason::ADMINISTRATIVELY_PROHIBITED);
        assert!(
            description.contains(&max_packet.to_string()),
            "{description}"
        );
        assert!(
            rig.client.events.is_empty(),
            "not opened: {:?}",
            rig.client.events
        );
        assert!(!rig.pair.client.transport.is_closed(), "not fatal");
        rig.server_reads().unwrap();
        assert_eq!(
            rig.server.raw,
            [recipient_msg(MessageNumber::CHANNEL_CLOSE, 70)],
            "closed at once"
        );
        let t = &mut rig.pair.client.transport;
        assert_eq!(rig.client.ch().window(c), 0);
        assert!(matches!(
            rig.client.ch().send_data(t, c, false, b"x"),
            Err(Error::Misuse(_))
        ));

        // What the server sent before it saw our CLOSE is dropped; its CLOSE frees the
        // id, and is not reported a second time.
        assert!(
            !rig.client.ch().is_empty(),
            "the id is held until the CLOSE"
        );
        rig.raw_to_client(&data_msg(c, b"crossing")).unwrap();
        rig.raw_to_client(&adjust_msg(c, 100)).unwrap();
        assert!(rig.client.events.is_empty());
        rig.raw_to_client(&recipient_msg(MessageNumber::CHANNEL_CLOSE, c))
            .unwrap();
        assert!(rig.client.events.is_empty(), "no Closed as well");
        assert!(rig.client.ch().is_empty());
        assert_eq!(rig.client.ch().budget().used(), 0);
        rig.server_reads().unwrap();
        assert_eq!(rig.server.raw.len(), 1, "nothing more went out");
    }

    // 2^31 itself is allowed.
    let mut rig = hostile_server();
    let c = rig.raw_confirmed(70, 1 << 20, 1 << 31);
    assert_eq!(rig.client.next_event(), Event::Opened { channel: c });
}

#[test]
fn a_window_adjust_overflow_from_the_server_disconnects() {
    let mut rig = hostile_server();
    let c = confirmed(&mut rig, 3, 10);
    rig.raw_to_client(&adjust_msg(c, u32::MAX - 10)).unwrap();
    let r = rig.raw_to_client(&adjust_msg(c, 1));
    rig.expect_client_disconnect(r);
}

#[test]
fn a_window_adjust_for_an_unknown_id_from_the_server_disconnects() {
    let mut rig = hostile_server();
    confirmed(&mut rig, 3, 10);
    let r = rig.raw_to_client(&adjust_msg(9, 1));
    rig.expect_client_disconnect(r);
}

#[test]
fn data_beyond_the_window_from_the_server_disconnects() {
    let mut rig = Rig::raw_server(config(1024, 1024, 1024));
    let c = confirmed(&mut rig, 3, 1 << 20);
    rig.client.consume = false;
    rig.raw_to_client(&data_msg(c, &[1; 1000])).unwrap();
    rig.raw_to_client(&data_msg(c, &[2; 24])).unwrap();
    assert_eq!(rig.client.ch().buffered(c), 1024);
    let r = rig.raw_to_client(&data_msg(c, &[3]));
    rig.expect_client_disconnect(r);
    assert_eq!(rig.client.stdout[&c].len(), 1024, "nothing past the window");
}

#[test]
fn data_over_the_maximum_packet_from_the_server_disconnects() {
    let mut rig = Rig::raw_server(config(1 << 20, 1 << 20, 1024));
    let c = confirmed(&mut rig, 3, 1 << 20);
    rig.raw_to_client(&data_msg(c, &[1; 1024])).unwrap();
    let r = rig.raw_to_client(&data_msg(c, &[1; 1025]));
    rig.expect_client_disconnect(r);
}

#[test]
fn a_confirmation_for_an_unknown_id_from_the_server_disconnects() {
    let mut rig = hostile_server();
    confirmed(&mut rig, 3, 10);
    let r = rig.raw_to_client(&confirm_msg(5, 4, 10, 32768));
    rig.expect_client_disconnect(r);
}

#[test]
fn a_second_confirmation_from_the_server_disconnects() {
    let mut rig = hostile_server();
    let c = confirmed(&mut rig, 3, 10);
    let r = rig.raw_to_client(&confirm_msg(c, 3, 10, 32768));
    rig.expect_client_disconnect(r);
}

#[test]
fn an_open_failure_for_an_unknown_id_from_the_server_disconnects() {
    let mut rig = hostile_server();
    let mut p = recipient_msg(MessageNumber::CHANNEL_OPEN_FAILURE, 0);
    p.put_u32(OpenFailureReason::CONNECT_FAILED.0);
    p.put_string(b"no");
    p.put_string(b"");
    let r = rig.raw_to_client(&p);
    rig.expect_client_disconnect(r);
}

#[test]
fn close_twice_from_the_server_disconnects() {
    let mut rig = hostile_server();
    let c = confirmed(&mut rig, 3, 10);
    rig.raw_to_client(&recipient_msg(MessageNumber::CHANNEL_CLOSE, c))
        .unwrap();
    assert_eq!(rig.client.next_event(), Event::Closed { channel: c });
    rig.server_reads().unwrap();
    assert_eq!(
        rig.server.raw.pop().unwrap(),
        recipient_msg(MessageNumber::CHANNEL_CLOSE, 3),
        "the client answers CLOSE"
    );
    let r = rig.raw_to_client(&recipient_msg(MessageNumber::CHANNEL_CLOSE, c));
    rig.expect_client_disconnect(r);
}

#[test]
fn data_after_the_servers_close_disconnects() {
    let mut rig = hostile_server();
    let c = confirmed(&mut rig, 3, 10);
    rig.raw_to_client(&recipient_msg(MessageNumber::CHANNEL_CLOSE, c))
        .unwrap();
    assert_eq!(rig.client.next_event(), Event::Closed { channel: c });
    let r = rig.raw_to_client(&data_msg(c, b"late"));
    rig.expect_client_disconnect(r);
}

#[test]
fn unsolicited_replies_from_the_server_are_discarded() {
    let mut rig = hostile_server();
    let c = confirmed(&mut rig, 3, 10);
    let t = &mut rig.pair.server.transport;
    for i in 0..10_000u32 {
        let p = match i % 4 {
            0 => recipient_msg(MessageNumber::CHANNEL_SUCCESS, c),
            1 => recipient_msg(MessageNumber::CHANNEL_FAILURE, c),
            2 => vec![MessageNumber::REQUEST_SUCCESS.0],
            _ => vec![MessageNumber::REQUEST_FAILURE.0],
        };
        t.send(|out| out.extend_from_slice(&p)).unwrap();
    }
    rig.client_reads().unwrap();
    assert!(rig.client.events.is_empty());
    assert!(!rig.pair.client.transport.is_closed());
}

#[test]
fn a_server_open_with_a_bad_maximum_packet_is_refused_by_the_client() {
    let mut rig = hostile_server();
    for (sender, max) in [(4, 0), (5, (1 << 31) + 1)] {
        rig.raw_to_client(&open_msg(sender, 1 << 20, max)).unwrap();
    }
    assert!(rig.client.events.is_empty());
    assert_eq!(rig.client.ch().slot_count(), 0);
    rig.server_reads().unwrap();
    let prohibited = OpenFailureReason::ADMINISTRATIVELY_PROHIBITED;
    assert_eq!(
        open_failures(&rig.server.raw),
        [(4, prohibited), (5, prohibited)]
    );
}
