//! The group coordinator: Kafka's classic group protocol as a sans-IO state machine, and the
//! committed offsets cache with the writes to `__consumer_offsets` still waiting to be
//! durable.
//!
//! The node calls one method per request after checking that it coordinates the group (it
//! leads the group's offsets partition, which is not loading); answers that cannot be given
//! at once (JoinGroup until the join phase completes, SyncGroup until the leader assigns,
//! commits until durable) are queued and drained with [`Coordinator::poll_response`].
//! Deadlines (sessions, join and sync phases, the initial rebalance delay, commit timeouts,
//! the periodic cleanup) are kept as data and fired by [`Coordinator::expire`]. The rules
//! follow Kafka's `GroupMetadataManager` (classic groups) state by state; see the `group`
//! module docs for where Keel differs.

use super::offsets::{
    CommittedOffset, GroupMetadata, GroupRecord, MemberMetadata, Mutation, OffsetCache, OffsetKey,
};
use super::state::{Group, GroupState, JoinTimer, Member, Parked};
use super::GroupConfig;
use crate::api::*;
use crate::error::ErrorCode;
use crate::time::Instant;
use crate::timers::TimerTable;
use bytes::Bytes;
use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// The ChaCha stream of the node's seed that member ids are drawn from, apart from the
/// node's own stream so that neither changes the other's sequence.
const RNG_STREAM: u64 = 0x67726f7570; // "group"
/// Writes to `__consumer_offsets` that may wait for durability at once.
pub const MAX_PENDING_WRITES: usize = 100_000;
/// Kafka's authorized operations on a group when there is no authorizer: READ, DELETE,
/// DESCRIBE (bits 3, 6, 8 of AclOperation).
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// Where an error goes in a response whose answer waits for a write: (topic, partition)
/// indexes for OffsetCommit and OffsetDelete, (result, 0) for DeleteGroups.
pub type Slot = (usize, usize);

/// A write the node appended to an offsets partition, and what to do once it is durable.
#[derive(Debug)]
pub struct PlannedWrite {
    /// The `__consumer_offsets` partition.
    pub partition: i32,
    /// The log end offset after the write: durable once the partition is flushed to it.
    pub needed: i64,
    pub mutations: Vec<Mutation>,
    /// The response entries this write decides.
    pub slots: Vec<Slot>,
}

/// A write not yet durable.
#[derive(Debug)]
struct PendingWrite {
    needed: i64,
    mutations: Vec<Mutation>,
    /// Group memberships recovered at start, restored once durable (live membership
    /// writes are not tracked: the coordinator already holds what they store).
    groups: Vec<GroupRecord>,
    /// The answer it holds back, if any (none for records recovered at start).
    reply: Option<(u64, Vec<Slot>)>,
    /// Recovered at start past the recovery point: the partition is still loading.
    load: bool,
}

/// A response waiting for its writes.
#[derive(Debug)]
struct PendingReply {
    parked: Parked,
    response: Response,
    outstanding: usize,
    deadline: Instant,
}

/// What a deadline is for. Each is also recorded on the object it belongs to, so a stale
/// entry is recognised (and every entry is removed when its object changes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    /// A member's session (or a new member's join) expires.
    Heartbeat { group: String, member: String },
    /// A member id handed out with MEMBER_ID_REQUIRED was never used.
    PendingMember { group: String, member: String },
    /// The join phase's deadline (initial delay or rebalance timeout).
    Join { group: String },
    /// Every member of a new generation must have sent SyncGroup by then.
    Sync { group: String },
    /// A commit's answer times out.
    Reply(u64),
    /// Forget Empty groups that have no offsets.
    Cleanup,
}

impl TimerKey {
    fn heartbeat(gid: &str, mid: &str) -> TimerKey {
        TimerKey::Heartbeat {
            group: gid.to_string(),
            member: mid.to_string(),
        }
    }

    fn pending_member(gid: &str, mid: &str) -> TimerKey {
        TimerKey::PendingMember {
            group: gid.to_string(),
            member: mid.to_string(),
        }
    }

    fn join(gid: &str) -> TimerKey {
        TimerKey::Join {
            group: gid.to_string(),
        }
    }

    fn sync(gid: &str) -> TimerKey {
        TimerKey::Sync {
            group: gid.to_string(),
        }
    }
}

/// The consumer groups of one node: owns their membership, generations and timers, the
/// committed offsets as far as they are durable, and the writes and answers waiting on the
/// offsets topic. See the module docs.
pub struct Coordinator {
    config: GroupConfig,
    now: Instant,
    groups: BTreeMap<String, Group>,
    offsets: OffsetCache,
    timers: TimerTable<TimerKey>,
    rng: ChaCha8Rng,
    next_join_seq: u64,
    responses: VecDeque<(Parked, Response)>,
    /// Per offsets partition, in log order.
    writes: BTreeMap<i32, VecDeque<PendingWrite>>,
    replies: BTreeMap<u64, PendingReply>,
    next_reply: u64,
    cleanup_deadline: Option<Instant>,
    /// Group memberships to write to `__consumer_offsets`, drained by the node.
    stores: VecDeque<GroupRecord>,
    /// Tombstones of expired offsets, per group, drained by the node.
    expired: VecDeque<(String, Vec<Mutation>)>,
}

