//! The seeds of `connection_server` and `connection_client`, apart from the other seeds
//! because scripts of steps take many lines.

use ssh_proto::fuzzing::connection::Step;
use ssh_proto::msg::MessageNumber;
use ssh_proto::wire::Writer;

/// Selectors for `fuzzing::connection::channels_config`: eight channels with 4 KiB windows;
/// one channel with 256-byte windows and 64-byte packets; three channels with the default
/// windows; two channels with fixed 512-byte windows and a 1 KiB growth budget.
const EIGHT_MID: u8 = 0b0_0111;
const ONE_SMALL: u8 = 0b0_0000;
const THREE_DEFAULT: u8 = 0b0_1010;
const TWO_FIXED: u8 = 0b1_1101;

/// The seeds: (target, name, selector, steps). Channel bytes of 0 pick the first live
/// channel. Names starting with `bad-` end in a disconnect.
pub fn connection_seeds() -> Vec<(&'static str, &'static str, u8, Vec<Step>)> {
    use Step::*;
    let server = "connection_server";
    let client = "connection_client";
    // A peer's CHANNEL_OPEN of `kind` with a 2 MiB window and 32 KiB packets.
    let open = |kind| Open {
        kind,
        sender: 7,
        window: 5,
        max_packet: 4,
    };
    let confirm = |window, max_packet| Confirm {
        channel: 0,
        sender: 9,
        window,
        max_packet,
    };
    let mut data_payload = vec![MessageNumber::CHANNEL_DATA.0];
    data_payload.put_u32(0);
    data_payload.put_string(b"raw bytes");
    let mut ignore = vec![MessageNumber::IGNORE.0];
    ignore.put_string(b"padding");
    vec![
        (
            server,
            "session-exec-data-eof-close",
            EIGHT_MID,
            vec![
                open(0),
                Accept { which: 0 },
                Request {
                    channel: 0,
                    kind: 0,
                    want_reply: true,
                },
                Reply { which: 0, ok: true },
                Request {
                    channel: 0,
                    kind: 4,
                    want_reply: true,
                },
                Reply { which: 0, ok: true },
                Data {
                    channel: 0,
                    len: 100,
                },
                Consumed {
                    channel: 0,
                    amount: 0,
                },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 200,
                },
                SendData {
                    channel: 0,
                    stderr: true,
                    len: 50,
                },
                Eof { channel: 0 },
                SendRequest {
                    channel: 0,
                    kind: 9,
                    want_reply: false,
                },
                SendEof { channel: 0 },
                SendClose { channel: 0 },
                Close { channel: 0 },
            ],
        ),
        (
            server,
            "direct-tcpip-adjust",
            EIGHT_MID,
            vec![
                open(1),
                Accept { which: 0 },
                Data {
                    channel: 0,
                    len: 1024,
                },
                Data {
                    channel: 0,
                    len: 1024,
                },
                Consumed {
                    channel: 0,
                    amount: 0,
                },
                Data {
                    channel: 0,
                    len: 1024,
                },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 4000,
                },
                Wait { ms: 20 },
                Close { channel: 0 },
            ],
        ),
        (
            server,
            "window-adjust-from-zero",
            THREE_DEFAULT,
            vec![
                Open {
                    kind: 0,
                    sender: 1,
                    window: 0,
                    max_packet: 4,
                },
                Accept { which: 0 },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 10,
                },
                Adjust { channel: 0, by: 2 },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 500,
                },
                Adjust { channel: 0, by: 0 },
                Adjust { channel: 0, by: 4 },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 500,
                },
            ],
        ),
        (
            server,
            "global-requests",
            EIGHT_MID,
            vec![
                GlobalRequest {
                    kind: 0,
                    want_reply: true,
                },
                ReplyGlobal { kind: 2 },
                GlobalRequest {
                    kind: 5,
                    want_reply: true,
                },
                ReplyGlobal { kind: 0 },
                GlobalRequest {
                    kind: 6,
                    want_reply: false,
                },
                GlobalRequest {
                    kind: 9,
                    want_reply: true,
                },
                ReplyGlobal { kind: 1 },
                SendGlobal {
                    kind: 7,
                    want_reply: false,
                },
                SendGlobal {
                    kind: 5,
                    want_reply: true,
                },
                GlobalReply { kind: 1 },
                GlobalReply { kind: 0 },
            ],
        ),
        (
            server,
            "channel-cap-and-refusals",
            ONE_SMALL,
            vec![
                open(0),
                open(1),
                Open {
                    kind: 2,
                    sender: 3,
                    window: 3,
                    max_packet: 0,
                },
                Reject {
                    which: 0,
                    reason: 1,
                },
                open(7),
                Accept { which: 0 },
                OpenChannel { kind: 0 },
                Data {
                    channel: 0,
                    len: 64,
                },
                Consumed {
                    channel: 0,
                    amount: 4,
                },
                Data {
                    channel: 0,
                    len: 64,
                },
                ExtendedData {
                    channel: 0,
                    data_type: 2,
                    len: 64,
                },
            ],
        ),
        (
            server,
            "server-opens-forwarded",
            TWO_FIXED,
            vec![
                OpenChannel { kind: 2 },
                confirm(4, 4),
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 600,
                },
                OpenChannel { kind: 5 },
                OpenFailure {
                    channel: 1,
                    reason: 2,
                },
                Data {
                    channel: 0,
                    len: 512,
                },
                Consumed {
                    channel: 0,
                    amount: 0,
                },
                RequestReply {
                    channel: 0,
                    ok: true,
                },
                SendClose { channel: 0 },
                Data {
                    channel: 0,
                    len: 10,
                },
                Close { channel: 0 },
            ],
        ),
        (
            server,
            "unknown-numbers-and-late-auth",
            EIGHT_MID,
            vec![
                Bare(85),
                Bare(101),
                Raw(ignore),
                Bare(MessageNumber::USERAUTH_REQUEST.0),
                open(0),
                Accept { which: 0 },
                Raw(data_payload),
            ],
        ),
        (
            server,
            "bad-data-over-window",
            ONE_SMALL,
            vec![
                open(0),
                Accept { which: 0 },
                Data {
                    channel: 0,
                    len: 65,
                },
            ],
        ),
        (
            server,
            "bad-adjust-overflow",
            EIGHT_MID,
            vec![
                open(0),
                Accept { which: 0 },
                Adjust { channel: 0, by: 7 },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 1,
                },
            ],
        ),
        (
            client,
            "session-pty-exec-exit",
            THREE_DEFAULT,
            vec![
                OpenChannel { kind: 0 },
                confirm(5, 4),
                SendRequest {
                    channel: 0,
                    kind: 0,
                    want_reply: true,
                },
                RequestReply {
                    channel: 0,
                    ok: true,
                },
                SendRequest {
                    channel: 0,
                    kind: 4,
                    want_reply: true,
                },
                RequestReply {
                    channel: 0,
                    ok: false,
                },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 300,
                },
                Data {
                    channel: 0,
                    len: 300,
                },
                ExtendedData {
                    channel: 0,
                    data_type: 1,
                    len: 20,
                },
                Consumed {
                    channel: 0,
                    amount: 0,
                },
                Request {
                    channel: 0,
                    kind: 9,
                    want_reply: false,
                },
                Eof { channel: 0 },
                Close { channel: 0 },
            ],
        ),
        (
            client,
            "direct-tcpip-both-ways",
            EIGHT_MID,
            vec![
                OpenChannel { kind: 1 },
                confirm(3, 3),
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 1000,
                },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 1000,
                },
                Adjust { channel: 0, by: 3 },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 1000,
                },
                Data {
                    channel: 0,
                    len: 1024,
                },
                Data {
                    channel: 0,
                    len: 1024,
                },
                Consumed {
                    channel: 0,
                    amount: 1,
                },
                Consumed {
                    channel: 0,
                    amount: 0,
                },
                SendEof { channel: 0 },
                SendClose { channel: 0 },
                Close { channel: 0 },
            ],
        ),
        (
            client,
            "window-one-byte",
            EIGHT_MID,
            vec![
                OpenChannel { kind: 0 },
                confirm(1, 1),
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 100,
                },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 100,
                },
                Adjust { channel: 0, by: 2 },
                SendData {
                    channel: 0,
                    stderr: true,
                    len: 100,
                },
                ExtendedData {
                    channel: 0,
                    data_type: 2,
                    len: 10,
                },
            ],
        ),
        (
            client,
            "global-forward-and-hostkeys",
            EIGHT_MID,
            vec![
                SendGlobal {
                    kind: 0,
                    want_reply: true,
                },
                GlobalReply { kind: 2 },
                GlobalRequest {
                    kind: 7,
                    want_reply: false,
                },
                GlobalRequest {
                    kind: 5,
                    want_reply: true,
                },
                ReplyGlobal { kind: 1 },
                SendGlobal {
                    kind: 2,
                    want_reply: true,
                },
                GlobalReply { kind: 0 },
            ],
        ),
        (
            client,
            "forwarded-and-agent-opens",
            TWO_FIXED,
            vec![
                Open {
                    kind: 2,
                    sender: 4,
                    window: 4,
                    max_packet: 3,
                },
                Accept { which: 0 },
                Data {
                    channel: 0,
                    len: 512,
                },
                Consumed {
                    channel: 0,
                    amount: 0,
                },
                Data {
                    channel: 0,
                    len: 256,
                },
                open(6),
                Reject {
                    which: 0,
                    reason: 1,
                },
                SendData {
                    channel: 0,
                    stderr: false,
                    len: 2000,
                },
            ],
        ),
        (
            client,
            "bad-confirm-twice",
            EIGHT_MID,
            vec![OpenChannel { kind: 0 }, confirm(5, 4), confirm(5, 4)],
        ),
        (
            client,
            "bad-success-after-login",
            EIGHT_MID,
            vec![
                Bare(MessageNumber::USERAUTH_SUCCESS.0),
                OpenChannel { kind: 0 },
            ],
        ),
    ]
}
