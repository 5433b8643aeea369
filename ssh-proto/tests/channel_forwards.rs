//! Forwarding over the wire: a client and a server both running [`Channels`] over a real
//! handshake, for the channel types and global requests that `session` and `direct-tcpip`
//! do not cover. Remote TCP forwarding (`tcpip-forward`, the server opening
//! `forwarded-tcpip` to the client, `cancel-tcpip-forward`; RFC 4254 section 7.1),
//! Unix-socket forwarding both ways (`direct-streamlocal@openssh.com`,
//! `streamlocal-forward@openssh.com` and `forwarded-streamlocal@openssh.com`; OpenSSH's
//! `PROTOCOL` section 2.4), and host key announcements reaching the client
//! (`hostkeys-00@openssh.com`, section 2.5). Each checks what the other side's application
//! sees, field by field, and that data moves both ways and the channel closes both ways.

#[expect(
    dead_code,
    reason = "the rig is shared by the Channels test files, and each uses a part of it"
)]
mod channels_rig;

use channels_rig::Rig;
use ssh_proto::connection::channels::{Event, OwnedChannelType, OwnedGlobalRequest};
use ssh_proto::connection::msg::{BlobList, ChannelType, GlobalRequestBody, OpenFailureReason};
use ssh_proto::crypto::default_provider;
use ssh_proto::hostkey::HostKeyPair;

const CLIENT: bool = true;
const SERVER: bool = false;

/// `from` sends a global request wanting a reply; the other side sees `expected` and
/// answers `ok` with `port`; `from` sees the result. Returns the bound port it reports.
fn global_round_trip(
    rig: &mut Rig,
    from: bool,
    body: &GlobalRequestBody<'_>,
    expected: OwnedGlobalRequest,
    ok: bool,
    port: Option<u32>,
) -> Option<u32> {
    if from == CLIENT {
        let t = &mut rig.pair.client.transport;
        rig.client.ch().global_request(t, body, true).unwrap();
        rig.server_reads().unwrap();
        assert_eq!(
            rig.server.next_event(),
            Event::GlobalRequest {
                request: expected,
                want_reply: true
            }
        );
        let t = &mut rig.pair.server.transport;
        rig.server.ch().reply_global(t, ok, port).unwrap();
        rig.client_reads().unwrap();
        let Event::GlobalResult {
            ok: got,
            bound_port,
        } = rig.client.next_event()
        else {
            panic!("a global result");
        };
        assert_eq!(got, ok);
        bound_port
    } else {
        let t = &mut rig.pair.server.transport;
        rig.server.ch().global_request(t, body, true).unwrap();
        rig.client_reads().unwrap();
        assert_eq!(
            rig.client.next_event(),
            Event::GlobalRequest {
                request: expected,
                want_reply: true
            }
        );
        let t = &mut rig.pair.client.transport;
        rig.client.ch().reply_global(t, ok, port).unwrap();
        rig.server_reads().unwrap();
        let Event::GlobalResult {
            ok: got,
            bound_port,
        } = rig.server.next_event()
        else {
            panic!("a global result");
        };
        assert_eq!(got, ok);
        bound_port
    }
}

/// `from` opens a channel of type `kind`; the other side sees `expected` and accepts.
/// Returns (the opener's id, the acceptor's id).
fn open_accepted(
    rig: &mut Rig,
    from: bool,
    kind: &ChannelType<'_>,
    expected: &OwnedChannelType,
) -> (u32, u32) {
    let (opener, acceptor) = if from == CLIENT {
        let t = &mut rig.pair.client.transport;
        let id = rig.client.ch().open(t, kind).unwrap();
        rig.server_reads().unwrap();
        let Event::OpenRequest { channel, kind } = rig.server.next_event() else {
            panic!("an open request");
        };
        assert_eq!(&kind, expected);
        let t = &mut rig.pair.server.transport;
        rig.server.ch().accept(t, channel).unwrap();
        rig.client_reads().unwrap();
        assert_eq!(rig.client.next_event(), Event::Opened { channel: id });
        (id, channel)
    } else {
        let t = &mut rig.pair.server.transport;
        let id = rig.server.ch().open(t, kind).unwrap();
        rig.client_reads().unwrap();
        let Event::OpenRequest { channel, kind } = rig.client.next_event() else {
            panic!("an open request");
        };
        assert_eq!(&kind, expected);
        let t = &mut rig.pair.client.transport;
        rig.client.ch().accept(t, channel).unwrap();
        rig.server_reads().unwrap();
        assert_eq!(rig.server.next_event(), Event::Opened { channel: id });
        (id, channel)
    };
    (opener, acceptor)
}

/// Writes all of `data` on `channel` from one side, one packet per call.
fn write_all(rig: &mut Rig, from: bool, channel: u32, data: &[u8]) {
    let mut sent = 0;
    while sent < data.len() {
        let n = if from == CLIENT {
            let t = &mut rig.pair.client.transport;
            rig.client.ch().send_data(t, channel, false, &data[sent..])
        } else {
            let t = &mut rig.pair.server.transport;
            rig.server.ch().send_data(t, channel, false, &data[sent..])
        }
        .unwrap();
        sent += n;
        rig.pump();
    }
}

