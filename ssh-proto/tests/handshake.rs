//! Handshakes and rekeys between our client and our server, over the in-memory
//! simulator, for every algorithm and both cryptography providers.

use std::sync::Arc;
use std::time::Duration;

use ssh_proto::algorithms::{Algorithm, Cipher, Kex, Mac, Preferences};
use ssh_proto::config::Config;
use ssh_proto::crypto::{CryptoProvider, all_providers};
use ssh_proto::hostkey::HostKeyPair;
use ssh_proto::msg::MessageNumber;
use ssh_proto::rekey::RekeyLimits;
use ssh_proto::sim::{Cut, Pair};
use ssh_proto::wire::Writer;

fn client_config(provider: &'static dyn CryptoProvider) -> Config {
    Config {
        provider,
        ..Config::default()
    }
}

fn server_config(provider: &'static dyn CryptoProvider) -> Config {
    let host_key = HostKeyPair::ed25519_from_seed(provider, &[7; 32]);
    Config {
        provider,
        host_keys: vec![host_key],
        ..Config::default()
    }
}

/// A message of the layer above: USERAUTH_REQUEST's number with `n` and filler. The
/// transport passes it up without looking inside.
fn message(n: u32, len: usize) -> Vec<u8> {
    let mut m = vec![MessageNumber::USERAUTH_REQUEST.0];
    m.put_u32(n);
    m.resize(len.max(5), n as u8);
    m
}

fn only(kex: Kex, cipher: Cipher, mac: Mac) -> Preferences {
    Preferences {
        kex: vec![kex],
        ciphers: vec![cipher],
        macs: vec![mac],
        ..Preferences::default()
    }
}

#[test]
fn default_handshake_settles_on_mlkem_and_aes_gcm() {
    for provider in all_providers() {
        let mut pair = Pair::new(
            Arc::new(client_config(provider)),
            Arc::new(server_config(provider)),
            1,
            Cut::Whole,
        );
        pair.handshake().unwrap();
        let n = *pair.client.transport.negotiated().unwrap();
        assert_eq!(n.kex, Kex::MlKem768X25519Sha256);
        assert_eq!(n.cipher_c2s, Cipher::Aes128Gcm);
        assert!(n.strict_kex);
        assert_eq!(pair.server.transport.negotiated(), Some(&n));
        assert_eq!(
            pair.client.transport.session_id(),
            pair.server.transport.session_id()
        );
        assert!(pair.client.events.iter().any(|e| e.starts_with("ExtInfo")));
    }
}

/// Every key exchange, cipher and MAC, with every pairing of providers (so each
/// provider's output is checked by the other), with reads cut at random places.
#[test]
fn every_algorithm_across_providers() {
    let mut seed = 0;
    for client_provider in all_providers() {
        for server_provider in all_providers() {
            for &kex in Kex::ALL {
                for &cipher in Cipher::ALL {
                    let macs: &[Mac] = if cipher.is_aead() {
                        &[Mac::HmacSha256Etm]
                    } else {
                        Mac::ALL
                    };
                    for &mac in macs {
                        seed += 1;
                        let mut client = client_config(client_provider);
                        client.algorithms = only(kex, cipher, mac);
                        let server = server_config(server_provider);
                        let mut pair =
                            Pair::new(Arc::new(client), Arc::new(server), seed, Cut::Random(300));
                        pair.handshake()
                            .unwrap_or_else(|e| panic!("{kex:?} {cipher:?} {mac:?}: {e}"));
                        let n = pair.client.transport.negotiated().copied().unwrap();
                        assert_eq!((n.kex, n.cipher_c2s, n.cipher_s2c), (kex, cipher, cipher));
                        let expected_mac = (!cipher.is_aead()).then_some(mac);
                        assert_eq!((n.mac_c2s, n.mac_s2c), (expected_mac, expected_mac));

                        for i in 0..20 {
                            let m = message(i, 1 + 997 * i as usize);
                            pair.client
                                .transport
                                .send(|p| p.extend_from_slice(&m))
                                .unwrap();
                            pair.server
                                .transport
                                .send(|p| p.extend_from_slice(&m))
                                .unwrap();
                        }
                        pair.settle(100_000).unwrap();
                        let expected: Vec<_> =
                            (0..20).map(|i| message(i, 1 + 997 * i as usize)).collect();
                        assert_eq!(pair.server.received, expected, "{kex:?} {cipher:?} {mac:?}");
                        assert_eq!(pair.client.received, expected, "{kex:?} {cipher:?} {mac:?}");
                    }
                }
            }
        }
    }
}

/// The client's whole first flight, cut at every byte boundary.
#[test]
fn handshake_cut_at_every_boundary() {
    let provider = ssh_proto::crypto::default_provider();
    let mut client = client_config(provider);
    client.algorithms.kex = vec![Kex::Curve25519Sha256];
    let client = Arc::new(client);
    let server = Arc::new(server_config(provider));

    let mut whole = Pair::new(client.clone(), server.clone(), 5, Cut::Whole);
    whole.handshake().unwrap();
    let stream_len = whole.client.sent_bytes.max(whole.server.sent_bytes);
    for at in 0..=stream_len {
        let mut pair = Pair::new(client.clone(), server.clone(), 5, Cut::At(at));
        pair.handshake()
            .unwrap_or_else(|e| panic!("cut at {at}: {e}"));
        assert_eq!(
            pair.client.transport.session_id(),
            whole.client.transport.session_id()
        );
    }
}

