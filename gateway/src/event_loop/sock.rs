//! A local endpoint bound to one channel, and the data path between them.
//!
//! Down (channel to endpoint): data is written straight from the decrypted packet; what
//! the endpoint cannot take yet waits in a buffer, and the channel's window is credited
//! only for bytes written, so a slow endpoint shuts the peer's window rather than growing
//! our memory. Up (endpoint to channel): the endpoint is read only while the channel's
//! window is open, at most one packet per turn, so every channel gets its turn.

use std::io;
use std::time::Instant;

use mio::Registry;

use super::dial::Dial;
use super::endpoint::{Endpoint, Stream, Want};
use super::resolve::Ticket;

/// Where a bound endpoint's channel stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The destination of the peer's open is a name, being looked up on another thread;
    /// the endpoint has no socket yet and the channel is not confirmed. Fails at the
    /// deadline, which is also the one for the connect that follows.
    Resolving { deadline: Instant },
    /// Our outgoing connect for the peer's open has not finished; the channel is not
    /// confirmed yet. At the deadline this address is given up for the next, if any.
    Connecting { deadline: Instant },
    /// We asked the peer to open the channel and wait for its answer.
    Opening,
    /// Data flows.
    Open,
    /// The channel is gone; what it delivered is still being written out.
    Orphan,
}

/// A local endpoint and its channel.
#[derive(Debug)]
pub(crate) struct Sock {
    pub(crate) ep: Endpoint,
    /// The connection (an index into the loop's table) and the channel on it.
    pub(crate) conn: usize,
    pub(crate) channel: u32,
    pub(crate) phase: Phase,
    /// Per up stream: EOF was read.
    pub(crate) up_eof: [bool; 2],
    /// EOF went out on the channel (every up stream ended).
    pub(crate) eof_sent: bool,
    /// Per down stream: bytes delivered by the channel and not yet written.
    down: [Vec<u8>; 2],
    down_pos: [usize; 2],
    /// The peer sent EOF: once `down` is written, the endpoint's write side is shut.
    pub(crate) down_eof: bool,
    pub(crate) down_shut: bool,
    /// In its connection's queue of endpoints to read.
    pub(crate) queued: bool,
    /// The channel must not be closed when the streams end: something else still has to
    /// be sent (a session's exit status).
    pub(crate) hold_close: bool,
    /// The channel's CLOSE went out.
    pub(crate) close_sent: bool,
    /// For log lines: what this channel is.
    pub(crate) label: String,
    /// The name lookup in progress, while [`Phase::Resolving`]. Dropping it (with the
    /// endpoint) withdraws the lookup.
    pub(crate) lookup: Option<Ticket>,
    /// The addresses of an outgoing connect and how far through them it is, from the
    /// lookup's answer (or the address the peer gave) until the connect succeeds.
    pub(crate) dial: Option<Box<Dial>>,
}

impl Sock {
    pub(crate) fn new(
        ep: Endpoint,
        conn: usize,
        channel: u32,
        phase: Phase,
        label: String,
    ) -> Sock {
        Sock {
            ep,
            conn,
            channel,
            phase,
            up_eof: [false; 2],
            eof_sent: false,
            down: [Vec::new(), Vec::new()],
            down_pos: [0; 2],
            down_eof: false,
            down_shut: false,
            queued: false,
            hold_close: false,
            close_sent: false,
            label,
            lookup: None,
            dial: None,
        }
    }

    /// Bytes waiting to be written to the endpoint.
    pub(crate) fn down_pending(&self) -> usize {
        self.down[0].len() - self.down_pos[0] + self.down[1].len() - self.down_pos[1]
    }

    /// Whether the endpoint has an up stream that may give data now.
    pub(crate) fn wants_read(&self) -> bool {
        Stream::BOTH
            .iter()
            .any(|&s| self.ep.has_up(s) && !self.up_eof[s as usize] && self.ep.up_ready(s))
    }

    /// What the endpoint's socket should hear about from the poll now: reads while the
    /// channel can take more, writes while bytes wait for it. `window_open` says whether
    /// the peer's window for the channel has room; it is asked only when nothing else
    /// rules reading out.
    ///
    /// A socket left readable behind a shut window would wake the loop for every segment
    /// its sender pushes, to no purpose; one left writable with nothing to write would
    /// wake it whenever its reader takes some (a Unix socket does on every read).
    pub(crate) fn want(&self, window_open: impl FnOnce() -> bool) -> Want {
        match self.phase {
            Phase::Connecting { .. } => Want::CONNECT,
            Phase::Open => Want {
                read: !self.close_sent && !self.up_eof[Stream::Data as usize] && window_open(),
                write: !self.down_shut && self.down_pending() > 0,
            },
            Phase::Orphan => Want {
                read: false,
                write: self.down_pending() > 0,
            },
            // No socket yet, or no open channel to carry what it gives or bring it
            // anything: nothing to hear about until the channel opens.
            Phase::Resolving { .. } | Phase::Opening => Want::default(),
        }
    }

    /// Registers the socket for what [`Sock::want`] says, if that changed.
    pub(crate) fn sync_interest(
        &mut self,
        registry: &Registry,
        window_open: impl FnOnce() -> bool,
    ) -> io::Result<()> {
        let want = self.want(window_open);
        self.ep.set_want(registry, want)
    }

    /// Whether every up stream has ended.
    pub(crate) fn up_done(&self) -> bool {
        Stream::BOTH
            .iter()
            .all(|&s| !self.ep.has_up(s) || self.up_eof[s as usize])
    }

