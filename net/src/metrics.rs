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
//! What the registry cannot count itself, the node's per-partition offsets, is asked of the
//! node task at scrape time through a [`NodeProbe`] the driver attaches while it serves: the
//! answer is exact when the scrape is served, and nothing is computed while nobody scrapes.
//!
//! The HTTP side ([`serve_http`]) is production-only: it reads at most
//! [`MAX_REQUEST_HEAD`] bytes of a request head within [`HTTP_TIMEOUT`], answers one request
//! per connection (`Connection: close`), and serves at most [`MAX_HTTP_CONNECTIONS`] at a time,
//! so a slow or hostile scraper costs a bounded amount of memory and never touches the broker.

use crate::codec::ApiKey;
use keel_core::api;
use keel_core::error::ErrorCode;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Upper bounds (inclusive, microseconds) of the latency histograms' buckets: 100 µs to 30 s,
/// roughly 1-2.5-5 per decade; slower observations land in `+Inf` only.
pub const LATENCY_BUCKETS_US: [u64; 17] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// API keys are small non-negative numbers (Kafka's largest is under 100): per-API series live
/// in a fixed table indexed by key, so recording needs no lock.
const API_SLOTS: usize = 128;

/// The most bytes of an HTTP request head read before answering 400 (431 would be more
/// precise; 400 is what every scraper understands).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long one HTTP exchange (reading the head, building and writing the answer) may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A scrape's question to the node task: answer with every partition's offsets.
pub type ProbeRequest = oneshot::Sender<Vec<PartitionGauges>>;

/// The node task's end of the probe channel, attached while it serves.
pub type NodeProbe = mpsc::Sender<ProbeRequest>;

/// Everything one driver run counts. See the module docs.
#[derive(Debug)]
pub struct Metrics {
    state: AtomicU8,
    apis: Box<[ApiStats]>,
    /// (API key, error code) → responses carrying that code (each occurrence counts once:
    /// a produce failing on three partitions counts three).
    errors: Mutex<BTreeMap<(i16, i16), u64>>,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    connections_open: AtomicI64,
    connections_accepted: AtomicU64,
    /// Connections closed by the driver for bad input (bad frame, malformed request).
    connections_rejected: AtomicU64,
    fsync: Histogram,
    fsync_files: AtomicU64,
    fsync_failures: AtomicU64,
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
            connections_open: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_rejected: AtomicU64::new(0),
            fsync: Histogram::default(),
            fsync_files: AtomicU64::new(0),
            fsync_failures: AtomicU64::new(0),
            probe: Mutex::new(None),
        }
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

    /// One group-commit batch synced `files` files in `elapsed`, `failures` of them failing.
    pub fn fsync_batch(&self, elapsed: Duration, files: usize, failures: usize) {
        self.fsync.observe(elapsed);
        self.fsync_files.fetch_add(files as u64, Ordering::Relaxed);
        self.fsync_failures
            .fetch_add(failures as u64, Ordering::Relaxed);
    }

    /// Asks the node task for its partitions' offsets; `None` if it is not serving or does
    /// not answer within [`PROBE_TIMEOUT`].
    pub async fn probe_partitions(&self) -> Option<Vec<PartitionGauges>> {
        let probe = lock(&self.probe).clone()?;
        let (tx, rx) = oneshot::channel();
        probe.send(tx).await.ok()?;
        tokio::time::timeout(PROBE_TIMEOUT, rx).await.ok()?.ok()
    }

    /// The whole registry in the Prometheus text format; `partitions` are the node's offsets
    /// if the probe answered.
    pub fn render(&self, partitions: Option<&[PartitionGauges]>) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let state = self.state();
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

        if let Some(partitions) = partitions {
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
        }
        out
    }
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
            if tokio::time::timeout(HTTP_TIMEOUT, exchange(stream, &metrics))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "metrics request timed out");
            }
        });
    }
}

/// One request, one response, then close.
async fn exchange(mut stream: tokio::net::TcpStream, metrics: &Metrics) {
    let (status, content_type, body, head_only) = match read_head(&mut stream).await {
        Err(()) => return,
        Ok(None) => (400, "text/plain", "bad request\n".to_string(), false),
        Ok(Some(head)) => {
            let (status, content_type, body) = route(&head, metrics).await;
            (status, content_type, body, head.starts_with("HEAD "))
        }
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
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
}

/// Reads the request head (up to the blank line). `Ok(None)`: not a valid HTTP/1.x head
/// within [`MAX_REQUEST_HEAD`] bytes; `Err`: the peer went away first.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Result<Option<String>, ()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_head_end(&buf) {
            buf.truncate(end);
            return Ok(String::from_utf8(buf).ok());
        }
        if buf.len() >= MAX_REQUEST_HEAD {
            return Ok(None);
        }
        let want = chunk.len().min(MAX_REQUEST_HEAD - buf.len());
        match stream.read(&mut chunk[..want]).await {
            Ok(0) if buf.is_empty() => return Err(()),
            // Ended before the blank line: answer what we can.
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(()),
        }
    }
}

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
            let partitions = metrics.probe_partitions().await;
            let body = metrics.render(partitions.as_deref());
            (200, "text/plain; version=0.0.4; charset=utf-8", body)
        }
        "/health" => match metrics.state() {
            NodeState::Serving => (200, "text/plain", "ok\n".to_string()),
            state => (503, "text/plain", format!("{}\n", state.name())),
        },
        _ => (
            404,
            "text/plain",
            "not found: try /metrics or /health\n".to_string(),
        ),
    }
}

/// `METHOD SP TARGET SP HTTP/1.x` with a method of uppercase letters and a target starting
/// with `/`; anything else is a bad request.
fn parse_request_line(head: &str) -> Option<(&str, &str)> {
    let line = head.lines().next()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || !(version == "HTTP/1.1" || version == "HTTP/1.0")
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
        let text = m.render(Some(&[PartitionGauges {
            topic: "a\"b\\c".into(),
            partition: 2,
            log_start_offset: 0,
            log_end_offset: 7,
            high_watermark: 5,
            size_bytes: 4096,
        }]));
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
}
