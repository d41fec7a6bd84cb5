//! The node's side of a cluster: it hosts its replica of the metadata quorum
//! (controller/quorum.rs), routes peer messages to it, answers other brokers' `Forward`s
//! when it is the active controller, and registers itself with the controller until the
//! metadata log holds this process's registration. A single node (no `cluster` in its
//! config) hosts no Raft group and drops every peer message.

use super::{Node, NodeTimer, OpenError, PeerMessage, RaftGroup};
use crate::api::{CreatableTopic, TopicId};
use crate::controller::quorum::{MetadataQuorum, Proposer, QuorumConfig};
use crate::controller::{self, BrokerRegistration, MetadataRecord, Refusal};
use crate::error::ErrorCode;
use crate::ids::{NodeId, Offset};
use crate::metadata::TopicMeta;
use crate::node::Output;
use crate::producer::PRODUCER_ID_BLOCK_SIZE;
use std::collections::BTreeMap;
use std::time::Duration;

/// The cluster as one broker sees it (its metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStats {
    /// This broker is the active controller (Kafka's ActiveControllerCount).
    pub active_controller: bool,
    pub controller_id: i32,
    /// The metadata quorum's term (the controller epoch), commit and applied index.
    pub quorum_term: u64,
    pub quorum_commit_index: u64,
    pub quorum_applied_index: u64,
    /// Elections this broker won.
    pub elections_won: u64,
    pub registered_brokers: usize,
    pub fenced_brokers: usize,
    /// Partitions whose leader is fenced (Kafka's OfflinePartitionsCount).
    pub offline_partitions: usize,
    /// Partitions this broker leads (Kafka's LeaderCount).
    pub leader_partitions: usize,
}

/// The file in a partition's directory naming the topic id it belongs to.
const PARTITION_METADATA: &str = "partition.metadata";

/// Writes the `partition.metadata` of a directory that holds data but no stamp (a single
/// node's, being imported) so that it opens as `topic`'s.
impl Node {
    pub(crate) fn stamp_partition_dir(
        &mut self,
        topic: &TopicMeta,
        index: i32,
    ) -> Result<(), OpenError> {
        let dir = super::partition_dir(&topic.name, index);
        let file = format!("{dir}/{PARTITION_METADATA}");
        if self.storage.len(&file)?.is_none() && !self.storage.list(&dir)?.is_empty() {
            self.storage
                .replace(&file, partition_metadata(topic.id).as_bytes())?;
        }
        Ok(())
    }
}

/// The topic id a `partition.metadata` names, if it parses.
fn stamped_id(bytes: &[u8]) -> Option<TopicId> {
    let text = std::str::from_utf8(bytes).ok()?;
    let hex = text.lines().find_map(|l| l.strip_prefix("topic_id: "))?;
    if hex.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(TopicId(id))
}

/// The contents of a partition's `partition.metadata` (Kafka's layout, id in hex).
fn partition_metadata(id: TopicId) -> String {
    let hex: String = id.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("version: 0\ntopic_id: {hex}\n")
}

impl Node {
    /// Opens the metadata quorum's replica of a cluster broker and schedules its first
    /// registration.
    pub(crate) fn open_quorum(&mut self, seed: u64) -> Result<(), OpenError> {
        let Some(cluster) = &self.config.cluster else {
            return Ok(());
        };
        let config = QuorumConfig {
            voters: cluster.voters.clone(),
            election_timeout_ms: cluster.election_timeout_ms,
            heartbeat_interval_ms: cluster.heartbeat_interval_ms,
            snapshot_every: cluster.snapshot_every,
        };
        let quorum = MetadataQuorum::open(
            self.storage.as_ref(),
            self.config.node_id,
            &config,
            // Its own stream: the node's draws must not shift with the quorum's.
            seed ^ 0x6d65_7461_6461_7461,
            self.now,
        )
        .map_err(|e| OpenError::Metadata {
            file: controller::METADATA_LOG_DIR.to_string(),
            reason: e.to_string(),
        })?;
        self.timers
            .set_or_cancel(NodeTimer::Quorum, quorum.next_deadline());
        self.quorum = Some(quorum);
        self.timers.set(NodeTimer::Register, self.now);
        self.timers.set(NodeTimer::Liveness, self.now);
        Ok(())
    }

