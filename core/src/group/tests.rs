//! Group coordinator tests: drive a whole `Node` in memory on a virtual clock, as a driver
//! would, and assert its exact answers (KIP and Kafka source named where a rule comes from).

use super::*;
use crate::api::*;
use crate::error::ErrorCode;
use crate::node::{Input, NodeConfig};
use crate::storage::{MemStorage, Storage};
use crate::testing::harness::SEED;
use crate::testing::T0;
use crate::time::Instant;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;
/// group.initial.rebalance.delay.ms in most tests: short, but long enough for several
/// members to join one generation.
const DELAY_MS: u64 = 100;

macro_rules! expect {
    ($r:expr, $v:ident) => {
        match $r {
            Response::$v(x) => x,
            other => panic!("expected {}, got {other:?}", stringify!($v)),
        }
    };
}

crate::testing::wrap_harness!(
    /// The shared node harness, pumped: every request and tick acts on all outputs at once
    /// (answers kept by id, flushes done or held), so that answers are looked up with `take`.
    Harness
);

fn config(initial_delay_ms: i32) -> NodeConfig {
    NodeConfig {
        group: GroupConfig {
            initial_rebalance_delay_ms: initial_delay_ms,
            ..GroupConfig::default()
        },
        ..NodeConfig::default()
    }
}

impl Harness {
    fn new() -> Harness {
        Harness::with(
            config(DELAY_MS as i32),
            MemStorage::new(),
            Instant::from_millis(T0),
            false,
        )
    }

    fn with(config: NodeConfig, disk: MemStorage, now: Instant, hold_flushes: bool) -> Harness {
        let storage = Arc::new(disk.clone());
        Harness(crate::testing::Harness::open_seeded(
            config,
            storage,
            disk,
            now,
            SEED,
            hold_flushes,
        ))
    }

    /// The same disk, a new node a millisecond later, from the next seed: a restart.
    fn restart(mut self, hold_flushes: bool) -> Harness {
        self.0.now = self.0.now + Duration::from_millis(1);
        self.0.hold_flushes = hold_flushes;
        Harness(self.0.restart())
    }

    fn send(&mut self, request: Request) -> RequestId {
        let id = self.0.send(request);
        self.pump();
        id
    }

    /// A request that must be answered at once.
    fn call(&mut self, request: Request) -> Response {
        let id = self.send(request);
        self.take(id).expect("answered at once")
    }

    /// Waits out the initial rebalance delay, extended once because members joined during
    /// it (each extension is timed from when the previous delay fired).
    fn initial_delay(&mut self) {
        self.advance(DELAY_MS);
        self.advance(DELAY_MS);
    }

    fn advance(&mut self, ms: u64) {
        self.0.advance(ms);
        self.pump();
    }

    fn create(&mut self, name: &str, partitions: i32) {
        let r = self.call(crate::testing::harness::create_topic(name, partitions));
        assert_eq!(
            expect!(r, CreateTopics).topics[0].error_code,
            ErrorCode::NONE
        );
    }

    /// A new dynamic member's two JoinGroups (KIP-394): returns its id and the id of the
    /// second JoinGroup, which may still be waiting for the join phase.
    fn join_new(&mut self, group: &str, client: &str, topics: &[&str]) -> (String, RequestId) {
        let first = self.call(Request::JoinGroup(join_request(
            group, "", None, client, topics,
        )));
        let first = expect!(first, JoinGroup);
        assert_eq!(first.error_code, ErrorCode::MEMBER_ID_REQUIRED);
        let id = self.send(Request::JoinGroup(join_request(
            group,
            &first.member_id,
            None,
            client,
            topics,
        )));
        (first.member_id, id)
    }

    fn join_response(&mut self, id: RequestId) -> JoinGroupResponse {
        let r = self.take(id).expect("the join was answered");
        expect!(r, JoinGroup)
    }

    fn heartbeat(&mut self, group: &str, member: &str, generation: i32) -> ErrorCode {
        self.heartbeat_static(group, member, None, generation)
    }

    fn heartbeat_static(
        &mut self,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> ErrorCode {
        let r = self.call(Request::Heartbeat(HeartbeatRequest {
            group_id: group.into(),
            generation_id: generation,
            member_id: member.into(),
            group_instance_id: instance.map(Into::into),
        }));
        expect!(r, Heartbeat).error_code
    }

    fn sync(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &str)],
    ) -> RequestId {
        self.send(Request::SyncGroup(sync_request(
            group,
            member,
            None,
            generation,
            assignments,
        )))
    }

    fn sync_response(&mut self, id: RequestId) -> SyncGroupResponse {
        let r = self.take(id).expect("the sync was answered");
        expect!(r, SyncGroup)
    }

    /// Commits `offset` for `t-0` (and returns the request id; answered once durable).
    fn commit(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        offset: i64,
        metadata: &str,
    ) -> RequestId {
        self.send(Request::OffsetCommit(commit_request(
            group,
            member,
            generation,
            &[("t", 0, offset, metadata)],
        )))
    }

    fn commit_error(&mut self, id: RequestId) -> ErrorCode {
        let r = self.take(id).expect("the commit was answered");
        expect!(r, OffsetCommit).topics[0].partitions[0].error_code
    }

    fn fetch(
        &mut self,
        group: &str,
        partitions: &[(&str, i32)],
        require_stable: bool,
    ) -> OffsetFetchResponseGroup {
        let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
        for (t, p) in partitions {
            match topics.iter_mut().find(|x| x.name == *t) {
                Some(x) => x.partition_indexes.push(*p),
                None => topics.push(OffsetFetchRequestTopic {
                    name: t.to_string(),
                    partition_indexes: vec![*p],
                }),
            }
        }
        let r = self.call(Request::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.into(),
                member_id: None,
                member_epoch: -1,
                topics: (!partitions.is_empty()).then_some(topics),
            }],
            require_stable,
        }));
        expect!(r, OffsetFetch).groups.remove(0)
    }

    /// (offset, metadata, error) of one committed partition.
    fn fetched(&mut self, group: &str, topic: &str, partition: i32) -> (i64, String, ErrorCode) {
        let g = self.fetch(group, &[(topic, partition)], false);
        assert_eq!(g.error_code, ErrorCode::NONE);
        let p = &g.topics[0].partitions[0];
        (
            p.committed_offset,
            p.metadata.clone().unwrap(),
            p.error_code,
        )
    }

    fn describe(&mut self, group: &str) -> DescribedGroup {
        let r = self.call(Request::DescribeGroups(DescribeGroupsRequest {
            groups: vec![group.into()],
            include_authorized_operations: false,
        }));
        expect!(r, DescribeGroups).groups.remove(0)
    }

    /// Brings `n` members into a Stable group, each assigned "a-{client}"; returns their ids
    /// in join order (the first is the leader) and the generation.
    fn stable_group(&mut self, group: &str, clients: &[&str]) -> (Vec<String>, i32) {
        let joins: Vec<(String, RequestId)> = clients
            .iter()
            .map(|c| self.join_new(group, c, &["t"]))
            .collect();
        self.initial_delay();
        let mut generation = -1;
        let mut leader = String::new();
        for (_, id) in &joins {
            let r = self.join_response(*id);
            assert_eq!(r.error_code, ErrorCode::NONE);
            generation = r.generation_id;
            leader = r.leader.clone();
        }
        let ids: Vec<String> = joins.iter().map(|(m, _)| m.clone()).collect();
        let assignments: Vec<(String, String)> = ids
            .iter()
            .zip(clients)
            .map(|(m, c)| (m.clone(), format!("a-{c}")))
            .collect();
        let refs: Vec<(&str, &str)> = assignments
            .iter()
            .map(|(m, a)| (m.as_str(), a.as_str()))
            .collect();
        let mut syncs = Vec::new();
        for m in ids.iter().filter(|m| **m != leader) {
            syncs.push(self.sync(group, m, generation, &[]));
        }
        syncs.push(self.sync(group, &leader, generation, &refs));
        for s in syncs {
            assert_eq!(self.sync_response(s).error_code, ErrorCode::NONE);
        }
        (ids, generation)
    }
}

