//! Channel flow control (RFC 4254 section 5.2): the peer's window for our data
//! ([`SendWindow`]) and our window for the peer's data ([`RecvWindow`]), which draws
//! everything above a small floor from the connection's [`Budget`].
//!
//! Every number a peer controls is checked before it is counted: a window never passes
//! 2^32 - 1, no data is accepted beyond the window or over the maximum packet size, and
//! the bytes a channel holds for the application never exceed its window. A violation
//! comes back as a [`WindowError`], which converts into the [`Error`] that ends the
//! connection; nothing here panics.
//!
//! The caller owns the ordering: it asks [`SendWindow::next_chunk`] before writing
//! CHANNEL_DATA and reports what it wrote with [`SendWindow::consume`]; it reports received
//! data with [`RecvWindow::on_data`], hands it to the application, and reports what the
//! application read with [`RecvWindow::consumed`], which says when to send a
//! CHANNEL_WINDOW_ADJUST and for how much.

use core::fmt;
use std::time::{Duration, Instant};

use crate::connection::budget::{Budget, window_floor};
use crate::error::Error;
use crate::msg::DisconnectReason;

/// The largest maximum packet size accepted from a peer. RFC 4254 sets no limit, but no
/// packet comes near it (the transport takes at most 256 KiB), and refusing larger values
/// keeps a peer from announcing "no limit" to code that does arithmetic on the number.
pub const MAX_PACKET_LIMIT: u32 = 1 << 31;

/// Why a window operation failed. The first four are the peer's fault and end the
/// connection with PROTOCOL_ERROR (or, for [`WindowError::BadMaxPacket`] in a
/// CHANNEL_OPEN, refuse that channel); the last two are bugs in the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowError {
    /// A WINDOW_ADJUST would take the window past 2^32 - 1, which RFC 4254 section 5.2
    /// forbids.
    AdjustOverflow { window: u32, by: u32 },
    /// The peer sent more data than the window we advertised (RFC 4254 section 5.2).
    BeyondWindow { len: usize, window: u32 },
    /// One data message was longer than the maximum packet size we advertised.
    OverMaxPacket { len: usize, max_packet: u32 },
    /// A maximum packet size of 0 or over 2^31 in CHANNEL_OPEN or OPEN_CONFIRMATION.
    BadMaxPacket(u32),
    /// The caller wrote more than [`SendWindow::next_chunk`] allowed.
    SendTooMuch { len: usize, allowed: usize },
    /// A [`WindowConfig`] that cannot work.
    Config(&'static str),
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AdjustOverflow { window, by } => {
                write!(
                    f,
                    "window adjust of {by} on a window of {window} passes 2^32 - 1"
                )
            }
            Self::BeyondWindow { len, window } => {
                write!(
                    f,
                    "{len} bytes of channel data with {window} left in the window"
                )
            }
            Self::OverMaxPacket { len, max_packet } => write!(
                f,
                "{len} bytes of channel data in one message, over the maximum of {max_packet}"
            ),
            Self::BadMaxPacket(max) => write!(f, "maximum packet size {max} is not in 1..=2^31"),
            Self::SendTooMuch { len, allowed } => {
                write!(
                    f,
                    "wrote {len} bytes of channel data where {allowed} were allowed"
                )
            }
            Self::Config(what) => write!(f, "bad window configuration: {what}"),
        }
    }
}

impl std::error::Error for WindowError {}

impl From<WindowError> for Error {
    fn from(e: WindowError) -> Self {
        match e {
            WindowError::SendTooMuch { .. } => {
                Self::Misuse("channel data written beyond the peer's window")
            }
            WindowError::Config(what) => Self::Misuse(what),
            _ => Self::protocol(DisconnectReason::PROTOCOL_ERROR, e.to_string()),
        }
    }
}

/// Checks a maximum packet size from CHANNEL_OPEN or OPEN_CONFIRMATION (RFC 4254 section
/// 5.1). Zero would let no data through at all, and over [`MAX_PACKET_LIMIT`] is refused.
pub fn check_max_packet(max_packet: u32) -> Result<u32, WindowError> {
    if (1..=MAX_PACKET_LIMIT).contains(&max_packet) {
        Ok(max_packet)
    } else {
        Err(WindowError::BadMaxPacket(max_packet))
    }
}

/// A length as a `usize`, saturating on targets where `usize` is narrower than 32 bits.
fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Our side of a channel's flow control, chosen by the application.
///
/// The maximum packet size counts the data string of one CHANNEL_DATA or
/// CHANNEL_EXTENDED_DATA message, as OpenSSH counts it, not the whole packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowConfig {
    /// The window offered in CHANNEL_OPEN or OPEN_CONFIRMATION. 2 MiB by default; a
    /// channel carries at most one window per round trip, so that is about 170 Mbit/s
    /// over a 100 ms round trip before any growth.
    pub initial: u32,
    /// The most one channel's window grows to. 16 MiB by default. Set it equal to
    /// `initial` to turn growth off.
    pub max: u32,
    /// The longest data message the peer may send. 32768 by default, the payload every
    /// implementation must accept (RFC 4253 section 6.1).
    pub max_packet: u32,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            initial: 2 << 20,
            max: 16 << 20,
            max_packet: 32768,
        }
    }
}

impl WindowConfig {
    /// Refuses settings that would stall or break the channel.
    pub fn validate(&self) -> Result<(), WindowError> {
        // A window of 0 on our side would never open: adjusts follow consumption, and
        // nothing can arrive to be consumed.
        if self.initial == 0 {
            return Err(WindowError::Config("initial window of 0"));
        }
        if self.max < self.initial {
            return Err(WindowError::Config(
                "maximum window below the initial window",
            ));
        }
        check_max_packet(self.max_packet)
            .map(drop)
            .map_err(|_| WindowError::Config("maximum packet size not in 1..=2^31"))
    }
}

