//! Node tests for retention and DeleteRecords (broker/retention.rs, log/retention.rs): a node
//! on a virtual clock deletes old segments on its own timer, only below the high watermark;
//! DeleteRecords' answers and errors; fetch and ListOffsets honour the log start offset,
//! which survives a reopen of the node.

use crate::api::*;
use crate::error::ErrorCode;
use crate::ids::Offset;
use crate::node::*;
use crate::record::builder::{build_batch, Record};
use crate::storage::MemStorage;
use crate::storage::Storage;
use crate::testing::T0;
use crate::time::Instant;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
const CHECK_MS: u64 = 1_000;

crate::testing::wrap_harness!(
    /// The shared node harness, with flushes that may be held back in its `held` (see
    /// `produce`) and a check every [`CHECK_MS`].
    Harness
);

impl Harness {
    fn new() -> Harness {
        Harness::open(MemStorage::new(), Instant::from_millis(T0))
    }

    fn open(disk: MemStorage, now: Instant) -> Harness {
        let config = NodeConfig {
            log_retention_check_interval_ms: CHECK_MS,
            ..NodeConfig::default()
        };
        let storage = Arc::new(disk.clone());
        Harness(crate::testing::Harness::open_at(config, storage, disk, now))
    }

    /// Closes the node and opens a new one over the same disk (a clean restart).
    fn reopen(self) -> Harness {
        Harness(self.0.restart())
    }

    /// Sends a request that must be answered at once; leaves any Flush undone and returns
    /// the files of those flushes.
    fn call(&mut self, request: Request) -> (Response, Vec<String>) {
        let id = self.send(request);
        let mut response = None;
        let mut files = Vec::new();
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::Respond {
                    id: rid,
                    response: r,
                    ..
                } if rid == id => response = Some(r),
                Output::Respond { .. } => panic!("unexpected response"),
                Output::Flush {
                    log,
                    files: f,
                    upto,
                } => {
                    // Acted on at once, as a driver would.
                    for file in &f {
                        sync(&self.0.disk, file);
                    }
                    files.extend(f);
                    self.0.node.handle(self.0.now, Input::Flushed { log, upto });
                }
                Output::SendPeer { .. } => panic!("a single node sends no peer messages"),
            }
        }
        (response.expect("answered at once"), files)
    }

    /// Performs every pending Flush; returns the files flushed.
    fn complete_flushes(&mut self) -> Vec<String> {
        let mut flushed = Vec::new();
        let held = std::mem::take(&mut self.held);
        let held = held
            .into_iter()
            .map(|(log, files, upto)| Output::Flush { log, files, upto });
        let outputs: Vec<Output> = held
            .chain(std::iter::from_fn(|| self.node.poll_output()))
            .collect();
        let mut outputs = std::collections::VecDeque::from(outputs);
        while let Some(out) = outputs.pop_front().or_else(|| self.node.poll_output()) {
            match out {
                Output::Flush { log, files, upto } => {
                    for f in &files {
                        sync(&self.0.disk, f);
                    }
                    flushed.extend(files);
                    self.0.node.handle(self.0.now, Input::Flushed { log, upto });
                }
                Output::Respond { .. } => panic!("unexpected response"),
                Output::SendPeer { .. } => panic!("a single node sends no peer messages"),
            }
        }
        flushed
    }

    /// Moves the clock to `T0 + ms` and ticks; returns the files flushed after the tick.
    fn at(&mut self, ms: u64) -> Vec<String> {
        self.now = Instant::from_millis(T0) + Duration::from_millis(ms);
        self.0.node.handle(self.0.now, Input::Tick);
        self.complete_flushes()
    }

    fn create(&mut self, name: &str, configs: &[(&str, &str)]) {
        let (r, _) = self.call(Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: 1,
                replication_factor: -1,
                configs: configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                    .collect(),
                ..Default::default()
            }],
            timeout_ms: 1000,
            validate_only: false,
        }));
        let Response::CreateTopics(r) = r else {
            panic!()
        };
        assert_eq!(r.topics[0].error_code, ErrorCode::NONE, "{r:?}");
    }

    /// Produces one two-record batch at `ts` with acks=1; the flush is left undone.
    fn produce(&mut self, topic: &str, ts: i64) -> i64 {
        self.send(Request::Produce(ProduceRequest {
            transactional_id: None,
            acks: 1,
            timeout_ms: 30_000,
            topics: vec![ProduceTopic {
                name: topic.into(),
                partitions: vec![ProducePartition {
                    partition_index: 0,
                    records: Some(batch(ts)),
                }],
            }],
        }));
        let mut response = None;
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::Respond {
                    response: Response::Produce(r),
                    ..
                } => response = Some(r),
                Output::Flush { log, files, upto } => self.held.push((log, files, upto)),
                other => panic!("unexpected {other:?}"),
            }
        }
        let r = response.expect("acks=1 answers at once");
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, ErrorCode::NONE);
        p.base_offset
    }

    fn list_offset(&mut self, topic: &str, timestamp: i64) -> (ErrorCode, i64) {
        let (r, _) = self.call(Request::ListOffsets(ListOffsetsRequest {
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    current_leader_epoch: -1,
                    timestamp,
                }],
            }],
        }));
        let Response::ListOffsets(r) = r else {
            panic!()
        };
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset)
    }

    /// (error, log start offset, first batch's base offset if any) of a fetch at `offset`.
    fn fetch(&mut self, topic: &str, offset: i64) -> (ErrorCode, i64, Option<i64>) {
        let (r, _) = self.call(Request::Fetch(FetchRequest {
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: 0,
            topics: vec![FetchTopic {
                name: topic.into(),
                partitions: vec![FetchPartition {
                    partition_index: 0,
                    current_leader_epoch: -1,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                }],
            }],
            ..Default::default()
        }));
        let Response::Fetch(r) = r else { panic!() };
        let p = &r.topics[0].partitions[0];
        let first = (!p.records.is_empty()).then(|| {
            crate::record::BatchHeader::new(&p.records)
                .unwrap()
                .base_offset()
        });
        (p.error_code, p.log_start_offset, first)
    }

    fn delete_records(&mut self, topic: &str, partition: i32, offset: i64) -> (ErrorCode, i64) {
        let (r, _) = self.call(Request::DeleteRecords(DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: topic.into(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: partition,
                    offset,
                }],
            }],
            timeout_ms: 1000,
        }));
        let Response::DeleteRecords(r) = r else {
            panic!()
        };
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.partition_index, partition);
        (p.error_code, p.low_watermark)
    }

    fn segments(&self, topic: &str) -> Vec<i64> {
        self.node
            .partition_named(topic, 0)
            .unwrap()
            .log
            .segment_base_offsets()
    }
}

