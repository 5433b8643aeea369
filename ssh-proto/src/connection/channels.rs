//! The channel multiplexer (RFC 4254 sections 4 to 6), for both roles.
//!
//! [`Channels`] runs beside an authenticated [`Transport`], the way the authentication
//! layer does: the application hands it every packet numbered 80 to 100 that
//! [`Transport::decode`] returns, and it answers through `&mut Transport`.
//!
//! 1. Call [`Channels::handle`] with each such payload. Channel data comes straight back
//!    as [`Input::Data`], borrowed from the decrypted packet and already checked against
//!    our window; nothing is copied.
//! 2. After every call, take [`Channels::poll_event`] until it returns `None`. Every
//!    other message becomes at most one [`Event`], so the queue holds no more than the
//!    application leaves in it.
//! 3. Answer what needs an answer: [`Channels::accept`] or [`Channels::reject`] an
//!    [`Event::OpenRequest`], [`Channels::reply`] to a [`Event::Request`] that wants a
//!    reply, [`Channels::reply_global`] to a [`Event::GlobalRequest`] that wants one.
//! 4. Report the bytes the application has read with [`Channels::consumed`]; window
//!    adjusts go out only for those, which is how backpressure crosses the connection.
//! 5. Write with [`Channels::send_data`]: it sends at most one packet and says how many
//!    bytes it took, 0 when the peer's window is shut or the transport is holding output.
//!    Call it once per channel per round so that every channel gets its turn.
//!
//! A message the peer may not send ends the connection: the call returns the error and a
//! DISCONNECT with PROTOCOL_ERROR is queued. Against a hostile peer: an id that names
//! no channel is fatal, a message that crossed our CLOSE is dropped, replies nobody asked
//! for are discarded, and an open or confirmation with a maximum packet size of 0 or over
//! 2^31 costs only that channel.

use std::collections::VecDeque;
use std::time::Instant;

use crate::connection::budget::{Budget, DEFAULT_BUDGET};
use crate::connection::lifecycle::{LifecycleError, Phase};
use crate::connection::msg::{
    ChannelOpen, ChannelOpenConfirmation, ChannelOpenFailure, ChannelRequest, ChannelRequestBody,
    ChannelType, ExtendedDataType, GlobalRequest, GlobalRequestBody, Message,
    NOT_CONNECTION_MESSAGE, OpenFailureReason, RequestSuccess, TerminalSize,
};
use crate::connection::table::{DEFAULT_MAX_CHANNELS, Table, TableError};
use crate::connection::window::{RecvWindow, SendWindow, WindowConfig};
use crate::error::Error;
use crate::msg::{DisconnectReason, MessageNumber};
use crate::transport::Transport;
use crate::wire::Writer;

/// The most requests that may wait for a reply at once, per channel and for global
/// requests, in each direction.
///
/// Replies come back in the order of the requests (RFC 4254 sections 4 and 5.4), so only a
/// count is kept. A peer that leaves more than this many of its requests unanswered by our
/// application is sending faster than it could ever be answered and is disconnected; our
/// own application asking past it gets [`Error::Misuse`] and nothing is sent.
pub const MAX_PENDING_REPLIES: u32 = 64;

/// The settings of one connection's channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelsConfig {
    /// Our side of every channel's flow control.
    pub window: WindowConfig,
    /// Live channels at most, opened by either side. A peer's open past it is refused
    /// with RESOURCE_SHORTAGE.
    pub max_channels: u32,
    /// The bytes all receive windows together may hold above a small floor per channel,
    /// initial windows and growth alike (see [`Budget`]). A channel opened while it is
    /// spent starts with a smaller window, never below
    /// [`WINDOW_FLOOR`](crate::connection::budget::WINDOW_FLOOR).
    pub budget: u64,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            window: WindowConfig::default(),
            max_channels: DEFAULT_MAX_CHANNELS,
            budget: DEFAULT_BUDGET,
        }
    }
}

/// Channel data, borrowed from the packet [`Transport::decode`] decrypted.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'p> {
    /// CHANNEL_DATA, or CHANNEL_EXTENDED_DATA of type STDERR (RFC 4254 section 5.2).
    /// Report it with [`Channels::consumed`] once the application has read it.
    Data {
        channel: u32,
        stderr: bool,
        data: &'p [u8],
    },
}

/// A channel type as the peer asked for it in CHANNEL_OPEN, copied out of the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedChannelType {
    /// RFC 4254 section 6.1.
    Session,
    /// RFC 4254 section 7.2.
    DirectTcpip {
        host: Vec<u8>,
        port: u32,
        originator: Vec<u8>,
        originator_port: u32,
    },
    /// RFC 4254 section 7.2.
    ForwardedTcpip {
        connected_address: Vec<u8>,
        connected_port: u32,
        originator: Vec<u8>,
        originator_port: u32,
    },
    /// OpenSSH's `PROTOCOL` section 2.4.
    DirectStreamlocal { socket_path: Vec<u8> },
    /// OpenSSH's `PROTOCOL` section 2.4.
    ForwardedStreamlocal { socket_path: Vec<u8> },
    /// RFC 4254 section 6.3.2.
    X11 {
        originator: Vec<u8>,
        originator_port: u32,
    },
    /// OpenSSH's `PROTOCOL.agent`.
    AuthAgent,
    /// Any other type: its name and the type-specific bytes.
    Other { name: Vec<u8>, data: Vec<u8> },
}

