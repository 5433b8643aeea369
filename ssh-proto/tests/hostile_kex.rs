//! Hostile key exchanges (Terrapin and the rest): strict key exchange against a man in the
//! middle, EXT_INFO placement, bad key exchange values, hostile algorithm lists, guessed
//! packets, and host keys that must be refused. Shared helpers are in `hostile_common`.

#[expect(
    dead_code,
    reason = "the helpers are shared by three test files, and each uses a part of them"
)]
mod hostile_common;

use std::time::Duration;

use ssh_proto::Error;
use ssh_proto::algorithms::{Algorithm, Cipher, Kex, Mac, Negotiated, Preferences};
use ssh_proto::config::Config;
use ssh_proto::crypto::kem::{MLKEM768_CIPHERTEXT_LEN, MLKEM768_PUBLIC_LEN};
use ssh_proto::hostkey::{HostKeyPair, SignatureAlg};
use ssh_proto::kex::{self, KexInit};
use ssh_proto::msg::{DisconnectReason, MessageNumber};
use ssh_proto::packet::{Opened, Opener};
use ssh_proto::rekey::RekeyLimits;
use ssh_proto::role::Role;
use ssh_proto::sim::Pair;
use ssh_proto::transport::{Event, Transport};
use ssh_proto::wire::Writer;

use hostile_common::*;

// ---------------------------------------------------------------------------------------
// Strict key exchange and Terrapin

/// Inserts `packet` into `wire` right after the version line.
fn insert_after_version(wire: &mut Vec<u8>, packet: &[u8]) {
    let at = wire.iter().position(|&b| b == b'\n').unwrap() + 1;
    wire.splice(at..at, packet.iter().copied());
}

/// The offset just past the plaintext NEWKEYS in `wire`, which starts at a packet
/// boundary: what follows is encrypted.
fn end_of_newkeys(wire: &[u8]) -> usize {
    let mut buf = wire.to_vec();
    let mut opener = Opener::plain();
    let mut at = 0;
    loop {
        match opener.open(&mut buf[at..]).unwrap() {
            Opened::Packet { len, payload, .. } => {
                let newkeys = buf[at + payload.start] == MessageNumber::NEWKEYS.0;
                at += len;
                if newkeys {
                    return at;
                }
            }
            Opened::NeedMore(_) => panic!("no NEWKEYS in flight"),
        }
    }
}

/// A man in the middle inserts a plaintext IGNORE before the peer's KEXINIT. With strict
/// key exchange KEXINIT must be the first packet, so either role disconnects; without
/// it, IGNORE is harmless there and the handshake completes.
#[test]
fn ignore_before_kexinit_is_refused_in_strict_mode_in_both_roles() {
    for victim in [Role::Server, Role::Client] {
        for strict in [true, false] {
            let client = Config {
                strict_kex: strict,
                ..client_config()
            };
            let server = Config {
                strict_kex: strict,
                ..server_config()
            };
            let mut pair = pair_with(client, server, 7);
            pair.flush();
            let wire = match victim {
                Role::Server => pair.c2s_in_flight(),
                Role::Client => pair.s2c_in_flight(),
            };
            insert_after_version(wire, &plain_packet(&ignore(5)));
            let result = match victim {
                Role::Server => to_server(&mut pair),
                Role::Client => to_client(&mut pair),
            };
            if !strict {
                result.unwrap();
                pair.handshake().unwrap();
                continue;
            }
            let e = expect_protocol_error(result, DisconnectReason::PROTOCOL_ERROR);
            assert!(e.to_string().contains("strict"), "{e}");
            match victim {
                Role::Server => {
                    client_hears_disconnect(&mut pair, DisconnectReason::PROTOCOL_ERROR)
                }
                Role::Client => {
                    server_hears_disconnect(&mut pair, DisconnectReason::PROTOCOL_ERROR)
                }
            }
        }
    }
}

/// Strict key exchange: after the KEXINITs, only key exchange messages may come until
/// NEWKEYS. Anything else, even IGNORE, disconnects, in both roles.
#[test]
fn non_kex_messages_during_the_first_kex_are_refused() {
    let intruders = [
        ignore(0),
        debug_message("hi"),
        {
            let mut m = vec![MessageNumber::UNIMPLEMENTED.0];
            m.put_u32(1);
            m
        },
        message(MessageNumber::SERVICE_REQUEST, 4),
        message(MessageNumber::SERVICE_ACCEPT, 4),
        message(MessageNumber::EXT_INFO, 4),
        message(MessageNumber(0x08), 4),
        message(MessageNumber::USERAUTH_REQUEST, 4),
        message(MessageNumber::CHANNEL_DATA, 4),
        ping(b"x"),
    ];
    for victim in [Role::Server, Role::Client] {
        for intruder in &intruders {
            let mut pair = pair_with(client_config(), server_config(), 8);
            pair.flush();
            // Right after the KEXINIT, the end of each side's first flight.
            let packet = plain_packet(intruder);
            let result = match victim {
                Role::Server => {
                    pair.c2s_in_flight().extend_from_slice(&packet);
                    to_server(&mut pair)
                }
                Role::Client => {
                    pair.s2c_in_flight().extend_from_slice(&packet);
                    to_client(&mut pair)
                }
            };
            expect_protocol_error(result, DisconnectReason::PROTOCOL_ERROR);
            match victim {
                Role::Server => {
                    client_hears_disconnect(&mut pair, DisconnectReason::PROTOCOL_ERROR)
                }
                Role::Client => {
                    server_hears_disconnect(&mut pair, DisconnectReason::PROTOCOL_ERROR)
                }
            }
        }
    }
}

