//! Raft scenarios (`scenarios/raft-*.toml`, recognised by their `[raft]` table): 3 or 5
//! nodes each running keel-net's Raft driver ([`keel_net::peer::driver::run`], what the
//! brokers will run) over turmoil's TCP and a [`SimDisk`], a replicated key-value store
//! ([`kv`]) with clients doing put/get/cas with deadlines and leader redirection, faults
//! on a schedule and at random, and three checks: linearizability of the clients' history
//! ([`crate::checker::linearizable`]), election safety (at most one leader per term, from
//! the drivers' role events) and state-machine safety (every node applies the same entry at
//! an index). After the faults everything heals and some operation must succeed again.
//!
//! Faults (`[[raft.faults]]` scheduled, `[[raft.random]]` drawn as Poisson processes from
//! the seed), each `kind` with a `target` and `for_ms`:
//! `crash` (the targets crash together, their disks lose unflushed writes by `loss`,
//! restart after `for_ms`), `isolate` (the targets are cut from the rest both ways),
//! `oneway` (the targets' messages to the rest are dropped, the rest's still arrive),
//! `flap` (the links between the targets and the rest go down and up every `period_ms`),
//! `slow-disk` (each sync of the targets takes 50..`slow_ms` ms). Targets: `leader`,
//! `follower`, `any`, `minority` (the leader and others short of a majority), `majority`
//! (the leader's side holds a majority), or explicit ids `"1,3"`. Clock skew is static: each
//! node's clock runs at a rate drawn from `1 ± clock_skew`.
//!
//! The report lists every fault actually injected (time, kind, concrete targets), so a
//! subset can be replayed as a schedule ([`RaftScenario::with_faults`]).

pub mod kv;

use crate::checker::linearizable::{self, KeyVerdict};
use crate::disk::{CrashLoss, DiskFaults, SimDisk};
use crate::net::Turmoil;
use crate::trace::Fnv64;
use keel_core::storage::Storage;
use keel_net::network::SyncMode;
use keel_net::peer::driver::{self, Event, PeerOptions};
use keel_raft::{Config, Index, Membership, NodeId, Role, SnapshotMeta, Term};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// The peer port of every node.
pub const PEER_PORT: u16 = 7200;
/// The linearizability search's state budget per key.
pub const MAX_CHECK_STATES: usize = 2_000_000;

/// A raft scenario file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RaftScenario {
    /// Its name.
    pub name: String,
    /// The trap it sets: the bug or property it is about.
    #[serde(default)]
    pub about: String,
    /// The cluster and workload.
    pub raft: RaftSpec,
}

/// The `[raft]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RaftSpec {
    /// Voters (3 or 5).
    pub nodes: u32,
    /// Fault phase length.
    pub duration_ms: u64,
    /// Healed phase length.
    #[serde(default = "d_heal")]
    pub heal_ms: u64,
    /// Client tasks.
    #[serde(default = "d_clients")]
    pub clients: u32,
    /// Keys.
    #[serde(default = "d_keys")]
    pub keys: u64,
    /// Client deadline per operation.
    #[serde(default = "d_op_timeout")]
    pub op_timeout_ms: u64,
    /// Client pause between operations.
    #[serde(default = "d_think")]
    pub think_ms: u64,
    /// Raft's minimum election timeout.
    #[serde(default = "d_election")]
    pub election_timeout_ms: u64,
    /// Raft's heartbeat interval.
    #[serde(default = "d_heartbeat")]
    pub heartbeat_ms: u64,
    /// Each node's clock rate is drawn from `1 ± clock_skew`.
    #[serde(default)]
    pub clock_skew: f64,
    /// Network latency bounds.
    #[serde(default)]
    pub min_latency_ms: u64,
    #[serde(default = "d_max_latency")]
    pub max_latency_ms: u64,
    /// The disk's standing fault rates.
    #[serde(default)]
    pub disk: DiskFaults,
    /// Scheduled faults.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Random faults.
    #[serde(default)]
    pub random: Vec<RandomSpec>,
    /// Seeds that once failed (run by the tests).
    #[serde(default)]
    pub regression_seeds: Vec<u64>,
}

