//! The lifecycle of one channel (RFC 4254 sections 5.1 and 5.3), apart from its data:
//! opening, open, then EOF and CLOSE in each direction.
//!
//! A channel starts in one of two opening states. [`Lifecycle::opening`] is a channel we
//! asked for with CHANNEL_OPEN; it waits for OPEN_CONFIRMATION or OPEN_FAILURE.
//! [`Lifecycle::peer_opening`] is a channel the peer asked for; it waits for the
//! application to [`accept`](Lifecycle::accept) or [`reject`](Lifecycle::reject) it. Once
//! open, EOF and CLOSE are tracked for each direction on their own, because RFC 4254
//! section 5.3 lets data flow one way after EOF went the other way.
//!
//! A channel is finished, and its local id may be reused, only when CLOSE was both sent
//! and received (section 5.3), or when the open failed. Every event returns a
//! [`Result`]: a [`LifecycleError`] says whether the peer broke the protocol (disconnect)
//! or the caller misused the API. Nothing here panics, and nothing depends on a value the
//! peer chose beyond which message it sent.

use core::fmt;

use crate::error::Error;
use crate::msg::DisconnectReason;

/// Where a channel is in its opening handshake (RFC 4254 section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// We sent CHANNEL_OPEN and wait for OPEN_CONFIRMATION or OPEN_FAILURE.
    Opening,
    /// The peer sent CHANNEL_OPEN and the application has not decided yet.
    PeerOpening,
    /// The open succeeded; see the EOF and CLOSE flags for what is left of it.
    Open,
    /// The open failed or was rejected: the channel never existed for the peer, and its
    /// id is free at once.
    Refused,
}

/// What the caller must do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to send.
    None,
    /// Send CHANNEL_OPEN_CONFIRMATION for a channel the peer opened.
    SendConfirmation,
    /// Send CHANNEL_OPEN_FAILURE for a channel the peer opened; the channel is finished.
    SendOpenFailure,
    /// Send CHANNEL_EOF.
    SendEof,
    /// Send CHANNEL_CLOSE. If the peer's CLOSE already arrived, the channel is finished
    /// once this is written.
    SendClose,
    /// The channel is finished and nothing is left to send: release its id.
    Release,
}

/// What to do with a message the peer may legitimately send on this channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Handle it.
    Process,
    /// Drop it without a word: we sent CLOSE and the peer sent this before it saw ours,
    /// which RFC 4254 section 5.3 allows.
    Ignore,
}

/// An event that the lifecycle does not allow.
///
/// The variants up to [`LifecycleError::CloseTwice`] are the peer's fault and end the
/// connection with PROTOCOL_ERROR; the rest are bugs in the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleError {
    /// OPEN_CONFIRMATION for a channel that is not waiting for one.
    ConfirmationNotOpening(Phase),
    /// OPEN_FAILURE for a channel that is not waiting for an answer.
    OpenFailureNotOpening(Phase),
    /// A channel message (named here) for a channel whose open has not completed: the
    /// peer cannot know the id yet, or has not confirmed the channel.
    NotOpen(&'static str),
    /// CHANNEL_DATA or EXTENDED_DATA after the peer's EOF (RFC 4254 section 5.3).
    DataAfterEof,
    /// A channel message (named here) after the peer's own CLOSE.
    AfterClose(&'static str),
    /// A second CLOSE from the peer.
    CloseTwice,
    /// The caller tried to send EOF twice.
    EofAlreadySent,
    /// The caller tried to send CLOSE twice.
    CloseAlreadySent,
    /// The caller tried to send EOF after CLOSE.
    EofAfterClose,
    /// The caller tried to send EOF or CLOSE on a channel that is not open: wait for the
    /// confirmation, or use [`Lifecycle::reject`].
    SendBeforeOpen(Phase),
    /// The caller accepted or rejected a channel the peer did not open, or decided twice.
    NotPeerOpening(Phase),
}

impl LifecycleError {
    /// Whether the peer broke the protocol, as opposed to the caller misusing the API.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            Self::ConfirmationNotOpening(_)
                | Self::OpenFailureNotOpening(_)
                | Self::NotOpen(_)
                | Self::DataAfterEof
                | Self::AfterClose(_)
                | Self::CloseTwice
        )
    }
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConfirmationNotOpening(p) => {
                write!(f, "open confirmation for a channel in phase {p:?}")
            }
            Self::OpenFailureNotOpening(p) => {
                write!(f, "open failure for a channel in phase {p:?}")
            }
            Self::NotOpen(msg) => write!(f, "{msg} for a channel that is not open"),
            Self::DataAfterEof => f.write_str("channel data after the peer's EOF"),
            Self::AfterClose(msg) => write!(f, "{msg} after the peer's CLOSE"),
            Self::CloseTwice => f.write_str("CLOSE received twice for one channel"),
            Self::EofAlreadySent => f.write_str("EOF already sent on this channel"),
            Self::CloseAlreadySent => f.write_str("CLOSE already sent on this channel"),
            Self::EofAfterClose => f.write_str("EOF after CLOSE on this channel"),
            Self::SendBeforeOpen(p) => {
                write!(f, "EOF or CLOSE on a channel in phase {p:?}")
            }
            Self::NotPeerOpening(p) => {
                write!(f, "accept or reject for a channel in phase {p:?}")
            }
        }
    }
}

