//! The input format of the connection targets: a selector byte for the channel settings,
//! then [`Step`]s, each an opcode byte and a fixed number of argument bytes, missing bytes
//! read as 0. The messages and requests a step names come from small tables here, so a
//! mutated byte lands on another well-formed choice more often than on garbage; garbage
//! still comes through [`Step::Raw`].

use crate::connection::budget::DEFAULT_BUDGET;
use crate::connection::channels::ChannelsConfig;
use crate::connection::msg::{
    BlobList, ChannelRequestBody, ChannelType, ExitSignal, GlobalRequestBody, PtyRequest,
    TerminalModes, TerminalSize, X11Request,
};
use crate::connection::window::WindowConfig;

/// One step of a script: a message from the peer, or a call by the application. Fields
/// are the raw argument bytes; how each is read is said where it is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The peer sends this payload as it is.
    Raw(Vec<u8>),
    /// CHANNEL_OPEN of type [`channel_type`]`(kind)`; `window` indexes [`WINDOWS`] and
    /// `max_packet` indexes [`MAX_PACKETS`].
    Open {
        kind: u8,
        sender: u8,
        window: u8,
        max_packet: u8,
    },
    /// OPEN_CONFIRMATION for our channel `channel` (see [`Step`] on channel bytes).
    Confirm {
        channel: u8,
        sender: u8,
        window: u8,
        max_packet: u8,
    },
    /// OPEN_FAILURE for our channel.
    OpenFailure {
        channel: u8,
        reason: u8,
    },
    /// WINDOW_ADJUST by [`ADJUSTS`]`[by]`.
    Adjust {
        channel: u8,
        by: u8,
    },
    /// CHANNEL_DATA of `len` bytes.
    Data {
        channel: u8,
        len: u16,
    },
    /// CHANNEL_EXTENDED_DATA of `len` bytes and type `data_type` (1 is STDERR).
    ExtendedData {
        channel: u8,
        data_type: u8,
        len: u16,
    },
    Eof {
        channel: u8,
    },
    Close {
        channel: u8,
    },
    /// CHANNEL_REQUEST of kind [`request_body`]`(kind)`.
    Request {
        channel: u8,
        kind: u8,
        want_reply: bool,
    },
    /// CHANNEL_SUCCESS or CHANNEL_FAILURE.
    RequestReply {
        channel: u8,
        ok: bool,
    },
    /// GLOBAL_REQUEST of kind [`global_body`]`(kind)`.
    GlobalRequest {
        kind: u8,
        want_reply: bool,
    },
    /// REQUEST_FAILURE, REQUEST_SUCCESS, or REQUEST_SUCCESS with a port, by `kind % 3`.
    GlobalReply {
        kind: u8,
    },
    /// A payload of this message number alone.
    Bare(u8),
    /// The application accepts one of the open requests waiting for an answer.
    Accept {
        which: u8,
    },
    /// The application rejects one, with reason `reason`.
    Reject {
        which: u8,
        reason: u8,
    },
    /// The application answers one of the peer's channel requests waiting for a reply.
    Reply {
        which: u8,
        ok: bool,
    },
    /// The application answers the oldest global request, as [`Step::GlobalReply`] says.
    ReplyGlobal {
        kind: u8,
    },
    /// The application writes `len` bytes.
    SendData {
        channel: u8,
        stderr: bool,
        len: u16,
    },
    /// The application reports data read: all it holds, half, 1, 0, more than it holds,
    /// or `usize::MAX`, by `amount % 6`.
    Consumed {
        channel: u8,
        amount: u8,
    },
    SendEof {
        channel: u8,
    },
    SendClose {
        channel: u8,
    },
    /// The application opens a channel of type [`channel_type`]`(kind)`.
    OpenChannel {
        kind: u8,
    },
    SendRequest {
        channel: u8,
        kind: u8,
        want_reply: bool,
    },
    SendGlobal {
        kind: u8,
        want_reply: bool,
    },
    /// The clock moves on by `ms` milliseconds and the transport's timers run.
    Wait {
        ms: u8,
    },
    /// The application ends the connection.
    Disconnect,
}

/// The number of opcodes; an opcode byte is taken modulo this.
const OPCODES: u8 = 27;

