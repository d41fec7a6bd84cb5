//! One consumer group's membership: its state, generation, members (dynamic and static),
//! leader and chosen protocol, and the requests parked on it. Pure data and the rules that
//! need no clock; the coordinator drives the transitions and the timers.

use crate::api::{ConnId, JoinGroupProtocol, JoinGroupResponseMember, RequestId};
use crate::time::Instant;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupState {
    /// No members; the group may still have committed offsets.
    Empty,
    /// Waiting for every known member to (re)join.
    PreparingRebalance,
    /// Joined: waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Removed: what a deleted or unknown group is reported as.
    Dead,
}

impl GroupState {
    /// The name Kafka reports in ListGroups and DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Kafka's valid previous states of PreparingRebalance: the states a rebalance may start
    /// from.
    pub fn can_rebalance(self) -> bool {
        matches!(
            self,
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance
        )
    }
}

/// A request the coordinator answers later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parked {
    pub conn: ConnId,
    pub id: RequestId,
}

/// One member of a group.
#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<JoinGroupProtocol>,
    /// The leader's assignment for it in the current generation.
    pub assignment: Bytes,
    /// Position in join order: the first member is the default leader.
    pub join_seq: u64,
    /// A new member has not completed a join yet: it can expire while its join waits.
    pub is_new: bool,
    /// Its JoinGroup, waiting for the join phase to complete.
    pub awaiting_join: Option<Parked>,
    /// Its SyncGroup, waiting for the leader's assignment.
    pub awaiting_sync: Option<Parked>,
    /// When its session (or, for a new member, its join) expires.
    pub heartbeat_deadline: Option<Instant>,
}

impl Member {
    /// Whether a JoinGroup with `protocols` changes nothing (Kafka's `matches`).
    pub fn matches(&self, protocols: &[JoinGroupProtocol]) -> bool {
        self.protocols == protocols
    }

    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| &p.metadata)
    }

    /// Kafka's `hasSatisfiedHeartbeat`: a member waiting in a rebalance needs no heartbeat,
    /// except a new one, whose join itself may time out.
    pub fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }
}

/// One group's membership.
#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    /// The state before the current one: a rebalance that started from Empty waits out
    /// the initial delay rather than completing as soon as everyone joined.
    pub previous_state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// By member id.
    pub members: BTreeMap<String, Member>,
    /// group_instance_id → member id.
    pub static_members: BTreeMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not yet used to join, with their expiry.
    pub pending_members: BTreeMap<String, Instant>,
    /// Members of the generation that have not sent SyncGroup yet.
    pub pending_sync: BTreeSet<String>,
    /// A new member joined during the initial delay, which extends it.
    pub new_member_added: bool,
    /// The join phase deadline and what happens then.
    pub join_timer: Option<(Instant, JoinTimer)>,
    /// The deadline for every member of a new generation to send SyncGroup.
    pub sync_deadline: Option<Instant>,
    /// Its membership has been written to `__consumer_offsets`: forgetting the group must
    /// write its tombstone.
    pub stored: bool,
    /// When it last became Empty (broker ms), what its offsets' retention counts from;
    /// `None` for a group never seen with members (standalone commits).
    pub empty_since_ms: Option<i64>,
}

/// What a group's join deadline does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinTimer {
    /// The initial delay of a rebalance from Empty: `remaining_ms` of the rebalance timeout
    /// may still be spent extending it.
    Initial { delay_ms: i64, remaining_ms: i64 },
    /// The rebalance timeout: complete the join with whoever has joined.
    Complete,
}

impl Group {
    pub fn new(group_id: String) -> Group {
        Group {
            group_id,
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            join_timer: None,
            sync_deadline: None,
            stored: false,
            empty_since_ms: None,
        }
    }

