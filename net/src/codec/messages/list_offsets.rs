//! ListOffsets (key 2) request and response, versions 1-10 (flexible from 6).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/ListOffsets{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// ListOffsetsRequest.
    pub struct ListOffsetsRequest flexible 6 {
        /// The broker id of the requester, or -1 for a normal consumer.
        replica_id: i32 = 0, versions 0..;
        /// 0: READ_UNCOMMITTED, 1: READ_COMMITTED.
        isolation_level: i8 = 0, versions 2..;
        /// Each topic in the request.
        topics: Vec<ListOffsetsTopic> = Vec::new(), versions 0..;
        /// The timeout to await a response in milliseconds (for remote storage).
        timeout_ms: i32 = 0, versions 10..;
    }
}

message! {
    /// One topic in a ListOffsetsRequest.
    pub struct ListOffsetsTopic {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// Each partition in the request.
        partitions: Vec<ListOffsetsPartition> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition in a ListOffsetsRequest.
    pub struct ListOffsetsPartition {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The current leader epoch.
        current_leader_epoch: i32 = -1, versions 4..;
        /// The target timestamp (-1 latest, -2 earliest, ...).
        timestamp: i64 = 0, versions 0..;
    }
}

message! {
    /// ListOffsetsResponse.
    pub struct ListOffsetsResponse flexible 6 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 2..;
        /// Each topic in the response.
        topics: Vec<ListOffsetsTopicResponse> = Vec::new(), versions 0..;
    }
}

message! {
    /// One topic in a ListOffsetsResponse.
    pub struct ListOffsetsTopicResponse {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// Each partition in the response.
        partitions: Vec<ListOffsetsPartitionResponse> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition in a ListOffsetsResponse.
    pub struct ListOffsetsPartitionResponse {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The partition error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The timestamp associated with the returned offset.
        timestamp: i64 = -1, versions 1..;
        /// The returned offset.
        offset: i64 = -1, versions 1..;
        /// The leader epoch of the returned offset.
        leader_epoch: i32 = -1, versions 4..;
    }
}
