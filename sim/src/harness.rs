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
//! and off.
//!
//! Two phases: faults until `duration`, then everything healed at once (disk faults off,
//! links repaired, crashed nodes restarted) while consumers catch up and a fresh reader
//! reads every partition to its end. Node invariants are asserted inside the node after
//! every input (debug builds); a panic anywhere in the simulation fails the run. A node
//! whose driver stops with an error (say, its disk failed during recovery) is restarted
//! after [`SUPERVISOR_BACKOFF_MS`], as a supervisor would; one still down after the heal
//! is reported as `node-down`.

use crate::checker::{self, Anomaly, CheckReport, Finding};
use crate::disk::{CrashLoss, DiskEvent, DiskFaults, SimDisk};
use crate::history::{fmt_ms, History, Millis};
use crate::net::Turmoil;
use crate::scenario::{FaultSpec, RotTarget, Scenario};
use crate::trace::Fnv64;
use crate::workload::group::GroupMemberCfg;
use crate::workload::{self, ConsumerCfg, Plan, ProducerCfg, Shared, TopicInfo, BROKER_PORT};
use keel_core::broker::NodeConfig;
use keel_core::storage::Storage;
use keel_core::time::Instant;
use keel_net::driver::{self, DriverOptions};
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
    Heal,
}

/// Events by (time, insertion order).
#[derive(Default)]
struct Schedule {
    events: BTreeMap<(Millis, u64), Action>,
    next: u64,
}

impl Schedule {
    fn push(&mut self, at: Millis, action: Action) {
        self.events.insert((at, self.next), action);
        self.next += 1;
    }

