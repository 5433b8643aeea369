//! The authentication protocol (RFC 4252), for both roles, as sans-IO state machines
//! that run beside a [`crate::Transport`]: the application routes messages 5, 6 and 50
//! to 79 from [`crate::Transport::decode`] to them, and they send through the transport.

pub mod client;
pub mod msg;
pub mod server;
