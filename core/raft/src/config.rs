//! Tunables of one Raft replica: timeouts, flow-control bounds, the optional behaviours
//! (pre-vote, check-quorum, lease reads) and, under the `planted-bugs` feature, the one bug
//! to plant.

use crate::types::NodeId;

/// Known bugs that the randomized harness must catch (issue 12, "planted bugs"). Only the
/// `planted-bugs` feature lets a `Config` carry one; without it every switch reads false.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Vote grants (and a candidate's own vote requests) leave before the vote is durable.
    VoteBeforeFlush,
    /// The leader commits an entry of an older term by counting replicas (Raft Figure 8).
    CommitOlderTermByCounting,
    /// A follower keeps its divergent suffix instead of truncating it.
    NoTruncateDivergentSuffix,
    /// No check-quorum: leaders never step down and followers ignore the leader lease when
    /// voting, so a deposed leader keeps answering lease reads.
    NoCheckQuorum,
    /// A pre-vote request bumps the receiver's term, as a real vote request would.
    PreVoteBumpsTerm,
}

/// Configuration of one replica.
#[derive(Clone, Debug)]
pub struct Config {
    /// This replica's id.
    pub id: NodeId,
    /// The minimum election timeout; each timeout is drawn from `[min, 2 * min)`.
    pub election_timeout_ms: u64,
    /// How often a leader heartbeats (must be well below the election timeout).
    pub heartbeat_interval_ms: u64,
    /// Campaign with a pre-vote round first (thesis §9.6).
    pub pre_vote: bool,
    /// Leaders step down without a majority's contact within an election timeout, and
    /// replicas that heard from a leader within the minimum election timeout refuse votes.
    pub check_quorum: bool,
    /// Serve `read_index` from the leader lease, without a heartbeat round, while the lease
    /// holds (requires `check_quorum`).
    pub lease_reads: bool,
    /// The bound on how far two replicas' clocks may drift apart within one election
    /// timeout; the lease is shortened by it. Lease reads are only as safe as this bound.
    pub max_clock_drift_ms: u64,
    /// Most AppendEntries in flight to one follower in replicate state.
    pub max_inflight_msgs: usize,
    /// Most entry bytes in flight to one follower in replicate state.
    pub max_inflight_bytes: u64,
    /// Most entry bytes in one AppendEntries, and most snapshot bytes in one InstallSnapshot
    /// chunk.
    pub max_msg_bytes: u64,
    /// Largest snapshot a follower reassembles from chunks; a larger one is refused.
    pub max_snapshot_bytes: u64,
    /// Most messages held waiting for a flush; beyond it the oldest are dropped (Raft
    /// tolerates lost messages).
    pub max_held_msgs: usize,
    /// Most read requests waiting at the leader.
    pub max_pending_reads: usize,
    /// The one bug to plant (tests of the harness only).
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<PlantedBug>,
}

impl Config {
    /// Defaults for replica `id`: 1 s election timeout, 100 ms heartbeats, pre-vote and
    /// check-quorum on, ReadIndex reads.
    #[must_use]
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_timeout_ms: 1000,
            heartbeat_interval_ms: 100,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            max_clock_drift_ms: 0,
            max_inflight_msgs: 8,
            max_inflight_bytes: 1 << 20,
            max_msg_bytes: 256 << 10,
            max_snapshot_bytes: 1 << 30,
            max_held_msgs: 4096,
            max_pending_reads: 1024,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }

    /// Whether `bug` is planted.
    #[must_use]
    pub fn planted(&self, bug: PlantedBug) -> bool {
        #[cfg(feature = "planted-bugs")]
        {
            self.planted_bug == Some(bug)
        }
        #[cfg(not(feature = "planted-bugs"))]
        {
            let _ = bug;
            false
        }
    }
}
