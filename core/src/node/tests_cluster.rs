//! Cluster behaviour of nodes, several at once under one clock (testing/cluster.rs): the
//! metadata quorum forms, elects one controller, records every broker's registration, and
//! keeps it across controller crashes, isolation and restarts.

use crate::api::{MetadataRequest, Request, Response};
use crate::controller::{self, NOT_CONTROLLER};
use crate::error::ErrorCode;
use crate::ids::NodeId;
use crate::node::{Input, Output, PeerMessage};
use crate::testing::cluster::TestCluster;
use std::collections::BTreeMap;

fn all_registered(c: &TestCluster) -> bool {
    c.agreed_controller().is_some()
        && c.members.values().all(|m| {
            m.node
                .as_ref()
                .is_none_or(|n| n.is_registered() && n.live_brokers().len() == c.members.len())
        })
}

fn metadata(c: &mut TestCluster, at: NodeId) -> crate::api::MetadataResponse {
    let request = Request::Metadata(MetadataRequest {
        topics: Some(Vec::new()),
        ..MetadataRequest::default()
    });
    match c.call(at, request, 1_000) {
        Some(Response::Metadata(m)) => m,
        other => panic!("metadata answered {other:?}"),
    }
}

#[test]
fn three_brokers_elect_one_controller_and_each_lists_all_three() {
    let mut c = TestCluster::new(3);
    assert!(
        c.run_until(10_000, all_registered),
        "the cluster did not form"
    );
    let controller = c.agreed_controller().unwrap();
    for id in [NodeId(1), NodeId(2), NodeId(3)] {
        let m = metadata(&mut c, id);
        assert_eq!(m.controller_id, controller.0);
        let brokers: Vec<(i32, &str)> = m
            .brokers
            .iter()
            .map(|b| (b.node_id, b.host.as_str()))
            .collect();
        assert_eq!(brokers, [(1, "broker1"), (2, "broker2"), (3, "broker3")]);
    }
    // Exactly one of them leads the metadata quorum.
    let leaders = c
        .members
        .values()
        .filter(|m| {
            m.node
                .as_ref()
                .unwrap()
                .quorum
                .as_ref()
                .unwrap()
                .is_leader()
        })
        .count();
    assert_eq!(leaders, 1);
}

#[test]
fn a_killed_controller_is_replaced_and_a_restarted_broker_registers_again() {
    let mut c = TestCluster::new(3);
    assert!(c.run_until(10_000, all_registered));
    let old = c.agreed_controller().unwrap();
    let incarnation = c.node(old).incarnation;
    c.kill(old);
    assert!(
        c.run_until(10_000, |c| c.agreed_controller().is_some_and(|n| n != old)),
        "no new controller after the old one died"
    );
    // Registrations are in the log, so the dead broker is still listed (no fencing yet).
    let survivor = c.agreed_controller().unwrap();
    assert_eq!(metadata(&mut c, survivor).brokers.len(), 3);
    c.run_for(500);
    c.start(old);
    assert!(
        c.run_until(10_000, all_registered),
        "the restarted broker did not rejoin"
    );
    let again = &c.node(survivor).quorum.as_ref().unwrap().image().brokers[&old];
    assert!(
        again.incarnation > incarnation,
        "the restart registered anew"
    );
}

#[test]
fn an_isolated_controller_steps_down_and_the_majority_goes_on() {
    let mut c = TestCluster::new(3);
    assert!(c.run_until(10_000, all_registered));
    let old = c.agreed_controller().unwrap();
    c.isolate(old);
    let majority_moved = |c: &TestCluster| {
        c.members.iter().filter(|(&id, _)| id != old).all(|(_, m)| {
            let q = m.node.as_ref().unwrap().quorum.as_ref().unwrap();
            q.leader().is_some_and(|l| l != old)
        })
    };
    assert!(c.run_until(10_000, majority_moved));
    // Check-quorum: the isolated one no longer claims to lead.
    c.run_for(3_000);
    assert!(!c.node(old).quorum.as_ref().unwrap().is_leader());
    c.heal();
    assert!(c.run_until(10_000, |c| c.agreed_controller().is_some_and(|n| n != old)));
}