fn d_heal() -> u64 {
    6_000
}
fn d_clients() -> u32 {
    4
}
fn d_keys() -> u64 {
    3
}
fn d_op_timeout() -> u64 {
    1_000
}
fn d_think() -> u64 {
    20
}
fn d_election() -> u64 {
    300
}
fn d_heartbeat() -> u64 {
    50
}
fn d_max_latency() -> u64 {
    5
}
fn d_period() -> u64 {
    200
}
fn d_slow() -> u64 {
    400
}
fn d_loss() -> CrashLoss {
    CrashLoss::LoseAll
}

/// A fault kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Crash and restart.
    Crash,
    /// Cut from the rest, both ways.
    Isolate,
    /// The targets' messages to the rest are dropped.
    Oneway,
    /// Links to the rest go down and up.
    Flap,
    /// Slow syncs.
    SlowDisk,
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When (ms into the run).
    pub at_ms: u64,
    /// What.
    pub kind: FaultKind,
    /// On whom (see the module doc).
    pub target: String,
    /// For how long.
    pub for_ms: u64,
    /// A crash's loss of unflushed writes.
    #[serde(default = "d_loss")]
    pub loss: CrashLoss,
    /// A flap's half period.
    #[serde(default = "d_period")]
    pub period_ms: u64,
    /// A slow disk's longest sync.
    #[serde(default = "d_slow")]
    pub slow_ms: u64,
}

/// A random fault process.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSpec {
    /// What.
    pub kind: FaultKind,
    /// On whom.
    pub target: String,
    /// Mean gap between two.
    pub every_ms: u64,
    /// For how long each.
    pub for_ms: u64,
    /// A crash's loss of unflushed writes.
    #[serde(default = "d_loss")]
    pub loss: CrashLoss,
    /// A flap's half period.
    #[serde(default = "d_period")]
    pub period_ms: u64,
    /// A slow disk's longest sync.
    #[serde(default = "d_slow")]
    pub slow_ms: u64,
}

/// A fault as injected: concrete targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Injected {
    /// When (ms).
    pub at_ms: u64,
    /// What.
    pub kind: FaultKind,
    /// On whom.
    pub nodes: Vec<u32>,
    /// For how long.
    pub for_ms: u64,
    /// A crash's loss, a flap's half period, a slow disk's longest sync (as specified).
    pub loss: CrashLoss,
    pub period_ms: u64,
    pub slow_ms: u64,
}

/// What one run found.
#[derive(Debug)]
pub struct RaftReport {
    pub scenario: String,
    pub seed: u64,
    pub passed: bool,
    pub trace_hash: u64,
    pub sim_ms: u64,
    /// Anomalies, one line each.
    pub anomalies: Vec<String>,
    /// The faults injected, in order.
    pub injected: Vec<Injected>,
    /// Each node's clock rate (thousandths).
    pub clock_permille: Vec<u64>,
    /// Client operations: completed during faults, after the heal; indeterminate; failed.
    pub ops: (u64, u64, u64, u64),
    /// Highest term seen and leaders elected.
    pub max_term: u64,
    pub leaders: usize,
}

impl RaftScenario {
    /// Parses a scenario file.
    pub fn load(path: &Path) -> Result<RaftScenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let s: RaftScenario =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if !(1..=7).contains(&s.raft.nodes) {
            return Err(format!("{}: nodes must be 1..=7", path.display()));
        }
        Ok(s)
    }

    /// The same scenario with exactly these faults and no random ones (for replaying a
    /// subset of what a run injected).
    #[must_use]
    pub fn with_faults(&self, faults: &[Injected]) -> RaftScenario {
        let mut s = self.clone();
        s.raft.random.clear();
        s.raft.faults = faults
            .iter()
            .map(|f| FaultSpec {
                at_ms: f.at_ms,
                kind: f.kind,
                target: f
                    .nodes
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                for_ms: f.for_ms,
                loss: f.loss,
                period_ms: f.period_ms,
                slow_ms: f.slow_ms,
            })
            .collect();
        s
    }
}

/// Whether the TOML file at `path` is a raft scenario (has a `[raft]` table).
#[must_use]
pub fn is_raft_scenario(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("raft"))
}

fn host(node: u32) -> String {
    format!("raft-{node}")
}

/// What the drivers report, for the safety checks and leader targeting.
#[derive(Default)]
struct Observed {
    /// term → leaders seen in it.
    leaders: BTreeMap<u64, BTreeSet<u32>>,
    /// Each node's latest role and term.
    roles: BTreeMap<u32, (Role, u64)>,
    /// index → (term, data digest, first node to apply it).
    applied: BTreeMap<u64, (u64, u64, u32)>,
    anomalies: Vec<String>,
}

