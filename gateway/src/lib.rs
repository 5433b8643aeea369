//! The gateway: drives `ssh-proto` connections over real sockets.
//!
//! Today this crate holds what the `gateway` command needs to reach a server and report
//! what it negotiated (`gateway probe`) and to show the protocol working end to end
//! (`gateway demo`). The event loop that forwards many channels arrives with the
//! connection protocol.

pub mod agent;
pub mod auth;
pub mod blocking;
pub mod forward_spec;
pub mod hostkeys;
pub mod options;
pub mod prompt;
pub mod rng;
pub mod ssh_config;