/// The Terrapin attack (CVE-2023-48795) against a client: insert an IGNORE during the
/// handshake so the client's receive sequence number runs one ahead, then delete the
/// server's EXT_INFO, the first encrypted packet, to bring it back in line. With
/// ChaCha20-Poly1305, whose nonce is the sequence number, and no strict key exchange, the
/// deletion goes unnoticed (shown here so that the strict case means something); with
/// strict key exchange the insertion itself ends the handshake.
#[test]
fn terrapin_prefix_truncation_is_refused_in_strict_mode() {
    for strict in [false, true] {
        let client = Config {
            strict_kex: strict,
            algorithms: only(
                Kex::Curve25519Sha256,
                Cipher::ChaCha20Poly1305,
                Mac::HmacSha256,
            ),
            ..client_config()
        };
        let server = Config {
            strict_kex: strict,
            ..server_config()
        };
        let mut pair = pair_with(client, server, 9);
        pair.flush();
        pair.s2c_in_flight()
            .extend_from_slice(&plain_packet(&ignore(0)));
        to_server(&mut pair).unwrap();
        let result = to_client(&mut pair);
        if strict {
            expect_protocol_error(result, DisconnectReason::PROTOCOL_ERROR);
            server_hears_disconnect(&mut pair, DisconnectReason::PROTOCOL_ERROR);
            continue;
        }
        result.unwrap();
        to_server(&mut pair).unwrap(); // KEX_ECDH_INIT; out come REPLY, NEWKEYS, EXT_INFO
        pair.flush();
        let wire = pair.s2c_in_flight();
        let end = end_of_newkeys(wire);
        assert!(wire.len() > end, "EXT_INFO follows NEWKEYS");
        wire.truncate(end);
        let out = to_client(&mut pair).unwrap();
        to_server(&mut pair).unwrap();
        assert!(pair.client.transport.is_ready() && pair.server.transport.is_ready());
        let m = message(MessageNumber::SERVICE_ACCEPT, 4);
        send(&mut pair.server.transport, &m);
        let later = to_client(&mut pair).unwrap();
        assert_eq!(later.payloads(), [&m[..]]);
        assert!(
            !out.has_ext_info() && !later.has_ext_info(),
            "without strict kex the deletion goes unseen"
        );
    }
}

/// Deleting the server's EXT_INFO alone shifts every later packet by one: the next one
/// fails authentication, with every cipher.
#[test]
fn deleting_ext_info_is_a_mac_error() {
    for (cipher, mac) in cipher_suites() {
        let client = Config {
            algorithms: only(Kex::Curve25519Sha256, cipher, mac),
            ..client_config()
        };
        let mut pair = pair_with(client, server_config(), 10);
        pair.flush();
        to_server(&mut pair).unwrap();
        to_client(&mut pair).unwrap();
        to_server(&mut pair).unwrap();
        pair.flush();
        let wire = pair.s2c_in_flight();
        let end = end_of_newkeys(wire);
        wire.truncate(end);
        to_client(&mut pair).unwrap();
        to_server(&mut pair).unwrap();
        send(
            &mut pair.server.transport,
            &message(MessageNumber::SERVICE_ACCEPT, 4),
        );
        let mut out = Output::default();
        let result = deliver_into(&mut pair, Role::Server, &mut out);
        expect_protocol_error(result, DisconnectReason::MAC_ERROR);
        assert!(out.packets.is_empty() && !out.has_ext_info());
        server_hears_disconnect(&mut pair, DisconnectReason::MAC_ERROR);
    }
}

/// Without strict key exchange, RFC 4253 section 7.1 still limits what may come during a
/// key exchange: generic transport messages 1 to 4 are fine, anything for the layers
/// above (SERVICE_REQUEST and SERVICE_ACCEPT included) is not. Before the first NEWKEYS
/// such a packet can only be a forgery, so it must never reach the layer above.
#[test]
fn first_kex_without_strict_still_refuses_upper_layer_messages() {
    let allowed = [ignore(3), debug_message("fine"), {
        // Not about our KEXINIT (sequence number 0): that would refuse the key exchange.
        let mut m = vec![MessageNumber::UNIMPLEMENTED.0];
        m.put_u32(7);
        m
    }];
    let refused = [
        message(MessageNumber::SERVICE_REQUEST, 4),
        message(MessageNumber::SERVICE_ACCEPT, 4),
        ext_info(0, &[]),
        message(MessageNumber(0x00), 4),
        message(MessageNumber::USERAUTH_SUCCESS, 0),
        message(MessageNumber::CHANNEL_DATA, 4),
        message(MessageNumber(0x08), 4),
    ];
    for victim in [Role::Server, Role::Client] {
        for (intruder, ok) in allowed
            .iter()
            .map(|m| (m, true))
            .chain(refused.iter().map(|m| (m, false)))
        {
            let client = Config {
                strict_kex: false,
                ..client_config()
            };
            let mut pair = pair_with(client, server_config(), 11);
            pair.flush();
            let packet = plain_packet(intruder);
            let result = match victim {
                Role::Server => {
                    pair.c2s_in_flight().extend_from_slice(&packet);
                    to_server(&mut pair)
                }
                Role::Client => {
                    pair.s2c_in_flight().extend_from_slice(&packet);
                    to_client(&mut pair)
                }
            };
            if ok {
                assert!(result.unwrap().packets.is_empty());
                pair.handshake().unwrap();
            } else {
                let out = expect_protocol_error(result, DisconnectReason::PROTOCOL_ERROR);
                assert!(!out.to_string().contains("strict"), "{out}");
            }
        }
    }
}

/// A pair with keys in place, authenticated, after `rekeys` key exchanges past the first
/// (started by the client's time limit).
fn keyed_pair(cipher: Cipher, mac: Mac, strict: bool, rekeys: usize, seed: u64) -> Pair {
    let client = Config {
        strict_kex: strict,
        algorithms: only(Kex::Curve25519Sha256, cipher, mac),
        rekey: RekeyLimits {
            time: Duration::from_secs(10),
            ..RekeyLimits::default()
        },
        ..client_config()
    };
    let mut pair = pair_with(client, server_config(), seed);
    pair.handshake().unwrap();
    pair.client.transport.set_authenticated();
    pair.server.transport.set_authenticated();
    for _ in 0..rekeys {
        pair.advance(Duration::from_secs(11)).unwrap();
        pair.settle(100).unwrap();
    }
    assert_eq!(pair.client.kex_count, 1 + rekeys);
    assert_eq!(pair.server.kex_count, 1 + rekeys);
    assert!(pair.c2s_in_flight().is_empty() && pair.s2c_in_flight().is_empty());
    pair
}