/// Planted-bug switch for tests: applied to every node's Raft config.
pub type RaftTweak = Arc<dyn Fn(&mut Config) + Send + Sync>;

#[derive(Debug, Clone)]
enum Action {
    Fault(FaultSpec),
    Restart(u32),
    Repair(Vec<(u32, u32)>),
    RepairOneway(Vec<(u32, u32)>),
    Flap {
        pairs: Vec<(u32, u32)>,
        until: u64,
        period: u64,
        down: bool,
    },
    DiskRestore(u32),
    Heal,
}

/// Runs one seed.
#[must_use]
pub fn run(scenario: &RaftScenario, seed: u64, tweak: Option<RaftTweak>) -> RaftReport {
    let spec = &scenario.raft;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let heal_at = spec.duration_ms;
    let end = heal_at + spec.heal_ms;
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(rng.next_u64())
        .epoch(UNIX_EPOCH + Duration::from_secs(crate::harness::EPOCH_SECS))
        .tick_duration(Duration::from_millis(1))
        .simulation_duration(Duration::from_millis(end + 5_000))
        .min_message_latency(Duration::from_millis(spec.min_latency_ms))
        .max_message_latency(Duration::from_millis(
            spec.max_latency_ms.max(spec.min_latency_ms),
        ));
    let mut sim = builder.build();
    let observed = Arc::new(Mutex::new(Observed::default()));
    let record = Arc::new(Mutex::new(kv::Record::default()));
    let voters = Membership::voters((1..=spec.nodes).map(|n| NodeId(u64::from(n))));
    let mut disks = BTreeMap::new();
    let mut clock_permille = Vec::new();
    for node in 1..=spec.nodes {
        let disk = SimDisk::new(rng.next_u64(), spec.disk.clone());
        disks.insert(node, disk.clone());
        let seed = rng.next_u64();
        let skew = (spec.clock_skew * 1000.0) as i64;
        let permille = (1000
            + if skew > 0 {
                rng.gen_range(-skew..=skew)
            } else {
                0
            }) as u64;
        clock_permille.push(permille);
        let mut cfg = Config::new(NodeId(u64::from(node)));
        cfg.election_timeout_ms = spec.election_timeout_ms;
        cfg.heartbeat_interval_ms = spec.heartbeat_ms;
        if let Some(t) = &tweak {
            t(&mut cfg);
        }
        let initial = SnapshotMeta {
            index: Index(0),
            term: Term(0),
            membership: voters.clone(),
        };
        let observed = observed.clone();
        let nodes = spec.nodes;
        let starts = std::cell::Cell::new(0u64);
        sim.host(host(node), move || {
            let start = starts.get();
            starts.set(start + 1);
            let disk = disk.clone();
            let latency_disk = disk.clone();
            let observed = observed.clone();
            let observer: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(move |e| {
                observe(&observed, node, e);
            });
            let peers = (1..=nodes)
                .filter(|&p| p != node)
                .map(|p| {
                    (
                        NodeId(u64::from(p)),
                        crate::net::resolve(&host(p), PEER_PORT),
                    )
                })
                .collect();
            let opts = PeerOptions {
                cluster: 1,
                raft: cfg.clone(),
                initial: initial.clone(),
                listen: SocketAddr::from(([0, 0, 0, 0], PEER_PORT)),
                peers,
                seed: seed.wrapping_add(start),
                clock_permille: permille,
                sync: SyncMode::InlineAfter(Arc::new(move || latency_disk.sync_latency())),
                dir: "raft".to_string(),
                idle_timeout: Duration::from_millis(1_000),
                reconnect_backoff: Duration::from_millis(50),
                max_pending_requests: 1024,
                observer: Some(observer),
            };
            async move {
                let (tx, rx) = tokio::sync::mpsc::channel(256);
                // On the host's LocalSet, like the driver's tasks (`Network::spawn` says why).
                tokio::task::spawn_local(kv::serve(tx));
                let storage: Arc<dyn Storage> = Arc::new(disk);
                // A stopped driver (a failed flush) ends the host; the supervisor restarts it.
                let _ = driver::run(Turmoil, storage, opts, kv::Kv::default(), rx).await;
                Ok(())
            }
        });
    }
    let nodes: Vec<String> = (1..=spec.nodes).map(host).collect();
    for id in 1..=spec.clients {
        let cfg = kv::ClientCfg {
            id,
            nodes: nodes.clone(),
            keys: spec.keys,
            op_timeout: Duration::from_millis(spec.op_timeout_ms),
            think: Duration::from_millis(spec.think_ms),
            heal_at_ms: heal_at,
            stop_at_ms: end,
            seed: rng.next_u64(),
        };
        sim.client(format!("client-{id}"), kv::client(cfg, record.clone()));
    }

    // The schedule: scheduled faults, then the random ones, drawn now.
    let mut schedule: BTreeMap<(u64, u64), Action> = BTreeMap::new();
    let mut order = 0u64;
    let mut push = |s: &mut BTreeMap<(u64, u64), Action>, at: u64, a: Action| {
        order += 1;
        s.insert((at, order), a);
    };
    for f in &spec.faults {
        push(&mut schedule, f.at_ms, Action::Fault(f.clone()));
    }
    for r in &spec.random {
        let mut t = 0f64;
        loop {
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            t += -u.ln() * r.every_ms as f64;
            let at = t as u64;
            if at >= heal_at {
                break;
            }
            let f = FaultSpec {
                at_ms: at,
                kind: r.kind,
                target: r.target.clone(),
                for_ms: r.for_ms.min(heal_at - at),
                loss: r.loss,
                period_ms: r.period_ms,
                slow_ms: r.slow_ms,
            };
            push(&mut schedule, at, Action::Fault(f));
        }
    }
    push(&mut schedule, heal_at, Action::Heal);

    let mut injected = Vec::new();
    let mut down: BTreeSet<u32> = BTreeSet::new();
    let mut error = None;
    let mut trace = Fnv64::new();
    loop {
        let now = sim.elapsed().as_millis() as u64;
        while let Some(entry) = schedule.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let action = entry.remove();
            let mut follow = Vec::new();
            apply(
                &mut sim,
                spec,
                &disks,
                &observed,
                &mut rng,
                &mut down,
                now,
                heal_at,
                action,
                &mut injected,
                &mut follow,
            );
            for (at, a) in follow {
                push(&mut schedule, at, a);
            }
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        // Supervisor: a node whose driver stopped on its own restarts after 200 ms.
        for node in 1..=spec.nodes {
            if !down.contains(&node) && !sim.is_host_running(host(node)) {
                down.insert(node);
                push(&mut schedule, now + 200, Action::Restart(node));
            }
        }
    }
    let sim_ms = sim.elapsed().as_millis() as u64;
    drop(sim);

    let rec = std::mem::take(&mut *record.lock().unwrap_or_else(|e| e.into_inner()));
    let obs = std::mem::take(&mut *observed.lock().unwrap_or_else(|e| e.into_inner()));
    let mut anomalies = obs.anomalies.clone();
    if let Some(e) = error {
        anomalies.push(format!("simulation error: {e}"));
    }
    for (key, verdict) in linearizable::check(&rec.ops, MAX_CHECK_STATES) {
        match verdict {
            KeyVerdict::Linearizable => {}
            KeyVerdict::Violation { ops } => {
                anomalies.push(format!("nonlinearizable: key {key} ({ops} operations)"));
            }
            KeyVerdict::Unknown => {
                anomalies.push(format!("check-budget: key {key} undecided"));
            }
        }
    }
    if rec.ok_ops.1 == 0 {
        anomalies.push("no-progress: no operation succeeded after the heal".to_string());
    }
    for op in &rec.ops {
        trace.write(format!("{op:?}").as_bytes());
    }
    for f in &injected {
        trace.write(format!("{f:?}").as_bytes());
    }
    for (i, (t, d, n)) in &obs.applied {
        trace.write(format!("{i} {t} {d} {n}").as_bytes());
    }
    trace.write(sim_ms.to_string().as_bytes());
    RaftReport {
        scenario: scenario.name.clone(),
        seed,
        passed: anomalies.is_empty(),
        trace_hash: trace.finish(),
        sim_ms,
        anomalies,
        injected,
        clock_permille,
        ops: (rec.ok_ops.0, rec.ok_ops.1, rec.unknown_ops, rec.failed_ops),
        max_term: obs.leaders.keys().next_back().copied().unwrap_or(0),
        leaders: obs.leaders.values().map(BTreeSet::len).sum(),
    }
}