impl From<&ChannelType<'_>> for OwnedChannelType {
    fn from(t: &ChannelType<'_>) -> Self {
        match *t {
            ChannelType::Session => Self::Session,
            ChannelType::DirectTcpip {
                host,
                port,
                originator_address,
                originator_port,
            } => Self::DirectTcpip {
                host: host.to_vec(),
                port,
                originator: originator_address.to_vec(),
                originator_port,
            },
            ChannelType::ForwardedTcpip {
                connected_address,
                connected_port,
                originator_address,
                originator_port,
            } => Self::ForwardedTcpip {
                connected_address: connected_address.to_vec(),
                connected_port,
                originator: originator_address.to_vec(),
                originator_port,
            },
            ChannelType::DirectStreamlocal { socket_path, .. } => Self::DirectStreamlocal {
                socket_path: socket_path.to_vec(),
            },
            ChannelType::ForwardedStreamlocal { socket_path, .. } => Self::ForwardedStreamlocal {
                socket_path: socket_path.to_vec(),
            },
            ChannelType::X11 {
                originator_address,
                originator_port,
            } => Self::X11 {
                originator: originator_address.to_vec(),
                originator_port,
            },
            ChannelType::AuthAgent => Self::AuthAgent,
            ChannelType::Other { name, data } => Self::Other {
                name: name.to_vec(),
                data: data.to_vec(),
            },
        }
    }
}

/// A channel request from the peer (RFC 4254 section 6), copied out of the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedRequest {
    /// Section 6.2. `modes` are the encoded terminal modes as sent; they were checked,
    /// and [`crate::connection::msg::TerminalModes::parse`] reads them.
    PtyReq {
        term: Vec<u8>,
        size: TerminalSize,
        modes: Vec<u8>,
    },
    /// Section 6.3.1.
    X11Req {
        single_connection: bool,
        auth_protocol: Vec<u8>,
        auth_cookie: Vec<u8>,
        screen: u32,
    },
    /// Section 6.4.
    Env { name: Vec<u8>, value: Vec<u8> },
    /// Section 6.5.
    Shell,
    /// Section 6.5: the command bytes as sent.
    Exec { command: Vec<u8> },
    /// Section 6.5.
    Subsystem { name: Vec<u8> },
    /// Section 6.7.
    WindowChange(TerminalSize),
    /// Section 6.8.
    XonXoff { client_can_do: bool },
    /// Section 6.9.
    Signal { name: Vec<u8> },
    /// Section 6.10.
    ExitStatus { status: u32 },
    /// Section 6.10.
    ExitSignal {
        signal: Vec<u8>,
        core_dumped: bool,
        message: Vec<u8>,
    },
    /// OpenSSH's `PROTOCOL` section 2.1.
    Eow,
    /// OpenSSH's `PROTOCOL.agent`.
    AuthAgentReq,
    /// OpenSSH's liveness probe.
    Keepalive,
    /// Any other request: its name and the bytes after `want_reply`.
    Other { name: Vec<u8>, data: Vec<u8> },
}

impl From<&ChannelRequestBody<'_>> for OwnedRequest {
    fn from(b: &ChannelRequestBody<'_>) -> Self {
        match *b {
            ChannelRequestBody::PtyReq(p) => Self::PtyReq {
                term: p.term.to_vec(),
                size: p.size,
                modes: p.modes.as_bytes().to_vec(),
            },
            ChannelRequestBody::X11Req(x) => Self::X11Req {
                single_connection: x.single_connection,
                auth_protocol: x.auth_protocol.to_vec(),
                auth_cookie: x.auth_cookie.to_vec(),
                screen: x.screen,
            },
            ChannelRequestBody::Env { name, value } => Self::Env {
                name: name.to_vec(),
                value: value.to_vec(),
            },
            ChannelRequestBody::Shell => Self::Shell,
            ChannelRequestBody::Exec { command } => Self::Exec {
                command: command.to_vec(),
            },
            ChannelRequestBody::Subsystem { name } => Self::Subsystem {
                name: name.to_vec(),
            },
            ChannelRequestBody::WindowChange(size) => Self::WindowChange(size),
            ChannelRequestBody::XonXoff { client_can_do } => Self::XonXoff { client_can_do },
            ChannelRequestBody::Signal { name } => Self::Signal {
                name: name.to_vec(),
            },
            ChannelRequestBody::ExitStatus { status } => Self::ExitStatus { status },
            ChannelRequestBody::ExitSignal(e) => Self::ExitSignal {
                signal: e.signal.to_vec(),
                core_dumped: e.core_dumped,
                message: e.message.to_vec(),
            },
            ChannelRequestBody::Eow => Self::Eow,
            ChannelRequestBody::AuthAgentReq => Self::AuthAgentReq,
            ChannelRequestBody::Keepalive => Self::Keepalive,
            ChannelRequestBody::Other { name, data } => Self::Other {
                name: name.to_vec(),
                data: data.to_vec(),
            },
        }
    }
}

/// A global request from the peer (RFC 4254 section 4), copied out of the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedGlobalRequest {
    /// RFC 4254 section 7.1.
    TcpipForward { address: Vec<u8>, port: u32 },
    /// RFC 4254 section 7.1.
    CancelTcpipForward { address: Vec<u8>, port: u32 },
    /// OpenSSH's `PROTOCOL` section 2.4.
    StreamlocalForward { socket_path: Vec<u8> },
    /// OpenSSH's `PROTOCOL` section 2.4.
    CancelStreamlocalForward { socket_path: Vec<u8> },
    /// OpenSSH's liveness probe.
    Keepalive,
    /// OpenSSH's `PROTOCOL` section 2.2.
    NoMoreSessions,
    /// OpenSSH's `PROTOCOL` section 2.5: host key blobs.
    HostKeys(Vec<Vec<u8>>),
    /// OpenSSH's `PROTOCOL` section 2.5: host key blobs to prove.
    HostKeysProve(Vec<Vec<u8>>),
    /// Any other request: its name and the bytes after `want_reply`.
    Other { name: Vec<u8>, data: Vec<u8> },
}

