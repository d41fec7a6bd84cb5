//! Scenarios: the TOML files in `scenarios/`, each a named trap (what bug or property it is
//! about, its cluster, workloads and faults, what must hold, and the seeds that once failed).
//!
//! Every field but `name` and `duration` has a default; unknown fields are refused so a typo
//! cannot silently disable a fault. Durations are strings: `"250ms"`, `"3s"`, `"1.5s"`, `"2m"`.

use crate::checker::Anomaly;
use crate::disk::{CrashLoss, DiskFaults};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A duration written as a string in a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize)]
#[serde(try_from = "String")]
pub struct Dur(pub Duration);

/// Written back as whole milliseconds (`"1500ms"`), which parse to the same value.
impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}ms", self.ms()))
    }
}

impl TryFrom<String> for Dur {
    type Error = String;
    fn try_from(s: String) -> Result<Dur, String> {
        parse_duration(&s).map(Dur)
    }
}

impl Dur {
    pub fn ms(self) -> u64 {
        self.0.as_millis() as u64
    }
    pub fn from_ms(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
}

/// Parses `"250ms"`, `"3s"`, `"1.5s"`, `"2m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return Err(format!("duration {s:?} needs a unit: ms, s or m"));
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("duration {s:?} is not a number with a unit"))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("duration {s:?} must be a non-negative number"));
    }
    Ok(Duration::from_millis((value * unit_ms).round() as u64))
}

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// What the scenario traps, in a sentence (the file's header comment says more).
    #[serde(default)]
    pub description: String,
    /// Broker nodes `keel-1..=nodes`. Until replication lands each is an independent
    /// single-node broker; a topic lives on the node its spec names.
    #[serde(default = "one")]
    pub nodes: u32,
    /// Length of the fault phase: workloads run and faults fire.
    pub duration: Dur,
    /// After the fault phase, everything is healed; consumers catch up and the final reader
    /// reads every partition, all within this long.
    #[serde(default = "default_heal")]
    pub heal: Dur,
    /// Seeds that once failed: always run by the test suite.
    #[serde(default)]
    pub regression_seeds: Vec<u64>,
    #[serde(default)]
    pub network: NetworkSpec,
    /// Tweaks of every node's configuration.
    #[serde(default)]
    pub node: NodeSpec,
    /// The disk's faults from the start (scheduled faults may change them for a while).
    #[serde(default)]
    pub disk: DiskFaults,
    /// What a crash does to data not yet synced, unless a crash fault says otherwise.
    #[serde(default = "default_loss")]
    pub crash_loss: CrashLoss,
    #[serde(default)]
    pub topics: Vec<TopicSpec>,
    #[serde(default)]
    pub producers: Vec<ProducerSpec>,
    #[serde(default)]
    pub consumers: Vec<ConsumerSpec>,
    /// Consumer groups: members that join, sync, consume, commit, crash and rejoin.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    /// Faults at fixed simulated times.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Faults drawn from the seed at the given rates.
    #[serde(default)]
    pub random: RandomFaults,
    /// What must hold.
    #[serde(default)]
    pub expect: Expect,
    /// Present: the nodes form one Keel cluster (see [`ClusterSpec`]). Absent: each node is
    /// an independent single-node broker.
    #[serde(default)]
    pub cluster: Option<ClusterSpec>,
}

/// The `[cluster]` table: every node `keel-1..=nodes` runs as one broker of a cluster whose
/// metadata quorum (Raft) is all the nodes, with a peer listener on
/// [`crate::harness::PEER_PORT`]. Topics are created through the controller with every
/// partition assigned to the topic's `node` (replication factor 1), so the workloads talk to
/// the same host as without a cluster. A quorum observer asks every node DescribeQuorum every
/// `observe_every` (the claims to be the active controller feed the `two-controllers` check)
/// and, after the heal, Metadata until every node names one controller and lists every node
/// (otherwise `no-controller`). Unset timings are Keel's defaults (`ClusterConfig::new`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    /// The metadata quorum's minimum election timeout.
    pub election_timeout: Option<Dur>,
    /// How often the active controller heartbeats its followers.
    pub heartbeat_interval: Option<Dur>,
    /// How long the controller waits to hear from a broker before fencing it.
    pub session_timeout: Option<Dur>,
    /// Applied metadata entries between two snapshots of the cluster image.
    pub snapshot_every: Option<u64>,
    /// The observer's polling interval (50 ms when unset).
    pub observe_every: Option<Dur>,
}

