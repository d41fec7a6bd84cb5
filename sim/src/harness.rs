//! The harness: turns a [`Scenario`] and a seed into one simulated run and its report.
//!
//! One ChaCha stream seeded from the run's seed draws, in a fixed order: turmoil's seed,
//! each node's disk seed and driver seed, each client's seed, then the random faults. The
//! whole fault schedule is drawn before the simulation starts, so the timeline can be read
//! as data. The harness steps turmoil one tick (1 ms) at a time and applies each due event
//! between ticks: crashes (`sim.crash`, then the disk's crash loss, then `sim.bounce` after
//! the downtime), pauses (every link of the node held), partitions, slow or flaky links,
//! client disconnects, bit flips at rest (in any segment file, or only in each partition's
//! newest one, which the next recovery must CRC-check: see [`RotTarget`]), disk faults on
//! and off. Each fault, scheduled or random, is resolved to a [`Fault`] (every default
//! filled in) and recorded in [`RunReport::faults`] as it comes due; written back as
//! `[[faults]]` ([`InjectedFault::to_spec`]) with `[random]` off, the list replays the same
//! run under the same seed, because the random faults are the last draws from its stream
//! (`keel-sim shrink` relies on it; `tests/shrink.rs` checks it).
//!
//! Two phases: faults until `duration`, then everything healed at once (disk faults off,
//! links repaired, crashed nodes restarted) while consumers catch up and a fresh reader
//! reads every partition to its end. Node invariants are asserted inside the node after
//! every input (debug builds); a panic anywhere in the simulation fails the run. A node
//! whose driver stops with an error (say, its disk failed during recovery) is restarted
//! after [`SUPERVISOR_BACKOFF_MS`], as a supervisor would; one still down after the heal
//! is reported as `node-down`.
//!
//! A scenario with a `[cluster]` table runs every node as one broker of a cluster
//! (`run_cluster_member`, every node a voter, peers on [`PEER_PORT`]); the links between
//! brokers then take the network faults too, and `isolate`, `oneway` and `flap` strike only
//! them ([`World::sync_peer_link`] sets each from every fault in force). A fault on node 0
//! strikes the node last seen as the active controller, resolved when it comes due and
//! recorded with that node. The setup and the quorum observer are in
//! [`workload::cluster`]; the observer is exempt from network faults (a crash still cuts
//! its links, as every link of the crashed node), and what it saw is checked by
//! [`checker::cluster`] and hashed into the trace.

use crate::checker::{self, Anomaly, CheckReport, Finding};
use crate::disk::{CrashLoss, DiskEvent, DiskFaults, SimDisk};
use crate::history::ClusterRecord;
use crate::history::{fmt_ms, History, Millis};
use crate::net::Turmoil;
use crate::scenario::{Dur, FaultSpec, RotTarget, Scenario};
use crate::trace::Fnv64;
use crate::workload::cluster::{ClusterTopic, ObserverCfg};
use crate::workload::group::GroupMemberCfg;
use crate::workload::{self, ConsumerCfg, Plan, ProducerCfg, Shared, TopicInfo, BROKER_PORT};
use keel_core::node::{ClusterConfig, NodeConfig};
use keel_core::storage::Storage;
use keel_core::time::Instant;
use keel_net::driver::{self, DriverOptions, Peers, PEER_IDLE_TIMEOUT, PEER_RECONNECT_BACKOFF};
use keel_net::metrics::Metrics;
use keel_net::network::{Network, SyncMode};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, UNIX_EPOCH};

/// A change to every node's configuration, applied last (planted bugs, experiments).
pub type ConfigTweak = Arc<dyn Fn(&mut NodeConfig) + Send + Sync>;

/// The simulated wall clock at the start of every run: fixed, so timestamps repeat.
pub const EPOCH_SECS: u64 = 1_700_000_000;

/// The port every broker of a cluster scenario listens on for its peers.
pub const PEER_PORT: u16 = 9093;

/// The quorum observer's host (cluster scenarios).
const OBSERVER: &str = "quorum-observer";

/// How long after a node's driver stopped on its own the harness restarts it.
pub const SUPERVISOR_BACKOFF_MS: Millis = 500;

/// After the heal, how long past the longest request deadline before the history counts as
/// settled (consumers' "caught up" and the final read start then).
const SETTLE_MARGIN_MS: Millis = 500;

/// How one run is made.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub seed: u64,
    pub tweak: Option<ConfigTweak>,
}

/// What one run did and whether it passed.
#[derive(Debug)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub passed: bool,
    pub trace_hash: u64,
    /// Simulated milliseconds the run took.
    pub sim_ms: Millis,
    pub history: History,
    pub check: CheckReport,
    /// Findings the scenario does not tolerate.
    pub unexpected: Vec<Finding>,
    /// Anomaly kinds found but tolerated, with the scenario's reason.
    pub tolerated: BTreeMap<Anomaly, usize>,
    /// The simulation itself failed (a panic, a client that never finished).
    pub error: Option<String>,
    /// Every fault that came due, scheduled or random, in schedule order (the order a
    /// scenario file lists them in to replay them: see [`InjectedFault::to_spec`]).
    pub faults: Vec<InjectedFault>,
}

/// One fault of a run's schedule as it came due: when, what, whom, with which parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedFault {
    pub at_ms: Millis,
    pub fault: Fault,
    /// It did nothing: a crash of a node already down. Kept in the list so that the list
    /// written back as `[[faults]]` replays the same run (the skip is on its timeline).
    pub skipped: bool,
}

/// A fault with every default resolved: what a `[[faults]]` entry or a random draw
/// becomes in the schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Crash `node`, apply `loss` to its disk, restart it `down_ms` later.
    Crash {
        node: u32,
        loss: CrashLoss,
        down_ms: Millis,
    },
    /// Hold every link of `node` for `for_ms`.
    Pause { node: u32, for_ms: Millis },
    /// Cut `node` off from every client for `for_ms`.
    Partition { node: u32, for_ms: Millis },
    /// Latency `min_ms..max_ms` on every link of `node` for `for_ms`.
    SlowLink {
        node: u32,
        min_ms: Millis,
        max_ms: Millis,
        for_ms: Millis,
    },
    /// Messages on every link of `node` fail with `fail_rate` for `for_ms`.
    FlakyLink {
        node: u32,
        fail_rate: f64,
        for_ms: Millis,
    },
    /// Every client drops its connection.
    Disconnect,
    /// `count` bit flips at rest in `node`'s segment files chosen by `target`.
    BitFlip {
        node: u32,
        count: u32,
        target: RotTarget,
    },
    /// `node`'s disk faults replaced by `faults`, for `for_ms` or (`None`) to the heal.
    Disk {
        node: u32,
        faults: DiskFaults,
        for_ms: Option<Millis>,
    },
    /// Cluster: `node` cut from every other broker, both ways, for `for_ms`.
    Isolate { node: u32, for_ms: Millis },
    /// Cluster: `node`'s messages to every other broker dropped for `for_ms`.
    Oneway { node: u32, for_ms: Millis },
    /// Cluster: `node`'s links to every other broker down, up, down... every `period_ms`
    /// for `for_ms`.
    Flap {
        node: u32,
        period_ms: Millis,
        for_ms: Millis,
    },
}