/// A ConsumerProtocolSubscription v0 naming `topics` (what the Java client and librdkafka
/// put in JoinGroup metadata).
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes()); // user data: null
    Bytes::from(b)
}

fn join_request(
    group: &str,
    member: &str,
    instance: Option<&str>,
    client: &str,
    topics: &[&str],
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member.into(),
        group_instance_id: instance.map(Into::into),
        protocol_type: "consumer".into(),
        protocols: vec![
            JoinGroupProtocol {
                name: "range".into(),
                metadata: subscription(topics),
            },
            JoinGroupProtocol {
                name: "roundrobin".into(),
                metadata: subscription(topics),
            },
        ],
        reason: None,
        require_known_member_id: true,
        client_id: client.into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn sync_request(
    group: &str,
    member: &str,
    instance: Option<&str>,
    generation: i32,
    assignments: &[(&str, &str)],
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: instance.map(Into::into),
        protocol_type: Some("consumer".into()),
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| SyncGroupAssignment {
                member_id: m.to_string(),
                assignment: Bytes::copy_from_slice(a.as_bytes()),
            })
            .collect(),
    }
}

fn commit_request(
    group: &str,
    member: &str,
    generation: i32,
    offsets: &[(&str, i32, i64, &str)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o, m) in offsets {
        let partition = OffsetCommitRequestPartition {
            partition_index: *p,
            committed_offset: *o,
            committed_leader_epoch: 0,
            committed_metadata: Some(m.to_string()),
        };
        match topics.iter_mut().find(|x| x.name == *t) {
            Some(x) => x.partitions.push(partition),
            None => topics.push(OffsetCommitRequestTopic {
                name: t.to_string(),
                partitions: vec![partition],
            }),
        }
    }
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member.into(),
        group_instance_id: None,
        topics,
    }
}

#[test]
fn coordinator_partition_follows_javas_string_hash_code() {
    // "my-group": h = 0; for each char h = 31*h + c (wrapping i32) over
    // m(109) y(121) -(45) g(103) r(114) o(111) u(117) p(112) gives -1906497762,
    // and 1906497762 % 50 = 12.
    assert_eq!(java_string_hash("my-group"), -1_906_497_762);
    assert_eq!(partition_for("my-group", 50), 12);
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("a"), 97);
    assert_eq!(partition_for("a", 50), 47);
    assert_eq!(java_string_hash("test-group"), 627_841_412);
    assert_eq!(partition_for("test-group", 50), 12);
    // UTF-16 code units: "é" is one unit, "😀" a surrogate pair.
    assert_eq!(java_string_hash("group-é"), 293_427_483);
    assert_eq!(java_string_hash("😀"), 1_772_899);
    assert_eq!(partition_for("😀", 50), 49);
    // Kafka's Utils.abs(Integer.MIN_VALUE) is 0, not an overflow.
    assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    assert_eq!(partition_for("polygenelubricants", 50), 0);
}

#[test]
fn find_coordinator_creates_the_compacted_offsets_topic_and_names_this_node() {
    let mut h = Harness::new();
    let r = h.call(Request::FindCoordinator(FindCoordinatorRequest {
        key_type: COORDINATOR_KEY_TYPE_GROUP,
        keys: vec!["my-group".into(), "other".into()],
    }));
    let r = expect!(r, FindCoordinator);
    assert_eq!(r.coordinators.len(), 2);
    for (c, key) in r.coordinators.iter().zip(["my-group", "other"]) {
        assert_eq!(
            (
                c.key.as_str(),
                c.error_code,
                c.node_id,
                c.host.as_str(),
                c.port
            ),
            (key, ErrorCode::NONE, 1, "127.0.0.1", 9092)
        );
    }
    let r = h.call(Request::FindCoordinator(FindCoordinatorRequest {
        key_type: COORDINATOR_KEY_TYPE_TRANSACTION,
        keys: vec!["tx".into()],
    }));
    // No transactions yet: the one answer clients treat as fatal at once, saying why.
    let tx = &expect!(r, FindCoordinator).coordinators[0];
    assert_eq!(
        tx.error_code,
        ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    assert!(tx
        .error_message
        .as_deref()
        .is_some_and(|m| m.contains("does not support transactions")));
    let r = h.call(Request::Metadata(MetadataRequest {
        topics: None,
        allow_auto_topic_creation: false,
        ..Default::default()
    }));
    let m = expect!(r, Metadata);
    let t = m
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(OFFSETS_TOPIC))
        .expect("created on first use");
    assert!(t.is_internal);
    assert_eq!(t.partitions.len(), 50);
    let r = h.call(Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "user".into(),
            num_partitions: 1,
            replication_factor: -1,
            configs: vec![("cleanup.policy".into(), Some("compact".into()))],
            ..Default::default()
        }],
        timeout_ms: 1000,
        validate_only: false,
    }));
    assert_eq!(
        expect!(r, CreateTopics).topics[0].error_code,
        ErrorCode::NONE,
        "user topics may be compacted (log/compaction.rs)"
    );
}

#[test]
fn a_first_join_gets_member_id_required_then_joins_with_that_id() {
    let mut h = Harness::new();
    let (member, join) = h.join_new("g", "client-a", &["t"]);
    h.initial_delay();
    assert!(member.starts_with("client-a-"), "{member}");
    let uuid = &member["client-a-".len()..];
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4", "a version-4 UUID: {uuid}");
    let r = h.join_response(join);
    assert_eq!(r.error_code, ErrorCode::NONE);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.member_id, member);
    assert_eq!(r.leader, member);
    assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.members[0].metadata, subscription(&["t"]));
    // An unknown member id is refused; so is a join without a known id on old versions'
    // terms only when asked: v0-v3 clients (no require_known_member_id) join at once.
    let mut stale = join_request("g", "nobody", None, "x", &["t"]);
    stale.require_known_member_id = false;
    let r = h.call(Request::JoinGroup(stale));
    assert_eq!(
        expect!(r, JoinGroup).error_code,
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn the_same_seed_hands_out_the_same_member_ids() {
    let ids = || {
        let mut h = Harness::new();
        (0..3)
            .map(|i| h.join_new("g", &format!("c{i}"), &["t"]).0)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(), ids());
}

/// Three members join during the initial rebalance delay (which each new member extends);
/// the leader gets every member's metadata, followers wait in SyncGroup for its assignment.
#[test]
fn three_members_join_one_leader_assigns_and_sync_distributes() {
    let mut h = Harness::with(
        config(3_000),
        MemStorage::new(),
        Instant::from_millis(T0),
        false,
    );
    let (a, ja) = h.join_new("g", "a", &["t"]);
    let (b, jb) = h.join_new("g", "b", &["t"]);
    let (c, jc) = h.join_new("g", "c", &["t", "u"]);
    h.advance(2_999);
    assert!(h.take(ja).is_none(), "the initial delay holds the join");
    h.advance(1);
    assert!(
        h.take(ja).is_none(),
        "new members joined during the delay: it is extended once more"
    );
    h.advance(3_000);
    let (ra, rb, rc) = (
        h.join_response(ja),
        h.join_response(jb),
        h.join_response(jc),
    );
    for r in [&ra, &rb, &rc] {
        assert_eq!(r.error_code, ErrorCode::NONE);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader, a, "the first member to join leads");
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
    }
    let members: Vec<(&str, &Bytes)> = ra
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), &m.metadata))
        .collect();
    assert_eq!(
        members,
        vec![
            (a.as_str(), &subscription(&["t"])),
            (b.as_str(), &subscription(&["t"])),
            (c.as_str(), &subscription(&["t", "u"]))
        ]
    );
    assert!(rb.members.is_empty() && rc.members.is_empty());
    assert_eq!(h.describe("g").group_state, "CompletingRebalance");

    let sb = h.sync("g", &b, 1, &[]);
    let sc = h.sync("g", &c, 1, &[]);
    assert!(
        h.take(sb).is_none() && h.take(sc).is_none(),
        "followers wait for the leader"
    );
    assert_eq!(
        h.heartbeat("g", &b, 1),
        ErrorCode::NONE,
        "heartbeats between join and sync are fine"
    );
    let sa = h.sync(
        "g",
        &a,
        1,
        &[(&a, "pa"), (&b, "pb"), (&c, "pc"), ("stranger", "x")],
    );
    for (id, want) in [(sa, "pa"), (sb, "pb"), (sc, "pc")] {
        let r = h.sync_response(id);
        assert_eq!(r.error_code, ErrorCode::NONE);
        assert_eq!(r.assignment, Bytes::from(want));
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
    }
    let d = h.describe("g");
    assert_eq!(
        (d.group_state.as_str(), d.protocol_data.as_str()),
        ("Stable", "range")
    );
    let assigned: Vec<&Bytes> = d.members.iter().map(|m| &m.member_assignment).collect();
    assert_eq!(
        assigned,
        vec![&Bytes::from("pa"), &Bytes::from("pb"), &Bytes::from("pc")]
    );
    assert_eq!(d.members[1].client_id, "b");
    assert_eq!(d.members[1].client_host, "/127.0.0.1");
    // A late SyncGroup in a stable group gets its assignment again.
    let again = h.sync("g", &c, 1, &[]);
    assert_eq!(h.sync_response(again).assignment, Bytes::from("pc"));
}

