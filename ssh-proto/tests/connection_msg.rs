//! The connection protocol's messages (RFC 4254): round trips of every message and request
//! type, byte-exact vectors written by hand from the RFC's layouts, and hostile input
//! (truncation at every byte, trailing bytes, lengths past the packet, random bytes).

use std::collections::BTreeSet;

use ssh_proto::connection::msg::*;
use ssh_proto::msg::MessageNumber;
use ssh_proto::sim::SeededRng;
use ssh_proto::wire::Writer;

/// What a message does with bytes after its last known field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    /// Its layout is fixed: anything extra is an error.
    Strict,
    /// It ends in bytes kept as they are (`Other`, confirmation extras, success data).
    Opaque,
    /// It ends in a list of strings: whole strings may be added or removed.
    Blobs,
}

fn write(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.write(&mut out);
    out
}

fn modes_bytes() -> Vec<u8> {
    let mut raw = Vec::new();
    TerminalModes::encode(
        [
            (TerminalOpcode::VINTR, 3),
            (TerminalOpcode::ECHO, 1),
            (TerminalOpcode::TTY_OP_ISPEED, 38400),
            (TerminalOpcode::TTY_OP_OSPEED, 38400),
        ],
        &mut raw,
    )
    .unwrap();
    raw
}

fn blobs_bytes() -> Vec<u8> {
    let mut raw = Vec::new();
    BlobList::encode([&b"ssh-ed25519 key blob"[..], b"", b"rsa"], &mut raw);
    raw
}

