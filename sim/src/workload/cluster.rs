//! The clients of a cluster scenario that the single-node ones do not need: the setup that
//! creates each topic through any broker with its partitions assigned to the topic's node,
//! and the quorum observer.
//!
//! The observer is an oracle, not a workload: the harness exempts its links from network
//! faults (a crash still silences them), so it sees every running node. Every
//! `every` it asks each node DescribeQuorum for `__cluster_metadata` partition 0 and records
//! each distinct claim to be the active controller (error 0, with its epoch and leader id);
//! from the heal on it also asks each node Metadata until all of them name one controller,
//! list every node as a live broker and every topic with each partition led by its node.

use super::{connect, now_ms, Shared, SimClient, TopicInfo};
use crate::history::{Millis, QuorumClaim};
use crate::workload::Plan;
use keel_net::codec::{self, RequestBody, ResponseBody};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The metadata quorum's topic, as DescribeQuorum names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The observer's deadline for one connection or request: short, so a node that is down
/// delays a round only a little.
const OBSERVER_TIMEOUT: Duration = Duration::from_millis(250);

fn host(node: u32) -> String {
    format!("keel-{node}")
}

/// A topic of a cluster scenario: every partition on `node`.
#[derive(Debug, Clone)]
pub struct ClusterTopic {
    pub info: TopicInfo,
    pub node: u32,
}

