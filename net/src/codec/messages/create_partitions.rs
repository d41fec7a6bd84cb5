//! CreatePartitions (key 37) request and response, versions 0-3 (flexible from 2).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/CreatePartitions{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// CreatePartitionsRequest.
    pub struct CreatePartitionsRequest flexible 2 {
        /// Each topic to add partitions to.
        topics: Vec<CreatePartitionsTopic> = Vec::new(), versions 0..;
        /// The time in ms to wait for the partitions to be created.
        timeout_ms: i32 = 0, versions 0..;
        /// If true, then validate the request, but don't actually increase the number of
        /// partitions.
        validate_only: bool = false, versions 0..;
    }
}

message! {
    /// One topic to add partitions to.
    pub struct CreatePartitionsTopic {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// The new partition count.
        count: i32 = 0, versions 0..;
        /// The new partition assignments, or null to let the controller place them.
        assignments: Option<Vec<CreatePartitionsAssignment>> = Some(Vec::new()), versions 0.., nullable 0..;
    }
}

message! {
    /// The replicas of one new partition.
    pub struct CreatePartitionsAssignment {
        /// The assigned broker ids.
        broker_ids: Vec<i32> = Vec::new(), versions 0..;
    }
}

message! {
    /// CreatePartitionsResponse.
    pub struct CreatePartitionsResponse flexible 2 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The partition creation results for each topic.
        results: Vec<CreatePartitionsTopicResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// The partition creation result of one topic.
    pub struct CreatePartitionsTopicResult {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// The result error, or 0.
        error_code: i16 = 0, versions 0..;
        /// The result message, or null.
        error_message: Option<String> = None, versions 0.., nullable 0..;
    }
}
