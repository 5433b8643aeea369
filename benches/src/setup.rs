//! What several benchmarks set up the same way: packet keys as key derivation would hand
//! them over, and a client and a server `Transport` that finished a real key exchange in
//! the simulator.
//!
//! The benchmarks drive the two transports themselves rather than through
//! `Pair::step`, whose bookkeeping (it copies every received payload into a list for
//! tests to inspect) is the simulator's cost, not the protocol's.

use std::sync::Arc;
use std::time::Instant;

use ssh_proto::algorithms::{Cipher, Mac, Preferences};
use ssh_proto::config::Config;
use ssh_proto::crypto::CryptoProvider;
use ssh_proto::hostkey::HostKeyPair;
use ssh_proto::packet::DirectionKeys;
use ssh_proto::rekey::RekeyLimits;
use ssh_proto::sim::{Cut, Pair};
use ssh_proto::transport::Transport;
use zeroize::Zeroizing;

/// Keys for one direction of the packet layer, fixed bytes of the right lengths.
pub fn direction_keys(cipher: Cipher, mac: Option<Mac>) -> DirectionKeys {
    DirectionKeys {
        cipher,
        mac,
        iv: Zeroizing::new(vec![0x24; cipher.iv_len()]),
        key: Zeroizing::new(vec![0x42; cipher.key_len()]),
        mac_key: Zeroizing::new(vec![0x66; mac.map_or(0, Mac::key_len)]),
    }
}

/// Both ends of one authenticated connection, and the simulated time they stand at.
#[derive(Debug)]
pub struct Connected {
    pub client: Transport,
    pub server: Transport,
    /// The simulated clock; the benchmarks never move it, so no timer fires.
    pub now: Instant,
}

/// Runs a key exchange that settles on `cipher` (and `mac`, for a cipher that is not an
/// AEAD) with `provider` on both sides, and marks both sides authenticated so that they
/// carry connection messages.
///
/// Rekeying by volume is off: a benchmark loop that only carries data one way would never
/// carry the peer's half of a key exchange back.
pub fn connected(
    provider: &'static dyn CryptoProvider,
    cipher: Cipher,
    mac: Option<Mac>,
) -> Connected {
    let algorithms = Preferences {
        ciphers: vec![cipher],
        macs: vec![mac.unwrap_or(Mac::HmacSha256Etm)],
        ..Preferences::default()
    };
    let rekey = RekeyLimits {
        bytes: u64::MAX,
        ..RekeyLimits::default()
    };
    let client = Config {
        provider,
        algorithms: algorithms.clone(),
        rekey,
        ..Config::default()
    };
    let server = Config {
        provider,
        algorithms,
        rekey,
        host_keys: vec![HostKeyPair::ed25519_from_seed(provider, &[7; 32])],
        ..Config::default()
    };
    let mut pair = Pair::new(Arc::new(client), Arc::new(server), 1, Cut::Whole);
    pair.handshake().unwrap();
    pair.client.transport.set_authenticated();
    pair.server.transport.set_authenticated();
    pair.settle(1000).unwrap();

    let negotiated = *pair.client.transport.negotiated().unwrap();
    assert_eq!((negotiated.cipher_c2s, negotiated.mac_c2s), (cipher, mac));

    // The simulator has taken every event of the handshake: none is left to act on.
    Connected {
        client: pair.client.transport,
        server: pair.server.transport,
        now: pair.now,
    }
}
