//! The per-connection channel table: local channel ids, a cap on live channels, and the
//! [`Lifecycle`] of each channel next to whatever the connection layer keeps for it.
//!
//! Local ids are small integers, the index of a slot, so a lookup is one bounds check.
//! The lowest free id is handed out first, and an id becomes free only when its channel
//! is finished: CLOSE both sent and received, or the open refused (RFC 4254 section 5.3).
//! Every event that finishes a channel goes through the table, which frees the slot
//! there and then and hands the payload back, so no finished channel lingers.
//!
//! A peer can open channels but cannot make the table grow without bound: at most
//! [`Table::limit`] channels live at once (16,384 by default), and opening past it gives
//! [`TableError::Full`], which the caller answers with OPEN_FAILURE and
//! RESOURCE_SHORTAGE (RFC 4254 section 5.1). Trailing free slots are dropped, so once the
//! channels finish, the table shrinks back to where it started.
//!
//! A lookup tells an id that names no channel (the peer's fault: disconnect) from a
//! channel that is closing (messages that crossed our CLOSE: ignore). The first can only
//! come from a confused or hostile peer; the second is ordinary, since the peer may send
//! before it sees our CLOSE.

use core::fmt;
use std::collections::BTreeSet;

use crate::connection::lifecycle::{Action, Disposition, Lifecycle, LifecycleError};
use crate::error::Error;
use crate::msg::DisconnectReason;

/// The default cap on live channels per connection. Chosen to be far above what sessions
/// and forwards use (a thousand channels on one connection is already a heavy load), while
/// bounding what a peer that opens channels and never closes them can make us hold.
pub const DEFAULT_MAX_CHANNELS: u32 = 16_384;

/// Why a table operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The cap on live channels is reached. For a CHANNEL_OPEN from the peer, answer
    /// OPEN_FAILURE with RESOURCE_SHORTAGE (RFC 4254 section 5.1) and carry on.
    Full { limit: u32 },
    /// The peer named a local id that has no channel: never allocated, or already
    /// finished. A protocol error.
    UnknownChannel(u32),
    /// The caller named a local id that has no channel; a bug in the caller.
    StaleId(u32),
    /// The channel exists but its lifecycle refused the event.
    Lifecycle { id: u32, error: LifecycleError },
}

impl TableError {
    /// Whether the peer broke the protocol, as opposed to a full table or a caller bug.
    pub fn is_peer_fault(&self) -> bool {
        match self {
            Self::UnknownChannel(_) => true,
            Self::Lifecycle { error, .. } => error.is_peer_fault(),
            Self::Full { .. } | Self::StaleId(_) => false,
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { limit } => write!(f, "channel table full: {limit} channels open"),
            Self::UnknownChannel(id) => write!(f, "message for unknown channel {id}"),
            Self::StaleId(id) => write!(f, "no channel with local id {id}"),
            Self::Lifecycle { id, error } => write!(f, "channel {id}: {error}"),
        }
    }
}

impl std::error::Error for TableError {}

/// A full table converts to [`Error::Misuse`]: it reaches this conversion only when the
/// application opens channels past its own cap, since a full table on a peer's open is
/// answered with RESOURCE_SHORTAGE instead.
impl From<TableError> for Error {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Full { .. } => Self::Misuse("channel table full"),
            TableError::UnknownChannel(_) => {
                Self::protocol(DisconnectReason::PROTOCOL_ERROR, e.to_string())
            }
            TableError::StaleId(_) => Self::Misuse("no channel with that local id"),
            TableError::Lifecycle { error, .. } => error.into(),
        }
    }
}

/// One live channel: its lifecycle and the connection layer's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel<T> {
    lifecycle: Lifecycle,
    /// Whatever the connection layer keeps per channel: windows, buffers, the peer's id.
    pub value: T,
}

impl<T> Channel<T> {
    /// The channel's state. Changes go through the [`Table`], which frees the id when the
    /// channel finishes.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
}

