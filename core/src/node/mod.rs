//! `node`: the broker node, one value that owns all of a broker's state and turns inputs
//! into outputs, with no IO of its own. It routes each input to the module that owns it
//! (requests to the per-API handlers in broker/, peer messages to the Raft groups, Flushed
//! to the partition whose log it names), keeps every timer in one table, and drains what
//! they want done.
//!
//! Drive it like quinn-proto's `Endpoint`: call [`Node::handle`] with each input and the
//! current time, then drain [`Node::poll_output`] until it returns `None`, then re-arm a timer
//! for [`Node::next_deadline`] (and call `handle(now, Input::Tick)` when it fires). Outputs
//! must be acted on in the order they come: a `Flush` names files whose writes are already in
//! storage; its `Flushed` must be fed back only once they are durable.

mod cluster;
mod logs;
#[cfg(test)]
mod tests_cluster;
pub(crate) mod upgrade;

pub use cluster::ClusterStats;
pub use logs::partition_dir;
pub(crate) use logs::topic_log_config;

use crate::api::{ConnId, Request, RequestId, Response};
use crate::broker::disk;
use crate::broker::fetch_session;
use crate::broker::idempotence;
use crate::broker::{PendingFetch, PendingProduce};
use crate::bugs::PlantedBug;
use crate::ids::{NodeId, Offset, PartitionId};
use crate::log::LogConfig;
use crate::metadata::{Metadata, TopicMeta};
use crate::partition::{FlushNeed, PartitionTable, Waiter};
use crate::storage::Storage;
use crate::time::Instant;
use crate::timers::TimerTable;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

pub use crate::partition::LogId;

/// What happens to a node.
#[derive(Debug)]
pub enum Input {
    /// A decoded client request. The node answers each with exactly one `Output::Respond`
    /// (for acks=0 produces too: the driver drops it, or closes the connection on error).
    Request {
        conn: ConnId,
        id: RequestId,
        request: Request,
    },
    /// The client connection went away: its parked requests are dropped.
    Disconnected { conn: ConnId },
    /// Every write to the files of a `Flush` for `log` is durable, up to `upto` (exclusive).
    Flushed { log: LogId, upto: Offset },
    /// The fsync for `log` failed: the data may be lost, so the log stops taking writes.
    FlushFailed { log: LogId, error: String },
    /// A timer the driver armed from `next_deadline` fired.
    Tick,
    /// The driver measured the data directory's filesystem (statvfs): `free_bytes` usable
    /// by the broker of `total_bytes`. Drives the free-space floor (broker/disk.rs).
    DiskSpace { free_bytes: u64, total_bytes: u64 },
    /// A message from broker `from`, decoded and checked by the driver's peer transport
    /// (net/src/peer): it arrived intact from a broker of this cluster, nothing more.
    Peer { from: NodeId, message: PeerMessage },
}

/// Which Raft group a peer message belongs to on the broker that receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RaftGroup {
    /// The metadata quorum: the controller's log.
    Metadata,
    /// One partition's replicas.
    Partition(PartitionId),
}

/// What brokers say to each other. The driver owns the connections, one per broker pair,
/// and carries many groups' messages on each; the encoding is the driver's. Raft tolerates
/// a message lost, repeated or late, so neither side ever waits for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage {
    /// Raft traffic of one group (keel-raft's RPCs and replies).
    Raft {
        group: RaftGroup,
        message: keel_raft::Message,
    },
    /// To the active controller: append `records` (the controller's encoding) to the
    /// metadata log and answer with a `ForwardReply` of the same `id` once they are
    /// committed and applied, or refused. A broker forwards what only the controller can
    /// decide: its own registration, and admin requests that landed on it.
    Forward { id: u64, records: Vec<u8> },
    /// The controller's answer to `Forward { id }`: a Kafka error code (0 when the records
    /// are committed and applied) and a message for the client.
    ForwardReply {
        id: u64,
        error_code: i16,
        message: String,
    },
}

/// What a node wants done.
#[derive(Debug)]
pub enum Output {
    Respond {
        conn: ConnId,
        id: RequestId,
        response: Response,
    },
    /// Make `files` durable, then feed back `Input::Flushed { log, upto }`.
    Flush {
        log: LogId,
        files: Vec<String>,
        upto: Offset,
    },
    /// Send `message` to broker `to`, best effort: a message the driver cannot deliver
    /// (no connection, a full queue) is dropped, and Raft's retries cover it.
    SendPeer { to: NodeId, message: PeerMessage },
}