impl Step {
    /// Appends the step's encoding: its opcode, then its arguments.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (op, args): (u8, Vec<u8>) = match *self {
            Self::Raw(ref payload) => {
                let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
                let body = payload.get(..usize::from(len)).unwrap_or(payload);
                (0, [&len.to_be_bytes()[..], body].concat())
            }
            Self::Open {
                kind,
                sender,
                window,
                max_packet,
            } => (1, vec![kind, sender, window, max_packet]),
            Self::Confirm {
                channel,
                sender,
                window,
                max_packet,
            } => (2, vec![channel, sender, window, max_packet]),
            Self::OpenFailure { channel, reason } => (3, vec![channel, reason]),
            Self::Adjust { channel, by } => (4, vec![channel, by]),
            Self::Data { channel, len } => (5, [&[channel][..], &len.to_be_bytes()].concat()),
            Self::ExtendedData {
                channel,
                data_type,
                len,
            } => (6, [&[channel, data_type][..], &len.to_be_bytes()].concat()),
            Self::Eof { channel } => (7, vec![channel]),
            Self::Close { channel } => (8, vec![channel]),
            Self::Request {
                channel,
                kind,
                want_reply,
            } => (9, vec![channel, kind, u8::from(want_reply)]),
            Self::RequestReply { channel, ok } => (10, vec![channel, u8::from(ok)]),
            Self::GlobalRequest { kind, want_reply } => (11, vec![kind, u8::from(want_reply)]),
            Self::GlobalReply { kind } => (12, vec![kind]),
            Self::Bare(number) => (13, vec![number]),
            Self::Accept { which } => (14, vec![which]),
            Self::Reject { which, reason } => (15, vec![which, reason]),
            Self::Reply { which, ok } => (16, vec![which, u8::from(ok)]),
            Self::ReplyGlobal { kind } => (17, vec![kind]),
            Self::SendData {
                channel,
                stderr,
                len,
            } => (
                18,
                [&[channel, u8::from(stderr)][..], &len.to_be_bytes()].concat(),
            ),
            Self::Consumed { channel, amount } => (19, vec![channel, amount]),
            Self::SendEof { channel } => (20, vec![channel]),
            Self::SendClose { channel } => (21, vec![channel]),
            Self::OpenChannel { kind } => (22, vec![kind]),
            Self::SendRequest {
                channel,
                kind,
                want_reply,
            } => (23, vec![channel, kind, u8::from(want_reply)]),
            Self::SendGlobal { kind, want_reply } => (24, vec![kind, u8::from(want_reply)]),
            Self::Wait { ms } => (25, vec![ms]),
            Self::Disconnect => (26, vec![]),
        };
        out.push(op);
        out.extend_from_slice(&args);
    }

    /// Reads the next step, or `None` at the end of the input.
    pub(super) fn decode(c: &mut Cursor<'_>) -> Option<Self> {
        let op = c.next()? % OPCODES;
        Some(match op {
            0 => {
                let len = c.u16();
                Self::Raw(c.take(usize::from(len)).to_vec())
            }
            1 => Self::Open {
                kind: c.u8(),
                sender: c.u8(),
                window: c.u8(),
                max_packet: c.u8(),
            },
            2 => Self::Confirm {
                channel: c.u8(),
                sender: c.u8(),
                window: c.u8(),
                max_packet: c.u8(),
            },
            3 => Self::OpenFailure {
                channel: c.u8(),
                reason: c.u8(),
            },
            4 => Self::Adjust {
                channel: c.u8(),
                by: c.u8(),
            },
            5 => Self::Data {
                channel: c.u8(),
                len: c.u16(),
            },
            6 => Self::ExtendedData {
                channel: c.u8(),
                data_type: c.u8(),
                len: c.u16(),
            },
            7 => Self::Eof { channel: c.u8() },
            8 => Self::Close { channel: c.u8() },
            9 => Self::Request {
                channel: c.u8(),
                kind: c.u8(),
                want_reply: c.bool(),
            },
            10 => Self::RequestReply {
                channel: c.u8(),
                ok: c.bool(),
            },
            11 => Self::GlobalRequest {
                kind: c.u8(),
                want_reply: c.bool(),
            },
            12 => Self::GlobalReply { kind: c.u8() },
            13 => Self::Bare(c.u8()),
            14 => Self::Accept { which: c.u8() },
            15 => Self::Reject {
                which: c.u8(),
                reason: c.u8(),
            },
            16 => Self::Reply {
                which: c.u8(),
                ok: c.bool(),
            },
            17 => Self::ReplyGlobal { kind: c.u8() },
            18 => Self::SendData {
                channel: c.u8(),
                stderr: c.bool(),
                len: c.u16(),
            },
            19 => Self::Consumed {
                channel: c.u8(),
                amount: c.u8(),
            },
            20 => Self::SendEof { channel: c.u8() },
            21 => Self::SendClose { channel: c.u8() },
            22 => Self::OpenChannel { kind: c.u8() },
            23 => Self::SendRequest {
                channel: c.u8(),
                kind: c.u8(),
                want_reply: c.bool(),
            },
            24 => Self::SendGlobal {
                kind: c.u8(),
                want_reply: c.bool(),
            },
            25 => Self::Wait { ms: c.u8() },
            _ => Self::Disconnect,
        })
    }
}

