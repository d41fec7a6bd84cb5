//! The Raft driver loop: runs one [`RaftNode`] over a [`StorageLog`] and any [`Network`]
//! (tokio for `keel serve`, turmoil for keel-sim), with a [`RaftApp`] state machine.
//!
//! The loop is: wait for the first of a finished flush, a peer message, a client request or
//! the node's deadline (`select!` is `biased;` throughout, so a seeded runtime replays);
//! feed it to the node; drain `poll_output`; re-arm the timer. `Persist` becomes a
//! [`FlushJob`] run by one flusher task in order (through the [`SyncMode`], so the
//! simulator's slow disk sleeps in simulated time); `persisted` is called only once its job
//! returned, which is what releases the node's held votes and acknowledgements. A failed
//! flush stops the driver with an error: what it wrote is not durable and the node must
//! restart from what is (the supervisor's job).
//!
//! Connections are [`super::transport`]'s, shared with the broker driver: one outbound
//! connection per peer, every inbound one read by its own task. Messages that do not fit a
//! bounded queue are dropped: Raft tolerates loss.
//!
//! Clock: the node's `now` is milliseconds since the driver started, scaled by
//! `clock_permille` (1000 = true rate), so the simulator can skew each node's timers.

use super::codec::PeerMsg;
use super::transport::{self, ConnOptions};
use crate::network::{Network, SyncMode};
use keel_core::raft_log::{FlushJob, OpenError, StorageLog};
use keel_core::storage::Storage;
use keel_raft::{
    Config, EntryData, Index, InitError, Instant, NodeId, Output, ProposeError, RaftLog, RaftNode,
    ReadError, Role, SnapshotMeta, Term,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// The replicated state machine the driver applies committed entries to.
pub trait RaftApp: Send + 'static {
    /// Applies the committed entry at `index`; the result answers its proposer.
    fn apply(&mut self, index: Index, data: &[u8]) -> Vec<u8>;
    /// Answers a read (called once the read index is applied).
    fn query(&mut self, query: &[u8]) -> Vec<u8>;
    /// Replaces the state with a snapshot's bytes.
    fn restore(&mut self, data: &[u8]);
}

/// Why a client request was not answered with a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    /// Not the leader (definite: nothing was done); try `hint`.
    NotLeader {
        /// The leader this node knows of.
        hint: Option<NodeId>,
    },
    /// Another entry committed at the proposal's index (definite: it will never apply).
    Lost,
    /// Leadership was lost after the proposal: it may or may not commit.
    Unknown,
    /// Too many requests are waiting.
    Busy,
}

/// A client request to the node.
#[derive(Debug)]
pub enum Request {
    /// Propose `data`; answered with the state machine's result once applied.
    Write {
        /// The command.
        data: Vec<u8>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<u8>, ClientError>>,
    },
    /// A linearizable read (ReadIndex).
    Read {
        /// The query.
        query: Vec<u8>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<u8>, ClientError>>,
    },
}

/// What the driver tells an observer (the simulator's invariant checks, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The node's role changed.
    Role {
        /// The new role.
        role: Role,
        /// Its term.
        term: Term,
    },
    /// The entry at `index` (of `term`) was applied.
    Applied {
        /// Its index.
        index: Index,
        /// Its term.
        term: Term,
        /// Its payload (empty for no-ops and membership entries).
        data: Vec<u8>,
    },
}

/// How to run one node.
#[derive(Clone)]
pub struct PeerOptions {
    /// The cluster's id (connections from other clusters are refused).
    pub cluster: u64,
    /// The node's Raft configuration (its id included).
    pub raft: Config,
    /// The initial membership of a new group.
    pub initial: SnapshotMeta,
    /// Where to listen for peers.
    pub listen: SocketAddr,
    /// Every other voter's peer address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The node's RNG seed.
    pub seed: u64,
    /// The node's clock rate in thousandths of true time.
    pub clock_permille: u64,
    /// How flushes run.
    pub sync: SyncMode,
    /// The directory of the Raft files in the storage.
    pub dir: String,
    /// A connection silent this long is presumed dead.
    pub idle_timeout: Duration,
    /// Wait between reconnection attempts.
    pub reconnect_backoff: Duration,
    /// Most requests waiting for commit or a read index.
    pub max_pending_requests: usize,
    /// Told of role changes and applied entries.
    pub observer: Option<Arc<dyn Fn(Event) + Send + Sync>>,
}

