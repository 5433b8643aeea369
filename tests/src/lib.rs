//! Integration and interop tests. The tests live in `tests/tests/`; this library gives them
//! a harness that starts real SSH implementations (OpenSSH 9.2 and 10.0, Dropbear, and the
//! client peers) on loopback, so that `ssh-proto` and `gateway` are checked against the
//! programs people actually run, not only against themselves, and a small server of our
//! own ([`server`]) for real clients to connect to.

pub mod forwarding;
pub mod keys;
pub mod peers;
pub mod server;
