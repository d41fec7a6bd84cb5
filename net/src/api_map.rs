//! Conversions between the codec's wire messages and the core's version-independent
//! [`keel_core::api`] types: a decoded request body becomes an [`api::Request`], and an
//! [`api::Response`] becomes the wire body for the version the client asked for.
//!
//! Every version-specific quirk of the broker side lives here, so the core never branches on
//! versions:
//! - Metadata v0 has no null topic list: an empty list there means "all topics".
//! - Fetch: session fields exist from v7; before it a fetch is sessionless (session 0,
//!   epoch -1), which the core answers in full (KIP-227 lives in broker/fetch_session.rs).
//!   `records` is never null
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
        RequestBody::DeleteRecords(r) => api::Request::DeleteRecords(delete_records_request(r)),
        RequestBody::CreatePartitions(r) => {
            api::Request::CreatePartitions(create_partitions_request(r))
        }
        // v0 has no endpoint_type and v0-1 no include_fenced_brokers: the codec defaults
        // them to brokers (1) and false, which is what those versions mean.
        RequestBody::DescribeQuorum(r) => {
            api::Request::DescribeQuorum(api::DescribeQuorumRequest {
                topics: r
                    .topics
                    .into_iter()
                    .map(|t| {
                        let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
                        (t.topic_name, partitions)
                    })
                    .collect(),
            })
        }
        RequestBody::DescribeCluster(r) => {
            api::Request::DescribeCluster(api::DescribeClusterRequest {
                include_cluster_authorized_operations: r.include_cluster_authorized_operations,
                endpoint_type: r.endpoint_type,
                include_fenced_brokers: r.include_fenced_brokers,
            })
        }
        RequestBody::DescribeConfigs(r) => {
            api::Request::DescribeConfigs(describe_configs_request(r))
        }
        // Every version carries the same fields; v2 only adds tagged fields.
        RequestBody::DescribeLogDirs(r) => {
            api::Request::DescribeLogDirs(api::DescribeLogDirsRequest {
                topics: r.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| api::DescribableLogDirTopic {
                            topic: t.topic,
                            partitions: t.partitions,
                        })
                        .collect()
                }),
            })
        }
        RequestBody::AlterConfigs(r) => api::Request::AlterConfigs(alter_configs_request(r)),
        RequestBody::IncrementalAlterConfigs(r) => {
            api::Request::IncrementalAlterConfigs(incremental_alter_configs_request(r))
        }
        RequestBody::FindCoordinator(r) => {
            api::Request::FindCoordinator(find_coordinator_request(version, r))
        }
        RequestBody::JoinGroup(r) => api::Request::JoinGroup(join_group_request(version, r)),
        RequestBody::SyncGroup(r) => api::Request::SyncGroup(sync_group_request(r)),
        RequestBody::Heartbeat(r) => api::Request::Heartbeat(heartbeat_request(r)),
        RequestBody::LeaveGroup(r) => api::Request::LeaveGroup(leave_group_request(version, r)),
        RequestBody::OffsetCommit(r) => api::Request::OffsetCommit(offset_commit_request(r)),
        RequestBody::OffsetFetch(r) => api::Request::OffsetFetch(offset_fetch_request(version, r)),
        RequestBody::ListGroups(r) => api::Request::ListGroups(api::ListGroupsRequest {
            states_filter: r.states_filter,
            types_filter: r.types_filter,
        }),
        RequestBody::DescribeGroups(r) => {
            api::Request::DescribeGroups(api::DescribeGroupsRequest {
                groups: r.groups,
                include_authorized_operations: r.include_authorized_operations,
            })
        }
        RequestBody::DeleteGroups(r) => api::Request::DeleteGroups(api::DeleteGroupsRequest {
            groups_names: r.groups_names,
        }),
        RequestBody::OffsetDelete(r) => api::Request::OffsetDelete(offset_delete_request(r)),
        // Without an authorizer only the number of creations and filters matters.
        RequestBody::DescribeAcls(_) => api::Request::Acls(api::AclRequest::Describe),
        RequestBody::CreateAcls(r) => api::Request::Acls(api::AclRequest::Create {
            creations: r.creations.len(),
        }),
        RequestBody::DeleteAcls(r) => api::Request::Acls(api::AclRequest::Delete {
            filters: r.filters.len(),
        }),
        // On PLAINTEXT only the owner a CreateDelegationToken names matters.
        RequestBody::CreateDelegationToken(r) => {
            api::Request::DelegationToken(api::DelegationTokenRequest::Create {
                owner_principal_type: r.owner_principal_type,
                owner_principal_name: r.owner_principal_name,
            })
        }
        RequestBody::RenewDelegationToken(_) => {
            api::Request::DelegationToken(api::DelegationTokenRequest::Renew)
        }
        RequestBody::ExpireDelegationToken(_) => {
            api::Request::DelegationToken(api::DelegationTokenRequest::Expire)
        }
        RequestBody::DescribeDelegationToken(_) => {
            api::Request::DelegationToken(api::DelegationTokenRequest::Describe)
        }
        RequestBody::InitProducerId(r) => {
            api::Request::InitProducerId(api::InitProducerIdRequest {
                transactional_id: r.transactional_id,
                transaction_timeout_ms: r.transaction_timeout_ms,
                // Before v3 the fields are absent and the codec leaves them at -1.
                producer_id: r.producer_id,
                producer_epoch: r.producer_epoch,
            })
        }
    })
}

