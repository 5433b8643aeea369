//! The gateway: drives `ssh-proto` connections over real sockets.
//!
//! - [`event_loop`]: one thread, many connections, listeners and forwarded sockets with
//!   mio; the forwarding server's role ([`event_loop::server`]) and the client's
//!   ([`event_loop::client`]).
//! - [`blocking`] and [`auth`]: one connection driven on a blocking socket, through key
//!   exchange and client authentication, before it joins the loop.
//! - [`ssh_config`], [`options`], [`forward_spec`], [`hostkeys`]: OpenSSH's files and
//!   flags, read as `ssh` reads them.

pub mod agent;
pub mod auth;
pub mod blocking;
pub mod connect;
pub mod event_loop;
pub mod forward_spec;
pub mod hostkeys;
pub mod options;
pub mod prompt;
pub mod rng;
pub mod ssh_config;
pub mod terminal_text;