#[test]
fn the_protocol_is_chosen_by_vote_among_those_every_member_supports() {
    let mut h = Harness::new();
    let mut first = join_request("g", "", None, "a", &["t"]);
    first.require_known_member_id = false;
    first.protocols.reverse(); // prefers roundrobin, then range
    let mut second = join_request("g", "", None, "b", &["t"]);
    second.require_known_member_id = false;
    second.protocols.push(JoinGroupProtocol {
        name: "cooperative-sticky".into(),
        metadata: Bytes::new(),
    });
    let mut third = second.clone();
    third.client_id = "c".into();
    let (j1, j2, j3) = (
        h.send(Request::JoinGroup(first)),
        h.send(Request::JoinGroup(second)),
        h.send(Request::JoinGroup(third)),
    );
    h.initial_delay();
    for j in [j1, j2, j3] {
        assert_eq!(
            h.join_response(j).protocol_name.as_deref(),
            Some("range"),
            "2 votes to 1"
        );
    }
    let mut other = join_request("g", "", None, "d", &["t"]);
    other.protocols = vec![JoinGroupProtocol {
        name: "cooperative-sticky".into(),
        metadata: Bytes::new(),
    }];
    let r = h.call(Request::JoinGroup(other.clone()));
    assert_eq!(
        expect!(r, JoinGroup).error_code,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    other.protocol_type = "connect".into();
    other.protocols = join_request("g", "", None, "d", &["t"]).protocols;
    let r = h.call(Request::JoinGroup(other));
    assert_eq!(
        expect!(r, JoinGroup).error_code,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_and_the_rest_rebalance() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["a", "b", "c"]);
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    // a and b heartbeat every 3 s; c is silent. Its session ends 10 s after its sync.
    for _ in 0..3 {
        h.advance(3_000);
        assert_eq!(h.heartbeat("g", a, generation), ErrorCode::NONE);
        assert_eq!(h.heartbeat("g", b, generation), ErrorCode::NONE);
    }
    h.advance(999);
    assert_eq!(h.describe("g").group_state, "Stable");
    h.advance(1);
    assert_eq!(h.describe("g").group_state, "PreparingRebalance");
    assert_eq!(
        h.heartbeat("g", c, generation),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        h.heartbeat("g", a, generation),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let ja = h.send(Request::JoinGroup(join_request("g", a, None, "a", &["t"])));
    assert!(h.take(ja).is_none(), "waits for b to rejoin");
    let jb = h.send(Request::JoinGroup(join_request("g", b, None, "b", &["t"])));
    let (ra, rb) = (h.join_response(ja), h.join_response(jb));
    assert_eq!(ra.generation_id, generation + 1);
    assert_eq!(rb.generation_id, generation + 1);
    assert_eq!(ra.leader, *a);
    let members: Vec<&str> = ra.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(members, vec![a.as_str(), b.as_str()]);
    // The old generation is fenced.
    assert_eq!(
        h.heartbeat("g", a, generation),
        ErrorCode::ILLEGAL_GENERATION
    );
    let commit = h.commit("g", a, generation, 5, "");
    assert_eq!(h.commit_error(commit), ErrorCode::ILLEGAL_GENERATION);
}

#[test]
fn a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    // The leader rejoins (it may, to force a rebalance); b keeps heartbeating but never
    // rejoins.
    let ja = h.send(Request::JoinGroup(join_request("g", a, None, "a", &["t"])));
    for _ in 0..9 {
        h.advance(3_000);
        assert_eq!(
            h.heartbeat("g", b, generation),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
    }
    assert!(h.take(ja).is_none());
    h.advance(3_000); // 30 s: the rebalance timeout
    let r = h.join_response(ja);
    assert_eq!((r.generation_id, r.members.len()), (generation + 1, 1));
    assert_eq!(
        h.heartbeat("g", b, generation),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn a_member_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let mut h = Harness::new();
    let (a, ja) = h.join_new("g", "a", &["t"]);
    let (b, jb) = h.join_new("g", "b", &["t"]);
    h.initial_delay();
    let generation = h.join_response(ja).generation_id;
    h.join_response(jb);
    let sa = h.sync("g", &a, generation, &[(&a, "pa"), (&b, "pb")]);
    assert_eq!(h.sync_response(sa).assignment, Bytes::from("pa"));
    for _ in 0..10 {
        h.advance(3_000);
        h.heartbeat("g", &a, generation);
        h.heartbeat("g", &b, generation);
    }
    let state = h.describe("g");
    assert_eq!(
        state.group_state, "PreparingRebalance",
        "b never sent SyncGroup"
    );
    assert_eq!(state.members.len(), 1);
    assert_eq!(
        h.heartbeat("g", &b, generation),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn leave_group_removes_members_and_the_last_one_empties_the_group() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    let r = h.call(Request::LeaveGroup(LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![
            LeaveGroupMember {
                member_id: b.clone(),
                ..Default::default()
            },
            LeaveGroupMember {
                member_id: "ghost".into(),
                ..Default::default()
            },
        ],
    }));
    let r = expect!(r, LeaveGroup);
    assert_eq!(r.error_code, ErrorCode::NONE);
    let codes: Vec<ErrorCode> = r.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![ErrorCode::NONE, ErrorCode::UNKNOWN_MEMBER_ID]);
    assert_eq!(
        h.heartbeat("g", a, generation),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let ja = h.send(Request::JoinGroup(join_request("g", a, None, "a", &["t"])));
    let r = h.join_response(ja);
    assert_eq!((r.generation_id, r.members.len()), (generation + 1, 1));
    let r = h.call(Request::LeaveGroup(LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![LeaveGroupMember {
            member_id: a.clone(),
            ..Default::default()
        }],
    }));
    assert_eq!(
        expect!(r, LeaveGroup).members[0].error_code,
        ErrorCode::NONE
    );
    let d = h.describe("g");
    assert_eq!((d.group_state.as_str(), d.members.len()), ("Empty", 0));
}

/// A JoinGroup of static member `instance` (client `client`) to group "g" with no member
/// id: a first join, or a restart.
fn join_static(h: &mut Harness, instance: &str, client: &str) -> RequestId {
    h.send(Request::JoinGroup(join_request(
        "g",
        "",
        Some(instance),
        client,
        &["t"],
    )))
}

/// A SyncGroup of static member `member` (`instance`) of group "g".
fn sync_static(
    h: &mut Harness,
    member: &str,
    instance: &str,
    generation: i32,
    assignments: &[(&str, &str)],
) -> RequestId {
    h.send(Request::SyncGroup(sync_request(
        "g",
        member,
        Some(instance),
        generation,
        assignments,
    )))
}

/// KIP-345: a static member that restarts within its session keeps its assignment, without
/// a rebalance; its old member id is fenced.
#[test]
fn a_restarted_static_member_keeps_its_assignment_and_fences_its_old_id() {
    let mut h = Harness::new();
    let ja = join_static(&mut h, "inst-a", "a");
    let jb = join_static(&mut h, "inst-b", "b");
    h.initial_delay();
    let (ra, rb) = (h.join_response(ja), h.join_response(jb));
    assert!(
        ra.member_id.starts_with("inst-a-"),
        "static ids start with the instance id"
    );
    let (a, b, generation) = (ra.member_id.clone(), rb.member_id.clone(), ra.generation_id);
    assert_eq!(ra.leader, a);
    let sb = sync_static(&mut h, &b, "inst-b", generation, &[]);
    let sa = sync_static(&mut h, &a, "inst-a", generation, &[(&a, "pa"), (&b, "pb")]);
    assert_eq!(h.sync_response(sa).assignment, Bytes::from("pa"));
    assert_eq!(h.sync_response(sb).assignment, Bytes::from("pb"));

    // inst-b restarts: it rejoins with no member id and its instance id.
    h.advance(5_000);
    let jb2 = join_static(&mut h, "inst-b", "b");
    let rb2 = h.join_response(jb2);
    assert_eq!(
        rb2.error_code,
        ErrorCode::NONE,
        "answered at once: no rebalance"
    );
    let b2 = rb2.member_id.clone();
    assert_ne!(b2, b);
    assert_eq!(rb2.generation_id, generation);
    assert_eq!(rb2.leader, a);
    let sb2 = sync_static(&mut h, &b2, "inst-b", generation, &[]);
    assert_eq!(
        h.sync_response(sb2).assignment,
        Bytes::from("pb"),
        "the same assignment"
    );
    assert_eq!(h.describe("g").group_state, "Stable");
    assert_eq!(
        h.heartbeat_static("g", &a, Some("inst-a"), generation),
        ErrorCode::NONE
    );
    // The old id is fenced everywhere.
    assert_eq!(
        h.heartbeat_static("g", &b, Some("inst-b"), generation),
        ErrorCode::FENCED_INSTANCE_ID
    );
    let mut commit = commit_request("g", &b, generation, &[("t", 0, 1, "")]);
    commit.group_instance_id = Some("inst-b".into());
    let r = h.call(Request::OffsetCommit(commit));
    assert_eq!(
        expect!(r, OffsetCommit).topics[0].partitions[0].error_code,
        ErrorCode::FENCED_INSTANCE_ID
    );
    let r = h.call(Request::JoinGroup(join_request(
        "g",
        &b,
        Some("inst-b"),
        "b",
        &["t"],
    )));
    assert_eq!(
        expect!(r, JoinGroup).error_code,
        ErrorCode::FENCED_INSTANCE_ID
    );
    let r = h.call(Request::SyncGroup(sync_request(
        "g",
        &b,
        Some("inst-b"),
        generation,
        &[],
    )));
    assert_eq!(
        expect!(r, SyncGroup).error_code,
        ErrorCode::FENCED_INSTANCE_ID
    );
    let r = h.call(Request::LeaveGroup(LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![LeaveGroupMember {
            member_id: b.clone(),
            group_instance_id: Some("inst-b".into()),
            reason: None,
        }],
    }));
    assert_eq!(
        expect!(r, LeaveGroup).members[0].error_code,
        ErrorCode::FENCED_INSTANCE_ID
    );
    assert_eq!(
        h.heartbeat_static("g", &b2, Some("inst-unknown"), generation),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn requests_are_fenced_by_member_generation_and_state() {
    let mut h = Harness::new();
    let r = h.call(Request::JoinGroup(JoinGroupRequest {
        session_timeout_ms: 5_999,
        ..join_request("g", "", None, "a", &["t"])
    }));
    assert_eq!(
        expect!(r, JoinGroup).error_code,
        ErrorCode::INVALID_SESSION_TIMEOUT
    );
    let r = h.call(Request::JoinGroup(join_request("", "", None, "a", &["t"])));
    assert_eq!(
        expect!(r, JoinGroup).error_code,
        ErrorCode::INVALID_GROUP_ID
    );
    assert_eq!(h.heartbeat("nope", "m", 1), ErrorCode::UNKNOWN_MEMBER_ID);
    let r = h.call(Request::SyncGroup(sync_request("nope", "m", None, 1, &[])));
    assert_eq!(
        expect!(r, SyncGroup).error_code,
        ErrorCode::UNKNOWN_MEMBER_ID
    );

    let (a, ja) = h.join_new("g", "a", &["t"]);
    h.initial_delay();
    let generation = h.join_response(ja).generation_id;
    // CompletingRebalance: commits wait for the assignment.
    let c = h.commit("g", &a, generation, 1, "");
    assert_eq!(h.commit_error(c), ErrorCode::REBALANCE_IN_PROGRESS);
    let r = h.call(Request::SyncGroup(sync_request(
        "g",
        &a,
        None,
        generation + 1,
        &[],
    )));
    assert_eq!(
        expect!(r, SyncGroup).error_code,
        ErrorCode::ILLEGAL_GENERATION
    );
    let mut wrong = sync_request("g", &a, None, generation, &[]);
    wrong.protocol_name = Some("roundrobin".into());
    let r = h.call(Request::SyncGroup(wrong));
    assert_eq!(
        expect!(r, SyncGroup).error_code,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    let s = h.sync("g", &a, generation, &[(&a, "x")]);
    assert_eq!(h.sync_response(s).error_code, ErrorCode::NONE);
    assert_eq!(
        h.heartbeat("g", "ghost", generation),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        h.heartbeat("g", &a, generation - 1),
        ErrorCode::ILLEGAL_GENERATION
    );
    // A simple commit (generation -1, no member) is refused while the group has members.
    let c = h.commit("g", "", -1, 1, "");
    assert_eq!(h.commit_error(c), ErrorCode::UNKNOWN_MEMBER_ID);
    // A member's commit to an unknown topic or with oversized metadata is refused per
    // partition; the others go through.
    h.create("t", 1);
    let id = h.send(Request::OffsetCommit(commit_request(
        "g",
        &a,
        generation,
        &[
            ("t", 0, 3, "ok"),
            ("t", 9, 3, ""),
            ("t", 0, 4, &"m".repeat(4097)),
        ],
    )));
    let r = expect!(h.take(id).expect("durable at once here"), OffsetCommit);
    let codes: Vec<ErrorCode> = r.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::NONE,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode::OFFSET_METADATA_TOO_LARGE
        ]
    );
    assert_eq!(
        h.fetched("g", "t", 0),
        (3, "ok".to_string(), ErrorCode::NONE)
    );
    // A commit with a generation to a group the coordinator does not know.
    let c = h.commit("unknown", "m", 3, 1, "");
    assert_eq!(h.commit_error(c), ErrorCode::ILLEGAL_GENERATION);
}

#[test]
fn a_commit_is_answered_only_after_its_record_is_flushed() {
    let mut h = Harness::new();
    h.create("t", 1);
    h.hold_flushes = true;
    let commit = h.commit("my-group", "", -1, 42, "meta");
    assert!(h.take(commit).is_none(), "not durable yet");
    assert_eq!(h.held.len(), 1, "one Flush, for the offsets partition");
    let dir = crate::node::partition_dir(OFFSETS_TOPIC, partition_for("my-group", 50));
    assert!(
        h.held[0].1.iter().all(|f| f.starts_with(&dir)),
        "{:?}",
        h.held
    );
    assert_eq!(
        h.fetched("my-group", "t", 0),
        (-1, String::new(), ErrorCode::NONE)
    );
    let stable = h.fetch("my-group", &[("t", 0)], true);
    assert_eq!(
        stable.topics[0].partitions[0].error_code,
        ErrorCode::UNSTABLE_OFFSET_COMMIT
    );
    h.release_flushes();
    assert_eq!(h.commit_error(commit), ErrorCode::NONE);
    assert_eq!(
        h.fetched("my-group", "t", 0),
        (42, "meta".to_string(), ErrorCode::NONE)
    );
    // The record is Kafka's OffsetCommitKey v1 / OffsetCommitValue v3.
    let r = h.call(Request::Fetch(FetchRequest {
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 0,
        topics: vec![FetchTopic {
            name: OFFSETS_TOPIC.into(),
            partitions: vec![FetchPartition {
                partition_index: 12,
                current_leader_epoch: -1,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
            }],
        }],
        ..Default::default()
    }));
    let records = expect!(r, Fetch).topics[0].partitions[0].records.clone();
    let stored = offsets::batch_records(&records).unwrap();
    assert_eq!(
        offsets::decode_key(stored[0].key.as_ref().unwrap()).unwrap(),
        offsets::DecodedKey::Offset(offsets::OffsetKey {
            group: "my-group".into(),
            topic: "t".into(),
            partition: 0
        })
    );
    let value = offsets::decode_value(stored[0].value.as_ref().unwrap()).unwrap();
    assert_eq!(
        (value.offset, value.metadata.as_str(), value.leader_epoch),
        (42, "meta", 0)
    );
}

#[test]
fn a_failed_flush_fails_the_commit_and_a_slow_one_times_out() {
    let mut h = Harness::new();
    h.create("t", 1);
    h.hold_flushes = true;
    let commit = h.commit("g", "", -1, 1, "");
    let (log, _, _) = h.held.pop().unwrap();
    let now = h.now;
    h.node.handle(
        now,
        Input::FlushFailed {
            log,
            error: "EIO".into(),
        },
    );
    h.pump();
    assert_eq!(h.commit_error(commit), ErrorCode::NOT_COORDINATOR);
    assert_eq!(
        h.fetched("h", "t", 0).0,
        -1,
        "another partition still serves"
    );
    let r = h.call(Request::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: "g".into(),
            ..Default::default()
        }],
        require_stable: false,
    }));
    assert_eq!(
        expect!(r, OffsetFetch).groups[0].error_code,
        ErrorCode::NOT_COORDINATOR
    );

    let commit = h.commit("h", "", -1, 7, "");
    h.advance(4_999);
    assert!(h.take(commit).is_none());
    h.advance(1);
    assert_eq!(h.commit_error(commit), ErrorCode::COORDINATOR_NOT_AVAILABLE);
    h.release_flushes();
    assert_eq!(
        h.fetched("h", "t", 0).0,
        7,
        "the record became durable after all: it counts"
    );
}