/// Bytes that tell their own offset apart, so a lost or reordered packet shows.
fn stream(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Moves `up` from the client and `down` from the server over the channel whose ids are
/// `c` and `s`, then the side `closer` sends EOF and CLOSE, and both sides see the
/// channel end and let it go.
fn carry_and_close(rig: &mut Rig, c: u32, s: u32, up: &[u8], down: &[u8], closer: bool) {
    let live = (rig.client.ch().len(), rig.server.ch().len());
    write_all(rig, CLIENT, c, up);
    write_all(rig, SERVER, s, down);
    assert_eq!(rig.server.stdout.remove(&s).unwrap_or_default(), up);
    assert_eq!(rig.client.stdout.remove(&c).unwrap_or_default(), down);

    let (first, first_id, other_id) = if closer == CLIENT {
        (CLIENT, c, s)
    } else {
        (SERVER, s, c)
    };
    if first == CLIENT {
        let t = &mut rig.pair.client.transport;
        rig.client.ch().eof(t, c).unwrap();
        rig.client.ch().close(t, c).unwrap();
    } else {
        let t = &mut rig.pair.server.transport;
        rig.server.ch().eof(t, s).unwrap();
        rig.server.ch().close(t, s).unwrap();
    }
    rig.pump();
    let (closer_events, other_events) = if first == CLIENT {
        (&mut rig.client.events, &mut rig.server.events)
    } else {
        (&mut rig.server.events, &mut rig.client.events)
    };
    assert_eq!(
        other_events.drain(..).collect::<Vec<_>>(),
        [
            Event::Eof { channel: other_id },
            Event::Closed { channel: other_id }
        ]
    );
    assert_eq!(
        closer_events.drain(..).collect::<Vec<_>>(),
        [Event::Closed { channel: first_id }]
    );
    assert_eq!(
        (rig.client.ch().len(), rig.server.ch().len()),
        (live.0 - 1, live.1 - 1)
    );
    if live == (1, 1) {
        assert_eq!(rig.client.ch().budget().used(), 0);
        assert_eq!(rig.server.ch().budget().used(), 0);
    }
}

#[test]
fn remote_tcp_forward_opens_forwarded_tcpip_to_the_client_until_cancelled() {
    let mut rig = Rig::both();

    // Port 0: the server picks the port and says which (RFC 4254 section 7.1).
    let request = GlobalRequestBody::TcpipForward {
        address: b"localhost",
        port: 0,
    };
    let expected = OwnedGlobalRequest::TcpipForward {
        address: b"localhost".to_vec(),
        port: 0,
    };
    let bound = global_round_trip(&mut rig, CLIENT, &request, expected, true, Some(40123));
    assert_eq!(bound, Some(40123));

    // A connection reaches the server's listener: the server opens forwarded-tcpip with
    // the address and port that were connected and where the connection came from.
    let kind = ChannelType::ForwardedTcpip {
        connected_address: b"localhost",
        connected_port: 40123,
        originator_address: b"192.0.2.7",
        originator_port: 51000,
    };
    let expected = OwnedChannelType::ForwardedTcpip {
        connected_address: b"localhost".to_vec(),
        connected_port: 40123,
        originator: b"192.0.2.7".to_vec(),
        originator_port: 51000,
    };
    let (s, c) = open_accepted(&mut rig, SERVER, &kind, &expected);
    let down = stream(100_000, 1);
    carry_and_close(&mut rig, c, s, b"GET / HTTP/1.0\r\n\r\n", &down, SERVER);

    // Cancelled: the request names the same address and port, and carries no port back.
    let cancel = GlobalRequestBody::CancelTcpipForward {
        address: b"localhost",
        port: 40123,
    };
    let expected = OwnedGlobalRequest::CancelTcpipForward {
        address: b"localhost".to_vec(),
        port: 40123,
    };
    assert_eq!(
        global_round_trip(&mut rig, CLIENT, &cancel, expected, true, None),
        None
    );

    // A connection that crossed the cancel is refused by the client's application, and
    // the server hears why.
    let t = &mut rig.pair.server.transport;
    let late = rig.server.ch().open(t, &kind).unwrap();
    rig.client_reads().unwrap();
    let Event::OpenRequest { channel, kind: got } = rig.client.next_event() else {
        panic!("an open request");
    };
    assert_eq!(got, open_kind_of_port(40123));
    let t = &mut rig.pair.client.transport;
    let reason = OpenFailureReason::ADMINISTRATIVELY_PROHIBITED;
    rig.client
        .ch()
        .reject(t, channel, reason, "no forward on that port")
        .unwrap();
    rig.server_reads().unwrap();
    assert_eq!(
        rig.server.next_event(),
        Event::OpenFailed {
            channel: late,
            reason,
            description: "no forward on that port".into()
        }
    );
    assert!(rig.client.ch().is_empty() && rig.server.ch().is_empty());
}

fn open_kind_of_port(port: u32) -> OwnedChannelType {
    OwnedChannelType::ForwardedTcpip {
        connected_address: b"localhost".to_vec(),
        connected_port: port,
        originator: b"192.0.2.7".to_vec(),
        originator_port: 51000,
    }
}

#[test]
fn a_port_asked_for_by_number_comes_back_without_one() {
    let mut rig = Rig::both();
    let request = GlobalRequestBody::TcpipForward {
        address: b"",
        port: 8022,
    };
    let expected = OwnedGlobalRequest::TcpipForward {
        address: Vec::new(),
        port: 8022,
    };
    assert_eq!(
        global_round_trip(&mut rig, CLIENT, &request, expected.clone(), true, None),
        None
    );
    // And a refused forward says so.
    assert_eq!(
        global_round_trip(&mut rig, CLIENT, &request, expected, false, None),
        None
    );
}

#[test]
fn direct_streamlocal_carries_data_to_a_socket_path() {
    let mut rig = Rig::both();
    let kind = ChannelType::DirectStreamlocal {
        socket_path: b"/run/app/api.sock",
        reserved: b"",
        reserved_uint: 0,
    };
    let expected = OwnedChannelType::DirectStreamlocal {
        socket_path: b"/run/app/api.sock".to_vec(),
    };
    let (c, s) = open_accepted(&mut rig, CLIENT, &kind, &expected);
    let up = stream(70_000, 2);
    let down = stream(5_000, 3);
    carry_and_close(&mut rig, c, s, &up, &down, CLIENT);
}

#[test]
fn streamlocal_forward_opens_forwarded_streamlocal_to_the_client_until_cancelled() {
    let mut rig = Rig::both();
    let path = b"/tmp/forwarded.sock";
    let request = GlobalRequestBody::StreamlocalForward { socket_path: path };
    let expected = OwnedGlobalRequest::StreamlocalForward {
        socket_path: path.to_vec(),
    };
    assert_eq!(
        global_round_trip(&mut rig, CLIENT, &request, expected, true, None),
        None
    );

    // Two connections on the forwarded socket, open at once.
    let kind = ChannelType::ForwardedStreamlocal {
        socket_path: path,
        reserved: b"",
    };
    let expected = OwnedChannelType::ForwardedStreamlocal {
        socket_path: path.to_vec(),
    };
    let (s1, c1) = open_accepted(&mut rig, SERVER, &kind, &expected);
    let (s2, c2) = open_accepted(&mut rig, SERVER, &kind, &expected);
    assert_ne!((s1, c1), (s2, c2));
    carry_and_close(&mut rig, c2, s2, &stream(40_000, 4), b"pong", CLIENT);
    carry_and_close(&mut rig, c1, s1, b"ping", &stream(40_000, 5), SERVER);

    let cancel = GlobalRequestBody::CancelStreamlocalForward { socket_path: path };
    let expected = OwnedGlobalRequest::CancelStreamlocalForward {
        socket_path: path.to_vec(),
    };
    assert_eq!(
        global_round_trip(&mut rig, CLIENT, &cancel, expected, true, None),
        None
    );
}

/// A server announces its host keys after authentication, without asking for a reply
/// (OpenSSH's `PROTOCOL` section 2.5): the client's application gets every blob in
/// order, and nothing goes back.
#[test]
fn host_keys_announced_by_the_server_reach_the_client() {
    let mut rig = Rig::both();
    let provider = default_provider();
    let blobs: Vec<Vec<u8>> = [[7; 32], [8; 32]]
        .iter()
        .map(|seed| {
            HostKeyPair::ed25519_from_seed(provider, seed)
                .public()
                .to_blob()
        })
        .collect();
    let mut encoded = Vec::new();
    BlobList::encode(blobs.iter().map(Vec::as_slice), &mut encoded);
    let list = BlobList::parse(&encoded).unwrap();

    let before = rig.pair.client.transport.stats().packets_sent;
    let t = &mut rig.pair.server.transport;
    rig.server
        .ch()
        .global_request(t, &GlobalRequestBody::HostKeys(list), false)
        .unwrap();
    rig.client_reads().unwrap();
    assert_eq!(
        rig.client.next_event(),
        Event::GlobalRequest {
            request: OwnedGlobalRequest::HostKeys(blobs),
            want_reply: false,
        }
    );
    assert!(rig.client.events.is_empty());
    assert_eq!(
        rig.pair.client.transport.stats().packets_sent,
        before,
        "no reply"
    );
    // And asking to answer it is the application's mistake, not a reply on the wire.
    let t = &mut rig.pair.client.transport;
    assert!(rig.client.ch().reply_global(t, true, None).is_err());
    rig.pump();
    assert!(rig.server.events.is_empty());
}
