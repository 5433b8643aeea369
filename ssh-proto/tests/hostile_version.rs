//! Hostile version exchanges and resources before authentication: banners that never
//! come or come slowly, lines before the version line, bad version lines, the
//! pre-authentication deadline, and floods before authentication. Shared helpers are in
//! `hostile_common`.

#[expect(
    dead_code,
    reason = "the helpers are shared by three test files, and each uses a part of them"
)]
mod hostile_common;

use std::time::Duration;

use ssh_proto::Error;
use ssh_proto::algorithms::Preferences;
use ssh_proto::config::Config;
use ssh_proto::msg::{DisconnectReason, MessageNumber};
use ssh_proto::role::Role;
use ssh_proto::transport::Transport;
use ssh_proto::wire::Writer;

use hostile_common::*;

/// What a transport queued at start: its version line and first KEXINIT, nothing more.
fn assert_only_greeting(t: &mut Transport) {
    let mut sent = Vec::new();
    t.poll_transmit(&mut sent);
    let (line, packets) = split_plain_output(&sent);
    assert!(line.starts_with(b"SSH-2.0-"));
    assert_eq!(
        packets.len(),
        1,
        "nothing but KEXINIT after the version line"
    );
    assert_eq!(MessageNumber(packets[0][0]), MessageNumber::KEXINIT);
}

/// A peer that never sends its version line is dropped when the banner deadline passes,
/// by a timer the caller fires, not by anything inside the core.
#[test]
fn banner_never_sent_times_out() {
    for role in [Role::Client, Role::Server] {
        let now = origin();
        let config = if role.is_server() {
            server_config()
        } else {
            client_config()
        };
        let banner = config.banner_timeout;
        let mut t = fresh(role, config, now);
        assert_eq!(t.poll_timeout(), Some(now + banner));

        t.handle_timeout(now + banner - Duration::from_millis(1))
            .unwrap();
        let e = expect_error(
            t.handle_timeout(now + banner),
            DisconnectReason::CONNECTION_LOST,
            |e| matches!(e, Error::Timeout(_)),
        );
        assert!(e.to_string().contains("version line"), "{e}");
        assert!(t.is_closed());
        assert_eq!(t.poll_timeout(), None);
        // No packet phase yet, so no DISCONNECT: only what was queued at the start.
        assert_only_greeting(&mut t);
        assert_eq!(
            t.decode(&mut b"SSH-2.0-late\r\n".to_vec(), now),
            Err(Error::Closed)
        );
    }
}

/// A version line dribbled one byte every 3 s never completes within the 30 s banner
/// deadline: slowness buys the peer nothing.
#[test]
fn banner_one_byte_every_few_seconds_times_out() {
    let now = origin();
    let mut t = fresh(Role::Server, server_config(), now);
    let line = b"SSH-2.0-Slowloris_1.0\r\n";
    let mut at = now;
    let mut failed = None;
    for &byte in line {
        at += Duration::from_secs(3);
        if let Err(e) = t.handle_timeout(at) {
            failed = Some(e);
            break;
        }
        let mut input = [byte];
        let decoded = t.decode(&mut input, at).unwrap();
        assert_eq!(
            decoded.consumed, 1,
            "each byte is taken, none is buffered by the caller"
        );
    }
    // 30 s of banner deadline at 3 s a byte: byte 10 is never read.
    assert!(matches!(failed, Some(Error::Timeout(_))), "{failed:?}");
    assert!(t.is_closed());
}

/// The pre-authentication deadline (120 s by default, OpenSSH's LoginGraceTime) runs
/// from the start and fires in every state until authentication succeeds.
#[test]
fn preauth_deadline_covers_every_state() {
    // After a finished key exchange, never authenticated: the server gives up at 120 s and
    // tells the client.
    let mut pair = pair_with(client_config(), server_config(), 1);
    pair.handshake().unwrap();
    let limit = Config::default().preauth_timeout;
    assert_eq!(limit, Duration::from_secs(120));
    let start = pair.now;
    let fire = start + limit;
    assert_eq!(pair.server.transport.poll_timeout(), Some(fire));
    pair.server
        .transport
        .handle_timeout(fire - Duration::from_millis(1))
        .unwrap();
    expect_error(
        pair.server.transport.handle_timeout(fire),
        DisconnectReason::CONNECTION_LOST,
        |e| matches!(e, Error::Timeout(_)),
    );
    client_hears_disconnect(&mut pair, DisconnectReason::CONNECTION_LOST);

    // In the middle of the first key exchange, with a kex deadline longer than the
    // pre-authentication one.
    let server = Config {
        kex_timeout: Duration::from_secs(600),
        ..server_config()
    };
    let mut pair = pair_with(client_config(), server, 2);
    pair.flush();
    to_server(&mut pair).unwrap();
    assert!(pair.server.transport.is_rekeying());
    let fire = pair.now + limit;
    expect_error(
        pair.server.transport.handle_timeout(fire),
        DisconnectReason::CONNECTION_LOST,
        |e| matches!(e, Error::Timeout(t) if t.contains("authentication")),
    );

    // Authenticated in time: the deadline is gone.
    let mut pair = pair_with(client_config(), server_config(), 3);
    pair.handshake().unwrap();
    pair.server.transport.set_authenticated();
    pair.server
        .transport
        .handle_timeout(pair.now + Duration::from_secs(600))
        .unwrap();
    assert!(!pair.server.transport.is_closed());
}