/// One payload of every message and every request and channel type, written through the
/// library, with how its tail behaves.
fn samples() -> Vec<(Vec<u8>, Tail)> {
    let modes_raw = modes_bytes();
    let modes = TerminalModes::parse(&modes_raw).unwrap();
    let blobs_raw = blobs_bytes();
    let blobs = BlobList::parse(&blobs_raw).unwrap();

    let global = |want_reply, body| Message::GlobalRequest(GlobalRequest { want_reply, body });
    let open = |channel_type| {
        Message::ChannelOpen(ChannelOpen {
            sender: 7,
            initial_window: 0x0020_0000,
            max_packet: 0x8000,
            channel_type,
        })
    };
    let request = |want_reply, body| {
        Message::ChannelRequest(ChannelRequest {
            recipient: 3,
            want_reply,
            body,
        })
    };
    let size = TerminalSize {
        cols: 80,
        rows: 24,
        width_px: 640,
        height_px: 480,
    };

    use Tail::*;
    let messages = [
        (
            global(
                true,
                GlobalRequestBody::TcpipForward {
                    address: b"0.0.0.0",
                    port: 0,
                },
            ),
            Strict,
        ),
        (
            global(
                true,
                GlobalRequestBody::CancelTcpipForward {
                    address: b"localhost",
                    port: 8080,
                },
            ),
            Strict,
        ),
        (
            global(
                true,
                GlobalRequestBody::StreamlocalForward {
                    socket_path: b"/tmp/s",
                },
            ),
            Strict,
        ),
        (
            global(
                false,
                GlobalRequestBody::CancelStreamlocalForward {
                    socket_path: b"/tmp/s",
                },
            ),
            Strict,
        ),
        (global(true, GlobalRequestBody::Keepalive), Strict),
        (global(false, GlobalRequestBody::NoMoreSessions), Strict),
        (global(false, GlobalRequestBody::HostKeys(blobs)), Blobs),
        (global(true, GlobalRequestBody::HostKeysProve(blobs)), Blobs),
        (
            global(
                true,
                GlobalRequestBody::Other {
                    name: b"x@example.com",
                    data: b"\x00\x01anything",
                },
            ),
            Opaque,
        ),
        (
            Message::RequestSuccess(RequestSuccess {
                data: &[0, 0, 0xa4, 0x10],
            }),
            Opaque,
        ),
        (Message::RequestSuccess(RequestSuccess::EMPTY), Opaque),
        (Message::RequestFailure(RequestFailure), Strict),
        (open(ChannelType::Session), Strict),
        (
            open(ChannelType::DirectTcpip {
                host: b"db.internal",
                port: 5432,
                originator_address: b"127.0.0.1",
                originator_port: 50000,
            }),
            Strict,
        ),
        (
            open(ChannelType::ForwardedTcpip {
                connected_address: b"0.0.0.0",
                connected_port: 2222,
                originator_address: b"192.0.2.4",
                originator_port: 41000,
            }),
            Strict,
        ),
        (
            open(ChannelType::DirectStreamlocal {
                socket_path: b"/run/app.sock",
                reserved: b"",
                reserved_uint: 0,
            }),
            Strict,
        ),
        (
            open(ChannelType::ForwardedStreamlocal {
                socket_path: b"/run/app.sock",
                reserved: b"",
            }),
            Strict,
        ),
        (
            open(ChannelType::X11 {
                originator_address: b"::1",
                originator_port: 6010,
            }),
            Strict,
        ),
        (open(ChannelType::AuthAgent), Strict),
        (
            open(ChannelType::Other {
                name: b"tun@openssh.com",
                data: &[0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff],
            }),
            Opaque,
        ),
        (
            Message::ChannelOpenConfirmation(ChannelOpenConfirmation {
                recipient: 7,
                sender: 0,
                initial_window: 0x0020_0000,
                max_packet: 0x8000,
                extra: b"",
            }),
            Opaque,
        ),
        (
            Message::ChannelOpenConfirmation(ChannelOpenConfirmation {
                recipient: 7,
                sender: 1,
                initial_window: 0,
                max_packet: 0x8000,
                extra: b"type-specific",
            }),
            Opaque,
        ),
        (
            Message::ChannelOpenFailure(ChannelOpenFailure {
                recipient: 7,
                reason: OpenFailureReason::CONNECT_FAILED,
                description: b"connect failed: Connection refused",
                language: b"en",
            }),
            Strict,
        ),
        (
            Message::ChannelWindowAdjust(ChannelWindowAdjust {
                recipient: 3,
                bytes_to_add: 0x0010_0000,
            }),
            Strict,
        ),
        (
            Message::ChannelData(ChannelData {
                recipient: 3,
                data: b"GET / HTTP/1.0\r\n\r\n",
            }),
            Strict,
        ),
        (
            Message::ChannelExtendedData(ChannelExtendedData {
                recipient: 3,
                data_type: ExtendedDataType::STDERR,
                data: b"warning\n",
            }),
            Strict,
        ),
        (Message::ChannelEof(ChannelEof { recipient: 3 }), Strict),
        (Message::ChannelClose(ChannelClose { recipient: 3 }), Strict),
        (
            request(
                true,
                ChannelRequestBody::PtyReq(PtyRequest {
                    term: b"xterm-256color",
                    size,
                    modes,
                }),
            ),
            Strict,
        ),
        (
            request(
                true,
                ChannelRequestBody::X11Req(X11Request {
                    single_connection: false,
                    auth_protocol: b"MIT-MAGIC-COOKIE-1",
                    auth_cookie: b"0123456789abcdef0123456789abcdef",
                    screen: 0,
                }),
            ),
            Strict,
        ),
        (
            request(
                false,
                ChannelRequestBody::Env {
                    name: b"LANG",
                    value: b"C.UTF-8",
                },
            ),
            Strict,
        ),
        (request(true, ChannelRequestBody::Shell), Strict),
        (
            request(
                true,
                ChannelRequestBody::Exec {
                    command: b"cat /etc/mot\xffd",
                },
            ),
            Strict,
        ),
        (
            request(true, ChannelRequestBody::Subsystem { name: b"sftp" }),
            Strict,
        ),
        (
            request(false, ChannelRequestBody::WindowChange(size)),
            Strict,
        ),
        (
            request(
                false,
                ChannelRequestBody::XonXoff {
                    client_can_do: true,
                },
            ),
            Strict,
        ),
        (
            request(false, ChannelRequestBody::Signal { name: b"INT" }),
            Strict,
        ),
        (
            request(false, ChannelRequestBody::ExitStatus { status: 127 }),
            Strict,
        ),
        (
            request(
                false,
                ChannelRequestBody::ExitSignal(ExitSignal {
                    signal: b"SEGV",
                    core_dumped: true,
                    message: b"Segmentation fault",
                    language: b"",
                }),
            ),
            Strict,
        ),
        (request(false, ChannelRequestBody::Eow), Strict),
        (request(true, ChannelRequestBody::AuthAgentReq), Strict),
        (request(true, ChannelRequestBody::Keepalive), Strict),
        (
            request(
                true,
                ChannelRequestBody::Other {
                    name: b"simple@putty.projects.tartarus.org",
                    data: b"",
                },
            ),
            Opaque,
        ),
        (
            request(
                false,
                ChannelRequestBody::Other {
                    name: b"x@example.com",
                    data: b"\x00\x00\x00\x05extra",
                },
            ),
            Opaque,
        ),
        (
            Message::ChannelSuccess(ChannelSuccess { recipient: 3 }),
            Strict,
        ),
        (
            Message::ChannelFailure(ChannelFailure { recipient: 3 }),
            Strict,
        ),
    ];
    messages.iter().map(|(m, tail)| (write(m), *tail)).collect()
}

