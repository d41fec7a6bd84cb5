//! Metadata, ListOffsets, CreateTopics, DeleteTopics, CreatePartitions, DescribeCluster and
//! DescribeLogDirs: the requests that describe and change which topics and partitions exist.
//!
//! Every change is durable in the metadata table (`Storage::replace`) before the partition
//! logs it implies are opened and before the answer, so a crash in between leaves at most
//! empty partitions that the next start opens again.

use super::WriteClass;
use crate::api::*;
use crate::config::validate_topic_config;
use crate::error::ErrorCode;
use crate::ids::{NodeId, PartitionId};
use crate::log::LogError;
use crate::metadata::Metadata;
use crate::metadata::{validate_topic_name, TopicMeta};
use crate::node::{partition_dir, Node, OpenError};
use crate::partition::{Waiter, SINGLE_NODE_LEADER_EPOCH};
use rand::RngCore;
use std::collections::BTreeMap;

/// Kafka's internal topics, flagged `is_internal` in Metadata.
const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// The most partitions one topic may have: every partition is an open log with its files.
const MAX_PARTITIONS: i32 = 100_000;

/// Kafka's MISMATCHED_ENDPOINT_TYPE (114) and UNSUPPORTED_ENDPOINT_TYPE (115), KIP-919.
const MISMATCHED_ENDPOINT_TYPE: ErrorCode = ErrorCode(114);
const UNSUPPORTED_ENDPOINT_TYPE: ErrorCode = ErrorCode(115);

/// Kafka's authorized operations on the cluster when there is no authorizer: every operation
/// the resource type supports (`AuthHelper.authorizedOperations` with `authorizer = None`,
/// `AclEntry.supportedOperations(CLUSTER)`): CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE (bits 5, 7-12 of AclOperation).
const CLUSTER_AUTHORIZED_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// The same for a topic (`AclEntry.supportedOperations(TOPIC)`): READ, WRITE, CREATE, DELETE,
/// ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (bits 3-8, 10, 11).
pub(super) const TOPIC_AUTHORIZED_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);

/// Kafka's SECURITY_DISABLED (54): "Security features are disabled."
const SECURITY_DISABLED: ErrorCode = ErrorCode(54);

/// The ACL APIs as Kafka 3.9 answers them with no authorizer configured (AclApis.scala):
/// DescribeAcls "No Authorizer is configured on the broker", CreateAcls and DeleteAcls "No
/// Authorizer is configured." for each creation or filter, all SECURITY_DISABLED. Keel has no
/// authorizer, so these are its true answers, and admin clients show them as Kafka's.
pub(crate) fn acls_without_an_authorizer(request: &AclRequest) -> AclResponse {
    let disabled = |message: &str| AclResult {
        error_code: SECURITY_DISABLED,
        error_message: Some(message.to_string()),
    };
    match *request {
        AclRequest::Describe => {
            AclResponse::Describe(disabled("No Authorizer is configured on the broker"))
        }
        AclRequest::Create { creations } => AclResponse::Create(
            (0..creations)
                .map(|_| disabled("No Authorizer is configured."))
                .collect(),
        ),
        AclRequest::Delete { filters } => AclResponse::Delete(
            (0..filters)
                .map(|_| disabled("No Authorizer is configured."))
                .collect(),
        ),
    }
}

/// Kafka's DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (64).
const DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: ErrorCode = ErrorCode(64);

/// Kafka's DelegationTokenManager.ErrorTimestamp.
const TOKEN_ERROR_TIMESTAMP: i64 = -1;

