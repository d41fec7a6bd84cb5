//! Retention and DeleteRecords through librdkafka (the `rdkafka` crate) against a real
//! `keel serve` with a short log.retention.check.interval.ms:
//! - a topic with small segments, `segment.ms` and `retention.ms` takes records stamped an
//!   hour ago (CreateTime), then records stamped now; the broker's own retention pass deletes
//!   the old segments and the log start offset (ListOffsets EARLIEST) moves to the first new
//!   record, with no dependence on how fast anything runs: the old records are expired from
//!   the first check on, the new ones not for ten minutes;
//! - a consumer positioned below the log start gets OFFSET_OUT_OF_RANGE and, with
//!   `auto.offset.reset=earliest`, resumes at the new log start;
//! - the log start survives a kill -9 and restart;
//! - AdminClient DeleteRecords moves the log start further (and refuses an offset past the
//!   high watermark), and that survives a restart too.

use keel_tests::{temp_data_dir, Keel};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

const TOPIC: &str = "aged";
/// Records stamped an hour ago, then records stamped now.
const OLD: i64 = 300;
const NEW: i64 = 200;
/// Generous: the broker checks retention every 200 ms, so this only bounds a broken run.
const DEADLINE: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn create_topic(rt: &tokio::runtime::Runtime, bootstrap: &str) {
    // 1 KiB segments hold a few records each; segment.ms makes the first new record (an
    // hour younger than the last old one) start a segment of its own, so retention.ms of
    // ten minutes can take every old record and no new one.
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1))
        .set("segment.bytes", "1024")
        .set("segment.ms", "60000")
        .set("retention.ms", "600000");
    let results = rt
        .block_on(admin(bootstrap).create_topics([&topic], &AdminOptions::new()))
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Produces `count` records with values `v{first}..` stamped `timestamp`, acks=all; returns
/// their offsets.
fn produce(
    rt: &tokio::runtime::Runtime,
    bootstrap: &str,
    first: i64,
    count: i64,
    timestamp: i64,
) -> Vec<i64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    rt.block_on(async {
        let mut offsets = Vec::new();
        for i in first..first + count {
            let value = format!("v{i}-{}", "x".repeat(100));
            let key = format!("k{i}");
            let record = FutureRecord::to(TOPIC)
                .partition(0)
                .key(&key)
                .payload(&value)
                .timestamp(timestamp);
            let delivery = producer
                .send(record, Duration::from_secs(30))
                .await
                .unwrap_or_else(|(e, _)| panic!("record {i} not acknowledged: {e}"));
            offsets.push(delivery.offset);
        }
        offsets
    })
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "retention-test")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

/// (log start, high watermark) by ListOffsets EARLIEST / LATEST.
fn watermarks(bootstrap: &str) -> (i64, i64) {
    consumer(bootstrap)
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
        .expect("ListOffsets")
}

/// Polls until ListOffsets EARLIEST reports `expected`, or fails after `DEADLINE`.
fn wait_for_log_start(keel: &Keel, expected: i64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (low, _) = watermarks(&keel.bootstrap());
        assert!(low <= expected, "log start {low} passed {expected}");
        if low == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "log start still {low}, expected {expected}; broker log:\n{}",
            keel.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Assigns the partition at `from` and reads until `(first offset, values)` covers `until`
/// (exclusive).
fn read_from(bootstrap: &str, from: Offset, until: i64) -> Vec<(i64, String)> {
    let c = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, from).expect("tpl");
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while got.last().is_none_or(|(o, _)| *o + 1 < until) {
        assert!(Instant::now() < deadline, "read only {} records", got.len());
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                got.push((m.offset(), value));
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
        }
    }
    got
}

