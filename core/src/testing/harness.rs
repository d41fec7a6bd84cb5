//! [`Harness`] owns one [`Node`] under test and plays its driver: a virtual clock, request
//! ids, the storage (a [`MemStorage`], or a [`super::FaultyStorage`] over one), flushes done
//! at once or held back, answers gathered by request id, and restarts over the same files
//! with the next seed.
//!
//! It has two ways of driving, as the tests need: by hand (`send`, `outputs`, `call`,
//! `complete_flushes`: the broker's tests, which assert the exact outputs), and pumped
//! (`pump`, `take`, `release_flushes`: the group tests, which act on every output and look
//! answers up by id). A suite that needs more wraps it and derefs to it (broker/tests_*.rs,
//! group/tests.rs).

use crate::api::{ConnId, CreatableTopic, CreateTopicsRequest, Request, RequestId, Response};
use crate::error::ErrorCode;
use crate::ids::Offset;
use crate::node::{Input, LogId, Node, NodeConfig, Output};
use crate::storage::{MemStorage, Storage};
use crate::time::Instant;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The virtual clock's start, in Unix milliseconds.
pub(crate) const T0: u64 = 1_700_000_000_000;

/// The seed of a harness's first node; each restart takes the next.
pub(crate) const SEED: u64 = 7;

/// A Flush output not performed yet: (log, files, upto).
pub(crate) type HeldFlush = (LogId, Vec<String>, Offset);

pub(crate) struct Harness {
    pub(crate) node: Node,
    /// The files, which flushes sync and tests inspect.
    pub(crate) disk: MemStorage,
    /// What the node reads and writes through: `disk` itself or a faulty storage over it.
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) config: NodeConfig,
    pub(crate) now: Instant,
    /// The seed the node was opened with.
    pub(crate) seed: u64,
    /// [`Harness::pump`] keeps Flush outputs in `held` instead of performing them.
    pub(crate) hold_flushes: bool,
    pub(crate) held: Vec<HeldFlush>,
    next_id: RequestId,
    /// Answers gathered by [`Harness::pump`], by request id; a second answer to one request
    /// fails the test.
    responses: BTreeMap<RequestId, Response>,
}

impl Harness {
    pub(crate) fn new() -> Harness {
        Harness::open(MemStorage::new())
    }

    pub(crate) fn open(disk: MemStorage) -> Harness {
        let storage = Arc::new(disk.clone());
        Harness::with_storage(NodeConfig::default(), storage, disk)
    }

    /// A node with `config` over `storage`, which keeps its files in `disk` (a wrapper
    /// that injects faults, or `disk` itself).
    pub(crate) fn with_storage(
        config: NodeConfig,
        storage: Arc<dyn Storage>,
        disk: MemStorage,
    ) -> Harness {
        Harness::open_at(config, storage, disk, Instant::from_millis(T0))
    }

    /// [`Harness::with_storage`] opened at `now`, its start-up flushes done.
    pub(crate) fn open_at(
        config: NodeConfig,
        storage: Arc<dyn Storage>,
        disk: MemStorage,
        now: Instant,
    ) -> Harness {
        Harness::open_seeded(config, storage, disk, now, SEED, false)
    }

    /// The general open: a node from `seed` at `now`, its start-up outputs pumped (so
    /// held if `hold_flushes`).
    pub(crate) fn open_seeded(
        config: NodeConfig,
        storage: Arc<dyn Storage>,
        disk: MemStorage,
        now: Instant,
        seed: u64,
        hold_flushes: bool,
    ) -> Harness {
        let node = Node::open(config.clone(), storage.clone(), now, seed).expect("open");
        let mut h = Harness {
            node,
            disk,
            storage,
            config,
            now,
            seed,
            hold_flushes,
            held: Vec::new(),
            next_id: 1,
            responses: BTreeMap::new(),
        };
        h.pump();
        h
    }

    /// A new node over the same storage and config at the same time, as a restart does
    /// (after a clean stop only if the caller did `node.flush_all()` and completed the
    /// flushes first). Every open draws from a new seed, as the drivers do (`Node::open`).
    pub(crate) fn restart(self) -> Harness {
        Harness::open_seeded(
            self.config,
            self.storage,
            self.disk,
            self.now,
            self.seed + 1,
            self.hold_flushes,
        )
    }