/// The delegation token APIs as Kafka 3.9 answers them on a PLAINTEXT listener, where
/// `allowTokenRequests` is false (KafkaApis.scala): DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, with
/// the fields `CreateDelegationTokenResponse.prepareResponse(version, throttle, error, owner,
/// requester)` fills (timestamps -1), Renew and Expire's expiry -1, and Describe no tokens. An
/// unauthenticated connection's principal is User:ANONYMOUS, the requester, and the owner
/// unless CreateDelegationToken v3 names one.
pub(crate) fn delegation_tokens_on_plaintext(
    request: &DelegationTokenRequest,
) -> DelegationTokenResponse {
    let anonymous = || Principal {
        principal_type: "User".to_string(),
        name: "ANONYMOUS".to_string(),
    };
    let error_code = DELEGATION_TOKEN_REQUEST_NOT_ALLOWED;
    match request {
        DelegationTokenRequest::Create {
            owner_principal_type,
            owner_principal_name,
        } => {
            let owner = match owner_principal_name.as_deref() {
                Some(name) if !name.is_empty() => Principal {
                    principal_type: owner_principal_type.clone().unwrap_or_default(),
                    name: name.to_string(),
                },
                _ => anonymous(),
            };
            DelegationTokenResponse::Create {
                error_code,
                owner,
                requester: anonymous(),
                issue_timestamp_ms: TOKEN_ERROR_TIMESTAMP,
                expiry_timestamp_ms: TOKEN_ERROR_TIMESTAMP,
                max_timestamp_ms: TOKEN_ERROR_TIMESTAMP,
            }
        }
        DelegationTokenRequest::Renew => DelegationTokenResponse::Renew {
            error_code,
            expiry_timestamp_ms: TOKEN_ERROR_TIMESTAMP,
        },
        DelegationTokenRequest::Expire => DelegationTokenResponse::Expire {
            error_code,
            expiry_timestamp_ms: TOKEN_ERROR_TIMESTAMP,
        },
        DelegationTokenRequest::Describe => DelegationTokenResponse::Describe { error_code },
    }
}