/// Creates every topic through the brokers in turn (the request goes to the controller
/// whichever broker takes it), each partition assigned to the topic's node, retrying until
/// it exists (TOPIC_ALREADY_EXISTS counts: an earlier attempt whose answer was lost); then
/// waits until each topic's node serves every partition, and opens the gate.
pub async fn setup(topics: Vec<ClusterTopic>, nodes: u32, shared: Arc<Shared>) -> turmoil::Result {
    let mut attempt = 0u32;
    for topic in &topics {
        loop {
            let via = host(attempt % nodes + 1);
            attempt += 1;
            match create_assigned(topic, &via).await {
                Ok(()) => break,
                Err(why) => {
                    shared.note(format!(
                        "setup: creating {} through {via} failed: {why}; retrying",
                        topic.info.name
                    ));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    for topic in &topics {
        let mut noted = false;
        while !served(topic).await {
            if !noted {
                shared.note(format!(
                    "setup: waiting for {} to lead every partition of {}",
                    topic.info.host, topic.info.name
                ));
                noted = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    shared.note(format!(
        "setup: {} topic(s) ready on the cluster",
        topics.len()
    ));
    let _ = shared.started.send(true);
    Ok(())
}

async fn create_assigned(topic: &ClusterTopic, via: &str) -> Result<(), String> {
    super::create_topic_via(&topic.info, via, Some(topic.node as i32)).await
}

/// Whether the topic's node lists it with every partition led by itself.
async fn served(topic: &ClusterTopic) -> bool {
    let Ok(mut client) = connect("setup", &topic.info.host, Duration::from_secs(1)).await else {
        return false;
    };
    let Ok(m) = client.metadata(Some(&[topic.info.name.as_str()])).await else {
        return false;
    };
    topic_led_by(&m, &topic.info.name, topic.info.partitions, topic.node)
}

fn topic_led_by(m: &codec::MetadataResponse, name: &str, partitions: i32, node: u32) -> bool {
    m.topics
        .iter()
        .find(|t| t.name.as_deref() == Some(name))
        .is_some_and(|t| {
            t.error_code == 0
                && t.partitions.len() == partitions as usize
                && t.partitions
                    .iter()
                    .all(|p| p.error_code == 0 && p.leader_id == node as i32)
        })
}

/// The quorum observer's settings.
#[derive(Debug, Clone)]
pub struct ObserverCfg {
    pub nodes: u32,
    pub every: Duration,
    pub topics: Vec<ClusterTopic>,
}

/// Observes the metadata quorum until the nodes agree after the heal, or the run ends
/// (see the module doc). Writes into `history.cluster`, which the harness created.
pub async fn observer(cfg: ObserverCfg, shared: Arc<Shared>, plan: Plan) -> turmoil::Result {
    let mut conns: Vec<Option<SimClient>> = (0..cfg.nodes).map(|_| None).collect();
    let mut seen: BTreeSet<(u32, i32, i32)> = BTreeSet::new();
    let names: Vec<&str> = cfg.topics.iter().map(|t| t.info.name.as_str()).collect();
    let all: Vec<i32> = (1..=cfg.nodes as i32).collect();
    loop {
        let round = now_ms();
        if round + OBSERVER_TIMEOUT.as_millis() as Millis * u64::from(cfg.nodes) >= plan.end_ms {
            shared.note("quorum observer: out of time".to_string());
            return Ok(());
        }
        for node in 1..=cfg.nodes {
            let Some(client) = conn(&mut conns, node).await else {
                continue;
            };
            match describe_quorum(client).await {
                Ok(Some((epoch, leader_id))) => {
                    if seen.insert((node, epoch, leader_id)) {
                        let at_ms = now_ms();
                        let mut h = shared.history();
                        h.note(
                            at_ms,
                            format!(
                                "quorum: keel-{node} is the active controller (leader {leader_id}, epoch {epoch})"
                            ),
                        );
                        if let Some(c) = h.cluster.as_mut() {
                            c.claims.push(QuorumClaim {
                                at_ms,
                                node,
                                epoch,
                                leader_id,
                            });
                        }
                    }
                }
                Ok(None) => {}
                Err(()) => conns[node as usize - 1] = None,
            }
        }
        if round >= plan.fault_end_ms {
            let mut views = Vec::new();
            let mut agreed: Option<i32> = None;
            let mut ok = true;
            for node in 1..=cfg.nodes {
                let view = match conn(&mut conns, node).await {
                    None => None,
                    Some(client) => match client.metadata(Some(&names)).await {
                        Ok(m) => Some(m),
                        Err(_) => {
                            conns[node as usize - 1] = None;
                            None
                        }
                    },
                };
                let Some(m) = view else {
                    ok = false;
                    views.push(format!("keel-{node}: no answer"));
                    continue;
                };
                let mut brokers: Vec<i32> = m.brokers.iter().map(|b| b.node_id).collect();
                brokers.sort_unstable();
                let missing: Vec<&str> = cfg
                    .topics
                    .iter()
                    .filter(|t| !topic_led_by(&m, &t.info.name, t.info.partitions, t.node))
                    .map(|t| t.info.name.as_str())
                    .collect();
                views.push(format!(
                    "keel-{node}: controller {}, brokers {brokers:?}{}",
                    m.controller_id,
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!(", topics not on their node: {missing:?}")
                    }
                ));
                let same = match agreed {
                    None => {
                        agreed = Some(m.controller_id);
                        true
                    }
                    Some(c) => c == m.controller_id,
                };
                ok &= same && m.controller_id >= 1 && brokers == all && missing.is_empty();
            }
            let at = now_ms();
            let mut h = shared.history();
            if let Some(c) = h.cluster.as_mut() {
                c.last_views = views;
                if ok {
                    let controller = agreed.unwrap_or(-1);
                    c.converged = Some((at, controller));
                }
            }
            if ok {
                h.note(
                    at,
                    format!(
                        "quorum: every node names controller keel-{} and lists every broker",
                        agreed.unwrap_or(-1)
                    ),
                );
                return Ok(());
            }
        }
        tokio::time::sleep(cfg.every).await;
    }
}

async fn conn(conns: &mut [Option<SimClient>], node: u32) -> Option<&mut SimClient> {
    let slot = &mut conns[node as usize - 1];
    if slot.is_none() {
        *slot = connect("quorum-observer", &host(node), OBSERVER_TIMEOUT)
            .await
            .ok();
    }
    slot.as_mut()
}

/// `(leader_epoch, leader_id)` if the node answered as the active controller; `Err` when the
/// connection failed.
async fn describe_quorum(client: &mut SimClient) -> Result<Option<(i32, i32)>, ()> {
    let request = codec::DescribeQuorumRequest {
        topics: vec![codec::DescribeQuorumTopic {
            topic_name: METADATA_TOPIC.to_string(),
            partitions: vec![codec::DescribeQuorumPartition { partition_index: 0 }],
        }],
    };
    match client
        .call(RequestBody::DescribeQuorum(request), Duration::ZERO)
        .await
    {
        Ok(Some(ResponseBody::DescribeQuorum(r))) => {
            if r.error_code != 0 {
                return Ok(None);
            }
            Ok(r.topics
                .iter()
                .find(|t| t.topic_name == METADATA_TOPIC)
                .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0))
                .filter(|p| p.error_code == 0)
                .map(|p| (p.leader_epoch, p.leader_id)))
        }
        Ok(_) => Ok(None),
        Err(_) => Err(()),
    }
}