    pub(crate) fn send_on(&mut self, conn: ConnId, request: Request) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.node
            .handle(self.now, Input::Request { conn, id, request });
        id
    }

    pub(crate) fn send(&mut self, request: Request) -> RequestId {
        self.send_on(1, request)
    }

    /// Moves the clock on by `ms` and ticks; the outputs are left to the caller.
    pub(crate) fn advance(&mut self, ms: u64) {
        self.now = self.now + Duration::from_millis(ms);
        self.node.handle(self.now, Input::Tick);
    }

    pub(crate) fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.node.poll_output()).collect()
    }

    /// Sends a request that must be answered at once; returns the answer and leaves any
    /// Flush outputs undone.
    pub(crate) fn call(&mut self, request: Request) -> (Response, Vec<HeldFlush>) {
        let id = self.send(request);
        let mut response = None;
        let mut flushes = Vec::new();
        for out in self.outputs() {
            match out {
                Output::Respond {
                    id: rid,
                    response: r,
                    ..
                } if rid == id => response = Some(r),
                Output::Respond { .. } => panic!("unexpected response"),
                Output::Flush { log, files, upto } => flushes.push((log, files, upto)),
                Output::SendPeer { .. } => panic!("a single node sends no peer messages"),
            }
        }
        (response.expect("answered at once"), flushes)
    }

    /// Acts as the driver: performs every pending Flush and feeds back Flushed, returning
    /// the responses that it released, in order.
    pub(crate) fn complete_flushes(&mut self) -> Vec<(RequestId, Response)> {
        let mut released = Vec::new();
        loop {
            let outs = self.outputs();
            if outs.is_empty() {
                return released;
            }
            for out in outs {
                match out {
                    Output::Flush { log, files, upto } => self.flush(log, &files, upto),
                    Output::Respond { id, response, .. } => released.push((id, response)),
                    Output::SendPeer { .. } => panic!("a single node sends no peer messages"),
                }
            }
        }
    }

    /// Acts on every output until there are none: answers are kept for [`Harness::take`],
    /// flushes performed (or held, with `hold_flushes`).
    pub(crate) fn pump(&mut self) {
        loop {
            let outs = self.outputs();
            if outs.is_empty() {
                return;
            }
            for out in outs {
                match out {
                    Output::Respond { id, response, .. } => {
                        let earlier = self.responses.insert(id, response);
                        assert!(earlier.is_none(), "request {id} answered twice");
                    }
                    Output::Flush { log, files, upto } if self.hold_flushes => {
                        self.held.push((log, files, upto))
                    }
                    Output::Flush { log, files, upto } => self.flush(log, &files, upto),
                    Output::SendPeer { .. } => panic!("a single node sends no peer messages"),
                }
            }
        }
    }

    /// Performs every held flush, then pumps.
    pub(crate) fn release_flushes(&mut self) {
        for (log, files, upto) in std::mem::take(&mut self.held) {
            self.flush(log, &files, upto);
        }
        self.pump();
    }

    /// The answer [`Harness::pump`] gathered for `id`, if any; taken, so that a second
    /// answer is seen.
    pub(crate) fn take(&mut self, id: RequestId) -> Option<Response> {
        self.responses.remove(&id)
    }

    /// Makes `files` durable and tells the node, as the driver does with a Flush.
    pub(crate) fn flush(&mut self, log: LogId, files: &[String], upto: Offset) {
        for f in files {
            self.disk.sync(f).unwrap();
        }
        self.node.handle(self.now, Input::Flushed { log, upto });
    }

    /// Creates `name` with `partitions` partitions, which must succeed; its Flushes are
    /// left undone.
    pub(crate) fn create(&mut self, name: &str, partitions: i32) {
        let (r, _) = self.call(create_topic(name, partitions));
        let Response::CreateTopics(r) = r else {
            panic!()
        };
        assert_eq!(
            r.topics[0].error_code,
            ErrorCode::NONE,
            "{:?}",
            r.topics[0].error_message
        );
    }
}

/// A CreateTopics request for one topic of `partitions` partitions with default configs.
pub(crate) fn create_topic(name: &str, partitions: i32) -> Request {
    Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: -1,
            ..Default::default()
        }],
        timeout_ms: 1000,
        validate_only: false,
    })
}