/// A whole input: the selector byte for [`channels_config`], then `steps`.
pub fn script(selector: u8, steps: &[Step]) -> Vec<u8> {
    let mut out = vec![selector];
    for step in steps {
        step.encode(&mut out);
    }
    out
}

/// The channel settings for a selector byte: a cap of 1, 2, 3 or 8 live channels (bits 0
/// and 1); windows of 256, 4096 or 2 MiB with growth, or 512 without (bits 2 and 3); the
/// default growth budget or 1 KiB (bit 4). Small numbers, so short scripts reach them.
pub fn channels_config(selector: u8) -> ChannelsConfig {
    let max_channels = [1, 2, 3, 8][usize::from(selector & 3)];
    let window = [
        WindowConfig {
            initial: 256,
            max: 1024,
            max_packet: 64,
        },
        WindowConfig {
            initial: 4096,
            max: 65536,
            max_packet: 1024,
        },
        WindowConfig::default(),
        WindowConfig {
            initial: 512,
            max: 512,
            max_packet: 512,
        },
    ][usize::from((selector >> 2) & 3)];
    let budget = if selector & 0x10 == 0 {
        DEFAULT_BUDGET
    } else {
        1024
    };
    ChannelsConfig {
        window,
        max_channels,
        budget,
    }
}

/// Initial windows a peer's CHANNEL_OPEN or OPEN_CONFIRMATION offers.
pub const WINDOWS: [u32; 8] = [0, 1, 64, 1024, 32768, 2 << 20, u32::MAX - 1, u32::MAX];
/// Maximum packet sizes a peer offers: 0 and over 2^31 must be refused.
pub const MAX_PACKETS: [u32; 8] = [0, 1, 16, 512, 32768, 1 << 31, (1 << 31) + 1, u32::MAX];
/// What a peer's WINDOW_ADJUST adds.
pub const ADJUSTS: [u32; 8] = [0, 1, 100, 4096, 1 << 20, 1 << 31, u32::MAX - 1, u32::MAX];

/// The bytes of every CHANNEL_DATA either side sends here.
static FILL: [u8; 65535] = [0x5a; 65535];

pub(super) fn entry<T: Copy>(table: &[T], b: u8) -> Option<T> {
    table.get(usize::from(b) % table.len().max(1)).copied()
}

/// Channel types by `kind % 8`: every type [`ChannelType`] knows and one it does not.
pub fn channel_type(kind: u8) -> ChannelType<'static> {
    match kind % 8 {
        0 => ChannelType::Session,
        1 => ChannelType::DirectTcpip {
            host: b"db.internal",
            port: 5432,
            originator_address: b"127.0.0.1",
            originator_port: 40000,
        },
        2 => ChannelType::ForwardedTcpip {
            connected_address: b"0.0.0.0",
            connected_port: 8080,
            originator_address: b"203.0.113.9",
            originator_port: 51000,
        },
        3 => ChannelType::DirectStreamlocal {
            socket_path: b"/run/app.sock",
            reserved: b"",
            reserved_uint: 0,
        },
        4 => ChannelType::ForwardedStreamlocal {
            socket_path: b"/run/fwd.sock",
            reserved: b"",
        },
        5 => ChannelType::X11 {
            originator_address: b"127.0.0.1",
            originator_port: 6010,
        },
        6 => ChannelType::AuthAgent,
        _ => ChannelType::Other {
            name: b"tun@openssh.com",
            data: b"\0\0\0\x01\0\0\0\0",
        },
    }
}