    fn pop_due(&mut self, now: Millis) -> Option<(Millis, Action)> {
        let entry = self.events.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let ((at, _), action) = entry.remove_entry();
        Some((at, action))
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
    sim.client("setup", workload::setup(topics.clone(), shared.clone()));
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
    };
    let mut error = None;
    loop {
        let now = world.sim.elapsed().as_millis() as Millis;
        while let Some((_, action)) = schedule.pop_due(now) {
            world.apply(now, action, &mut schedule);
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
    h.finish()
}

/// A node's configuration: Keel's defaults, the scenario's tweaks, then the run's hook.
fn node_config(scenario: &Scenario, node: u32, tweak: Option<&ConfigTweak>) -> NodeConfig {
    let mut config = NodeConfig {
        node_id: node as i32,
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
    let result = driver::run(listener, config, storage, options, std::future::pending()).await;
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
    if let Some(node) = f.crash {
        schedule.push(
            at,
            Action::Crash {
                node,
                loss: f.loss.unwrap_or(scenario.crash_loss),
                down_ms: f.down.map_or(300, |d| d.ms()),
            },
        );
    } else if let Some(node) = f.pause {
        schedule.push(at, Action::Pause(node));
        schedule.push(until, Action::Unpause(node));
    } else if let Some(node) = f.partition {
        schedule.push(at, Action::Partition(node));
        schedule.push(until, Action::Unpartition(node));
    } else if let Some(node) = f.slow_link {
        schedule.push(
            at,
            Action::SlowLink {
                node,
                min: f.min_latency.map_or(Duration::from_millis(50), |d| d.0),
                max: f.max_latency.map_or(Duration::from_millis(200), |d| d.0),
            },
        );
        schedule.push(until, Action::RestoreLink(node));
    } else if let Some(node) = f.flaky_link {
        schedule.push(
            at,
            Action::FlakyLink {
                node,
                fail_rate: f.fail_rate.unwrap_or(0.01),
            },
        );
        schedule.push(until, Action::SteadyLink(node));
    } else if f.disconnect.is_some() {
        schedule.push(at, Action::Disconnect);
    } else if let Some(node) = f.bit_flip {
        schedule.push(
            at,
            Action::BitFlip {
                node,
                count: f.count.unwrap_or(1),
                target: f.target.unwrap_or_default(),
            },
        );
    } else if let (Some(node), Some(faults)) = (f.disk, &f.set) {
        schedule.push(
            at,
            Action::DiskFaults {
                node,
                faults: faults.clone(),
            },
        );
        if f.lasts.is_some() {
            schedule.push(until, Action::DiskRestore(node));
        }
    }
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
    let kinds: [(f64, u8); 8] = [
        (r.crash_rate, 0),
        (r.pause_rate, 1),
        (r.partition_rate, 2),
        (r.flaky_link_rate, 3),
        (r.slow_link_rate, 4),
        (r.disconnect_rate, 5),
        (r.bit_flip_rate, 6),
        (r.disk_burst_rate, 7),
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
            let until = (at + lasts).min(fault_end_ms);
            match kind {
                0 => schedule.push(
                    at,
                    Action::Crash {
                        node,
                        loss: scenario.crash_loss,
                        down_ms: r.crash_down.ms(),
                    },
                ),
                1 => {
                    schedule.push(at, Action::Pause(node));
                    schedule.push(until, Action::Unpause(node));
                }
                2 => {
                    schedule.push(at, Action::Partition(node));
                    schedule.push(until, Action::Unpartition(node));
                }
                3 => {
                    schedule.push(
                        at,
                        Action::FlakyLink {
                            node,
                            fail_rate: 0.02,
                        },
                    );
                    schedule.push(until, Action::SteadyLink(node));
                }
                4 => {
                    schedule.push(
                        at,
                        Action::SlowLink {
                            node,
                            min: Duration::from_millis(50),
                            max: Duration::from_millis(300),
                        },
                    );
                    schedule.push(until, Action::RestoreLink(node));
                }
                5 => schedule.push(at, Action::Disconnect),
                6 => schedule.push(
                    at,
                    Action::BitFlip {
                        node,
                        count: 1,
                        target: RotTarget::AnySegment,
                    },
                ),
                _ => {
                    schedule.push(
                        at,
                        Action::DiskFaults {
                            node,
                            faults: r.burst.clone(),
                        },
                    );
                    schedule.push(until, Action::DiskRestore(node));
                }
            }
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

    fn apply(&mut self, now: Millis, action: Action, schedule: &mut Schedule) {
        // After the heal only restarts still matter: every end-of-fault is already done.
        if self.healed && !matches!(action, Action::Restart { .. }) {
            return;
        }
        match action {
            Action::Crash {
                node,
                loss,
                down_ms,
            } => {
                if self.down.contains(&node) {
                    self.note(now, format!("crash {} skipped: already down", host(node)));
                    return;
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
                    return;
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
                self.note(now, format!("pause {}: every link held", host(node)));
            }
            Action::Unpause(node) => {
                self.paused.remove(&node);
                for (a, b) in self.links(node) {
                    self.sim.release(a, b);
                }
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
                self.note(now, format!("partition {} from every client", host(node)));
            }
            Action::Unpartition(node) => {
                self.partitioned.remove(&node);
                for (a, b) in self.links(node) {
                    self.sim.repair(a, b);
                }
                self.note(now, format!("repair the links of {}", host(node)));
            }
            Action::SlowLink { node, min, max } => {
                for (a, b) in self.links(node) {
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
                for (a, b) in self.links(node) {
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
                let down: Vec<u32> = self.down.iter().copied().collect();
                for node in down {
                    self.apply(now, Action::Restart { node, why: "heal" }, schedule);
                }
            }
        }
    }

    /// Runs `f` (a crash or a restart, which drop the node's runtime) with the node's links
    /// cut, so the FIN and RST segments its dropped sockets send are not delivered. Besides
    /// modelling a machine that dies without a word, this keeps runs repeatable: tokio drops
    /// a runtime's tasks in an order that follows task ids, drawn from a process-wide
    /// counter, so a second run in the same process would send them in another order.
    fn silently(&mut self, node: u32, f: impl FnOnce(&mut turmoil::Sim<'_>)) {
        for (a, b) in self.links(node) {
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
    }

    fn restore_latency(&self, node: u32) {
        let net = &self.scenario.network;
        for (a, b) in self.links(node) {
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
        let (at, first) = schedule.pop_due(3_000).unwrap();
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
        let (_, second) = schedule.pop_due(3_000).unwrap();
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
}