/// The transport of `role` in `pair`.
fn side(pair: &mut Pair, role: Role) -> &mut Transport {
    match role {
        Role::Client => &mut pair.client.transport,
        Role::Server => &mut pair.server.transport,
    }
}

/// The bytes in flight from `sender`.
fn wire_from(pair: &mut Pair, sender: Role) -> &mut Vec<u8> {
    match sender {
        Role::Client => pair.c2s_in_flight(),
        Role::Server => pair.s2c_in_flight(),
    }
}

/// Checks that `role` reads a DISCONNECT with `reason` from the other side.
#[track_caller]
fn hears_disconnect(pair: &mut Pair, role: Role, reason: DisconnectReason) {
    match role {
        Role::Client => client_hears_disconnect(pair, reason),
        Role::Server => server_hears_disconnect(pair, reason),
    }
}

/// After NEWKEYS nothing can be forged, but encrypted packets can still be dropped or
/// replayed to shift the receiver's sequence number by one or two. Each shift fails
/// authentication, for every cipher, in both directions, before and after a rekey; the
/// packets behind the shift are never handed up.
#[test]
fn shifting_sequence_numbers_after_newkeys_is_a_mac_error() {
    #[derive(Debug, Clone, Copy)]
    enum Shift {
        DropOne,
        DropTwo,
        ReplayOne,
        ReplayTwo,
    }
    let mut seed = 400;
    for (cipher, mac) in cipher_suites() {
        for rekeys in [0, 1] {
            for sender in [Role::Client, Role::Server] {
                for shift in [
                    Shift::DropOne,
                    Shift::DropTwo,
                    Shift::ReplayOne,
                    Shift::ReplayTwo,
                ] {
                    seed += 1;
                    let mut pair = keyed_pair(cipher, mac, true, rekeys, seed);
                    // Two IGNOREs of one size, then the data behind them.
                    send(side(&mut pair, sender), &ignore(8));
                    pair.flush();
                    let one = wire_from(&mut pair, sender).len();
                    send(side(&mut pair, sender), &ignore(8));
                    send(
                        side(&mut pair, sender),
                        &message(MessageNumber::CHANNEL_DATA, 30),
                    );
                    pair.flush();
                    let wire = wire_from(&mut pair, sender);
                    let two = 2 * one;
                    let copy = wire[..two].to_vec();
                    match shift {
                        Shift::DropOne => drop(wire.drain(..one)),
                        Shift::DropTwo => drop(wire.drain(..two)),
                        Shift::ReplayOne => drop(wire.splice(one..one, copy[..one].to_vec())),
                        Shift::ReplayTwo => drop(wire.splice(two..two, copy)),
                    }

                    let what = format!("{cipher:?} {mac:?} rekeys={rekeys} {sender:?} {shift:?}");
                    let mut out = Output::default();
                    let e = deliver_into(&mut pair, sender, &mut out).expect_err(&what);
                    assert_eq!(e.disconnect_reason(), DisconnectReason::MAC_ERROR, "{what}");
                    assert!(out.packets.is_empty(), "{what}");
                    hears_disconnect(&mut pair, sender, DisconnectReason::MAC_ERROR);
                }
            }
        }
    }
}

/// Strict key exchange resets both sequence numbers to zero at every NEWKEYS, rekeys
/// included; seen here in the sequence numbers packets arrive with. Without it they run
/// on from the handshake's packets.
#[test]
fn sequence_numbers_restart_at_every_newkeys_in_strict_mode() {
    for strict in [true, false] {
        let mut pair = keyed_pair(Cipher::Aes128Gcm, Mac::HmacSha256, strict, 0, 12);
        // Without strict mode the numbers count on from the handshake: KEXINIT,
        // KEX_ECDH_*, NEWKEYS each way, and the server's EXT_INFO.
        let mut expected_start = [3, 4];
        for round in 0..3 {
            for (i, sender) in [Role::Client, Role::Server].into_iter().enumerate() {
                for _ in 0..3 {
                    send(
                        side(&mut pair, sender),
                        &message(MessageNumber::CHANNEL_DATA, 5),
                    );
                }
                let out = deliver_from(&mut pair, sender).unwrap();
                let seqs: Vec<u32> = out.packets.iter().map(|(seq, _)| *seq).collect();
                let first = if strict {
                    // Zero after NEWKEYS; the server's EXT_INFO took zero the first time.
                    u32::from(round == 0 && sender == Role::Server)
                } else {
                    expected_start[i]
                };
                assert_eq!(
                    seqs,
                    [first, first + 1, first + 2],
                    "strict={strict} round {round} {sender:?}"
                );
                // Under the same keys the count runs on.
                expected_start[i] = first + 3;
            }
            // A rekey: each side sends KEXINIT, KEX_ECDH_*, NEWKEYS.
            pair.advance(Duration::from_secs(11)).unwrap();
            pair.settle(100).unwrap();
            assert_eq!(pair.client.kex_count, round + 2);
            expected_start = expected_start.map(|s| s + 3);
        }
    }
}