fn one() -> u32 {
    1
}
fn default_heal() -> Dur {
    Dur::from_ms(6_000)
}
fn default_loss() -> CrashLoss {
    CrashLoss::Mixed
}

/// Link latency between every pair of hosts (turmoil's exponential distribution between
/// the two bounds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    pub min_latency: Dur,
    pub max_latency: Dur,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            min_latency: Dur::from_ms(1),
            max_latency: Dur::from_ms(5),
        }
    }
}

/// Node configuration tweaks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSpec {
    /// Kafka's log.segment.bytes for every log (small values make segments roll).
    pub segment_bytes: Option<u64>,
    /// Kafka's log.index.interval.bytes.
    pub index_interval_bytes: Option<u64>,
    /// offsets.topic.num.partitions (Keel's default is Kafka's 50).
    pub offsets_topic_partitions: Option<i32>,
    /// group.initial.rebalance.delay.ms.
    pub group_initial_rebalance_delay: Option<Dur>,
    /// group.min.session.timeout.ms (Kafka's default, 6s, is longer than a short run).
    pub group_min_session_timeout: Option<Dur>,
    /// `--min-free-bytes`: below this much free space the node refuses new data before
    /// writing it (POLICY_VIOLATION). Unset: Keel's default, the smaller of 1 GiB and 5 % of
    /// the disk's `capacity_bytes`; 0 turns the floor off, so writes meet real ENOSPC. A disk
    /// without a capacity is not measured and has no floor.
    pub min_free_bytes: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    #[serde(default = "one_i32")]
    pub partitions: i32,
    /// The node that hosts it (1-based).
    #[serde(default = "one")]
    pub node: u32,
    /// Topic configs sent with CreateTopics.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

fn one_i32() -> i32 {
    1
}

/// `count` producers writing unique values (`p3-000017`) to `topic`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSpec {
    pub topic: String,
    #[serde(default = "one")]
    pub count: u32,
    /// -1 (all), 1 or 0.
    #[serde(default = "minus_one")]
    pub acks: i16,
    /// Records per simulated second, per producer.
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Records per produce request.
    #[serde(default = "one")]
    pub batch: u32,
    /// Size of each value in bytes (padded; at least the identifier).
    #[serde(default = "default_record_bytes")]
    pub record_bytes: usize,
    /// Distinct keys; a key picks the partition.
    #[serde(default = "default_keys")]
    pub keys: u32,
    /// Deadline of one request.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// An idempotent producer (KIP-98), as librdkafka's and Java's with
    /// `enable.idempotence=true`: a producer id, a sequence per partition, and a batch whose
    /// outcome is unknown sent again, unchanged, until it is known. Needs acks = -1. The
    /// broker must then keep every value once: a retry that lands twice is a `duplicate`.
    #[serde(default)]
    pub idempotent: bool,
}

fn minus_one() -> i16 {
    -1
}
fn default_rate() -> f64 {
    50.0
}
fn default_record_bytes() -> usize {
    32
}
fn default_keys() -> u32 {
    16
}
fn default_timeout() -> Dur {
    Dur::from_ms(1_000)
}