/// Terminal modes for `pty-req`: ECHO off, then TTY_OP_END.
const MODES: &[u8] = &[0x35, 0, 0, 0, 0, 0];

/// Channel request bodies by `kind % 16`: every request [`ChannelRequestBody`] knows and
/// one it does not.
pub fn request_body(kind: u8) -> ChannelRequestBody<'static> {
    let size = TerminalSize {
        cols: 80,
        rows: 24,
        width_px: 0,
        height_px: 0,
    };
    match kind % 16 {
        0 => ChannelRequestBody::PtyReq(PtyRequest {
            term: b"xterm-256color",
            size,
            modes: TerminalModes::parse(MODES).unwrap_or(TerminalModes::NONE),
        }),
        1 => ChannelRequestBody::X11Req(X11Request {
            single_connection: true,
            auth_protocol: b"MIT-MAGIC-COOKIE-1",
            auth_cookie: b"00112233445566778899aabbccddeeff",
            screen: 0,
        }),
        2 => ChannelRequestBody::Env {
            name: b"LANG",
            value: b"C.UTF-8",
        },
        3 => ChannelRequestBody::Shell,
        4 => ChannelRequestBody::Exec { command: b"uptime" },
        5 => ChannelRequestBody::Subsystem { name: b"sftp" },
        6 => ChannelRequestBody::WindowChange(size),
        7 => ChannelRequestBody::XonXoff {
            client_can_do: true,
        },
        8 => ChannelRequestBody::Signal { name: b"TERM" },
        9 => ChannelRequestBody::ExitStatus { status: 0 },
        10 => ChannelRequestBody::ExitSignal(ExitSignal {
            signal: b"KILL",
            core_dumped: false,
            message: b"killed",
            language: b"",
        }),
        11 => ChannelRequestBody::Eow,
        12 => ChannelRequestBody::AuthAgentReq,
        13 => ChannelRequestBody::Keepalive,
        14 => ChannelRequestBody::ExitStatus { status: 255 },
        _ => ChannelRequestBody::Other {
            name: b"break",
            data: b"\0\0\x01\xf4",
        },
    }
}

/// Two key blobs, as a `hostkeys-00@openssh.com` list; their contents do not matter here.
const BLOBS: &[u8] = b"\0\0\0\x03one\0\0\0\x03two";

/// Global request bodies by `kind % 10`: every request [`GlobalRequestBody`] knows and one
/// it does not.
pub fn global_body(kind: u8) -> GlobalRequestBody<'static> {
    let blobs = BlobList::parse(BLOBS);
    match kind % 10 {
        0 => GlobalRequestBody::TcpipForward {
            address: b"localhost",
            port: 0,
        },
        1 => GlobalRequestBody::TcpipForward {
            address: b"",
            port: 8022,
        },
        2 => GlobalRequestBody::CancelTcpipForward {
            address: b"localhost",
            port: 8022,
        },
        3 => GlobalRequestBody::StreamlocalForward {
            socket_path: b"/tmp/fwd.sock",
        },
        4 => GlobalRequestBody::CancelStreamlocalForward {
            socket_path: b"/tmp/fwd.sock",
        },
        5 => GlobalRequestBody::Keepalive,
        6 => GlobalRequestBody::NoMoreSessions,
        7 => blobs.map_or(GlobalRequestBody::Keepalive, GlobalRequestBody::HostKeys),
        8 => blobs.map_or(
            GlobalRequestBody::Keepalive,
            GlobalRequestBody::HostKeysProve,
        ),
        _ => GlobalRequestBody::Other {
            name: b"x-unknown@example.org",
            data: b"\x01",
        },
    }
}

/// Reads arguments; past the end every byte is 0.
pub(super) struct Cursor<'a> {
    pub(super) data: &'a [u8],
}

impl Cursor<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u8(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }
}

/// `len` bytes of channel data.
pub(super) fn fill(len: u16) -> &'static [u8] {
    FILL.get(..usize::from(len)).unwrap_or(&FILL)
}