#[test]
fn one_byte_reads_with_the_hybrid() {
    let provider = ssh_proto::crypto::default_provider();
    let mut pair = Pair::new(
        Arc::new(client_config(provider)),
        Arc::new(server_config(provider)),
        9,
        Cut::Bytes,
    );
    pair.handshake().unwrap();
    assert_eq!(
        pair.client.transport.negotiated().unwrap().kex,
        Kex::MlKem768X25519Sha256
    );
}

/// Sends `count` messages each way while stepping, so rekeys happen with data in
/// flight in both directions; checks that everything arrives in order.
fn stream_both_ways(pair: &mut Pair, count: u32, len: usize) {
    for i in 0..count {
        let m = message(i, len);
        pair.client
            .transport
            .send(|p| p.extend_from_slice(&m))
            .unwrap();
        let m = message(i + 1_000_000, len);
        pair.server
            .transport
            .send(|p| p.extend_from_slice(&m))
            .unwrap();
        pair.step().unwrap();
    }
    pair.settle(1_000_000).unwrap();
    let to_server: Vec<_> = (0..count).map(|i| message(i, len)).collect();
    let to_client: Vec<_> = (0..count).map(|i| message(i + 1_000_000, len)).collect();
    assert!(
        pair.server.received == to_server,
        "server lost or reordered messages"
    );
    assert!(
        pair.client.received == to_client,
        "client lost or reordered messages"
    );
}

fn authenticated_pair(client: Config, server: Config, seed: u64, cut: Cut) -> Pair {
    let mut pair = Pair::new(Arc::new(client), Arc::new(server), seed, cut);
    pair.handshake().unwrap();
    pair.client.transport.set_authenticated();
    pair.server.transport.set_authenticated();
    pair
}

#[test]
fn rekey_by_bytes_started_by_the_client() {
    for provider in all_providers() {
        let mut client = client_config(provider);
        client.rekey = RekeyLimits {
            bytes: 16 * 1024,
            ..RekeyLimits::default()
        };
        let mut pair = authenticated_pair(client, server_config(provider), 11, Cut::Random(5000));
        stream_both_ways(&mut pair, 400, 700);
        assert!(
            pair.client.kex_count >= 10,
            "only {} key exchanges",
            pair.client.kex_count
        );
        assert_eq!(pair.client.kex_count, pair.server.kex_count);
    }
}

#[test]
fn rekey_by_packets_started_by_the_server() {
    let provider = ssh_proto::crypto::default_provider();
    let mut server = server_config(provider);
    server.rekey = RekeyLimits {
        packets: 50,
        ..RekeyLimits::default()
    };
    let mut pair = authenticated_pair(client_config(provider), server, 12, Cut::Random(3000));
    stream_both_ways(&mut pair, 500, 100);
    assert!(
        pair.server.kex_count >= 8,
        "only {} key exchanges",
        pair.server.kex_count
    );
    assert_eq!(pair.client.kex_count, pair.server.kex_count);
}

#[test]
fn rekey_by_time_on_both_sides_at_once() {
    let provider = ssh_proto::crypto::default_provider();
    let limits = RekeyLimits {
        time: Duration::from_secs(10),
        ..RekeyLimits::default()
    };
    let client = Config {
        rekey: limits,
        ..client_config(provider)
    };
    let server = Config {
        rekey: limits,
        ..server_config(provider)
    };
    let mut pair = authenticated_pair(client, server, 13, Cut::Random(2000));
    for round in 0..5 {
        pair.advance(Duration::from_secs(11)).unwrap();
        stream_both_ways(&mut pair, 10, 3000);
        assert_eq!(pair.client.kex_count, round + 2);
        assert_eq!(pair.server.kex_count, round + 2);
        pair.client.received.clear();
        pair.server.received.clear();
    }
}

#[test]
fn simulation_is_deterministic_from_its_seed() {
    let run = || {
        let provider = ssh_proto::crypto::default_provider();
        let mut pair = Pair::new(
            Arc::new(client_config(provider)),
            Arc::new(server_config(provider)),
            77,
            Cut::Random(100),
        );
        pair.handshake().unwrap();
        pair.client.transport.session_id().unwrap().to_vec()
    };
    assert_eq!(run(), run());
}

/// A message whose `fill` declines leaves nothing behind, whether it would have been held
/// for the key exchange or sealed at once, and the sequence numbers stay in step, so the
/// messages around it arrive and open.
#[test]
fn a_declined_message_leaves_nothing_held_or_sealed() {
    let provider = all_providers()[0];
    let client = Arc::new(client_config(provider));
    let server = Arc::new(server_config(provider));
    let mut pair = Pair::new(client, server, 11, Cut::Whole);
    let declined = |p: &mut Vec<u8>| {
        p.extend_from_slice(&message(99, 500));
        false
    };
    let kept = |n| {
        move |p: &mut Vec<u8>| {
            p.extend_from_slice(&message(n, 100));
            true
        }
    };

    let client = &mut pair.client.transport;
    assert!(!client.try_send(declined).unwrap(), "held before the keys");
    assert!(client.try_send(kept(1)).unwrap());
    pair.handshake().unwrap();
    pair.settle(1_000).unwrap();

    let client = &mut pair.client.transport;
    let packets = client.stats().packets_sent;
    assert!(!client.try_send(declined).unwrap(), "sealed under the keys");
    assert_eq!(client.pending_output(), 0);
    assert_eq!(client.stats().packets_sent, packets);
    assert!(client.try_send(kept(2)).unwrap());
    pair.settle(1_000).unwrap();
    assert_eq!(pair.server.received, [message(1, 100), message(2, 100)]);
}
