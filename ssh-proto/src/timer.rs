//! The transport's deadlines: a fixed table, not a heap, since there are four of them.

use std::time::Instant;

/// A deadline the transport keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The peer's version line must arrive by then.
    Banner = 0,
    /// Authentication must finish by then (OpenSSH's LoginGraceTime).
    PreAuth = 1,
    /// A running key exchange must finish by then, so a peer that never answers our
    /// KEXINIT cannot hold queued data forever.
    Kex = 2,
    /// Keys get renewed by then (the time part of the rekey limits).
    Rekey = 3,
}

impl Timer {
    const ALL: [Self; 4] = [Self::Banner, Self::PreAuth, Self::Kex, Self::Rekey];
}

/// One optional deadline per [`Timer`].
#[derive(Clone, Debug, Default)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 4],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    /// The earliest deadline of all.
    pub fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Removes and returns a timer that is due at `now`, earliest first.
    pub fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let due = Timer::ALL
            .into_iter()
            .filter(|t| self.get(*t).is_some_and(|at| at <= now))
            .min_by_key(|t| self.get(*t))?;
        self.stop(due);
        Some(due)
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests need an origin for their clock"
)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn earliest_first() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next(), None);
        table.set(Timer::Rekey, t0 + Duration::from_secs(5));
        table.set(Timer::Banner, t0 + Duration::from_secs(2));
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(table.take_expired(t0 + Duration::from_secs(1)), None);
        assert_eq!(
            table.take_expired(t0 + Duration::from_secs(9)),
            Some(Timer::Banner)
        );
        assert_eq!(
            table.take_expired(t0 + Duration::from_secs(9)),
            Some(Timer::Rekey)
        );
        assert_eq!(table.take_expired(t0 + Duration::from_secs(9)), None);
    }
}