/// The peer's window for our data: how much we may still send on a channel, and in what
/// pieces (RFC 4254 section 5.2).
///
/// A window of 0 is legal: [`SendWindow::next_chunk`] returns 0 and the caller waits for
/// a WINDOW_ADJUST instead of polling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendWindow {
    window: u32,
    max_packet: u32,
}

impl SendWindow {
    /// From the initial window and maximum packet size the peer announced in its
    /// CHANNEL_OPEN or OPEN_CONFIRMATION. A bad maximum packet size is refused.
    pub fn new(initial: u32, max_packet: u32) -> Result<Self, WindowError> {
        Ok(Self {
            window: initial,
            max_packet: check_max_packet(max_packet)?,
        })
    }

    /// Bytes the peer still accepts before it must adjust the window.
    pub fn available(&self) -> u32 {
        self.window
    }

    /// The peer's maximum data per message.
    pub fn max_packet(&self) -> u32 {
        self.max_packet
    }

    /// How many of `want` bytes may go into the next data message: never more than the
    /// window or the peer's maximum packet size. The caller may further cap `want` by its
    /// own queue or the transport's packet size.
    pub fn next_chunk(&self, want: usize) -> usize {
        want.min(to_usize(self.window))
            .min(to_usize(self.max_packet))
    }

    /// Records `len` bytes sent in one data message. More than [`SendWindow::next_chunk`]
    /// allows is refused and changes nothing.
    pub fn consume(&mut self, len: usize) -> Result<(), WindowError> {
        let allowed = self.next_chunk(len);
        if len > allowed {
            return Err(WindowError::SendTooMuch { len, allowed });
        }
        // `len` is at most the window, so it fits and does not underflow it.
        let len = u32::try_from(len).map_err(|_| WindowError::SendTooMuch { len, allowed })?;
        self.window -= len;
        Ok(())
    }

    /// Applies a WINDOW_ADJUST. An adjust of 0 changes nothing; one that would take the
    /// window past 2^32 - 1 is an error and changes nothing (RFC 4254 section 5.2).
    pub fn adjust(&mut self, by: u32) -> Result<(), WindowError> {
        self.window = self
            .window
            .checked_add(by)
            .ok_or(WindowError::AdjustOverflow {
                window: self.window,
                by,
            })?;
        Ok(())
    }
}

// When adjusts go out
//
// Every WINDOW_ADJUST costs a packet and a wakeup at the peer, so giving back credit byte
// by byte wastes both; giving it back only once the whole window is read leaves the peer
// with nothing to send for a round trip every window. The middle way: an adjust goes out
// once the application has read half of the window target and that credit has not yet been
// returned. The peer then always holds about half a window of credit while the other half
// is in flight or being read, at a cost of two adjusts per window. The adjust returns only
// bytes the application read (plus any growth, below): data nobody reads keeps the window
// shut, and that is how backpressure crosses the tunnel.
//
// How the window grows
//
// A window lets a channel carry at most one window per round trip, however fast the link
// is. A window the size of the bandwidth-delay product keeps the link busy; more only
// holds memory. Neither is known in advance, so the window starts at
// `WindowConfig::initial` (or less, when the connection's `Budget` is short) and doubles
// each time it is seen holding the peer back:
//
// 1. Probe. When an adjust goes out, note the time and the byte count the peer could
//    reach without it. Data past that count can only have been sent once the peer had
//    this adjust (or a later one). One probe runs at a time.
// 2. Waiting. When the first data past the count arrives, look at what came before it.
//    If the peer's data ended exactly at the count, the last of it arrived after the
//    adjust went out, and then nothing came for at least an eighth of the time since the
//    adjust, the peer used up every byte of credit and sat idle until the adjust reached
//    it: the window is too small for the path. The time from the adjust to the data is
//    also a round-trip sample; the smallest is kept.
// 3. Growth. At the next adjust, if the application has caught up (at most a quarter of
//    the window waits to be read), the target doubles; the adjust carries the new credit.
// 4. Limits. Doubling stops at `WindowConfig::max`, and every byte above the channel's
//    floor, initial window included, comes from the connection's `Budget`, which may
//    grant less than asked, or nothing.
//
// Why look for the peer waiting, rather than compare the reading rate with the round-trip
// sample: the sample is close to the round trip only when the peer was waiting. A peer
// that still has credit when our adjust arrives sends straight on, and the sample is then
// the time it took to use up its old credit, which is also about the time a half window
// takes to arrive, so a bar counted in round trips would pass or fail on the noise between
// two equal numbers (and a bar of more than one round trip doubles every window to the
// maximum on a path that needs far less). A peer that sends without pause is not held back
// by the window, and the window stays as it is. The eighth lets growth go on while the
// peer idles a noticeable part of each round trip and stops it once the window nearly
// fills the path; doubling then lands between about one and two times the least window
// that never idles.
//
// The reader sets the pace as much as the network does: a reader slower than the link
// returns credit more slowly, and the window grows until the reader, not the window, is
// what the peer waits for. A reader that stalled with a full window and then read it all
// does not count: the peer's last data came before our adjust, not after it. Windows
// never shrink: credit already given cannot be taken back, and holding it back would look
// to the peer like a reader that stopped. A closed channel's grant, initial window and
// growth alike, goes back to the budget through `RecvWindow::release`.

/// A round-trip measurement in progress: the adjust sent at `sent_at` is known to have
/// reached the peer once more than `beyond` bytes in total have arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Probe {
    sent_at: Instant,
    beyond: u64,
}

