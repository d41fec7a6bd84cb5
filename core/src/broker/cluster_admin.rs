//! Topic administration in a cluster: CreateTopics and DeleteTopics (and the topics a
//! client's first Metadata or the group coordinator creates) become metadata records that
//! the active controller commits; the request waits for each record's verdict, or its
//! `timeout_ms`, and every broker opens or removes partitions as it applies the records
//! (node/cluster.rs `reconcile_topics`). A broker that is not the controller forwards the
//! records to it; with no controller known the entry fails at once with NOT_CONTROLLER,
//! which Kafka's admin clients retry.

use crate::api::{
    AlterConfigsResponse, ConnId, CreatableTopic, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, RequestId, Response, TopicId,
};
use crate::controller::quorum::Proposer;
use crate::controller::{self, MetadataRecord, Refusal, NOT_CONTROLLER};
use crate::error::ErrorCode;
use crate::ids::NodeId;
use crate::metadata::TopicMeta;
use crate::node::{Node, NodeTimer, Output, PeerMessage, WaitId};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// An admin request waiting for the controller.
pub(crate) struct PendingAdmin {
    pub(crate) conn: ConnId,
    pub(crate) id: RequestId,
    response: AdminResponse,
    /// Entries of the response still waiting for a verdict.
    outstanding: BTreeSet<usize>,
}

enum AdminResponse {
    Create(CreateTopicsResponse),
    Delete(DeleteTopicsResponse),
    Staged(Staged),
}

/// The answer of a handler that staged its changes (`Node::staged`) rather than made them.
pub(crate) enum Staged {
    AlterConfigs(AlterConfigsResponse),
    IncrementalAlterConfigs(AlterConfigsResponse),
    CreatePartitions(CreatePartitionsResponse),
}

impl Staged {
    /// The entry a staged change of `topic` answers in.
    fn entry_of(&self, topic: &str) -> Option<usize> {
        match self {
            Staged::AlterConfigs(r) | Staged::IncrementalAlterConfigs(r) => r
                .responses
                .iter()
                .position(|e| e.resource_type == TOPIC_RESOURCE && e.resource_name == topic),
            Staged::CreatePartitions(r) => r.results.iter().position(|e| e.name == topic),
        }
    }
}

/// Kafka's ConfigResource type of a topic.
const TOPIC_RESOURCE: i8 = 2;

impl AdminResponse {
    fn set_error(&mut self, entry: usize, code: ErrorCode, message: String) {
        match self {
            AdminResponse::Create(r) => {
                if let Some(t) = r.topics.get_mut(entry) {
                    t.error_code = code;
                    t.error_message = Some(message);
                    t.num_partitions = -1;
                    t.replication_factor = -1;
                    t.configs.clear();
                    t.topic_id = TopicId::ZERO;
                }
            }
            AdminResponse::Delete(r) => {
                if let Some(t) = r.responses.get_mut(entry) {
                    t.error_code = code;
                    t.error_message = Some(message);
                }
            }
            AdminResponse::Staged(Staged::AlterConfigs(r))
            | AdminResponse::Staged(Staged::IncrementalAlterConfigs(r)) => {
                if let Some(t) = r.responses.get_mut(entry) {
                    t.error_code = code;
                    t.error_message = Some(message);
                }
            }
            AdminResponse::Staged(Staged::CreatePartitions(r)) => {
                if let Some(t) = r.results.get_mut(entry) {
                    t.error_code = code;
                    t.error_message = Some(message);
                }
            }
        }
    }

    fn into_response(self) -> Response {
        match self {
            AdminResponse::Create(r) => Response::CreateTopics(r),
            AdminResponse::Delete(r) => Response::DeleteTopics(r),
            AdminResponse::Staged(Staged::AlterConfigs(r)) => Response::AlterConfigs(r),
            AdminResponse::Staged(Staged::IncrementalAlterConfigs(r)) => {
                Response::IncrementalAlterConfigs(r)
            }
            AdminResponse::Staged(Staged::CreatePartitions(r)) => Response::CreatePartitions(r),
        }
    }
}

/// Kafka's default.replication.factor: until partitions are replicated, one.
const DEFAULT_REPLICATION_FACTOR: i16 = 1;

impl Node {
    /// CreateTopics in a cluster: each entry that passes the broker's checks becomes one
    /// `CreateTopic` record, placed over the registered brokers.
    pub(crate) fn cluster_create_topics(
        &mut self,
        conn: ConnId,
        id: RequestId,
        request: CreateTopicsRequest,
    ) {
        // The local checks (names, counts, configs, duplicates) answer as on one node.
        let checks = request.clone();
        let mut response = self.create_topics(CreateTopicsRequest {
            validate_only: true,
            ..checks
        });
        let mut records = Vec::new();
        for (entry, t) in request.topics.iter().enumerate() {
            if response.topics[entry].error_code != ErrorCode::NONE {
                continue;
            }
            let checked = self
                .check_creatable(t)
                .and_then(|(partitions, configs)| self.new_topic_record(t, partitions, &configs));
            let result = &mut response.topics[entry];
            match checked {
                Ok((record, topic_id, factor)) => {
                    result.topic_id = topic_id;
                    result.replication_factor = factor;
                    if !request.validate_only {
                        records.push((entry, record));
                    }
                }
                Err((code, message)) => {
                    result.error_code = code;
                    result.error_message = Some(message);
                    result.num_partitions = -1;
                    result.replication_factor = -1;
                    result.configs.clear();
                }
            }
        }
        self.submit_admin(
            conn,
            id,
            AdminResponse::Create(response),
            records,
            request.timeout_ms,
        );
    }

