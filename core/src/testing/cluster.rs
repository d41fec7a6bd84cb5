//! [`TestCluster`]: several [`Node`]s of one cluster under test, driven together by one
//! virtual clock, the way keel-net's driver drives each: peer messages are delivered after
//! a fixed latency (or dropped across a cut link), flushes sync their files and are
//! acknowledged a millisecond later, and timers fire at their deadlines. Deterministic: the
//! same calls give the same history.

use super::harness::T0;
use crate::api::{ConnId, Request, RequestId, Response};
use crate::ids::{NodeId, Offset};
use crate::node::{ClusterConfig, Input, LogId, Node, NodeConfig, Output, PeerMessage};
use crate::storage::{MemStorage, Storage};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// One peer message's or flush's trip.
const LATENCY: Duration = Duration::from_millis(1);

enum Event {
    Peer {
        from: NodeId,
        to: NodeId,
        message: PeerMessage,
    },
    Flushed {
        node: NodeId,
        log: LogId,
        upto: Offset,
    },
}

pub(crate) struct Member {
    pub(crate) node: Option<Node>,
    pub(crate) disk: MemStorage,
    pub(crate) config: NodeConfig,
    starts: u64,
}

pub(crate) struct TestCluster {
    pub(crate) members: BTreeMap<NodeId, Member>,
    pub(crate) now: Instant,
    events: BTreeMap<(Instant, u64), Event>,
    next_event: u64,
    /// Links that drop everything, one way: (from, to).
    pub(crate) cut: BTreeSet<(NodeId, NodeId)>,
    next_request: RequestId,
    responses: BTreeMap<(NodeId, RequestId), Response>,
}

impl TestCluster {
    /// Brokers 1..=n, every one a voter, opened at T0.
    pub(crate) fn new(n: i32) -> TestCluster {
        TestCluster::over(n, BTreeMap::new())
    }

    /// [`TestCluster::new`] with some brokers over files they already hold.
    pub(crate) fn over(n: i32, mut disks: BTreeMap<NodeId, MemStorage>) -> TestCluster {
        let voters: BTreeSet<NodeId> = (1..=n).map(NodeId).collect();
        let mut members = BTreeMap::new();
        for &id in &voters {
            let config = NodeConfig {
                node_id: id,
                advertised_host: format!("broker{}", id.0),
                advertised_port: 9092,
                cluster: Some(ClusterConfig::new(voters.clone())),
                ..NodeConfig::default()
            };
            members.insert(
                id,
                Member {
                    node: None,
                    disk: disks.remove(&id).unwrap_or_default(),
                    config,
                    starts: 0,
                },
            );
        }
        let mut cluster = TestCluster {
            members,
            now: Instant::from_millis(T0),
            events: BTreeMap::new(),
            next_event: 0,
            cut: BTreeSet::new(),
            next_request: 1,
            responses: BTreeMap::new(),
        };
        for id in voters {
            cluster.start(id);
        }
        cluster
    }

    /// Opens broker `id` over its files (a restart if it ran before).
    pub(crate) fn start(&mut self, id: NodeId) {
        let m = self.members.get_mut(&id).expect("a member");
        let storage: Arc<dyn Storage> = Arc::new(m.disk.clone());
        let seed = u64::from(id.0 as u32) * 1_000 + m.starts;
        m.starts += 1;
        m.node = Some(Node::open(m.config.clone(), storage, self.now, seed).expect("open"));
        self.drain(id);
    }

    /// Stops broker `id` at once, as kill -9 does (its files stay as written: MemStorage
    /// loses nothing, so this is a crash without disk loss).
    pub(crate) fn kill(&mut self, id: NodeId) {
        self.members.get_mut(&id).expect("a member").node = None;
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        self.members[&id].node.as_ref().expect("running")
    }

    /// Runs the cluster for `ms` of virtual time.
    pub(crate) fn run_for(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(at) = self.next_time().filter(|&at| at <= end) {
            self.now = self.now.max(at);
            self.step();
        }
        self.now = end;
    }