/// RFC 4253 section 4.2 lets only a server send lines before its version line; a server
/// refuses a client that does, before any packet phase, so no DISCONNECT is queued.
#[test]
fn server_refuses_lines_before_the_version() {
    for junk in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\r\n",
        b"hello\nSSH-2.0-x\r\n",
        b"SSX-2.0-x\r\n",
    ] {
        let now = origin();
        let mut t = fresh(Role::Server, server_config(), now);
        expect_protocol_error(
            t.decode(&mut junk.to_vec(), now),
            DisconnectReason::PROTOCOL_ERROR,
        );
        assert!(t.is_closed());
        assert_only_greeting(&mut t);
    }
}

/// A client skips up to 1024 lines before the server's version line (OpenSSH's limit) and
/// keeps none of them.
#[test]
fn client_takes_1024_preamble_lines_and_refuses_the_next() {
    let now = origin();
    let mut t = fresh(Role::Client, client_config(), now);
    let mut reader = ssh_proto::version::VersionReader::new(Role::Client);
    for i in 0..1024 {
        let mut line = format!("preamble line {i}\r\n").into_bytes();
        let decoded = t.decode(&mut line, now).unwrap();
        assert_eq!(decoded.consumed, line.len());
        assert_eq!(reader.feed(&line), Ok(None));
        assert_eq!(reader.buffered_len(), 0, "a preamble line is not kept");
    }
    // Line 1024 was the last one allowed; a version line is still welcome.
    let mut ok = fresh(Role::Client, client_config(), now);
    let mut many = b"x\r\n".repeat(1024);
    many.extend_from_slice(b"SSH-2.0-Server_1\r\n");
    assert_eq!(ok.decode(&mut many, now).unwrap().consumed, many.len());
    assert_eq!(ok.peer_version().unwrap().preamble_lines(), 1024);

    // Line 1025 is refused at its first byte.
    expect_protocol_error(
        t.decode(&mut b"o".to_vec(), now),
        DisconnectReason::PROTOCOL_ERROR,
    );
    assert!(t.is_closed());
}

/// A line before the version line may be 8192 bytes with its terminator, no more.
#[test]
fn client_refuses_a_preamble_line_over_8192_bytes() {
    let now = origin();
    // 8191 bytes and LF: 8192 with the terminator, the most allowed.
    let mut t = fresh(Role::Client, client_config(), now);
    let mut line = vec![b'a'; 8191];
    line.extend_from_slice(b"\nSSH-2.0-Server_1\r\n");
    assert!(t.decode(&mut line, now).is_ok());
    assert!(t.peer_version().is_some());

    // One byte more, fed in 1 KiB reads: refused as soon as byte 8192 arrives, with
    // nothing held in between.
    let mut t = fresh(Role::Client, client_config(), now);
    let mut reader = ssh_proto::version::VersionReader::new(Role::Client);
    for _ in 0..7 {
        let mut chunk = vec![b'a'; 1024];
        assert_eq!(t.decode(&mut chunk, now).unwrap().consumed, 1024);
        assert_eq!(reader.feed(&chunk), Ok(None));
        assert_eq!(reader.buffered_len(), 0);
    }
    let mut chunk = vec![b'a'; 1023];
    assert_eq!(t.decode(&mut chunk, now).unwrap().consumed, 1023);
    expect_protocol_error(
        t.decode(&mut b"a".to_vec(), now),
        DisconnectReason::PROTOCOL_ERROR,
    );
    assert!(reader.feed(&[b'a'; 1024]).is_err());
}

