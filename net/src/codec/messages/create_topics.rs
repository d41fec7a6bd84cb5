//! CreateTopics (key 19) request and response, versions 2-7 (flexible from 5).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/CreateTopics{Request,Response}.json.

use crate::codec::schema::message;
use crate::codec::wire::Uuid;

message! {
    /// CreateTopicsRequest.
    pub struct CreateTopicsRequest flexible 5 {
        /// The topics to create.
        topics: Vec<CreatableTopic> = Vec::new(), versions 0..;
        /// How long to wait in milliseconds before timing out the request.
        timeout_ms: i32 = 60000, versions 0..;
        /// If true, check that the topics can be created but do not create them.
        validate_only: bool = false, versions 1..;
    }
}

message! {
    /// A topic to create.
    pub struct CreatableTopic {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// The number of partitions, or -1 if assignments are given or for the default.
        num_partitions: i32 = 0, versions 0..;
        /// The replication factor, or -1 if assignments are given or for the default.
        replication_factor: i16 = 0, versions 0..;
        /// The manual partition assignment, or empty.
        assignments: Vec<CreatableReplicaAssignment> = Vec::new(), versions 0..;
        /// The custom topic configurations.
        configs: Vec<CreatableTopicConfig> = Vec::new(), versions 0..;
    }
}

message! {
    /// A manual replica assignment for one partition.
    pub struct CreatableReplicaAssignment {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The brokers to place the partition on.
        broker_ids: Vec<i32> = Vec::new(), versions 0..;
    }
}

message! {
    /// A topic configuration to set.
    pub struct CreatableTopicConfig {
        /// The configuration name.
        name: String = String::new(), versions 0..;
        /// The configuration value.
        value: Option<String> = None, versions 0.., nullable 0..;
    }
}

message! {
    /// CreateTopicsResponse.
    pub struct CreateTopicsResponse flexible 5 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 2..;
        /// Results for each topic we tried to create.
        topics: Vec<CreatableTopicResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// The result of creating one topic.
    pub struct CreatableTopicResult {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// The unique topic id.
        topic_id: Uuid = Uuid::NIL, versions 7..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The error message, or null.
        error_message: Option<String> = None, versions 1.., nullable 0..;
        /// Number of partitions of the topic.
        num_partitions: i32 = -1, versions 5..;
        /// Replication factor of the topic.
        replication_factor: i16 = -1, versions 5..;
        /// Configuration of the topic.
        configs: Option<Vec<CreatableTopicConfigs>> = Some(Vec::new()), versions 5.., nullable 5..;
    }
    tagged {
        /// Optional topic config error returned if configs are not returned in the response.
        0 => topic_config_error_code: i16 = 0, versions 5..;
    }
}

message! {
    /// One configuration of a created topic.
    pub struct CreatableTopicConfigs {
        /// The configuration name.
        name: String = String::new(), versions 5..;
        /// The configuration value.
        value: Option<String> = None, versions 5.., nullable 5..;
        /// True if the configuration is read-only.
        read_only: bool = false, versions 5..;
        /// The configuration source.
        config_source: i8 = -1, versions 5..;
        /// True if this configuration is sensitive.
        is_sensitive: bool = false, versions 5..;
    }
}