impl From<&GlobalRequestBody<'_>> for OwnedGlobalRequest {
    fn from(b: &GlobalRequestBody<'_>) -> Self {
        match b {
            GlobalRequestBody::TcpipForward { address, port } => Self::TcpipForward {
                address: address.to_vec(),
                port: *port,
            },
            GlobalRequestBody::CancelTcpipForward { address, port } => Self::CancelTcpipForward {
                address: address.to_vec(),
                port: *port,
            },
            GlobalRequestBody::StreamlocalForward { socket_path } => Self::StreamlocalForward {
                socket_path: socket_path.to_vec(),
            },
            GlobalRequestBody::CancelStreamlocalForward { socket_path } => {
                Self::CancelStreamlocalForward {
                    socket_path: socket_path.to_vec(),
                }
            }
            GlobalRequestBody::Keepalive => Self::Keepalive,
            GlobalRequestBody::NoMoreSessions => Self::NoMoreSessions,
            GlobalRequestBody::HostKeys(l) => {
                Self::HostKeys(l.iter().map(<[u8]>::to_vec).collect())
            }
            GlobalRequestBody::HostKeysProve(l) => {
                Self::HostKeysProve(l.iter().map(<[u8]>::to_vec).collect())
            }
            GlobalRequestBody::Other { name, data } => Self::Other {
                name: name.to_vec(),
                data: data.to_vec(),
            },
        }
    }
}

/// Something the application must know or answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer asks to open a channel; answer [`Channels::accept`] or
    /// [`Channels::reject`]. Refusing what policy does not allow is the application's job.
    OpenRequest {
        channel: u32,
        kind: OwnedChannelType,
    },
    /// The peer confirmed a channel we opened.
    Opened { channel: u32 },
    /// The peer refused a channel we opened; its id is free again. Also the end of a
    /// channel the peer confirmed with a maximum packet size of 0 or over 2^31: we close
    /// such a channel at once and this comes at once too, with the reason
    /// ADMINISTRATIVELY_PROHIBITED that we give for such a CHANNEL_OPEN from the peer; its
    /// id stays taken until the peer's CLOSE, which is not reported.
    OpenFailed {
        channel: u32,
        reason: OpenFailureReason,
        description: String,
    },
    /// A channel request. When `want_reply`, answer with [`Channels::reply`]; replies go
    /// out in the order the requests came (RFC 4254 section 5.4).
    Request {
        channel: u32,
        request: OwnedRequest,
        want_reply: bool,
    },
    /// The peer will send no more data on this channel (RFC 4254 section 5.3).
    Eof { channel: u32 },
    /// The channel is closed both ways and its id may be reused. When the peer closed
    /// first, our CLOSE has already been sent.
    Closed { channel: u32 },
    /// A global request. When `want_reply`, answer with [`Channels::reply_global`].
    GlobalRequest {
        request: OwnedGlobalRequest,
        want_reply: bool,
    },
    /// The answer to one of our channel requests sent with `want_reply`.
    RequestResult { channel: u32, ok: bool },
    /// The answer to one of our global requests sent with `want_reply`; `bound_port` is
    /// the port a `tcpip-forward` for port 0 was given (RFC 4254 section 7.1).
    GlobalResult { ok: bool, bound_port: Option<u32> },
    /// The peer's window for this channel went from 0 to open: [`Channels::send_data`]
    /// can take data again.
    Writable { channel: u32 },
}

/// What is kept per channel.
#[derive(Clone, Debug)]
struct ChannelState {
    /// The peer's id for the channel; 0 until its confirmation for a channel we open.
    peer_id: u32,
    /// The peer's window, known from its CHANNEL_OPEN or OPEN_CONFIRMATION.
    send: Option<SendWindow>,
    recv: RecvWindow,
    /// Our requests sent with `want_reply` and not answered yet.
    ours_pending: u32,
    /// The peer's requests with `want_reply` that our application has not answered yet.
    theirs_pending: u32,
    /// The peer confirmed this channel of ours with this unusable maximum packet size,
    /// and we closed it: its end is reported as [`Event::OpenFailed`], not `Closed`.
    bad_confirmation: Option<u32>,
}

/// What to do with a message the peer sent on a channel.
enum Route {
    Process,
    /// It crossed our CLOSE: drop it.
    Drop,
}

/// The channels of one connection. See the module documentation for the call order.
#[derive(Debug)]
pub struct Channels {
    window: WindowConfig,
    table: Table<ChannelState>,
    budget: Budget,
    events: VecDeque<Event>,
    /// Our global requests sent with `want_reply` and not answered yet.
    global_ours_pending: u32,
    /// The peer's global requests with `want_reply` not answered yet, oldest first:
    /// `true` for one the application answers, `false` for one this layer refuses itself
    /// once the replies before it are out. The front is never `false`.
    global_theirs: VecDeque<bool>,
    closed: bool,
}

