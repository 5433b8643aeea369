//! When to renew keys: by bytes, by packets and by time (RFC 4253 section 9, RFC 4344
//! section 3).

use std::time::{Duration, Instant};

/// Limits after which a side starts a new key exchange. Either direction reaching a limit
/// is enough.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RekeyLimits {
    /// Bytes sealed or opened with one set of keys. 1 GiB by default: RFC 4344 section
    /// 3.2 allows far more for AES, and 1 GiB keeps AES-GCM well inside its margins.
    pub bytes: u64,
    /// Packets with one set of keys. 2^31 by default, so the 32-bit sequence number never
    /// wraps under one key (RFC 4344 section 3.1).
    pub packets: u64,
    /// Time since the last key exchange. One hour by default, as OpenSSH's RekeyLimit.
    pub time: Duration,
}

impl Default for RekeyLimits {
    fn default() -> Self {
        Self {
            bytes: 1 << 30,
            packets: 1 << 31,
            time: Duration::from_secs(3600),
        }
    }
}

/// Traffic under the current keys.
#[derive(Clone, Copy, Debug)]
pub struct RekeyCounters {
    sent_bytes: u64,
    sent_packets: u64,
    received_bytes: u64,
    received_packets: u64,
    since: Instant,
}

impl RekeyCounters {
    pub fn new(now: Instant) -> Self {
        Self {
            sent_bytes: 0,
            sent_packets: 0,
            received_bytes: 0,
            received_packets: 0,
            since: now,
        }
    }

    /// Starts counting afresh: new keys are in use.
    pub fn reset(&mut self, now: Instant) {
        *self = Self::new(now);
    }

    pub fn sent(&mut self, bytes: usize) {
        self.sent_bytes = self.sent_bytes.saturating_add(bytes as u64);
        self.sent_packets = self.sent_packets.saturating_add(1);
    }

    pub fn received(&mut self, bytes: usize) {
        self.received_bytes = self.received_bytes.saturating_add(bytes as u64);
        self.received_packets = self.received_packets.saturating_add(1);
    }

    /// Whether traffic alone calls for new keys.
    pub fn volume_due(&self, limits: &RekeyLimits) -> bool {
        self.sent_bytes.max(self.received_bytes) >= limits.bytes
            || self.sent_packets.max(self.received_packets) >= limits.packets
    }

    /// When time alone calls for new keys; `None` when the limit lies beyond what the
    /// clock can count (a limit of [`Duration::MAX`] means never).
    pub fn deadline(&self, limits: &RekeyLimits) -> Option<Instant> {
        self.since.checked_add(limits.time)
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests need an origin for their clock"
)]
mod tests {
    use super::*;

    #[test]
    fn either_direction_triggers() {
        let now = Instant::now();
        let limits = RekeyLimits {
            bytes: 100,
            packets: 3,
            time: Duration::from_secs(10),
        };
        let mut c = RekeyCounters::new(now);
        c.sent(99);
        assert!(!c.volume_due(&limits));
        c.received(100);
        assert!(c.volume_due(&limits));

        c.reset(now);
        c.sent(1);
        c.sent(1);
        assert!(!c.volume_due(&limits));
        c.sent(1);
        assert!(c.volume_due(&limits));
        assert_eq!(c.deadline(&limits), Some(now + Duration::from_secs(10)));
        let never = RekeyLimits {
            time: Duration::MAX,
            ..limits
        };
        assert_eq!(c.deadline(&never), None, "no limit in time");
    }

    #[test]
    fn counters_saturate() {
        let mut c = RekeyCounters::new(Instant::now());
        c.sent_bytes = u64::MAX - 1;
        c.sent(usize::MAX);
        assert_eq!(c.sent_bytes, u64::MAX);
    }
}