/// The strict markers belong in the first KEXINIT only (OpenSSH PROTOCOL section 1.10).
/// A rekey KEXINIT without them is normal, whoever starts the rekey, and strict mode
/// (with its sequence number resets) carries on.
#[test]
fn rekey_kexinit_without_strict_marker_is_accepted() {
    let markers = [kex::STRICT_CLIENT, kex::STRICT_SERVER];
    for role in [Role::Client, Role::Server] {
        let mut config = if role.is_server() {
            server_config()
        } else {
            client_config()
        };
        config.rekey.time = Duration::from_secs(10);
        let mut rig = Rig::standard(role, config);
        rig.handshake();
        rig.t.set_authenticated();

        // Started by the peer.
        let ours = rig.kexinit(&Preferences::default());
        let parsed = KexInit::parse(&ours).unwrap();
        assert!(!markers.iter().any(|m| parsed.kex.contains(m)));
        let round = rig.exchange_kexinit(ours);
        let parsed = KexInit::parse(&round.theirs).unwrap();
        assert!(!markers.iter().any(|m| parsed.kex.contains(m)));
        match role {
            Role::Client => rig.serve(&round),
            Role::Server => rig.client_kex(&round),
        }

        // Started by the transport, on its timer.
        rig.now += Duration::from_secs(11);
        rig.t.handle_timeout(rig.now).unwrap();
        rig.pump().unwrap();
        let theirs = rig.recv_kexinit();
        let ours = rig.kexinit(&Preferences::default());
        rig.send(&ours);
        let round = rig.negotiate(ours, theirs);
        match role {
            Role::Client => rig.serve(&round),
            Role::Server => rig.client_kex(&round),
        }

        let rekeys: Vec<bool> = rig
            .out
            .events
            .iter()
            .filter_map(|e| match e {
                Event::KeysReady { negotiated, rekey } => {
                    assert!(negotiated.strict_kex);
                    Some(*rekey)
                }
                _ => None,
            })
            .collect();
        assert_eq!(rekeys, [false, true, true]);
        // The peer reset its counts at NEWKEYS; the transport did too, or this fails.
        let m = message(MessageNumber::CHANNEL_DATA, 5);
        rig.send(&m);
        rig.pump().unwrap();
        assert_eq!(rig.out.packets, [(0, m.clone())]);
        send(&mut rig.t, &m);
        rig.pump().unwrap();
        assert_eq!(rig.try_recv(), Some((0, m)));
    }
}

// ---------------------------------------------------------------------------------------
// EXT_INFO

fn server_sig_algs() -> Vec<u8> {
    ext_info(1, &[(b"server-sig-algs", b"ssh-ed25519")])
}

/// A client whose scripted server finished the first key exchange and sent nothing else.
fn client_rig() -> Rig {
    let mut rig = Rig::standard(Role::Client, client_config());
    rig.handshake();
    rig
}

/// RFC 8308 section 2.4: EXT_INFO only as the first packet after the first NEWKEYS, and
/// once. Anywhere else it is a protocol error, and the client says so.
#[test]
fn misplaced_or_repeated_ext_info_is_a_protocol_error() {
    // The control: right after NEWKEYS it is read.
    let mut rig = client_rig();
    rig.send(&server_sig_algs());
    rig.pump().unwrap();
    assert!(rig.out.has_ext_info());

    // Twice in a row.
    rig.send(&server_sig_algs());
    expect_protocol_error(rig.pump(), DisconnectReason::PROTOCOL_ERROR);
    rig.expect_disconnect(DisconnectReason::PROTOCOL_ERROR);

    // Second after NEWKEYS, with an IGNORE first.
    let mut rig = client_rig();
    rig.send(&ignore(0));
    rig.send(&server_sig_algs());
    expect_protocol_error(rig.pump(), DisconnectReason::PROTOCOL_ERROR);
    assert!(!rig.out.has_ext_info());
    rig.expect_disconnect(DisconnectReason::PROTOCOL_ERROR);

    // First after a rekey's NEWKEYS, never sent before.
    let mut rig = client_rig();
    rig.t.set_authenticated();
    rig.rekey();
    rig.send(&server_sig_algs());
    expect_protocol_error(rig.pump(), DisconnectReason::PROTOCOL_ERROR);
    rig.expect_disconnect(DisconnectReason::PROTOCOL_ERROR);

    // To a server, which offers no ext-info-s.
    let mut rig = Rig::standard(Role::Server, server_config());
    rig.handshake();
    rig.send(&server_sig_algs());
    expect_protocol_error(rig.pump(), DisconnectReason::PROTOCOL_ERROR);
    rig.expect_disconnect(DisconnectReason::PROTOCOL_ERROR);
}

/// A count of 0xFFFFFFFF with one extension in the body fails at the first field that is
/// not there: the count is never trusted to size or run anything.
#[test]
fn ext_info_count_beyond_the_body_fails_at_the_first_short_read() {
    for extensions in [
        &[][..],
        &[(&b"server-sig-algs"[..], &b"ssh-ed25519"[..])][..],
    ] {
        let mut rig = client_rig();
        rig.send(&ext_info(u32::MAX, extensions));
        let e = expect_protocol_error(rig.pump(), DisconnectReason::PROTOCOL_ERROR);
        assert!(e.to_string().contains("extension name"), "{e}");
        assert!(!rig.out.has_ext_info());
        rig.expect_disconnect(DisconnectReason::PROTOCOL_ERROR);
    }
    // A count that stops short of the body is fine: the count says how many to read.
    let mut rig = client_rig();
    rig.send(&ext_info(0, &[(b"server-sig-algs", b"ssh-ed25519")]));
    rig.pump().unwrap();
    assert!(rig.out.has_ext_info());
}

// ---------------------------------------------------------------------------------------
// Key exchange values

/// A KEXINIT with the given key exchange, host key and cipher name-lists as raw bytes
/// (right or wrong), ordinary MACs, no compression, and `follows` as
/// first_kex_packet_follows.
fn raw_kexinit(kex: &[u8], host_key: &[u8], ciphers: &[u8], follows: bool) -> Vec<u8> {
    let mut m = vec![MessageNumber::KEXINIT.0];
    m.put_raw(&[0x42; 16]);
    m.put_string(kex);
    m.put_string(host_key);
    m.put_string(ciphers);
    m.put_string(ciphers);
    m.put_string(b"hmac-sha2-256-etm@openssh.com");
    m.put_string(b"hmac-sha2-256-etm@openssh.com");
    m.put_string(b"none");
    m.put_string(b"none");
    m.put_string(b"");
    m.put_string(b"");
    m.put_bool(follows);
    m.put_u32(0);
    m
}

const CLIENT_MARKERS: &str = "ext-info-c,kex-strict-c-v00@openssh.com";