/// Our window for the peer's data on one channel: checks what arrives, counts what the
/// application holds, and decides when to send WINDOW_ADJUST and for how much (RFC 4254
/// section 5.2). The window grows with the measured bandwidth-delay product; see the
/// comment above this type in the source.
///
/// At all times `window + buffered + unadvertised == target`, so the bytes held for the
/// application never exceed the window target; the transport adds at most the one packet
/// it is decoding. And `target - floor` is exactly what this window holds of the
/// connection's [`Budget`].
#[derive(Clone, Debug)]
pub struct RecvWindow {
    max_packet: u32,
    /// The part of the window that is not drawn from the budget (see
    /// [`crate::connection::budget::WINDOW_FLOOR`]).
    floor: u32,
    /// The window announced in CHANNEL_OPEN or OPEN_CONFIRMATION.
    initial: u32,
    max: u32,
    /// The window we keep offering: `floor` plus what the budget granted.
    target: u32,
    /// What the peer may still send, counting adjusts already sent.
    window: u32,
    /// Received, not yet read by the application.
    buffered: u32,
    /// Read by the application, not yet returned to the peer in an adjust.
    unadvertised: u32,
    /// All bytes received on the channel; only compared with probes.
    received: u64,
    probe: Option<Probe>,
    rtt: Option<Duration>,
    /// When the last data arrived.
    last_data: Option<Instant>,
    /// A probe saw the peer wait for credit since the last adjust (see the comment above).
    peer_waited: bool,
}

impl RecvWindow {
    /// A window for a channel we open or accept, offering `config.max_packet` and
    /// `config.initial` to the peer, or less when `budget` cannot grant all of it: never
    /// less than the floor, [`crate::connection::budget::window_floor`] of the initial
    /// window. Give the grant back with [`RecvWindow::release`] once the channel is gone.
    pub fn new(config: WindowConfig, budget: &mut Budget) -> Result<Self, WindowError> {
        config.validate()?;
        let floor = window_floor(config.initial);
        let initial = floor + budget.open(config.initial - floor);
        Ok(Self {
            max_packet: config.max_packet,
            floor,
            initial,
            max: config.max,
            target: initial,
            window: initial,
            buffered: 0,
            unadvertised: 0,
            received: 0,
            probe: None,
            rtt: None,
            last_data: None,
            peer_waited: false,
        })
    }

    /// The initial window to announce in CHANNEL_OPEN or OPEN_CONFIRMATION.
    pub fn initial(&self) -> u32 {
        self.initial
    }

    /// The part of the window that is the channel's own, outside the budget.
    pub fn floor(&self) -> u32 {
        self.floor
    }

    /// The maximum packet size to announce, and to hold the peer to.
    pub fn max_packet(&self) -> u32 {
        self.max_packet
    }

    /// What the peer may still send, counting adjusts we already sent.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// The window currently kept open; it only grows.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// Bytes received that the application has not read yet. Never above
    /// [`RecvWindow::target`].
    pub fn buffered(&self) -> u32 {
        self.buffered
    }

    /// The smallest round trip measured so far, if any.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Checks and counts one CHANNEL_DATA or CHANNEL_EXTENDED_DATA of `len` bytes; both
    /// draw on the same window (RFC 4254 section 5.2). Data over the maximum packet size
    /// or beyond the window is refused and changes nothing: the caller disconnects.
    pub fn on_data(&mut self, len: usize, now: Instant) -> Result<(), WindowError> {
        let too_long = WindowError::OverMaxPacket {
            len,
            max_packet: self.max_packet,
        };
        if len > to_usize(self.max_packet) {
            return Err(too_long);
        }
        // At most the maximum packet size, so at most 2^31: it fits.
        let n = u32::try_from(len).map_err(|_| too_long)?;
        if n > self.window {
            return Err(WindowError::BeyondWindow {
                len,
                window: self.window,
            });
        }

        // `window + buffered` stays equal to what it was, which is at most `target`.
        self.window -= n;
        self.buffered += n;
        let before = self.received;
        self.received = self.received.saturating_add(u64::from(n));
        if n == 0 {
            return Ok(());
        }

        // Data past the probe's count means the peer had the adjust: a round trip.
        if let Some(probe) = self.probe.filter(|p| self.received > p.beyond) {
            let sample = now.saturating_duration_since(probe.sent_at);
            self.rtt = Some(self.rtt.map_or(sample, |rtt| rtt.min(sample)));
            self.probe = None;
            // Whether the peer used up its credit after the adjust went out, then idled.
            if let Some(last) = self.last_data
                && before == probe.beyond
                && last >= probe.sent_at
                && now.saturating_duration_since(last).saturating_mul(8) >= sample
            {
                self.peer_waited = true;
            }
        }
        self.last_data = Some(now);
        Ok(())
    }

    /// The application read `len` more bytes. Returns the WINDOW_ADJUST to send, if one is
    /// due: once at least half the window target is read and not yet returned (see the
    /// comment above [`RecvWindow`]). The adjust returns exactly those bytes, plus whatever
    /// growth `budget` granted. Reading more than is buffered counts as reading what is
    /// buffered.
    pub fn consumed(&mut self, len: usize, now: Instant, budget: &mut Budget) -> Option<u32> {
        let len = u32::try_from(len).unwrap_or(u32::MAX).min(self.buffered);
        self.buffered -= len;
        self.unadvertised += len;
        if self.unadvertised == 0 || self.unadvertised < self.target / 2 {
            return None;
        }

        // The application keeps up, and the peer waited for credit: the window is what
        // holds the channel back.
        let caught_up = self.buffered <= self.target / 4;
        let grown = if core::mem::take(&mut self.peer_waited) && caught_up {
            self.grow(budget)
        } else {
            0
        };
        // Both parts come out of `target - window - buffered`, so the window stays within
        // the target and cannot overflow.
        let adjust = self.unadvertised + grown;
        if grown > 0 {
            // A probe running now would judge the window before this growth; the next
            // starts with the next adjust, once the peer is using the new credit.
            self.probe = None;
        } else if self.probe.is_none() {
            self.probe = Some(Probe {
                sent_at: now,
                beyond: self.received.saturating_add(u64::from(self.window)),
            });
        }
        self.window += adjust;
        self.unadvertised = 0;
        Some(adjust)
    }