/// Converts the core's response into the wire body to be encoded at `version`.
pub fn response_to_wire(version: i16, response: api::Response) -> ResponseBody {
    // Fields a version lacks are simply not written by the encoder, so one mapping serves
    // every version; `version` matters only where a value must differ.
    match response {
        api::Response::Metadata(r) => ResponseBody::Metadata(metadata_response(r)),
        api::Response::Produce(r) => ResponseBody::Produce(produce_response(r)),
        api::Response::Fetch(r) => ResponseBody::Fetch(fetch_response(r)),
        api::Response::ListOffsets(r) => ResponseBody::ListOffsets(list_offsets_response(r)),
        api::Response::CreateTopics(r) => ResponseBody::CreateTopics(create_topics_response(r)),
        api::Response::DeleteTopics(r) => ResponseBody::DeleteTopics(delete_topics_response(r)),
        api::Response::DeleteRecords(r) => ResponseBody::DeleteRecords(delete_records_response(r)),
        api::Response::CreatePartitions(r) => {
            ResponseBody::CreatePartitions(create_partitions_response(r))
        }
        api::Response::DescribeCluster(r) => {
            ResponseBody::DescribeCluster(describe_cluster_response(r))
        }
        api::Response::DescribeQuorum(r) => {
            ResponseBody::DescribeQuorum(describe_quorum_response(r))
        }
        api::Response::DescribeLogDirs(r) => {
            ResponseBody::DescribeLogDirs(describe_log_dirs_response(r))
        }
        api::Response::DescribeConfigs(r) => {
            ResponseBody::DescribeConfigs(describe_configs_response(r))
        }
        api::Response::AlterConfigs(r) => ResponseBody::AlterConfigs(alter_configs_response(r)),
        api::Response::IncrementalAlterConfigs(r) => {
            ResponseBody::IncrementalAlterConfigs(incremental_alter_configs_response(r))
        }
        api::Response::FindCoordinator(r) => {
            ResponseBody::FindCoordinator(find_coordinator_response(version, r))
        }
        api::Response::JoinGroup(r) => ResponseBody::JoinGroup(join_group_response(version, r)),
        api::Response::SyncGroup(r) => ResponseBody::SyncGroup(codec::SyncGroupResponse {
            throttle_time_ms: r.throttle_time_ms,
            error_code: r.error_code.0,
            protocol_type: r.protocol_type,
            protocol_name: r.protocol_name,
            assignment: r.assignment,
        }),
        api::Response::Heartbeat(r) => ResponseBody::Heartbeat(codec::HeartbeatResponse {
            throttle_time_ms: r.throttle_time_ms,
            error_code: r.error_code.0,
        }),
        api::Response::LeaveGroup(r) => ResponseBody::LeaveGroup(leave_group_response(version, r)),
        api::Response::OffsetCommit(r) => ResponseBody::OffsetCommit(offset_commit_response(r)),
        api::Response::OffsetFetch(r) => {
            ResponseBody::OffsetFetch(offset_fetch_response(version, r))
        }
        api::Response::ListGroups(r) => ResponseBody::ListGroups(list_groups_response(r)),
        api::Response::DescribeGroups(r) => {
            ResponseBody::DescribeGroups(describe_groups_response(r))
        }
        api::Response::DeleteGroups(r) => ResponseBody::DeleteGroups(codec::DeleteGroupsResponse {
            throttle_time_ms: r.throttle_time_ms,
            results: r
                .results
                .into_iter()
                .map(|g| codec::DeletableGroupResult {
                    group_id: g.group_id,
                    error_code: g.error_code.0,
                })
                .collect(),
        }),
        api::Response::OffsetDelete(r) => ResponseBody::OffsetDelete(offset_delete_response(r)),
        api::Response::InitProducerId(r) => {
            ResponseBody::InitProducerId(codec::InitProducerIdResponse {
                throttle_time_ms: r.throttle_time_ms,
                error_code: r.error_code.0,
                producer_id: r.producer_id,
                producer_epoch: r.producer_epoch,
                ..codec::InitProducerIdResponse::default()
            })
        }
        api::Response::Acls(api::AclResponse::Describe(r)) => {
            ResponseBody::DescribeAcls(codec::DescribeAclsResponse {
                error_code: r.error_code.0,
                error_message: r.error_message,
                ..codec::DescribeAclsResponse::default()
            })
        }
        api::Response::Acls(api::AclResponse::Create(results)) => {
            ResponseBody::CreateAcls(codec::CreateAclsResponse {
                throttle_time_ms: 0,
                results: results
                    .into_iter()
                    .map(|r| codec::AclCreationResult {
                        error_code: r.error_code.0,
                        error_message: r.error_message,
                    })
                    .collect(),
            })
        }
        api::Response::DelegationToken(api::DelegationTokenResponse::Create {
            error_code,
            owner,
            requester,
            issue_timestamp_ms,
            expiry_timestamp_ms,
            max_timestamp_ms,
        }) => ResponseBody::CreateDelegationToken(codec::CreateDelegationTokenResponse {
            error_code: error_code.0,
            principal_type: owner.principal_type,
            principal_name: owner.name,
            token_requester_principal_type: requester.principal_type,
            token_requester_principal_name: requester.name,
            issue_timestamp_ms,
            expiry_timestamp_ms,
            max_timestamp_ms,
            token_id: String::new(),
            hmac: bytes::Bytes::new(),
            throttle_time_ms: 0,
        }),
        api::Response::DelegationToken(api::DelegationTokenResponse::Renew {
            error_code,
            expiry_timestamp_ms,
        }) => ResponseBody::RenewDelegationToken(codec::RenewDelegationTokenResponse {
            error_code: error_code.0,
            expiry_timestamp_ms,
            throttle_time_ms: 0,
        }),
        api::Response::DelegationToken(api::DelegationTokenResponse::Expire {
            error_code,
            expiry_timestamp_ms,
        }) => ResponseBody::ExpireDelegationToken(codec::ExpireDelegationTokenResponse {
            error_code: error_code.0,
            expiry_timestamp_ms,
            throttle_time_ms: 0,
        }),
        api::Response::DelegationToken(api::DelegationTokenResponse::Describe { error_code }) => {
            ResponseBody::DescribeDelegationToken(codec::DescribeDelegationTokenResponse {
                error_code: error_code.0,
                tokens: Vec::new(),
                throttle_time_ms: 0,
            })
        }
        api::Response::Acls(api::AclResponse::Delete(results)) => {
            ResponseBody::DeleteAcls(codec::DeleteAclsResponse {
                throttle_time_ms: 0,
                filter_results: results
                    .into_iter()
                    .map(|r| codec::DeleteAclsFilterResult {
                        error_code: r.error_code.0,
                        error_message: r.error_message,
                        matching_acls: Vec::new(),
                    })
                    .collect(),
            })
        }
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
        api::Response::DeleteRecords(_) => ApiKey::DeleteRecords,
        api::Response::CreatePartitions(_) => ApiKey::CreatePartitions,
        api::Response::DescribeCluster(_) => ApiKey::DescribeCluster,
        api::Response::DescribeQuorum(_) => ApiKey::DescribeQuorum,
        api::Response::DescribeLogDirs(_) => ApiKey::DescribeLogDirs,
        api::Response::DescribeConfigs(_) => ApiKey::DescribeConfigs,
        api::Response::AlterConfigs(_) => ApiKey::AlterConfigs,
        api::Response::IncrementalAlterConfigs(_) => ApiKey::IncrementalAlterConfigs,
        api::Response::FindCoordinator(_) => ApiKey::FindCoordinator,
        api::Response::JoinGroup(_) => ApiKey::JoinGroup,
        api::Response::SyncGroup(_) => ApiKey::SyncGroup,
        api::Response::Heartbeat(_) => ApiKey::Heartbeat,
        api::Response::LeaveGroup(_) => ApiKey::LeaveGroup,
        api::Response::OffsetCommit(_) => ApiKey::OffsetCommit,
        api::Response::OffsetFetch(_) => ApiKey::OffsetFetch,
        api::Response::ListGroups(_) => ApiKey::ListGroups,
        api::Response::DescribeGroups(_) => ApiKey::DescribeGroups,
        api::Response::DeleteGroups(_) => ApiKey::DeleteGroups,
        api::Response::OffsetDelete(_) => ApiKey::OffsetDelete,
        api::Response::InitProducerId(_) => ApiKey::InitProducerId,
        api::Response::Acls(api::AclResponse::Describe(_)) => ApiKey::DescribeAcls,
        api::Response::Acls(api::AclResponse::Create(_)) => ApiKey::CreateAcls,
        api::Response::Acls(api::AclResponse::Delete(_)) => ApiKey::DeleteAcls,
        api::Response::DelegationToken(api::DelegationTokenResponse::Create { .. }) => {
            ApiKey::CreateDelegationToken
        }
        api::Response::DelegationToken(api::DelegationTokenResponse::Renew { .. }) => {
            ApiKey::RenewDelegationToken
        }
        api::Response::DelegationToken(api::DelegationTokenResponse::Expire { .. }) => {
            ApiKey::ExpireDelegationToken
        }
        api::Response::DelegationToken(api::DelegationTokenResponse::Describe { .. }) => {
            ApiKey::DescribeDelegationToken
        }
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
        include_cluster_authorized_operations: r.include_cluster_authorized_operations,
        include_topic_authorized_operations: r.include_topic_authorized_operations,
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
    // Before v7 the codec leaves session 0 and epoch -1: no session, as those versions mean.
    api::FetchRequest {
        session: api::FetchSessionRequest {
            session_id: r.session_id,
            epoch: r.session_epoch,
            forgotten: r
                .forgotten_topics_data
                .into_iter()
                .map(|t| api::FetchForgottenTopic {
                    name: t.topic,
                    partitions: t.partitions,
                })
                .collect(),
        },
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

fn find_coordinator_request(
    version: i16,
    r: codec::FindCoordinatorRequest,
) -> api::FindCoordinatorRequest {
    // v0 has no key_type (always a group; the codec's default is 0); v0-3 carry one key.
    let keys = if version >= 4 {
        r.coordinator_keys
    } else {
        vec![r.key]
    };
    api::FindCoordinatorRequest {
        key_type: r.key_type,
        keys,
    }
}

fn join_group_request(version: i16, r: codec::JoinGroupRequest) -> api::JoinGroupRequest {
    api::JoinGroupRequest {
        group_id: r.group_id,
        session_timeout_ms: r.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            r.session_timeout_ms
        } else {
            r.rebalance_timeout_ms
        },
        member_id: r.member_id,
        group_instance_id: r.group_instance_id,
        protocol_type: r.protocol_type,
        protocols: r
            .protocols
            .into_iter()
            .map(|p| api::JoinGroupProtocol {
                name: p.name,
                metadata: p.metadata,
            })
            .collect(),
        reason: r.reason,
        // KIP-394: from v4 a first join gets MEMBER_ID_REQUIRED and an id to rejoin with.
        require_known_member_id: version >= 4,
        // Filled by the driver from the request header and the peer address.
        client_id: String::new(),
        client_host: String::new(),
    }
}

fn sync_group_request(r: codec::SyncGroupRequest) -> api::SyncGroupRequest {
    api::SyncGroupRequest {
        group_id: r.group_id,
        generation_id: r.generation_id,
        member_id: r.member_id,
        group_instance_id: r.group_instance_id,
        protocol_type: r.protocol_type,
        protocol_name: r.protocol_name,
        assignments: r
            .assignments
            .into_iter()
            .map(|a| api::SyncGroupAssignment {
                member_id: a.member_id,
                assignment: a.assignment,
            })
            .collect(),
    }
}

fn heartbeat_request(r: codec::HeartbeatRequest) -> api::HeartbeatRequest {
    api::HeartbeatRequest {
        group_id: r.group_id,
        generation_id: r.generation_id,
        member_id: r.member_id,
        group_instance_id: r.group_instance_id,
    }
}

fn leave_group_request(version: i16, r: codec::LeaveGroupRequest) -> api::LeaveGroupRequest {
    let members = if version >= 3 {
        r.members
            .into_iter()
            .map(|m| api::LeaveGroupMember {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                reason: m.reason,
            })
            .collect()
    } else {
        vec![api::LeaveGroupMember {
            member_id: r.member_id,
            group_instance_id: None,
            reason: None,
        }]
    };
    api::LeaveGroupRequest {
        group_id: r.group_id,
        members,
    }
}

fn offset_commit_request(r: codec::OffsetCommitRequest) -> api::OffsetCommitRequest {
    // retention_time_ms (v2-4) is ignored: Keel keeps offsets by its own retention.
    api::OffsetCommitRequest {
        group_id: r.group_id,
        generation_id_or_member_epoch: r.generation_id_or_member_epoch,
        member_id: r.member_id,
        group_instance_id: r.group_instance_id,
        topics: r
            .topics
            .into_iter()
            .map(|t| api::OffsetCommitRequestTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| api::OffsetCommitRequestPartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        committed_metadata: p.committed_metadata,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn offset_fetch_request(version: i16, r: codec::OffsetFetchRequest) -> api::OffsetFetchRequest {
    let groups = if version >= 8 {
        r.groups
            .into_iter()
            .map(|g| api::OffsetFetchRequestGroup {
                group_id: g.group_id,
                member_id: g.member_id,
                member_epoch: g.member_epoch,
                topics: g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| api::OffsetFetchRequestTopic {
                            name: t.name,
                            partition_indexes: t.partition_indexes,
                        })
                        .collect()
                }),
            })
            .collect()
    } else {
        vec![api::OffsetFetchRequestGroup {
            group_id: r.group_id,
            member_id: None,
            member_epoch: -1,
            // v1 cannot send null; from v2 null asks for every committed partition.
            topics: r.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| api::OffsetFetchRequestTopic {
                        name: t.name,
                        partition_indexes: t.partition_indexes,
                    })
                    .collect()
            }),
        }]
    };
    api::OffsetFetchRequest {
        groups,
        require_stable: r.require_stable,
    }
}