/// A client KEXINIT offering only `kex` (and the markers) with ordinary everything else.
fn client_kexinit_for(kex: &str, follows: bool) -> Vec<u8> {
    raw_kexinit(
        format!("{kex},{CLIENT_MARKERS}").as_bytes(),
        b"ssh-ed25519",
        b"aes128-gcm@openssh.com",
        follows,
    )
}

/// X25519 values that give an all-zero shared secret with any scalar (the low-order
/// points, and the same values plus p, as RFC 7748 reduces them), little-endian.
fn low_order_points() -> Vec<[u8; 32]> {
    let hex = |s: &str| -> [u8; 32] {
        let bytes: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    };
    let mut p_minus_one = [0xff; 32];
    p_minus_one[0] = 0xec;
    p_minus_one[31] = 0x7f;
    let mut p = p_minus_one;
    p[0] = 0xed;
    let mut p_plus_one = p_minus_one;
    p_plus_one[0] = 0xee;
    let mut one = [0; 32];
    one[0] = 1;
    vec![
        [0; 32],
        one,
        hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        p_minus_one,
        p,
        p_plus_one,
    ]
}

/// A server under test, after KEXINITs with a client that offers only `kex`.
fn server_rig_after_kexinit(kex: Kex) -> Rig {
    let mut rig = Rig::standard(Role::Server, server_config());
    let ours = client_kexinit_for(kex.name(), false);
    let round = rig.exchange_kexinit(ours);
    assert_eq!(round.negotiated.kex, kex);
    rig
}

/// Sends KEX_ECDH_INIT with `q_c` to a server under test: KEY_EXCHANGE_FAILED, told in a
/// plaintext DISCONNECT.
#[track_caller]
fn server_refuses_q_c(kex: Kex, q_c: &[u8]) {
    let mut rig = server_rig_after_kexinit(kex);
    let mut m = vec![MessageNumber::KEX_ECDH_INIT.0];
    m.put_string(q_c);
    rig.send(&m);
    expect_protocol_error(rig.pump(), DisconnectReason::KEY_EXCHANGE_FAILED);
    rig.expect_disconnect(DisconnectReason::KEY_EXCHANGE_FAILED);
    assert_eq!(rig.try_recv(), None, "no KEX_ECDH_REPLY");
}

/// A client under test gets a KEX_ECDH_REPLY whose Q_S is `q_s` and whose other fields
/// are right: KEY_EXCHANGE_FAILED.
#[track_caller]
fn client_refuses_q_s(kex: Kex, q_s: &[u8]) {
    let mut rig = Rig::standard(Role::Client, client_config());
    let ours = rig.kexinit(&Preferences {
        kex: vec![kex],
        ..Preferences::default()
    });
    let round = rig.exchange_kexinit(ours);
    let mut reply = rig.answer_ecdh_init(&round);
    reply.q_s = q_s.to_vec();
    rig.send_reply(&reply);
    rig.send_newkeys(&reply.keys.outgoing);
    expect_protocol_error(rig.pump(), DisconnectReason::KEY_EXCHANGE_FAILED);
    assert!(rig.out.events.is_empty(), "no host key question");
    rig.expect_disconnect(DisconnectReason::KEY_EXCHANGE_FAILED);
}

/// RFC 8731 section 3: an X25519 public value is 32 bytes, and an all-zero shared secret
/// aborts the exchange. Both roles check what they receive.
#[test]
fn bad_x25519_values_fail_the_key_exchange() {
    for kex in [Kex::Curve25519Sha256, Kex::Curve25519Sha256Libssh] {
        for len in [0, 1, 31, 33, 64, 1216] {
            server_refuses_q_c(kex, &vec![9; len]);
            client_refuses_q_s(kex, &vec![9; len]);
        }
        for point in low_order_points() {
            server_refuses_q_c(kex, &point);
            client_refuses_q_s(kex, &point);
        }
    }
}

/// The hybrid: Q_C is a 1184-byte ML-KEM-768 key and 32 bytes of X25519, Q_S a 1088-byte
/// ciphertext and 32 bytes of X25519. Any other length, a key that fails FIPS 203's
/// modulus check, or a low-order X25519 half fails the exchange.
#[test]
fn bad_mlkem_hybrid_values_fail_the_key_exchange() {
    let kex = Kex::MlKem768X25519Sha256;
    let q_c_len = MLKEM768_PUBLIC_LEN + 32;
    let q_s_len = MLKEM768_CIPHERTEXT_LEN + 32;
    for len in [
        0,
        32,
        MLKEM768_PUBLIC_LEN,
        q_c_len - 1,
        q_c_len + 1,
        q_s_len,
    ] {
        server_refuses_q_c(kex, &vec![9; len]);
    }
    for len in [
        0,
        32,
        MLKEM768_CIPHERTEXT_LEN,
        q_s_len - 1,
        q_s_len + 1,
        q_c_len,
    ] {
        client_refuses_q_s(kex, &vec![9; len]);
    }

    // A real key with a low-order X25519 half, and coefficients of 4095 (over q = 3329)
    // with a good X25519 half.
    let (_, real) = kex::client_start(kex, &[5; 96]);
    let mut low_order = real.clone();
    low_order[MLKEM768_PUBLIC_LEN..].fill(0);
    server_refuses_q_c(kex, &low_order);
    let mut over_modulus = real;
    over_modulus[..MLKEM768_PUBLIC_LEN - 32].fill(0xff);
    server_refuses_q_c(kex, &over_modulus);

    let mut ciphertext_low_order = vec![7; q_s_len];
    ciphertext_low_order[MLKEM768_CIPHERTEXT_LEN..].fill(0);
    client_refuses_q_s(kex, &ciphertext_low_order);
}

// ---------------------------------------------------------------------------------------
// Algorithm negotiation

