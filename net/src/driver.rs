//! The driver: runs one [`Node`] over a network, a clock and a disk.
//!
//! It owns everything the core must not: sockets, framing, timers and fsyncs. The shape is
//! quinn's `ConnectionDriver`: one task owns the node and loops *feed one input → drain every
//! output → re-arm the timer*; everything else talks to it over channels.
//!
//! - **Node task** ([`run`]): inputs come from the flusher (durability first), the timer, and
//!   the connections (requests, accepted sockets, disconnects), in that `biased;` order.
//!   `Respond` outputs are routed to the connection's writer; `Flush` outputs to the flusher.
//! - **Flusher**: group commit. Flushes that arrive while a batch is being synced wait and
//!   go together into the next batch; each distinct file is synced once per batch, then
//!   every log in the batch gets one `Flushed` (its largest `upto`) or `FlushFailed`. How the
//!   blocking fsync runs is the [`SyncMode`]: `spawn_blocking` in production, inline in the
//!   simulator (after a simulated delay when it models a slow disk).
//! - **Connections**: a reader and a writer per socket. The reader reads one frame at a time
//!   (the length prefix is checked against `max_request_bytes` before anything is allocated,
//!   then the frame is read into one buffer whose slices become the records, zero-copy),
//!   decodes it, answers ApiVersions itself, and forwards everything else to the node. It
//!   takes one of `max_inflight_per_connection` permits per request and stops reading when
//!   none is left (backpressure). The writer puts responses back in request order, since
//!   the core answers out of order (acks=-1 waits for fsync, fetches long-poll). A produce
//!   with acks=0 gets no response; if the core's answer carries an error the connection is
//!   closed, as Kafka does, so the client notices.
//! - **Bad input** (an unreadable header, a malformed body, an unsupported API, a frame over
//!   the limit, a truncated frame) closes that one connection with a `warn!` naming the peer
//!   and the reason; an ApiVersions request of a version above ours gets a v0 response with
//!   UNSUPPORTED_VERSION and our ranges (KAFKA.md §2).
//!
//! Time is `wall_clock_at_start + (tokio::time::Instant::now() - start)`: monotonic, read
//! once from the wall clock, and simulated under turmoil. Nothing here reads `std::time`
//! apart from [`serve_with_listener`], the production entry point, which takes the anchor.
//!
//! The core's storage calls (appends, reads) run on the node task: the core's `Storage` is
//! synchronous by design and they hit the page cache; only fsyncs are moved off it.

use crate::api_map;
use crate::codec::{self, ApiKey, RequestError, ResponseBody};
use crate::fd_budget::{self, FdBudget};
use crate::fs_storage::FsStorage;
use crate::metrics::{
    self, GroupOffsetGauges, Metrics, NodeGauges, NodeState, PartitionGauges, ProbeRequest,
};
use crate::network::{Listener, Network, Stream, SyncMode, Tokio};
use crate::peer::codec::{self as peer_codec, PeerMsg};
use crate::peer::transport::{self, ConnOptions};
use bytes::{Bytes, BytesMut};
use keel_core::api::{self, ConnId, RequestId};
use keel_core::ids::{NodeId, Offset};
use keel_core::node::{Input, LogId, Node, NodeConfig, OpenError, Output};
use keel_core::storage::Storage;
use keel_core::time::Instant;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Kafka's socket.request.max.bytes default: the largest request frame accepted.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// Requests a connection may have in flight before the driver stops reading from it.
pub const DEFAULT_MAX_INFLIGHT_PER_CONNECTION: usize = 100;

/// Events from connections to the node task that may queue before it blocks them.
const EVENT_QUEUE: usize = 1024;

/// A frame buffer starts at most this big and grows as bytes arrive, so a peer that
/// announces a large frame and sends nothing does not get the whole size allocated up front.
const INITIAL_FRAME_CAPACITY: usize = 1 << 20;

/// After shutdown has flushed everything, how long writers get to deliver what was released.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long the accept loop waits after an accept error (e.g. out of file descriptors),
/// doubling while the errors go on, up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// File syncs the flusher runs at once. Enough for a device (and ext4's journal) to merge
/// them; few enough that a batch over thousands of files does not park hundreds of
/// blocking threads on the storage's descriptor cap.
const MAX_CONCURRENT_SYNCS: usize = 32;

/// How often the driver measures the data directory's free space for the core's floor
/// (broker/disk.rs), which also counts its own writes in between: another program filling
/// the disk is noticed within this long.
const DISK_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// What `keel serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub node: NodeConfig,
    /// Kafka's socket.request.max.bytes.
    pub max_request_bytes: usize,
    pub max_inflight_per_connection: usize,
    /// Seeds the node's randomness.
    pub seed: u64,
    /// In a cluster: where to listen for other brokers and where each of them listens.
    pub peers: Option<PeerConfig>,
}

/// A cluster broker's peer endpoints.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Where this broker listens for the others (`--peer-listen`).
    pub listen: SocketAddr,
    /// Every other broker's peer address, by id (from `--voters`).
    pub addrs: BTreeMap<NodeId, SocketAddr>,
}

/// A cluster broker's peer transport as the driver runs it, over any network: the bound
/// peer listener, the other brokers' addresses and how connections behave.
pub struct Peers<N: Network> {
    pub net: N,
    pub listener: N::Listener,
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    pub options: ConnOptions,
}

/// How long a peer connection may stay silent before it is presumed lost (a peer sends at
/// least a heartbeat every 100 ms while it leads, and a `Pong` back within 100 ms).
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Wait between attempts to reach a peer that is down.
pub const PEER_RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// The longest a clean shutdown waits for its leadership to move to another broker.
const HAND_OVER_MAX: Duration = Duration::from_secs(2);

/// Messages to one peer that may queue before more are dropped.
const PEER_QUEUE: usize = 4096;

/// Why the driver could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listen address could not be bound; `listener` says which ("Kafka" or "metrics").
    #[error("cannot open the {listener} listener on {addr}: {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    /// The data directory is locked by another broker, or cannot be created or written.
    #[error(transparent)]
    DataDir(#[from] crate::data_dir::DataDirError),
    /// The node could not recover its state from storage.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The listener could not report its address.
    #[error("listener: {0}")]
    Listener(io::Error),
    /// The flusher task died (a panic in `Storage::sync`): nothing can become durable.
    #[error("the flusher stopped; nothing can be made durable")]
    FlusherStopped,
    /// The node hit a storage failure it cannot serve through (a failed fsync); restarting
    /// recovers every log from what is on disk.
    #[error("storage failure, stopping: {0}")]
    Storage(String),
}