impl Fault {
    /// The kind, as a `[[faults]]` entry names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "crash",
            Fault::Pause { .. } => "pause",
            Fault::Partition { .. } => "partition",
            Fault::SlowLink { .. } => "slow_link",
            Fault::FlakyLink { .. } => "flaky_link",
            Fault::Disconnect => "disconnect",
            Fault::BitFlip { .. } => "bit_flip",
            Fault::Disk { .. } => "disk",
            Fault::Isolate { .. } => "isolate",
            Fault::Oneway { .. } => "oneway",
            Fault::Flap { .. } => "flap",
        }
    }

    /// The node it strikes; `None` for a disconnect (every client).
    pub fn node(&self) -> Option<u32> {
        match self {
            Fault::Crash { node, .. }
            | Fault::Pause { node, .. }
            | Fault::Partition { node, .. }
            | Fault::SlowLink { node, .. }
            | Fault::FlakyLink { node, .. }
            | Fault::BitFlip { node, .. }
            | Fault::Disk { node, .. }
            | Fault::Isolate { node, .. }
            | Fault::Oneway { node, .. }
            | Fault::Flap { node, .. } => Some(*node),
            Fault::Disconnect => None,
        }
    }

    /// The same fault on node `to` (a fault aimed at the controller, once resolved).
    fn on(mut self, to: u32) -> Fault {
        match &mut self {
            Fault::Crash { node, .. }
            | Fault::Pause { node, .. }
            | Fault::Partition { node, .. }
            | Fault::SlowLink { node, .. }
            | Fault::FlakyLink { node, .. }
            | Fault::BitFlip { node, .. }
            | Fault::Disk { node, .. }
            | Fault::Isolate { node, .. }
            | Fault::Oneway { node, .. }
            | Fault::Flap { node, .. } => *node = to,
            Fault::Disconnect => {}
        }
        self
    }

    /// The action that starts it and, for a timed fault, the one that ends it with its delay.
    fn actions(&self) -> (Action, Option<(Millis, Action)>) {
        match self.clone() {
            Fault::Crash {
                node,
                loss,
                down_ms,
            } => (
                Action::Crash {
                    node,
                    loss,
                    down_ms,
                },
                None,
            ),
            Fault::Pause { node, for_ms } => {
                (Action::Pause(node), Some((for_ms, Action::Unpause(node))))
            }
            Fault::Partition { node, for_ms } => (
                Action::Partition(node),
                Some((for_ms, Action::Unpartition(node))),
            ),
            Fault::SlowLink {
                node,
                min_ms,
                max_ms,
                for_ms,
            } => (
                Action::SlowLink {
                    node,
                    min: Duration::from_millis(min_ms),
                    max: Duration::from_millis(max_ms),
                },
                Some((for_ms, Action::RestoreLink(node))),
            ),
            Fault::FlakyLink {
                node,
                fail_rate,
                for_ms,
            } => (
                Action::FlakyLink { node, fail_rate },
                Some((for_ms, Action::SteadyLink(node))),
            ),
            Fault::Disconnect => (Action::Disconnect, None),
            Fault::BitFlip {
                node,
                count,
                target,
            } => (
                Action::BitFlip {
                    node,
                    count,
                    target,
                },
                None,
            ),
            Fault::Disk {
                node,
                faults,
                for_ms,
            } => (
                Action::DiskFaults { node, faults },
                for_ms.map(|ms| (ms, Action::DiskRestore(node))),
            ),
            Fault::Isolate { node, for_ms } => (
                Action::Isolate(node),
                Some((for_ms, Action::Unisolate(node))),
            ),
            Fault::Oneway { node, for_ms } => {
                (Action::Oneway(node), Some((for_ms, Action::Unoneway(node))))
            }
            Fault::Flap {
                node,
                period_ms,
                for_ms,
            } => (
                Action::FlapStart {
                    node,
                    period_ms,
                    for_ms,
                },
                Some((for_ms, Action::FlapEnd(node))),
            ),
        }
    }
}

impl InjectedFault {
    /// The `[[faults]]` entry that schedules exactly this fault (every parameter explicit,
    /// so the scenario's defaults do not matter).
    pub fn to_spec(&self) -> FaultSpec {
        let at = Dur::from_ms(self.at_ms);
        let lasts = |ms: Millis| Some(Dur::from_ms(ms));
        match self.fault.clone() {
            Fault::Crash {
                node,
                loss,
                down_ms,
            } => FaultSpec {
                at,
                crash: Some(node),
                loss: Some(loss),
                down: lasts(down_ms),
                ..FaultSpec::default()
            },
            Fault::Pause { node, for_ms } => FaultSpec {
                at,
                pause: Some(node),
                lasts: lasts(for_ms),
                ..FaultSpec::default()
            },
            Fault::Partition { node, for_ms } => FaultSpec {
                at,
                partition: Some(node),
                lasts: lasts(for_ms),
                ..FaultSpec::default()
            },
            Fault::SlowLink {
                node,
                min_ms,
                max_ms,
                for_ms,
            } => FaultSpec {
                at,
                slow_link: Some(node),
                min_latency: lasts(min_ms),
                max_latency: lasts(max_ms),
                lasts: lasts(for_ms),
                ..FaultSpec::default()
            },
            Fault::FlakyLink {
                node,
                fail_rate,
                for_ms,
            } => FaultSpec {
                at,
                flaky_link: Some(node),
                fail_rate: Some(fail_rate),
                lasts: lasts(for_ms),
                ..FaultSpec::default()
            },
            Fault::Disconnect => FaultSpec {
                at,
                disconnect: Some(true),
                ..FaultSpec::default()
            },
            Fault::BitFlip {
                node,
                count,
                target,
            } => FaultSpec {
                at,
                bit_flip: Some(node),
                count: Some(count),
                target: Some(target),
                ..FaultSpec::default()
            },
            Fault::Disk {
                node,
                faults,
                for_ms,
            } => FaultSpec {
                at,
                disk: Some(node),
                set: Some(faults),
                lasts: for_ms.map(Dur::from_ms),
                ..FaultSpec::default()
            },
            Fault::Isolate { node, for_ms } => FaultSpec {
                at,
                isolate: Some(node),
                lasts: lasts(for_ms),
                ..FaultSpec::default()
            },
            Fault::Oneway { node, for_ms } => FaultSpec {
                at,
                oneway: Some(node),
                lasts: lasts(for_ms),
                ..FaultSpec::default()
            },
            Fault::Flap {
                node,
                period_ms,
                for_ms,
            } => FaultSpec {
                at,
                flap: Some(node),
                period: lasts(period_ms),
                lasts: lasts(for_ms),
                ..FaultSpec::default()
            },
        }
    }
}

impl std::fmt::Display for InjectedFault {
    /// One line: `  1.500s crash keel-1 loss=Mixed down=300ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", fmt_ms(self.at_ms), self.fault.kind())?;
        match &self.fault {
            Fault::Disconnect => write!(f, " every client")?,
            other => write!(f, " {}", host(other.node().unwrap_or_default()))?,
        }
        match &self.fault {
            Fault::Crash { loss, down_ms, .. } => write!(f, " loss={loss:?} down={down_ms}ms")?,
            Fault::Pause { for_ms, .. }
            | Fault::Partition { for_ms, .. }
            | Fault::Isolate { for_ms, .. }
            | Fault::Oneway { for_ms, .. } => write!(f, " for={for_ms}ms")?,
            Fault::Flap {
                period_ms, for_ms, ..
            } => write!(f, " period={period_ms}ms for={for_ms}ms")?,
            Fault::SlowLink {
                min_ms,
                max_ms,
                for_ms,
                ..
            } => write!(f, " latency={min_ms}..{max_ms}ms for={for_ms}ms")?,
            Fault::FlakyLink {
                fail_rate, for_ms, ..
            } => write!(f, " fail_rate={fail_rate} for={for_ms}ms")?,
            Fault::Disconnect => {}
            Fault::BitFlip { count, target, .. } => write!(f, " count={count} {target:?}")?,
            Fault::Disk { faults, for_ms, .. } => {
                write!(f, " {faults:?}")?;
                if let Some(ms) = for_ms {
                    write!(f, " for={ms}ms")?;
                }
            }
        }
        if self.skipped {
            write!(f, " (skipped: already down)")?;
        }
        Ok(())
    }
}