    /// For a clean shutdown (SIGTERM): hands the leadership this broker holds over to
    /// another broker, so that the cluster need not wait an election timeout to notice it
    /// left. Whether there is a hand-over to wait for ([`Node::leads_anything`]).
    pub fn hand_over_leadership(&mut self) -> bool {
        match self.quorum.as_mut() {
            Some(q) => q.hand_over(self.now, self.storage.as_ref(), &mut self.outputs),
            None => false,
        }
    }

    /// Whether this broker still leads a Raft group (the metadata quorum).
    pub fn leads_anything(&self) -> bool {
        self.quorum.as_ref().is_some_and(MetadataQuorum::is_leader)
    }

    /// The cluster as this broker sees it, for metrics; `None` on a single node.
    pub fn cluster_stats(&self) -> Option<ClusterStats> {
        let q = self.quorum.as_ref()?;
        let image = q.image();
        let offline = image
            .replicas
            .values()
            .flatten()
            .filter(|r| r.first().is_none_or(|l| image.fenced.contains(l)))
            .count();
        Some(ClusterStats {
            active_controller: q.is_leader(),
            controller_id: q.leader().map_or(-1, |l| l.0),
            quorum_term: q.term(),
            quorum_commit_index: q.commit_index(),
            quorum_applied_index: q.applied_index(),
            elections_won: q.elections_won,
            registered_brokers: image.brokers.len(),
            fenced_brokers: image.fenced.len(),
            offline_partitions: offline,
            leader_partitions: self.partitions.len(),
        })
    }

    /// On the active controller, every quarter session timeout: fences and unfences.
    pub(crate) fn check_liveness(&mut self) {
        let Some(cluster) = &self.config.cluster else {
            return;
        };
        let timeout = cluster.session_timeout_ms;
        self.timers.set(
            NodeTimer::Liveness,
            self.now + Duration::from_millis((timeout / 4).max(10)),
        );
        if let Some(q) = self.quorum.as_mut() {
            q.check_liveness(self.now, timeout, self.storage.as_ref(), &mut self.outputs);
        }
    }

    pub(crate) fn tick_quorum(&mut self) {
        if let Some(q) = self.quorum.as_mut() {
            q.tick(self.now, self.storage.as_ref(), &mut self.outputs);
        }
    }

    pub(crate) fn on_quorum_flushed(&mut self, upto: Offset) {
        if let Some(q) = self.quorum.as_mut() {
            q.persisted(self.now, upto, self.storage.as_ref(), &mut self.outputs);
        }
    }

    /// After every input: answers the proposals the quorum decided, re-arms its timer,
    /// and stops the node if its log could not be written.
    pub(crate) fn poll_quorum(&mut self) {
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        let answers = q.take_answers();
        let changed = q.version() != self.image_version;
        self.image_version = q.version();
        if let Some(reason) = q.failure() {
            self.fatal.get_or_insert_with(|| reason.to_string());
        }
        if changed {
            self.drive_import();
            self.reconcile_topics();
            self.adopt_producer_block();
        }
        for (proposer, verdict) in answers {
            match proposer {
                Proposer::Remote { from, id } => {
                    let (error_code, message) = match verdict {
                        Ok(()) => (ErrorCode::NONE, String::new()),
                        Err((code, message)) => (code, message),
                    };
                    self.outputs.push_back(Output::SendPeer {
                        to: from,
                        message: PeerMessage::ForwardReply {
                            id,
                            error_code: error_code.0,
                            message,
                        },
                    });
                }
                // A registration (which `register` reads from the image) or an admin
                // request's entry.
                Proposer::Local(id) => self.on_controller_verdict(id, verdict),
            }
        }
        let deadline = self.quorum.as_ref().and_then(MetadataQuorum::next_deadline);
        self.timers.set_or_cancel(NodeTimer::Quorum, deadline);
    }

