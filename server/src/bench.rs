//! `keel bench`: load generators that measure a broker from the outside, as a client sees it.
//! `keel bench produce` reports records/s, MB/s, per-request produce latency percentiles and
//! memory, next to a baseline measured in the same run (DESIGN.md, Testing).
//!
//! With `--spawn` it starts `keel serve` itself on a fresh data directory, first timing that
//! directory's raw sequential write + fdatasync speed (the ceiling for any durable log on that
//! disk) and its small-append fdatasync latency (the floor under acks=-1 latency), and reads the
//! broker's peak RSS before stopping it with SIGTERM. Each producer task owns one connection
//! with one request in flight (the client is `&mut self`), so `--concurrency` is the number of
//! connections. Latencies go into a [`Histogram`] per task (bounded log-linear buckets, merged
//! at the end), never a Vec of samples, so memory stays flat however long the run.
//!
//! This is a driver-side program, not core: it reads the clock and the OS freely. After each
//! case the partitions' end offsets are read back, so a bench that "succeeds" while records go
//! missing is reported as unhealthy rather than fast.

use crate::cli::records::{self, Compression};
use keel_core::api::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use keel_core::error::ErrorCode;
use keel_core::record::builder::Record;
use keel_net::client::{Client, ClientError, ClientOptions};
use keel_net::codec::{self, describe_configs::RESOURCE_TYPE_TOPIC, ApiKey};
use keel_net::network::Tokio;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// `keel bench ...`
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce from N connections; report records/s, MB/s, latency percentiles and memory.
    ///
    /// Compression, two ways: `--compression zstd` has the bench compress each batch, and a
    /// topic left at compression.type=producer stores it as sent; `--compression none
    /// --topic-config compression.type=zstd` sends plain batches to a topic created with that
    /// config, so the broker recompresses every batch before appending it. Run both with
    /// `--payload text` (random bytes do not compress) on fresh topics (or with --spawn) and
    /// compare records/s, latency and the bytes stored against the wire bytes ("stored" in
    /// the summary, from DescribeLogDirs) to see what broker-side compression costs:
    ///
    ///   keel bench produce --payload text --compression zstd --topic by-producer
    ///   keel bench produce --payload text --topic-config compression.type=zstd --topic by-broker
    Produce(ProduceArgs),
    /// Fill a topic (or reuse one), then fetch it from N connections; report records/s, MB/s,
    /// fetch latency percentiles and memory.
    Consume(ConsumeArgs),
}

/// `keel bench produce` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ProduceArgs {
    /// Broker to benchmark, HOST:PORT [env: KEEL_BOOTSTRAP_SERVER, ignored with --spawn]
    /// [default: 127.0.0.1:9092].
    #[arg(long, conflicts_with = "spawn", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Topic to produce to; created with --partitions if missing (--matrix adds a suffix).
    #[arg(long, default_value = "keel-bench")]
    pub topic: String,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub partitions: i32,
    /// Bytes in each record's value (keys are 8 bytes).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=(1 << 20)))]
    pub record_size: u32,
    /// Records per produce request (one batch to one partition).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_records: u32,
    /// 0 (no response, so no latency), 1 (leader appended) or -1/all (durable).
    #[arg(long, default_value = "1", value_parser = parse_acks, allow_negative_numbers = true)]
    pub acks: i16,
    /// Compression of each batch (Kafka's compression.type names).
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,
    /// A config of the topic when the bench creates it, KEY=VALUE (repeatable), e.g.
    /// --topic-config compression.type=zstd. An existing topic must already have it.
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = crate::cli::parse_key_value)]
    pub topic_configs: Vec<(String, String)>,
    /// What keys and values hold: random bytes (incompressible) or text (compresses like
    /// JSON or log lines, so compression's savings show).
    #[arg(long, value_enum, default_value = "random")]
    pub payload: Payload,
    /// Total records to produce per case [default: 1000000 unless --duration is given].
    #[arg(long, conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Produce for this many seconds per case instead of a record count.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: Option<u64>,
    /// Connections, each a producer task with one request in flight.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Start `keel serve` on a free port and a fresh temp data dir, measure that dir's disk
    /// baseline first, report the broker's peak RSS, then stop it and delete the dir.
    #[arg(long)]
    pub spawn: bool,
    /// Run 100 B and 1 KiB records x acks=1 and acks=-1, each on a fresh topic (needs --spawn).
    #[arg(long, requires = "spawn")]
    pub matrix: bool,
    /// MiB written for the disk baseline (with --spawn); 0 skips it.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(0..=65_536))]
    pub baseline_mib: u64,
}