#[test]
fn every_broker_restarted_recovers_the_image_from_its_log_and_snapshots() {
    let mut c = TestCluster::new(3);
    for m in c.members.values_mut() {
        // Snapshot after every other entry, so a restart reads snapshots and entries.
        m.config.cluster.as_mut().unwrap().snapshot_every = 2;
    }
    for id in [NodeId(1), NodeId(2), NodeId(3)] {
        c.kill(id);
        c.start(id);
    }
    assert!(c.run_until(10_000, all_registered));
    let before = c.node(NodeId(1)).quorum.as_ref().unwrap().image().clone();
    for id in [NodeId(1), NodeId(2), NodeId(3)] {
        c.kill(id);
    }
    c.run_for(100);
    for id in [NodeId(1), NodeId(2), NodeId(3)] {
        c.start(id);
    }
    // Before any election, each has the image it applied (from its snapshot at least).
    for id in [NodeId(1), NodeId(2), NodeId(3)] {
        let q = c.node(id).quorum.as_ref().unwrap();
        assert!(
            !q.image().brokers.is_empty(),
            "broker {id} forgot the cluster"
        );
    }
    assert!(c.run_until(10_000, all_registered));
    let after = c.node(NodeId(1)).quorum.as_ref().unwrap().image().clone();
    assert_eq!(
        after.brokers.keys().collect::<Vec<_>>(),
        before.brokers.keys().collect::<Vec<_>>()
    );
}

#[test]
fn forwards_are_refused_by_a_follower_and_when_they_do_not_decode() {
    let mut c = TestCluster::new(3);
    assert!(c.run_until(10_000, all_registered));
    let leader = c.agreed_controller().unwrap();
    let follower = [NodeId(1), NodeId(2), NodeId(3)]
        .into_iter()
        .find(|&id| id != leader)
        .unwrap();
    let other = NodeId(if follower.0 == 3 { 2 } else { 3 });
    let cases = [
        (follower, controller::encode_records(&[]), NOT_CONTROLLER),
        (leader, vec![0xff, 0xff, 0xff], ErrorCode::INVALID_REQUEST),
    ];
    for (to, records, expected) in cases {
        let node = c.members.get_mut(&to).unwrap().node.as_mut().unwrap();
        node.handle(
            c.now,
            Input::Peer {
                from: other,
                message: PeerMessage::Forward { id: 77, records },
            },
        );
        let replies: Vec<_> = std::iter::from_fn(|| node.poll_output())
            .filter_map(|o| match o {
                Output::SendPeer {
                    to,
                    message: PeerMessage::ForwardReply { id, error_code, .. },
                } => Some((to, id, error_code)),
                _ => None,
            })
            .collect();
        assert_eq!(replies, [(other, 77, expected.0)]);
    }
}

// ---- Topics on the controller ------------------------------------------------------------

use crate::api::{DeleteTopicsRequest, TopicRef};
use crate::broker::tests::{batch, produce, produce_result};
use crate::testing::harness::create_topic;

fn formed() -> TestCluster {
    let mut c = TestCluster::new(3);
    assert!(
        c.run_until(10_000, all_registered),
        "the cluster did not form"
    );
    c
}

fn follower_of(c: &TestCluster) -> NodeId {
    let leader = c.agreed_controller().unwrap();
    [NodeId(1), NodeId(2), NodeId(3)]
        .into_iter()
        .find(|&id| id != leader)
        .unwrap()
}

fn create(c: &mut TestCluster, at: NodeId, request: Request) -> crate::api::CreateTopicsResponse {
    match c.call(at, request, 5_000) {
        Some(Response::CreateTopics(r)) => r,
        other => panic!("create answered {other:?}"),
    }
}