#[test]
fn committed_offsets_survive_a_restart_and_later_records_win() {
    let mut h = Harness::new();
    h.create("t", 2);
    let (ids, generation) = h.stable_group("grp", &["a"]);
    let c = h.send(Request::OffsetCommit(commit_request(
        "grp",
        &ids[0],
        generation,
        &[("t", 0, 10, "first"), ("t", 1, 20, "")],
    )));
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    let c = h.commit("grp", &ids[0], generation, 11, "second");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    let c = h.commit("simple", "", -1, 99, "s");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);

    let mut h = h.restart(false);
    assert_eq!(
        h.fetched("grp", "t", 0),
        (11, "second".to_string(), ErrorCode::NONE)
    );
    assert_eq!(
        h.fetched("grp", "t", 1),
        (20, String::new(), ErrorCode::NONE)
    );
    assert_eq!(
        h.fetched("simple", "t", 0),
        (99, "s".to_string(), ErrorCode::NONE)
    );
    let all = h.fetch("grp", &[], false);
    let listed: Vec<(String, i32, i64)> = all
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.clone(), p.partition_index, p.committed_offset))
        })
        .collect();
    assert_eq!(listed, vec![("t".into(), 0, 11), ("t".into(), 1, 20)]);
    // Membership is stored too: the member carries on in its generation.
    assert_eq!(h.heartbeat("grp", &ids[0], generation), ErrorCode::NONE);
    let d = h.describe("grp");
    assert_eq!((d.group_state.as_str(), d.members.len()), ("Stable", 1));
}