/// The faults of a run in a line: `7 faults: 3 crash, 2 pause, 2 disconnect`.
pub fn summarize_faults(faults: &[InjectedFault]) -> String {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in faults {
        *kinds.entry(f.fault.kind()).or_default() += 1;
    }
    let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let skipped = faults.iter().filter(|f| f.skipped).count();
    format!(
        "{} faults{}{}{}",
        faults.len(),
        if parts.is_empty() { "" } else { ": " },
        parts.join(", "),
        if skipped > 0 {
            format!(" ({skipped} skipped)")
        } else {
            String::new()
        }
    )
}

impl RunReport {
    /// Every anomaly kind found, tolerated or not.
    pub fn anomalies(&self) -> BTreeSet<Anomaly> {
        self.check.kinds()
    }
}

/// One scheduled thing to do between ticks.
#[derive(Debug, Clone)]
enum Action {
    Crash {
        node: u32,
        loss: CrashLoss,
        down_ms: Millis,
    },
    Restart {
        node: u32,
        why: &'static str,
    },
    Pause(u32),
    Unpause(u32),
    Partition(u32),
    Unpartition(u32),
    SlowLink {
        node: u32,
        min: Duration,
        max: Duration,
    },
    RestoreLink(u32),
    FlakyLink {
        node: u32,
        fail_rate: f64,
    },
    SteadyLink(u32),
    Disconnect,
    BitFlip {
        node: u32,
        count: u32,
        target: RotTarget,
    },
    DiskFaults {
        node: u32,
        faults: DiskFaults,
    },
    DiskRestore(u32),
    Isolate(u32),
    Unisolate(u32),
    Oneway(u32),
    Unoneway(u32),
    FlapStart {
        node: u32,
        period_ms: Millis,
        for_ms: Millis,
    },
    FlapToggle {
        node: u32,
        until: Millis,
        period_ms: Millis,
    },
    FlapEnd(u32),
    /// A fault aimed at the controller (node 0), resolved to a node when it comes due.
    AtController,
    Heal,
}

/// Events by (time, insertion order); an action that starts a fault carries it, to be
/// recorded when it comes due.
#[derive(Default)]
struct Schedule {
    events: BTreeMap<(Millis, u64), (Action, Option<Fault>)>,
    next: u64,
}

impl Schedule {
    fn push(&mut self, at: Millis, action: Action) {
        self.insert(at, action, None);
    }

    /// Schedules `fault` at `at`: its start, then (a timed fault) its end.
    fn push_fault(&mut self, at: Millis, fault: Fault) {
        if fault.node() == Some(0) {
            // Its node and so its end are known only when it comes due.
            self.insert(at, Action::AtController, Some(fault));
            return;
        }
        let (start, end) = fault.actions();
        self.insert(at, start, Some(fault));
        if let Some((after, end)) = end {
            self.push(at + after, end);
        }
    }

    fn insert(&mut self, at: Millis, action: Action, fault: Option<Fault>) {
        self.events.insert((at, self.next), (action, fault));
        self.next += 1;
    }

    fn pop_due(&mut self, now: Millis) -> Option<(Millis, Action, Option<Fault>)> {
        let entry = self.events.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let ((at, _), (action, fault)) = entry.remove_entry();
        Some((at, action, fault))
    }
}

fn host(node: u32) -> String {
    format!("keel-{node}")
}

thread_local! {
    /// Panics raised on this thread during the current run.
    static PANICS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Records every panic on a simulation thread (turmoil runs hosts on the caller's thread),
/// then lets the previous hook print it.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            PANICS.with(|p| p.borrow_mut().push(format!("{message}{at}")));
            previous(info);
        }));
    });
}

