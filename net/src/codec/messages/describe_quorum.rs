//! DescribeQuorum (key 55, KIP-595) request and response, versions 0-1 (flexible from 0):
//! the metadata quorum's leader, epoch and high watermark, and each voter's log end
//! offset and last fetch.
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DescribeQuorum{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// DescribeQuorumRequest.
    pub struct DescribeQuorumRequest flexible 0 {
        /// The topics to describe (`__cluster_metadata`).
        topics: Vec<DescribeQuorumTopic> = Vec::new(), versions 0..;
    }
}

message! {
    /// A topic to describe.
    pub struct DescribeQuorumTopic {
        /// The topic name.
        topic_name: String = String::new(), versions 0..;
        /// The partitions to describe.
        partitions: Vec<DescribeQuorumPartition> = Vec::new(), versions 0..;
    }
}

message! {
    /// A partition to describe.
    pub struct DescribeQuorumPartition {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
    }
}

message! {
    /// DescribeQuorumResponse.
    pub struct DescribeQuorumResponse flexible 0 {
        /// The top-level error code.
        error_code: i16 = 0, versions 0..;
        /// The described topics.
        topics: Vec<DescribeQuorumTopicData> = Vec::new(), versions 0..;
    }
}

message! {
    /// A described topic.
    pub struct DescribeQuorumTopicData {
        /// The topic name.
        topic_name: String = String::new(), versions 0..;
        /// Its partitions.
        partitions: Vec<DescribeQuorumPartitionData> = Vec::new(), versions 0..;
    }
}

message! {
    /// A described partition.
    pub struct DescribeQuorumPartitionData {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The leader's id, or -1.
        leader_id: i32 = -1, versions 0..;
        /// The latest known leader epoch.
        leader_epoch: i32 = -1, versions 0..;
        /// The high watermark.
        high_watermark: i64 = -1, versions 0..;
        /// The voters.
        current_voters: Vec<DescribeQuorumReplicaState> = Vec::new(), versions 0..;
        /// The observers.
        observers: Vec<DescribeQuorumReplicaState> = Vec::new(), versions 0..;
    }
}

message! {
    /// One replica of the quorum, as the leader sees it.
    pub struct DescribeQuorumReplicaState {
        /// The replica id.
        replica_id: i32 = 0, versions 0..;
        /// The last known log end offset of the replica, or -1.
        log_end_offset: i64 = -1, versions 0..;
        /// When the leader last heard from it (ms since the epoch), or -1.
        last_fetch_timestamp: i64 = -1, versions 1..;
        /// When it was last caught up with the leader (ms since the epoch), or -1.
        last_caught_up_timestamp: i64 = -1, versions 1..;
    }
}