fn hosted(c: &TestCluster, id: NodeId, topic: &str) -> Vec<i32> {
    let n = c.node(id);
    let mut v: Vec<i32> = n
        .partitions
        .values()
        .filter(|p| p.topic == topic)
        .map(|p| p.id.index)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn a_topic_created_on_any_broker_is_placed_across_the_cluster_and_served_by_its_leaders() {
    let mut c = formed();
    let at = follower_of(&c);
    let r = create(&mut c, at, create_topic("orders", 6));
    assert_eq!(
        r.topics[0].error_code,
        ErrorCode::NONE,
        "{:?}",
        r.topics[0].error_message
    );
    assert!(!r.topics[0].topic_id.is_zero());
    assert_eq!(r.topics[0].replication_factor, 1);
    c.run_for(100);
    // Every broker reports the same placement; leaders rotate over the three.
    let views: Vec<Vec<i32>> = [NodeId(1), NodeId(2), NodeId(3)]
        .into_iter()
        .map(|id| {
            let m = metadata_of(&mut c, id, "orders");
            m.partitions.iter().map(|p| p.leader_id).collect()
        })
        .collect();
    assert_eq!(views[0].len(), 6);
    assert!(views.iter().all(|v| *v == views[0]), "{views:?}");
    for id in 1..=3 {
        let leads: Vec<i32> = (0..6).filter(|&p| views[0][p as usize] == id).collect();
        assert_eq!(leads.len(), 2, "broker {id} leads {leads:?}");
        assert_eq!(
            hosted(&c, NodeId(id), "orders"),
            leads,
            "broker {id} hosts what it leads"
        );
    }
    // The leader takes the write; another broker sends the client to it.
    let leader = NodeId(views[0][0]);
    let other = NodeId(views[0][1]);
    let r = c
        .call(leader, produce("orders", 0, 1, batch(&["a"], 0)), 1_000)
        .unwrap();
    assert_eq!(produce_result(&r).error_code, ErrorCode::NONE);
    let r = c
        .call(other, produce("orders", 0, 1, batch(&["a"], 0)), 1_000)
        .unwrap();
    assert_eq!(
        produce_result(&r).error_code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER
    );
}

fn metadata_of(c: &mut TestCluster, at: NodeId, topic: &str) -> crate::api::MetadataTopic {
    let request = Request::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef {
            name: Some(topic.to_string()),
            ..Default::default()
        }]),
        ..MetadataRequest::default()
    });
    match c.call(at, request, 1_000) {
        Some(Response::Metadata(mut m)) => m.topics.remove(0),
        other => panic!("metadata answered {other:?}"),
    }
}

#[test]
fn the_controller_refuses_a_taken_name_and_factors_it_cannot_hold() {
    let mut c = formed();
    let at = follower_of(&c);
    assert_eq!(
        create(&mut c, at, create_topic("t", 1)).topics[0].error_code,
        ErrorCode::NONE
    );
    // Created on another broker before this one heard: the controller's verdict says so.
    let other = c.agreed_controller().unwrap();
    let again = create(&mut c, other, create_topic("t", 1));
    assert_eq!(again.topics[0].error_code, ErrorCode::TOPIC_ALREADY_EXISTS);
    for (factor, says) in [(4, "only 3 broker(s)"), (3, "does not replicate")] {
        let mut request = create_topic("u", 1);
        if let Request::CreateTopics(r) = &mut request {
            r.topics[0].replication_factor = factor;
        }
        let r = create(&mut c, at, request);
        assert_eq!(
            r.topics[0].error_code,
            ErrorCode::INVALID_REPLICATION_FACTOR
        );
        assert!(r.topics[0].error_message.as_ref().unwrap().contains(says));
    }
}

#[test]
fn a_deleted_topic_leaves_every_broker_and_a_recreated_one_starts_empty_even_on_a_broker_that_was_away(
) {
    let mut c = formed();
    let at = follower_of(&c);
    create(&mut c, at, create_topic("d", 3));
    c.run_for(100);
    let leader = NodeId(metadata_of(&mut c, at, "d").partitions[0].leader_id);
    let r = c
        .call(leader, produce("d", 0, 1, batch(&["old"], 0)), 1_000)
        .unwrap();
    assert_eq!(produce_result(&r).error_code, ErrorCode::NONE);
    // The partition's leader is away while the topic is deleted and created again.
    c.kill(leader);
    let someone = [NodeId(1), NodeId(2), NodeId(3)]
        .into_iter()
        .find(|&id| id != leader)
        .unwrap();
    assert!(c.run_until(10_000, |c| c
        .node(someone)
        .controller_id()
        .is_some_and(|l| l != leader)));
    let delete = Request::DeleteTopics(DeleteTopicsRequest {
        topics: vec![TopicRef {
            name: Some("d".into()),
            ..Default::default()
        }],
        timeout_ms: 5_000,
    });
    match c.call(someone, delete, 5_000) {
        Some(Response::DeleteTopics(r)) => assert_eq!(r.responses[0].error_code, ErrorCode::NONE),
        other => panic!("{other:?}"),
    }
    c.run_for(100);
    assert!(hosted(&c, someone, "d").is_empty());
    // Placed again over the same brokers, the old leader hosts partition 0 again only if
    // the placement says so; either way no old record may come back.
    let mut request = create_topic("d", 3);
    if let Request::CreateTopics(r) = &mut request {
        r.topics[0].assignments = (0..3).map(|p| (p, vec![leader.0])).collect();
        r.topics[0].num_partitions = -1;
    }
    assert_eq!(
        create(&mut c, someone, request).topics[0].error_code,
        ErrorCode::NONE
    );
    c.start(leader);
    assert!(c.run_until(10_000, |c| hosted(c, leader, "d") == [0, 1, 2]));
    let p = c.node(leader).partition_named("d", 0).expect("hosted");
    assert_eq!(
        p.log.log_end_offset(),
        0,
        "the old topic's record came back"
    );
}

