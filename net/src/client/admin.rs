//! Admin calls of [`Client`](super::Client): topic creation with configs, configs, partitions,
//! group listing, description and deletion, offsets of many partitions, record deletion. The `keel`
//! admin commands are built on them.
//!
//! Like the rest of the client, each call fills its request for whichever version the
//! handshake settled on and returns the broker's answer as data: an error code in the answer
//! is not a [`ClientError`]. Calls that name one resource return that resource's entry, and a
//! response that lacks it is [`ClientError::Unexpected`].

use super::group::{CommittedOffset, OffsetFetchResult};
use super::{unexpected_opt, Client, ClientError};
use crate::codec::{self, ApiKey, RequestBody, ResponseBody};
use crate::network::Stream;
use std::time::Duration;

impl<S: Stream> Client<S> {
    /// Metadata for `topics` (`None`: every topic), letting the broker auto-create the named
    /// topics when `allow_auto_topic_creation` and its own policy allow it (Metadata v4+; older
    /// versions always allow it, as Kafka did).
    pub async fn metadata_with(
        &mut self,
        topics: Option<&[&str]>,
        allow_auto_topic_creation: bool,
    ) -> Result<codec::MetadataResponse, ClientError> {
        let request = codec::MetadataRequest {
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|t| codec::MetadataRequestTopic {
                        name: Some(t.to_string()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation,
            ..Default::default()
        };
        match self
            .call(RequestBody::Metadata(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::Metadata(r)) => Ok(r),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Creates one topic as described (partitions, replication factor, configs) and returns
    /// its result. Below CreateTopics v4 a broker refuses -1 ("use the default") for the
    /// partition count and replication factor (KIP-464), so they become 1 there.
    pub async fn create_topic(
        &mut self,
        mut topic: codec::CreatableTopic,
        timeout_ms: i32,
        validate_only: bool,
    ) -> Result<codec::CreatableTopicResult, ClientError> {
        let version = self.version_of(ApiKey::CreateTopics)?;
        if version < 4 && topic.assignments.is_empty() {
            if topic.num_partitions < 0 {
                topic.num_partitions = 1;
            }
            if topic.replication_factor < 0 {
                topic.replication_factor = 1;
            }
        }
        let name = topic.name.clone();
        let request = codec::CreateTopicsRequest {
            topics: vec![topic],
            timeout_ms,
            validate_only,
        };
        match self
            .call(RequestBody::CreateTopics(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::CreateTopics(r)) => r
                .topics
                .into_iter()
                .find(|t| t.name == name)
                .ok_or_else(|| ClientError::Unexpected("no such topic in the response".into())),
            other => Err(unexpected_opt(other)),
        }
    }

    /// The configuration of one resource (`resource_type` as in
    /// [`codec::describe_configs::RESOURCE_TYPE_TOPIC`]); `keys` `None` lists every key.
    pub async fn describe_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        keys: Option<Vec<String>>,
    ) -> Result<codec::DescribeConfigsResult, ClientError> {
        let request = codec::DescribeConfigsRequest {
            resources: vec![codec::DescribeConfigsResource {
                resource_type,
                resource_name: name.to_string(),
                configuration_keys: keys,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        match self
            .call(RequestBody::DescribeConfigs(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::DescribeConfigs(r)) => r
                .results
                .into_iter()
                .find(|res| res.resource_name == name)
                .ok_or_else(|| ClientError::Unexpected("no such resource in the response".into())),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Changes single keys of one resource (KIP-339): `changes` are (key, operation, value)
    /// with the operation one of `codec::incremental_alter_configs::CONFIG_OPERATION_*`.
    /// Returns (error code, error message) for the resource.
    pub async fn incremental_alter_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        changes: &[(String, i8, Option<String>)],
        validate_only: bool,
    ) -> Result<(i16, Option<String>), ClientError> {
        use codec::incremental_alter_configs as iac;
        let request = codec::IncrementalAlterConfigsRequest {
            resources: vec![iac::AlterConfigsResource {
                resource_type,
                resource_name: name.to_string(),
                configs: changes
                    .iter()
                    .map(|(key, op, value)| iac::AlterableConfig {
                        name: key.clone(),
                        config_operation: *op,
                        value: value.clone(),
                    })
                    .collect(),
            }],
            validate_only,
        };
        match self
            .call(
                RequestBody::IncrementalAlterConfigs(request),
                Duration::ZERO,
            )
            .await?
        {
            Some(ResponseBody::IncrementalAlterConfigs(r)) => r
                .responses
                .into_iter()
                .find(|res| res.resource_name == name)
                .map(|res| (res.error_code, res.error_message))
                .ok_or_else(|| ClientError::Unexpected("no such resource in the response".into())),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Replaces the whole configuration of one resource with `configs` as (key, value): keys
    /// left out return to their defaults. Returns (error code, error message).
    pub async fn alter_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        configs: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<(i16, Option<String>), ClientError> {
        use codec::alter_configs as ac;
        let request = codec::AlterConfigsRequest {
            resources: vec![ac::AlterConfigsResource {
                resource_type,
                resource_name: name.to_string(),
                configs: configs
                    .iter()
                    .map(|(key, value)| ac::AlterableConfig {
                        name: key.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            }],
            validate_only,
        };
        match self
            .call(RequestBody::AlterConfigs(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::AlterConfigs(r)) => r
                .responses
                .into_iter()
                .find(|res| res.resource_name == name)
                .map(|res| (res.error_code, res.error_message))
                .ok_or_else(|| ClientError::Unexpected("no such resource in the response".into())),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Grows `topic` to `count` partitions, letting the broker place the new ones.
    pub async fn create_partitions(
        &mut self,
        topic: &str,
        count: i32,
        timeout_ms: i32,
        validate_only: bool,
    ) -> Result<codec::CreatePartitionsTopicResult, ClientError> {
        let request = codec::CreatePartitionsRequest {
            topics: vec![codec::CreatePartitionsTopic {
                name: topic.to_string(),
                count,
                assignments: None,
            }],
            timeout_ms,
            validate_only,
        };
        match self
            .call(RequestBody::CreatePartitions(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::CreatePartitions(r)) => r
                .results
                .into_iter()
                .find(|t| t.name == topic)
                .ok_or_else(|| ClientError::Unexpected("no such topic in the response".into())),
            other => Err(unexpected_opt(other)),
        }
    }

    /// The groups this broker coordinates (every state, every type).
    pub async fn list_groups(&mut self) -> Result<codec::ListGroupsResponse, ClientError> {
        match self
            .call(
                RequestBody::ListGroups(codec::ListGroupsRequest::default()),
                Duration::ZERO,
            )
            .await?
        {
            Some(ResponseBody::ListGroups(r)) => Ok(r),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Deletes `groups` with their committed offsets (ask their coordinator); returns (group,
    /// error code) per group: NON_EMPTY_GROUP while one has members, GROUP_ID_NOT_FOUND for
    /// one the broker does not know, NOT_COORDINATOR for one it does not coordinate.
    pub async fn delete_groups(
        &mut self,
        groups: &[&str],
    ) -> Result<Vec<(String, i16)>, ClientError> {
        let request = codec::DeleteGroupsRequest {
            groups_names: groups.iter().map(|g| g.to_string()).collect(),
        };
        match self
            .call(RequestBody::DeleteGroups(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::DeleteGroups(r)) => Ok(r
                .results
                .into_iter()
                .map(|g| (g.group_id, g.error_code))
                .collect()),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Describes one group (ask its coordinator): state, protocol, members and their
    /// assignments.
    pub async fn describe_group(
        &mut self,
        group: &str,
    ) -> Result<codec::DescribedGroup, ClientError> {
        let request = codec::DescribeGroupsRequest {
            groups: vec![group.to_string()],
            include_authorized_operations: false,
        };
        match self
            .call(RequestBody::DescribeGroups(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::DescribeGroups(r)) => r
                .groups
                .into_iter()
                .find(|g| g.group_id == group)
                .ok_or_else(|| ClientError::Unexpected("no such group in the response".into())),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Every committed offset of `group`, whatever the topic (OffsetFetch with null topics,
    /// v2+): what `keel group describe` shows for a group with no members.
    pub async fn offset_fetch_all(
        &mut self,
        group: &str,
    ) -> Result<OffsetFetchResult, ClientError> {
        let version = self.version_of(ApiKey::OffsetFetch)?;
        if version < 2 {
            return Err(ClientError::Unsupported(ApiKey::OffsetFetch));
        }
        let request = if version >= 8 {
            codec::OffsetFetchRequest {
                groups: vec![codec::OffsetFetchRequestGroup {
                    group_id: group.to_string(),
                    member_id: None,
                    member_epoch: -1,
                    topics: None,
                }],
                ..Default::default()
            }
        } else {
            codec::OffsetFetchRequest {
                group_id: group.to_string(),
                topics: None,
                ..Default::default()
            }
        };
        let committed =
            |topic: String, partition: i32, offset: i64, metadata, error_code| CommittedOffset {
                topic,
                partition,
                offset,
                metadata,
                error_code,
            };
        match self
            .call(RequestBody::OffsetFetch(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::OffsetFetch(r)) if version >= 8 => {
                let g = r
                    .groups
                    .into_iter()
                    .find(|g| g.group_id == group)
                    .ok_or_else(|| {
                        ClientError::Unexpected("no such group in the response".into())
                    })?;
                let mut partitions = Vec::new();
                for t in g.topics {
                    for p in t.partitions {
                        partitions.push(committed(
                            t.name.clone(),
                            p.partition_index,
                            p.committed_offset,
                            p.metadata,
                            p.error_code,
                        ));
                    }
                }
                Ok(OffsetFetchResult {
                    error_code: g.error_code,
                    partitions,
                })
            }
            Some(ResponseBody::OffsetFetch(r)) => {
                let mut partitions = Vec::new();
                for t in r.topics {
                    for p in t.partitions {
                        partitions.push(committed(
                            t.name.clone(),
                            p.partition_index,
                            p.committed_offset,
                            p.metadata,
                            p.error_code,
                        ));
                    }
                }
                Ok(OffsetFetchResult {
                    error_code: r.error_code,
                    partitions,
                })
            }
            other => Err(unexpected_opt(other)),
        }
    }

    /// The offsets of many partitions of `topic` at once: `partitions` are (partition,
    /// timestamp), the timestamp a time in ms or `keel_core::api::LATEST_TIMESTAMP` /
    /// `EARLIEST_TIMESTAMP`. Returns one answer per partition in the response.
    pub async fn list_offsets_of(
        &mut self,
        topic: &str,
        partitions: &[(i32, i64)],
    ) -> Result<Vec<codec::ListOffsetsPartitionResponse>, ClientError> {
        let request = codec::ListOffsetsRequest {
            replica_id: -1,
            topics: vec![codec::ListOffsetsTopic {
                name: topic.to_string(),
                partitions: partitions
                    .iter()
                    .map(
                        |&(partition_index, timestamp)| codec::ListOffsetsPartition {
                            partition_index,
                            timestamp,
                            ..Default::default()
                        },
                    )
                    .collect(),
            }],
            ..Default::default()
        };
        match self
            .call(RequestBody::ListOffsets(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::ListOffsets(r)) => Ok(r
                .topics
                .into_iter()
                .filter(|t| t.name == topic)
                .flat_map(|t| t.partitions)
                .collect()),
            other => Err(unexpected_opt(other)),
        }
    }

    /// The size in bytes of each of `partitions` of `topic` on this broker (its current
    /// replicas in every log directory; future replicas being moved are left out).
    pub async fn describe_log_dirs(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<(i32, i64)>, ClientError> {
        let request = codec::DescribeLogDirsRequest {
            topics: Some(vec![codec::DescribableLogDirTopic {
                topic: topic.to_string(),
                partitions: partitions.to_vec(),
            }]),
        };
        match self
            .call(RequestBody::DescribeLogDirs(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::DescribeLogDirs(r)) => Ok(r
                .results
                .into_iter()
                .filter(|d| d.error_code == 0)
                .flat_map(|d| d.topics)
                .filter(|t| t.name == topic)
                .flat_map(|t| t.partitions)
                .filter(|p| !p.is_future_key)
                .map(|p| (p.partition_index, p.partition_size))
                .collect()),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Moves the log start offset of each (partition, offset) of `topic` forward; offset -1
    /// means the high watermark. Returns (partition, low watermark, error code) per partition.
    pub async fn delete_records(
        &mut self,
        topic: &str,
        partitions: &[(i32, i64)],
        timeout_ms: i32,
    ) -> Result<Vec<(i32, i64, i16)>, ClientError> {
        let request = codec::DeleteRecordsRequest {
            topics: vec![codec::DeleteRecordsTopic {
                name: topic.to_string(),
                partitions: partitions
                    .iter()
                    .map(|&(partition_index, offset)| codec::DeleteRecordsPartition {
                        partition_index,
                        offset,
                    })
                    .collect(),
            }],
            timeout_ms,
        };
        match self
            .call(RequestBody::DeleteRecords(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::DeleteRecords(r)) => Ok(r
                .topics
                .into_iter()
                .filter(|t| t.name == topic)
                .flat_map(|t| t.partitions)
                .map(|p| (p.partition_index, p.low_watermark, p.error_code))
                .collect()),
            other => Err(unexpected_opt(other)),
        }
    }
}