    /// CreatePartitions in a cluster: the checks as on one node; the growth a record.
    pub(crate) fn cluster_create_partitions(
        &mut self,
        conn: ConnId,
        id: RequestId,
        request: CreatePartitionsRequest,
    ) {
        let timeout_ms = request.timeout_ms;
        let response = self.create_partitions(request);
        self.submit_staged(conn, id, Staged::CreatePartitions(response), timeout_ms);
    }

    /// Submits what a handler staged, each record answered in its topic's entry.
    pub(crate) fn submit_staged(
        &mut self,
        conn: ConnId,
        id: RequestId,
        staged: Staged,
        timeout_ms: i32,
    ) {
        let records: Vec<(usize, MetadataRecord)> = std::mem::take(&mut self.staged)
            .into_iter()
            .filter_map(|(topic, record)| Some((staged.entry_of(&topic)?, record)))
            .collect();
        self.submit_admin(conn, id, AdminResponse::Staged(staged), records, timeout_ms);
    }

    /// The record growing `meta` to `count` partitions: as assigned, or placed round the
    /// registered brokers with the topic's replication factor.
    pub(crate) fn new_partitions_record(
        &mut self,
        meta: &TopicMeta,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
    ) -> Result<MetadataRecord, Refusal> {
        let brokers = self.placement_brokers()?;
        let factor = self
            .quorum
            .as_ref()
            .and_then(|q| q.image().replicas_of(meta.id, 0))
            .map_or(1, |r| r.len().max(1));
        let replicas = match assignments {
            Some(lists) => {
                for list in lists {
                    check_factor(list.len() as i16, brokers.len())?;
                }
                lists
                    .iter()
                    .map(|l| l.iter().copied().map(NodeId).collect())
                    .collect()
            }
            None => {
                let start = (self.rng_u64() % brokers.len().max(1) as u64) as usize;
                controller::place_replicas(&brokers, count - meta.partitions, factor, start)
            }
        };
        Ok(MetadataRecord::CreatePartitions {
            id: meta.id,
            replicas,
        })
    }

    /// DeleteTopics in a cluster: one `DeleteTopic` record per topic the metadata names.
    pub(crate) fn cluster_delete_topics(
        &mut self,
        conn: ConnId,
        id: RequestId,
        request: DeleteTopicsRequest,
    ) {
        let mut response = DeleteTopicsResponse::default();
        let mut records = Vec::new();
        for (entry, t) in request.topics.iter().enumerate() {
            let (result, meta) = self.deletable(t);
            if let Some(meta) = meta {
                records.push((entry, MetadataRecord::DeleteTopic { id: meta.id }));
            }
            response.responses.push(result);
        }
        self.submit_admin(
            conn,
            id,
            AdminResponse::Delete(response),
            records,
            request.timeout_ms,
        );
    }