impl std::error::Error for LifecycleError {}

impl From<LifecycleError> for Error {
    fn from(e: LifecycleError) -> Self {
        if e.is_peer_fault() {
            return Self::protocol(DisconnectReason::PROTOCOL_ERROR, e.to_string());
        }
        Self::Misuse(match e {
            LifecycleError::EofAlreadySent => "channel EOF sent twice",
            LifecycleError::CloseAlreadySent => "channel CLOSE sent twice",
            LifecycleError::EofAfterClose => "channel EOF sent after CLOSE",
            LifecycleError::SendBeforeOpen(_) => "channel EOF or CLOSE before the channel opened",
            _ => "channel accepted or rejected when the peer was not opening it",
        })
    }
}

/// The state of one channel, without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    phase: Phase,
    eof_sent: bool,
    eof_received: bool,
    close_sent: bool,
    close_received: bool,
}

impl Lifecycle {
    fn new(phase: Phase) -> Self {
        Self {
            phase,
            eof_sent: false,
            eof_received: false,
            close_sent: false,
            close_received: false,
        }
    }

    /// A channel we asked for: CHANNEL_OPEN is (about to be) sent.
    pub fn opening() -> Self {
        Self::new(Phase::Opening)
    }

    /// A channel the peer asked for, waiting for the application's decision.
    pub fn peer_opening() -> Self {
        Self::new(Phase::PeerOpening)
    }

    /// Where the opening handshake stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether we sent EOF.
    pub fn eof_sent(&self) -> bool {
        self.eof_sent
    }

    /// Whether the peer sent EOF.
    pub fn eof_received(&self) -> bool {
        self.eof_received
    }

    /// Whether we sent CLOSE.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether the peer sent CLOSE.
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Whether we sent CLOSE and wait for the peer's: messages the peer sent before it
    /// saw ours are still in flight and are dropped.
    pub fn is_closing(&self) -> bool {
        self.close_sent && !self.close_received
    }

