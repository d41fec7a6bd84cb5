//! The randomized cluster harness: N in-memory replicas over a network that drops,
//! duplicates, reorders and delays messages, with partitions (both- and one-way), crashes that
//! lose unflushed log entries and hard state, restarts, delayed flushes, compaction, client
//! writes and linearizable reads (ReadIndex and lease), membership changes (a spare joins as a
//! learner, catches up, is promoted; a voter, the leader too, is removed and shut down once its
//! removal commits), leadership transfers at random times and clocks that run at different
//! rates (each within the drift bound the replicas are configured with), all drawn from one
//! seed. After every step it checks Election
//! Safety, Log Matching, Leader Completeness, State Machine Safety, that commit indexes never go
//! back and never exceed what a majority holds durably, that reads are linearizable, that no
//! replica votes twice in a term (seen on the wire), that a pre-vote changes no term and that a
//! leader cut off from a majority steps down within two election timeouts (check-quorum);
//! then it heals every fault and requires convergence (one leader; a new entry applied
//! everywhere). Seeds also pick variants: 3 or 5 replicas, lease or ReadIndex reads, a slow
//! disk, frequent crashes, or plain Raft without pre-vote and check-quorum.
//!
//! A read is linearizable when the index it returns is at least every index any replica knew
//! committed when the read was asked: that covers every write acknowledged before the read
//! started (a write is acknowledged only once committed).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use keel_raft::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const ETO: u64 = 100;
pub const HB: u64 = 20;

/// What one run injects.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: u64,
    pub seed: u64,
    pub fault_ms: u64,
    pub heal_ms: u64,
    pub drop_p: f64,
    pub dup_p: f64,
    pub max_delay_ms: u64,
    pub crash_p: f64,
    pub partition_p: f64,
    pub sync_p: f64,
    pub propose_p: f64,
    pub read_p: f64,
    pub compact_p: f64,
    pub lease_reads: bool,
    /// Replicas beyond `nodes` that start outside the group, to be added by membership changes.
    pub spares: u64,
    /// Per step: try the next membership change.
    pub conf_p: f64,
    /// Per step: ask the leader to hand over to another voter.
    pub transfer_p: f64,
    /// Each replica's clock runs at a rate drawn from `1 ± drift_ppm / 10^6`.
    pub drift_ppm: u64,
    /// The drift bound the replicas are configured with (`Config::max_clock_drift_ms`, per
    /// election timeout).
    pub drift_bound_ms: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub bug: Option<PlantedBug>,
}

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            nodes: if seed.is_multiple_of(2) { 3 } else { 5 },
            seed,
            fault_ms: 3000,
            heal_ms: 2000,
            drop_p: 0.05,
            dup_p: 0.03,
            max_delay_ms: 15,
            crash_p: 0.004,
            partition_p: 0.004,
            sync_p: 0.25,
            propose_p: 0.15,
            read_p: 0.1,
            compact_p: 0.01,
            lease_reads: seed % 3 != 1,
            spares: 2,
            conf_p: 0.02,
            transfer_p: 0.002,
            // Two clocks differ by at most 4% (4 ms per election timeout), plus a millisecond
            // of rounding on each: within the 10 ms bound.
            drift_ppm: 20_000,
            drift_bound_ms: 10,
            pre_vote: true,
            check_quorum: true,
            bug: None,
        }
        .variant()
    }

    /// Seeds also pick a variant: a slow disk (long windows of unflushed state) or plain Raft
    /// without pre-vote and check-quorum (split votes and competing candidates are common).
    fn variant(mut self) -> SimConfig {
        match self.seed % 5 {
            1 => self.sync_p = 0.03,
            2 => {
                self.pre_vote = false;
                self.check_quorum = false;
                self.lease_reads = false;
                self.sync_p = 0.05;
                self.crash_p = 0.01;
            }
            3 => self.crash_p = 0.01,
            _ => {}
        }
        self
    }
}

struct InFlight {
    at: u64,
    from: NodeId,
    to: NodeId,
    msg: Message,
}

struct Replica {
    node: Option<RaftNode<MemLog>>,
    /// The storage of a crashed replica while it is down.
    down_log: Option<MemLog>,
    down_until: u64,
    durable_hs: HardState,
    pending: Option<(u64, HardState)>,
    digest: u64,
    sm_applied: Index,
    last_commit: Index,
    recorded_commit: Index,
    incarnation: u64,
    /// The clock's rate is `1 + skew_ppm / 10^6`; it read `offset_ms` at real time 0.
    skew_ppm: i64,
    offset_ms: u64,
    /// Removed from the group and shut down: never restarts; its durable log stays for the
    /// durability checks.
    retired: bool,
    /// Shut down at this real time (its removal committed).
    retire_at: Option<u64>,
}

