//! The addresses of one outgoing connect, tried in turn.
//!
//! A name often has several addresses, and the first is not always one the service
//! listens on: `localhost` commonly gives `::1` before `127.0.0.1`, and a service bound to
//! `127.0.0.1` alone refuses the first. Like sshd, the forwarding server tries each
//! address in the resolver's order until one connects, and reports only the last error
//! once every address has failed.
//!
//! The connect timeout bounds the whole attempt, the name lookup included. Each address
//! gets an equal share of the time left when its turn comes, and the last one all of it,
//! so an address that never answers cannot use up the time of those after it.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Instant;

/// The address a `direct-tcpip` host names when it is written as one: IPv4, or IPv6 with
/// or without brackets. Such a host is connected to at once, with no lookup.
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse().ok(),
    }
}

/// The addresses still to try, when the whole attempt gives up, and the error of the
/// address that failed last.
#[derive(Debug)]
pub(crate) struct Dial {
    addrs: Vec<SocketAddr>,
    /// The next address to try, an index into `addrs`.
    next: usize,
    deadline: Instant,
    /// The address of the attempt in flight.
    trying: Option<SocketAddr>,
    last_error: Option<String>,
}

/// One connect started: what `connect` returned for `addr`, and when to give up on it
/// and move to the next address.
#[derive(Debug)]
pub(crate) struct Attempt<T> {
    pub(crate) conn: T,
    pub(crate) addr: SocketAddr,
    pub(crate) give_up: Instant,
}

impl Dial {
    /// A connect to `addrs` in this order, all of it over by `deadline`. An address that
    /// appears twice is tried once.
    pub(crate) fn new(addrs: Vec<SocketAddr>, deadline: Instant) -> Dial {
        let mut unique = Vec::with_capacity(addrs.len());
        for addr in addrs {
            if !unique.contains(&addr) {
                unique.push(addr);
            }
        }
        Dial {
            addrs: unique,
            next: 0,
            deadline,
            trying: None,
            last_error: None,
        }
    }

    /// A connect to what a name lookup answered. A failed lookup has nothing to try, and
    /// its error is the one reported.
    pub(crate) fn from_lookup(answer: io::Result<Vec<SocketAddr>>, deadline: Instant) -> Dial {
        match answer {
            Ok(addrs) => {
                let mut dial = Dial::new(addrs, deadline);
                if dial.addrs.is_empty() {
                    dial.last_error = Some("name lookup found no address".to_owned());
                }
                dial
            }
            Err(e) => {
                let mut dial = Dial::new(Vec::new(), deadline);
                dial.last_error = Some(lookup_error(&e));
                dial
            }
        }
    }

    /// The address of the attempt in flight, if one is.
    pub(crate) fn trying(&self) -> Option<SocketAddr> {
        self.trying
    }

    /// The attempt in flight failed, for `why`.
    pub(crate) fn failed(&mut self, why: String) {
        self.trying = None;
        self.last_error = Some(why);
    }

    /// Starts a connect to the next address that `connect` accepts, skipping those it
    /// fails at once (an address family with no route fails that way). The error of the
    /// last failure when no address is left, or the whole attempt's time is up.
    pub(crate) fn start<T>(
        &mut self,
        now: Instant,
        mut connect: impl FnMut(SocketAddr) -> io::Result<T>,
    ) -> Result<Attempt<T>, String> {
        self.trying = None;
        while let Some(&addr) = self.addrs.get(self.next) {
            if now >= self.deadline {
                break;
            }
            self.next += 1;
            // This address and every one after it share what time is left.
            let left = self.addrs.len() - self.next + 1;
            let share = self.deadline.saturating_duration_since(now)
                / u32::try_from(left).unwrap_or(u32::MAX);
            match connect(addr) {
                Ok(conn) => {
                    self.trying = Some(addr);
                    let give_up = if left == 1 {
                        self.deadline
                    } else {
                        now + share
                    };
                    return Ok(Attempt {
                        conn,
                        addr,
                        give_up,
                    });
                }
                Err(e) => self.last_error = Some(e.to_string()),
            }
        }
        Err(self.last_error.clone().unwrap_or_else(|| {
            if self.addrs.is_empty() {
                "no address to connect to".to_owned()
            } else {
                "connect timed out".to_owned()
            }
        }))
    }
}

