//! Produce (key 0) request and response, versions 3-13 (flexible from 9, topic ids from 13).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/Produce{Request,Response}.json.
//! `records` is a zero-copy slice of the request frame (one RecordBatch for v3+).

use bytes::Bytes;

use crate::codec::schema::message;
use crate::codec::wire::Uuid;

message! {
    /// ProduceRequest.
    pub struct ProduceRequest flexible 9 {
        /// The transactional id, or null if the producer is not transactional.
        transactional_id: Option<String> = None, versions 3.., nullable 3..;
        /// 0: no acknowledgement, 1: leader only, -1: full ISR.
        acks: i16 = 0, versions 0..;
        /// The timeout to await a response in milliseconds.
        timeout_ms: i32 = 0, versions 0..;
        /// Each topic to produce to.
        topic_data: Vec<TopicProduceData> = Vec::new(), versions 0..;
    }
}

message! {
    /// One topic in a ProduceRequest.
    pub struct TopicProduceData {
        /// The topic name.
        name: String = String::new(), versions 0..=12;
        /// The topic id.
        topic_id: Uuid = Uuid::NIL, versions 13..;
        /// Each partition to produce to.
        partition_data: Vec<PartitionProduceData> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition in a ProduceRequest.
    pub struct PartitionProduceData {
        /// The partition index.
        index: i32 = 0, versions 0..;
        /// The record data to be produced (a slice of the request frame).
        records: Option<Bytes> = Some(Bytes::new()), versions 0.., nullable 0..;
    }
}

message! {
    /// ProduceResponse.
    pub struct ProduceResponse flexible 9 {
        /// Each produce response.
        responses: Vec<TopicProduceResponse> = Vec::new(), versions 0..;
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
    }
    tagged {
        /// Endpoints for all current leaders named in NOT_LEADER_OR_FOLLOWER errors.
        0 => node_endpoints: Vec<NodeEndpoint> = Vec::new(), versions 10..;
    }
}

message! {
    /// One topic in a ProduceResponse.
    pub struct TopicProduceResponse {
        /// The topic name.
        name: String = String::new(), versions 0..=12;
        /// The topic id.
        topic_id: Uuid = Uuid::NIL, versions 13..;
        /// Each partition that was produced to.
        partition_responses: Vec<PartitionProduceResponse> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition in a ProduceResponse.
    pub struct PartitionProduceResponse {
        /// The partition index.
        index: i32 = 0, versions 0..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The base offset.
        base_offset: i64 = 0, versions 0..;
        /// The LogAppendTime timestamp, or -1 for CreateTime.
        log_append_time_ms: i64 = -1, versions 2..;
        /// The log start offset.
        log_start_offset: i64 = -1, versions 5..;
        /// The batch indices of records that caused the batch to be dropped.
        record_errors: Vec<BatchIndexAndErrorMessage> = Vec::new(), versions 8..;
        /// The global error message summarizing the common root cause.
        error_message: Option<String> = None, versions 8.., nullable 8..;
    }
    tagged {
        /// The leader broker the producer should use next (KIP-951).
        0 => current_leader: LeaderIdAndEpoch = LeaderIdAndEpoch::default(), versions 10..;
    }
}

message! {
    /// A record in a batch that caused the batch to be dropped.
    pub struct BatchIndexAndErrorMessage {
        /// The batch index of the record.
        batch_index: i32 = 0, versions 8..;
        /// The error message of the record, or null.
        batch_index_error_message: Option<String> = None, versions 8.., nullable 8..;
    }
}

message! {
    /// A partition leader and its epoch.
    pub struct LeaderIdAndEpoch {
        /// The id of the current leader, or -1.
        leader_id: i32 = -1, versions 10..;
        /// The latest known leader epoch.
        leader_epoch: i32 = -1, versions 10..;
    }
}

message! {
    /// A broker endpoint.
    pub struct NodeEndpoint {
        /// The node id.
        node_id: i32 = 0, versions 10..;
        /// The node's hostname.
        host: String = String::new(), versions 10..;
        /// The node's port.
        port: i32 = 0, versions 10..;
        /// The rack of the node, or null.
        rack: Option<String> = None, versions 10.., nullable 10..;
    }
}
