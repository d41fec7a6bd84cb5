//! `keel consume`: print the records of a topic. Without `--group` it reads the chosen
//! partitions directly from a start position (`--from-beginning`, `--offset`, `--from-time`,
//! else the end); with `--group` it joins the consumer group, reads its assigned partitions
//! from the committed offsets, commits as it goes and leaves on exit. It stops after
//! `--max-messages`, after `--timeout-ms` without a record, or at Ctrl-C.
//!
//! Fetches go to each partition's leader (one request per leader per round, all its
//! partitions in it); a leader change or a retriable error refreshes the metadata. Records are
//! decoded as a Kafka consumer must (see [`super::records`]).

use super::cluster::{Cluster, TopicInfo};
use super::errors::{is_retriable, CliError};
use super::format::{render, Format, DEFAULT_KCAT_FORMAT};
use super::member::{GroupStatus, Member};
use super::records::decode_fetched;
use super::time::parse_time_ms;
use super::topic::offsets_of;
use super::ConnArgs;
use keel_core::api::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use keel_net::codec::{self, RequestBody, ResponseBody};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `keel consume` flags.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("start").args(["from_beginning", "offset", "from_time"])))]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The topic.
    #[arg(long)]
    pub topic: String,
    /// Read only this partition (repeatable) [default: every partition].
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..), conflicts_with = "group")]
    pub partition: Vec<i32>,
    /// Start at the earliest offset (with --group: where the group has no committed offset).
    #[arg(long)]
    pub from_beginning: bool,
    /// Start at this offset in every partition read.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..), conflicts_with = "group")]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time: epoch milliseconds or RFC 3339.
    #[arg(long, value_name = "MS_OR_RFC3339", conflicts_with = "group")]
    pub from_time: Option<String>,
    /// Consume as a member of this consumer group, committing offsets.
    #[arg(long)]
    pub group: Option<String>,
    /// Exit after this many records.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_messages: Option<u64>,
    /// Exit once no record came for this many milliseconds [default: never].
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The template of --format kcat: %t topic, %p partition, %o offset, %T timestamp,
    /// %k key, %K key length, %s value, %S value length, %h headers; \n \t escapes.
    #[arg(long, default_value = DEFAULT_KCAT_FORMAT)]
    pub kcat_format: String,
    /// Most bytes fetched from one partition per request.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(i32).range(1..))]
    pub fetch_max_bytes: i32,
}

/// Runs `keel consume`.
pub fn run(args: ConsumeArgs) -> ExitCode {
    super::run("consume", consume(args))
}

/// Longest fetch wait (bounds how late Ctrl-C, heartbeats and the idle timeout are noticed).
const MAX_WAIT: Duration = Duration::from_millis(500);
/// Most bytes one partition's fetch may grow to when a batch does not fit.
const MAX_PARTITION_BYTES: i32 = 64 << 20;

struct Consumer {
    cluster: Cluster,
    topic: TopicInfo,
    args: ConsumeArgs,
    /// The next offset to read, per partition read.
    positions: BTreeMap<i32, i64>,
    /// Per-partition fetch size, grown when a batch does not fit.
    max_bytes: BTreeMap<i32, i32>,
    member: Option<Member>,
    /// Positions as last committed (commit only what moved).
    committed: BTreeMap<i32, i64>,
    printed: u64,
    out: std::io::BufWriter<std::io::Stdout>,
    /// stdout was closed (e.g. `| head`): stop quietly.
    closed: bool,
}