/// A name for each message kind, down to the request and channel type. The match is
/// exhaustive, so a new variant fails to compile here until it is given a sample.
fn kind(m: &Message<'_>) -> &'static str {
    match m {
        Message::GlobalRequest(g) => match g.body {
            GlobalRequestBody::TcpipForward { .. } => "global tcpip-forward",
            GlobalRequestBody::CancelTcpipForward { .. } => "global cancel-tcpip-forward",
            GlobalRequestBody::StreamlocalForward { .. } => "global streamlocal-forward",
            GlobalRequestBody::CancelStreamlocalForward { .. } => {
                "global cancel-streamlocal-forward"
            }
            GlobalRequestBody::Keepalive => "global keepalive",
            GlobalRequestBody::NoMoreSessions => "global no-more-sessions",
            GlobalRequestBody::HostKeys(_) => "global hostkeys",
            GlobalRequestBody::HostKeysProve(_) => "global hostkeys-prove",
            GlobalRequestBody::Other { .. } => "global other",
        },
        Message::RequestSuccess(_) => "request success",
        Message::RequestFailure(_) => "request failure",
        Message::ChannelOpen(o) => match o.channel_type {
            ChannelType::Session => "open session",
            ChannelType::DirectTcpip { .. } => "open direct-tcpip",
            ChannelType::ForwardedTcpip { .. } => "open forwarded-tcpip",
            ChannelType::DirectStreamlocal { .. } => "open direct-streamlocal",
            ChannelType::ForwardedStreamlocal { .. } => "open forwarded-streamlocal",
            ChannelType::X11 { .. } => "open x11",
            ChannelType::AuthAgent => "open auth-agent",
            ChannelType::Other { .. } => "open other",
        },
        Message::ChannelOpenConfirmation(_) => "open confirmation",
        Message::ChannelOpenFailure(_) => "open failure",
        Message::ChannelWindowAdjust(_) => "window adjust",
        Message::ChannelData(_) => "data",
        Message::ChannelExtendedData(_) => "extended data",
        Message::ChannelEof(_) => "eof",
        Message::ChannelClose(_) => "close",
        Message::ChannelRequest(r) => match r.body {
            ChannelRequestBody::PtyReq(_) => "request pty-req",
            ChannelRequestBody::X11Req(_) => "request x11-req",
            ChannelRequestBody::Env { .. } => "request env",
            ChannelRequestBody::Shell => "request shell",
            ChannelRequestBody::Exec { .. } => "request exec",
            ChannelRequestBody::Subsystem { .. } => "request subsystem",
            ChannelRequestBody::WindowChange(_) => "request window-change",
            ChannelRequestBody::XonXoff { .. } => "request xon-xoff",
            ChannelRequestBody::Signal { .. } => "request signal",
            ChannelRequestBody::ExitStatus { .. } => "request exit-status",
            ChannelRequestBody::ExitSignal(_) => "request exit-signal",
            ChannelRequestBody::Eow => "request eow",
            ChannelRequestBody::AuthAgentReq => "request auth-agent-req",
            ChannelRequestBody::Keepalive => "request keepalive",
            ChannelRequestBody::Other { .. } => "request other",
        },
        Message::ChannelSuccess(_) => "channel success",
        Message::ChannelFailure(_) => "channel failure",
    }
}

/// The number of arms in `kind`.
const KINDS: usize = 9 + 2 + 8 + 7 + 15 + 2;

/// A parsed message re-encodes to the same length (no byte skipped) and parses back to
/// the same value. Booleans other than 0 and 1 come back as 1, so bytes are not compared.
fn assert_canonical(payload: &[u8]) {
    let Ok(m) = Message::parse(payload) else {
        return;
    };
    let again = write(&m);
    assert_eq!(again.len(), payload.len(), "{m:?} from {payload:02x?}");
    assert_eq!(Message::parse(&again), Ok(m), "{payload:02x?}");
}

#[test]
fn every_message_and_request_round_trips() {
    let mut kinds = BTreeSet::new();
    for (payload, _) in samples() {
        let m = Message::parse(&payload).unwrap_or_else(|e| panic!("{e}: {payload:02x?}"));
        assert_eq!(write(&m), payload, "{m:?}");
        assert_eq!(m.number(), MessageNumber(payload[0]));
        kinds.insert(kind(&m));
    }
    assert_eq!(kinds.len(), KINDS, "a sample of every kind: {kinds:?}");
}

#[test]
fn typed_parsers_agree_with_message_and_refuse_other_numbers() {
    for (payload, _) in samples() {
        let m = Message::parse(&payload).unwrap();
        let same = match m {
            Message::GlobalRequest(x) => GlobalRequest::parse(&payload) == Ok(x),
            Message::RequestSuccess(x) => RequestSuccess::parse(&payload) == Ok(x),
            Message::RequestFailure(x) => RequestFailure::parse(&payload) == Ok(x),
            Message::ChannelOpen(x) => ChannelOpen::parse(&payload) == Ok(x),
            Message::ChannelOpenConfirmation(x) => {
                ChannelOpenConfirmation::parse(&payload) == Ok(x)
            }
            Message::ChannelOpenFailure(x) => ChannelOpenFailure::parse(&payload) == Ok(x),
            Message::ChannelWindowAdjust(x) => ChannelWindowAdjust::parse(&payload) == Ok(x),
            Message::ChannelData(x) => ChannelData::parse(&payload) == Ok(x),
            Message::ChannelExtendedData(x) => ChannelExtendedData::parse(&payload) == Ok(x),
            Message::ChannelEof(x) => ChannelEof::parse(&payload) == Ok(x),
            Message::ChannelClose(x) => ChannelClose::parse(&payload) == Ok(x),
            Message::ChannelRequest(x) => ChannelRequest::parse(&payload) == Ok(x),
            Message::ChannelSuccess(x) => ChannelSuccess::parse(&payload) == Ok(x),
            Message::ChannelFailure(x) => ChannelFailure::parse(&payload) == Ok(x),
        };
        assert!(same, "{m:?}");
    }

    // A typed parser checks the number: these bytes are a valid EOF, CLOSE, SUCCESS and
    // FAILURE only under their own number.
    let eof = [MessageNumber::CHANNEL_EOF.0, 0, 0, 0, 1];
    assert!(ChannelEof::parse(&eof).is_ok());
    assert!(ChannelClose::parse(&eof).is_err());
    assert!(ChannelSuccess::parse(&eof).is_err());
    assert!(ChannelData::parse(&eof).is_err());
    assert!(RequestFailure::parse(&[MessageNumber::REQUEST_SUCCESS.0]).is_err());
}

#[test]
fn recipients_are_reported_for_channel_messages_only() {
    for (payload, _) in samples() {
        let m = Message::parse(&payload).unwrap();
        let global = matches!(
            m,
            Message::GlobalRequest(_)
                | Message::RequestSuccess(_)
                | Message::RequestFailure(_)
                | Message::ChannelOpen(_)
        );
        match m.recipient() {
            None => assert!(global, "{m:?}"),
            // Every channel sample is addressed to channel 3 or 7.
            Some(id) => assert!(!global && (id == 3 || id == 7), "{m:?}"),
        }
    }
}

#[test]
fn numbers_outside_the_connection_protocol_are_told_apart() {
    for number in (0..=255u8).filter(|n| !matches!(n, 80..=82 | 90..=100)) {
        assert_eq!(
            Message::parse(&[number, 0, 0, 0, 0]),
            Err(NOT_CONNECTION_MESSAGE),
            "{number}"
        );
    }
    // An empty payload or a malformed message is some other error.
    assert!(Message::parse(&[]).is_err_and(|e| e != NOT_CONNECTION_MESSAGE));
    assert!(
        Message::parse(&[MessageNumber::CHANNEL_EOF.0]).is_err_and(|e| e != NOT_CONNECTION_MESSAGE)
    );
}

#[test]
fn direct_tcpip_open_byte_for_byte() {
    // As OpenSSH's `ssh -L` opens it (RFC 4254 section 7.2): a 2 MiB window and 32 KiB
    // packets.
    let mut wire = vec![90];
    wire.extend_from_slice(b"\x00\x00\x00\x0cdirect-tcpip");
    wire.extend_from_slice(&[0, 0, 0, 2]); // sender channel
    wire.extend_from_slice(&[0, 0x20, 0, 0]); // initial window: 2097152
    wire.extend_from_slice(&[0, 0, 0x80, 0]); // maximum packet: 32768
    wire.extend_from_slice(b"\x00\x00\x00\x09localhost");
    wire.extend_from_slice(&[0, 0, 0, 80]);
    wire.extend_from_slice(b"\x00\x00\x00\x09127.0.0.1");
    wire.extend_from_slice(&[0, 0, 0xd4, 0x31]); // 54321

    let expected = ChannelOpen {
        sender: 2,
        initial_window: 2 * 1024 * 1024,
        max_packet: 32 * 1024,
        channel_type: ChannelType::DirectTcpip {
            host: b"localhost",
            port: 80,
            originator_address: b"127.0.0.1",
            originator_port: 54321,
        },
    };
    assert_eq!(Message::parse(&wire), Ok(Message::ChannelOpen(expected)));
    let mut out = Vec::new();
    expected.write(&mut out);
    assert_eq!(out, wire);

    // Each string's length pointing past the packet, by one byte or by 4 GiB.
    for at in [1, 29, 46] {
        for len in [u32::MAX, (wire.len() - at - 4 + 1) as u32] {
            let mut bad = wire.clone();
            bad[at..at + 4].copy_from_slice(&len.to_be_bytes());
            assert!(ChannelOpen::parse(&bad).is_err(), "length {len:#x} at {at}");
        }
    }
}

#[test]
fn pty_req_with_modes_byte_for_byte() {
    let mut wire = vec![98, 0, 0, 0, 0];
    wire.extend_from_slice(b"\x00\x00\x00\x07pty-req\x01");
    wire.extend_from_slice(b"\x00\x00\x00\x0exterm-256color");
    wire.extend_from_slice(&[0, 0, 0, 80, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0]);
    let modes = [
        1, 0, 0, 0, 3, // VINTR ^C
        0x35, 0, 0, 0, 1, // ECHO on
        0x80, 0, 0, 0x96, 0, // TTY_OP_ISPEED 38400
        0, // TTY_OP_END
    ];
    wire.extend_from_slice(&[0, 0, 0, 16]);
    wire.extend_from_slice(&modes);

    let Ok(Message::ChannelRequest(req)) = Message::parse(&wire) else {
        panic!("not a channel request: {:?}", Message::parse(&wire));
    };
    assert_eq!(req.recipient, 0);
    assert!(req.want_reply);
    let ChannelRequestBody::PtyReq(pty) = req.body else {
        panic!("not a pty-req: {req:?}");
    };
    assert_eq!(pty.term, b"xterm-256color");
    assert_eq!(
        pty.size,
        TerminalSize {
            cols: 80,
            rows: 24,
            width_px: 0,
            height_px: 0
        }
    );
    assert_eq!(
        pty.modes.iter().collect::<Vec<_>>(),
        [
            (TerminalOpcode::VINTR, 3),
            (TerminalOpcode::ECHO, 1),
            (TerminalOpcode::TTY_OP_ISPEED, 38400)
        ]
    );
    assert!(pty.modes.undefined().is_empty());

    // The same modes encoded by the library, and the whole request written back.
    let mut encoded = Vec::new();
    TerminalModes::encode(pty.modes.iter(), &mut encoded).unwrap();
    assert_eq!(encoded, modes);
    let mut out = Vec::new();
    req.write(&mut out);
    assert_eq!(out, wire);

    // Modes that stop at an undefined opcode: the defined pairs before it still count.
    let mut odd = wire[..wire.len() - 20].to_vec();
    odd.extend_from_slice(&[0, 0, 0, 8, 0x35, 0, 0, 0, 1, 0xa0, 0x01, 0x02]);
    let Ok(Message::ChannelRequest(ChannelRequest {
        body: ChannelRequestBody::PtyReq(pty),
        ..
    })) = Message::parse(&odd)
    else {
        panic!("{:?}", Message::parse(&odd));
    };
    assert_eq!(
        pty.modes.iter().collect::<Vec<_>>(),
        [(TerminalOpcode::ECHO, 1)]
    );
    assert_eq!(pty.modes.undefined(), [0xa0, 0x01, 0x02]);

    // Modes without TTY_OP_END, or with bytes after it, fail the request.
    for bad_modes in [&[0x35, 0, 0, 0, 1][..], &[0, 0], &[0x35, 0, 0]] {
        let mut bad = wire[..wire.len() - 20].to_vec();
        bad.put_string(bad_modes);
        assert!(Message::parse(&bad).is_err(), "{bad_modes:02x?}");
    }
}

#[test]
fn exit_signal_byte_for_byte() {
    let mut wire = vec![98, 0, 0, 0, 5];
    wire.extend_from_slice(b"\x00\x00\x00\x0bexit-signal\x00");
    wire.extend_from_slice(b"\x00\x00\x00\x04TERM");
    wire.push(0);
    wire.extend_from_slice(b"\x00\x00\x00\x06killed");
    wire.extend_from_slice(b"\x00\x00\x00\x00");

    let expected = ChannelRequest {
        recipient: 5,
        want_reply: false,
        body: ChannelRequestBody::ExitSignal(ExitSignal {
            signal: b"TERM",
            core_dumped: false,
            message: b"killed",
            language: b"",
        }),
    };
    assert_eq!(ChannelRequest::parse(&wire), Ok(expected));
    let mut out = Vec::new();
    expected.write(&mut out);
    assert_eq!(out, wire);

    // Request name, signal name, message and language tag running past the packet.
    for at in [5, 21, 30, 40] {
        for len in [u32::MAX, (wire.len() - at - 4 + 1) as u32] {
            let mut bad = wire.clone();
            bad[at..at + 4].copy_from_slice(&len.to_be_bytes());
            assert!(
                ChannelRequest::parse(&bad).is_err(),
                "length {len:#x} at {at}"
            );
        }
    }
}

#[test]
fn small_messages_byte_for_byte() {
    let cases: [(&[u8], Message<'_>); 6] = [
        (
            &[93, 0, 0, 0, 1, 0, 0x10, 0, 0],
            Message::ChannelWindowAdjust(ChannelWindowAdjust {
                recipient: 1,
                bytes_to_add: 0x0010_0000,
            }),
        ),
        (
            b"\x5e\x00\x00\x00\x01\x00\x00\x00\x02hi",
            Message::ChannelData(ChannelData {
                recipient: 1,
                data: b"hi",
            }),
        ),
        (
            b"\x5f\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x03err",
            Message::ChannelExtendedData(ChannelExtendedData {
                recipient: 1,
                data_type: ExtendedDataType::STDERR,
                data: b"err",
            }),
        ),
        (
            b"\x5c\x00\x00\x00\x09\x00\x00\x00\x01\x00\x00\x00\x02no\x00\x00\x00\x00",
            Message::ChannelOpenFailure(ChannelOpenFailure {
                recipient: 9,
                reason: OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                description: b"no",
                language: b"",
            }),
        ),
        (
            b"\x50\x00\x00\x00\x0dtcpip-forward\x01\x00\x00\x00\x00\x00\x00\x00\x00",
            Message::GlobalRequest(GlobalRequest {
                want_reply: true,
                body: GlobalRequestBody::TcpipForward {
                    address: b"",
                    port: 0,
                },
            }),
        ),
        (&[0x51, 0, 0, 0xa4, 0x10], {
            Message::RequestSuccess(RequestSuccess {
                data: &[0, 0, 0xa4, 0x10],
            })
        }),
    ];
    for (wire, expected) in cases {
        assert_eq!(Message::parse(wire), Ok(expected));
        assert_eq!(write(&expected), wire);
    }
}

#[test]
fn request_success_is_read_by_what_it_answers() {
    let mut out = Vec::new();
    RequestSuccess::write_bound_port(42000, &mut out);
    assert_eq!(out, [0x51, 0, 0, 0xa4, 0x10]);
    let reply = RequestSuccess::parse(&out).unwrap();
    assert_eq!(reply.bound_port(), Ok(Some(42000)));
    assert_eq!(RequestSuccess::EMPTY.bound_port(), Ok(None));
    for data in [&[0, 0, 1][..], &[0, 0, 0, 1, 0]] {
        assert!(RequestSuccess { data }.bound_port().is_err(), "{data:?}");
    }

    let mut sigs = vec![0x51];
    BlobList::encode([&b"sig one"[..], b"sig two"], &mut sigs);
    let reply = RequestSuccess::parse(&sigs).unwrap();
    let list = reply.signatures().unwrap();
    assert_eq!(
        list.iter().collect::<Vec<_>>(),
        [&b"sig one"[..], b"sig two"]
    );
    sigs.pop();
    assert!(RequestSuccess::parse(&sigs).unwrap().signatures().is_err());
}

#[test]
fn host_key_lists_are_checked_without_trusting_lengths() {
    let mut wire = vec![80];
    wire.put_string(b"hostkeys-00@openssh.com");
    wire.put_bool(false);
    let head = wire.len();
    wire.put_string(b"key one");
    wire.put_string(b"key two");
    let Ok(Message::GlobalRequest(GlobalRequest {
        body: GlobalRequestBody::HostKeys(keys),
        ..
    })) = Message::parse(&wire)
    else {
        panic!("{:?}", Message::parse(&wire));
    };
    assert_eq!(
        keys.iter().collect::<Vec<_>>(),
        [&b"key one"[..], b"key two"]
    );

    // The second key's length claims 4 GiB: the whole request fails.
    let mut bad = wire.clone();
    let second = head + 4 + 7;
    bad[second..second + 4].copy_from_slice(&[0xff; 4]);
    assert!(Message::parse(&bad).is_err());

    // The header still reads, so the request can be answered or ignored.
    assert_eq!(
        GlobalRequest::parse_header(&bad),
        Ok((&b"hostkeys-00@openssh.com"[..], false))
    );
    for cut in 0..head {
        assert!(
            GlobalRequest::parse_header(&wire[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    assert!(GlobalRequest::parse_header(&[81, 0, 0, 0, 0, 0]).is_err());

    // No keys at all is an empty list, not an error.
    assert!(matches!(
        Message::parse(&wire[..head]),
        Ok(Message::GlobalRequest(GlobalRequest {
            body: GlobalRequestBody::HostKeys(keys),
            ..
        })) if keys.is_empty()
    ));
}

#[test]
fn every_truncation_fails_or_is_a_shorter_valid_message() {
    for (payload, tail) in samples() {
        for cut in 0..payload.len() {
            let short = &payload[..cut];
            match (tail, Message::parse(short)) {
                (_, Err(_)) => {}
                (Tail::Strict, Ok(m)) => panic!("{m:?} from a truncated {payload:02x?}"),
                // An opaque tail or a list of strings may be cut at a boundary; what
                // parses is then exactly the bytes that are left.
                (Tail::Opaque | Tail::Blobs, Ok(m)) => assert_eq!(write(&m), short),
            }
        }
    }
}

#[test]
fn truncation_inside_the_known_fields_always_fails() {
    // The fixed part of an open-ended message is as strict as any other message.
    for (payload, _) in samples() {
        let m = Message::parse(&payload).unwrap();
        let opaque = match m {
            Message::GlobalRequest(GlobalRequest {
                body: GlobalRequestBody::Other { data, .. },
                ..
            })
            | Message::ChannelOpen(ChannelOpen {
                channel_type: ChannelType::Other { data, .. },
                ..
            })
            | Message::ChannelRequest(ChannelRequest {
                body: ChannelRequestBody::Other { data, .. },
                ..
            })
            | Message::RequestSuccess(RequestSuccess { data })
            | Message::ChannelOpenConfirmation(ChannelOpenConfirmation { extra: data, .. }) => {
                data.len()
            }
            Message::GlobalRequest(GlobalRequest {
                body: GlobalRequestBody::HostKeys(list) | GlobalRequestBody::HostKeysProve(list),
                ..
            }) => list.as_bytes().len(),
            _ => 0,
        };
        for cut in 0..payload.len() - opaque {
            assert!(
                Message::parse(&payload[..cut]).is_err(),
                "{m:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn trailing_bytes_fail_known_layouts_and_extend_opaque_ones() {
    for (payload, tail) in samples() {
        for extra in [&[0u8][..], &[0, 0, 0, 0], &[0xff; 9]] {
            let mut long = payload.clone();
            long.extend_from_slice(extra);
            match tail {
                Tail::Strict => assert!(
                    Message::parse(&long).is_err(),
                    "{payload:02x?} + {extra:02x?}"
                ),
                Tail::Opaque => assert_eq!(write(&Message::parse(&long).unwrap()), long),
                // Only a whole extra string extends a list; the empty string is one.
                Tail::Blobs => assert_eq!(
                    Message::parse(&long).is_ok(),
                    extra == [0, 0, 0, 0],
                    "{extra:02x?}"
                ),
            }
        }
    }
}

#[test]
fn every_length_field_pointing_past_the_packet_fails() {
    // Overwrite every four bytes of every sample with 0xFFFFFFFF and with "one byte more
    // than is left". Where a string's length sits, the parse must fail; wherever it
    // succeeds, the four bytes were a number or opaque data, so the result re-encodes to
    // the same length and value.
    let mut failures = 0;
    for (payload, _) in samples() {
        for at in 0..payload.len().saturating_sub(3) {
            let past = (payload.len() - at - 4 + 1) as u32;
            for len in [u32::MAX, past] {
                let mut bad = payload.clone();
                bad[at..at + 4].copy_from_slice(&len.to_be_bytes());
                match Message::parse(&bad) {
                    Err(_) => failures += 1,
                    Ok(_) => assert_canonical(&bad),
                }
            }
        }
    }
    assert!(failures > 0);
}

#[test]
fn parsed_messages_own_nothing() {
    // `Copy` cannot hold a heap allocation: a parsed message only borrows the packet.
    fn copy<T: Copy>(_: &T) {}
    for (payload, _) in samples() {
        let m = Message::parse(&payload).unwrap();
        copy(&m);
    }
    let data = [0x5e, 0, 0, 0, 1, 0, 0, 0, 3, b'a', b'b', b'c'];
    let ChannelData { data: body, .. } = ChannelData::parse(&data).unwrap();
    assert_eq!(
        body.as_ptr(),
        data[9..].as_ptr(),
        "the data is the packet's own bytes"
    );
}

#[test]
fn seeded_random_payloads_never_panic_and_parse_canonically() {
    let mut rng = SeededRng::new(0x5eed_4254);
    let samples = samples();

    // Random bytes behind a connection protocol number.
    for _ in 0..20_000 {
        let len = rng.below(48);
        let mut payload = vec![(80 + rng.below(21)) as u8];
        payload.extend((0..len).map(|_| rng.next_u64() as u8));
        assert_canonical(&payload);
    }

    // Samples with a few bytes flipped, inserted or removed, so the known names are hit.
    for _ in 0..20_000 {
        let (sample, _) = &samples[rng.below(samples.len())];
        let mut payload = sample.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(payload.len());
            match rng.below(4) {
                0 => payload[at] ^= 1 << rng.below(8),
                1 => payload[at] = rng.next_u64() as u8,
                2 => payload.insert(at, rng.next_u64() as u8),
                _ if payload.len() > 1 => {
                    payload.remove(at);
                }
                _ => {}
            }
        }
        assert_canonical(&payload);
    }
}