/// A node's static configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub node_id: NodeId,
    /// The address clients are told to connect to (Metadata `brokers`).
    pub advertised_host: String,
    pub advertised_port: i32,
    pub cluster_id: String,
    /// Kafka's auto.create.topics.enable.
    pub auto_create_topics: bool,
    /// Kafka's num.partitions: partitions of an auto-created topic or of a CreateTopics
    /// request that asks for the default (-1).
    pub default_num_partitions: i32,
    /// Defaults for every topic's log; topic configs override them.
    pub log: LogConfig,
    /// Kafka's message.max.bytes: the largest batch a produce may carry.
    pub max_message_bytes: usize,
    /// How far in the future a CreateTime timestamp may lie (message.timestamp.after.max.ms).
    pub timestamp_after_max_ms: i64,
    /// A known bug to exhibit; honoured only in builds with the `planted-bugs` feature.
    pub planted_bug: Option<crate::bugs::PlantedBug>,
    /// The log directory as DescribeLogDirs names it (the driver's absolute data dir).
    pub log_dir: String,
    /// The group coordinator's settings (offsets.topic.num.partitions,
    /// group.initial.rebalance.delay.ms, session timeout bounds, ...).
    pub group: crate::group::GroupConfig,
    /// How often compaction (`log/compaction.rs`) runs for compacted topics: one segment of
    /// each compacted partition per run (Kafka's log.cleaner.backoff.ms, roughly).
    pub log_cleaner_interval_ms: u64,
    /// How often a retention pass runs over every log (Kafka's
    /// log.retention.check.interval.ms; broker/retention.rs).
    pub log_retention_check_interval_ms: u64,
    /// How often every log whose recovery point moved rewrites its checkpoint, so that a
    /// restart after a crash rescans and re-flushes little (Kafka's
    /// log.flush.offset.checkpoint.interval.ms). A clean shutdown writes them all too.
    pub log_checkpoint_interval_ms: u64,
    /// The free-space floor below which new data is refused (broker/disk.rs); `None` for
    /// the default, the smaller of 1 GiB and 5 % of the filesystem.
    pub min_free_bytes: Option<u64>,
    /// Set when the node is one broker of a cluster (`keel serve --voters`); `None` for a
    /// single node, which hosts no Raft group and keeps its metadata in one file.
    pub cluster: Option<ClusterConfig>,
}

/// A broker's place in a cluster. Every voter of the metadata quorum is a broker (Kafka's
/// combined mode); the driver knows their peer addresses, the core only their ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The metadata quorum's voters (this node among them).
    pub voters: BTreeSet<NodeId>,
    /// This broker's rack (Kafka's broker.rack), for replica placement.
    pub rack: Option<String>,
    /// The metadata quorum's minimum election timeout; each is drawn from [t, 2t).
    pub election_timeout_ms: u64,
    /// How often the active controller heartbeats its followers.
    pub heartbeat_interval_ms: u64,
    /// Applied metadata entries between two snapshots of the cluster image.
    pub snapshot_every: u64,
    /// How long the active controller waits to hear from a broker before fencing it
    /// (Kafka's broker.session.timeout.ms).
    pub session_timeout_ms: u64,
}