/// Runs `scenario` once with `options.seed`.
pub fn run(scenario: &Scenario, options: &RunOptions) -> RunReport {
    install_panic_hook();
    PANICS.with(|p| p.borrow_mut().clear());
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);

    let max_timeout_ms = scenario
        .producers
        .iter()
        .map(|p| p.timeout.ms())
        .chain(
            scenario
                .consumers
                .iter()
                .map(|c| c.timeout.ms() + c.max_wait.ms()),
        )
        .chain(
            scenario
                .groups
                .iter()
                .map(|g| g.timeout.ms() + g.max_wait.ms()),
        )
        .max()
        .unwrap_or(1_000);
    let fault_end_ms = scenario.duration.ms();
    let plan = Plan {
        fault_end_ms,
        settled_ms: fault_end_ms + max_timeout_ms + SETTLE_MARGIN_MS,
        end_ms: fault_end_ms
            + scenario
                .heal
                .ms()
                .max(max_timeout_ms + SETTLE_MARGIN_MS + 1_000),
    };

    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(rng.next_u64())
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
        .tick_duration(Duration::from_millis(1))
        .simulation_duration(Duration::from_millis(plan.end_ms + 2_000))
        .min_message_latency(scenario.network.min_latency.0)
        .max_message_latency(scenario.network.max_latency.0);
    let mut sim = builder.build();
    let shared = Shared::new();

    // Brokers.
    let mut disks: BTreeMap<u32, SimDisk> = BTreeMap::new();
    for node in 1..=scenario.nodes {
        let disk = SimDisk::new(rng.next_u64(), scenario.disk.clone());
        let driver_seed = rng.next_u64();
        let config = node_config(scenario, node, options.tweak.as_ref());
        disks.insert(node, disk.clone());
        let shared = shared.clone();
        let starts = std::cell::Cell::new(0u64);
        sim.host(host(node), move || {
            let start = starts.get();
            starts.set(start + 1);
            broker(
                node,
                config.clone(),
                disk.clone(),
                driver_seed.wrapping_add(start),
                shared.clone(),
            )
        });
    }

    // Clients.
    let topics: Vec<TopicInfo> = scenario
        .topics
        .iter()
        .map(|t| TopicInfo {
            name: t.name.clone(),
            partitions: t.partitions,
            host: host(t.node),
            configs: t
                .configs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
        .collect();
    let topic = |name: &str| {
        topics
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .expect("validated: every workload names a known topic")
    };
    for t in &scenario.topics {
        shared.history().topic_nodes.insert(t.name.clone(), t.node);
    }
    let mut clients = vec!["setup".to_string()];
    let mut observer = None;
    if let Some(spec) = &scenario.cluster {
        let cluster_topics: Vec<ClusterTopic> = topics
            .iter()
            .zip(&scenario.topics)
            .map(|(info, t)| ClusterTopic {
                info: info.clone(),
                node: t.node,
            })
            .collect();
        shared.history().cluster = Some(ClusterRecord::default());
        sim.client(
            "setup",
            workload::cluster::setup(cluster_topics.clone(), scenario.nodes, shared.clone()),
        );
        let cfg = ObserverCfg {
            nodes: scenario.nodes,
            every: spec
                .observe_every
                .map_or(Duration::from_millis(50), |d| d.0),
            topics: cluster_topics,
        };
        sim.client(
            OBSERVER,
            workload::cluster::observer(cfg, shared.clone(), plan),
        );
        observer = Some(OBSERVER.to_string());
    } else {
        sim.client("setup", workload::setup(topics.clone(), shared.clone()));
    }
    let mut producer_id = 0;
    for spec in &scenario.producers {
        for _ in 0..spec.count {
            producer_id += 1;
            let cfg = ProducerCfg {
                name: format!("producer-{producer_id}"),
                id: producer_id,
                topic: topic(&spec.topic),
                acks: spec.acks,
                interval: Duration::from_secs_f64(f64::from(spec.batch) / spec.rate),
                batch: spec.batch,
                record_bytes: spec.record_bytes,
                keys: spec.keys,
                timeout: spec.timeout.0,
                idempotent: spec.idempotent,
                seed: rng.next_u64(),
            };
            clients.push(cfg.name.clone());
            sim.client(
                cfg.name.clone(),
                workload::producer(cfg, shared.clone(), plan),
            );
        }
    }
    let mut consumer_id = 0;
    for spec in &scenario.consumers {
        for _ in 0..spec.count {
            consumer_id += 1;
            let cfg = ConsumerCfg {
                name: format!("consumer-{consumer_id}"),
                topic: topic(&spec.topic),
                max_wait: spec.max_wait.0,
                max_bytes: spec.max_bytes,
                timeout: spec.timeout.0,
                sessions: spec.sessions,
                start_after: spec.start_after.0,
            };
            clients.push(cfg.name.clone());
            sim.client(
                cfg.name.clone(),
                workload::consumer(cfg, shared.clone(), plan),
            );
        }
    }
    for spec in &scenario.groups {
        for i in 1..=spec.members {
            let cfg = GroupMemberCfg {
                name: format!("{}/consumer-{i}", spec.name),
                group: spec.name.clone(),
                topic: topic(&spec.topic),
                session_timeout: spec.session_timeout.0,
                rebalance_timeout: spec.rebalance_timeout.0,
                heartbeat_interval: spec.heartbeat_interval.0,
                commit_interval: spec.commit_interval.0,
                crash_rate: spec.crash_rate,
                crash_down: spec.crash_down.0,
                max_wait: spec.max_wait.0,
                max_bytes: spec.max_bytes,
                timeout: spec.timeout.0,
                seed: rng.next_u64(),
            };
            clients.push(cfg.name.clone());
            sim.client(
                cfg.name.clone(),
                workload::group::group_member(cfg, shared.clone(), plan),
            );
        }
        shared
            .history()
            .group_topics
            .insert(spec.name.clone(), spec.topic.clone());
    }
    clients.push("reader".to_string());
    sim.client(
        "reader",
        workload::final_reader(topics.clone(), shared.clone(), plan),
    );

    let mut schedule = Schedule::default();
    for f in &scenario.faults {
        schedule_fault(&mut schedule, scenario, f, fault_end_ms);
    }
    schedule_random(&mut schedule, scenario, &mut rng, fault_end_ms);
    schedule.push(fault_end_ms, Action::Heal);

    // The run.
    let mut world = World {
        scenario,
        sim,
        disks,
        clients,
        shared: shared.clone(),
        down: BTreeSet::new(),
        paused: BTreeSet::new(),
        partitioned: BTreeSet::new(),
        healed: false,
        cluster: scenario.cluster.is_some(),
        observer,
        isolated: BTreeSet::new(),
        oneway: BTreeSet::new(),
        flap_down: BTreeSet::new(),
    };
    let mut error = None;
    let mut faults = Vec::new();
    loop {
        let now = world.sim.elapsed().as_millis() as Millis;
        while let Some((at, action, fault)) = schedule.pop_due(now) {
            let (action, fault) = match (action, fault) {
                (Action::AtController, Some(fault)) => {
                    let node = world.controller(now);
                    let fault = fault.on(node);
                    let (start, end) = fault.actions();
                    if let Some((after, end)) = end {
                        schedule.push(at + after, end);
                    }
                    (start, Some(fault))
                }
                other => other,
            };
            let applied = world.apply(now, action, &mut schedule);
            if let Some(fault) = fault {
                faults.push(InjectedFault {
                    at_ms: at,
                    fault,
                    skipped: !applied,
                });
            }
        }
        let step = world.sim.step();
        world.collect_disk_events(now);
        world.supervise(now, &mut schedule);
        match step {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        if PANICS.with(|p| !p.borrow().is_empty()) {
            break;
        }
    }
    let sim_ms = world.sim.elapsed().as_millis() as Millis;
    let still_down: Vec<u32> = (1..=scenario.nodes)
        .filter(|n| !world.sim.is_host_running(host(*n)))
        .collect();
    drop(world);

    let mut history = std::mem::take(&mut *shared.history());
    let consumed: BTreeSet<String> = scenario.consumers.iter().map(|c| c.topic.clone()).collect();
    let mut check = checker::check(&history, &consumed);
    check
        .findings
        .extend(checker::cluster::check(&history, sim_ms));
    if let Some(after) = scenario.expect.writes_resume_after {
        check.findings.extend(checker::resume::check_writes_resume(
            &history,
            after.ms(),
            fault_end_ms,
        ));
    }
    let panics = PANICS.with(|p| std::mem::take(&mut *p.borrow_mut()));
    for panic in &panics {
        check.findings.push(Finding {
            anomaly: Anomaly::Invariant,
            at_ms: sim_ms,
            detail: format!("panic: {panic}"),
        });
        history.note(sim_ms, format!("PANIC {panic}"));
    }
    if panics.is_empty() && error.is_none() {
        for node in still_down {
            check.findings.push(Finding {
                anomaly: Anomaly::NodeDown,
                at_ms: sim_ms,
                detail: format!(
                    "{} was not running at the end, after every fault was healed",
                    host(node)
                ),
            });
        }
    }
    if !panics.is_empty() {
        // The panic is the finding; turmoil's error is its echo.
        error = None;
    }
    let tolerate: BTreeSet<Anomaly> = scenario.expect.tolerate.iter().copied().collect();
    let unexpected: Vec<Finding> = check
        .findings
        .iter()
        .filter(|f| !tolerate.contains(&f.anomaly))
        .cloned()
        .collect();
    let mut tolerated = BTreeMap::new();
    for f in check
        .findings
        .iter()
        .filter(|f| tolerate.contains(&f.anomaly))
    {
        *tolerated.entry(f.anomaly).or_insert(0) += 1;
    }
    let trace_hash = trace_hash(&history, &check);
    RunReport {
        scenario: scenario.name.clone(),
        seed: options.seed,
        passed: unexpected.is_empty() && error.is_none(),
        trace_hash,
        sim_ms,
        history,
        check,
        unexpected,
        tolerated,
        error,
        faults,
    }
}

/// Hashes the ordered history, the timeline (faults, disk events, notes) and the findings.
fn trace_hash(history: &History, check: &CheckReport) -> u64 {
    let mut h = Fnv64::new();
    for op in &history.ops {
        h.write_str(&format!("{op:?}"));
    }
    for (tp, read) in &history.final_read {
        h.write_str(&format!("{tp:?} {read:?}"));
    }
    for (at, event) in &history.timeline {
        h.write_str(&format!("{at} {event}"));
    }
    for f in &check.findings {
        h.write_str(&f.to_string());
    }
    // Cluster runs only, so every other scenario keeps its hashes.
    if let Some(cluster) = &history.cluster {
        h.write_str(&format!("{cluster:?}"));
    }
    h.finish()
}

/// A node's configuration: Keel's defaults, the scenario's tweaks, then the run's hook.
fn node_config(scenario: &Scenario, node: u32, tweak: Option<&ConfigTweak>) -> NodeConfig {
    let mut config = NodeConfig {
        node_id: keel_core::ids::NodeId(node as i32),
        advertised_host: host(node),
        advertised_port: i32::from(BROKER_PORT),
        auto_create_topics: false,
        ..NodeConfig::default()
    };
    if let Some(bytes) = scenario.node.segment_bytes {
        config.log.segment_bytes = bytes;
    }
    if let Some(bytes) = scenario.node.index_interval_bytes {
        config.log.index_interval_bytes = bytes;
    }
    if let Some(partitions) = scenario.node.offsets_topic_partitions {
        config.group.offsets_topic_num_partitions = partitions;
    }
    if let Some(delay) = scenario.node.group_initial_rebalance_delay {
        config.group.initial_rebalance_delay_ms = i32::try_from(delay.ms()).unwrap_or(i32::MAX);
    }
    if let Some(min) = scenario.node.group_min_session_timeout {
        config.group.min_session_timeout_ms = i32::try_from(min.ms()).unwrap_or(i32::MAX);
    }
    if let Some(bytes) = scenario.node.min_free_bytes {
        config.min_free_bytes = Some(bytes);
    }
    if let Some(spec) = &scenario.cluster {
        let voters = (1..=scenario.nodes)
            .map(|n| keel_core::ids::NodeId(n as i32))
            .collect();
        let mut cluster = ClusterConfig::new(voters);
        if let Some(d) = spec.election_timeout {
            cluster.election_timeout_ms = d.ms();
        }
        if let Some(d) = spec.heartbeat_interval {
            cluster.heartbeat_interval_ms = d.ms();
        }
        if let Some(d) = spec.session_timeout {
            cluster.session_timeout_ms = d.ms();
        }
        if let Some(n) = spec.snapshot_every {
            cluster.snapshot_every = n;
        }
        config.cluster = Some(cluster);
    }
    if let Some(tweak) = tweak {
        tweak(&mut config);
    }
    config
}

/// One broker host: the very driver `keel serve` runs, over the node's simulated disk. A
/// driver that stops with an error is noted and ends the host's software; the harness
/// restarts it (a panic is not caught: it fails the run).
async fn broker(
    node: u32,
    config: NodeConfig,
    disk: SimDisk,
    seed: u64,
    shared: Arc<Shared>,
) -> turmoil::Result {
    shared
        .history()
        .node_starts
        .push((workload::now_ms(), node));
    let listen = SocketAddr::from(([0, 0, 0, 0], BROKER_PORT));
    let listener = match Turmoil.bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            shared.history().note(
                workload::now_ms(),
                format!("{}: cannot listen: {e}", host(node)),
            );
            return Ok(());
        }
    };
    let since_epoch = turmoil::since_epoch().unwrap_or_default();
    let latency_disk = disk.clone();
    let options = DriverOptions {
        max_request_bytes: driver::DEFAULT_MAX_REQUEST_BYTES,
        max_inflight_per_connection: driver::DEFAULT_MAX_INFLIGHT_PER_CONNECTION,
        seed,
        sync_mode: SyncMode::InlineAfter(Arc::new(move || latency_disk.sync_latency())),
        wall_clock_at_start: Instant::from_nanos(since_epoch.as_nanos() as u64),
    };
    let storage: Arc<dyn Storage> = Arc::new(disk);
    let result = if config.cluster.is_some() {
        let peer_listen = SocketAddr::from(([0, 0, 0, 0], PEER_PORT));
        let peer_listener = match Turmoil.bind(peer_listen).await {
            Ok(l) => l,
            Err(e) => {
                shared.history().note(
                    workload::now_ms(),
                    format!("{}: cannot listen for peers: {e}", host(node)),
                );
                return Ok(());
            }
        };
        let voters: Vec<i32> = config
            .cluster
            .as_ref()
            .map(|c| c.voters.iter().map(|v| v.0).collect())
            .unwrap_or_default();
        let peers = Peers {
            net: Turmoil,
            listener: peer_listener,
            addrs: voters
                .into_iter()
                .filter(|&v| v != node as i32)
                .map(|v| {
                    (
                        keel_core::ids::NodeId(v),
                        crate::net::resolve(&host(v as u32), PEER_PORT),
                    )
                })
                .collect(),
            options: keel_net::peer::transport::ConnOptions {
                cluster: keel_net::peer::codec::cluster_hash(&config.cluster_id),
                idle_timeout: PEER_IDLE_TIMEOUT,
                reconnect_backoff: PEER_RECONNECT_BACKOFF,
            },
        };
        driver::run_cluster_member(
            listener,
            peers,
            config,
            storage,
            options,
            Metrics::new(),
            std::future::pending(),
        )
        .await
    } else {
        driver::run(listener, config, storage, options, std::future::pending()).await
    };
    if let Err(e) = result {
        shared
            .history()
            .note(workload::now_ms(), format!("{} stopped: {e}", host(node)));
    }
    Ok(())
}

