//! Handshakes and rekeys between our client and our server, over the in-memory
//! simulator, for every algorithm and both cryptography providers.

use std::sync::Arc;
use std::time::Duration;

use ssh_proto::algorithms::{Algorithm, Cipher, Kex, Mac};
use ssh_proto::config::Config;
use ssh_proto::crypto::{CryptoProvider, all_providers};
use ssh_proto::hostkey::HostKeyPair;
use ssh_proto::msg::MessageNumber;
use ssh_proto::sim::{Cut, Pair};
use ssh_proto::wire::Writer;

fn client_config(provider: &'static dyn CryptoProvider) -> Config {
    Config { provider, ..Config::default() }
}

fn server_config(provider: &'static dyn CryptoProvider) -> Config {
    let host_key = HostKeyPair::ed25519_from_seed(provider, &[7; 32]);
    Config { provider, host_keys: vec![host_key], ..Config::default() }
}

/// A message of the layer above: USERAUTH_REQUEST's number carrying `n` as filler. The
/// transport passes it up without looking inside.
fn message(n: u32, len: usize) -> Vec<u8> {
    let mut m = vec![MessageNumber::USERAUTH_REQUEST.0];
    m.put_u32(n);
    m.resize(len.max(5), n as u8);
    m
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
        assert_eq!(pair.client.transport.session_id(), pair.server.transport.session_id());
        assert!(pair.client.events.iter().any(|e| e.starts_with("ExtInfo")));
    }
}
