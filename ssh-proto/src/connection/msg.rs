//! The messages of the connection protocol (RFC 4254) and of OpenSSH's extensions to it
//! (OpenSSH's `PROTOCOL` and `PROTOCOL.agent` files), as typed values.
//!
//! Every `parse` takes a whole payload, message number included, and returns a value that
//! borrows the packet: parsing never allocates, so a CHANNEL_DATA packet costs a bounds
//! check and two slices. Every `write` appends the message, number included, to a `Vec`.
//!
//! Parsing is strict where the layout is known: a truncated field, a string whose length
//! runs past the packet, or a byte left over after the last field of a known message or
//! request is a [`WireError`]. Where a request or channel type is unknown, or where RFC 4254
//! leaves the rest of the packet to the type (CHANNEL_OPEN_CONFIRMATION, REQUEST_SUCCESS),
//! the rest is kept as bytes. Nothing here decides policy: a port above 65535, a maximum
//! packet of 0, or a reply asked for where the RFC says never to ask, parse as sent, so the
//! connection layer can refuse them with the right answer.

use core::fmt;

use crate::msg::{MessageNumber, open_enum};
use crate::wire::{Reader, WireError, Writer};

/// The error [`Message::parse`] returns, and only returns, when the message number is not
/// one of the connection protocol's. The caller answers such a message with UNIMPLEMENTED
/// (RFC 4253 section 11.4) instead of treating it as malformed.
pub const NOT_CONNECTION_MESSAGE: WireError = WireError {
    what: "connection protocol message number",
};

fn err(what: &'static str) -> WireError {
    WireError { what }
}

/// Takes everything left in `r`: the part of a message whose layout is not known here.
fn take_rest<'a>(r: &mut Reader<'a>) -> &'a [u8] {
    let rest = r.remaining();
    *r = Reader::new(&[]);
    rest
}

/// Starts reading a payload that must carry message number `number`.
fn open(payload: &[u8], number: MessageNumber) -> Result<Reader<'_>, WireError> {
    let mut r = Reader::new(payload);
    if r.u8("message number")? != number.0 {
        return Err(err("message number"));
    }
    Ok(r)
}

open_enum! {
    /// CHANNEL_OPEN_FAILURE reason codes (RFC 4254 section 5.1, RFC 4250 section 4.3).
    OpenFailureReason(u32) {
        ADMINISTRATIVELY_PROHIBITED = 0x1,
        CONNECT_FAILED = 0x2,
        UNKNOWN_CHANNEL_TYPE = 0x3,
        RESOURCE_SHORTAGE = 0x4,
    }
}

open_enum! {
    /// CHANNEL_EXTENDED_DATA type codes (RFC 4254 section 5.2, RFC 4250 section 4.4).
    ExtendedDataType(u32) {
        STDERR = 0x1,
    }
}

open_enum! {
    /// Opcodes of the encoded terminal modes of a `pty-req` (RFC 4254 section 8).
    TerminalOpcode(u8) {
        /// The end of the modes.
        TTY_OP_END = 0x00,
        VINTR = 0x01,
        VQUIT = 0x02,
        VERASE = 0x03,
        VKILL = 0x04,
        VEOF = 0x05,
        VEOL = 0x06,
        VEOL2 = 0x07,
        VSTART = 0x08,
        VSTOP = 0x09,
        VSUSP = 0x0a,
        VDSUSP = 0x0b,
        VREPRINT = 0x0c,
        VWERASE = 0x0d,
        VLNEXT = 0x0e,
        VFLUSH = 0x0f,
        VSWTCH = 0x10,
        VSTATUS = 0x11,
        VDISCARD = 0x12,
        IGNPAR = 0x1e,
        PARMRK = 0x1f,
        INPCK = 0x20,
        ISTRIP = 0x21,
        INLCR = 0x22,
        IGNCR = 0x23,
        ICRNL = 0x24,
        IUCLC = 0x25,
        IXON = 0x26,
        IXANY = 0x27,
        IXOFF = 0x28,
        IMAXBEL = 0x29,
        /// RFC 8160.
        IUTF8 = 0x2a,
        ISIG = 0x32,
        ICANON = 0x33,
        XCASE = 0x34,
        ECHO = 0x35,
        ECHOE = 0x36,
        ECHOK = 0x37,
        ECHONL = 0x38,
        NOFLSH = 0x39,
        TOSTOP = 0x3a,
        IEXTEN = 0x3b,
        ECHOCTL = 0x3c,
        ECHOKE = 0x3d,
        PENDIN = 0x3e,
        OPOST = 0x46,
        OLCUC = 0x47,
        ONLCR = 0x48,
        OCRNL = 0x49,
        ONOCR = 0x4a,
        ONLRET = 0x4b,
        CS7 = 0x5a,
        CS8 = 0x5b,
        PARENB = 0x5c,
        PARODD = 0x5d,
        /// Input baud rate in bits per second.
        TTY_OP_ISPEED = 0x80,
        /// Output baud rate in bits per second.
        TTY_OP_OSPEED = 0x81,
    }
}

impl TerminalOpcode {
    /// RFC 4254 section 8: opcodes 1 to 159 carry one uint32 argument. 0 ends the modes,
    /// and 160 to 255 have no defined argument, so parsing cannot go past them.
    pub fn has_argument(self) -> bool {
        matches!(self.0, 1..=159)
    }
}

/// The names of the channel types this module parses (RFC 4254 sections 6.1, 6.3.2, 7.2,
/// OpenSSH's `PROTOCOL` section 2.4 and `PROTOCOL.agent`).
pub mod channel_type {
    pub const SESSION: &[u8] = b"session";
    pub const X11: &[u8] = b"x11";
    pub const FORWARDED_TCPIP: &[u8] = b"forwarded-tcpip";
    pub const DIRECT_TCPIP: &[u8] = b"direct-tcpip";
    pub const DIRECT_STREAMLOCAL: &[u8] = b"direct-streamlocal@openssh.com";
    pub const FORWARDED_STREAMLOCAL: &[u8] = b"forwarded-streamlocal@openssh.com";
    pub const AUTH_AGENT: &[u8] = b"auth-agent@openssh.com";
}