/// `count` consumers each reading every partition of `topic` from offset 0 (no groups).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub topic: String,
    #[serde(default = "one")]
    pub count: u32,
    /// Fetch max_wait_ms.
    #[serde(default = "default_max_wait")]
    pub max_wait: Dur,
    /// Fetch max_bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: i32,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Fetch through KIP-227 fetch sessions (one per partition), as the Java consumer
    /// does: incremental fetches name a partition only when its position moved.
    #[serde(default)]
    pub sessions: bool,
    /// Start reading this long after the run starts (simulated), with a backlog to work
    /// through: a consumer that reads behind a high watermark that no longer moves.
    #[serde(default = "zero_dur")]
    pub start_after: Dur,
}

fn zero_dur() -> Dur {
    Dur::from_ms(0)
}

/// `members` consumers in consumer group `name` over every partition of `topic`, each
/// looping join → sync (the leader runs the range assignor) → OffsetFetch → fetch → commit
/// → heartbeat, as a real client does. During the fault phase each member crashes at
/// `crash_rate` per simulated second (its connection dropped, no LeaveGroup: the session
/// timeout must expire it) and comes back after `crash_down` with a fresh member id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    pub topic: String,
    #[serde(default = "two")]
    pub members: u32,
    #[serde(default = "default_session_timeout")]
    pub session_timeout: Dur,
    #[serde(default = "default_rebalance_timeout")]
    pub rebalance_timeout: Dur,
    #[serde(default = "default_heartbeat_interval")]
    pub heartbeat_interval: Dur,
    /// How often a member commits its positions.
    #[serde(default = "default_commit_interval")]
    pub commit_interval: Dur,
    #[serde(default)]
    pub crash_rate: f64,
    #[serde(default = "default_crash_down")]
    pub crash_down: Dur,
    /// Fetch max_wait_ms.
    #[serde(default = "default_max_wait")]
    pub max_wait: Dur,
    /// Fetch max_bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: i32,
    /// Deadline of one request (a JoinGroup gets the rebalance timeout on top).
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn two() -> u32 {
    2
}
fn default_session_timeout() -> Dur {
    Dur::from_ms(1_500)
}
fn default_rebalance_timeout() -> Dur {
    Dur::from_ms(3_000)
}
fn default_heartbeat_interval() -> Dur {
    Dur::from_ms(300)
}
fn default_commit_interval() -> Dur {
    Dur::from_ms(200)
}
fn default_crash_down() -> Dur {
    Dur::from_ms(500)
}

fn default_max_wait() -> Dur {
    Dur::from_ms(100)
}
fn default_max_bytes() -> i32 {
    16 * 1024
}

/// A fault at a fixed time. Exactly one action field is set; `for` bounds the timed ones.
/// In a cluster scenario node 0 names the active controller as last observed when the fault
/// comes due (crash, pause, partition, slow_link, flaky_link, isolate, oneway, flap).
/// Serializes back to the entry it was read from (unset fields left out): `keel-sim shrink`
/// writes every fault a run injected this way (`harness::InjectedFault::to_spec`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub at: Dur,
    /// Crash this node, apply `loss` to its disk, restart it after `down`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<CrashLoss>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down: Option<Dur>,
    /// Freeze every link of this node (messages held, then delivered): a process pause as
    /// its clients see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<u32>,
    /// Cut this node off from every client (messages dropped; turmoil's TCP does not
    /// retransmit, so open connections die).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// Slow every link of this node to `min_latency..max_latency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_link: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_latency: Option<Dur>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<Dur>,
    /// Fail messages on every link of this node with `fail_rate` (a failure breaks the link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flaky_link: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_rate: Option<f64>,
    /// Every client drops its connection at once, abandoning its request in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect: Option<bool>,
    /// Flip `count` bits at rest in this node's segment files (which ones: `target`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit_flip: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Where a `bit_flip` strikes; any segment file by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<RotTarget>,
    /// Cluster scenarios: cut this node from every other broker, both ways, for `for`
    /// (clients still reach it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolate: Option<u32>,
    /// Cluster scenarios: drop this node's messages to every other broker for `for` (theirs
    /// still arrive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oneway: Option<u32>,
    /// Cluster scenarios: take the links between this node and every other broker down and
    /// up every `period` for `for`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flap: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Dur>,
    /// Replace this node's disk faults by `set` for `for`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<DiskFaults>,
    /// How long a timed fault lasts.
    #[serde(rename = "for")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lasts: Option<Dur>,
}

