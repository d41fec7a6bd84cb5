//! The driver's metrics: a small registry of atomic counters, gauges and fixed-bucket
//! histograms, rendered in the Prometheus text exposition format (version 0.0.4), and a tiny
//! HTTP/1.1 responder that serves them at `GET /metrics` next to `GET /health`.
//!
//! One [`Metrics`] belongs to one driver run (an `Arc` the driver and the HTTP task share):
//! nothing is global, so simulated nodes in one process never see each other's numbers, and
//! recording never reads a clock (the driver passes durations it measured with tokio's
//! `Instant`, which turmoil virtualizes). Recording is a handful of relaxed atomic adds; only
//! error responses take a lock (their (API, code) pairs are not known in advance).
//!
//! What the registry cannot count itself, the node's per-partition offsets and its groups'
//! committed offsets, is asked of the node task at scrape time through a [`NodeProbe`] the
//! driver attaches while it serves: one [`NodeGauges`] taken at one instant, so a lag is
//! always a high watermark and a committed offset of the same moment, and nothing is
//! computed while nobody scrapes. Committed offsets are many where groups are many: the
//! snapshot holds at most [`MAX_GROUP_OFFSET_SERIES`] of them, the first in (group, topic,
//! partition) order, and `keel_consumer_group_offsets_omitted` says how many more there are,
//! so a scrape stays bounded in size and in the node task's time.
//!
//! Two families describe the process rather than the node: `keel_build_info` (the version and
//! the git commit `build.rs` found) and the standard `process_*` metrics ([`process`]), read
//! from `/proc` by the HTTP task.
//!
//! The HTTP side ([`serve_http`]) is production-only: it answers one request per connection
//! (`Connection: close`) and serves at most [`MAX_HTTP_CONNECTIONS`] at a time. A request
//! head must arrive within [`HEAD_TIMEOUT`] (else 408) and fit in [`MAX_REQUEST_HEAD`] bytes
//! (else 431); bytes that cannot begin an HTTP/1.x request line (a Kafka frame, TLS, garbage)
//! get 400 as soon as they arrive, so a Kafka client pointed here by mistake learns at once
//! what it reached. A slow or hostile client costs a bounded amount of memory and time and
//! never touches the broker.

use crate::codec::ApiKey;
use crate::fs_storage::FileCacheStats;
use keel_core::api;
use keel_core::broker::{human_bytes, DiskReport};
use keel_core::error::ErrorCode;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Semaphore};

mod process;

/// Upper bounds (inclusive, microseconds) of the latency histograms' buckets: 100 µs to 30 s,
/// roughly 1-2.5-5 per decade; slower observations land in `+Inf` only.
pub const LATENCY_BUCKETS_US: [u64; 17] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// API keys are small non-negative numbers (Kafka's largest is under 100): per-API series live
/// in a fixed table indexed by key, so recording needs no lock.
const API_SLOTS: usize = 128;

/// The most bytes of an HTTP request head read before answering 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request head before it is answered 408.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one HTTP exchange (the head, the answer built and written) may take in all;
/// past it the connection is dropped without an answer.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest method accepted in a request line (HTTP's longest, OPTIONS, has 7).
const MAX_METHOD_LEN: usize = 16;

/// After answering a request it did not read to the end (a 400 to a Kafka frame), the
/// responder reads and discards at most this much for at most [`LINGER`] before closing, so
/// the kernel does not reset the connection, and lose the answer, over unread input.
const LINGER_BYTES: usize = 64 * 1024;
const LINGER: Duration = Duration::from_secs(2);

/// The most committed offsets (group, partition) a scrape reports; see the module docs.
/// Two series each (committed offset and lag): 20 000 lines, about 2 MB of text.
pub const MAX_GROUP_OFFSET_SERIES: usize = 10_000;

/// HTTP connections served at once; more wait in the kernel's accept queue.
pub const MAX_HTTP_CONNECTIONS: usize = 32;

/// How long a scrape waits for the node task's partition offsets before rendering without them.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A fixed-bucket histogram of durations: per-bucket (non-cumulative) counts and a sum, all
/// atomics. The count is the sum of the buckets as read, so a rendering is always internally
/// consistent (cumulative buckets ending in `+Inf` equal to `_count`) even while recording.
#[derive(Debug)]
pub struct Histogram {
    /// One per bound in [`LATENCY_BUCKETS_US`], then the overflow bucket.
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BUCKETS_US.partition_point(|&bound| bound < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Writes `name_bucket`, `name_sum` and `name_count` samples with `labels` (already
    /// rendered, without braces; may be empty).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = match LATENCY_BUCKETS_US.get(i) {
                Some(&us) => seconds(us),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = seconds(self.sum_us.load(Ordering::Relaxed));
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Microseconds as decimal seconds, exactly (no float rounding): 2500 → "0.0025".
fn seconds(us: u64) -> String {
    let (whole, frac) = (us / 1_000_000, us % 1_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// One API's request count and latency.
#[derive(Debug, Default)]
struct ApiStats {
    requests: AtomicU64,
    latency: Histogram,
}

/// Where the node is in its life, for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeState {
    /// Recovering logs; not accepting clients yet.
    Starting = 0,
    /// Accepting and answering clients.
    Serving = 1,
    /// Shutting down (flushing) after a stop request.
    Stopping = 2,
    /// Stopped on a storage failure it cannot serve through (a failed fsync).
    Failed = 3,
    /// The driver returned (after a clean stop).
    Stopped = 4,
}

impl NodeState {
    fn from_u8(v: u8) -> NodeState {
        match v {
            0 => NodeState::Starting,
            1 => NodeState::Serving,
            2 => NodeState::Stopping,
            3 => NodeState::Failed,
            _ => NodeState::Stopped,
        }
    }

    fn name(self) -> &'static str {
        match self {
            NodeState::Starting => "starting",
            NodeState::Serving => "serving",
            NodeState::Stopping => "stopping",
            NodeState::Failed => "failed",
            NodeState::Stopped => "stopped",
        }
    }
}

/// One partition's offsets, as the node task reports them to a scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionGauges {
    pub topic: String,
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub size_bytes: i64,
}

/// One group's committed offset on one partition, as the node task reports it to a scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsetGauges {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    /// The next offset the group will consume, as committed (durable).
    pub committed_offset: i64,
}

/// What the node task answers a scrape with, all taken at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeGauges {
    /// Every partition, in (topic, partition) order.
    pub partitions: Vec<PartitionGauges>,
    /// The first [`MAX_GROUP_OFFSET_SERIES`] committed offsets in (group, topic, partition)
    /// order.
    pub group_offsets: Vec<GroupOffsetGauges>,
    /// Committed offsets left out of `group_offsets` by the bound.
    pub group_offsets_omitted: usize,
    /// The cluster as this broker sees it; `None` on a single node.
    pub cluster: Option<keel_core::node::ClusterStats>,
}

