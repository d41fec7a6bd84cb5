//! OffsetCommit (key 8) request and response, versions 2-10 (flexible from 8; v10 names
//! topics by id instead of name, KIP-848). Versions 0-1 were removed in Kafka 4.0.
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/OffsetCommit{Request,Response}.json
//! (Kafka 4.x). kafka-protocol 0.18 knows the request only up to v9 (v10 was unstable when it
//! was generated), so request v10 is pinned by bytes from kafka-python 3.0.12's encoder
//! (net/tests/codec_differential.rs); the response is checked at v10 by the oracle.

use crate::codec::schema::message;
use crate::codec::wire::Uuid;

message! {
    /// OffsetCommitRequest.
    pub struct OffsetCommitRequest flexible 8 {
        /// The unique group identifier.
        group_id: String = String::new(), versions 0..;
        /// The generation of the group (classic protocol) or the member epoch (consumer
        /// protocol).
        generation_id_or_member_epoch: i32 = -1, versions 1..;
        /// The member id assigned by the group coordinator.
        member_id: String = String::new(), versions 1..;
        /// The static member id, or null.
        group_instance_id: Option<String> = None, versions 7.., nullable 7..;
        /// The time period in ms to retain the offset (v2-4).
        retention_time_ms: i64 = -1, versions 2..=4;
        /// The topics to commit offsets for.
        topics: Vec<OffsetCommitRequestTopic> = Vec::new(), versions 0..;
    }
}

message! {
    /// One topic to commit offsets for.
    pub struct OffsetCommitRequestTopic {
        /// The topic name (v0-9).
        name: String = String::new(), versions 0..=9;
        /// The topic id (v10+).
        topic_id: Uuid = Uuid::NIL, versions 10..;
        /// Each partition to commit offsets for.
        partitions: Vec<OffsetCommitRequestPartition> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition offset to commit.
    pub struct OffsetCommitRequestPartition {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The message offset to be committed.
        committed_offset: i64 = 0, versions 0..;
        /// The leader epoch of this partition, or -1.
        committed_leader_epoch: i32 = -1, versions 6..;
        /// Any associated metadata the client wants to keep, or null.
        committed_metadata: Option<String> = Some(String::new()), versions 0.., nullable 0..;
    }
}

message! {
    /// OffsetCommitResponse.
    pub struct OffsetCommitResponse flexible 8 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 3..;
        /// The responses for each topic.
        topics: Vec<OffsetCommitResponseTopic> = Vec::new(), versions 0..;
    }
}

message! {
    /// The commit results of one topic.
    pub struct OffsetCommitResponseTopic {
        /// The topic name (v0-9).
        name: String = String::new(), versions 0..=9;
        /// The topic id (v10+).
        topic_id: Uuid = Uuid::NIL, versions 10..;
        /// The responses for each partition in the topic.
        partitions: Vec<OffsetCommitResponsePartition> = Vec::new(), versions 0..;
    }
}

message! {
    /// The commit result of one partition.
    pub struct OffsetCommitResponsePartition {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
    }
}