/// What the driver does with a Flush's file: a file removed since the Flush was asked for
/// (retention, DeleteRecords) has nothing left to make durable (net/src/driver.rs).
fn sync(disk: &MemStorage, file: &str) {
    match disk.sync(file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("sync {file}: {e}"),
    }
}

/// Two records at `ts`, about 120 bytes: one batch fills a segment of `segment.bytes=100`.
fn batch(ts: i64) -> Bytes {
    let records: Vec<Record> = (0..2)
        .map(|i| Record {
            key: Some(b"k".to_vec()),
            value: Some(vec![b'v'; 20]),
            headers: vec![],
            timestamp_ms: ts + i,
        })
        .collect();
    build_batch(&records)
}

const SMALL_SEGMENTS: (&str, &str) = ("segment.bytes", "100");

/// The node runs retention from its own clock every log.retention.check.interval.ms: a
/// segment goes once its newest record is retention.ms old, the log start follows, a fetch
/// below it is OFFSET_OUT_OF_RANGE (so auto.offset.reset applies) and ListOffsets EARLIEST
/// names it; the removal is followed by a flush of the directory.
#[test]
fn retention_runs_on_the_node_clock_and_moves_the_log_start() {
    let mut h = Harness::new();
    h.create("t", &[SMALL_SEGMENTS, ("retention.ms", "10000")]);
    for i in 0..3 {
        h.produce("t", T0 as i64 + i * 5_000);
    }
    h.complete_flushes();
    assert_eq!(h.segments("t"), vec![0, 2, 4]);
    assert_eq!(
        h.node.next_deadline(),
        Some(Instant::from_millis(T0 + CHECK_MS)),
        "a log with data arms the retention timer"
    );
    // Batch 0's newest record is at T0 + 1: 10 000 ms old is not yet older than retention.
    h.at(10_001);
    assert_eq!(h.segments("t"), vec![0, 2, 4]);
    // Timers fire only at the check interval: at T0 + 10 500 nothing runs.
    h.at(10_500);
    assert_eq!(h.segments("t"), vec![0, 2, 4]);
    let flushed = h.at(11_001);
    assert_eq!(h.segments("t"), vec![2, 4]);
    assert_eq!(
        flushed,
        vec![format!("t-0/{:020}.log", 4)],
        "directory made durable"
    );
    assert_eq!(h.list_offset("t", EARLIEST_TIMESTAMP), (ErrorCode::NONE, 2));
    assert_eq!(h.list_offset("t", LATEST_TIMESTAMP), (ErrorCode::NONE, 6));
    assert_eq!(h.fetch("t", 0), (ErrorCode::OFFSET_OUT_OF_RANGE, 2, None));
    assert_eq!(h.fetch("t", 2), (ErrorCode::NONE, 2, Some(2)));
    // Beyond the log end is out of range too; at the log end is an empty answer.
    assert_eq!(h.fetch("t", 7).0, ErrorCode::OFFSET_OUT_OF_RANGE);
    assert_eq!(h.fetch("t", 6), (ErrorCode::NONE, 2, None));
    // Everything expires: a fresh active segment at the log end, which never goes back.
    h.at(30_000);
    assert_eq!(h.segments("t"), vec![6]);
    assert_eq!(h.list_offset("t", EARLIEST_TIMESTAMP), (ErrorCode::NONE, 6));
    assert_eq!(h.list_offset("t", LATEST_TIMESTAMP), (ErrorCode::NONE, 6));
    assert_eq!(h.produce("t", T0 as i64 + 30_000), 6);
    // The log start survives a restart.
    h.complete_flushes();
    let mut h = h.reopen();
    assert_eq!(h.list_offset("t", EARLIEST_TIMESTAMP), (ErrorCode::NONE, 6));
    assert_eq!(h.fetch("t", 4).0, ErrorCode::OFFSET_OUT_OF_RANGE);
}