/// The result of the peer's CLOSE: the channel is finished and its id already free.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed<T> {
    /// The payload of the finished channel.
    pub value: T,
    /// Whether the caller must send CHANNEL_CLOSE in answer (RFC 4254 section 5.3): true
    /// when we had not sent ours yet.
    pub send_close: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot<T> {
    Vacant,
    Occupied(Channel<T>),
}

/// The channels of one connection, by local id.
///
/// Invariants: `free` holds exactly the indices of the vacant slots, the last slot (if
/// any) is occupied, and the number of occupied slots never exceeds `limit`. So the slot
/// count never exceeds `limit`, and it is 0 when no channel is live.
#[derive(Clone, Debug)]
pub struct Table<T> {
    slots: Vec<Slot<T>>,
    free: BTreeSet<u32>,
    limit: u32,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Table<T> {
    /// An empty table with the default cap, [`DEFAULT_MAX_CHANNELS`].
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_CHANNELS)
    }

    /// An empty table that holds at most `limit` live channels.
    pub fn with_limit(limit: u32) -> Self {
        Self {
            slots: Vec::new(),
            free: BTreeSet::new(),
            limit,
        }
    }

    /// The cap on live channels.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The number of live channels.
    pub fn len(&self) -> usize {
        self.slots.len().saturating_sub(self.free.len())
    }

    /// Whether no channel is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the cap is reached, so that the next open fails with [`TableError::Full`].
    pub fn is_full(&self) -> bool {
        self.len() >= index(self.limit)
    }

    /// The number of slots held, live or free: what the table costs in memory, apart from
    /// spare vector capacity. Never above [`Table::limit`]; 0 once every channel finished.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Allocates an id for a channel we open; send CHANNEL_OPEN with it as the sender
    /// channel. Fails with [`TableError::Full`] at the cap.
    pub fn open(&mut self, value: T) -> Result<u32, TableError> {
        self.insert(Lifecycle::opening(), value)
    }

    /// Allocates an id for a channel the peer opens, until the application accepts or
    /// rejects it. At the cap this fails with [`TableError::Full`]: answer
    /// RESOURCE_SHORTAGE, and nothing is kept.
    pub fn peer_open(&mut self, value: T) -> Result<u32, TableError> {
        self.insert(Lifecycle::peer_opening(), value)
    }

    /// The live channel with local id `id`, named by the peer. An id with no channel is
    /// the peer's fault.
    pub fn get(&self, id: u32) -> Result<&Channel<T>, TableError> {
        match self.slots.get(index(id)) {
            Some(Slot::Occupied(c)) => Ok(c),
            Some(Slot::Vacant) | None => Err(TableError::UnknownChannel(id)),
        }
    }

    /// The live channel with local id `id`, named by the peer, for changing its payload.
    pub fn get_mut(&mut self, id: u32) -> Result<&mut Channel<T>, TableError> {
        match self.slots.get_mut(index(id)) {
            Some(Slot::Occupied(c)) => Ok(c),
            Some(Slot::Vacant) | None => Err(TableError::UnknownChannel(id)),
        }
    }

    /// The live channels, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Channel<T>)> {
        self.slots.iter().zip(0u32..).filter_map(|(s, id)| match s {
            Slot::Occupied(c) => Some((id, c)),
            Slot::Vacant => None,
        })
    }

    /// OPEN_CONFIRMATION from the peer for our channel `id`.
    pub fn on_confirmation(&mut self, id: u32) -> Result<&mut T, TableError> {
        let (_, channel) = self.peer_event(id, Lifecycle::on_confirmation)?;
        Ok(&mut channel.value)
    }

    /// OPEN_FAILURE from the peer for our channel `id`: the channel is gone and its id
    /// free.
    pub fn on_open_failure(&mut self, id: u32) -> Result<T, TableError> {
        self.peer_event(id, Lifecycle::on_open_failure)?;
        self.release(id).ok_or(TableError::UnknownChannel(id))
    }

    /// The application accepts the peer's channel `id`: send OPEN_CONFIRMATION.
    pub fn accept(&mut self, id: u32) -> Result<&mut T, TableError> {
        let (_, channel) = self.local_event(id, Lifecycle::accept)?;
        Ok(&mut channel.value)
    }

    /// The application rejects the peer's channel `id`: send OPEN_FAILURE. The id is free
    /// at once and the payload comes back.
    pub fn reject(&mut self, id: u32) -> Result<T, TableError> {
        self.local_event(id, Lifecycle::reject)?;
        self.release(id).ok_or(TableError::StaleId(id))
    }

    /// CHANNEL_DATA or EXTENDED_DATA from the peer for channel `id`: the payload to
    /// deliver it to, or `None` when the channel is closing and the data is dropped.
    pub fn on_data(&mut self, id: u32) -> Result<Option<&mut T>, TableError> {
        let channel = self.peer_channel(id)?;
        match channel.lifecycle.may_receive_data() {
            Ok(Disposition::Process) => Ok(Some(&mut channel.value)),
            Ok(Disposition::Ignore) => Ok(None),
            Err(error) => Err(TableError::Lifecycle { id, error }),
        }
    }

    /// WINDOW_ADJUST from the peer for channel `id`: the payload whose window grows, or
    /// `None` when the channel is closing and the adjust is ignored. An id with no
    /// channel is the peer's fault, so the caller disconnects.
    pub fn on_window_adjust(&mut self, id: u32) -> Result<Option<&mut T>, TableError> {
        let channel = self.peer_channel(id)?;
        match channel.lifecycle.accepts_window_adjust() {
            Ok(Disposition::Process) => Ok(Some(&mut channel.value)),
            Ok(Disposition::Ignore) => Ok(None),
            Err(error) => Err(TableError::Lifecycle { id, error }),
        }
    }

    /// EOF from the peer for channel `id`.
    pub fn on_eof_received(&mut self, id: u32) -> Result<&mut T, TableError> {
        let (_, channel) = self.peer_event(id, Lifecycle::on_eof_received)?;
        Ok(&mut channel.value)
    }

    /// CLOSE from the peer for channel `id`. The channel is finished: its id is free
    /// before this returns, and [`Closed::send_close`] says whether to answer with CLOSE.
    /// A second CLOSE finds no channel and is a protocol error.
    pub fn on_close_received(&mut self, id: u32) -> Result<Closed<T>, TableError> {
        let (action, _) = self.peer_event(id, Lifecycle::on_close_received)?;
        let send_close = action == Action::SendClose;
        let value = self.release(id).ok_or(TableError::UnknownChannel(id))?;
        Ok(Closed { value, send_close })
    }

    /// The application sends EOF on channel `id`.
    pub fn send_eof(&mut self, id: u32) -> Result<&mut T, TableError> {
        let (_, channel) = self.local_event(id, Lifecycle::send_eof)?;
        Ok(&mut channel.value)
    }

    /// The application sends CLOSE on channel `id`. The channel stays until the peer's
    /// CLOSE arrives, since only then may the id be reused (RFC 4254 section 5.3).
    pub fn send_close(&mut self, id: u32) -> Result<&mut T, TableError> {
        let (_, channel) = self.local_event(id, Lifecycle::send_close)?;
        Ok(&mut channel.value)
    }

    fn insert(&mut self, lifecycle: Lifecycle, value: T) -> Result<u32, TableError> {
        if self.is_full() {
            log::debug!("channel table full limit={}", self.limit);
            return Err(TableError::Full { limit: self.limit });
        }
        let channel = Slot::Occupied(Channel { lifecycle, value });

        // The free set only holds indices below the slot count; should that ever break,
        // the id is dropped and a new slot is used below.
        if let Some(id) = self.free.pop_first()
            && let Some(slot) = self.slots.get_mut(index(id))
        {
            *slot = channel;
            return Ok(id);
        }

        // No free slot: every slot is live, so the count is below the limit and fits.
        let id =
            u32::try_from(self.slots.len()).map_err(|_| TableError::Full { limit: self.limit })?;
        self.slots.push(channel);
        Ok(id)
    }

    /// The live channel `id` for a message from the peer.
    fn peer_channel(&mut self, id: u32) -> Result<&mut Channel<T>, TableError> {
        self.get_mut(id)
    }

    /// Applies a peer event to channel `id`.
    fn peer_event(
        &mut self,
        id: u32,
        event: fn(&mut Lifecycle) -> Result<Action, LifecycleError>,
    ) -> Result<(Action, &mut Channel<T>), TableError> {
        let channel = self.peer_channel(id)?;
        let action =
            event(&mut channel.lifecycle).map_err(|error| TableError::Lifecycle { id, error })?;
        Ok((action, channel))
    }

    /// Applies an application event to channel `id`; an id with no channel is the
    /// caller's bug.
    fn local_event(
        &mut self,
        id: u32,
        event: fn(&mut Lifecycle) -> Result<Action, LifecycleError>,
    ) -> Result<(Action, &mut Channel<T>), TableError> {
        let channel = match self.slots.get_mut(index(id)) {
            Some(Slot::Occupied(c)) => c,
            Some(Slot::Vacant) | None => return Err(TableError::StaleId(id)),
        };
        let action =
            event(&mut channel.lifecycle).map_err(|error| TableError::Lifecycle { id, error })?;
        Ok((action, channel))
    }

    /// Frees the slot of a finished channel and returns its payload, then drops trailing
    /// free slots so the table shrinks back as channels finish.
    fn release(&mut self, id: u32) -> Option<T> {
        let slot = self.slots.get_mut(index(id))?;
        let Slot::Occupied(channel) = core::mem::replace(slot, Slot::Vacant) else {
            return None;
        };
        self.free.insert(id);

        while let Some(Slot::Vacant) = self.slots.last() {
            self.slots.pop();
        }
        let len = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        // Everything at or above the new length is gone with the slots it named.
        drop(self.free.split_off(&len));

        // Give back spare capacity once most of it is unused, halving at most, so a peer
        // that opens and closes one channel at a time causes no reallocation.
        if self.slots.capacity() > 4 * self.slots.len().max(4) {
            self.slots.shrink_to(2 * self.slots.len());
        }
        Some(channel.value)
    }
}

