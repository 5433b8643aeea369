//! A sans-IO implementation of the SSH protocol, client and server.
//!
//! The crate owns no socket, thread or clock: bytes go in and come out through buffers
//! the caller owns, time is passed in as `now`, and randomness comes from the caller.
//! Start with [`transport::Transport`], whose docs give the order of calls.
//!
//! Cryptography comes from a [`crypto::CryptoProvider`]: `ring` by default, or a
//! pure-Rust provider with the `rustcrypto` feature.
#![forbid(unsafe_code)]
// Peer data never meets an unwrap: library code proves its way or returns an error.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod agent;
pub mod algorithms;
pub mod auth;
pub mod authorized_keys;
pub mod base64;
pub mod config;
pub mod connection;
pub mod crypto;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod hostkey;
pub mod kex;
pub mod known_hosts;
pub mod msg;
pub mod packet;
pub mod pattern;
pub mod rekey;
pub mod role;
pub mod sim;
pub mod timer;
pub mod transport;
pub mod userkey;
pub mod version;
pub mod wire;

pub use error::Error;
pub use transport::Transport;