/// The names of the global requests this module parses (RFC 4254 section 7.1, OpenSSH's
/// `PROTOCOL` sections 2.2, 2.4 and 2.5).
pub mod global_request {
    pub const TCPIP_FORWARD: &[u8] = b"tcpip-forward";
    pub const CANCEL_TCPIP_FORWARD: &[u8] = b"cancel-tcpip-forward";
    pub const STREAMLOCAL_FORWARD: &[u8] = b"streamlocal-forward@openssh.com";
    pub const CANCEL_STREAMLOCAL_FORWARD: &[u8] = b"cancel-streamlocal-forward@openssh.com";
    /// Sent by OpenSSH with a reply asked for, to see whether the peer is alive.
    pub const KEEPALIVE: &[u8] = b"keepalive@openssh.com";
    pub const NO_MORE_SESSIONS: &[u8] = b"no-more-sessions@openssh.com";
    pub const HOSTKEYS: &[u8] = b"hostkeys-00@openssh.com";
    pub const HOSTKEYS_PROVE: &[u8] = b"hostkeys-prove-00@openssh.com";
}

/// The names of the channel requests this module parses (RFC 4254 section 6, OpenSSH's
/// `PROTOCOL` section 2.1 and `PROTOCOL.agent`).
pub mod channel_request {
    pub const PTY_REQ: &[u8] = b"pty-req";
    pub const X11_REQ: &[u8] = b"x11-req";
    pub const ENV: &[u8] = b"env";
    pub const SHELL: &[u8] = b"shell";
    pub const EXEC: &[u8] = b"exec";
    pub const SUBSYSTEM: &[u8] = b"subsystem";
    pub const WINDOW_CHANGE: &[u8] = b"window-change";
    pub const XON_XOFF: &[u8] = b"xon-xoff";
    pub const SIGNAL: &[u8] = b"signal";
    pub const EXIT_STATUS: &[u8] = b"exit-status";
    pub const EXIT_SIGNAL: &[u8] = b"exit-signal";
    pub const EOW: &[u8] = b"eow@openssh.com";
    pub const AUTH_AGENT_REQ: &[u8] = b"auth-agent-req@openssh.com";
    /// Sent by OpenSSH's server on a session channel, with a reply asked for.
    pub const KEEPALIVE: &[u8] = b"keepalive@openssh.com";
}

/// A run of `string`s filling the rest of a message, as OpenSSH's host key rotation sends
/// them (`PROTOCOL` section 2.5: `string[] hostkeys`, `string[] signatures`). There is no
/// count to trust: the list is checked to be whole strings up to the end once, when
/// parsed, and is then iterated without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BlobList<'a> {
    raw: &'a [u8],
}

impl<'a> BlobList<'a> {
    /// Checks that `raw` is a sequence of complete strings, nothing more.
    pub fn parse(raw: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(raw);
        while !r.is_empty() {
            r.string("string list entry")?;
        }
        Ok(Self { raw })
    }

    /// Encodes `blobs` as a list, appended to `out`; [`BlobList::parse`] reads it back.
    pub fn encode<'b>(blobs: impl IntoIterator<Item = &'b [u8]>, out: &mut Vec<u8>) {
        for blob in blobs {
            out.put_string(blob);
        }
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + Clone + use<'a> {
        let mut r = Reader::new(self.raw);
        // `parse` checked every entry, so reading one cannot fail here.
        core::iter::from_fn(move || r.string("string list entry").ok())
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The encoded list, exactly as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

impl fmt::Debug for BlobList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(<[u8]>::len))
            .finish()
    }
}

/// The encoded terminal modes of a `pty-req` (RFC 4254 section 8): opcode and uint32
/// pairs ended by TTY_OP_END.
///
/// Checked once, when parsed: every opcode from 1 to 159 has its whole argument and the
/// modes end with TTY_OP_END and nothing after it. An opcode from 160 to 255 has no
/// defined argument, so, as the RFC says, parsing stops there: the pairs before it are
/// the modes, and it and whatever follows are kept apart as
/// [`undefined`](Self::undefined). An empty string is accepted as "no modes", as
/// OpenSSH accepts it. The work is bounded by the length of the string; nothing is
/// allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TerminalModes<'a> {
    raw: &'a [u8],
    pairs: &'a [u8],
    undefined: &'a [u8],
}

/// One opcode and its argument: a byte and a uint32.
const MODE_LEN: usize = 5;

impl<'a> TerminalModes<'a> {
    /// No modes: TTY_OP_END alone.
    pub const NONE: TerminalModes<'static> = TerminalModes {
        raw: &[0],
        pairs: &[],
        undefined: &[],
    };

    /// Checks the contents of the `encoded terminal modes` string.
    pub fn parse(raw: &'a [u8]) -> Result<Self, WireError> {
        let mut rest = raw;
        let undefined = loop {
            match rest {
                // Only an empty string may end without TTY_OP_END.
                [] if raw.is_empty() => break rest,
                [] => return Err(err("terminal modes: missing TTY_OP_END")),
                [0] => break &[][..],
                [0, ..] => return Err(err("terminal modes: bytes after TTY_OP_END")),
                [1..=159, _, _, _, _, tail @ ..] => rest = tail,
                [1..=159, ..] => return Err(err("terminal modes: truncated argument")),
                [_, ..] => break rest,
            }
        };
        // `rest` is a suffix of `raw`, so this cannot underflow.
        let pairs_len = raw.len() - rest.len();
        let pairs = raw.get(..pairs_len).ok_or(err("terminal modes"))?;
        Ok(Self {
            raw,
            pairs,
            undefined,
        })
    }

    /// Encodes `modes` followed by TTY_OP_END, appended to `out`. An opcode without a
    /// defined argument (0, or 160 and above) cannot be encoded as a pair: `out` is left
    /// as it was and an error returned.
    pub fn encode(
        modes: impl IntoIterator<Item = (TerminalOpcode, u32)>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let start = out.len();
        for (opcode, arg) in modes {
            if !opcode.has_argument() {
                out.truncate(start);
                return Err(err("terminal mode opcode"));
            }
            out.put_u8(opcode.0);
            out.put_u32(arg);
        }
        out.put_u8(TerminalOpcode::TTY_OP_END.0);
        Ok(())
    }

    /// The modes with an argument, in the order sent, up to TTY_OP_END or the first
    /// opcode of 160 or above. A mode sent twice comes out twice.
    pub fn iter(&self) -> impl Iterator<Item = (TerminalOpcode, u32)> + Clone + use<'a> {
        self.pairs
            .chunks_exact(MODE_LEN)
            .filter_map(|pair| match *pair {
                [op, a, b, c, d] => Some((TerminalOpcode(op), u32::from_be_bytes([a, b, c, d]))),
                _ => None,
            })
    }

    /// From the first opcode of 160 or above to the end, or empty. RFC 4254 defines no
    /// meaning for these bytes; a server may ignore them.
    pub fn undefined(&self) -> &'a [u8] {
        self.undefined
    }

    /// The encoded modes, exactly as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