    /// Brings the topic table and the hosted partitions in line with the metadata image:
    /// topics the image no longer has (or has under a new id) lose their partitions and
    /// files here; new ones are recorded, and the partitions assigned to this broker
    /// opened (over what their directories hold, unless it belongs to an older topic of
    /// the same name).
    pub(crate) fn reconcile_topics(&mut self) {
        let Some(q) = &self.quorum else { return };
        let image = q.image();
        let gone: Vec<TopicMeta> = self
            .metadata
            .topics
            .values()
            .filter(|t| image.topics.get(&t.name).map(|n| n.id) != Some(t.id))
            .cloned()
            .collect();
        let me = self.config.node_id;
        let mut new = Vec::new();
        let mut changed = Vec::new();
        for t in image.topics.values() {
            match self.metadata.topics.get(&t.name) {
                Some(held) if held == t => {}
                // More partitions or other configs (the id is the same topic).
                Some(held) if held.id == t.id => {
                    let hosted: Vec<i32> = (held.partitions..t.partitions)
                        .filter(|&p| image.replicas_of(t.id, p).is_some_and(|r| r.contains(&me)))
                        .collect();
                    changed.push((t.clone(), hosted));
                }
                _ => {
                    let hosted: Vec<i32> = (0..t.partitions)
                        .filter(|&p| image.replicas_of(t.id, p).is_some_and(|r| r.contains(&me)))
                        .collect();
                    new.push((t.clone(), hosted));
                }
            }
        }
        for (t, hosted) in changed {
            self.metadata.topics.insert(t.name.clone(), t.clone());
            for index in hosted {
                if let Err(e) = self.open_assigned_partition(&t, index) {
                    tracing::error!(topic = %t.name, partition = index, error = %e, "could not open an assigned partition");
                }
            }
            self.apply_topic_configs(&t);
            tracing::info!(topic = %t.name, partitions = t.partitions, configs = ?t.configs, "topic changed");
        }
        for t in gone {
            self.metadata.topics.remove(&t.name);
            self.drop_topic_partitions(&t);
            tracing::info!(topic = %t.name, "deleted topic");
        }
        for (t, hosted) in new {
            self.metadata.topics.insert(t.name.clone(), t.clone());
            self.creating.remove(&t.name);
            for index in hosted {
                if let Err(e) = self.open_assigned_partition(&t, index) {
                    tracing::error!(topic = %t.name, partition = index, error = %e, "could not open an assigned partition");
                }
            }
            if t.name == crate::group::OFFSETS_TOPIC {
                if let Err(e) = self.load_group_offsets() {
                    tracing::error!(error = %e, "could not load committed offsets");
                }
            }
            tracing::info!(topic = %t.name, partitions = t.partitions, "topic recorded");
        }
    }

    /// A producer id from this process's block (node/cluster.rs keeps it topped up); `None`
    /// while the controller has not granted one.
    pub(crate) fn cluster_producer_id(&mut self) -> Option<i64> {
        let id = self.producer_ids.take();
        let left = self.producer_ids.block_end - self.producer_ids.next;
        if left < PRODUCER_ID_BLOCK_SIZE / 2 {
            self.request_producer_ids();
        }
        id
    }

    /// Asks the controller for a new block of producer ids, at most once a second.
    fn request_producer_ids(&mut self) {
        if self.import.as_ref().is_some_and(|i| {
            self.quorum
                .as_ref()
                .is_some_and(|q| q.image().next_producer_id < i.producer_floor())
        }) {
            // Not before the single node's ids are reserved (node/upgrade.rs).
            return;
        }
        if self.is_registered() && self.asked_for_producer_ids.is_none_or(|t| t <= self.now) {
            let record = MetadataRecord::AllocateProducerIds {
                broker: self.config.node_id,
                incarnation: self.incarnation,
                size: PRODUCER_ID_BLOCK_SIZE,
            };
            if self.submit_to_controller(&record).is_ok() {
                self.asked_for_producer_ids = Some(self.now + Duration::from_secs(1));
            }
        }
    }

    /// Takes up the latest block the controller granted this process, if it is new; asks
    /// for a first one once registered. Blocks only grow, so nothing handed out from the
    /// old block is in the new one; what the old one had left is skipped.
    fn adopt_producer_block(&mut self) {
        let Some(q) = &self.quorum else { return };
        let granted = q
            .image()
            .producer_blocks
            .get(&self.config.node_id)
            .filter(|b| b.incarnation == self.incarnation)
            .copied();
        match granted {
            Some(b)
                if b.first >= self.producer_ids.block_end
                    && self
                        .import
                        .as_ref()
                        .is_none_or(|i| b.first >= i.producer_floor()) =>
            {
                self.producer_ids = crate::producer::ProducerIdBlock {
                    next: b.first,
                    block_end: b.end,
                };
                self.asked_for_producer_ids = None;
            }
            Some(_) => {}
            None => self.request_producer_ids(),
        }
    }

