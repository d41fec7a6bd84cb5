//! Metadata (key 3) request and response, versions 0-13 (flexible from 9, topic ids from 10).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/Metadata{Request,Response}.json.

use crate::codec::schema::message;
use crate::codec::wire::Uuid;

message! {
    /// MetadataRequest: brokers and topic partitions, for some or all topics.
    pub struct MetadataRequest flexible 9 {
        /// The topics to fetch metadata for; null (v1+) means all topics.
        topics: Option<Vec<MetadataRequestTopic>> = Some(Vec::new()), versions 0.., nullable 1..;
        /// Whether the broker may auto-create topics that do not exist.
        allow_auto_topic_creation: bool = true, versions 4..;
        /// Whether to include cluster authorized operations.
        include_cluster_authorized_operations: bool = false, versions 8..=10;
        /// Whether to include topic authorized operations.
        include_topic_authorized_operations: bool = false, versions 8..;
    }
}

message! {
    /// A topic named in a MetadataRequest.
    pub struct MetadataRequestTopic {
        /// The topic id.
        topic_id: Uuid = Uuid::NIL, versions 10..;
        /// The topic name (null from v10 when the id is used).
        name: Option<String> = Some(String::new()), versions 0.., nullable 10..;
    }
}

message! {
    /// MetadataResponse.
    pub struct MetadataResponse flexible 9 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 3..;
        /// Each broker in the response.
        brokers: Vec<MetadataResponseBroker> = Vec::new(), versions 0..;
        /// The cluster id of the responding broker.
        cluster_id: Option<String> = None, versions 2.., nullable 2..;
        /// The id of the controller broker.
        controller_id: i32 = -1, versions 1..;
        /// Each topic in the response.
        topics: Vec<MetadataResponseTopic> = Vec::new(), versions 0..;
        /// 32-bit bitfield of authorized operations for the cluster.
        cluster_authorized_operations: i32 = i32::MIN, versions 8..=10;
        /// The top-level error code.
        error_code: i16 = 0, versions 13..;
    }
}

message! {
    /// A broker in a MetadataResponse.
    pub struct MetadataResponseBroker {
        /// The broker id.
        node_id: i32 = 0, versions 0..;
        /// The broker hostname.
        host: String = String::new(), versions 0..;
        /// The broker port.
        port: i32 = 0, versions 0..;
        /// The rack of the broker, or null.
        rack: Option<String> = None, versions 1.., nullable 1..;
    }
}

message! {
    /// A topic in a MetadataResponse.
    pub struct MetadataResponseTopic {
        /// The topic error, or 0.
        error_code: i16 = 0, versions 0..;
        /// The topic name (nullable from v12).
        name: Option<String> = Some(String::new()), versions 0.., nullable 12..;
        /// The topic id.
        topic_id: Uuid = Uuid::NIL, versions 10..;
        /// True if the topic is internal.
        is_internal: bool = false, versions 1..;
        /// Each partition in the topic.
        partitions: Vec<MetadataResponsePartition> = Vec::new(), versions 0..;
        /// 32-bit bitfield of authorized operations for this topic.
        topic_authorized_operations: i32 = i32::MIN, versions 8..;
    }
}

message! {
    /// A partition in a MetadataResponse.
    pub struct MetadataResponsePartition {
        /// The partition error, or 0.
        error_code: i16 = 0, versions 0..;
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The id of the leader broker.
        leader_id: i32 = 0, versions 0..;
        /// The leader epoch of this partition.
        leader_epoch: i32 = -1, versions 7..;
        /// All nodes that host this partition.
        replica_nodes: Vec<i32> = Vec::new(), versions 0..;
        /// Nodes in sync with the leader.
        isr_nodes: Vec<i32> = Vec::new(), versions 0..;
        /// Offline replicas of this partition.
        offline_replicas: Vec<i32> = Vec::new(), versions 5..;
    }
}
