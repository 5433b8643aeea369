//! The per-connection memory budget for receive windows (RFC 4254 section 5.2).
//!
//! A receive window is memory we promise: the peer may send that many bytes before the
//! application reads any of them, and they have to be held somewhere. With thousands of
//! channels on one connection the windows together, not any one of them, are what a peer
//! can make us hold: 16,384 channels at the default 2 MiB initial window would be 32 GiB.
//! So one [`Budget`] per connection bounds them all. Every channel's window is a small
//! floor of its own ([`window_floor`]) plus a grant drawn from the budget, for its initial
//! window as for its growth, and the grant goes back when the channel is finished.
//!
//! The invariant, over the live channels of one connection:
//!
//! ```text
//! sum of window targets  =  used + sum of floors  <=  total + channels * WINDOW_FLOOR
//! ```
//!
//! A channel opened while the budget is spent starts at its floor and grows by the usual
//! rule once other channels have given their grants back, so a busy connection degrades to
//! smaller windows instead of refusing channels.
//!
//! Initial windows are granted first come, first served. Growth is too, up to an equal
//! share of the budget (the total over the number of windows); past its share, a window
//! grows only into budget that leaves one more equal share free. Without that, the largest
//! windows, which ask for the most at every doubling, would take whatever a closing
//! channel gives back, and a channel opened on a spent budget would stay at its floor for
//! as long as they run.

/// The default per-connection budget: 256 MiB, what 128 channels at the default 2 MiB
/// initial window hold, or 16 channels grown to the 16 MiB maximum.
pub const DEFAULT_BUDGET: u64 = 256 << 20;

/// The smallest receive window a channel is given, however little the budget has left.
///
/// A channel needs some window or it can never carry a byte: adjusts follow data the
/// application read, so a window of 0 would never open. The floor is therefore the
/// channel's own and is not drawn from the budget; the cap on channels per connection is
/// what bounds the floors together (16,384 x 32 KiB = 512 MiB at the default cap, so lower
/// the cap along with the budget where that matters).
///
/// 32 KiB is the payload every implementation must accept (RFC 4253 section 6.1) and our
/// default maximum packet: a channel at its floor still takes one full-sized packet at a
/// time, so the peer never has to cut its packets smaller than usual. It is also 1/64 of
/// the default initial window, small enough that the floors of many channels opened on a
/// spent budget stay a modest overdraft.
pub const WINDOW_FLOOR: u32 = 32 << 10;

/// The floor of a channel whose configured initial window is `initial`: [`WINDOW_FLOOR`],
/// or the initial window itself when that is smaller.
pub fn window_floor(initial: u32) -> u32 {
    initial.min(WINDOW_FLOOR)
}

/// The bytes one connection's receive windows may hold together, above each channel's
/// floor. See the module documentation for the invariant it keeps.
///
/// It only counts; [`crate::connection::window::RecvWindow`] draws its initial grant and
/// its growth from it and gives both back when the channel is finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    total: u64,
    used: u64,
    /// Windows opened and not closed.
    windows: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET)
    }
}

impl Budget {
    /// A budget of `total` bytes, none of it granted.
    pub fn new(total: u64) -> Self {
        Self {
            total,
            used: 0,
            windows: 0,
        }
    }

    /// The bytes of window the budget can grant in all, floors not counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes granted and not yet released. Never above [`Budget::total`].
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Bytes not granted.
    pub fn free(&self) -> u64 {
        self.total - self.used
    }

    /// Windows opened and not yet closed.
    pub fn windows(&self) -> u64 {
        self.windows
    }

    /// An equal share of the budget among the open windows.
    pub fn share(&self) -> u64 {
        self.total / self.windows.max(1)
    }

    /// Counts a new window and grants it up to `want` bytes for its initial size: all of
    /// it, what is left, or nothing.
    pub fn open(&mut self, want: u32) -> u32 {
        self.windows += 1;
        let granted = u32::try_from(self.free()).map_or(want, |free| free.min(want));
        self.used += u64::from(granted);
        granted
    }