/// Base offsets of the partition's segment files.
fn segment_bases(dir: &std::path::Path) -> Vec<i64> {
    std::fs::read_dir(dir.join(format!("{TOPIC}-0")))
        .expect("partition dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect()
}

fn value_index(value: &str) -> i64 {
    value[1..value.find('-').expect("v{i}-...")]
        .parse()
        .expect("index")
}

#[test]
fn retention_and_delete_records_move_the_log_start_for_real_clients() {
    let dir = temp_data_dir("retention");
    let mut keel = Keel::start(&dir, &["--log-retention-check-interval-ms", "200"]);
    let bootstrap = keel.bootstrap();
    let rt = runtime();
    create_topic(&rt, &bootstrap);

    let hour_ago = now_ms() - 3_600_000;
    let old = produce(&rt, &bootstrap, 0, OLD, hour_ago);
    assert_eq!(old, (0..OLD).collect::<Vec<_>>());
    let new = produce(&rt, &bootstrap, OLD, NEW, now_ms());
    assert_eq!(new, (OLD..OLD + NEW).collect::<Vec<_>>());
    let end = OLD + NEW;

    // The broker's retention timer deletes every old segment: the log start becomes the
    // first new record's offset; the log end does not move.
    wait_for_log_start(&keel, OLD);
    assert_eq!(watermarks(&bootstrap), (OLD, end));
    // On disk: no segment file below the log start is left.
    let bases = segment_bases(&dir);
    assert_eq!(bases.iter().min(), Some(&OLD), "segment files: {bases:?}");

    // A consumer at offset 0, below the log start: OFFSET_OUT_OF_RANGE, then
    // auto.offset.reset=earliest resumes at the log start and reads every new record.
    let got = read_from(&bootstrap, Offset::Offset(0), end);
    assert_eq!(
        got.first().map(|(o, _)| *o),
        Some(OLD),
        "reset to the log start"
    );
    assert_eq!(
        got.iter()
            .map(|(o, v)| (*o, value_index(v)))
            .collect::<Vec<_>>(),
        (OLD..end).map(|o| (o, o)).collect::<Vec<_>>()
    );

    // The log start is durable: it survives kill -9.
    keel.kill9();
    keel.restart();
    assert_eq!(watermarks(&bootstrap), (OLD, end));

    // DeleteRecords through the AdminClient: the answer is the new low watermark.
    // Inside a segment (a few records each), so only the durable log start offset, not
    // the first file, can say where the log starts after a restart.
    let target = OLD + 53;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(target))
        .expect("tpl");
    let admin = admin(&bootstrap);
    let result = rt
        .block_on(admin.delete_records(&tpl, &AdminOptions::new()))
        .expect("DeleteRecords");
    let p = &result.elements()[0];
    assert!(p.error().is_ok(), "DeleteRecords failed: {:?}", p.error());
    assert_eq!(p.offset(), Offset::Offset(target));
    assert_eq!(watermarks(&bootstrap), (target, end));
    let bases = segment_bases(&dir);
    assert!(
        bases.iter().min().is_some_and(|&b| OLD < b && b < target),
        "the segment holding {target} stays and the ones wholly below go: {bases:?}"
    );
    // Past the high watermark: refused per partition, nothing moves.
    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset(TOPIC, 0, Offset::Offset(end + 1))
        .expect("tpl");
    let result = rt
        .block_on(admin.delete_records(&beyond, &AdminOptions::new()))
        .expect("DeleteRecords");
    assert!(
        matches!(
            result.elements()[0].error(),
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::OffsetOutOfRange)
        ),
        "{:?}",
        result.elements()[0].error()
    );
    assert_eq!(watermarks(&bootstrap), (target, end));

    // A consumer from the beginning starts at the new log start; after a restart too.
    let got = read_from(&bootstrap, Offset::Beginning, end);
    assert_eq!(got.first().map(|(o, _)| *o), Some(target));
    keel.kill9();
    keel.restart();
    assert_eq!(watermarks(&bootstrap), (target, end));
    let got = read_from(&bootstrap, Offset::Offset(OLD), end);
    assert_eq!(got.first().map(|(o, _)| *o), Some(target), "reset again");
    assert_eq!(got.len() as i64, end - target);

    assert!(keel.stop(), "clean shutdown; log:\n{}", keel.log());
    let _ = std::fs::remove_dir_all(&dir);
}