/// A scrape's question to the node task: answer with its gauges.
pub type ProbeRequest = oneshot::Sender<NodeGauges>;

/// The node task's end of the probe channel, attached while it serves.
pub type NodeProbe = mpsc::Sender<ProbeRequest>;

/// Reads the storage's file cache numbers at scrape time.
pub type FileCacheProbe = Box<dyn Fn() -> FileCacheStats + Send + Sync>;

/// Everything one driver run counts. See the module docs.
pub struct Metrics {
    state: AtomicU8,
    apis: Box<[ApiStats]>,
    /// (API key, error code) → responses carrying that code (each occurrence counts once:
    /// a produce failing on three partitions counts three).
    errors: Mutex<BTreeMap<(i16, i16), u64>>,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    /// Messages the node sent to other brokers, those that could not be queued (no
    /// connection, a full queue), and those received from them.
    peer_sent: AtomicU64,
    peer_dropped: AtomicU64,
    peer_received: AtomicU64,
    connections_open: AtomicI64,
    connections_accepted: AtomicU64,
    /// Connections closed by the driver for bad input (bad frame, malformed request).
    connections_rejected: AtomicU64,
    /// Connections closed at accept because the broker was at its connection limit.
    connections_refused: AtomicU64,
    /// That limit (0: none).
    connections_limit: AtomicU64,
    /// The storage's file cache, when it has one (`keel serve`'s `FsStorage`).
    file_cache: Mutex<Option<FileCacheProbe>>,
    fsync: Histogram,
    fsync_files: AtomicU64,
    fsync_failures: AtomicU64,
    /// The core's view of the data directory's filesystem at the driver's last sample.
    disk: Mutex<Option<DiskReport>>,
    probe: Mutex<Option<NodeProbe>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            state: AtomicU8::new(NodeState::Starting as u8),
            apis: (0..API_SLOTS).map(|_| ApiStats::default()).collect(),
            errors: Mutex::new(BTreeMap::new()),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            peer_sent: AtomicU64::new(0),
            peer_dropped: AtomicU64::new(0),
            peer_received: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_rejected: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_limit: AtomicU64::new(0),
            file_cache: Mutex::new(None),
            fsync: Histogram::default(),
            fsync_files: AtomicU64::new(0),
            fsync_failures: AtomicU64::new(0),
            disk: Mutex::new(None),
            probe: Mutex::new(None),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Locks `m`, ignoring poisoning: every value behind these locks stays valid whatever panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn set_state(&self, state: NodeState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub fn state(&self) -> NodeState {
        NodeState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// The disk as the core saw it at the driver's latest sample (`None`: not measurable).
    pub fn set_disk(&self, report: Option<DiskReport>) {
        *lock(&self.disk) = report;
    }

    /// What `/health` says: `ok`, or the low-space state in words (still 200: the broker
    /// serves reads, metadata and groups; restarting it would not free anything).
    fn health(&self) -> (u16, String) {
        match self.state() {
            NodeState::Serving => match *lock(&self.disk) {
                Some(d) if d.low_space => (
                    200,
                    format!(
                        "low-space: {} free of {}, below the free-space floor of {}; produce and topic creation are refused\n",
                        human_bytes(d.free_bytes),
                        human_bytes(d.total_bytes),
                        human_bytes(d.floor_bytes)
                    ),
                ),
                _ => (200, "ok\n".to_string()),
            },
            state => (503, format!("{}\n", state.name())),
        }
    }

    /// Lets scrapes ask the node task for partition offsets (`None`: it stopped answering).
    pub fn attach_probe(&self, probe: Option<NodeProbe>) {
        *lock(&self.probe) = probe;
    }

    /// A request of `api` was answered (its response written, or dropped for acks=0)
    /// `elapsed` after its frame was read.
    pub fn request_done(&self, api: ApiKey, elapsed: Duration) {
        if let Some(stats) = self.apis.get(api as i16 as usize) {
            stats.requests.fetch_add(1, Ordering::Relaxed);
            stats.latency.observe(elapsed);
        }
    }

    /// Counts every error code in `response`.
    pub fn response_errors(&self, response: &api::Response) {
        let api = crate::api_map::response_api_key(response) as i16;
        let mut codes: Vec<ErrorCode> = Vec::new();
        error_codes(response, &mut |code| {
            if !code.is_ok() {
                codes.push(code);
            }
        });
        if codes.is_empty() {
            return;
        }
        let mut errors = lock(&self.errors);
        for code in codes {
            *errors.entry((api, code.0)).or_default() += 1;
        }
    }

    /// Counts one error response the driver built itself (e.g. UNSUPPORTED_VERSION).
    pub fn error_response(&self, api: i16, code: ErrorCode) {
        *lock(&self.errors).entry((api, code.0)).or_default() += 1;
    }

    pub fn bytes_received(&self, n: usize) {
        self.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A message to another broker: queued on its connection (`queued`) or dropped.
    pub fn peer_message_sent(&self, queued: bool) {
        let counter = if queued {
            &self.peer_sent
        } else {
            &self.peer_dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A message from another broker reached the node.
    pub fn peer_message_received(&self) {
        self.peer_received.fetch_add(1, Ordering::Relaxed);
    }

    pub fn bytes_sent(&self, n: usize) {
        self.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A connection was accepted; the guard counts it open until dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }

    pub fn connection_rejected(&self) {
        self.connections_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection over the limit was accepted and closed at once.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The most client connections served at once (0: no limit).
    pub fn set_connection_limit(&self, limit: usize) {
        self.connections_limit
            .store(limit as u64, Ordering::Relaxed);
    }

    /// Lets scrapes read the storage's file cache (`None`: there is none).
    pub fn attach_file_cache(&self, probe: Option<FileCacheProbe>) {
        *lock(&self.file_cache) = probe;
    }

    /// One group-commit batch synced `files` files in `elapsed`, `failures` of them failing.
    pub fn fsync_batch(&self, elapsed: Duration, files: usize, failures: usize) {
        self.fsync.observe(elapsed);
        self.fsync_files.fetch_add(files as u64, Ordering::Relaxed);
        self.fsync_failures
            .fetch_add(failures as u64, Ordering::Relaxed);
    }

    /// Asks the node task for its partitions' and groups' offsets; `None` if it is not
    /// serving or does not answer within [`PROBE_TIMEOUT`].
    pub async fn probe(&self) -> Option<NodeGauges> {
        let probe = lock(&self.probe).clone()?;
        let (tx, rx) = oneshot::channel();
        probe.send(tx).await.ok()?;
        tokio::time::timeout(PROBE_TIMEOUT, rx).await.ok()?.ok()
    }

    /// The whole registry in the Prometheus text format; `node` is the node's answer to
    /// the probe, if it answered. The `process_*` families are not included (see
    /// [`process`]): the HTTP task appends them.
    pub fn render(&self, node: Option<&NodeGauges>) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let state = self.state();
        header(
            &mut out,
            "keel_build_info",
            "gauge",
            "Always 1; the labels say which Keel this is (version, git commit).",
        );
        let _ = writeln!(
            out,
            "keel_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            escape_label(VERSION),
            escape_label(COMMIT)
        );
        header(
            &mut out,
            "keel_up",
            "gauge",
            "1 while the node serves clients.",
        );
        let _ = writeln!(out, "keel_up {}", u8::from(state == NodeState::Serving));
        header(
            &mut out,
            "keel_node_state",
            "gauge",
            "The node's life stage: 1 for the current one.",
        );
        for s in [
            NodeState::Starting,
            NodeState::Serving,
            NodeState::Stopping,
            NodeState::Failed,
            NodeState::Stopped,
        ] {
            let _ = writeln!(
                out,
                "keel_node_state{{state=\"{}\"}} {}",
                s.name(),
                u8::from(s == state)
            );
        }

        let used: Vec<(ApiKey, &ApiStats)> = (0..API_SLOTS)
            .filter_map(|i| {
                let key = ApiKey::try_from(i as i16).ok()?;
                Some((key, &self.apis[i]))
            })
            .filter(|(_, s)| s.requests.load(Ordering::Relaxed) > 0)
            .collect();
        header(
            &mut out,
            "keel_requests_total",
            "counter",
            "Requests answered, by API (acks=0 produces count when the node has handled them).",
        );
        for (key, stats) in &used {
            let _ = writeln!(
                out,
                "keel_requests_total{{api=\"{key:?}\"}} {}",
                stats.requests.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "keel_request_duration_seconds",
            "histogram",
            "From a request's frame read to its response written, by API.",
        );
        for (key, stats) in &used {
            stats.latency.render(
                &mut out,
                "keel_request_duration_seconds",
                &format!("api=\"{key:?}\""),
            );
        }
        header(
            &mut out,
            "keel_error_responses_total",
            "counter",
            "Error codes in responses, by API and Kafka error code and name (one per occurrence).",
        );
        for ((api, code), n) in lock(&self.errors).iter() {
            let name =
                ApiKey::try_from(*api).map_or_else(|_| api.to_string(), |k| format!("{k:?}"));
            let _ = writeln!(
                out,
                "keel_error_responses_total{{api=\"{name}\",code=\"{code}\",error=\"{}\"}} {n}",
                ErrorCode(*code)
            );
        }

        counter(
            &mut out,
            "keel_network_received_bytes_total",
            "Bytes of request frames read from clients (length prefixes included).",
            self.bytes_received.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "keel_network_sent_bytes_total",
            "Bytes of response frames written to clients (length prefixes included).",
            self.bytes_sent.load(Ordering::Relaxed),
        );
        for (name, help, counter_value) in [
            (
                "keel_peer_messages_sent_total",
                "Messages queued to other brokers (Raft, forwards to the controller).",
                &self.peer_sent,
            ),
            (
                "keel_peer_messages_dropped_total",
                "Messages to other brokers dropped: no connection, or its queue full.",
                &self.peer_dropped,
            ),
            (
                "keel_peer_messages_received_total",
                "Messages from other brokers handed to the node.",
                &self.peer_received,
            ),
        ] {
            counter(&mut out, name, help, counter_value.load(Ordering::Relaxed));
        }
        header(
            &mut out,
            "keel_connections_open",
            "gauge",
            "Client connections open now.",
        );
        let _ = writeln!(
            out,
            "keel_connections_open {}",
            self.connections_open.load(Ordering::Relaxed).max(0)
        );
        counter(
            &mut out,
            "keel_connections_accepted_total",
            "Client connections accepted.",
            self.connections_accepted.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "keel_connections_rejected_total",
            "Connections closed by the broker for bad input (bad frame or malformed request).",
            self.connections_rejected.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "keel_connections_refused_total",
            "Connections accepted and closed at once because the broker was at its connection limit.",
            self.connections_refused.load(Ordering::Relaxed),
        );
        let limit = self.connections_limit.load(Ordering::Relaxed);
        if limit > 0 {
            header(
                &mut out,
                "keel_connections_limit",
                "gauge",
                "The most client connections served at once (the descriptor budget's share).",
            );
            let _ = writeln!(out, "keel_connections_limit {limit}");
        }
        if let Some(stats) = lock(&self.file_cache).as_ref().map(|probe| probe()) {
            header(
                &mut out,
                "keel_storage_open_files",
                "gauge",
                "Descriptors the storage holds now: cached segment and index handles, and those opening or closing.",
            );
            let _ = writeln!(out, "keel_storage_open_files {}", stats.open_files);
            header(
                &mut out,
                "keel_storage_open_files_limit",
                "gauge",
                "The storage's descriptor cap (its share of RLIMIT_NOFILE).",
            );
            let _ = writeln!(
                out,
                "keel_storage_open_files_limit {}",
                stats.max_open_files
            );
            counter(
                &mut out,
                "keel_storage_file_reopens_total",
                "Opens of existing files the cache did not hold (cache misses; creations excluded).",
                stats.reopens,
            );
            counter(
                &mut out,
                "keel_storage_synced_closes_total",
                "Handles with unsynced writes closed to make room, each after an fsync of its own.",
                stats.synced_closes,
            );
        }

        header(
            &mut out,
            "keel_fsync_duration_seconds",
            "histogram",
            "One group-commit batch: every distinct file it covers synced.",
        );
        self.fsync
            .render(&mut out, "keel_fsync_duration_seconds", "");
        counter(
            &mut out,
            "keel_fsync_files_total",
            "Files synced (each distinct file once per batch).",
            self.fsync_files.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "keel_fsync_failures_total",
            "File syncs that failed (the affected logs stop taking writes).",
            self.fsync_failures.load(Ordering::Relaxed),
        );
        if let Some(disk) = *lock(&self.disk) {
            let gauges: [(&str, &str, u64); 4] = [
                (
                    "keel_disk_free_bytes",
                    "Bytes free for the broker on the data directory's filesystem (last sample, less the broker's writes since).",
                    disk.free_bytes,
                ),
                (
                    "keel_disk_total_bytes",
                    "Size of the data directory's filesystem.",
                    disk.total_bytes,
                ),
                (
                    "keel_disk_min_free_bytes",
                    "The free-space floor: below it produce and topic creation are refused.",
                    disk.floor_bytes,
                ),
                (
                    "keel_disk_low_space",
                    "1 while free space is below the floor (writes refused), else 0.",
                    u64::from(disk.low_space),
                ),
            ];
            for (name, help, value) in gauges {
                header(&mut out, name, "gauge", help);
                let _ = writeln!(out, "{name} {value}");
            }
        }

        if let Some(node) = node {
            let partitions = &node.partitions;
            type Field = fn(&PartitionGauges) -> i64;
            let gauges: [(&str, &str, Field); 4] = [
                (
                    "keel_log_start_offset",
                    "First offset still in the partition's log.",
                    |p| p.log_start_offset,
                ),
                (
                    "keel_log_end_offset",
                    "Offset the partition's next record gets.",
                    |p| p.log_end_offset,
                ),
                (
                    "keel_high_watermark",
                    "Offsets below it are durable and served to consumers.",
                    |p| p.high_watermark,
                ),
                (
                    "keel_log_size_bytes",
                    "Bytes of the partition's log segments (Kafka's Log Size).",
                    |p| p.size_bytes,
                ),
            ];
            for (name, help, field) in gauges {
                header(&mut out, name, "gauge", help);
                for p in partitions {
                    let _ = writeln!(
                        out,
                        "{name}{{topic=\"{}\",partition=\"{}\"}} {}",
                        escape_label(&p.topic),
                        p.partition,
                        field(p)
                    );
                }
            }
            render_group_offsets(&mut out, node);
            if let Some(c) = &node.cluster {
                render_cluster(&mut out, c);
            }
        }
        out
    }
}

/// The gauges Kafka operators alert on, as this broker sees the cluster.
fn render_cluster(out: &mut String, c: &keel_core::node::ClusterStats) {
    let gauges: [(&str, &str, u64); 8] = [
        (
            "keel_controller_active",
            "1 on the active controller, else 0 (Kafka's ActiveControllerCount).",
            u64::from(c.active_controller),
        ),
        (
            "keel_metadata_quorum_term",
            "The metadata quorum's Raft term: the controller epoch.",
            c.quorum_term,
        ),
        (
            "keel_metadata_quorum_commit_index",
            "The last metadata log index known committed here.",
            c.quorum_commit_index,
        ),
        (
            "keel_metadata_quorum_applied_index",
            "The last metadata log index applied here; commit minus applied is the lag.",
            c.quorum_applied_index,
        ),
        (
            "keel_registered_brokers",
            "Brokers the metadata log holds a registration of.",
            c.registered_brokers as u64,
        ),
        (
            "keel_fenced_brokers",
            "Registered brokers the controller does not hear from.",
            c.fenced_brokers as u64,
        ),
        (
            "keel_offline_partitions",
            "Partitions whose leader is fenced (Kafka's OfflinePartitionsCount).",
            c.offline_partitions as u64,
        ),
        (
            "keel_leader_partitions",
            "Partitions this broker leads (Kafka's LeaderCount).",
            c.leader_partitions as u64,
        ),
    ];
    for (name, help, value) in gauges {
        header(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    header(
        out,
        "keel_controller_id",
        "gauge",
        "The active controller's broker id, -1 while none is known.",
    );
    let _ = writeln!(out, "keel_controller_id {}", c.controller_id);
    counter(
        out,
        "keel_metadata_quorum_elections_won_total",
        "Elections of the metadata quorum this broker won.",
        c.elections_won,
    );
}

/// The crate's version (the workspace's) and the git commit it was built from.
const VERSION: &str = env!("CARGO_PKG_VERSION");
const COMMIT: &str = env!("KEEL_GIT_COMMIT");

/// Committed offsets and lag per (group, topic, partition). Lag is Kafka's: the partition's
/// high watermark minus the committed offset, never below 0 (a group may commit past the
/// end); it is left out where it has no meaning: the partition is not on this node (its topic
/// was deleted) or the committed offset is negative (a client may commit -1).
fn render_group_offsets(out: &mut String, node: &NodeGauges) {
    let high_watermarks: BTreeMap<(&str, i32), i64> = node
        .partitions
        .iter()
        .map(|p| ((p.topic.as_str(), p.partition), p.high_watermark))
        .collect();
    let labels = |g: &GroupOffsetGauges| {
        format!(
            "group=\"{}\",topic=\"{}\",partition=\"{}\"",
            escape_label(&g.group),
            escape_label(&g.topic),
            g.partition
        )
    };
    header(
        out,
        "keel_consumer_group_committed_offset",
        "gauge",
        "The offset a consumer group committed for a partition (the next it will consume).",
    );
    for g in &node.group_offsets {
        let _ = writeln!(
            out,
            "keel_consumer_group_committed_offset{{{}}} {}",
            labels(g),
            g.committed_offset
        );
    }
    header(
        out,
        "keel_consumer_group_lag",
        "gauge",
        "The partition's high watermark minus the group's committed offset (at least 0).",
    );
    for g in &node.group_offsets {
        let Some(&hw) = high_watermarks.get(&(g.topic.as_str(), g.partition)) else {
            continue;
        };
        if g.committed_offset < 0 {
            continue;
        }
        let lag = hw.saturating_sub(g.committed_offset).max(0);
        let _ = writeln!(out, "keel_consumer_group_lag{{{}}} {lag}", labels(g));
    }
    header(
        out,
        "keel_consumer_group_offsets_omitted",
        "gauge",
        &format!(
            "Committed offsets left out of this scrape, which reports at most \
             {MAX_GROUP_OFFSET_SERIES}."
        ),
    );
    let _ = writeln!(
        out,
        "keel_consumer_group_offsets_omitted {}",
        node.group_offsets_omitted
    );
}

/// Counts a connection open until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value with `\`, `"` and newlines escaped, as the exposition format requires.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Calls `f` with every error code in `response` (NONE included; the caller filters).
/// Responses of APIs added later than this function count nothing until it learns them.
fn error_codes(response: &api::Response, f: &mut impl FnMut(ErrorCode)) {
    use api::Response as R;
    match response {
        R::Metadata(r) => {
            for t in &r.topics {
                f(t.error_code);
                t.partitions.iter().for_each(|p| f(p.error_code));
            }
        }
        R::Produce(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| f(p.error_code)),
        R::Fetch(r) => {
            f(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| f(p.error_code));
        }
        R::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| f(p.error_code)),
        R::CreateTopics(r) => r.topics.iter().for_each(|t| f(t.error_code)),
        R::DeleteTopics(r) => r.responses.iter().for_each(|t| f(t.error_code)),
        R::DeleteRecords(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| f(p.error_code)),
        R::CreatePartitions(r) => r.results.iter().for_each(|t| f(t.error_code)),
        R::DescribeCluster(r) => f(r.error_code),
        R::DescribeLogDirs(r) => {
            f(r.error_code);
            r.results.iter().for_each(|d| f(d.error_code));
        }
        R::DescribeConfigs(r) => r.results.iter().for_each(|t| f(t.error_code)),
        R::AlterConfigs(r) | R::IncrementalAlterConfigs(r) => {
            r.responses.iter().for_each(|t| f(t.error_code))
        }
        R::FindCoordinator(r) => r.coordinators.iter().for_each(|c| f(c.error_code)),
        R::JoinGroup(r) => f(r.error_code),
        R::SyncGroup(r) => f(r.error_code),
        R::Heartbeat(r) => f(r.error_code),
        R::LeaveGroup(r) => {
            f(r.error_code);
            r.members.iter().for_each(|m| f(m.error_code));
        }
        R::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| f(p.error_code)),
        R::OffsetFetch(r) => {
            for g in &r.groups {
                f(g.error_code);
                g.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .for_each(|p| f(p.error_code));
            }
        }
        R::ListGroups(r) => f(r.error_code),
        R::DescribeGroups(r) => r.groups.iter().for_each(|g| f(g.error_code)),
        R::DeleteGroups(r) => r.results.iter().for_each(|g| f(g.error_code)),
        R::OffsetDelete(r) => {
            f(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| f(p.error_code));
        }
        R::InitProducerId(r) => f(r.error_code),
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

// ---- HTTP --------------------------------------------------------------------------------

/// Serves `GET /metrics` and `GET /health` on `listener` until the task is dropped. See the
/// module docs for the limits.
pub async fn serve_http(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        // Reap finished exchanges so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tasks.spawn(async move {
            let _permit = permit;
            let exchange = exchange(stream, &metrics, HEAD_TIMEOUT);
            if tokio::time::timeout(HTTP_TIMEOUT, exchange).await.is_err() {
                tracing::debug!(%peer, "metrics request timed out");
            }
        });
    }
}

/// How reading a request head ended, short of the peer going away.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// A whole head whose request line is HTTP/1.x.
    Request(String),
    /// Refused with this status before (or without) reading the whole head: 400 for bytes
    /// that are not an HTTP/1.x request, 408 for a head slower than [`HEAD_TIMEOUT`], 431
    /// for one longer than [`MAX_REQUEST_HEAD`].
    Refused(u16),
}

/// One request, one response, then close; the head must arrive within `head_timeout`.
async fn exchange(mut stream: tokio::net::TcpStream, metrics: &Metrics, head_timeout: Duration) {
    let head = match tokio::time::timeout(head_timeout, read_head(&mut stream)).await {
        Err(_elapsed) => Head::Refused(408),
        Ok(Err(())) => return,
        Ok(Ok(head)) => head,
    };
    let (status, content_type, body, head_only) = match &head {
        Head::Refused(status) => (
            *status,
            "text/plain",
            format!("{}\n", reason(*status).to_lowercase()),
            false,
        ),
        Head::Request(head) => {
            let (status, content_type, body) = route(head, metrics).await;
            (status, content_type, body, head.starts_with("HEAD "))
        }
    };
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        reason(status),
        body.len()
    );
    if status == 405 {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if !head_only {
        response.push_str(&body);
    }
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    if matches!(head, Head::Refused(_)) {
        linger(&mut stream).await;
    }
}

/// The reason phrase of the statuses [`exchange`] answers with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    }
}

/// Reads and discards what the peer still sends, up to [`LINGER_BYTES`] within [`LINGER`],
/// after the answer was written and the write side shut: closing a socket with input
/// unread makes the kernel reset the connection, and the peer may lose the answer with it.
async fn linger(stream: &mut tokio::net::TcpStream) {
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER, async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Reads the request head (up to the blank line), refusing it as soon as what arrived cannot
/// begin an HTTP/1.x request line or exceeds [`MAX_REQUEST_HEAD`]. `Err`: the peer went away
/// before sending anything.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Result<Head, ()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if !may_begin_request_line(&buf) {
            return Ok(Head::Refused(400));
        }
        if let Some(end) = find_head_end(&buf) {
            buf.truncate(end);
            return Ok(match String::from_utf8(buf) {
                Ok(head) if parse_request_line(&head).is_some() => Head::Request(head),
                _ => Head::Refused(400),
            });
        }
        if buf.len() >= MAX_REQUEST_HEAD {
            return Ok(Head::Refused(431));
        }
        let want = chunk.len().min(MAX_REQUEST_HEAD - buf.len());
        match stream.read(&mut chunk[..want]).await {
            Ok(0) if buf.is_empty() => return Err(()),
            // Ended before the blank line: not a request.
            Ok(0) => return Ok(Head::Refused(400)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(()),
        }
    }
}

/// Whether `buf`, the start of what a client sent, can still be (or is) the start of an
/// HTTP/1.x request line `METHOD SP /TARGET SP HTTP/1.x CRLF` as [`parse_request_line`]
/// accepts it: a Kafka frame fails at its first byte (a length's high byte, 0), a TLS
/// ClientHello at its first (0x16).
fn may_begin_request_line(buf: &[u8]) -> bool {
    let (line, complete) = match buf.iter().position(|&b| b == b'\n') {
        Some(end) => (&buf[..end], true),
        None => (buf, false),
    };
    // What `line` may still be followed by: nothing if the line ended.
    let partial_ok = !complete;
    let method_len = line.iter().take_while(|b| b.is_ascii_uppercase()).count();
    if method_len > MAX_METHOD_LEN {
        return false;
    }
    let rest = &line[method_len..];
    let Some((&sp, rest)) = rest.split_first() else {
        return partial_ok;
    };
    if method_len == 0 || sp != b' ' {
        return false;
    }
    let Some((&slash, _)) = rest.split_first() else {
        return partial_ok;
    };
    if slash != b'/' {
        return false;
    }
    let target_len = rest.iter().take_while(|b| b.is_ascii_graphic()).count();
    let Some((&sp, version)) = rest[target_len..].split_first() else {
        return partial_ok;
    };
    if sp != b' ' {
        return false;
    }
    let with_cr = version.strip_suffix(b"\r");
    if complete {
        HTTP_VERSIONS.contains(&with_cr.unwrap_or(version))
    } else {
        // Still arriving: a prefix of a version, or a version and its CR.
        HTTP_VERSIONS.iter().any(|v| v.starts_with(version))
            || with_cr.is_some_and(|v| HTTP_VERSIONS.contains(&v))
    }
}

/// The versions a request line may name.
const HTTP_VERSIONS: [&[u8]; 2] = [b"HTTP/1.1", b"HTTP/1.0"];

/// Where the head ends (before `\r\n\r\n`, or `\n\n` from lenient clients).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The status, content type and body for a request head.
async fn route(head: &str, metrics: &Metrics) -> (u16, &'static str, String) {
    let Some((method, path)) = parse_request_line(head) else {
        return (400, "text/plain", "bad request\n".to_string());
    };
    if method != "GET" && method != "HEAD" {
        return (405, "text/plain", "method not allowed\n".to_string());
    }
    // A query string is ignored, as Prometheus servers do.
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/metrics" => {
            let node = metrics.probe().await;
            let mut body = metrics.render(node.as_ref());
            process::render(&mut body);
            (200, "text/plain; version=0.0.4; charset=utf-8", body)
        }
        "/health" => {
            let (status, body) = metrics.health();
            (status, "text/plain", body)
        }
        _ => (
            404,
            "text/plain",
            "not found: try /metrics or /health\n".to_string(),
        ),
    }
}