/// Everything [`run`] needs besides the node's own config, the listener and the storage.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub max_request_bytes: usize,
    pub max_inflight_per_connection: usize,
    pub seed: u64,
    pub sync_mode: SyncMode,
    /// The wall-clock time at which the driver starts; the simulator passes its epoch.
    pub wall_clock_at_start: Instant,
}

/// Binds `config.listen`, opens the data dir, runs until `shutdown` resolves, then stops
/// accepting, lets in-flight work finish or drop, flushes every log
/// ([`Node::flush_all`], then waits until [`Node::is_quiescent`]) and returns.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    serve_with_metrics(config, None, shutdown).await
}

/// [`serve`], and with `metrics_listen` an HTTP listener there serving the run's
/// [`Metrics`] at `/metrics` (Prometheus text format) and its state at `/health`
/// ([`metrics::serve_http`]). Without it nothing but the Kafka listener is opened.
pub async fn serve_with_metrics(
    config: ServeConfig,
    metrics_listen: Option<SocketAddr>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    // The descriptor budget, then the data directory, before anything is read or bound: a
    // second broker on a directory in use must say so, not that the first one holds the port.
    let start = fd_budget::at_start_up();
    let budget = start.budget;
    let storage = FsStorage::with_max_open_files(&config.data_dir, budget.max_open_files)?;
    let bind = |listener: &'static str, addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind {
                listener,
                addr,
                source,
            })
    };
    let listener = bind("Kafka", config.listen).await?;
    let peers = bind_peers(&config).await?;
    let metrics = Metrics::new();
    // Bound before the node opens, so /health answers "starting" during recovery.
    let _http = match metrics_listen {
        Some(addr) => {
            let http = bind("metrics", addr).await?;
            let local = http.local_addr().map_err(ServeError::Listener)?;
            tracing::info!(%local, "serving metrics at /metrics and /health");
            let task = tokio::spawn(metrics::serve_http(http, Arc::clone(&metrics)));
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    start.log();
    serve_on(config, listener, peers, storage, budget, metrics, shutdown).await
}

/// The peer transport of `keel serve` over TCP, its listener bound; `None` for a single
/// node.
async fn bind_peers(config: &ServeConfig) -> Result<Option<Peers<Tokio>>, ServeError> {
    let Some(p) = &config.peers else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(p.listen)
        .await
        .map_err(|source| ServeError::Bind {
            listener: "peer",
            addr: p.listen,
            source,
        })?;
    Ok(Some(Peers {
        net: Tokio,
        listener,
        addrs: p.addrs.clone(),
        options: ConnOptions {
            cluster: peer_codec::cluster_hash(&config.node.cluster_id),
            idle_timeout: PEER_IDLE_TIMEOUT,
            reconnect_backoff: PEER_RECONNECT_BACKOFF,
        },
    }))
}

/// [`serve`] on an already-bound listener (`config.listen` is ignored): tests bind port 0.
/// If `config.node.advertised_port` is 0 the bound port is advertised.
pub async fn serve_with_listener(
    config: ServeConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    serve_with_listener_and_metrics(config, listener, Metrics::new(), shutdown).await
}

/// [`serve_with_listener`], recording into `metrics`.
pub async fn serve_with_listener_and_metrics(
    config: ServeConfig,
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let start = fd_budget::at_start_up();
    let budget = start.budget;
    let storage = FsStorage::with_max_open_files(&config.data_dir, budget.max_open_files)?;
    start.log();
    let peers = bind_peers(&config).await?;
    serve_on(config, listener, peers, storage, budget, metrics, shutdown).await
}

/// Runs the broker over an opened (and so locked) data directory, within `budget`'s
/// connections.
async fn serve_on(
    mut config: ServeConfig,
    listener: tokio::net::TcpListener,
    peers: Option<Peers<Tokio>>,
    storage: FsStorage,
    budget: FdBudget,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    if config.node.advertised_port == 0 {
        let addr = Listener::local_addr(&listener).map_err(ServeError::Listener)?;
        config.node.advertised_port = i32::from(addr.port());
    }
    // DescribeLogDirs names the directory by its absolute path, as Kafka does.
    config.node.log_dir = std::fs::canonicalize(&config.data_dir)
        .unwrap_or_else(|_| config.data_dir.clone())
        .display()
        .to_string();
    let options = DriverOptions {
        max_request_bytes: config.max_request_bytes,
        max_inflight_per_connection: config.max_inflight_per_connection,
        seed: config.seed,
        sync_mode: SyncMode::SpawnBlocking,
        wall_clock_at_start: wall_clock_now(),
    };
    let files = storage.clone();
    metrics.attach_file_cache(Some(Box::new(move || files.file_cache_stats())));
    let storage = Arc::new(storage);
    let limit = Some(budget.max_connections);
    run_budgeted(
        listener,
        peers,
        config.node,
        storage,
        options,
        metrics,
        limit,
        shutdown,
    )
    .await
}

/// The real wall clock, read once at start by the production entry point.
pub fn wall_clock_now() -> Instant {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Instant::from_nanos(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
}

/// Maps tokio time (simulated under turmoil) to the core's [`Instant`] and back.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_clock_at_start: Instant,
    start: tokio::time::Instant,
}

impl Clock {
    /// A clock that reads `wall_clock_at_start` now.
    pub fn new(wall_clock_at_start: Instant) -> Clock {
        Clock {
            wall_clock_at_start,
            start: tokio::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.wall_clock_at_start + self.start.elapsed()
    }

    /// The tokio instant at which the core's `at` is reached.
    pub fn deadline(&self, at: Instant) -> tokio::time::Instant {
        self.start + at.saturating_duration_since(self.wall_clock_at_start)
    }
}

/// Runs a node over `listener` and `storage` until `shutdown` resolves; see the module docs.
/// This is the one driver both `keel serve` and the simulator run.
pub async fn run<L: Listener>(
    listener: L,
    node_config: NodeConfig,
    storage: Arc<dyn Storage>,
    options: DriverOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let metrics = Metrics::new();
    run_with_metrics(listener, node_config, storage, options, metrics, shutdown).await
}

/// [`run`], recording into `metrics` (which this run owns: see [`crate::metrics`]) and
/// keeping its node state current for `/health`.
pub async fn run_with_metrics<L: Listener>(
    listener: L,
    node_config: NodeConfig,
    storage: Arc<dyn Storage>,
    options: DriverOptions,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    run_budgeted(
        listener,
        None::<Peers<Tokio>>,
        node_config,
        storage,
        options,
        metrics,
        None,
        shutdown,
    )
    .await
}

/// [`run_with_metrics`] for one broker of a cluster, with its peer transport over `peers`'
/// network (the simulator's, or TCP).
pub async fn run_cluster_member<L: Listener, N: Network>(
    listener: L,
    peers: Peers<N>,
    node_config: NodeConfig,
    storage: Arc<dyn Storage>,
    options: DriverOptions,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    run_budgeted(
        listener,
        Some(peers),
        node_config,
        storage,
        options,
        metrics,
        None,
        shutdown,
    )
    .await
}

/// [`run_with_metrics`] serving at most `max_connections` clients at once (`None`: no
/// limit, as in the simulator); one more is accepted and closed at once.
#[allow(clippy::too_many_arguments)]
async fn run_budgeted<L: Listener, N: Network>(
    listener: L,
    peers: Option<Peers<N>>,
    node_config: NodeConfig,
    storage: Arc<dyn Storage>,
    options: DriverOptions,
    metrics: Arc<Metrics>,
    max_connections: Option<usize>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    metrics.set_state(NodeState::Starting);
    let limits = (&metrics, max_connections);
    let result = drive(
        listener,
        peers,
        node_config,
        storage,
        options,
        limits,
        shutdown,
    )
    .await;
    // Whatever ended the run, scrapes must not wait on a node task that is gone.
    metrics.attach_probe(None);
    metrics.set_state(match result {
        Ok(()) => NodeState::Stopped,
        Err(_) => NodeState::Failed,
    });
    result
}

async fn drive<L: Listener, N: Network>(
    listener: L,
    peers: Option<Peers<N>>,
    node_config: NodeConfig,
    storage: Arc<dyn Storage>,
    options: DriverOptions,
    (metrics, max_connections): (&Arc<Metrics>, Option<usize>),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let clock = Clock::new(options.wall_clock_at_start);
    let mut node = Node::open(node_config, storage.clone(), clock.now(), options.seed)?;
    let space = Arc::clone(&storage);
    sample_disk(&mut node, space.as_ref(), &clock, metrics);
    let local = listener.local_addr().map_err(ServeError::Listener)?;
    tracing::info!(%local, "serving");

    let (events_tx, mut events_rx) = mpsc::channel::<Event<L::Stream>>(EVENT_QUEUE);
    let (flush_tx, flush_rx) = mpsc::unbounded_channel::<FlushJob>();
    let (flushed_tx, mut flushed_rx) = mpsc::unbounded_channel::<Input>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let flusher = tokio::spawn(flusher(
        storage,
        options.sync_mode,
        flush_rx,
        flushed_tx,
        Arc::clone(metrics),
    ));
    let mut router = Router {
        conns: BTreeMap::new(),
        flush_tx,
        peers: BTreeMap::new(),
        metrics: Arc::clone(metrics),
    };
    // Recovered data past a log's recovery point is served only once it is durable: finish
    // that flush before accepting clients, so the first answers already count every
    // recovered record (a ListOffsets for the latest offset must not go backwards).
    loop {
        router.drain(&mut node);
        if let Some(reason) = node.fatal_error() {
            return Err(ServeError::Storage(reason.to_string()));
        }
        if node.is_quiescent() {
            break;
        }
        match flushed_rx.recv().await {
            Some(input) => node.handle(clock.now(), input),
            None => return Err(ServeError::FlusherStopped),
        }
    }
    // The peer transport: its listener and one connection per other broker, each a task
    // in `peer_tasks` (dropped, so stopped, with this function).
    let (peer_tx, mut peer_rx) = mpsc::channel::<(keel_raft::NodeId, PeerMsg)>(EVENT_QUEUE);
    let mut peer_tasks = JoinSet::new();
    if let Some(p) = peers {
        let me = keel_raft::NodeId(u64::from(node.config().node_id.0.max(0) as u32));
        p.net.spawn(
            &mut peer_tasks,
            transport::accept_peers(p.net.clone(), p.listener, peer_tx.clone(), p.options),
        );
        for (&id, &addr) in &p.addrs {
            if id == node.config().node_id {
                continue;
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            router.peers.insert(id, tx);
            p.net.spawn(
                &mut peer_tasks,
                transport::connect_peer(p.net.clone(), addr, me, rx, p.options),
            );
        }
    }
    let accept = AbortOnDrop(tokio::spawn(accept_loop(
        listener,
        events_tx.clone(),
        max_connections.map(|n| Arc::new(Semaphore::new(n))),
        Arc::clone(metrics),
    )));

    let limits = Arc::new(ConnLimits {
        max_request_bytes: options.max_request_bytes,
        max_inflight: options.max_inflight_per_connection.max(1),
        next_request: AtomicU64::new(1),
    });
    let mut connections = JoinSet::new();
    let mut next_conn: ConnId = 1;
    let mut shutdown = std::pin::pin!(shutdown);
    // Scrapes ask the node task for partition and group offsets over this channel while it
    // serves.
    let (probe_tx, mut probe_rx) = mpsc::channel::<ProbeRequest>(8);
    metrics.attach_probe(Some(probe_tx));
    metrics.set_state(NodeState::Serving);
    let mut disk_timer = tokio::time::interval(DISK_SAMPLE_INTERVAL);
    disk_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // Serving.
    loop {
        router.drain(&mut node);
        if let Some(reason) = node.fatal_error() {
            tracing::error!(%reason, "stopping: a restart recovers the logs from disk");
            return Err(ServeError::Storage(reason.to_string()));
        }
        let deadline = node.next_deadline().map(|at| clock.deadline(at));
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            input = flushed_rx.recv() => match input {
                Some(input) => node.handle(clock.now(), input),
                // Nothing can become durable any more: stop rather than serve without it.
                None => return Err(ServeError::FlusherStopped),
            },
            // Before timers and clients: a heartbeat that waits behind them may cost an
            // election.
            Some((from, msg)) = peer_rx.recv() => feed_peer(&mut node, metrics, clock.now(), from, msg),
            () = sleep_until(deadline), if deadline.is_some() => node.handle(clock.now(), Input::Tick),
            _ = disk_timer.tick() => sample_disk(&mut node, space.as_ref(), &clock, metrics),
            // Before client events, so a busy broker still answers a scrape.
            Some(reply) = probe_rx.recv() => {
                let _ = reply.send(node_gauges(&node));
            }
            Some(event) = events_rx.recv() => {
                if let Some((stream, peer, slot)) = feed(&mut node, &mut router, clock.now(), event) {
                    let conn = next_conn;
                    next_conn += 1;
                    let (tx, rx) = mpsc::unbounded_channel();
                    router.conns.insert(conn, tx.clone());
                    let ctx = ConnCtx {
                        conn,
                        peer,
                        limits: limits.clone(),
                        events: events_tx.clone(),
                        stop: stop_rx.clone(),
                        metrics: Arc::clone(metrics),
                    };
                    connections.spawn(connection(ctx, stream, slot, tx, rx));
                }
            }
            Some(_) = connections.join_next() => {}
        }
    }

    // Leaving a cluster: hand the leadership over first, while still serving peers, so that
    // the others need not wait an election timeout (bounded: a hand-over that does not
    // finish is left to the election the others will hold).
    if node.hand_over_leadership() {
        let until = tokio::time::Instant::now() + HAND_OVER_MAX;
        loop {
            router.drain(&mut node);
            if !node.leads_anything() {
                tracing::info!("leadership handed over");
                break;
            }
            let deadline = node.next_deadline().map(|at| clock.deadline(at));
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(until) => break,
                input = flushed_rx.recv() => match input {
                    Some(input) => node.handle(clock.now(), input),
                    None => return Err(ServeError::FlusherStopped),
                },
                Some((from, msg)) = peer_rx.recv() => feed_peer(&mut node, metrics, clock.now(), from, msg),
                () = sleep_until(deadline), if deadline.is_some() => node.handle(clock.now(), Input::Tick),
            }
        }
    }

    // Shutting down: no new connections or requests; flush everything; deliver what the
    // flush releases.
    tracing::info!("shutting down: flushing every log");
    metrics.attach_probe(None);
    metrics.set_state(NodeState::Stopping);
    drop(accept);
    let _ = stop_tx.send(true);
    node.flush_all();
    loop {
        router.drain(&mut node);
        if node.is_quiescent() {
            break;
        }
        let deadline = node.next_deadline().map(|at| clock.deadline(at));
        tokio::select! {
            biased;
            input = flushed_rx.recv() => match input {
                Some(input) => node.handle(clock.now(), input),
                // Nothing can become durable any more: stop rather than serve without it.
                None => return Err(ServeError::FlusherStopped),
            },
            () = sleep_until(deadline), if deadline.is_some() => node.handle(clock.now(), Input::Tick),
            // A connection accepted now is dropped, which closes it.
            Some(event) = events_rx.recv() => drop(feed(&mut node, &mut router, clock.now(), event)),
            Some(_) = connections.join_next() => {}
        }
    }
    router.drain(&mut node);
    tracing::info!("every log is flushed");
    // Writers end once they have written what they hold; then the flusher, whose job queue
    // closes with the router.
    drop(router);
    drop(events_rx);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    let _ = flusher.await;
    Ok(())
}

/// Hands the core a measurement of the data directory's filesystem, if the storage can
/// take one, and shows the core's view of it to metrics.
fn sample_disk(node: &mut Node, storage: &dyn Storage, clock: &Clock, metrics: &Metrics) {
    if let Some((total_bytes, free_bytes)) = storage.volume_bytes() {
        node.handle(
            clock.now(),
            Input::DiskSpace {
                free_bytes,
                total_bytes,
            },
        );
        metrics.set_disk(node.disk_report());
    }
}

/// Every partition's offsets and a bounded prefix of the groups' committed offsets, for a
/// scrape (see [`metrics::MAX_GROUP_OFFSET_SERIES`]).
fn node_gauges(node: &Node) -> NodeGauges {
    let partitions = node
        .partition_offsets()
        .map(|p| PartitionGauges {
            topic: p.topic.to_string(),
            partition: p.partition,
            log_start_offset: p.log_start_offset,
            log_end_offset: p.log_end_offset,
            high_watermark: p.high_watermark,
            size_bytes: i64::try_from(p.size_bytes).unwrap_or(i64::MAX),
        })
        .collect();
    let (total, offsets) = node.committed_offsets();
    let group_offsets: Vec<GroupOffsetGauges> = offsets
        .take(metrics::MAX_GROUP_OFFSET_SERIES)
        .map(|(group, topic, partition, offset)| GroupOffsetGauges {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
            committed_offset: offset,
        })
        .collect();
    NodeGauges {
        cluster: node.cluster_stats(),
        group_offsets_omitted: total.saturating_sub(group_offsets.len()),
        partitions,
        group_offsets,
    }
}

/// Aborts the task when dropped, so that no early return leaves it running.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sleeps until `deadline`; never resolves for `None` (the branch is disabled then anyway).
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Feeds a message from another broker to the node (the transport delivers only intact
/// ones from brokers of this cluster).
fn feed_peer(
    node: &mut Node,
    metrics: &Metrics,
    now: Instant,
    from: keel_raft::NodeId,
    msg: PeerMsg,
) {
    if let (PeerMsg::Broker(message), Ok(from)) = (msg, i32::try_from(from.0)) {
        metrics.peer_message_received();
        node.handle(
            now,
            Input::Peer {
                from: NodeId(from),
                message,
            },
        );
    }
}

/// Feeds a connection's request or disconnect to the node. An accepted stream is handed
/// back: the serving loop starts a connection task for it, the shutdown loop drops it.
fn feed<S>(
    node: &mut Node,
    router: &mut Router,
    now: Instant,
    event: Event<S>,
) -> Option<(S, SocketAddr, Option<OwnedSemaphorePermit>)> {
    match event {
        Event::Accepted { stream, peer, slot } => return Some((stream, peer, slot)),
        Event::Request { conn, id, request } => {
            node.handle(now, Input::Request { conn, id, request })
        }
        Event::Disconnected { conn } => {
            router.conns.remove(&conn);
            node.handle(now, Input::Disconnected { conn });
        }
    }
    None
}

/// What connections tell the node task.
enum Event<S> {
    Accepted {
        stream: S,
        peer: SocketAddr,
        /// Its place under the connection limit, held until the connection ends.
        slot: Option<OwnedSemaphorePermit>,
    },
    Request {
        conn: ConnId,
        id: RequestId,
        request: api::Request,
    },
    Disconnected {
        conn: ConnId,
    },
}

/// Where the node's outputs go.
struct Router {
    /// Each live connection's writer.
    conns: BTreeMap<ConnId, mpsc::UnboundedSender<ToWriter>>,
    flush_tx: mpsc::UnboundedSender<FlushJob>,
    /// Each other broker's outbound peer connection (none on a single node).
    peers: BTreeMap<NodeId, mpsc::Sender<PeerMsg>>,
    metrics: Arc<Metrics>,
}

impl Router {
    /// Acts on every output the node has queued, in order.
    fn drain(&mut self, node: &mut Node) {
        while let Some(output) = node.poll_output() {
            match output {
                Output::Respond { conn, id, response } => {
                    // A connection already gone has nobody to answer.
                    if let Some(tx) = self.conns.get(&conn) {
                        let _ = tx.send(ToWriter::Response { id, response });
                    }
                }
                Output::Flush { log, files, upto } => {
                    // The flusher lives as long as the router (it ends when this sender drops).
                    let _ = self.flush_tx.send(FlushJob { log, files, upto });
                }
                // A full queue, or a broker with no connection, drops the message, as Raft
                // expects of an unreachable peer.
                Output::SendPeer { to, message } => {
                    let queued = match self.peers.get(&to) {
                        Some(tx) => tx.try_send(PeerMsg::Broker(message)).is_ok(),
                        None => {
                            tracing::debug!(%to, "no connection to that broker: peer message dropped");
                            false
                        }
                    };
                    self.metrics.peer_message_sent(queued);
                }
            }
        }
    }
}

/// Accepts connections and hands them to the node task. With a limit (`slots`), a
/// connection over it is accepted and closed at once, so its client learns now rather than
/// after a connect timeout, and the descriptors it would take stay with the logs. An accept
/// that fails (EMFILE, ENFILE: out of descriptors) leaves the connections already open
/// served, and is retried with a backoff doubling to [`ACCEPT_BACKOFF_MAX`]. Each kind of
/// trouble is logged once per episode: a WARN when it starts, an INFO with the count when
/// it ends.
async fn accept_loop<L: Listener>(
    mut listener: L,
    events: mpsc::Sender<Event<L::Stream>>,
    slots: Option<Arc<Semaphore>>,
    metrics: Arc<Metrics>,
) {
    let limit = slots.as_ref().map_or(0, |s| s.available_permits());
    metrics.set_connection_limit(limit);
    let mut failing = Episode::default();
    let mut refusing = Episode::default();
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF;
                if let Some((failures, lasted)) = failing.end() {
                    tracing::info!(
                        failures,
                        lasted_ms = lasted.as_millis() as u64,
                        "accepting connections again"
                    );
                }
                let slot = match &slots {
                    None => None,
                    Some(slots) => match Arc::clone(slots).try_acquire_owned() {
                        Ok(slot) => Some(slot),
                        Err(_) => {
                            metrics.connection_refused();
                            if refusing.count() {
                                tracing::warn!(%peer, limit, "at the connection limit: closing new connections until one ends");
                            }
                            drop(stream);
                            continue;
                        }
                    },
                };
                if let Some((refused, lasted)) = refusing.end() {
                    tracing::info!(
                        refused,
                        lasted_ms = lasted.as_millis() as u64,
                        "under the connection limit again"
                    );
                }
                tracing::debug!(%peer, "accepted");
                if events
                    .send(Event::Accepted { stream, peer, slot })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                if failing.count() {
                    tracing::warn!(error = %e, "accept failed; serving the connections already open and retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

/// A run of the same trouble, logged once when it starts and once when it ends.
#[derive(Debug, Default)]
struct Episode {
    /// When it started (`None`: not in one) and how many times it happened since.
    since: Option<tokio::time::Instant>,
    count: u64,
}

impl Episode {
    /// Counts one occurrence; true for the first of an episode.
    fn count(&mut self) -> bool {
        self.count += 1;
        if self.since.is_some() {
            return false;
        }
        self.since = Some(tokio::time::Instant::now());
        true
    }

    /// Ends the episode, if one is on: its count and how long it lasted.
    fn end(&mut self) -> Option<(u64, Duration)> {
        let since = self.since.take()?;
        Some((std::mem::take(&mut self.count), since.elapsed()))
    }
}

// ---- the flusher -------------------------------------------------------------------------

/// One `Output::Flush`.
#[derive(Debug)]
struct FlushJob {
    log: LogId,
    files: Vec<String>,
    upto: Offset,
}

/// Group commit: takes every job queued, syncs each distinct file once, answers each log.
async fn flusher(
    storage: Arc<dyn Storage>,
    mode: SyncMode,
    mut jobs: mpsc::UnboundedReceiver<FlushJob>,
    done: mpsc::UnboundedSender<Input>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while let Ok(job) = jobs.try_recv() {
            batch.push(job);
        }
        let files: BTreeSet<String> = batch.iter().flat_map(|j| j.files.iter().cloned()).collect();
        let file_count = files.len();
        let started = tokio::time::Instant::now();
        let failures = sync_files(&storage, &mode, files).await;
        metrics.fsync_batch(started.elapsed(), file_count, failures.len());
        for (log, (upto, error)) in group_by_log(batch, &failures) {
            let input = match error {
                None => Input::Flushed { log, upto },
                Some(error) => Input::FlushFailed { log, error },
            };
            if done.send(input).is_err() {
                return;
            }
        }
    }
}

/// Syncs each file once and returns the failures by file. In production the fsyncs of
/// distinct files run concurrently ([`SyncMode::run_each`]), so a batch covering several
/// logs costs about one fsync, not one per file; in the simulator they run in order.
async fn sync_files(
    storage: &Arc<dyn Storage>,
    mode: &SyncMode,
    files: BTreeSet<String>,
) -> BTreeMap<String, String> {
    let jobs: Vec<_> = files
        .into_iter()
        .map(|file| {
            let disk = storage.clone();
            move || match disk.sync(&file) {
                Ok(()) => None,
                // The core removed it after asking (retention, a deleted topic): nothing of it
                // is left to make durable.
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => Some((file, e.to_string())),
            }
        })
        .collect();
    let mut failures = BTreeMap::new();
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        let wave: Vec<_> = jobs.by_ref().take(MAX_CONCURRENT_SYNCS).collect();
        failures.extend(mode.run_each(wave).await.into_iter().flatten());
    }
    failures
}

/// Per log in a batch: its largest `upto`, and the first failure among its files.
fn group_by_log(
    batch: Vec<FlushJob>,
    failures: &BTreeMap<String, String>,
) -> BTreeMap<LogId, (Offset, Option<String>)> {
    let mut out: BTreeMap<LogId, (Offset, Option<String>)> = BTreeMap::new();
    for job in batch {
        let entry = out.entry(job.log).or_insert((job.upto, None));
        entry.0 = entry.0.max(job.upto);
        if entry.1.is_none() {
            entry.1 = job
                .files
                .iter()
                .find_map(|f| failures.get(f).map(|e| format!("sync {f}: {e}")));
        }
    }
    out
}

// ---- connections -------------------------------------------------------------------------

struct ConnLimits {
    max_request_bytes: usize,
    max_inflight: usize,
    /// Request ids are unique per node run.
    next_request: AtomicU64,
}

struct ConnCtx<S> {
    conn: ConnId,
    peer: SocketAddr,
    limits: Arc<ConnLimits>,
    events: mpsc::Sender<Event<S>>,
    stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
}

/// What the reader and the node tell a connection's writer, on one channel so that a
/// request's slot is always queued before its response can arrive.
enum ToWriter {
    /// A request went to the node; its response is written in this position.
    Expect {
        id: RequestId,
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        permit: OwnedSemaphorePermit,
        /// When the request's frame was read (its latency starts there).
        received: tokio::time::Instant,
    },
    /// A produce with acks=0 went to the node: its response is not written.
    Silent {
        id: RequestId,
        permit: OwnedSemaphorePermit,
        received: tokio::time::Instant,
    },
    /// A response the reader built itself (ApiVersions), written in this position.
    Ready {
        frame: Bytes,
        permit: OwnedSemaphorePermit,
        received: tokio::time::Instant,
    },
    /// The node's response to a request.
    Response {
        id: RequestId,
        response: api::Response,
    },
    /// The reader is done (end of stream or shutdown): write what is pending, then close.
    Finish,
    /// The reader saw bad input: close now.
    Close,
}

/// Why the reader stopped.
enum ReadEnd {
    /// The peer closed the stream between frames, or the driver is stopping.
    Done,
    /// The peer sent something we will not serve: close with a warning.
    Bad(String),
    /// The stream failed.
    Io(io::Error),
}

async fn connection<S: Stream>(
    ctx: ConnCtx<S>,
    stream: S,
    slot: Option<OwnedSemaphorePermit>,
    tx: mpsc::UnboundedSender<ToWriter>,
    rx: mpsc::UnboundedReceiver<ToWriter>,
) {
    let (conn, peer, events) = (ctx.conn, ctx.peer, ctx.events.clone());
    let metrics = Arc::clone(&ctx.metrics);
    // Counts the connection open until this task ends.
    let _open = metrics.connection_opened();
    let (read_half, write_half) = tokio::io::split(stream);
    let reader = async move {
        let end = read_loop(&ctx, read_half, &tx).await;
        match end {
            ReadEnd::Done => {
                let _ = tx.send(ToWriter::Finish);
            }
            ReadEnd::Bad(reason) => {
                ctx.metrics.connection_rejected();
                tracing::warn!(%peer, conn, %reason, "closing the connection");
                let _ = tx.send(ToWriter::Close);
            }
            ReadEnd::Io(error) => {
                tracing::debug!(%peer, conn, %error, "connection read failed");
                let _ = tx.send(ToWriter::Close);
            }
        }
        // The writer decides when the connection ends; drop our sender so that it can.
        drop(tx);
        std::future::pending::<()>().await
    };
    tokio::select! {
        biased;
        () = write_loop(conn, peer, write_half, rx, &metrics) => {}
        () = reader => {}
    }
    // The stream is closed by now: its place under the limit is free.
    drop(slot);
    let _ = events.send(Event::Disconnected { conn }).await;
}

async fn read_loop<S: Stream, R: AsyncRead + Unpin>(
    ctx: &ConnCtx<S>,
    mut reader: R,
    tx: &mpsc::UnboundedSender<ToWriter>,
) -> ReadEnd {
    let inflight = Arc::new(Semaphore::new(ctx.limits.max_inflight));
    let mut stop = ctx.stop.clone();
    loop {
        // Backpressure: no permit, no read.
        let permit = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return ReadEnd::Done,
            permit = inflight.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return ReadEnd::Done,
            },
        };
        let frame = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return ReadEnd::Done,
            frame = read_frame(&mut reader, ctx.limits.max_request_bytes) => frame,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return ReadEnd::Done,
            Err(end) => return end,
        };
        let received = tokio::time::Instant::now();
        ctx.metrics.bytes_received(frame.len() + 4);
        match codec::decode_request(frame) {
            Ok((header, codec::RequestBody::ApiVersions(_))) => {
                let body = ResponseBody::ApiVersions(codec::api_versions_response(0));
                let frame = encode(header.api_version, header.correlation_id, &body);
                let _ = tx.send(ToWriter::Ready {
                    frame,
                    permit,
                    received,
                });
            }
            Ok((header, body)) => {
                let api_key = body.api_key();
                let mut request = match api_map::request_from_wire(header.api_version, body) {
                    Ok(r) => r,
                    Err(e) => return ReadEnd::Bad(e.to_string()),
                };
                if let api::Request::JoinGroup(join) = &mut request {
                    // What the body does not carry: DescribeGroups reports both, and member
                    // ids start with the client id.
                    join.client_id = header.client_id.clone().unwrap_or_default();
                    join.client_host = format!("/{}", ctx.peer.ip());
                }
                let id = ctx.limits.next_request.fetch_add(1, Ordering::Relaxed);
                let silent = matches!(&request, api::Request::Produce(p) if p.acks == 0);
                let slot = if silent {
                    ToWriter::Silent {
                        id,
                        permit,
                        received,
                    }
                } else {
                    ToWriter::Expect {
                        id,
                        api_key,
                        api_version: header.api_version,
                        correlation_id: header.correlation_id,
                        permit,
                        received,
                    }
                };
                // The slot first, so that the writer knows it before the response comes.
                if tx.send(slot).is_err() {
                    return ReadEnd::Done;
                }
                if ctx
                    .events
                    .send(Event::Request {
                        conn: ctx.conn,
                        id,
                        request,
                    })
                    .await
                    .is_err()
                {
                    return ReadEnd::Done;
                }
            }
            Err(RequestError::Unsupported { header })
                if header.api_key == ApiKey::ApiVersions as i16 =>
            {
                // KAFKA.md §2: a v0 body with UNSUPPORTED_VERSION and our ranges, so the
                // client retries with a version we speak.
                let frame = encode(
                    0,
                    header.correlation_id,
                    &codec::unsupported_version_response(),
                );
                let api = ApiKey::ApiVersions as i16;
                ctx.metrics
                    .error_response(api, keel_core::error::ErrorCode::UNSUPPORTED_VERSION);
                let _ = tx.send(ToWriter::Ready {
                    frame,
                    permit,
                    received,
                });
            }
            Err(e) => return ReadEnd::Bad(e.to_string()),
        }
    }
}