/// KIP-320: OffsetCommit stores the consumer's leader epoch with the offset
/// (OffsetCommitValue v3) and OffsetFetch answers it, also after a restart replays
/// `__consumer_offsets`; a commit without one (-1, OffsetCommit < v6) answers -1.
#[test]
fn committed_leader_epochs_are_answered_and_survive_a_restart() {
    let mut h = Harness::new();
    h.create("t", 2);
    let mut request = commit_request("simple", "", -1, &[("t", 0, 10, "a"), ("t", 1, 20, "b")]);
    request.topics[0].partitions[0].committed_leader_epoch = 7;
    request.topics[0].partitions[1].committed_leader_epoch = -1;
    let c = h.send(Request::OffsetCommit(request));
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    let epochs = |h: &mut Harness| -> Vec<(i64, i32)> {
        h.fetch("simple", &[("t", 0), ("t", 1)], false).topics[0]
            .partitions
            .iter()
            .map(|p| (p.committed_offset, p.committed_leader_epoch))
            .collect()
    };
    assert_eq!(epochs(&mut h), vec![(10, 7), (20, -1)]);
    let mut h = h.restart(false);
    assert_eq!(epochs(&mut h), vec![(10, 7), (20, -1)]);
}

fn leave(h: &mut Harness, group: &str, member: &str) {
    let r = h.call(Request::LeaveGroup(LeaveGroupRequest {
        group_id: group.into(),
        members: vec![LeaveGroupMember {
            member_id: member.into(),
            ..Default::default()
        }],
    }));
    assert_eq!(expect!(r, LeaveGroup).error_code, ErrorCode::NONE);
}

/// Kafka stores a group's membership in `__consumer_offsets` after every rebalance, so a
/// coordinator restart costs no rebalance: members keep their ids, generation and
/// assignments and only heartbeat on. One that does not come back expires after its
/// session as if the coordinator had never gone, and the next generation follows on.
#[test]
fn membership_survives_a_restart_and_members_carry_on() {
    let mut h = Harness::new();
    h.create("t", 2);
    let (ids, generation) = h.stable_group("grp", &["a", "b"]);
    let before = h.describe("grp");

    let mut h = h.restart(false);
    let after = h.describe("grp");
    assert_eq!(after.group_state, "Stable");
    assert_eq!(after.protocol_data, "range");
    let members = |d: &DescribedGroup| -> Vec<(String, String, Bytes, Bytes)> {
        d.members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    m.client_id.clone(),
                    m.member_metadata.clone(),
                    m.member_assignment.clone(),
                )
            })
            .collect()
    };
    assert_eq!(members(&after), members(&before));
    assert_eq!(after.members[0].member_assignment, Bytes::from("a-a"));
    for id in &ids {
        assert_eq!(h.heartbeat("grp", id, generation), ErrorCode::NONE);
    }
    assert_eq!(
        h.heartbeat("grp", &ids[0], generation - 1),
        ErrorCode::ILLEGAL_GENERATION,
        "fencing holds across the restart"
    );
    // b never comes back: its session (restarted by the load) runs out; a is told to rejoin.
    h.advance(SESSION_MS as u64 / 2);
    assert_eq!(h.heartbeat("grp", &ids[0], generation), ErrorCode::NONE);
    h.advance(SESSION_MS as u64 / 2 + 1);
    assert_eq!(
        h.heartbeat("grp", &ids[0], generation),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let j = h.send(Request::JoinGroup(join_request(
        "grp",
        &ids[0],
        None,
        "a",
        &["t"],
    )));
    let r = h.join_response(j);
    assert_eq!(
        (r.error_code, r.generation_id, r.leader.as_str()),
        (ErrorCode::NONE, generation + 1, ids[0].as_str())
    );
}

