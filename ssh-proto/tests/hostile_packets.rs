//! Hostile binary packets: impossible lengths before and after keys, the
//! biggest packets that must pass, malformed framing, flipped bits under every cipher
//! suite, unknown messages, and a peer that never answers our KEXINIT. Shared helpers are
//! in `hostile_common`.

#[expect(
    dead_code,
    reason = "the helpers are shared by three test files, and each uses a part of them"
)]
mod hostile_common;

use std::time::Duration;

use ssh_proto::Error;
use ssh_proto::config::Config;
use ssh_proto::crypto::all_providers;
use ssh_proto::msg::{DisconnectReason, MessageNumber};
use ssh_proto::rekey::RekeyLimits;
use ssh_proto::role::Role;
use ssh_proto::sim::Pair;
use ssh_proto::wire::Writer;

use hostile_common::*;

const HUGE_LENGTHS: [u32; 5] = [1 << 31, 0xffff_fff0, 256 * 1024 + 1, u32::MAX, 1 << 20];

/// A length that cannot be right is refused from its four bytes alone: the caller never
/// has to read, let alone buffer, the body it announces.
#[test]
fn huge_lengths_before_keys_are_refused_from_four_bytes() {
    for role in [Role::Client, Role::Server] {
        for len in HUGE_LENGTHS {
            let now = origin();
            let mut t = in_packet_phase(role, now);
            let mut header = len.to_be_bytes();
            let decoded = t.decode(&mut header[..3], now).unwrap();
            assert_eq!((decoded.consumed, decoded.packet), (0, None));
            expect_protocol_error(
                t.decode(&mut header, now).map(|d| d.consumed),
                DisconnectReason::PROTOCOL_ERROR,
            );
            let text = queued_plain_disconnect(&mut t, DisconnectReason::PROTOCOL_ERROR);
            assert!(text.contains(&len.to_string()), "{text}");
        }
    }
}

/// The same lengths under every cipher suite, forged by a man in the middle who flips the
/// bits of a real packet's length field (the length is either in the clear or encrypted
/// with a stream cipher, so flipping works on both). The receiver refuses as soon as it
/// can read the length, and with MAC_ERROR, as for any corrupted packet.
#[test]
fn bad_lengths_after_keys_are_mac_errors_from_the_header_alone() {
    let mut seed = 100;
    for (cipher, mac) in cipher_suites() {
        // Too long, too short, and not a multiple of the cipher's block.
        let mut lengths = HUGE_LENGTHS.to_vec();
        lengths.extend([0, 4, 13]);
        for forged in lengths {
            seed += 1;
            let mut pair = ready_pair(cipher, mac, provider(), seed);
            send(
                &mut pair.client.transport,
                &message(MessageNumber::USERAUTH_REQUEST, 20),
            );
            pair.flush();
            let wire = pair.c2s_in_flight();
            let real = (wire.len() - 4 - tag_len(cipher, mac)) as u32;
            for (byte, flip) in wire[..4].iter_mut().zip((real ^ forged).to_be_bytes()) {
                *byte ^= flip;
            }
            let mut wire = std::mem::take(wire);

            let header = length_header_len(cipher, mac);
            let server = &mut pair.server.transport;
            let decoded = server.decode(&mut wire[..header - 1], pair.now).unwrap();
            assert_eq!((decoded.consumed, decoded.packet), (0, None));
            let result = server.decode(&mut wire[..header], pair.now);
            expect_protocol_error(result, DisconnectReason::MAC_ERROR);
            client_hears_disconnect(&mut pair, DisconnectReason::MAC_ERROR);
        }
    }
}

/// The length a sealer gives a payload of `payload` bytes (RFC 4253 section 6).
fn sealed_length(payload: usize, block: usize, length_is_aad: bool) -> usize {
    let aligned = 1 + payload + if length_is_aad { 0 } else { 4 };
    let mut pad = block - aligned % block;
    if pad < 4 {
        pad += block;
    }
    1 + payload + pad
}