/// Adds a scheduled fault (and its end, for timed ones) to the schedule.
fn schedule_fault(
    schedule: &mut Schedule,
    scenario: &Scenario,
    f: &FaultSpec,
    fault_end_ms: Millis,
) {
    let at = f.at.ms();
    let until = f
        .lasts
        .map_or(at + 1_000, |d| at + d.ms())
        .min(fault_end_ms);
    let for_ms = until.saturating_sub(at);
    let fault = if let Some(node) = f.crash {
        Fault::Crash {
            node,
            loss: f.loss.unwrap_or(scenario.crash_loss),
            down_ms: f.down.map_or(300, |d| d.ms()),
        }
    } else if let Some(node) = f.pause {
        Fault::Pause { node, for_ms }
    } else if let Some(node) = f.partition {
        Fault::Partition { node, for_ms }
    } else if let Some(node) = f.slow_link {
        Fault::SlowLink {
            node,
            min_ms: f.min_latency.map_or(50, |d| d.ms()),
            max_ms: f.max_latency.map_or(200, |d| d.ms()),
            for_ms,
        }
    } else if let Some(node) = f.flaky_link {
        Fault::FlakyLink {
            node,
            fail_rate: f.fail_rate.unwrap_or(0.01),
            for_ms,
        }
    } else if f.disconnect.is_some() {
        Fault::Disconnect
    } else if let Some(node) = f.bit_flip {
        Fault::BitFlip {
            node,
            count: f.count.unwrap_or(1),
            target: f.target.unwrap_or_default(),
        }
    } else if let Some(node) = f.isolate {
        Fault::Isolate { node, for_ms }
    } else if let Some(node) = f.oneway {
        Fault::Oneway { node, for_ms }
    } else if let Some(node) = f.flap {
        Fault::Flap {
            node,
            period_ms: f.period.map_or(200, |d| d.ms()).max(1),
            for_ms,
        }
    } else if let (Some(node), Some(faults)) = (f.disk, &f.set) {
        Fault::Disk {
            node,
            faults: faults.clone(),
            for_ms: f.lasts.map(|_| for_ms),
        }
    } else {
        return;
    };
    schedule.push_fault(at, fault);
}

/// Draws the random faults: each kind a Poisson process over the fault phase.
fn schedule_random(
    schedule: &mut Schedule,
    scenario: &Scenario,
    rng: &mut ChaCha8Rng,
    fault_end_ms: Millis,
) {
    let r = &scenario.random;
    let lasts = r.lasts.ms();
    // New kinds go last: a scenario without them draws exactly as before.
    let kinds: [(f64, u8); 12] = [
        (r.crash_rate, 0),
        (r.pause_rate, 1),
        (r.partition_rate, 2),
        (r.flaky_link_rate, 3),
        (r.slow_link_rate, 4),
        (r.disconnect_rate, 5),
        (r.bit_flip_rate, 6),
        (r.disk_burst_rate, 7),
        (r.isolate_rate, 8),
        (r.oneway_rate, 9),
        (r.flap_rate, 10),
        (r.controller_crash_rate, 11),
    ];
    for (rate, kind) in kinds {
        if rate <= 0.0 {
            continue;
        }
        let mut t = r.after.ms() as f64;
        loop {
            // Exponential gap with mean 1/rate seconds.
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            t += -u.ln() / rate * 1_000.0;
            let at = t as Millis;
            if at >= fault_end_ms {
                break;
            }
            let node = rng.gen_range(1..=scenario.nodes);
            let for_ms = (at + lasts).min(fault_end_ms) - at;
            let fault = match kind {
                0 => Fault::Crash {
                    node,
                    loss: scenario.crash_loss,
                    down_ms: r.crash_down.ms(),
                },
                1 => Fault::Pause { node, for_ms },
                2 => Fault::Partition { node, for_ms },
                3 => Fault::FlakyLink {
                    node,
                    fail_rate: 0.02,
                    for_ms,
                },
                4 => Fault::SlowLink {
                    node,
                    min_ms: 50,
                    max_ms: 300,
                    for_ms,
                },
                5 => Fault::Disconnect,
                6 => Fault::BitFlip {
                    node,
                    count: 1,
                    target: RotTarget::AnySegment,
                },
                7 => Fault::Disk {
                    node,
                    faults: r.burst.clone(),
                    for_ms: Some(for_ms),
                },
                8 => Fault::Isolate { node, for_ms },
                9 => Fault::Oneway { node, for_ms },
                10 => Fault::Flap {
                    node,
                    period_ms: r.flap_period.ms().max(1),
                    for_ms,
                },
                // Node 0: whichever node is the controller when it comes due.
                _ => Fault::Crash {
                    node: 0,
                    loss: scenario.crash_loss,
                    down_ms: r.crash_down.ms(),
                },
            };
            schedule.push_fault(at, fault);
        }
    }
}