    /// Opens partition `index` of `topic` on this broker. Its directory names it by name
    /// only, so a file in it records the topic id (Kafka's `partition.metadata`): files of
    /// an older topic of the same name, deleted while this broker was away, are removed
    /// first instead of being served as the new topic's.
    fn open_assigned_partition(&mut self, topic: &TopicMeta, index: i32) -> Result<(), OpenError> {
        let dir = super::partition_dir(&topic.name, index);
        let file = format!("{dir}/{PARTITION_METADATA}");
        let stamp = partition_metadata(topic.id);
        let held = match self.storage.len(&file)? {
            Some(len) => Some(self.storage.read_at(&file, 0, len as usize)?),
            None => None,
        };
        if held.as_deref() != Some(stamp.as_bytes()) {
            let kept = self.import.as_ref().is_some_and(|i| {
                held.as_deref()
                    .and_then(stamped_id)
                    .is_some_and(|id| i.protects(id))
            });
            if kept {
                return Err(OpenError::Storage(std::io::Error::other(format!(
                    "{dir} holds a single node's data for another topic of this name; not served"
                ))));
            }
            let stale = self.storage.list(&dir)?;
            if !stale.is_empty() {
                tracing::warn!(%dir, "removing the files of an older topic of the same name");
            }
            for f in stale {
                self.storage.remove(&format!("{dir}/{f}"))?;
            }
            self.storage.replace(&file, stamp.as_bytes())?;
        }
        self.open_partition(topic, index)
    }

    /// The error for a partition of `topic` this broker does not host: in a cluster, a
    /// partition the metadata knows lives elsewhere (NOT_LEADER_OR_FOLLOWER, so clients
    /// refresh their metadata); else it does not exist.
    pub(crate) fn missing_partition_error(&self, topic: &str, index: i32) -> ErrorCode {
        let known = self.quorum.is_some()
            && self
                .metadata
                .topics
                .get(topic)
                .is_some_and(|t| (0..t.partitions).contains(&index));
        if known {
            ErrorCode::NOT_LEADER_OR_FOLLOWER
        } else {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        }
    }

    /// The registered broker leading partition `index` of the offsets topic, if it is
    /// another broker of the cluster (its group coordinator).
    pub(crate) fn offsets_partition_leader(&self, index: i32) -> Option<&BrokerRegistration> {
        let q = self.quorum.as_ref()?;
        let topic = self.metadata.topics.get(crate::group::OFFSETS_TOPIC)?;
        let leader = *q.image().replicas_of(topic.id, index)?.first()?;
        (leader != self.config.node_id)
            .then(|| q.image().brokers.get(&leader))
            .flatten()
    }

    /// The replicas of a partition as Metadata reports them: in a cluster the image's
    /// (the first is the leader); a single node is every partition's only replica.
    pub(crate) fn partition_replicas(&self, topic: TopicId, index: i32) -> Vec<i32> {
        match &self.quorum {
            Some(q) => q
                .image()
                .replicas_of(topic, index)
                .map(|r| r.iter().map(|b| b.0).collect())
                .unwrap_or_default(),
            None => vec![self.config.node_id.0],
        }
    }