/// No algorithm in common, for each kind: KEY_EXCHANGE_FAILED, and the error (and the
/// DISCONNECT) lists both sides' offers.
#[test]
fn no_common_algorithm_fails_and_names_both_offers() {
    let good_kex = format!("curve25519-sha256,{CLIENT_MARKERS}");
    let cases: [(&str, Vec<u8>, &str, &str); 4] = [
        (
            "key exchange method",
            raw_kexinit(
                b"diffie-hellman-group1-sha1,ext-info-c",
                b"ssh-ed25519",
                b"aes128-ctr",
                false,
            ),
            "diffie-hellman-group1-sha1",
            "mlkem768x25519-sha256",
        ),
        (
            "host key type",
            raw_kexinit(
                good_kex.as_bytes(),
                b"ssh-dss,ssh-rsa",
                b"aes128-ctr",
                false,
            ),
            "ssh-dss,ssh-rsa",
            "ssh-ed25519",
        ),
        (
            "cipher",
            raw_kexinit(
                good_kex.as_bytes(),
                b"ssh-ed25519",
                b"3des-cbc,arcfour",
                false,
            ),
            "3des-cbc,arcfour",
            "aes128-gcm@openssh.com",
        ),
        (
            "MAC",
            {
                let mut m = raw_kexinit(good_kex.as_bytes(), b"ssh-ed25519", b"aes128-ctr", false);
                let hmac = b"hmac-sha2-256-etm@openssh.com";
                let at = m.windows(hmac.len()).position(|w| w == hmac).unwrap();
                m.splice(at - 4..at + hmac.len(), {
                    let mut l = Vec::new();
                    l.put_string(b"hmac-md5");
                    l
                });
                m
            },
            "hmac-md5",
            "hmac-sha2-256-etm@openssh.com",
        ),
    ];
    for (kind, kexinit, theirs, ours) in cases {
        let mut rig = Rig::standard(Role::Server, server_config());
        rig.send(&kexinit);
        let e = expect_error(rig.pump(), DisconnectReason::KEY_EXCHANGE_FAILED, |e| {
            matches!(e, Error::NoCommonAlgorithm(_))
        });
        let Error::NoCommonAlgorithm(n) = &e else {
            unreachable!()
        };
        assert_eq!(n.kind, kind);
        assert!(n.client.contains(theirs), "{e}");
        assert!(n.server.contains(ours), "{e}");
        rig.recv_kexinit();
        let text = rig.expect_disconnect(DisconnectReason::KEY_EXCHANGE_FAILED);
        assert!(text.contains(theirs) && text.contains(ours), "{text}");
    }

    // A client under test, against a server that offers no cipher it knows.
    let mut rig = Rig::standard(Role::Client, client_config());
    rig.send(&raw_kexinit(
        b"curve25519-sha256,kex-strict-s-v00@openssh.com",
        b"ssh-ed25519",
        b"twofish256-cbc",
        false,
    ));
    let e = expect_error(
        rig.pump(),
        DisconnectReason::KEY_EXCHANGE_FAILED,
        |e| matches!(e, Error::NoCommonAlgorithm(n) if n.server == "twofish256-cbc"),
    );
    assert!(e.to_string().contains("aes128-gcm@openssh.com"), "{e}");
    rig.recv_kexinit();
    rig.expect_disconnect(DisconnectReason::KEY_EXCHANGE_FAILED);
}

/// A name-list of 100,000 entries (about 200 KB, inside one packet) costs a parse and
/// a bounded message: the offers in the error are cut to a few hundred bytes. The same
/// list with one good name at its end negotiates normally. A 1 MB list cannot fit in a
/// packet and is refused from the packet's length alone, before anything is buffered.
#[test]
fn huge_name_lists_are_handled_within_bounds() {
    let junk: Vec<String> = (0..100_000)
        .map(|i| char::from(b'a' + (i % 26) as u8).to_string())
        .collect();
    let junk = junk.join(",");
    assert!(junk.len() > 190_000);

    let mut rig = Rig::standard(Role::Server, server_config());
    let kexinit = raw_kexinit(
        junk.as_bytes(),
        b"ssh-ed25519",
        b"aes128-gcm@openssh.com",
        false,
    );
    rig.send(&kexinit);
    let e = expect_error(rig.pump(), DisconnectReason::KEY_EXCHANGE_FAILED, |e| {
        matches!(e, Error::NoCommonAlgorithm(_))
    });
    assert!(
        e.to_string().len() < 2000,
        "{} bytes of error",
        e.to_string().len()
    );
    rig.recv_kexinit();
    let text = rig.expect_disconnect(DisconnectReason::KEY_EXCHANGE_FAILED);
    assert!(text.len() < 2000);
    assert!(rig.peer.inbox.is_empty());

    let mut rig = Rig::standard(Role::Server, server_config());
    let good = format!("{junk},curve25519-sha256,{CLIENT_MARKERS}");
    let ours = raw_kexinit(
        good.as_bytes(),
        b"ssh-ed25519",
        b"aes128-gcm@openssh.com",
        false,
    );
    let round = rig.exchange_kexinit(ours);
    assert_eq!(round.negotiated.kex, Kex::Curve25519Sha256);
    rig.client_kex(&round);
    assert!(rig.t.is_ready());

    let mega = vec![b'a'; 1 << 20];
    let packet = plain_packet(&raw_kexinit(&mega, b"ssh-ed25519", b"aes128-ctr", false));
    let now = origin();
    let mut t = in_packet_phase(Role::Server, now);
    let mut header = packet[..4].to_vec();
    expect_protocol_error(t.decode(&mut header, now), DisconnectReason::PROTOCOL_ERROR);
    queued_plain_disconnect(&mut t, DisconnectReason::PROTOCOL_ERROR);
}