/// The simulation and what the harness knows about it.
struct World<'s, 'a> {
    scenario: &'s Scenario,
    sim: turmoil::Sim<'a>,
    disks: BTreeMap<u32, SimDisk>,
    clients: Vec<String>,
    shared: Arc<Shared>,
    /// Nodes crashed (or stopped) and not yet restarted.
    down: BTreeSet<u32>,
    /// Nodes under a pause or a partition fault.
    paused: BTreeSet<u32>,
    partitioned: BTreeSet<u32>,
    healed: bool,
    /// A cluster scenario: the brokers talk to each other, and the links between them take
    /// the faults too (see [`World::sync_peer_link`]).
    cluster: bool,
    /// The quorum observer's host: exempt from network faults, silenced with a crash.
    observer: Option<String>,
    /// Nodes cut from the other brokers, both ways.
    isolated: BTreeSet<u32>,
    /// Nodes whose messages to the other brokers are dropped.
    oneway: BTreeSet<u32>,
    /// Nodes whose flapping links to the other brokers are down now.
    flap_down: BTreeSet<u32>,
}

impl World<'_, '_> {
    fn note(&self, at: Millis, event: String) {
        self.shared.history().note(at, event);
    }

    fn links(&self, node: u32) -> Vec<(String, String)> {
        self.clients
            .iter()
            .map(|c| (host(node), c.clone()))
            .collect()
    }

    /// The other brokers `node` talks to (none without a cluster).
    fn peers(&self, node: u32) -> Vec<u32> {
        if !self.cluster {
            return Vec::new();
        }
        (1..=self.scenario.nodes).filter(|&p| p != node).collect()
    }

    /// The node that last claimed to be the active controller in the highest epoch seen
    /// (node 1 before any claim): what a fault aimed at node 0 strikes.
    fn controller(&self, now: Millis) -> u32 {
        let claim = self.shared.history().cluster.as_ref().and_then(|c| {
            c.claims
                .iter()
                .max_by_key(|c| (c.epoch, c.at_ms))
                .map(|c| (c.node, c.epoch))
        });
        let (node, why) = match claim {
            Some((node, epoch)) => (node, format!("controller of epoch {epoch}")),
            None => (1, "no controller seen yet".to_string()),
        };
        self.note(
            now,
            format!("fault aimed at the controller: {} ({why})", host(node)),
        );
        node
    }

    /// Sets the link between brokers `a` and `b` to what the faults on either call for: cut
    /// one way or both (a partition, an isolation, a flap that is down, a one-way fault),
    /// else held (a pause), else healthy.
    fn sync_peer_link(&self, a: u32, b: u32) {
        let cut = |n: u32| {
            self.partitioned.contains(&n)
                || self.isolated.contains(&n)
                || self.flap_down.contains(&n)
        };
        let both = cut(a) || cut(b);
        let a_to_b = both || self.oneway.contains(&a);
        let b_to_a = both || self.oneway.contains(&b);
        let held = self.paused.contains(&a) || self.paused.contains(&b);
        let (ha, hb) = (host(a), host(b));
        if held && !a_to_b && !b_to_a {
            self.sim.hold(ha, hb);
            return;
        }
        // Held messages are delivered (or dropped below, on a cut direction).
        self.sim.release(ha.clone(), hb.clone());
        for (from, to, cut) in [(&ha, &hb, a_to_b), (&hb, &ha, b_to_a)] {
            if cut {
                self.sim.partition_oneway(from.clone(), to.clone());
            } else {
                self.sim.repair_oneway(from.clone(), to.clone());
            }
        }
    }

    fn sync_peer_links(&self, node: u32) {
        for p in self.peers(node) {
            self.sync_peer_link(node, p);
        }
    }

