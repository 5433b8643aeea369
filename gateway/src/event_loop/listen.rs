//! Listening sockets: the server's SSH ports and the client's `-L` forwards.
//!
//! Listeners are made with a deep backlog (the kernel caps it at `somaxconn`) and accept
//! until `WouldBlock`, so a burst of thousands of connections is taken, not dropped. The
//! process's open-file limit is raised to its hard limit once at start
//! ([`raise_open_file_limit`]) so those connections have descriptors to land in.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use crate::forward_spec::Target;
use std::sync::Arc;

use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Registry, Token};
use rustix::net::{AddressFamily, SocketType, sockopt};

use super::endpoint::Socket;
use super::server::Settings;

/// The backlog asked of `listen(2)`.
const BACKLOG: i32 = 4096;

/// What a listener is for.
#[derive(Clone, Debug)]
pub(crate) enum Purpose {
    /// SSH connections for the forwarding server.
    Ssh(Arc<Settings>),
    /// Local connections to carry over connection `conn` to `target`.
    Forward { conn: usize, target: Target },
}

#[derive(Debug)]
enum Io {
    Tcp(TcpListener),
    /// The path is removed when the listener goes.
    Unix(UnixListener, PathBuf),
}

/// A local connection just accepted.
#[derive(Debug)]
pub struct Accepted {
    pub(crate) socket: Socket,
    /// The peer's address, for log lines and `direct-tcpip`'s originator.
    pub(crate) peer: Option<SocketAddr>,
}

/// A listening socket and its purpose.
#[derive(Debug)]
pub(crate) struct Listener {
    io: Io,
    pub(crate) purpose: Purpose,
}

/// Whether binding failed because the host has no such address, or no IPv6 at all: the
/// one failure a name's other addresses may stand in for, as ssh and sshd let them.
pub fn no_such_address(e: &io::Error) -> bool {
    let no = [
        rustix::io::Errno::ADDRNOTAVAIL,
        rustix::io::Errno::AFNOSUPPORT,
    ];
    e.raw_os_error()
        .is_some_and(|code| no.iter().any(|n| n.raw_os_error() == code))
}

/// A blocking TCP listener on `addr` with a backlog of 4,096 rather than std's 128, so
/// that a burst of connections waits to be accepted instead of being reset.
pub fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket(family, SocketType::STREAM, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if addr.is_ipv6() {
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, BACKLOG)?;
    Ok(std::net::TcpListener::from(fd))
}

impl Listener {
    /// Listens on a TCP address with a deep backlog.
    pub(crate) fn tcp(addr: SocketAddr, purpose: Purpose) -> io::Result<Listener> {
        let std = tcp_listener(addr)?;
        std.set_nonblocking(true)?;
        Ok(Listener {
            io: Io::Tcp(TcpListener::from_std(std)),
            purpose,
        })
    }

    /// Listens on a Unix socket path, which must not exist yet (as with ssh, unless
    /// `StreamLocalBindUnlink` were set, which this client does not offer).
    pub(crate) fn unix(path: &Path, purpose: Purpose) -> io::Result<Listener> {
        let listener = UnixListener::bind(path)?;
        Ok(Listener {
            io: Io::Unix(listener, path.to_owned()),
            purpose,
        })
    }

    /// The address a TCP listener is bound to.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match &self.io {
            Io::Tcp(l) => l.local_addr().ok(),
            Io::Unix(..) => None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match &self.io {
            Io::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "a TCP socket".to_owned(), |a| a.to_string()),
            Io::Unix(_, path) => path.display().to_string(),
        }
    }

    pub(crate) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match &mut self.io {
            Io::Tcp(l) => registry.register(l, token, Interest::READABLE),
            Io::Unix(l, _) => registry.register(l, token, Interest::READABLE),
        }
    }

    pub(crate) fn deregister(&mut self, registry: &Registry) {
        match &mut self.io {
            Io::Tcp(l) => drop(registry.deregister(l)),
            Io::Unix(l, _) => drop(registry.deregister(l)),
        }
    }

    /// Accepts one connection; `None` once the backlog is empty. Errors that concern only
    /// the connection being accepted (it was reset meanwhile) are skipped; running out of
    /// descriptors is returned, and the loop tries again on the next readiness event.
    pub(crate) fn accept(&mut self) -> io::Result<Option<Accepted>> {
        loop {
            let result = match &self.io {
                Io::Tcp(l) => l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    Accepted {
                        socket: Socket::Tcp(s),
                        peer: Some(a),
                    }
                }),
                Io::Unix(l, _) => l.accept().map(|(s, _)| Accepted {
                    socket: Socket::Unix(s),
                    peer: None,
                }),
            };
            match result {
                Ok(a) => return Ok(Some(a)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Io::Unix(_, path) = &self.io {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so bursts of connections
/// are not refused for want of descriptors. Returns the new limit.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            return getrlimit(Resource::Nofile).current;
        }
    }
    limit.current
}

impl super::EventLoop {
    /// Listens for SSH connections for the forwarding server. Returns the bound address
    /// (useful with port 0).
    pub fn listen_ssh(
        &mut self,
        addr: SocketAddr,
        settings: Arc<Settings>,
    ) -> io::Result<SocketAddr> {
        let listener = Listener::tcp(addr, Purpose::Ssh(settings))?;
        let bound = listener.local_addr().unwrap_or(addr);
        self.add_listener(listener)?;
        Ok(bound)
    }
}