impl Replica {
    /// This replica's clock at real time `now`.
    fn clock(&self, now: u64) -> Instant {
        let skew = i128::from(now) * i128::from(self.skew_ppm) / 1_000_000;
        Instant((i128::from(self.offset_ms) + i128::from(now) + skew) as u64)
    }

    /// The real time this replica's clock needs for `ms` of its own, rounded up.
    fn real_ms(&self, ms: u64) -> u64 {
        let rate = 1_000_000 + self.skew_ppm;
        (u128::from(ms) * 1_000_000).div_ceil(rate as u128) as u64 + 1
    }
}

/// What a run found, or how it ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub committed: u64,
    pub elections: usize,
    pub reads: u64,
    /// Reads answered at once from the leader lease.
    pub lease_reads: u64,
    pub crashes: u64,
    /// Membership changes that committed.
    pub conf_changes: u64,
    /// Terms won by a transfer target after a `transfer_leader`.
    pub transfers: u64,
    /// Removals of the leader (by itself) that committed.
    pub leader_removals: u64,
    /// Snapshots installed from InstallSnapshot chunks.
    pub snapshots_installed: u64,
}

pub struct Sim {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: u64,
    reps: BTreeMap<NodeId, Replica>,
    net: Vec<InFlight>,
    cut: BTreeSet<(NodeId, NodeId)>,
    heal_at: u64,
    faults: bool,
    /// term -> (leader, its incarnation): one leader per term, elected once.
    leaders: BTreeMap<Term, (NodeId, u64)>,
    /// (index, term) -> (payload, term of the previous entry): Log Matching.
    entries: BTreeMap<(Index, Term), (EntryData, Term)>,
    /// index -> (term, the observing node's term when it saw it committed).
    committed: BTreeMap<Index, (Term, Term)>,
    /// Every voter set ever appended (committed or not): a committed entry is held durably by
    /// a majority of one of them.
    voter_sets: BTreeSet<BTreeSet<NodeId>>,
    /// Replicas that were members in some committed configuration.
    ever_member: BTreeSet<NodeId>,
    /// Committed membership entries already acted on.
    conf_seen: BTreeSet<Index>,
    /// Indexes of the leader's own removal, as proposed.
    leader_removals_asked: BTreeSet<Index>,
    leader_removals: u64,
    snapshots_installed: u64,
    /// (target, the term it was asked at) of transfers asked for.
    transfers_asked: BTreeMap<NodeId, Term>,
    /// index -> state machine digest after applying it.
    digests: BTreeMap<Index, u64>,
    reads: BTreeMap<u64, Index>,
    /// (receiver, sender) -> when a message from sender was last delivered to receiver.
    heard: BTreeMap<(NodeId, NodeId), u64>,
    /// node -> (term, since when it has led that term).
    leading_since: BTreeMap<NodeId, (Term, u64)>,
    /// (voter, term) -> the candidate it voted for, as seen on the wire.
    votes: BTreeMap<(NodeId, Term), NodeId>,
    next_ctx: u64,
    next_payload: u64,
    steps: u64,
    crashes: u64,
    served_reads: u64,
    lease_served: u64,
    transfers: u64,
}

/// A state machine image: its digest, padded to several chunks of the replicas'
/// `max_msg_bytes` so that InstallSnapshot goes in chunks; the padding is derived from the
/// digest so that a chunk put back in the wrong place shows.
fn snapshot_image(digest: u64) -> Vec<u8> {
    let mut image = digest.to_le_bytes().to_vec();
    let mut x = digest;
    for _ in 0..600 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        image.push((x >> 56) as u8);
    }
    image
}

