//! Message numbers and reason codes: open enums, so an unknown value from the peer is a
//! value like any other and never a parse failure.

use core::fmt;

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// The constant's name, if the value has one.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( Self::$konst => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }
    };
}
pub(crate) use open_enum;

open_enum! {
    /// The first byte of every SSH message (RFC 4250 section 4.1.2).
    MessageNumber(u8) {
        /// RFC 4253 section 11.1.
        DISCONNECT = 0x01,
        /// RFC 4253 section 11.2.
        IGNORE = 0x02,
        /// RFC 4253 section 11.4.
        UNIMPLEMENTED = 0x03,
        /// RFC 4253 section 11.3.
        DEBUG = 0x04,
        /// RFC 4253 section 10.
        SERVICE_REQUEST = 0x05,
        SERVICE_ACCEPT = 0x06,
        /// RFC 8308 section 2.3.
        EXT_INFO = 0x07,
        /// RFC 4253 section 7.1.
        KEXINIT = 0x14,
        /// RFC 4253 section 7.3.
        NEWKEYS = 0x15,
        /// RFC 5656 section 7.1, reused by RFC 8731 and the ML-KEM hybrid.
        KEX_ECDH_INIT = 0x1e,
        KEX_ECDH_REPLY = 0x1f,
        /// RFC 4252 section 6.
        USERAUTH_REQUEST = 0x32,
        USERAUTH_FAILURE = 0x33,
        USERAUTH_SUCCESS = 0x34,
        USERAUTH_BANNER = 0x35,
        /// RFC 4254 section 4.
        GLOBAL_REQUEST = 0x50,
        REQUEST_SUCCESS = 0x51,
        REQUEST_FAILURE = 0x52,
        /// RFC 4254 section 5.1.
        CHANNEL_OPEN = 0x5a,
        CHANNEL_OPEN_CONFIRMATION = 0x5b,
        CHANNEL_OPEN_FAILURE = 0x5c,
        CHANNEL_WINDOW_ADJUST = 0x5d,
        CHANNEL_DATA = 0x5e,
        CHANNEL_EXTENDED_DATA = 0x5f,
        CHANNEL_EOF = 0x60,
        CHANNEL_CLOSE = 0x61,
        CHANNEL_REQUEST = 0x62,
        CHANNEL_SUCCESS = 0x63,
        CHANNEL_FAILURE = 0x64,
        /// OpenSSH's PROTOCOL file, section 1.9 (`ping@openssh.com`).
        PING = 0xc0,
        PONG = 0xc1,
    }
}

impl MessageNumber {
    /// RFC 4253 section 7.1: what may be sent while a key exchange is running.
    pub fn allowed_during_kex(self) -> bool {
        matches!(self.0, 1..=4 | 20..=49)
    }

    /// RFC 4250 section 4.1.2: 1 to 19 transport, 20 to 29 algorithm negotiation,
    /// 30 to 49 key-exchange-method specific.
    pub fn is_transport(self) -> bool {
        matches!(self.0, 1..=49)
    }
}

open_enum! {
    /// SSH_MSG_DISCONNECT reason codes (RFC 4253 section 11.1, RFC 4250 section 4.2.2).
    DisconnectReason(u32) {
        HOST_NOT_ALLOWED_TO_CONNECT = 0x1,
        PROTOCOL_ERROR = 0x2,
        KEY_EXCHANGE_FAILED = 0x3,
        RESERVED = 0x4,
        MAC_ERROR = 0x5,
        COMPRESSION_ERROR = 0x6,
        SERVICE_NOT_AVAILABLE = 0x7,
        PROTOCOL_VERSION_NOT_SUPPORTED = 0x8,
        HOST_KEY_NOT_VERIFIABLE = 0x9,
        CONNECTION_LOST = 0xa,
        BY_APPLICATION = 0xb,
        TOO_MANY_CONNECTIONS = 0xc,
        AUTH_CANCELLED_BY_USER = 0xd,
        NO_MORE_AUTH_METHODS_AVAILABLE = 0xe,
        ILLEGAL_USER_NAME = 0xf,
    }
}

impl DisconnectReason {
    /// A lower-case phrase for messages shown to people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::HOST_NOT_ALLOWED_TO_CONNECT => "host not allowed to connect",
            Self::PROTOCOL_ERROR => "protocol error",
            Self::KEY_EXCHANGE_FAILED => "key exchange failed",
            Self::MAC_ERROR => "message authentication code incorrect",
            Self::COMPRESSION_ERROR => "compression error",
            Self::SERVICE_NOT_AVAILABLE => "service not available",
            Self::PROTOCOL_VERSION_NOT_SUPPORTED => "protocol version not supported",
            Self::HOST_KEY_NOT_VERIFIABLE => "host key not verifiable",
            Self::CONNECTION_LOST => "connection lost",
            Self::BY_APPLICATION => "disconnected by application",
            Self::TOO_MANY_CONNECTIONS => "too many connections",
            Self::AUTH_CANCELLED_BY_USER => "authentication cancelled by user",
            Self::NO_MORE_AUTH_METHODS_AVAILABLE => "no more authentication methods available",
            Self::ILLEGAL_USER_NAME => "illegal user name",
            _ => "unknown reason",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_values() {
        assert_eq!(format!("{:?}", MessageNumber(0x99)), "MessageNumber(153)");
        assert_eq!(format!("{:?}", MessageNumber::KEXINIT), "KEXINIT");
        assert_eq!(DisconnectReason(77).describe(), "unknown reason");
    }

    #[test]
    fn kex_gate() {
        assert!(MessageNumber::IGNORE.allowed_during_kex());
        assert!(MessageNumber::KEX_ECDH_INIT.allowed_during_kex());
        assert!(!MessageNumber::SERVICE_REQUEST.allowed_during_kex());
        assert!(!MessageNumber::CHANNEL_DATA.allowed_during_kex());
    }
}