    /// Grants up to `want` more bytes to an open window that holds `held` already: freely
    /// up to an equal share, and past it only what leaves one more share free (see the
    /// module documentation).
    pub fn grow(&mut self, held: u32, want: u32) -> u32 {
        let (share, free, want) = (self.share(), self.free(), u64::from(want));
        let to_share = share.saturating_sub(u64::from(held)).min(want).min(free);
        let past_share = (want - to_share).min((free - to_share).saturating_sub(share));
        let granted = to_share + past_share;
        self.used += granted;
        // At most `want`, which came from a `u32`.
        u32::try_from(granted).unwrap_or(u32::MAX)
    }

    /// Closes a window that holds `held` bytes: they are free again. Closing more than
    /// was opened or granted is a bug in the caller; it leaves nothing counted rather than
    /// wrapping.
    pub fn close(&mut self, held: u32) {
        debug_assert!(self.windows > 0, "closed a window never opened");
        debug_assert!(
            u64::from(held) <= self.used,
            "released more than was granted"
        );
        self.windows = self.windows.saturating_sub(1);
        self.used = self.used.saturating_sub(u64::from(held));
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests need an origin for their clock"
)]
mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;
    use crate::connection::window::{RecvWindow, WindowConfig};

    #[test]
    fn defaults() {
        assert_eq!(Budget::default().total(), 256 * 1024 * 1024);
        assert_eq!(Budget::default().used(), 0);
        assert_eq!(WINDOW_FLOOR, 32768);
        assert_eq!(window_floor(2 << 20), 32768);
        assert_eq!(window_floor(1000), 1000);
        assert_eq!(window_floor(1), 1);
    }

    #[test]
    fn open_grants_what_is_left() {
        let mut budget = Budget::new(10);
        assert_eq!(budget.open(4), 4);
        assert_eq!(budget.open(8), 6);
        assert_eq!(budget.open(1), 0);
        assert_eq!((budget.free(), budget.windows()), (0, 3));
        budget.close(4);
        assert_eq!((budget.used(), budget.windows()), (6, 2));
        assert_eq!(budget.open(0), 0);
        budget.close(6);
        budget.close(0);
        budget.close(0);
        assert_eq!((budget.used(), budget.windows()), (0, 0));

        let mut huge = Budget::new(u64::MAX);
        assert_eq!(huge.open(u32::MAX), u32::MAX);
        assert_eq!(huge.grow(u32::MAX, u32::MAX), u32::MAX);
        assert_eq!(huge.used(), 2 * u64::from(u32::MAX));

        let mut none = Budget::new(0);
        assert_eq!(none.open(u32::MAX), 0);
        assert_eq!(none.grow(0, u32::MAX), 0);
    }

    #[test]
    fn growth_past_an_equal_share_leaves_a_share_free() {
        // Four windows of a budget of 400: a share is 100.
        let mut budget = Budget::new(400);
        for _ in 0..4 {
            assert_eq!(budget.open(0), 0);
        }
        assert_eq!(budget.share(), 100);

        // Up to its share a window takes what it asks.
        assert_eq!(budget.grow(0, 60), 60);
        assert_eq!(budget.grow(60, 40), 40);
        // Past it, only what leaves a share free: 300 are free, so 200.
        assert_eq!(budget.grow(100, 250), 200);
        assert_eq!(budget.free(), 100);
        assert_eq!(budget.grow(300, 50), 0, "the last share is kept");
        // Part below the share, part past it.
        assert_eq!(budget.grow(40, 100), 60);
        assert_eq!(budget.free(), 40);

        // A window below its share may take the last of it.
        assert_eq!(budget.grow(0, 1000), 40);
        assert_eq!(budget.free(), 0);
        assert_eq!(budget.grow(0, 1), 0);
    }

    fn config(initial: u32, max: u32) -> WindowConfig {
        WindowConfig {
            initial,
            max,
            max_packet: 32768,
        }
    }

    #[test]
    fn initial_windows_come_from_the_budget_down_to_the_floor() {
        // Room for two default channels and a little of a third.
        let mut budget = Budget::new(2 * ((2 << 20) - 32768) + 1000);
        let c = WindowConfig::default();
        let a = RecvWindow::new(c, &mut budget).unwrap();
        let b = RecvWindow::new(c, &mut budget).unwrap();
        assert_eq!((a.initial(), b.initial()), (2 << 20, 2 << 20));
        let tight = RecvWindow::new(c, &mut budget).unwrap();
        assert_eq!(tight.initial(), 32768 + 1000);
        let spent = RecvWindow::new(c, &mut budget).unwrap();
        assert_eq!(spent.initial(), WINDOW_FLOOR, "never below the floor");
        assert_eq!(spent.floor(), WINDOW_FLOOR);
        assert_eq!(budget.free(), 0);

        // A finished channel gives its grant back and the next one gets a full window.
        a.release(&mut budget);
        assert_eq!(budget.free(), (2 << 20) - 32768);
        let again = RecvWindow::new(c, &mut budget).unwrap();
        assert_eq!(again.initial(), 2 << 20);
        for w in [b, tight, spent, again] {
            w.release(&mut budget);
        }
        assert_eq!(budget.used(), 0);

        // A window configured below the floor is its own floor and costs nothing.
        let small = RecvWindow::new(config(1000, 4000), &mut budget).unwrap();
        assert_eq!((small.initial(), small.floor()), (1000, 1000));
        assert_eq!(budget.used(), 0);
    }

    /// One round at `now` on `w`: the peer fills the window in two halves, and the
    /// application reads each as it arrives.
    fn round(w: &mut RecvWindow, now: Instant, budget: &mut Budget) {
        for _ in 0..2 {
            let mut left = (w.window() as usize).div_ceil(2);
            while left > 0 {
                let n = left.min(w.max_packet() as usize);
                w.on_data(n, now).unwrap();
                left -= n;
            }
            w.consumed(usize::MAX, now, budget);
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Open,
        /// Closes the `n`th live channel, if any.
        Close(usize),
        /// A full round on the `n`th live channel, after a wait in milliseconds.
        Round(usize, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::Open),
            1 => (0usize..16).prop_map(Op::Close),
            6 => (0usize..16, 0u64..30).prop_map(|(n, wait)| Op::Round(n, wait)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Channels opening, growing and closing on one connection: the windows together
        /// never hold more than the budget plus one floor per channel, the budget counts
        /// exactly the windows and what they hold above their floors, and it is whole
        /// again once every channel is gone.
        #[test]
        fn all_windows_together_stay_within_budget_plus_floors(
            total in 0u64..200_000,
            initial in 1u32..70_000,
            extra in 0u32..100_000,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let config = WindowConfig {
                initial,
                max: initial + extra,
                max_packet: 4096,
            };
            let mut budget = Budget::new(total);
            let mut now = Instant::now();
            let mut live: Vec<RecvWindow> = Vec::new();
            for op in ops {
                match op {
                    Op::Open => {
                        let w = RecvWindow::new(config, &mut budget).unwrap();
                        prop_assert!(w.initial() >= window_floor(initial));
                        prop_assert!(w.initial() <= initial);
                        live.push(w);
                    }
                    Op::Close(n) if !live.is_empty() => {
                        live.swap_remove(n % live.len()).release(&mut budget);
                    }
                    Op::Round(n, wait) if !live.is_empty() => {
                        now += Duration::from_millis(wait);
                        let k = n % live.len();
                        round(&mut live[k], now, &mut budget);
                    }
                    Op::Close(_) | Op::Round(..) => {}
                }

                let targets: u64 = live.iter().map(|w| u64::from(w.target())).sum();
                let floors: u64 = live.iter().map(|w| u64::from(w.floor())).sum();
                prop_assert!(budget.used() <= budget.total());
                prop_assert_eq!(budget.windows(), live.len() as u64);
                prop_assert_eq!(targets, budget.used() + floors);
                prop_assert!(targets <= total + live.len() as u64 * u64::from(WINDOW_FLOOR));
                for w in &live {
                    prop_assert!(w.target() <= config.max);
                    prop_assert!(w.buffered() <= w.target());
                }
            }
            for w in live {
                w.release(&mut budget);
            }
            prop_assert_eq!((budget.used(), budget.windows()), (0, 0));
        }
    }
}
