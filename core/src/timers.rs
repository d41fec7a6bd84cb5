//! Timers as data: one table of named deadlines, earliest first, as quinn-proto's
//! `TimerTable`. The core never sleeps; a module records when it next needs the clock under
//! a key of its own, the node folds every module's earliest deadline into its own table, and
//! the driver arms one real timer at [`TimerTable::next`].
//!
//! Each key holds at most one deadline, so re-arming a timer replaces it and a cancelled
//! one cannot fire late: callers never have to remember the instant they armed to remove it.

use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};

/// Deadlines by key, and the same pairs ordered by time (then key, so that two timers due
/// at one instant fire in a fixed order, whatever order they were armed in).
#[derive(Debug, Clone)]
pub struct TimerTable<K: Ord + Clone> {
    by_key: BTreeMap<K, Instant>,
    by_time: BTreeSet<(Instant, K)>,
}

impl<K: Ord + Clone> Default for TimerTable<K> {
    fn default() -> Self {
        TimerTable {
            by_key: BTreeMap::new(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone> TimerTable<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `key` at `at`, replacing its previous deadline.
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    /// Arms `key` at `at`, or disarms it for `None`.
    pub fn set_or_cancel(&mut self, key: K, at: Option<Instant>) {
        match at {
            Some(at) => self.set(key, at),
            None => {
                self.cancel(&key);
            }
        }
    }

    /// Disarms `key`; returns the deadline it had.
    pub fn cancel(&mut self, key: &K) -> Option<Instant> {
        let at = self.by_key.remove(key)?;
        self.by_time.remove(&(at, key.clone()));
        Some(at)
    }

    /// When `key` fires, if it is armed.
    pub fn get(&self, key: &K) -> Option<Instant> {
        self.by_key.get(key).copied()
    }

    /// The earliest deadline of all.
    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The earliest deadline among the keys `wanted` accepts: for timers that stay in the
    /// table as a schedule but need no wake-up while they have nothing to do.
    pub fn next_where(&self, mut wanted: impl FnMut(&K) -> bool) -> Option<Instant> {
        self.by_time
            .iter()
            .find(|(_, key)| wanted(key))
            .map(|(at, _)| *at)
    }

    /// Disarms and returns the earliest timer due at `now` (deadline `<= now`), if any.
    /// Callers loop on it, so a timer armed while handling one that fired is seen too.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        let (at, _) = self.by_time.first()?;
        if *at > now {
            return None;
        }
        let (at, key) = self.by_time.pop_first()?;
        self.by_key.remove(&key);
        Some((at, key))
    }

    /// Every armed timer, earliest first.
    pub fn iter(&self) -> impl Iterator<Item = (Instant, &K)> {
        self.by_time.iter().map(|(at, key)| (*at, key))
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Asserts that the two indexes hold the same pairs.
    pub fn check(&self) {
        assert_eq!(
            self.by_key.len(),
            self.by_time.len(),
            "timer indexes differ"
        );
        for (at, key) in &self.by_time {
            assert_eq!(self.by_key.get(key), Some(at), "timer indexes differ");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn re_arming_replaces_and_cancelled_timers_never_fire() {
        let mut t = TimerTable::new();
        t.set("a", ms(10));
        t.set("b", ms(5));
        t.set("a", ms(20));
        assert_eq!(t.len(), 2);
        assert_eq!(t.next(), Some(ms(5)));
        assert_eq!(t.cancel(&"b"), Some(ms(5)));
        assert_eq!(t.cancel(&"b"), None);
        assert_eq!(t.pop_due(ms(19)), None, "a was moved to 20");
        assert_eq!(t.pop_due(ms(20)), Some((ms(20), "a")));
        assert!(t.is_empty());
        t.check();
    }

    #[test]
    fn timers_due_together_fire_in_key_order_whatever_order_they_were_armed_in() {
        let mut t = TimerTable::new();
        for key in [3, 1, 2] {
            t.set(key, ms(7));
        }
        t.set(0, ms(8));
        let fired: Vec<i32> = std::iter::from_fn(|| t.pop_due(ms(7)).map(|(_, k)| k)).collect();
        assert_eq!(fired, vec![1, 2, 3]);
        assert_eq!(t.next_where(|k| *k != 0), None);
        assert_eq!(t.next_where(|_| true), Some(ms(8)));
        t.set_or_cancel(0, None);
        assert!(t.is_empty());
        t.check();
    }
}
