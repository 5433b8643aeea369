//! The connection protocol (RFC 4254): channels multiplexed over one authenticated
//! transport, each with its own flow control.

pub mod budget;
pub mod channels;
pub mod lifecycle;
pub mod msg;
pub mod policy;
pub mod table;
pub mod window;
