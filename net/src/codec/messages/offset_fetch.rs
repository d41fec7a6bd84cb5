//! OffsetFetch (key 9) request and response, versions 1-10 (flexible from 6). v1-7 fetch the
//! offsets of one group; v8+ batch several groups (KIP-709); v10 names topics by id instead
//! of name (KIP-848). Version 0 was removed in Kafka 4.0.
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/OffsetFetch{Request,Response}.json
//! (Kafka 4.x). kafka-protocol 0.18 knows the request only up to v9 (v10 was unstable when it
//! was generated), so request v10 is pinned by bytes from kafka-python 3.0.12's encoder
//! (net/tests/codec_differential.rs); the response is checked at v10 by the oracle.

use crate::codec::schema::message;
use crate::codec::wire::Uuid;

message! {
    /// OffsetFetchRequest.
    pub struct OffsetFetchRequest flexible 6 {
        /// The group to fetch offsets for (v1-7).
        group_id: String = String::new(), versions 0..=7;
        /// The topics to fetch offsets for, or null (v2-7) for all topics (v1-7).
        topics: Option<Vec<OffsetFetchRequestTopic>> = Some(Vec::new()), versions 0..=7, nullable 2..=7;
        /// The groups to fetch offsets for (v8+).
        groups: Vec<OffsetFetchRequestGroup> = Vec::new(), versions 8..;
        /// Whether the broker should hold back unstable offsets and answer with a retriable
        /// error for those partitions (KIP-447).
        require_stable: bool = false, versions 7..;
    }
}

message! {
    /// One topic of a single-group OffsetFetchRequest (v1-7).
    pub struct OffsetFetchRequestTopic {
        /// The topic name.
        name: String = String::new(), versions 0..=7;
        /// The partition indexes to fetch offsets for.
        partition_indexes: Vec<i32> = Vec::new(), versions 0..=7;
    }
}

message! {
    /// One group of a batched OffsetFetchRequest (v8+).
    pub struct OffsetFetchRequestGroup {
        /// The group id.
        group_id: String = String::new(), versions 8..;
        /// The member id, or null (consumer protocol, v9+).
        member_id: Option<String> = None, versions 9.., nullable 9..;
        /// The member epoch, or -1 (consumer protocol, v9+).
        member_epoch: i32 = -1, versions 9..;
        /// The topics to fetch offsets for, or null for all topics.
        topics: Option<Vec<OffsetFetchRequestTopics>> = Some(Vec::new()), versions 8.., nullable 8..;
    }
}

message! {
    /// One topic of a group in a batched OffsetFetchRequest (v8+).
    pub struct OffsetFetchRequestTopics {
        /// The topic name (v8-9).
        name: String = String::new(), versions 8..=9;
        /// The topic id (v10+).
        topic_id: Uuid = Uuid::NIL, versions 10..;
        /// The partition indexes to fetch offsets for.
        partition_indexes: Vec<i32> = Vec::new(), versions 8..;
    }
}

message! {
    /// OffsetFetchResponse.
    pub struct OffsetFetchResponse flexible 6 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 3..;
        /// The responses per topic (v1-7).
        topics: Vec<OffsetFetchResponseTopic> = Vec::new(), versions 0..=7;
        /// The top-level error code, or 0 (v2-7).
        error_code: i16 = 0, versions 2..=7;
        /// The responses per group (v8+).
        groups: Vec<OffsetFetchResponseGroup> = Vec::new(), versions 8..;
    }
}

message! {
    /// One topic of a single-group OffsetFetchResponse (v1-7).
    pub struct OffsetFetchResponseTopic {
        /// The topic name.
        name: String = String::new(), versions 0..=7;
        /// The responses per partition.
        partitions: Vec<OffsetFetchResponsePartition> = Vec::new(), versions 0..=7;
    }
}

message! {
    /// One partition of a single-group OffsetFetchResponse (v1-7).
    pub struct OffsetFetchResponsePartition {
        /// The partition index.
        partition_index: i32 = 0, versions 0..=7;
        /// The committed message offset.
        committed_offset: i64 = 0, versions 0..=7;
        /// The leader epoch, or -1 (KAFKA.md §2: -1 lets clients skip OffsetForLeaderEpoch).
        committed_leader_epoch: i32 = -1, versions 5..=7;
        /// The partition metadata, or null.
        metadata: Option<String> = Some(String::new()), versions 0..=7, nullable 0..=7;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..=7;
    }
}

message! {
    /// One group of a batched OffsetFetchResponse (v8+).
    pub struct OffsetFetchResponseGroup {
        /// The group id.
        group_id: String = String::new(), versions 8..;
        /// The responses per topic.
        topics: Vec<OffsetFetchResponseTopics> = Vec::new(), versions 8..;
        /// The group-level error code, or 0.
        error_code: i16 = 0, versions 8..;
    }
}

message! {
    /// One topic of a group in a batched OffsetFetchResponse (v8+).
    pub struct OffsetFetchResponseTopics {
        /// The topic name (v8-9).
        name: String = String::new(), versions 8..=9;
        /// The topic id (v10+).
        topic_id: Uuid = Uuid::NIL, versions 10..;
        /// The responses per partition.
        partitions: Vec<OffsetFetchResponsePartitions> = Vec::new(), versions 8..;
    }
}

message! {
    /// One partition of a group in a batched OffsetFetchResponse (v8+).
    pub struct OffsetFetchResponsePartitions {
        /// The partition index.
        partition_index: i32 = 0, versions 8..;
        /// The committed message offset.
        committed_offset: i64 = 0, versions 8..;
        /// The leader epoch, or -1.
        committed_leader_epoch: i32 = -1, versions 8..;
        /// The partition metadata, or null.
        metadata: Option<String> = Some(String::new()), versions 8.., nullable 8..;
        /// The partition-level error code, or 0.
        error_code: i16 = 0, versions 8..;
    }
}