    /// Writes channel data to the endpoint: straight away while it is writable and
    /// nothing waits before it, the rest into the buffer. Returns the bytes written now.
    /// Data for an endpoint with no down stream (a closed stdout, say) is dropped and
    /// counted as written, so the window keeps moving.
    pub(crate) fn deliver(&mut self, stream: Stream, data: &[u8]) -> io::Result<usize> {
        let Some(s) = self.ep.down_stream(stream) else {
            return Ok(data.len());
        };
        let i = s as usize;
        if self.down_shut {
            return Ok(data.len());
        }
        let mut written = 0;
        if self.down[i].len() == self.down_pos[i] {
            while written < data.len() && self.ep.down_ready(s) {
                match self.ep.write(s, &data[written..]) {
                    Ok(0) => break,
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if written < data.len() {
            // Written bytes are dropped from the front once they are half the buffer, so
            // it holds at most twice what waits (which the window bounds), and each byte
            // is moved at most once on average.
            if self.down_pos[i] > 0 && self.down_pos[i] * 2 >= self.down[i].len() {
                self.down[i].drain(..self.down_pos[i]);
                self.down_pos[i] = 0;
            }
            self.down[i].extend_from_slice(&data[written..]);
        }
        Ok(written)
    }

    /// Writes buffered data while the endpoint takes it; returns the bytes written. A
    /// drained buffer gives its memory back if it had grown large.
    pub(crate) fn flush_down(&mut self) -> io::Result<usize> {
        let mut total = 0;
        for s in Stream::BOTH {
            let i = s as usize;
            while self.down_pos[i] < self.down[i].len() && self.ep.down_ready(s) {
                match self.ep.write(s, &self.down[i][self.down_pos[i]..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.down_pos[i] += n;
                        total += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.down_pos[i] == self.down[i].len() {
                self.down[i].clear();
                self.down_pos[i] = 0;
                if self.down[i].capacity() > KEEP_CAPACITY {
                    self.down[i] = Vec::new();
                }
            }
        }
        Ok(total)
    }

    /// Forgets what waits to be written: the endpoint broke and will never take it.
    pub(crate) fn discard_down(&mut self) {
        self.down = [Vec::new(), Vec::new()];
        self.down_pos = [0; 2];
    }

    /// Shuts the endpoint's write side once the peer's EOF came and everything before it
    /// was written.
    pub(crate) fn maybe_shut_down(&mut self, registry: &Registry) {
        if self.down_eof && !self.down_shut && self.down_pending() == 0 {
            self.down_shut = true;
            self.ep.shutdown_down(registry);
        }
    }

    /// Whether the channel has nothing left to carry either way and may be closed.
    pub(crate) fn finished(&self) -> bool {
        self.phase == Phase::Open
            && !self.hold_close
            && !self.close_sent
            && self.eof_sent
            && self.down_shut
    }
}

/// A down buffer larger than this is freed once drained rather than kept for reuse, so
/// thousands of idle channels hold no memory.
const KEEP_CAPACITY: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixStream as StdUnixStream;
    use std::time::{Duration, Instant};

    use mio::net::UnixStream;

    use super::*;
    use crate::event_loop::endpoint::Socket;

    const NOTHING: Want = Want {
        read: false,
        write: false,
    };

    fn open_sock() -> (Sock, StdUnixStream) {
        let (ours, theirs) = StdUnixStream::pair().expect("socket pair");
        ours.set_nonblocking(true).expect("non-blocking");
        let ep = Endpoint::accepted(Socket::Unix(UnixStream::from_std(ours)));
        (Sock::new(ep, 0, 0, Phase::Open, "test".into()), theirs)
    }

    /// Reads are wanted while the channel can take them, writes while bytes wait.
    #[test]
    fn want_follows_the_window_and_the_bytes_waiting() {
        let (mut sock, mut theirs) = open_sock();
        let read_only = Want {
            read: true,
            write: false,
        };
        assert_eq!(sock.want(|| true), read_only);
        assert_eq!(sock.want(|| false), NOTHING, "read behind a shut window");

        // More than the socket holds: the rest waits, and writes are wanted.
        let data = vec![7u8; 4 << 20];
        let written = sock.deliver(Stream::Data, &data).expect("deliver");
        assert!(written < data.len(), "the socket took all {written} bytes");
        assert!(sock.want(|| true).write);
        assert!(
            sock.want(|| false).write,
            "writes do not wait for the window"
        );

        // Once the reader has taken it all, writes are no longer wanted.
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; 4 << 20];
            theirs.read_exact(&mut got).expect("read it all");
            theirs
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while sock.down_pending() > 0 {
            assert!(Instant::now() < deadline, "the reader took nothing");
            sock.ep.on_event(false, true);
            if sock.flush_down().expect("flush") == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(sock.want(|| true), read_only);
        let _theirs = reader.join().expect("reader");

        // A stream that ended, or a channel closed, is not read again.
        sock.up_eof[Stream::Data as usize] = true;
        assert_eq!(sock.want(|| true), NOTHING);
        sock.up_eof[Stream::Data as usize] = false;
        sock.close_sent = true;
        assert_eq!(sock.want(|| true), NOTHING);
    }

    #[test]
    fn want_by_phase() {
        let (mut sock, _theirs) = open_sock();
        let deadline = Instant::now();
        sock.phase = Phase::Opening;
        assert_eq!(sock.want(|| true), NOTHING, "before the channel opens");
        sock.phase = Phase::Resolving { deadline };
        assert_eq!(sock.want(|| true), NOTHING);
        sock.phase = Phase::Connecting { deadline };
        assert_eq!(sock.want(|| true), Want::CONNECT);
        sock.phase = Phase::Orphan;
        assert_eq!(
            sock.want(|| true),
            NOTHING,
            "an orphan with nothing to write"
        );
        sock.down[0].extend_from_slice(b"left");
        assert_eq!(
            sock.want(|| true),
            Want {
                read: false,
                write: true
            }
        );
    }
}