/// RFC 4253 section 6.1: packets of 35000 bytes (32768 of payload) must be accepted; we
/// accept up to 256 KiB, under every cipher suite.
#[test]
fn big_packets_are_accepted() {
    let max = ssh_proto::packet::MAX_PACKET_LEN;
    for (i, (cipher, mac)) in cipher_suites().into_iter().enumerate() {
        let mut pair = ready_pair(cipher, mac, provider(), 200 + i as u64);
        pair.client.transport.set_authenticated();
        pair.server.transport.set_authenticated();
        let aad = cipher.is_aead() || mac.is_etm();
        let block = cipher.block_len();
        let biggest = (max - 300..max)
            .rev()
            .find(|&p| sealed_length(p, block, aad) <= max)
            .unwrap();
        for payload in [32768, 35000 - 30, biggest] {
            let m = message(MessageNumber::USERAUTH_REQUEST, payload - 1);
            send(&mut pair.client.transport, &m);
            pair.flush();
            let on_wire = pair.c2s_in_flight().len() - 4 - tag_len(cipher, mac);
            assert_eq!(on_wire, sealed_length(payload, block, aad));
            let out = to_server(&mut pair).unwrap();
            assert_eq!(out.payloads(), [&m[..]], "{cipher:?} {mac:?} {payload}");
        }
        assert!(sealed_length(biggest, block, aad) > max - block);
    }
}

/// RFC 4253 section 6: at least 5 bytes of packet, at least 4 of padding, a message type
/// left after the padding, and whole cipher blocks (8 bytes before keys).
#[test]
fn malformed_framing_before_keys_is_a_protocol_error() {
    let body = [MessageNumber::IGNORE.0; 11];
    let cases: [(&str, Vec<u8>, usize); 8] = [
        ("length 0", raw_packet(0, 0, &[0; 3]), 4),
        ("length 1", raw_packet(1, 0, &[0; 3]), 4),
        ("length 4", raw_packet(4, 0, &[0; 3]), 4),
        ("not a block multiple", raw_packet(13, 4, &body), 4),
        ("padding 3", raw_packet(12, 3, &body), 16),
        ("padding 0", raw_packet(12, 0, &body), 16),
        ("padding leaves no type", raw_packet(12, 11, &body), 16),
        ("padding past the end", raw_packet(12, 255, &body), 16),
    ];
    for role in [Role::Client, Role::Server] {
        for (what, packet, fails_at) in &cases {
            let now = origin();
            let mut t = in_packet_phase(role, now);
            let mut input = packet.clone();
            if *fails_at > 4 {
                let decoded = t.decode(&mut input[..fails_at - 1], now).unwrap();
                assert_eq!((decoded.consumed, decoded.packet), (0, None), "{what}");
            }
            let result = t.decode(&mut input[..*fails_at], now);
            expect_protocol_error(result, DisconnectReason::PROTOCOL_ERROR);
            queued_plain_disconnect(&mut t, DisconnectReason::PROTOCOL_ERROR);
        }
    }
    // The smallest well-formed packet passes the same checks.
    let now = origin();
    let mut t = in_packet_phase(Role::Server, now);
    let mut smallest = raw_packet(12, 10, &[MessageNumber::IGNORE.0; 11]);
    assert_eq!(t.decode(&mut smallest, now).unwrap().consumed, 16);
}

