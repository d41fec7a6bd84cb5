//! The client processes of a run, each a turmoil client host using keel-net's client:
//! the setup (creates the topics, then opens the gate), producers, consumers and the final
//! reader. Each records every operation in the shared [`History`] with simulated times.
//!
//! Every request has a deadline (turmoil's TCP does not retransmit), and any failure of the
//! connection drops the client and records the operation as unknown: a timed-out produce
//! may or may not have been written. A disconnect fault makes every client abandon its
//! request in flight at once (`select!` with `biased;`, the fault first).

pub mod cluster;
pub mod group;

use crate::batch;
use crate::history::{History, Millis, OpKind, PartitionRead, PollOutcome, ProduceOutcome, Tp};
use crate::net::{resolve, Turmoil};
use crate::trace::fnv1a;
use keel_core::api::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use keel_core::error::ErrorCode;
use keel_core::record::builder::{build_batch, build_producer_batch, Record};
use keel_net::client::{Client, ClientError, ClientOptions, FetchSession};
use keel_net::codec::{self, RequestBody, ResponseBody};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The port every broker listens on.
pub const BROKER_PORT: u16 = 9092;

/// Between failed connection attempts.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// After a broker error, before trying again.
const ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// The final reader's fetch size.
const FINAL_READ_MAX_BYTES: i32 = 256 * 1024;

/// Separates a value's identifier from its padding.
const PAD_MARK: char = '|';

type SimClient = Client<turmoil::net::TcpStream>;

/// What the harness and the clients share. Everything runs on the simulation's one thread;
/// the mutex only satisfies `Send` bounds.
pub struct Shared {
    pub history: Mutex<History>,
    /// Set once the topics exist: workloads wait for it.
    pub started: watch::Sender<bool>,
    /// Bumped by a disconnect fault: every client drops its connection.
    pub disconnect: watch::Sender<u64>,
    /// (group, partition) that some member of the group has consumed to the end after the
    /// history settled: once every partition is in, the group is drained and its members
    /// leave.
    pub group_caught_up: Mutex<std::collections::BTreeSet<(String, i32)>>,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            history: Mutex::new(History::default()),
            started: watch::channel(false).0,
            disconnect: watch::channel(0).0,
            group_caught_up: Mutex::new(std::collections::BTreeSet::new()),
        })
    }

    /// The history, locked.
    pub fn history(&self) -> std::sync::MutexGuard<'_, History> {
        // Poisoned only if a panic already ended the run; keep the history readable.
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, event: String) {
        self.history().note(now_ms(), event);
    }
}

/// The phases of a run, in simulated milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Producers stop; every fault is healed.
    pub fault_end_ms: Millis,
    /// Answers to requests sent before the heal have arrived or timed out by then.
    pub settled_ms: Millis,
    /// Consumers give up catching up; the final reader must be done.
    pub end_ms: Millis,
}

/// The current simulated time.
pub fn now_ms() -> Millis {
    turmoil::sim_elapsed()
        .unwrap_or_default()
        .as_millis()
        .try_into()
        .unwrap_or(Millis::MAX)
}

async fn sleep_until_ms(at: Millis) {
    let now = now_ms();
    if at > now {
        tokio::time::sleep(Duration::from_millis(at - now)).await;
    }
}

async fn connect(name: &str, host: &str, timeout: Duration) -> Result<SimClient, ClientError> {
    let options = ClientOptions {
        client_id: name.to_string(),
        request_timeout: timeout,
        max_response_bytes: 8 * 1024 * 1024,
    };
    Client::connect(&Turmoil, resolve(host, BROKER_PORT), options).await
}

/// The workload's connection, dropped when a disconnect storm fired and (re)opened when
/// missing. `None` after a failed connect, once the reconnect backoff has passed.
async fn connected<'a>(
    client: &'a mut Option<SimClient>,
    disconnects: &mut watch::Receiver<u64>,
    name: &str,
    host: &str,
    timeout: Duration,
) -> Option<&'a mut SimClient> {
    if disconnects.has_changed().unwrap_or(false) {
        disconnects.borrow_and_update();
        *client = None;
    }
    if client.is_none() {
        match connect(name, host, timeout).await {
            Ok(c) => *client = Some(c),
            Err(_) => {
                tokio::time::sleep(RECONNECT_BACKOFF).await;
                return None;
            }
        }
    }
    client.as_mut()
}

