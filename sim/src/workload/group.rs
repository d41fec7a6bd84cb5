//! The group consumer: one member of a consumer group, driving Kafka's classic protocol the
//! way a real client does (join → sync, the leader running the range assignor → OffsetFetch
//! → fetch the assigned partitions → commit → heartbeat), and reacting to the coordinator's
//! errors by rejoining (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID with a
//! fresh member id, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, timeouts).
//!
//! A member lives through *sessions*: each session is one process of the history
//! (`g1/consumer-2#3`) that starts with an empty member id. During the fault phase a member
//! crashes at the group's rate: the session's future is dropped wherever it is (mid-request
//! included) with no LeaveGroup, so only the session timeout removes it; its open
//! operations become unknown, and after the downtime a new session joins with a fresh id.
//!
//! What is recorded for the checker: every OffsetFetch a member starts from (and the seek to
//! the position it starts at), every poll, every commit (one op per partition) with its
//! outcome. Once the history has settled and every partition of the topic has been consumed
//! to its end by some member, the group is drained: members commit, leave and stop.
//!
//! Deterministic: turmoil's clock and a ChaCha stream seeded by the harness only.

use super::{
    connect, ident, log_bounds, now_ms, sleep_until_ms, wait_started, Plan, Shared, SimClient,
    TopicInfo, ERROR_BACKOFF, RECONNECT_BACKOFF,
};
use crate::batch;
use crate::history::{CommitOutcome, Millis, OffsetFetchOutcome, OpId, OpKind, PollOutcome, Tp};
use keel_core::error::ErrorCode;
use keel_net::client::group::{range_assign, Assignment, Subscription, RANGE_ASSIGNOR};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One group member's settings.
#[derive(Debug, Clone)]
pub struct GroupMemberCfg {
    /// `{group}/consumer-{i}`; each session appends `#{n}`.
    pub name: String,
    pub group: String,
    pub topic: TopicInfo,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub commit_interval: Duration,
    /// Crashes per simulated second during the fault phase.
    pub crash_rate: f64,
    pub crash_down: Duration,
    pub max_wait: Duration,
    pub max_bytes: i32,
    pub timeout: Duration,
    pub seed: u64,
}

/// How a session ended.
enum SessionEnd {
    /// The group is drained or the run is over: the member stops.
    Done,
    /// The member crashed at its scheduled time.
    Crashed,
}

/// Runs one member: sessions until the group is drained or the run ends.
pub async fn group_member(cfg: GroupMemberCfg, shared: Arc<Shared>, plan: Plan) -> turmoil::Result {
    wait_started(&shared).await;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut incarnation = 0u32;
    loop {
        incarnation += 1;
        let process = format!("{}#{incarnation}", cfg.name);
        shared
            .history()
            .group_of
            .insert(process.clone(), cfg.group.clone());
        let crash_at = next_crash(&cfg, &mut rng, plan);
        let mut session = Session::new(&cfg, process.clone(), shared.clone(), plan);
        // The session ends at its crash, or at the end of the run wherever it is (a group
        // that never drains is then judged by the checker, not by a client that hangs).
        let stop_at = crash_at.unwrap_or(plan.end_ms);
        let end = tokio::select! {
            biased;
            _ = sleep_until_ms(stop_at) => match crash_at {
                Some(_) => SessionEnd::Crashed,
                None => SessionEnd::Done,
            },
            end = session.run() => end,
        };
        drop(session);
        match end {
            SessionEnd::Done => return Ok(()),
            SessionEnd::Crashed => {
                crashed(&shared, &process, cfg.crash_down);
                tokio::time::sleep(cfg.crash_down).await;
            }
        }
    }
}