/// `METHOD SP TARGET SP HTTP/1.x` with a method of at most [`MAX_METHOD_LEN`] uppercase
/// letters and a target of visible ASCII starting with `/`; anything else is a bad request.
fn parse_request_line(head: &str) -> Option<(&str, &str)> {
    let line = head.lines().next()?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || method.len() > MAX_METHOD_LEN
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || !target.bytes().all(|b| b.is_ascii_graphic())
        || !HTTP_VERSIONS.contains(&version.as_bytes())
    {
        return None;
    }
    Some((method, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(100), "0.0001");
        assert_eq!(seconds(2_500), "0.0025");
        assert_eq!(seconds(1_000_000), "1");
        assert_eq!(seconds(30_000_000), "30");
        assert_eq!(seconds(1_250_001), "1.250001");
        assert_eq!(seconds(0), "0");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_count() {
        let h = Histogram::default();
        for us in [50, 100, 101, 2_000, 40_000_000] {
            h.observe(Duration::from_micros(us));
        }
        let mut out = String::new();
        h.render(&mut out, "x", "api=\"Produce\"");
        assert!(
            out.contains("x_bucket{api=\"Produce\",le=\"0.0001\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{api=\"Produce\",le=\"0.00025\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{api=\"Produce\",le=\"0.0025\"} 4\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{api=\"Produce\",le=\"30\"} 4\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{api=\"Produce\",le=\"+Inf\"} 5\n"),
            "{out}"
        );
        assert!(out.contains("x_count{api=\"Produce\"} 5\n"), "{out}");
        assert!(out.contains("x_sum{api=\"Produce\"} 40.002251\n"), "{out}");
        let mut bare = String::new();
        Histogram::default().render(&mut bare, "y", "");
        assert!(
            bare.contains("y_bucket{le=\"+Inf\"} 0\ny_sum 0\ny_count 0\n"),
            "{bare}"
        );
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line("GET /metrics HTTP/1.1\r\nHost: x"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(parse_request_line("GET /metrics HTTP/2"), None);
        assert_eq!(parse_request_line("get /metrics HTTP/1.1"), None);
        assert_eq!(parse_request_line("GET metrics HTTP/1.1"), None);
        assert_eq!(parse_request_line("GET  /metrics HTTP/1.1"), None);
        assert_eq!(parse_request_line("\u{0}\u{1}garbage"), None);
        assert_eq!(parse_request_line(""), None);
    }

    #[test]
    fn errors_count_by_api_and_code_and_labels_escape() {
        let m = Metrics::new();
        let response = api::Response::Produce(api::ProduceResponse {
            topics: vec![api::ProduceTopicResponse {
                name: "t".into(),
                partitions: vec![
                    api::ProducePartitionResponse::error(
                        0,
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        None,
                    ),
                    api::ProducePartitionResponse::error(1, ErrorCode::NONE, None),
                ],
            }],
            throttle_time_ms: 0,
        });
        m.response_errors(&response);
        m.response_errors(&response);
        let text = m.render(Some(&NodeGauges {
            partitions: vec![PartitionGauges {
                topic: "a\"b\\c".into(),
                partition: 2,
                log_start_offset: 0,
                log_end_offset: 7,
                high_watermark: 5,
                size_bytes: 4096,
            }],
            ..NodeGauges::default()
        }));
        assert!(
            text.contains("keel_error_responses_total{api=\"Produce\",code=\"3\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("keel_log_end_offset{topic=\"a\\\"b\\\\c\",partition=\"2\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("keel_log_size_bytes{topic=\"a\\\"b\\\\c\",partition=\"2\"} 4096\n"),
            "{text}"
        );
        assert!(text.contains("keel_up 0\n"), "starting");
        let guard = m.connection_opened();
        assert!(m.render(None).contains("keel_connections_open 1\n"));
        drop(guard);
        assert!(m.render(None).contains("keel_connections_open 0\n"));
    }

    fn partition(topic: &str, partition: i32, high_watermark: i64) -> PartitionGauges {
        PartitionGauges {
            topic: topic.into(),
            partition,
            log_start_offset: 0,
            log_end_offset: high_watermark + 3,
            high_watermark,
            size_bytes: 0,
        }
    }

    fn committed(group: &str, topic: &str, partition: i32, offset: i64) -> GroupOffsetGauges {
        GroupOffsetGauges {
            group: group.into(),
            topic: topic.into(),
            partition,
            committed_offset: offset,
        }
    }

    #[test]
    fn lag_is_the_high_watermark_minus_the_committed_offset_never_negative() {
        let node = NodeGauges {
            cluster: None,
            partitions: vec![partition("t", 0, 10), partition("t", 1, 4)],
            group_offsets: vec![
                committed("g", "t", 0, 3),
                // Committed past the high watermark (or the log end): lag 0, not -2.
                committed("g", "t", 1, 6),
                // -1 committed: no lag to speak of.
                committed("h\"x", "t", 0, -1),
                // The topic is gone from this node.
                committed("h\"x", "gone", 0, 5),
            ],
            group_offsets_omitted: 7,
        };
        let text = Metrics::new().render(Some(&node));
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("keel_consumer_group_"))
            .collect();
        assert_eq!(
            lines,
            [
                "keel_consumer_group_committed_offset{group=\"g\",topic=\"t\",partition=\"0\"} 3",
                "keel_consumer_group_committed_offset{group=\"g\",topic=\"t\",partition=\"1\"} 6",
                "keel_consumer_group_committed_offset{group=\"h\\\"x\",topic=\"t\",partition=\"0\"} -1",
                "keel_consumer_group_committed_offset{group=\"h\\\"x\",topic=\"gone\",partition=\"0\"} 5",
                "keel_consumer_group_lag{group=\"g\",topic=\"t\",partition=\"0\"} 7",
                "keel_consumer_group_lag{group=\"g\",topic=\"t\",partition=\"1\"} 0",
                "keel_consumer_group_offsets_omitted 7",
            ],
            "{text}"
        );
        assert!(text.contains("# TYPE keel_consumer_group_lag gauge\n"));
        // Without the node's answer there are no offsets to speak of, not zeros.
        assert!(!Metrics::new()
            .render(None)
            .contains("keel_consumer_group_lag"));
    }

    #[test]
    fn build_info_names_the_version_and_a_commit() {
        let text = Metrics::new().render(None);
        let want = format!(
            "# TYPE keel_build_info gauge\nkeel_build_info{{version=\"{}\",commit=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION"),
            COMMIT
        );
        assert!(text.contains(&want), "{text}");
        assert!(
            COMMIT == "unknown"
                || (COMMIT.len() >= 4 && COMMIT.bytes().all(|b| b.is_ascii_hexdigit())),
            "{COMMIT}"
        );
    }

    #[test]
    fn request_line_prefixes_are_judged_as_they_arrive() {
        let full = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        for end in 0..=full.len() {
            assert!(may_begin_request_line(&full[..end]), "{end}");
        }
        assert!(may_begin_request_line(b"HEAD /health HTTP/1.0\n\n"));
        // Kafka's ApiVersions frame: a 4-byte length, then the header.
        assert!(!may_begin_request_line(b"\0\0\0\x1f\0\x12\0\x03"));
        // A TLS ClientHello.
        assert!(!may_begin_request_line(b"\x16\x03\x01\x00\xa5"));
        for bad in [
            &b"get"[..],
            b"GET\r",
            b"GET\n",
            b"GET  /",
            b"GET metrics",
            b"GET /metrics\r\n",
            b"GET /met\x01rics HTTP/1.1",
            b"GET /metrics HTTP/2",
            b"GET /metrics HTTP/1.1 x",
            b"GET /metrics HTTP/1.1\r\r",
            b"GET /metrics HTTP/1.1x\r\n",
            b"GET /metrics HTTP/1.\r\n",
            b"AAAAAAAAAAAAAAAAA",
        ] {
            assert!(
                !may_begin_request_line(bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Whatever it accepts whole, parse_request_line accepts too.
        assert!(parse_request_line("GET /metrics?x=1 HTTP/1.1").is_some());
        assert!(parse_request_line(&format!("{} / HTTP/1.1", "A".repeat(17))).is_none());
    }

    /// Sends `request` to one [`exchange`] (with `head_timeout`) and reads its answer until
    /// it closes; `then_wait`: keep the sending side open meanwhile.
    async fn exchange_with(request: &[u8], then_wait: bool, head_timeout: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            exchange(stream, &Metrics::new(), head_timeout).await;
        });
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        if !then_wait {
            stream.shutdown().await.unwrap();
        }
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer));
        read.await.expect("answered and closed").unwrap();
        server.abort();
        String::from_utf8(answer).unwrap()
    }

    #[tokio::test]
    async fn a_kafka_frame_is_answered_400_without_waiting_for_more() {
        // The client keeps its side open, as a Kafka client waiting for its answer does: the
        // 400 must come from the bytes alone, not from the timeout or the end of input.
        let frame = b"\0\0\0\x1f\0\x12\0\x03\0\0\0\x01\0\x07rdkafka\0\x07rdkafka\x051.0\0";
        let answer = exchange_with(frame, true, Duration::from_secs(3600)).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
    }

    #[tokio::test]
    async fn a_head_too_long_is_431_and_one_cut_short_400() {
        let mut long = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
        long.resize(MAX_REQUEST_HEAD + 100, b'a');
        let answer = exchange_with(&long, true, Duration::from_secs(3600)).await;
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{answer}"
        );
        // A head cut short by the end of input is not a request.
        let answer = exchange_with(
            b"GET /metrics HTTP/1.1\r\nHost",
            false,
            Duration::from_secs(3600),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    }

    #[tokio::test]
    async fn a_client_slower_than_the_head_timeout_is_answered_408() {
        let timeout = Duration::from_millis(200);
        let started = tokio::time::Instant::now();
        let answer = exchange_with(b"GET /metr", true, timeout).await;
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{answer}"
        );
        assert!(started.elapsed() >= timeout);
    }
}
