//! `keel produce`: one record per stdin line, batched per partition and sent to each
//! partition's leader, every acknowledgement checked.
//!
//! Lines are read on a plain thread (stdin is blocking) and handed over a bounded channel, so
//! a batch goes out when it is full, when `--linger-ms` passes without a new line (typing
//! interactively sends each line at once), or at end of input. Records are partitioned as
//! Kafka's Java producer does: `--partition` if given, else murmur2 of the key, else one
//! partition per batch in turn (the "sticky" idea). Retriable errors (no leader yet, leader
//! moved) refresh the metadata and resend; any other error stops with the Kafka error. Ctrl-C
//! ends the input early: the lines already read are still sent and acknowledged.

use super::cluster::{Cluster, TopicInfo};
use super::errors::{is_retriable, CliError};
use super::records::{self, Compression};
use super::{parse_key_value, ConnArgs};
use bytes::Bytes;
use keel_core::record::builder::Record;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `keel produce` flags.
#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The topic (the broker may create it, as for any Kafka producer).
    #[arg(long)]
    pub topic: String,
    /// Send every record to this partition.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Split each line at the first SEP into key and value (a line without it is an error).
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header added to every record, KEY=VALUE (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// 0 (no acknowledgement), 1 (the leader) or all/-1 (every in-sync replica).
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    pub acks: i16,
    /// Compression of each batch.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,
    /// Most records in one batch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,
    /// Most bytes of keys and values in one batch (stay under the broker's message.max.bytes).
    #[arg(long, default_value_t = 900_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_bytes: u32,
    /// Send what is pending once no line came for this long, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub linger_ms: u64,
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("'{s}': acks is 0, 1 or all")),
    }
}

/// Runs `keel produce`.
pub fn run(args: ProduceArgs) -> ExitCode {
    super::run("produce", produce(args))
}

/// How often a batch is resent after a retriable error.
const SEND_ATTEMPTS: u32 = 10;

/// Records waiting for one partition.
#[derive(Default)]
struct Pending {
    records: Vec<Record>,
    bytes: usize,
}

struct Producer {
    cluster: Cluster,
    topic: TopicInfo,
    acks: i16,
    compression: Compression,
    pending: BTreeMap<i32, Pending>,
    /// Where keyless records go when no partition is given; moves on after each batch.
    sticky: i32,
    records_sent: u64,
    batches_sent: u64,
    partitions_used: BTreeMap<i32, u64>,
}

async fn produce(args: ProduceArgs) -> Result<(), CliError> {
    if args.key_separator.as_deref() == Some("") {
        return Err(CliError::Usage("--key-separator must not be empty".into()));
    }
    let mut cluster = Cluster::connect(&args.conn).await?;
    let topic = cluster.topic(&args.topic, true).await?;
    if let Some(p) = args.partition {
        if !topic.has(p) {
            return Err(CliError::kafka(format!("{}/{p}", args.topic), 3, None));
        }
    }
    let mut producer = Producer {
        cluster,
        topic,
        acks: args.acks,
        compression: args.compression,
        pending: BTreeMap::new(),
        sticky: 0,
        records_sent: 0,
        batches_sent: 0,
        partitions_used: BTreeMap::new(),
    };
    let headers: Vec<(String, Option<Vec<u8>>)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.as_bytes().to_vec())))
        .collect();
    let mut lines = spawn_stdin_reader();
    let linger = Duration::from_millis(args.linger_ms);
    let mut line_no = 0u64;
    // Ctrl-C ends the input: what was read is still sent and acknowledged.
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut interrupt_armed = true;
    let result: Result<(), CliError> = async {
        loop {
            let lingering = !producer.pending.is_empty();
            let next = tokio::select! {
                biased;
                signal = &mut interrupt, if interrupt_armed => {
                    interrupt_armed = false;
                    match signal {
                        Ok(()) => break,
                        // No signal handling here: go on without it.
                        Err(_) => continue,
                    }
                }
                next = lines.recv() => next,
                _ = tokio::time::sleep(linger), if lingering => {
                    producer.flush_all().await?;
                    continue;
                }
            };
            let Some(line) = next else { break };
            let line = line.map_err(|e| CliError::Other(format!("reading stdin: {e}")))?;
            line_no += 1;
            let (key, value) = match &args.key_separator {
                None => (None, line),
                Some(sep) => match find(&line, sep.as_bytes()) {
                    Some(at) => (Some(line[..at].to_vec()), line[at + sep.len()..].to_vec()),
                    None => {
                        return Err(CliError::Usage(format!(
                            "line {line_no}: no key separator '{}'",
                            sep.escape_default()
                        )))
                    }
                },
            };
            let partition = match (args.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, producer.topic.partitions.len()),
                (None, None) => producer.sticky_partition(),
            };
            let size = key.as_ref().map_or(0, Vec::len) + value.len();
            let record = Record {
                key,
                value: Some(value),
                headers: headers.clone(),
                timestamp_ms: now_ms(),
            };
            let pending = producer.pending.entry(partition).or_default();
            if !pending.records.is_empty() && pending.bytes + size > args.batch_bytes as usize {
                producer.flush(partition).await?;
            }
            let pending = producer.pending.entry(partition).or_default();
            pending.records.push(record);
            pending.bytes += size;
            if pending.records.len() >= args.batch_size as usize
                || pending.bytes >= args.batch_bytes as usize
            {
                producer.flush(partition).await?;
            }
        }
        producer.flush_all().await
    }
    .await;
    let verb = if producer.acks == 0 {
        "sent"
    } else {
        "produced"
    };
    if let Err(e) = result {
        if producer.records_sent == 0 {
            return Err(e);
        }
        return Err(e.noted(&format!(
            "{} record(s) were {verb} before this",
            producer.records_sent
        )));
    }
    let used: Vec<String> = producer
        .partitions_used
        .keys()
        .map(i32::to_string)
        .collect();
    eprintln!(
        "{} {} record(s) to {} in {} batch(es){}.",
        if producer.acks == 0 {
            "Sent"
        } else {
            "Produced"
        },
        producer.records_sent,
        args.topic,
        producer.batches_sent,
        if used.is_empty() {
            String::new()
        } else {
            format!(" (partitions {})", used.join(","))
        }
    );
    Ok(())
}

