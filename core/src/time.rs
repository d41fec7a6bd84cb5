//! Time as a value: the core never reads a clock; every input carries `now`.
//!
//! An [`Instant`] is nanoseconds since the Unix epoch as the driver sees it. The tokio
//! driver derives it from a monotonic clock anchored to the wall clock once at start, so it
//! never goes backwards; the simulator derives it from turmoil's simulated time. Kafka needs
//! wall-clock milliseconds (LogAppendTime, timestamp lookups, retention), so the same value
//! serves both as a monotonic instant and as a timestamp.

use std::time::Duration;

/// A point in time, in nanoseconds since the Unix epoch, supplied by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The instant `nanos` nanoseconds after the Unix epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// The instant `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Milliseconds since the Unix epoch: Kafka's timestamp unit.
    pub const fn as_millis(self) -> i64 {
        (self.0 / 1_000_000) as i64
    }

    pub fn saturating_add(self, d: Duration) -> Self {
        Instant(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }

    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}