impl Coordinator {
    pub fn new(config: GroupConfig, now: Instant, seed: u64) -> Coordinator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(RNG_STREAM);
        Coordinator {
            config,
            now,
            groups: BTreeMap::new(),
            offsets: OffsetCache::default(),
            timers: TimerTable::new(),
            rng,
            next_join_seq: 0,
            responses: VecDeque::new(),
            writes: BTreeMap::new(),
            replies: BTreeMap::new(),
            next_reply: 1,
            cleanup_deadline: None,
            stores: VecDeque::new(),
            expired: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Every durable committed offset as (group, topic, partition, offset), in that key
    /// order: read-only, for the driver's metrics. Deleted and expired offsets are gone from
    /// it once their tombstones are durable, as they are from OffsetFetch.
    pub fn committed_offsets(&self) -> impl Iterator<Item = (&str, &str, i32, i64)> {
        self.offsets.groups().flat_map(move |group| {
            self.offsets
                .group_offsets(group)
                .map(move |((topic, partition), c)| {
                    (group.as_str(), topic.as_str(), *partition, c.offset)
                })
        })
    }

    /// How many items [`Coordinator::committed_offsets`] yields, without walking them all.
    pub fn committed_offset_count(&self) -> usize {
        self.offsets.len()
    }

    /// The next answer that became ready.
    pub fn poll_response(&mut self) -> Option<(ConnId, RequestId, Response)> {
        self.responses.pop_front().map(|(p, r)| (p.conn, p.id, r))
    }

    /// The next group membership (or group removal) to append to the group's offsets
    /// partition. Fire and forget: a restart before it is durable resumes from the previous
    /// one, whose members then learn of the newer generation by rejoining.
    pub fn poll_store(&mut self) -> Option<GroupRecord> {
        self.stores.pop_front()
    }

    /// The next group's tombstones for offsets past retention, to append to its offsets
    /// partition and hand back with [`Coordinator::track_write`].
    pub fn poll_expired(&mut self) -> Option<(String, Vec<Mutation>)> {
        self.expired.pop_front()
    }

    /// A write the node appended on the coordinator's own account (expired offsets): it
    /// counts once durable, and no one waits for an answer.
    pub fn track_write(&mut self, write: PlannedWrite) {
        self.push_planned(write, None);
    }

    /// When [`Coordinator::expire`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Fires every deadline up to `now`.
    pub fn expire(&mut self, now: Instant) {
        self.now = self.now.max(now);
        while let Some((at, key)) = self.timers.pop_due(self.now) {
            match key {
                TimerKey::Heartbeat { group, member } => {
                    self.on_heartbeat_expired(&group, &member, at)
                }
                TimerKey::PendingMember { group, member } => {
                    let due = self
                        .groups
                        .get(&group)
                        .and_then(|g| g.pending_members.get(&member))
                        == Some(&at);
                    if due {
                        tracing::info!(group, member, "pending member expired");
                        self.remove_pending_member(&group, &member);
                    }
                }
                TimerKey::Join { group } => self.on_join_deadline(&group, at),
                TimerKey::Sync { group } => self.on_sync_deadline(&group, at),
                TimerKey::Reply(reply) => self.on_reply_deadline(reply),
                TimerKey::Cleanup => {
                    self.cleanup_deadline = None;
                    self.cleanup();
                }
            }
        }
        if self.cleanup_deadline.is_none() && !self.groups.is_empty() {
            let at = self.after_ms(self.config.cleanup_interval_ms as i64);
            self.cleanup_deadline = Some(at);
            self.timers.set(TimerKey::Cleanup, at);
        }
    }

    // ---- JoinGroup ---------------------------------------------------------------------

    /// JoinGroup, for a group this node coordinates. Answered at once or when the join
    /// phase completes.
    pub fn join_group(&mut self, now: Instant, conn: ConnId, id: RequestId, req: JoinGroupRequest) {
        self.now = self.now.max(now);
        let parked = Parked { conn, id };
        if let Some(reason) = &req.reason {
            tracing::debug!(group = %req.group_id, member = %req.member_id, %reason, "join");
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return self.respond_join_error(
                parked,
                &req.member_id,
                ErrorCode::INVALID_SESSION_TIMEOUT,
            );
        }
        let gid = req.group_id.clone();
        let unknown = req.member_id.is_empty();
        let created = !self.groups.contains_key(&gid);
        if created {
            if !unknown {
                return self.respond_join_error(
                    parked,
                    &req.member_id,
                    ErrorCode::UNKNOWN_MEMBER_ID,
                );
            }
            if self.groups.len() >= self.config.max_groups {
                return self.respond_join_error(parked, "", ErrorCode::COORDINATOR_NOT_AVAILABLE);
            }
            self.groups.insert(gid.clone(), Group::new(gid.clone()));
        }
        // Kafka lets a rebalancing group exceed group.max.size and sheds the members that
        // do not rejoin; Keel keeps the bound hard: a new member joins only while there is
        // room, counting members that have not rejoined yet.
        let group = &self.groups[&gid];
        let accept = group.members.contains_key(&req.member_id)
            || group.members.len() < self.config.max_size;
        if !accept {
            self.respond_join_error(parked, "", ErrorCode::GROUP_MAX_SIZE_REACHED);
        } else if unknown {
            self.join_new_member(&gid, req, parked);
        } else {
            self.join_existing_member(&gid, req, parked);
        }
        if created {
            self.forget_if_unused(&gid);
        }
    }

    fn join_new_member(&mut self, gid: &str, req: JoinGroupRequest, parked: Parked) {
        if !self.groups[gid].supports_protocols(&req.protocol_type, &req.protocols) {
            return self.respond_join_error(parked, "", ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
        let new_id = format!("{prefix}-{}", self.uuid());
        let group = &self.groups[gid];
        if let Some(instance) = req.group_instance_id.clone() {
            match group.static_members.get(&instance).cloned() {
                Some(old_id) => {
                    self.replace_static_member(gid, &instance, &old_id, new_id, req, parked)
                }
                None => self.add_member_and_rebalance(gid, new_id, req, parked),
            }
        } else if req.require_known_member_id {
            // KIP-394: hand out an id and wait for the member to join with it, so that a
            // client retrying a timed-out first join does not leave a ghost member behind.
            if group.pending_members.len() >= self.config.max_size {
                return self.respond_join_error(parked, "", ErrorCode::GROUP_MAX_SIZE_REACHED);
            }
            let at = self.after_ms(req.session_timeout_ms as i64);
            let group = self.groups.get_mut(gid).expect("checked");
            group.pending_members.insert(new_id.clone(), at);
            self.retime(TimerKey::pending_member(gid, &new_id), Some(at));
            self.respond_join_error(parked, &new_id, ErrorCode::MEMBER_ID_REQUIRED);
        } else {
            self.add_member_and_rebalance(gid, new_id, req, parked);
        }
    }

    fn join_existing_member(&mut self, gid: &str, req: JoinGroupRequest, parked: Parked) {
        let group = &self.groups[gid];
        let mid = req.member_id.clone();
        if !group.supports_protocols(&req.protocol_type, &req.protocols) {
            return self.respond_join_error(parked, &mid, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        if group.pending_members.contains_key(&mid) {
            if req.group_instance_id.is_some() {
                // Pending ids go only to dynamic members (Kafka treats this as an illegal
                // state); make the client start over.
                self.remove_pending_member(gid, &mid);
                return self.respond_join_error(parked, &mid, ErrorCode::UNKNOWN_MEMBER_ID);
            }
            self.clear_pending_member_timer(gid, &mid);
            return self.add_member_and_rebalance(gid, mid, req, parked);
        }
        if let Err(code) = group.validate_member(&mid, req.group_instance_id.as_deref()) {
            return self.respond_join_error(parked, &mid, code);
        }
        let member = &group.members[&mid];
        let matches = member.matches(&req.protocols);
        let is_leader = group.is_leader(&mid);
        match group.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(gid, req, parked),
            GroupState::CompletingRebalance if matches => {
                // The member lost the first answer: give it again.
                let response = self.current_generation_response(gid, &mid, is_leader);
                self.respond(parked, Response::JoinGroup(response));
            }
            GroupState::Stable if matches && !is_leader => {
                let response = self.current_generation_response(gid, &mid, false);
                self.respond(parked, Response::JoinGroup(response));
            }
            // Changed metadata, or the leader asking for a rebalance (its way to react to
            // topic metadata changes).
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(gid, req, parked)
            }
            GroupState::Empty | GroupState::Dead => {
                self.respond_join_error(parked, &mid, ErrorCode::UNKNOWN_MEMBER_ID)
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        gid: &str,
        member_id: String,
        req: JoinGroupRequest,
        parked: Parked,
    ) {
        let join_seq = self.next_join_seq;
        self.next_join_seq += 1;
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: Bytes::new(),
            join_seq,
            is_new: true,
            awaiting_join: Some(parked),
            awaiting_sync: None,
            heartbeat_deadline: None,
        };
        let group = self.groups.get_mut(gid).expect("joining an existing group");
        if group.state == GroupState::PreparingRebalance
            && group.previous_state == GroupState::Empty
        {
            group.new_member_added = true;
        }
        group.add(member);
        tracing::info!(group = gid, member = %member_id, "member added");
        // A new member cannot heartbeat while its join waits, and a client that gave up
        // would leave it there: its join itself times out.
        let at = self.after_ms(self.config.new_member_join_timeout_ms as i64);
        self.schedule_heartbeat(gid, &member_id, at);
        self.maybe_prepare_rebalance_or_complete_join(gid);
    }

    fn update_member_and_rebalance(&mut self, gid: &str, req: JoinGroupRequest, parked: Parked) {
        let superseded = {
            let member = self
                .groups
                .get_mut(gid)
                .and_then(|g| g.members.get_mut(&req.member_id))
                .expect("validated member");
            member.protocols = req.protocols;
            member.rebalance_timeout_ms = req.rebalance_timeout_ms;
            member.session_timeout_ms = req.session_timeout_ms;
            member.awaiting_join.replace(parked)
        };
        if let Some(old) = superseded {
            self.respond_join_error(old, &req.member_id, ErrorCode::REBALANCE_IN_PROGRESS);
        }
        self.maybe_prepare_rebalance_or_complete_join(gid);
    }

    /// KIP-345: a static member rejoined with an unknown member id (a restart): it takes
    /// over the old member's place, assignment included, under a new id; the old id is
    /// fenced. A stable group whose protocol would not change does not rebalance.
    fn replace_static_member(
        &mut self,
        gid: &str,
        instance: &str,
        old_id: &str,
        new_id: String,
        req: JoinGroupRequest,
        parked: Parked,
    ) {
        let (old_join, old_sync) = {
            let group = self.groups.get_mut(gid).expect("checked");
            let old = group.members.get_mut(old_id).expect("static member");
            (old.awaiting_join.take(), old.awaiting_sync.take())
        };
        if let Some(p) = old_join {
            self.respond_join_error(p, old_id, ErrorCode::FENCED_INSTANCE_ID);
        }
        if let Some(p) = old_sync {
            self.respond_sync_error(p, ErrorCode::FENCED_INSTANCE_ID);
        }
        self.clear_heartbeat(gid, old_id);
        let group = self.groups.get_mut(gid).expect("checked");
        let previous_leader = group.leader.clone().unwrap_or_default();
        group.replace_static_member(instance, old_id, &new_id);
        let member = group.members.get_mut(&new_id).expect("just replaced");
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.awaiting_join = Some(parked);
        let session = member.session_timeout_ms as i64;
        tracing::info!(group = gid, instance, old = old_id, new = %new_id, "static member replaced");
        let at = self.after_ms(session);
        self.schedule_heartbeat(gid, &new_id, at);
        let group = &self.groups[gid];
        match group.state {
            GroupState::Stable if group.select_protocol() == group.protocol_name => {
                // Answer with the previous leader id: a restarted static leader must not
                // think it leads (it would assign while the group is stable, and nobody
                // would hear it).
                let mut response = self.current_generation_response(gid, &new_id, false);
                response.leader = previous_leader;
                let group = self.groups.get_mut(gid).expect("checked");
                group
                    .members
                    .get_mut(&new_id)
                    .expect("member")
                    .awaiting_join = None;
                self.respond(parked, Response::JoinGroup(response));
                self.store_group(gid);
            }
            GroupState::Stable => self.maybe_prepare_rebalance_or_complete_join(gid),
            // The leader may already have assigned to the old id: rebalance.
            GroupState::CompletingRebalance => self.prepare_rebalance(gid),
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(gid),
            GroupState::Empty | GroupState::Dead => {
                unreachable!("a group with a static member has members")
            }
        }
    }

    /// The JoinGroup answer for the current generation (members for the leader only).
    fn current_generation_response(
        &self,
        gid: &str,
        member_id: &str,
        with_members: bool,
    ) -> JoinGroupResponse {
        let group = &self.groups[gid];
        JoinGroupResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            generation_id: group.generation_id,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader: group.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: if with_members {
                group.join_response_members()
            } else {
                Vec::new()
            },
        }
    }

    fn maybe_prepare_rebalance_or_complete_join(&mut self, gid: &str) {
        if self.groups[gid].state.can_rebalance() {
            self.prepare_rebalance(gid);
        } else {
            self.maybe_complete_join_phase(gid);
        }
    }

    /// Starts a join phase: members awaiting sync are told to rejoin; a group leaving Empty
    /// waits out the initial delay, any other completes once every member rejoined or the
    /// rebalance timeout passes.
    fn prepare_rebalance(&mut self, gid: &str) {
        if self.groups[gid].state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_error(gid, ErrorCode::REBALANCE_IN_PROGRESS);
        }
        self.clear_sync_timer(gid);
        let delay = self.config.initial_rebalance_delay_ms.max(0) as i64;
        let group = self.groups.get_mut(gid).expect("rebalancing a known group");
        group.pending_sync.clear();
        let initial = group.state == GroupState::Empty;
        let rebalance_timeout = group.rebalance_timeout_ms();
        group.transition_to(GroupState::PreparingRebalance);
        tracing::info!(
            group = gid,
            generation = group.generation_id,
            "preparing to rebalance"
        );
        if initial {
            let remaining_ms = (rebalance_timeout - delay).max(0);
            let at = self.after_ms(delay);
            self.set_join_timer(
                gid,
                at,
                JoinTimer::Initial {
                    delay_ms: delay,
                    remaining_ms,
                },
            );
        } else if self.groups[gid].all_members_joined() {
            self.complete_join(gid);
        } else {
            let at = self.after_ms(rebalance_timeout);
            self.set_join_timer(gid, at, JoinTimer::Complete);
        }
    }

    fn maybe_complete_join_phase(&mut self, gid: &str) {
        let group = &self.groups[gid];
        if group.state == GroupState::PreparingRebalance
            && group.all_members_joined()
            && group.previous_state != GroupState::Empty
        {
            self.complete_join(gid);
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin are dropped (static ones
    /// keep their place), the generation advances, a protocol is chosen and every waiting
    /// member is answered, the leader with everyone's metadata.
    fn complete_join(&mut self, gid: &str) {
        self.clear_join_timer(gid);
        let group = &self.groups[gid];
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for mid in gone {
            tracing::info!(group = gid, member = %mid, "member did not rejoin in time; removed");
            self.clear_heartbeat(gid, &mid);
            if let Some(m) = self.groups.get_mut(gid).expect("known").remove(&mid) {
                debug_assert!(m.awaiting_sync.is_none());
            }
        }
        let group = self.groups.get_mut(gid).expect("known");
        if group.state == GroupState::Dead {
            return;
        }
        if !group.elect_joined_leader() && !group.members.is_empty() {
            // Only static members that have not rejoined: wait for them (or their sessions)
            // for another rebalance timeout.
            tracing::warn!(group = gid, "no member rejoined; postponing the rebalance");
            let timeout = group.rebalance_timeout_ms();
            let at = self.after_ms(timeout);
            self.set_join_timer(gid, at, JoinTimer::Complete);
            return;
        }
        group.generation_id += 1;
        group.pending_sync.clear();
        if group.members.is_empty() {
            group.protocol_name = None;
            group.transition_to(GroupState::Empty);
            group.empty_since_ms = Some(self.now.as_millis());
            tracing::info!(
                group = gid,
                generation = group.generation_id,
                "group is empty"
            );
            self.store_group(gid);
            return;
        }
        // Every member accepted supports a protocol all others support (checked at join),
        // so there is a common one.
        let protocol = group
            .select_protocol()
            .expect("the members of a group share a protocol");
        group.protocol_name = Some(protocol);
        group.transition_to(GroupState::CompletingRebalance);
        tracing::info!(
            group = gid,
            generation = group.generation_id,
            members = group.members.len(),
            "join phase complete"
        );
        let leader_members = group.join_response_members();
        let order: Vec<String> = group
            .members_in_join_order()
            .iter()
            .map(|m| m.member_id.clone())
            .collect();
        for mid in order {
            let group = self.groups.get_mut(gid).expect("known");
            let is_leader = group.is_leader(&mid);
            let response = JoinGroupResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::NONE,
                generation_id: group.generation_id,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol_name.clone(),
                leader: group.leader.clone().unwrap_or_default(),
                skip_assignment: false,
                member_id: mid.clone(),
                members: if is_leader {
                    leader_members.clone()
                } else {
                    Vec::new()
                },
            };
            group.pending_sync.insert(mid.clone());
            let member = group.members.get_mut(&mid).expect("listed");
            member.is_new = false;
            let parked = member.awaiting_join.take();
            let session = member.session_timeout_ms as i64;
            if let Some(p) = parked {
                self.respond(p, Response::JoinGroup(response));
            }
            let at = self.after_ms(session);
            self.schedule_heartbeat(gid, &mid, at);
        }
        let at = self.after_ms(self.groups[gid].rebalance_timeout_ms());
        self.set_sync_timer(gid, at);
    }

    fn on_join_deadline(&mut self, gid: &str, at: Instant) {
        let Some(group) = self.groups.get_mut(gid) else {
            return;
        };
        let Some((deadline, kind)) = group.join_timer else {
            return;
        };
        if deadline != at || group.state != GroupState::PreparingRebalance {
            return;
        }
        group.join_timer = None;
        match kind {
            JoinTimer::Initial {
                delay_ms,
                remaining_ms,
            } if group.new_member_added && remaining_ms > 0 => {
                // Someone joined during the delay: wait a little longer for the rest.
                group.new_member_added = false;
                let next_delay =
                    (self.config.initial_rebalance_delay_ms.max(0) as i64).min(remaining_ms);
                let next_remaining = (remaining_ms - delay_ms).max(0);
                let at = self.after_ms(next_delay);
                self.set_join_timer(
                    gid,
                    at,
                    JoinTimer::Initial {
                        delay_ms: next_delay,
                        remaining_ms: next_remaining,
                    },
                );
            }
            _ => self.complete_join(gid),
        }
    }

    // ---- SyncGroup ---------------------------------------------------------------------

    /// SyncGroup, for a group this node coordinates: followers wait for the leader's
    /// assignment; the leader's completes the generation.
    pub fn sync_group(&mut self, now: Instant, conn: ConnId, id: RequestId, req: SyncGroupRequest) {
        self.now = self.now.max(now);
        let parked = Parked { conn, id };
        let gid = req.group_id.as_str();
        let Some(group) = self.groups.get(gid).filter(|g| !g.members.is_empty()) else {
            return self.respond_sync_error(parked, ErrorCode::UNKNOWN_MEMBER_ID);
        };
        let mid = req.member_id.as_str();
        let check = if group.state == GroupState::Dead {
            Err(ErrorCode::COORDINATOR_NOT_AVAILABLE)
        } else if let Err(code) = group.validate_member(mid, req.group_instance_id.as_deref()) {
            Err(code)
        } else if req.generation_id != group.generation_id {
            Err(ErrorCode::ILLEGAL_GENERATION)
        } else if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != group.protocol_type.as_ref())
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|n| Some(n) != group.protocol_name.as_ref())
        {
            Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL)
        } else {
            Ok(())
        };
        if let Err(code) = check {
            return self.respond_sync_error(parked, code);
        }
        match group.state {
            GroupState::PreparingRebalance => {
                self.respond_sync_error(parked, ErrorCode::REBALANCE_IN_PROGRESS)
            }
            GroupState::CompletingRebalance => {
                let is_leader = group.is_leader(mid);
                let member = self
                    .groups
                    .get_mut(gid)
                    .and_then(|g| g.members.get_mut(mid))
                    .expect("validated");
                if let Some(old) = member.awaiting_sync.replace(parked) {
                    self.respond_sync_error(old, ErrorCode::REBALANCE_IN_PROGRESS);
                }
                self.remove_pending_sync(gid, mid);
                if is_leader {
                    tracing::info!(
                        group = gid,
                        generation = req.generation_id,
                        "assignment received from the leader"
                    );
                    let group = self.groups.get_mut(gid).expect("known");
                    let mut given: BTreeMap<String, Bytes> = BTreeMap::new();
                    for a in req.assignments {
                        if group.members.contains_key(&a.member_id) {
                            given.insert(a.member_id, a.assignment);
                        }
                    }
                    for m in group.members.values_mut() {
                        m.assignment = given.remove(&m.member_id).unwrap_or_default();
                    }
                    self.propagate_assignment(gid, ErrorCode::NONE);
                    self.groups
                        .get_mut(gid)
                        .expect("known")
                        .transition_to(GroupState::Stable);
                    self.store_group(gid);
                }
            }
            GroupState::Stable => {
                let response = SyncGroupResponse {
                    throttle_time_ms: 0,
                    error_code: ErrorCode::NONE,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    assignment: group.members[mid].assignment.clone(),
                };
                self.remove_pending_sync(gid, mid);
                self.respond(parked, Response::SyncGroup(response));
            }
            GroupState::Empty | GroupState::Dead => {
                unreachable!("a group with members is neither Empty nor Dead")
            }
        }
    }

    /// Answers every parked SyncGroup with the member's assignment (or `error`), and
    /// restarts those members' sessions.
    fn propagate_assignment(&mut self, gid: &str, error: ErrorCode) {
        let group = self.groups.get_mut(gid).expect("known");
        let (ptype, pname) = (group.protocol_type.clone(), group.protocol_name.clone());
        let mut answered = Vec::new();
        for m in group.members.values_mut() {
            if let Some(p) = m.awaiting_sync.take() {
                let response = SyncGroupResponse {
                    throttle_time_ms: 0,
                    error_code: error,
                    protocol_type: if error.is_ok() { ptype.clone() } else { None },
                    protocol_name: if error.is_ok() { pname.clone() } else { None },
                    assignment: if error.is_ok() {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                };
                answered.push((p, response, m.member_id.clone(), m.session_timeout_ms));
            }
        }
        for (p, response, mid, session) in answered {
            self.respond(p, Response::SyncGroup(response));
            let at = self.after_ms(session as i64);
            self.schedule_heartbeat(gid, &mid, at);
        }
    }

    fn reset_and_propagate_assignment_error(&mut self, gid: &str, error: ErrorCode) {
        let group = self.groups.get_mut(gid).expect("known");
        debug_assert_eq!(group.state, GroupState::CompletingRebalance);
        for m in group.members.values_mut() {
            m.assignment = Bytes::new();
        }
        self.propagate_assignment(gid, error);
    }

    fn remove_pending_sync(&mut self, gid: &str, mid: &str) {
        let group = self.groups.get_mut(gid).expect("known");
        group.pending_sync.remove(mid);
        if group.pending_sync.is_empty() {
            self.clear_sync_timer(gid);
        }
    }

    /// Members of the new generation that never sent SyncGroup are removed, and the group
    /// rebalances without them.
    fn on_sync_deadline(&mut self, gid: &str, at: Instant) {
        let Some(group) = self.groups.get_mut(gid) else {
            return;
        };
        if group.sync_deadline != Some(at) {
            return;
        }
        group.sync_deadline = None;
        if !matches!(
            group.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) || group.pending_sync.is_empty()
        {
            return;
        }
        let late: Vec<String> = std::mem::take(&mut group.pending_sync)
            .into_iter()
            .collect();
        tracing::info!(group = gid, ?late, "members did not sync in time; removed");
        for mid in late {
            self.drop_member(gid, &mid, ErrorCode::UNKNOWN_MEMBER_ID);
        }
        self.maybe_prepare_rebalance_or_complete_join(gid);
    }

    // ---- Heartbeat and LeaveGroup ------------------------------------------------------

    /// Heartbeat, for a group this node coordinates: restarts the member's session and
    /// tells it whether to rejoin.
    pub fn heartbeat(&mut self, now: Instant, req: &HeartbeatRequest) -> HeartbeatResponse {
        self.now = self.now.max(now);
        let error = self.heartbeat_error(req);
        HeartbeatResponse {
            throttle_time_ms: 0,
            error_code: error,
        }
    }

    fn heartbeat_error(&mut self, req: &HeartbeatRequest) -> ErrorCode {
        let gid = req.group_id.as_str();
        let Some(group) = self.groups.get(gid) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        if group.state == GroupState::Dead {
            return ErrorCode::COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(code) = group.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
            return code;
        }
        if req.generation_id != group.generation_id {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        let state = group.state;
        let session = group.members[&req.member_id].session_timeout_ms as i64;
        match state {
            GroupState::Empty | GroupState::Dead => ErrorCode::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                let at = self.after_ms(session);
                self.schedule_heartbeat(gid, &req.member_id, at);
                ErrorCode::REBALANCE_IN_PROGRESS
            }
            // A member may heartbeat between its JoinGroup answer and its SyncGroup.
            GroupState::CompletingRebalance | GroupState::Stable => {
                let at = self.after_ms(session);
                self.schedule_heartbeat(gid, &req.member_id, at);
                ErrorCode::NONE
            }
        }
    }

    fn on_heartbeat_expired(&mut self, gid: &str, mid: &str, at: Instant) {
        let Some(member) = self
            .groups
            .get_mut(gid)
            .and_then(|g| g.members.get_mut(mid))
        else {
            return;
        };
        if member.heartbeat_deadline != Some(at) {
            return;
        }
        member.heartbeat_deadline = None;
        if member.has_satisfied_heartbeat() {
            // Waiting in a rebalance: the join or sync phase has its own deadline.
            return;
        }
        tracing::info!(
            group = gid,
            member = mid,
            "session expired; removing the member"
        );
        self.remove_member_and_update(gid, mid);
    }

    /// LeaveGroup, for a group this node coordinates: each member (by id, or by instance id
    /// for static members) is removed and the group rebalances.
    pub fn leave_group(&mut self, now: Instant, req: &LeaveGroupRequest) -> LeaveGroupResponse {
        self.now = self.now.max(now);
        let gid = req.group_id.as_str();
        let mut response = LeaveGroupResponse::default();
        let result = |m: &LeaveGroupMember, error_code| LeaveGroupMemberResponse {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            error_code,
        };
        if !self.groups.contains_key(gid) {
            response.members = req
                .members
                .iter()
                .map(|m| result(m, ErrorCode::UNKNOWN_MEMBER_ID))
                .collect();
            return response;
        }
        for m in &req.members {
            let group = &self.groups[gid];
            let instance = m.group_instance_id.as_deref();
            let code = if !m.member_id.is_empty()
                && group.is_static_member_fenced(&m.member_id, instance)
            {
                ErrorCode::FENCED_INSTANCE_ID
            } else if group.pending_members.contains_key(&m.member_id) {
                self.remove_pending_member(gid, &m.member_id);
                ErrorCode::NONE
            } else {
                let target = instance
                    .and_then(|i| group.static_members.get(i))
                    .cloned()
                    .or_else(|| {
                        group
                            .members
                            .contains_key(&m.member_id)
                            .then(|| m.member_id.clone())
                    });
                match target {
                    None => ErrorCode::UNKNOWN_MEMBER_ID,
                    Some(mid) => {
                        if let Some(reason) = &m.reason {
                            tracing::info!(group = gid, member = %mid, %reason, "member leaves");
                        } else {
                            tracing::info!(group = gid, member = %mid, "member leaves");
                        }
                        self.remove_member_and_update(gid, &mid);
                        ErrorCode::NONE
                    }
                }
            };
            response.members.push(result(m, code));
        }
        response
    }

    /// Removes a member (session expiry, LeaveGroup, oversized group) and moves the group on.
    fn remove_member_and_update(&mut self, gid: &str, mid: &str) {
        self.drop_member(gid, mid, ErrorCode::UNKNOWN_MEMBER_ID);
        match self.groups[gid].state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(gid)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(gid),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Takes a member out of its group, answering whatever it has parked with `error`.
    fn drop_member(&mut self, gid: &str, mid: &str, error: ErrorCode) {
        self.clear_heartbeat(gid, mid);
        let group = self.groups.get_mut(gid).expect("known");
        let Some(member) = group.remove(mid) else {
            return;
        };
        if group.pending_sync.is_empty() {
            self.clear_sync_timer(gid);
        }
        if let Some(p) = member.awaiting_join {
            self.respond_join_error(p, "", error);
        }
        if let Some(p) = member.awaiting_sync {
            self.respond_sync_error(p, error);
        }
    }

    fn remove_pending_member(&mut self, gid: &str, mid: &str) {
        self.clear_pending_member_timer(gid, mid);
        if let Some(g) = self.groups.get_mut(gid) {
            g.pending_members.remove(mid);
        }
        self.maybe_complete_join_phase(gid);
    }

    // ---- ListGroups, DescribeGroups ----------------------------------------------------

    /// Every group this node coordinates (`is_coordinated` says which offsets partitions it
    /// leads), filtered as asked.
    pub fn list_groups(
        &self,
        req: &ListGroupsRequest,
        is_coordinated: impl Fn(&str) -> bool,
    ) -> Vec<ListedGroup> {
        let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
        let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
        let ids: BTreeSet<&String> = self.groups.keys().chain(self.offsets.groups()).collect();
        ids.into_iter()
            .filter(|gid| is_coordinated(gid))
            .map(|gid| match self.groups.get(gid) {
                Some(g) => ListedGroup {
                    group_id: gid.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    group_state: g.state.name().to_string(),
                    group_type: "classic".to_string(),
                },
                None => ListedGroup {
                    group_id: gid.clone(),
                    protocol_type: String::new(),
                    group_state: GroupState::Empty.name().to_string(),
                    group_type: "classic".to_string(),
                },
            })
            .filter(|g| states.is_empty() || states.contains(&g.group_state.to_lowercase()))
            .filter(|g| types.is_empty() || types.contains(&g.group_type))
            .collect()
    }

    /// One group as DescribeGroups reports it: members with metadata and assignment only
    /// while Stable; an unknown group is Dead.
    pub fn describe_group(&self, gid: &str, include_authorized_operations: bool) -> DescribedGroup {
        let authorized_operations = if include_authorized_operations {
            GROUP_AUTHORIZED_OPERATIONS
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        let mut out = DescribedGroup {
            error_code: ErrorCode::NONE,
            error_message: None,
            group_id: gid.to_string(),
            group_state: GroupState::Dead.name().to_string(),
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: Vec::new(),
            authorized_operations,
        };
        let Some(group) = self.groups.get(gid) else {
            if self.offsets.has_offsets(gid) {
                out.group_state = GroupState::Empty.name().to_string();
            }
            return out;
        };
        out.group_state = group.state.name().to_string();
        out.protocol_type = group.protocol_type.clone().unwrap_or_default();
        let stable = group.state == GroupState::Stable;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        if stable {
            out.protocol_data = protocol.clone();
        }
        out.members = group
            .members_in_join_order()
            .into_iter()
            .map(|m| DescribedGroupMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                member_metadata: if stable {
                    m.metadata(&protocol).cloned().unwrap_or_default()
                } else {
                    Bytes::new()
                },
                member_assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        out
    }

    // ---- Offsets -----------------------------------------------------------------------

    /// Validates an OffsetCommit as Kafka does and returns its response (final for every
    /// partition with an error), the mutations to write, and the response slots they
    /// decide. `partition_exists` says whether a topic partition exists.
    pub fn commit_offsets(
        &mut self,
        now: Instant,
        req: &OffsetCommitRequest,
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> (OffsetCommitResponse, Vec<Mutation>, Vec<Slot>) {
        self.now = self.now.max(now);
        let group_error = self.validate_commit(req).err();
        let mut response = OffsetCommitResponse::default();
        let mut mutations = Vec::new();
        let mut slots = Vec::new();
        let now_ms = self.now.as_millis();
        for (t, topic) in req.topics.iter().enumerate() {
            let mut topic_response = OffsetCommitResponseTopic {
                name: topic.name.clone(),
                partitions: Vec::new(),
            };
            for (i, p) in topic.partitions.iter().enumerate() {
                let metadata = p.committed_metadata.clone().unwrap_or_default();
                let error_code = if let Some(code) = group_error {
                    code
                } else if !partition_exists(&topic.name, p.partition_index) {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                } else if metadata.len() > self.config.offset_metadata_max_bytes
                    || !super::offsets::encodable(&metadata)
                {
                    ErrorCode::OFFSET_METADATA_TOO_LARGE
                } else {
                    mutations.push(Mutation {
                        key: OffsetKey {
                            group: req.group_id.clone(),
                            topic: topic.name.clone(),
                            partition: p.partition_index,
                        },
                        value: Some(CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata,
                            commit_timestamp_ms: now_ms,
                        }),
                    });
                    slots.push((t, i));
                    ErrorCode::NONE
                };
                topic_response
                    .partitions
                    .push(OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code,
                    });
            }
            response.topics.push(topic_response);
        }
        (response, mutations, slots)
    }

    /// Kafka's OffsetCommit rules: a group without members takes "simple" commits
    /// (generation < 0); otherwise the member and generation must be current and the group
    /// not waiting for assignments.
    fn validate_commit(&mut self, req: &OffsetCommitRequest) -> Result<(), ErrorCode> {
        let gid = req.group_id.as_str();
        let generation = req.generation_id_or_member_epoch;
        if !self.groups.contains_key(gid) {
            if generation >= 0 {
                return Err(ErrorCode::ILLEGAL_GENERATION);
            }
            if self.groups.len() >= self.config.max_groups && !self.offsets.has_offsets(gid) {
                return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
            }
            self.groups
                .insert(gid.to_string(), Group::new(gid.to_string()));
            return Ok(());
        }
        let group = &self.groups[gid];
        if group.state == GroupState::Dead {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        if generation < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if generation >= 0 || !req.member_id.is_empty() || req.group_instance_id.is_some() {
            group.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
            if generation != group.generation_id {
                return Err(ErrorCode::ILLEGAL_GENERATION);
            }
        } else {
            // No member id and no generation: only for groups without members.
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        match group.state {
            GroupState::CompletingRebalance => Err(ErrorCode::REBALANCE_IN_PROGRESS),
            GroupState::Stable | GroupState::PreparingRebalance => {
                // A commit shows the member is alive; a rebalance is announced by heartbeats.
                let session = group.members[&req.member_id].session_timeout_ms as i64;
                let at = self.after_ms(session);
                self.schedule_heartbeat(gid, &req.member_id, at);
                Ok(())
            }
            GroupState::Empty | GroupState::Dead => Err(ErrorCode::UNKNOWN_MEMBER_ID),
        }
    }

    /// One group's part of OffsetFetch, from durable offsets only.
    pub fn fetch_offsets(
        &self,
        req: &OffsetFetchRequestGroup,
        require_stable: bool,
    ) -> OffsetFetchResponseGroup {
        let gid = req.group_id.as_str();
        let partition = |topic: &str, index: i32| {
            let unstable = require_stable && self.offsets.is_pending(gid, topic, index);
            match self.offsets.get(gid, topic, index) {
                Some(c) if !unstable => OffsetFetchResponsePartition {
                    partition_index: index,
                    committed_offset: c.offset,
                    // The epoch the consumer committed, kept in OffsetCommitValue v3 (KIP-320).
                    committed_leader_epoch: c.leader_epoch,
                    metadata: Some(c.metadata.clone()),
                    error_code: ErrorCode::NONE,
                },
                _ => OffsetFetchResponsePartition {
                    partition_index: index,
                    committed_offset: -1,
                    committed_leader_epoch: -1,
                    metadata: Some(String::new()),
                    error_code: if unstable {
                        ErrorCode::UNSTABLE_OFFSET_COMMIT
                    } else {
                        ErrorCode::NONE
                    },
                },
            }
        };
        let topics = match &req.topics {
            Some(topics) => topics
                .iter()
                .map(|t| OffsetFetchResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&i| partition(&t.name, i))
                        .collect(),
                })
                .collect(),
            None => {
                let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
                for ((topic, index), _) in self.offsets.group_offsets(gid) {
                    if topics.last().map(|t| &t.name) != Some(topic) {
                        topics.push(OffsetFetchResponseTopic {
                            name: topic.clone(),
                            partitions: Vec::new(),
                        });
                    }
                    let last = topics.last_mut().expect("just pushed");
                    last.partitions.push(partition(topic, *index));
                }
                topics
            }
        };
        OffsetFetchResponseGroup {
            group_id: gid.to_string(),
            topics,
            error_code: ErrorCode::NONE,
        }
    }

    /// DeleteGroups for one group: an Empty group is forgotten at once and its offsets
    /// deleted by the returned tombstones; a group with members is NON_EMPTY_GROUP.
    pub fn delete_group(&mut self, gid: &str) -> Result<Vec<Mutation>, ErrorCode> {
        let known_offsets = self.offsets.has_offsets(gid) || self.offsets.has_pending(gid);
        match self.groups.get(gid).map(|g| g.state) {
            None if !known_offsets => return Err(ErrorCode::GROUP_ID_NOT_FOUND),
            Some(GroupState::Dead) => return Err(ErrorCode::GROUP_ID_NOT_FOUND),
            None | Some(GroupState::Empty) => {}
            Some(_) => return Err(ErrorCode::NON_EMPTY_GROUP),
        }
        if let Some(group) = self.remove_group(gid) {
            debug_assert!(group.members.is_empty() && group.sync_deadline.is_none());
            if group.stored {
                self.store_tombstone(gid);
            }
        }
        tracing::info!(group = gid, "group deleted");
        Ok(self.tombstones(gid, self.offsets.all_keys(gid)))
    }

    /// OffsetDelete: the response (final except for the slots of the returned tombstones).
    /// Offsets of topics an active "consumer" group subscribes to are kept
    /// (GROUP_SUBSCRIBED_TO_TOPIC); an active group of another protocol is NON_EMPTY_GROUP.
    pub fn delete_offsets(
        &mut self,
        req: &OffsetDeleteRequest,
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> (OffsetDeleteResponse, Vec<Mutation>, Vec<Slot>) {
        let gid = req.group_id.as_str();
        let mut response = OffsetDeleteResponse::default();
        let known_offsets = self.offsets.has_offsets(gid) || self.offsets.has_pending(gid);
        let subscribed: Option<BTreeSet<String>> = match self.groups.get(gid) {
            None if !known_offsets => {
                response.error_code = ErrorCode::GROUP_ID_NOT_FOUND;
                return (response, Vec::new(), Vec::new());
            }
            Some(g) if g.state == GroupState::Dead => {
                response.error_code = ErrorCode::GROUP_ID_NOT_FOUND;
                return (response, Vec::new(), Vec::new());
            }
            None => None,
            Some(g) if g.state == GroupState::Empty => None,
            Some(g) if g.protocol_type.as_deref() == Some("consumer") => {
                // Unparsable subscriptions count as subscribed to everything: never delete
                // what an active member may be consuming.
                Some(g.subscribed_topics().unwrap_or_default())
            }
            Some(_) => {
                response.error_code = ErrorCode::NON_EMPTY_GROUP;
                return (response, Vec::new(), Vec::new());
            }
        };
        let unknown_subscriptions = self
            .groups
            .get(gid)
            .is_some_and(|g| g.state != GroupState::Empty && g.subscribed_topics().is_none());
        let keys: BTreeSet<(String, i32)> = self.offsets.all_keys(gid).into_iter().collect();
        let mut mutations = Vec::new();
        let mut slots = Vec::new();
        for (t, topic) in req.topics.iter().enumerate() {
            let mut out = OffsetDeleteResponseTopic {
                name: topic.name.clone(),
                partitions: Vec::new(),
            };
            for (i, &index) in topic.partitions.iter().enumerate() {
                let error_code = if !partition_exists(&topic.name, index) {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                } else if unknown_subscriptions
                    || subscribed.as_ref().is_some_and(|s| s.contains(&topic.name))
                {
                    ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
                } else {
                    if keys.contains(&(topic.name.clone(), index)) {
                        mutations.extend(self.tombstones(gid, vec![(topic.name.clone(), index)]));
                        slots.push((t, i));
                    }
                    ErrorCode::NONE
                };
                out.partitions.push(OffsetDeleteResponsePartition {
                    partition_index: index,
                    error_code,
                });
            }
            response.topics.push(out);
        }
        (response, mutations, slots)
    }

    fn tombstones(&self, gid: &str, keys: Vec<(String, i32)>) -> Vec<Mutation> {
        keys.into_iter()
            .map(|(topic, partition)| Mutation {
                key: OffsetKey {
                    group: gid.to_string(),
                    topic,
                    partition,
                },
                value: None,
            })
            .collect()
    }

    /// Whether another write may wait for durability (a bound on what clients can make the
    /// coordinator hold).
    pub fn can_accept_write(&self) -> bool {
        self.writes.values().map(VecDeque::len).sum::<usize>() < MAX_PENDING_WRITES
    }

    /// Holds `response` until every write in `writes` is durable (answering at once if there
    /// are none), or until the commit timeout passes.
    pub fn await_writes(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: RequestId,
        response: Response,
        writes: Vec<PlannedWrite>,
    ) {
        self.now = self.now.max(now);
        let parked = Parked { conn, id };
        if writes.is_empty() {
            return self.respond(parked, response);
        }
        if matches!(response, Response::OffsetCommit(_))
            && crate::bugs::active(
                self.config.planted_bug,
                crate::bugs::PlantedBug::CommitBeforeFlush,
            )
        {
            // The planted bug: the offsets (already appended by the node) count and the
            // commit is answered before the record is durable.
            for w in &writes {
                for m in &w.mutations {
                    self.apply(m);
                }
            }
            return self.respond(parked, response);
        }
        let reply = self.next_reply;
        self.next_reply += 1;
        let deadline = self.after_ms(self.config.offset_commit_timeout_ms as i64);
        self.replies.insert(
            reply,
            PendingReply {
                parked,
                response,
                outstanding: writes.len(),
                deadline,
            },
        );
        self.timers.set(TimerKey::Reply(reply), deadline);
        for w in writes {
            self.push_planned(w, Some(reply));
        }
    }

    /// Queues a write the node appended; `reply` is the answer it decides slots of, if any.
    fn push_planned(&mut self, w: PlannedWrite, reply: Option<u64>) {
        self.push_write(
            w.partition,
            PendingWrite {
                needed: w.needed,
                mutations: w.mutations,
                groups: Vec::new(),
                reply: reply.map(|r| (r, w.slots)),
                load: false,
            },
        );
    }

    fn push_write(&mut self, partition: i32, write: PendingWrite) {
        for m in &write.mutations {
            self.offsets.add_pending(&m.key);
        }
        let queue = self.writes.entry(partition).or_default();
        assert!(
            queue.back().is_none_or(|w| w.needed <= write.needed),
            "writes to offsets partition {partition} must be queued in log order"
        );
        queue.push_back(write);
    }

    /// A batch read from offsets partition `partition` at start: applied now if durable
    /// (`needed` is `None`), else once the partition is flushed to `needed`.
    pub fn load(
        &mut self,
        partition: i32,
        mutations: Vec<Mutation>,
        groups: Vec<GroupRecord>,
        needed: Option<i64>,
    ) {
        match needed {
            None => {
                for m in &mutations {
                    self.apply(m);
                }
                for g in groups {
                    self.restore(g);
                }
            }
            Some(needed) => self.push_write(
                partition,
                PendingWrite {
                    needed,
                    mutations,
                    groups,
                    reply: None,
                    load: true,
                },
            ),
        }
    }

    /// Whether recovered records of `partition` still wait for their flush: until then its
    /// groups answer COORDINATOR_LOAD_IN_PROGRESS.
    pub fn is_loading(&self, partition: i32) -> bool {
        self.writes
            .get(&partition)
            .is_some_and(|q| q.iter().any(|w| w.load))
    }

    pub fn any_loading(&self) -> bool {
        self.writes.values().any(|q| q.iter().any(|w| w.load))
    }

    /// Offsets partition `partition` is durable up to `upto`: apply and answer what waited.
    pub fn on_durable(&mut self, partition: i32, upto: i64) {
        loop {
            let Some(queue) = self.writes.get_mut(&partition) else {
                return;
            };
            if queue.front().is_none_or(|w| w.needed > upto) {
                break;
            }
            let w = queue.pop_front().expect("checked");
            if queue.is_empty() {
                self.writes.remove(&partition);
            }
            for m in &w.mutations {
                self.offsets.remove_pending(&m.key);
                self.apply(m);
            }
            for g in w.groups {
                self.restore(g);
            }
            if let Some((reply, _)) = w.reply {
                self.settle(reply, &[], ErrorCode::NONE);
            }
        }
    }

    /// Offsets partition `partition` failed (its log takes no more writes) or is gone:
    /// what waited on it is answered NOT_COORDINATOR and never applied.
    pub fn on_partition_failed(&mut self, partition: i32) {
        let Some(queue) = self.writes.remove(&partition) else {
            return;
        };
        for w in queue {
            for m in &w.mutations {
                self.offsets.remove_pending(&m.key);
            }
            if let Some((reply, slots)) = w.reply {
                self.settle(reply, &slots, ErrorCode::NOT_COORDINATOR);
            }
        }
    }

    /// `__consumer_offsets` was deleted: its offsets are gone, and so are the groups known
    /// only through them.
    pub fn on_offsets_topic_deleted(&mut self) {
        let partitions: Vec<i32> = self.writes.keys().copied().collect();
        for p in partitions {
            self.on_partition_failed(p);
        }
        self.offsets.clear();
        let empty: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.state == GroupState::Empty && g.pending_members.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for gid in empty {
            self.forget_if_unused(&gid);
        }
    }

    /// One write of `reply` is settled; failed slots get `error`.
    fn settle(&mut self, reply: u64, failed: &[Slot], error: ErrorCode) {
        let Some(r) = self.replies.get_mut(&reply) else {
            return; // answered already (timed out)
        };
        for &slot in failed {
            set_slot_error(&mut r.response, slot, error);
        }
        r.outstanding -= 1;
        if r.outstanding == 0 {
            let r = self.replies.remove(&reply).expect("present");
            self.timers.cancel(&TimerKey::Reply(reply));
            self.respond(r.parked, r.response);
        }
    }

    /// A commit not durable in time is answered COORDINATOR_NOT_AVAILABLE (Kafka maps its
    /// REQUEST_TIMED_OUT so): the client retries, and the record, if it becomes durable,
    /// still counts.
    fn on_reply_deadline(&mut self, reply: u64) {
        let Some(mut r) = self.replies.remove(&reply) else {
            return;
        };
        let slots: Vec<Slot> = self
            .writes
            .values()
            .flatten()
            .filter_map(|w| w.reply.as_ref())
            .filter(|(id, _)| *id == reply)
            .flat_map(|(_, slots)| slots.iter().copied())
            .collect();
        for slot in slots {
            set_slot_error(&mut r.response, slot, ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        self.respond(r.parked, r.response);
    }

    /// Applies a durable change to the cache; a commit makes its group known.
    fn apply(&mut self, m: &Mutation) {
        if m.value.is_some() && !self.groups.contains_key(&m.key.group) {
            self.groups
                .insert(m.key.group.clone(), Group::new(m.key.group.clone()));
        }
        self.offsets.apply(m);
    }

    /// The committed offset of a group's partition, as OffsetFetch would see it.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.offsets.get(group, topic, partition)
    }

    /// A group's state, if the coordinator knows the group.
    pub fn group_state(&self, gid: &str) -> Option<GroupState> {
        self.groups.get(gid).map(|g| g.state)
    }

    // ---- housekeeping ------------------------------------------------------------------

    /// Deletes expired offsets and forgets Empty groups with no offsets and nothing pending
    /// (Kafka's periodic cleanup).
    fn cleanup(&mut self) {
        self.expire_offsets();
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for gid in ids {
            self.forget_if_unused(&gid);
        }
    }

    /// KIP-211, as Kafka's `GroupMetadata.removeExpiredOffsets` for groups without members:
    /// an offset expires once `offsets_retention_ms` has passed since the group became
    /// Empty, or, for a group never seen with members, since the offset was committed.
    /// Groups with members keep their offsets; so do keys with a write in flight.
    fn expire_offsets(&mut self) {
        let retention = self.config.offsets_retention_ms;
        if retention < 0 {
            return;
        }
        let now_ms = self.now.as_millis();
        for (gid, g) in &self.groups {
            if g.state != GroupState::Empty || self.offsets.has_pending(gid) {
                continue;
            }
            let keys: Vec<(String, i32)> = self
                .offsets
                .all_keys(gid)
                .into_iter()
                .filter(|(topic, partition)| {
                    let since = g.empty_since_ms.or_else(|| {
                        self.offsets
                            .get(gid, topic, *partition)
                            .map(|c| c.commit_timestamp_ms)
                    });
                    since.is_some_and(|t| now_ms.saturating_sub(t) >= retention)
                })
                .collect();
            if !keys.is_empty() {
                tracing::info!(group = %gid, offsets = keys.len(), "committed offsets expired");
                self.expired
                    .push_back((gid.clone(), self.tombstones(gid, keys)));
            }
        }
    }

    fn forget_if_unused(&mut self, gid: &str) {
        let unused = self.groups.get(gid).is_some_and(|g| {
            g.state == GroupState::Empty
                && g.members.is_empty()
                && g.pending_members.is_empty()
                && g.join_timer.is_none()
        }) && !self.offsets.has_offsets(gid)
            && !self.offsets.has_pending(gid);
        if unused && self.remove_group(gid).is_some_and(|g| g.stored) {
            self.store_tombstone(gid);
        }
    }

    // ---- stored membership ------------------------------------------------------------

    /// Queues the group's membership for `__consumer_offsets`, as Kafka stores it after each
    /// completed rebalance (and when the group empties, and when a static member's id is
    /// replaced without one), so that a restarted coordinator resumes the generation.
    fn store_group(&mut self, gid: &str) {
        let now_ms = self.now.as_millis();
        let Some(group) = self.groups.get_mut(gid) else {
            return;
        };
        let value = GroupMetadata {
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            generation: group.generation_id,
            protocol: group.protocol_name.clone(),
            leader: group.leader.clone(),
            current_state_timestamp_ms: now_ms,
            members: group
                .members_in_join_order()
                .into_iter()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: group
                        .protocol_name
                        .as_deref()
                        .and_then(|p| m.metadata(p))
                        .cloned()
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        };
        if !super::offsets::group_encodable(&value) {
            tracing::warn!(
                group = gid,
                "a member's ids do not fit Kafka's group metadata record; not stored"
            );
            return;
        }
        group.stored = true;
        self.stores.push_back(GroupRecord {
            group: gid.to_string(),
            value: Some(value),
        });
    }

    fn store_tombstone(&mut self, gid: &str) {
        self.stores.push_back(GroupRecord {
            group: gid.to_string(),
            value: None,
        });
    }

    /// Removes a group with every deadline it holds.
    fn remove_group(&mut self, gid: &str) -> Option<Group> {
        let group = self.groups.remove(gid)?;
        for m in group.members.values() {
            self.retime(TimerKey::heartbeat(gid, &m.member_id), None);
        }
        for mid in group.pending_members.keys() {
            self.retime(TimerKey::pending_member(gid, mid), None);
        }
        self.retime(TimerKey::join(gid), None);
        self.retime(TimerKey::sync(gid), None);
        Some(group)
    }

    /// A stored membership read back at start (or once its flush completes): the group
    /// resumes Stable in its generation, every member's session starting now, as Kafka's
    /// loaded groups do; a stored empty group resumes Empty with its generation, and a
    /// tombstone forgets the group. A record that contradicts itself (a leader that is not
    /// a member, duplicate ids, members without a protocol) keeps only the generation.
    fn restore(&mut self, record: GroupRecord) {
        let gid = record.group;
        self.remove_group(&gid);
        let Some(meta) = record.value else {
            if self.offsets.has_offsets(&gid) {
                self.groups.insert(gid.clone(), Group::new(gid));
            }
            return;
        };
        let mut group = Group::new(gid.clone());
        group.stored = true;
        group.generation_id = meta.generation;
        let protocol_type = Some(meta.protocol_type.clone()).filter(|t| !t.is_empty());
        group.protocol_type = protocol_type.clone();
        let ids: BTreeSet<&str> = meta.members.iter().map(|m| m.member_id.as_str()).collect();
        let instances: Vec<&str> = meta
            .members
            .iter()
            .filter_map(|m| m.group_instance_id.as_deref())
            .collect();
        let instance_set: BTreeSet<&str> = instances.iter().copied().collect();
        let consistent = ids.len() == meta.members.len()
            && instance_set.len() == instances.len()
            && meta.members.len() <= self.config.max_size
            && meta.protocol.is_some()
            && meta.leader.as_deref().is_some_and(|l| ids.contains(l));
        if meta.members.is_empty() {
            group.empty_since_ms = Some(meta.current_state_timestamp_ms).filter(|t| *t >= 0);
        }
        if meta.members.is_empty() || !consistent {
            if !meta.members.is_empty() {
                tracing::warn!(group = %gid, "stored membership is inconsistent; the group resumes empty");
            }
            self.groups.insert(gid, group);
            return;
        }
        let protocol = meta.protocol.clone().expect("checked");
        let mut sessions = Vec::new();
        for m in meta.members {
            sessions.push((m.member_id.clone(), m.session_timeout_ms));
            let join_seq = self.next_join_seq;
            self.next_join_seq += 1;
            group.add(Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: meta.protocol_type.clone(),
                protocols: vec![JoinGroupProtocol {
                    name: protocol.clone(),
                    metadata: m.subscription,
                }],
                assignment: m.assignment,
                join_seq,
                is_new: false,
                awaiting_join: None,
                awaiting_sync: None,
                heartbeat_deadline: None,
            });
        }
        // `add` took the first member's raw type; an empty one means none, as above.
        group.protocol_type = protocol_type;
        group.protocol_name = Some(protocol);
        group.leader = meta.leader;
        group.transition_to(GroupState::Stable);
        tracing::info!(group = %gid, generation = group.generation_id, members = group.members.len(), "group membership restored");
        self.groups.insert(gid.clone(), group);
        for (mid, session) in sessions {
            let at = self.after_ms(session as i64);
            self.schedule_heartbeat(&gid, &mid, at);
        }
    }

    fn after_ms(&self, ms: i64) -> Instant {
        self.now + Duration::from_millis(ms.max(0) as u64)
    }

    /// A random version-4 UUID in its canonical text form, from the seeded stream.
    fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }

    fn respond(&mut self, parked: Parked, response: Response) {
        self.responses.push_back((parked, response));
    }

    fn respond_join_error(&mut self, parked: Parked, member_id: &str, error: ErrorCode) {
        self.respond(parked, Response::JoinGroup(join_error(member_id, error)));
    }

    fn respond_sync_error(&mut self, parked: Parked, error: ErrorCode) {
        self.respond(
            parked,
            Response::SyncGroup(SyncGroupResponse {
                error_code: error,
                ..Default::default()
            }),
        );
    }

    /// Arms `key` at `at`, or disarms it for `None`. Every deadline is also recorded on
    /// its object: callers update that record and pass what it now holds, so the two never
    /// disagree (`check` verifies it).
    fn retime(&mut self, key: TimerKey, at: Option<Instant>) {
        self.timers.set_or_cancel(key, at);
    }

    fn schedule_heartbeat(&mut self, gid: &str, mid: &str, at: Instant) {
        let member = self
            .groups
            .get_mut(gid)
            .and_then(|g| g.members.get_mut(mid));
        if let Some(m) = member {
            m.heartbeat_deadline = Some(at);
            self.retime(TimerKey::heartbeat(gid, mid), Some(at));
        }
    }

    fn clear_heartbeat(&mut self, gid: &str, mid: &str) {
        if let Some(m) = self
            .groups
            .get_mut(gid)
            .and_then(|g| g.members.get_mut(mid))
        {
            m.heartbeat_deadline = None;
        }
        self.retime(TimerKey::heartbeat(gid, mid), None);
    }

    /// Removes a pending member's timer; the caller removes the pending member itself.
    fn clear_pending_member_timer(&mut self, gid: &str, mid: &str) {
        self.retime(TimerKey::pending_member(gid, mid), None);
    }

    fn set_join_timer(&mut self, gid: &str, at: Instant, kind: JoinTimer) {
        let group = self.groups.get_mut(gid).expect("known");
        group.join_timer = Some((at, kind));
        self.retime(TimerKey::join(gid), Some(at));
    }

    fn clear_join_timer(&mut self, gid: &str) {
        if let Some(g) = self.groups.get_mut(gid) {
            g.join_timer = None;
        }
        self.retime(TimerKey::join(gid), None);
    }

    fn set_sync_timer(&mut self, gid: &str, at: Instant) {
        self.groups.get_mut(gid).expect("known").sync_deadline = Some(at);
        self.retime(TimerKey::sync(gid), Some(at));
    }

    fn clear_sync_timer(&mut self, gid: &str) {
        if let Some(g) = self.groups.get_mut(gid) {
            g.sync_deadline = None;
        }
        self.retime(TimerKey::sync(gid), None);
    }

    /// Asserts the coordinator's invariants: each group's own, every deadline recorded on
    /// its object is in the timer set and nothing else is, and every bound holds.
    pub fn check(&self) {
        self.timers.check();
        let mut expected: BTreeSet<(Instant, TimerKey)> = BTreeSet::new();
        for (gid, g) in &self.groups {
            assert_eq!(gid, &g.group_id);
            g.check();
            assert!(
                g.members.len() <= self.config.max_size,
                "{gid}: too many members"
            );
            for m in g.members.values() {
                if let Some(at) = m.heartbeat_deadline {
                    expected.insert((at, TimerKey::heartbeat(gid, &m.member_id)));
                }
            }
            for (mid, &at) in &g.pending_members {
                expected.insert((at, TimerKey::pending_member(gid, mid)));
            }
            if let Some((at, _)) = g.join_timer {
                expected.insert((at, TimerKey::join(gid)));
            }
            if let Some(at) = g.sync_deadline {
                expected.insert((at, TimerKey::sync(gid)));
            }
        }
        for (id, r) in &self.replies {
            assert!(r.outstanding > 0);
            expected.insert((r.deadline, TimerKey::Reply(*id)));
        }
        if let Some(at) = self.cleanup_deadline {
            expected.insert((at, TimerKey::Cleanup));
        }
        assert!(
            expected
                == self
                    .timers
                    .iter()
                    .map(|(at, key)| (at, key.clone()))
                    .collect::<BTreeSet<_>>(),
            "group timers out of sync: expected {expected:?}, have {:?}",
            self.timers
        );
        for (p, q) in &self.writes {
            assert!(!q.is_empty(), "empty write queue for offsets partition {p}");
            let mut last = i64::MIN;
            for w in q {
                assert!(
                    w.needed >= last,
                    "offsets partition {p}: writes out of order"
                );
                last = w.needed;
            }
        }
    }
}

/// The JoinGroup answer for an error (Kafka's `joinError`).
pub fn join_error(member_id: &str, error: ErrorCode) -> JoinGroupResponse {
    JoinGroupResponse {
        throttle_time_ms: 0,
        error_code: error,
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        skip_assignment: false,
        member_id: member_id.to_string(),
        members: Vec::new(),
    }
}

/// Puts `error` into one slot of a response that waits for writes.
pub fn set_slot_error(response: &mut Response, (a, b): Slot, error: ErrorCode) {
    match response {
        Response::OffsetCommit(r) => {
            if let Some(p) = r.topics.get_mut(a).and_then(|t| t.partitions.get_mut(b)) {
                p.error_code = error;
            }
        }
        Response::OffsetDelete(r) => {
            if let Some(p) = r.topics.get_mut(a).and_then(|t| t.partitions.get_mut(b)) {
                p.error_code = error;
            }
        }
        Response::DeleteGroups(r) => {
            if let Some(g) = r.results.get_mut(a) {
                g.error_code = error;
            }
        }
        other => unreachable!("no writes wait for a {other:?}"),
    }
}