/// A group that empties keeps its generation across a restart (a member of an old
/// generation stays fenced), and a deleted group does not come back.
#[test]
fn an_emptied_group_keeps_its_generation_and_a_deleted_one_stays_gone() {
    let mut h = Harness::new();
    h.create("t", 1);
    let (ids, generation) = h.stable_group("grp", &["a"]);
    let c = h.commit("grp", &ids[0], generation, 5, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    leave(&mut h, "grp", &ids[0]);
    let (gone, gone_generation) = h.stable_group("gone", &["x"]);
    leave(&mut h, "gone", &gone[0]);
    let r = h.call(Request::DeleteGroups(DeleteGroupsRequest {
        groups_names: vec!["gone".into()],
    }));
    assert_eq!(
        expect!(r, DeleteGroups).results[0].error_code,
        ErrorCode::NONE
    );

    let mut h = h.restart(false);
    assert_eq!(h.describe("grp").group_state, "Empty");
    assert_eq!(h.describe("gone").group_state, "Dead");
    assert_eq!(
        h.heartbeat("gone", &gone[0], gone_generation),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    let (_, next) = h.stable_group("grp", &["c"]);
    assert_eq!(
        next,
        generation + 2,
        "one generation to empty the group, one to bring c in"
    );
    assert_eq!(h.fetched("grp", "t", 0).0, 5);
}

/// A static member that restarts while the coordinator was down too rejoins by instance
/// id into the stored generation, without a rebalance, and gets its old assignment.
#[test]
fn a_static_member_rejoins_a_restored_group_without_a_rebalance() {
    let mut h = Harness::new();
    let ja = join_static(&mut h, "inst-a", "a");
    h.initial_delay();
    let ra = h.join_response(ja);
    let (a, generation) = (ra.member_id.clone(), ra.generation_id);
    let sa = sync_static(&mut h, &a, "inst-a", generation, &[(&a, "pa")]);
    assert_eq!(h.sync_response(sa).error_code, ErrorCode::NONE);

    let mut h = h.restart(false);
    let ja2 = join_static(&mut h, "inst-a", "a");
    let ra2 = h.join_response(ja2);
    assert_eq!(
        (ra2.error_code, ra2.generation_id),
        (ErrorCode::NONE, generation),
        "answered at once, in the stored generation"
    );
    assert_ne!(ra2.member_id, a);
    let sa2 = sync_static(&mut h, &ra2.member_id, "inst-a", generation, &[]);
    assert_eq!(h.sync_response(sa2).assignment, Bytes::from("pa"));
    // The replacement is stored: after another restart the new id is the member.
    let mut h = h.restart(false);
    assert_eq!(
        h.heartbeat_static("g", &ra2.member_id, Some("inst-a"), generation),
        ErrorCode::NONE
    );
    assert_eq!(
        h.heartbeat_static("g", &a, Some("inst-a"), generation),
        ErrorCode::FENCED_INSTANCE_ID
    );
}

#[test]
fn recovered_records_count_only_once_flushed_and_the_partition_loads_until_then() {
    let mut h = Harness::new();
    h.create("t", 1);
    let c = h.commit("g", "", -1, 5, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    h.hold_flushes = true;
    let c = h.commit("g", "", -1, 6, "");
    assert!(h.take(c).is_none());
    // Crash before the flush; the disk kept the bytes (they may or may not survive).
    let mut h = h.restart(true);
    let g = h.fetch("g", &[("t", 0)], false);
    assert_eq!(g.error_code, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
    let r = h.call(Request::ListGroups(ListGroupsRequest::default()));
    assert_eq!(
        expect!(r, ListGroups).error_code,
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_eq!(
        h.heartbeat("g", "m", 1),
        ErrorCode::NONE,
        "Kafka answers heartbeats blindly while loading"
    );
    assert_eq!(
        h.fetched("other", "t", 0).0,
        -1,
        "other partitions are loaded"
    );
    h.release_flushes();
    assert_eq!(h.fetched("g", "t", 0).0, 6);
}

#[test]
fn delete_groups_refuses_groups_with_members_and_deletes_empty_ones_durably() {
    let mut h = Harness::new();
    h.create("t", 1);
    let (ids, generation) = h.stable_group("busy", &["a"]);
    let c = h.commit("busy", &ids[0], generation, 3, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    let c = h.commit("idle", "", -1, 4, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    h.hold_flushes = true;
    let id = h.send(Request::DeleteGroups(DeleteGroupsRequest {
        groups_names: vec!["busy".into(), "idle".into(), "nope".into(), "idle".into()],
    }));
    assert!(h.take(id).is_none(), "the tombstones are not durable yet");
    h.release_flushes();
    let r = expect!(h.take(id).unwrap(), DeleteGroups);
    let results: Vec<(&str, ErrorCode)> = r
        .results
        .iter()
        .map(|g| (g.group_id.as_str(), g.error_code))
        .collect();
    assert_eq!(
        results,
        vec![
            ("busy", ErrorCode::NON_EMPTY_GROUP),
            ("idle", ErrorCode::NONE),
            ("nope", ErrorCode::GROUP_ID_NOT_FOUND)
        ]
    );
    assert_eq!(h.fetched("idle", "t", 0).0, -1);
    assert_eq!(h.describe("idle").group_state, "Dead");
    assert_eq!(h.fetched("busy", "t", 0).0, 3);
    // After a restart the tombstone still wins.
    let mut h = h.restart(false);
    assert_eq!(h.fetched("idle", "t", 0).0, -1);
    assert_eq!(h.fetched("busy", "t", 0).0, 3);
}

#[test]
fn offset_delete_removes_offsets_but_not_those_an_active_group_consumes() {
    let mut h = Harness::new();
    h.create("t", 1);
    h.create("u", 1);
    let (ids, generation) = h.stable_group("g", &["a"]);
    let c = h.send(Request::OffsetCommit(commit_request(
        "g",
        &ids[0],
        generation,
        &[("t", 0, 1, ""), ("u", 0, 2, "")],
    )));
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    let delete = |topics: &[&str]| {
        Request::OffsetDelete(OffsetDeleteRequest {
            group_id: "g".into(),
            topics: topics
                .iter()
                .map(|t| OffsetDeleteRequestTopic {
                    name: t.to_string(),
                    partitions: vec![0],
                })
                .collect(),
        })
    };
    // The member subscribes to "t" only.
    let r = expect!(h.call(delete(&["t", "u", "nope"])), OffsetDelete);
    assert_eq!(r.error_code, ErrorCode::NONE);
    let codes: Vec<ErrorCode> = r
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC,
            ErrorCode::NONE,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    assert_eq!(h.fetched("g", "t", 0).0, 1);
    assert_eq!(h.fetched("g", "u", 0).0, -1);
    let r = expect!(
        h.call(Request::OffsetDelete(OffsetDeleteRequest {
            group_id: "none".into(),
            topics: vec![],
        })),
        OffsetDelete
    );
    assert_eq!(r.error_code, ErrorCode::GROUP_ID_NOT_FOUND);
    // Once the group is empty, everything may go.
    h.call(Request::LeaveGroup(LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![LeaveGroupMember {
            member_id: ids[0].clone(),
            ..Default::default()
        }],
    }));
    let r = expect!(h.call(delete(&["t"])), OffsetDelete);
    assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::NONE);
    assert_eq!(h.fetched("g", "t", 0).0, -1);
    let h = h.restart(false);
    let mut h = h;
    assert_eq!(h.fetched("g", "t", 0).0, -1);
    assert_eq!(h.fetched("g", "u", 0).0, -1);
}

#[test]
fn list_and_describe_report_states_and_members() {
    let mut h = Harness::new();
    h.create("t", 1);
    let (ids, _) = h.stable_group("stable", &["a", "b"]);
    let c = h.commit("offsets-only", "", -1, 1, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    let (_, j) = h.join_new("joining", "c", &["t"]);
    h.initial_delay();
    assert!(h.take(j).is_some());
    let list = |h: &mut Harness, states: &[&str]| {
        let r = h.call(Request::ListGroups(ListGroupsRequest {
            states_filter: states.iter().map(|s| s.to_string()).collect(),
            types_filter: vec![],
        }));
        let r = expect!(r, ListGroups);
        assert_eq!(r.error_code, ErrorCode::NONE);
        r.groups
            .into_iter()
            .map(|g| (g.group_id, g.group_state, g.protocol_type, g.group_type))
            .collect::<Vec<_>>()
    };
    let s = |x: &str| x.to_string();
    assert_eq!(
        list(&mut h, &[]),
        vec![
            (
                s("joining"),
                s("CompletingRebalance"),
                s("consumer"),
                s("classic")
            ),
            (s("offsets-only"), s("Empty"), s(""), s("classic")),
            (s("stable"), s("Stable"), s("consumer"), s("classic")),
        ]
    );
    assert_eq!(list(&mut h, &["stable", "EMPTY"]).len(), 2);
    let d = h.describe("stable");
    assert_eq!(d.error_code, ErrorCode::NONE);
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.authorized_operations, AUTHORIZED_OPERATIONS_OMITTED);
    let members: Vec<(&str, &Bytes, &Bytes)> = d
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.as_str(),
                &m.member_metadata,
                &m.member_assignment,
            )
        })
        .collect();
    assert_eq!(
        members,
        vec![
            (ids[0].as_str(), &subscription(&["t"]), &Bytes::from("a-a")),
            (ids[1].as_str(), &subscription(&["t"]), &Bytes::from("a-b")),
        ]
    );
    let d = h.describe("joining");
    assert_eq!(d.protocol_data, "", "no protocol until Stable");
    assert!(d.members[0].member_metadata.is_empty());
    let d = h.describe("unknown");
    assert_eq!(
        (d.error_code, d.group_state.as_str()),
        (ErrorCode::NONE, "Dead")
    );
}

/// KIP-394: a member id handed out with MEMBER_ID_REQUIRED holds a rebalance (not the
/// initial one) until it is used or its session ends.
#[test]
fn a_pending_member_id_holds_a_rebalance_until_it_expires() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["a"]);
    let r = h.call(Request::JoinGroup(join_request("g", "", None, "b", &["t"])));
    assert_eq!(
        expect!(r, JoinGroup).error_code,
        ErrorCode::MEMBER_ID_REQUIRED
    );
    assert_eq!(
        h.describe("g").group_state,
        "Stable",
        "a pending id alone changes nothing"
    );
    let ja = h.send(Request::JoinGroup(join_request(
        "g",
        &ids[0],
        None,
        "a",
        &["t"],
    )));
    h.advance(SESSION_MS as u64 - 1);
    assert!(h.take(ja).is_none(), "the pending member may still join");
    h.advance(1);
    let r = h.join_response(ja);
    assert_eq!(
        (r.error_code, r.generation_id, r.members.len()),
        (ErrorCode::NONE, generation + 1, 1)
    );
}