impl ClusterConfig {
    /// A cluster of `voters` with the default timings.
    pub fn new(voters: BTreeSet<NodeId>) -> ClusterConfig {
        ClusterConfig {
            voters,
            rack: None,
            election_timeout_ms: 1_000,
            heartbeat_interval_ms: 100,
            snapshot_every: 1_000,
            session_timeout_ms: 2_000,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: NodeId(1),
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 9092,
            cluster_id: "keel-cluster".to_string(),
            auto_create_topics: true,
            default_num_partitions: 1,
            log: LogConfig::default(),
            max_message_bytes: 1_048_588,
            timestamp_after_max_ms: 3_600_000,
            planted_bug: None,
            log_dir: "keel-data".to_string(),
            group: crate::group::GroupConfig::default(),
            log_cleaner_interval_ms: 15_000,
            log_retention_check_interval_ms: 300_000,
            log_checkpoint_interval_ms: 60_000,
            min_free_bytes: None,
            cluster: None,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cluster metadata at {file} is unreadable: {reason}")]
    Metadata { file: String, reason: String },
    #[error("log {dir} could not be opened: {source}")]
    Log {
        dir: String,
        source: crate::log::LogError,
    },
    #[error("storage error: {0}")]
    Storage(#[from] std::io::Error),
}

/// One partition as a metrics scrape sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStats<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// The bytes of its segments.
    pub size_bytes: u64,
}

pub(crate) type WaitId = u64;

/// What one of the node's timers is for. The node keeps every deadline it needs in one
/// table (`Node::timers`), the group coordinator's earliest folded in as one entry, so that
/// `next_deadline` is a lookup and timers due at one instant fire in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NodeTimer {
    /// A parked produce or fetch times out.
    Parked(WaitId),
    /// The group coordinator's earliest deadline (its own table, group/coordinator.rs).
    Groups,
    /// The log cleaner's next run (`run_log_cleaner`).
    LogCleaner,
    /// The next retention pass (broker/retention.rs).
    Retention,
    /// The next round of log checkpoints (`run_log_checkpoints`).
    Checkpoint,
    /// The metadata quorum's Raft timers (election, heartbeat), folded into one.
    Quorum,
    /// The next attempt to register this broker with the controller (node/cluster.rs).
    Register,
    /// The active controller's next check of which brokers it hears from.
    Liveness,
}

/// A broker node: owns the topic table, the partitions it hosts, the parked requests and
/// their timers, fetch sessions, the group coordinator and the producer-id block, and routes
/// each input to them. See the module docs for how to drive it.
pub struct Node {
    /// Set when an fsync failed: the node must stop (see [`Node::fatal_error`]).
    pub(crate) fatal: Option<String>,
    /// Peer messages for a Raft group this node does not host, dropped (see
    /// `on_peer_message`).
    pub(crate) dropped_peer_messages: u64,
    pub(crate) config: NodeConfig,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) now: Instant,
    pub(crate) metadata: Metadata,
    /// Every partition of every topic, by topic id, so that nothing addressed to a deleted
    /// topic reaches one created again under its name.
    pub(crate) partitions: PartitionTable,
    pub(crate) outputs: VecDeque<Output>,
    pub(crate) produce_waits: BTreeMap<WaitId, PendingProduce>,
    pub(crate) fetch_waits: BTreeMap<WaitId, PendingFetch>,
    /// KIP-227 fetch sessions (broker/fetch_session.rs).
    pub(crate) fetch_sessions: fetch_session::FetchSessions,
    /// Every deadline of the node: parked requests, the periodic jobs (always armed, as
    /// a schedule) and the group coordinator's earliest.
    pub(crate) timers: TimerTable<NodeTimer>,
    pub(crate) next_wait_id: WaitId,
    /// Consumer groups and committed offsets (group/, glued in broker/group.rs).
    pub(crate) group: crate::group::Coordinator,
    /// Producer ids for InitProducerId (broker/idempotence.rs).
    pub(crate) producer_ids: crate::producer::ProducerIdBlock,
    /// Set by [`Node::flush_all`]: a clean shutdown is under way, so each log writes its
    /// checkpoint as soon as its last flush lands.
    pub(crate) closing: bool,
    /// Connections already told, in the log, that Keel has no transactions: one warning a
    /// client, not one a retry (broker/group.rs `refuse_transactions`).
    pub(crate) warned_transactional: BTreeSet<ConnId>,
    /// Free space and the floor (broker/disk.rs).
    pub(crate) disk: disk::DiskSpace,
    /// Warnings a client's retries would repeat, one line a minute (throttle.rs). In a
    /// cell because reads (`&self`, e.g. a fetch) log failures too.
    pub(crate) throttle: std::cell::RefCell<crate::throttle::LogThrottle>,
    /// The metadata quorum's replica on this broker, in a cluster (node/cluster.rs).
    pub(crate) quorum: Option<crate::controller::quorum::MetadataQuorum>,
    /// This process's start time, in nanoseconds: its registrations' incarnation.
    pub(crate) incarnation: u64,
    /// Ids of this broker's `Forward`s to the controller.
    pub(crate) next_forward_id: u64,
    /// Admin requests waiting for the controller's verdicts (broker/cluster_admin.rs).
    pub(crate) admin_waits: BTreeMap<WaitId, crate::broker::cluster_admin::PendingAdmin>,
    /// Which waiting admin request, and which of its entries, each forward answers.
    pub(crate) forwards: BTreeMap<u64, (WaitId, usize)>,
    /// The quorum's image version the topic table was last reconciled with.
    pub(crate) image_version: u64,
    /// Topics this broker asked the controller to create (auto-creation), until when it
    /// does not ask again.
    pub(crate) creating: BTreeMap<String, Instant>,
    /// Until when a request for a producer-id block is outstanding (node/cluster.rs).
    pub(crate) asked_for_producer_ids: Option<Instant>,
    /// A single node's topics on their way into the cluster's metadata log, when its data
    /// directory starts as a cluster broker (node/upgrade.rs).
    pub(crate) import: Option<crate::node::upgrade::Import>,
    /// In a cluster, the records an admin handler staged instead of changing the topic
    /// table itself, by topic name (broker/cluster_admin.rs submits them).
    pub(crate) staged: Vec<(String, crate::controller::MetadataRecord)>,
    /// A single node's topics the cluster holds under another id: kept, not served.
    pub(crate) import_conflict_topics: Vec<TopicMeta>,
    /// Whether this process's registration was seen in the metadata log once (after that
    /// its incarnation never moves).
    pub(crate) registered_once: bool,
}