    /// Runs until `done` holds, for at most `ms`; whether it came to hold.
    pub(crate) fn run_until(&mut self, ms: u64, done: impl Fn(&TestCluster) -> bool) -> bool {
        let end = self.now + Duration::from_millis(ms);
        while !done(self) {
            match self.next_time().filter(|&at| at <= end) {
                Some(at) => {
                    self.now = self.now.max(at);
                    self.step();
                }
                None => return false,
            }
        }
        true
    }

    /// Sends `request` to broker `to` and runs until it is answered (at most `ms`).
    pub(crate) fn call(&mut self, to: NodeId, request: Request, ms: u64) -> Option<Response> {
        let id = self.next_request;
        self.next_request += 1;
        let conn: ConnId = 1;
        if let Some(node) = self.members.get_mut(&to).and_then(|m| m.node.as_mut()) {
            node.handle(self.now, Input::Request { conn, id, request });
        }
        self.drain(to);
        self.run_until(ms, |c| c.responses.contains_key(&(to, id)));
        self.responses.remove(&(to, id))
    }

    fn next_time(&self) -> Option<Instant> {
        let event = self.events.keys().next().map(|&(at, _)| at);
        let timers = self
            .members
            .values()
            .filter_map(|m| m.node.as_ref()?.next_deadline());
        event.into_iter().chain(timers).min()
    }

    /// Delivers every event due now, then ticks every node whose deadline passed.
    fn step(&mut self) {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            match entry.remove() {
                Event::Peer { from, to, message } => {
                    if let Some(node) = self.members.get_mut(&to).and_then(|m| m.node.as_mut()) {
                        node.handle(self.now, Input::Peer { from, message });
                        self.drain(to);
                    }
                }
                Event::Flushed { node, log, upto } => {
                    if let Some(n) = self.members.get_mut(&node).and_then(|m| m.node.as_mut()) {
                        n.handle(self.now, Input::Flushed { log, upto });
                        self.drain(node);
                    }
                }
            }
        }
        let due: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.node
                    .as_ref()
                    .and_then(Node::next_deadline)
                    .is_some_and(|d| d <= self.now)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            if let Some(node) = self.members.get_mut(&id).and_then(|m| m.node.as_mut()) {
                node.handle(self.now, Input::Tick);
            }
            self.drain(id);
        }
    }

    fn push(&mut self, after: Duration, event: Event) {
        self.next_event += 1;
        self.events
            .insert((self.now + after, self.next_event), event);
    }

    /// Acts on every output broker `id` has queued.
    fn drain(&mut self, id: NodeId) {
        loop {
            let Some(m) = self.members.get_mut(&id) else {
                return;
            };
            let Some(node) = m.node.as_mut() else { return };
            let Some(output) = node.poll_output() else {
                return;
            };
            match output {
                Output::Respond {
                    id: request,
                    response,
                    ..
                } => {
                    let earlier = self.responses.insert((id, request), response);
                    assert!(earlier.is_none(), "request {request} answered twice");
                }
                Output::Flush { log, files, upto } => {
                    for f in &files {
                        m.disk.sync(f).expect("sync");
                    }
                    self.push(
                        LATENCY,
                        Event::Flushed {
                            node: id,
                            log,
                            upto,
                        },
                    );
                }
                Output::SendPeer { to, message } => {
                    assert_ne!(to, id, "a broker sends nothing to itself");
                    if !self.cut.contains(&(id, to)) {
                        self.push(
                            LATENCY,
                            Event::Peer {
                                from: id,
                                to,
                                message,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Cuts broker `id` off from every other, both ways.
    pub(crate) fn isolate(&mut self, id: NodeId) {
        for &other in self.members.keys() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    /// Heals every cut link.
    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    /// The active controller every running broker agrees on, if they all agree.
    pub(crate) fn agreed_controller(&self) -> Option<NodeId> {
        let mut seen = self
            .members
            .values()
            .filter_map(|m| m.node.as_ref())
            .map(|n| n.controller_id());
        let first = seen.next()??;
        seen.all(|c| c == Some(first)).then_some(first)
    }
}