    /// A topic that a client's first Metadata, or the group coordinator, creates in a
    /// cluster: its record goes to the controller (once a second per name, however often
    /// clients ask), and the caller answers LEADER_NOT_AVAILABLE, which clients retry.
    pub(crate) fn cluster_auto_create(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Refusal {
        let retry = (
            ErrorCode::LEADER_NOT_AVAILABLE,
            format!("topic {name} is being created; retry"),
        );
        let now = self.now;
        self.creating.retain(|_, until| *until > now);
        if self.creating.contains_key(name) {
            return retry;
        }
        let t = CreatableTopic {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor: -1,
            ..Default::default()
        };
        let submitted = self
            .new_topic_record(&t, partitions, &configs)
            .and_then(|(record, _, _)| self.submit_to_controller(&record));
        match submitted {
            Ok(_) => {
                self.creating
                    .insert(name.to_string(), self.now + Duration::from_secs(1));
                retry
            }
            Err(refusal) => refusal,
        }
    }

    /// The active controller, if this broker knows one (a cluster's Metadata
    /// `controller_id`; a single node is its own).
    pub(crate) fn controller_id(&self) -> Option<NodeId> {
        match &self.quorum {
            Some(q) => q.leader(),
            None => Some(self.config.node_id),
        }
    }

    /// Every registered broker by id, with whether it is fenced (a single node: itself).
    pub(crate) fn registered_brokers(&self) -> Vec<(crate::api::BrokerInfo, bool)> {
        let Some(q) = &self.quorum else {
            return self
                .live_brokers()
                .into_iter()
                .map(|b| (b, false))
                .collect();
        };
        q.image()
            .brokers
            .values()
            .map(|b| {
                let info = crate::api::BrokerInfo {
                    node_id: b.id.0,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                };
                (info, q.image().fenced.contains(&b.id))
            })
            .collect()
    }

    /// The brokers clients are told of, by id: in a cluster, every broker the metadata log
    /// holds a registration of; a single node is the only one.
    pub(crate) fn live_brokers(&self) -> Vec<crate::api::BrokerInfo> {
        match &self.quorum {
            Some(q) => q
                .image()
                .brokers
                .values()
                .filter(|b| !q.image().fenced.contains(&b.id))
                .map(|b| crate::api::BrokerInfo {
                    node_id: b.id.0,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                })
                .collect(),
            None => vec![crate::api::BrokerInfo {
                node_id: self.config.node_id.0,
                host: self.config.advertised_host.clone(),
                port: self.config.advertised_port,
                rack: None,
            }],
        }
    }

    /// DescribeQuorum: the metadata quorum (`__cluster_metadata` partition 0) as this
    /// broker sees it. The active controller answers in full: leader, epoch, commit index
    /// and each voter's matched index and last contact; another broker answers
    /// NOT_LEADER_OR_FOLLOWER with the leader and epoch it knows, so a client can go
    /// there. A single node has no metadata quorum: UNKNOWN_TOPIC_OR_PARTITION.
    pub(crate) fn describe_quorum(
        &self,
        request: crate::api::DescribeQuorumRequest,
    ) -> crate::api::DescribeQuorumResponse {
        use crate::api::{QuorumPartition, QuorumReplica};
        let now_ms = (self.now.as_nanos() / 1_000_000) as i64;
        let topics = request
            .topics
            .into_iter()
            .map(|(name, partitions)| {
                let described = partitions
                    .into_iter()
                    .map(|index| {
                        let mut p = QuorumPartition {
                            partition_index: index,
                            leader_id: -1,
                            leader_epoch: -1,
                            high_watermark: -1,
                            ..Default::default()
                        };
                        let q = match &self.quorum {
                            Some(q) if name == controller::METADATA_TOPIC && index == 0 => q,
                            _ => {
                                p.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
                                return p;
                            }
                        };
                        p.leader_id = q.leader().map_or(-1, |l| l.0);
                        p.leader_epoch = i32::try_from(q.term()).unwrap_or(i32::MAX);
                        if !q.is_leader() {
                            p.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER;
                            return p;
                        }
                        p.high_watermark = i64::try_from(q.commit_index()).unwrap_or(i64::MAX);
                        p.voters = q
                            .voter_lags(self.now)
                            .into_iter()
                            .map(|(id, matched, since)| {
                                let heard = since.map_or(-1, |ms| now_ms - ms as i64);
                                let caught_up = matched.is_some_and(|m| m >= q.commit_index());
                                QuorumReplica {
                                    replica_id: id.0,
                                    log_end_offset: matched
                                        .map_or(-1, |m| i64::try_from(m).unwrap_or(i64::MAX)),
                                    last_fetch_timestamp: heard,
                                    last_caught_up_timestamp: if caught_up { heard } else { -1 },
                                }
                            })
                            .collect();
                        p
                    })
                    .collect();
                (name, described)
            })
            .collect();
        crate::api::DescribeQuorumResponse {
            error_code: ErrorCode::NONE,
            topics,
        }
    }

    /// Whether the controller fenced broker `id` (never, on a single node).
    pub(crate) fn is_fenced(&self, id: NodeId) -> bool {
        self.quorum
            .as_ref()
            .is_some_and(|q| q.image().fenced.contains(&id))
    }

    /// Whether the metadata log holds this process's registration.
    pub(crate) fn is_registered(&self) -> bool {
        self.quorum.as_ref().is_some_and(|q| {
            q.image()
                .brokers
                .get(&self.config.node_id)
                .is_some_and(|b| b.incarnation == self.incarnation)
        })
    }

    /// Asks the controller to record this broker's address, until the metadata log holds
    /// it: proposed directly on the controller, forwarded to it from anywhere else, and
    /// retried every half election timeout (a lost message, a controller that changed).
    pub(crate) fn register(&mut self) {
        let Some(cluster) = &self.config.cluster else {
            return;
        };
        // A clock stepped back since the last start (NTP, a VM restored) would make this
        // process look older than the one registered, and its registration be refused.
        if let Some(held) = self.quorum.as_ref().and_then(|q| {
            q.image()
                .brokers
                .get(&self.config.node_id)
                .map(|b| b.incarnation)
        }) {
            if held > self.incarnation && !self.registered_once {
                tracing::warn!(held, ours = self.incarnation, "the registered incarnation is ahead of this process's clock; registering above it");
                self.incarnation = held + 1;
            }
        }
        if self.is_registered() {
            self.registered_once = true;
            if self.import.as_ref().is_some_and(|i| i.pending()) {
                self.drive_import();
                self.timers
                    .set(NodeTimer::Register, self.now + Duration::from_millis(500));
            }
            return;
        }
        let retry = Duration::from_millis((cluster.election_timeout_ms / 2).max(10));
        let record = MetadataRecord::RegisterBroker(BrokerRegistration {
            id: self.config.node_id,
            incarnation: self.incarnation,
            host: self.config.advertised_host.clone(),
            port: self.config.advertised_port,
            rack: cluster.rack.clone(),
            producer_floor: self.import.as_ref().map_or(0, |i| i.producer_floor()),
        });
        let records = controller::encode_records(&[record]);
        let id = self.next_forward_id;
        self.next_forward_id += 1;
        self.timers.set(NodeTimer::Register, self.now + retry);
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        if q.is_leader() {
            let proposed = q.propose(
                self.now,
                records,
                Proposer::Local(id),
                self.storage.as_ref(),
                &mut self.outputs,
            );
            if let Err((_, why)) = proposed {
                tracing::debug!(%why, "registration not proposed; retrying");
            }
        } else if let Some(leader) = q.leader() {
            self.outputs.push_back(Output::SendPeer {
                to: leader,
                message: PeerMessage::Forward { id, records },
            });
        }
    }

    /// A message from another broker, checked by the driver only for coming intact from
    /// a broker of this cluster.
    pub(crate) fn on_peer_message(&mut self, from: NodeId, message: PeerMessage) {
        let Some(q) = self.quorum.as_mut() else {
            return self.drop_peer_message(from, &message);
        };
        match message {
            PeerMessage::Raft {
                group: RaftGroup::Metadata,
                message,
            } => q.step(
                self.now,
                from,
                message,
                self.storage.as_ref(),
                &mut self.outputs,
            ),
            PeerMessage::Raft {
                group: RaftGroup::Partition(_),
                ..
            } => self.drop_peer_message(from, &message),
            PeerMessage::Forward { id, records } => {
                let refused = match controller::decode_records(&records) {
                    Err(e) => Some((
                        ErrorCode::INVALID_REQUEST,
                        format!("metadata records do not decode: {e}"),
                    )),
                    Ok(_) => q
                        .propose(
                            self.now,
                            records,
                            Proposer::Remote { from, id },
                            self.storage.as_ref(),
                            &mut self.outputs,
                        )
                        .err(),
                };
                if let Some((code, message)) = refused {
                    self.outputs.push_back(Output::SendPeer {
                        to: from,
                        message: PeerMessage::ForwardReply {
                            id,
                            error_code: code.0,
                            message,
                        },
                    });
                }
            }
            PeerMessage::ForwardReply {
                id,
                error_code,
                message,
            } => {
                let verdict = match error_code {
                    0 => Ok(()),
                    code => Err((ErrorCode(code), message)),
                };
                self.on_controller_verdict(id, verdict);
            }
        }
    }

    /// A message for a Raft group this node does not host (one deleted, moved away, not
    /// yet created here, or any group at all on a single node) is dropped and counted, as
    /// Raft expects of a lost message; its sender retries or learns the group's new home
    /// from the metadata log.
    fn drop_peer_message(&mut self, from: NodeId, message: &PeerMessage) {
        self.dropped_peer_messages += 1;
        let group = match message {
            PeerMessage::Raft { group, .. } => Some(*group),
            _ => None,
        };
        if let Some(held_back) =
            self.throttle
                .borrow_mut()
                .allow("peer", &from.to_string(), self.now)
        {
            tracing::warn!(%from, ?group, held_back, "dropped a peer message for a Raft group this node does not host");
        }
    }
}
