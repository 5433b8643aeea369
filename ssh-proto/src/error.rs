//! Errors, split by whose fault they are, each mapped to the disconnect reason sent to
//! the peer (RFC 4253 section 11.1).

use core::fmt;
use std::borrow::Cow;

use crate::algorithms::NoCommonAlgorithm;
use crate::msg::DisconnectReason;
use crate::wire::WireError;

/// Why a connection ended or a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The peer broke the protocol. The connection is over.
    Protocol {
        reason: DisconnectReason,
        detail: Cow<'static, str>,
    },
    /// The peer is well-behaved but shares no algorithm with us.
    NoCommonAlgorithm(NoCommonAlgorithm),
    /// The server's host key was refused, or its signature did not verify.
    HostKey(Cow<'static, str>),
    /// The peer sent SSH_MSG_DISCONNECT.
    PeerDisconnected {
        reason: DisconnectReason,
        description: String,
    },
    /// A deadline passed: the banner, authentication, or a key exchange took too long.
    Timeout(&'static str),
    /// The connection was closed locally with [`crate::Transport::disconnect`].
    Closed,
    /// The caller used the API in a way it does not allow; a bug in the caller.
    Misuse(&'static str),
}

impl Error {
    pub(crate) fn protocol(reason: DisconnectReason, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::Protocol {
            reason,
            detail: detail.into(),
        }
    }

    /// The reason sent to the peer in SSH_MSG_DISCONNECT.
    pub fn disconnect_reason(&self) -> DisconnectReason {
        match self {
            Self::Protocol { reason, .. } => *reason,
            Self::NoCommonAlgorithm(_) => DisconnectReason::KEY_EXCHANGE_FAILED,
            Self::HostKey(_) => DisconnectReason::HOST_KEY_NOT_VERIFIABLE,
            Self::PeerDisconnected { reason, .. } => *reason,
            Self::Timeout(_) => DisconnectReason::CONNECTION_LOST,
            Self::Closed | Self::Misuse(_) => DisconnectReason::BY_APPLICATION,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol { reason, detail } => write!(f, "{}: {detail}", reason.describe()),
            Self::NoCommonAlgorithm(e) => write!(f, "{e}"),
            Self::HostKey(detail) => write!(f, "host key verification failed: {detail}"),
            Self::PeerDisconnected {
                reason,
                description,
            } => {
                write!(f, "disconnected by peer ({}): ", reason.describe())?;
                // The peer's text is shown, but not its control bytes.
                for c in description.chars().take(256) {
                    if c.is_control() {
                        write!(f, "?")?
                    } else {
                        write!(f, "{c}")?
                    }
                }
                Ok(())
            }
            Self::Timeout(what) => write!(f, "timed out: {what}"),
            Self::Closed => write!(f, "connection closed"),
            Self::Misuse(what) => write!(f, "API misuse: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Self::protocol(DisconnectReason::PROTOCOL_ERROR, e.to_string())
    }
}

impl From<NoCommonAlgorithm> for Error {
    fn from(e: NoCommonAlgorithm) -> Self {
        Self::NoCommonAlgorithm(e)
    }
}
