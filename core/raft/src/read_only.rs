//! The leader's pending linearizable reads (thesis §6.4): reads waiting for the leader's
//! first commit in its term, and reads waiting for a heartbeat round to confirm leadership.

use std::collections::VecDeque;

use crate::types::Index;

/// One read waiting for confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// The caller's context.
    pub ctx: u64,
    /// The commit index when the read arrived: the read may be served once it is applied.
    pub index: Index,
    /// The heartbeat round that must be acknowledged by a majority.
    pub round: u64,
}

/// Pending reads, in arrival order (rounds ascend).
#[derive(Clone, Debug, Default)]
pub struct ReadOnly {
    queue: VecDeque<ReadRequest>,
    waiting_commit: Vec<u64>,
}

impl ReadOnly {
    /// How many reads are pending in all.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queue.len() + self.waiting_commit.len()
    }

    /// Whether nothing waits for a round.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues a read for its round.
    pub fn push(&mut self, r: ReadRequest) {
        debug_assert!(self.queue.back().is_none_or(|b| b.round <= r.round));
        self.queue.push_back(r);
    }

    /// Parks a read until the leader commits an entry of its term.
    pub fn wait_for_commit(&mut self, ctx: u64) {
        self.waiting_commit.push(ctx);
    }

    /// The parked reads, now that the term has a committed entry.
    pub fn take_waiting(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.waiting_commit)
    }

    /// The reads whose round a majority acknowledged (`round <= confirmed`), removed.
    pub fn confirmed(&mut self, confirmed: u64) -> Vec<ReadRequest> {
        let mut out = Vec::new();
        while let Some(r) = self.queue.front() {
            if r.round > confirmed {
                break;
            }
            out.extend(self.queue.pop_front());
        }
        out
    }

    /// Every pending read's context, removed (leadership lost).
    pub fn drain_all(&mut self) -> Vec<u64> {
        let mut out: Vec<u64> = self.queue.drain(..).map(|r| r.ctx).collect();
        out.append(&mut self.waiting_commit);
        out
    }
}
