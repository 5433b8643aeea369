//! Drives one connection over a blocking socket: enough for `gateway probe` and the
//! demo, which each handle a single connection. The event loop for many connections is a
//! separate module.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ssh_proto::Error as ProtoError;
use ssh_proto::transport::{Event, Transport};

/// Why driving a connection stopped.
#[derive(Debug)]
pub enum DriveError {
    Io(io::Error),
    /// The peer closed the TCP connection.
    Eof,
    Protocol(ProtoError),
    /// The caller's own deadline passed.
    TimedOut,
}

impl std::fmt::Display for DriveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Eof => write!(f, "connection closed by remote host"),
            Self::Protocol(e) => write!(f, "{e}"),
            Self::TimedOut => write!(f, "operation timed out"),
        }
    }
}

impl std::error::Error for DriveError {}

impl From<io::Error> for DriveError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<ProtoError> for DriveError {
    fn from(e: ProtoError) -> Self {
        Self::Protocol(e)
    }
}

/// How much one read asks the socket for.
const READ_CHUNK: usize = 64 * 1024;

/// A transport bound to a blocking TCP stream.
#[derive(Debug)]
pub struct BlockingConn {
    pub transport: Transport,
    stream: TcpStream,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    /// Messages for the layer above, in arrival order.
    pub packets: VecDeque<Vec<u8>>,
    /// The server's `server-sig-algs` (RFC 8308), once its EXT_INFO arrived.
    pub server_sig_algs: Option<String>,
}

impl BlockingConn {
    pub fn new(transport: Transport, stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        Ok(Self {
            transport,
            stream,
            inbox: Vec::with_capacity(64 * 1024),
            outbox: Vec::with_capacity(64 * 1024),
            packets: VecDeque::new(),
            server_sig_algs: None,
        })
    }

    /// Takes the connection apart for another driver: the transport, the socket, input
    /// read but not yet decoded, and messages decoded but not yet taken.
    pub fn into_parts(self) -> (Transport, TcpStream, Vec<u8>, VecDeque<Vec<u8>>) {
        (self.transport, self.stream, self.inbox, self.packets)
    }

    /// Writes everything the transport has queued.
    pub fn flush(&mut self) -> io::Result<()> {
        self.transport.poll_transmit(&mut self.outbox);
        if !self.outbox.is_empty() {
            self.stream.write_all(&self.outbox)?;
            self.outbox.clear();
        }
        Ok(())
    }

    /// Runs the connection until `done` holds, handing every event to `on_event`.
    /// On a protocol error the DISCONNECT that explains it is sent before returning.
    pub fn run_until(
        &mut self,
        deadline: Instant,
        mut on_event: impl FnMut(&mut Transport, Event) -> Result<(), ProtoError>,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<(), DriveError> {
        let result = self.run_inner(deadline, &mut on_event, &mut done);
        if result.is_err() {
            // Best effort: the peer may already be gone.
            let _ = self.flush();
        }
        result
    }

    fn run_inner(
        &mut self,
        deadline: Instant,
        on_event: &mut dyn FnMut(&mut Transport, Event) -> Result<(), ProtoError>,
        done: &mut dyn FnMut(&Self) -> bool,
    ) -> Result<(), DriveError> {
        loop {
            let delivered = self.decode_all(on_event)?;
            self.flush()?;
            if done(self) {
                return Ok(());
            }
            if delivered {
                // More may be buffered behind the packet just delivered.
                continue;
            }

            let now = Instant::now();
            if now >= deadline {
                return Err(DriveError::TimedOut);
            }
            let wake = self
                .transport
                .poll_timeout()
                .map_or(deadline, |t| t.min(deadline));
            let wait = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.stream.set_read_timeout(Some(wait))?;
            // Read straight onto the end of the input buffer: no second buffer, no copy.
            let start = self.inbox.len();
            self.inbox.resize(start + READ_CHUNK, 0);
            let read = self.stream.read(&mut self.inbox[start..]);
            self.inbox.truncate(start + read.as_ref().map_or(0, |&n| n));
            match read {
                Ok(0) => return Err(DriveError::Eof),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.transport.handle_timeout(Instant::now())?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Decodes buffered input until it runs out or one packet for the layer above is
    /// delivered, so the caller can look at each packet before later input (a DISCONNECT
    /// right behind it, say) is acted on. Returns whether a packet was delivered.
    fn decode_all(
        &mut self,
        on_event: &mut dyn FnMut(&mut Transport, Event) -> Result<(), ProtoError>,
    ) -> Result<bool, DriveError> {
        let mut start = 0;
        let result = loop {
            let decoded = match self
                .transport
                .decode(&mut self.inbox[start..], Instant::now())
            {
                Ok(d) => d,
                Err(e) => break Err(e.into()),
            };
            start += decoded.consumed;
            let delivered = decoded.packet.is_some();
            if let Some(packet) = decoded.packet {
                self.packets.push_back(packet.payload.to_vec());
            }
            let mut failed = None;
            while let Some(event) = self.transport.poll_event() {
                if let Event::ExtInfo(info) = &event {
                    self.server_sig_algs.clone_from(&info.server_sig_algs);
                }
                if let Err(e) = on_event(&mut self.transport, event) {
                    failed = Some(e);
                    break;
                }
            }
            if let Some(e) = failed {
                break Err(e.into());
            }
            if delivered {
                break Ok(true);
            }
            if decoded.consumed == 0 {
                break Ok(false);
            }
        };
        self.inbox.drain(..start);
        result
    }
}