impl Node {
    pub(crate) fn metadata_request(&mut self, request: MetadataRequest) -> MetadataResponse {
        let mut response = MetadataResponse {
            brokers: self.live_brokers(),
            cluster_id: Some(self.config.cluster_id.clone()),
            controller_id: self.controller_id().map_or(-1, |c| c.0),
            topics: Vec::new(),
            // Keel has no authorizer: Kafka then grants every operation (KafkaApis
            // handleTopicMetadataRequest, AuthHelper.authorizedOperations).
            cluster_authorized_operations: if request.include_cluster_authorized_operations {
                CLUSTER_AUTHORIZED_OPERATIONS
            } else {
                AUTHORIZED_OPERATIONS_OMITTED
            },
        };
        let topic_operations = if request.include_topic_authorized_operations {
            TOPIC_AUTHORIZED_OPERATIONS
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        match request.topics {
            None => {
                let names: Vec<String> = self.metadata.topics.keys().cloned().collect();
                for name in names {
                    response.topics.push(self.describe_topic(&name));
                }
            }
            Some(topics) => {
                for t in topics {
                    let name = match (&t.name, t.id) {
                        (Some(name), _) => name.clone(),
                        (None, id) => match self.metadata.by_id(id) {
                            Some(meta) => meta.name.clone(),
                            None => {
                                response.topics.push(MetadataTopic {
                                    error_code: ErrorCode::UNKNOWN_TOPIC_ID,
                                    topic_id: id,
                                    ..Default::default()
                                });
                                continue;
                            }
                        },
                    };
                    if !self.metadata.topics.contains_key(&name) {
                        if let Err(code) =
                            self.auto_create(&name, request.allow_auto_topic_creation)
                        {
                            response.topics.push(MetadataTopic {
                                error_code: code,
                                name: Some(name),
                                ..Default::default()
                            });
                            continue;
                        }
                    }
                    response.topics.push(self.describe_topic(&name));
                }
            }
        }
        // Kafka sets them on every topic of the answer, also on those with an error.
        for t in &mut response.topics {
            t.topic_authorized_operations = topic_operations;
        }
        response
    }

    /// Creates a topic a client named for the first time, if the broker and the request allow.
    fn auto_create(&mut self, name: &str, allowed_by_request: bool) -> Result<(), ErrorCode> {
        if validate_topic_name(name).is_err() {
            return Err(ErrorCode::INVALID_TOPIC_EXCEPTION);
        }
        // The internal offsets topic is created with its own settings (broker/group.rs).
        if name == crate::group::OFFSETS_TOPIC {
            return self.ensure_offsets_topic().map(|_| ());
        }
        if !(self.config.auto_create_topics && allowed_by_request) {
            return Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        }
        let partitions = self.config.default_num_partitions.max(1);
        self.create_topic_in(name, partitions, BTreeMap::new(), WriteClass::Reserved)
            .map(|_| ())
            .map_err(|(code, msg)| {
                // Every retry of the client's Metadata lands here: one line a minute per
                // topic, and none for the floor, whose own line says it all (disk.rs).
                let throttled = code == super::disk::NO_SPACE
                    || self
                        .throttle
                        .borrow_mut()
                        .allow("auto-create", name, self.now)
                        .is_none();
                if !throttled {
                    tracing::warn!(topic = name, %msg, "auto-creating a topic failed");
                }
                code
            })
    }

    fn describe_topic(&self, name: &str) -> MetadataTopic {
        let Some(meta) = self.metadata.topics.get(name) else {
            return MetadataTopic {
                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                name: Some(name.to_string()),
                ..Default::default()
            };
        };
        MetadataTopic {
            error_code: ErrorCode::NONE,
            name: Some(name.to_string()),
            topic_id: meta.id,
            is_internal: INTERNAL_TOPICS.contains(&name),
            partitions: (0..meta.partitions)
                .map(|index| {
                    let p = self.partitions.get(&PartitionId {
                        topic: meta.id,
                        index,
                    });
                    // The leader is the first replica; a partition this broker hosts is
                    // healthy when its log is, one elsewhere as far as this broker knows.
                    let replicas = self.partition_replicas(meta.id, index);
                    let first = replicas.first().copied().unwrap_or(-1);
                    // A fenced leader's partitions are offline until it is back.
                    let offline = self.is_fenced(NodeId(first));
                    let leader = if offline { -1 } else { first };
                    let healthy = match p {
                        Some(p) => !p.is_failed(),
                        None => leader != self.config.node_id.0 && leader >= 0,
                    };
                    MetadataPartition {
                        error_code: if offline {
                            ErrorCode::LEADER_NOT_AVAILABLE
                        } else if healthy {
                            ErrorCode::NONE
                        } else {
                            ErrorCode::KAFKA_STORAGE_ERROR
                        },
                        partition_index: index,
                        leader_id: leader,
                        leader_epoch: p.map_or(SINGLE_NODE_LEADER_EPOCH, |p| p.leader_epoch).0,
                        offline_replicas: if healthy && !offline {
                            vec![]
                        } else {
                            vec![first]
                        },
                        isr_nodes: replicas.clone(),
                        replica_nodes: replicas,
                    }
                })
                .collect(),
            topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        }
    }

    pub(crate) fn list_offsets(&mut self, request: ListOffsetsRequest) -> ListOffsetsResponse {
        let mut response = ListOffsetsResponse::default();
        for topic in request.topics {
            let mut topic_response = ListOffsetsTopicResponse {
                name: topic.name.clone(),
                partitions: Vec::new(),
            };
            for lp in topic.partitions {
                let mut out = ListOffsetsPartitionResponse {
                    partition_index: lp.partition_index,
                    error_code: ErrorCode::NONE,
                    timestamp: -1,
                    offset: -1,
                    leader_epoch: -1,
                };
                match self.partition_named(&topic.name, lp.partition_index) {
                    None => {
                        out.error_code =
                            self.missing_partition_error(&topic.name, lp.partition_index)
                    }
                    Some(p) => {
                        if let Some(code) = super::fetch::leader_epoch_error(
                            lp.current_leader_epoch,
                            p.leader_epoch.0,
                        ) {
                            out.error_code = code;
                        } else {
                            let hw = p.high_watermark.0;
                            let found = match lp.timestamp {
                                EARLIEST_TIMESTAMP => Ok(Some((p.log.log_start_offset(), -1))),
                                LATEST_TIMESTAMP => Ok(Some((hw, -1))),
                                MAX_TIMESTAMP => p.log.max_timestamp_offset(hw).map_err(Some),
                                ts if ts >= 0 => p.log.offset_for_timestamp(ts, hw).map_err(Some),
                                _ => Err(None),
                            };
                            match found {
                                Ok(Some((offset, timestamp))) => {
                                    out.offset = offset;
                                    out.timestamp = timestamp;
                                    out.leader_epoch = p.leader_epoch.0;
                                }
                                // No record at or after the timestamp: offset and timestamp -1.
                                Ok(None) => {}
                                Err(None) => out.error_code = ErrorCode::INVALID_REQUEST,
                                Err(Some(e)) => {
                                    if let Some(held_back) = self.throttle.borrow_mut().allow(
                                        "offset-lookup",
                                        &topic.name,
                                        self.now,
                                    ) {
                                        tracing::error!(topic = %topic.name, partition = lp.partition_index, error = %e, held_back, "offset lookup failed");
                                    }
                                    out.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                                }
                            }
                        }
                    }
                }
                topic_response.partitions.push(out);
            }
            response.topics.push(topic_response);
        }
        response
    }

    pub(crate) fn create_topics(&mut self, request: CreateTopicsRequest) -> CreateTopicsResponse {
        let mut response = CreateTopicsResponse::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut counts = BTreeMap::new();
        for t in &request.topics {
            *counts.entry(t.name.clone()).or_insert(0) += 1;
        }
        for t in request.topics {
            let mut result = CreatableTopicResult {
                name: t.name.clone(),
                num_partitions: -1,
                replication_factor: -1,
                ..Default::default()
            };
            let outcome = if counts.get(&t.name).copied().unwrap_or(0) > 1 {
                Err((
                    ErrorCode::INVALID_REQUEST,
                    format!(
                        "Create topics request from client contains a duplicate topic {}",
                        t.name
                    ),
                ))
            } else {
                self.check_creatable(&t).and_then(|(partitions, configs)| {
                    if request.validate_only {
                        Ok((TopicId::ZERO, partitions, configs))
                    } else {
                        self.create_topic(&t.name, partitions, configs.clone())
                            .map(|id| (id, partitions, configs))
                    }
                })
            };
            seen.insert(t.name.clone());
            match outcome {
                Ok((id, partitions, configs)) => {
                    result.topic_id = id;
                    result.num_partitions = partitions;
                    result.replication_factor = 1;
                    result.configs = self
                        .topic_config_entries(&configs, &|_| true, false)
                        .into_iter()
                        .map(|c| TopicConfigEntry {
                            name: c.name,
                            value: c.value,
                            read_only: c.read_only,
                            config_source: c.config_source,
                            is_sensitive: c.is_sensitive,
                        })
                        .collect();
                }
                Err((code, message)) => {
                    result.error_code = code;
                    result.error_message = Some(message);
                }
            }
            response.topics.push(result);
        }
        response
    }

    /// Checks a CreateTopics entry as Kafka does, returning the partition count and configs.
    pub(crate) fn check_creatable(
        &self,
        t: &CreatableTopic,
    ) -> Result<(i32, BTreeMap<String, String>), (ErrorCode, String)> {
        validate_topic_name(&t.name).map_err(|m| (ErrorCode::INVALID_TOPIC_EXCEPTION, m))?;
        if self.metadata.topics.contains_key(&t.name) {
            return Err((
                ErrorCode::TOPIC_ALREADY_EXISTS,
                format!("Topic '{}' already exists.", t.name),
            ));
        }
        let partitions = if !t.assignments.is_empty() {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                return Err((
                    ErrorCode::INVALID_REQUEST,
                    "Both numPartitions or replicationFactor and replicasAssignments were set"
                        .into(),
                ));
            }
            let mut indexes: Vec<i32> = t.assignments.iter().map(|(p, _)| *p).collect();
            indexes.sort_unstable();
            let node = self.config.node_id.0;
            if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
                return Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    "partitions must be assigned as 0..n, each once".to_string(),
                ));
            }
            // In a cluster the brokers named are checked against the registered ones
            // (broker/cluster_admin.rs).
            if self.quorum.is_none()
                && t.assignments
                    .iter()
                    .any(|(_, brokers)| brokers.as_slice() != [node])
            {
                return Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "a single-node cluster can only assign partitions 0..n to broker {node}"
                    ),
                ));
            }
            indexes.len() as i32
        } else {
            let partitions = if t.num_partitions == -1 {
                self.config.default_num_partitions
            } else {
                t.num_partitions
            };
            if partitions <= 0 {
                return Err((
                    ErrorCode::INVALID_PARTITIONS,
                    "Number of partitions must be larger than 0.".into(),
                ));
            }
            if self.quorum.is_none() && t.replication_factor != -1 && t.replication_factor != 1 {
                if t.replication_factor <= 0 {
                    return Err((
                        ErrorCode::INVALID_REPLICATION_FACTOR,
                        "Replication factor must be larger than 0.".into(),
                    ));
                }
                return Err((
                    ErrorCode::INVALID_REPLICATION_FACTOR,
                    format!("Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only 1 broker(s) are registered.", t.replication_factor, t.replication_factor),
                ));
            }
            partitions
        };
        if partitions > MAX_PARTITIONS {
            return Err((
                ErrorCode::INVALID_PARTITIONS,
                format!("at most {MAX_PARTITIONS} partitions per topic"),
            ));
        }
        let mut configs = BTreeMap::new();
        for (name, value) in &t.configs {
            validate_topic_config(name, value.as_deref())
                .map_err(|m| (ErrorCode::INVALID_CONFIG, m))?;
            if let Some(v) = value {
                configs.insert(name.clone(), crate::config::normalize(name, v));
            }
        }
        Ok((partitions, configs))
    }

    /// Records a new topic durably, then opens its partition logs.
    pub(crate) fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicId, (ErrorCode, String)> {
        // The offsets topic, which every group needs, is not held to the floor (disk.rs).
        let class = if name == crate::group::OFFSETS_TOPIC {
            WriteClass::Internal
        } else {
            WriteClass::Data
        };
        self.create_topic_in(name, partitions, configs, class)
    }

    /// [`Node::create_topic`] for a write of `class` (the floor's reserve or not).
    fn create_topic_in(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        class: WriteClass,
    ) -> Result<TopicId, (ErrorCode, String)> {
        if !self.disk.admits(class) {
            return Err((super::disk::NO_SPACE, self.disk.refusal()));
        }
        if self.quorum.is_some() {
            return Err(self.cluster_auto_create(name, partitions, configs));
        }
        let id = self.new_topic_id();
        let meta = TopicMeta::new(name, id, partitions, configs);
        let mut next = self.metadata.clone();
        next.topics.insert(name.to_string(), meta.clone());
        self.commit_new_partitions(&meta, 0, next, "the topic")?;
        tracing::info!(topic = name, partitions, "created topic");
        crate::config::warn_deprecated(name, meta.configs.keys().map(String::as_str));
        Ok(id)
    }

    /// Makes partitions `from..meta.partitions` of `meta` exist whole or not at all: their
    /// logs are opened first and only then is `next` (the metadata naming them) saved. A
    /// failure on the way removes the logs opened so far, and a crash before the save
    /// leaves directories no topic owns, which the next open removes; so a request
    /// answered with an error never shows its topic after a restart.
    fn commit_new_partitions(
        &mut self,
        meta: &TopicMeta,
        from: i32,
        next: Metadata,
        what: &str,
    ) -> Result<(), (ErrorCode, String)> {
        self.open_new_partitions(meta, from)?;
        if let Err(e) = next.save(self.storage.as_ref()) {
            self.discard_new_partitions(meta, from, meta.partitions);
            let code = if e.kind() == std::io::ErrorKind::StorageFull {
                super::disk::NO_SPACE
            } else {
                ErrorCode::KAFKA_STORAGE_ERROR
            };
            return Err((code, format!("could not persist {what}: {e}")));
        }
        self.metadata = next;
        Ok(())
    }

    /// Closes and deletes the logs of partitions `from..to` of `meta`, opened for a
    /// creation that failed. Files a deletion leaves are orphans the next open removes.
    fn discard_new_partitions(&mut self, meta: &TopicMeta, from: i32, to: i32) {
        for index in from..to {
            let key = PartitionId {
                topic: meta.id,
                index,
            };
            if let Some(p) = self.partitions.remove(&key) {
                if let Err(e) = p.log.delete() {
                    tracing::warn!(topic = %meta.name, partition = index, error = %e, "could not remove the log of a partition whose creation failed; the next start removes it");
                }
            }
        }
    }

    /// Opens empty logs for partitions `from..meta.partitions` of a topic about to be
    /// recorded; on a failure, the ones opened are removed again.
    fn open_new_partitions(
        &mut self,
        meta: &TopicMeta,
        from: i32,
    ) -> Result<(), (ErrorCode, String)> {
        for index in from..meta.partitions {
            // Files left by an earlier topic of this name whose deletion was cut short.
            let dir = partition_dir(&meta.name, index);
            if let Ok(files) = self.storage.list(&dir) {
                for f in files {
                    let _ = self.storage.remove(&format!("{dir}/{f}"));
                }
            }
            if let Err(e) = self.open_partition(meta, index) {
                tracing::error!(topic = %meta.name, partition = index, error = %e, "could not open a new partition log");
                self.discard_new_partitions(meta, from, index);
                let code = match &e {
                    OpenError::Storage(io)
                    | OpenError::Log {
                        source: LogError::Storage(io),
                        ..
                    } if io.kind() == std::io::ErrorKind::StorageFull => super::disk::NO_SPACE,
                    _ => ErrorCode::KAFKA_STORAGE_ERROR,
                };
                return Err((code, e.to_string()));
            }
        }
        Ok(())
    }

    pub(crate) fn create_partitions(
        &mut self,
        request: CreatePartitionsRequest,
    ) -> CreatePartitionsResponse {
        let mut counts = BTreeMap::new();
        for t in &request.topics {
            *counts.entry(t.name.clone()).or_insert(0) += 1;
        }
        let results = request
            .topics
            .into_iter()
            .map(|t| {
                let outcome = if counts[&t.name] > 1 {
                    Err((
                        ErrorCode::INVALID_REQUEST,
                        format!("Duplicate topic in request: {}", t.name),
                    ))
                } else {
                    self.check_partition_increase(&t).and_then(|meta| {
                        if request.validate_only {
                            Ok(())
                        } else {
                            self.add_partitions(meta, t.count, t.assignments.as_deref())
                        }
                    })
                };
                let (error_code, error_message) = match outcome {
                    Ok(()) => (ErrorCode::NONE, None),
                    Err((code, message)) => (code, Some(message)),
                };
                CreatePartitionsTopicResult {
                    name: t.name,
                    error_code,
                    error_message,
                }
            })
            .collect();
        CreatePartitionsResponse { results }
    }

    /// Checks a CreatePartitions entry as Kafka does; returns the topic as it is now.
    fn check_partition_increase(
        &self,
        t: &CreatePartitionsTopic,
    ) -> Result<TopicMeta, (ErrorCode, String)> {
        let Some(meta) = self.metadata.topics.get(&t.name) else {
            return Err((
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("The topic '{}' does not exist.", t.name),
            ));
        };
        if INTERNAL_TOPICS.contains(&t.name.as_str()) {
            // Groups are mapped to __consumer_offsets partitions by hash: more partitions
            // would move groups away from their committed offsets.
            return Err((
                ErrorCode::INVALID_REQUEST,
                format!(
                    "Cannot add partitions to the internal topic {}: groups are mapped to its \
                     partitions by hash, so their committed offsets would be lost.",
                    t.name
                ),
            ));
        }
        let current = meta.partitions;
        if t.count == current {
            return Err((
                ErrorCode::INVALID_PARTITIONS,
                format!("Topic already has {current} partitions."),
            ));
        }
        if t.count < current {
            return Err((
                ErrorCode::INVALID_PARTITIONS,
                format!(
                    "The topic {} currently has {current} partition(s); {} would not be an \
                     increase.",
                    t.name, t.count
                ),
            ));
        }
        if t.count > MAX_PARTITIONS {
            return Err((
                ErrorCode::INVALID_PARTITIONS,
                format!("at most {MAX_PARTITIONS} partitions per topic"),
            ));
        }
        if let Some(assignments) = &t.assignments {
            let added = (t.count - current) as usize;
            if assignments.len() != added {
                return Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "Attempted to add {added} additional partition(s), but only {} \
                         assignment(s) were specified.",
                        assignments.len()
                    ),
                ));
            }
            let node = self.config.node_id.0;
            // In a cluster the controller checks the brokers named (broker/cluster_admin.rs).
            let single = self.quorum.is_none();
            if let Some(bad) = assignments
                .iter()
                .find(|a| single && a.as_slice() != [node])
            {
                return Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "Invalid replica assignment {bad:?}: a single-node cluster can only \
                         place a new partition on broker {node}, as [{node}]."
                    ),
                ));
            }
        }
        Ok(meta.clone())
    }

    /// Records the larger partition count durably, then opens the new partitions' logs.
    fn add_partitions(
        &mut self,
        meta: TopicMeta,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
    ) -> Result<(), (ErrorCode, String)> {
        if !self.disk.admits(WriteClass::Data) {
            return Err((super::disk::NO_SPACE, self.disk.refusal()));
        }
        if self.quorum.is_some() {
            let record = self.new_partitions_record(&meta, count, assignments)?;
            self.staged.push((meta.name.clone(), record));
            return Ok(());
        }
        let from = meta.partitions;
        let meta = TopicMeta {
            partitions: count,
            ..meta
        };
        let mut next = self.metadata.clone();
        next.topics.insert(meta.name.clone(), meta.clone());
        self.commit_new_partitions(&meta, from, next, "the new partition count")?;
        tracing::info!(topic = %meta.name, from, to = count, "added partitions");
        Ok(())
    }

    pub(crate) fn describe_cluster(
        &self,
        request: DescribeClusterRequest,
    ) -> DescribeClusterResponse {
        let mut response = DescribeClusterResponse {
            endpoint_type: request.endpoint_type,
            cluster_id: self.config.cluster_id.clone(),
            controller_id: self.controller_id().map_or(-1, |c| c.0),
            cluster_authorized_operations: if request.include_cluster_authorized_operations {
                CLUSTER_AUTHORIZED_OPERATIONS
            } else {
                AUTHORIZED_OPERATIONS_OMITTED
            },
            ..Default::default()
        };
        match request.endpoint_type {
            ENDPOINT_TYPE_BROKERS => {
                // Fenced brokers (never, on a single node) only when asked for (v2+).
                response.brokers = self
                    .registered_brokers()
                    .into_iter()
                    .filter(|(_, fenced)| request.include_fenced_brokers || !fenced)
                    .map(|(b, is_fenced)| DescribeClusterBroker {
                        broker_id: b.node_id,
                        host: b.host,
                        port: b.port,
                        rack: b.rack,
                        is_fenced,
                    })
                    .collect();
            }
            ENDPOINT_TYPE_CONTROLLERS => {
                response.error_code = MISMATCHED_ENDPOINT_TYPE;
                response.error_message = Some(
                    "The request was sent to an endpoint of type BROKER, but we wanted an \
                     endpoint of type CONTROLLER: Keel has no separate controller endpoint"
                        .into(),
                );
            }
            other => {
                response.error_code = UNSUPPORTED_ENDPOINT_TYPE;
                response.error_message = Some(format!(
                    "Unknown endpoint type {other}: expected 1 (brokers) or 2 (controllers)"
                ));
            }
        }
        response
    }

    /// DescribeLogDirs: the node's one log directory with the size of each partition asked
    /// for (all of them when `topics` is null); partitions the node does not host are left
    /// out, as Kafka leaves them. A single node has no future replicas and no lag. The
    /// volume's total and usable bytes come from the storage, or are -1 (unknown).
    pub(crate) fn describe_log_dirs(
        &self,
        request: DescribeLogDirsRequest,
    ) -> DescribeLogDirsResponse {
        let wanted: Option<BTreeMap<&str, Vec<i32>>> = request.topics.as_ref().map(|topics| {
            let mut wanted: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for t in topics {
                wanted
                    .entry(t.topic.as_str())
                    .or_default()
                    .extend(&t.partitions);
            }
            wanted
        });
        let mut topics: Vec<LogDirTopic> = Vec::new();
        for p in self.partitions.values() {
            let (topic, index) = (&p.topic, &p.id.index);
            let asked = wanted.as_ref().is_none_or(|w| {
                w.get(topic.as_str())
                    .is_some_and(|partitions| partitions.contains(index))
            });
            if !asked {
                continue;
            }
            let partition = LogDirPartition {
                partition_index: *index,
                partition_size: i64::try_from(p.log.size_bytes()).unwrap_or(i64::MAX),
                offset_lag: 0,
                is_future_key: false,
            };
            match topics.last_mut() {
                Some(last) if last.name == *topic => last.partitions.push(partition),
                _ => topics.push(LogDirTopic {
                    name: topic.clone(),
                    partitions: vec![partition],
                }),
            }
        }
        // Partitions are keyed by topic id; answer in name order, as a reader expects.
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
        let (total_bytes, usable_bytes) = self
            .storage
            .volume_bytes()
            .map_or((-1, -1), |(total, usable)| (bytes(total), bytes(usable)));
        DescribeLogDirsResponse {
            error_code: ErrorCode::NONE,
            results: vec![LogDirResult {
                error_code: ErrorCode::NONE,
                log_dir: self.config.log_dir.clone(),
                topics,
                total_bytes,
                usable_bytes,
            }],
        }
    }

    /// A random version-4 UUID from the node's seeded RNG, never the all-zero id.
    pub(crate) fn new_topic_id(&mut self) -> TopicId {
        loop {
            let mut b = [0u8; 16];
            self.rng.fill_bytes(&mut b);
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let id = TopicId(b);
            if self.metadata.by_id(id).is_none() {
                return id;
            }
        }
    }

    pub(crate) fn delete_topics(&mut self, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
        let mut response = DeleteTopicsResponse::default();
        for t in request.topics {
            let (mut result, meta) = self.deletable(&t);
            if let Some(meta) = meta {
                if let Err(e) = self.delete_topic(&meta) {
                    result.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                    result.error_message = Some(e);
                }
            }
            response.responses.push(result);
        }
        response
    }

    /// The topic a DeleteTopics entry names, by name or id, with the entry's result as it
    /// stands: named back on success, UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID if no
    /// such topic exists.
    pub(crate) fn deletable(
        &self,
        t: &crate::api::TopicRef,
    ) -> (DeletableTopicResult, Option<TopicMeta>) {
        let meta = match (&t.name, t.id) {
            (Some(name), _) => self.metadata.topics.get(name).cloned(),
            (None, id) => self.metadata.by_id(id).cloned(),
        };
        let mut result = DeletableTopicResult {
            name: t.name.clone(),
            topic_id: t.id,
            ..Default::default()
        };
        match &meta {
            None => {
                result.error_code = if t.name.is_some() {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    ErrorCode::UNKNOWN_TOPIC_ID
                };
                result.error_message = Some("This server does not host this topic".into());
            }
            Some(meta) => {
                result.name = Some(meta.name.clone());
                result.topic_id = meta.id;
            }
        }
        (result, meta)
    }

    /// Forgets a topic durably, then removes its files; a crash in between leaves orphan
    /// files that the next `open` removes.
    fn delete_topic(&mut self, meta: &TopicMeta) -> Result<(), String> {
        let mut next = self.metadata.clone();
        next.topics.remove(&meta.name);
        next.save(self.storage.as_ref())
            .map_err(|e| format!("could not persist the deletion: {e}"))?;
        self.metadata = next;
        self.drop_topic_partitions(meta);
        tracing::info!(topic = %meta.name, "deleted topic");
        Ok(())
    }

    /// Closes and removes every hosted partition of a topic no longer in the metadata,
    /// answering what waits on them.
    pub(crate) fn drop_topic_partitions(&mut self, meta: &TopicMeta) {
        for index in 0..meta.partitions {
            let key = PartitionId {
                topic: meta.id,
                index,
            };
            let Some(p) = self.partitions.remove(&key) else {
                continue;
            };
            for waiter in p.waiters.iter() {
                match waiter {
                    Waiter::Produce(wait) => self.release_ack(
                        wait,
                        &(meta.name.clone(), index),
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    ),
                    Waiter::Fetch(wait) => self.complete_fetch(wait),
                    // The coordinator forgets them with the topic, below.
                    Waiter::OffsetsWrite(_) => {}
                }
            }
            if let Err(e) = p.log.delete() {
                tracing::warn!(topic = %meta.name, partition = index, error = %e, "could not remove a deleted partition's files; they go at next start");
            }
        }
        // Committed offsets go with the offsets topic (broker/group.rs).
        if meta.name == crate::group::OFFSETS_TOPIC {
            self.group.on_offsets_topic_deleted();
        }
    }
}