/// Records a crash of session `process`: its open operations become unknown.
fn crashed(shared: &Shared, process: &str, down: Duration) {
    let now = now_ms();
    let mut h = shared.history();
    for op in h.ops.iter_mut().rev().filter(|o| o.process == process) {
        if op.completed_ms.is_some() {
            continue;
        }
        let why = "the member crashed".to_string();
        match &mut op.kind {
            OpKind::Poll { outcome, .. } => *outcome = Some(PollOutcome::Unknown { why }),
            OpKind::Commit { outcome, .. } => *outcome = Some(CommitOutcome::Unknown { why }),
            OpKind::OffsetFetch { outcome, .. } => {
                *outcome = Some(OffsetFetchOutcome::Unknown { why })
            }
            // Seeks have no outcome.
            _ => continue,
        }
        op.completed_ms = Some(now);
    }
    h.note(
        now,
        format!(
            "{process} crashes (no LeaveGroup); back in {}ms with a fresh member id",
            down.as_millis()
        ),
    );
}

/// When the next session crashes: an exponential draw at the crash rate, if it falls
/// within the fault phase.
fn next_crash(cfg: &GroupMemberCfg, rng: &mut ChaCha8Rng, plan: Plan) -> Option<Millis> {
    if cfg.crash_rate <= 0.0 {
        return None;
    }
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let after_ms = (-u.ln() / cfg.crash_rate * 1_000.0) as Millis;
    let at = now_ms().saturating_add(after_ms.max(1));
    (at < plan.fault_end_ms).then_some(at)
}

/// Why the member leaves its generation.
enum Rejoin {
    /// Rejoin with the same member id.
    Keep,
    /// The coordinator forgot the member: rejoin with an empty id.
    Reset,
    /// The connection failed or the coordinator moved: reconnect first.
    Reconnect,
}

/// One session of a member: one process of the history.
struct Session<'a> {
    cfg: &'a GroupMemberCfg,
    process: String,
    shared: Arc<Shared>,
    plan: Plan,
    client: Option<SimClient>,
    member_id: String,
    disconnects: tokio::sync::watch::Receiver<u64>,
}

/// A generation's assignment and progress.
struct Generation {
    id: i32,
    /// Assigned partitions of the topic and the next offset to consume in each.
    positions: BTreeMap<i32, i64>,
    /// The last offset this member committed per partition (acknowledged).
    committed: BTreeMap<i32, i64>,
    last_commit_ms: Millis,
    last_heartbeat_ms: Millis,
}

impl<'a> Session<'a> {
    fn new(cfg: &'a GroupMemberCfg, process: String, shared: Arc<Shared>, plan: Plan) -> Self {
        let disconnects = shared.disconnect.subscribe();
        Session {
            cfg,
            process,
            shared,
            plan,
            client: None,
            member_id: String::new(),
            disconnects,
        }
    }

    fn note(&self, event: String) {
        self.shared
            .history()
            .note(now_ms(), format!("{}: {event}", self.process));
    }

    fn invoke(&self, kind: OpKind) -> OpId {
        self.shared.history().invoke(&self.process, now_ms(), kind)
    }

    fn tp(&self, partition: i32) -> Tp {
        (self.cfg.topic.name.clone(), partition)
    }

    /// Whether every partition of the topic has been consumed to its end after the history
    /// settled.
    fn drained(&self) -> bool {
        let caught_up = self
            .shared
            .group_caught_up
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (0..self.cfg.topic.partitions).all(|p| caught_up.contains(&(self.cfg.group.clone(), p)))
    }

    fn finished(&self) -> bool {
        now_ms() >= self.plan.end_ms || self.drained()
    }

    /// The connection, (re)opened if missing or dropped by a disconnect fault.
    async fn client(&mut self) -> Option<&mut SimClient> {
        if self.disconnects.has_changed().unwrap_or(false) {
            self.disconnects.borrow_and_update();
            self.client = None;
        }
        if self.client.is_none() {
            match connect(&self.process, &self.cfg.topic.host, self.cfg.timeout).await {
                Ok(c) => self.client = Some(c),
                Err(_) => {
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                    return None;
                }
            }
        }
        self.client.as_mut()
    }