/// One flipped bit anywhere in a packet, for every cipher suite and both providers:
/// MAC_ERROR, and nothing of the packet is handed up. Every byte position of a small
/// packet is tried with two different bits, so every bit index is hit across the packet.
/// When the flip makes a length the receiver must wait for, more bytes are sent, as an
/// attacker would have to.
#[test]
fn every_flipped_bit_is_a_mac_error() {
    let small = message(MessageNumber::USERAUTH_REQUEST, 3);
    for provider in all_providers() {
        for (cipher, mac) in cipher_suites() {
            let sealed = |pair: &mut Pair| {
                send(&mut pair.client.transport, &small);
                pair.flush();
                std::mem::take(pair.c2s_in_flight())
            };
            // The packet arrives whole when nothing is flipped.
            let mut pair = ready_pair(cipher, mac, provider, 300);
            let intact = sealed(&mut pair);
            pair.server.inbox = intact.clone();
            let now = pair.now;
            let mut out = Output::default();
            feed(
                &mut pair.server.transport,
                &mut pair.server.inbox,
                now,
                true,
                &mut out,
            )
            .unwrap();
            assert_eq!(out.payloads(), [&small[..]]);

            for position in 0..intact.len() {
                for bit in [position % 8, (position + 3) % 8] {
                    let mut pair = ready_pair(cipher, mac, provider, 300);
                    let mut wire = sealed(&mut pair);
                    assert_eq!(wire, intact, "the same seed seals the same bytes");
                    wire[position] ^= 1 << bit;

                    let mut out = Output::default();
                    let server = &mut pair.server.transport;
                    let mut result = feed(server, &mut wire, now, true, &mut out);
                    if result.is_ok() {
                        // A longer length that is still in range: send what it asks for.
                        assert!(position < 4, "only a length can make the receiver wait");
                        wire.resize(ssh_proto::packet::MAX_PACKET_LEN + 100, 0);
                        result = feed(server, &mut wire, now, true, &mut out);
                    }
                    let what = format!("{cipher:?} {mac:?} byte {position} bit {bit}");
                    let e = result.expect_err(&what);
                    assert_eq!(e.disconnect_reason(), DisconnectReason::MAC_ERROR, "{what}");
                    assert!(
                        out.packets.is_empty(),
                        "{what}: corrupted data was handed up"
                    );
                    client_hears_disconnect(&mut pair, DisconnectReason::MAC_ERROR);
                }
            }
        }
    }
}

/// RFC 4253 section 11.4: a message nobody implements gets UNIMPLEMENTED with its
/// sequence number, and the connection carries on. Transport-range numbers are answered
/// by the transport; others go up, and the layer above answers through
/// `send_unimplemented` with the sequence number it was given.
#[test]
fn unknown_messages_after_authentication_get_unimplemented() {
    for role in [Role::Server, Role::Client] {
        let config = if role.is_server() {
            server_config()
        } else {
            client_config()
        };
        let mut rig = Rig::standard(role, config);
        rig.handshake();
        rig.t.set_authenticated();

        let transport_range = (0x08..=0x13).chain(0x16..=0x1d).chain(0x20..=0x31);
        for number in transport_range {
            let seq = rig.peer.sealer.seq;
            rig.send(&message(MessageNumber(number), 7));
            rig.pump().unwrap();
            let mut expected = vec![MessageNumber::UNIMPLEMENTED.0];
            expected.put_u32(seq);
            assert_eq!(rig.recv(), expected, "{role:?} message {number:#x}");
            assert!(rig.out.packets.is_empty());
        }

        for number in [0x00, 0x7f, 0xc2, 0xff] {
            let seq = rig.peer.sealer.seq;
            rig.send(&message(MessageNumber(number), 7));
            rig.pump().unwrap();
            let (got_seq, payload) = rig.out.packets.pop().expect("handed up");
            assert_eq!((got_seq, payload[0]), (seq, number));
            rig.t.send_unimplemented(got_seq).unwrap();
            rig.pump().unwrap();
            let mut expected = vec![MessageNumber::UNIMPLEMENTED.0];
            expected.put_u32(seq);
            assert_eq!(rig.recv(), expected);
        }

        // Still alive both ways.
        let m = message(MessageNumber::CHANNEL_DATA, 40);
        rig.send(&m);
        rig.pump().unwrap();
        assert_eq!(rig.out.payloads(), [&m[..]]);
        send(&mut rig.t, &m);
        rig.pump().unwrap();
        assert_eq!(rig.recv(), m);
    }
}