// ---------------------------------------------------------------------------------------
// Global requests (RFC 4254 section 4).

/// The request-specific part of a GLOBAL_REQUEST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalRequestBody<'a> {
    /// RFC 4254 section 7.1: listen on `address`:`port` and forward what connects. Port 0
    /// asks the server to choose; it answers with the port in REQUEST_SUCCESS.
    TcpipForward { address: &'a [u8], port: u32 },
    /// RFC 4254 section 7.1.
    CancelTcpipForward { address: &'a [u8], port: u32 },
    /// OpenSSH's `PROTOCOL` section 2.4.
    StreamlocalForward { socket_path: &'a [u8] },
    /// OpenSSH's `PROTOCOL` section 2.4.
    CancelStreamlocalForward { socket_path: &'a [u8] },
    /// OpenSSH's liveness probe; no fields.
    Keepalive,
    /// OpenSSH's `PROTOCOL` section 2.2; no fields.
    NoMoreSessions,
    /// OpenSSH's `PROTOCOL` section 2.5: the server's host key blobs.
    HostKeys(BlobList<'a>),
    /// OpenSSH's `PROTOCOL` section 2.5: the host keys the client wants proved.
    HostKeysProve(BlobList<'a>),
    /// Any other request: its name and everything after `want_reply`, unchecked.
    Other { name: &'a [u8], data: &'a [u8] },
}

impl<'a> GlobalRequestBody<'a> {
    /// The request name on the wire.
    pub fn name(&self) -> &'a [u8] {
        use global_request as n;
        match *self {
            Self::TcpipForward { .. } => n::TCPIP_FORWARD,
            Self::CancelTcpipForward { .. } => n::CANCEL_TCPIP_FORWARD,
            Self::StreamlocalForward { .. } => n::STREAMLOCAL_FORWARD,
            Self::CancelStreamlocalForward { .. } => n::CANCEL_STREAMLOCAL_FORWARD,
            Self::Keepalive => n::KEEPALIVE,
            Self::NoMoreSessions => n::NO_MORE_SESSIONS,
            Self::HostKeys(_) => n::HOSTKEYS,
            Self::HostKeysProve(_) => n::HOSTKEYS_PROVE,
            Self::Other { name, .. } => name,
        }
    }

    fn parse(name: &'a [u8], r: &mut Reader<'a>) -> Result<Self, WireError> {
        use global_request as n;
        let body = match name {
            n::TCPIP_FORWARD => Self::TcpipForward {
                address: r.string("address to bind")?,
                port: r.u32("port to bind")?,
            },
            n::CANCEL_TCPIP_FORWARD => Self::CancelTcpipForward {
                address: r.string("address to bind")?,
                port: r.u32("port to bind")?,
            },
            n::STREAMLOCAL_FORWARD => Self::StreamlocalForward {
                socket_path: r.string("socket path")?,
            },
            n::CANCEL_STREAMLOCAL_FORWARD => Self::CancelStreamlocalForward {
                socket_path: r.string("socket path")?,
            },
            n::KEEPALIVE => Self::Keepalive,
            n::NO_MORE_SESSIONS => Self::NoMoreSessions,
            n::HOSTKEYS => Self::HostKeys(BlobList::parse(take_rest(r))?),
            n::HOSTKEYS_PROVE => Self::HostKeysProve(BlobList::parse(take_rest(r))?),
            _ => Self::Other {
                name,
                data: take_rest(r),
            },
        };
        r.finish()?;
        Ok(body)
    }

    fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Self::TcpipForward { address, port } | Self::CancelTcpipForward { address, port } => {
                out.put_string(address);
                out.put_u32(port);
            }
            Self::StreamlocalForward { socket_path }
            | Self::CancelStreamlocalForward { socket_path } => out.put_string(socket_path),
            Self::Keepalive | Self::NoMoreSessions => {}
            Self::HostKeys(list) | Self::HostKeysProve(list) => out.put_raw(list.as_bytes()),
            Self::Other { data, .. } => out.put_raw(data),
        }
    }
}

/// SSH_MSG_GLOBAL_REQUEST (RFC 4254 section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalRequest<'a> {
    pub want_reply: bool,
    pub body: GlobalRequestBody<'a>,
}

impl<'a> GlobalRequest<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = open(payload, MessageNumber::GLOBAL_REQUEST)?;
        let name = r.string("request name")?;
        let want_reply = r.bool("want reply")?;
        let body = GlobalRequestBody::parse(name, &mut r)?;
        Ok(Self { want_reply, body })
    }

    /// Reads only the request name and `want_reply`, which every GLOBAL_REQUEST starts
    /// with whatever its body (RFC 4254 section 4), so that a request whose body does not
    /// parse can still be answered.
    pub fn parse_header(payload: &'a [u8]) -> Result<(&'a [u8], bool), WireError> {
        let mut r = open(payload, MessageNumber::GLOBAL_REQUEST)?;
        let name = r.string("request name")?;
        let want_reply = r.bool("want reply")?;
        Ok((name, want_reply))
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::GLOBAL_REQUEST.0);
        out.put_string(self.body.name());
        out.put_bool(self.want_reply);
        self.body.write(out);
    }
}

