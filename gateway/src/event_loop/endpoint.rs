//! The local end of a channel: a TCP or Unix socket, or a set of pipes (the client's own
//! standard streams, a child process's on the server).
//!
//! An endpoint has two directions. *Up* is what it produces, which the loop sends on the
//! channel; *down* is what the channel delivers, which the loop writes into it. A pipe
//! endpoint may have a second up stream that travels as extended data (a child's
//! stderr, RFC 4254 section 5.2) and a second down stream that takes it (the client's
//! stderr).
//!
//! Every descriptor is non-blocking and registered with the loop's poll under one token.
//! Readiness is edge-triggered, so each direction keeps a flag that an event sets and
//! `WouldBlock` clears. A descriptor that epoll refuses (a regular file or `/dev/null` on
//! stdin or stdout) is never ready late: reads and writes on it do not block, so its
//! flags stay set.
//!
//! A socket asks the poll only for what its channel can use now ([`Want`]): to be read
//! while the channel can take more, to be written while bytes wait for it. The interest it
//! is registered with is remembered, and the poll is told only when that changes, so the
//! data path makes no system call for interest while a transfer flows. Pipes keep the
//! one direction each has for as long as they are open.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use mio::net::{TcpStream, UnixStream};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Which of an endpoint's streams: the plain one, or the one that carries extended data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Data = 0,
    Ext = 1,
}

impl Stream {
    pub(crate) const BOTH: [Stream; 2] = [Stream::Data, Stream::Ext];
}

/// The readiness a socket endpoint wants to hear about, derived from its channel's state
/// by [`super::sock::Sock::want`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Want {
    /// The channel can take more of what the socket gives.
    pub(crate) read: bool,
    /// Bytes wait to be written to the socket, or its connect is in progress.
    pub(crate) write: bool,
}

impl Want {
    /// A connect in progress: it finishes, or fails, as writability (errors are reported
    /// whatever the interest).
    pub(crate) const CONNECT: Want = Want {
        read: false,
        write: true,
    };

    /// The interest to register, or `None` for none at all: mio has no empty interest,
    /// so a socket that wants nothing is taken out of the poll until it wants something.
    /// Re-adding a socket, like changing its interest, makes epoll look at its readiness
    /// afresh, so an edge that came while it was out is not lost.
    fn interest(self) -> Option<Interest> {
        match (self.read, self.write) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }
}

/// A socket: both directions in one descriptor.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One pipe end (or terminal, or file), non-blocking where the kernel allows it.
#[derive(Debug)]
pub(crate) struct Pipe {
    file: File,
    /// epoll refused it: it never blocks, so it is always ready.
    always_ready: bool,
    /// The descriptor's flags before we set `O_NONBLOCK`, put back on drop, so that a
    /// terminal shared with the shell is left as it was found.
    restore_flags: Option<rustix::fs::OFlags>,
}