    /// Doubles the target as far as the per-channel maximum and the budget allow.
    fn grow(&mut self, budget: &mut Budget) -> u32 {
        let room = self.max.saturating_sub(self.target);
        let granted = budget.grow(self.target - self.floor, self.target.min(room));
        self.target += granted;
        granted
    }

    /// Gives this channel's grant, initial window and growth, back to the budget once the
    /// channel is gone.
    pub fn release(self, budget: &mut Budget) {
        budget.close(self.target - self.floor);
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests need an origin for their clock"
)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;
    use crate::connection::budget::WINDOW_FLOOR;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A window opened on `budget`; with an initial window no larger than the floor, the
    /// budget then counts only its growth.
    fn recv_in(initial: u32, max: u32, max_packet: u32, budget: &mut Budget) -> RecvWindow {
        let config = WindowConfig {
            initial,
            max,
            max_packet,
        };
        RecvWindow::new(config, budget).unwrap()
    }

    /// A window on a budget of its own, for tests that never grow it.
    fn recv(initial: u32, max: u32, max_packet: u32) -> RecvWindow {
        recv_in(initial, max, max_packet, &mut Budget::new(u64::MAX))
    }

    /// Receives `len` bytes in messages of the maximum packet size.
    fn receive(w: &mut RecvWindow, mut len: usize, now: Instant) {
        while len > 0 {
            let n = len.min(w.max_packet() as usize);
            w.on_data(n, now).unwrap();
            len -= n;
        }
    }

    /// The sum the type keeps constant.
    fn assert_accounting(w: &RecvWindow) {
        assert_eq!(
            u64::from(w.window) + u64::from(w.buffered) + u64::from(w.unadvertised),
            u64::from(w.target)
        );
    }

    #[test]
    fn defaults() {
        let c = WindowConfig::default();
        assert_eq!(c.initial, 2 * 1024 * 1024);
        assert_eq!(c.max, 16 * 1024 * 1024);
        assert_eq!(c.max_packet, 32768);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn max_packet_of_zero_or_over_2_pow_31_is_refused() {
        assert_eq!(SendWindow::new(1000, 0), Err(WindowError::BadMaxPacket(0)));
        assert!(SendWindow::new(1000, 1).is_ok());
        assert!(SendWindow::new(1000, 1 << 31).is_ok());
        assert_eq!(
            SendWindow::new(1000, (1 << 31) + 1),
            Err(WindowError::BadMaxPacket((1 << 31) + 1))
        );
        assert_eq!(
            SendWindow::new(1000, u32::MAX),
            Err(WindowError::BadMaxPacket(u32::MAX))
        );
        assert_eq!(check_max_packet(32768), Ok(32768));
    }

    #[test]
    fn bad_configs_are_refused() {
        let good = WindowConfig::default();
        for bad in [
            WindowConfig { initial: 0, ..good },
            WindowConfig {
                max: good.initial - 1,
                ..good
            },
            WindowConfig {
                max_packet: 0,
                ..good
            },
            WindowConfig {
                max_packet: (1 << 31) + 1,
                ..good
            },
        ] {
            let mut budget = Budget::default();
            let w = RecvWindow::new(bad, &mut budget);
            assert!(matches!(w, Err(WindowError::Config(_))));
            assert_eq!(budget.used(), 0, "a refused window takes nothing");
        }
        let smallest = WindowConfig {
            initial: 1,
            max: 1,
            max_packet: 1,
        };
        assert!(RecvWindow::new(smallest, &mut Budget::new(0)).is_ok());
    }

    #[test]
    fn next_chunk_is_the_least_of_want_window_and_max_packet() {
        let w = SendWindow::new(5000, 1000).unwrap();
        assert_eq!(w.next_chunk(300), 300);
        assert_eq!(w.next_chunk(4000), 1000);
        let w = SendWindow::new(700, 1000).unwrap();
        assert_eq!(w.next_chunk(4000), 700);
        assert_eq!(w.next_chunk(0), 0);
        let w = SendWindow::new(u32::MAX, 1 << 31).unwrap();
        assert_eq!(w.next_chunk(usize::MAX), 1 << 31);
    }

    #[test]
    fn consume_takes_from_the_window_and_refuses_more_than_allowed() {
        let mut w = SendWindow::new(1500, 1000).unwrap();
        w.consume(1000).unwrap();
        assert_eq!(w.available(), 500);
        assert_eq!(
            w.consume(501),
            Err(WindowError::SendTooMuch {
                len: 501,
                allowed: 500
            })
        );
        assert_eq!(w.available(), 500);
        w.consume(500).unwrap();
        assert_eq!(w.available(), 0);

        // Over the maximum packet size, even with window to spare.
        let mut w = SendWindow::new(5000, 1000).unwrap();
        assert!(w.consume(1001).is_err());
        assert_eq!(w.available(), 5000);
    }

    #[test]
    fn initial_window_of_zero_waits_for_an_adjust() {
        let mut w = SendWindow::new(0, 32768).unwrap();
        // Nothing to send: the caller waits rather than asking again and again.
        assert_eq!(w.next_chunk(4096), 0);
        w.consume(0).unwrap();
        assert!(w.consume(1).is_err());
        w.adjust(10).unwrap();
        assert_eq!(w.next_chunk(4096), 10);
    }

    #[test]
    fn adjust_up_to_2_pow_32_minus_1_and_not_one_more() {
        let mut w = SendWindow::new(0, 32768).unwrap();
        w.adjust(u32::MAX).unwrap();
        assert_eq!(w.available(), u32::MAX);
        assert_eq!(
            w.adjust(1),
            Err(WindowError::AdjustOverflow {
                window: u32::MAX,
                by: 1
            })
        );
        assert_eq!(w.available(), u32::MAX);

        let mut w = SendWindow::new(u32::MAX - 5, 32768).unwrap();
        w.adjust(5).unwrap();
        assert_eq!(w.available(), u32::MAX);
        let mut w = SendWindow::new(u32::MAX - 5, 32768).unwrap();
        assert!(w.adjust(6).is_err());
        assert!(w.adjust(u32::MAX).is_err());
        assert_eq!(w.available(), u32::MAX - 5);
    }

    #[test]
    fn adjust_of_zero_does_nothing() {
        for start in [0, 1, 1000, u32::MAX] {
            let mut w = SendWindow::new(start, 32768).unwrap();
            let before = w;
            w.adjust(0).unwrap();
            assert_eq!(w, before);
        }
    }

    #[test]
    fn data_exactly_filling_the_window_is_accepted_one_byte_more_is_not() {
        let t0 = Instant::now();
        let mut w = recv(1000, 1000, 400);
        w.on_data(400, t0).unwrap();
        w.on_data(400, t0).unwrap();
        w.on_data(200, t0).unwrap();
        assert_eq!(w.window(), 0);
        assert_eq!(
            w.on_data(1, t0),
            Err(WindowError::BeyondWindow { len: 1, window: 0 })
        );

        let mut w = recv(1000, 1000, 400);
        w.on_data(400, t0).unwrap();
        w.on_data(400, t0).unwrap();
        assert_eq!(
            w.on_data(201, t0),
            Err(WindowError::BeyondWindow {
                len: 201,
                window: 200
            })
        );
        // A refused message changes nothing.
        assert_eq!(w.window(), 200);
        assert_eq!(w.buffered(), 800);
        w.on_data(0, t0).unwrap();
        assert_eq!(w.window(), 200);
    }

    #[test]
    fn data_of_exactly_max_packet_is_accepted_one_byte_more_is_not() {
        let t0 = Instant::now();
        let mut w = recv(100_000, 100_000, 32768);
        w.on_data(32768, t0).unwrap();
        assert_eq!(
            w.on_data(32769, t0),
            Err(WindowError::OverMaxPacket {
                len: 32769,
                max_packet: 32768
            })
        );
        assert!(w.on_data(usize::MAX, t0).is_err());
        assert_eq!(w.buffered(), 32768);
        assert_accounting(&w);
    }

    #[test]
    fn adjust_goes_out_once_half_the_window_is_read() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv(1000, 1000, 100);
        receive(&mut w, 1000, t0);
        assert_eq!(w.consumed(499, t0, &mut budget), None);
        assert_eq!(w.window(), 0);
        assert_eq!(w.consumed(1, t0, &mut budget), Some(500));
        assert_eq!(w.window(), 500);
        assert_eq!(w.buffered(), 500);
        assert_accounting(&w);

        // An odd target rounds the half down.
        let mut w = recv(1001, 1001, 100);
        receive(&mut w, 1001, t0);
        assert_eq!(w.consumed(499, t0, &mut budget), None);
        assert_eq!(w.consumed(1, t0, &mut budget), Some(500));

        // A target of one byte returns every byte.
        let mut w = recv(1, 1, 1);
        receive(&mut w, 1, t0);
        assert_eq!(w.consumed(0, t0, &mut budget), None);
        assert_eq!(w.consumed(1, t0, &mut budget), Some(1));
    }