    /// Whether the channel is over for both sides, so its local id may be reused: CLOSE
    /// was both sent and received (RFC 4254 section 5.3), or the open failed.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Refused || (self.close_sent && self.close_received)
    }

    /// Whether we may send CHANNEL_DATA or EXTENDED_DATA: the channel is open and we have
    /// sent neither EOF nor CLOSE (RFC 4254 section 5.3).
    pub fn may_send_data(&self) -> bool {
        self.phase == Phase::Open && !self.eof_sent && !self.close_sent
    }

    /// What to do with CHANNEL_DATA or EXTENDED_DATA from the peer.
    ///
    /// Data after the peer's EOF is a protocol error: EOF promises that no more data
    /// comes (RFC 4254 section 5.3), and handing bytes to the application after it saw
    /// end of stream would corrupt what it reads. Data the peer sent before it saw our
    /// CLOSE is dropped, since nobody will read it.
    pub fn may_receive_data(&self) -> Result<Disposition, LifecycleError> {
        self.check_peer_may_send("channel data")?;
        if self.eof_received {
            return Err(LifecycleError::DataAfterEof);
        }
        Ok(self.in_flight_disposition())
    }

    /// What to do with CHANNEL_WINDOW_ADJUST from the peer. An adjust for a closing
    /// channel is ignored: it was in flight when our CLOSE left, and no data will be sent
    /// to use it.
    pub fn accepts_window_adjust(&self) -> Result<Disposition, LifecycleError> {
        self.check_peer_may_send("window adjust")?;
        Ok(self.in_flight_disposition())
    }

    /// The peer confirmed a channel we opened (RFC 4254 section 5.1). Valid only while
    /// [`Phase::Opening`]: a confirmation for any other channel is a protocol error.
    pub fn on_confirmation(&mut self) -> Result<Action, LifecycleError> {
        if self.phase != Phase::Opening {
            return Err(LifecycleError::ConfirmationNotOpening(self.phase));
        }
        self.phase = Phase::Open;
        Ok(Action::None)
    }

    /// The peer refused a channel we opened (RFC 4254 section 5.1). The channel never
    /// existed for the peer, so it is finished at once and its id is free.
    pub fn on_open_failure(&mut self) -> Result<Action, LifecycleError> {
        if self.phase != Phase::Opening {
            return Err(LifecycleError::OpenFailureNotOpening(self.phase));
        }
        self.phase = Phase::Refused;
        Ok(Action::Release)
    }

    /// The application accepts a channel the peer opened.
    pub fn accept(&mut self) -> Result<Action, LifecycleError> {
        if self.phase != Phase::PeerOpening {
            return Err(LifecycleError::NotPeerOpening(self.phase));
        }
        self.phase = Phase::Open;
        Ok(Action::SendConfirmation)
    }

    /// The application refuses a channel the peer opened. The peer never learns our id,
    /// so the channel is finished at once.
    pub fn reject(&mut self) -> Result<Action, LifecycleError> {
        if self.phase != Phase::PeerOpening {
            return Err(LifecycleError::NotPeerOpening(self.phase));
        }
        self.phase = Phase::Refused;
        Ok(Action::SendOpenFailure)
    }

    /// The peer sent EOF: it will send no more data, though it may still send requests
    /// and CLOSE (RFC 4254 section 5.3).
    ///
    /// A second EOF is ignored: the RFC does not forbid it, it carries nothing, and the
    /// data rule already holds from the first one. An EOF that crossed our CLOSE is
    /// ignored too.
    pub fn on_eof_received(&mut self) -> Result<Action, LifecycleError> {
        self.check_peer_may_send("EOF")?;
        if self.in_flight_disposition() == Disposition::Process {
            self.eof_received = true;
        }
        Ok(Action::None)
    }

    /// The peer sent CLOSE. RFC 4254 section 5.3: a party that receives CLOSE must send
    /// back CLOSE unless it already did, so this answers [`Action::SendClose`] and counts
    /// our CLOSE as sent; the caller must write it. Either way the channel is finished.
    ///
    /// A second CLOSE from the peer is a protocol error that ends the connection, not
    /// something to ignore. After the first CLOSE the channel is finished on both sides
    /// and section 5.3 lets the id be reused at once, so a repeated CLOSE cannot be told
    /// apart from a CLOSE aimed at a newer channel with the same id; acting on it, or
    /// silently dropping it, would let a confused peer close or desynchronise an
    /// unrelated channel. OpenSSH also treats a repeated CLOSE as fatal.
    pub fn on_close_received(&mut self) -> Result<Action, LifecycleError> {
        match self.phase {
            Phase::Open => {}
            Phase::Opening | Phase::PeerOpening | Phase::Refused => {
                return Err(LifecycleError::NotOpen("CLOSE"));
            }
        }
        if self.close_received {
            return Err(LifecycleError::CloseTwice);
        }
        self.close_received = true;
        if self.close_sent {
            return Ok(Action::Release);
        }
        self.close_sent = true;
        Ok(Action::SendClose)
    }

    /// The application ends its data stream on this channel. No data may be sent after
    /// it; the peer may still send (RFC 4254 section 5.3).
    pub fn send_eof(&mut self) -> Result<Action, LifecycleError> {
        self.check_we_may_send()?;
        if self.close_sent {
            return Err(LifecycleError::EofAfterClose);
        }
        if self.eof_sent {
            return Err(LifecycleError::EofAlreadySent);
        }
        self.eof_sent = true;
        Ok(Action::SendEof)
    }

    /// The application closes the channel. RFC 4254 section 5.3 allows CLOSE without EOF
    /// first. The channel is finished when the peer's CLOSE arrives.
    pub fn send_close(&mut self) -> Result<Action, LifecycleError> {
        self.check_we_may_send()?;
        if self.close_sent {
            return Err(LifecycleError::CloseAlreadySent);
        }
        self.close_sent = true;
        Ok(Action::SendClose)
    }

    /// Checks that the peer may send a channel message (named `what`) at all: the channel
    /// is open and the peer has not closed it.
    fn check_peer_may_send(&self, what: &'static str) -> Result<(), LifecycleError> {
        if self.phase != Phase::Open {
            return Err(LifecycleError::NotOpen(what));
        }
        if self.close_received {
            return Err(LifecycleError::AfterClose(what));
        }
        Ok(())
    }

    /// Checks that we may send EOF or CLOSE: only on an open channel, since before the
    /// confirmation we do not know the peer's id to address it.
    fn check_we_may_send(&self) -> Result<(), LifecycleError> {
        if self.phase != Phase::Open {
            return Err(LifecycleError::SendBeforeOpen(self.phase));
        }
        Ok(())
    }

    /// Messages from the peer that crossed our CLOSE are dropped; others are handled.
    fn in_flight_disposition(&self) -> Disposition {
        if self.close_sent {
            Disposition::Ignore
        } else {
            Disposition::Process
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Lifecycle {
        let mut l = Lifecycle::opening();
        assert_eq!(l.on_confirmation(), Ok(Action::None));
        l
    }

    fn peer_open() -> Lifecycle {
        let mut l = Lifecycle::peer_opening();
        assert_eq!(l.accept(), Ok(Action::SendConfirmation));
        l
    }

    #[test]
    fn opening_waits_for_an_answer() {
        let l = Lifecycle::opening();
        assert_eq!(l.phase(), Phase::Opening);
        assert!(!l.is_finished());
        assert!(!l.may_send_data());
        assert_eq!(
            l.may_receive_data(),
            Err(LifecycleError::NotOpen("channel data"))
        );
        assert_eq!(
            l.accepts_window_adjust(),
            Err(LifecycleError::NotOpen("window adjust"))
        );
    }

    #[test]
    fn confirmation_opens() {
        let l = open();
        assert_eq!(l.phase(), Phase::Open);
        assert!(l.may_send_data());
        assert_eq!(l.may_receive_data(), Ok(Disposition::Process));
        assert_eq!(l.accepts_window_adjust(), Ok(Disposition::Process));
        assert!(!l.is_finished());
        assert!(!l.is_closing());
    }

    #[test]
    fn confirmation_for_a_channel_not_opening_is_a_protocol_error() {
        let mut l = open();
        let e = l.on_confirmation().unwrap_err();
        assert_eq!(e, LifecycleError::ConfirmationNotOpening(Phase::Open));
        assert!(e.is_peer_fault());
        assert!(matches!(Error::from(e), Error::Protocol { .. }));

        let mut l = Lifecycle::peer_opening();
        assert_eq!(
            l.on_confirmation(),
            Err(LifecycleError::ConfirmationNotOpening(Phase::PeerOpening))
        );
        assert_eq!(l.phase(), Phase::PeerOpening);

        let mut l = Lifecycle::opening();
        l.on_open_failure().unwrap();
        assert_eq!(
            l.on_confirmation(),
            Err(LifecycleError::ConfirmationNotOpening(Phase::Refused))
        );
    }

    #[test]
    fn open_failure_finishes_at_once() {
        let mut l = Lifecycle::opening();
        assert_eq!(l.on_open_failure(), Ok(Action::Release));
        assert_eq!(l.phase(), Phase::Refused);
        assert!(l.is_finished());
        assert!(!l.may_send_data());
    }

    #[test]
    fn open_failure_only_while_opening() {
        let mut l = open();
        assert_eq!(
            l.on_open_failure(),
            Err(LifecycleError::OpenFailureNotOpening(Phase::Open))
        );
        assert!(!l.is_finished());

        let mut l = Lifecycle::peer_opening();
        let e = l.on_open_failure().unwrap_err();
        assert_eq!(e, LifecycleError::OpenFailureNotOpening(Phase::PeerOpening));
        assert!(e.is_peer_fault());
    }

    #[test]
    fn peer_opening_accept_and_reject() {
        let l = peer_open();
        assert_eq!(l.phase(), Phase::Open);
        assert!(l.may_send_data());

        let mut l = Lifecycle::peer_opening();
        assert_eq!(l.reject(), Ok(Action::SendOpenFailure));
        assert!(l.is_finished());
    }

    #[test]
    fn deciding_twice_or_on_our_own_channel_is_misuse() {
        let mut l = peer_open();
        let e = l.accept().unwrap_err();
        assert_eq!(e, LifecycleError::NotPeerOpening(Phase::Open));
        assert!(!e.is_peer_fault());
        assert!(matches!(Error::from(e), Error::Misuse(_)));
        assert_eq!(l.reject(), Err(LifecycleError::NotPeerOpening(Phase::Open)));

        let mut l = Lifecycle::opening();
        assert_eq!(
            l.accept(),
            Err(LifecycleError::NotPeerOpening(Phase::Opening))
        );
        assert_eq!(
            l.reject(),
            Err(LifecycleError::NotPeerOpening(Phase::Opening))
        );
    }

    #[test]
    fn peer_messages_before_open_are_protocol_errors() {
        for mut l in [Lifecycle::opening(), Lifecycle::peer_opening()] {
            assert_eq!(l.on_eof_received(), Err(LifecycleError::NotOpen("EOF")));
            assert_eq!(l.on_close_received(), Err(LifecycleError::NotOpen("CLOSE")));
            assert!(!l.eof_received() && !l.close_received());
        }
    }

    #[test]
    fn sending_before_open_is_misuse() {
        for mut l in [Lifecycle::opening(), Lifecycle::peer_opening()] {
            let phase = l.phase();
            assert_eq!(l.send_eof(), Err(LifecycleError::SendBeforeOpen(phase)));
            assert_eq!(l.send_close(), Err(LifecycleError::SendBeforeOpen(phase)));
            assert!(!l.eof_sent() && !l.close_sent());
        }
    }

    #[test]
    fn eof_received_forbids_more_data_but_not_sending() {
        let mut l = open();
        assert_eq!(l.on_eof_received(), Ok(Action::None));
        assert!(l.eof_received());
        let e = l.may_receive_data().unwrap_err();
        assert_eq!(e, LifecycleError::DataAfterEof);
        assert!(e.is_peer_fault());

        // The other direction stays open (RFC 4254 section 5.3).
        assert!(l.may_send_data());
        assert_eq!(l.accepts_window_adjust(), Ok(Disposition::Process));
        assert!(!l.is_finished());
    }

    #[test]
    fn a_second_eof_is_ignored() {
        let mut l = open();
        l.on_eof_received().unwrap();
        assert_eq!(l.on_eof_received(), Ok(Action::None));
        assert!(l.eof_received());
    }

    #[test]
    fn send_eof_stops_our_data_only() {
        let mut l = open();
        assert_eq!(l.send_eof(), Ok(Action::SendEof));
        assert!(l.eof_sent());
        assert!(!l.may_send_data());
        assert_eq!(l.may_receive_data(), Ok(Disposition::Process));
        assert_eq!(l.accepts_window_adjust(), Ok(Disposition::Process));
    }

    #[test]
    fn send_eof_twice_or_after_close_is_misuse() {
        let mut l = open();
        l.send_eof().unwrap();
        let e = l.send_eof().unwrap_err();
        assert_eq!(e, LifecycleError::EofAlreadySent);
        assert!(matches!(Error::from(e), Error::Misuse(_)));

        let mut l = open();
        l.send_close().unwrap();
        assert_eq!(l.send_eof(), Err(LifecycleError::EofAfterClose));
        assert!(!l.eof_sent());
    }

    #[test]
    fn send_close_twice_is_misuse() {
        let mut l = open();
        assert_eq!(l.send_close(), Ok(Action::SendClose));
        assert_eq!(l.send_close(), Err(LifecycleError::CloseAlreadySent));
    }

    #[test]
    fn we_close_first_then_the_peer_answers() {
        let mut l = open();
        l.send_close().unwrap();
        assert!(l.is_closing());
        assert!(!l.is_finished());
        assert!(!l.may_send_data());

        assert_eq!(l.on_close_received(), Ok(Action::Release));
        assert!(l.is_finished());
        assert!(!l.is_closing());
    }

    #[test]
    fn peer_closes_first_and_we_answer() {
        let mut l = open();
        assert_eq!(l.on_close_received(), Ok(Action::SendClose));
        assert!(l.close_sent() && l.close_received());
        assert!(l.is_finished());
        assert!(!l.may_send_data());
        // Our CLOSE went out with the answer; sending another is misuse.
        assert_eq!(l.send_close(), Err(LifecycleError::CloseAlreadySent));
    }

    #[test]
    fn close_without_eof_and_after_eof_both_ways() {
        let mut l = peer_open();
        l.send_eof().unwrap();
        l.on_eof_received().unwrap();
        assert_eq!(l.send_close(), Ok(Action::SendClose));
        assert_eq!(l.on_close_received(), Ok(Action::Release));
        assert!(l.is_finished());
    }

    #[test]
    fn close_twice_is_a_protocol_error() {
        let mut l = open();
        l.on_close_received().unwrap();
        let e = l.on_close_received().unwrap_err();
        assert_eq!(e, LifecycleError::CloseTwice);
        assert!(e.is_peer_fault());
        assert!(matches!(
            Error::from(e),
            Error::Protocol {
                reason: DisconnectReason::PROTOCOL_ERROR,
                ..
            }
        ));

        let mut l = open();
        l.send_close().unwrap();
        l.on_close_received().unwrap();
        assert_eq!(l.on_close_received(), Err(LifecycleError::CloseTwice));
    }

    #[test]
    fn data_and_messages_after_the_peers_close_are_protocol_errors() {
        let mut l = open();
        l.on_close_received().unwrap();
        assert_eq!(
            l.may_receive_data(),
            Err(LifecycleError::AfterClose("channel data"))
        );
        assert_eq!(
            l.accepts_window_adjust(),
            Err(LifecycleError::AfterClose("window adjust"))
        );
        assert_eq!(l.on_eof_received(), Err(LifecycleError::AfterClose("EOF")));
    }

    #[test]
    fn messages_crossing_our_close_are_ignored() {
        let mut l = open();
        l.send_close().unwrap();
        assert_eq!(l.may_receive_data(), Ok(Disposition::Ignore));
        assert_eq!(l.accepts_window_adjust(), Ok(Disposition::Ignore));
        assert_eq!(l.on_eof_received(), Ok(Action::None));
        assert!(!l.eof_received());
    }

    #[test]
    fn data_after_eof_is_an_error_even_while_closing() {
        let mut l = open();
        l.on_eof_received().unwrap();
        l.send_close().unwrap();
        assert_eq!(l.may_receive_data(), Err(LifecycleError::DataAfterEof));
    }

    #[test]
    fn errors_display_without_panicking() {
        let all = [
            LifecycleError::ConfirmationNotOpening(Phase::Open),
            LifecycleError::OpenFailureNotOpening(Phase::Refused),
            LifecycleError::NotOpen("EOF"),
            LifecycleError::DataAfterEof,
            LifecycleError::AfterClose("EOF"),
            LifecycleError::CloseTwice,
            LifecycleError::EofAlreadySent,
            LifecycleError::CloseAlreadySent,
            LifecycleError::EofAfterClose,
            LifecycleError::SendBeforeOpen(Phase::Opening),
            LifecycleError::NotPeerOpening(Phase::Open),
        ];
        for e in all {
            assert!(!e.to_string().is_empty());
            let mapped = Error::from(e);
            assert_eq!(e.is_peer_fault(), matches!(mapped, Error::Protocol { .. }));
        }
    }
}