/// The identifier of a stored value (`p3-000017`), without its padding.
pub fn ident(value: &str) -> &str {
    value.split(PAD_MARK).next().unwrap_or(value)
}

/// A topic as the clients see it.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    /// The broker host that serves it.
    pub host: String,
    pub configs: Vec<(String, String)>,
}

/// Creates every topic (retrying until each exists), then opens the gate.
pub async fn setup(topics: Vec<TopicInfo>, shared: Arc<Shared>) -> turmoil::Result {
    for topic in &topics {
        loop {
            match create_topic(topic).await {
                Ok(()) => break,
                Err(why) => {
                    shared.note(format!(
                        "setup: creating {} failed: {why}; retrying",
                        topic.name
                    ));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    shared.note(format!("setup: {} topic(s) ready", topics.len()));
    let _ = shared.started.send(true);
    Ok(())
}

async fn create_topic(topic: &TopicInfo) -> Result<(), String> {
    create_topic_via(topic, &topic.host, None).await
}

/// Creates `topic` through the broker at `via`; with `on`, every partition is assigned to
/// that broker (a cluster's topics stay on the node their spec names). TOPIC_ALREADY_EXISTS
/// counts as done: a retry of a create that landed.
pub(crate) async fn create_topic_via(
    topic: &TopicInfo,
    via: &str,
    on: Option<i32>,
) -> Result<(), String> {
    // A cluster's first creates wait for its controller's election: longer deadlines.
    let (connect_timeout, timeout_ms) = match on {
        None => (Duration::from_secs(1), 1_000),
        Some(_) => (Duration::from_secs(2), 1_500),
    };
    let mut client = connect("setup", via, connect_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let (num_partitions, assignments) = match on {
        None => (topic.partitions, Vec::new()),
        Some(broker) => (
            -1,
            (0..topic.partitions)
                .map(|p| codec::CreatableReplicaAssignment {
                    partition_index: p,
                    broker_ids: vec![broker],
                })
                .collect(),
        ),
    };
    let request = codec::CreateTopicsRequest {
        topics: vec![codec::CreatableTopic {
            name: topic.name.clone(),
            num_partitions,
            replication_factor: -1,
            assignments,
            configs: topic
                .configs
                .iter()
                .map(|(name, value)| codec::CreatableTopicConfig {
                    name: name.clone(),
                    value: Some(value.clone()),
                })
                .collect(),
        }],
        timeout_ms,
        validate_only: false,
    };
    match client
        .call(RequestBody::CreateTopics(request), Duration::ZERO)
        .await
    {
        Ok(Some(ResponseBody::CreateTopics(r))) => match r.topics.first() {
            Some(t) if t.error_code == 0 || t.error_code == ErrorCode::TOPIC_ALREADY_EXISTS.0 => {
                Ok(())
            }
            Some(t) => Err(format!(
                "error {} ({}) {:?}",
                t.error_code,
                ErrorCode(t.error_code).name().unwrap_or("?"),
                t.error_message
            )),
            None => Err("no topic in the response".into()),
        },
        Ok(other) => Err(format!(
            "unexpected response {:?}",
            other.map(|b| b.api_key())
        )),
        Err(e) => Err(e.to_string()),
    }
}

async fn wait_started(shared: &Shared) {
    let mut started = shared.started.subscribe();
    let _ = started.wait_for(|s| *s).await;
}

/// One producer's settings.
#[derive(Debug, Clone)]
pub struct ProducerCfg {
    pub name: String,
    pub id: u32,
    pub topic: TopicInfo,
    pub acks: i16,
    /// Between two produce requests, on average.
    pub interval: Duration,
    pub batch: u32,
    pub record_bytes: usize,
    pub keys: u32,
    pub timeout: Duration,
    pub idempotent: bool,
    pub seed: u64,
}

/// An idempotent producer's identity and sequences, kept across reconnects as real clients
/// keep them, and the batch whose outcome is not known yet.
#[derive(Default)]
struct Idempotence {
    /// Producer id and epoch, once InitProducerId answered.
    id: Option<(i64, i16)>,
    next_seq: std::collections::BTreeMap<i32, i32>,
    pending: Option<PendingBatch>,
}

/// A batch sent again, unchanged, until its outcome is known.
struct PendingBatch {
    partition: i32,
    values: Vec<String>,
    records: Vec<Record>,
    /// (producer id, epoch, base sequence) it was stamped with; `None` after an epoch bump
    /// refused it: it takes the new epoch's next sequence.
    stamp: Option<(i64, i16, i32)>,
}

/// InitProducerId: a new id, or (KIP-360) the current id with its epoch bumped.
async fn init_producer_id(
    c: &mut SimClient,
    current: Option<(i64, i16)>,
) -> Result<(i64, i16), String> {
    let (producer_id, producer_epoch) = current.unwrap_or((-1, -1));
    let request = codec::InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: 60_000,
        producer_id,
        producer_epoch,
        ..Default::default()
    };
    match c
        .call(RequestBody::InitProducerId(request), Duration::ZERO)
        .await
    {
        Ok(Some(ResponseBody::InitProducerId(r))) if r.error_code == 0 => {
            Ok((r.producer_id, r.producer_epoch))
        }
        Ok(Some(ResponseBody::InitProducerId(r))) => {
            Err(format!("InitProducerId error {}", r.error_code))
        }
        Ok(other) => Err(format!("InitProducerId answered {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Produces unique values until the fault phase ends.
pub async fn producer(cfg: ProducerCfg, shared: Arc<Shared>, plan: Plan) -> turmoil::Result {
    wait_started(&shared).await;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut disconnects = shared.disconnect.subscribe();
    let mut client: Option<SimClient> = None;
    let mut seq = 0u64;
    let mut idem = Idempotence::default();
    loop {
        // Pacing: a jittered interval, so producers drift against each other.
        let pause = cfg.interval.mul_f64(rng.gen_range(0.5..1.5));
        tokio::time::sleep(pause).await;
        if now_ms() >= plan.fault_end_ms {
            break;
        }
        let Some(c) = connected(
            &mut client,
            &mut disconnects,
            &cfg.name,
            &cfg.topic.host,
            cfg.timeout,
        )
        .await
        else {
            continue;
        };
        if cfg.idempotent && idem.id.is_none() {
            match init_producer_id(c, None).await {
                Ok(id) => idem.id = Some(id),
                Err(why) => {
                    shared.note(format!("{}: {why}", cfg.name));
                    client = None;
                    continue;
                }
            }
        }
        let (partition, values, records) = match &idem.pending {
            Some(p) => (p.partition, p.values.clone(), p.records.clone()),
            None => {
                let key = format!("k{}", rng.gen_range(0..cfg.keys));
                let partition = (fnv1a(key.as_bytes()) % cfg.topic.partitions as u64) as i32;
                let timestamp_ms =
                    i64::try_from(turmoil::since_epoch().unwrap_or_default().as_millis())
                        .unwrap_or(i64::MAX);
                let values: Vec<String> = (0..cfg.batch)
                    .map(|_| {
                        seq += 1;
                        format!("p{}-{seq:06}", cfg.id)
                    })
                    .collect();
                let records: Vec<Record> = values
                    .iter()
                    .map(|v| Record {
                        key: Some(key.as_bytes().to_vec()),
                        value: Some(pad(v, cfg.record_bytes).into_bytes()),
                        headers: vec![],
                        timestamp_ms,
                    })
                    .collect();
                (partition, values, records)
            }
        };
        let mut batch_bytes = None;
        if let Some((pid, epoch)) = idem.id.filter(|_| cfg.idempotent) {
            let stamp = match idem.pending.as_ref().and_then(|p| p.stamp) {
                Some(stamp) => stamp,
                None => (pid, epoch, *idem.next_seq.get(&partition).unwrap_or(&0)),
            };
            batch_bytes = Some(build_producer_batch(&records, stamp.0, stamp.1, stamp.2));
            idem.pending = Some(PendingBatch {
                partition,
                values: values.clone(),
                records: records.clone(),
                stamp: Some(stamp),
            });
        }
        let tp: Tp = (cfg.topic.name.clone(), partition);
        let op = shared.history().invoke(
            &cfg.name,
            now_ms(),
            OpKind::Produce {
                tp,
                acks: cfg.acks,
                values,
                outcome: None,
            },
        );
        let result = {
            let batch = batch_bytes.unwrap_or_else(|| build_batch(&records));
            let request = c.produce(&cfg.topic.name, partition, batch, cfg.acks);
            tokio::select! {
                biased;
                _ = disconnects.changed() => None,
                r = request => Some(r),
            }
        };
        let outcome = match result {
            None => {
                client = None;
                ProduceOutcome::Unknown {
                    why: "the client disconnected (fault)".into(),
                }
            }
            Some(Ok(None)) => ProduceOutcome::Unknown {
                why: "acks=0".into(),
            },
            Some(Ok(Some(p))) if p.error_code == 0 => ProduceOutcome::Ok {
                base_offset: p.base_offset,
            },
            Some(Ok(Some(p))) => ProduceOutcome::Fail {
                error: p.error_code,
                definite: !matches!(
                    ErrorCode(p.error_code),
                    ErrorCode::REQUEST_TIMED_OUT | ErrorCode::KAFKA_STORAGE_ERROR
                ) && p.error_code != 20, // NOT_ENOUGH_REPLICAS_AFTER_APPEND
            },
            Some(Err(e)) => {
                client = None;
                ProduceOutcome::Unknown { why: e.to_string() }
            }
        };
        if cfg.idempotent {
            settle_idempotent(&mut idem, &outcome, &cfg, &shared, &mut client).await;
        }
        shared.history().complete_produce(op, now_ms(), outcome);
    }
    Ok(())
}

/// What an idempotent producer does with an outcome: a success advances the partition's
/// sequence; an unknown or indefinite one keeps the batch to send again unchanged; a
/// sequence or epoch refusal bumps the epoch (KIP-360) and sends the batch again from
/// sequence 0; any other refusal drops it.
async fn settle_idempotent(
    idem: &mut Idempotence,
    outcome: &ProduceOutcome,
    cfg: &ProducerCfg,
    shared: &Shared,
    client: &mut Option<SimClient>,
) {
    let Some(pending) = idem.pending.as_mut() else {
        return;
    };
    match outcome {
        ProduceOutcome::Ok { .. } => {
            if let Some((_, _, seq)) = pending.stamp {
                let next =
                    keel_core::producer::increment_sequence(seq, pending.values.len() as i32);
                idem.next_seq.insert(pending.partition, next);
            }
            idem.pending = None;
        }
        ProduceOutcome::Unknown { .. }
        | ProduceOutcome::Fail {
            definite: false, ..
        } => {}
        ProduceOutcome::Fail { error, .. }
            if matches!(
                ErrorCode(*error),
                ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
                    | ErrorCode::UNKNOWN_PRODUCER_ID
                    | ErrorCode::INVALID_PRODUCER_EPOCH
            ) =>
        {
            pending.stamp = None;
            idem.next_seq.clear();
            let bumped = match client.as_mut() {
                Some(c) => init_producer_id(c, idem.id).await,
                None => Err("no connection".into()),
            };
            match bumped {
                Ok(id) => idem.id = Some(id),
                Err(why) => {
                    // A new id at the next connection: sequences restart either way.
                    shared.note(format!("{}: epoch bump failed: {why}", cfg.name));
                    idem.id = None;
                    *client = None;
                }
            }
        }
        ProduceOutcome::Fail { .. } => idem.pending = None,
    }
}

fn pad(ident: &str, len: usize) -> String {
    let mut v = format!("{ident}{PAD_MARK}");
    while v.len() < len {
        v.push('~');
    }
    v
}

/// One consumer's settings.
#[derive(Debug, Clone)]
pub struct ConsumerCfg {
    pub name: String,
    pub topic: TopicInfo,
    pub max_wait: Duration,
    pub max_bytes: i32,
    pub timeout: Duration,
    pub sessions: bool,
    pub start_after: Duration,
}

/// Reads every partition from offset 0, round robin, until it has caught up after the heal
/// (or the run ends).
pub async fn consumer(cfg: ConsumerCfg, shared: Arc<Shared>, plan: Plan) -> turmoil::Result {
    wait_started(&shared).await;
    tokio::time::sleep(cfg.start_after).await;
    let partitions = cfg.topic.partitions.max(1) as usize;
    let mut positions = vec![0i64; partitions];
    let mut caught_up = vec![false; partitions];
    // A partition whose corrupt batch cannot be stepped over: no further reads.
    let mut stuck = vec![false; partitions];
    let mut skippers: Vec<Skipper> = (0..partitions).map(|_| Skipper::default()).collect();
    let mut sessions = vec![FetchSession::default(); partitions];
    let mut disconnects = shared.disconnect.subscribe();
    let mut client: Option<SimClient> = None;
    let mut next = 0usize;
    loop {
        let now = now_ms();
        if now >= plan.end_ms || (0..partitions).all(|p| caught_up[p] || stuck[p]) {
            break;
        }
        let p = next;
        next = (next + 1) % partitions;
        if stuck[p] {
            continue;
        }
        let Some(c) = connected(
            &mut client,
            &mut disconnects,
            &cfg.name,
            &cfg.topic.host,
            cfg.timeout,
        )
        .await
        else {
            continue;
        };
        let tp: Tp = (cfg.topic.name.clone(), p as i32);
        let from = positions[p];
        let invoked = now_ms();
        let op = shared.history().invoke(
            &cfg.name,
            invoked,
            OpKind::Poll {
                tp: tp.clone(),
                from,
                outcome: None,
            },
        );
        let result = {
            let request = async {
                if cfg.sessions {
                    c.fetch_in_session(
                        &mut sessions[p],
                        &tp.0,
                        tp.1,
                        from,
                        cfg.max_wait,
                        cfg.max_bytes,
                    )
                    .await
                } else {
                    c.fetch(&tp.0, tp.1, from, cfg.max_wait, cfg.max_bytes)
                        .await
                }
            };
            tokio::select! {
                biased;
                _ = disconnects.changed() => None,
                r = request => Some(r),
            }
        };
        match result {
            None => {
                client = None;
                let why = "the client disconnected (fault)".to_string();
                shared
                    .history()
                    .complete_poll(op, now_ms(), PollOutcome::Unknown { why });
            }
            Some(Err(e)) => {
                client = None;
                shared.history().complete_poll(
                    op,
                    now_ms(),
                    PollOutcome::Unknown { why: e.to_string() },
                );
            }
            Some(Ok(pd)) if pd.error_code != 0 => {
                shared.history().complete_poll(
                    op,
                    now_ms(),
                    PollOutcome::Fail {
                        error: pd.error_code,
                    },
                );
                if let Some(to) = skippers[p].failed(from, pd.error_code) {
                    let why = format!("error {} at offset {from}, again and again", pd.error_code);
                    positions[p] = to;
                    let mut h = shared.history();
                    let now = now_ms();
                    h.note(
                        now,
                        format!(
                            "{}: {}-{} {why}; stepping over to {to}",
                            cfg.name, tp.0, tp.1
                        ),
                    );
                    h.invoke(&cfg.name, now, OpKind::Seek { tp, to, why });
                } else if pd.error_code == ErrorCode::OFFSET_OUT_OF_RANGE.0 {
                    // Our position is outside the log: Kafka's auto.offset.reset. Go to the
                    // nearer end, as a seek the checker knows about.
                    if let Some(c) = client.as_mut() {
                        match log_bounds(c, &tp).await {
                            Ok((start, end)) => {
                                let to = if from < start { start } else { end };
                                positions[p] = to;
                                let why = format!("offset {from} out of range [{start}, {end}]");
                                let mut h = shared.history();
                                let now = now_ms();
                                h.note(
                                    now,
                                    format!(
                                        "{}: {}-{} {why}; seeking to {to}",
                                        cfg.name, tp.0, tp.1
                                    ),
                                );
                                h.invoke(&cfg.name, now, OpKind::Seek { tp, to, why });
                            }
                            Err(_) => client = None,
                        }
                    }
                } else {
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
            }
            Some(Ok(pd)) => {
                skippers[p].succeeded();
                let decoded = batch::decode(&pd.records.unwrap_or_default());
                let records: Vec<(i64, String)> = decoded
                    .records
                    .iter()
                    .filter(|r| r.offset >= from)
                    .map(|r| (r.offset, ident(&r.value).to_string()))
                    .collect();
                if let Some((last, _)) = records.last() {
                    positions[p] = last + 1;
                }
                let high_watermark = pd.high_watermark;
                let now = now_ms();
                let mut h = shared.history();
                h.complete_poll(
                    op,
                    now,
                    PollOutcome::Ok {
                        records,
                        high_watermark,
                    },
                );
                if let Some((base, last, why)) = decoded.corrupt.first() {
                    // librdkafka with check.crcs refuses the batch; we step over it on purpose.
                    let at = format!("{}-{} batch at offset {base}", tp.0, tp.1);
                    match last {
                        Some(last) if *last + 1 > positions[p] => {
                            positions[p] = last + 1;
                            h.note(
                                now,
                                format!(
                                    "{}: refused a corrupt {at} ({why}); skipping to {}",
                                    cfg.name,
                                    last + 1
                                ),
                            );
                            h.invoke(
                                &cfg.name,
                                now,
                                OpKind::Seek {
                                    tp,
                                    to: last + 1,
                                    why: format!("corrupt batch at {base}"),
                                },
                            );
                        }
                        _ => {
                            stuck[p] = true;
                            h.note(now, format!("{}: refused a corrupt {at} ({why}); cannot step over it, stops reading the partition", cfg.name));
                        }
                    }
                }
                if invoked >= plan.settled_ms && positions[p] >= high_watermark {
                    caught_up[p] = true;
                }
            }
        }
    }
    Ok(())
}

/// How a reader gets past data the broker refuses to serve (KAFKA_STORAGE_ERROR at one
/// offset, again and again: rotted bytes its read path detects). After
/// [`Skipper::PATIENCE`] failures at one offset it steps to the next one, and while the
/// failures go on it steps at once, an offset at a time, as an operator seeking past a
/// corrupt region would: the offsets stepped over are lost to this reader, and the checker
/// judges them (a skipped offset that the final read holds is a poll-skip).
#[derive(Debug, Default)]
struct Skipper {
    at: i64,
    failures: u32,
    stepping: bool,
}

impl Skipper {
    const PATIENCE: u32 = 3;

    /// A fetch at `pos` failed with `error`: where to go instead, if it is time to step.
    fn failed(&mut self, pos: i64, error: i16) -> Option<i64> {
        if error != ErrorCode::KAFKA_STORAGE_ERROR.0 {
            return None;
        }
        if pos != self.at {
            self.at = pos;
            self.failures = 0;
        }
        self.failures += 1;
        if self.stepping || self.failures >= Self::PATIENCE {
            self.stepping = true;
            return Some(pos + 1);
        }
        None
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.stepping = false;
    }
}

/// The log start and end offsets of `tp`.
async fn log_bounds(client: &mut SimClient, tp: &Tp) -> Result<(i64, i64), ClientError> {
    let start = client.list_offsets(&tp.0, tp.1, EARLIEST_TIMESTAMP).await?;
    let end = client.list_offsets(&tp.0, tp.1, LATEST_TIMESTAMP).await?;
    Ok((start.offset, end.offset))
}

/// After the heal: reads every partition of every topic from its start to its high
/// watermark, with fresh connections, retrying until `plan.end_ms`.
pub async fn final_reader(
    topics: Vec<TopicInfo>,
    shared: Arc<Shared>,
    plan: Plan,
) -> turmoil::Result {
    wait_started(&shared).await;
    sleep_until_ms(plan.settled_ms).await;
    let end = plan.end_ms.saturating_sub(100);
    let all: Vec<(&TopicInfo, i32)> = topics
        .iter()
        .flat_map(|t| (0..t.partitions).map(move |p| (t, p)))
        .collect();
    for (i, (topic, partition)) in all.iter().enumerate() {
        // Each partition gets an equal share of the time left, so one that cannot be read
        // does not starve the others.
        let left = (all.len() - i) as u64;
        let deadline = now_ms() + end.saturating_sub(now_ms()) / left;
        let tp: Tp = (topic.name.clone(), *partition);
        let read = read_partition(topic, &tp, deadline, &shared).await;
        shared.history().final_read.insert(tp, read);
    }
    Ok(())
}

async fn read_partition(
    topic: &TopicInfo,
    tp: &Tp,
    deadline: Millis,
    shared: &Shared,
) -> PartitionRead {
    let mut read = PartitionRead::default();
    let mut client: Option<SimClient> = None;
    let mut pos = 0i64;
    let mut skip = Skipper::default();
    // After a storage error, fetch one batch at a time (KIP-74 returns the first batch
    // whole), so one unreadable batch does not hide the good ones around it.
    let mut max_bytes = FINAL_READ_MAX_BYTES;
    // Where a large fetch was last refused.
    let mut refused_at: Option<i64> = None;
    while now_ms() < deadline {
        let c = match client.as_mut() {
            Some(c) => c,
            None => match connect("reader", &topic.host, Duration::from_secs(1)).await {
                Ok(c) => client.insert(c),
                Err(_) => {
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                    continue;
                }
            },
        };
        match c.fetch(&tp.0, tp.1, pos, Duration::ZERO, max_bytes).await {
            Err(_) => client = None,
            Ok(pd) if pd.error_code == ErrorCode::OFFSET_OUT_OF_RANGE.0 => {
                match log_bounds(c, tp).await {
                    Ok((start, _)) if pos < start => pos = start,
                    Ok(_) => tokio::time::sleep(ERROR_BACKOFF).await,
                    Err(_) => client = None,
                }
            }
            Ok(pd) if pd.error_code != 0 => {
                if max_bytes == FINAL_READ_MAX_BYTES {
                    refused_at = Some(pos);
                    if !skip.stepping {
                        shared.note(format!(
                            "reader: {}-{} fetch from offset {pos} failed with error {}; trying one batch",
                            tp.0, tp.1, pd.error_code
                        ));
                    }
                    max_bytes = 1;
                    continue;
                }
                if let Some(to) = skip.failed(pos, pd.error_code) {
                    shared.note(format!(
                        "reader: {}-{} offset {pos} unreadable (error {}); stepping over it",
                        tp.0, tp.1, pd.error_code
                    ));
                    read.unreadable.push(pos);
                    pos = to;
                } else {
                    tokio::time::sleep(ERROR_BACKOFF).await
                }
            }
            Ok(pd) => {
                if refused_at == Some(pos) && pd.records.as_ref().is_some_and(|r| !r.is_empty()) {
                    // The large fetch was refused although its first batch can be served.
                    read.refused_servable.push(pos);
                }
                refused_at = None;
                skip.succeeded();
                max_bytes = FINAL_READ_MAX_BYTES;
                read.high_watermark = pd.high_watermark;
                read.log_start_offset = pd.log_start_offset;
                let decoded = batch::decode(&pd.records.unwrap_or_default());
                let from = pos;
                for r in decoded.records.iter().filter(|r| r.offset >= from) {
                    read.records.insert(r.offset, ident(&r.value).to_string());
                    pos = r.offset + 1;
                }
                if let Some((base, last, why)) = decoded.corrupt.into_iter().next() {
                    match last {
                        Some(last) if last + 1 > pos => {
                            read.corrupt.push((base, Some(last), why));
                            pos = last + 1;
                        }
                        _ => {
                            read.corrupt.push((base, last, why));
                            return read;
                        }
                    }
                }
                if pos >= pd.high_watermark {
                    read.complete = true;
                    return read;
                }
            }
        }
    }
    read
}
