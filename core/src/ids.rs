//! The identifiers the core's replicas and node speak in, as newtypes, so that an offset is
//! never passed where an epoch or a node id is meant. Wire types (api.rs) keep Kafka's bare
//! integers; values are wrapped where they enter a partition or the node and unwrapped where
//! they leave in a response.

use crate::api::TopicId;
use std::fmt;

/// A Kafka offset: the position of one record in a partition's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub i64);

/// A broker's id in the cluster (Kafka's broker.id / node.id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub i32);

/// A partition's leader epoch: it grows by one each time leadership changes (with
/// replication, the partition's Raft term), is stamped into every batch the leader
/// appends, and fences requests from clients that saw an older leader (KIP-320).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LeaderEpoch(pub i32);

/// One partition of one topic, by the topic's id rather than its name: a topic deleted and
/// created again under the same name is a different topic, and nothing addressed to the old
/// one (a late Flushed, a parked fetch) can reach the new one's partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId {
    pub topic: TopicId,
    pub index: i32,
}

impl Offset {
    /// The offset after this one (saturating: `i64::MAX` stays).
    #[must_use]
    pub fn next(self) -> Offset {
        Offset(self.0.saturating_add(1))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for LeaderEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
