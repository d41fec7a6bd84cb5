//! The leader's view of one follower: how much of the log it matches, what to send next, and
//! how much is in flight (probe, replicate and snapshot states, as raft-rs's
//! `tracker/progress.rs` draws them).

use std::collections::VecDeque;

use crate::types::{Index, Instant};

/// How the leader is currently feeding a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// The leader does not know where the logs match: one AppendEntries at a time, each
    /// waiting for its answer (or the next heartbeat) before the next.
    Probe,
    /// The logs match up to `matched`: AppendEntries are pipelined, bounded by the in-flight
    /// window.
    Replicate,
    /// The follower needs entries the leader has compacted: a snapshot at `pending` is on its
    /// way; nothing else is sent until it is acknowledged or times out.
    Snapshot {
        /// The snapshot's index.
        pending: Index,
    },
}

/// One follower, from the leader's side.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The highest index known to match the leader's log (durable on the follower).
    pub matched: Index,
    /// The next index to send.
    pub next: Index,
    /// The sending mode.
    pub state: ProgressState,
    /// In probe state: one message is outstanding; resumed by its answer or a heartbeat.
    pub paused: bool,
    /// The last index and byte size of each AppendEntries in flight (replicate state).
    inflight: VecDeque<(Index, u64)>,
    inflight_bytes: u64,
    /// Heard from in the current check-quorum interval.
    pub recent_active: bool,
    /// The highest heartbeat round it answered in this term (ReadIndex).
    pub acked_round: u64,
    /// The leader's send time of the latest request it answered (the lease start).
    pub acked_sent_at: Instant,
    /// When the last snapshot chunk was sent (state Snapshot), to time the transfer out.
    pub snapshot_sent_at: Instant,
    /// State Snapshot: the offset the chunk in flight ends at (the answer it waits for).
    pub snapshot_offset: u64,
    /// Heartbeat intervals in a row with entries in flight and no progress (replicate
    /// state): lost AppendEntries are resent from `matched` once it reaches two.
    pub stalled_heartbeats: u32,
}

impl Progress {
    /// A follower about which the leader knows only its own last index.
    #[must_use]
    pub fn new(next: Index) -> Progress {
        Progress {
            matched: Index(0),
            next,
            state: ProgressState::Probe,
            paused: false,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            recent_active: false,
            acked_round: 0,
            acked_sent_at: Instant(0),
            snapshot_sent_at: Instant(0),
            snapshot_offset: 0,
            stalled_heartbeats: 0,
        }
    }

    /// Back to probing from `next`.
    pub fn become_probe(&mut self, next: Index) {
        self.state = ProgressState::Probe;
        self.next = next.max(self.matched.next());
        self.paused = false;
        self.clear_inflight();
    }

    /// Pipelining from just after `matched`.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched.next();
        self.paused = false;
        self.clear_inflight();
    }

    /// The first chunk of a snapshot at `index` is being sent.
    pub fn become_snapshot(&mut self, index: Index, now: Instant) {
        self.state = ProgressState::Snapshot { pending: index };
        self.paused = false;
        self.snapshot_sent_at = now;
        self.snapshot_offset = 0;
        self.clear_inflight();
    }

    /// A chunk of the pending snapshot ending at `end` was sent.
    pub fn snapshot_chunk_sent(&mut self, end: u64, now: Instant) {
        self.snapshot_offset = end;
        self.snapshot_sent_at = now;
    }

    /// Whether the leader may send another AppendEntries with entries now.
    #[must_use]
    pub fn can_send(&self, max_msgs: usize, max_bytes: u64) -> bool {
        match self.state {
            ProgressState::Probe => !self.paused,
            ProgressState::Replicate => {
                self.inflight.len() < max_msgs && self.inflight_bytes < max_bytes
            }
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// Records an AppendEntries carrying entries up to `last` (`bytes` in total) as sent.
    pub fn sent(&mut self, last: Index, bytes: u64) {
        match self.state {
            ProgressState::Probe => self.paused = true,
            ProgressState::Replicate => {
                if last >= self.next {
                    self.next = last.next();
                    self.inflight.push_back((last, bytes));
                    self.inflight_bytes += bytes;
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// A successful answer: the follower matches up to `index`. Returns whether `matched` grew.
    pub fn ack(&mut self, index: Index) -> bool {
        self.paused = false;
        let grew = index > self.matched;
        if grew {
            self.matched = index;
            self.stalled_heartbeats = 0;
        }
        if self.next <= index {
            self.next = index.next();
        }
        while let Some(&(last, bytes)) = self.inflight.front() {
            if last > index {
                break;
            }
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
        grew
    }

    /// A refusal of the probe at `rejected`; `next` is where the hint says to look. Returns
    /// false when the refusal is stale (answers a request the leader already moved past).
    pub fn reject(&mut self, rejected: Index, next: Index) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.become_probe(next);
                true
            }
            ProgressState::Probe => {
                if rejected != self.next.prev() {
                    return false;
                }
                self.next = next.max(self.matched.next()).min(rejected);
                if self.next <= self.matched {
                    self.next = self.matched.next();
                }
                self.paused = false;
                true
            }
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// A heartbeat interval passed: returns true when replication looks stuck (entries in
    /// flight, none acknowledged for two intervals), i.e. AppendEntries were lost.
    pub fn heartbeat_elapsed(&mut self) -> bool {
        if self.state != ProgressState::Replicate || self.inflight.is_empty() {
            self.stalled_heartbeats = 0;
            return false;
        }
        self.stalled_heartbeats += 1;
        self.stalled_heartbeats >= 2
    }

    fn clear_inflight(&mut self) {
        self.stalled_heartbeats = 0;
        self.inflight.clear();
        self.inflight_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicate_window_is_bounded_in_count_and_bytes() {
        let mut p = Progress::new(Index(1));
        p.become_replicate();
        assert!(p.can_send(2, 100));
        p.sent(Index(3), 60);
        assert!(p.can_send(2, 100));
        p.sent(Index(5), 60);
        assert!(!p.can_send(2, 1000), "count bound");
        assert!(!p.can_send(10, 100), "byte bound");
        assert!(p.ack(Index(3)));
        assert!(p.can_send(2, 100));
        assert_eq!(p.next, Index(6));
    }

    #[test]
    fn probe_sends_one_at_a_time_and_ignores_stale_rejections() {
        let mut p = Progress::new(Index(10));
        p.sent(Index(12), 10);
        assert!(!p.can_send(8, 1000));
        assert!(
            !p.reject(Index(3), Index(2)),
            "stale: not the probe in flight"
        );
        assert!(p.reject(Index(9), Index(4)));
        assert_eq!(p.next, Index(4));
        assert!(p.can_send(8, 1000));
    }
}
