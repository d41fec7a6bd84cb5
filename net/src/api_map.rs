//! Conversions between the codec's wire messages and the core's version-independent
//! [`keel_core::api`] types: a decoded request body becomes an [`api::Request`], and an
//! [`api::Response`] becomes the wire body for the version the client asked for.
//!
//! Every version-specific quirk of the broker side lives here, so the core never branches on
//! versions:
//! - Metadata v0 has no null topic list: an empty list there means "all topics".
//! - Fetch: Keel has no fetch sessions (KIP-227), so every response carries `session_id` 0
//!   and answers in full; clients then keep sending full fetches. `records` is never null
//!   (librdkafka rejects a null record set, KAFKA.md §2). Without transactions the last stable
//!   offset is the high watermark and there are no aborted transactions; there is no
//!   follower fetching (KIP-392), so `preferred_read_replica` is -1.
//! - DeleteTopics names topics by name up to v5 and by name or id from v6.
//!
//! ApiVersions never reaches the core: the driver answers it from
//! [`codec::SUPPORTED_APIS`](crate::codec::SUPPORTED_APIS).

use crate::codec::{self, ApiKey, RequestBody, ResponseBody, Uuid};
use keel_core::api::{self, TopicId, TopicRef};

/// A request body that the core does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is answered by the driver, not the core")]
pub struct NotForCore(pub ApiKey);

/// Whether requests of `key` go to the core (every API but ApiVersions).
pub fn served_by_core(key: ApiKey) -> bool {
    key != ApiKey::ApiVersions
}

/// Converts a decoded request body of version `version` into the core's vocabulary.
pub fn request_from_wire(version: i16, body: RequestBody) -> Result<api::Request, NotForCore> {
    Ok(match body {
        RequestBody::ApiVersions(_) => return Err(NotForCore(ApiKey::ApiVersions)),
        RequestBody::Metadata(r) => api::Request::Metadata(metadata_request(version, r)),
        RequestBody::Produce(r) => api::Request::Produce(produce_request(r)),
        RequestBody::Fetch(r) => api::Request::Fetch(fetch_request(r)),
        RequestBody::ListOffsets(r) => api::Request::ListOffsets(list_offsets_request(r)),
        RequestBody::CreateTopics(r) => api::Request::CreateTopics(create_topics_request(r)),
        RequestBody::DeleteTopics(r) => {
            api::Request::DeleteTopics(delete_topics_request(version, r))
        }
        // APIs the codec knows but the broker does not serve yet: they are not advertised, so
        // `codec::decode_request` never yields them (codec::api).
        other => return Err(NotForCore(other.api_key())),
    })
}

/// Converts the core's response into the wire body to be encoded at `version`.
pub fn response_to_wire(version: i16, response: api::Response) -> ResponseBody {
    // Fields a version lacks are simply not written by the encoder, so one mapping serves
    // every version; `version` matters only where a value must differ.
    let _ = version;
    match response {
        api::Response::Metadata(r) => ResponseBody::Metadata(metadata_response(r)),
        api::Response::Produce(r) => ResponseBody::Produce(produce_response(r)),
        api::Response::Fetch(r) => ResponseBody::Fetch(fetch_response(r)),
        api::Response::ListOffsets(r) => ResponseBody::ListOffsets(list_offsets_response(r)),
        api::Response::CreateTopics(r) => ResponseBody::CreateTopics(create_topics_response(r)),
        api::Response::DeleteTopics(r) => ResponseBody::DeleteTopics(delete_topics_response(r)),
    }
}

/// The API a core response answers.
pub fn response_api_key(response: &api::Response) -> ApiKey {
    match response {
        api::Response::Metadata(_) => ApiKey::Metadata,
        api::Response::Produce(_) => ApiKey::Produce,
        api::Response::Fetch(_) => ApiKey::Fetch,
        api::Response::ListOffsets(_) => ApiKey::ListOffsets,
        api::Response::CreateTopics(_) => ApiKey::CreateTopics,
        api::Response::DeleteTopics(_) => ApiKey::DeleteTopics,
    }
}

/// The first error code in a response, if any: a produce with acks=0 has no response to
/// carry it, so the driver closes the connection instead (as Kafka does).
pub fn first_error(response: &api::Response) -> Option<keel_core::error::ErrorCode> {
    let api::Response::Produce(r) = response else {
        return None;
    };
    r.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.error_code)
        .find(|e| !e.is_ok())
}

fn topic_id(id: Uuid) -> TopicId {
    TopicId(id.0)
}

fn uuid(id: TopicId) -> Uuid {
    Uuid(id.0)
}

