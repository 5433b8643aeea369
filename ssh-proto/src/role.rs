//! Which end of the connection we are.
//!
//! SSH is not symmetric: the client and the server send different version-exchange
//! preambles (RFC 4253 section 4.2), different halves of the key exchange, and different
//! messages during authentication. Every state machine in this crate is built for one
//! role and checks the peer against the other.

/// Our side of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// We opened the connection and authenticate to the peer.
    Client,
    /// We accepted the connection and hold a host key.
    Server,
}

impl Role {
    pub const fn is_client(self) -> bool {
        matches!(self, Self::Client)
    }

    pub const fn is_server(self) -> bool {
        matches!(self, Self::Server)
    }

    /// The role of the other end.
    ///
    /// ```
    /// use ssh_proto::role::Role;
    /// assert_eq!(Role::Client.peer(), Role::Server);
    /// ```
    pub const fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_is_the_other_side() {
        assert_eq!(Role::Server.peer(), Role::Client);
        assert_eq!(Role::Client.peer().peer(), Role::Client);
        assert!(Role::Client.is_client() && !Role::Client.is_server());
        assert!(Role::Server.is_server() && !Role::Server.is_client());
    }
}
