//! `group`: the consumer group coordinator of Kafka's classic protocol (join, sync,
//! heartbeat, leave, generations, session and rebalance timeouts, static membership) and the
//! committed offsets it keeps in the internal, compacted topic `__consumer_offsets`.
//!
//! # Shape
//! [`coordinator::Coordinator`] is a sans-IO state machine owned by the broker `Node`. It
//! never touches a log: the node (broker/group.rs) checks that it leads a group's offsets
//! partition, appends the records the coordinator asks for, and reports back when they are
//! durable. Membership state lives in `state.rs`; the record formats and the offsets cache in
//! `offsets.rs`. Timers are data: the coordinator keeps its deadlines in one ordered set,
//! merged into `Node::next_deadline`.
//!
//! # Decisions (where Kafka leaves room or Keel differs)
//! - **Committed offsets are read from durable data only.** A commit is answered once its
//!   record is flushed, and only then enters the cache OffsetFetch reads; records recovered
//!   at start beyond the recovery point enter it when their flush completes, and until then
//!   the partition's groups answer COORDINATOR_LOAD_IN_PROGRESS. So a fetched offset can
//!   never be taken back by a crash: committed offsets never regress.
//! - **Membership is stored, fire and forget.** As Kafka does, the coordinator writes a
//!   group's membership (GroupMetadata: generation, protocol, leader, each member with its
//!   subscription and assignment) to the group's offsets partition after every completed
//!   rebalance, when the group empties, and when a static member's id is replaced; a
//!   deleted or forgotten group gets a tombstone. A restarted coordinator resumes each group
//!   Stable in its generation with every session restarting, so members heartbeat on with
//!   no rebalance. Unlike Kafka, SyncGroup is not held until that record is durable: a crash
//!   first leaves the previous record, whose members learn of the newer generation by
//!   rejoining (the same path as any lost coordinator), and a commit made in the newer
//!   generation cannot be durable without it, since a flush covers the log's whole prefix.
//!   A group known only from its offsets is loaded as Empty, as Kafka does.
//! - **The coordinator of a group** is the leader of partition
//!   `abs(javaHashCode(group_id)) % partitions` of `__consumer_offsets` ([`partition_for`]),
//!   with the topic's real partition count once it exists.
//! - **Member ids** are `{client_id}-{uuid}` (`{group_instance_id}-{uuid}` for static
//!   members), the UUID drawn from the coordinator's own ChaCha stream of the node's seed
//!   (which differs at every open, so ids stored before a restart are not drawn again).
//!   `client_id` and `client_host` travel in `JoinGroupRequest` (the codec layer fills them
//!   from the request header and the peer), so `Input::Request` is unchanged.
//! - **Protocol vote ties** (Kafka breaks them by hash-map order) go to the protocol the
//!   earliest-joined member prefers; "first" member order is join order throughout.
//! - **OffsetCommit to an unknown group** with a generation ≥ 0 gets ILLEGAL_GENERATION at
//!   every version (Kafka answers GROUP_ID_NOT_FOUND from v9); both make a client rejoin.
//! - **Every parked request is answered**: a JoinGroup or SyncGroup replaced by a newer one
//!   from the same member, or whose member is removed, gets an error rather than silence,
//!   because the driver sends a connection's responses in request order.

pub mod coordinator;
pub mod offsets;
mod state;

#[cfg(test)]
mod tests;

pub use coordinator::Coordinator;
pub use state::GroupState;

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The coordinator's settings, named after Kafka's broker configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// offsets.topic.num.partitions: partitions of `__consumer_offsets` when the node
    /// creates it.
    pub offsets_topic_num_partitions: i32,
    /// offsets.topic.segment.bytes.
    pub offsets_topic_segment_bytes: i64,
    /// group.initial.rebalance.delay.ms: how long a group leaving Empty waits for more
    /// members, extended by each new one up to the rebalance timeout.
    pub initial_rebalance_delay_ms: i32,
    /// group.min.session.timeout.ms / group.max.session.timeout.ms.
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// group.max.size. Kafka's default is unbounded; Keel bounds every map.
    pub max_size: usize,
    /// The most groups the coordinator creates for requests (loading offsets may exceed it).
    pub max_groups: usize,
    /// offset.metadata.max.bytes.
    pub offset_metadata_max_bytes: usize,
    /// offsets.commit.timeout.ms: a commit not durable by then is answered
    /// COORDINATOR_NOT_AVAILABLE (its record may still become durable and count).
    pub offset_commit_timeout_ms: i32,
    /// offsets.retention.check.interval.ms: how often expired offsets are deleted and Empty
    /// groups without offsets forgotten.
    pub cleanup_interval_ms: i32,
    /// offsets.retention.minutes, in ms (KIP-211): an Empty group's offsets are deleted this
    /// long after it became Empty, a standalone commit this long after it was made; -1 never.
    pub offsets_retention_ms: i64,
    /// How long a new member's JoinGroup may wait before it is dropped (Kafka's
    /// group.coordinator.new.member.join.timeout.ms).
    pub new_member_join_timeout_ms: i32,
    /// A bug the coordinator is told to have (`planted-bugs` builds only; see
    /// `crate::bugs`).
    pub planted_bug: Option<crate::bugs::PlantedBug>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            offsets_topic_num_partitions: 50,
            offsets_topic_segment_bytes: 104_857_600,
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: 1_000,
            max_groups: 100_000,
            offset_metadata_max_bytes: 4_096,
            offset_commit_timeout_ms: 5_000,
            cleanup_interval_ms: 600_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            new_member_join_timeout_ms: 300_000,
            planted_bug: None,
        }
    }
}

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units,
/// wrapping at 32 bits.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32))
}

/// The `__consumer_offsets` partition that holds `group_id`'s offsets, and whose leader
/// coordinates it: Kafka's `Utils.abs(groupId.hashCode()) % partitions`, where
/// `Utils.abs(Integer.MIN_VALUE)` is 0.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    assert!(
        partitions > 0,
        "the offsets topic has at least one partition"
    );
    let h = java_string_hash(group_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions
}