/// retention.bytes on the node, and Kafka's defaults: a topic with no retention configs
/// keeps a week of data and has no size limit.
#[test]
fn retention_bytes_applies_and_defaults_keep_a_week() {
    let mut h = Harness::new();
    h.create("sized", &[SMALL_SEGMENTS, ("retention.bytes", "250")]);
    h.create("default", &[SMALL_SEGMENTS]);
    for _ in 0..4 {
        h.produce("sized", T0 as i64);
        h.produce("default", T0 as i64);
    }
    h.complete_flushes();
    h.at(CHECK_MS);
    // Segments of 84..125 bytes: without the first, three stay (>= 250 bytes); without a
    // second, two would leave less than 250, so it stays.
    assert_eq!(h.segments("sized"), vec![2, 4, 6]);
    assert_eq!(h.segments("default"), vec![0, 2, 4, 6]);
    h.at(7 * 24 * 3_600_000);
    assert_eq!(
        h.segments("default"),
        vec![0, 2, 4, 6],
        "exactly a week old stays"
    );
    h.at(7 * 24 * 3_600_000 + CHECK_MS);
    assert_eq!(h.segments("default"), vec![8]);
}

/// Retention never deletes what is not yet durable (above the high watermark), and a
/// compacted topic is not subject to retention.ms at all.
#[test]
fn retention_waits_for_durability_and_skips_compacted_topics() {
    let mut h = Harness::new();
    h.create("t", &[SMALL_SEGMENTS, ("retention.ms", "0")]);
    h.create(
        "c",
        &[
            SMALL_SEGMENTS,
            ("retention.ms", "0"),
            ("cleanup.policy", "compact"),
        ],
    );
    h.produce("c", T0 as i64);
    h.produce("c", T0 as i64);
    h.produce("t", T0 as i64);
    h.produce("t", T0 as i64);
    // Nothing flushed: the clock passes retention but the high watermark is 0.
    let partition = &h.node.partition_named("t", 0).unwrap();
    assert_eq!(partition.high_watermark, Offset(0));
    h.now = Instant::from_millis(T0 + CHECK_MS);
    let now = h.now;
    h.node.handle(now, Input::Tick);
    assert_eq!(h.segments("t"), vec![0, 2]);
    h.complete_flushes();
    h.at(2 * CHECK_MS);
    assert_eq!(h.segments("t"), vec![4]);
    assert_eq!(h.segments("c"), vec![0, 2]);
}