impl Pipe {
    /// Takes a descriptor and makes it non-blocking. With `restore`, its old flags are
    /// put back when the pipe is dropped (for descriptors shared with other processes).
    pub(crate) fn new(fd: OwnedFd, restore: bool) -> io::Result<Pipe> {
        let old = rustix::fs::fcntl_getfl(&fd)?;
        rustix::fs::fcntl_setfl(&fd, old | rustix::fs::OFlags::NONBLOCK)?;
        Ok(Pipe {
            file: File::from(fd),
            always_ready: false,
            restore_flags: restore.then_some(old),
        })
    }

    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match registry.register(&mut SourceFd(&self.file.as_raw_fd()), token, interest) {
            Ok(()) => Ok(()),
            // Regular files and /dev/null: epoll says EPERM, and they never block.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {
                self.always_ready = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn deregister(&mut self, registry: &Registry) {
        if !self.always_ready {
            let _ = registry.deregister(&mut SourceFd(&self.file.as_raw_fd()));
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if let Some(flags) = self.restore_flags {
            let _ = rustix::fs::fcntl_setfl(self.file.as_fd(), flags);
        }
    }
}

/// The descriptors of one endpoint.
#[derive(Debug)]
pub(crate) enum Io {
    Socket(Socket),
    Pipes {
        /// Up streams, indexed by [`Stream`].
        up: [Option<Pipe>; 2],
        /// Down streams, indexed by [`Stream`].
        down: [Option<Pipe>; 2],
    },
}

/// An endpoint's descriptors and their readiness.
#[derive(Debug)]
pub(crate) struct Endpoint {
    io: Io,
    /// Per up stream: may be readable.
    up_ready: [bool; 2],
    /// Per down stream: may be writable.
    down_ready: [bool; 2],
    /// The token it is registered under, from [`Endpoint::register`] until
    /// [`Endpoint::deregister`].
    token: Option<Token>,
    /// For a socket: the interest it is in the poll with now, `None` while it wants
    /// nothing and is not in the poll at all.
    interest: Option<Interest>,
}

impl Endpoint {
    pub(crate) fn new(io: Io) -> Endpoint {
        let mut ep = Endpoint {
            io,
            up_ready: [false; 2],
            down_ready: [false; 2],
            token: None,
            interest: None,
        };
        // A socket not yet known to be connected is not assumed writable.
        if let Io::Pipes { .. } = ep.io {
            ep.down_ready = [true; 2];
        }
        ep
    }

    /// A socket whose connect may not have finished: it is not written before the poll
    /// says it is writable.
    pub(crate) fn socket(socket: Socket) -> Endpoint {
        Endpoint::new(Io::Socket(socket))
    }

    /// A socket from `accept`, connected already: its first write is tried at once
    /// rather than after a writable event that it would have to ask for first.
    pub(crate) fn accepted(socket: Socket) -> Endpoint {
        let mut ep = Endpoint::new(Io::Socket(socket));
        ep.down_ready = [true; 2];
        ep
    }

    /// Registers every descriptor under `token`: a socket for what `want` asks (nothing
    /// yet, possibly), each pipe for the one direction it has.
    pub(crate) fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        want: Want,
    ) -> io::Result<()> {
        let Io::Pipes { up, down } = &mut self.io else {
            self.token = Some(token);
            self.interest = None;
            let registered = self.set_want(registry, want);
            if registered.is_err() {
                self.token = None;
            }
            return registered;
        };
        for (i, pipe) in up.iter_mut().enumerate() {
            if let Some(pipe) = pipe {
                pipe.register(registry, token, Interest::READABLE)?;
                if pipe.always_ready {
                    self.up_ready[i] = true;
                }
            }
        }
        for pipe in down.iter_mut().flatten() {
            pipe.register(registry, token, Interest::WRITABLE)?;
        }
        self.token = Some(token);
        Ok(())
    }

    /// Brings a socket's registration in line with `want`, with one call to the poll
    /// when it differs from what the socket is registered for and none when it does not.
    /// Does nothing for pipes and for an endpoint that is not (or no longer) registered.
    pub(crate) fn set_want(&mut self, registry: &Registry, want: Want) -> io::Result<()> {
        let interest = want.interest();
        if interest == self.interest {
            return Ok(());
        }
        let Some(token) = self.token else {
            return Ok(());
        };
        let source: &mut dyn mio::event::Source = match &mut self.io {
            Io::Socket(Socket::Tcp(s)) => s,
            Io::Socket(Socket::Unix(s)) => s,
            Io::Pipes { .. } => return Ok(()),
        };
        match (self.interest, interest) {
            (None, Some(i)) => registry.register(source, token, i)?,
            (Some(_), Some(i)) => registry.reregister(source, token, i)?,
            (Some(_), None) => registry.deregister(source)?,
            (None, None) => {}
        }
        self.interest = interest;
        Ok(())
    }

    /// Takes every descriptor out of the poll for good: [`Endpoint::set_want`] does
    /// nothing afterwards.
    pub(crate) fn deregister(&mut self, registry: &Registry) {
        if self.token.take().is_none() {
            return;
        }
        match &mut self.io {
            Io::Socket(Socket::Tcp(s)) => {
                if self.interest.take().is_some() {
                    drop(registry.deregister(s));
                }
            }
            Io::Socket(Socket::Unix(s)) => {
                if self.interest.take().is_some() {
                    drop(registry.deregister(s));
                }
            }
            Io::Pipes { up, down } => {
                for pipe in up.iter_mut().chain(down.iter_mut()).flatten() {
                    pipe.deregister(registry);
                }
            }
        }
    }

    /// Records a readiness event.
    pub(crate) fn on_event(&mut self, readable: bool, writable: bool) {
        if readable {
            self.up_ready = [true; 2];
        }
        if writable {
            self.down_ready = [true; 2];
        }
    }

    /// Whether this is the process's own standard streams (a client's session or `-W`):
    /// the only pipes whose flags are put back, because they are shared with the parent.
    pub(crate) fn is_own_stdio(&self) -> bool {
        match &self.io {
            Io::Socket(_) => false,
            Io::Pipes { down, .. } => down.iter().flatten().any(|p| p.restore_flags.is_some()),
        }
    }

    /// Whether this endpoint has the up stream `s` at all.
    pub(crate) fn has_up(&self, s: Stream) -> bool {
        match &self.io {
            Io::Socket(_) => s == Stream::Data,
            Io::Pipes { up, .. } => up[s as usize].is_some(),
        }
    }

    /// Whether this endpoint has the down stream `s`. Extended data for an endpoint
    /// without its own stream for it goes to the plain one.
    pub(crate) fn down_stream(&self, s: Stream) -> Option<Stream> {
        match &self.io {
            Io::Socket(_) => Some(Stream::Data),
            Io::Pipes { down, .. } => {
                if down[s as usize].is_some() {
                    Some(s)
                } else if down[Stream::Data as usize].is_some() {
                    Some(Stream::Data)
                } else {
                    None
                }
            }
        }
    }

    pub(crate) fn up_ready(&self, s: Stream) -> bool {
        self.up_ready[s as usize]
    }

    pub(crate) fn down_ready(&self, s: Stream) -> bool {
        self.down_ready[s as usize]
    }

    /// Reads from up stream `s`. `WouldBlock` clears its readiness.
    pub(crate) fn read(&mut self, s: Stream, buf: &mut [u8]) -> io::Result<usize> {
        let result = match &mut self.io {
            Io::Socket(Socket::Tcp(sock)) => sock.read(buf),
            Io::Socket(Socket::Unix(sock)) => sock.read(buf),
            Io::Pipes { up, .. } => match &mut up[s as usize] {
                Some(pipe) => pipe.file.read(buf),
                None => Ok(0),
            },
        };
        if let Err(e) = &result
            && e.kind() == io::ErrorKind::WouldBlock
        {
            self.up_ready[s as usize] = false;
        }
        result
    }

    /// Writes to down stream `s`. `WouldBlock` clears its readiness.
    pub(crate) fn write(&mut self, s: Stream, buf: &[u8]) -> io::Result<usize> {
        let result = match &mut self.io {
            Io::Socket(Socket::Tcp(sock)) => sock.write(buf),
            Io::Socket(Socket::Unix(sock)) => sock.write(buf),
            Io::Pipes { down, .. } => match &mut down[s as usize] {
                Some(pipe) => pipe.file.write(buf),
                None => Err(io::ErrorKind::BrokenPipe.into()),
            },
        };
        if let Err(e) = &result
            && e.kind() == io::ErrorKind::WouldBlock
        {
            self.down_ready[s as usize] = false;
        }
        result
    }

    /// No more data goes down: a socket's write side is shut (the peer reads EOF); the
    /// pipes are closed, except the client's own stdout and stderr, which stay open for
    /// the process's messages.
    pub(crate) fn shutdown_down(&mut self, registry: &Registry) {
        match &mut self.io {
            Io::Socket(Socket::Tcp(s)) => drop(s.shutdown(Shutdown::Write)),
            Io::Socket(Socket::Unix(s)) => drop(s.shutdown(Shutdown::Write)),
            Io::Pipes { down, .. } => {
                for slot in down.iter_mut() {
                    if let Some(pipe) = slot
                        && pipe.restore_flags.is_none()
                    {
                        pipe.deregister(registry);
                        *slot = None;
                    }
                }
            }
        }
    }

    /// The connected socket's error, if its non-blocking connect failed.
    pub(crate) fn take_connect_error(&self) -> io::Result<Option<io::Error>> {
        match &self.io {
            Io::Socket(Socket::Tcp(s)) => s.take_error(),
            Io::Socket(Socket::Unix(s)) => s.take_error(),
            Io::Pipes { .. } => Ok(None),
        }
    }

    /// Whether the non-blocking connect finished: the socket has a peer.
    pub(crate) fn is_connected(&self) -> bool {
        match &self.io {
            Io::Socket(Socket::Tcp(s)) => s.peer_addr().is_ok(),
            Io::Socket(Socket::Unix(s)) => s.peer_addr().is_ok(),
            Io::Pipes { .. } => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream as StdUnixStream;
    use std::time::Duration;

    use mio::{Events, Poll};

    use super::*;

    const READ: Want = Want {
        read: true,
        write: false,
    };

    /// The (readable, writable) events of one short poll for `token`.
    fn poll_once(poll: &mut Poll, token: Token) -> Vec<(bool, bool)> {
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .expect("poll");
        events
            .iter()
            .filter(|e| e.token() == token)
            .map(|e| (e.is_readable(), e.is_writable()))
            .collect()
    }

    fn socket_pair() -> (Endpoint, StdUnixStream) {
        let (ours, theirs) = StdUnixStream::pair().expect("socket pair");
        ours.set_nonblocking(true).expect("non-blocking");
        let ep = Endpoint::accepted(Socket::Unix(UnixStream::from_std(ours)));
        (ep, theirs)
    }

    /// A socket asks only for what it wants: an idle writable socket that wants reads
    /// wakes nobody, and one that wants nothing is out of the poll. Taken out and put
    /// back, it misses nothing: epoll looks at its readiness afresh when it returns.
    #[test]
    fn interest_follows_want_and_loses_no_readiness() {
        let mut poll = Poll::new().expect("poll");
        let token = Token(7);
        let (mut ep, mut theirs) = socket_pair();
        ep.register(poll.registry(), token, READ).expect("register");
        assert_eq!(
            poll_once(&mut poll, token),
            vec![],
            "a writable socket that wants only reads woke the poll"
        );

        ep.set_want(poll.registry(), Want::default())
            .expect("out of the poll");
        theirs.write_all(b"x").expect("write");
        assert_eq!(
            poll_once(&mut poll, token),
            vec![],
            "a socket that wants nothing heard of data"
        );

        ep.set_want(poll.registry(), READ).expect("back for reads");
        assert_eq!(
            poll_once(&mut poll, token),
            vec![(true, false)],
            "data that came while out of the poll was not reported on return"
        );

        let both = Want {
            read: true,
            write: true,
        };
        ep.set_want(poll.registry(), both)
            .expect("reads and writes");
        assert_eq!(
            poll_once(&mut poll, token),
            vec![(true, true)],
            "asked for writes, a writable socket did not say so"
        );

        // Deregistered for good: wanting something again does not put it back.
        ep.deregister(poll.registry());
        ep.set_want(poll.registry(), both).expect("no-op");
        theirs.write_all(b"y").expect("write");
        assert_eq!(poll_once(&mut poll, token), vec![]);
    }
}