async fn consume(args: ConsumeArgs) -> Result<(), CliError> {
    let from_time = match &args.from_time {
        Some(t) => Some(parse_time_ms(t).map_err(|e| CliError::Usage(format!("--from-time {e}")))?),
        None => None,
    };
    let mut cluster = Cluster::connect(&args.conn).await?;
    let topic = cluster.topic(&args.topic, false).await?;
    for &p in &args.partition {
        if !topic.has(p) {
            return Err(CliError::kafka(format!("{}/{p}", args.topic), 3, None));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let mut consumer = Consumer {
        cluster,
        topic,
        positions: BTreeMap::new(),
        max_bytes: BTreeMap::new(),
        member: None,
        committed: BTreeMap::new(),
        printed: 0,
        out: std::io::BufWriter::new(std::io::stdout()),
        closed: false,
        args,
    };
    let result = consumer.run(from_time, &stop).await;
    let _ = consumer.out.flush();
    // Whatever stopped us, a group member commits what it printed and leaves.
    let mut finish = Ok(());
    if let Some(mut member) = consumer.member.take() {
        if result.is_ok() && !consumer.positions.is_empty() {
            let moved = consumer.moved();
            finish = member
                .commit(&mut consumer.cluster, &moved)
                .await
                .map(|_| ());
        }
        member.leave(&mut consumer.cluster).await;
    }
    match result.and(finish) {
        Ok(()) => {
            eprintln!("Processed a total of {} messages", consumer.printed);
            Ok(())
        }
        Err(e) if consumer.printed > 0 => {
            Err(e.noted(&format!("after {} message(s)", consumer.printed)))
        }
        Err(e) => Err(e),
    }
}

impl Consumer {
    async fn run(&mut self, from_time: Option<i64>, stop: &AtomicBool) -> Result<(), CliError> {
        match self.args.group.clone() {
            Some(group) => {
                let member = Member::join(&mut self.cluster, &group, &self.topic.name).await?;
                self.member = Some(member);
                self.start_from_committed().await?;
            }
            None => {
                let partitions: Vec<i32> = if self.args.partition.is_empty() {
                    self.topic.partitions.iter().map(|p| p.partition).collect()
                } else {
                    self.args.partition.clone()
                };
                let starts = match (self.args.offset, from_time, self.args.from_beginning) {
                    (Some(o), _, _) => partitions.iter().map(|&p| (p, o)).collect(),
                    (None, Some(t), _) => self.offsets_for_time(&partitions, t).await?,
                    (None, None, true) => self.offsets(&partitions, EARLIEST_TIMESTAMP).await?,
                    (None, None, false) => self.offsets(&partitions, LATEST_TIMESTAMP).await?,
                };
                self.positions = starts;
            }
        }
        let idle = self.args.timeout_ms.map(Duration::from_millis);
        let mut last_record = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) || self.closed || self.done() {
                return Ok(());
            }
            if idle.is_some_and(|idle| last_record.elapsed() >= idle) {
                return Ok(());
            }
            let wait = match idle {
                Some(idle) => MAX_WAIT.min(idle.saturating_sub(last_record.elapsed())),
                None => MAX_WAIT,
            };
            let before = self.printed;
            if self.positions.is_empty() {
                // A group member with nothing assigned waits for a rebalance.
                tokio::time::sleep(wait).await;
            } else {
                self.fetch_round(wait).await?;
            }
            if self.printed > before {
                last_record = Instant::now();
            }
            self.out.flush().or_else(|e| self.write_failed(e))?;
            if self.member.is_some() {
                self.group_duties().await?;
            }
        }
    }

    fn done(&self) -> bool {
        self.args.max_messages.is_some_and(|m| self.printed >= m)
    }

    /// Commits moved positions and heartbeats; rejoins when the group rebalanced.
    async fn group_duties(&mut self) -> Result<(), CliError> {
        let Some(member) = self.member.as_mut() else {
            return Ok(());
        };
        let moved = {
            let positions = &self.positions;
            let committed = &self.committed;
            positions
                .iter()
                .filter(|(p, o)| committed.get(p) != Some(o))
                .map(|(&p, &o)| (p, o))
                .collect::<BTreeMap<i32, i64>>()
        };
        let mut status = member.commit(&mut self.cluster, &moved).await?;
        if status == GroupStatus::Member {
            self.committed.extend(moved);
            status = member.heartbeat_if_due(&mut self.cluster).await?;
        }
        if status == GroupStatus::Rejoin {
            member.rejoin(&mut self.cluster).await?;
            self.start_from_committed().await?;
        }
        Ok(())
    }

    /// Positions that moved since the last commit.
    fn moved(&self) -> BTreeMap<i32, i64> {
        self.positions
            .iter()
            .filter(|(p, o)| self.committed.get(p) != Some(o))
            .map(|(&p, &o)| (p, o))
            .collect()
    }

    /// Positions of the member's assignment: the committed offsets, or the reset policy
    /// (earliest with --from-beginning, else latest) where none is committed.
    async fn start_from_committed(&mut self) -> Result<(), CliError> {
        let Some(member) = self.member.as_ref() else {
            return Ok(());
        };
        self.topic = self.cluster.topic(&self.topic.name.clone(), false).await?;
        let committed = member.committed(&mut self.cluster).await?;
        let missing: Vec<i32> = committed
            .iter()
            .filter(|(_, &o)| o < 0)
            .map(|(&p, _)| p)
            .collect();
        let reset = if self.args.from_beginning {
            EARLIEST_TIMESTAMP
        } else {
            LATEST_TIMESTAMP
        };
        let resets = if missing.is_empty() {
            BTreeMap::new()
        } else {
            self.offsets(&missing, reset).await?
        };
        self.positions = committed
            .iter()
            .map(|(&p, &o)| (p, if o < 0 { resets[&p] } else { o }))
            .collect();
        self.committed = committed.into_iter().filter(|(_, o)| *o >= 0).collect();
        Ok(())
    }

    async fn offsets(
        &mut self,
        partitions: &[i32],
        timestamp: i64,
    ) -> Result<BTreeMap<i32, i64>, CliError> {
        offsets_of(&mut self.cluster, &self.topic, partitions, timestamp).await
    }

    /// The first offset at or after `time_ms` per partition; the end of the log where no
    /// record is that late.
    async fn offsets_for_time(
        &mut self,
        partitions: &[i32],
        time_ms: i64,
    ) -> Result<BTreeMap<i32, i64>, CliError> {
        let found = self.offsets(partitions, time_ms).await?;
        let ends = self.offsets(partitions, LATEST_TIMESTAMP).await?;
        Ok(found
            .into_iter()
            .map(|(p, o)| (p, if o < 0 { ends[&p] } else { o }))
            .collect())
    }

    /// One fetch per leader of the partitions read, printing what came back.
    async fn fetch_round(&mut self, wait: Duration) -> Result<(), CliError> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        let mut refresh = false;
        for &p in self.positions.keys() {
            match self.topic.leader(p) {
                Some(l) => by_leader.entry(l).or_default().push(p),
                None => refresh = true,
            }
        }
        // Several leaders share the wait, so that each is asked at least once a round.
        let wait = wait / u32::try_from(by_leader.len().max(1)).unwrap_or(1);
        for (leader, partitions) in by_leader {
            if self.done() || self.closed {
                break;
            }
            refresh |= self.fetch_from(leader, &partitions, wait).await?;
        }
        if refresh {
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.topic = self.cluster.topic(&self.topic.name.clone(), false).await?;
        }
        Ok(())
    }

    /// Fetches `partitions` from `leader`; returns whether the metadata needs refreshing.
    async fn fetch_from(
        &mut self,
        leader: i32,
        partitions: &[i32],
        wait: Duration,
    ) -> Result<bool, CliError> {
        let request = codec::FetchRequest {
            replica_id: -1,
            max_wait_ms: super::millis_i32(wait),
            min_bytes: 1,
            max_bytes: 50 << 20,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: vec![codec::FetchTopic {
                topic: self.topic.name.clone(),
                partitions: partitions
                    .iter()
                    .map(|&p| codec::FetchPartition {
                        partition: p,
                        current_leader_epoch: -1,
                        fetch_offset: self.positions[&p],
                        last_fetched_epoch: -1,
                        log_start_offset: -1,
                        partition_max_bytes: self
                            .max_bytes
                            .get(&p)
                            .copied()
                            .unwrap_or(self.args.fetch_max_bytes),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let addr = self.cluster.broker_addr(leader);
        let result = self
            .cluster
            .node(leader)
            .await?
            .call(RequestBody::Fetch(request), wait)
            .await;
        let response = match result {
            Ok(Some(ResponseBody::Fetch(r))) => r,
            Ok(_) => {
                return Err(CliError::Other(format!(
                    "fetch from {addr}: the answer is not a Fetch response"
                )))
            }
            Err(e) => {
                self.cluster.reset_connections();
                return Err(CliError::request(format!("fetch from {addr}"))(e));
            }
        };
        if response.error_code != 0 {
            if is_retriable(response.error_code) {
                return Ok(true);
            }
            return Err(CliError::kafka(
                format!("fetch from {addr}"),
                response.error_code,
                None,
            ));
        }
        let mut refresh = false;
        for t in response.responses {
            if t.topic != self.topic.name {
                continue;
            }
            for pd in t.partitions {
                refresh |= self.take(pd).await?;
                if self.done() || self.closed {
                    return Ok(refresh);
                }
            }
        }
        Ok(refresh)
    }

    /// Handles one partition's fetch answer; returns whether the metadata needs refreshing.
    async fn take(&mut self, pd: codec::PartitionData) -> Result<bool, CliError> {
        let p = pd.partition_index;
        let Some(&position) = self.positions.get(&p) else {
            return Ok(false);
        };
        let subject = format!("{}/{p}", self.topic.name);
        match pd.error_code {
            0 => {}
            // OFFSET_OUT_OF_RANGE: like auto.offset.reset, go to the nearest end of the log.
            1 => {
                let start = self.offsets(&[p], EARLIEST_TIMESTAMP).await?[&p];
                let end = self.offsets(&[p], LATEST_TIMESTAMP).await?[&p];
                let to = if position < start { start } else { end };
                eprintln!(
                    "keel consume: {subject}: offset {position} is out of range \
                     [{start}, {end}]; reading from {to}"
                );
                self.positions.insert(p, to);
                return Ok(false);
            }
            code if is_retriable(code) || code == 3 => return Ok(true),
            code => return Err(CliError::kafka(subject, code, None)),
        }
        let bytes = pd.records.unwrap_or_default();
        let decoded = decode_fetched(&bytes, position)
            .map_err(|e| CliError::Other(format!("{subject}: {e}")))?;
        if decoded.next_offset.is_none() && decoded.partial_tail {
            // A batch bigger than the fetch size: ask for more next time.
            let current = self
                .max_bytes
                .get(&p)
                .copied()
                .unwrap_or(self.args.fetch_max_bytes);
            if current >= MAX_PARTITION_BYTES {
                return Err(CliError::Other(format!(
                    "{subject}: a record batch at offset {position} is larger than \
                     {MAX_PARTITION_BYTES} bytes"
                )));
            }
            self.max_bytes
                .insert(p, current.saturating_mul(2).min(MAX_PARTITION_BYTES));
            return Ok(false);
        }
        for record in &decoded.records {
            if self.done() || self.closed {
                return Ok(false);
            }
            let line = render(
                self.args.format,
                &self.args.kcat_format,
                &self.topic.name,
                p,
                record,
            );
            if let Err(e) = self.out.write_all(line.as_bytes()) {
                self.write_failed(e)?;
                return Ok(false);
            }
            self.printed += 1;
            self.positions.insert(p, record.offset + 1);
        }
        if let Some(next) = decoded.next_offset {
            if next > self.positions[&p] {
                self.positions.insert(p, next);
            }
        }
        Ok(false)
    }

    /// A closed stdout ends consumption quietly; any other write error is an error.
    fn write_failed(&mut self, e: std::io::Error) -> Result<(), CliError> {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            self.closed = true;
            Ok(())
        } else {
            Err(CliError::Other(format!("writing stdout: {e}")))
        }
    }
}