/// Which segment files a bit flip may strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotTarget {
    /// Durable data of any `.log` segment file.
    #[default]
    AnySegment,
    /// Durable data of the newest `.log` segment file of each partition directory: always
    /// past the checkpointed recovery point, so the next recovery CRC-checks it (the
    /// checkpoint names the segment holding the recovery point, never a later one).
    NewestSegment,
}

/// Random faults: each kind fires as a Poisson process at `rate` per simulated second over
/// the fault phase, on a node drawn uniformly.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomFaults {
    pub crash_rate: f64,
    pub crash_down: Dur,
    pub pause_rate: f64,
    pub partition_rate: f64,
    pub flaky_link_rate: f64,
    pub slow_link_rate: f64,
    pub disconnect_rate: f64,
    pub bit_flip_rate: f64,
    /// Bursts of `burst` disk faults (fsync and read errors, as set) for `lasts`.
    pub disk_burst_rate: f64,
    pub burst: DiskFaults,
    /// Cluster scenarios: a node cut from the other brokers (both ways), its messages to
    /// them dropped (one way), its links to them flapping every `flap_period`, each for
    /// `lasts`; and crashes of whichever node was last seen as the active controller.
    pub isolate_rate: f64,
    pub oneway_rate: f64,
    pub flap_rate: f64,
    pub flap_period: Dur,
    pub controller_crash_rate: f64,
    /// How long timed random faults last.
    #[serde(rename = "for")]
    pub lasts: Dur,
    /// No random fault starts before this.
    pub after: Dur,
}

impl Default for RandomFaults {
    fn default() -> Self {
        RandomFaults {
            crash_rate: 0.0,
            crash_down: Dur::from_ms(300),
            pause_rate: 0.0,
            partition_rate: 0.0,
            flaky_link_rate: 0.0,
            slow_link_rate: 0.0,
            disconnect_rate: 0.0,
            bit_flip_rate: 0.0,
            disk_burst_rate: 0.0,
            burst: DiskFaults::default(),
            isolate_rate: 0.0,
            oneway_rate: 0.0,
            flap_rate: 0.0,
            flap_period: Dur::from_ms(200),
            controller_crash_rate: 0.0,
            lasts: Dur::from_ms(500),
            after: Dur::from_ms(500),
        }
    }
}