fn digest(data: &[u8]) -> u64 {
    let mut h = Fnv64::new();
    h.write(data);
    h.finish()
}

fn observe(observed: &Mutex<Observed>, node: u32, e: Event) {
    let mut o = observed.lock().unwrap_or_else(|e| e.into_inner());
    match e {
        Event::Role { role, term } => {
            o.roles.insert(node, (role, term.0));
            if role == Role::Leader {
                let set = o.leaders.entry(term.0).or_default();
                set.insert(node);
                if set.len() > 1 {
                    let who: Vec<_> = set.iter().copied().collect();
                    o.anomalies.push(format!(
                        "election-safety: leaders {who:?} in term {}",
                        term.0
                    ));
                }
            }
        }
        Event::Applied { index, term, data } => {
            let d = digest(&data);
            match o.applied.get(&index.0) {
                None => {
                    o.applied.insert(index.0, (term.0, d, node));
                }
                Some(&(t, d0, first)) if t != term.0 || d0 != d => {
                    o.anomalies.push(format!(
                        "state-machine-safety: index {} applied as term {t} by {first}, as term {} by {node}",
                        index.0, term.0
                    ));
                }
                Some(_) => {}
            }
        }
    }
}

fn pairs(a: &[u32], nodes: u32) -> Vec<(u32, u32)> {
    let rest: Vec<u32> = (1..=nodes).filter(|n| !a.contains(n)).collect();
    a.iter()
        .flat_map(|&x| rest.iter().map(move |&y| (x, y)))
        .collect()
}