/// SSH_MSG_REQUEST_SUCCESS (RFC 4254 section 4). What follows the message number depends
/// on the request it answers, which only the caller knows, so it is kept as bytes and read
/// through [`bound_port`](Self::bound_port) or [`signatures`](Self::signatures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestSuccess<'a> {
    pub data: &'a [u8],
}

impl<'a> RequestSuccess<'a> {
    /// A reply with nothing after the message number.
    pub const EMPTY: RequestSuccess<'static> = RequestSuccess { data: &[] };

    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let r = open(payload, MessageNumber::REQUEST_SUCCESS)?;
        Ok(Self {
            data: r.remaining(),
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::REQUEST_SUCCESS.0);
        out.put_raw(self.data);
    }

    /// Writes the answer to a `tcpip-forward` for port 0: the port the server bound
    /// (RFC 4254 section 7.1).
    pub fn write_bound_port(port: u32, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::REQUEST_SUCCESS.0);
        out.put_u32(port);
    }

    /// Read as the answer to a `tcpip-forward` (RFC 4254 section 7.1): `None` when the
    /// reply is empty, as it is when a port other than 0 was asked for, or the port the
    /// server bound. Anything else is an error.
    pub fn bound_port(&self) -> Result<Option<u32>, WireError> {
        if self.data.is_empty() {
            return Ok(None);
        }
        let mut r = Reader::new(self.data);
        let port = r.u32("bound port")?;
        r.finish()?;
        Ok(Some(port))
    }

    /// Read as the answer to `hostkeys-prove-00@openssh.com` (OpenSSH's `PROTOCOL`
    /// section 2.5): one signature per key asked about, in order.
    pub fn signatures(&self) -> Result<BlobList<'a>, WireError> {
        BlobList::parse(self.data)
    }
}

/// SSH_MSG_REQUEST_FAILURE (RFC 4254 section 4): no fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestFailure;

impl RequestFailure {
    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        open(payload, MessageNumber::REQUEST_FAILURE)?.finish()?;
        Ok(Self)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::REQUEST_FAILURE.0);
    }
}

// ---------------------------------------------------------------------------------------
// Opening channels (RFC 4254 section 5.1).

/// The channel type of a CHANNEL_OPEN and its type-specific fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelType<'a> {
    /// RFC 4254 section 6.1; no fields.
    Session,
    /// RFC 4254 section 7.2: the client asks the server to connect to `host`:`port`.
    DirectTcpip {
        host: &'a [u8],
        port: u32,
        originator_address: &'a [u8],
        originator_port: u32,
    },
    /// RFC 4254 section 7.2: a connection arrived on a port forwarded with `tcpip-forward`.
    ForwardedTcpip {
        connected_address: &'a [u8],
        connected_port: u32,
        originator_address: &'a [u8],
        originator_port: u32,
    },
    /// OpenSSH's `PROTOCOL` section 2.4: connect to a Unix domain socket.
    DirectStreamlocal {
        socket_path: &'a [u8],
        reserved: &'a [u8],
        reserved_uint: u32,
    },
    /// OpenSSH's `PROTOCOL` section 2.4: a connection arrived on a forwarded socket.
    ForwardedStreamlocal {
        socket_path: &'a [u8],
        reserved: &'a [u8],
    },
    /// RFC 4254 section 6.3.2.
    X11 {
        originator_address: &'a [u8],
        originator_port: u32,
    },
    /// OpenSSH's `PROTOCOL.agent`: a connection to the forwarded agent; no fields.
    AuthAgent,
    /// Any other type: its name and the rest of the message, unchecked.
    Other { name: &'a [u8], data: &'a [u8] },
}

impl<'a> ChannelType<'a> {
    /// The channel type name on the wire.
    pub fn name(&self) -> &'a [u8] {
        use channel_type as n;
        match *self {
            Self::Session => n::SESSION,
            Self::DirectTcpip { .. } => n::DIRECT_TCPIP,
            Self::ForwardedTcpip { .. } => n::FORWARDED_TCPIP,
            Self::DirectStreamlocal { .. } => n::DIRECT_STREAMLOCAL,
            Self::ForwardedStreamlocal { .. } => n::FORWARDED_STREAMLOCAL,
            Self::X11 { .. } => n::X11,
            Self::AuthAgent => n::AUTH_AGENT,
            Self::Other { name, .. } => name,
        }
    }

    fn parse(name: &'a [u8], r: &mut Reader<'a>) -> Result<Self, WireError> {
        use channel_type as n;
        let kind = match name {
            n::SESSION => Self::Session,
            n::DIRECT_TCPIP => Self::DirectTcpip {
                host: r.string("host to connect")?,
                port: r.u32("port to connect")?,
                originator_address: r.string("originator address")?,
                originator_port: r.u32("originator port")?,
            },
            n::FORWARDED_TCPIP => Self::ForwardedTcpip {
                connected_address: r.string("address that was connected")?,
                connected_port: r.u32("port that was connected")?,
                originator_address: r.string("originator address")?,
                originator_port: r.u32("originator port")?,
            },
            n::DIRECT_STREAMLOCAL => Self::DirectStreamlocal {
                socket_path: r.string("socket path")?,
                reserved: r.string("reserved string")?,
                reserved_uint: r.u32("reserved uint32")?,
            },
            n::FORWARDED_STREAMLOCAL => Self::ForwardedStreamlocal {
                socket_path: r.string("socket path")?,
                reserved: r.string("reserved string")?,
            },
            n::X11 => Self::X11 {
                originator_address: r.string("originator address")?,
                originator_port: r.u32("originator port")?,
            },
            n::AUTH_AGENT => Self::AuthAgent,
            _ => Self::Other {
                name,
                data: take_rest(r),
            },
        };
        r.finish()?;
        Ok(kind)
    }

    fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Self::Session | Self::AuthAgent => {}
            Self::DirectTcpip {
                host: address,
                port,
                originator_address,
                originator_port,
            }
            | Self::ForwardedTcpip {
                connected_address: address,
                connected_port: port,
                originator_address,
                originator_port,
            } => {
                out.put_string(address);
                out.put_u32(port);
                out.put_string(originator_address);
                out.put_u32(originator_port);
            }
            Self::DirectStreamlocal {
                socket_path,
                reserved,
                reserved_uint,
            } => {
                out.put_string(socket_path);
                out.put_string(reserved);
                out.put_u32(reserved_uint);
            }
            Self::ForwardedStreamlocal {
                socket_path,
                reserved,
            } => {
                out.put_string(socket_path);
                out.put_string(reserved);
            }
            Self::X11 {
                originator_address,
                originator_port,
            } => {
                out.put_string(originator_address);
                out.put_u32(originator_port);
            }
            Self::Other { data, .. } => out.put_raw(data),
        }
    }
}