    pub fn transition_to(&mut self, state: GroupState) {
        self.previous_state = self.state;
        self.state = state;
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// Members in join order.
    pub fn members_in_join_order(&self) -> Vec<&Member> {
        let mut v: Vec<&Member> = self.members.values().collect();
        v.sort_by_key(|m| m.join_seq);
        v
    }

    /// Adds a member; the first one to join an empty group sets its protocol type, and a
    /// group without a leader makes it the leader.
    pub fn add(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        self.pending_members.remove(&member.member_id);
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member and returns it; a leaving leader is succeeded by the earliest-joined
    /// remaining member.
    pub fn remove(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id);
        if let Some(m) = &removed {
            if let Some(instance) = &m.group_instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(instance);
                }
            }
        }
        if self.is_leader(member_id) {
            self.leader = self
                .members_in_join_order()
                .first()
                .map(|m| m.member_id.clone());
        }
        self.pending_members.remove(member_id);
        self.pending_sync.remove(member_id);
        removed
    }

    /// Moves a static member to a new member id (KIP-345): the old id is fenced.
    pub fn replace_static_member(&mut self, instance: &str, old_id: &str, new_id: &str) {
        let mut member = self
            .members
            .remove(old_id)
            .expect("a static member id maps to a member");
        member.member_id = new_id.to_string();
        self.static_members
            .insert(instance.to_string(), new_id.to_string());
        if self.is_leader(old_id) {
            self.leader = Some(new_id.to_string());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_string());
        }
        self.members.insert(new_id.to_string(), member);
    }

    /// Kafka's `validateMember`: a static instance must map to exactly this member id.
    pub fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), crate::error::ErrorCode> {
        use crate::error::ErrorCode;
        match group_instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => Err(ErrorCode::UNKNOWN_MEMBER_ID),
                Some(id) if id != member_id => Err(ErrorCode::FENCED_INSTANCE_ID),
                Some(_) => Ok(()),
            },
            None if !self.members.contains_key(member_id) => Err(ErrorCode::UNKNOWN_MEMBER_ID),
            None => Ok(()),
        }
    }

    /// Kafka's `isStaticMemberFenced`: the instance is known and mapped to another id.
    pub fn is_static_member_fenced(&self, member_id: &str, instance: Option<&str>) -> bool {
        instance
            .and_then(|i| self.static_members.get(i))
            .is_some_and(|id| id != member_id)
    }

    /// Whether a member with these protocols may join: an empty group takes any non-empty
    /// protocol list; otherwise the type must match and one protocol must be supported by
    /// every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[JoinGroupProtocol]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|q| q.name == p.name))
            })
    }

    /// The protocol every member supports that most members prefer (Kafka's vote: each
    /// member votes for its most preferred candidate). Ties go to the earliest-joined
    /// member's preference. `None` if the group has no members or no common protocol.
    pub fn select_protocol(&self) -> Option<String> {
        let ordered = self.members_in_join_order();
        let first = ordered.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| {
                ordered
                    .iter()
                    .all(|m| m.protocols.iter().any(|q| q.name == *name))
            })
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &ordered {
            if let Some(choice) = m
                .protocols
                .iter()
                .map(|p| p.name.as_str())
                .find(|n| candidates.contains(n))
            {
                *votes.entry(choice).or_insert(0) += 1;
            }
        }
        // `max_by_key` keeps the last of equal maxima: scanning `candidates` (in the first
        // member's order) backwards makes that the first member's preferred one.
        candidates
            .iter()
            .rev()
            .max_by_key(|c| votes.get(*c).copied().unwrap_or(0))
            .map(|c| c.to_string())
    }

    /// Every member has rejoined and no handed-out member id is still expected.
    pub fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// The longest rebalance timeout of any member: how long a join phase may last.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms.max(0) as i64)
            .max()
            .unwrap_or(0)
    }

    /// Kafka's `maybeElectNewJoinedLeader`: keep the leader if it rejoined, else make the
    /// earliest-joined rejoined member leader; false if nobody rejoined.
    pub fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.clone() else {
            return false;
        };
        if self
            .members
            .get(&leader)
            .is_some_and(|m| m.awaiting_join.is_some())
        {
            return true;
        }
        let next = self
            .members_in_join_order()
            .into_iter()
            .find(|m| m.awaiting_join.is_some())
            .map(|m| m.member_id.clone());
        match next {
            Some(id) => {
                self.leader = Some(id);
                true
            }
            None => false,
        }
    }

    /// The members with their metadata for the chosen protocol, as the leader receives them.
    pub fn join_response_members(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or("");
        self.members_in_join_order()
            .into_iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// The topics the members subscribe to, if they all speak the "consumer" embedded
    /// protocol and their subscriptions parse; `None` means "unknown".
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(parse_subscription_topics(m.metadata(protocol)?)?);
        }
        Some(topics)
    }

    /// Asserts the group's invariants.
    pub fn check(&self) {
        if let Some(leader) = &self.leader {
            assert!(
                self.members.contains_key(leader),
                "{}: leader {leader} is not a member",
                self.group_id
            );
        }
        assert_eq!(
            self.leader.is_none(),
            self.members.is_empty(),
            "{}: a group has a leader exactly when it has members",
            self.group_id
        );
        for (instance, id) in &self.static_members {
            let m = self.members.get(id).unwrap_or_else(|| {
                panic!("{}: static {instance} maps to no member", self.group_id)
            });
            assert_eq!(m.group_instance_id.as_deref(), Some(instance.as_str()));
        }
        for id in &self.pending_sync {
            assert!(
                self.members.contains_key(id),
                "pending sync of a non-member"
            );
        }
        match self.state {
            GroupState::Empty => assert!(
                self.members.is_empty(),
                "{}: Empty with members",
                self.group_id
            ),
            GroupState::CompletingRebalance | GroupState::Stable => {
                assert!(!self.members.is_empty());
                assert!(self.protocol_name.is_some());
                assert!(self.members.values().all(|m| m.awaiting_join.is_none()));
            }
            GroupState::PreparingRebalance => assert!(self.join_timer.is_some()),
            GroupState::Dead => {}
        }
        if self.state != GroupState::CompletingRebalance {
            assert!(
                self.members.values().all(|m| m.awaiting_sync.is_none()),
                "{}: a parked SyncGroup outside CompletingRebalance",
                self.group_id
            );
        }
    }
}

/// The topic list of a ConsumerProtocolSubscription (any version: i16 version, then an
/// array of i16-length strings come first in all of them).
pub fn parse_subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut pos = 2usize; // version
    let count = i32::from_be_bytes(metadata.get(pos..pos + 4)?.try_into().ok()?);
    pos += 4;
    let count = usize::try_from(count).ok()?;
    let mut topics = Vec::new();
    for _ in 0..count {
        let len = i16::from_be_bytes(metadata.get(pos..pos + 2)?.try_into().ok()?);
        pos += 2;
        let len = usize::try_from(len).ok()?;
        topics.push(String::from_utf8(metadata.get(pos..pos + len)?.to_vec()).ok()?);
        pos += len;
    }
    Some(topics)
}