#[test]
fn a_superseded_join_is_answered_so_the_connection_is_not_stuck() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["a", "c"]);
    let (a, c) = (&ids[0], &ids[1]);
    let ja1 = h.send(Request::JoinGroup(join_request(
        "g",
        a,
        None,
        "a",
        &["t", "u"],
    )));
    let ja2 = h.send(Request::JoinGroup(join_request(
        "g",
        a,
        None,
        "a",
        &["t", "u"],
    )));
    assert_eq!(
        h.join_response(ja1).error_code,
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert!(h.take(ja2).is_none(), "waits for c");
    let jc = h.send(Request::JoinGroup(join_request("g", c, None, "c", &["t"])));
    let (ra, rc) = (h.join_response(ja2), h.join_response(jc));
    assert_eq!(
        (ra.error_code, ra.generation_id),
        (ErrorCode::NONE, generation + 1)
    );
    assert_eq!(rc.generation_id, generation + 1);
    assert_eq!(
        ra.members[0].metadata,
        subscription(&["t", "u"]),
        "the new metadata"
    );
}

#[test]
fn deleting_the_offsets_topic_forgets_offsets_and_answers_waiting_commits() {
    let mut h = Harness::new();
    h.create("t", 1);
    let c = h.commit("g", "", -1, 1, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    h.hold_flushes = true;
    let waiting = h.commit("g", "", -1, 2, "");
    let r = h.call(Request::DeleteTopics(DeleteTopicsRequest {
        topics: vec![TopicRef {
            name: Some(OFFSETS_TOPIC.into()),
            id: TopicId::ZERO,
        }],
        timeout_ms: 1000,
    }));
    assert_eq!(
        expect!(r, DeleteTopics).responses[0].error_code,
        ErrorCode::NONE
    );
    assert_eq!(h.commit_error(waiting), ErrorCode::NOT_COORDINATOR);
    // The held Flush names files of the deleted topic: a driver's fsync would find nothing.
    h.held.clear();
    h.hold_flushes = false;
    // Recreated on next use, empty.
    assert_eq!(h.fetched("g", "t", 0).0, -1);
}

#[test]
fn a_full_group_refuses_new_members() {
    let mut h = Harness::with(
        NodeConfig {
            group: GroupConfig {
                initial_rebalance_delay_ms: DELAY_MS as i32,
                max_size: 2,
                ..GroupConfig::default()
            },
            ..NodeConfig::default()
        },
        MemStorage::new(),
        Instant::from_millis(T0),
        false,
    );
    let (ids, generation) = h.stable_group("g", &["a", "b"]);
    let mut third = join_request("g", "", None, "c", &["t"]);
    third.require_known_member_id = false;
    let r = h.call(Request::JoinGroup(third.clone()));
    assert_eq!(
        expect!(r, JoinGroup).error_code,
        ErrorCode::GROUP_MAX_SIZE_REACHED
    );
    // Also while rebalancing, and members already in keep their place.
    let ja = h.send(Request::JoinGroup(join_request(
        "g",
        &ids[0],
        None,
        "a",
        &["t"],
    )));
    let r = h.call(Request::JoinGroup(third));
    assert_eq!(
        expect!(r, JoinGroup).error_code,
        ErrorCode::GROUP_MAX_SIZE_REACHED
    );
    let jb = h.send(Request::JoinGroup(join_request(
        "g",
        &ids[1],
        None,
        "b",
        &["t"],
    )));
    assert_eq!(h.join_response(ja).generation_id, generation + 1);
    assert_eq!(h.join_response(jb).generation_id, generation + 1);
}

#[test]
fn naming_the_offsets_topic_in_metadata_creates_it_as_the_coordinator_would() {
    let mut h = Harness::new();
    let r = h.call(Request::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef {
            name: Some(OFFSETS_TOPIC.into()),
            id: TopicId::ZERO,
        }]),
        allow_auto_topic_creation: true,
        ..Default::default()
    }));
    let m = expect!(r, Metadata);
    assert_eq!(m.topics[0].error_code, ErrorCode::NONE);
    assert_eq!(m.topics[0].partitions.len(), 50, "not num.partitions (1)");
    assert!(m.topics[0].is_internal);
}