    #[test]
    fn adjusts_return_only_what_was_read() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv(1000, 1000, 100);

        // Nothing read, nothing returned: the peer stays stopped.
        receive(&mut w, 1000, t0);
        assert_eq!(w.consumed(0, t0, &mut budget), None);
        assert_eq!(w.window(), 0);
        assert_eq!(w.buffered(), 1000);

        // Reading more than is buffered credits only what is buffered.
        let mut w = recv(1000, 1000, 100);
        receive(&mut w, 600, t0);
        assert_eq!(w.consumed(usize::MAX, t0, &mut budget), Some(600));
        assert_eq!(w.buffered(), 0);
        assert_eq!(w.window(), 1000);
        assert_eq!(w.consumed(5, t0, &mut budget), None);
        assert_eq!(w.window(), 1000);
        assert_accounting(&w);
    }

    #[test]
    fn held_bytes_never_exceed_the_window() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv(1000, 1000, 300);
        receive(&mut w, 1000, t0);
        assert_eq!(w.buffered(), 1000);
        assert!(w.on_data(1, t0).is_err());
        assert_eq!(w.consumed(700, t0, &mut budget), Some(700));
        receive(&mut w, 700, t0);
        assert!(w.on_data(1, t0).is_err());
        assert_eq!(w.buffered(), 1000);
        assert_accounting(&w);
    }

    /// One round at `now`: a peer that was waiting for credit sends all it may, and the
    /// application reads each message as it arrives. Returns the credit given back.
    fn round(w: &mut RecvWindow, now: Instant, budget: &mut Budget) -> Option<u32> {
        let mut credit = None;
        let mut left = w.window() as usize;
        while left > 0 {
            let n = left.min(w.max_packet() as usize);
            w.on_data(n, now).unwrap();
            left -= n;
            if let Some(by) = w.consumed(n, now, budget) {
                *credit.get_or_insert(0) += by;
            }
        }
        credit
    }

    #[test]
    fn window_doubles_when_the_peer_waits_for_credit() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv_in(1000, 8000, 100, &mut budget);

        // The peer sends its whole window; half of it is read, and an adjust goes out.
        receive(&mut w, 500, t0);
        assert_eq!(w.consumed(500, t0, &mut budget), Some(500));
        // The other half arrives after the adjust, and is read.
        receive(&mut w, 500, t0 + ms(1));
        assert_eq!(w.consumed(500, t0 + ms(1), &mut budget), Some(500));
        assert_eq!(w.rtt(), None);

        // Nothing more until byte 1001, 10 ms after the first adjust: the peer ran out of
        // credit and waited 9 ms for it, over an eighth of the 10 ms.
        receive(&mut w, 100, t0 + ms(10));
        assert_eq!(w.rtt(), Some(ms(10)));
        assert_eq!(w.target(), 1000, "growth waits for the next adjust");

        // The application keeps up: the next adjust doubles the target and carries the
        // new credit.
        assert_eq!(w.consumed(100, t0 + ms(10), &mut budget), None);
        receive(&mut w, 400, t0 + ms(10));
        assert_eq!(w.consumed(400, t0 + ms(10), &mut budget), Some(500 + 1000));
        assert_eq!(w.target(), 2000);
        assert_eq!(w.window(), 2000);
        assert_eq!(budget.used(), 1000);
        assert_accounting(&w);
    }

    #[test]
    fn a_short_wait_or_data_past_the_count_in_the_same_message_does_not_grow() {
        let t0 = Instant::now();
        let mut budget = Budget::default();

        // The peer idled 1 ms of the 10 since the adjust: under an eighth.
        let mut w = recv_in(1000, 8000, 100, &mut budget);
        receive(&mut w, 500, t0);
        assert_eq!(w.consumed(500, t0, &mut budget), Some(500));
        receive(&mut w, 500, t0 + ms(9));
        assert_eq!(w.consumed(500, t0 + ms(9), &mut budget), Some(500));
        receive(&mut w, 500, t0 + ms(10));
        assert_eq!(w.consumed(500, t0 + ms(10), &mut budget), Some(500));
        assert_eq!(w.target(), 1000);

        // One message runs from the old credit into the new: the peer never ran out.
        let mut w = recv_in(1000, 8000, 100, &mut budget);
        receive(&mut w, 500, t0);
        assert_eq!(w.consumed(500, t0, &mut budget), Some(500));
        receive(&mut w, 450, t0 + ms(1));
        receive(&mut w, 100, t0 + ms(10));
        assert_eq!(w.rtt(), Some(ms(10)));
        assert_eq!(w.consumed(550, t0 + ms(10), &mut budget), Some(550));
        assert_eq!(w.target(), 1000);
        assert_eq!(budget.used(), 0);
    }

    /// A peer that always has credit left sends without pause, so a round-trip sample is
    /// the time it took to use up the credit it had, about the time a half window takes
    /// to arrive. The window is not what limits it and must not grow: here 100 bytes
    /// arrive every millisecond for two seconds.
    #[test]
    fn a_peer_that_never_waits_for_credit_does_not_grow_the_window() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv_in(8000, 64_000, 100, &mut budget);
        let mut adjusts = 0;
        for i in 0..2000 {
            let now = t0 + ms(i);
            receive(&mut w, 100, now);
            adjusts += usize::from(w.consumed(100, now, &mut budget).is_some());
        }
        assert_eq!(adjusts, 50);
        assert_eq!(
            w.rtt(),
            Some(ms(41)),
            "the time to use up half a window, not a round trip"
        );
        assert_eq!(w.target(), 8000);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_reader_behind_the_data_does_not_grow_the_window() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv_in(1000, 8000, 100, &mut budget);
        // The peer fills the window at once and waits; the reader takes 30 ms per half
        // window, so every adjust goes out well after the data it answers came in.
        receive(&mut w, 1000, t0);
        for i in 1..20 {
            let now = t0 + ms(30 * i);
            assert_eq!(w.consumed(500, now, &mut budget), Some(500));
            receive(&mut w, 500, now + ms(10));
        }
        assert_eq!(w.rtt(), Some(ms(10)));
        assert_eq!(w.target(), 1000);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn no_growth_without_a_round_trip_sample() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv_in(1000, 8000, 100, &mut budget);
        receive(&mut w, 500, t0);
        assert_eq!(w.consumed(500, t0, &mut budget), Some(500));
        // 1000 bytes in all: still within what the peer had before the adjust.
        receive(&mut w, 500, t0 + ms(1));
        assert_eq!(w.rtt(), None);
        assert_eq!(w.consumed(500, t0 + ms(1), &mut budget), Some(500));
        assert_eq!(w.target(), 1000);
    }

    #[test]
    fn reading_a_backlog_after_a_stall_does_not_grow() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv_in(1000, 8000, 100, &mut budget);
        // The window fills and the application reads none of it until 100 ms, then all
        // of it at once: two adjusts in the same instant.
        receive(&mut w, 1000, t0);
        let mut adjusts = Vec::new();
        for _ in 0..10 {
            adjusts.extend(w.consumed(100, t0 + ms(100), &mut budget));
        }
        assert_eq!(adjusts, [500, 500]);
        // The peer was waiting, but for the reader: its last data came before the adjust.
        receive(&mut w, 1000, t0 + ms(110));
        assert_eq!(w.rtt(), Some(ms(10)));
        assert_eq!(w.consumed(1000, t0 + ms(110), &mut budget), Some(1000));
        assert_eq!(w.target(), 1000);
    }

    #[test]
    fn the_round_trip_is_the_smallest_sample() {
        let t0 = Instant::now();
        let mut budget = Budget::new(0);
        let mut w = recv_in(1000, 1000, 100, &mut budget);
        assert_eq!(round(&mut w, t0, &mut budget), Some(1000));
        assert_eq!(round(&mut w, t0 + ms(30), &mut budget), Some(1000));
        assert_eq!(w.rtt(), Some(ms(30)));
        assert_eq!(round(&mut w, t0 + ms(40), &mut budget), Some(1000));
        assert_eq!(w.rtt(), Some(ms(10)));
        assert_eq!(round(&mut w, t0 + ms(90), &mut budget), Some(1000));
        assert_eq!(w.rtt(), Some(ms(10)));
    }

    /// Rounds 10 ms apart on `w`, returning its target after each.
    fn targets(w: &mut RecvWindow, t0: Instant, rounds: u64, budget: &mut Budget) -> Vec<u32> {
        (0..rounds)
            .map(|i| {
                round(w, t0 + ms(10 * i), budget);
                w.target()
            })
            .collect()
    }

    #[test]
    fn growth_stops_at_the_channel_maximum() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv_in(1000, 3000, 100, &mut budget);
        // Doubling to 2000, then only the 1000 left below the maximum, then no more.
        assert_eq!(
            targets(&mut w, t0, 8, &mut budget),
            [1000, 2000, 2000, 3000, 3000, 3000, 3000, 3000]
        );
        assert_eq!(budget.used(), 2000);
        w.release(&mut budget);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn growth_is_held_by_the_connection_budget() {
        let t0 = Instant::now();
        let mut budget = Budget::new(1500);
        let mut a = recv_in(1000, 8000, 100, &mut budget);
        let mut b = recv_in(1000, 8000, 100, &mut budget);
        targets(&mut a, t0, 8, &mut budget);
        // `a` took its share of 750 of its request for 1000, and no more: the other
        // share stays free for `b`, which takes it.
        assert_eq!(a.target(), 1750);
        assert_eq!(budget.free(), 750);
        targets(&mut b, t0, 8, &mut budget);
        assert_eq!(b.target(), 1750);
        assert_eq!(budget.used(), 1500);

        // Closing `a` gives its growth back, and `b` takes it.
        a.release(&mut budget);
        assert_eq!(budget.used(), 750);
        targets(&mut b, t0 + ms(80), 4, &mut budget);
        assert_eq!(b.target(), 2500);
        assert_eq!(budget.free(), 0);
    }

    #[test]
    fn a_window_opened_on_a_spent_budget_starts_at_the_floor_and_grows_later() {
        let t0 = Instant::now();
        let config = WindowConfig {
            initial: 256 << 10,
            max: 1 << 20,
            max_packet: 32768,
        };
        let mut budget = Budget::new(224 << 10);
        let first = RecvWindow::new(config, &mut budget).unwrap();
        assert_eq!(first.initial(), 256 << 10);
        assert_eq!(budget.free(), 0);

        let mut w = RecvWindow::new(config, &mut budget).unwrap();
        assert_eq!(w.initial(), WINDOW_FLOOR);
        // Growth finds nothing to draw while the first channel holds the budget.
        targets(&mut w, t0, 4, &mut budget);
        assert_eq!(w.target(), WINDOW_FLOOR);
        assert!(w.rtt().is_some(), "it would have grown");

        // Once the first channel is gone, the window doubles from its floor until the
        // budget is spent.
        first.release(&mut budget);
        let grown = targets(&mut w, t0 + ms(40), 8, &mut budget);
        assert_eq!(
            grown.iter().map(|t| t >> 10).collect::<Vec<_>>(),
            [64, 64, 128, 128, 256, 256, 256, 256],
            "{grown:?}"
        );
        assert_eq!(budget.free(), 0);
        w.release(&mut budget);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn growth_off_when_max_equals_initial() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let mut w = recv_in(1000, 1000, 100, &mut budget);
        for i in 0..5 {
            assert_eq!(round(&mut w, t0 + ms(10 * i), &mut budget), Some(1000));
        }
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn errors_map_to_disconnects_or_misuse() {
        for peer in [
            WindowError::AdjustOverflow { window: 1, by: 2 },
            WindowError::BeyondWindow { len: 1, window: 0 },
            WindowError::OverMaxPacket {
                len: 2,
                max_packet: 1,
            },
            WindowError::BadMaxPacket(0),
        ] {
            assert_eq!(
                Error::from(peer).disconnect_reason(),
                DisconnectReason::PROTOCOL_ERROR
            );
        }
        for caller in [
            WindowError::SendTooMuch { len: 2, allowed: 1 },
            WindowError::Config("x"),
        ] {
            assert!(matches!(Error::from(caller), Error::Misuse(_)));
        }
    }

    /// One step of a channel between a well-behaved sender and our receiver, with
    /// messages in flight both ways.
    #[derive(Clone, Debug)]
    enum Step {
        /// The sender has this much to write and writes what its window allows.
        Send(usize),
        /// The oldest data message in flight arrives.
        DeliverData,
        /// The application reads up to this much.
        Read(usize),
        /// The oldest adjust in flight arrives.
        DeliverAdjust,
        /// Time passes, in milliseconds.
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0usize..6000).prop_map(Step::Send),
            Just(Step::DeliverData),
            (0usize..6000).prop_map(Step::Read),
            Just(Step::DeliverAdjust),
            (0u64..40).prop_map(Step::Wait),
        ]
    }

    struct Channel {
        send: SendWindow,
        recv: RecvWindow,
        budget: Budget,
        data: VecDeque<usize>,
        adjusts: VecDeque<u32>,
        now: Instant,
    }

    impl Channel {
        fn new(config: WindowConfig, budget: u64) -> Self {
            let mut budget = Budget::new(budget);
            let recv = RecvWindow::new(config, &mut budget).unwrap();
            Self {
                send: SendWindow::new(recv.initial(), recv.max_packet()).unwrap(),
                recv,
                budget,
                data: VecDeque::new(),
                adjusts: VecDeque::new(),
                now: Instant::now(),
            }
        }

        fn apply(&mut self, step: &Step) -> Result<(), TestCaseError> {
            match *step {
                Step::Send(want) => {
                    let n = self.send.next_chunk(want);
                    prop_assert!(n <= want);
                    prop_assert!(n <= self.send.available() as usize);
                    prop_assert!(n <= self.send.max_packet() as usize);
                    self.send.consume(n).unwrap();
                    if n > 0 {
                        self.data.push_back(n);
                    }
                }
                Step::DeliverData => {
                    if let Some(n) = self.data.pop_front() {
                        prop_assert_eq!(self.recv.on_data(n, self.now), Ok(()));
                    }
                }
                Step::Read(n) => {
                    let before = self.recv.target();
                    let buffered = self.recv.buffered();
                    let read = u32::try_from(n).unwrap_or(u32::MAX).min(buffered);
                    let unadvertised = self.recv.unadvertised;
                    if let Some(adjust) = self.recv.consumed(n, self.now, &mut self.budget) {
                        // Only what was read, plus growth.
                        let grown = self.recv.target() - before;
                        prop_assert_eq!(adjust, unadvertised + read + grown);
                        prop_assert!(adjust > 0);
                        self.adjusts.push_back(adjust);
                    } else {
                        prop_assert_eq!(self.recv.target(), before);
                    }
                }
                Step::DeliverAdjust => {
                    if let Some(by) = self.adjusts.pop_front() {
                        prop_assert_eq!(self.send.adjust(by), Ok(()));
                    }
                }
                Step::Wait(n) => self.now += ms(n),
            }
            self.check()
        }

        fn check(&self) -> Result<(), TestCaseError> {
            let r = &self.recv;
            prop_assert_eq!(
                u64::from(r.window) + u64::from(r.buffered) + u64::from(r.unadvertised),
                u64::from(r.target)
            );
            // Memory held for the application stays within the window.
            prop_assert!(r.buffered() <= r.target());
            prop_assert!(r.target() <= r.max);
            // What we advertised is exactly what the sender has, plus both directions in
            // flight.
            let in_flight: u64 = self.data.iter().map(|&n| n as u64).sum::<u64>()
                + self.adjusts.iter().map(|&n| u64::from(n)).sum::<u64>();
            prop_assert_eq!(
                u64::from(r.window()),
                u64::from(self.send.available()) + in_flight
            );
            prop_assert_eq!(self.budget.used(), u64::from(r.target() - r.floor()));
            prop_assert!(self.budget.used() <= self.budget.total());
            Ok(())
        }

        /// Delivers everything in flight and lets the application read everything.
        fn settle(&mut self) -> Result<(), TestCaseError> {
            while !self.data.is_empty() || !self.adjusts.is_empty() || self.recv.buffered() > 0 {
                self.apply(&Step::DeliverData)?;
                self.apply(&Step::Read(usize::MAX))?;
                self.apply(&Step::DeliverAdjust)?;
            }
            Ok(())
        }
    }

    fn config() -> impl Strategy<Value = WindowConfig> {
        (1u32..5000, 0u32..20_000, 1u32..3000).prop_map(|(initial, extra, max_packet)| {
            WindowConfig {
                initial,
                max: initial + extra,
                max_packet,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_channel_never_overflows_overruns_or_deadlocks(
            config in config(),
            budget in 0u64..30_000,
            steps in proptest::collection::vec(step(), 0..200),
        ) {
            let mut ch = Channel::new(config, budget);
            for step in &steps {
                ch.apply(step)?;
            }

            // Once everything in flight has arrived and the application has read it all,
            // the sender can send again, and keeps being able to.
            ch.settle()?;
            for _ in 0..8 {
                let n = ch.send.next_chunk(usize::MAX);
                prop_assert!(n > 0);
                ch.apply(&Step::Send(n))?;
                ch.apply(&Step::Wait(1))?;
                ch.settle()?;
            }
        }

        #[test]
        fn a_hostile_peer_is_caught_exactly(
            config in config(),
            initial in any::<u32>(),
            events in proptest::collection::vec(
                prop_oneof![
                    prop_oneof![0usize..4000, any::<usize>(), Just(usize::MAX)]
                        .prop_map(|n| (0u8, n as u64)),
                    (0usize..4000).prop_map(|n| (1u8, n as u64)),
                    prop_oneof![0u32..4000, any::<u32>(), Just(u32::MAX), Just(0)]
                        .prop_map(|n| (2u8, u64::from(n))),
                ],
                0..100,
            ),
        ) {
            let t0 = Instant::now();
            let mut budget = Budget::default();
            let mut recv = RecvWindow::new(config, &mut budget).unwrap();
            let mut send = SendWindow::new(initial, config.max_packet).unwrap();
            let mut send_model = u64::from(initial);

            for (kind, n) in events {
                match kind {
                    0 => {
                        let len = n as usize;
                        let window = recv.window();
                        let buffered = recv.buffered();
                        let ok = len <= config.max_packet as usize
                            && len as u64 <= u64::from(window);
                        let result = recv.on_data(len, t0);
                        prop_assert_eq!(result.is_ok(), ok);
                        if !ok {
                            prop_assert_eq!(recv.window(), window);
                            prop_assert_eq!(recv.buffered(), buffered);
                        }
                    }
                    1 => {
                        recv.consumed(n as usize, t0, &mut budget);
                    }
                    _ => {
                        let by = n as u32;
                        let ok = send_model + u64::from(by) <= u64::from(u32::MAX);
                        prop_assert_eq!(send.adjust(by).is_ok(), ok);
                        if ok {
                            send_model += u64::from(by);
                        }
                        prop_assert_eq!(u64::from(send.available()), send_model);
                    }
                }
                prop_assert!(recv.buffered() <= recv.target());
                let held = u64::from(recv.buffered) + u64::from(recv.unadvertised);
                prop_assert_eq!(u64::from(recv.window) + held, u64::from(recv.target));
            }
        }
    }
}
