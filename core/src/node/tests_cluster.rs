//! Cluster behaviour of nodes, several at once under one clock (testing/cluster.rs): the
//! metadata quorum forms, elects one controller, records every broker's registration, and
//! keeps it across controller crashes, isolation and restarts.

use crate::api::{MetadataRequest, Request, Response};
use crate::controller::{self, NOT_CONTROLLER};
use crate::error::ErrorCode;
use crate::ids::NodeId;
use crate::node::{Input, Output, PeerMessage};
use crate::testing::cluster::TestCluster;

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