/// Bit rot in a segment that log recovery trusts (below the recovery point) makes the
/// loader's read fail: the partition's groups become unavailable instead of being served an
/// offset older than the one committed, and the node still starts.
#[test]
fn a_rotten_offsets_batch_takes_its_partition_out_of_service() {
    let mut config = config(DELAY_MS as i32);
    config.log.index_interval_bytes = 1;
    config.group.offsets_topic_segment_bytes = 250; // two commit batches per segment
    let mut h = Harness::with(config, MemStorage::new(), Instant::from_millis(T0), false);
    h.create("t", 1);
    for offset in 1..=6 {
        let c = h.commit("g", "", -1, offset, "");
        assert_eq!(h.commit_error(c), ErrorCode::NONE);
    }
    let c = h.commit("other", "", -1, 9, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    let dir = crate::node::partition_dir(OFFSETS_TOPIC, partition_for("g", 50));
    let logs: Vec<String> = h
        .disk
        .list(&dir)
        .unwrap()
        .into_iter()
        .filter(|f| f.ends_with(".log"))
        .collect();
    assert_eq!(logs.len(), 3, "{logs:?}");
    // Flip the last byte (the commit timestamp) of the first batch of the first segment.
    let file = format!("{dir}/{}", logs[0]);
    let mut bytes = h.disk.contents(&file).unwrap();
    let first_len = 12 + i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    assert!(
        bytes.len() > first_len,
        "the first segment holds two batches"
    );
    bytes[first_len - 1] ^= 0x01;
    h.disk.set_contents(&file, bytes);

    let mut h = h.restart(false);
    let g = h.fetch("g", &[("t", 0)], false);
    assert_eq!(g.error_code, ErrorCode::NOT_COORDINATOR);
    let p = &g.topics[0].partitions[0];
    assert_eq!(
        (p.committed_offset, p.error_code),
        (-1, ErrorCode::NOT_COORDINATOR),
        "each requested partition carries the group's error (OffsetFetch v1 looks there)"
    );
    let r = h.call(Request::FindCoordinator(FindCoordinatorRequest {
        key_type: COORDINATOR_KEY_TYPE_GROUP,
        keys: vec!["g".into()],
    }));
    assert_eq!(
        expect!(r, FindCoordinator).coordinators[0].error_code,
        ErrorCode::COORDINATOR_NOT_AVAILABLE
    );
    assert_eq!(h.fetched("other", "t", 0).0, 9, "other partitions serve");
}

/// Total bytes of the `.log` files of the offsets partition that `group` hashes to.
fn offsets_log_bytes(h: &Harness, group: &str) -> usize {
    let dir = crate::node::partition_dir(OFFSETS_TOPIC, partition_for(group, 50));
    h.disk
        .list(&dir)
        .unwrap()
        .into_iter()
        .filter(|f| f.ends_with(".log"))
        .map(|f| h.disk.contents(&format!("{dir}/{f}")).unwrap().len())
        .sum()
}

/// The log cleaner compacts `__consumer_offsets` on the node's clock: superseded commits go
/// at once, a deleted group's tombstones after delete.retention.ms, and a restart loads
/// exactly the latest commits from what is left.
#[test]
fn compacted_offsets_reload_to_the_latest_commits() {
    let mut config = config(DELAY_MS as i32);
    config.group.offsets_topic_segment_bytes = 250; // two commit batches per segment
    config.log_cleaner_interval_ms = 1_000;
    let mut h = Harness::with(config, MemStorage::new(), Instant::from_millis(T0), false);
    h.create("t", 1);
    for offset in 1..=12 {
        for group in ["g", "gone"] {
            let c = h.commit(group, "", -1, offset, &format!("m{offset}"));
            assert_eq!(h.commit_error(c), ErrorCode::NONE);
        }
    }
    let r = h.call(Request::DeleteGroups(DeleteGroupsRequest {
        groups_names: vec!["gone".into()],
    }));
    assert_eq!(
        expect!(r, DeleteGroups).results[0].error_code,
        ErrorCode::NONE
    );
    // Later commits roll the segments holding the last commits and the tombstone, so they
    // become cleanable (the active segment never is); `neighbour` shares gone's partition.
    let neighbour = (0..)
        .map(|i| format!("n{i}"))
        .find(|n| partition_for(n, 50) == partition_for("gone", 50))
        .unwrap();
    for offset in 13..=16 {
        for group in ["g", neighbour.as_str()] {
            let c = h.commit(group, "", -1, offset, &format!("m{offset}"));
            assert_eq!(h.commit_error(c), ErrorCode::NONE);
        }
    }
    let g_before = offsets_log_bytes(&h, "g");
    for _ in 0..30 {
        h.advance(1_000);
    }
    let g_after = offsets_log_bytes(&h, "g");
    assert!(
        g_after * 2 < g_before,
        "superseded commits were not compacted: {g_before} -> {g_after} bytes"
    );
    assert_eq!(h.fetched("g", "t", 0), (16, "m16".into(), ErrorCode::NONE));
    assert_eq!(h.fetched("gone", "t", 0).0, -1);

    let gone_before = offsets_log_bytes(&h, "gone");
    h.advance(86_400_000); // the offsets topic's delete.retention.ms
    for _ in 0..30 {
        h.advance(1_000);
    }
    assert!(
        offsets_log_bytes(&h, "gone") < gone_before,
        "the tombstone outlived delete.retention.ms"
    );

    let mut h = h.restart(false);
    assert_eq!(h.fetched("g", "t", 0), (16, "m16".into(), ErrorCode::NONE));
    assert_eq!(
        h.fetched("gone", "t", 0).0,
        -1,
        "no deleted commit came back"
    );
    assert_eq!(h.fetched(&neighbour, "t", 0).0, 16);
}

/// KIP-211: offsets.retention.ms after a group became Empty its offsets go (by tombstones,
/// durable before they count), and then the group; a standalone commit goes that long after
/// it was made; a group with members keeps its offsets however old.
#[test]
fn committed_offsets_expire_after_the_group_has_been_empty_for_the_retention() {
    const RETENTION_MS: u64 = 60_000;
    let mut config = config(DELAY_MS as i32);
    config.group.offsets_retention_ms = RETENTION_MS as i64;
    config.group.cleanup_interval_ms = 1_000;
    let mut h = Harness::with(config, MemStorage::new(), Instant::from_millis(T0), false);
    h.create("t", 1);
    let (ids, generation) = h.stable_group("left", &["a"]);
    let c = h.commit("left", &ids[0], generation, 5, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    let (busy, busy_generation) = h.stable_group("busy", &["b"]);
    let c = h.commit("busy", &busy[0], busy_generation, 7, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    for _ in 0..6 {
        h.advance(5_000);
        assert_eq!(
            h.heartbeat("busy", &busy[0], busy_generation),
            ErrorCode::NONE
        );
        assert_eq!(h.heartbeat("left", &ids[0], generation), ErrorCode::NONE);
    }
    // "simple" commits at T0 + 30 s; "left" empties at T0 + 30 s too.
    let c = h.commit("simple", "", -1, 9, "");
    assert_eq!(h.commit_error(c), ErrorCode::NONE);
    leave(&mut h, "left", &ids[0]);
    assert_eq!(h.describe("left").group_state, "Empty");

    // Just short of the retention: everything is still there.
    for _ in 0..(RETENTION_MS / 5_000 - 1) {
        h.advance(5_000);
        assert_eq!(
            h.heartbeat("busy", &busy[0], busy_generation),
            ErrorCode::NONE
        );
    }
    assert_eq!(h.fetched("left", "t", 0).0, 5);
    assert_eq!(h.fetched("simple", "t", 0).0, 9);
    // Past it: both expire; the group with members keeps its older offset.
    for _ in 0..3 {
        h.advance(2_000);
        assert_eq!(
            h.heartbeat("busy", &busy[0], busy_generation),
            ErrorCode::NONE
        );
    }
    assert_eq!(h.fetched("left", "t", 0).0, -1);
    assert_eq!(h.fetched("simple", "t", 0).0, -1);
    assert_eq!(h.fetched("busy", "t", 0).0, 7);
    // The next cleanup forgets the group whose offsets are gone.
    h.advance(2_000);
    assert_eq!(
        h.describe("left").group_state,
        "Dead",
        "forgotten once offsetless"
    );
    // The deletions are durable: a restart does not bring the offsets back.
    let mut h = h.restart(false);
    assert_eq!(h.fetched("left", "t", 0).0, -1);
    assert_eq!(h.fetched("simple", "t", 0).0, -1);
    assert_eq!(h.fetched("busy", "t", 0).0, 7);
}
