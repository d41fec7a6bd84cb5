//! OffsetDelete (key 47) request and response, version 0 (no flexible version).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/OffsetDelete{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// OffsetDeleteRequest.
    pub struct OffsetDeleteRequest flexible none {
        /// The unique group identifier.
        group_id: String = String::new(), versions 0..;
        /// The topics to delete offsets for.
        topics: Vec<OffsetDeleteRequestTopic> = Vec::new(), versions 0..;
    }
}

message! {
    /// One topic to delete offsets for.
    pub struct OffsetDeleteRequestTopic {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// Each partition to delete offsets for.
        partitions: Vec<OffsetDeleteRequestPartition> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition to delete the offset of.
    pub struct OffsetDeleteRequestPartition {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
    }
}

message! {
    /// OffsetDeleteResponse.
    pub struct OffsetDeleteResponse flexible none {
        /// The top-level error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The responses for each topic.
        topics: Vec<OffsetDeleteResponseTopic> = Vec::new(), versions 0..;
    }
}

message! {
    /// The deletion results of one topic.
    pub struct OffsetDeleteResponseTopic {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// The responses for each partition in the topic.
        partitions: Vec<OffsetDeleteResponsePartition> = Vec::new(), versions 0..;
    }
}

message! {
    /// The deletion result of one partition.
    pub struct OffsetDeleteResponsePartition {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
    }
}