    /// Applies `action`; false if it did nothing (a crash of a node already down, anything
    /// but a restart after the heal).
    fn apply(&mut self, now: Millis, action: Action, schedule: &mut Schedule) -> bool {
        // After the heal only restarts still matter: every end-of-fault is already done.
        if self.healed && !matches!(action, Action::Restart { .. }) {
            return false;
        }
        match action {
            Action::Crash {
                node,
                loss,
                down_ms,
            } => {
                if self.down.contains(&node) {
                    self.note(now, format!("crash {} skipped: already down", host(node)));
                    return false;
                }
                // A machine crash sends nothing: clients notice by their deadlines.
                self.silently(node, |sim| sim.crash(host(node)));
                self.note(
                    now,
                    format!(
                        "crash {} (disk loss {loss:?}, down {down_ms}ms)",
                        host(node)
                    ),
                );
                // What the crash did to the disk comes through its event log (below).
                let _ = self.disks[&node].crash(loss);
                self.down.insert(node);
                schedule.push(
                    now + down_ms.max(1),
                    Action::Restart {
                        node,
                        why: "after its downtime",
                    },
                );
            }
            Action::Restart { node, why } => {
                if !self.down.remove(&node) {
                    return false;
                }
                // A driver that stopped on its own may have left tasks behind; bouncing drops them.
                self.silently(node, |sim| sim.bounce(host(node)));
                self.note(now, format!("restart {} ({why})", host(node)));
            }
            Action::Pause(node) => {
                self.paused.insert(node);
                for (a, b) in self.links(node) {
                    self.sim.hold(a, b);
                }
                self.sync_peer_links(node);
                self.note(now, format!("pause {}: every link held", host(node)));
            }
            Action::Unpause(node) => {
                self.paused.remove(&node);
                for (a, b) in self.links(node) {
                    self.sim.release(a, b);
                }
                self.sync_peer_links(node);
                self.note(
                    now,
                    format!("resume {}: held messages delivered", host(node)),
                );
            }
            Action::Partition(node) => {
                self.partitioned.insert(node);
                for (a, b) in self.links(node) {
                    self.sim.partition(a, b);
                }
                self.sync_peer_links(node);
                let whom = if self.cluster {
                    "every client and broker"
                } else {
                    "every client"
                };
                self.note(now, format!("partition {} from {whom}", host(node)));
            }
            Action::Unpartition(node) => {
                self.partitioned.remove(&node);
                for (a, b) in self.links(node) {
                    self.sim.repair(a, b);
                }
                self.sync_peer_links(node);
                self.note(now, format!("repair the links of {}", host(node)));
            }
            Action::SlowLink { node, min, max } => {
                for (a, b) in self.links(node).into_iter().chain(self.peer_links(node)) {
                    self.sim.set_link_latency(a.clone(), b.clone(), min);
                    self.sim.set_link_max_message_latency(a, b, max);
                }
                self.note(
                    now,
                    format!("slow links of {}: {min:?}..{max:?}", host(node)),
                );
            }
            Action::RestoreLink(node) => {
                self.restore_latency(node);
                self.note(
                    now,
                    format!("normal latency on the links of {}", host(node)),
                );
            }
            Action::FlakyLink { node, fail_rate } => {
                for (a, b) in self.links(node).into_iter().chain(self.peer_links(node)) {
                    self.sim.set_link_fail_rate(a, b, fail_rate);
                }
                self.note(
                    now,
                    format!("flaky links of {}: fail rate {fail_rate}", host(node)),
                );
            }
            Action::SteadyLink(node) => {
                for (a, b) in self.links(node) {
                    self.sim.set_link_fail_rate(a.clone(), b.clone(), 0.0);
                    self.sim.repair(a, b);
                }
                for (a, b) in self.peer_links(node) {
                    self.sim.set_link_fail_rate(a, b, 0.0);
                }
                self.sync_peer_links(node);
                self.note(now, format!("steady links of {}", host(node)));
            }
            Action::Disconnect => {
                self.shared.disconnect.send_modify(|g| *g += 1);
                self.note(now, "every client drops its connection".to_string());
            }
            Action::BitFlip {
                node,
                count,
                target,
            } => {
                for _ in 0..count {
                    // A flip is reported through the disk's event log.
                    if rot(&self.disks[&node], target).is_none() {
                        self.note(
                            now,
                            format!(
                                "bit rot on {} ({target:?}): no segment data to flip",
                                host(node)
                            ),
                        );
                    }
                }
            }
            Action::DiskFaults { node, faults } => {
                self.note(now, format!("disk faults on {}: {faults:?}", host(node)));
                self.disks[&node].set_faults(faults);
            }
            Action::DiskRestore(node) => {
                self.disks[&node].set_faults(self.scenario.disk.clone());
                self.note(
                    now,
                    format!("disk faults on {} back to the scenario's", host(node)),
                );
            }
            Action::Isolate(node) => {
                self.isolated.insert(node);
                self.sync_peer_links(node);
                self.note(
                    now,
                    format!("isolate {} from every other broker", host(node)),
                );
            }
            Action::Unisolate(node) => {
                self.isolated.remove(&node);
                self.sync_peer_links(node);
                self.note(now, format!("{} rejoins the other brokers", host(node)));
            }
            Action::Oneway(node) => {
                self.oneway.insert(node);
                self.sync_peer_links(node);
                self.note(
                    now,
                    format!("{}'s messages to the other brokers dropped", host(node)),
                );
            }
            Action::Unoneway(node) => {
                self.oneway.remove(&node);
                self.sync_peer_links(node);
                self.note(
                    now,
                    format!("{}'s messages reach the other brokers again", host(node)),
                );
            }
            Action::FlapStart {
                node,
                period_ms,
                for_ms,
            } => {
                self.flap_down.insert(node);
                self.sync_peer_links(node);
                self.note(
                    now,
                    format!(
                        "{}'s links to the other brokers flap every {period_ms}ms",
                        host(node)
                    ),
                );
                schedule.push(
                    now + period_ms,
                    Action::FlapToggle {
                        node,
                        until: now + for_ms,
                        period_ms,
                    },
                );
            }
            Action::FlapToggle {
                node,
                until,
                period_ms,
            } => {
                if now >= until {
                    return false;
                }
                if !self.flap_down.remove(&node) {
                    self.flap_down.insert(node);
                }
                self.sync_peer_links(node);
                schedule.push(
                    now + period_ms,
                    Action::FlapToggle {
                        node,
                        until,
                        period_ms,
                    },
                );
            }
            Action::FlapEnd(node) => {
                self.flap_down.remove(&node);
                self.sync_peer_links(node);
                self.note(now, format!("{}'s links stop flapping", host(node)));
            }
            Action::AtController => return false,
            Action::Heal => {
                self.note(
                    now,
                    "HEAL: disk faults off, links repaired, down nodes restarted".to_string(),
                );
                for node in 1..=self.scenario.nodes {
                    self.disks[&node].set_faults(DiskFaults::default());
                    for (a, b) in self.links(node) {
                        self.sim.set_link_fail_rate(a.clone(), b.clone(), 0.0);
                        self.sim.release(a.clone(), b.clone());
                        self.sim.repair(a, b);
                    }
                    self.restore_latency(node);
                }
                self.healed = true;
                self.paused.clear();
                self.partitioned.clear();
                self.isolated.clear();
                self.oneway.clear();
                self.flap_down.clear();
                for node in 1..=self.scenario.nodes {
                    for (a, b) in self.peer_links(node) {
                        self.sim.set_link_fail_rate(a, b, 0.0);
                    }
                    self.sync_peer_links(node);
                }
                let down: Vec<u32> = self.down.iter().copied().collect();
                for node in down {
                    self.apply(now, Action::Restart { node, why: "heal" }, schedule);
                }
            }
        }
        true
    }