/// RFC 4253 section 4.2: at most 255 bytes with the terminator, no NUL, and protocol
/// version 2.0 (or 1.99). Version 1 gets PROTOCOL_VERSION_NOT_SUPPORTED.
#[test]
fn bad_version_lines_are_refused() {
    let mut long = b"SSH-2.0-Long_1 ".to_vec();
    long.resize(254, b'c');
    long.extend_from_slice(b"\r\n"); // 256 bytes with CR LF
    let mut at_limit = long[..253].to_vec();
    at_limit.extend_from_slice(b"\r\n"); // 255 bytes: the most allowed
    let mut long_lf = long[..255].to_vec();
    long_lf.push(b'\n'); // 256 bytes with a bare LF
    let cases: [(&[u8], DisconnectReason); 6] = [
        (&long, DisconnectReason::PROTOCOL_ERROR),
        (&long_lf, DisconnectReason::PROTOCOL_ERROR),
        (b"SSH-2.0-Nul\0_1\r\n", DisconnectReason::PROTOCOL_ERROR),
        (b"SSH-2.0-x \0comment\r\n", DisconnectReason::PROTOCOL_ERROR),
        (
            b"SSH-1.5-Old_1\r\n",
            DisconnectReason::PROTOCOL_VERSION_NOT_SUPPORTED,
        ),
        (
            b"SSH-1.5-Old_1\n",
            DisconnectReason::PROTOCOL_VERSION_NOT_SUPPORTED,
        ),
    ];
    for role in [Role::Client, Role::Server] {
        for (line, reason) in cases {
            let now = origin();
            let mut t = fresh(role, server_config(), now);
            expect_protocol_error(t.decode(&mut line.to_vec(), now), reason);
            assert!(t.is_closed());
            assert_only_greeting(&mut t);
        }
        let now = origin();
        let mut t = fresh(role, server_config(), now);
        assert!(t.decode(&mut at_limit.clone(), now).is_ok());
        assert_eq!(t.peer_version().unwrap().as_bytes().len(), 253);
    }

    // However a long line is cut into reads, the reader never holds more than 255 bytes.
    let mut reader = ssh_proto::version::VersionReader::new(Role::Server);
    let mut failed = false;
    for chunk in long.chunks(7) {
        match reader.feed(chunk) {
            Ok(None) => assert!(reader.buffered_len() <= 255),
            Ok(Some(_)) => panic!("a 256-byte line was accepted"),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed);
}

/// SSH-1.99 is version 2 (RFC 4253 section 5.1), a bare LF ends the line, and the line is
/// hashed exactly as received: the peer signs or checks the exchange hash over its own
/// line, comments and all, so any change on our side would fail the key exchange.
#[test]
fn protocol_1_99_and_bare_lf_complete_and_hash_the_exact_line() {
    // A client talking to such a server: the server's signature covers its exact line.
    let mut rig = Rig::new(
        Role::Client,
        client_config(),
        b"SSH-1.99-Scripted_1.0 a comment  with spaces\n",
    );
    let version = rig.t.peer_version().unwrap().clone();
    assert_eq!(version.protocol(), "1.99");
    assert_eq!(
        version.as_bytes(),
        b"SSH-1.99-Scripted_1.0 a comment  with spaces"
    );
    rig.handshake();
    assert!(rig.t.is_ready());

    // A server talking to such a client: the client checks the server's signature over a
    // hash that holds the client's exact line.
    let mut rig = Rig::new(Role::Server, server_config(), b"SSH-2.0-Scripted_1.0 \n");
    assert_eq!(
        rig.t.peer_version().unwrap().as_bytes(),
        b"SSH-2.0-Scripted_1.0 "
    );
    rig.handshake();
    assert!(rig.t.is_ready());
    // Encrypted traffic flows both ways under the keys of that hash.
    rig.send(&message(MessageNumber::USERAUTH_REQUEST, 10));
    rig.pump().unwrap();
    assert_eq!(
        rig.out.payloads(),
        [&message(MessageNumber::USERAUTH_REQUEST, 10)[..]]
    );
}

/// The client floods a server that has not authenticated it with IGNORE, DEBUG and PING:
/// nothing is answered, nothing is handed up, nothing is queued, and the packet cap ends it.
#[test]
fn preauth_flood_gets_no_replies_and_hits_the_packet_cap() {
    let server = Config {
        preauth_max_packets: 100,
        ..server_config()
    };
    let mut pair = pair_with(client_config(), server, 4);
    pair.handshake().unwrap();
    let already = pair.server.transport.stats().packets_received;
    let kinds = [ignore(100), debug_message("flood"), ping(b"are you there")];
    let mut sent = 0;
    let error = loop {
        send(&mut pair.client.transport, &kinds[sent % 3]);
        sent += 1;
        match to_server(&mut pair) {
            Ok(out) => {
                assert!(out.packets.is_empty() && out.events.is_empty());
                assert_eq!(pair.server.transport.pending_output(), 0, "no reply");
                assert!(pair.server.inbox.is_empty());
            }
            Err(e) => break e,
        }
        assert!(sent < 1000, "no cap");
    };
    assert_eq!(
        already + sent as u64,
        101,
        "the 101st packet is one too many"
    );
    expect_protocol_error(Err::<(), _>(error), DisconnectReason::PROTOCOL_ERROR);
    client_hears_disconnect(&mut pair, DisconnectReason::PROTOCOL_ERROR);
}

#[test]
fn preauth_flood_hits_the_byte_cap() {
    let server = Config {
        preauth_max_bytes: 64 * 1024,
        ..server_config()
    };
    let mut pair = pair_with(client_config(), server, 5);
    pair.handshake().unwrap();
    let mut received = pair.server.transport.stats().bytes_received;
    let error = loop {
        send(&mut pair.client.transport, &ignore(4000));
        pair.flush();
        let packet_len = pair.c2s_in_flight().len() as u64;
        match to_server(&mut pair) {
            Ok(_) => {
                received += packet_len;
                assert!(received <= 64 * 1024);
                assert_eq!(pair.server.transport.pending_output(), 0);
            }
            Err(e) => {
                assert!(received + packet_len > 64 * 1024, "refused under the cap");
                break e;
            }
        }
    };
    expect_protocol_error(Err::<(), _>(error), DisconnectReason::PROTOCOL_ERROR);
    client_hears_disconnect(&mut pair, DisconnectReason::PROTOCOL_ERROR);
}

/// Without strict key exchange IGNORE is allowed during the first key exchange, so a
/// flood can come before any key: the same cap holds there.
#[test]
fn preauth_flood_before_keys_hits_the_cap() {
    let server = Config {
        preauth_max_packets: 50,
        strict_kex: false,
        ..server_config()
    };
    let now = origin();
    let mut t = fresh(Role::Server, server, now);
    let mut greeting = Vec::new();
    t.poll_transmit(&mut greeting);
    let mut input = b"SSH-2.0-Flood_1\r\n".to_vec();
    for _ in 0..50 {
        input.extend_from_slice(&plain_packet(&ignore(16)));
    }
    let mut out = Output::default();
    feed(&mut t, &mut input, now, true, &mut out).unwrap();
    assert!(input.is_empty() && out.packets.is_empty());
    assert_eq!(t.pending_output(), 0);

    let mut one_more = plain_packet(&ping(b"x"));
    let result = feed(&mut t, &mut one_more, now, true, &mut out);
    expect_protocol_error(result, DisconnectReason::PROTOCOL_ERROR);
    let mut sent = Vec::new();
    t.poll_transmit(&mut sent);
    let packets = plain_packets(&sent);
    assert_eq!(packets.len(), 1);
    expect_disconnect(&packets[0], DisconnectReason::PROTOCOL_ERROR);
}

/// OpenSSH PROTOCOL section 1.9: PING after authentication gets a PONG with the same
/// data; during a key exchange it gets nothing.
#[test]
fn ping_gets_pong_only_after_authentication_and_outside_key_exchange() {
    let mut rig = Rig::standard(Role::Server, server_config());
    let ext_info = rig.handshake().unwrap();
    assert!(
        ext_info
            .windows(b"ping@openssh.com".len())
            .any(|w| w == b"ping@openssh.com")
    );

    rig.send(&ping(b"before auth"));
    rig.pump().unwrap();
    assert_eq!(rig.try_recv(), None);

    rig.t.set_authenticated();
    let data = b"\x00binary\xffdata";
    rig.send(&ping(data));
    rig.pump().unwrap();
    let mut pong = vec![MessageNumber::PONG.0];
    pong.put_string(data);
    assert_eq!(rig.recv(), pong);
    assert!(rig.out.packets.is_empty(), "PING never goes up");

    // The peer starts a rekey and pings in the middle of it: only the key exchange
    // answers.
    let ours = rig.kexinit(&Preferences::default());
    rig.send(&ours);
    rig.send(&ping(b"during kex"));
    rig.pump().unwrap();
    let theirs = rig.recv_kexinit();
    assert_eq!(rig.try_recv(), None, "no PONG during key exchange");
    let round = rig.negotiate(ours, theirs);
    rig.client_kex(&round);
    assert_eq!(rig.try_recv(), None);

    rig.send(&ping(b"after"));
    rig.pump().unwrap();
    let mut pong = vec![MessageNumber::PONG.0];
    pong.put_string(b"after");
    assert_eq!(rig.recv(), pong);
}