#[test]
fn metadata_auto_creates_through_the_controller() {
    let mut c = formed();
    let at = follower_of(&c);
    let request = Request::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef {
            name: Some("auto".to_string()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: true,
        ..MetadataRequest::default()
    });
    let first = match c.call(at, request.clone(), 1_000) {
        Some(Response::Metadata(m)) => m.topics[0].error_code,
        other => panic!("{other:?}"),
    };
    assert_eq!(first, ErrorCode::LEADER_NOT_AVAILABLE);
    c.run_for(100);
    let then = match c.call(at, request, 1_000) {
        Some(Response::Metadata(m)) => m.topics[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(then.error_code, ErrorCode::NONE);
    assert_eq!(then.partitions.len(), 1);
}

#[test]
fn a_restarted_broker_reopens_its_partitions_with_their_data() {
    let mut c = formed();
    let at = follower_of(&c);
    create(&mut c, at, create_topic("keep", 3));
    c.run_for(100);
    let leader = NodeId(metadata_of(&mut c, at, "keep").partitions[0].leader_id);
    for v in ["a", "b"] {
        let r = c
            .call(leader, produce("keep", 0, -1, batch(&[v], 0)), 1_000)
            .unwrap();
        assert_eq!(produce_result(&r).error_code, ErrorCode::NONE);
    }
    c.kill(leader);
    c.run_for(2_000);
    c.start(leader);
    assert!(c.run_until(10_000, |c| c
        .node(leader)
        .partition_named("keep", 0)
        .is_some()));
    let p = c.node(leader).partition_named("keep", 0).unwrap();
    assert_eq!(p.log.log_end_offset(), 2);
}

#[test]
fn find_coordinator_names_the_broker_leading_the_groups_offsets_partition() {
    use crate::api::{FindCoordinatorRequest, FindCoordinatorResponse};
    let mut c = formed();
    let find = || {
        Request::FindCoordinator(FindCoordinatorRequest {
            key_type: 0,
            keys: vec!["g".to_string()],
        })
    };
    let answer = |c: &mut TestCluster, at: NodeId| -> FindCoordinatorResponse {
        match c.call(at, find(), 1_000) {
            Some(Response::FindCoordinator(r)) => r,
            other => panic!("{other:?}"),
        }
    };
    // The first ask creates the offsets topic through the controller.
    assert_ne!(
        answer(&mut c, NodeId(1)).coordinators[0].error_code,
        ErrorCode::NONE
    );
    c.run_for(200);
    let seen: Vec<i32> = (1..=3)
        .map(|i| {
            let r = answer(&mut c, NodeId(i));
            assert_eq!(r.coordinators[0].error_code, ErrorCode::NONE, "{r:?}");
            r.coordinators[0].node_id
        })
        .collect();
    assert!(seen.iter().all(|&n| n == seen[0]), "{seen:?}");
    let coordinator = NodeId(seen[0]);
    assert!(!hosted(&c, coordinator, crate::group::OFFSETS_TOPIC).is_empty());
}

#[test]
fn partitions_and_configs_change_through_the_controller_on_every_broker() {
    use crate::api::{
        AlterConfigsRequest, AlterConfigsResource, CreatePartitionsRequest, CreatePartitionsTopic,
    };
    let mut c = formed();
    let at = follower_of(&c);
    create(&mut c, at, create_topic("p", 1));
    c.run_for(100);
    let request = Request::CreatePartitions(CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: "p".into(),
            count: 4,
            ..Default::default()
        }],
        timeout_ms: 1_000,
        validate_only: false,
    });
    match c.call(at, request, 2_000) {
        Some(Response::CreatePartitions(r)) => {
            assert_eq!(r.results[0].error_code, ErrorCode::NONE, "{r:?}")
        }
        other => panic!("{other:?}"),
    }
    c.run_for(100);
    let leaders: Vec<i32> = metadata_of(&mut c, NodeId(3), "p")
        .partitions
        .iter()
        .map(|p| p.leader_id)
        .collect();
    assert_eq!(leaders.len(), 4);
    for id in 1..=3 {
        let leads: Vec<i32> = (0..4).filter(|&p| leaders[p as usize] == id).collect();
        assert_eq!(hosted(&c, NodeId(id), "p"), leads, "broker {id}");
        assert_eq!(c.node(NodeId(id)).metadata.topics["p"].partitions, 4);
    }
    let request = Request::AlterConfigs(AlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: 2,
            resource_name: "p".into(),
            configs: vec![("retention.ms".into(), Some("12345".into()))],
        }],
        validate_only: false,
    });
    match c.call(at, request, 2_000) {
        Some(Response::AlterConfigs(r)) => {
            assert_eq!(r.responses[0].error_code, ErrorCode::NONE, "{r:?}")
        }
        other => panic!("{other:?}"),
    }
    c.run_for(100);
    for id in [NodeId(1), NodeId(2), NodeId(3)] {
        let t = &c.node(id).metadata.topics["p"];
        assert_eq!(
            t.configs.get("retention.ms").map(String::as_str),
            Some("12345")
        );
    }
    // The hosted logs run with it too.
    let leader = NodeId(leaders[0]);
    let p = c.node(leader).partition_named("p", 0).unwrap();
    assert_eq!(p.log.config().retention_ms, 12_345);
}