    /// Runs `f` (a crash or a restart, which drop the node's runtime) with the node's links
    /// cut, so the FIN and RST segments its dropped sockets send are not delivered. Besides
    /// modelling a machine that dies without a word, this keeps runs repeatable: tokio drops
    /// a runtime's tasks in an order that follows task ids, drawn from a process-wide
    /// counter, so a second run in the same process would send them in another order.
    fn silently(&mut self, node: u32, f: impl FnOnce(&mut turmoil::Sim<'_>)) {
        let observed: Vec<(String, String)> = self
            .observer
            .iter()
            .map(|o| (host(node), o.clone()))
            .collect();
        for (a, b) in self
            .links(node)
            .into_iter()
            .chain(self.peer_links(node))
            .chain(observed.iter().cloned())
        {
            self.sim.partition(a, b);
        }
        f(&mut self.sim);
        for (a, b) in self.links(node) {
            if !self.partitioned.contains(&node) {
                self.sim.repair(a.clone(), b.clone());
            }
            if self.paused.contains(&node) {
                self.sim.hold(a, b);
            }
        }
        for (a, b) in observed {
            self.sim.repair(a, b);
        }
        self.sync_peer_links(node);
    }

    /// The links between `node` and the other brokers, as host pairs.
    fn peer_links(&self, node: u32) -> Vec<(String, String)> {
        self.peers(node)
            .into_iter()
            .map(|p| (host(node), host(p)))
            .collect()
    }

    fn restore_latency(&self, node: u32) {
        let net = &self.scenario.network;
        for (a, b) in self.links(node).into_iter().chain(self.peer_links(node)) {
            self.sim
                .set_link_latency(a.clone(), b.clone(), net.min_latency.0);
            self.sim
                .set_link_max_message_latency(a, b, net.max_latency.0);
        }
    }

    /// Moves the disks' own events (injected faults as they fire) to the timeline.
    fn collect_disk_events(&self, now: Millis) {
        for (node, disk) in &self.disks {
            for e in disk.take_events() {
                self.note(now, format!("{} disk: {e}", host(*node)));
            }
        }
    }

    /// Restarts a node whose driver stopped on its own, after a backoff.
    fn supervise(&mut self, now: Millis, schedule: &mut Schedule) {
        for node in 1..=self.scenario.nodes {
            if self.down.contains(&node) || self.sim.is_host_running(host(node)) {
                continue;
            }
            self.down.insert(node);
            schedule.push(
                now + SUPERVISOR_BACKOFF_MS,
                Action::Restart {
                    node,
                    why: "its driver stopped; supervisor restart",
                },
            );
        }
    }
}

/// The segment files a bit flip aimed at `target` may strike, among `files` (every file of
/// a disk). Segment files are `{dir}/{base_offset:020}.log`; the newest of a directory is
/// the one with the highest base offset.
fn rot_candidates(files: &[String], target: RotTarget) -> BTreeSet<String> {
    let segments = files.iter().filter(|f| f.ends_with(".log"));
    match target {
        RotTarget::AnySegment => segments.cloned().collect(),
        RotTarget::NewestSegment => {
            let mut newest: BTreeMap<&str, (i64, &String)> = BTreeMap::new();
            for file in segments {
                let (dir, name) = file.rsplit_once('/').unwrap_or(("", file.as_str()));
                let Ok(base) = name.trim_end_matches(".log").parse::<i64>() else {
                    continue;
                };
                let entry = newest.entry(dir).or_insert((base, file));
                if base > entry.0 {
                    *entry = (base, file);
                }
            }
            newest.into_values().map(|(_, f)| f.clone()).collect()
        }
    }
}

/// Flips one bit of durable data in one of `disk`'s segment files chosen by `target` (the
/// disk draws which file, byte and bit); `None` if those files hold no durable data.
fn rot(disk: &SimDisk, target: RotTarget) -> Option<DiskEvent> {
    let candidates = rot_candidates(&disk.files(), target);
    disk.flip_bit_at_rest(|f| candidates.contains(f))
}

/// Formats a report's timeline for people.
pub fn format_timeline(history: &History) -> String {
    let mut out = String::new();
    for (at, event) in &history.timeline {
        out.push_str(&format!("  {:>9}  {event}\n", fmt_ms(*at)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::storage::Storage;

    fn names(files: &[&str]) -> Vec<String> {
        files.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn newest_segment_is_the_highest_base_offset_of_each_partition() {
        let files = names(&[
            "a-0/00000000000000000000.index",
            "a-0/00000000000000000000.log",
            "a-0/00000000000000000042.log",
            "a-0/00000000000000000042.timeindex",
            "a-0/log-checkpoint",
            "a-1/00000000000000000007.log",
            "a-10/00000000000000000000.log",
            "a-10/00000000000000000100.log",
            "a-10/00000000000000000099.log",
            "a-10/00000000000000000100.log.tmp",
            "meta",
        ]);
        let newest: Vec<String> = rot_candidates(&files, RotTarget::NewestSegment)
            .into_iter()
            .collect();
        assert_eq!(
            newest,
            names(&[
                "a-0/00000000000000000042.log",
                "a-1/00000000000000000007.log",
                "a-10/00000000000000000100.log",
            ])
        );
        let any = rot_candidates(&files, RotTarget::AnySegment);
        assert_eq!(any.len(), 6);
        assert!(any.iter().all(|f| f.ends_with(".log")));
    }

    #[test]
    fn rot_of_the_newest_segment_strikes_only_its_durable_data() {
        let disk = SimDisk::new(3, DiskFaults::default());
        for file in [
            "t-0/00000000000000000000.log",
            "t-0/00000000000000000010.log",
            "t-0/00000000000000000010.index",
            "t-1/00000000000000000000.log",
        ] {
            disk.append(file, &[&[0u8; 64]]).unwrap();
            disk.sync(file).unwrap();
        }
        // t-1's newest segment has nothing durable yet: only t-0's can rot.
        disk.append("t-1/00000000000000000020.log", &[&[0u8; 64]])
            .unwrap();
        for _ in 0..20 {
            match rot(&disk, RotTarget::NewestSegment) {
                Some(DiskEvent::BitFlip { file, pos, .. }) => {
                    assert_eq!(file, "t-0/00000000000000000010.log");
                    assert!(pos < 64);
                }
                other => panic!("{other:?}"),
            }
        }
        let untouched = |f: &str| disk.contents(f).unwrap().iter().all(|b| *b == 0);
        assert!(untouched("t-0/00000000000000000000.log"));
        assert!(untouched("t-1/00000000000000000000.log"));
        assert!(untouched("t-0/00000000000000000010.index"));
        assert!(!untouched("t-0/00000000000000000010.log"));

        let empty = SimDisk::new(3, DiskFaults::default());
        empty
            .append("t-0/00000000000000000000.log", &[b"pending"])
            .unwrap();
        assert_eq!(rot(&empty, RotTarget::NewestSegment), None);
        assert_eq!(rot(&empty, RotTarget::AnySegment), None);
    }

    #[test]
    fn a_rot_scheduled_with_a_crash_fires_in_file_order_at_one_instant() {
        let scenario = Scenario::parse(
            r#"
            name = "x"
            duration = "5s"
            [[topics]]
            name = "t"
            [[faults]]
            at = "3s"
            crash = 1
            down = "2s"
            [[faults]]
            at = "3s"
            bit_flip = 1
            count = 2
            target = "newest-segment"
        "#,
        )
        .unwrap();
        let mut schedule = Schedule::default();
        for f in &scenario.faults {
            schedule_fault(&mut schedule, &scenario, f, 5_000);
        }
        assert!(schedule.pop_due(2_999).is_none());
        let (at, first, _) = schedule.pop_due(3_000).unwrap();
        assert_eq!(at, 3_000);
        assert!(
            matches!(
                first,
                Action::Crash {
                    node: 1,
                    down_ms: 2_000,
                    ..
                }
            ),
            "{first:?}"
        );
        let (_, second, _) = schedule.pop_due(3_000).unwrap();
        assert!(
            matches!(
                second,
                Action::BitFlip {
                    node: 1,
                    count: 2,
                    target: RotTarget::NewestSegment
                }
            ),
            "{second:?}"
        );
        assert!(schedule.pop_due(10_000).is_none());
    }

    #[test]
    fn every_fault_kind_written_as_a_faults_entry_schedules_the_same_fault() {
        let faults = vec![
            Fault::Crash {
                node: 2,
                loss: CrashLoss::TearAnywhere,
                down_ms: 250,
            },
            Fault::Pause {
                node: 1,
                for_ms: 500,
            },
            Fault::Partition { node: 2, for_ms: 1 },
            Fault::SlowLink {
                node: 1,
                min_ms: 50,
                max_ms: 300,
                for_ms: 700,
            },
            Fault::FlakyLink {
                node: 2,
                fail_rate: 0.02,
                for_ms: 500,
            },
            Fault::Disconnect,
            Fault::BitFlip {
                node: 1,
                count: 3,
                target: RotTarget::NewestSegment,
            },
            Fault::Disk {
                node: 2,
                faults: DiskFaults {
                    fsync_error_probability: 0.3,
                    capacity_bytes: Some(1 << 20),
                    sync_latency_ms: (1, 9),
                    ..DiskFaults::default()
                },
                for_ms: Some(400),
            },
            Fault::Disk {
                node: 1,
                faults: DiskFaults::default(),
                for_ms: None,
            },
            Fault::Isolate {
                node: 2,
                for_ms: 600,
            },
            Fault::Oneway {
                node: 1,
                for_ms: 300,
            },
            Fault::Flap {
                node: 2,
                period_ms: 120,
                for_ms: 900,
            },
        ];
        #[derive(serde::Serialize)]
        struct File {
            faults: Vec<FaultSpec>,
        }
        let injected: Vec<InjectedFault> = faults
            .iter()
            .enumerate()
            .map(|(i, f)| InjectedFault {
                at_ms: 1_000 + 17 * i as Millis,
                fault: f.clone(),
                skipped: false,
            })
            .collect();
        let file = File {
            faults: injected.iter().map(InjectedFault::to_spec).collect(),
        };
        let text = format!(
            "name = \"x\"\nduration = \"5s\"\nnodes = 2\ncrash_loss = \"KeepAll\"\n[cluster]\n{}",
            toml::to_string(&file).unwrap()
        );
        let scenario = Scenario::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut schedule = Schedule::default();
        for f in &scenario.faults {
            schedule_fault(&mut schedule, &scenario, f, 5_000);
        }
        let mut back = Vec::new();
        while let Some((at, _, fault)) = schedule.pop_due(10_000) {
            if let Some(fault) = fault {
                back.push(InjectedFault {
                    at_ms: at,
                    fault,
                    skipped: false,
                });
            }
        }
        assert_eq!(back, injected, "{text}");
    }
}