fn resolve_target(
    target: &str,
    nodes: u32,
    observed: &Mutex<Observed>,
    down: &BTreeSet<u32>,
    rng: &mut ChaCha8Rng,
) -> Vec<u32> {
    let up: Vec<u32> = (1..=nodes).filter(|n| !down.contains(n)).collect();
    let leader = {
        let o = observed.lock().unwrap_or_else(|e| e.into_inner());
        o.roles
            .iter()
            .filter(|(n, (r, _))| *r == Role::Leader && !down.contains(n))
            .max_by_key(|(_, (_, t))| *t)
            .map(|(n, _)| *n)
    };
    let any = |rng: &mut ChaCha8Rng, from: &[u32]| -> Option<u32> {
        (!from.is_empty()).then(|| from[rng.gen_range(0..from.len())])
    };
    let leader_or_any = |rng: &mut ChaCha8Rng| leader.or_else(|| any(rng, &up));
    let side = |rng: &mut ChaCha8Rng, size: usize| -> Vec<u32> {
        let mut side: Vec<u32> = leader_or_any(rng).into_iter().collect();
        let mut others: Vec<u32> = (1..=nodes).filter(|n| !side.contains(n)).collect();
        while side.len() < size && !others.is_empty() {
            let i = rng.gen_range(0..others.len());
            side.push(others.remove(i));
        }
        side.sort_unstable();
        side
    };
    let majority = nodes as usize / 2 + 1;
    match target {
        "leader" => leader_or_any(rng).into_iter().collect(),
        "follower" => {
            let f: Vec<u32> = up.iter().copied().filter(|n| Some(*n) != leader).collect();
            any(rng, &f).into_iter().collect()
        }
        "any" => any(rng, &up).into_iter().collect(),
        "minority" => side(rng, majority - 1),
        "majority" => side(rng, majority),
        ids => ids
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .filter(|n| (1..=nodes).contains(n))
            .collect(),
    }
}

