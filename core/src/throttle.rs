//! Rate limits for log lines that a client can make repeat: at most one line per kind and
//! key per interval, and the next line says how many were held back.
//!
//! A warning caused by a request (a topic that cannot be auto-created, a write refused for
//! lack of space) would otherwise be logged once per retry, several times a second per
//! client, burying the one line an operator needs. Time is the node's `now`, so the
//! simulator replays the same lines.

use crate::time::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

/// How often one kind of line may repeat for one key.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Distinct keys remembered at most: beyond it the oldest are forgotten (and may log again),
/// so that clients naming endless topics cannot grow the table without bound.
const MAX_KEYS: usize = 1024;

#[derive(Debug, Default)]
struct Slot {
    last: Option<Instant>,
    held_back: u64,
}

/// The line kinds and keys seen lately.
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    slots: BTreeMap<(&'static str, String), Slot>,
}

impl LogThrottle {
    pub fn new(interval: Duration) -> Self {
        LogThrottle {
            interval,
            slots: BTreeMap::new(),
        }
    }

    /// Whether to log a line of `kind` about `key` now: `Some(n)` with the number of lines
    /// held back since the last one, or `None` to stay quiet.
    pub fn allow(&mut self, kind: &'static str, key: &str, now: Instant) -> Option<u64> {
        let slot_key = (kind, key.to_string());
        if !self.slots.contains_key(&slot_key) && self.slots.len() >= MAX_KEYS {
            let oldest = self
                .slots
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.slots.remove(&oldest);
            }
        }
        let slot = self.slots.entry(slot_key).or_default();
        let due = slot
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            slot.last = Some(now);
            Some(std::mem::take(&mut slot.held_back))
        } else {
            slot.held_back += 1;
            None
        }
    }

    /// Forgets `kind` for `key`, so the next line of it is logged at once (the condition it
    /// reported ended, and a new episode deserves its own line).
    pub fn reset(&mut self, kind: &'static str, key: &str) {
        self.slots.remove(&(kind, key.to_string()));
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        LogThrottle::new(DEFAULT_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_next_counts_what_was_held_back() {
        let mut t = LogThrottle::new(Duration::from_secs(60));
        let at = |s: u64| Instant::from_millis(s * 1000);
        assert_eq!(t.allow("auto-create", "a", at(0)), Some(0));
        assert_eq!(t.allow("auto-create", "a", at(1)), None);
        assert_eq!(t.allow("auto-create", "a", at(59)), None);
        assert_eq!(t.allow("auto-create", "b", at(59)), Some(0));
        assert_eq!(t.allow("other", "a", at(59)), Some(0));
        assert_eq!(t.allow("auto-create", "a", at(60)), Some(2));
        t.reset("auto-create", "a");
        assert_eq!(t.allow("auto-create", "a", at(61)), Some(0));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = LogThrottle::new(Duration::from_secs(60));
        for i in 0..(MAX_KEYS * 2) {
            t.allow("k", &i.to_string(), Instant::from_millis(i as u64));
        }
        assert!(t.slots.len() <= MAX_KEYS);
    }
}