/// Bounds on what clients can make a node hold: beyond them, requests are refused rather
/// than queued without limit.
pub(crate) const MAX_PARKED_FETCHES: usize = 10_000;
pub(crate) const MAX_PARKED_PRODUCES: usize = 100_000;

impl Node {
    /// Opens a node over `storage`, recovering every partition log, removing the files of
    /// topics that no longer exist (a deletion cut short by a crash), and asking for a flush
    /// of any recovered data not yet known durable. `seed` drives all of the node's
    /// randomness (topic ids, group member ids), so it must differ between opens of the
    /// same storage, or ids drawn before a restart would be drawn again after it: `keel
    /// serve` takes it from OS entropy, the simulator from the run's seed and the restart.
    pub fn open(
        config: NodeConfig,
        storage: Arc<dyn Storage>,
        now: Instant,
        seed: u64,
    ) -> Result<Node, OpenError> {
        let metadata = Metadata::load(storage.as_ref()).map_err(|reason| OpenError::Metadata {
            file: crate::metadata::METADATA_FILE.to_string(),
            reason,
        })?;
        // A bug planted in the node is planted in its group coordinator too.
        let mut group_config = config.group.clone();
        group_config.planted_bug = group_config.planted_bug.or(config.planted_bug);
        let group = crate::group::Coordinator::new(group_config, now, seed);
        let fetch_sessions = fetch_session::FetchSessions::new(config.planted_bug);
        let config_min_free_bytes = config.min_free_bytes;
        let mut node = Node {
            fatal: None,
            dropped_peer_messages: 0,
            config,
            storage,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now,
            metadata,
            partitions: PartitionTable::new(),
            outputs: VecDeque::new(),
            produce_waits: BTreeMap::new(),
            fetch_waits: BTreeMap::new(),
            fetch_sessions,
            timers: TimerTable::new(),
            next_wait_id: 1,
            group,
            producer_ids: crate::producer::ProducerIdBlock::default(),
            closing: false,
            warned_transactional: BTreeSet::new(),
            disk: disk::DiskSpace::new(config_min_free_bytes),
            throttle: Default::default(),
            quorum: None,
            incarnation: now.as_nanos(),
            next_forward_id: 1,
            admin_waits: BTreeMap::new(),
            forwards: BTreeMap::new(),
            image_version: 0,
            creating: BTreeMap::new(),
            asked_for_producer_ids: None,
            import: None,
            staged: Vec::new(),
            import_conflict_topics: Vec::new(),
            registered_once: false,
        };
        node.timers
            .set(NodeTimer::LogCleaner, node.log_cleaner_deadline());
        node.timers
            .set(NodeTimer::Retention, node.retention_deadline());
        node.timers
            .set(NodeTimer::Checkpoint, node.log_checkpoint_deadline());
        if node.config.cluster.is_some() {
            // The metadata log, not the file, says which topics exist and which partitions
            // this broker hosts (node/cluster.rs); entries past its snapshot apply once the
            // quorum knows they are committed, so nothing is an orphan yet.
            let single_node = std::mem::take(&mut node.metadata);
            node.open_quorum(seed)?;
            node.stage_import(single_node)?;
            node.reconcile_topics();
        } else {
            node.remove_orphan_logs()?;
            let topics: Vec<TopicMeta> = node.metadata.topics.values().cloned().collect();
            for topic in &topics {
                node.open_topic_logs(topic)?;
            }
        }
        node.load_group_offsets()?;
        node.load_producer_ids()?;
        node.request_flushes();
        node.check();
        Ok(node)
    }