fn offset_delete_request(r: codec::OffsetDeleteRequest) -> api::OffsetDeleteRequest {
    api::OffsetDeleteRequest {
        group_id: r.group_id,
        topics: r
            .topics
            .into_iter()
            .map(|t| api::OffsetDeleteRequestTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| p.partition_index)
                    .collect(),
            })
            .collect(),
    }
}

// Configs and CreatePartitions: the core's types mirror the wire fields, and fields a version
// lacks are defaulted by the codec (DescribeConfigs v1-2 never ask for documentation).

fn describe_configs_request(r: codec::DescribeConfigsRequest) -> api::DescribeConfigsRequest {
    api::DescribeConfigsRequest {
        resources: r
            .resources
            .into_iter()
            .map(|res| api::DescribeConfigsResource {
                resource_type: res.resource_type,
                resource_name: res.resource_name,
                configuration_keys: res.configuration_keys,
            })
            .collect(),
        include_synonyms: r.include_synonyms,
        include_documentation: r.include_documentation,
    }
}

fn alter_configs_request(r: codec::AlterConfigsRequest) -> api::AlterConfigsRequest {
    api::AlterConfigsRequest {
        resources: r
            .resources
            .into_iter()
            .map(|res| api::AlterConfigsResource {
                resource_type: res.resource_type,
                resource_name: res.resource_name,
                configs: res.configs.into_iter().map(|c| (c.name, c.value)).collect(),
            })
            .collect(),
        validate_only: r.validate_only,
    }
}

fn incremental_alter_configs_request(
    r: codec::IncrementalAlterConfigsRequest,
) -> api::IncrementalAlterConfigsRequest {
    api::IncrementalAlterConfigsRequest {
        resources: r
            .resources
            .into_iter()
            .map(|res| api::IncrementalAlterConfigsResource {
                resource_type: res.resource_type,
                resource_name: res.resource_name,
                configs: res
                    .configs
                    .into_iter()
                    .map(|c| api::ConfigChange {
                        name: c.name,
                        operation: c.config_operation,
                        value: c.value,
                    })
                    .collect(),
            })
            .collect(),
        validate_only: r.validate_only,
    }
}

fn create_partitions_request(r: codec::CreatePartitionsRequest) -> api::CreatePartitionsRequest {
    api::CreatePartitionsRequest {
        topics: r
            .topics
            .into_iter()
            .map(|t| api::CreatePartitionsTopic {
                name: t.name,
                count: t.count,
                assignments: t
                    .assignments
                    .map(|a| a.into_iter().map(|p| p.broker_ids).collect()),
            })
            .collect(),
        timeout_ms: r.timeout_ms,
        validate_only: r.validate_only,
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
                topic_authorized_operations: t.topic_authorized_operations,
            })
            .collect(),
        cluster_authorized_operations: r.cluster_authorized_operations,
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
                        record_errors: p
                            .record_errors
                            .into_iter()
                            .map(|e| codec::BatchIndexAndErrorMessage {
                                batch_index: e.batch_index,
                                batch_index_error_message: e.message,
                            })
                            .collect(),
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
        session_id: r.session_id,
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

// DeleteRecords: every version (0-2) carries the same fields; v2 only adds tagged fields.
fn delete_records_request(r: codec::DeleteRecordsRequest) -> api::DeleteRecordsRequest {
    api::DeleteRecordsRequest {
        topics: r
            .topics
            .into_iter()
            .map(|t| api::DeleteRecordsTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| api::DeleteRecordsPartition {
                        partition_index: p.partition_index,
                        offset: p.offset,
                    })
                    .collect(),
            })
            .collect(),
        timeout_ms: r.timeout_ms,
    }
}

fn delete_records_response(r: api::DeleteRecordsResponse) -> codec::DeleteRecordsResponse {
    codec::DeleteRecordsResponse {
        throttle_time_ms: r.throttle_time_ms,
        topics: r
            .topics
            .into_iter()
            .map(|t| codec::DeleteRecordsTopicResult {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| codec::DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        low_watermark: p.low_watermark,
                        error_code: p.error_code.0,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn find_coordinator_response(
    version: i16,
    r: api::FindCoordinatorResponse,
) -> codec::FindCoordinatorResponse {
    if version >= 4 {
        return codec::FindCoordinatorResponse {
            throttle_time_ms: r.throttle_time_ms,
            coordinators: r
                .coordinators
                .into_iter()
                .map(|c| codec::Coordinator {
                    key: c.key,
                    node_id: c.node_id,
                    host: c.host,
                    port: c.port,
                    error_code: c.error_code.0,
                    error_message: c.error_message,
                })
                .collect(),
            ..codec::FindCoordinatorResponse::default()
        };
    }
    // v0-3 asked for one key: its answer goes to the top level.
    let c = r
        .coordinators
        .into_iter()
        .next()
        .unwrap_or_else(|| api::Coordinator {
            node_id: -1,
            port: -1,
            error_code: keel_core::error::ErrorCode::COORDINATOR_NOT_AVAILABLE,
            ..api::Coordinator::default()
        });
    codec::FindCoordinatorResponse {
        throttle_time_ms: r.throttle_time_ms,
        error_code: c.error_code.0,
        error_message: c.error_message,
        node_id: c.node_id,
        host: c.host,
        port: c.port,
        ..codec::FindCoordinatorResponse::default()
    }
}

fn join_group_response(version: i16, r: api::JoinGroupResponse) -> codec::JoinGroupResponse {
    // protocol_name is nullable from v7 only; older versions answer "" on errors.
    let protocol_name = match r.protocol_name {
        None if version < 7 => Some(String::new()),
        name => name,
    };
    codec::JoinGroupResponse {
        throttle_time_ms: r.throttle_time_ms,
        error_code: r.error_code.0,
        generation_id: r.generation_id,
        protocol_type: r.protocol_type,
        protocol_name,
        leader: r.leader,
        skip_assignment: r.skip_assignment,
        member_id: r.member_id,
        members: r
            .members
            .into_iter()
            .map(|m| codec::JoinGroupResponseMember {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                metadata: m.metadata,
            })
            .collect(),
    }
}

fn leave_group_response(version: i16, r: api::LeaveGroupResponse) -> codec::LeaveGroupResponse {
    if version < 3 {
        // One member left: its error is the answer unless the whole request failed.
        let error_code = if r.error_code.is_ok() {
            r.members.first().map_or(r.error_code, |m| m.error_code)
        } else {
            r.error_code
        };
        return codec::LeaveGroupResponse {
            throttle_time_ms: r.throttle_time_ms,
            error_code: error_code.0,
            members: Vec::new(),
        };
    }
    codec::LeaveGroupResponse {
        throttle_time_ms: r.throttle_time_ms,
        error_code: r.error_code.0,
        members: r
            .members
            .into_iter()
            .map(|m| codec::MemberResponse {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                error_code: m.error_code.0,
            })
            .collect(),
    }
}

fn offset_commit_response(r: api::OffsetCommitResponse) -> codec::OffsetCommitResponse {
    codec::OffsetCommitResponse {
        throttle_time_ms: r.throttle_time_ms,
        topics: r
            .topics
            .into_iter()
            .map(|t| codec::OffsetCommitResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| codec::OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: p.error_code.0,
                    })
                    .collect(),
                ..codec::OffsetCommitResponseTopic::default()
            })
            .collect(),
    }
}

fn offset_fetch_response(version: i16, r: api::OffsetFetchResponse) -> codec::OffsetFetchResponse {
    if version >= 8 {
        return codec::OffsetFetchResponse {
            throttle_time_ms: r.throttle_time_ms,
            groups: r
                .groups
                .into_iter()
                .map(|g| codec::OffsetFetchResponseGroup {
                    group_id: g.group_id,
                    error_code: g.error_code.0,
                    topics: g
                        .topics
                        .into_iter()
                        .filter(|_| g.error_code.is_ok())
                        .map(|t| codec::OffsetFetchResponseTopics {
                            name: t.name,
                            partitions: t
                                .partitions
                                .into_iter()
                                .map(|p| codec::OffsetFetchResponsePartitions {
                                    partition_index: p.partition_index,
                                    committed_offset: p.committed_offset,
                                    committed_leader_epoch: p.committed_leader_epoch,
                                    metadata: p.metadata,
                                    error_code: p.error_code.0,
                                })
                                .collect(),
                            ..codec::OffsetFetchResponseTopics::default()
                        })
                        .collect(),
                })
                .collect(),
            ..codec::OffsetFetchResponse::default()
        };
    }
    // v1-7 asked for one group: its answer goes to the top level. v1 has no top-level error
    // code, so a group error is reported on every requested partition instead; v2+ answers
    // a group error with the error alone (as Kafka does).
    let g = r.groups.into_iter().next().unwrap_or_default();
    let group_error = g.error_code;
    let topics = if version >= 2 && !group_error.is_ok() {
        Vec::new()
    } else {
        g.topics
    };
    codec::OffsetFetchResponse {
        throttle_time_ms: r.throttle_time_ms,
        error_code: group_error.0,
        topics: topics
            .into_iter()
            .map(|t| codec::OffsetFetchResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| codec::OffsetFetchResponsePartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        metadata: p.metadata,
                        error_code: if version < 2 && p.error_code.is_ok() {
                            group_error.0
                        } else {
                            p.error_code.0
                        },
                    })
                    .collect(),
            })
            .collect(),
        ..codec::OffsetFetchResponse::default()
    }
}

