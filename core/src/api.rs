//! The broker's request and response vocabulary, independent of wire versions.
//!
//! keel-net decodes a Kafka request of any supported version into one of these, and encodes
//! the response at the version the client asked for. The core therefore never branches on
//! API versions: a field a version lacks is simply ignored or defaulted by the codec layer.
//! Field names follow Kafka's message schemas.

use crate::error::ErrorCode;
use bytes::Bytes;

/// A connection as the driver numbers it; the core only echoes it back.
pub type ConnId = u64;
/// A request as the driver numbers it (unique per node run); responses carry it back.
pub type RequestId = u64;

/// Kafka's topic id (KIP-516), a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    pub const ZERO: TopicId = TopicId([0; 16]);
    pub fn is_zero(&self) -> bool {
        *self == TopicId::ZERO
    }
}

/// A topic named by name or, in newer API versions, by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicRef {
    pub name: Option<String>,
    pub id: TopicId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Metadata(MetadataRequest),
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Metadata(MetadataResponse),
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
}

// ---- Metadata ----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataRequest {
    /// `None` asks for every topic.
    pub topics: Option<Vec<TopicRef>>,
    pub allow_auto_topic_creation: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataResponse {
    pub brokers: Vec<BrokerInfo>,
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub topics: Vec<MetadataTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataTopic {
    pub error_code: ErrorCode,
    pub name: Option<String>,
    pub topic_id: TopicId,
    pub is_internal: bool,
    pub partitions: Vec<MetadataPartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataPartition {
    pub error_code: ErrorCode,
    pub partition_index: i32,
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub replica_nodes: Vec<i32>,
    pub isr_nodes: Vec<i32>,
    pub offline_replicas: Vec<i32>,
}

// ---- Produce -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProduceRequest {
    pub transactional_id: Option<String>,
    /// 0: no response; 1: after the leader's append; -1: after the data is durable.
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<ProduceTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProduceTopic {
    pub name: String,
    pub partitions: Vec<ProducePartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProducePartition {
    pub partition_index: i32,
    /// The record batch bytes exactly as sent: a slice of the request frame, never copied.
    pub records: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProduceResponse {
    pub topics: Vec<ProduceTopicResponse>,
    pub throttle_time_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProduceTopicResponse {
    pub name: String,
    pub partitions: Vec<ProducePartitionResponse>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProducePartitionResponse {
    pub partition_index: i32,
    pub error_code: ErrorCode,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub error_message: Option<String>,
}

impl ProducePartitionResponse {
    pub fn error(partition_index: i32, error_code: ErrorCode, message: Option<String>) -> Self {
        ProducePartitionResponse {
            partition_index,
            error_code,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            error_message: message,
        }
    }
}

// ---- Fetch -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchRequest {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    /// 0 read_uncommitted, 1 read_committed (the same without transactions).
    pub isolation_level: i8,
    pub topics: Vec<FetchTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchTopic {
    pub name: String,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchPartition {
    pub partition_index: i32,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchResponse {
    pub throttle_time_ms: i32,
    pub error_code: ErrorCode,
    pub topics: Vec<FetchTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchTopicResponse {
    pub name: String,
    pub partitions: Vec<FetchPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchPartitionResponse {
    pub partition_index: i32,
    pub error_code: ErrorCode,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Stored batches exactly as on disk; empty (never null: librdkafka rejects a null
    /// record set) when there is nothing to return.
    pub records: Bytes,
}

// ---- ListOffsets -------------------------------------------------------------------------

/// ListOffsets timestamp asking for the offset after the last record.
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets timestamp asking for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp asking for the record with the largest timestamp (KIP-734).
pub const MAX_TIMESTAMP: i64 = -3;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsRequest {
    pub isolation_level: i8,
    pub topics: Vec<ListOffsetsTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsTopic {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsPartition {
    pub partition_index: i32,
    pub current_leader_epoch: i32,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsResponse {
    pub topics: Vec<ListOffsetsTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsTopicResponse {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsPartitionResponse {
    pub partition_index: i32,
    pub error_code: ErrorCode,
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: i32,
}

// ---- CreateTopics / DeleteTopics ---------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateTopicsRequest {
    pub topics: Vec<CreatableTopic>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatableTopic {
    pub name: String,
    /// -1: the broker default.
    pub num_partitions: i32,
    /// -1: the broker default.
    pub replication_factor: i16,
    /// Manual assignment: (partition, broker ids).
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateTopicsResponse {
    pub topics: Vec<CreatableTopicResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatableTopicResult {
    pub name: String,
    pub topic_id: TopicId,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<TopicConfigEntry>,
}

/// One effective topic config in a CreateTopics response (v5+).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopicConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// Kafka's ConfigSource: 1 topic config, 5 default.
    pub config_source: i8,
    pub is_sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteTopicsRequest {
    pub topics: Vec<TopicRef>,
    pub timeout_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteTopicsResponse {
    pub responses: Vec<DeletableTopicResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeletableTopicResult {
    pub name: Option<String>,
    pub topic_id: TopicId,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}