/// SSH_MSG_CHANNEL_OPEN (RFC 4254 section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelOpen<'a> {
    /// The opener's number for the channel.
    pub sender: u32,
    pub initial_window: u32,
    pub max_packet: u32,
    pub channel_type: ChannelType<'a>,
}

impl<'a> ChannelOpen<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = open(payload, MessageNumber::CHANNEL_OPEN)?;
        let name = r.string("channel type")?;
        let sender = r.u32("sender channel")?;
        let initial_window = r.u32("initial window size")?;
        let max_packet = r.u32("maximum packet size")?;
        let channel_type = ChannelType::parse(name, &mut r)?;
        Ok(Self {
            sender,
            initial_window,
            max_packet,
            channel_type,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::CHANNEL_OPEN.0);
        out.put_string(self.channel_type.name());
        out.put_u32(self.sender);
        out.put_u32(self.initial_window);
        out.put_u32(self.max_packet);
        self.channel_type.write(out);
    }
}

/// SSH_MSG_CHANNEL_OPEN_CONFIRMATION (RFC 4254 section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelOpenConfirmation<'a> {
    /// The opener's number for the channel, from its CHANNEL_OPEN.
    pub recipient: u32,
    /// The confirming side's number for the channel.
    pub sender: u32,
    pub initial_window: u32,
    pub max_packet: u32,
    /// Channel-type-specific data; no type in use defines any.
    pub extra: &'a [u8],
}

impl<'a> ChannelOpenConfirmation<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = open(payload, MessageNumber::CHANNEL_OPEN_CONFIRMATION)?;
        Ok(Self {
            recipient: r.u32("recipient channel")?,
            sender: r.u32("sender channel")?,
            initial_window: r.u32("initial window size")?,
            max_packet: r.u32("maximum packet size")?,
            extra: take_rest(&mut r),
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::CHANNEL_OPEN_CONFIRMATION.0);
        out.put_u32(self.recipient);
        out.put_u32(self.sender);
        out.put_u32(self.initial_window);
        out.put_u32(self.max_packet);
        out.put_raw(self.extra);
    }
}

/// SSH_MSG_CHANNEL_OPEN_FAILURE (RFC 4254 section 5.1). The description is meant to be
/// UTF-8 but is kept as bytes: it is only ever shown, after sanitising, and a peer's badly
/// encoded text is no reason to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelOpenFailure<'a> {
    pub recipient: u32,
    pub reason: OpenFailureReason,
    pub description: &'a [u8],
    pub language: &'a [u8],
}

impl<'a> ChannelOpenFailure<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = open(payload, MessageNumber::CHANNEL_OPEN_FAILURE)?;
        let failure = Self {
            recipient: r.u32("recipient channel")?,
            reason: OpenFailureReason(r.u32("reason code")?),
            description: r.string("description")?,
            language: r.string("language tag")?,
        };
        r.finish()?;
        Ok(failure)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::CHANNEL_OPEN_FAILURE.0);
        out.put_u32(self.recipient);
        out.put_u32(self.reason.0);
        out.put_string(self.description);
        out.put_string(self.language);
    }
}

// ---------------------------------------------------------------------------------------
// Data transfer and channel lifetime (RFC 4254 sections 5.2 and 5.3).

/// SSH_MSG_CHANNEL_WINDOW_ADJUST (RFC 4254 section 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelWindowAdjust {
    pub recipient: u32,
    pub bytes_to_add: u32,
}

impl ChannelWindowAdjust {
    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = open(payload, MessageNumber::CHANNEL_WINDOW_ADJUST)?;
        let adjust = Self {
            recipient: r.u32("recipient channel")?,
            bytes_to_add: r.u32("bytes to add")?,
        };
        r.finish()?;
        Ok(adjust)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::CHANNEL_WINDOW_ADJUST.0);
        out.put_u32(self.recipient);
        out.put_u32(self.bytes_to_add);
    }
}

/// SSH_MSG_CHANNEL_DATA (RFC 4254 section 5.2). `data` borrows the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelData<'a> {
    pub recipient: u32,
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = open(payload, MessageNumber::CHANNEL_DATA)?;
        let data = Self {
            recipient: r.u32("recipient channel")?,
            data: r.string("data")?,
        };
        r.finish()?;
        Ok(data)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::CHANNEL_DATA.0);
        out.put_u32(self.recipient);
        out.put_string(self.data);
    }
}

/// SSH_MSG_CHANNEL_EXTENDED_DATA (RFC 4254 section 5.2). `data` borrows the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelExtendedData<'a> {
    pub recipient: u32,
    pub data_type: ExtendedDataType,
    pub data: &'a [u8],
}

impl<'a> ChannelExtendedData<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = open(payload, MessageNumber::CHANNEL_EXTENDED_DATA)?;
        let data = Self {
            recipient: r.u32("recipient channel")?,
            data_type: ExtendedDataType(r.u32("data type code")?),
            data: r.string("data")?,
        };
        r.finish()?;
        Ok(data)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::CHANNEL_EXTENDED_DATA.0);
        out.put_u32(self.recipient);
        out.put_u32(self.data_type.0);
        out.put_string(self.data);
    }
}

// The four messages that carry nothing but the recipient channel.
macro_rules! recipient_only {
    ($(#[$meta:meta])* $name:ident = $number:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            pub recipient: u32,
        }

        impl $name {
            pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
                let mut r = open(payload, MessageNumber::$number)?;
                let recipient = r.u32("recipient channel")?;
                r.finish()?;
                Ok(Self { recipient })
            }

            pub fn write(&self, out: &mut Vec<u8>) {
                out.put_u8(MessageNumber::$number.0);
                out.put_u32(self.recipient);
            }
        }
    };
}