impl Channels {
    /// Channels for one connection. A window configuration that cannot work is refused.
    pub fn new(config: ChannelsConfig) -> Result<Self, Error> {
        config.window.validate()?;
        Ok(Self {
            window: config.window,
            table: Table::with_limit(config.max_channels),
            budget: Budget::new(config.budget),
            events: VecDeque::new(),
            global_ours_pending: 0,
            global_theirs: VecDeque::new(),
            closed: false,
        })
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Live channels, opening and closing ones included.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no channel is live.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Slots the channel table holds; 0 once every channel is finished.
    pub fn slot_count(&self) -> usize {
        self.table.slot_count()
    }

    /// The receive window `channel` keeps open for the peer: the initial window it
    /// announced plus its growth so far. 0 when there is no such channel.
    pub fn receive_window(&self, channel: u32) -> u32 {
        self.table.get(channel).map_or(0, |c| c.value.recv.target())
    }

    /// The connection's window budget: what the receive windows hold above their floors.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Bytes received on `channel` that the application has not reported as consumed.
    pub fn buffered(&self, channel: u32) -> usize {
        self.table.get(channel).map_or(0, |c| {
            usize::try_from(c.value.recv.buffered()).unwrap_or(usize::MAX)
        })
    }

    /// Handles one connection protocol message (numbers 80 to 100), given with the
    /// sequence number [`Transport::decode`] reported for it. Channel data comes back
    /// borrowed; everything else becomes an [`Event`].
    ///
    /// A number of 80 or above that is not a connection message is answered with
    /// UNIMPLEMENTED (RFC 4253 section 11.4), and a global request whose body does not
    /// parse with REQUEST_FAILURE when it wants a reply (RFC 4254 section 4), else
    /// nothing. Any other error from the peer ends the connection with a DISCONNECT.
    pub fn handle<'p>(
        &mut self,
        transport: &mut Transport,
        payload: &'p [u8],
        seq: u32,
        now: Instant,
    ) -> Result<Option<Input<'p>>, Error> {
        self.check_open(transport)?;
        match payload.first() {
            Some(&n) if n >= MessageNumber::GLOBAL_REQUEST.0 => {}
            _ => return Err(Error::Misuse("not a connection protocol message")),
        }
        let msg = match Message::parse(payload) {
            Ok(msg) => msg,
            Err(e) if e == NOT_CONNECTION_MESSAGE => {
                transport.send_unimplemented(seq)?;
                return Ok(None);
            }
            Err(e) => {
                // The header read, so only the body did not.
                if let Ok((name, want_reply)) = GlobalRequest::parse_header(payload) {
                    return match self.on_unreadable_global_request(transport, name, want_reply) {
                        Ok(()) => Ok(None),
                        Err(e) => Err(self.fatal(transport, e)),
                    };
                }
                return Err(self.fatal(transport, e.into()));
            }
        };
        match self.dispatch(transport, msg, now) {
            Ok(input) => Ok(input),
            Err(e) => Err(self.fatal(transport, e)),
        }
    }

    fn dispatch<'p>(
        &mut self,
        t: &mut Transport,
        msg: Message<'p>,
        now: Instant,
    ) -> Result<Option<Input<'p>>, Error> {
        match msg {
            Message::ChannelData(m) => self.on_data(t, m.recipient, None, m.data, now),
            Message::ChannelExtendedData(m) => {
                self.on_data(t, m.recipient, Some(m.data_type), m.data, now)
            }
            Message::ChannelWindowAdjust(m) => {
                self.on_adjust(m.recipient, m.bytes_to_add)?;
                Ok(None)
            }
            Message::ChannelOpen(m) => {
                self.on_open(t, &m)?;
                Ok(None)
            }
            Message::ChannelOpenConfirmation(m) => {
                self.on_confirmation(t, &m)?;
                Ok(None)
            }
            Message::ChannelOpenFailure(m) => {
                self.on_open_failure(&m)?;
                Ok(None)
            }
            Message::ChannelEof(m) => {
                self.on_eof(m.recipient)?;
                Ok(None)
            }
            Message::ChannelClose(m) => {
                self.on_close(t, m.recipient)?;
                Ok(None)
            }
            Message::ChannelRequest(m) => {
                self.on_request(&m)?;
                Ok(None)
            }
            Message::ChannelSuccess(m) => {
                self.on_request_result(m.recipient, true)?;
                Ok(None)
            }
            Message::ChannelFailure(m) => {
                self.on_request_result(m.recipient, false)?;
                Ok(None)
            }
            Message::GlobalRequest(m) => {
                self.on_global_request(&m)?;
                Ok(None)
            }
            Message::RequestSuccess(m) => {
                self.on_global_result(Some(m));
                Ok(None)
            }
            Message::RequestFailure(_) => {
                self.on_global_result(None);
                Ok(None)
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // The peer's messages

    fn on_data<'p>(
        &mut self,
        t: &mut Transport,
        id: u32,
        ext: Option<ExtendedDataType>,
        data: &'p [u8],
        now: Instant,
    ) -> Result<Option<Input<'p>>, Error> {
        let Some(state) = self.table.on_data(id)? else {
            log::trace!("channel data dropped channel={id} reason=closing");
            return Ok(None);
        };
        state.recv.on_data(data.len(), now)?;
        log::trace!("channel data channel={id} len={}", data.len());
        match ext {
            None => Ok(Some(Input::Data {
                channel: id,
                stderr: false,
                data,
            })),
            Some(ExtendedDataType::STDERR) => Ok(Some(Input::Data {
                channel: id,
                stderr: true,
                data,
            })),
            Some(_) => {
                // RFC 4254 section 5.2 defines only STDERR; other types are counted
                // against the window and dropped, as if read at once.
                self.consumed(t, id, data.len(), now)?;
                Ok(None)
            }
        }
    }

    fn on_adjust(&mut self, id: u32, by: u32) -> Result<(), Error> {
        let Some(state) = self.table.on_window_adjust(id)? else {
            return Ok(());
        };
        let Some(send) = state.send.as_mut() else {
            return Ok(());
        };
        let was_shut = send.available() == 0;
        send.adjust(by)?;
        let open = send.available() > 0;
        let may_send = self
            .table
            .get(id)
            .is_ok_and(|c| c.lifecycle().may_send_data());
        if was_shut && open && may_send {
            self.events.push_back(Event::Writable { channel: id });
        }
        Ok(())
    }

    fn on_open(&mut self, t: &mut Transport, m: &ChannelOpen<'_>) -> Result<(), Error> {
        let refuse = |t: &mut Transport, reason, description: &str| {
            t.send(|p| {
                ChannelOpenFailure {
                    recipient: m.sender,
                    reason,
                    description: description.as_bytes(),
                    language: b"",
                }
                .write(p);
            })
        };

        // A maximum packet of 0 or over 2^31 is refused, not fatal.
        let Ok(send) = SendWindow::new(m.initial_window, m.max_packet) else {
            log::debug!(
                "channel open refused max_packet={} reason=bad maximum packet",
                m.max_packet
            );
            return refuse(
                t,
                OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                "maximum packet size not in 1..=2^31",
            );
        };
        // Checked before the window draws on the budget, so a refused open takes nothing.
        if self.table.is_full() {
            let limit = self.table.limit();
            log::debug!("channel open refused limit={limit} reason=too many channels");
            return refuse(t, OpenFailureReason::RESOURCE_SHORTAGE, "too many channels");
        }
        let state = ChannelState {
            peer_id: m.sender,
            send: Some(send),
            recv: RecvWindow::new(self.window, &mut self.budget)?,
            ours_pending: 0,
            theirs_pending: 0,
            bad_confirmation: None,
        };
        // The table has room, checked above, so this cannot fail.
        let channel = self.table.peer_open(state)?;
        self.events.push_back(Event::OpenRequest {
            channel,
            kind: OwnedChannelType::from(&m.channel_type),
        });
        Ok(())
    }

    fn on_confirmation(
        &mut self,
        t: &mut Transport,
        m: &ChannelOpenConfirmation<'_>,
    ) -> Result<(), Error> {
        let id = m.recipient;
        let state = self.table.on_confirmation(id)?;
        state.peer_id = m.sender;
        if let Ok(send) = SendWindow::new(m.initial_window, m.max_packet) {
            state.send = Some(send);
            self.events.push_back(Event::Opened { channel: id });
            return Ok(());
        }

        // A maximum packet of 0 or over 2^31, which we refuse in the peer's CHANNEL_OPEN.
        // Here the channel already exists on the peer's side, so it is
        // closed at once. The application hears now that the open failed, as if the peer
        // had refused it, so a peer that never sends its CLOSE cannot keep it waiting;
        // the id stays taken until that CLOSE comes (RFC 4254 section 5.3), and the
        // CLOSE itself is not reported again.
        log::debug!(
            "channel closed channel={id} max_packet={} reason=bad maximum packet",
            m.max_packet
        );
        state.bad_confirmation = Some(m.max_packet);
        let peer_id = self.table.send_close(id)?.peer_id;
        t.send(|p| {
            p.put_u8(MessageNumber::CHANNEL_CLOSE.0);
            p.put_u32(peer_id);
        })?;
        self.events.push_back(Event::OpenFailed {
            channel: id,
            reason: OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
            description: format!(
                "the peer confirmed the channel with a maximum packet size of {}, \
                 not in 1..=2^31",
                m.max_packet
            ),
        });
        Ok(())
    }

    fn on_open_failure(&mut self, m: &ChannelOpenFailure<'_>) -> Result<(), Error> {
        let state = self.table.on_open_failure(m.recipient)?;
        state.recv.release(&mut self.budget);
        self.events.push_back(Event::OpenFailed {
            channel: m.recipient,
            reason: m.reason,
            description: String::from_utf8_lossy(m.description).into_owned(),
        });
        Ok(())
    }

    fn on_eof(&mut self, id: u32) -> Result<(), Error> {
        let before = self.table.get(id)?.lifecycle().eof_received();
        self.table.on_eof_received(id)?;
        if !before && self.table.get(id)?.lifecycle().eof_received() {
            self.events.push_back(Event::Eof { channel: id });
        }
        Ok(())
    }

    fn on_close(&mut self, t: &mut Transport, id: u32) -> Result<(), Error> {
        let closed = self.table.on_close_received(id)?;
        if closed.send_close {
            t.send(|p| {
                p.put_u8(MessageNumber::CHANNEL_CLOSE.0);
                p.put_u32(closed.value.peer_id);
            })?;
        }
        closed.value.recv.release(&mut self.budget);
        // A channel confirmed with a bad maximum packet was reported as failed already.
        if closed.value.bad_confirmation.is_none() {
            self.events.push_back(Event::Closed { channel: id });
        }
        Ok(())
    }

    fn on_request(&mut self, m: &ChannelRequest<'_>) -> Result<(), Error> {
        let id = m.recipient;
        if let Route::Drop = self.route(id, "channel request")? {
            return Ok(());
        }
        let state = &mut self.table.get_mut(id)?.value;
        if m.want_reply {
            if state.theirs_pending >= MAX_PENDING_REPLIES {
                return Err(Error::protocol(
                    DisconnectReason::PROTOCOL_ERROR,
                    format!("more than {MAX_PENDING_REPLIES} channel requests wait for replies"),
                ));
            }
            state.theirs_pending += 1;
        }
        self.events.push_back(Event::Request {
            channel: id,
            request: OwnedRequest::from(&m.body),
            want_reply: m.want_reply,
        });
        Ok(())
    }

    fn on_request_result(&mut self, id: u32, ok: bool) -> Result<(), Error> {
        if let Route::Drop = self.route(id, "channel request reply")? {
            return Ok(());
        }
        let state = &mut self.table.get_mut(id)?.value;
        if state.ours_pending == 0 {
            // A reply to nothing is discarded, and nothing is queued for it.
            log::trace!("unsolicited channel reply discarded channel={id}");
            return Ok(());
        }
        state.ours_pending -= 1;
        self.events
            .push_back(Event::RequestResult { channel: id, ok });
        Ok(())
    }

    fn on_global_request(&mut self, m: &GlobalRequest<'_>) -> Result<(), Error> {
        if m.want_reply {
            self.global_reply_slot(true)?;
        }
        self.events.push_back(Event::GlobalRequest {
            request: OwnedGlobalRequest::from(&m.body),
            want_reply: m.want_reply,
        });
        Ok(())
    }

    /// A global request whose body does not parse as its name says it should.
    ///
    /// RFC 4254 section 4 has the recipient of a request it does not recognise or
    /// support answer REQUEST_FAILURE when a reply is wanted, and a request we cannot read
    /// is one we cannot carry out, so it is answered that way here, in its turn among the
    /// replies, and the application never sees it. Above all this covers
    /// `hostkeys-00@openssh.com`, which OpenSSH's `PROTOCOL` section 2.5 sends without
    /// asking for a reply and a client may ignore: a host key list that does not parse
    /// costs nothing but the list.
    fn on_unreadable_global_request(
        &mut self,
        t: &mut Transport,
        name: &[u8],
        want_reply: bool,
    ) -> Result<(), Error> {
        // The name is the peer's: escaped, and cut short.
        let shown: String = String::from_utf8_lossy(name)
            .escape_debug()
            .take(64)
            .collect();
        log::debug!(
            "global request refused name={shown} want_reply={want_reply} reason=unreadable body"
        );
        if !want_reply {
            return Ok(());
        }
        if self.global_theirs.is_empty() {
            return t.send(|p| p.put_u8(MessageNumber::REQUEST_FAILURE.0));
        }
        self.global_reply_slot(false)
    }

    /// Queues a reply slot for one of the peer's global requests, `true` when the
    /// application answers it. A peer with too many unanswered requests is disconnected.
    fn global_reply_slot(&mut self, by_application: bool) -> Result<(), Error> {
        if self.global_theirs.len() >= MAX_PENDING_REPLIES as usize {
            return Err(Error::protocol(
                DisconnectReason::PROTOCOL_ERROR,
                format!("more than {MAX_PENDING_REPLIES} global requests wait for replies"),
            ));
        }
        self.global_theirs.push_back(by_application);
        Ok(())
    }

    /// REQUEST_SUCCESS (`Some`) or REQUEST_FAILURE (`None`).
    fn on_global_result(&mut self, success: Option<RequestSuccess<'_>>) {
        if self.global_ours_pending == 0 {
            log::trace!("unsolicited global reply discarded");
            return;
        }
        self.global_ours_pending -= 1;
        // Only a `tcpip-forward` for port 0 carries a port; other successes carry either
        // nothing or data this layer does not read.
        let bound_port = success.and_then(|s| s.bound_port().ok().flatten());
        self.events.push_back(Event::GlobalResult {
            ok: success.is_some(),
            bound_port,
        });
    }

    /// Whether a request or reply from the peer on channel `id` is handled: the channel
    /// must be open and not closed by the peer; one that crossed our CLOSE is dropped.
    fn route(&self, id: u32, what: &'static str) -> Result<Route, Error> {
        let lifecycle = self.table.get(id)?.lifecycle();
        let error = |error| TableError::Lifecycle { id, error };
        if lifecycle.phase() != Phase::Open {
            return Err(error(LifecycleError::NotOpen(what)).into());
        }
        if lifecycle.close_received() {
            return Err(error(LifecycleError::AfterClose(what)).into());
        }
        if lifecycle.close_sent() {
            return Ok(Route::Drop);
        }
        Ok(Route::Process)
    }

    // -----------------------------------------------------------------------------------
    // The application's calls

    /// Opens a channel of type `kind` (RFC 4254 section 5.1), offering our initial window
    /// and maximum packet size. Returns its local id; [`Event::Opened`] or
    /// [`Event::OpenFailed`] follows.
    pub fn open(
        &mut self,
        transport: &mut Transport,
        kind: &ChannelType<'_>,
    ) -> Result<u32, Error> {
        self.check_open(transport)?;
        if self.table.is_full() {
            return Err(TableError::Full {
                limit: self.table.limit(),
            }
            .into());
        }
        let recv = RecvWindow::new(self.window, &mut self.budget)?;
        let (initial_window, max_packet) = (recv.initial(), recv.max_packet());
        let id = self.table.open(ChannelState {
            peer_id: 0,
            send: None,
            recv,
            ours_pending: 0,
            theirs_pending: 0,
            bad_confirmation: None,
        })?;
        transport.send(|p| {
            ChannelOpen {
                sender: id,
                initial_window,
                max_packet,
                channel_type: *kind,
            }
            .write(p);
        })?;
        Ok(id)
    }

    /// Accepts the peer's channel: sends OPEN_CONFIRMATION with our window.
    pub fn accept(&mut self, transport: &mut Transport, channel: u32) -> Result<(), Error> {
        self.check_open(transport)?;
        let state = self.table.accept(channel)?;
        let confirmation = ChannelOpenConfirmation {
            recipient: state.peer_id,
            sender: channel,
            initial_window: state.recv.initial(),
            max_packet: state.recv.max_packet(),
            extra: b"",
        };
        transport.send(|p| confirmation.write(p))
    }

    /// Refuses the peer's channel with `reason` (RFC 4254 section 5.1); the id is free at
    /// once.
    pub fn reject(
        &mut self,
        transport: &mut Transport,
        channel: u32,
        reason: OpenFailureReason,
        description: &str,
    ) -> Result<(), Error> {
        self.check_open(transport)?;
        let state = self.table.reject(channel)?;
        let peer_id = state.peer_id;
        state.recv.release(&mut self.budget);
        transport.send(|p| {
            ChannelOpenFailure {
                recipient: peer_id,
                reason,
                description: description.as_bytes(),
                language: b"",
            }
            .write(p);
        })
    }

    /// Sends a channel request (RFC 4254 section 5.4). With `want_reply`,
    /// [`Event::RequestResult`] follows; at most [`MAX_PENDING_REPLIES`] may wait at once.
    pub fn request(
        &mut self,
        transport: &mut Transport,
        channel: u32,
        body: &ChannelRequestBody<'_>,
        want_reply: bool,
    ) -> Result<(), Error> {
        self.check_open(transport)?;
        let c = self.local(channel)?;
        if c.lifecycle().phase() != Phase::Open || c.lifecycle().close_sent() {
            return Err(Error::Misuse(
                "channel request on a channel that is not open",
            ));
        }
        let peer_id = c.value.peer_id;
        if want_reply {
            let state = &mut self.local_mut(channel)?.value;
            if state.ours_pending >= MAX_PENDING_REPLIES {
                return Err(Error::Misuse("too many channel requests wait for replies"));
            }
            state.ours_pending += 1;
        }
        transport.send(|p| {
            ChannelRequest {
                recipient: peer_id,
                want_reply,
                body: *body,
            }
            .write(p);
        })
    }

    /// Answers the oldest of the peer's requests on `channel` that wanted a reply, with
    /// CHANNEL_SUCCESS or CHANNEL_FAILURE (RFC 4254 section 5.4). Nothing is sent once we
    /// have sent CLOSE; a channel already gone gives [`Error::Misuse`].
    pub fn reply(
        &mut self,
        transport: &mut Transport,
        channel: u32,
        ok: bool,
    ) -> Result<(), Error> {
        self.check_open(transport)?;
        let c = self.local_mut(channel)?;
        if c.value.theirs_pending == 0 {
            return Err(Error::Misuse("no channel request waits for a reply"));
        }
        c.value.theirs_pending -= 1;
        if c.lifecycle().close_sent() {
            return Ok(());
        }
        let number = if ok {
            MessageNumber::CHANNEL_SUCCESS
        } else {
            MessageNumber::CHANNEL_FAILURE
        };
        let peer_id = c.value.peer_id;
        transport.send(|p| {
            p.put_u8(number.0);
            p.put_u32(peer_id);
        })
    }

    /// Sends a global request (RFC 4254 section 4). With `want_reply`,
    /// [`Event::GlobalResult`] follows.
    pub fn global_request(
        &mut self,
        transport: &mut Transport,
        body: &GlobalRequestBody<'_>,
        want_reply: bool,
    ) -> Result<(), Error> {
        self.check_open(transport)?;
        if want_reply {
            if self.global_ours_pending >= MAX_PENDING_REPLIES {
                return Err(Error::Misuse("too many global requests wait for replies"));
            }
            self.global_ours_pending += 1;
        }
        transport.send(|p| {
            GlobalRequest {
                want_reply,
                body: *body,
            }
            .write(p);
        })
    }

    /// Answers the oldest of the peer's global requests that wanted a reply:
    /// REQUEST_SUCCESS, carrying `bound_port` when given (RFC 4254 section 7.1), or
    /// REQUEST_FAILURE.
    pub fn reply_global(
        &mut self,
        transport: &mut Transport,
        ok: bool,
        bound_port: Option<u32>,
    ) -> Result<(), Error> {
        self.check_open(transport)?;
        if self.global_theirs.pop_front().is_none() {
            return Err(Error::Misuse("no global request waits for a reply"));
        }
        transport.send(|p| match (ok, bound_port) {
            (true, Some(port)) => RequestSuccess::write_bound_port(port, p),
            (true, None) => p.put_u8(MessageNumber::REQUEST_SUCCESS.0),
            (false, _) => p.put_u8(MessageNumber::REQUEST_FAILURE.0),
        })?;
        // Requests this layer refused itself, queued behind that one.
        while self.global_theirs.front() == Some(&false) {
            self.global_theirs.pop_front();
            transport.send(|p| p.put_u8(MessageNumber::REQUEST_FAILURE.0))?;
        }
        Ok(())
    }

    /// Sends at most one CHANNEL_DATA (or EXTENDED_DATA of type STDERR when `stderr`)
    /// from the front of `data` and returns how many bytes it took: no more than the
    /// peer's window and maximum packet size allow (RFC 4254 section 5.2), and 0 when the
    /// window is shut or [`Transport::can_send`] is false.
    ///
    /// One packet per call is what keeps channels fair: call `send_data` once per channel
    /// per round. After a 0 for a shut window, wait for [`Event::Writable`].
    pub fn send_data(
        &mut self,
        transport: &mut Transport,
        channel: u32,
        stderr: bool,
        data: &[u8],
    ) -> Result<usize, Error> {
        let Some((peer_id, n, send)) = self.room(transport, channel, data.len())? else {
            return Ok(0);
        };
        let Some(chunk) = data.get(..n) else {
            return Ok(0);
        };
        send.consume(n)?;
        transport.send(|p| {
            put_data_header(p, peer_id, stderr);
            p.put_string(chunk);
        })?;
        Ok(n)
    }

    /// As [`Channels::send_data`], but the data is written by `read` straight into the
    /// packet, so it is never copied on its way out. `read` gets a buffer of at most
    /// `max` bytes, as much as the window and the peer's maximum packet size allow, and
    /// returns how many it filled.
    ///
    /// Returns `None` when `read` was not called: the window is shut, `max` is 0 or
    /// [`Transport::can_send`] is false. Otherwise `read`'s own result: when that is an
    /// error or 0 bytes, nothing is sent and the window is as it was.
    pub fn send_data_with<E>(
        &mut self,
        transport: &mut Transport,
        channel: u32,
        stderr: bool,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<Option<Result<usize, E>>, Error> {
        let Some((peer_id, room, send)) = self.room(transport, channel, max)? else {
            return Ok(None);
        };
        let mut got = Ok(0);
        transport.try_send(|p| {
            put_data_header(p, peer_id, stderr);
            let at = p.len();
            p.resize(at + 4 + room, 0);
            got = read(&mut p[at + 4..]);
            match got {
                Ok(n) if n > 0 && n <= room => {
                    p.truncate(at + 4 + n);
                    // n is at most the peer's maximum packet size, a u32.
                    p[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
                    true
                }
                _ => false,
            }
        })?;
        match got {
            Ok(n) if n > room => Err(Error::Misuse("a read said it filled more than its buffer")),
            Ok(n) => {
                send.consume(n)?;
                Ok(Some(Ok(n)))
            }
            Err(e) => Ok(Some(Err(e))),
        }
    }

    /// The peer's id for `channel`, how much of `want` bytes one data packet may carry
    /// now, and the peer's window to take them from; `None` when it may carry none.
    fn room(
        &mut self,
        transport: &Transport,
        channel: u32,
        want: usize,
    ) -> Result<Option<(u32, usize, &mut SendWindow)>, Error> {
        self.check_open(transport)?;
        let c = self.local_mut(channel)?;
        if !c.lifecycle().may_send_data() {
            return Err(Error::Misuse(
                "channel data on a channel not open, or after EOF or CLOSE",
            ));
        }
        let state = &mut c.value;
        let Some(send) = state.send.as_mut() else {
            return Ok(None);
        };
        if want == 0 || !transport.can_send() {
            return Ok(None);
        }
        let n = send.next_chunk(want);
        Ok((n > 0).then_some((state.peer_id, n, send)))
    }

    /// What [`Channels::send_data`] could take on `channel` now, transport aside: the
    /// smaller of the peer's window and its maximum packet size; 0 when no data may be
    /// sent.
    pub fn window(&self, channel: u32) -> usize {
        match self.table.get(channel) {
            Ok(c) if c.lifecycle().may_send_data() => {
                c.value.send.map_or(0, |s| s.next_chunk(usize::MAX))
            }
            _ => 0,
        }
    }

    /// The application has read `n` more bytes of `channel`'s data. Sends a
    /// WINDOW_ADJUST when one is due (RFC 4254 section 5.2): credit goes back only for
    /// bytes read.
    pub fn consumed(
        &mut self,
        transport: &mut Transport,
        channel: u32,
        n: usize,
        now: Instant,
    ) -> Result<(), Error> {
        self.check_open(transport)?;
        let c = self
            .table
            .get_mut(channel)
            .map_err(|_| Error::Misuse("no channel with that local id"))?;
        let done = c.lifecycle().close_sent() || c.lifecycle().eof_received();
        let peer_id = c.value.peer_id;
        let Some(by) = c.value.recv.consumed(n, now, &mut self.budget) else {
            return Ok(());
        };
        if done {
            // Nothing more will come: the credit would only be wasted on the wire.
            return Ok(());
        }
        transport.send(|p| {
            p.put_u8(MessageNumber::CHANNEL_WINDOW_ADJUST.0);
            p.put_u32(peer_id);
            p.put_u32(by);
        })
    }

    /// Sends EOF on `channel`: no more data from us (RFC 4254 section 5.3).
    pub fn eof(&mut self, transport: &mut Transport, channel: u32) -> Result<(), Error> {
        self.check_open(transport)?;
        let peer_id = self.table.send_eof(channel)?.peer_id;
        transport.send(|p| {
            p.put_u8(MessageNumber::CHANNEL_EOF.0);
            p.put_u32(peer_id);
        })
    }

    /// Sends CLOSE on `channel` (RFC 4254 section 5.3). The id stays taken until the
    /// peer's CLOSE arrives, then [`Event::Closed`] follows.
    pub fn close(&mut self, transport: &mut Transport, channel: u32) -> Result<(), Error> {
        self.check_open(transport)?;
        let peer_id = self.table.send_close(channel)?.peer_id;
        transport.send(|p| {
            p.put_u8(MessageNumber::CHANNEL_CLOSE.0);
            p.put_u32(peer_id);
        })
    }

    // -----------------------------------------------------------------------------------
    // Helpers

    /// A channel the application names; a wrong id is its bug, not the peer's.
    fn local(&self, id: u32) -> Result<&crate::connection::table::Channel<ChannelState>, Error> {
        self.table
            .get(id)
            .map_err(|_| Error::Misuse("no channel with that local id"))
    }

    fn local_mut(
        &mut self,
        id: u32,
    ) -> Result<&mut crate::connection::table::Channel<ChannelState>, Error> {
        self.table
            .get_mut(id)
            .map_err(|_| Error::Misuse("no channel with that local id"))
    }

    fn check_open(&self, transport: &Transport) -> Result<(), Error> {
        if self.closed || transport.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Ends the connection for a peer's error: DISCONNECT goes out, and every later call
    /// returns [`Error::Closed`].
    fn fatal(&mut self, t: &mut Transport, e: Error) -> Error {
        if let Error::Protocol { reason, detail } = &e {
            log::debug!("connection protocol error reason={reason:?} detail={detail}");
            t.disconnect(*reason, detail);
            self.closed = true;
            self.events.clear();
        }
        e
    }
}

/// Starts a CHANNEL_DATA message, or a CHANNEL_EXTENDED_DATA of type STDERR when
/// `stderr` (RFC 4254 section 5.2): everything before the data's length.
fn put_data_header(p: &mut Vec<u8>, peer_id: u32, stderr: bool) {
    if stderr {
        p.put_u8(MessageNumber::CHANNEL_EXTENDED_DATA.0);
        p.put_u32(peer_id);
        p.put_u32(ExtendedDataType::STDERR.0);
    } else {
        p.put_u8(MessageNumber::CHANNEL_DATA.0);
        p.put_u32(peer_id);
    }
}