    async fn run(&mut self) -> SessionEnd {
        loop {
            if self.finished() {
                self.leave().await;
                return SessionEnd::Done;
            }
            match self.generation().await {
                Rejoin::Keep => {}
                Rejoin::Reset => self.member_id.clear(),
                Rejoin::Reconnect => {
                    self.client = None;
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
            }
        }
    }

    /// Leaves the group politely, if the member is in it (best effort).
    async fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        let group = self.cfg.group.clone();
        let member_id = std::mem::take(&mut self.member_id);
        if let Some(c) = self.client().await {
            let _ = c.leave_group(&group, &member_id).await;
        }
    }

    /// One pass: find the coordinator, join, sync, then consume until the generation ends.
    async fn generation(&mut self) -> Rejoin {
        let cfg = self.cfg;
        let group = cfg.group.clone();
        let Some(c) = self.client().await else {
            return Rejoin::Keep;
        };
        // FindCoordinator: the group's coordinator must be the broker we talk to (topics
        // live on one node until replication lands).
        match c.find_coordinator(&group).await {
            Ok(info) if info.error_code == 0 && info.host == cfg.topic.host => {}
            Ok(info) if info.error_code == 0 => {
                self.note(format!(
                    "coordinator is {}:{}, not the topic's host {}; retrying",
                    info.host, info.port, cfg.topic.host
                ));
                return Rejoin::Reconnect;
            }
            Ok(_) => {
                tokio::time::sleep(ERROR_BACKOFF).await;
                return Rejoin::Keep;
            }
            Err(e) => {
                self.note(format!("FindCoordinator: {e}; reconnecting"));
                return Rejoin::Reconnect;
            }
        }

        // JoinGroup (KIP-394: a first join is answered MEMBER_ID_REQUIRED with our id).
        let subscription = Subscription {
            topics: vec![cfg.topic.name.clone()],
            user_data: None,
        }
        .encode();
        let protocols = [(RANGE_ASSIGNOR, subscription)];
        let session_ms = i32::try_from(cfg.session_timeout.as_millis()).unwrap_or(i32::MAX);
        let rebalance_ms = i32::try_from(cfg.rebalance_timeout.as_millis()).unwrap_or(i32::MAX);
        let member_id = self.member_id.clone();
        let Some(c) = self.client.as_mut() else {
            return Rejoin::Reconnect;
        };
        let join = match c
            .join_group(&group, &member_id, session_ms, rebalance_ms, &protocols)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.note(format!("JoinGroup: {e}; reconnecting"));
                return Rejoin::Reconnect;
            }
        };
        match ErrorCode(join.error_code) {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                self.member_id = join.member_id;
                return Rejoin::Keep;
            }
            ErrorCode::UNKNOWN_MEMBER_ID => return Rejoin::Reset,
            code => return self.coordinator_error("JoinGroup", code).await,
        }
        self.member_id = join.member_id.clone();
        let generation = join.generation_id;
        let protocol = join.protocol_name.clone();

        // SyncGroup: the leader assigns with the range assignor.
        let mut assignments = Vec::new();
        if join.leader == join.member_id {
            let mut members = Vec::new();
            for m in &join.members {
                match Subscription::decode(&m.metadata) {
                    Ok(s) => members.push((m.member_id.clone(), s)),
                    Err(e) => {
                        // Every member is ours: a bad subscription is a broker bug.
                        self.note(format!(
                            "BUG? member {}'s subscription does not decode: {e}",
                            m.member_id
                        ));
                        members.push((m.member_id.clone(), Subscription::default()));
                    }
                }
            }
            let counts: BTreeMap<String, i32> = [(cfg.topic.name.clone(), cfg.topic.partitions)]
                .into_iter()
                .collect();
            assignments = range_assign(&members, &counts)
                .into_iter()
                .map(|(id, a)| (id, a.encode()))
                .collect();
        }
        let member_id = self.member_id.clone();
        let Some(c) = self.client.as_mut() else {
            return Rejoin::Reconnect;
        };
        let sync = match c
            .sync_group(
                &group,
                generation,
                &member_id,
                protocol.as_deref(),
                &assignments,
                cfg.rebalance_timeout,
            )
            .await
        {
            Ok(r) => r,
            Err(_) => return Rejoin::Reconnect,
        };
        if sync.error_code != 0 {
            return self
                .coordinator_error("SyncGroup", ErrorCode(sync.error_code))
                .await;
        }
        let assignment = match Assignment::decode(&sync.assignment) {
            Ok(a) => a,
            Err(e) => {
                self.note(format!("BUG? the assignment does not decode: {e}"));
                return Rejoin::Keep;
            }
        };
        let partitions: Vec<i32> = assignment
            .partitions
            .iter()
            .filter(|(t, _)| *t == cfg.topic.name)
            .flat_map(|(_, ps)| ps.iter().copied())
            .collect();
        self.note(format!(
            "generation {generation} of {group}: assigned {:?}{}",
            partitions,
            if join.leader == join.member_id {
                " (leader)"
            } else {
                ""
            }
        ));

        // Where to start: the committed offsets (OffsetFetch), else the log start.
        let mut gen = Generation {
            id: generation,
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            last_commit_ms: now_ms(),
            last_heartbeat_ms: now_ms(),
        };
        if !partitions.is_empty() {
            if let Some(rejoin) = self.start_positions(&partitions, &mut gen).await {
                return rejoin;
            }
        }
        self.consume(gen).await
    }

    /// Reads the committed offsets of `partitions` and seeks to them (the log start where
    /// none is committed). `Some` if the generation must end instead.
    async fn start_positions(
        &mut self,
        partitions: &[i32],
        gen: &mut Generation,
    ) -> Option<Rejoin> {
        if self.client.is_none() {
            return Some(Rejoin::Reconnect);
        }
        let group = self.cfg.group.clone();
        let topic = self.cfg.topic.name.clone();
        let ops: Vec<(i32, OpId)> = partitions
            .iter()
            .map(|&p| {
                let op = self.invoke(OpKind::OffsetFetch {
                    group: group.clone(),
                    tp: self.tp(p),
                    outcome: None,
                });
                (p, op)
            })
            .collect();
        let Some(c) = self.client.as_mut() else {
            return Some(Rejoin::Reconnect);
        };
        let result = c
            .offset_fetch(&group, &[(topic.as_str(), partitions)])
            .await;
        let now = now_ms();
        let fetched = match result {
            Err(e) => {
                let mut h = self.shared.history();
                for &(_, op) in &ops {
                    h.complete_offset_fetch(
                        op,
                        now,
                        OffsetFetchOutcome::Unknown { why: e.to_string() },
                    );
                }
                return Some(Rejoin::Reconnect);
            }
            Ok(r) => r,
        };
        let error = fetched.first_error();
        {
            let mut h = self.shared.history();
            for &(p, op) in &ops {
                let outcome = if error != 0 {
                    OffsetFetchOutcome::Fail { error }
                } else {
                    OffsetFetchOutcome::Ok {
                        offset: fetched.offset(&topic, p),
                    }
                };
                h.complete_offset_fetch(op, now, outcome);
            }
        }
        if error != 0 {
            return Some(
                self.coordinator_error("OffsetFetch", ErrorCode(error))
                    .await,
            );
        }
        for &p in partitions {
            let committed = fetched.offset(&topic, p);
            let (to, why) = if committed >= 0 {
                (
                    committed,
                    format!("generation {}: committed offset", gen.id),
                )
            } else {
                let tp = self.tp(p);
                let Some(c) = self.client.as_mut() else {
                    return Some(Rejoin::Reconnect);
                };
                match log_bounds(c, &tp).await {
                    Ok((start, _)) => (
                        start,
                        format!("generation {}: no commit, log start", gen.id),
                    ),
                    Err(_) => return Some(Rejoin::Reconnect),
                }
            };
            gen.positions.insert(p, to);
            if committed >= 0 {
                gen.committed.insert(p, committed);
            }
            self.invoke(OpKind::Seek {
                tp: self.tp(p),
                to,
                why,
            });
        }
        None
    }

    /// Fetches the assigned partitions round robin, committing and heartbeating on their
    /// intervals, until the generation ends.
    async fn consume(&mut self, mut gen: Generation) -> Rejoin {
        let cfg = self.cfg;
        let partitions: Vec<i32> = gen.positions.keys().copied().collect();
        let mut next = 0usize;
        loop {
            if self.finished() {
                // A last commit of what was consumed, then the caller leaves.
                let _ = self.commit(&mut gen).await;
                return Rejoin::Keep;
            }
            if self.client().await.is_none() {
                continue;
            }
            if partitions.is_empty() {
                tokio::time::sleep(cfg.heartbeat_interval / 2).await;
            } else {
                let p = partitions[next % partitions.len()];
                next += 1;
                if let Err(rejoin) = self.poll(p, &mut gen).await {
                    return rejoin;
                }
                if self.client.is_none() {
                    // The fetch lost the connection: reconnect, the membership may be intact.
                    continue;
                }
            }
            let now = now_ms();
            if now >= gen.last_commit_ms + cfg.commit_interval.as_millis() as Millis {
                if let Err(rejoin) = self.commit(&mut gen).await {
                    return rejoin;
                }
            }
            if now >= gen.last_heartbeat_ms + cfg.heartbeat_interval.as_millis() as Millis {
                gen.last_heartbeat_ms = now;
                let member_id = self.member_id.clone();
                let Some(c) = self.client.as_mut() else {
                    continue;
                };
                match c.heartbeat(&cfg.group, gen.id, &member_id).await {
                    Ok(0) => {}
                    Ok(code) if code == ErrorCode::REBALANCE_IN_PROGRESS.0 => {
                        // As Kafka's consumer does before rejoining: commit what was consumed
                        // (the coordinator takes commits of the current generation while it
                        // prepares the rebalance).
                        let _ = self.commit(&mut gen).await;
                        return Rejoin::Keep;
                    }
                    Ok(code) => return self.coordinator_error("Heartbeat", ErrorCode(code)).await,
                    Err(e) => {
                        self.note(format!("Heartbeat: {e}; reconnecting"));
                        return Rejoin::Reconnect;
                    }
                }
            }
        }
    }

    /// One fetch of partition `p` from its position.
    async fn poll(&mut self, p: i32, gen: &mut Generation) -> Result<(), Rejoin> {
        let cfg = self.cfg;
        if self.client.is_none() {
            return Err(Rejoin::Reconnect);
        }
        let tp = self.tp(p);
        let from = gen.positions[&p];
        let invoked = now_ms();
        let op = self.invoke(OpKind::Poll {
            tp: tp.clone(),
            from,
            outcome: None,
        });
        let Some(c) = self.client.as_mut() else {
            return Err(Rejoin::Reconnect);
        };
        let result = c.fetch(&tp.0, p, from, cfg.max_wait, cfg.max_bytes).await;
        match result {
            Err(e) => {
                self.shared.history().complete_poll(
                    op,
                    now_ms(),
                    PollOutcome::Unknown { why: e.to_string() },
                );
                // The membership may well survive a lost connection: reconnect and go on.
                self.client = None;
                Ok(())
            }
            Ok(pd) if pd.error_code != 0 => {
                self.shared.history().complete_poll(
                    op,
                    now_ms(),
                    PollOutcome::Fail {
                        error: pd.error_code,
                    },
                );
                if pd.error_code == ErrorCode::OFFSET_OUT_OF_RANGE.0 {
                    // auto.offset.reset: to the nearer end, as a seek the checker knows.
                    let Some(c) = self.client.as_mut() else {
                        return Err(Rejoin::Reconnect);
                    };
                    let (start, end) = log_bounds(c, &tp).await.map_err(|_| Rejoin::Reconnect)?;
                    let to = if from < start { start } else { end };
                    gen.positions.insert(p, to);
                    let why = format!("offset {from} out of range [{start}, {end}]");
                    self.note(format!("{}-{} {why}; seeking to {to}", tp.0, tp.1));
                    self.invoke(OpKind::Seek { tp, to, why });
                } else {
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
                Ok(())
            }
            Ok(pd) => {
                let decoded = batch::decode(&pd.records.unwrap_or_default());
                let records: Vec<(i64, String)> = decoded
                    .records
                    .iter()
                    .filter(|r| r.offset >= from)
                    .map(|r| (r.offset, ident(&r.value).to_string()))
                    .collect();
                if let Some((last, _)) = records.last() {
                    gen.positions.insert(p, last + 1);
                }
                let high_watermark = pd.high_watermark;
                self.shared.history().complete_poll(
                    op,
                    now_ms(),
                    PollOutcome::Ok {
                        records,
                        high_watermark,
                    },
                );
                if let Some((base, _, why)) = decoded.corrupt.first() {
                    // No scenario with groups corrupts data at rest: stop and say so.
                    self.note(format!(
                        "refused a corrupt batch of {}-{} at offset {base} ({why})",
                        tp.0, tp.1
                    ));
                }
                if invoked >= self.plan.settled_ms && gen.positions[&p] >= high_watermark {
                    self.shared
                        .group_caught_up
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((cfg.group.clone(), p));
                }
                Ok(())
            }
        }
    }

    /// Commits every position that moved since this member's last acknowledged commit.
    async fn commit(&mut self, gen: &mut Generation) -> Result<(), Rejoin> {
        gen.last_commit_ms = now_ms();
        let due: Vec<(i32, i64)> = gen
            .positions
            .iter()
            .filter(|(p, pos)| gen.committed.get(p) != Some(pos))
            .map(|(p, pos)| (*p, *pos))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        if self.client.is_none() {
            return Err(Rejoin::Reconnect);
        }
        let group = self.cfg.group.clone();
        let topic = self.cfg.topic.name.clone();
        let ops: Vec<OpId> = due
            .iter()
            .map(|&(p, offset)| {
                self.invoke(OpKind::Commit {
                    group: group.clone(),
                    tp: self.tp(p),
                    offset,
                    outcome: None,
                })
            })
            .collect();
        let member_id = self.member_id.clone();
        let offsets: Vec<(&str, i32, i64, &str)> = due
            .iter()
            .map(|&(p, offset)| (topic.as_str(), p, offset, ""))
            .collect();
        let Some(c) = self.client.as_mut() else {
            return Err(Rejoin::Reconnect);
        };
        let result = c.offset_commit(&group, gen.id, &member_id, &offsets).await;
        let now = now_ms();
        let results = match result {
            Err(e) => {
                let mut h = self.shared.history();
                for &op in &ops {
                    h.complete_commit(op, now, CommitOutcome::Unknown { why: e.to_string() });
                }
                return Err(Rejoin::Reconnect);
            }
            Ok(r) => r,
        };
        let mut first_error = 0;
        {
            let mut h = self.shared.history();
            for (&(p, offset), &op) in due.iter().zip(&ops) {
                let outcome = match results
                    .iter()
                    .find(|r| r.topic == topic && r.partition == p)
                {
                    Some(r) if r.error_code == 0 => {
                        gen.committed.insert(p, offset);
                        CommitOutcome::Ok
                    }
                    Some(r) => {
                        if first_error == 0 {
                            first_error = r.error_code;
                        }
                        CommitOutcome::Fail {
                            error: r.error_code,
                        }
                    }
                    None => CommitOutcome::Unknown {
                        why: "the partition is missing from the response".into(),
                    },
                };
                h.complete_commit(op, now, outcome);
            }
        }
        if first_error != 0 {
            return Err(self
                .coordinator_error("OffsetCommit", ErrorCode(first_error))
                .await);
        }
        Ok(())
    }

    /// What a real client does on a group error from `api`.
    async fn coordinator_error(&self, api: &str, code: ErrorCode) -> Rejoin {
        self.note(format!("{api}: error {}; rejoining", code.0));
        match code {
            ErrorCode::REBALANCE_IN_PROGRESS | ErrorCode::ILLEGAL_GENERATION => Rejoin::Keep,
            ErrorCode::UNKNOWN_MEMBER_ID => Rejoin::Reset,
            // NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS and
            // anything unexpected: back off, find the coordinator again and rejoin.
            _ => {
                tokio::time::sleep(ERROR_BACKOFF).await;
                Rejoin::Keep
            }
        }
    }
}