    /// Feeds one input. Outputs it causes are queued for [`Node::poll_output`].
    pub fn handle(&mut self, now: Instant, input: Input) {
        // A driver's clock never goes backwards, but keep `now` monotonic regardless so that
        // deadlines stay ordered.
        self.now = self.now.max(now);
        match input {
            Input::Request { conn, id, request } => self.handle_request(conn, id, request),
            Input::Disconnected { conn } => self.drop_connection(conn),
            Input::Flushed { log, upto } => self.on_flushed(log, upto),
            Input::FlushFailed { log, error } => self.on_flush_failed(log, error),
            Input::Tick => {}
            Input::DiskSpace {
                free_bytes,
                total_bytes,
            } => self.on_disk_sample(free_bytes, total_bytes),
            Input::Peer { from, message } => self.on_peer_message(from, message),
        }
        self.fire_timers();
        self.poll_quorum();
        self.poll_group();
        self.timers
            .set_or_cancel(NodeTimer::Groups, self.group.next_deadline());
        self.request_flushes();
        self.check();
    }

    /// The next thing the driver must do, in order.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the node next needs `Input::Tick`, if ever. A periodic job with nothing to
    /// do asks for no wake-up (an idle node sleeps), though it still runs at its time if
    /// some input arrives after it.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_where(|timer| match timer {
            NodeTimer::Parked(_) | NodeTimer::Groups => true,
            NodeTimer::LogCleaner => self.log_cleaner_wanted(),
            NodeTimer::Retention => self.retention_wanted(),
            NodeTimer::Checkpoint => self.log_checkpoint_wanted(),
            NodeTimer::Quorum | NodeTimer::Register => true,
            NodeTimer::Liveness => self.quorum.as_ref().is_some_and(|q| q.is_leader()),
        })
    }

    /// Runs every timer due at `now`, earliest first. A periodic job re-arms itself.
    pub(crate) fn fire_timers(&mut self) {
        while let Some((_, timer)) = self.timers.pop_due(self.now) {
            match timer {
                NodeTimer::Parked(wait) => self.expire_parked(wait),
                // poll_group, which runs after every input, expires the group's timers.
                NodeTimer::Groups => {}
                NodeTimer::LogCleaner => {
                    self.timers
                        .set(NodeTimer::LogCleaner, self.log_cleaner_deadline());
                    self.run_log_cleaner();
                }
                NodeTimer::Retention => {
                    self.timers
                        .set(NodeTimer::Retention, self.retention_deadline());
                    self.run_retention();
                }
                NodeTimer::Checkpoint => {
                    self.timers
                        .set(NodeTimer::Checkpoint, self.log_checkpoint_deadline());
                    self.run_log_checkpoints();
                }
                NodeTimer::Quorum => self.tick_quorum(),
                NodeTimer::Register => self.register(),
                NodeTimer::Liveness => self.check_liveness(),
            }
        }
    }

    /// Queues a Flush for every log whose writes are not yet durable and not already being
    /// flushed, for a clean shutdown; each log's checkpoint is written once its last flush
    /// has landed (at once for a log with nothing to flush), so that the next open trusts
    /// the whole log and flushes nothing.
    pub fn flush_all(&mut self) {
        self.closing = true;
        // Snapshots of producer state at every log end, so that the next open replays none.
        for p in self.partitions.values_mut() {
            p.producer_snapshot =
                idempotence::snapshot_producers(&mut p.log, &p.producers, p.producer_snapshot);
        }
        self.partitions.mark_all_dirty();
        self.request_flushes();
        for p in self.partitions.values_mut() {
            if p.flush_in_flight.is_none() {
                p.checkpoint();
            }
        }
    }

    /// Why the node must stop, if it must: an fsync failed (see `on_flush_failed`). The
    /// driver stops serving and reports it; restarting the node recovers from the disk.
    pub fn fatal_error(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// True when no Flush is outstanding and no write awaits one.
    pub fn is_quiescent(&self) -> bool {
        !self.partitions.has_dirty()
            && self
                .partitions
                .values()
                .all(|p| p.flush_in_flight.is_none() || p.is_failed())
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Every partition's offsets and size, in key order: read-only, for the driver's
    /// metrics.
    pub fn partition_offsets(&self) -> impl Iterator<Item = PartitionStats<'_>> {
        self.partitions.values().map(|p| {
            let log = &p.log;
            PartitionStats {
                topic: &p.topic,
                partition: p.id.index,
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
                high_watermark: p.high_watermark.0,
                size_bytes: log.size_bytes(),
            }
        })
    }

    /// Every durable committed offset of the groups this node holds, as (group, topic,
    /// partition, offset) in key order, and how many there are: read-only, for the driver's
    /// metrics (which take a bounded prefix).
    pub fn committed_offsets(&self) -> (usize, impl Iterator<Item = (&str, &str, i32, i64)>) {
        (
            self.group.committed_offset_count(),
            self.group.committed_offsets(),
        )
    }

    /// How many peer messages named a Raft group this node does not host.
    pub fn dropped_peer_messages(&self) -> u64 {
        self.dropped_peer_messages
    }

    /// Whether this node was told to exhibit `bug` (always false without `planted-bugs`).
    pub(crate) fn planted(&self, bug: PlantedBug) -> bool {
        crate::bugs::active(self.config.planted_bug, bug)
    }

    pub(crate) fn respond(&mut self, conn: ConnId, id: RequestId, response: Response) {
        self.outputs
            .push_back(Output::Respond { conn, id, response });
    }

    pub(crate) fn drop_connection(&mut self, conn: ConnId) {
        self.warned_transactional.remove(&conn);
        let fetches: Vec<WaitId> = self
            .fetch_waits
            .iter()
            .filter(|(_, f)| f.conn == conn)
            .map(|(w, _)| *w)
            .collect();
        for w in fetches {
            self.remove_fetch_wait(w);
        }
        // Produces already appended stay appended; only their answers are dropped.
        let produces: Vec<WaitId> = self
            .produce_waits
            .iter()
            .filter(|(_, p)| p.conn == conn)
            .map(|(w, _)| *w)
            .collect();
        for w in produces {
            if self.produce_waits.remove(&w).is_some() {
                self.timers.cancel(&NodeTimer::Parked(w));
            }
        }
        // Admin requests already forwarded go on at the controller; only answers are dropped.
        let admins: Vec<WaitId> = self
            .admin_waits
            .iter()
            .filter(|(_, a)| a.conn == conn)
            .map(|(w, _)| *w)
            .collect();
        for w in admins {
            self.admin_waits.remove(&w);
            self.forwards.retain(|_, (wait, _)| *wait != w);
            self.timers.cancel(&NodeTimer::Parked(w));
        }
    }

    pub(crate) fn on_flushed(&mut self, log: LogId, upto: Offset) {
        if log == crate::controller::quorum::METADATA_LOG {
            return self.on_quorum_flushed(upto);
        }
        let Some(key) = self.partitions.by_log(log) else {
            return;
        };
        let Some(p) = self.partitions.get_mut(&key) else {
            return;
        };
        let released = p.on_flushed(upto);
        let committed = p.high_watermark.0;
        // Acks match their response by name; the name is copied only when one is released.
        let topic_partition = released
            .iter()
            .any(|w| matches!(w, Waiter::Produce(_)))
            .then(|| (p.topic.clone(), key.index));
        if self.closing {
            p.checkpoint();
        }
        let mut fetches = Vec::new();
        let mut offsets_writes = false;
        for waiter in released {
            match waiter {
                Waiter::Produce(wait) => {
                    if let Some(tp) = &topic_partition {
                        self.release_ack(wait, tp, crate::error::ErrorCode::NONE)
                    }
                }
                Waiter::Fetch(wait) => fetches.push(wait),
                Waiter::OffsetsWrite(_) => offsets_writes = true,
            }
        }
        fetches.sort_unstable();
        for wait in fetches {
            self.wake_fetch(wait, key);
        }
        if offsets_writes {
            // The coordinator applies and answers what is now committed (broker/group.rs).
            self.group.on_durable(key.index, committed);
        }
    }

    pub(crate) fn on_flush_failed(&mut self, log: LogId, error: String) {
        if log == crate::controller::quorum::METADATA_LOG {
            tracing::error!(%error, "fsync of the metadata log failed");
            self.fatal
                .get_or_insert_with(|| format!("fsync of the metadata log failed: {error}"));
            return;
        }
        let Some(key) = self.partitions.by_log(log) else {
            return;
        };
        let Some(p) = self.partitions.get_mut(&key) else {
            return;
        };
        let topic = p.topic.clone();
        tracing::error!(%topic, partition = key.index, %error, "fsync failed; the log takes no more writes");
        let waiting = p.on_flush_failed(&error);
        // After a failed fsync nothing the page cache holds for this log can be trusted to be
        // on disk (fsyncgate), and writes acknowledged before a restart may sit above a high
        // watermark that can no longer move. As Kafka does when its only log directory
        // fails, the node stops: a restart recovers the log from what is really on disk.
        self.fatal
            .get_or_insert_with(|| format!("fsync of {topic}-{} failed: {error}", key.index));
        for waiter in waiting {
            match waiter {
                Waiter::Produce(wait) => self.release_ack(
                    wait,
                    &(topic.clone(), key.index),
                    crate::error::ErrorCode::KAFKA_STORAGE_ERROR,
                ),
                // Answered at their deadline with what there is, as before the failure.
                Waiter::Fetch(_) => {}
                // Answered below, with the rest of what waited on the coordinator.
                Waiter::OffsetsWrite(_) => {}
            }
        }
        // Committed offsets waiting on this log (broker/group.rs).
        if topic == crate::group::OFFSETS_TOPIC {
            self.offsets_partition_failed(key.index);
        }
    }

    /// Asks for one Flush per dirty log that has none in flight.
    pub(crate) fn request_flushes(&mut self) {
        for key in self.partitions.take_dirty() {
            let Some(p) = self.partitions.get_mut(&key) else {
                continue;
            };
            match p.flush_need() {
                FlushNeed::None => {}
                // Covered by the flush after the one in flight.
                FlushNeed::AfterInFlight => self.partitions.mark_dirty(key),
                FlushNeed::Now { upto, files } => self.outputs.push_back(Output::Flush {
                    log: p.log_id,
                    files,
                    upto,
                }),
            }
        }
    }

    pub(crate) fn next_wait_id(&mut self) -> WaitId {
        let w = self.next_wait_id;
        self.next_wait_id += 1;
        w
    }

    /// A parked request's deadline passed: a fetch answers with what it has, a produce
    /// with REQUEST_TIMED_OUT for each partition not yet durable.
    pub(crate) fn expire_parked(&mut self, wait: WaitId) {
        if self.admin_waits.contains_key(&wait) {
            self.expire_admin(wait);
        } else if self.fetch_waits.contains_key(&wait) {
            self.complete_fetch(wait);
        } else if let Some(mut p) = self.produce_waits.remove(&wait) {
            for &(t, i) in &p.outstanding {
                let part = &mut p.response.topics[t].partitions[i];
                part.error_code = crate::error::ErrorCode::REQUEST_TIMED_OUT;
                part.error_message = Some("the write was not durable within timeout_ms".into());
            }
            self.respond(p.conn, p.id, Response::Produce(p.response));
        }
    }

    /// Asserts the node's invariants after every input (debug and simulation builds).
    pub(crate) fn check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.partitions.check(|p| {
            assert_eq!(
                self.metadata.topics.get(&p.topic).map(|t| t.id),
                Some(p.id.topic),
                "{}-{}: not a partition of the topic of that name",
                p.topic,
                p.id.index
            );
        });
        assert!(self.fetch_waits.len() <= MAX_PARKED_FETCHES);
        self.fetch_sessions.check();
        assert!(self.produce_waits.len() <= MAX_PARKED_PRODUCES);
        self.timers.check();
        let parked = self
            .timers
            .iter()
            .filter(|(_, t)| matches!(t, NodeTimer::Parked(_)))
            .count();
        assert_eq!(
            parked,
            self.fetch_waits.len() + self.produce_waits.len() + self.admin_waits.len(),
            "every parked request has its deadline"
        );
        for (forward, (wait, _)) in &self.forwards {
            assert!(
                self.admin_waits.contains_key(wait),
                "forward {forward} answers no waiting request"
            );
        }
        for timer in [
            NodeTimer::LogCleaner,
            NodeTimer::Retention,
            NodeTimer::Checkpoint,
        ] {
            assert!(self.timers.get(&timer).is_some(), "{timer:?} is not armed");
        }
        self.group.check();
        if let Some(q) = &self.quorum {
            q.check();
        }
    }
}
