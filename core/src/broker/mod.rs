//! `broker`: the per-API handlers. Each request the node routes here is checked (topic,
//! partition, leadership, limits) and turned into calls on the partitions, the group
//! coordinator or the topic table, and into its Kafka response with the error code a Kafka
//! broker would send. The node (node/) owns the state; a handler owns one API's rules.

mod admin;
pub(crate) mod cluster_admin;
mod configs;
pub(crate) mod disk;
mod fetch;
pub(crate) mod fetch_session;
mod group;
pub(crate) mod idempotence;
mod produce;
mod retention;

pub use disk::{human_bytes, DiskReport, WriteClass};
pub(crate) use idempotence::snapshot_producers;

use crate::api::{ConnId, Request, RequestId, Response};
use crate::ids::PartitionId;
use crate::node::Node;
use crate::partition::Partition;
use std::collections::BTreeSet;

/// A partition as clients name it: topic name and index (the node itself keys partitions
/// by [`PartitionId`]; fetch sessions, which live as long as a client's view, by this).
pub type PartitionKey = (String, i32);

/// An acks=-1 produce waiting until every partition it wrote is durable.
pub(crate) struct PendingProduce {
    pub(crate) conn: ConnId,
    pub(crate) id: RequestId,
    pub(crate) response: crate::api::ProduceResponse,
    /// (topic index, partition index) into `response` not yet durable.
    pub(crate) outstanding: BTreeSet<(usize, usize)>,
}

/// A fetch parked until enough bytes are durable or its max_wait_ms passes.
pub(crate) struct PendingFetch {
    pub(crate) conn: ConnId,
    pub(crate) id: RequestId,
    /// What to read: for an incremental fetch, every partition of its session.
    pub(crate) request: crate::api::FetchRequest,
    pub(crate) session: fetch_session::SessionContext,
}

/// How long a config change waits for the controller in a cluster (AlterConfigs carries
/// no timeout of its own).
const ADMIN_TIMEOUT_MS: i32 = 30_000;

impl Node {
    /// The id of partition `index` of the topic named `topic`, if the topic exists.
    pub(crate) fn partition_id(&self, topic: &str, index: i32) -> Option<PartitionId> {
        let topic = self.metadata.topics.get(topic)?.id;
        Some(PartitionId { topic, index })
    }

    /// Partition `index` of the topic named `topic`, if both exist.
    pub(crate) fn partition_named(&self, topic: &str, index: i32) -> Option<&Partition> {
        self.partitions.get(&self.partition_id(topic, index)?)
    }

    pub(crate) fn partition_named_mut(
        &mut self,
        topic: &str,
        index: i32,
    ) -> Option<&mut Partition> {
        let id = self.partition_id(topic, index)?;
        self.partitions.get_mut(&id)
    }

    pub(crate) fn handle_request(&mut self, conn: ConnId, id: RequestId, request: Request) {
        match request {
            Request::Metadata(r) => {
                let response = self.metadata_request(r);
                self.respond(conn, id, Response::Metadata(response));
            }
            Request::Produce(r) => self.produce(conn, id, r),
            Request::Fetch(r) => self.fetch(conn, id, r),
            Request::ListOffsets(r) => {
                let response = self.list_offsets(r);
                self.respond(conn, id, Response::ListOffsets(response));
            }
            // In a cluster the controller decides: broker/cluster_admin.rs.
            Request::CreateTopics(r) if self.quorum.is_some() => {
                self.cluster_create_topics(conn, id, r)
            }
            Request::DeleteTopics(r) if self.quorum.is_some() => {
                self.cluster_delete_topics(conn, id, r)
            }
            Request::CreateTopics(r) => {
                let response = self.create_topics(r);
                self.respond(conn, id, Response::CreateTopics(response));
            }
            Request::DeleteTopics(r) => {
                let response = self.delete_topics(r);
                self.respond(conn, id, Response::DeleteTopics(response));
            }
            // Log start offsets: broker/retention.rs.
            Request::DeleteRecords(r) => {
                let response = self.delete_records(r);
                self.respond(conn, id, Response::DeleteRecords(response));
            }
            // In a cluster these become records the controller commits
            // (broker/cluster_admin.rs).
            Request::CreatePartitions(r) if self.quorum.is_some() => {
                self.cluster_create_partitions(conn, id, r)
            }
            Request::AlterConfigs(r) if self.quorum.is_some() => {
                let response = self.alter_configs(r);
                let staged = cluster_admin::Staged::AlterConfigs(response);
                self.submit_staged(conn, id, staged, ADMIN_TIMEOUT_MS);
            }
            Request::IncrementalAlterConfigs(r) if self.quorum.is_some() => {
                let response = self.incremental_alter_configs(r);
                let staged = cluster_admin::Staged::IncrementalAlterConfigs(response);
                self.submit_staged(conn, id, staged, ADMIN_TIMEOUT_MS);
            }
            Request::CreatePartitions(r) => {
                let response = self.create_partitions(r);
                self.respond(conn, id, Response::CreatePartitions(response));
            }
            Request::DescribeQuorum(r) => {
                let response = self.describe_quorum(r);
                self.respond(conn, id, Response::DescribeQuorum(response));
            }
            Request::DescribeCluster(r) => {
                let response = self.describe_cluster(r);
                self.respond(conn, id, Response::DescribeCluster(response));
            }
            Request::DescribeLogDirs(r) => {
                let response = self.describe_log_dirs(r);
                self.respond(conn, id, Response::DescribeLogDirs(response));
            }
            // Topic and broker configs: broker/configs.rs.
            Request::DescribeConfigs(r) => {
                let response = self.describe_configs(r);
                self.respond(conn, id, Response::DescribeConfigs(response));
            }
            Request::AlterConfigs(r) => {
                let response = self.alter_configs(r);
                self.respond(conn, id, Response::AlterConfigs(response));
            }
            Request::IncrementalAlterConfigs(r) => {
                let response = self.incremental_alter_configs(r);
                self.respond(conn, id, Response::IncrementalAlterConfigs(response));
            }
            // Group coordination and committed offsets: broker/group.rs.
            r @ (Request::FindCoordinator(_)
            | Request::JoinGroup(_)
            | Request::SyncGroup(_)
            | Request::Heartbeat(_)
            | Request::LeaveGroup(_)
            | Request::OffsetCommit(_)
            | Request::OffsetFetch(_)
            | Request::ListGroups(_)
            | Request::DescribeGroups(_)
            | Request::DeleteGroups(_)
            | Request::OffsetDelete(_)) => self.handle_group_request(conn, id, r),
            // Idempotent producers: broker/idempotence.rs.
            Request::InitProducerId(r) => {
                let response = self.init_producer_id(conn, r);
                self.respond(conn, id, Response::InitProducerId(response));
            }
            // No authorizer: broker/admin.rs.
            Request::Acls(r) => {
                let response = admin::acls_without_an_authorizer(&r);
                self.respond(conn, id, Response::Acls(response));
            }
            // PLAINTEXT only: broker/admin.rs.
            Request::DelegationToken(r) => {
                let response = admin::delegation_tokens_on_plaintext(&r);
                self.respond(conn, id, Response::DelegationToken(response));
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_configs;
#[cfg(test)]
mod tests_disk;
#[cfg(test)]
mod tests_retention;