    /// The record creating topic `t` with `partitions` partitions, its new id and its
    /// replication factor.
    pub(crate) fn new_topic_record(
        &mut self,
        t: &CreatableTopic,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<(MetadataRecord, TopicId, i16), Refusal> {
        let brokers = self.placement_brokers()?;
        let replicas = if t.assignments.is_empty() {
            let factor = if t.replication_factor == -1 {
                DEFAULT_REPLICATION_FACTOR
            } else {
                t.replication_factor
            };
            check_factor(factor, brokers.len())?;
            let start = (self.rng_u64() % brokers.len().max(1) as u64) as usize;
            controller::place_replicas(&brokers, partitions, factor as usize, start)
        } else {
            let mut lists = t.assignments.clone();
            lists.sort_unstable_by_key(|(p, _)| *p);
            let lists: Vec<Vec<NodeId>> = lists
                .into_iter()
                .map(|(_, b)| b.into_iter().map(NodeId).collect())
                .collect();
            for list in &lists {
                check_factor(list.len() as i16, brokers.len())?;
            }
            lists
        };
        let factor = replicas.first().map_or(0, |l| l.len() as i16);
        let id = self.new_topic_id();
        let topic = TopicMeta::new(&t.name, id, partitions, configs.clone());
        Ok((MetadataRecord::CreateTopic { topic, replicas }, id, factor))
    }

    /// Sends each entry's record to the controller and parks the request until every
    /// verdict is in or `timeout_ms` passes; answers at once if nothing was sent.
    fn submit_admin(
        &mut self,
        conn: ConnId,
        id: RequestId,
        mut response: AdminResponse,
        records: Vec<(usize, MetadataRecord)>,
        timeout_ms: i32,
    ) {
        let wait = self.next_wait_id();
        let mut outstanding = BTreeSet::new();
        for (entry, record) in records {
            match self.submit_to_controller(&record) {
                Ok(forward) => {
                    self.forwards.insert(forward, (wait, entry));
                    outstanding.insert(entry);
                }
                Err((code, message)) => response.set_error(entry, code, message),
            }
        }
        if outstanding.is_empty() {
            return self.respond(conn, id, response.into_response());
        }
        let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0).max(1));
        self.timers.set(NodeTimer::Parked(wait), self.now + timeout);
        self.admin_waits.insert(
            wait,
            PendingAdmin {
                conn,
                id,
                response,
                outstanding,
            },
        );
    }

    /// Proposes `record` on the controller (this broker, or the one it forwards to);
    /// the verdict comes back under the returned id (`on_controller_verdict`).
    pub(crate) fn submit_to_controller(&mut self, record: &MetadataRecord) -> Result<u64, Refusal> {
        let records = controller::encode_records(std::slice::from_ref(record));
        let forward = self.next_forward_id;
        self.next_forward_id += 1;
        let Some(q) = self.quorum.as_mut() else {
            return Err((NOT_CONTROLLER, "not a cluster broker".into()));
        };
        if q.is_leader() {
            q.propose(
                self.now,
                records,
                Proposer::Local(forward),
                self.storage.as_ref(),
                &mut self.outputs,
            )?;
        } else if let Some(leader) = q.leader() {
            self.outputs.push_back(Output::SendPeer {
                to: leader,
                message: PeerMessage::Forward {
                    id: forward,
                    records,
                },
            });
        } else {
            return Err((NOT_CONTROLLER, "no controller is elected yet".into()));
        }
        Ok(forward)
    }

    /// The controller's verdict on forward `forward`.
    pub(crate) fn on_controller_verdict(&mut self, forward: u64, verdict: Result<(), Refusal>) {
        let Some((wait, entry)) = self.forwards.remove(&forward) else {
            return;
        };
        let Some(pending) = self.admin_waits.get_mut(&wait) else {
            return;
        };
        if let Err((code, message)) = verdict {
            pending.response.set_error(entry, code, message);
        }
        pending.outstanding.remove(&entry);
        if pending.outstanding.is_empty() {
            let pending = self.admin_waits.remove(&wait).expect("present");
            self.timers.cancel(&NodeTimer::Parked(wait));
            self.respond(pending.conn, pending.id, pending.response.into_response());
        }
    }

    /// A waiting admin request's timeout passed: entries still without a verdict answer
    /// REQUEST_TIMED_OUT (the controller may still commit them, as with Kafka).
    pub(crate) fn expire_admin(&mut self, wait: WaitId) {
        let Some(mut pending) = self.admin_waits.remove(&wait) else {
            return;
        };
        self.forwards.retain(|_, (w, _)| *w != wait);
        for entry in std::mem::take(&mut pending.outstanding) {
            pending.response.set_error(
                entry,
                ErrorCode::REQUEST_TIMED_OUT,
                "the controller did not commit it within timeout_ms".into(),
            );
        }
        self.respond(pending.conn, pending.id, pending.response.into_response());
    }

    /// The registered brokers replicas may be placed on, with their racks.
    fn placement_brokers(&self) -> Result<Vec<(NodeId, Option<String>)>, Refusal> {
        let Some(q) = &self.quorum else {
            return Err((NOT_CONTROLLER, "not a cluster broker".into()));
        };
        // Not on fenced brokers: a partition placed there would start offline.
        Ok(q.image()
            .brokers
            .values()
            .filter(|b| !q.image().fenced.contains(&b.id))
            .map(|b| (b.id, b.rack.clone()))
            .collect())
    }

    fn rng_u64(&mut self) -> u64 {
        use rand::RngCore;
        self.rng.next_u64()
    }
}

/// A replication factor the registered brokers can hold, and one Keel replicates today.
fn check_factor(factor: i16, brokers: usize) -> Result<(), Refusal> {
    if factor <= 0 {
        return Err((
            ErrorCode::INVALID_REPLICATION_FACTOR,
            "Replication factor must be larger than 0.".into(),
        ));
    }
    if factor as usize > brokers {
        return Err((
            ErrorCode::INVALID_REPLICATION_FACTOR,
            format!(
                "Unable to replicate the partition {factor} time(s): The target replication \
                 factor of {factor} cannot be reached because only {brokers} broker(s) are \
                 registered."
            ),
        ));
    }
    if factor > 1 {
        return Err((
            ErrorCode::INVALID_REPLICATION_FACTOR,
            format!(
                "replication factor {factor}: Keel does not replicate partitions yet; each \
                 partition lives on one broker (replication factor 1)"
            ),
        ));
    }
    Ok(())
}