/// RFC 4251 section 5: names are printable US-ASCII, not empty, without commas. Anything
/// else in any list fails the key exchange, and the message holds none of those bytes.
#[test]
fn names_with_control_bytes_fail_the_key_exchange() {
    let bad: [&[u8]; 9] = [
        b"curve25519-sha256\x01",
        b"curve25519-sha256,\x00",
        b"curve25519 sha256",
        b"curve25519-sha256,\x7f",
        b"curve25519-sha256,caf\xc3\xa9",
        b"curve25519-sha256,\x1b[31m",
        b"curve25519-sha256,,mlkem768x25519-sha256",
        b",curve25519-sha256",
        b"curve25519-sha256,",
    ];
    for role in [Role::Server, Role::Client] {
        for (i, list) in bad.iter().enumerate() {
            let config = if role.is_server() {
                server_config()
            } else {
                client_config()
            };
            let mut rig = Rig::standard(role, config);
            // In turn in the key exchange, host key and cipher lists.
            let good_kex = b"curve25519-sha256".as_slice();
            let kexinit = match i % 3 {
                0 => raw_kexinit(list, b"ssh-ed25519", b"aes128-ctr", false),
                1 => raw_kexinit(good_kex, list, b"aes128-ctr", false),
                _ => raw_kexinit(good_kex, b"ssh-ed25519", list, false),
            };
            rig.send(&kexinit);
            expect_protocol_error(rig.pump(), DisconnectReason::KEY_EXCHANGE_FAILED);
            rig.recv_kexinit();
            let text = rig.expect_disconnect(DisconnectReason::KEY_EXCHANGE_FAILED);
            assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b)), "{text:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// first_kex_packet_follows

/// RFC 4253 section 7: the client guessed its first key exchange packet, but its first
/// choices differ from the server's, so the guess is wrong. Exactly that packet is
/// ignored (here an all-zero X25519 value that would fail the exchange), and the exchange
/// then completes. A second bad packet is not ignored.
#[test]
fn wrong_guess_skips_exactly_one_packet() {
    // The server prefers the hybrid; the client puts curve25519 first.
    let kexinit = || {
        raw_kexinit(
            format!("curve25519-sha256,mlkem768x25519-sha256,{CLIENT_MARKERS}").as_bytes(),
            b"ssh-ed25519",
            b"aes128-gcm@openssh.com",
            true,
        )
    };
    let mut poisoned = vec![MessageNumber::KEX_ECDH_INIT.0];
    poisoned.put_string(&[0; 32]);

    let mut rig = Rig::standard(Role::Server, server_config());
    let ours = kexinit();
    rig.send(&ours);
    rig.send(&poisoned);
    rig.pump().unwrap();
    let theirs = rig.recv_kexinit();
    assert_eq!(rig.try_recv(), None, "the guessed packet got no answer");
    let round = rig.negotiate(ours, theirs);
    assert_eq!(round.negotiated.kex, Kex::Curve25519Sha256);
    rig.client_kex(&round);
    assert!(rig.t.is_ready());

    let mut rig = Rig::standard(Role::Server, server_config());
    rig.send(&kexinit());
    rig.send(&poisoned);
    rig.send(&poisoned);
    expect_protocol_error(rig.pump(), DisconnectReason::KEY_EXCHANGE_FAILED);
}

/// A right guess (both sides' first key exchange and host key algorithms agree) is used:
/// the client's KEX_ECDH_INIT, sent before it saw the server's KEXINIT, is answered.
#[test]
fn right_guess_is_used() {
    let mut rig = Rig::standard(Role::Server, server_config());
    let ours = raw_kexinit(
        format!("mlkem768x25519-sha256,curve25519-sha256,{CLIENT_MARKERS}").as_bytes(),
        b"ssh-ed25519,rsa-sha2-512",
        b"aes128-gcm@openssh.com",
        true,
    );
    rig.send(&ours);
    let (secret, q_c) = rig.send_ecdh_init(Kex::MlKem768X25519Sha256);
    rig.pump().unwrap();
    let theirs = rig.recv_kexinit();
    let round = rig.negotiate(ours, theirs);
    assert_eq!(round.negotiated.kex, Kex::MlKem768X25519Sha256);
    rig.finish_client_kex(&round, secret, &q_c);
    assert!(rig.t.is_ready());
}

/// A server's KEXINIT may claim a guess too; a client under test then ignores the one
/// packet after it.
#[test]
fn client_ignores_a_wrongly_guessed_server_packet() {
    let mut rig = Rig::standard(Role::Client, client_config());
    let ours = raw_kexinit(
        b"curve25519-sha256,kex-strict-s-v00@openssh.com",
        b"ssh-ed25519",
        b"aes128-gcm@openssh.com",
        true,
    );
    rig.send(&ours);
    rig.send(&message(MessageNumber::KEX_ECDH_REPLY, 40));
    rig.pump().unwrap();
    let theirs = rig.recv_kexinit();
    let round = rig.negotiate(ours, theirs);
    rig.serve(&round);
    assert!(rig.t.is_ready());
}

// ---------------------------------------------------------------------------------------
// Host keys

/// An `ssh-rsa` key blob with exponent 65537 and a modulus of `bits` bits.
fn rsa_blob(bits: usize) -> Vec<u8> {
    let mut n = vec![0xc5; bits.div_ceil(8)];
    n[0] = 1 << ((bits - 1) % 8);
    let mut blob = Vec::new();
    blob.put_string(b"ssh-rsa");
    blob.put_mpint(&[1, 0, 1]);
    blob.put_mpint(&n);
    blob
}

/// A client under test, after KEXINITs with a server offering only `host_key_alg`, with the
/// server's reply computed (and signed with its Ed25519 key where it can be).
fn client_rig_with_reply(host_key_alg: SignatureAlg) -> (Rig, Reply) {
    let mut rig = Rig::standard(Role::Client, client_config());
    let ours = kex::build_kexinit(
        Role::Server,
        &Preferences::default(),
        &[host_key_alg],
        [1; 16],
        true,
        true,
    );
    let round = rig.exchange_kexinit(ours);
    assert_eq!(round.negotiated.host_key, host_key_alg);
    if host_key_alg == SignatureAlg::Ed25519 {
        let reply = rig.answer_ecdh_init(&round);
        return (rig, reply);
    }
    // Our peer has no RSA key: answer with Ed25519's keys and let the test fill in K_S and
    // the signature.
    let ed = Round {
        negotiated: Negotiated {
            host_key: SignatureAlg::Ed25519,
            ..round.negotiated
        },
        ..round
    };
    let reply = rig.answer_ecdh_init(&ed);
    (rig, reply)
}

/// An RSA host key over 8192 bits is refused from its size, before any signature work:
/// the signature here is not even well formed, and the error is about the key.
#[test]
fn rsa_host_key_over_8192_bits_is_refused_before_verifying() {
    for bits in [8193, 8200, 16384] {
        let (mut rig, mut reply) = client_rig_with_reply(SignatureAlg::RsaSha512);
        reply.k_s = rsa_blob(bits);
        reply.signature = b"not a signature blob".to_vec();
        rig.send_reply(&reply);
        let e = expect_error(rig.pump(), DisconnectReason::HOST_KEY_NOT_VERIFIABLE, |e| {
            matches!(e, Error::HostKey(_))
        });
        assert!(e.to_string().contains(&format!("{bits} bits")), "{e}");
        assert!(
            rig.out.events.is_empty(),
            "never offered to the application"
        );
        rig.expect_disconnect(DisconnectReason::HOST_KEY_NOT_VERIFIABLE);
    }
}

/// A signature that does not verify: over other data, by another key, truncated, or for
/// another algorithm. Each fails closed: Error::HostKey, no host key question, a
/// DISCONNECT, and no NEWKEYS from us.
#[test]
fn bad_host_key_signatures_are_refused() {
    /// Makes a bad signature blob from the right reply and another key.
    type Spoiler = fn(&Reply, &HostKeyPair) -> Vec<u8>;
    /// The right Ed25519 signature under another algorithm's name.
    fn renamed(r: &Reply, name: &[u8]) -> Vec<u8> {
        let raw = &r.signature[4 + b"ssh-ed25519".len() + 4..];
        assert_eq!(raw.len(), 64);
        let mut blob = Vec::new();
        blob.put_string(name);
        blob.put_string(raw);
        blob
    }
    let other = host_key(10);
    let spoilers: [(&str, Spoiler); 6] = [
        ("other data", |_, _| {
            host_key(9)
                .sign(provider(), SignatureAlg::Ed25519, b"not the exchange hash")
                .unwrap()
        }),
        ("other key", |r, other| {
            other
                .sign(provider(), SignatureAlg::Ed25519, r.h.as_bytes())
                .unwrap()
        }),
        ("truncated", |r, _| {
            r.signature[..r.signature.len() - 1].to_vec()
        }),
        ("flipped bit", |r, _| {
            let mut s = r.signature.clone();
            let last = s.len() - 1;
            s[last] ^= 0x01;
            s
        }),
        ("named rsa-sha2-256", |r, _| renamed(r, b"rsa-sha2-256")),
        ("named ssh-rsa", |r, _| renamed(r, b"ssh-rsa")),
    ];
    for (what, spoil) in spoilers {
        let (mut rig, mut reply) = client_rig_with_reply(SignatureAlg::Ed25519);
        reply.signature = spoil(&reply, &other);
        rig.send_reply(&reply);
        rig.send_newkeys(&reply.keys.outgoing);
        let e = expect_error(rig.pump(), DisconnectReason::HOST_KEY_NOT_VERIFIABLE, |e| {
            matches!(e, Error::HostKey(_))
        });
        assert!(rig.out.events.is_empty(), "{what}: {e}");
        assert_eq!(rig.t.session_id(), None, "{what}: no session came of it");
        rig.expect_disconnect(DisconnectReason::HOST_KEY_NOT_VERIFIABLE);
        assert_eq!(rig.try_recv(), None, "{what}: nothing after the DISCONNECT");
    }

    // The control: the unspoilt reply is accepted.
    let (mut rig, reply) = client_rig_with_reply(SignatureAlg::Ed25519);
    rig.send_reply(&reply);
    rig.send_newkeys(&reply.keys.outgoing);
    rig.pump().unwrap();
    rig.recv_newkeys(&reply.keys.incoming);
    assert!(rig.t.is_ready());
}

/// A rekey that presents another host key, even one that signs correctly, ends the
/// connection: the key was verified once and cannot change.
#[test]
fn host_key_that_changes_on_rekey_is_refused() {
    let mut rig = Rig::standard(Role::Client, client_config());
    rig.handshake();
    rig.t.set_authenticated();
    rig.rekey(); // the same key: fine
    assert_eq!(rig.t.stats().rekeys, 1);

    rig.peer.host_key = host_key(10);
    let ours = rig.kexinit(&Preferences::default());
    let round = rig.exchange_kexinit(ours);
    let reply = rig.answer_ecdh_init(&round);
    rig.send_reply(&reply);
    rig.send_newkeys(&reply.keys.outgoing);
    let e = expect_error(rig.pump(), DisconnectReason::HOST_KEY_NOT_VERIFIABLE, |e| {
        matches!(e, Error::HostKey(_))
    });
    assert!(e.to_string().contains("changed"), "{e}");
    // Told under the old keys, which are the ones still in use.
    rig.expect_disconnect(DisconnectReason::HOST_KEY_NOT_VERIFIABLE);
    assert_eq!(
        rig.t.server_host_key(),
        Some(host_key(9).public()),
        "the known key stays"
    );
}

/// The application refuses the host key: HOST_KEY_NOT_VERIFIABLE goes to the server in
/// the clear (no keys were taken into use) and nothing else follows.
#[test]
fn rejected_host_key_sends_host_key_not_verifiable() {
    let mut pair = pair_with(client_config(), server_config(), 13);
    pair.client.accept_host_key = false;
    expect_error(
        pair.handshake(),
        DisconnectReason::HOST_KEY_NOT_VERIFIABLE,
        |e| matches!(e, Error::HostKey(_)),
    );
    assert!(pair.client.transport.is_closed());
    pair.flush();
    let wire = pair.c2s_in_flight().clone();
    let packets = plain_packets(&wire);
    assert_eq!(packets.len(), 1);
    expect_disconnect(&packets[0], DisconnectReason::HOST_KEY_NOT_VERIFIABLE);
    server_hears_disconnect(&mut pair, DisconnectReason::HOST_KEY_NOT_VERIFIABLE);
}