/// A channel id as a slot index, saturating where `usize` is narrower than 32 bits.
fn index(id: u32) -> usize {
    usize::try_from(id).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::connection::lifecycle::Phase;

    /// Opens our channel and has the peer confirm it.
    fn open_confirmed(t: &mut Table<u32>, value: u32) -> u32 {
        let id = t.open(value).unwrap();
        t.on_confirmation(id).unwrap();
        id
    }

    #[test]
    fn ids_are_small_and_lowest_first() {
        let mut t = Table::new();
        assert_eq!(t.open(10).unwrap(), 0);
        assert_eq!(t.peer_open(11).unwrap(), 1);
        assert_eq!(t.open(12).unwrap(), 2);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(1).unwrap().value, 11);
        assert_eq!(t.get(1).unwrap().lifecycle().phase(), Phase::PeerOpening);

        assert_eq!(t.reject(1), Ok(11));
        assert_eq!(t.len(), 2);
        assert_eq!(t.open(13).unwrap(), 1);
        assert_eq!(t.open(14).unwrap(), 3);
        let ids: Vec<u32> = t.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
    }

    #[test]
    fn confirmation_and_failure_for_our_channels() {
        let mut t = Table::new();
        let a = t.open(1).unwrap();
        let b = t.open(2).unwrap();
        assert_eq!(t.on_confirmation(a).map(|v| *v), Ok(1));
        assert_eq!(t.get(a).unwrap().lifecycle().phase(), Phase::Open);
        assert_eq!(t.on_open_failure(b), Ok(2));
        assert_eq!(t.get(b).unwrap_err(), TableError::UnknownChannel(b));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn confirmation_for_a_channel_not_opening_is_an_error() {
        let mut t = Table::new();
        let id = open_confirmed(&mut t, 0);
        let e = t.on_confirmation(id).unwrap_err();
        assert_eq!(
            e,
            TableError::Lifecycle {
                id,
                error: LifecycleError::ConfirmationNotOpening(Phase::Open)
            }
        );
        assert!(e.is_peer_fault());
        assert!(matches!(Error::from(e), Error::Protocol { .. }));

        // The peer's own channel, and an id never allocated.
        let peer = t.peer_open(1).unwrap();
        assert!(t.on_confirmation(peer).unwrap_err().is_peer_fault());
        assert_eq!(t.on_confirmation(99), Err(TableError::UnknownChannel(99)));
        assert_eq!(t.on_open_failure(99), Err(TableError::UnknownChannel(99)));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn accept_then_close_from_the_peer() {
        let mut t = Table::new();
        let id = t.peer_open(7).unwrap();
        assert_eq!(t.accept(id).map(|v| *v), Ok(7));
        assert!(!t.accept(id).unwrap_err().is_peer_fault());

        let closed = t.on_close_received(id).unwrap();
        assert_eq!(
            closed,
            Closed {
                value: 7,
                send_close: true
            }
        );
        assert!(t.is_empty());
        assert_eq!(t.slot_count(), 0);
    }

    #[test]
    fn we_close_first_and_the_id_waits_for_the_peers_close() {
        let mut t = Table::new();
        let id = open_confirmed(&mut t, 5);
        t.send_eof(id).unwrap();
        t.send_close(id).unwrap();
        assert!(t.get(id).unwrap().lifecycle().is_closing());

        // Still allocated: a new channel gets another id.
        let other = t.open(6).unwrap();
        assert_ne!(other, id);

        let closed = t.on_close_received(id).unwrap();
        assert_eq!(
            closed,
            Closed {
                value: 5,
                send_close: false
            }
        );
        assert_eq!(t.open(8).unwrap(), id);
    }

    #[test]
    fn close_twice_is_an_error() {
        let mut t = Table::new();
        let id = open_confirmed(&mut t, 0);
        let keep = open_confirmed(&mut t, 1);
        t.on_close_received(id).unwrap();
        let e = t.on_close_received(id).unwrap_err();
        assert_eq!(e, TableError::UnknownChannel(id));
        assert!(matches!(
            Error::from(e),
            Error::Protocol {
                reason: DisconnectReason::PROTOCOL_ERROR,
                ..
            }
        ));
        assert!(t.get(keep).is_ok());
    }

    #[test]
    fn data_after_eof_and_after_close() {
        let mut t = Table::new();
        let id = open_confirmed(&mut t, 3);
        assert_eq!(t.on_data(id), Ok(Some(&mut 3)));
        t.on_eof_received(id).unwrap();
        assert_eq!(
            t.on_data(id),
            Err(TableError::Lifecycle {
                id,
                error: LifecycleError::DataAfterEof
            })
        );

        let id = open_confirmed(&mut t, 4);
        t.on_close_received(id).unwrap();
        let e = t.on_data(id).unwrap_err();
        assert_eq!(e, TableError::UnknownChannel(id));
        assert!(e.is_peer_fault());
    }

    #[test]
    fn data_crossing_our_close_is_dropped() {
        let mut t = Table::new();
        let id = open_confirmed(&mut t, 3);
        t.send_close(id).unwrap();
        assert_eq!(t.on_data(id), Ok(None));
    }

    #[test]
    fn window_adjust_for_closing_channel_is_ignored_for_unknown_id_an_error() {
        let mut t = Table::new();
        let id = open_confirmed(&mut t, 9);
        assert_eq!(t.on_window_adjust(id), Ok(Some(&mut 9)));
        t.send_close(id).unwrap();
        assert_eq!(t.on_window_adjust(id), Ok(None));

        for never in [1, 1000, u32::MAX] {
            let e = t.on_window_adjust(never).unwrap_err();
            assert_eq!(e, TableError::UnknownChannel(never));
            assert!(matches!(Error::from(e), Error::Protocol { .. }));
        }

        // An adjust before the channel is confirmed is an error too.
        let opening = t.open(1).unwrap();
        assert!(t.on_window_adjust(opening).unwrap_err().is_peer_fault());
    }

    #[test]
    fn caller_events_on_unknown_ids_are_misuse() {
        let mut t: Table<u32> = Table::new();
        for e in [
            t.send_eof(4).unwrap_err(),
            t.send_close(4).unwrap_err(),
            t.accept(4).unwrap_err(),
            t.reject(4).unwrap_err(),
        ] {
            assert_eq!(e, TableError::StaleId(4));
            assert!(!e.is_peer_fault());
            assert!(matches!(Error::from(e), Error::Misuse(_)));
        }
        let id = open_confirmed(&mut t, 0);
        t.send_close(id).unwrap();
        let e = t.send_close(id).unwrap_err();
        assert!(matches!(Error::from(e), Error::Misuse(_)));
    }

    #[test]
    fn opens_past_the_cap_are_refused_and_a_refusal_keeps_nothing() {
        let mut t = Table::new();
        let mut opened = Vec::new();
        let mut refused = 0;
        for n in 0..100_000u32 {
            match t.peer_open(n) {
                Ok(id) => opened.push(id),
                Err(e) => {
                    assert_eq!(
                        e,
                        TableError::Full {
                            limit: DEFAULT_MAX_CHANNELS
                        }
                    );
                    assert!(!e.is_peer_fault());
                    refused += 1;
                }
            }
        }
        assert_eq!(opened.len(), 16_384);
        assert_eq!(refused, 100_000 - 16_384);
        assert_eq!(t.slot_count(), 16_384);

        // Accepted and never closed: the cap holds.
        for &id in &opened[..100] {
            t.accept(id).unwrap();
        }
        assert!(t.is_full());
        assert!(matches!(t.open(0), Err(TableError::Full { .. })));

        // Rejecting the rest and closing the accepted ones returns to the baseline.
        for &id in &opened[100..] {
            t.reject(id).unwrap();
        }
        assert_eq!(t.len(), 100);
        for &id in &opened[..100] {
            assert!(t.on_close_received(id).unwrap().send_close);
        }
        assert!(t.is_empty());
        assert_eq!(t.slot_count(), 0);
        assert!(t.free.is_empty());
        assert!(t.slots.capacity() <= 16);
    }

    #[test]
    fn open_and_reject_cycles_do_not_grow() {
        let mut t = Table::with_limit(4);
        let held = t.peer_open(0).unwrap();
        t.accept(held).unwrap();
        for n in 0..100_000u32 {
            let id = t.peer_open(n).unwrap();
            assert_eq!(id, 1);
            assert_eq!(t.reject(id), Ok(n));
            assert_eq!(t.slot_count(), 1);
        }
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_limit_of_zero_refuses_everything() {
        let mut t = Table::with_limit(0);
        assert_eq!(t.open(()), Err(TableError::Full { limit: 0 }));
        assert_eq!(t.slot_count(), 0);
    }

    #[test]
    fn freed_slots_below_a_live_one_are_reused_then_trimmed() {
        let mut t = Table::new();
        let ids: Vec<u32> = (0..5).map(|n| open_confirmed(&mut t, n)).collect();
        for &id in &ids[..4] {
            t.on_close_received(id).unwrap();
        }
        assert_eq!(t.slot_count(), 5);
        assert_eq!(t.free.len(), 4);

        t.on_close_received(ids[4]).unwrap();
        assert_eq!(t.slot_count(), 0);
        assert!(t.free.is_empty());
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Open,
        PeerOpen,
        Confirm(u32),
        Fail(u32),
        Accept(u32),
        Reject(u32),
        SendEof(u32),
        SendClose(u32),
        RecvClose(u32),
        Adjust(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Ids range a little past the limit, so live, finished and never allocated ids
        // all come up.
        let id = 0u32..10;
        prop_oneof![
            2 => Just(Op::Open),
            2 => Just(Op::PeerOpen),
            1 => id.clone().prop_map(Op::Confirm),
            1 => id.clone().prop_map(Op::Fail),
            1 => id.clone().prop_map(Op::Accept),
            1 => id.clone().prop_map(Op::Reject),
            1 => id.clone().prop_map(Op::SendEof),
            1 => id.clone().prop_map(Op::SendClose),
            1 => id.clone().prop_map(Op::RecvClose),
            1 => id.prop_map(Op::Adjust),
        ]
    }

    proptest! {
        /// The table against a model that holds the lifecycle of every channel not yet
        /// finished: no id is handed out while its channel is unfinished, so no two
        /// unfinished channels share an id, and an id frees exactly when the channel
        /// finishes.
        #[test]
        fn ids_are_reused_only_after_close_both_ways(ops in proptest::collection::vec(op(), 0..200)) {
            const LIMIT: u32 = 6;
            let mut t: Table<u64> = Table::with_limit(LIMIT);
            let mut model: HashMap<u32, (Lifecycle, u64)> = HashMap::new();
            let mut serial = 0u64;

            for op in ops {
                serial += 1;
                let result = match op {
                    Op::Open | Op::PeerOpen => {
                        let (r, l) = if matches!(op, Op::Open) {
                            (t.open(serial), Lifecycle::opening())
                        } else {
                            (t.peer_open(serial), Lifecycle::peer_opening())
                        };
                        match r {
                            Ok(id) => {
                                prop_assert!(id < LIMIT);
                                prop_assert!(!model.contains_key(&id), "id {id} reused early");
                                model.insert(id, (l, serial));
                            }
                            Err(e) => {
                                prop_assert_eq!(e, TableError::Full { limit: LIMIT });
                                prop_assert_eq!(model.len(), LIMIT as usize);
                            }
                        }
                        continue;
                    }
                    Op::Confirm(id) => (id, t.on_confirmation(id).map(|_| ())),
                    Op::Fail(id) => (id, t.on_open_failure(id).map(|_| ())),
                    Op::Accept(id) => (id, t.accept(id).map(|_| ())),
                    Op::Reject(id) => (id, t.reject(id).map(|_| ())),
                    Op::SendEof(id) => (id, t.send_eof(id).map(|_| ())),
                    Op::SendClose(id) => (id, t.send_close(id).map(|_| ())),
                    Op::RecvClose(id) => (id, t.on_close_received(id).map(|_| ())),
                    Op::Adjust(id) => (id, t.on_window_adjust(id).map(|_| ())),
                };
                let (id, result) = result;

                match model.get_mut(&id) {
                    None => prop_assert!(matches!(
                        result,
                        Err(TableError::UnknownChannel(i) | TableError::StaleId(i)) if i == id
                    )),
                    Some((l, value)) => {
                        let expected = match op {
                            Op::Confirm(_) => l.on_confirmation().map(|_| ()),
                            Op::Fail(_) => l.on_open_failure().map(|_| ()),
                            Op::Accept(_) => l.accept().map(|_| ()),
                            Op::Reject(_) => l.reject().map(|_| ()),
                            Op::SendEof(_) => l.send_eof().map(|_| ()),
                            Op::SendClose(_) => l.send_close().map(|_| ()),
                            Op::RecvClose(_) => l.on_close_received().map(|_| ()),
                            Op::Adjust(_) => l.accepts_window_adjust().map(|_| ()),
                            Op::Open | Op::PeerOpen => Ok(()),
                        };
                        prop_assert_eq!(
                            result,
                            expected.map_err(|error| TableError::Lifecycle { id, error })
                        );
                        if l.is_finished() {
                            model.remove(&id);
                            prop_assert!(t.get(id).is_err(), "finished id {id} still held");
                        } else {
                            prop_assert_eq!(t.get(id).map(|c| *c.lifecycle()), Ok(*l));
                            prop_assert_eq!(t.get(id).map(|c| c.value), Ok(*value));
                        }
                    }
                }

                prop_assert_eq!(t.len(), model.len());
                prop_assert!(t.slot_count() <= LIMIT as usize);
                let live: Vec<u32> = t.iter().map(|(id, _)| id).collect();
                let mut expected: Vec<u32> = model.keys().copied().collect();
                expected.sort_unstable();
                prop_assert_eq!(live, expected);
            }
        }
    }
}