#[allow(clippy::too_many_arguments)]
fn apply(
    sim: &mut turmoil::Sim<'_>,
    spec: &RaftSpec,
    disks: &BTreeMap<u32, SimDisk>,
    observed: &Mutex<Observed>,
    rng: &mut ChaCha8Rng,
    down: &mut BTreeSet<u32>,
    now: u64,
    heal_at: u64,
    action: Action,
    injected: &mut Vec<Injected>,
    follow: &mut Vec<(u64, Action)>,
) {
    let h = |n: u32| host(n);
    match action {
        Action::Fault(f) => {
            if now >= heal_at {
                return;
            }
            let targets = resolve_target(&f.target, spec.nodes, observed, down, rng);
            let targets: Vec<u32> = match f.kind {
                FaultKind::Crash => targets.into_iter().filter(|n| !down.contains(n)).collect(),
                _ => targets,
            };
            if targets.is_empty() {
                return;
            }
            let until = (now + f.for_ms).min(heal_at);
            injected.push(Injected {
                at_ms: now,
                kind: f.kind,
                nodes: targets.clone(),
                for_ms: until - now,
                loss: f.loss,
                period_ms: f.period_ms,
                slow_ms: f.slow_ms,
            });
            match f.kind {
                FaultKind::Crash => {
                    for &n in &targets {
                        sim.crash(h(n));
                        let _ = disks[&n].crash(f.loss);
                        down.insert(n);
                        follow.push((until, Action::Restart(n)));
                    }
                }
                FaultKind::Isolate => {
                    let p = pairs(&targets, spec.nodes);
                    for &(a, b) in &p {
                        sim.partition(h(a), h(b));
                    }
                    follow.push((until, Action::Repair(p)));
                }
                FaultKind::Oneway => {
                    let p = pairs(&targets, spec.nodes);
                    for &(a, b) in &p {
                        sim.partition_oneway(h(a), h(b));
                    }
                    follow.push((until, Action::RepairOneway(p)));
                }
                FaultKind::Flap => {
                    follow.push((
                        now,
                        Action::Flap {
                            pairs: pairs(&targets, spec.nodes),
                            until,
                            period: f.period_ms.max(1),
                            down: true,
                        },
                    ));
                }
                FaultKind::SlowDisk => {
                    for &n in &targets {
                        let mut faults = disks[&n].faults();
                        faults.sync_latency_ms = (50, f.slow_ms.max(50));
                        disks[&n].set_faults(faults);
                        follow.push((until, Action::DiskRestore(n)));
                    }
                }
            }
        }
        Action::Restart(n) => {
            if down.remove(&n) {
                sim.bounce(h(n));
            }
        }
        Action::Repair(p) => {
            for (a, b) in p {
                sim.repair(h(a), h(b));
            }
        }
        Action::RepairOneway(p) => {
            for (a, b) in p {
                sim.repair_oneway(h(a), h(b));
            }
        }
        Action::Flap {
            pairs,
            until,
            period,
            down: go_down,
        } => {
            for &(a, b) in &pairs {
                if go_down && now < until {
                    sim.partition(h(a), h(b));
                } else {
                    sim.repair(h(a), h(b));
                }
            }
            if now < until {
                let next = (now + period).min(until);
                follow.push((
                    next,
                    Action::Flap {
                        pairs,
                        until,
                        period,
                        down: !go_down && next < until,
                    },
                ));
            }
        }
        Action::DiskRestore(n) => disks[&n].set_faults(spec.disk.clone()),
        Action::Heal => {
            for a in 1..=spec.nodes {
                for b in 1..=spec.nodes {
                    if a != b {
                        sim.repair(h(a), h(b));
                    }
                }
                disks[&a].set_faults(spec.disk.clone());
            }
            let restart: Vec<u32> = down.iter().copied().collect();
            for n in restart {
                down.remove(&n);
                sim.bounce(h(n));
            }
        }
    }
}

/// One report as text: verdict, hash, counts, faults, anomalies.
#[must_use]
pub fn render(r: &RaftReport, path: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} seed {}: {} trace {:#018x}, {} simulated ms",
        r.scenario,
        r.seed,
        if r.passed { "PASS" } else { "FAIL" },
        r.trace_hash,
        r.sim_ms
    );
    let _ = writeln!(
        s,
        "operations: {} ok during faults, {} ok after the heal, {} indeterminate, {} failed; \
         highest term {}, {} leaders; clocks {:?}‰",
        r.ops.0, r.ops.1, r.ops.2, r.ops.3, r.max_term, r.leaders, r.clock_permille
    );
    let _ = writeln!(s, "faults injected ({}):", r.injected.len());
    for f in &r.injected {
        let _ = writeln!(
            s,
            "  {:>7} ms {:?} {:?} for {} ms",
            f.at_ms, f.kind, f.nodes, f.for_ms
        );
    }
    for a in &r.anomalies {
        let _ = writeln!(s, "ANOMALY {a}");
    }
    if !r.passed {
        let _ = writeln!(s, "replay: keel-sim run {path} --seed {}", r.seed);
    }
    s
}

/// `keel-sim run` for a raft scenario: prints the report; exit 0 on a pass, 1 on a
/// failure, 2 on a bad file.
#[must_use]
pub fn cli_run(path: &Path, seed: u64) -> std::process::ExitCode {
    let s = match RaftScenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keel-sim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let r = run(&s, seed, None);
    print!("{}", render(&r, &path.display().to_string()));
    std::process::ExitCode::from(u8::from(!r.passed))
}