#[test]
fn producer_ids_come_from_controller_blocks_distinct_across_brokers_and_restarts() {
    use crate::api::InitProducerIdRequest;
    let mut c = formed();
    c.run_for(100);
    let init = |c: &mut TestCluster, at: NodeId| -> (ErrorCode, i64) {
        let request = Request::InitProducerId(InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
        });
        match c.call(at, request, 1_000) {
            Some(Response::InitProducerId(r)) => (r.error_code, r.producer_id),
            other => panic!("{other:?}"),
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..3 {
        for id in [NodeId(1), NodeId(2), NodeId(3)] {
            let (code, pid) = init(&mut c, id);
            assert_eq!(code, ErrorCode::NONE);
            assert!(
                seen.insert(pid),
                "producer id {pid} handed out twice (round {round})"
            );
        }
    }
    // A restarted broker does not reuse its old block, whatever it handed out from it.
    c.kill(NodeId(2));
    c.start(NodeId(2));
    assert!(c.run_until(10_000, all_registered));
    c.run_for(100);
    for _ in 0..3 {
        let (code, pid) = init(&mut c, NodeId(2));
        assert_eq!(code, ErrorCode::NONE);
        assert!(
            seen.insert(pid),
            "producer id {pid} handed out twice after a restart"
        );
    }
}

#[test]
fn a_single_nodes_data_directory_joins_a_cluster_with_its_topics_data_and_producer_ids() {
    use crate::api::InitProducerIdRequest;
    use crate::testing::Harness;
    let mut h = Harness::new();
    h.create("legacy", 2);
    for v in ["a", "b", "c"] {
        let (r, _) = h.call(produce("legacy", 1, 1, batch(&[v], 0)));
        assert_eq!(produce_result(&r).error_code, ErrorCode::NONE);
    }
    h.release_flushes();
    let (r, _) = h.call(Request::InitProducerId(InitProducerIdRequest::default()));
    let Response::InitProducerId(old) = r else {
        panic!()
    };
    assert_eq!(old.error_code, ErrorCode::NONE);
    h.node.flush_all();
    h.pump();
    let disk = h.disk.clone();
    drop(h);

    let mut c = TestCluster::over(3, BTreeMap::from([(NodeId(1), disk.clone())]));
    let imported = |c: &TestCluster| {
        all_registered(c)
            && [NodeId(1), NodeId(2), NodeId(3)]
                .into_iter()
                .all(|id| c.node(id).metadata.topics.contains_key("legacy"))
            && c.node(NodeId(1)).partition_named("legacy", 1).is_some()
    };
    assert!(
        c.run_until(10_000, imported),
        "the single node's topic did not arrive"
    );
    let p = c.node(NodeId(1)).partition_named("legacy", 1).unwrap();
    assert_eq!(
        p.log.log_end_offset(),
        3,
        "its records are served as before"
    );
    let m = metadata_of(&mut c, NodeId(3), "legacy");
    assert!(m.partitions.iter().all(|p| p.leader_id == 1));
    c.run_for(1_000);
    assert!(
        disk.contents(crate::metadata::METADATA_FILE).is_none(),
        "the file is gone"
    );
    // Ids the single node handed out are never handed out again.
    for at in [NodeId(1), NodeId(2), NodeId(3)] {
        let r = c.call(
            at,
            Request::InitProducerId(InitProducerIdRequest::default()),
            1_000,
        );
        let Some(Response::InitProducerId(r)) = r else {
            panic!()
        };
        assert_eq!(r.error_code, ErrorCode::NONE);
        assert!(r.producer_id > old.producer_id, "{} reused", r.producer_id);
    }
    // A restart does not import it again, nor lose it.
    c.kill(NodeId(1));
    c.start(NodeId(1));
    assert!(c.run_until(10_000, imported));
    assert!(c.node(NodeId(1)).import.is_none());
}

#[test]
fn a_broker_the_controller_stops_hearing_is_fenced_and_comes_back_unfenced() {
    let mut c = formed();
    let at = follower_of(&c);
    let mut request = create_topic("f", 3);
    if let Request::CreateTopics(r) = &mut request {
        r.topics[0].assignments = vec![(0, vec![1]), (1, vec![2]), (2, vec![3])];
        r.topics[0].num_partitions = -1;
    }
    assert_eq!(
        create(&mut c, at, request).topics[0].error_code,
        ErrorCode::NONE
    );
    c.run_for(100);
    // Kill a broker that is not the controller: within a session timeout and a check it
    // is no longer listed, and its partition is offline.
    let controller = c.agreed_controller().unwrap();
    let victim = follower_of(&c);
    c.kill(victim);
    let gone = |c: &TestCluster| {
        c.node(controller)
            .live_brokers()
            .iter()
            .all(|b| b.node_id != victim.0)
    };
    assert!(!gone(&c));
    assert!(c.run_until(5_000, gone), "the dead broker is still listed");
    let p = metadata_of(&mut c, controller, "f").partitions[(victim.0 - 1) as usize].clone();
    assert_eq!(
        (p.error_code, p.leader_id),
        (ErrorCode::LEADER_NOT_AVAILABLE, -1)
    );
    // Restarted, it registers again and is listed and leads its partition again.
    c.start(victim);
    assert!(c.run_until(10_000, |c| !gone(c) && all_registered(c)));
    let p = metadata_of(&mut c, controller, "f").partitions[(victim.0 - 1) as usize].clone();
    assert_eq!((p.error_code, p.leader_id), (ErrorCode::NONE, victim.0));
    // Cut off and healed, without a restart: unfenced by being heard from again.
    c.isolate(victim);
    assert!(c.run_until(5_000, |c| {
        let q = c.node(controller).quorum.as_ref().unwrap();
        q.is_leader() && q.image().fenced.contains(&victim)
    }));
    c.heal();
    assert!(c.run_until(10_000, |c| {
        c.agreed_controller().is_some()
            && c.node(victim)
                .quorum
                .as_ref()
                .unwrap()
                .image()
                .fenced
                .is_empty()
    }));
}

#[test]
fn describe_quorum_is_answered_in_full_by_the_controller_and_pointed_at_it_elsewhere() {
    use crate::api::DescribeQuorumRequest;
    let mut c = formed();
    c.run_for(300);
    let ask = |c: &mut TestCluster, at: NodeId| {
        let request = Request::DescribeQuorum(DescribeQuorumRequest {
            topics: vec![("__cluster_metadata".to_string(), vec![0, 1])],
        });
        match c.call(at, request, 1_000) {
            Some(Response::DescribeQuorum(r)) => r.topics[0].1.clone(),
            other => panic!("{other:?}"),
        }
    };
    let leader = c.agreed_controller().unwrap();
    let parts = ask(&mut c, leader);
    let q = &parts[0];
    assert_eq!((q.error_code, q.leader_id), (ErrorCode::NONE, leader.0));
    assert!(q.leader_epoch >= 1 && q.high_watermark >= 4, "{q:?}");
    let ids: Vec<i32> = q.voters.iter().map(|v| v.replica_id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert!(
        q.voters
            .iter()
            .all(|v| v.log_end_offset == q.high_watermark),
        "{q:?}"
    );
    assert!(q.voters.iter().all(|v| v.last_fetch_timestamp > 0));
    assert_eq!(parts[1].error_code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    let follower = follower_of(&c);
    let elsewhere = ask(&mut c, follower);
    assert_eq!(
        (
            elsewhere[0].error_code,
            elsewhere[0].leader_id,
            elsewhere[0].leader_epoch
        ),
        (ErrorCode::NOT_LEADER_OR_FOLLOWER, leader.0, q.leader_epoch)
    );
}

#[test]
fn a_controller_shutting_down_hands_over_before_any_election_timeout() {
    let mut c = formed();
    c.run_for(500);
    let old = c.agreed_controller().unwrap();
    let n = c.members.get_mut(&old).unwrap().node.as_mut().unwrap();
    assert!(
        n.hand_over_leadership(),
        "a leader with caught-up voters hands over"
    );
    // Well inside the 1 s minimum election timeout: only a transfer can be this fast.
    assert!(
        c.run_until(200, |c| !c.node(old).leads_anything()
            && c.agreed_controller().is_some_and(|n| n != old)),
        "the leadership did not move"
    );
    let stats = c
        .node(c.agreed_controller().unwrap())
        .cluster_stats()
        .unwrap();
    assert!(stats.active_controller && stats.registered_brokers == 3);
    // A follower has nothing to hand over.
    let follower = follower_of(&c);
    let f = c.members.get_mut(&follower).unwrap().node.as_mut().unwrap();
    assert!(!f.hand_over_leadership());
}

#[test]
fn a_single_nodes_topic_whose_name_the_cluster_took_is_kept_on_disk_across_restarts() {
    use crate::testing::Harness;
    let mut h = Harness::new();
    h.create("c", 1);
    let (r, _) = h.call(produce("c", 0, 1, batch(&["mine"], 0)));
    assert_eq!(produce_result(&r).error_code, ErrorCode::NONE);
    h.release_flushes();
    h.node.flush_all();
    h.pump();
    let disk = h.disk.clone();
    drop(h);
    let segment_files = |d: &crate::storage::MemStorage| {
        use crate::storage::Storage;
        d.list("c-0")
            .unwrap()
            .into_iter()
            .filter(|f| f.ends_with(".log"))
            .count()
    };
    assert_eq!(segment_files(&disk), 1);

    // The cluster gets its own "c" while the single node's broker is still away.
    let mut c = TestCluster::over(3, BTreeMap::from([(NodeId(1), disk.clone())]));
    c.kill(NodeId(1));
    let two = |c: &TestCluster| {
        [NodeId(2), NodeId(3)].into_iter().all(|id| {
            let n = c.node(id);
            n.controller_id().is_some() && n.is_registered()
        })
    };
    assert!(c.run_until(10_000, two));
    let mut request = create_topic("c", 1);
    if let Request::CreateTopics(r) = &mut request {
        r.topics[0].assignments = vec![(0, vec![2])];
        r.topics[0].num_partitions = -1;
    }
    assert_eq!(
        create(&mut c, NodeId(2), request).topics[0].error_code,
        ErrorCode::NONE
    );
    c.start(NodeId(1));
    assert!(c.run_until(10_000, all_registered));
    c.run_for(2_000);
    assert_eq!(
        segment_files(&disk),
        1,
        "the single node's data was removed"
    );
    assert!(c.node(NodeId(1)).partition_named("c", 0).is_none());
    c.kill(NodeId(1));
    c.start(NodeId(1));
    assert!(c.run_until(10_000, all_registered));
    c.run_for(2_000);
    assert_eq!(segment_files(&disk), 1, "a restart removed the kept data");
}