fn list_groups_response(r: api::ListGroupsResponse) -> codec::ListGroupsResponse {
    codec::ListGroupsResponse {
        throttle_time_ms: r.throttle_time_ms,
        error_code: r.error_code.0,
        groups: r
            .groups
            .into_iter()
            .map(|g| codec::ListedGroup {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
                group_state: g.group_state,
                group_type: g.group_type,
            })
            .collect(),
    }
}

fn describe_groups_response(r: api::DescribeGroupsResponse) -> codec::DescribeGroupsResponse {
    codec::DescribeGroupsResponse {
        throttle_time_ms: r.throttle_time_ms,
        groups: r
            .groups
            .into_iter()
            .map(|g| codec::DescribedGroup {
                error_code: g.error_code.0,
                error_message: g.error_message,
                group_id: g.group_id,
                group_state: g.group_state,
                protocol_type: g.protocol_type,
                protocol_data: g.protocol_data,
                members: g
                    .members
                    .into_iter()
                    .map(|m| codec::DescribedGroupMember {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        member_metadata: m.member_metadata,
                        member_assignment: m.member_assignment,
                    })
                    .collect(),
                authorized_operations: g.authorized_operations,
            })
            .collect(),
    }
}

fn offset_delete_response(r: api::OffsetDeleteResponse) -> codec::OffsetDeleteResponse {
    codec::OffsetDeleteResponse {
        error_code: r.error_code.0,
        throttle_time_ms: r.throttle_time_ms,
        topics: r
            .topics
            .into_iter()
            .map(|t| codec::OffsetDeleteResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| codec::OffsetDeleteResponsePartition {
                        partition_index: p.partition_index,
                        error_code: p.error_code.0,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn describe_configs_response(r: api::DescribeConfigsResponse) -> codec::DescribeConfigsResponse {
    codec::DescribeConfigsResponse {
        throttle_time_ms: 0,
        results: r
            .results
            .into_iter()
            .map(|res| codec::DescribeConfigsResult {
                error_code: res.error_code.0,
                error_message: res.error_message,
                resource_type: res.resource_type,
                resource_name: res.resource_name,
                configs: res
                    .configs
                    .into_iter()
                    .map(|c| codec::DescribeConfigsResourceResult {
                        name: c.name,
                        value: c.value,
                        read_only: c.read_only,
                        config_source: c.config_source,
                        is_sensitive: c.is_sensitive,
                        synonyms: c
                            .synonyms
                            .into_iter()
                            .map(|s| codec::DescribeConfigsSynonym {
                                name: s.name,
                                value: s.value,
                                source: s.source,
                            })
                            .collect(),
                        config_type: c.config_type,
                        documentation: c.documentation,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// AlterConfigs and IncrementalAlterConfigs answer with the same fields.
fn alter_configs_results(
    r: api::AlterConfigsResponse,
) -> impl Iterator<Item = (i16, Option<String>, i8, String)> {
    r.responses.into_iter().map(|res| {
        (
            res.error_code.0,
            res.error_message,
            res.resource_type,
            res.resource_name,
        )
    })
}

fn alter_configs_response(r: api::AlterConfigsResponse) -> codec::AlterConfigsResponse {
    use codec::alter_configs::AlterConfigsResourceResponse as Res;
    codec::AlterConfigsResponse {
        throttle_time_ms: 0,
        responses: alter_configs_results(r)
            .map(|(code, message, kind, name)| Res {
                error_code: code,
                error_message: message,
                resource_type: kind,
                resource_name: name,
            })
            .collect(),
    }
}

fn incremental_alter_configs_response(
    r: api::AlterConfigsResponse,
) -> codec::IncrementalAlterConfigsResponse {
    use codec::incremental_alter_configs::AlterConfigsResourceResponse as Res;
    codec::IncrementalAlterConfigsResponse {
        throttle_time_ms: 0,
        responses: alter_configs_results(r)
            .map(|(code, message, kind, name)| Res {
                error_code: code,
                error_message: message,
                resource_type: kind,
                resource_name: name,
            })
            .collect(),
    }
}

fn create_partitions_response(r: api::CreatePartitionsResponse) -> codec::CreatePartitionsResponse {
    codec::CreatePartitionsResponse {
        throttle_time_ms: 0,
        results: r
            .results
            .into_iter()
            .map(|t| codec::CreatePartitionsTopicResult {
                name: t.name,
                error_code: t.error_code.0,
                error_message: t.error_message,
            })
            .collect(),
    }
}

// DescribeQuorum: the timestamps (v1+) are dropped by the codec for v0.
fn describe_quorum_response(r: api::DescribeQuorumResponse) -> codec::DescribeQuorumResponse {
    codec::DescribeQuorumResponse {
        error_code: r.error_code.0,
        topics: r
            .topics
            .into_iter()
            .map(|(name, partitions)| codec::DescribeQuorumTopicData {
                topic_name: name,
                partitions: partitions
                    .into_iter()
                    .map(|p| codec::DescribeQuorumPartitionData {
                        partition_index: p.partition_index,
                        error_code: p.error_code.0,
                        leader_id: p.leader_id,
                        leader_epoch: p.leader_epoch,
                        high_watermark: p.high_watermark,
                        current_voters: p
                            .voters
                            .into_iter()
                            .map(|v| codec::DescribeQuorumReplicaState {
                                replica_id: v.replica_id,
                                log_end_offset: v.log_end_offset,
                                last_fetch_timestamp: v.last_fetch_timestamp,
                                last_caught_up_timestamp: v.last_caught_up_timestamp,
                            })
                            .collect(),
                        observers: Vec::new(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn describe_cluster_response(r: api::DescribeClusterResponse) -> codec::DescribeClusterResponse {
    codec::DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: r.error_code.0,
        error_message: r.error_message,
        endpoint_type: r.endpoint_type,
        cluster_id: r.cluster_id,
        controller_id: r.controller_id,
        brokers: r
            .brokers
            .into_iter()
            .map(|b| codec::DescribeClusterBroker {
                broker_id: b.broker_id,
                host: b.host,
                port: b.port,
                rack: b.rack,
                is_fenced: b.is_fenced,
            })
            .collect(),
        cluster_authorized_operations: r.cluster_authorized_operations,
    }
}

// DescribeLogDirs: the top-level error code (v3+) and the volume sizes (v4+) are dropped by
// the codec for older versions.
fn describe_log_dirs_response(r: api::DescribeLogDirsResponse) -> codec::DescribeLogDirsResponse {
    codec::DescribeLogDirsResponse {
        throttle_time_ms: 0,
        error_code: r.error_code.0,
        results: r
            .results
            .into_iter()
            .map(|d| codec::DescribeLogDirsResult {
                error_code: d.error_code.0,
                log_dir: d.log_dir,
                topics: d
                    .topics
                    .into_iter()
                    .map(|t| codec::DescribeLogDirsTopic {
                        name: t.name,
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| codec::DescribeLogDirsPartition {
                                partition_index: p.partition_index,
                                partition_size: p.partition_size,
                                offset_lag: p.offset_lag,
                                is_future_key: p.is_future_key,
                            })
                            .collect(),
                    })
                    .collect(),
                total_bytes: d.total_bytes,
                usable_bytes: d.usable_bytes,
            })
            .collect(),
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

    /// KAFKA.md §2: an empty record set is encoded as empty, never null.
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
                topic_authorized_operations: 3576,
                ..Default::default()
            }],
            cluster_authorized_operations: 8096,
        });
        let ResponseBody::Metadata(m) = round_trip(10, response_to_wire(10, response.clone()))
        else {
            panic!()
        };
        assert_eq!(m.cluster_authorized_operations, 8096);
        assert_eq!(m.topics[0].topic_authorized_operations, 3576);
        let ResponseBody::Metadata(m) = round_trip(12, response_to_wire(12, response.clone()))
        else {
            panic!()
        };
        assert_eq!(m.controller_id, 1);
        assert_eq!(m.topics[0].topic_id, Uuid([3; 16]));
        assert_eq!(m.brokers[0].port, 9092);
        assert_eq!(m.topics[0].topic_authorized_operations, 3576);
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

    // ---- group APIs: the oldest and newest advertised version of each --------------------

    /// Encodes `body` at `version`, decodes it as the broker does and maps it to the core.
    fn request_round_trip(version: i16, body: RequestBody) -> api::Request {
        let key = body.api_key();
        let (min, max) = codec::supported_range(key);
        assert!(
            (min..=max).contains(&version),
            "{key:?} v{version} is advertised"
        );
        let mut out = BytesMut::new();
        body.encode(&mut out, version);
        let decoded = codec::decode_request_body(key, version, out.freeze()).unwrap();
        request_from_wire(version, decoded).unwrap()
    }

    fn response_round_trip(version: i16, response: api::Response) -> ResponseBody {
        assert_eq!(
            response_api_key(&response),
            response_to_wire(version, response.clone()).api_key()
        );
        round_trip(version, response_to_wire(version, response))
    }

    fn coordinator(key: &str, error_code: ErrorCode) -> api::Coordinator {
        api::Coordinator {
            key: key.into(),
            node_id: 1,
            host: "h".into(),
            port: 9092,
            error_code,
            error_message: None,
        }
    }

    #[test]
    fn find_coordinator_v0_has_one_key_and_v4_a_batch() {
        let r = codec::FindCoordinatorRequest {
            key: "g".into(),
            ..Default::default()
        };
        assert_eq!(
            request_round_trip(0, RequestBody::FindCoordinator(r)),
            api::Request::FindCoordinator(api::FindCoordinatorRequest {
                key_type: api::COORDINATOR_KEY_TYPE_GROUP,
                keys: vec!["g".into()],
            })
        );
        let r = codec::FindCoordinatorRequest {
            key_type: 0,
            coordinator_keys: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        assert_eq!(
            request_round_trip(4, RequestBody::FindCoordinator(r)),
            api::Request::FindCoordinator(api::FindCoordinatorRequest {
                key_type: 0,
                keys: vec!["a".into(), "b".into()],
            })
        );

        let response = api::Response::FindCoordinator(api::FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![coordinator("a", ErrorCode::NONE)],
        });
        let ResponseBody::FindCoordinator(f) = response_round_trip(0, response) else {
            panic!()
        };
        assert_eq!(
            (f.error_code, f.node_id, f.host.as_str(), f.port),
            (0, 1, "h", 9092)
        );
        assert!(f.coordinators.is_empty());
        let response = api::Response::FindCoordinator(api::FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![
                coordinator("a", ErrorCode::NONE),
                coordinator("b", ErrorCode::COORDINATOR_NOT_AVAILABLE),
            ],
        });
        let ResponseBody::FindCoordinator(f) = response_round_trip(4, response) else {
            panic!()
        };
        assert_eq!(f.coordinators.len(), 2);
        assert_eq!(f.coordinators[1].key, "b");
        assert_eq!(
            f.coordinators[1].error_code,
            ErrorCode::COORDINATOR_NOT_AVAILABLE.0
        );
        // v1-3 carry the error at the top level too.
        let response = api::Response::FindCoordinator(api::FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![coordinator("b", ErrorCode::COORDINATOR_NOT_AVAILABLE)],
        });
        let ResponseBody::FindCoordinator(f) = response_round_trip(3, response) else {
            panic!()
        };
        assert_eq!(f.error_code, ErrorCode::COORDINATOR_NOT_AVAILABLE.0);
    }

    fn join_request() -> codec::JoinGroupRequest {
        codec::JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 6000,
            rebalance_timeout_ms: 30000,
            member_id: String::new(),
            group_instance_id: Some("i".into()),
            protocol_type: "consumer".into(),
            protocols: vec![codec::JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"m"),
            }],
            reason: None,
        }
    }

    #[test]
    fn join_group_v0_uses_the_session_timeout_and_v4_requires_a_member_id() {
        let api::Request::JoinGroup(j) =
            request_round_trip(0, RequestBody::JoinGroup(join_request()))
        else {
            panic!()
        };
        assert_eq!(j.rebalance_timeout_ms, 6000);
        assert!(!j.require_known_member_id);
        assert_eq!(j.group_instance_id, None);
        assert_eq!(j.protocols[0].metadata, Bytes::from_static(b"m"));
        let api::Request::JoinGroup(j) =
            request_round_trip(7, RequestBody::JoinGroup(join_request()))
        else {
            panic!()
        };
        assert_eq!(j.rebalance_timeout_ms, 30000);
        assert!(j.require_known_member_id);
        assert_eq!(j.group_instance_id.as_deref(), Some("i"));
        let api::Request::JoinGroup(j) =
            request_round_trip(3, RequestBody::JoinGroup(join_request()))
        else {
            panic!()
        };
        assert!(!j.require_known_member_id);

        let error = api::Response::JoinGroup(api::JoinGroupResponse {
            error_code: ErrorCode::MEMBER_ID_REQUIRED,
            generation_id: -1,
            member_id: "c-1".into(),
            ..Default::default()
        });
        let ResponseBody::JoinGroup(j) = response_round_trip(0, error.clone()) else {
            panic!()
        };
        assert_eq!(j.protocol_name.as_deref(), Some(""));
        assert_eq!(j.member_id, "c-1");
        let ResponseBody::JoinGroup(j) = response_round_trip(7, error) else {
            panic!()
        };
        assert_eq!(j.protocol_name, None);
        assert_eq!(j.protocol_type, None);
        assert_eq!(j.error_code, ErrorCode::MEMBER_ID_REQUIRED.0);

        let ok = api::Response::JoinGroup(api::JoinGroupResponse {
            generation_id: 3,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: "c-1".into(),
            member_id: "c-1".into(),
            members: vec![api::JoinGroupResponseMember {
                member_id: "c-1".into(),
                group_instance_id: Some("i".into()),
                metadata: Bytes::from_static(b"m"),
            }],
            ..Default::default()
        });
        for version in [0, 7] {
            let ResponseBody::JoinGroup(j) = response_round_trip(version, ok.clone()) else {
                panic!()
            };
            assert_eq!(j.generation_id, 3);
            assert_eq!(j.protocol_name.as_deref(), Some("range"));
            assert_eq!(j.members[0].metadata, Bytes::from_static(b"m"));
            let instance = (version >= 5).then(|| "i".to_string());
            assert_eq!(j.members[0].group_instance_id, instance);
        }
    }

    #[test]
    fn sync_group_and_heartbeat_map_both_ways() {
        let r = codec::SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 2,
            member_id: "m".into(),
            group_instance_id: Some("i".into()),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: vec![codec::SyncGroupRequestAssignment {
                member_id: "m".into(),
                assignment: Bytes::from_static(b"a"),
            }],
        };
        let api::Request::SyncGroup(s) = request_round_trip(0, RequestBody::SyncGroup(r.clone()))
        else {
            panic!()
        };
        assert_eq!(
            (s.generation_id, s.group_instance_id, s.protocol_name),
            (2, None, None)
        );
        assert_eq!(s.assignments[0].assignment, Bytes::from_static(b"a"));
        let api::Request::SyncGroup(s) = request_round_trip(5, RequestBody::SyncGroup(r)) else {
            panic!()
        };
        assert_eq!(s.group_instance_id.as_deref(), Some("i"));
        assert_eq!(s.protocol_name.as_deref(), Some("range"));
        let response = api::Response::SyncGroup(api::SyncGroupResponse {
            error_code: ErrorCode::NONE,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from_static(b"a"),
            ..Default::default()
        });
        for version in [0, 5] {
            let ResponseBody::SyncGroup(s) = response_round_trip(version, response.clone()) else {
                panic!()
            };
            assert_eq!(s.assignment, Bytes::from_static(b"a"));
            let name = (version >= 5).then(|| "range".to_string());
            assert_eq!(s.protocol_name, name);
        }

        let r = codec::HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 4,
            member_id: "m".into(),
            group_instance_id: Some("i".into()),
        };
        for (version, instance) in [(0, None), (4, Some("i".to_string()))] {
            assert_eq!(
                request_round_trip(version, RequestBody::Heartbeat(r.clone())),
                api::Request::Heartbeat(api::HeartbeatRequest {
                    group_id: "g".into(),
                    generation_id: 4,
                    member_id: "m".into(),
                    group_instance_id: instance,
                })
            );
            let response = api::Response::Heartbeat(api::HeartbeatResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::REBALANCE_IN_PROGRESS,
            });
            let ResponseBody::Heartbeat(h) = response_round_trip(version, response) else {
                panic!()
            };
            assert_eq!(h.error_code, ErrorCode::REBALANCE_IN_PROGRESS.0);
        }
    }

    #[test]
    fn leave_group_v0_is_one_member_and_v5_a_batch() {
        let r = codec::LeaveGroupRequest {
            group_id: "g".into(),
            member_id: "m".into(),
            members: vec![],
        };
        let api::Request::LeaveGroup(l) = request_round_trip(0, RequestBody::LeaveGroup(r)) else {
            panic!()
        };
        assert_eq!(l.members.len(), 1);
        assert_eq!(l.members[0].member_id, "m");
        let r = codec::LeaveGroupRequest {
            group_id: "g".into(),
            member_id: String::new(),
            members: vec![
                codec::MemberIdentity {
                    member_id: "a".into(),
                    group_instance_id: None,
                    reason: Some("bye".into()),
                },
                codec::MemberIdentity {
                    member_id: String::new(),
                    group_instance_id: Some("i".into()),
                    reason: None,
                },
            ],
        };
        let api::Request::LeaveGroup(l) = request_round_trip(5, RequestBody::LeaveGroup(r)) else {
            panic!()
        };
        assert_eq!(l.members.len(), 2);
        assert_eq!(l.members[0].reason.as_deref(), Some("bye"));
        assert_eq!(l.members[1].group_instance_id.as_deref(), Some("i"));

        // The member's error is the v0-2 answer when the request itself succeeded.
        let response = api::Response::LeaveGroup(api::LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            members: vec![api::LeaveGroupMemberResponse {
                member_id: "m".into(),
                group_instance_id: None,
                error_code: ErrorCode::UNKNOWN_MEMBER_ID,
            }],
        });
        let ResponseBody::LeaveGroup(l) = response_round_trip(0, response.clone()) else {
            panic!()
        };
        assert_eq!(l.error_code, ErrorCode::UNKNOWN_MEMBER_ID.0);
        let ResponseBody::LeaveGroup(l) = response_round_trip(5, response) else {
            panic!()
        };
        assert_eq!(l.error_code, 0);
        assert_eq!(l.members[0].error_code, ErrorCode::UNKNOWN_MEMBER_ID.0);
        let response = api::Response::LeaveGroup(api::LeaveGroupResponse {
            error_code: ErrorCode::NOT_COORDINATOR,
            ..Default::default()
        });
        let ResponseBody::LeaveGroup(l) = response_round_trip(2, response) else {
            panic!()
        };
        assert_eq!(l.error_code, ErrorCode::NOT_COORDINATOR.0);
    }

    #[test]
    fn offset_commit_maps_v2_and_v9() {
        let r = codec::OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: 3,
            member_id: "m".into(),
            group_instance_id: Some("i".into()),
            retention_time_ms: 1000,
            topics: vec![codec::OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![codec::OffsetCommitRequestPartition {
                    partition_index: 1,
                    committed_offset: 42,
                    committed_leader_epoch: 5,
                    committed_metadata: None,
                }],
                ..Default::default()
            }],
        };
        let api::Request::OffsetCommit(c) =
            request_round_trip(2, RequestBody::OffsetCommit(r.clone()))
        else {
            panic!()
        };
        assert_eq!(
            (c.generation_id_or_member_epoch, c.member_id.as_str()),
            (3, "m")
        );
        assert_eq!(c.group_instance_id, None);
        let p = &c.topics[0].partitions[0];
        assert_eq!((p.partition_index, p.committed_offset), (1, 42));
        assert_eq!(p.committed_leader_epoch, -1);
        let api::Request::OffsetCommit(c) = request_round_trip(9, RequestBody::OffsetCommit(r))
        else {
            panic!()
        };
        assert_eq!(c.group_instance_id.as_deref(), Some("i"));
        assert_eq!(c.topics[0].name, "t");
        assert_eq!(c.topics[0].partitions[0].committed_leader_epoch, 5);

        let response = api::Response::OffsetCommit(api::OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: vec![api::OffsetCommitResponseTopic {
                name: "t".into(),
                partitions: vec![api::OffsetCommitResponsePartition {
                    partition_index: 1,
                    error_code: ErrorCode::ILLEGAL_GENERATION,
                }],
            }],
        });
        for version in [2, 9] {
            let ResponseBody::OffsetCommit(c) = response_round_trip(version, response.clone())
            else {
                panic!()
            };
            assert_eq!(c.topics[0].name, "t");
            assert_eq!(
                c.topics[0].partitions[0].error_code,
                ErrorCode::ILLEGAL_GENERATION.0
            );
        }
    }

    fn fetched_group(error_code: ErrorCode) -> api::OffsetFetchResponseGroup {
        api::OffsetFetchResponseGroup {
            group_id: "g".into(),
            topics: vec![api::OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![api::OffsetFetchResponsePartition {
                    partition_index: 0,
                    committed_offset: 42,
                    committed_leader_epoch: -1,
                    metadata: Some(String::new()),
                    error_code: ErrorCode::NONE,
                }],
            }],
            error_code,
        }
    }

    #[test]
    fn offset_fetch_v1_to_v7_is_one_group_and_v8_batches() {
        let r = codec::OffsetFetchRequest {
            group_id: "g".into(),
            topics: Some(vec![codec::OffsetFetchRequestTopic {
                name: "t".into(),
                partition_indexes: vec![0, 1],
            }]),
            ..Default::default()
        };
        let api::Request::OffsetFetch(f) = request_round_trip(1, RequestBody::OffsetFetch(r))
        else {
            panic!()
        };
        assert_eq!(f.groups.len(), 1);
        assert_eq!(f.groups[0].group_id, "g");
        let topics = f.groups[0].topics.as_ref().unwrap();
        assert_eq!(topics[0].partition_indexes, vec![0, 1]);
        // From v2 a null topic list asks for everything.
        let r = codec::OffsetFetchRequest {
            group_id: "g".into(),
            topics: None,
            require_stable: true,
            ..Default::default()
        };
        let api::Request::OffsetFetch(f) = request_round_trip(7, RequestBody::OffsetFetch(r))
        else {
            panic!()
        };
        assert_eq!(f.groups[0].topics, None);
        assert!(f.require_stable);
        let r = codec::OffsetFetchRequest {
            groups: vec![
                codec::OffsetFetchRequestGroup {
                    group_id: "a".into(),
                    member_id: Some("m".into()),
                    member_epoch: 3,
                    topics: None,
                },
                codec::OffsetFetchRequestGroup {
                    group_id: "b".into(),
                    member_id: None,
                    member_epoch: -1,
                    topics: Some(vec![codec::OffsetFetchRequestTopics {
                        name: "t".into(),
                        partition_indexes: vec![2],
                        ..Default::default()
                    }]),
                },
            ],
            ..Default::default()
        };
        let api::Request::OffsetFetch(f) = request_round_trip(9, RequestBody::OffsetFetch(r))
        else {
            panic!()
        };
        assert_eq!(f.groups.len(), 2);
        assert_eq!(f.groups[0].member_id.as_deref(), Some("m"));
        assert_eq!(f.groups[0].topics, None);
        assert_eq!(
            f.groups[1].topics.as_ref().unwrap()[0].partition_indexes,
            vec![2]
        );

        // v1 has no top-level error: a group error goes onto every partition.
        let response = |e| {
            api::Response::OffsetFetch(api::OffsetFetchResponse {
                throttle_time_ms: 0,
                groups: vec![fetched_group(e)],
            })
        };
        let ResponseBody::OffsetFetch(f) =
            response_round_trip(1, response(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS))
        else {
            panic!()
        };
        let p = &f.topics[0].partitions[0];
        assert_eq!(p.error_code, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0);
        assert_eq!(p.committed_offset, 42);
        let ResponseBody::OffsetFetch(f) =
            response_round_trip(7, response(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS))
        else {
            panic!()
        };
        assert_eq!(f.error_code, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0);
        assert!(f.topics.is_empty(), "v2+ answers a group error alone");
        let ResponseBody::OffsetFetch(f) = response_round_trip(7, response(ErrorCode::NONE)) else {
            panic!()
        };
        assert_eq!(f.topics[0].partitions[0].error_code, 0);
        assert_eq!(f.topics[0].partitions[0].committed_leader_epoch, -1);
        let ResponseBody::OffsetFetch(f) =
            response_round_trip(9, response(ErrorCode::NOT_COORDINATOR))
        else {
            panic!()
        };
        assert_eq!(f.groups[0].error_code, ErrorCode::NOT_COORDINATOR.0);
        assert!(f.groups[0].topics.is_empty());
        let ResponseBody::OffsetFetch(f) = response_round_trip(9, response(ErrorCode::NONE)) else {
            panic!()
        };
        assert!(f.topics.is_empty());
        assert_eq!(f.groups[0].group_id, "g");
        let p = &f.groups[0].topics[0].partitions[0];
        assert_eq!((p.committed_offset, p.committed_leader_epoch), (42, -1));
    }

    #[test]
    fn list_describe_and_delete_groups_map_both_ways() {
        let r = codec::ListGroupsRequest {
            states_filter: vec!["Stable".into()],
            types_filter: vec![],
        };
        let api::Request::ListGroups(l) = request_round_trip(0, RequestBody::ListGroups(r.clone()))
        else {
            panic!()
        };
        assert!(l.states_filter.is_empty());
        let api::Request::ListGroups(l) = request_round_trip(4, RequestBody::ListGroups(r)) else {
            panic!()
        };
        assert_eq!(l.states_filter, vec!["Stable".to_string()]);
        let response = api::Response::ListGroups(api::ListGroupsResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            groups: vec![api::ListedGroup {
                group_id: "g".into(),
                protocol_type: "consumer".into(),
                group_state: "Stable".into(),
                group_type: "classic".into(),
            }],
        });
        for version in [0, 4] {
            let ResponseBody::ListGroups(l) = response_round_trip(version, response.clone()) else {
                panic!()
            };
            assert_eq!(l.groups[0].group_id, "g");
            let state = if version >= 4 { "Stable" } else { "" };
            assert_eq!(l.groups[0].group_state, state);
        }

        let r = codec::DescribeGroupsRequest {
            groups: vec!["g".into()],
            include_authorized_operations: true,
        };
        for version in [0, 5] {
            let api::Request::DescribeGroups(d) =
                request_round_trip(version, RequestBody::DescribeGroups(r.clone()))
            else {
                panic!()
            };
            assert_eq!(d.groups, vec!["g".to_string()]);
            assert_eq!(d.include_authorized_operations, version >= 3);
        }
        let response = api::Response::DescribeGroups(api::DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![api::DescribedGroup {
                group_id: "g".into(),
                group_state: "Stable".into(),
                protocol_type: "consumer".into(),
                protocol_data: "range".into(),
                members: vec![api::DescribedGroupMember {
                    member_id: "m".into(),
                    group_instance_id: Some("i".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    member_metadata: Bytes::from_static(b"md"),
                    member_assignment: Bytes::from_static(b"as"),
                }],
                authorized_operations: api::AUTHORIZED_OPERATIONS_OMITTED,
                ..Default::default()
            }],
        });
        for version in [0, 5] {
            let ResponseBody::DescribeGroups(d) = response_round_trip(version, response.clone())
            else {
                panic!()
            };
            let m = &d.groups[0].members[0];
            assert_eq!(d.groups[0].protocol_data, "range");
            assert_eq!(m.client_host, "/127.0.0.1");
            assert_eq!(m.member_assignment, Bytes::from_static(b"as"));
            let instance = (version >= 4).then(|| "i".to_string());
            assert_eq!(m.group_instance_id, instance);
        }

        let r = codec::DeleteGroupsRequest {
            groups_names: vec!["a".into(), "b".into()],
        };
        for version in [0, 2] {
            assert_eq!(
                request_round_trip(version, RequestBody::DeleteGroups(r.clone())),
                api::Request::DeleteGroups(api::DeleteGroupsRequest {
                    groups_names: vec!["a".into(), "b".into()],
                })
            );
            let response = api::Response::DeleteGroups(api::DeleteGroupsResponse {
                throttle_time_ms: 0,
                results: vec![api::DeletableGroupResult {
                    group_id: "a".into(),
                    error_code: ErrorCode::NON_EMPTY_GROUP,
                }],
            });
            let ResponseBody::DeleteGroups(d) = response_round_trip(version, response) else {
                panic!()
            };
            assert_eq!(d.results[0].error_code, ErrorCode::NON_EMPTY_GROUP.0);
        }
    }

    // ---- configs, CreatePartitions, DescribeCluster: every advertised version ------------

    #[test]
    fn describe_configs_maps_v1_to_v4() {
        for version in 1..=4 {
            let r = codec::DescribeConfigsRequest {
                resources: vec![codec::DescribeConfigsResource {
                    resource_type: 2,
                    resource_name: "t".into(),
                    configuration_keys: None,
                }],
                include_synonyms: true,
                include_documentation: true,
            };
            let api::Request::DescribeConfigs(d) =
                request_round_trip(version, RequestBody::DescribeConfigs(r))
            else {
                panic!()
            };
            assert_eq!(d.resources[0].configuration_keys, None);
            assert!(d.include_synonyms);
            assert_eq!(d.include_documentation, version >= 3, "v{version}");
            let response = api::Response::DescribeConfigs(api::DescribeConfigsResponse {
                results: vec![api::DescribeConfigsResult {
                    error_code: ErrorCode::NONE,
                    error_message: None,
                    resource_type: 2,
                    resource_name: "t".into(),
                    configs: vec![api::DescribedConfig {
                        name: "retention.ms".into(),
                        value: Some("1000".into()),
                        read_only: false,
                        config_source: api::CONFIG_SOURCE_DYNAMIC_TOPIC,
                        is_sensitive: false,
                        synonyms: vec![api::ConfigSynonym {
                            name: "retention.ms".into(),
                            value: Some("1000".into()),
                            source: api::CONFIG_SOURCE_DYNAMIC_TOPIC,
                        }],
                        config_type: api::CONFIG_TYPE_LONG,
                        documentation: Some("doc".into()),
                    }],
                }],
            });
            let ResponseBody::DescribeConfigs(d) = response_round_trip(version, response) else {
                panic!()
            };
            let c = &d.results[0].configs[0];
            assert_eq!((c.value.as_deref(), c.config_source), (Some("1000"), 1));
            assert_eq!(c.synonyms.len(), 1);
            assert_eq!(c.config_type, if version >= 3 { 5 } else { 0 });
        }
    }

    #[test]
    fn alter_configs_map_every_version() {
        for version in 0..=2 {
            let r = codec::AlterConfigsRequest {
                resources: vec![codec::alter_configs::AlterConfigsResource {
                    resource_type: 2,
                    resource_name: "t".into(),
                    configs: vec![codec::alter_configs::AlterableConfig {
                        name: "retention.ms".into(),
                        value: Some("5".into()),
                    }],
                }],
                validate_only: true,
            };
            let api::Request::AlterConfigs(a) =
                request_round_trip(version, RequestBody::AlterConfigs(r))
            else {
                panic!()
            };
            assert!(a.validate_only);
            assert_eq!(
                a.resources[0].configs,
                [("retention.ms".to_string(), Some("5".to_string()))]
            );
            let response = api::Response::AlterConfigs(api::AlterConfigsResponse {
                responses: vec![api::AlterConfigsResult {
                    error_code: ErrorCode::INVALID_CONFIG,
                    error_message: Some("why".into()),
                    resource_type: 2,
                    resource_name: "t".into(),
                }],
            });
            let ResponseBody::AlterConfigs(a) = response_round_trip(version, response) else {
                panic!()
            };
            assert_eq!(a.responses[0].error_code, 40);
            assert_eq!(a.responses[0].error_message.as_deref(), Some("why"));
        }
        for version in 0..=1 {
            let r = codec::IncrementalAlterConfigsRequest {
                resources: vec![codec::incremental_alter_configs::AlterConfigsResource {
                    resource_type: 4,
                    resource_name: "1".into(),
                    configs: vec![codec::incremental_alter_configs::AlterableConfig {
                        name: "cleanup.policy".into(),
                        config_operation: 2,
                        value: Some("compact".into()),
                    }],
                }],
                validate_only: false,
            };
            let api::Request::IncrementalAlterConfigs(a) =
                request_round_trip(version, RequestBody::IncrementalAlterConfigs(r))
            else {
                panic!()
            };
            assert_eq!(
                a.resources[0].configs,
                [api::ConfigChange {
                    name: "cleanup.policy".into(),
                    operation: api::CONFIG_OP_APPEND,
                    value: Some("compact".into()),
                }]
            );
            let response = api::Response::IncrementalAlterConfigs(api::AlterConfigsResponse {
                responses: vec![api::AlterConfigsResult {
                    error_code: ErrorCode::NONE,
                    error_message: None,
                    resource_type: 4,
                    resource_name: "1".into(),
                }],
            });
            let ResponseBody::IncrementalAlterConfigs(a) = response_round_trip(version, response)
            else {
                panic!()
            };
            assert_eq!(
                (a.responses[0].resource_type, a.responses[0].error_code),
                (4, 0)
            );
        }
    }

    #[test]
    fn fetch_sessions_map_from_v7_and_are_sessionless_before() {
        for version in 4..=12 {
            let r = codec::FetchRequest {
                session_id: 42,
                session_epoch: 3,
                forgotten_topics_data: vec![codec::ForgottenTopic {
                    topic: "gone".into(),
                    partitions: vec![2],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let api::Request::Fetch(f) = request_round_trip(version, RequestBody::Fetch(r)) else {
                panic!()
            };
            if version >= 7 {
                assert_eq!((f.session.session_id, f.session.epoch), (42, 3));
                assert_eq!(
                    f.session.forgotten,
                    vec![api::FetchForgottenTopic {
                        name: "gone".into(),
                        partitions: vec![2],
                    }]
                );
            } else {
                assert_eq!(f.session, api::FetchSessionRequest::default(), "v{version}");
            }
            let response = api::Response::Fetch(api::FetchResponse {
                session_id: 42,
                ..Default::default()
            });
            let ResponseBody::Fetch(d) = response_round_trip(version, response) else {
                panic!()
            };
            assert_eq!(
                d.session_id,
                if version >= 7 { 42 } else { 0 },
                "v{version}"
            );
        }
    }

    #[test]
    fn describe_log_dirs_maps_every_version() {
        for version in 1..=4 {
            for topics in [
                None,
                Some(vec![codec::DescribableLogDirTopic {
                    topic: "t".into(),
                    partitions: vec![0, 3],
                }]),
            ] {
                let r = codec::DescribeLogDirsRequest {
                    topics: topics.clone(),
                };
                let api::Request::DescribeLogDirs(d) =
                    request_round_trip(version, RequestBody::DescribeLogDirs(r))
                else {
                    panic!()
                };
                let expected = topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| api::DescribableLogDirTopic {
                            topic: t.topic,
                            partitions: t.partitions,
                        })
                        .collect::<Vec<_>>()
                });
                assert_eq!(d.topics, expected, "v{version}");
            }
            let response = api::Response::DescribeLogDirs(api::DescribeLogDirsResponse {
                error_code: ErrorCode::NONE,
                results: vec![api::LogDirResult {
                    error_code: ErrorCode::NONE,
                    log_dir: "/data".into(),
                    topics: vec![api::LogDirTopic {
                        name: "t".into(),
                        partitions: vec![api::LogDirPartition {
                            partition_index: 3,
                            partition_size: 4096,
                            offset_lag: 0,
                            is_future_key: false,
                        }],
                    }],
                    total_bytes: 100,
                    usable_bytes: 50,
                }],
            });
            let ResponseBody::DescribeLogDirs(d) = response_round_trip(version, response) else {
                panic!()
            };
            let dir = &d.results[0];
            let p = &dir.topics[0].partitions[0];
            assert_eq!(
                (dir.log_dir.as_str(), p.partition_index, p.partition_size),
                ("/data", 3, 4096)
            );
            // Volume sizes exist from v4; older versions decode the schema default.
            let sizes = if version >= 4 { (100, 50) } else { (-1, -1) };
            assert_eq!((dir.total_bytes, dir.usable_bytes), sizes, "v{version}");
        }
    }

    #[test]
    fn create_partitions_and_describe_cluster_map_every_version() {
        for version in 0..=3 {
            let r = codec::CreatePartitionsRequest {
                topics: vec![
                    codec::CreatePartitionsTopic {
                        name: "a".into(),
                        count: 3,
                        assignments: None,
                    },
                    codec::CreatePartitionsTopic {
                        name: "b".into(),
                        count: 2,
                        assignments: Some(vec![codec::CreatePartitionsAssignment {
                            broker_ids: vec![1],
                        }]),
                    },
                ],
                timeout_ms: 100,
                validate_only: true,
            };
            let api::Request::CreatePartitions(c) =
                request_round_trip(version, RequestBody::CreatePartitions(r))
            else {
                panic!()
            };
            assert_eq!(c.topics[0].assignments, None);
            assert_eq!(c.topics[1].assignments, Some(vec![vec![1]]));
            assert!(c.validate_only);
            let response = api::Response::CreatePartitions(api::CreatePartitionsResponse {
                results: vec![api::CreatePartitionsTopicResult {
                    name: "a".into(),
                    error_code: ErrorCode::INVALID_PARTITIONS,
                    error_message: Some("no".into()),
                }],
            });
            let ResponseBody::CreatePartitions(c) = response_round_trip(version, response) else {
                panic!()
            };
            assert_eq!(c.results[0].error_code, 37);
        }
        for version in 0..=2 {
            let r = codec::DescribeClusterRequest {
                include_cluster_authorized_operations: true,
                endpoint_type: 2,
                include_fenced_brokers: true,
            };
            let api::Request::DescribeCluster(d) =
                request_round_trip(version, RequestBody::DescribeCluster(r))
            else {
                panic!()
            };
            // v0 has no endpoint type: it always means brokers.
            let expected_type = if version >= 1 { 2 } else { 1 };
            assert_eq!(d.endpoint_type, expected_type, "v{version}");
            assert_eq!(d.include_fenced_brokers, version >= 2);
            let response = api::Response::DescribeCluster(api::DescribeClusterResponse {
                error_code: ErrorCode::NONE,
                error_message: None,
                endpoint_type: 1,
                cluster_id: "c".into(),
                controller_id: 1,
                brokers: vec![api::DescribeClusterBroker {
                    broker_id: 1,
                    host: "h".into(),
                    port: 9092,
                    rack: None,
                    is_fenced: false,
                }],
                cluster_authorized_operations: api::AUTHORIZED_OPERATIONS_OMITTED,
            });
            let ResponseBody::DescribeCluster(d) = response_round_trip(version, response) else {
                panic!()
            };
            assert_eq!((d.cluster_id.as_str(), d.controller_id), ("c", 1));
            assert_eq!(d.brokers[0].port, 9092);
            assert_eq!(d.cluster_authorized_operations, i32::MIN);
        }
    }

    #[test]
    fn delete_records_maps_every_version() {
        for version in 0..=2 {
            let r = codec::DeleteRecordsRequest {
                topics: vec![codec::DeleteRecordsTopic {
                    name: "t".into(),
                    partitions: vec![codec::DeleteRecordsPartition {
                        partition_index: 2,
                        offset: -1,
                    }],
                }],
                timeout_ms: 500,
            };
            let api::Request::DeleteRecords(d) =
                request_round_trip(version, RequestBody::DeleteRecords(r))
            else {
                panic!()
            };
            assert_eq!(d.timeout_ms, 500);
            assert_eq!(
                d.topics[0].partitions[0],
                api::DeleteRecordsPartition {
                    partition_index: 2,
                    offset: api::DELETE_RECORDS_HIGH_WATERMARK,
                }
            );
            let response = api::Response::DeleteRecords(api::DeleteRecordsResponse {
                throttle_time_ms: 0,
                topics: vec![api::DeleteRecordsTopicResult {
                    name: "t".into(),
                    partitions: vec![api::DeleteRecordsPartitionResult {
                        partition_index: 2,
                        low_watermark: 42,
                        error_code: ErrorCode::NONE,
                    }],
                }],
            });
            let ResponseBody::DeleteRecords(d) = response_round_trip(version, response) else {
                panic!()
            };
            let p = &d.topics[0].partitions[0];
            assert_eq!(
                (p.partition_index, p.low_watermark, p.error_code),
                (2, 42, 0)
            );
        }
    }

    #[test]
    fn offset_delete_maps_v0() {
        let r = codec::OffsetDeleteRequest {
            group_id: "g".into(),
            topics: vec![codec::OffsetDeleteRequestTopic {
                name: "t".into(),
                partitions: vec![codec::OffsetDeleteRequestPartition { partition_index: 3 }],
            }],
        };
        assert_eq!(
            request_round_trip(0, RequestBody::OffsetDelete(r)),
            api::Request::OffsetDelete(api::OffsetDeleteRequest {
                group_id: "g".into(),
                topics: vec![api::OffsetDeleteRequestTopic {
                    name: "t".into(),
                    partitions: vec![3],
                }],
            })
        );
        let response = api::Response::OffsetDelete(api::OffsetDeleteResponse {
            error_code: ErrorCode::NONE,
            throttle_time_ms: 0,
            topics: vec![api::OffsetDeleteResponseTopic {
                name: "t".into(),
                partitions: vec![api::OffsetDeleteResponsePartition {
                    partition_index: 3,
                    error_code: ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC,
                }],
            }],
        });
        let ResponseBody::OffsetDelete(d) = response_round_trip(0, response) else {
            panic!()
        };
        assert_eq!(
            d.topics[0].partitions[0].error_code,
            ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC.0
        );
    }
}
