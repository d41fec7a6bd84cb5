//! DeleteRecords (key 21) request and response, versions 0-2 (flexible from 2).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DeleteRecords{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// DeleteRecordsRequest: move log start offsets forward.
    pub struct DeleteRecordsRequest flexible 2 {
        /// Each topic to delete records from.
        topics: Vec<DeleteRecordsTopic> = Vec::new(), versions 0..;
        /// How long to wait for the deletion to complete, in milliseconds.
        timeout_ms: i32 = 0, versions 0..;
    }
}

message! {
    /// One topic to delete records from.
    pub struct DeleteRecordsTopic {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// Each partition to delete records from.
        partitions: Vec<DeleteRecordsPartition> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition to delete records from.
    pub struct DeleteRecordsPartition {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The deletion offset (-1: the high watermark).
        offset: i64 = 0, versions 0..;
    }
}

message! {
    /// DeleteRecordsResponse.
    pub struct DeleteRecordsResponse flexible 2 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// Each topic that we wanted to delete records from.
        topics: Vec<DeleteRecordsTopicResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// The deletion results of one topic.
    pub struct DeleteRecordsTopicResult {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// Each partition that we wanted to delete records from.
        partitions: Vec<DeleteRecordsPartitionResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// The deletion result of one partition.
    pub struct DeleteRecordsPartitionResult {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The partition low watermark (its new log start offset).
        low_watermark: i64 = 0, versions 0..;
        /// The deletion error code, or 0.
        error_code: i16 = 0, versions 0..;
    }
}