// ---- requests ----------------------------------------------------------------------------

fn metadata_request(version: i16, r: codec::MetadataRequest) -> api::MetadataRequest {
    let topics = match r.topics {
        // v0 cannot send null: an empty list is its "all topics".
        Some(t) if version == 0 && t.is_empty() => None,
        None => None,
        Some(t) => Some(
            t.into_iter()
                .map(|t| TopicRef {
                    name: t.name,
                    id: topic_id(t.topic_id),
                })
                .collect(),
        ),
    };
    api::MetadataRequest {
        topics,
        allow_auto_topic_creation: r.allow_auto_topic_creation,
    }
}

fn produce_request(r: codec::ProduceRequest) -> api::ProduceRequest {
    api::ProduceRequest {
        transactional_id: r.transactional_id,
        acks: r.acks,
        timeout_ms: r.timeout_ms,
        topics: r
            .topic_data
            .into_iter()
            .map(|t| api::ProduceTopic {
                name: t.name,
                partitions: t
                    .partition_data
                    .into_iter()
                    .map(|p| api::ProducePartition {
                        partition_index: p.index,
                        records: p.records,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn fetch_request(r: codec::FetchRequest) -> api::FetchRequest {
    // No fetch sessions: session_id/epoch and forgotten topics are ignored, and every fetch
    // is answered in full (the response's session_id 0 tells the client so).
    api::FetchRequest {
        max_wait_ms: r.max_wait_ms,
        min_bytes: r.min_bytes,
        max_bytes: r.max_bytes,
        isolation_level: r.isolation_level,
        topics: r
            .topics
            .into_iter()
            .map(|t| api::FetchTopic {
                name: t.topic,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| api::FetchPartition {
                        partition_index: p.partition,
                        current_leader_epoch: p.current_leader_epoch,
                        fetch_offset: p.fetch_offset,
                        partition_max_bytes: p.partition_max_bytes,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn list_offsets_request(r: codec::ListOffsetsRequest) -> api::ListOffsetsRequest {
    api::ListOffsetsRequest {
        isolation_level: r.isolation_level,
        topics: r
            .topics
            .into_iter()
            .map(|t| api::ListOffsetsTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| api::ListOffsetsPartition {
                        partition_index: p.partition_index,
                        current_leader_epoch: p.current_leader_epoch,
                        timestamp: p.timestamp,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn create_topics_request(r: codec::CreateTopicsRequest) -> api::CreateTopicsRequest {
    api::CreateTopicsRequest {
        topics: r
            .topics
            .into_iter()
            .map(|t| api::CreatableTopic {
                name: t.name,
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor,
                assignments: t
                    .assignments
                    .into_iter()
                    .map(|a| (a.partition_index, a.broker_ids))
                    .collect(),
                configs: t.configs.into_iter().map(|c| (c.name, c.value)).collect(),
            })
            .collect(),
        timeout_ms: r.timeout_ms,
        validate_only: r.validate_only,
    }
}

fn delete_topics_request(version: i16, r: codec::DeleteTopicsRequest) -> api::DeleteTopicsRequest {
    let topics = if version >= 6 {
        r.topics
            .into_iter()
            .map(|t| TopicRef {
                name: t.name,
                id: topic_id(t.topic_id),
            })
            .collect()
    } else {
        r.topic_names
            .into_iter()
            .map(|name| TopicRef {
                name: Some(name),
                id: TopicId::ZERO,
            })
            .collect()
    };
    api::DeleteTopicsRequest {
        topics,
        timeout_ms: r.timeout_ms,
    }
}

// ---- responses ---------------------------------------------------------------------------

fn metadata_response(r: api::MetadataResponse) -> codec::MetadataResponse {
    codec::MetadataResponse {
        brokers: r
            .brokers
            .into_iter()
            .map(|b| codec::MetadataResponseBroker {
                node_id: b.node_id,
                host: b.host,
                port: b.port,
                rack: b.rack,
            })
            .collect(),
        cluster_id: r.cluster_id,
        controller_id: r.controller_id,
        topics: r
            .topics
            .into_iter()
            .map(|t| codec::MetadataResponseTopic {
                error_code: t.error_code.0,
                name: t.name,
                topic_id: uuid(t.topic_id),
                is_internal: t.is_internal,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| codec::MetadataResponsePartition {
                        error_code: p.error_code.0,
                        partition_index: p.partition_index,
                        leader_id: p.leader_id,
                        leader_epoch: p.leader_epoch,
                        replica_nodes: p.replica_nodes,
                        isr_nodes: p.isr_nodes,
                        offline_replicas: p.offline_replicas,
                    })
                    .collect(),
                ..codec::MetadataResponseTopic::default()
            })
            .collect(),
        ..codec::MetadataResponse::default()
    }
}

fn produce_response(r: api::ProduceResponse) -> codec::ProduceResponse {
    codec::ProduceResponse {
        responses: r
            .topics
            .into_iter()
            .map(|t| codec::TopicProduceResponse {
                name: t.name,
                partition_responses: t
                    .partitions
                    .into_iter()
                    .map(|p| codec::PartitionProduceResponse {
                        index: p.partition_index,
                        error_code: p.error_code.0,
                        base_offset: p.base_offset,
                        log_append_time_ms: p.log_append_time_ms,
                        log_start_offset: p.log_start_offset,
                        error_message: p.error_message,
                        ..codec::PartitionProduceResponse::default()
                    })
                    .collect(),
                ..codec::TopicProduceResponse::default()
            })
            .collect(),
        throttle_time_ms: r.throttle_time_ms,
        ..codec::ProduceResponse::default()
    }
}

fn fetch_response(r: api::FetchResponse) -> codec::FetchResponse {
    codec::FetchResponse {
        throttle_time_ms: r.throttle_time_ms,
        error_code: r.error_code.0,
        // No fetch sessions: 0 tells the client to keep sending full fetches.
        session_id: 0,
        responses: r
            .topics
            .into_iter()
            .map(|t| codec::FetchableTopicResponse {
                topic: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| codec::PartitionData {
                        partition_index: p.partition_index,
                        error_code: p.error_code.0,
                        high_watermark: p.high_watermark,
                        // No transactions: everything below the high watermark is stable.
                        last_stable_offset: p.high_watermark,
                        log_start_offset: p.log_start_offset,
                        aborted_transactions: Some(Vec::new()),
                        preferred_read_replica: -1,
                        // Never null: librdkafka fails on "MessageSetSize -1".
                        records: Some(p.records),
                        ..codec::PartitionData::default()
                    })
                    .collect(),
                ..codec::FetchableTopicResponse::default()
            })
            .collect(),
        ..codec::FetchResponse::default()
    }
}

fn list_offsets_response(r: api::ListOffsetsResponse) -> codec::ListOffsetsResponse {
    codec::ListOffsetsResponse {
        topics: r
            .topics
            .into_iter()
            .map(|t| codec::ListOffsetsTopicResponse {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| codec::ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        error_code: p.error_code.0,
                        timestamp: p.timestamp,
                        offset: p.offset,
                        leader_epoch: p.leader_epoch,
                    })
                    .collect(),
            })
            .collect(),
        ..codec::ListOffsetsResponse::default()
    }
}

fn create_topics_response(r: api::CreateTopicsResponse) -> codec::CreateTopicsResponse {
    codec::CreateTopicsResponse {
        topics: r
            .topics
            .into_iter()
            .map(|t| codec::CreatableTopicResult {
                name: t.name,
                topic_id: uuid(t.topic_id),
                error_code: t.error_code.0,
                error_message: t.error_message,
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor,
                configs: Some(
                    t.configs
                        .into_iter()
                        .map(|c| codec::CreatableTopicConfigs {
                            name: c.name,
                            value: c.value,
                            read_only: c.read_only,
                            config_source: c.config_source,
                            is_sensitive: c.is_sensitive,
                        })
                        .collect(),
                ),
                ..codec::CreatableTopicResult::default()
            })
            .collect(),
        ..codec::CreateTopicsResponse::default()
    }
}

fn delete_topics_response(r: api::DeleteTopicsResponse) -> codec::DeleteTopicsResponse {
    codec::DeleteTopicsResponse {
        responses: r
            .responses
            .into_iter()
            .map(|t| codec::DeletableTopicResult {
                name: t.name,
                topic_id: uuid(t.topic_id),
                error_code: t.error_code.0,
                error_message: t.error_message,
            })
            .collect(),
        ..codec::DeleteTopicsResponse::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use keel_core::error::ErrorCode;

    fn round_trip(version: i16, body: ResponseBody) -> ResponseBody {
        let key = body.api_key();
        let mut out = BytesMut::new();
        codec::encode_response(version, 7, &body, &mut out);
        let frame = out.freeze().slice(4..);
        let (correlation_id, decoded) = codec::decode_response(key, version, frame).unwrap();
        assert_eq!(correlation_id, 7);
        decoded
    }

    #[test]
    fn metadata_v0_empty_list_means_all_topics() {
        let r = codec::MetadataRequest {
            topics: Some(vec![]),
            ..Default::default()
        };
        let api::Request::Metadata(m) =
            request_from_wire(0, RequestBody::Metadata(r.clone())).unwrap()
        else {
            panic!()
        };
        assert_eq!(m.topics, None);
        let api::Request::Metadata(m) = request_from_wire(1, RequestBody::Metadata(r)).unwrap()
        else {
            panic!()
        };
        assert_eq!(m.topics, Some(vec![]));
    }

    #[test]
    fn delete_topics_by_name_before_v6_and_by_id_from_v6() {
        let r = codec::DeleteTopicsRequest {
            topic_names: vec!["a".into()],
            topics: vec![codec::DeleteTopicState {
                name: None,
                topic_id: Uuid([7; 16]),
            }],
            timeout_ms: 5,
        };
        let api::Request::DeleteTopics(d) =
            request_from_wire(5, RequestBody::DeleteTopics(r.clone())).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            d.topics,
            vec![TopicRef {
                name: Some("a".into()),
                id: TopicId::ZERO
            }]
        );
        let api::Request::DeleteTopics(d) =
            request_from_wire(6, RequestBody::DeleteTopics(r)).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            d.topics,
            vec![TopicRef {
                name: None,
                id: TopicId([7; 16])
            }]
        );
    }

    #[test]
    fn api_versions_is_not_for_the_core() {
        let body = RequestBody::ApiVersions(codec::ApiVersionsRequest::default());
        assert_eq!(
            request_from_wire(3, body),
            Err(NotForCore(ApiKey::ApiVersions))
        );
    }

    /// KAFKA.md §2: an empty record set is encoded as empty, never null; no fetch sessions.
    #[test]
    fn fetch_response_quirks_survive_every_version() {
        let response = api::Response::Fetch(api::FetchResponse {
            topics: vec![api::FetchTopicResponse {
                name: "t".into(),
                partitions: vec![api::FetchPartitionResponse {
                    partition_index: 0,
                    error_code: ErrorCode::NONE,
                    high_watermark: 10,
                    last_stable_offset: -1,
                    log_start_offset: 0,
                    records: Bytes::new(),
                }],
            }],
            ..Default::default()
        });
        let (min, max) = codec::supported_range(ApiKey::Fetch);
        for version in min..=max {
            let ResponseBody::Fetch(f) =
                round_trip(version, response_to_wire(version, response.clone()))
            else {
                panic!()
            };
            let p = &f.responses[0].partitions[0];
            assert_eq!(p.records, Some(Bytes::new()), "v{version}");
            assert_eq!(p.last_stable_offset, 10, "v{version}");
            assert_eq!(p.aborted_transactions, Some(vec![]), "v{version}");
            assert_eq!(f.session_id, 0);
            if version >= 11 {
                assert_eq!(p.preferred_read_replica, -1);
            }
        }
    }

    #[test]
    fn metadata_response_carries_topic_ids_and_controller() {
        let response = api::Response::Metadata(api::MetadataResponse {
            brokers: vec![api::BrokerInfo {
                node_id: 1,
                host: "h".into(),
                port: 9092,
                rack: None,
            }],
            cluster_id: Some("c".into()),
            controller_id: 1,
            topics: vec![api::MetadataTopic {
                name: Some("t".into()),
                topic_id: TopicId([3; 16]),
                partitions: vec![api::MetadataPartition {
                    leader_id: 1,
                    replica_nodes: vec![1],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        let ResponseBody::Metadata(m) = round_trip(12, response_to_wire(12, response.clone()))
        else {
            panic!()
        };
        assert_eq!(m.controller_id, 1);
        assert_eq!(m.topics[0].topic_id, Uuid([3; 16]));
        assert_eq!(m.brokers[0].port, 9092);
        let ResponseBody::Metadata(m) = round_trip(0, response_to_wire(0, response)) else {
            panic!()
        };
        assert_eq!(m.topics[0].name.as_deref(), Some("t"));
    }

    #[test]
    fn acks_zero_errors_are_found() {
        let mut r = api::ProduceResponse {
            topics: vec![api::ProduceTopicResponse {
                name: "t".into(),
                partitions: vec![api::ProducePartitionResponse::error(
                    0,
                    ErrorCode::NONE,
                    None,
                )],
            }],
            throttle_time_ms: 0,
        };
        assert_eq!(first_error(&api::Response::Produce(r.clone())), None);
        r.topics[0].partitions[0].error_code = ErrorCode::CORRUPT_MESSAGE;
        assert_eq!(
            first_error(&api::Response::Produce(r)),
            Some(ErrorCode::CORRUPT_MESSAGE)
        );
    }
}
