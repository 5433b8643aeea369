//! What a connection is configured with, and where its randomness comes from.

use std::fmt;
use std::time::Duration;

use crate::algorithms::Preferences;
use crate::crypto::{CryptoProvider, default_provider};
use crate::hostkey::HostKeyPair;
use crate::rekey::RekeyLimits;

/// The software version we announce unless configured otherwise.
pub const DEFAULT_SOFTWARE: &str = concat!("gateway_", env!("CARGO_PKG_VERSION"));

/// A source of random bytes. The protocol core owns no randomness of its own: the caller
/// hands it one, the operating system's in the gateway and a seeded generator in tests.
pub trait Rng: Send {
    fn fill(&mut self, dest: &mut [u8]);
}

/// Settings for one connection. Share one between many connections with an `Arc`.
#[derive(Clone)]
pub struct Config {
    pub provider: &'static dyn CryptoProvider,
    /// The algorithms offered, most preferred first.
    pub algorithms: Preferences,
    /// The software version in our identification string (RFC 4253 section 4.2).
    pub software: String,
    pub rekey: RekeyLimits,
    /// How long to wait for the peer's version line.
    pub banner_timeout: Duration,
    /// How long authentication may take, counted from the start (OpenSSH's
    /// LoginGraceTime).
    pub preauth_timeout: Duration,
    /// How long one key exchange may take.
    pub kex_timeout: Duration,
    /// Bytes and packets a peer may send before authentication succeeds; more is a flood.
    pub preauth_max_bytes: u64,
    pub preauth_max_packets: u64,
    /// Bytes of outgoing messages held while a key exchange runs, past which
    /// [`crate::Transport::can_send`] says no.
    pub held_limit: usize,
    /// Offer strict key exchange (OpenSSH `PROTOCOL` section 1.10). On by default; turn it
    /// off only to test against peers that lack it.
    pub strict_kex: bool,
    /// The server's host keys. Unused by a client.
    pub host_keys: Vec<HostKeyPair>,
    /// Fuzzing builds only: skip key exchange and run in plaintext from the first packet,
    /// so that mutated input reaches the layers above key exchange.
    #[cfg(feature = "fuzzing")]
    pub fuzz_skip_kex: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            provider: default_provider(),
            algorithms: Preferences::default(),
            software: DEFAULT_SOFTWARE.to_owned(),
            rekey: RekeyLimits::default(),
            banner_timeout: Duration::from_secs(30),
            preauth_timeout: Duration::from_secs(120),
            kex_timeout: Duration::from_secs(60),
            preauth_max_bytes: 1 << 20,
            preauth_max_packets: 4096,
            held_limit: 1 << 20,
            strict_kex: true,
            host_keys: Vec::new(),
            #[cfg(feature = "fuzzing")]
            fuzz_skip_kex: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("provider", &self.provider.name())
            .field("algorithms", &self.algorithms)
            .field("software", &self.software)
            .field("rekey", &self.rekey)
            .field("strict_kex", &self.strict_kex)
            .field("host_keys", &self.host_keys.len())
            .finish_non_exhaustive()
    }
}