fn mix(d: u64, e: &Entry) -> u64 {
    let mut h = d ^ 0x9e37_79b9_7f4a_7c15;
    h = h.wrapping_mul(31).wrapping_add(e.index.0);
    h = h.wrapping_mul(31).wrapping_add(e.term.0);
    if let EntryData::Normal(b) = &e.data {
        for &x in b {
            h = h.wrapping_mul(131).wrapping_add(u64::from(x));
        }
    }
    h
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let members = Membership::voters((1..=cfg.nodes).map(NodeId));
        let mut reps = BTreeMap::new();
        for i in 1..=cfg.nodes + cfg.spares {
            let id = NodeId(i);
            let drift = cfg.drift_ppm as i64;
            let skew_ppm = rng.gen_range(-drift..=drift);
            let offset_ms = rng.gen_range(0..1000);
            let node = RaftNode::new(
                Self::node_cfg(&cfg, id),
                MemLog::new(members.clone()),
                HardState::default(),
                Index(0),
                rng.gen(),
                Instant(offset_ms),
            )
            .expect("fresh storage");
            reps.insert(
                id,
                Replica {
                    skew_ppm,
                    offset_ms,
                    retired: false,
                    retire_at: None,
                    node: Some(node),
                    down_log: None,
                    down_until: 0,
                    durable_hs: HardState::default(),
                    pending: None,
                    digest: 0,
                    sm_applied: Index(0),
                    last_commit: Index(0),
                    recorded_commit: Index(0),
                    incarnation: 0,
                },
            );
        }
        Sim {
            cfg,
            rng,
            now: 0,
            reps,
            net: Vec::new(),
            cut: BTreeSet::new(),
            heal_at: 0,
            faults: true,
            leaders: BTreeMap::new(),
            voter_sets: [members.voters.clone()].into_iter().collect(),
            ever_member: members.voters.clone(),
            conf_seen: BTreeSet::new(),
            transfers_asked: BTreeMap::new(),
            leader_removals_asked: BTreeSet::new(),
            leader_removals: 0,
            snapshots_installed: 0,
            entries: BTreeMap::new(),
            committed: BTreeMap::new(),
            digests: BTreeMap::new(),
            reads: BTreeMap::new(),
            votes: BTreeMap::new(),
            heard: BTreeMap::new(),
            leading_since: BTreeMap::new(),
            next_ctx: 0,
            next_payload: 0,
            steps: 0,
            crashes: 0,
            served_reads: 0,
            lease_served: 0,
            transfers: 0,
        }
    }

    fn node_cfg(cfg: &SimConfig, id: NodeId) -> Config {
        let mut c = Config::new(id);
        c.election_timeout_ms = ETO;
        c.heartbeat_interval_ms = HB;
        c.lease_reads = cfg.lease_reads;
        c.pre_vote = cfg.pre_vote;
        c.check_quorum = cfg.check_quorum;
        c.max_clock_drift_ms = cfg.drift_bound_ms;
        c.max_inflight_msgs = 4;
        c.max_msg_bytes = 200;
        #[cfg(feature = "planted-bugs")]
        {
            c.planted_bug = cfg.bug;
        }
        c
    }

    /// Runs the fault phase then the heal phase; `Err` names the first violated property.
    pub fn run(mut self) -> Result<Outcome, String> {
        while self.now < self.cfg.fault_ms {
            self.step()?;
        }
        self.faults = false;
        self.cut.clear();
        let ids: Vec<NodeId> = self.reps.keys().copied().collect();
        for id in &ids {
            if self.reps[id].node.is_none() && !self.reps[id].retired {
                self.restart(*id);
            }
        }
        let end = self.now + self.cfg.heal_ms;
        while self.now < end {
            self.step()?;
        }
        self.converged()?;
        Ok(Outcome {
            committed: self.committed.len() as u64,
            elections: self.leaders.len(),
            reads: self.served_reads,
            lease_reads: self.lease_served,
            crashes: self.crashes,
            conf_changes: self.conf_seen.len() as u64,
            transfers: self.transfers,
            leader_removals: self.leader_removals,
            snapshots_installed: self.snapshots_installed,
        })
    }

    /// The replicas that are up and believe they lead.
    fn leaders(&self) -> Vec<NodeId> {
        self.reps
            .iter()
            .filter(|(_, r)| r.node.as_ref().is_some_and(|n| n.role() == Role::Leader))
            .map(|(id, _)| *id)
            .collect()
    }

    fn converged(&mut self) -> Result<(), String> {
        let leaders = self.leaders();
        if leaders.len() != 1 {
            return Err(format!("liveness: {} leaders after healing", leaders.len()));
        }
        let l = leaders[0];
        let now = self.reps[&l].clock(self.now);
        let idx = self
            .reps
            .get_mut(&l)
            .and_then(|r| r.node.as_mut())
            .map(|n| n.propose(now, b"final".to_vec()));
        let Some(Ok(idx)) = idx else {
            return Err("liveness: the leader refused".into());
        };
        self.drain(l)?;
        // Every member of the group (spares never added and retired replicas are not).
        let members: Vec<NodeId> = self.reps[&l]
            .node
            .as_ref()
            .expect("up")
            .membership()
            .members()
            .collect();
        let end = self.now + 1000;
        while self.now < end {
            self.step()?;
            if members.iter().all(|m| self.reps[m].sm_applied >= idx) {
                return Ok(());
            }
        }
        let state: Vec<String> = self
            .reps
            .iter()
            .filter(|(id, _)| members.contains(id))
            .map(|(id, r)| {
                let n = r.node.as_ref().expect("up");
                let pr = self.reps[&l]
                    .node
                    .as_ref()
                    .and_then(|ln| ln.progress(*id).cloned());
                format!(
                    "{id}: {:?} {} applied {} commit {} durable {} last {} first {} pr {:?}",
                    n.role(),
                    n.term(),
                    r.sm_applied,
                    n.commit_index(),
                    n.durable_index(),
                    n.log().last_index(),
                    n.log().first_index(),
                    pr.map(|p| (p.state, p.matched, p.next, p.paused))
                )
            })
            .collect();
        Err(format!(
            "liveness: entry {idx} not applied everywhere: {state:#?}"
        ))
    }

    fn step(&mut self) -> Result<(), String> {
        self.steps += 1;
        self.now += self.rng.gen_range(1..=3);
        let now = self.now;
        if self.faults {
            self.inject_faults();
        }
        // Restarts and shut-downs of removed replicas.
        let ids: Vec<NodeId> = self.reps.keys().copied().collect();
        for id in &ids {
            let r = &self.reps[id];
            if r.node.is_none() && !r.retired && r.down_until <= now {
                self.restart(*id);
            }
            if self.reps[id].retire_at.is_some_and(|t| t <= now) {
                self.retire(*id);
            }
        }
        // Deliveries due, in random order among them (reordering beyond delays).
        let mut due = Vec::new();
        let mut k = 0;
        while k < self.net.len() {
            if self.net[k].at <= now {
                due.push(self.net.swap_remove(k));
            } else {
                k += 1;
            }
        }
        while !due.is_empty() {
            let m = due.swap_remove(self.rng.gen_range(0..due.len()));
            self.deliver(m)?;
        }
        // Timers.
        for id in &ids {
            let r = self.reps.get_mut(id).expect("replica");
            let local = r.clock(now);
            if let Some(node) = r.node.as_mut() {
                if node.next_deadline().is_some_and(|d| d <= local) {
                    node.tick(local);
                    self.drain(*id)?;
                }
            }
        }
        // Flushes, late and in no order across nodes.
        for id in &ids {
            let sync_p = if self.faults { self.cfg.sync_p } else { 0.9 };
            if self.reps[id].pending.is_some() && self.rng.gen_bool(sync_p) {
                let r = self.reps.get_mut(id).expect("replica");
                let (seq, hs) = r.pending.take().expect("pending");
                let local = r.clock(now);
                if let Some(node) = r.node.as_mut() {
                    node.log_mut().sync();
                    r.durable_hs = hs;
                    node.persisted(local, seq);
                }
                self.drain(*id)?;
            }
        }
        self.client()?;
        if self.faults {
            self.operator()?;
        }
        self.check()
    }

    fn inject_faults(&mut self) {
        let now = self.now;
        if now >= self.heal_at && !self.cut.is_empty() {
            self.cut.clear();
        }
        let ids: Vec<NodeId> = self.reps.keys().copied().collect();
        if self.rng.gen_bool(self.cfg.partition_p) {
            // Faults pile up half the time.
            if self.rng.gen_bool(0.5) {
                self.cut.clear();
            }
            match self.rng.gen_range(0..4) {
                // A split of the cluster, both ways or one way (the side cannot send).
                0 | 1 => {
                    let one_way = self.rng.gen_bool(0.5);
                    let side: BTreeSet<NodeId> = ids
                        .iter()
                        .copied()
                        .filter(|_| self.rng.gen_bool(0.4))
                        .collect();
                    for a in &ids {
                        for b in &ids {
                            if side.contains(a) && !side.contains(b) {
                                self.cut.insert((*a, *b));
                                if !one_way {
                                    self.cut.insert((*b, *a));
                                }
                            }
                        }
                    }
                }
                // One direction of one link.
                2 => {
                    let a = ids[self.rng.gen_range(0..ids.len())];
                    let b = ids[self.rng.gen_range(0..ids.len())];
                    self.cut.insert((a, b));
                }
                // One broken link between two replicas that both still reach the rest.
                _ => {
                    let a = ids[self.rng.gen_range(0..ids.len())];
                    let b = ids[self.rng.gen_range(0..ids.len())];
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                }
            }
            self.heal_at = now + self.rng.gen_range(50..800);
        }
        if self.rng.gen_bool(self.cfg.crash_p) {
            // Half the crashes hit a leader: the fault that matters most.
            let id = match self.leader_like() {
                Some(l) if self.rng.gen_bool(0.5) => l,
                _ => ids[self.rng.gen_range(0..ids.len())],
            };
            if self.reps[&id].retired {
                return;
            }
            let r = self.reps.get_mut(&id).expect("replica");
            if let Some(node) = r.node.take() {
                let mut log = node.log().clone();
                log.crash();
                r.down_log = Some(log);
                r.pending = None;
                // Half are quick supervisor restarts.
                let down = if self.rng.gen_bool(0.5) {
                    1..20
                } else {
                    20..400
                };
                r.down_until = now + self.rng.gen_range(down);
                self.crashes += 1;
            }
        }
    }

    fn restart(&mut self, id: NodeId) {
        let seed = self.rng.gen();
        let cfg = Self::node_cfg(&self.cfg, id);
        let r = self.reps.get_mut(&id).expect("replica");
        let now = r.clock(self.now).0;
        let Some(log) = r.down_log.take() else { return };
        let snap = log.snapshot();
        let applied = snap.meta.index;
        r.digest = u64::from_le_bytes(
            snap.data
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        );
        r.sm_applied = applied;
        r.last_commit = applied;
        r.recorded_commit = applied;
        r.down_until = 0;
        r.incarnation += 1;
        let node = RaftNode::new(cfg, log, r.durable_hs, applied, seed, Instant(now))
            .expect("durable storage is consistent");
        r.node = Some(node);
    }

    /// A replica that believes it leads (a client's cached leader), if any.
    fn leader_like(&mut self) -> Option<NodeId> {
        let leaders = self.leaders();
        (!leaders.is_empty()).then(|| leaders[self.rng.gen_range(0..leaders.len())])
    }

    /// Clients send to a replica that says it leads, else to any.
    fn client_target(&mut self, ids: &[NodeId]) -> NodeId {
        match self.leader_like() {
            Some(l) if self.rng.gen_bool(0.8) => l,
            _ => ids[self.rng.gen_range(0..ids.len())],
        }
    }

    fn client(&mut self) -> Result<(), String> {
        let ids: Vec<NodeId> = self.reps.keys().copied().collect();
        if self.rng.gen_bool(self.cfg.propose_p) {
            let id = self.client_target(&ids);
            self.next_payload += 1;
            let payload = self.next_payload.to_le_bytes().to_vec();
            let now = self.reps[&id].clock(self.now);
            if let Some(node) = self.reps.get_mut(&id).and_then(|r| r.node.as_mut()) {
                if node.propose(now, payload).is_ok() {
                    self.drain(id)?;
                }
            }
        }
        if self.rng.gen_bool(self.cfg.read_p) {
            let id = self.client_target(&ids);
            let floor = self
                .committed
                .keys()
                .next_back()
                .copied()
                .unwrap_or(Index(0));
            self.next_ctx += 1;
            let ctx = self.next_ctx;
            let now = self.reps[&id].clock(self.now);
            if let Some(node) = self.reps.get_mut(&id).and_then(|r| r.node.as_mut()) {
                if node.read_index(now, ctx).is_ok() {
                    self.reads.insert(ctx, floor);
                    let served = self.served_reads;
                    self.drain(id)?;
                    // Answered within the call: from the lease (or a group of one voter).
                    if self.served_reads > served {
                        self.lease_served += 1;
                    }
                }
            }
        }
        if self.rng.gen_bool(self.cfg.compact_p) {
            let id = ids[self.rng.gen_range(0..ids.len())];
            let r = self.reps.get_mut(&id).expect("replica");
            let now = r.clock(self.now);
            if let Some(node) = r.node.as_mut() {
                if r.sm_applied > node.log().snapshot_meta().index.plus(5) {
                    let at = r.sm_applied;
                    node.compact(now, at, snapshot_image(r.digest));
                    self.drain(id)?;
                }
            }
        }
        Ok(())
    }

    /// The operator's actions at random times: one membership change at a time (add a spare
    /// as a learner; promote it once it holds everything committed; remove a voter, sometimes
    /// the leader, to get back to `nodes` voters) and leadership transfers.
    fn operator(&mut self) -> Result<(), String> {
        let conf = self.rng.gen_bool(self.cfg.conf_p);
        let transfer = self.rng.gen_bool(self.cfg.transfer_p);
        if !conf && !transfer {
            return Ok(());
        }
        let Some(l) = self.leader_like() else {
            return Ok(());
        };
        let now = self.reps[&l].clock(self.now);
        let node = self.reps[&l].node.as_ref().expect("a leader is up");
        let m = node.membership().clone();
        if conf {
            let change = if let Some(&x) = m.learners.iter().next() {
                let caught_up = node
                    .progress(x)
                    .is_some_and(|p| p.matched >= node.commit_index());
                caught_up.then_some(ConfChange::AddVoter(x))
            } else if m.voters.len() as u64 > self.cfg.nodes {
                let voters: Vec<NodeId> = m.voters.iter().copied().collect();
                let x = if m.is_voter(l) && self.rng.gen_bool(0.3) {
                    l
                } else {
                    voters[self.rng.gen_range(0..voters.len())]
                };
                Some(ConfChange::Remove(x))
            } else {
                self.reps
                    .iter()
                    .find(|(id, r)| {
                        !r.retired && !m.contains(**id) && !self.ever_member.contains(id)
                    })
                    .map(|(id, _)| ConfChange::AddLearner(*id))
            };
            if let Some(change) = change {
                let node = self
                    .reps
                    .get_mut(&l)
                    .and_then(|r| r.node.as_mut())
                    .expect("up");
                if let Ok(index) = node.propose_conf_change(now, change) {
                    if change == ConfChange::Remove(l) {
                        self.leader_removals_asked.insert(index);
                    }
                    self.drain(l)?;
                }
            }
        }
        if transfer {
            let others: Vec<NodeId> = m.voters.iter().copied().filter(|v| *v != l).collect();
            if !others.is_empty() {
                let to = others[self.rng.gen_range(0..others.len())];
                let node = self
                    .reps
                    .get_mut(&l)
                    .and_then(|r| r.node.as_mut())
                    .expect("up");
                let term = node.term();
                if node.transfer_leader(now, to).is_ok() {
                    self.transfers_asked.insert(to, term);
                    self.drain(l)?;
                }
            }
        }
        Ok(())
    }

    /// Shuts a removed replica down for good, keeping what it had made durable.
    fn retire(&mut self, id: NodeId) {
        let r = self.reps.get_mut(&id).expect("replica");
        r.retire_at = None;
        r.retired = true;
        r.pending = None;
        if let Some(node) = r.node.take() {
            let mut log = node.log().clone();
            log.crash();
            r.down_log = Some(log);
        }
    }

    fn deliver(&mut self, m: InFlight) -> Result<(), String> {
        if self.cut.contains(&(m.from, m.to)) {
            return Ok(());
        }
        let now = self.reps[&m.to].clock(self.now);
        let Some(node) = self.reps.get_mut(&m.to).and_then(|r| r.node.as_mut()) else {
            return Ok(());
        };
        self.heard.insert((m.to, m.from), self.now);
        let is_prevote = matches!(m.msg, Message::PreVote { .. });
        let before = node.term();
        node.step(now, m.from, m.msg);
        if is_prevote && node.term() != before {
            return Err(format!(
                "§9.6: a PreVote from {} moved {}'s term {} -> {}",
                m.from,
                m.to,
                before,
                node.term()
            ));
        }
        self.drain(m.to)
    }

    fn drain(&mut self, id: NodeId) -> Result<(), String> {
        loop {
            let Some(out) = self
                .reps
                .get_mut(&id)
                .and_then(|r| r.node.as_mut())
                .and_then(|n| n.poll_output())
            else {
                return Ok(());
            };
            match out {
                Output::Send { to, msg } => {
                    let vote = match msg {
                        Message::RequestVote { term, .. } => Some((term, id)),
                        Message::RequestVoteResp {
                            term,
                            granted: true,
                        } => Some((term, to)),
                        _ => None,
                    };
                    if let Some((term, cand)) = vote {
                        if let Some(&prev) = self.votes.get(&(id, term)) {
                            if prev != cand {
                                return Err(format!(
                                    "§5.2: {id} voted for {prev} and {cand} in {term}"
                                ));
                            }
                        }
                        self.votes.insert((id, term), cand);
                    }
                    if self.faults && self.rng.gen_bool(self.cfg.drop_p) {
                        continue;
                    }
                    let copies = if self.faults && self.rng.gen_bool(self.cfg.dup_p) {
                        2
                    } else {
                        1
                    };
                    for _ in 0..copies {
                        let at = self.now + self.rng.gen_range(0..=self.cfg.max_delay_ms);
                        self.net.push(InFlight {
                            at,
                            from: id,
                            to,
                            msg: msg.clone(),
                        });
                    }
                }
                Output::Persist {
                    seq, hard_state, ..
                } => {
                    self.reps.get_mut(&id).expect("replica").pending = Some((seq, hard_state));
                }
                Output::Apply { from, to } => self.apply(id, from, to)?,
                Output::RestoreSnapshot { meta } => {
                    let r = self.reps.get_mut(&id).expect("replica");
                    let node = r.node.as_ref().expect("up");
                    let snap = node.log().snapshot();
                    let d = u64::from_le_bytes(
                        snap.data
                            .get(..8)
                            .and_then(|b| b.try_into().ok())
                            .unwrap_or([0; 8]),
                    );
                    if snap.data != snapshot_image(d) {
                        return Err(format!(
                            "{id}: snapshot at {} reassembled wrong from its chunks",
                            meta.index
                        ));
                    }
                    if let Some(&g) = self.digests.get(&meta.index) {
                        if g != d {
                            return Err(format!(
                                "state machine safety: snapshot at {} differs",
                                meta.index
                            ));
                        }
                    }
                    r.digest = d;
                    r.sm_applied = meta.index;
                    self.snapshots_installed += 1;
                }
                Output::ReadReady { ctx, index } => {
                    self.served_reads += 1;
                    if let Some(floor) = self.reads.remove(&ctx) {
                        if index < floor {
                            return Err(format!(
                                "linearizability: {id} served read {ctx} at {index} after {floor} was committed"
                            ));
                        }
                    }
                }
                Output::ReadFailed { ctx } => {
                    self.reads.remove(&ctx);
                }
                Output::RoleChanged { .. } => {}
            }
        }
    }

    fn apply(&mut self, id: NodeId, from: Index, to: Index) -> Result<(), String> {
        let r = self.reps.get_mut(&id).expect("replica");
        let node = r.node.as_ref().expect("up");
        if from != r.sm_applied.next() {
            return Err(format!("{id}: apply from {from} after {}", r.sm_applied));
        }
        for e in node.log().entries(from, to, u64::MAX) {
            r.digest = mix(r.digest, &e);
            r.sm_applied = e.index;
            match self.digests.get(&e.index) {
                Some(&g) if g != r.digest => {
                    return Err(format!(
                        "state machine safety: {id} applied a different entry at {}",
                        e.index
                    ));
                }
                Some(_) => {}
                None => {
                    self.digests.insert(e.index, r.digest);
                }
            }
        }
        if r.sm_applied != to {
            return Err(format!(
                "{id}: Apply up to {to} but the log ends at {}",
                r.sm_applied
            ));
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        let full = self.steps.is_multiple_of(25);
        let mut new_confs = Vec::new();
        let ids: Vec<NodeId> = self.reps.keys().copied().collect();
        for id in &ids {
            let r = &self.reps[id];
            let Some(node) = r.node.as_ref() else {
                continue;
            };
            let term = node.term();
            // Election Safety.
            if node.role() == Role::Leader {
                if let Some(&(other, inc)) = self.leaders.get(&term) {
                    if other != *id {
                        return Err(format!(
                            "election safety: {other} and {id} both lead {term}"
                        ));
                    }
                    if inc != r.incarnation {
                        // Its vote for itself was durable before it led, so after a restart it
                        // could only campaign at a later term.
                        return Err(format!(
                            "election safety: {id} won {term} again after a restart"
                        ));
                    }
                }
                self.leaders.insert(term, (*id, r.incarnation));
                if self.transfers_asked.get(id).is_some_and(|&t| t < term) {
                    self.transfers_asked.remove(id);
                    self.transfers += 1;
                }
                // Check-quorum (thesis §6.2): a leader that heard from no majority within two
                // election timeouts has stepped down.
                let since = match self.leading_since.get(id) {
                    Some(&(t, since)) if t == term => since,
                    _ => {
                        self.leading_since.insert(*id, (term, self.now));
                        self.now
                    }
                };
                // Two election timeouts of the leader's clock, in real time.
                let window = r.real_ms(2 * ETO) + 10;
                let m = node.membership();
                if self.cfg.check_quorum && self.now > since + window {
                    let heard = m
                        .voters
                        .iter()
                        .filter(|p| {
                            *p == id
                                || self
                                    .heard
                                    .get(&(*id, **p))
                                    .is_some_and(|&t| t + window >= self.now)
                        })
                        .count();
                    if heard < m.quorum() {
                        return Err(format!(
                            "check-quorum: {id} still leads {term} having heard from {heard} voters in {window} ms"
                        ));
                    }
                }
            } else {
                self.leading_since.remove(id);
            }
            // Commit indexes never go back.
            let commit = node.commit_index();
            if commit < r.last_commit {
                return Err(format!(
                    "{id}: commit went back {} -> {commit}",
                    r.last_commit
                ));
            }
            let log = node.log();
            // Log Matching, on the uncommitted suffix every step and the whole log now and then.
            let lo = if full {
                log.first_index()
            } else {
                log.first_index().max(commit.prev())
            };
            let mut i = lo;
            while i <= log.last_index() {
                let t = log.term_at(i).expect("held");
                let prev = log.term_at(i.prev()).unwrap_or_default();
                let data = log.entries(i, i, u64::MAX).pop().expect("held").data;
                match self.entries.get(&(i, t)) {
                    Some((d, p)) if *d != data || *p != prev => {
                        return Err(format!("log matching: {id} holds a different ({i}, {t})"));
                    }
                    Some(_) => {}
                    None => {
                        if let EntryData::Membership(m) = &data {
                            self.voter_sets.insert(m.voters.clone());
                        }
                        self.entries.insert((i, t), (data, prev));
                    }
                }
                i = i.next();
            }
            // Newly committed entries: agree with what others committed; held durably by a
            // majority.
            let mut c = r.recorded_commit.next();
            while c <= commit {
                if let Some(t) = log.term_at(c) {
                    match self.committed.get(&c) {
                        Some((ct, _)) if *ct != t => {
                            return Err(format!(
                                "state machine safety: {id} committed ({c}, {t}) over ({c}, {ct})"
                            ));
                        }
                        Some(_) => {}
                        None => {
                            self.committed.insert(c, (t, term));
                            if let Some((EntryData::Membership(m), _)) = self.entries.get(&(c, t)) {
                                new_confs.push((c, m.clone()));
                            }
                        }
                    }
                }
                c = c.next();
            }
            if commit > r.recorded_commit {
                if let Some(&(ct, _)) = self.committed.get(&commit) {
                    let holders: BTreeSet<NodeId> = self
                        .reps
                        .iter()
                        .filter(|(_, o)| {
                            let l = o.node.as_ref().map(|n| n.log()).or(o.down_log.as_ref());
                            l.is_some_and(|l| {
                                l.durable_snapshot_index() >= commit
                                    || l.durable_term_at(commit) == Some(ct)
                            })
                        })
                        .map(|(id, _)| *id)
                        .collect();
                    // Whichever configuration committed it, a majority of its voters holds it
                    // (retired replicas keep their durable logs, so holders only grow).
                    let majority = self
                        .voter_sets
                        .iter()
                        .any(|v| v.intersection(&holders).count() > v.len() / 2);
                    if !majority {
                        return Err(format!(
                            "{id}: commit {commit} held durably by {holders:?} only, no majority of any configuration"
                        ));
                    }
                }
            }
            // Leader Completeness.
            if node.role() == Role::Leader {
                for (&ci, &(ct, seen_at)) in self.committed.range(log.first_index()..) {
                    if seen_at < term && log.term_at(ci) != Some(ct) {
                        return Err(format!(
                            "leader completeness: {id} leads {term} without ({ci}, {ct}) committed by {seen_at}"
                        ));
                    }
                }
            }
            if node.stats().conflicts_below_commit > 0 && self.cfg.bug.is_none() {
                return Err(format!("{id}: received a conflict below its commit index"));
            }
            let r = self.reps.get_mut(id).expect("replica");
            r.last_commit = commit;
            r.recorded_commit = r.recorded_commit.max(commit);
        }
        // A committed removal: the operator shuts the removed replica down a little later.
        for (c, m) in new_confs {
            self.conf_seen.insert(c);
            if self.leader_removals_asked.contains(&c) {
                self.leader_removals += 1;
            }
            let gone: Vec<NodeId> = self
                .ever_member
                .iter()
                .copied()
                .filter(|id| !m.contains(*id))
                .collect();
            for id in gone {
                let delay = self.rng.gen_range(0..100);
                let r = self.reps.get_mut(&id).expect("replica");
                if !r.retired && r.retire_at.is_none() {
                    r.retire_at = Some(self.now + delay);
                }
            }
            self.ever_member.extend(m.members());
        }
        Ok(())
    }
}

/// Runs one seed, turning a panic inside a replica into an error as well.
pub fn run_seed(cfg: SimConfig) -> Result<Outcome, String> {
    let seed = cfg.seed;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Sim::new(cfg).run())) {
        Ok(r) => r.map_err(|e| format!("seed {seed}: {e}")),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            Err(format!("seed {seed}: panic: {msg}"))
        }
    }
}