impl Producer {
    fn sticky_partition(&mut self) -> i32 {
        let n = self.topic.partitions.len().max(1) as i32;
        self.sticky.rem_euclid(n)
    }

    async fn flush_all(&mut self) -> Result<(), CliError> {
        let partitions: Vec<i32> = self.pending.keys().copied().collect();
        for p in partitions {
            self.flush(p).await?;
        }
        Ok(())
    }

    /// Sends the pending records of `partition` as one batch and waits for its answer.
    async fn flush(&mut self, partition: i32) -> Result<(), CliError> {
        let Some(pending) = self.pending.remove(&partition) else {
            return Ok(());
        };
        if pending.records.is_empty() {
            return Ok(());
        }
        if partition == self.sticky_partition() {
            self.sticky = self.sticky.wrapping_add(1);
        }
        let batch = records::build(&pending.records, self.compression).map_err(CliError::Other)?;
        let subject = format!("{}/{partition}", self.topic.name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send(partition, batch.clone()).await {
                Ok(()) => break,
                Err(e) if attempt < SEND_ATTEMPTS && e.code().is_some_and(is_retriable) => {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    self.topic = self.cluster.topic(&self.topic.name.clone(), false).await?;
                }
                Err(CliError::Kafka { code, message, .. }) => {
                    return Err(CliError::kafka(subject, code, message));
                }
                Err(e) => return Err(e),
            }
        }
        self.records_sent += pending.records.len() as u64;
        self.batches_sent += 1;
        *self.partitions_used.entry(partition).or_default() += pending.records.len() as u64;
        Ok(())
    }

    async fn send(&mut self, partition: i32, batch: Bytes) -> Result<(), CliError> {
        let subject = format!("{}/{partition}", self.topic.name);
        let leader = self
            .topic
            .leader(partition)
            .ok_or_else(|| CliError::kafka(&subject, 5, None))?;
        let addr = self.cluster.broker_addr(leader);
        let result = self
            .cluster
            .node(leader)
            .await?
            .produce(&self.topic.name, partition, batch, self.acks)
            .await;
        match result {
            Ok(None) => Ok(()),
            Ok(Some(r)) if r.error_code == 0 => Ok(()),
            Ok(Some(r)) => Err(CliError::kafka(subject, r.error_code, r.error_message)),
            Err(e) => {
                // The outcome of this batch is unknown: say so rather than resend it.
                self.cluster.reset_connections();
                Err(CliError::request(format!(
                    "produce to {subject} at {addr} (the batch may or may not have been \
                     written)"
                ))(e))
            }
        }
    }
}

/// Reads stdin line by line on its own thread; a line keeps its bytes (not necessarily
/// UTF-8) without the trailing `\n` or `\r\n`.
fn spawn_stdin_reader() -> tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        loop {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The partition Kafka's default partitioner picks for `key`: murmur2 of the key, made
/// positive, modulo the partition count (`Utils.toPositive(Utils.murmur2(key)) % n`).
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    let n = partitions.max(1) as u32;
    ((murmur2(key) & 0x7fff_ffff) as u32 % n) as i32
}

/// Kafka's `Utils.murmur2` (seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ len as u32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(partition_for_key(b"foobar", 3) < 3);
    }
}