/// What must hold: every anomaly not listed in `tolerate` fails the run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Anomalies this scenario allows, by their Jepsen names (`lost-write`, `unseen`, ...).
    pub tolerate: Vec<Anomaly>,
    /// Why they are allowed: printed with the verdict.
    pub why: String,
    /// Writes must resume by themselves after this time (set it where the fault that frees
    /// space fires): for every partition produced to from then until the heal, some produce
    /// invoked at or after it must be acknowledged before the heal, and the partition's node
    /// must not have started anew (a restart, a crash's recovery) between this time and that
    /// acknowledgement. Otherwise the run fails with `writes-stuck`.
    pub writes_resume_after: Option<Dur>,
}

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        Scenario::parse(&text).map_err(|e| match e {
            ScenarioError::Parse { source, .. } => ScenarioError::Parse {
                path: shown.clone(),
                source,
            },
            ScenarioError::Invalid { reason, .. } => ScenarioError::Invalid {
                path: shown.clone(),
                reason,
            },
            other => other,
        })
    }

    /// Parses and validates scenario text.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: String::new(),
            source: Box::new(e),
        })?;
        scenario
            .validate()
            .map_err(|reason| ScenarioError::Invalid {
                path: String::new(),
                reason,
            })?;
        Ok(scenario)
    }

    fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > 16 {
            return Err(format!("nodes = {} must be in 1..=16", self.nodes));
        }
        if self.duration.0.is_zero() {
            return Err("duration must be positive".into());
        }
        if self.network.min_latency > self.network.max_latency {
            return Err("network.min_latency exceeds max_latency".into());
        }
        let node_ok = |n: u32| (1..=self.nodes).contains(&n);
        for t in &self.topics {
            if !node_ok(t.node) {
                return Err(format!(
                    "topic {} is on node {}, which does not exist",
                    t.name, t.node
                ));
            }
            if t.partitions < 1 {
                return Err(format!("topic {} needs at least one partition", t.name));
            }
        }
        let topic = |name: &str| self.topics.iter().any(|t| t.name == name);
        for p in &self.producers {
            if !topic(&p.topic) {
                return Err(format!("a producer writes to unknown topic {}", p.topic));
            }
            if !(-1..=1).contains(&p.acks) {
                return Err(format!("producer acks = {} must be -1, 0 or 1", p.acks));
            }
            if p.idempotent && p.acks != -1 {
                return Err("an idempotent producer needs acks = -1".into());
            }
            if !(p.rate > 0.0 && p.rate.is_finite()) || p.batch == 0 || p.keys == 0 {
                return Err("producer rate, batch and keys must be positive".into());
            }
        }
        for c in &self.consumers {
            if !topic(&c.topic) {
                return Err(format!("a consumer reads unknown topic {}", c.topic));
            }
        }
        let cluster = self.cluster.is_some();
        if cluster && !self.groups.is_empty() {
            return Err(
                "[[groups]] are not supported in a [cluster] scenario yet (group coordination \
                 across brokers is not verified by the simulator)"
                    .into(),
            );
        }
        let r = &self.random;
        if !cluster
            && (r.isolate_rate > 0.0
                || r.oneway_rate > 0.0
                || r.flap_rate > 0.0
                || r.controller_crash_rate > 0.0)
        {
            return Err(
                "random isolate/oneway/flap/controller_crash rates need a [cluster] table".into(),
            );
        }
        if let Some(c) = &self.cluster {
            if c.election_timeout.is_some_and(|d| d.0.is_zero())
                || c.heartbeat_interval.is_some_and(|d| d.0.is_zero())
                || c.session_timeout.is_some_and(|d| d.0.is_zero())
                || c.observe_every.is_some_and(|d| d.0.is_zero())
                || c.snapshot_every == Some(0)
            {
                return Err("[cluster] timings and snapshot_every must be positive".into());
            }
        }
        let mut group_names = std::collections::BTreeSet::new();
        for g in &self.groups {
            if !topic(&g.topic) {
                return Err(format!(
                    "group {} consumes unknown topic {}",
                    g.name, g.topic
                ));
            }
            if g.name.is_empty() || !group_names.insert(g.name.as_str()) {
                return Err(format!(
                    "group names must be unique and non-empty: {:?}",
                    g.name
                ));
            }
            if g.members == 0 || g.members > 64 {
                return Err(format!("group {}: members must be in 1..=64", g.name));
            }
            if !(g.crash_rate >= 0.0 && g.crash_rate.is_finite()) {
                return Err(format!("group {}: crash_rate must be >= 0", g.name));
            }
            if g.heartbeat_interval.0.is_zero()
                || g.commit_interval.0.is_zero()
                || g.heartbeat_interval >= g.session_timeout
            {
                return Err(format!(
                    "group {}: intervals must be positive and heartbeats more frequent than \
                     the session timeout",
                    g.name
                ));
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let actions = [
                f.crash.is_some(),
                f.pause.is_some(),
                f.partition.is_some(),
                f.slow_link.is_some(),
                f.flaky_link.is_some(),
                f.disconnect.is_some(),
                f.bit_flip.is_some(),
                f.disk.is_some(),
                f.isolate.is_some(),
                f.oneway.is_some(),
                f.flap.is_some(),
            ];
            if actions.iter().filter(|a| **a).count() != 1 {
                return Err(format!(
                    "fault #{} (at {:?}) must name exactly one of crash, pause, partition, \
                     slow_link, flaky_link, disconnect, bit_flip, disk, isolate, oneway, flap",
                    i + 1,
                    f.at.0
                ));
            }
            if !cluster && (f.isolate.is_some() || f.oneway.is_some() || f.flap.is_some()) {
                return Err(format!(
                    "fault #{}: isolate, oneway and flap need a [cluster] table",
                    i + 1
                ));
            }
            if f.period.is_some() && f.flap.is_none() {
                return Err(format!("fault #{}: period needs flap", i + 1));
            }
            // Node 0: the active controller when the fault comes due (cluster only).
            for n in [
                f.crash,
                f.pause,
                f.partition,
                f.slow_link,
                f.flaky_link,
                f.isolate,
                f.oneway,
                f.flap,
            ]
            .into_iter()
            .flatten()
            {
                if !(node_ok(n) || (cluster && n == 0)) {
                    return Err(format!(
                        "fault #{} names node {n}, which does not exist{}",
                        i + 1,
                        if cluster {
                            ""
                        } else {
                            " (node 0, the controller, needs [cluster])"
                        }
                    ));
                }
            }
            for n in [f.bit_flip, f.disk].into_iter().flatten() {
                if !node_ok(n) {
                    return Err(format!(
                        "fault #{} names node {n}, which does not exist",
                        i + 1
                    ));
                }
            }
            if f.target.is_some() && f.bit_flip.is_none() {
                return Err(format!("fault #{}: target needs bit_flip", i + 1));
            }
            if f.disk.is_some() && f.set.is_none() {
                return Err(format!("fault #{}: disk needs `set`", i + 1));
            }
            if f.at >= self.duration {
                return Err(format!(
                    "fault #{} is at or after the end of the fault phase",
                    i + 1
                ));
            }
        }
        if let Some(after) = self.expect.writes_resume_after {
            if after >= self.duration {
                return Err(
                    "expect.writes_resume_after must fall inside the fault phase, before the heal"
                        .into(),
                );
            }
            if self.producers.iter().all(|p| p.acks == 0) {
                return Err(
                    "expect.writes_resume_after needs a producer that is acknowledged (acks 1 or -1)"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("1.5s").unwrap(),
            Duration::from_millis(1_500)
        );
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn a_fault_names_one_action_and_typos_are_refused() {
        let base = r#"
            name = "x"
            duration = "2s"
            [[topics]]
            name = "t"
        "#;
        assert!(Scenario::parse(base).is_ok());
        let two = format!("{base}\n[[faults]]\nat = \"1s\"\ncrash = 1\npause = 1\n");
        assert!(Scenario::parse(&two).is_err());
        let typo = format!("{base}\n[[faults]]\nat = \"1s\"\ncrsh = 1\n");
        assert!(Scenario::parse(&typo).is_err());
        let late = format!("{base}\n[[faults]]\nat = \"3s\"\ncrash = 1\n");
        assert!(Scenario::parse(&late).is_err());
    }

    #[test]
    fn groups_parse_with_defaults_and_bad_ones_are_refused() {
        let base = r#"
            name = "x"
            duration = "2s"
            [[topics]]
            name = "t"
            partitions = 3
        "#;
        let ok = format!("{base}\n[[groups]]\nname = \"g\"\ntopic = \"t\"\ncrash_rate = 0.5\n");
        let s = Scenario::parse(&ok).unwrap();
        assert_eq!(s.groups[0].members, 2);
        assert_eq!(s.groups[0].session_timeout.ms(), 1_500);
        assert_eq!(s.groups[0].crash_rate, 0.5);
        for bad in [
            "name = \"g\"\ntopic = \"u\"",
            "name = \"g\"\ntopic = \"t\"\nmembers = 0",
            "name = \"g\"\ntopic = \"t\"\ncrash_rate = -1.0",
            "name = \"g\"\ntopic = \"t\"\nheartbeat_interval = \"2s\"",
            "name = \"g\"\ntopic = \"t\"\nmembrs = 2",
        ] {
            let text = format!("{base}\n[[groups]]\n{bad}\n");
            assert!(Scenario::parse(&text).is_err(), "{bad}");
        }
        let twice = format!("{ok}\n[[groups]]\nname = \"g\"\ntopic = \"t\"\n");
        assert!(Scenario::parse(&twice).is_err());
    }

    #[test]
    fn a_cluster_table_enables_peer_faults_and_the_controller_target_and_refuses_groups() {
        let base = r#"
            name = "x"
            duration = "2s"
            nodes = 3
            [[topics]]
            name = "t"
            node = 2
        "#;
        let plain = Scenario::parse(base).unwrap();
        assert!(plain.cluster.is_none());
        let cluster =
            format!("{base}\n[cluster]\nelection_timeout = \"300ms\"\nsession_timeout = \"1s\"\n");
        let s = Scenario::parse(&cluster).unwrap();
        let c = s.cluster.as_ref().unwrap();
        assert_eq!(c.election_timeout.map(Dur::ms), Some(300));
        assert_eq!(c.session_timeout.map(Dur::ms), Some(1_000));
        assert_eq!(c.heartbeat_interval, None);
        for fault in [
            "isolate = 0\nfor = \"1s\"",
            "oneway = 3",
            "flap = 1\nperiod = \"100ms\"",
            "crash = 0",
        ] {
            let with = format!("{cluster}\n[[faults]]\nat = \"1s\"\n{fault}\n");
            assert!(Scenario::parse(&with).is_ok(), "{fault}");
            let without = format!("{base}\n[[faults]]\nat = \"1s\"\n{fault}\n");
            assert!(
                Scenario::parse(&without).is_err(),
                "{fault} without [cluster]"
            );
        }
        let bad = [
            "[[faults]]\nat = \"1s\"\nbit_flip = 0",
            "[[faults]]\nat = \"1s\"\ncrash = 1\nperiod = \"1s\"",
            "[[groups]]\nname = \"g\"\ntopic = \"t\"",
        ];
        for b in bad {
            assert!(
                Scenario::parse(&format!("{cluster}\n{b}\n")).is_err(),
                "{b}"
            );
        }
        let groups = format!("{cluster}\n[[groups]]\nname = \"g\"\ntopic = \"t\"\n");
        let err = Scenario::parse(&groups).unwrap_err().to_string();
        assert!(err.contains("[[groups]]"), "{err}");
        let random = format!("{base}\n[random]\ncontroller_crash_rate = 0.5\n");
        assert!(Scenario::parse(&random).is_err());
        let typo = format!("{base}\n[cluster]\nelection_timout = \"1s\"\n");
        assert!(Scenario::parse(&typo).is_err());
    }

    #[test]
    fn a_bit_flip_may_target_the_newest_segments_and_only_a_bit_flip_takes_a_target() {
        let base = r#"
            name = "x"
            duration = "2s"
            [[topics]]
            name = "t"
        "#;
        let rot = format!(
            "{base}\n[[faults]]\nat = \"1s\"\nbit_flip = 1\ncount = 2\ntarget = \"newest-segment\"\n"
        );
        let s = Scenario::parse(&rot).unwrap();
        assert_eq!(s.faults[0].target, Some(RotTarget::NewestSegment));
        assert_eq!(s.faults[0].count, Some(2));
        let any =
            format!("{base}\n[[faults]]\nat = \"1s\"\nbit_flip = 1\ntarget = \"any-segment\"\n");
        assert_eq!(
            Scenario::parse(&any).unwrap().faults[0].target,
            Some(RotTarget::AnySegment)
        );
        let typo = format!("{base}\n[[faults]]\nat = \"1s\"\nbit_flip = 1\ntarget = \"newest\"\n");
        assert!(Scenario::parse(&typo).is_err());
        let stray =
            format!("{base}\n[[faults]]\nat = \"1s\"\ncrash = 1\ntarget = \"newest-segment\"\n");
        assert!(Scenario::parse(&stray).is_err());
    }
}