/// DeleteRecords (Kafka's `Partition.deleteRecordsOnLeader`): -1 means the high watermark,
/// an offset above it or below -1 is OFFSET_OUT_OF_RANGE, unknown partitions and compacted
/// topics are refused, the low watermark answered is the new log start, which never moves
/// back and survives a restart.
#[test]
fn delete_records_moves_the_log_start_durably_and_refuses_what_kafka_refuses() {
    let mut h = Harness::new();
    h.create("t", &[SMALL_SEGMENTS]);
    h.create("c", &[("cleanup.policy", "compact")]);
    for _ in 0..3 {
        h.produce("t", T0 as i64);
    }
    h.complete_flushes();
    h.produce("t", T0 as i64); // offsets 6, 7: not durable, above the high watermark
    assert_eq!(
        h.delete_records("t", 0, 7),
        (ErrorCode::OFFSET_OUT_OF_RANGE, -1)
    );
    assert_eq!(
        h.delete_records("t", 0, -2),
        (ErrorCode::OFFSET_OUT_OF_RANGE, -1)
    );
    assert_eq!(
        h.delete_records("t", 1, 0),
        (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1)
    );
    assert_eq!(
        h.delete_records("nope", 0, 0),
        (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1)
    );
    assert_eq!(
        h.delete_records("c", 0, 0),
        (ErrorCode::POLICY_VIOLATION, -1)
    );
    // Inside the second segment: the first goes at once, the batch holding 3 is still
    // served whole from 3 on (the consumer skips record 2).
    assert_eq!(h.delete_records("t", 0, 3), (ErrorCode::NONE, 3));
    assert_eq!(h.segments("t"), vec![2, 4, 6]);
    assert_eq!(h.fetch("t", 2), (ErrorCode::OFFSET_OUT_OF_RANGE, 3, None));
    assert_eq!(h.fetch("t", 3), (ErrorCode::NONE, 3, Some(2)));
    assert_eq!(h.list_offset("t", EARLIEST_TIMESTAMP), (ErrorCode::NONE, 3));
    // Lower than the log start: nothing moves back; the answer is the current start.
    assert_eq!(h.delete_records("t", 0, 1), (ErrorCode::NONE, 3));
    // -1: up to the high watermark (6, since 6 and 7 are not durable yet).
    assert_eq!(h.delete_records("t", 0, -1), (ErrorCode::NONE, 6));
    h.complete_flushes();
    let mut h = h.reopen();
    assert_eq!(h.list_offset("t", EARLIEST_TIMESTAMP), (ErrorCode::NONE, 6));
    assert_eq!(h.fetch("t", 5), (ErrorCode::OFFSET_OUT_OF_RANGE, 6, None));
    assert_eq!(h.fetch("t", 6), (ErrorCode::NONE, 6, Some(6)));
    assert_eq!(h.delete_records("t", 0, -1), (ErrorCode::NONE, 8));
    assert_eq!(h.fetch("t", 8), (ErrorCode::NONE, 8, None));
}

/// A node with no stored data asks for no retention timer, and a compacted log with one
/// segment neither.
#[test]
fn no_retention_timer_without_data() {
    let mut h = Harness::new();
    assert!(!h.node.retention_wanted());
    h.create("t", &[]);
    h.create("c", &[("cleanup.policy", "compact")]);
    assert!(!h.node.retention_wanted());
    h.produce("c", T0 as i64);
    h.complete_flushes();
    assert!(!h.node.retention_wanted());
    h.produce("t", T0 as i64);
    h.complete_flushes();
    assert!(h.node.retention_wanted());
    assert_eq!(
        h.node.next_deadline(),
        Some(Instant::from_millis(T0 + CHECK_MS))
    );
}