recipient_only! {
    /// SSH_MSG_CHANNEL_EOF (RFC 4254 section 5.3).
    ChannelEof = CHANNEL_EOF
}

recipient_only! {
    /// SSH_MSG_CHANNEL_CLOSE (RFC 4254 section 5.3).
    ChannelClose = CHANNEL_CLOSE
}

recipient_only! {
    /// SSH_MSG_CHANNEL_SUCCESS (RFC 4254 section 5.4).
    ChannelSuccess = CHANNEL_SUCCESS
}

recipient_only! {
    /// SSH_MSG_CHANNEL_FAILURE (RFC 4254 section 5.4).
    ChannelFailure = CHANNEL_FAILURE
}

// ---------------------------------------------------------------------------------------
// Channel requests (RFC 4254 sections 5.4 and 6).

/// A terminal's size in characters and pixels (RFC 4254 sections 6.2 and 6.7). Pixel
/// sizes are 0 when unknown; character sizes override them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TerminalSize {
    pub cols: u32,
    pub rows: u32,
    pub width_px: u32,
    pub height_px: u32,
}

impl TerminalSize {
    fn parse(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            cols: r.u32("terminal width, characters")?,
            rows: r.u32("terminal height, rows")?,
            width_px: r.u32("terminal width, pixels")?,
            height_px: r.u32("terminal height, pixels")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u32(self.cols);
        out.put_u32(self.rows);
        out.put_u32(self.width_px);
        out.put_u32(self.height_px);
    }
}

/// A `pty-req` (RFC 4254 section 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtyRequest<'a> {
    /// The TERM environment variable value, such as `xterm-256color`.
    pub term: &'a [u8],
    pub size: TerminalSize,
    pub modes: TerminalModes<'a>,
}

/// An `x11-req` (RFC 4254 section 6.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X11Request<'a> {
    pub single_connection: bool,
    pub auth_protocol: &'a [u8],
    pub auth_cookie: &'a [u8],
    pub screen: u32,
}

/// An `exit-signal` (RFC 4254 section 6.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitSignal<'a> {
    /// The signal name without the `SIG` prefix, such as `TERM`.
    pub signal: &'a [u8],
    pub core_dumped: bool,
    pub message: &'a [u8],
    pub language: &'a [u8],
}