/// We start a rekey; the peer never answers and our application keeps producing. What we
/// hold stays under the configured limit (`can_send` goes false there, so the caller stops
/// reading its local sockets), nothing more is queued for the wire, and the kex deadline
/// ends the connection.
#[test]
fn peer_that_never_answers_our_kexinit_is_bounded_and_timed_out() {
    let limit = 256 * 1024;
    let server = Config {
        held_limit: limit,
        rekey: RekeyLimits {
            time: Duration::from_secs(10),
            ..RekeyLimits::default()
        },
        ..server_config()
    };
    let mut pair = pair_with(client_config(), server, 6);
    pair.handshake().unwrap();
    pair.client.transport.set_authenticated();
    pair.server.transport.set_authenticated();

    pair.now += Duration::from_secs(11);
    let now = pair.now;
    pair.server.transport.handle_timeout(now).unwrap();
    assert!(pair.server.transport.is_rekeying());
    let kexinit_len = pair.server.transport.pending_output();
    assert!(kexinit_len > 0);

    let chunk = message(MessageNumber::CHANNEL_DATA, 32 * 1024 - 1);
    let mut held = 0;
    while pair.server.transport.can_send() {
        send(&mut pair.server.transport, &chunk);
        held += 1;
        assert!(held < 1000, "can_send never said no");
    }
    assert_eq!(held, limit.div_ceil(chunk.len() + 4));
    assert_eq!(
        pair.server.transport.pending_output(),
        kexinit_len,
        "held data is not queued for the wire"
    );

    let deadline = now + Config::default().kex_timeout;
    assert_eq!(pair.server.transport.poll_timeout(), Some(deadline));
    pair.server
        .transport
        .handle_timeout(deadline - Duration::from_millis(1))
        .unwrap();
    expect_error(
        pair.server.transport.handle_timeout(deadline),
        DisconnectReason::CONNECTION_LOST,
        |e| matches!(e, Error::Timeout(t) if t.contains("key exchange")),
    );
    assert!(!pair.server.transport.can_send());
    // The client sees our KEXINIT, then the DISCONNECT; none of the held data.
    let mut out = Output::default();
    let result = deliver_into(&mut pair, Role::Server, &mut out);
    expect_error(result, DisconnectReason::CONNECTION_LOST, |e| {
        matches!(e, Error::PeerDisconnected { .. })
    });
    assert!(out.packets.is_empty());
}

/// Keys are renewed long before a sequence number could wrap (RFC 4344 section 3.1) and
/// after a configurable volume (1 GiB at most by default, within AES-GCM's margins): the
/// limits are checked as packets go out and come in, so the rekey starts on the packet
/// that reaches them.
#[test]
fn rekey_starts_before_sequence_numbers_wrap_and_by_volume() {
    let defaults = RekeyLimits::default();
    assert!(defaults.packets <= 1 << 31, "well before 2^32");
    assert!(defaults.bytes <= 1 << 30);

    let by_packets = RekeyLimits {
        packets: 50,
        ..RekeyLimits::default()
    };
    let by_bytes = RekeyLimits {
        bytes: 64 * 1024,
        ..RekeyLimits::default()
    };
    for limits in [by_packets, by_bytes] {
        let client = Config {
            rekey: limits,
            ..client_config()
        };
        let mut pair = pair_with(client, server_config(), 20);
        pair.handshake().unwrap();
        pair.client.transport.set_authenticated();
        pair.server.transport.set_authenticated();
        let start = pair.client.transport.stats();
        let m = message(MessageNumber::CHANNEL_DATA, 1000);
        let mut sent = 0;
        while !pair.client.transport.is_rekeying() {
            let before = pair.client.transport.stats();
            let packets = before.packets_sent - start.packets_sent;
            let bytes = before.bytes_sent - start.bytes_sent;
            assert!(packets < limits.packets && bytes < limits.bytes, "late");
            send(&mut pair.client.transport, &m);
            sent += 1;
        }
        let after = pair.client.transport.stats();
        // The message that reached the limit, then our KEXINIT.
        let packets = after.packets_sent - start.packets_sent - 1;
        let bytes = after.bytes_sent - start.bytes_sent;
        assert!(packets >= limits.packets || bytes >= limits.bytes);
        assert_eq!(packets, sent);
        pair.settle(100).unwrap();
        assert_eq!(pair.client.kex_count, 2);
        assert_eq!(pair.server.received.len() as u64, sent);
    }
}