/// Reads one frame: `Ok(None)` at a clean end of stream (between frames).
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_request_bytes: usize,
) -> Result<Option<Bytes>, ReadEnd> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < prefix.len() {
        match reader.read(&mut prefix[got..]).await {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(ReadEnd::Bad(format!(
                    "stream ended inside a length prefix ({got} of 4 bytes)"
                )))
            }
            Ok(n) => got += n,
            Err(e) => return Err(ReadEnd::Io(e)),
        }
    }
    let len =
        codec::frame_length(prefix, max_request_bytes).map_err(|e| ReadEnd::Bad(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(len.min(INITIAL_FRAME_CAPACITY));
    while buf.len() < len {
        let want = len - buf.len();
        buf.reserve(want.min(INITIAL_FRAME_CAPACITY));
        match (&mut *reader).take(want as u64).read_buf(&mut buf).await {
            Ok(0) => {
                return Err(ReadEnd::Bad(format!(
                    "stream ended inside a frame ({} of {len} bytes)",
                    buf.len()
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(ReadEnd::Io(e)),
        }
    }
    Ok(Some(buf.freeze()))
}

fn encode(api_version: i16, correlation_id: i32, body: &ResponseBody) -> Bytes {
    let mut out = BytesMut::new();
    codec::encode_response(api_version, correlation_id, body, &mut out);
    out.freeze()
}

/// A response position on a connection.
struct Slot {
    id: RequestId,
    /// `None` until the response is known (and encoded).
    frame: Option<Bytes>,
    /// Set for requests the node answers: how to encode the answer.
    expect: Option<(ApiKey, i16, i32)>,
    /// The request's API and when its frame was read, for the latency metric.
    api: ApiKey,
    received: tokio::time::Instant,
    /// Released when the response is written.
    _permit: OwnedSemaphorePermit,
}

async fn write_loop<W: AsyncWrite + Unpin>(
    conn: ConnId,
    peer: SocketAddr,
    mut writer: W,
    mut rx: mpsc::UnboundedReceiver<ToWriter>,
    metrics: &Metrics,
) {
    let mut slots: VecDeque<Slot> = VecDeque::new();
    // acks=0 produces the node has not answered yet: permit and receive time.
    let mut silent: BTreeMap<RequestId, (OwnedSemaphorePermit, tokio::time::Instant)> =
        BTreeMap::new();
    let mut finishing = false;
    loop {
        if finishing && slots.is_empty() {
            break;
        }
        // `None`: the reader is gone and so is the node's sender (shutdown).
        let Some(msg) = rx.recv().await else { break };
        match msg {
            ToWriter::Expect {
                id,
                api_key,
                api_version,
                correlation_id,
                permit,
                received,
            } => slots.push_back(Slot {
                id,
                frame: None,
                expect: Some((api_key, api_version, correlation_id)),
                api: api_key,
                received,
                _permit: permit,
            }),
            ToWriter::Silent {
                id,
                permit,
                received,
            } => {
                silent.insert(id, (permit, received));
            }
            ToWriter::Ready {
                frame,
                permit,
                received,
            } => slots.push_back(Slot {
                id: 0,
                frame: Some(frame),
                expect: None,
                api: ApiKey::ApiVersions,
                received,
                _permit: permit,
            }),
            ToWriter::Response { id, response } => {
                metrics.response_errors(&response);
                if let Some((_permit, received)) = silent.remove(&id) {
                    metrics.request_done(ApiKey::Produce, received.elapsed());
                    if let Some(error) = api_map::first_error(&response) {
                        // acks=0 has no response to carry the error: Kafka closes instead.
                        tracing::info!(%peer, conn, error = error.0, "closing the connection after a failed acks=0 produce");
                        return;
                    }
                    continue;
                }
                let Some(slot) = slots.iter_mut().find(|s| s.id == id && s.frame.is_none()) else {
                    tracing::error!(%peer, conn, id, "a response for no request on this connection");
                    continue;
                };
                let Some((api_key, api_version, correlation_id)) = slot.expect else {
                    continue;
                };
                if api_map::response_api_key(&response) != api_key {
                    tracing::error!(%peer, conn, id, ?api_key, "the node answered with another api; closing");
                    return;
                }
                let body = api_map::response_to_wire(api_version, response);
                slot.frame = Some(encode(api_version, correlation_id, &body));
            }
            ToWriter::Finish => finishing = true,
            ToWriter::Close => return,
        }
        // Write every response at the head that is ready, in request order.
        let mut wrote = false;
        while slots.front().is_some_and(|s| s.frame.is_some()) {
            let Some(Slot {
                frame: Some(frame),
                api,
                received,
                ..
            }) = slots.pop_front()
            else {
                break;
            };
            if let Err(error) = writer.write_all(&frame).await {
                tracing::debug!(%peer, conn, %error, "connection write failed");
                return;
            }
            metrics.bytes_sent(frame.len());
            metrics.request_done(api, received.elapsed());
            wrote = true;
        }
        if wrote && writer.flush().await.is_err() {
            return;
        }
    }
    // Deliver what is ready (shutdown), then close.
    while let Some(Slot {
        frame: Some(frame), ..
    }) = slots.pop_front()
    {
        if writer.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_commit_answers_each_log_once_with_its_largest_upto() {
        let batch = vec![
            FlushJob {
                log: LogId(1),
                files: vec!["a".into()],
                upto: Offset(5),
            },
            FlushJob {
                log: LogId(2),
                files: vec!["b".into(), "a".into()],
                upto: Offset(3),
            },
            FlushJob {
                log: LogId(1),
                files: vec!["a".into()],
                upto: Offset(9),
            },
        ];
        let failures = BTreeMap::from([("b".to_string(), "EIO".to_string())]);
        let grouped = group_by_log(batch, &failures);
        assert_eq!(grouped[&LogId(1)], (Offset(9), None));
        assert_eq!(grouped[&LogId(2)].0, Offset(3));
        assert!(grouped[&LogId(2)]
            .1
            .as_deref()
            .is_some_and(|e| e.contains("sync b: EIO")));
    }

    /// A memory disk whose syncs fail once `failing` is set.
    struct FailingSyncs {
        disk: keel_core::storage::MemStorage,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Storage for FailingSyncs {
        fn append(&self, file: &str, bufs: &[&[u8]]) -> io::Result<()> {
            self.disk.append(file, bufs)
        }
        fn read_at(&self, file: &str, pos: u64, len: usize) -> io::Result<Bytes> {
            self.disk.read_at(file, pos, len)
        }
        fn len(&self, file: &str) -> io::Result<Option<u64>> {
            self.disk.len(file)
        }
        fn truncate(&self, file: &str, len: u64) -> io::Result<()> {
            self.disk.truncate(file, len)
        }
        fn remove(&self, file: &str) -> io::Result<()> {
            self.disk.remove(file)
        }
        fn list(&self, dir: &str) -> io::Result<Vec<String>> {
            self.disk.list(dir)
        }
        fn replace(&self, file: &str, contents: &[u8]) -> io::Result<()> {
            self.disk.replace(file, contents)
        }
        fn sync(&self, file: &str) -> io::Result<()> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(io::Error::other("EIO (injected)"));
            }
            self.disk.sync(file)
        }
    }

    async fn http_get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_is_ok_while_serving_and_503_after_a_failed_fsync() {
        let storage = Arc::new(FailingSyncs {
            disk: keel_core::storage::MemStorage::new(),
            failing: std::sync::atomic::AtomicBool::new(false),
        });
        let metrics = Metrics::new();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        let _http = AbortOnDrop(tokio::spawn(metrics::serve_http(http, metrics.clone())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let node = NodeConfig {
            advertised_port: i32::from(addr.port()),
            ..NodeConfig::default()
        };
        let options = DriverOptions {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_inflight_per_connection: DEFAULT_MAX_INFLIGHT_PER_CONNECTION,
            seed: 1,
            sync_mode: SyncMode::Inline,
            wall_clock_at_start: Instant::from_millis(1_700_000_000_000),
        };
        let run = tokio::spawn(run_with_metrics(
            listener,
            node,
            storage.clone(),
            options,
            metrics.clone(),
            std::future::pending(),
        ));
        let mut client = crate::client::connect_tcp(addr, Default::default())
            .await
            .unwrap();
        let health = http_get(http_addr, "/health").await;
        assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
        assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
        let created = client.create_topics(&[("t", 1)], 5_000).await.unwrap();
        assert_eq!(created.topics[0].error_code, 0);

        storage.failing.store(true, Ordering::SeqCst);
        let batch =
            keel_core::record::builder::build_batch(&[keel_core::record::builder::Record {
                key: None,
                value: Some(b"v".to_vec()),
                headers: Vec::new(),
                timestamp_ms: 0,
            }]);
        // acks=-1 waits for the fsync, which fails: the node stops serving.
        let _ = client.produce("t", 0, batch, -1).await;
        let ended = tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("the driver stops")
            .unwrap();
        assert!(matches!(ended, Err(ServeError::Storage(_))), "{ended:?}");
        assert_eq!(metrics.state(), NodeState::Failed);
        let health = http_get(http_addr, "/health").await;
        assert!(health.starts_with("HTTP/1.1 503 "), "{health}");
        assert!(health.ends_with("failed\n"), "{health}");
        // The scrape does not wait on the node task that is gone.
        let scrape = http_get(http_addr, "/metrics").await;
        assert!(scrape.starts_with("HTTP/1.1 200 OK\r\n"), "{scrape}");
        assert!(scrape.contains("\nkeel_up 0\n"), "{scrape}");
        assert!(
            scrape.contains("\nkeel_fsync_failures_total 1\n"),
            "{scrape}"
        );
        assert!(
            scrape.contains("keel_requests_total{api=\"CreateTopics\"} 1\n"),
            "{scrape}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn clock_is_anchored_and_monotonic() {
        let clock = Clock::new(Instant::from_millis(1_000));
        assert_eq!(clock.now(), Instant::from_millis(1_000));
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(clock.now(), Instant::from_millis(1_250));
        let at = Instant::from_millis(2_000);
        assert_eq!(
            clock.deadline(at) - clock.start,
            Duration::from_millis(1_000)
        );
    }

    #[tokio::test]
    async fn frames_over_the_limit_are_refused_before_reading() {
        let mut input: &[u8] = &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        let Err(ReadEnd::Bad(reason)) = read_frame(&mut input, 1024).await else {
            panic!()
        };
        assert!(reason.contains("exceeds"), "{reason}");
        let mut input: &[u8] = &[0, 0, 0, 5, 1, 2];
        let Err(ReadEnd::Bad(reason)) = read_frame(&mut input, 1024).await else {
            panic!()
        };
        assert!(reason.contains("2 of 5"), "{reason}");
        let mut input: &[u8] = &[0, 0, 0, 2, 1, 2, 0, 0];
        assert_eq!(
            read_frame(&mut input, 1024).await.ok().flatten().as_deref(),
            Some(&[1u8, 2][..])
        );
        let Err(ReadEnd::Bad(_)) = read_frame(&mut input, 1024).await else {
            panic!("truncated prefix")
        };
        let mut input: &[u8] = &[];
        assert!(matches!(read_frame(&mut input, 1024).await, Ok(None)));
    }
}