/// `keel-sim sweep` for a raft scenario: one line per seed, then the failing seeds and the
/// totals (wall time and simulated-vs-wall speed).
#[must_use]
pub fn cli_sweep(path: &Path, seeds: std::ops::Range<u64>) -> std::process::ExitCode {
    let s = match RaftScenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keel-sim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Wall time is measured outside the simulation only: it never feeds a run.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let mut failing = Vec::new();
    let mut sim_ms = 0u64;
    for seed in seeds.clone() {
        let r = run(&s, seed, None);
        sim_ms += r.sim_ms;
        if r.passed {
            println!("seed {seed}: pass {:#018x}", r.trace_hash);
        } else {
            println!(
                "seed {seed}: FAIL {:#018x} {}",
                r.trace_hash,
                r.anomalies.join("; ")
            );
            failing.push(seed);
        }
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "{} of {} seeds failed; {:.1} s wall, {:.1} simulated s, {:.1}x real time",
        failing.len(),
        seeds.end.saturating_sub(seeds.start),
        wall,
        sim_ms as f64 / 1000.0,
        sim_ms as f64 / 1000.0 / wall.max(1e-9)
    );
    for seed in &failing {
        println!("  keel-sim run {} --seed {seed}", path.display());
    }
    std::process::ExitCode::from(u8::from(!failing.is_empty()))
}

/// The anomaly kinds of a report (the words before each `:`), what a shrink must keep.
#[must_use]
pub fn anomaly_kinds(r: &RaftReport) -> BTreeSet<String> {
    r.anomalies
        .iter()
        .map(|a| a.split(':').next().unwrap_or(a).to_string())
        .collect()
}

/// Shrinks a failing seed: delta-debugs ([`crate::shrink::ddmin`]) the faults it injected,
/// replayed as a schedule with the same seed, keeping a subset that fails with one of the
/// same anomaly kinds. Returns the shrunk scenario and its report, or the passing report.
pub fn shrink_seed(
    scenario: &RaftScenario,
    seed: u64,
    tweak: Option<RaftTweak>,
) -> Result<(RaftScenario, RaftReport), Box<RaftReport>> {
    let first = run(scenario, seed, tweak.clone());
    if first.passed {
        return Err(Box::new(first));
    }
    let kinds = anomaly_kinds(&first);
    let fails = |subset: &[Injected]| {
        let r = run(&scenario.with_faults(subset), seed, tweak.clone());
        !anomaly_kinds(&r).is_disjoint(&kinds)
    };
    let kept = if fails(&first.injected) {
        crate::shrink::ddmin(first.injected.clone(), fails)
    } else {
        // The schedule replayed without the random draws fails differently: keep them all.
        first.injected.clone()
    };
    let mut shrunk = scenario.with_faults(&kept);
    shrunk.raft.regression_seeds = vec![seed];
    shrunk.name = format!("{}-seed{seed}-shrunk", scenario.name);
    let report = run(&shrunk, seed, tweak);
    Ok((shrunk, report))
}

/// `keel-sim shrink` for a raft scenario: writes the shrunk scenario file.
#[must_use]
pub fn cli_shrink(path: &Path, seed: u64, out: Option<&Path>) -> std::process::ExitCode {
    let s = match RaftScenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keel-sim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match shrink_seed(&s, seed, None) {
        Err(r) => {
            eprintln!(
                "keel-sim: seed {seed} of {} passes ({} faults): nothing to shrink",
                path.display(),
                r.injected.len()
            );
            std::process::ExitCode::from(2)
        }
        Ok((shrunk, report)) => {
            let file = out.map_or_else(
                || Path::new("scenarios/shrunk").join(format!("{}-seed{seed}.toml", s.name)),
                Path::to_path_buf,
            );
            let text = match toml::to_string(&shrunk) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("keel-sim: cannot write the shrunk scenario: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) = std::fs::write(&file, text) {
                eprintln!("keel-sim: cannot write {}: {e}", file.display());
                return std::process::ExitCode::from(2);
            }
            print!("{}", render(&report, &file.display().to_string()));
            println!(
                "shrunk to {} faults, written to {}",
                shrunk.raft.faults.len(),
                file.display()
            );
            std::process::ExitCode::from(1)
        }
    }
}