/// The request-specific part of a CHANNEL_REQUEST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelRequestBody<'a> {
    /// RFC 4254 section 6.2.
    PtyReq(PtyRequest<'a>),
    /// RFC 4254 section 6.3.1.
    X11Req(X11Request<'a>),
    /// RFC 4254 section 6.4.
    Env { name: &'a [u8], value: &'a [u8] },
    /// RFC 4254 section 6.5; no fields.
    Shell,
    /// RFC 4254 section 6.5: the command as sent, which need not be UTF-8.
    Exec { command: &'a [u8] },
    /// RFC 4254 section 6.5.
    Subsystem { name: &'a [u8] },
    /// RFC 4254 section 6.7.
    WindowChange(TerminalSize),
    /// RFC 4254 section 6.8.
    XonXoff { client_can_do: bool },
    /// RFC 4254 section 6.9: the signal name without the `SIG` prefix.
    Signal { name: &'a [u8] },
    /// RFC 4254 section 6.10.
    ExitStatus { status: u32 },
    /// RFC 4254 section 6.10.
    ExitSignal(ExitSignal<'a>),
    /// OpenSSH's `PROTOCOL` section 2.1: the sender will read no more data; no fields.
    Eow,
    /// OpenSSH's `PROTOCOL.agent`: forward the agent; no fields.
    AuthAgentReq,
    /// OpenSSH's liveness probe on a session channel; no fields.
    Keepalive,
    /// Any other request: its name and everything after `want_reply`, unchecked.
    Other { name: &'a [u8], data: &'a [u8] },
}

impl<'a> ChannelRequestBody<'a> {
    /// The request type name on the wire.
    pub fn name(&self) -> &'a [u8] {
        use channel_request as n;
        match *self {
            Self::PtyReq(_) => n::PTY_REQ,
            Self::X11Req(_) => n::X11_REQ,
            Self::Env { .. } => n::ENV,
            Self::Shell => n::SHELL,
            Self::Exec { .. } => n::EXEC,
            Self::Subsystem { .. } => n::SUBSYSTEM,
            Self::WindowChange(_) => n::WINDOW_CHANGE,
            Self::XonXoff { .. } => n::XON_XOFF,
            Self::Signal { .. } => n::SIGNAL,
            Self::ExitStatus { .. } => n::EXIT_STATUS,
            Self::ExitSignal(_) => n::EXIT_SIGNAL,
            Self::Eow => n::EOW,
            Self::AuthAgentReq => n::AUTH_AGENT_REQ,
            Self::Keepalive => n::KEEPALIVE,
            Self::Other { name, .. } => name,
        }
    }

    fn parse(name: &'a [u8], r: &mut Reader<'a>) -> Result<Self, WireError> {
        use channel_request as n;
        let body = match name {
            n::PTY_REQ => Self::PtyReq(PtyRequest {
                term: r.string("TERM")?,
                size: TerminalSize::parse(r)?,
                modes: TerminalModes::parse(r.string("terminal modes")?)?,
            }),
            n::X11_REQ => Self::X11Req(X11Request {
                single_connection: r.bool("single connection")?,
                auth_protocol: r.string("x11 authentication protocol")?,
                auth_cookie: r.string("x11 authentication cookie")?,
                screen: r.u32("x11 screen number")?,
            }),
            n::ENV => Self::Env {
                name: r.string("variable name")?,
                value: r.string("variable value")?,
            },
            n::SHELL => Self::Shell,
            n::EXEC => Self::Exec {
                command: r.string("command")?,
            },
            n::SUBSYSTEM => Self::Subsystem {
                name: r.string("subsystem name")?,
            },
            n::WINDOW_CHANGE => Self::WindowChange(TerminalSize::parse(r)?),
            n::XON_XOFF => Self::XonXoff {
                client_can_do: r.bool("client can do")?,
            },
            n::SIGNAL => Self::Signal {
                name: r.string("signal name")?,
            },
            n::EXIT_STATUS => Self::ExitStatus {
                status: r.u32("exit status")?,
            },
            n::EXIT_SIGNAL => Self::ExitSignal(ExitSignal {
                signal: r.string("signal name")?,
                core_dumped: r.bool("core dumped")?,
                message: r.string("error message")?,
                language: r.string("language tag")?,
            }),
            n::EOW => Self::Eow,
            n::AUTH_AGENT_REQ => Self::AuthAgentReq,
            n::KEEPALIVE => Self::Keepalive,
            _ => Self::Other {
                name,
                data: take_rest(r),
            },
        };
        r.finish()?;
        Ok(body)
    }

    fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Self::PtyReq(PtyRequest { term, size, modes }) => {
                out.put_string(term);
                size.write(out);
                out.put_string(modes.as_bytes());
            }
            Self::X11Req(X11Request {
                single_connection,
                auth_protocol,
                auth_cookie,
                screen,
            }) => {
                out.put_bool(single_connection);
                out.put_string(auth_protocol);
                out.put_string(auth_cookie);
                out.put_u32(screen);
            }
            Self::Env { name, value } => {
                out.put_string(name);
                out.put_string(value);
            }
            Self::Exec { command: s } | Self::Subsystem { name: s } | Self::Signal { name: s } => {
                out.put_string(s);
            }
            Self::WindowChange(size) => size.write(out),
            Self::XonXoff { client_can_do } => out.put_bool(client_can_do),
            Self::ExitStatus { status } => out.put_u32(status),
            Self::ExitSignal(ExitSignal {
                signal,
                core_dumped,
                message,
                language,
            }) => {
                out.put_string(signal);
                out.put_bool(core_dumped);
                out.put_string(message);
                out.put_string(language);
            }
            Self::Shell | Self::Eow | Self::AuthAgentReq | Self::Keepalive => {}
            Self::Other { data, .. } => out.put_raw(data),
        }
    }
}

/// SSH_MSG_CHANNEL_REQUEST (RFC 4254 section 5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelRequest<'a> {
    pub recipient: u32,
    pub want_reply: bool,
    pub body: ChannelRequestBody<'a>,
}

impl<'a> ChannelRequest<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = open(payload, MessageNumber::CHANNEL_REQUEST)?;
        let recipient = r.u32("recipient channel")?;
        let name = r.string("request type")?;
        let want_reply = r.bool("want reply")?;
        let body = ChannelRequestBody::parse(name, &mut r)?;
        Ok(Self {
            recipient,
            want_reply,
            body,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(MessageNumber::CHANNEL_REQUEST.0);
        out.put_u32(self.recipient);
        out.put_string(self.body.name());
        out.put_bool(self.want_reply);
        self.body.write(out);
    }
}

// ---------------------------------------------------------------------------------------
// Any message of the connection protocol.

/// A message of the connection protocol (RFC 4254, message numbers 80 to 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    GlobalRequest(GlobalRequest<'a>),
    RequestSuccess(RequestSuccess<'a>),
    RequestFailure(RequestFailure),
    ChannelOpen(ChannelOpen<'a>),
    ChannelOpenConfirmation(ChannelOpenConfirmation<'a>),
    ChannelOpenFailure(ChannelOpenFailure<'a>),
    ChannelWindowAdjust(ChannelWindowAdjust),
    ChannelData(ChannelData<'a>),
    ChannelExtendedData(ChannelExtendedData<'a>),
    ChannelEof(ChannelEof),
    ChannelClose(ChannelClose),
    ChannelRequest(ChannelRequest<'a>),
    ChannelSuccess(ChannelSuccess),
    ChannelFailure(ChannelFailure),
}

impl<'a> Message<'a> {
    /// Parses a whole payload, message number included, borrowing it.
    ///
    /// A number that is not a connection protocol message (outside 80 to 100, or one of
    /// the unassigned 83 to 89) gives [`NOT_CONNECTION_MESSAGE`], for the caller to answer
    /// with UNIMPLEMENTED; any other error means the message is malformed.
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let Some(&number) = payload.first() else {
            return Err(err("message number"));
        };
        Ok(match MessageNumber(number) {
            MessageNumber::GLOBAL_REQUEST => Self::GlobalRequest(GlobalRequest::parse(payload)?),
            MessageNumber::REQUEST_SUCCESS => Self::RequestSuccess(RequestSuccess::parse(payload)?),
            MessageNumber::REQUEST_FAILURE => Self::RequestFailure(RequestFailure::parse(payload)?),
            MessageNumber::CHANNEL_OPEN => Self::ChannelOpen(ChannelOpen::parse(payload)?),
            MessageNumber::CHANNEL_OPEN_CONFIRMATION => {
                Self::ChannelOpenConfirmation(ChannelOpenConfirmation::parse(payload)?)
            }
            MessageNumber::CHANNEL_OPEN_FAILURE => {
                Self::ChannelOpenFailure(ChannelOpenFailure::parse(payload)?)
            }
            MessageNumber::CHANNEL_WINDOW_ADJUST => {
                Self::ChannelWindowAdjust(ChannelWindowAdjust::parse(payload)?)
            }
            MessageNumber::CHANNEL_DATA => Self::ChannelData(ChannelData::parse(payload)?),
            MessageNumber::CHANNEL_EXTENDED_DATA => {
                Self::ChannelExtendedData(ChannelExtendedData::parse(payload)?)
            }
            MessageNumber::CHANNEL_EOF => Self::ChannelEof(ChannelEof::parse(payload)?),
            MessageNumber::CHANNEL_CLOSE => Self::ChannelClose(ChannelClose::parse(payload)?),
            MessageNumber::CHANNEL_REQUEST => Self::ChannelRequest(ChannelRequest::parse(payload)?),
            MessageNumber::CHANNEL_SUCCESS => Self::ChannelSuccess(ChannelSuccess::parse(payload)?),
            MessageNumber::CHANNEL_FAILURE => Self::ChannelFailure(ChannelFailure::parse(payload)?),
            _ => return Err(NOT_CONNECTION_MESSAGE),
        })
    }

    /// Appends the message, number included, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::GlobalRequest(m) => m.write(out),
            Self::RequestSuccess(m) => m.write(out),
            Self::RequestFailure(m) => m.write(out),
            Self::ChannelOpen(m) => m.write(out),
            Self::ChannelOpenConfirmation(m) => m.write(out),
            Self::ChannelOpenFailure(m) => m.write(out),
            Self::ChannelWindowAdjust(m) => m.write(out),
            Self::ChannelData(m) => m.write(out),
            Self::ChannelExtendedData(m) => m.write(out),
            Self::ChannelEof(m) => m.write(out),
            Self::ChannelClose(m) => m.write(out),
            Self::ChannelRequest(m) => m.write(out),
            Self::ChannelSuccess(m) => m.write(out),
            Self::ChannelFailure(m) => m.write(out),
        }
    }

    pub fn number(&self) -> MessageNumber {
        match self {
            Self::GlobalRequest(_) => MessageNumber::GLOBAL_REQUEST,
            Self::RequestSuccess(_) => MessageNumber::REQUEST_SUCCESS,
            Self::RequestFailure(_) => MessageNumber::REQUEST_FAILURE,
            Self::ChannelOpen(_) => MessageNumber::CHANNEL_OPEN,
            Self::ChannelOpenConfirmation(_) => MessageNumber::CHANNEL_OPEN_CONFIRMATION,
            Self::ChannelOpenFailure(_) => MessageNumber::CHANNEL_OPEN_FAILURE,
            Self::ChannelWindowAdjust(_) => MessageNumber::CHANNEL_WINDOW_ADJUST,
            Self::ChannelData(_) => MessageNumber::CHANNEL_DATA,
            Self::ChannelExtendedData(_) => MessageNumber::CHANNEL_EXTENDED_DATA,
            Self::ChannelEof(_) => MessageNumber::CHANNEL_EOF,
            Self::ChannelClose(_) => MessageNumber::CHANNEL_CLOSE,
            Self::ChannelRequest(_) => MessageNumber::CHANNEL_REQUEST,
            Self::ChannelSuccess(_) => MessageNumber::CHANNEL_SUCCESS,
            Self::ChannelFailure(_) => MessageNumber::CHANNEL_FAILURE,
        }
    }

    /// The local channel a message is addressed to: the recipient channel of every
    /// message after CHANNEL_OPEN; `None` for global messages and CHANNEL_OPEN itself.
    pub fn recipient(&self) -> Option<u32> {
        match self {
            Self::GlobalRequest(_)
            | Self::RequestSuccess(_)
            | Self::RequestFailure(_)
            | Self::ChannelOpen(_) => None,
            Self::ChannelOpenConfirmation(m) => Some(m.recipient),
            Self::ChannelOpenFailure(m) => Some(m.recipient),
            Self::ChannelWindowAdjust(m) => Some(m.recipient),
            Self::ChannelData(m) => Some(m.recipient),
            Self::ChannelExtendedData(m) => Some(m.recipient),
            Self::ChannelEof(m) => Some(m.recipient),
            Self::ChannelClose(m) => Some(m.recipient),
            Self::ChannelRequest(m) => Some(m.recipient),
            Self::ChannelSuccess(m) => Some(m.recipient),
            Self::ChannelFailure(m) => Some(m.recipient),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_stop_at_undefined_opcodes() {
        // VINTR 3, then opcode 160, whose argument (if any) nobody can know.
        let raw = [1, 0, 0, 0, 3, 160, 9, 9];
        let modes = TerminalModes::parse(&raw).unwrap();
        assert_eq!(
            modes.iter().collect::<Vec<_>>(),
            [(TerminalOpcode::VINTR, 3)]
        );
        assert_eq!(modes.undefined(), [160, 9, 9]);

        // Opcode 159 still has an argument, so a short one is an error.
        assert!(TerminalModes::parse(&[159, 0, 0, 0]).is_err());
        assert!(TerminalModes::parse(&[159, 0, 0, 0, 1, 0]).is_ok());
    }

    #[test]
    fn modes_must_end_with_tty_op_end_and_nothing_after() {
        assert!(TerminalModes::parse(&[53, 0, 0, 0, 1]).is_err());
        assert!(TerminalModes::parse(&[53, 0, 0, 0, 1, 0, 0]).is_err());
        assert!(TerminalModes::parse(&[0, 53]).is_err());
        let empty = TerminalModes::parse(&[]).unwrap();
        assert_eq!(empty.iter().count(), 0);
        assert_eq!(TerminalModes::parse(&[0]).unwrap(), TerminalModes::NONE);
    }

    #[test]
    fn modes_encoding_refuses_opcodes_without_an_argument() {
        let mut out = vec![7];
        let bad = [(TerminalOpcode::ECHO, 1), (TerminalOpcode(160), 0)];
        assert!(TerminalModes::encode(bad, &mut out).is_err());
        assert_eq!(out, [7], "the buffer is left as it was");
        assert!(TerminalModes::encode([(TerminalOpcode::TTY_OP_END, 0)], &mut out).is_err());

        TerminalModes::encode([(TerminalOpcode::ECHO, 1)], &mut out).unwrap();
        assert_eq!(out, [7, 53, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn blob_lists_are_whole_strings() {
        let mut raw = Vec::new();
        BlobList::encode([&b"one"[..], b"", b"three"], &mut raw);
        let list = BlobList::parse(&raw).unwrap();
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            [&b"one"[..], b"", b"three"]
        );
        raw.push(0);
        assert!(BlobList::parse(&raw).is_err());
        assert!(BlobList::parse(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(BlobList::parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn open_enum_names() {
        assert_eq!(
            format!("{:?}", OpenFailureReason::CONNECT_FAILED),
            "CONNECT_FAILED"
        );
        assert_eq!(format!("{:?}", ExtendedDataType(7)), "ExtendedDataType(7)");
        assert_eq!(TerminalOpcode(0x35).name(), Some("ECHO"));
        assert!(!TerminalOpcode(160).has_argument());
        assert!(!TerminalOpcode::TTY_OP_END.has_argument());
    }
}
