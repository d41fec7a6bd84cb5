//! Fetch (key 1) request and response, versions 4-18 (flexible from 12, topic ids from 13).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/Fetch{Request,Response}.json.
//! `records` in a response is sent as given; never send `None` (librdkafka rejects a
//! MessageSetSize of -1, KAFKA.md §2).

use bytes::Bytes;

use crate::codec::schema::message;
use crate::codec::wire::Uuid;

message! {
    /// FetchRequest.
    pub struct FetchRequest flexible 12 {
        /// The broker id of the follower, or -1 for a consumer.
        replica_id: i32 = -1, versions 0..=14;
        /// The maximum time in milliseconds to wait for the response.
        max_wait_ms: i32 = 0, versions 0..;
        /// The minimum bytes to accumulate in the response.
        min_bytes: i32 = 0, versions 0..;
        /// The maximum bytes to fetch.
        max_bytes: i32 = i32::MAX, versions 3..;
        /// 0: READ_UNCOMMITTED, 1: READ_COMMITTED.
        isolation_level: i8 = 0, versions 4..;
        /// The fetch session id.
        session_id: i32 = 0, versions 7..;
        /// The fetch session epoch.
        session_epoch: i32 = -1, versions 7..;
        /// The topics to fetch.
        topics: Vec<FetchTopic> = Vec::new(), versions 0..;
        /// Partitions to remove from the fetch session.
        forgotten_topics_data: Vec<ForgottenTopic> = Vec::new(), versions 7..;
        /// Rack id of the consumer.
        rack_id: String = String::new(), versions 11..;
    }
    tagged {
        /// The clusterId if known (KIP-595).
        0 => cluster_id: Option<String> = None, versions 12.., nullable 12..;
        /// The state of the replica in the follower.
        1 => replica_state: ReplicaState = ReplicaState::default(), versions 15..;
    }
}

message! {
    /// The state of a fetching replica (KRaft followers).
    pub struct ReplicaState {
        /// The replica id of the follower, or -1.
        replica_id: i32 = -1, versions 15..;
        /// The epoch of this follower, or -1.
        replica_epoch: i64 = -1, versions 15..;
    }
}

message! {
    /// One topic in a FetchRequest.
    pub struct FetchTopic {
        /// The topic name.
        topic: String = String::new(), versions 0..=12;
        /// The topic id.
        topic_id: Uuid = Uuid::NIL, versions 13..;
        /// The partitions to fetch.
        partitions: Vec<FetchPartition> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition in a FetchRequest.
    pub struct FetchPartition {
        /// The partition index.
        partition: i32 = 0, versions 0..;
        /// The current leader epoch of the partition.
        current_leader_epoch: i32 = -1, versions 9..;
        /// The message offset.
        fetch_offset: i64 = 0, versions 0..;
        /// The epoch of the last fetched record, or -1.
        last_fetched_epoch: i32 = -1, versions 12..;
        /// The earliest available offset of the follower replica.
        log_start_offset: i64 = -1, versions 5..;
        /// The maximum bytes to fetch from this partition.
        partition_max_bytes: i32 = 0, versions 0..;
    }
    tagged {
        /// The directory id of the follower fetching.
        0 => replica_directory_id: Uuid = Uuid::NIL, versions 17..;
        /// The high-watermark known by the replica.
        1 => high_watermark: i64 = i64::MAX, versions 18..;
    }
}

message! {
    /// A topic whose partitions leave the fetch session.
    pub struct ForgottenTopic {
        /// The topic name.
        topic: String = String::new(), versions 7..=12;
        /// The topic id.
        topic_id: Uuid = Uuid::NIL, versions 13..;
        /// The partitions indexes to forget.
        partitions: Vec<i32> = Vec::new(), versions 7..;
    }
}

message! {
    /// FetchResponse.
    pub struct FetchResponse flexible 12 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
        /// The top level response error code.
        error_code: i16 = 0, versions 7..;
        /// The fetch session id, or 0.
        session_id: i32 = 0, versions 7..;
        /// The response topics.
        responses: Vec<FetchableTopicResponse> = Vec::new(), versions 0..;
    }
    tagged {
        /// Endpoints for all current leaders named in NOT_LEADER_OR_FOLLOWER errors.
        0 => node_endpoints: Vec<NodeEndpoint> = Vec::new(), versions 16..;
    }
}

message! {
    /// One topic in a FetchResponse.
    pub struct FetchableTopicResponse {
        /// The topic name.
        topic: String = String::new(), versions 0..=12;
        /// The topic id.
        topic_id: Uuid = Uuid::NIL, versions 13..;
        /// The topic partitions.
        partitions: Vec<PartitionData> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition in a FetchResponse.
    pub struct PartitionData {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The current high watermark.
        high_watermark: i64 = 0, versions 0..;
        /// The last stable offset (or LSO) of the partition.
        last_stable_offset: i64 = -1, versions 4..;
        /// The current log start offset.
        log_start_offset: i64 = -1, versions 5..;
        /// The aborted transactions.
        aborted_transactions: Option<Vec<AbortedTransaction>> = Some(Vec::new()), versions 4.., nullable 4..;
        /// The preferred read replica, or -1.
        preferred_read_replica: i32 = -1, versions 11..;
        /// The record data (a slice of the log).
        records: Option<Bytes> = Some(Bytes::new()), versions 0.., nullable 0..;
    }
    tagged {
        /// In case divergence is detected, the epoch and end offset to truncate to.
        0 => diverging_epoch: EpochEndOffset = EpochEndOffset::default(), versions 12..;
        /// The current leader of the partition.
        1 => current_leader: LeaderIdAndEpoch = LeaderIdAndEpoch::default(), versions 12..;
        /// The snapshot to fetch when the fetch offset is below the log start offset.
        2 => snapshot_id: SnapshotId = SnapshotId::default(), versions 12..;
    }
}

message! {
    /// An epoch and its end offset.
    pub struct EpochEndOffset {
        /// The largest epoch.
        epoch: i32 = -1, versions 12..;
        /// The end offset of the epoch.
        end_offset: i64 = -1, versions 12..;
    }
}

message! {
    /// A partition leader and its epoch.
    pub struct LeaderIdAndEpoch {
        /// The id of the current leader, or -1.
        leader_id: i32 = -1, versions 12..;
        /// The latest known leader epoch.
        leader_epoch: i32 = -1, versions 12..;
    }
}

message! {
    /// A snapshot id.
    pub struct SnapshotId {
        /// The end offset of the snapshot.
        end_offset: i64 = -1, versions 0..;
        /// The epoch of the snapshot.
        epoch: i32 = -1, versions 0..;
    }
}

message! {
    /// A transaction aborted inside the fetched range.
    pub struct AbortedTransaction {
        /// The producer id associated with the aborted transaction.
        producer_id: i64 = 0, versions 4..;
        /// The first offset in the aborted transaction.
        first_offset: i64 = 0, versions 4..;
    }
}

message! {
    /// A broker endpoint.
    pub struct NodeEndpoint {
        /// The node id.
        node_id: i32 = 0, versions 16..;
        /// The node's hostname.
        host: String = String::new(), versions 16..;
        /// The node's port.
        port: i32 = 0, versions 16..;
        /// The rack of the node, or null.
        rack: Option<String> = None, versions 16.., nullable 16..;
    }
}