/// A failed lookup in words for the client: std's error for `getaddrinfo` says what it
/// is in a prefix that the reason already says.
fn lookup_error(e: &io::Error) -> String {
    let text = e.to_string();
    let detail = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text);
    format!("name lookup failed: {detail}")
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};
    use std::time::Duration;

    use super::*;

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, last), port))
    }

    fn v6_loopback(port: u16) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0))
    }

    fn refused(_: SocketAddr) -> io::Result<()> {
        Err(io::ErrorKind::ConnectionRefused.into())
    }

    #[test]
    fn literals_are_addresses_and_names_are_not() {
        let cases: &[(&str, Option<IpAddr>)] = &[
            ("127.0.0.1", Some(IpAddr::V4(Ipv4Addr::LOCALHOST))),
            ("::1", Some(IpAddr::V6(Ipv6Addr::LOCALHOST))),
            ("[::1]", Some(IpAddr::V6(Ipv6Addr::LOCALHOST))),
            ("[2001:db8::7]", "2001:db8::7".parse().ok()),
            // Brackets are for IPv6 only, and must be whole.
            ("[127.0.0.1]", None),
            ("[::1", None),
            ("::1]", None),
            ("localhost", None),
            ("db.internal", None),
            ("127.0.0.1.nip.io", None),
            ("", None),
        ];
        for (host, want) in cases {
            assert_eq!(ip_literal(host), *want, "{host:?}");
        }
    }

    /// `localhost` as `::1` then `127.0.0.1`, with the service on the IPv4 address only:
    /// the refusal of the first moves on to the second.
    #[test]
    fn a_refused_first_address_moves_on_to_the_next() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(10);
        let service = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
        let mut dial = Dial::new(vec![v6_loopback(8080), service], deadline);

        // The IPv6 connect starts, and later fails.
        let first = dial.start(now, Ok).expect("first attempt");
        assert_eq!(first.addr, v6_loopback(8080));
        assert_eq!(dial.trying(), Some(v6_loopback(8080)));
        assert_eq!(
            first.give_up,
            now + Duration::from_secs(5),
            "half the time each"
        );
        dial.failed("Connection refused".to_owned());

        let later = now + Duration::from_millis(3);
        let second = dial.start(later, Ok).expect("second attempt");
        assert_eq!(second.addr, service);
        assert_eq!(
            second.give_up, deadline,
            "the last address has all that is left"
        );
    }

    #[test]
    fn addresses_that_fail_at_once_are_skipped_in_one_call() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(9);
        let addrs = vec![v4(1, 22), v4(2, 22), v4(3, 22)];
        let mut dial = Dial::new(addrs, deadline);
        let mut tried = Vec::new();
        let attempt = dial
            .start(now, |addr| {
                tried.push(addr);
                if addr == v4(3, 22) {
                    Ok(addr)
                } else {
                    Err(io::Error::from(io::ErrorKind::NetworkUnreachable))
                }
            })
            .expect("the third connects");
        assert_eq!(tried, vec![v4(1, 22), v4(2, 22), v4(3, 22)]);
        assert_eq!(attempt.conn, v4(3, 22));
        assert_eq!(attempt.give_up, deadline);
    }

    #[test]
    fn the_last_error_is_reported_when_every_address_failed() {
        let now = Instant::now();
        let mut dial = Dial::new(vec![v4(1, 80), v4(2, 80)], now + Duration::from_secs(4));
        let _ = dial.start(now, Ok).expect("first starts");
        dial.failed("connect timed out".to_owned());
        let why = dial
            .start(now + Duration::from_secs(2), refused)
            .expect_err("nothing left");
        assert!(why.contains("refused"), "{why}");
        assert_eq!(dial.trying(), None);
        // And it stays failed.
        assert!(dial.start(now + Duration::from_secs(2), Ok).is_err());
    }

    /// One address that never answers gets its share of the time; the overall deadline
    /// still ends everything, however many addresses are left.
    #[test]
    fn the_overall_deadline_bounds_every_attempt() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(12);
        let addrs: Vec<SocketAddr> = (1..=4).map(|i| v4(i, 443)).collect();
        let mut dial = Dial::new(addrs, deadline);
        let first = dial.start(now, Ok).expect("first");
        assert_eq!(first.give_up, now + Duration::from_secs(3));

        // It timed out at its share; the three left share the nine seconds left.
        dial.failed("connect timed out".to_owned());
        let second = dial.start(first.give_up, Ok).expect("second");
        assert_eq!(second.give_up, first.give_up + Duration::from_secs(3));

        // Past the deadline nothing more starts, whatever is left.
        dial.failed("connect timed out".to_owned());
        let why = dial
            .start(deadline, |_| -> io::Result<()> {
                panic!("connect after the deadline")
            })
            .expect_err("time is up");
        assert_eq!(why, "connect timed out");
    }

    #[test]
    fn a_repeated_address_is_tried_once() {
        let now = Instant::now();
        let addrs = vec![v4(1, 80), v4(1, 80), v4(2, 80), v4(1, 80)];
        let mut dial = Dial::new(addrs, now + Duration::from_secs(2));
        let mut tried = Vec::new();
        let why = dial
            .start(now, |addr| {
                tried.push(addr);
                refused(addr)
            })
            .expect_err("all refused");
        assert_eq!(tried, vec![v4(1, 80), v4(2, 80)]);
        assert!(why.contains("refused"), "{why}");
    }

    #[test]
    fn a_failed_lookup_has_nothing_to_try_and_says_why() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(2);
        let error =
            io::Error::other("failed to lookup address information: Name or service not known");
        let mut dial = Dial::from_lookup(Err(error), deadline);
        let why = dial
            .start(now, |_| -> io::Result<()> {
                panic!("nothing to connect to")
            })
            .expect_err("no address");
        assert_eq!(why, "name lookup failed: Name or service not known");

        let mut empty = Dial::from_lookup(Ok(Vec::new()), deadline);
        let why = empty.start(now, Ok).expect_err("no address");
        assert_eq!(why, "name lookup found no address");
    }
}