/// Runs a `keel bench` command. Exit status: 0 for a healthy run, 1 for failures or a run
/// with produce errors or missing records.
pub fn run(args: BenchArgs) -> ExitCode {
    match args.command {
        BenchCommand::Produce(args) => match produce(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("keel bench produce: {e}");
                ExitCode::FAILURE
            }
        },
        BenchCommand::Consume(args) => match consume(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("keel bench consume: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

// ---- errors ------------------------------------------------------------------------------

/// Why a benchmark could not run to the end.
#[derive(Debug)]
enum BenchError {
    /// The broker could not be reached or refused the handshake.
    Connect {
        addr: SocketAddr,
        source: ClientError,
    },
    /// `--bootstrap-server` did not name an address.
    Address(String),
    /// Creating or inspecting the topic failed.
    Topic(String),
    /// A request failed mid-run (IO, timeout, bad response): the run stops.
    Request(String),
    /// Starting, watching or stopping the spawned broker failed.
    Spawn(String),
    /// Local IO (temp dir, disk baseline, runtime) failed.
    Io { what: String, source: io::Error },
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // It names the address itself: "127.0.0.1:9644 answered with HTTP, ...".
            BenchError::Connect {
                source: source @ ClientError::NotKafka { .. },
                ..
            } => write!(f, "{source}"),
            BenchError::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            BenchError::Address(a) => write!(f, "--bootstrap-server {a}: not a HOST:PORT address"),
            BenchError::Topic(m) => write!(f, "topic: {m}"),
            BenchError::Request(m) => write!(f, "request failed: {m}"),
            BenchError::Spawn(m) => write!(f, "spawned broker: {m}"),
            BenchError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

// ---- the produce benchmark ------------------------------------------------------------------

/// Default record count when neither --count nor --duration is given.
const DEFAULT_COUNT: u64 = 1_000_000;
/// Kafka's default message.max.bytes: bigger batches are refused by a default broker.
const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_048_588;
/// --matrix: (record size, acks).
const MATRIX: [(u32, i16); 4] = [(100, 1), (100, -1), (1024, 1), (1024, -1)];
const KEY_BYTES: usize = 8;
/// How long records may take to show up in the end offsets after the last response (or,
/// with acks=0, after the last send).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One measured configuration.
#[derive(Debug, Clone, Copy)]
struct Case {
    record_size: u32,
    acks: i16,
    compression: Compression,
}

/// What record keys and values hold (`--payload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Payload {
    /// Random bytes: compression costs CPU and saves nothing.
    Random,
    /// Words drawn at random from a small vocabulary, space-separated: compresses several
    /// times over, as text does.
    Text,
}

/// `--compression`'s value as Kafka names it.
fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

/// When producers stop.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Records(u64),
    Time(Duration),
}

/// What every case shares.
#[derive(Debug, Clone)]
struct Load {
    partitions: i32,
    batch_records: u32,
    concurrency: u32,
    limit: Limit,
    /// Configs the topic is created with (`--topic-config`).
    topic_configs: Vec<(String, String)>,
    payload: Payload,
}

/// The baselines measured on the spawned broker's data directory before it starts.
#[derive(Debug, Clone, Copy)]
struct DiskBaseline {
    /// Sequential 1 MiB writes then one fdatasync, in 10^6 bytes per second.
    write_mb_per_s: Option<f64>,
}

/// Everything one case measured.
#[derive(Debug)]
struct CaseResult {
    case: Case,
    topic: String,
    elapsed: Duration,
    totals: TaskOutcome,
    /// Sum over partitions of the end-offset advance seen after the run.
    offsets_advanced: i64,
    /// Server peak RSS in bytes, and whether it covers this case only.
    server_peak_rss: Option<(u64, bool)>,
    /// How much the topic's partitions grew on the broker (DescribeLogDirs), if it says:
    /// with broker-side compression, less than the wire bytes.
    stored_bytes: Option<i64>,
    /// The topic's configs given with --topic-config.
    topic_configs: Vec<(String, String)>,
}

impl CaseResult {
    fn records_per_s(&self) -> f64 {
        self.totals.records_ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    fn payload_mb_per_s(&self) -> f64 {
        self.totals.payload_bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
    fn wire_mb_per_s(&self) -> f64 {
        self.totals.wire_bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
    fn offsets_match(&self) -> bool {
        self.offsets_advanced == self.totals.records_ok as i64
    }
    fn healthy(&self) -> bool {
        self.totals.error_requests == 0 && self.offsets_match()
    }
}

/// Counters every producer task and the progress printer share.
#[derive(Debug, Default)]
struct Shared {
    /// Records claimed so far (count mode): a task claims a batch before building it.
    claimed: AtomicU64,
    /// Records acknowledged without error (sent, with acks=0).
    records_ok: AtomicU64,
    /// Set by a task whose connection failed: the others stop too.
    stop: AtomicBool,
}

fn produce(args: &ProduceArgs) -> Result<bool, BenchError> {
    let cases: Vec<Case> = if args.matrix {
        MATRIX
            .iter()
            .map(|&(record_size, acks)| Case {
                record_size,
                acks,
                compression: args.compression,
            })
            .collect()
    } else {
        vec![Case {
            record_size: args.record_size,
            acks: args.acks,
            compression: args.compression,
        }]
    };
    let limit = match (args.count, args.duration) {
        (_, Some(secs)) => Limit::Time(Duration::from_secs(secs)),
        (Some(n), None) => Limit::Records(n),
        (None, None) => Limit::Records(DEFAULT_COUNT),
    };
    let load = Load {
        partitions: args.partitions,
        batch_records: args.batch_records,
        concurrency: args.concurrency,
        limit,
        topic_configs: args.topic_configs.clone(),
        payload: args.payload,
    };
    for case in &cases {
        let batch_bytes = u64::from(args.batch_records) * (u64::from(case.record_size) + 30);
        if batch_bytes > DEFAULT_MESSAGE_MAX_BYTES {
            eprintln!(
                "keel bench produce: warning: batches of ~{batch_bytes} bytes exceed the default \
                 message.max.bytes ({DEFAULT_MESSAGE_MAX_BYTES}); the broker may refuse them"
            );
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io_err("cannot start the runtime"))?;

    if !args.spawn {
        let addr = resolve(&bootstrap(
            args.bootstrap_server.as_deref(),
            env_bootstrap(),
        ))?;
        let baseline = DiskBaseline {
            write_mb_per_s: None,
        };
        println!(
            "disk baseline: n/a (the broker was not spawned, so its data directory is unknown; \
             use --spawn for a same-run baseline)"
        );
        let results =
            runtime.block_on(run_cases(addr, &args.topic, &cases, &load, baseline, None))?;
        return Ok(report(&results, baseline, &load));
    }

    // Declared before the broker, so it is dropped (deleted) after the broker has stopped.
    let dir = TempDir::create()?;
    eprintln!("keel bench produce: temp dir {}", dir.path.display());
    let mut baseline = DiskBaseline {
        write_mb_per_s: None,
    };
    if args.baseline_mib > 0 {
        let (bytes, secs) = disk_write_baseline(&dir.path, args.baseline_mib)?;
        let mb_per_s = bytes as f64 / 1e6 / secs.max(1e-9);
        println!(
            "disk baseline: sequential write + fdatasync {mb_per_s:.1} MB/s ({} MiB in 1 MiB \
             chunks, {secs:.3} s, {})",
            args.baseline_mib,
            dir.path.display()
        );
        baseline.write_mb_per_s = Some(mb_per_s);
    }
    let sync = disk_sync_probe(&dir.path)?;
    println!(
        "disk baseline: {} KiB append + fdatasync p50 {} p99 {} max {} ({} syncs)",
        SYNC_PROBE_BYTES / 1024,
        fmt_us(sync.value_at_per_million(P50)),
        fmt_us(sync.value_at_per_million(P99)),
        fmt_us(sync.max()),
        sync.count()
    );

    let mut broker = SpawnedBroker::start(&dir.path)?;
    eprintln!(
        "keel bench produce: spawned keel serve (pid {}) on {}",
        broker.pid(),
        broker.addr
    );
    let addr = broker.addr;
    let outcome = runtime.block_on(run_cases(
        addr,
        &args.topic,
        &cases,
        &load,
        baseline,
        Some(broker.pid()),
    ));
    let stopped = broker.stop();
    let results = match outcome {
        Ok(r) => r,
        Err(e) => {
            if let Some(tail) = broker.log_tail() {
                eprintln!("keel bench produce: last lines of the broker's log:\n{tail}");
            }
            return Err(e);
        }
    };
    let mut healthy = report(&results, baseline, &load);
    match stopped {
        Ok(status) if status.success() => {
            eprintln!("keel bench produce: broker stopped ({status})")
        }
        Ok(status) => {
            healthy = false;
            println!("spawned broker exited badly on SIGTERM: {status}");
            if let Some(tail) = broker.log_tail() {
                println!("last lines of the broker's log:\n{tail}");
            }
        }
        Err(e) => {
            healthy = false;
            println!("spawned broker: {e}");
        }
    }
    Ok(healthy)
}

/// Runs `cases` one after another against `addr`; `server` is the spawned broker's pid, whose
/// peak RSS is reset before and read after each case.
async fn run_cases(
    addr: SocketAddr,
    topic: &str,
    cases: &[Case],
    load: &Load,
    baseline: DiskBaseline,
    server: Option<u32>,
) -> Result<Vec<CaseResult>, BenchError> {
    let mut results = Vec::with_capacity(cases.len());
    for &case in cases {
        let topic = if cases.len() > 1 {
            let acks = if case.acks == -1 {
                "all".to_string()
            } else {
                case.acks.to_string()
            };
            format!("{topic}-{}b-acks{acks}", case.record_size)
        } else {
            topic.to_string()
        };
        let per_case_rss = server.map(reset_peak_rss).unwrap_or(false);
        let mut result = run_case(addr, &topic, case, load).await?;
        result.server_peak_rss = server.and_then(peak_rss).map(|b| (b, per_case_rss));
        println!("{}", summary_block(&result, load, baseline));
        results.push(result);
    }
    Ok(results)
}

/// The admin connection's request timeout: Kafka's AdminClient default (default.api.timeout.ms).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

async fn run_case(
    addr: SocketAddr,
    topic: &str,
    case: Case,
    load: &Load,
) -> Result<CaseResult, BenchError> {
    let options = ClientOptions {
        client_id: "keel-bench".to_string(),
        ..ClientOptions::default()
    };
    let connect = |options: ClientOptions| async move {
        Client::connect(&Tokio, addr, options)
            .await
            .map_err(|source| BenchError::Connect { addr, source })
    };
    // Creating thousands of partitions takes longer than a produce may.
    let mut admin = connect(ClientOptions {
        request_timeout: ADMIN_TIMEOUT,
        ..options.clone()
    })
    .await?;
    let partitions = ensure_topic(&mut admin, topic, load.partitions, &load.topic_configs).await?;
    let start_offsets = end_offsets(&mut admin, topic, partitions).await?;
    let stored_before = stored_bytes(&mut admin, topic, partitions).await;
    let mut clients = Vec::with_capacity(load.concurrency as usize);
    for _ in 0..load.concurrency {
        clients.push(connect(options.clone()).await?);
    }

    let shared = Arc::new(Shared::default());
    let label = format!(
        "produce record={}B acks={} compression={}",
        case.record_size,
        case.acks,
        compression_name(case.compression)
    );
    let start = Instant::now();
    let deadline = match load.limit {
        Limit::Time(d) => Some(start + d),
        Limit::Records(_) => None,
    };
    let progress = tokio::spawn(progress(label, Arc::clone(&shared), start));
    let mut tasks = Vec::with_capacity(clients.len());
    for (task, client) in clients.into_iter().enumerate() {
        let producer = Producer {
            task,
            topic: topic.to_string(),
            partitions,
            case,
            batch_records: load.batch_records as usize,
            limit: load.limit,
            payload: load.payload,
            deadline,
            shared: Arc::clone(&shared),
        };
        tasks.push(tokio::spawn(producer.run(client)));
    }
    let mut totals = TaskOutcome::default();
    let mut failure = None;
    for t in tasks {
        let outcome = match t.await {
            Ok(o) => o,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        failure = failure.or(outcome.failure.clone());
        totals.merge(outcome);
    }
    let mut elapsed = start.elapsed();
    progress.abort();
    if let Some(f) = failure {
        return Err(BenchError::Request(f));
    }

    // Read the records back as offsets. With acks=0 nothing was acknowledged, so the run
    // lasts until they are all in the log: otherwise it would time the socket, not the broker.
    let expected: i64 = start_offsets.iter().sum::<i64>() + totals.records_ok as i64;
    let settle_deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut now_offsets;
    loop {
        now_offsets = end_offsets(&mut admin, topic, partitions).await?;
        if now_offsets.iter().sum::<i64>() >= expected || Instant::now() >= settle_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if case.acks == 0 {
        elapsed = start.elapsed();
    }
    let offsets_advanced = now_offsets.iter().sum::<i64>() - start_offsets.iter().sum::<i64>();
    let stored_after = stored_bytes(&mut admin, topic, partitions).await;
    Ok(CaseResult {
        case,
        topic: topic.to_string(),
        elapsed,
        totals,
        offsets_advanced,
        server_peak_rss: None,
        stored_bytes: stored_before
            .zip(stored_after)
            .map(|(before, after)| after - before),
        topic_configs: load.topic_configs.clone(),
    })
}

/// Prints records so far and the current rate to stderr once a second until aborted.
async fn progress(label: String, shared: Arc<Shared>, start: Instant) {
    let second = Duration::from_secs(1);
    let mut tick = tokio::time::interval_at(start + second, second);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last_n, mut last_at) = (0u64, start);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let n = shared.records_ok.load(Ordering::Relaxed);
        let rate = (n - last_n) as f64 / (now - last_at).as_secs_f64().max(1e-9);
        eprintln!(
            "{label}: {:>6.1} s {n:>12} records {rate:>12.0} records/s",
            (now - start).as_secs_f64()
        );
        (last_n, last_at) = (n, now);
    }
}

/// One connection's producer: one request in flight, partitions in turn.
struct Producer {
    task: usize,
    topic: String,
    partitions: i32,
    case: Case,
    batch_records: usize,
    limit: Limit,
    payload: Payload,
    deadline: Option<Instant>,
    shared: Arc<Shared>,
}

/// What one producer task measured.
#[derive(Debug, Default)]
struct TaskOutcome {
    latency: Histogram,
    requests: u64,
    records_ok: u64,
    /// Record value bytes acknowledged (what MB/s counts, as Kafka's perf tool does).
    payload_bytes: u64,
    /// Batch bytes acknowledged (what crosses the wire and lands in the log).
    wire_bytes: u64,
    error_requests: u64,
    error_records: u64,
    /// Error code -> requests answered with it.
    error_codes: BTreeMap<i16, u64>,
    /// Why the task stopped early (the connection failed).
    failure: Option<String>,
}

impl TaskOutcome {
    fn merge(&mut self, other: TaskOutcome) {
        self.latency.merge(&other.latency);
        self.requests += other.requests;
        self.records_ok += other.records_ok;
        self.payload_bytes += other.payload_bytes;
        self.wire_bytes += other.wire_bytes;
        self.error_requests += other.error_requests;
        self.error_records += other.error_records;
        for (code, n) in other.error_codes {
            *self.error_codes.entry(code).or_default() += n;
        }
    }
}

impl Producer {
    async fn run(self, mut client: Client<tokio::net::TcpStream>) -> TaskOutcome {
        let mut out = TaskOutcome::default();
        let mut rng = XorShift64::for_task(self.task);
        let mut records: Vec<Record> = (0..self.batch_records)
            .map(|_| Record {
                key: Some(vec![0; KEY_BYTES]),
                value: Some(vec![0; self.case.record_size as usize]),
                headers: Vec::new(),
                timestamp_ms: 0,
            })
            .collect();
        let mut partition = (self.task % self.partitions as usize) as i32;
        while !self.shared.stop.load(Ordering::Relaxed) {
            let n = match self.limit {
                Limit::Records(total) => {
                    let want = self.batch_records as u64;
                    let before = self.shared.claimed.fetch_add(want, Ordering::Relaxed);
                    want.min(total.saturating_sub(before)) as usize
                }
                Limit::Time(_) => match self.deadline {
                    Some(d) if Instant::now() >= d => 0,
                    _ => self.batch_records,
                },
            };
            if n == 0 {
                break;
            }
            let now_ms = unix_now_ms();
            for r in &mut records[..n] {
                r.timestamp_ms = now_ms;
                for bytes in [&mut r.key, &mut r.value].into_iter().flatten() {
                    match self.payload {
                        Payload::Random => rng.fill(bytes),
                        Payload::Text => rng.fill_text(bytes),
                    }
                }
            }
            let batch = match records::build(&records[..n], self.case.compression) {
                Ok(b) => b,
                Err(e) => {
                    out.failure =
                        Some(format!("building a batch on connection {}: {e}", self.task));
                    self.shared.stop.store(true, Ordering::Relaxed);
                    break;
                }
            };
            let batch_len = batch.len() as u64;
            let sent = Instant::now();
            let result = client
                .produce(&self.topic, partition, batch, self.case.acks)
                .await;
            out.requests += 1;
            match result {
                Ok(None) => self.ok(&mut out, n, batch_len),
                Ok(Some(response)) => {
                    out.latency.record(sent.elapsed());
                    if response.error_code == 0 {
                        self.ok(&mut out, n, batch_len);
                    } else {
                        out.error_requests += 1;
                        out.error_records += n as u64;
                        *out.error_codes.entry(response.error_code).or_default() += 1;
                    }
                }
                Err(e) => {
                    out.failure = Some(format!(
                        "produce to {}/{partition} on connection {}: {e}",
                        self.topic, self.task
                    ));
                    self.shared.stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
            partition = (partition + 1) % self.partitions;
        }
        out
    }

    fn ok(&self, out: &mut TaskOutcome, records: usize, batch_len: u64) {
        out.records_ok += records as u64;
        out.payload_bytes += records as u64 * u64::from(self.case.record_size);
        out.wire_bytes += batch_len;
        self.shared
            .records_ok
            .fetch_add(records as u64, Ordering::Relaxed);
    }
}

// ---- the consume benchmark ------------------------------------------------------------------

/// `keel bench consume` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsumeArgs {
    /// Broker to benchmark, HOST:PORT [env: KEEL_BOOTSTRAP_SERVER, ignored with --spawn]
    /// [default: 127.0.0.1:9092].
    #[arg(long, conflicts_with = "spawn", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Topic to read; created with --partitions and filled if it holds fewer than --count
    /// records, reused as it is otherwise.
    #[arg(long, default_value = "keel-bench-consume")]
    pub topic: String,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub partitions: i32,
    /// Bytes in each record's value when filling (keys are 8 bytes).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=(1 << 20)))]
    pub record_size: u32,
    /// Records per produce request when filling.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_records: u32,
    /// acks of the fill: 0, 1 or -1/all.
    #[arg(long, default_value = "1", value_parser = parse_acks, allow_negative_numbers = true)]
    pub acks: i16,
    /// Compression of the fill's batches (the consumers then read them compressed).
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,
    /// A config of the topic when the bench creates it, KEY=VALUE (repeatable), e.g.
    /// --topic-config compression.type=zstd. An existing topic must already have it.
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = crate::cli::parse_key_value)]
    pub topic_configs: Vec<(String, String)>,
    /// What keys and values hold: random bytes (incompressible) or text (compresses like
    /// JSON or log lines, so compression's savings show).
    #[arg(long, value_enum, default_value = "random")]
    pub payload: Payload,
    /// Records the topic is filled to, all read once [default: 1000000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Read for this many seconds instead, starting each range over when it is done.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: Option<u64>,
    /// Consumer connections, each with one fetch in flight; the partitions' offset ranges are
    /// split so that every consumer has work even with more consumers than partitions.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Fetch size: max_bytes and partition_max_bytes of each fetch.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(i32).range(1..=(100 << 20)))]
    pub fetch_max_bytes: i32,
    /// Start `keel serve` on a free port and a fresh temp data dir, time a raw sequential read
    /// of the topic's segment files there as a baseline, report the broker's peak RSS, then
    /// stop it and delete the dir.
    #[arg(long)]
    pub spawn: bool,
}

/// How long a consumer may go without progress before the run fails (long polls included).
const CONSUME_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A fetch's max_wait: data is there, so this only matters at the end of a range.
const FETCH_MAX_WAIT: Duration = Duration::from_millis(500);

/// An offset range of one partition, read by one consumer.
#[derive(Debug, Clone, Copy)]
struct Range {
    partition: i32,
    start: i64,
    end: i64,
}

/// What one consumer measured.
#[derive(Debug, Default)]
struct ConsumeOutcome {
    latency: Histogram,
    fetches: u64,
    /// Fetches that returned no whole batch at or past the position.
    empty_fetches: u64,
    records: u64,
    /// Bytes of record batches received (as stored: compressed if the fill was).
    batch_bytes: u64,
    /// Offsets skipped between batches (must stay 0 on an uncompacted topic).
    gaps: u64,
    failure: Option<String>,
}

impl ConsumeOutcome {
    fn merge(&mut self, other: ConsumeOutcome) {
        self.latency.merge(&other.latency);
        self.fetches += other.fetches;
        self.empty_fetches += other.empty_fetches;
        self.records += other.records;
        self.batch_bytes += other.batch_bytes;
        self.gaps += other.gaps;
        self.failure = self.failure.take().or(other.failure);
    }
}

/// Splits each partition's `[start, end)` into `pieces` nearly equal ranges.
fn split_ranges(bounds: &[(i64, i64)], pieces: u32) -> Vec<Range> {
    let mut out = Vec::new();
    for (partition, &(start, end)) in bounds.iter().enumerate() {
        let len = (end - start).max(0);
        let k = i64::from(pieces.max(1)).min(len.max(1));
        for j in 0..k {
            let (a, b) = (start + len * j / k, start + len * (j + 1) / k);
            if b > a {
                out.push(Range {
                    partition: partition as i32,
                    start: a,
                    end: b,
                });
            }
        }
    }
    out
}

fn consume(args: &ConsumeArgs) -> Result<bool, BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io_err("cannot start the runtime"))?;
    if !args.spawn {
        let addr = resolve(&bootstrap(
            args.bootstrap_server.as_deref(),
            env_bootstrap(),
        ))?;
        println!(
            "read baseline: n/a (the broker was not spawned, so its data directory is unknown; \
             use --spawn for a same-run baseline)"
        );
        return runtime.block_on(consume_run(addr, args, None, None));
    }
    // Declared before the broker, so it is dropped (deleted) after the broker has stopped.
    let dir = TempDir::create()?;
    eprintln!("keel bench consume: temp dir {}", dir.path.display());
    let mut broker = SpawnedBroker::start(&dir.path)?;
    eprintln!(
        "keel bench consume: spawned keel serve (pid {}) on {}",
        broker.pid(),
        broker.addr
    );
    let data = dir.path.join("data");
    let outcome = runtime.block_on(consume_run(
        broker.addr,
        args,
        Some(broker.pid()),
        Some(&data),
    ));
    let stopped = broker.stop();
    let mut healthy = match outcome {
        Ok(h) => h,
        Err(e) => {
            if let Some(tail) = broker.log_tail() {
                eprintln!("keel bench consume: last lines of the broker's log:\n{tail}");
            }
            return Err(e);
        }
    };
    match stopped {
        Ok(status) if status.success() => {
            eprintln!("keel bench consume: broker stopped ({status})")
        }
        Ok(status) => {
            healthy = false;
            println!("spawned broker exited badly on SIGTERM: {status}");
        }
        Err(e) => {
            healthy = false;
            println!("spawned broker: {e}");
        }
    }
    Ok(healthy)
}

/// Fills (or reuses) the topic, takes the baseline, runs the consumers and prints the summary;
/// true if every record was read back in order without errors.
async fn consume_run(
    addr: SocketAddr,
    args: &ConsumeArgs,
    server: Option<u32>,
    data_dir: Option<&Path>,
) -> Result<bool, BenchError> {
    let options = ClientOptions {
        client_id: "keel-bench".to_string(),
        ..ClientOptions::default()
    };
    let connect = |options: ClientOptions| async move {
        Client::connect(&Tokio, addr, options)
            .await
            .map_err(|source| BenchError::Connect { addr, source })
    };
    let topic = args.topic.as_str();
    // Creating thousands of partitions takes longer than a produce may.
    let mut admin = connect(ClientOptions {
        request_timeout: ADMIN_TIMEOUT,
        ..options.clone()
    })
    .await?;
    let partitions = ensure_topic(&mut admin, topic, args.partitions, &args.topic_configs).await?;
    let target = args.count.unwrap_or(DEFAULT_COUNT);
    let held = |bounds: &[(i64, i64)]| bounds.iter().map(|(a, b)| b - a).sum::<i64>();
    let mut bounds = offset_bounds(&mut admin, topic, partitions).await?;
    let existing = held(&bounds);
    if (existing as u64) < target {
        let case = Case {
            record_size: args.record_size,
            acks: args.acks,
            compression: args.compression,
        };
        let load = Load {
            partitions,
            batch_records: args.batch_records,
            concurrency: args.concurrency,
            limit: Limit::Records(target - existing as u64),
            topic_configs: args.topic_configs.clone(),
            payload: args.payload,
        };
        let fill = run_case(addr, topic, case, &load).await?;
        if !fill.healthy() {
            return Err(BenchError::Request(format!(
                "filling {topic}: {} error responses, end offsets +{} for {} records",
                fill.totals.error_requests, fill.offsets_advanced, fill.totals.records_ok
            )));
        }
        println!(
            "fill: {} records of {}B (compression={}) into {topic} in {:.2} s ({:.0} records/s)",
            fill.totals.records_ok,
            args.record_size,
            compression_name(args.compression),
            fill.elapsed.as_secs_f64(),
            fill.records_per_s()
        );
        bounds = offset_bounds(&mut admin, topic, partitions).await?;
    } else {
        println!("fill: none, {topic} already holds {existing} records (reused as it is)");
    }
    let total = held(&bounds);

    let baseline_mb_per_s = match data_dir {
        Some(dir) => read_baseline(dir, topic, partitions)?,
        None => None,
    };

    let ranges = split_ranges(&bounds, args.concurrency.div_ceil(partitions as u32));
    let mut clients = Vec::with_capacity(args.concurrency as usize);
    for _ in 0..args.concurrency {
        clients.push(connect(options.clone()).await?);
    }
    let per_case_rss = server.map(reset_peak_rss).unwrap_or(false);
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + Duration::from_secs(d));
    let label = format!("consume conc={}", args.concurrency);
    let progress = tokio::spawn(progress(label, Arc::clone(&shared), start));
    let mut tasks = Vec::with_capacity(clients.len());
    for (i, client) in clients.into_iter().enumerate() {
        let mine: Vec<Range> = ranges
            .iter()
            .skip(i)
            .step_by(args.concurrency as usize)
            .copied()
            .collect();
        let consumer = Consumer {
            topic: topic.to_string(),
            ranges: mine,
            fetch_max_bytes: args.fetch_max_bytes,
            deadline,
            shared: Arc::clone(&shared),
        };
        tasks.push(tokio::spawn(consumer.run(client)));
    }
    let mut totals = ConsumeOutcome::default();
    for t in tasks {
        match t.await {
            Ok(o) => totals.merge(o),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let elapsed = start.elapsed();
    progress.abort();
    if let Some(f) = totals.failure.take() {
        return Err(BenchError::Request(f));
    }
    let server_rss = server.and_then(peak_rss).map(|b| (b, per_case_rss));

    let secs = elapsed.as_secs_f64().max(1e-9);
    let records_per_s = totals.records as f64 / secs;
    let mb_per_s = totals.batch_bytes as f64 / 1e6 / secs;
    let h = &totals.latency;
    let rss = match server_rss {
        Some((bytes, true)) => format!("server peak RSS {} MiB", bytes >> 20),
        Some((bytes, false)) => format!("server peak RSS {} MiB (since start)", bytes >> 20),
        None => "server peak RSS n/a (not spawned)".to_string(),
    };
    println!(
        "consume  conc={} partitions={partitions} fetch_max_bytes={}: {records_per_s:.0} records/s  \
         {mb_per_s:.1} MB/s  fetch p50 {}  p99 {}  p99.9 {}  max {}  {rss}",
        args.concurrency,
        args.fetch_max_bytes,
        fmt_us(h.value_at_per_million(P50)),
        fmt_us(h.value_at_per_million(P99)),
        fmt_us(h.value_at_per_million(P999)),
        fmt_us(h.max()),
    );
    let vs = match baseline_mb_per_s {
        Some(b) => format!("{:.1}% of read baseline", 100.0 * mb_per_s / b),
        None => "no read baseline".to_string(),
    };
    let complete = deadline.is_some() || totals.records == total as u64;
    let check = match (deadline, complete) {
        (Some(_), _) => format!("{total} records in the topic, read over and over"),
        (None, true) => format!("records match ({} of {total})", totals.records),
        (None, false) => format!("RECORDS MISMATCH ({} read of {total})", totals.records),
    };
    let own = own_peak_rss().map_or_else(|| "n/a".to_string(), |b| format!("{} MiB", b >> 20));
    println!(
        "    {} records in {secs:.2} s, {} fetches ({} empty), MB = 10^6 bytes of record batches \
         as stored, {vs}, gaps {}, {check}, topic {topic}, bench peak RSS {own}",
        totals.records, totals.fetches, totals.empty_fetches, totals.gaps,
    );
    let healthy = complete && totals.gaps == 0;
    if !healthy {
        println!(
            "UNHEALTHY: consume read {} records of {total}, {} offset gaps",
            totals.records, totals.gaps
        );
    }
    Ok(healthy)
}

/// Each partition's (earliest, latest) offsets.
async fn offset_bounds(
    client: &mut TcpClient,
    topic: &str,
    partitions: i32,
) -> Result<Vec<(i64, i64)>, BenchError> {
    let ends = end_offsets(client, topic, partitions).await?;
    let mut out = Vec::with_capacity(ends.len());
    for (partition, end) in ends.into_iter().enumerate() {
        let r = client
            .list_offsets(topic, partition as i32, EARLIEST_TIMESTAMP)
            .await
            .map_err(request_err("ListOffsets"))?;
        if r.error_code != 0 {
            return Err(BenchError::Topic(format!(
                "ListOffsets {topic}/{partition}: error {}",
                r.error_code
            )));
        }
        out.push((r.offset, end));
    }
    Ok(out)
}

/// One connection's consumer: reads its ranges in turn, one fetch in flight.
struct Consumer {
    topic: String,
    ranges: Vec<Range>,
    fetch_max_bytes: i32,
    /// `Some`: read until then, starting ranges over; `None`: each range once.
    deadline: Option<Instant>,
    shared: Arc<Shared>,
}

impl Consumer {
    async fn run(self, mut client: TcpClient) -> ConsumeOutcome {
        let mut out = ConsumeOutcome::default();
        if self.ranges.is_empty() {
            return out;
        }
        'all: loop {
            for range in &self.ranges {
                if let Err(e) = self.read_range(&mut client, *range, &mut out).await {
                    out.failure = Some(e);
                    self.shared.stop.store(true, Ordering::Relaxed);
                    break 'all;
                }
                if self.over() {
                    break 'all;
                }
            }
            if self.deadline.is_none() {
                break;
            }
        }
        out
    }

    fn over(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Fetches `range` from its start to its end, counting whole batches' records in it and
    /// checking that batches follow each other without gaps (and that their CRCs hold).
    async fn read_range(
        &self,
        client: &mut TcpClient,
        range: Range,
        out: &mut ConsumeOutcome,
    ) -> Result<(), String> {
        let Range {
            partition,
            start,
            end,
        } = range;
        let mut position = start;
        let mut last_progress = Instant::now();
        while position < end {
            if self.over() {
                return Ok(());
            }
            let sent = Instant::now();
            let data = client
                .fetch(
                    &self.topic,
                    partition,
                    position,
                    FETCH_MAX_WAIT,
                    self.fetch_max_bytes,
                )
                .await
                .map_err(|e| format!("fetch {}/{partition}@{position}: {e}", self.topic))?;
            out.latency.record(sent.elapsed());
            out.fetches += 1;
            if data.error_code != 0 {
                return Err(format!(
                    "fetch {}/{partition}@{position}: error code {}",
                    self.topic, data.error_code
                ));
            }
            let bytes = data.records.unwrap_or_default();
            let (batches, _) = keel_core::record::split_batches(&bytes);
            let mut records = 0u64;
            let before = position;
            for batch in &batches {
                let header = keel_core::record::verify_batch(batch)
                    .map_err(|e| format!("fetch {}/{partition}@{position}: {e}", self.topic))?;
                let (base, last) = (header.base_offset(), header.last_offset());
                if last < position {
                    continue; // a batch the position is already past
                }
                if base > position {
                    out.gaps += (base - position) as u64;
                }
                let first = base.max(position);
                let upto = last.min(end - 1);
                if upto >= first && !header.is_control() {
                    records += (upto - first + 1) as u64;
                }
                out.batch_bytes += batch.len() as u64;
                position = last + 1;
            }
            if position == before {
                out.empty_fetches += 1;
                if last_progress.elapsed() > CONSUME_STALL_TIMEOUT {
                    return Err(format!(
                        "{}/{partition}: no records at {position} (below {end}) for {:?}",
                        self.topic, CONSUME_STALL_TIMEOUT
                    ));
                }
                continue;
            }
            last_progress = Instant::now();
            out.records += records;
            self.shared.records_ok.fetch_add(records, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Reads every segment file of `topic`'s partitions under the broker's `data_dir` once,
/// sequentially in 1 MiB chunks, and prints the speed: the same bytes the consumers fetch,
/// read straight from the files (the page cache holds them, as it does for the broker).
/// `None` when no segment file is found.
fn read_baseline(data_dir: &Path, topic: &str, partitions: i32) -> Result<Option<f64>, BenchError> {
    use std::io::Read;
    let mut files = Vec::new();
    for p in 0..partitions {
        let dir = data_dir.join(keel_core::node::partition_dir(topic, p));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut logs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        files.extend(logs);
    }
    if files.is_empty() {
        println!(
            "read baseline: n/a (no segment files of {topic} under {})",
            data_dir.display()
        );
        return Ok(None);
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    let start = std::time::Instant::now();
    for path in &files {
        let what = format!("read baseline {}", path.display());
        let mut file = File::open(path).map_err(io_err(what.clone()))?;
        loop {
            let n = file.read(&mut buf).map_err(io_err(what.clone()))?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let mb_per_s = bytes as f64 / 1e6 / secs;
    println!(
        "read baseline: sequential read of {topic}'s {} segment files, {:.1} MB in {secs:.3} s: \
         {mb_per_s:.1} MB/s (page cache warm, as for the broker)",
        files.len(),
        bytes as f64 / 1e6,
    );
    Ok(Some(mb_per_s))
}

// ---- topic and offsets --------------------------------------------------------------------

type TcpClient = Client<tokio::net::TcpStream>;

fn request_err(what: &'static str) -> impl FnOnce(ClientError) -> BenchError {
    move |e| BenchError::Request(format!("{what}: {e}"))
}

/// Makes sure `topic` exists with every partition led, creating it with `partitions` and
/// `configs` if it is missing; returns its partition count (an existing topic keeps its own,
/// and must already have `configs`: a bench that silently ran without them would compare the
/// wrong things).
async fn ensure_topic(
    client: &mut TcpClient,
    topic: &str,
    partitions: i32,
    configs: &[(String, String)],
) -> Result<i32, BenchError> {
    if let Some(n) = led_partitions(client, topic).await? {
        if n != partitions {
            eprintln!("keel bench: topic {topic} exists with {n} partitions; using them");
        }
        check_configs(client, topic, configs).await?;
        return Ok(n);
    }
    let creatable = codec::CreatableTopic {
        name: topic.to_string(),
        num_partitions: partitions,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: configs
            .iter()
            .map(|(name, value)| codec::CreatableTopicConfig {
                name: name.clone(),
                value: Some(value.clone()),
            })
            .collect(),
    };
    let t = client
        .create_topic(creatable, 30_000, false)
        .await
        .map_err(request_err("CreateTopics"))?;
    match t.error_code {
        0 => {}
        // TOPIC_ALREADY_EXISTS: created meanwhile, or it exists without leaders yet.
        36 => check_configs(client, topic, configs).await?,
        code => {
            let message = t.error_message.as_deref().unwrap_or("");
            return Err(BenchError::Topic(format!(
                "cannot create {topic}: {} {message}",
                ErrorCode(code)
            )));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(n) = led_partitions(client, topic).await? {
            return Ok(n);
        }
        if Instant::now() >= deadline {
            return Err(BenchError::Topic(format!(
                "{topic} still lacks a leader 10 s after creation"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fails unless the existing `topic` has each of `configs` set to the value given.
async fn check_configs(
    client: &mut TcpClient,
    topic: &str,
    configs: &[(String, String)],
) -> Result<(), BenchError> {
    if configs.is_empty() {
        return Ok(());
    }
    let keys = configs.iter().map(|(k, _)| k.clone()).collect();
    let result = client
        .describe_configs(RESOURCE_TYPE_TOPIC, topic, Some(keys))
        .await
        .map_err(request_err("DescribeConfigs"))?;
    if result.error_code != 0 {
        return Err(BenchError::Topic(format!(
            "DescribeConfigs {topic}: {}",
            ErrorCode(result.error_code)
        )));
    }
    for (key, want) in configs {
        let have = result
            .configs
            .iter()
            .find(|c| &c.name == key)
            .and_then(|c| c.value.clone());
        if have.as_deref() != Some(want.as_str()) {
            return Err(BenchError::Topic(format!(
                "{topic} exists with {key}={}, not {want}: give another --topic or delete it",
                have.as_deref().unwrap_or("(unset)")
            )));
        }
    }
    Ok(())
}

/// The bytes `topic`'s partitions hold on the broker (DescribeLogDirs), if it says.
async fn stored_bytes(client: &mut TcpClient, topic: &str, partitions: i32) -> Option<i64> {
    client.version(ApiKey::DescribeLogDirs)?;
    let all: Vec<i32> = (0..partitions).collect();
    let sizes = client.describe_log_dirs(topic, &all).await.ok()?;
    Some(sizes.iter().map(|&(_, size)| size).sum())
}

/// The partition count of `topic` if it exists and every partition has a leader.
async fn led_partitions(client: &mut TcpClient, topic: &str) -> Result<Option<i32>, BenchError> {
    let metadata = client
        .metadata(Some(&[topic]))
        .await
        .map_err(request_err("Metadata"))?;
    let Some(t) = metadata
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))
    else {
        return Ok(None);
    };
    let ready = t.error_code == 0
        && !t.partitions.is_empty()
        && t.partitions
            .iter()
            .all(|p| p.error_code == 0 && p.leader_id >= 0);
    Ok(ready.then_some(t.partitions.len() as i32))
}

/// Each partition's latest offset (ListOffsets with LATEST_TIMESTAMP).
async fn end_offsets(
    client: &mut TcpClient,
    topic: &str,
    partitions: i32,
) -> Result<Vec<i64>, BenchError> {
    let mut offsets = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        let r = client
            .list_offsets(topic, partition, LATEST_TIMESTAMP)
            .await
            .map_err(request_err("ListOffsets"))?;
        if r.error_code != 0 {
            return Err(BenchError::Topic(format!(
                "ListOffsets {topic}/{partition}: error {}",
                r.error_code
            )));
        }
        offsets.push(r.offset);
    }
    Ok(offsets)
}

/// The broker a bench without --spawn measures: `--bootstrap-server`, else
/// `KEEL_BOOTSTRAP_SERVER` (as every admin command reads it), else 127.0.0.1:9092. Read here
/// rather than by clap, so that an exported variable does not conflict with --spawn.
fn bootstrap(flag: Option<&str>, env: Option<String>) -> String {
    match (flag, env) {
        (Some(flag), _) => flag.to_string(),
        (None, Some(env)) if !env.trim().is_empty() => env,
        _ => DEFAULT_BOOTSTRAP.to_string(),
    }
}

const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

fn env_bootstrap() -> Option<String> {
    std::env::var("KEEL_BOOTSTRAP_SERVER").ok()
}

fn resolve(server: &str) -> Result<SocketAddr, BenchError> {
    server
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| BenchError::Address(server.to_string()))
}

// ---- output -----------------------------------------------------------------------------

/// Milliseconds with two decimals, from microseconds.
fn fmt_us(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// The summary of one case: the headline line, then the details behind it.
fn summary_block(r: &CaseResult, load: &Load, baseline: DiskBaseline) -> String {
    let h = &r.totals.latency;
    let latency = if r.case.acks == 0 {
        "latency n/a (acks=0: no responses)".to_string()
    } else {
        format!(
            "p50 {}  p99 {}  p99.9 {}  max {}",
            fmt_us(h.value_at_per_million(P50)),
            fmt_us(h.value_at_per_million(P99)),
            fmt_us(h.value_at_per_million(P999)),
            fmt_us(h.max())
        )
    };
    let rss = match r.server_peak_rss {
        Some((bytes, true)) => format!("server peak RSS {} MiB", bytes >> 20),
        Some((bytes, false)) => format!("server peak RSS {} MiB (since start)", bytes >> 20),
        None => "server peak RSS n/a (not spawned)".to_string(),
    };
    let mut setup: String = r
        .topic_configs
        .iter()
        .map(|(k, v)| format!(" topic:{k}={v}"))
        .collect();
    if load.payload == Payload::Text {
        setup.insert_str(0, " payload=text");
    }
    let headline = format!(
        "produce  record={}B acks={} compression={}{setup} conc={} batch={}: {:.0} \
         records/s  {:.1} MB/s  {latency}  {rss}",
        r.case.record_size,
        r.case.acks,
        compression_name(r.case.compression),
        load.concurrency,
        load.batch_records,
        r.records_per_s(),
        r.payload_mb_per_s(),
    );
    let vs_disk = match baseline.write_mb_per_s {
        Some(disk) => format!(
            "{:.1}% of disk baseline",
            100.0 * r.payload_mb_per_s() / disk
        ),
        None => "no disk baseline".to_string(),
    };
    let errors = if r.totals.error_requests == 0 {
        "errors 0".to_string()
    } else {
        let codes: Vec<String> = r
            .totals
            .error_codes
            .iter()
            .map(|(c, n)| format!("code {c} x{n}"))
            .collect();
        format!(
            "ERRORS {} requests / {} records ({})",
            r.totals.error_requests,
            r.totals.error_records,
            codes.join(", ")
        )
    };
    let check = if r.offsets_match() {
        format!("end offsets +{} (match)", r.offsets_advanced)
    } else {
        format!(
            "end offsets +{} MISMATCH ({} records acknowledged)",
            r.offsets_advanced, r.totals.records_ok
        )
    };
    let stored = match r.stored_bytes {
        Some(bytes) if r.totals.wire_bytes > 0 => format!(
            "stored {:.3} MB ({:.0}% of wire)",
            bytes as f64 / 1e6,
            100.0 * bytes as f64 / r.totals.wire_bytes as f64
        ),
        Some(bytes) => format!("stored {:.3} MB", bytes as f64 / 1e6),
        None => "stored n/a".to_string(),
    };
    let own = own_peak_rss().map_or_else(|| "n/a".to_string(), |b| format!("{} MiB", b >> 20));
    format!(
        "{headline}\n    {} records in {:.2} s, {} requests, {errors}, {vs_disk}, wire {:.1} MB/s, \
         {stored}, {check}, topic {}, bench peak RSS {own}",
        r.totals.records_ok,
        r.elapsed.as_secs_f64(),
        r.totals.requests,
        r.wire_mb_per_s(),
        r.topic,
    )
}

/// Prints the table of several cases and the verdict; true if every case was healthy.
fn report(results: &[CaseResult], baseline: DiskBaseline, load: &Load) -> bool {
    if results.len() > 1 {
        let disk = baseline
            .write_mb_per_s
            .map_or_else(|| "n/a".to_string(), |d| format!("{d:.1} MB/s"));
        let limit = match load.limit {
            Limit::Records(n) => format!("{n} records per case"),
            Limit::Time(d) => format!("{} s per case", d.as_secs()),
        };
        println!();
        println!(
            "summary: conc={} batch={} partitions={}, {limit}; MB = 10^6 bytes of record values; \
             disk baseline {disk}",
            load.concurrency, load.batch_records, load.partitions
        );
        println!(
            "{:>7} {:>4} {:>11} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10}",
            "record",
            "acks",
            "records/s",
            "MB/s",
            "%disk",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "errors",
            "srv RSS"
        );
        for r in results {
            let h = &r.totals.latency;
            let ms = |us: u64| {
                if r.case.acks == 0 {
                    "n/a".to_string()
                } else {
                    format!("{:.2}", us as f64 / 1000.0)
                }
            };
            let pct = baseline.write_mb_per_s.map_or_else(
                || "n/a".to_string(),
                |d| format!("{:.1}%", 100.0 * r.payload_mb_per_s() / d),
            );
            let rss = r
                .server_peak_rss
                .map_or_else(|| "n/a".to_string(), |(b, _)| format!("{} MiB", b >> 20));
            println!(
                "{:>7} {:>4} {:>11.0} {:>8.1} {:>7} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10}",
                format!("{}B", r.case.record_size),
                r.case.acks,
                r.records_per_s(),
                r.payload_mb_per_s(),
                pct,
                ms(h.value_at_per_million(P50)),
                ms(h.value_at_per_million(P99)),
                ms(h.value_at_per_million(P999)),
                ms(h.max()),
                r.totals.error_requests,
                rss,
            );
        }
    }
    let mut healthy = true;
    for r in results.iter().filter(|r| !r.healthy()) {
        healthy = false;
        println!(
            "UNHEALTHY: record={}B acks={}: {} error responses, end offsets +{} for {} acknowledged records",
            r.case.record_size,
            r.case.acks,
            r.totals.error_requests,
            r.offsets_advanced,
            r.totals.records_ok
        );
    }
    healthy
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        "-1" | "all" => Ok(-1),
        _ => Err(format!("expected 0, 1 or -1 (all), not {s}")),
    }
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ---- record contents ------------------------------------------------------------------------

/// Random-looking, reproducible bytes (Marsaglia's xorshift64), one generator per producer
/// task so tasks never contend and a rerun sends the same values.
#[derive(Debug, Clone)]
struct XorShift64(u64);

impl XorShift64 {
    /// Seeds from splitmix64 of `seed`; xorshift's state must never be zero.
    fn new(seed: u64) -> XorShift64 {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        XorShift64((z ^ (z >> 31)) | 1)
    }

    fn for_task(task: usize) -> XorShift64 {
        XorShift64::new(0x6B65_656C_6265_6E63 ^ task as u64)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// Fills `buf` with words of [`WORDS`] drawn at random, each followed by a space.
    fn fill_text(&mut self, buf: &mut [u8]) {
        let mut at = 0;
        while at < buf.len() {
            let word = WORDS[(self.next_u64() % WORDS.len() as u64) as usize];
            for &b in word.as_bytes().iter().chain(b" ") {
                if at == buf.len() {
                    break;
                }
                buf[at] = b;
                at += 1;
            }
        }
    }
}

/// `--payload text`'s vocabulary: 32 words, about as repetitive as log lines.
const WORDS: [&str; 32] = [
    "order",
    "created",
    "shipped",
    "customer",
    "amount",
    "currency",
    "EUR",
    "USD",
    "status",
    "pending",
    "paid",
    "refunded",
    "warehouse",
    "berlin",
    "lisbon",
    "item",
    "quantity",
    "price",
    "discount",
    "total",
    "session",
    "user",
    "login",
    "logout",
    "request",
    "response",
    "latency",
    "error",
    "timeout",
    "retry",
    "true",
    "false",
];

// ---- latency histogram ----------------------------------------------------------------------

/// Linear sub-buckets per power of two: 2^6 keeps every value within 1/64 (1.6 %) above its
/// true value, which is HdrHistogram's layout at about two significant digits.
const SUB_BUCKET_BITS: u32 = 6;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// The largest latency kept apart from larger ones: 60 s in microseconds (larger values land
/// in the last bucket; the exact maximum is kept separately).
const HIGHEST_TRACKABLE_US: u64 = 60_000_000;
const BUCKETS: usize = bucket_index(HIGHEST_TRACKABLE_US) + 1;
const _: () = assert!(bucket_low(BUCKETS - 1) <= HIGHEST_TRACKABLE_US);
const _: () = assert!(HIGHEST_TRACKABLE_US <= bucket_high(BUCKETS - 1));
const _: () = assert!(BUCKETS <= 2048, "the histogram stays small");

/// Quantiles in parts per million, so rank arithmetic is exact integers.
const P50: u64 = 500_000;
const P99: u64 = 990_000;
const P999: u64 = 999_000;

/// Bounded latency histogram in microseconds: exact below 64 µs, log-linear above (64
/// sub-buckets per power of two) up to 60 s; ~1,300 counters whatever the number of samples.
#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl Histogram {
    fn record(&mut self, elapsed: Duration) {
        self.record_us(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    fn record_us(&mut self, us: u64) {
        self.counts[bucket_index(us.min(HIGHEST_TRACKABLE_US))] += 1;
        self.count += 1;
        self.min = self.min.min(us);
        self.max = self.max.max(us);
    }

    fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    fn count(&self) -> u64 {
        self.count
    }

    /// The largest value recorded, exactly (0 when empty).
    fn max(&self) -> u64 {
        self.max
    }

    /// The nearest-rank quantile `per_million`/10^6, as the highest value of its bucket
    /// clamped to the recorded range: never below the true value, at most 1/64 above it.
    /// 0 when empty.
    fn value_at_per_million(&self, per_million: u64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let per_million = per_million.min(1_000_000);
        let rank = (u128::from(self.count) * u128::from(per_million))
            .div_ceil(1_000_000)
            .max(1) as u64;
        let mut seen = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_high(i).clamp(self.min, self.max);
            }
        }
        unreachable!("the counts sum to count, and rank <= count")
    }
}

/// The bucket holding `v`: `v` itself below 64; above, 64 linear sub-buckets per power of two.
const fn bucket_index(v: u64) -> usize {
    if v < SUB_BUCKETS {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BUCKET_BITS;
    let sub = (v >> shift) - SUB_BUCKETS;
    ((shift as u64 + 1) * SUB_BUCKETS + sub) as usize
}

/// The smallest value in bucket `i`.
const fn bucket_low(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB_BUCKETS {
        return i;
    }
    (SUB_BUCKETS + i % SUB_BUCKETS) << (i / SUB_BUCKETS - 1)
}

/// The largest value in bucket `i`.
const fn bucket_high(i: usize) -> u64 {
    let width = if (i as u64) < SUB_BUCKETS {
        1
    } else {
        1 << ((i as u64) / SUB_BUCKETS - 1)
    };
    bucket_low(i) + width - 1
}

// ---- disk baselines -----------------------------------------------------------------------

/// Bytes per append in the fdatasync latency probe: about one 100 x 100 B batch.
const SYNC_PROBE_BYTES: usize = 16 * 1024;
const SYNC_PROBE_MAX_SYNCS: u32 = 1000;
const SYNC_PROBE_TIME: Duration = Duration::from_secs(1);

/// Writes `mib` MiB in 1 MiB chunks to a new file in `dir`, fdatasyncs it, deletes it; returns
/// (bytes, seconds from open to the end of the sync), like `dd conv=fdatasync`.
fn disk_write_baseline(dir: &Path, mib: u64) -> Result<(u64, f64), BenchError> {
    let path = dir.join("baseline.bin");
    let mut chunk = vec![0u8; 1 << 20];
    XorShift64::new(1).fill(&mut chunk);
    let what = format!("disk baseline {}", path.display());
    let start = std::time::Instant::now();
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(what.clone()))?;
    for _ in 0..mib {
        file.write_all(&chunk).map_err(io_err(what.clone()))?;
    }
    file.sync_data().map_err(io_err(what.clone()))?;
    let secs = start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path).map_err(io_err(what))?;
    Ok((mib << 20, secs))
}

/// Appends 16 KiB and fdatasyncs, repeatedly (up to 1 s or 1000 syncs), in a new file in `dir`:
/// the floor under any acks=-1 latency on this disk.
fn disk_sync_probe(dir: &Path) -> Result<Histogram, BenchError> {
    let path = dir.join("sync-probe.bin");
    let what = format!("disk sync probe {}", path.display());
    let mut chunk = vec![0u8; SYNC_PROBE_BYTES];
    XorShift64::new(2).fill(&mut chunk);
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(what.clone()))?;
    let mut latency = Histogram::default();
    let start = std::time::Instant::now();
    for _ in 0..SYNC_PROBE_MAX_SYNCS {
        if start.elapsed() >= SYNC_PROBE_TIME {
            break;
        }
        let t = std::time::Instant::now();
        file.write_all(&chunk).map_err(io_err(what.clone()))?;
        file.sync_data().map_err(io_err(what.clone()))?;
        latency.record(t.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path).map_err(io_err(what))?;
    Ok(latency)
}

// ---- the spawned broker -------------------------------------------------------------------

/// A fresh directory under the system temp dir, deleted on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn create() -> Result<TempDir, BenchError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("keel-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).map_err(io_err(format!("cannot create {}", path.display())))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!(
                "keel bench produce: cannot delete {}: {e}",
                self.path.display()
            );
        }
    }
}

/// `keel serve` started by this process on a free port; stopped (SIGTERM) on drop at the latest.
struct SpawnedBroker {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

/// How long the broker may take to accept connections, and to stop after SIGTERM.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

impl SpawnedBroker {
    /// Starts the current executable as `keel serve` with its data and log under `dir`, and
    /// waits until it accepts TCP connections.
    fn start(dir: &Path) -> Result<SpawnedBroker, BenchError> {
        let exe = std::env::current_exe().map_err(io_err("cannot find the keel executable"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io_err("cannot find a free port"))?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join("server.log");
        let log_file =
            File::create(&log).map_err(io_err(format!("cannot create {}", log.display())))?;
        let log_err = log_file
            .try_clone()
            .map_err(io_err("cannot clone the log file"))?;
        let child = std::process::Command::new(&exe)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(io_err(format!("cannot start {} serve", exe.display())))?;
        let mut broker = SpawnedBroker {
            child,
            addr,
            log,
            exited: None,
        };
        let deadline = std::time::Instant::now() + SPAWN_TIMEOUT;
        loop {
            if let Ok(Some(status)) = broker.child.try_wait() {
                broker.exited = Some(status);
                let tail = broker.log_tail().unwrap_or_default();
                return Err(BenchError::Spawn(format!(
                    "keel serve exited at start-up ({status}):\n{tail}"
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(broker);
            }
            if std::time::Instant::now() >= deadline {
                return Err(BenchError::Spawn(format!(
                    "keel serve does not accept on {addr} after {SPAWN_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (`kill -TERM pid`) and waits for the exit; SIGKILL after [`STOP_TIMEOUT`].
    fn stop(&mut self) -> Result<ExitStatus, String> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exited = Some(status);
            return Err(format!("it exited by itself during the run ({status})"));
        }
        let pid = self.pid().to_string();
        match std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
        {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("kill -TERM {pid} failed ({s})")),
            Err(e) => return Err(format!("cannot run kill -TERM {pid}: {e}")),
        }
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = Some(status);
                    return Ok(status);
                }
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    self.exited = self.child.wait().ok();
                    return Err(format!(
                        "it did not stop within {STOP_TIMEOUT:?} of SIGTERM and was killed"
                    ));
                }
            }
        }
    }

    /// The last lines of the broker's log.
    fn log_tail(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        Some(lines[lines.len().saturating_sub(20)..].join("\n"))
    }
}

impl Drop for SpawnedBroker {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.stop();
        }
    }
}

// ---- memory -------------------------------------------------------------------------------

/// Peak resident set size of `pid` in bytes (VmHWM in /proc/<pid>/status).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_bytes(&status, "VmHWM:")
}

/// This process's peak RSS in bytes.
fn own_peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_field_bytes(&status, "VmHWM:")
}

/// Resets `pid`'s peak RSS to its current RSS (Linux: `5` into /proc/<pid>/clear_refs), so the
/// next reading covers one case only. False where that is not possible.
fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// A `Field:   1234 kB` line of /proc/<pid>/status, in bytes.
fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact nearest-rank quantile of `sorted`.
    fn nearest_rank(sorted: &[u64], per_million: u64) -> u64 {
        let rank = (sorted.len() as u64 * per_million)
            .div_ceil(1_000_000)
            .max(1);
        sorted[rank as usize - 1]
    }

    /// The histogram's promise: at or above the true quantile, by less than 1/64 of it.
    fn assert_close(got: u64, want: u64, what: &str) {
        assert!(
            got >= want && got - want <= want / SUB_BUCKETS,
            "{what}: got {got}, want {want} (+1/64)"
        );
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        assert_eq!(bucket_low(0), 0);
        for i in 0..BUCKETS {
            assert_eq!(bucket_index(bucket_low(i)), i, "low of {i}");
            assert_eq!(bucket_index(bucket_high(i)), i, "high of {i}");
            if i + 1 < BUCKETS {
                assert_eq!(bucket_low(i + 1), bucket_high(i) + 1, "gap after {i}");
            }
            let width = bucket_high(i) - bucket_low(i) + 1;
            assert!(
                i < SUB_BUCKETS as usize * 2 || width * SUB_BUCKETS <= bucket_low(i),
                "bucket {i} too wide"
            );
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for us in 1..=63 {
            h.record_us(us);
        }
        assert_eq!(h.value_at_per_million(P50), 32);
        assert_eq!(h.value_at_per_million(P99), 63);
        assert_eq!(h.value_at_per_million(0), 1);
        assert_eq!(h.value_at_per_million(1_000_000), 63);
    }

    #[test]
    fn uniform_percentiles_within_bucket_precision() {
        let mut h = Histogram::default();
        for us in 1..=100_000 {
            h.record_us(us);
        }
        assert_eq!(h.count(), 100_000);
        assert_close(h.value_at_per_million(P50), 50_000, "p50");
        assert_close(h.value_at_per_million(P99), 99_000, "p99");
        assert_close(h.value_at_per_million(P999), 99_900, "p99.9");
        assert_eq!(
            h.value_at_per_million(1_000_000),
            100_000,
            "p100 is the exact max"
        );
        assert_eq!(h.max(), 100_000);
    }

    #[test]
    fn a_slow_tail_shows_in_p999_not_p99() {
        let mut h = Histogram::default();
        for _ in 0..9_980 {
            h.record_us(1_000);
        }
        for _ in 0..20 {
            h.record_us(50_000);
        }
        assert_close(h.value_at_per_million(P50), 1_000, "p50");
        assert_close(h.value_at_per_million(P99), 1_000, "p99");
        assert_close(h.value_at_per_million(P999), 50_000, "p99.9");
        assert_eq!(h.max(), 50_000);
    }

    #[test]
    fn random_samples_match_exact_nearest_rank() {
        let mut rng = XorShift64::new(7);
        let mut h = Histogram::default();
        let mut samples = Vec::new();
        for _ in 0..50_000 {
            // Log-spread over 1 µs .. ~16 s.
            let us = (rng.next_u64() >> 40) >> (rng.next_u64() % 24);
            h.record_us(us);
            samples.push(us);
        }
        samples.sort_unstable();
        for q in [1, 100_000, P50, 900_000, P99, P999, 999_900, 1_000_000] {
            assert_close(
                h.value_at_per_million(q),
                nearest_rank(&samples, q),
                &format!("q={q}"),
            );
        }
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for us in 0..20_000u64 {
            let v = us * 37 % 9_001;
            let half = if us % 3 == 0 { &mut a } else { &mut b };
            half.record_us(v);
            all.record_us(v);
        }
        a.merge(&b);
        assert_eq!(a.counts, all.counts);
        assert_eq!((a.count, a.min, a.max), (all.count, all.min, all.max));
    }

    #[test]
    fn empty_and_out_of_range() {
        let h = Histogram::default();
        assert_eq!(h.value_at_per_million(P99), 0);
        assert_eq!(h.max(), 0);
        let mut h = Histogram::default();
        h.record(Duration::from_secs(120));
        assert_eq!(h.max(), 120_000_000, "the exact max survives clamping");
        assert!(h.value_at_per_million(P50) >= HIGHEST_TRACKABLE_US);
        h.record(Duration::from_nanos(999));
        assert_eq!(
            h.value_at_per_million(1),
            0,
            "sub-microsecond rounds down to 0 µs"
        );
    }

    #[test]
    fn xorshift_is_deterministic_per_task() {
        let (mut a, mut b, mut c) = (
            XorShift64::for_task(0),
            XorShift64::for_task(0),
            XorShift64::for_task(1),
        );
        let (mut x, mut y, mut z) = ([0u8; 13], [0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert!(x.iter().any(|&v| v != 0));
        assert_ne!(XorShift64::new(0).0, 0);
    }

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: BenchCommand,
    }

    fn parse(args: &[&str]) -> Result<ProduceArgs, clap::Error> {
        use clap::Parser;
        match Cli::try_parse_from(args)?.command {
            BenchCommand::Produce(p) => Ok(p),
            other => panic!("not produce: {other:?}"),
        }
    }

    #[test]
    fn cli_flags_and_their_rules() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let p = parse(&["bench", "produce"]).unwrap();
        assert_eq!(
            (p.partitions, p.record_size, p.batch_records, p.acks),
            (3, 100, 100, 1)
        );
        assert_eq!(
            (p.concurrency, p.baseline_mib, p.count, p.duration),
            (4, 256, None, None)
        );
        assert_eq!(p.bootstrap_server, None);
        assert!(p.topic_configs.is_empty());
        let p = parse(&[
            "bench",
            "produce",
            "--topic-config",
            "compression.type=zstd",
            "--topic-config",
            "segment.bytes=1048576",
        ])
        .unwrap();
        assert_eq!(
            p.topic_configs,
            [
                ("compression.type".to_string(), "zstd".to_string()),
                ("segment.bytes".to_string(), "1048576".to_string())
            ]
        );
        assert!(parse(&["bench", "produce", "--topic-config", "novalue"]).is_err());
        assert_eq!(
            parse(&["bench", "produce", "--acks", "-1"]).unwrap().acks,
            -1
        );
        assert_eq!(parse(&["bench", "produce", "--acks=all"]).unwrap().acks, -1);
        assert!(parse(&["bench", "produce", "--acks", "2"]).is_err());
        assert!(parse(&["bench", "produce", "--count", "1", "--duration", "1"]).is_err());
        assert!(
            parse(&["bench", "produce", "--matrix"]).is_err(),
            "--matrix needs --spawn"
        );
        assert!(parse(&["bench", "produce", "--spawn", "--bootstrap-server", "h:1"]).is_err());
        assert!(parse(&["bench", "produce", "--concurrency", "0"]).is_err());
        let p = parse(&[
            "bench", "produce", "--spawn", "--matrix", "--count", "300000",
        ])
        .unwrap();
        assert!(p.spawn && p.matrix && p.count == Some(300_000));
    }

    #[test]
    fn ranges_split_every_partition_without_gaps_or_overlap() {
        let bounds = [(0, 10), (5, 6), (3, 3), (0, 7)];
        let ranges = split_ranges(&bounds, 3);
        for (p, &(start, end)) in bounds.iter().enumerate() {
            let mine: Vec<&Range> = ranges.iter().filter(|r| r.partition == p as i32).collect();
            let mut at = start;
            for r in &mine {
                assert_eq!(r.start, at, "contiguous in partition {p}");
                assert!(r.end > r.start, "no empty range");
                at = r.end;
            }
            assert_eq!(at, end, "partition {p} covered");
            assert!(mine.len() <= 3);
        }
        assert_eq!(ranges.iter().filter(|r| r.partition == 0).count(), 3);
        assert_eq!(ranges.iter().filter(|r| r.partition == 1).count(), 1);
        assert_eq!(
            split_ranges(&bounds, 1).len(),
            3,
            "one per non-empty partition"
        );
    }

    #[test]
    fn consume_flags() {
        use clap::Parser;
        let consume = |args: &[&str]| match Cli::try_parse_from(args).map(|c| c.command) {
            Ok(BenchCommand::Consume(c)) => Ok(c),
            Ok(other) => panic!("not consume: {other:?}"),
            Err(e) => Err(e),
        };
        let c = consume(&["bench", "consume"]).unwrap();
        assert_eq!(
            (c.partitions, c.concurrency, c.fetch_max_bytes),
            (3, 4, 1 << 20)
        );
        assert_eq!(
            (c.count, c.duration, c.compression),
            (None, None, Compression::None)
        );
        let c = consume(&[
            "bench",
            "consume",
            "--spawn",
            "--count",
            "10",
            "--duration",
            "2",
            "--compression",
            "zstd",
            "--acks",
            "all",
        ])
        .unwrap();
        assert!(c.spawn && c.count == Some(10) && c.duration == Some(2) && c.acks == -1);
        assert!(consume(&["bench", "consume", "--spawn", "--bootstrap-server", "h:1"]).is_err());
        assert!(consume(&["bench", "consume", "--fetch-max-bytes", "0"]).is_err());
        assert!(consume(&["bench", "consume", "--compression", "brotli"]).is_err());
        let p = parse(&["bench", "produce", "--compression", "lz4"]).unwrap();
        assert_eq!(p.compression, Compression::Lz4);
    }

    #[test]
    fn text_payloads_are_words_and_fill_the_buffer() {
        let mut rng = XorShift64::new(7);
        let mut buf = [0u8; 300];
        rng.fill_text(&mut buf);
        let text = std::str::from_utf8(&buf).expect("ASCII words");
        assert!(text
            .split(' ')
            .filter(|w| !w.is_empty())
            .all(|w| WORDS.iter().any(|word| word.starts_with(w))));
        let mut other = [0u8; 300];
        rng.fill_text(&mut other);
        assert_ne!(buf, other, "drawn at random");
        assert_eq!(
            parse(&["bench", "produce", "--payload", "text"])
                .unwrap()
                .payload,
            Payload::Text
        );
        assert_eq!(
            parse(&["bench", "produce"]).unwrap().payload,
            Payload::Random
        );
    }

    #[test]
    fn the_broker_is_the_flag_then_keel_bootstrap_server_then_the_default() {
        assert_eq!(bootstrap(Some("a:1"), Some("b:2".into())), "a:1");
        assert_eq!(bootstrap(None, Some("b:2".into())), "b:2");
        assert_eq!(bootstrap(None, Some(" ".into())), DEFAULT_BOOTSTRAP);
        assert_eq!(bootstrap(None, None), DEFAULT_BOOTSTRAP);
    }

    #[test]
    fn acks_parse() {
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert_eq!(parse_acks("1"), Ok(1));
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn proc_status_parse() {
        let status = "Name:\tkeel\nVmPeak:\t  900 kB\nVmHWM:\t   43008 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(status_field_bytes(status, "VmHWM:"), Some(43008 * 1024));
        assert_eq!(status_field_bytes(status, "VmSwap:"), None);
        assert!(own_peak_rss().is_some_and(|b| b > 0));
    }
}