/// Why the driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The durable log could not be opened.
    #[error("open: {0}")]
    Open(#[from] OpenError),
    /// The node refused its durable state.
    #[error("raft init: {0:?}")]
    Init(InitError),
    /// Listening failed.
    #[error("listen: {0}")]
    Listen(std::io::Error),
    /// A flush failed: the node stops and restarts from what is durable.
    #[error("flush: {0}")]
    Flush(std::io::Error),
}

const PEER_QUEUE: usize = 1024;
const INBOUND_QUEUE: usize = 4096;

struct Clock {
    anchor: tokio::time::Instant,
    permille: u64,
}

impl Clock {
    fn now(&self) -> Instant {
        let ms = self.anchor.elapsed().as_millis() as u64;
        Instant(ms.saturating_mul(self.permille) / 1000)
    }
    fn at(&self, deadline: Instant) -> tokio::time::Instant {
        let ms = deadline
            .0
            .saturating_mul(1000)
            .div_ceil(self.permille.max(1));
        self.anchor + Duration::from_millis(ms)
    }
}

type Reply = oneshot::Sender<Result<Vec<u8>, ClientError>>;

/// Runs the node until a flush fails (or the task is dropped, as by a crash).
pub async fn run<N: Network, A: RaftApp>(
    net: N,
    storage: Arc<dyn Storage>,
    opts: PeerOptions,
    mut app: A,
    mut requests: mpsc::Receiver<Request>,
) -> Result<(), DriverError> {
    let (log, hard_state) = StorageLog::open(&*storage, &opts.dir, opts.initial.clone())?;
    let clock = Clock {
        anchor: tokio::time::Instant::now(),
        permille: opts.clock_permille,
    };
    let id = opts.raft.id;
    let mut node = RaftNode::new(
        opts.raft.clone(),
        log,
        hard_state,
        Index(0),
        opts.seed,
        clock.now(),
    )
    .map_err(DriverError::Init)?;
    if node.log().snapshot_meta().index > Index(0) {
        app.restore(&node.log().snapshot().data);
    }
    // Every task the driver starts goes through `net.spawn` (see `Network::spawn`: what a
    // simulated crash drops, and in which order, must not depend on the process).
    let mut tasks = JoinSet::new();
    let listener = net.bind(opts.listen).await.map_err(DriverError::Listen)?;
    let (in_tx, mut inbound) = mpsc::channel::<(NodeId, PeerMsg)>(INBOUND_QUEUE);
    let conn = ConnOptions {
        cluster: opts.cluster,
        idle_timeout: opts.idle_timeout,
        reconnect_backoff: opts.reconnect_backoff,
    };
    net.spawn(
        &mut tasks,
        transport::accept_peers(net.clone(), listener, in_tx, conn),
    );
    let mut outbound = BTreeMap::new();
    for (&peer, &addr) in &opts.peers {
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        outbound.insert(peer, tx);
        net.spawn(
            &mut tasks,
            transport::connect_peer(net.clone(), addr, id, rx, conn),
        );
    }
    let (job_tx, mut job_rx) = mpsc::unbounded_channel::<(u64, FlushJob)>();
    let (done_tx, mut done) = mpsc::unbounded_channel::<Result<u64, std::io::Error>>();
    let sync = opts.sync.clone();
    let flush_storage = storage.clone();
    net.spawn(&mut tasks, async move {
        while let Some((seq, job)) = job_rx.recv().await {
            let s = flush_storage.clone();
            let r = sync.run(move || job.run(&*s)).await.map(|()| seq);
            let failed = r.is_err();
            if done_tx.send(r).is_err() || failed {
                return;
            }
        }
    });

    let observe = |e: Event| {
        if let Some(o) = &opts.observer {
            o(e);
        }
    };
    let mut writes: BTreeMap<Index, (Term, Reply)> = BTreeMap::new();
    let mut reads: BTreeMap<u64, (Vec<u8>, Reply)> = BTreeMap::new();
    let mut ready_reads: BTreeMap<Index, Vec<u64>> = BTreeMap::new();
    let mut next_ctx = 0u64;
    loop {
        let deadline = node.next_deadline();
        let sleep_until = deadline.map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(3600),
            |d| clock.at(d),
        );
        tokio::select! {
            biased;
            r = done.recv() => match r {
                Some(Ok(seq)) => node.persisted(clock.now(), seq),
                Some(Err(e)) => return Err(DriverError::Flush(e)),
                None => return Err(DriverError::Flush(std::io::Error::other("flusher stopped"))),
            },
            Some((from, msg)) = inbound.recv() => {
                if let PeerMsg::Raft(msg) = msg {
                    node.step(clock.now(), from, msg);
                }
            }
            Some(req) = requests.recv() => {
                let pending = writes.len() + reads.len();
                match req {
                    Request::Write { data, reply } => {
                        if pending >= opts.max_pending_requests {
                            let _ = reply.send(Err(ClientError::Busy));
                        } else {
                            match node.propose(clock.now(), data) {
                                Ok(index) => {
                                    writes.insert(index, (node.term(), reply));
                                }
                                Err(ProposeError::NotLeader { leader_hint }) => {
                                    let _ = reply.send(Err(ClientError::NotLeader { hint: leader_hint }));
                                }
                                Err(ProposeError::TransferInProgress) => {
                                    let _ = reply.send(Err(ClientError::NotLeader { hint: None }));
                                }
                            }
                        }
                    }
                    Request::Read { query, reply } => {
                        if pending >= opts.max_pending_requests {
                            let _ = reply.send(Err(ClientError::Busy));
                        } else {
                            next_ctx += 1;
                            match node.read_index(clock.now(), next_ctx) {
                                Ok(()) => {
                                    reads.insert(next_ctx, (query, reply));
                                }
                                Err(ReadError::NotLeader { leader_hint }) => {
                                    let _ = reply.send(Err(ClientError::NotLeader { hint: leader_hint }));
                                }
                                Err(ReadError::TooManyPending) => {
                                    let _ = reply.send(Err(ClientError::Busy));
                                }
                            }
                        }
                    }
                }
            },
            () = tokio::time::sleep_until(sleep_until) => node.tick(clock.now()),
        }
        while let Some(out) = node.poll_output() {
            match out {
                Output::Send { to, msg } => {
                    if let Some(tx) = outbound.get(&to) {
                        // A full queue drops the message: Raft tolerates loss.
                        let _ = tx.try_send(PeerMsg::Raft(msg));
                    }
                }
                Output::Persist {
                    seq, hard_state, ..
                } => {
                    let job = node.log_mut().take_flush(hard_state);
                    // The flusher only stops after reporting a failure, handled above.
                    let _ = job_tx.send((seq, job));
                }
                Output::Apply { from, to } => {
                    for e in node.log().entries(from, to, u64::MAX) {
                        let (result, data) = match &e.data {
                            EntryData::Normal(d) => (Some(app.apply(e.index, d)), d.clone()),
                            _ => (None, Vec::new()),
                        };
                        if let Some((term, reply)) = writes.remove(&e.index) {
                            let answer = match result {
                                Some(r) if term == e.term => Ok(r),
                                _ => Err(ClientError::Lost),
                            };
                            let _ = reply.send(answer);
                        }
                        observe(Event::Applied {
                            index: e.index,
                            term: e.term,
                            data,
                        });
                    }
                    let applied = node.applied_index();
                    while let Some(entry) = ready_reads.first_entry() {
                        if *entry.key() > applied {
                            break;
                        }
                        for ctx in entry.remove() {
                            if let Some((q, reply)) = reads.remove(&ctx) {
                                let _ = reply.send(Ok(app.query(&q)));
                            }
                        }
                    }
                }
                Output::RestoreSnapshot { .. } => {
                    app.restore(&node.log().snapshot().data);
                }
                Output::ReadReady { ctx, index } => {
                    if index <= node.applied_index() {
                        if let Some((q, reply)) = reads.remove(&ctx) {
                            let _ = reply.send(Ok(app.query(&q)));
                        }
                    } else {
                        ready_reads.entry(index).or_default().push(ctx);
                    }
                }
                Output::ReadFailed { ctx } => {
                    if let Some((_, reply)) = reads.remove(&ctx) {
                        let _ = reply.send(Err(ClientError::NotLeader {
                            hint: node.leader(),
                        }));
                    }
                }
                Output::RoleChanged { role, term, leader } => {
                    observe(Event::Role { role, term });
                    if role != Role::Leader {
                        // Proposals may still commit under the next leader: unknown.
                        for (_, (_, reply)) in std::mem::take(&mut writes) {
                            let _ = reply.send(Err(ClientError::Unknown));
                        }
                        for (_, (_, reply)) in std::mem::take(&mut reads) {
                            let _ = reply.send(Err(ClientError::NotLeader { hint: leader }));
                        }
                        ready_reads.clear();
                    }
                }
            }
        }
    }
}
