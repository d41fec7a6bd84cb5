//! Node tests: drive a node in memory on a virtual clock and assert its exact outputs.

use super::*;
use crate::api::*;
use crate::error::ErrorCode;
use crate::ids::{NodeId, Offset, PartitionId};
use crate::node::*;
use crate::record::builder::{build_batch, Record};
use crate::storage::MemStorage;
use crate::storage::Storage;
use crate::time::Instant;
use bytes::Bytes;
use std::sync::Arc;

pub(super) use crate::testing::{Harness, T0};

pub(crate) fn records(values: &[&str], ts: i64) -> Vec<Record> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            key: Some(b"k".to_vec()),
            value: Some(v.as_bytes().to_vec()),
            headers: vec![],
            timestamp_ms: ts + i as i64,
        })
        .collect()
}

pub(crate) fn batch(values: &[&str], ts: i64) -> Bytes {
    build_batch(&records(values, ts))
}

pub(crate) fn produce(topic: &str, partition: i32, acks: i16, records: Bytes) -> Request {
    Request::Produce(ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: topic.into(),
            partitions: vec![ProducePartition {
                partition_index: partition,
                records: Some(records),
            }],
        }],
    })
}

pub(crate) fn fetch(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> Request {
    Request::Fetch(FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 0,
        topics: vec![FetchTopic {
            name: topic.into(),
            partitions: vec![FetchPartition {
                partition_index: partition,
                current_leader_epoch: -1,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
            }],
        }],
        ..Default::default()
    })
}

pub(crate) fn produce_result(r: &Response) -> &ProducePartitionResponse {
    let Response::Produce(r) = r else {
        panic!("not a produce response: {r:?}")
    };
    &r.topics[0].partitions[0]
}

pub(crate) fn fetch_result(r: &Response) -> &FetchPartitionResponse {
    let Response::Fetch(r) = r else {
        panic!("not a fetch response: {r:?}")
    };
    &r.topics[0].partitions[0]
}

#[test]
fn acks_1_answers_at_once_but_consumers_see_only_durable_data() {
    let mut h = Harness::new();
    h.create("t", 1);
    let (r, flushes) = h.call(produce("t", 0, 1, batch(&["a", "b"], T0 as i64)));
    assert_eq!(produce_result(&r).base_offset, 0);
    assert_eq!(flushes.len(), 1, "the append asks for a flush");
    assert_eq!(flushes[0].2, Offset(2));
    // Not durable yet: the high watermark has not moved.
    let (r, _) = h.call(fetch("t", 0, 0, 0));
    assert_eq!(fetch_result(&r).high_watermark, 0);
    assert!(fetch_result(&r).records.is_empty());
    let (log, _, upto) = flushes[0].clone();
    h.node.handle(h.now, Input::Flushed { log, upto });
    let (r, _) = h.call(fetch("t", 0, 0, 0));
    let f = fetch_result(&r);
    assert_eq!(f.high_watermark, 2);
    let header = crate::record::verify_batch(&f.records).unwrap();
    assert_eq!((header.base_offset(), header.records_count()), (0, 2));
}

#[test]
fn acks_all_is_answered_only_after_flushed_and_concurrent_writes_share_a_flush() {
    let mut h = Harness::new();
    h.create("t", 1);
    let first = h.send(produce("t", 0, -1, batch(&["a"], T0 as i64)));
    let outs = h.outputs();
    assert_eq!(
        outs.len(),
        1,
        "no answer before the flush, only the Flush itself"
    );
    let Output::Flush { log, upto, .. } = outs[0] else {
        panic!("{outs:?}")
    };
    assert_eq!(upto, Offset(1));
    // Two more produces while that flush is in flight: no new Flush yet.
    let second = h.send(produce("t", 0, -1, batch(&["b"], T0 as i64)));
    let third = h.send(produce("t", 0, -1, batch(&["c"], T0 as i64)));
    assert!(h.outputs().is_empty());
    h.node.handle(h.now, Input::Flushed { log, upto });
    let outs = h.outputs();
    assert!(matches!(&outs[0], Output::Respond { id, .. } if *id == first));
    let flushes: Vec<_> = outs
        .iter()
        .filter(|o| matches!(o, Output::Flush { .. }))
        .collect();
    assert_eq!(
        flushes.len(),
        1,
        "one flush covers both waiting writes: {outs:?}"
    );
    let Output::Flush { log, upto, .. } = *flushes[0] else {
        unreachable!()
    };
    assert_eq!(upto, Offset(3));
    h.node.handle(h.now, Input::Flushed { log, upto });
    let answered: Vec<RequestId> = h
        .outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Respond { id, response, .. } => {
                assert_eq!(produce_result(&response).error_code, ErrorCode::NONE);
                Some(id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(answered, vec![second, third]);
}

#[test]
fn a_failed_fsync_fails_waiting_writes_and_stops_the_log() {
    let mut h = Harness::new();
    h.create("t", 1);
    let id = h.send(produce("t", 0, -1, batch(&["a"], T0 as i64)));
    let Some(Output::Flush { log, .. }) = h.node.poll_output() else {
        panic!()
    };
    h.node.handle(
        h.now,
        Input::FlushFailed {
            log,
            error: "EIO".into(),
        },
    );
    let Some(Output::Respond {
        id: rid, response, ..
    }) = h.node.poll_output()
    else {
        panic!()
    };
    assert_eq!(rid, id);
    assert_eq!(
        produce_result(&response).error_code,
        ErrorCode::KAFKA_STORAGE_ERROR
    );
    let (r, flushes) = h.call(produce("t", 0, 1, batch(&["b"], T0 as i64)));
    assert_eq!(
        produce_result(&r).error_code,
        ErrorCode::KAFKA_STORAGE_ERROR
    );
    assert!(flushes.is_empty());
    // Found by keel-sim (fsync-failure): a log failed by its first flush after a restart kept
    // a stale high watermark below acknowledged records. A failed fsync now stops the node.
    assert!(h.node.fatal_error().unwrap().contains("EIO"));
}

#[test]
fn long_poll_fetch_waits_for_data_or_its_deadline() {
    let mut h = Harness::new();
    h.create("t", 1);
    let parked = h.send(fetch("t", 0, 0, 500));
    assert!(h.outputs().is_empty(), "nothing to read: the fetch waits");
    h.advance(100);
    assert!(h.outputs().is_empty());
    h.send(produce("t", 0, 1, batch(&["a"], T0 as i64)));
    let released = h.complete_flushes();
    let fetched = released
        .iter()
        .find(|(id, _)| *id == parked)
        .expect("woken by durable data");
    assert_eq!(fetch_result(&fetched.1).high_watermark, 1);
    assert!(!fetch_result(&fetched.1).records.is_empty());

    let parked = h.send(fetch("t", 0, 1, 500));
    assert_eq!(
        h.node.next_deadline(),
        Some(h.now + std::time::Duration::from_millis(500))
    );
    h.advance(499);
    assert!(h.outputs().is_empty());
    h.advance(1);
    let outs = h.outputs();
    assert!(
        matches!(&outs[..], [Output::Respond { id, response, .. }] if *id == parked && fetch_result(response).records.is_empty())
    );
}

/// KIP-227 end to end on the node: a full fetch opens a session; an incremental fetch that
/// names no partition reads them all from the session, waits like any fetch, and is
/// answered with only the partition that got data.
#[test]
fn an_incremental_fetch_waits_on_its_session_and_answers_what_changed() {
    let mut h = Harness::new();
    h.create("t", 2);
    let with_session = |mut r: Request, session_id: i32, epoch: i32| {
        if let Request::Fetch(f) = &mut r {
            f.session.session_id = session_id;
            f.session.epoch = epoch;
        }
        r
    };
    let mut full = with_session(fetch("t", 0, 0, 0), 0, 0);
    if let Request::Fetch(f) = &mut full {
        f.topics[0].partitions.push(FetchPartition {
            partition_index: 1,
            current_leader_epoch: -1,
            fetch_offset: 0,
            partition_max_bytes: 1 << 20,
        });
    }
    let (r, _) = h.call(full);
    let Response::Fetch(r) = r else { panic!() };
    assert!(r.session_id > 0);
    assert_eq!(
        r.topics[0].partitions.len(),
        2,
        "a full fetch answers every partition"
    );
    let session = r.session_id;

    let mut incremental = with_session(fetch("t", 0, 0, 500), session, 1);
    if let Request::Fetch(f) = &mut incremental {
        f.topics.clear();
    }
    let parked = h.send(incremental);
    assert!(h.outputs().is_empty(), "nothing new: the fetch waits");
    h.send(produce("t", 1, 1, batch(&["a"], T0 as i64)));
    let released = h.complete_flushes();
    let (_, r) = released
        .iter()
        .find(|(id, _)| *id == parked)
        .expect("woken by data in a partition it never named");
    let Response::Fetch(r) = r else { panic!() };
    assert_eq!(r.session_id, session);
    let listed: Vec<(i32, bool)> = r
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, p.records.is_empty()))
        .collect();
    assert_eq!(listed, vec![(1, false)], "only what changed");

    let (r, _) = h.call(with_session(fetch("t", 0, 0, 0), session, 1));
    let Response::Fetch(r) = r else { panic!() };
    assert_eq!(r.error_code, ErrorCode::INVALID_FETCH_SESSION_EPOCH);
}

#[test]
fn bad_batches_get_kafkas_error_codes() {
    let mut h = Harness::new();
    h.create("t", 1);
    let mut corrupt = batch(&["a"], T0 as i64).to_vec();
    *corrupt.last_mut().unwrap() ^= 0x40;
    let (r, _) = h.call(produce("t", 0, 1, Bytes::from(corrupt)));
    assert_eq!(produce_result(&r).error_code, ErrorCode::CORRUPT_MESSAGE);
    let truncated = batch(&["a"], T0 as i64).slice(..40);
    let (r, _) = h.call(produce("t", 0, 1, truncated));
    assert_eq!(produce_result(&r).error_code, ErrorCode::CORRUPT_MESSAGE);
    let mut two = batch(&["a"], T0 as i64).to_vec();
    two.extend_from_slice(&batch(&["b"], T0 as i64));
    let (r, _) = h.call(produce("t", 0, 1, Bytes::from(two)));
    assert_eq!(produce_result(&r).error_code, ErrorCode::INVALID_RECORD);
    let (r, _) = h.call(produce("t", 9, 1, batch(&["a"], T0 as i64)));
    assert_eq!(
        produce_result(&r).error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    let (r, _) = h.call(produce("t", 0, 2, batch(&["a"], T0 as i64)));
    assert_eq!(
        produce_result(&r).error_code,
        ErrorCode::INVALID_REQUIRED_ACKS
    );
    let future = T0 as i64 + 2 * 3_600_000;
    let (r, _) = h.call(produce("t", 0, 1, batch(&["a"], future)));
    assert_eq!(produce_result(&r).error_code, ErrorCode::INVALID_TIMESTAMP);
    let (r, _) = h.call(fetch("t", 0, 5, 0));
    assert_eq!(fetch_result(&r).error_code, ErrorCode::OFFSET_OUT_OF_RANGE);
    assert_eq!(
        h.node.partition_named("t", 0).unwrap().log.log_end_offset(),
        0,
        "nothing was appended"
    );
}

#[test]
fn metadata_auto_creates_and_admin_requests_validate() {
    let mut h = Harness::new();
    let (r, _) = h.call(Request::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef {
            name: Some("auto".into()),
            id: TopicId::ZERO,
        }]),
        allow_auto_topic_creation: true,
        ..Default::default()
    }));
    let Response::Metadata(m) = r else { panic!() };
    assert_eq!(m.topics[0].error_code, ErrorCode::NONE);
    assert_eq!(m.topics[0].partitions.len(), 1);
    assert!(!m.topics[0].topic_id.is_zero());
    assert_eq!(m.brokers[0].port, 9092);

    let (r, _) = h.call(Request::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef {
            name: Some("nope".into()),
            id: TopicId::ZERO,
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    }));
    let Response::Metadata(m) = r else { panic!() };
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );

    let create = |name: &str, partitions: i32, configs: Vec<(String, Option<String>)>| {
        Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: -1,
                assignments: vec![],
                configs,
            }],
            timeout_ms: 1000,
            validate_only: false,
        })
    };
    let code = |h: &mut Harness, r: Request| {
        let (r, _) = h.call(r);
        let Response::CreateTopics(r) = r else {
            panic!()
        };
        (r.topics[0].error_code, r.topics[0].error_message.clone())
    };
    assert_eq!(
        code(&mut h, create("auto", 1, vec![])).0,
        ErrorCode::TOPIC_ALREADY_EXISTS
    );
    assert_eq!(
        code(&mut h, create("x", 0, vec![])).0,
        ErrorCode::INVALID_PARTITIONS
    );
    assert_eq!(
        code(&mut h, create("bad name", 1, vec![])).0,
        ErrorCode::INVALID_TOPIC_EXCEPTION
    );
    let (c, msg) = code(
        &mut h,
        create("x", 1, vec![("retention.ms".into(), Some("soon".into()))]),
    );
    assert_eq!(c, ErrorCode::INVALID_CONFIG);
    assert!(msg.unwrap().contains("retention.ms"));
    assert_eq!(
        code(
            &mut h,
            create("x", 2, vec![("retention.ms".into(), Some("1000".into()))])
        )
        .0,
        ErrorCode::NONE
    );

    let (r, _) = h.call(Request::DeleteTopics(DeleteTopicsRequest {
        topics: vec![
            TopicRef {
                name: Some("x".into()),
                id: TopicId::ZERO,
            },
            TopicRef {
                name: Some("y".into()),
                id: TopicId::ZERO,
            },
        ],
        timeout_ms: 1000,
    }));
    let Response::DeleteTopics(d) = r else {
        panic!()
    };
    assert_eq!(d.responses[0].error_code, ErrorCode::NONE);
    assert_eq!(
        d.responses[1].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[test]
fn list_offsets_earliest_latest_and_by_time() {
    let mut h = Harness::new();
    h.create("t", 1);
    for i in 0..5 {
        h.send(produce("t", 0, 1, batch(&["a", "b"], T0 as i64 + i * 100)));
    }
    h.complete_flushes();
    let lookup = |h: &mut Harness, ts: i64| {
        let (r, _) = h.call(Request::ListOffsets(ListOffsetsRequest {
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: "t".into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    current_leader_epoch: -1,
                    timestamp: ts,
                }],
            }],
        }));
        let Response::ListOffsets(r) = r else {
            panic!()
        };
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset, p.timestamp)
    };
    assert_eq!(lookup(&mut h, EARLIEST_TIMESTAMP), (ErrorCode::NONE, 0, -1));
    assert_eq!(lookup(&mut h, LATEST_TIMESTAMP), (ErrorCode::NONE, 10, -1));
    // Batch i holds records at T0+100i and T0+100i+1, offsets 2i and 2i+1.
    assert_eq!(
        lookup(&mut h, T0 as i64 + 201),
        (ErrorCode::NONE, 5, T0 as i64 + 201)
    );
    assert_eq!(
        lookup(&mut h, T0 as i64 + 202),
        (ErrorCode::NONE, 6, T0 as i64 + 300)
    );
    assert_eq!(
        lookup(&mut h, T0 as i64 + 10_000),
        (ErrorCode::NONE, -1, -1)
    );
}

#[test]
fn topics_and_data_survive_a_restart() {
    let mut h = Harness::new();
    h.create("t", 3);
    for p in 0..3 {
        h.send(produce("t", p, -1, batch(&["a", "b", "c"], T0 as i64)));
    }
    h.complete_flushes();
    let disk = h.disk.clone();
    drop(h);
    let mut h = Harness::open(disk);
    for p in 0..3 {
        let (r, _) = h.call(fetch("t", p, 0, 0));
        let f = fetch_result(&r);
        assert_eq!(f.high_watermark, 3);
        assert_eq!(
            crate::record::verify_batch(&f.records)
                .unwrap()
                .records_count(),
            3
        );
    }
    let (r, _) = h.call(produce("t", 1, 1, batch(&["d"], T0 as i64)));
    assert_eq!(
        produce_result(&r).base_offset,
        3,
        "offsets continue after a restart"
    );
}

#[test]
fn a_deleted_topic_leaves_no_files_and_can_be_recreated_empty() {
    let mut h = Harness::new();
    h.create("t", 1);
    h.send(produce("t", 0, 1, batch(&["a"], T0 as i64)));
    h.complete_flushes();
    h.call(Request::DeleteTopics(DeleteTopicsRequest {
        topics: vec![TopicRef {
            name: Some("t".into()),
            id: TopicId::ZERO,
        }],
        timeout_ms: 1000,
    }));
    assert!(h.disk.list("t-0").unwrap().is_empty());
    h.create("t", 1);
    let (r, _) = h.call(fetch("t", 0, 0, 0));
    assert_eq!(fetch_result(&r).high_watermark, 0);
}

fn harness_with_bug(bug: crate::bugs::PlantedBug) -> Harness {
    let disk = MemStorage::new();
    let now = Instant::from_millis(T0);
    let config = NodeConfig {
        planted_bug: Some(bug),
        ..NodeConfig::default()
    };
    Harness::open_at(config, Arc::new(disk.clone()), disk, now)
}

/// The switch is honoured only in builds with the feature: a release `keel` configured with
/// a planted bug still waits for the fsync.
#[cfg(not(feature = "planted-bugs"))]
#[test]
fn a_planted_bug_is_inert_without_the_feature() {
    let mut h = harness_with_bug(crate::bugs::PlantedBug::AckBeforeFlush);
    h.create("t", 1);
    h.send(produce("t", 0, -1, batch(&["a"], T0 as i64)));
    let outs = h.outputs();
    assert!(
        outs.iter().all(|o| matches!(o, Output::Flush { .. })),
        "{outs:?}"
    );
}

#[cfg(feature = "planted-bugs")]
#[test]
fn planted_bugs_misbehave_as_described() {
    use crate::bugs::PlantedBug;
    let mut h = harness_with_bug(PlantedBug::AckBeforeFlush);
    h.create("t", 1);
    h.send(produce("t", 0, -1, batch(&["a"], T0 as i64)));
    assert!(
        h.outputs()
            .iter()
            .any(|o| matches!(o, Output::Respond { .. })),
        "acked before its flush"
    );

    let mut h = harness_with_bug(PlantedBug::HighWatermarkPastFlushed);
    h.create("t", 1);
    h.call(produce("t", 0, 1, batch(&["a"], T0 as i64)));
    let (r, _) = h.call(fetch("t", 0, 0, 0));
    assert_eq!(
        fetch_result(&r).high_watermark,
        1,
        "high watermark past unflushed data"
    );

    let mut h = harness_with_bug(PlantedBug::FetchBeyondHighWatermark);
    h.create("t", 1);
    h.call(produce("t", 0, 1, batch(&["a"], T0 as i64)));
    let (r, _) = h.call(fetch("t", 0, 0, 0));
    assert!(
        !fetch_result(&r).records.is_empty(),
        "served beyond the high watermark"
    );
}

// ---- Idempotent producers (KAFKA.md §4 "idempotence", broker/idempotence.rs) -------------

/// `batch(values)` as idempotent producer `pid` at `epoch`, starting at sequence `seq`.
fn idempotent(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Bytes {
    crate::record::builder::build_producer_batch(&records(values, T0 as i64), pid, epoch, seq)
}

/// An acks=1 produce to t-0 whose write is then made durable.
fn produce_code(h: &mut Harness, records: Bytes) -> (ErrorCode, i64) {
    let (r, flushes) = h.call(produce("t", 0, 1, records));
    for (log, files, upto) in flushes {
        h.flush(log, &files, upto);
    }
    assert!(h.complete_flushes().is_empty());
    let p = produce_result(&r);
    (p.error_code, p.base_offset)
}

fn log_end(h: &Harness) -> i64 {
    h.node.partition_named("t", 0).unwrap().log.log_end_offset()
}

fn init_producer_id(h: &mut Harness, r: InitProducerIdRequest) -> InitProducerIdResponse {
    let (r, _) = h.call(Request::InitProducerId(r));
    let Response::InitProducerId(r) = r else {
        panic!("{r:?}")
    };
    r
}

/// KAFKA.md §4: a retry matching one of the last 5 batches is not appended; the original
/// offset comes back with no error (Kafka's `ProducerStateEntry.findDuplicateBatch`).
#[test]
fn a_retried_batch_is_deduplicated_to_its_original_offset() {
    let mut h = Harness::new();
    h.create("t", 1);
    assert_eq!(
        produce_code(&mut h, batch(&["x"], T0 as i64)),
        (ErrorCode::NONE, 0)
    );
    assert_eq!(
        produce_code(&mut h, idempotent(7, 0, 0, &["a", "b"])),
        (ErrorCode::NONE, 1)
    );
    assert_eq!(
        produce_code(&mut h, idempotent(7, 0, 2, &["c"])),
        (ErrorCode::NONE, 3)
    );
    assert_eq!(log_end(&h), 4);
    // Both retried: the original offsets, nothing appended.
    assert_eq!(
        produce_code(&mut h, idempotent(7, 0, 0, &["a", "b"])),
        (ErrorCode::NONE, 1)
    );
    assert_eq!(
        produce_code(&mut h, idempotent(7, 0, 2, &["c"])),
        (ErrorCode::NONE, 3)
    );
    assert_eq!(log_end(&h), 4);
    // Non-idempotent batches are never deduplicated.
    assert_eq!(
        produce_code(&mut h, batch(&["x"], T0 as i64)),
        (ErrorCode::NONE, 4)
    );
    h.complete_flushes();

    // acks=-1: a retry of a durable batch is answered at once; a retry of a batch not yet
    // durable waits for the same flush as the original.
    let (r, flushes) = h.call(produce("t", 0, -1, idempotent(7, 0, 0, &["a", "b"])));
    assert_eq!(
        (
            produce_result(&r).error_code,
            produce_result(&r).base_offset
        ),
        (ErrorCode::NONE, 1)
    );
    assert!(flushes.is_empty());
    let original = h.send(produce("t", 0, -1, idempotent(7, 0, 3, &["d"])));
    let retry = h.send(produce("t", 0, -1, idempotent(7, 0, 3, &["d"])));
    let released = h.complete_flushes();
    let answers: Vec<(RequestId, ErrorCode, i64)> = released
        .iter()
        .map(|(id, r)| {
            (
                *id,
                produce_result(r).error_code,
                produce_result(r).base_offset,
            )
        })
        .collect();
    assert_eq!(
        answers,
        vec![(original, ErrorCode::NONE, 5), (retry, ErrorCode::NONE, 5)]
    );
    assert_eq!(log_end(&h), 6);
}

#[test]
fn sequence_gaps_old_epochs_and_unknown_producers_are_refused() {
    let mut h = Harness::new();
    h.create("t", 1);
    assert_eq!(
        produce_code(&mut h, idempotent(3, 0, 0, &["a"])).0,
        ErrorCode::NONE
    );
    // firstSeq must be lastSeq + 1.
    assert_eq!(
        produce_code(&mut h, idempotent(3, 0, 2, &["c"])).0,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    // A new epoch must start at sequence 0.
    assert_eq!(
        produce_code(&mut h, idempotent(3, 1, 1, &["b"])).0,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce_code(&mut h, idempotent(3, 1, 0, &["b"])),
        (ErrorCode::NONE, 1)
    );
    // The old epoch is fenced, retries of its batches included.
    assert_eq!(
        produce_code(&mut h, idempotent(3, 0, 1, &["b"])).0,
        ErrorCode::INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        produce_code(&mut h, idempotent(3, 0, 0, &["a"])).0,
        ErrorCode::INVALID_PRODUCER_EPOCH
    );
    // A producer the partition does not know, continuing mid-sequence.
    assert_eq!(
        produce_code(&mut h, idempotent(4, 0, 9, &["z"])).0,
        ErrorCode::UNKNOWN_PRODUCER_ID
    );
    assert_eq!(log_end(&h), 2, "no refused batch was appended");
}

/// Kafka's `inSequence`: after i32::MAX comes 0.
#[test]
fn sequences_wrap_at_i32_max() {
    let mut h = Harness::new();
    h.create("t", 1);
    assert_eq!(
        produce_code(&mut h, idempotent(5, 0, 0, &["a"])),
        (ErrorCode::NONE, 0)
    );
    // Put the producer near the end of the sequence space without producing 2^31 records:
    // seed its partition state as if offset 0 had carried sequence i32::MAX - 1.
    let p = h.node.partition_named_mut("t", 0).unwrap();
    p.producers = crate::producer::ProducerStates::default();
    p.producers.record(
        &crate::producer::ProducedBatch {
            producer_id: 5,
            epoch: 0,
            first_seq: i32::MAX - 1,
            last_offset_delta: 0,
        },
        0,
        0,
    );
    // i32::MAX and 0: one batch across the wrap.
    assert_eq!(
        produce_code(&mut h, idempotent(5, 0, i32::MAX, &["b", "c"])),
        (ErrorCode::NONE, 1)
    );
    assert_eq!(
        produce_code(&mut h, idempotent(5, 0, 1, &["d"])),
        (ErrorCode::NONE, 3)
    );
    assert_eq!(
        produce_code(&mut h, idempotent(5, 0, i32::MAX, &["b", "c"])),
        (ErrorCode::NONE, 1)
    );
    assert_eq!(
        produce_code(&mut h, idempotent(5, 0, 0, &["x"])).0,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(log_end(&h), 4);
}

/// Producer state is rebuilt from the log's batch headers at open: a retry after a restart
/// of a batch that was durable is still a duplicate, and the sequence continues.
#[test]
fn producer_state_survives_a_restart() {
    let mut h = Harness::new();
    h.create("t", 1);
    for seq in 0..7 {
        h.send(produce("t", 0, -1, idempotent(9, 2, seq, &["v"])));
    }
    h.send(produce("t", 0, -1, idempotent(10, 0, 0, &["w", "w"])));
    h.complete_flushes();
    let before = h.node.partition_named("t", 0).unwrap().producers.clone();
    let disk = h.disk.clone();
    drop(h);
    let mut h = Harness::open(disk);
    let after = &h.node.partition_named("t", 0).unwrap().producers;
    assert_eq!(after.get(9), before.get(9));
    assert_eq!(after.get(10), before.get(10));
    assert_eq!(after.get(9).unwrap().batches.len(), 5);
    assert_eq!(
        produce_code(&mut h, idempotent(9, 2, 6, &["v"])),
        (ErrorCode::NONE, 6)
    );
    assert_eq!(
        produce_code(&mut h, idempotent(10, 0, 0, &["w", "w"])),
        (ErrorCode::NONE, 7)
    );
    assert_eq!(
        produce_code(&mut h, idempotent(9, 1, 7, &["v"])).0,
        ErrorCode::INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        produce_code(&mut h, idempotent(9, 2, 7, &["v"])),
        (ErrorCode::NONE, 9)
    );
}

const SNAPSHOT_DIR: &str = "t-0";

fn snapshot_file(offset: i64) -> String {
    format!("{SNAPSHOT_DIR}/{offset:020}.snapshot")
}

fn snapshot_offsets(disk: &MemStorage) -> Vec<i64> {
    let mut v: Vec<i64> = disk
        .list(SNAPSHOT_DIR)
        .unwrap()
        .iter()
        .filter_map(|n| n.strip_suffix(".snapshot")?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Idempotent batches of producers 9 (seq 0..7) and 10, made durable: log end 9.
fn two_producers() -> Harness {
    let mut h = Harness::new();
    h.create("t", 1);
    for seq in 0..7 {
        produce_code(&mut h, idempotent(9, 2, seq, &["v"]));
    }
    produce_code(&mut h, idempotent(10, 0, 0, &["w", "w"]));
    h
}

/// A clean shutdown snapshots every partition's producer state at its log end, and the
/// next open starts from the snapshot and replays no batch: a producer that exists only in
/// the snapshot (planted here) is there after the open, and the real ones are intact.
#[test]
fn a_clean_shutdown_snapshots_producer_state_and_the_open_starts_from_it() {
    use crate::producer::{ProducedBatch, ProducerStates};
    let mut h = two_producers();
    let before = h.node.partition_named("t", 0).unwrap().producers.clone();
    h.node.flush_all();
    h.complete_flushes();
    assert_eq!(snapshot_offsets(&h.disk), vec![9]);
    let disk = h.disk.clone();
    drop(h);

    let (_, mut planted) =
        ProducerStates::decode_snapshot(&disk.contents(&snapshot_file(9)).unwrap(), 10_000)
            .unwrap();
    let ghost = ProducedBatch {
        producer_id: 77,
        epoch: 0,
        first_seq: 0,
        last_offset_delta: 0,
    };
    planted.record(&ghost, 3, 3);
    disk.set_contents(&snapshot_file(9), planted.encode_snapshot(9));
    let mut h = Harness::open(disk);
    let after = &h.node.partition_named("t", 0).unwrap().producers;
    assert!(after.get(77).is_some(), "the state came from the snapshot");
    assert_eq!(after.get(9), before.get(9));
    assert_eq!(after.get(10), before.get(10));
    // Nothing changed since: a second clean shutdown writes no new snapshot.
    h.node.flush_all();
    h.complete_flushes();
    assert_eq!(snapshot_offsets(&h.disk), vec![9]);
    // Batches after the snapshot are replayed on top of it.
    assert_eq!(
        produce_code(&mut h, idempotent(9, 2, 7, &["v"])),
        (ErrorCode::NONE, 9)
    );
    let before = h.node.partition_named("t", 0).unwrap().producers.clone();
    let h = Harness::open(h.disk.clone());
    let after = &h.node.partition_named("t", 0).unwrap().producers;
    assert_eq!(after.get(9), before.get(9));
    assert!(after.get(77).is_some());
}

/// Snapshots the open cannot trust are removed and the next older one (or the whole log)
/// used: one above the recovered log end (it describes a tail a crash took), one that
/// does not decode. The state is what the log says either way.
#[test]
fn untrustworthy_producer_snapshots_are_removed() {
    use crate::producer::ProducerStates;
    let mut h = two_producers();
    let truth = h.node.partition_named("t", 0).unwrap().producers.clone();
    h.node.flush_all();
    h.complete_flushes();
    let disk = h.disk.clone();
    drop(h);
    // A snapshot from a tail that is gone, which would claim producer 9 is at epoch 5.
    let mut future = ProducerStates::default();
    future.record(
        &crate::producer::ProducedBatch {
            producer_id: 9,
            epoch: 5,
            first_seq: 0,
            last_offset_delta: 0,
        },
        50,
        50,
    );
    disk.set_contents(&snapshot_file(100), future.encode_snapshot(100));
    disk.set_contents(&snapshot_file(4), b"not a snapshot".to_vec());
    let h = Harness::open(disk.clone());
    assert_eq!(
        snapshot_offsets(&disk),
        vec![4, 9],
        "the one above the log end is gone; 9 served, so 4 was never read"
    );
    assert_eq!(
        h.node.partition_named("t", 0).unwrap().producers.get(9),
        truth.get(9)
    );
    drop(h);
    // The newest one rots: it and the garbage go, and the whole log is replayed.
    let mut rotten = disk.contents(&snapshot_file(9)).unwrap();
    rotten[20] ^= 1;
    disk.set_contents(&snapshot_file(9), rotten);
    let h = Harness::open(disk.clone());
    assert_eq!(snapshot_offsets(&disk), Vec::<i64>::new());
    let after = &h.node.partition_named("t", 0).unwrap().producers;
    assert_eq!(after.get(9), truth.get(9));
    assert_eq!(after.get(10), truth.get(10));
}

/// A segment roll snapshots producer state, so an open after a crash (no clean shutdown)
/// starts from the roll; a cut below a snapshot removes it first.
#[test]
fn a_roll_snapshots_producer_state_and_a_truncation_removes_snapshots_above_it() {
    let mut h = Harness::new();
    let (r, _) = h.call(Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "t".into(),
            num_partitions: 1,
            replication_factor: -1,
            configs: vec![("segment.bytes".into(), Some("200".into()))],
            ..Default::default()
        }],
        timeout_ms: 1000,
        validate_only: false,
    }));
    let Response::CreateTopics(r) = r else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, ErrorCode::NONE);
    for seq in 0..6 {
        assert_eq!(
            produce_code(&mut h, idempotent(9, 0, seq, &["a value of some length"])).0,
            ErrorCode::NONE
        );
    }
    let rolls = snapshot_offsets(&h.disk);
    assert!(!rolls.is_empty() && rolls.len() <= 2, "snapshots {rolls:?}");
    let before = h.node.partition_named("t", 0).unwrap().producers.clone();
    let disk = h.disk.clone();
    drop(h); // a crash: no shutdown snapshot
    let h = Harness::open(disk.clone());
    let p = &h.node.partition_named("t", 0).unwrap();
    assert_eq!(p.producers.get(9), before.get(9));
    assert_eq!(p.producer_snapshot, rolls.last().copied());
    drop(h);

    let newest = *rolls.last().unwrap();
    let (mut log, _) = crate::log::PartitionLog::open(
        Arc::new(disk.clone()),
        SNAPSHOT_DIR,
        crate::log::LogConfig::default(),
    )
    .unwrap();
    log.truncate_to(newest - 1).unwrap();
    assert!(snapshot_offsets(&disk).iter().all(|&o| o < newest));
}

#[test]
fn producer_ids_are_unique_across_restarts_and_epochs_bump() {
    use crate::producer::{ProducerIdBlock, PRODUCER_ID_FILE};
    let mut h = Harness::new();
    let new = InitProducerIdRequest::default();
    let a = init_producer_id(&mut h, new.clone());
    let b = init_producer_id(&mut h, new.clone());
    assert_eq!(
        (a.error_code, a.producer_id, a.producer_epoch),
        (ErrorCode::NONE, 0, 0)
    );
    assert_eq!((b.producer_id, b.producer_epoch), (1, 0));
    let stored = |h: &Harness| ProducerIdBlock::decode(&h.disk.contents(PRODUCER_ID_FILE).unwrap());
    assert_eq!(
        stored(&h),
        Ok(1000),
        "one write reserves a block of 1000 ids"
    );
    // KIP-360: the current id and epoch bump the epoch; at the last epoch, a new id.
    let bumped = init_producer_id(
        &mut h,
        InitProducerIdRequest {
            producer_id: 1,
            producer_epoch: 0,
            ..new.clone()
        },
    );
    assert_eq!(
        (bumped.error_code, bumped.producer_id, bumped.producer_epoch),
        (ErrorCode::NONE, 1, 1)
    );
    let exhausted = init_producer_id(
        &mut h,
        InitProducerIdRequest {
            producer_id: 1,
            producer_epoch: i16::MAX - 1,
            ..new.clone()
        },
    );
    assert_eq!((exhausted.producer_id, exhausted.producer_epoch), (2, 0));
    let inconsistent = init_producer_id(
        &mut h,
        InitProducerIdRequest {
            producer_id: 1,
            producer_epoch: -1,
            ..new.clone()
        },
    );
    assert_eq!(inconsistent.error_code, ErrorCode::INVALID_REQUEST);
    // Transactions are not supported.
    let tx = init_producer_id(
        &mut h,
        InitProducerIdRequest {
            transactional_id: Some("tx-1".into()),
            ..new.clone()
        },
    );
    assert_eq!(
        (tx.error_code, tx.producer_id, tx.producer_epoch),
        (ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1)
    );

    let disk = h.disk.clone();
    drop(h);
    let mut h = Harness::open(disk);
    let c = init_producer_id(&mut h, new.clone());
    assert_eq!(
        (c.error_code, c.producer_id, c.producer_epoch),
        (ErrorCode::NONE, 1000, 0)
    );
    assert_eq!(stored(&h), Ok(2000));
    // An id this run never handed out is not bumped: a fresh one instead.
    let foreign = init_producer_id(
        &mut h,
        InitProducerIdRequest {
            producer_id: 5000,
            producer_epoch: 3,
            ..new.clone()
        },
    );
    assert_eq!((foreign.producer_id, foreign.producer_epoch), (1001, 0));

    // A damaged file stops the node from opening rather than reuse ids.
    let mut bytes = h.disk.contents(PRODUCER_ID_FILE).unwrap();
    bytes[6] ^= 1;
    h.disk.set_contents(PRODUCER_ID_FILE, bytes);
    let opened = Node::open(NodeConfig::default(), Arc::new(h.disk.clone()), h.now, 7);
    assert!(matches!(opened, Err(OpenError::Metadata { .. })));
}

/// Kafka's ReplicaManager: clients may not append to internal topics.
#[test]
fn produce_to_the_offsets_topic_is_refused() {
    let mut h = Harness::new();
    let (r, flushes) = h.call(produce(
        crate::group::OFFSETS_TOPIC,
        0,
        1,
        batch(&["a"], T0 as i64),
    ));
    let p = produce_result(&r);
    assert_eq!(p.error_code, ErrorCode::INVALID_TOPIC_EXCEPTION);
    assert_eq!(
        p.error_message.as_deref(),
        Some("Cannot append to internal topic __consumer_offsets")
    );
    assert!(flushes.is_empty());
}

fn create_with(h: &mut Harness, name: &str, configs: &[(&str, &str)]) {
    let (r, _) = h.call(Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: -1,
            assignments: vec![],
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
        }],
        timeout_ms: 1000,
        validate_only: false,
    }));
    let Response::CreateTopics(r) = r else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, ErrorCode::NONE, "{r:?}");
}

fn keyed(key: Option<&str>, value: &str, ts: i64) -> Bytes {
    build_batch(&[Record {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: vec![],
        timestamp_ms: ts,
    }])
}

/// Kafka refuses a record without a key on a compacted topic: compaction could never tell
/// which of its values is the latest. Other topics take keyless records.
#[test]
fn a_compacted_topic_refuses_keyless_records() {
    let mut h = Harness::new();
    create_with(&mut h, "compacted", &[("cleanup.policy", "compact")]);
    create_with(&mut h, "plain", &[]);
    let ts = T0 as i64;
    let (r, _) = h.call(produce("compacted", 0, 1, keyed(None, "v", ts)));
    let p = produce_result(&r);
    assert_eq!(p.error_code, ErrorCode::INVALID_RECORD);
    assert!(
        p.error_message.as_deref().unwrap().contains("without key"),
        "{p:?}"
    );
    let mixed = build_batch(&[
        Record {
            key: Some(b"k".to_vec()),
            value: Some(b"a".to_vec()),
            headers: vec![],
            timestamp_ms: ts,
        },
        Record {
            key: None,
            value: Some(b"b".to_vec()),
            headers: vec![],
            timestamp_ms: ts,
        },
    ]);
    let (r, _) = h.call(produce("compacted", 0, 1, mixed));
    assert_eq!(produce_result(&r).error_code, ErrorCode::INVALID_RECORD);
    let (r, _) = h.call(produce("compacted", 0, 1, keyed(Some("k"), "v", ts)));
    assert_eq!(produce_result(&r).error_code, ErrorCode::NONE);
    assert_eq!(
        produce_result(&r).base_offset,
        0,
        "refused batches took no offsets"
    );
    let (r, _) = h.call(produce("plain", 0, 1, keyed(None, "v", ts)));
    assert_eq!(produce_result(&r).error_code, ErrorCode::NONE);
}

/// The node runs the cleaner on its own clock: once a compacted topic has durable sealed
/// segments and log.cleaner interval has passed, superseded values disappear, offsets stay,
/// and the latest value of each key is still served.
#[test]
fn the_log_cleaner_runs_on_the_node_clock_and_keeps_the_latest_values() {
    let config = NodeConfig {
        log_cleaner_interval_ms: 1_000,
        ..NodeConfig::default()
    };
    let disk = MemStorage::new();
    let mut h = Harness::with_storage(config, Arc::new(disk.clone()), disk);
    create_with(
        &mut h,
        "c",
        &[("cleanup.policy", "compact"), ("segment.bytes", "200")],
    );
    let ts = T0 as i64;
    for i in 0..20 {
        let key = if i % 2 == 0 { "even" } else { "odd" };
        let (r, flushes) = h.call(produce("c", 0, 1, keyed(Some(key), &format!("v{i}"), ts)));
        assert_eq!(produce_result(&r).base_offset, i);
        for (log, files, upto) in flushes {
            h.flush(log, &files, upto);
        }
        h.complete_flushes();
    }
    // (base offset, record count) of every batch from offset 0 to the log end; a fetch
    // answers from one segment at a time.
    let records_from_zero = |h: &mut Harness| -> Vec<(i64, i32)> {
        let mut out = Vec::new();
        let mut next = 0;
        while next < 20 {
            let (r, _) = h.call(fetch("c", 0, next, 0));
            let p = fetch_result(&r);
            assert_eq!(p.error_code, ErrorCode::NONE);
            let (batches, _) = crate::record::split_batches(&p.records);
            assert!(!batches.is_empty(), "nothing served at {next}");
            for b in &batches {
                let h = crate::record::BatchHeader::new(b).unwrap();
                out.push((h.base_offset(), h.records_count()));
                next = h.last_offset() + 1;
            }
        }
        out
    };
    let before = records_from_zero(&mut h);
    assert_eq!(before.iter().map(|b| b.1).sum::<i32>(), 20);
    assert!(
        h.node.next_deadline().is_some(),
        "sealed compacted segments ask for the cleaner's timer"
    );
    h.advance(999);
    assert_eq!(records_from_zero(&mut h), before, "not due yet");
    for _ in 0..20 {
        h.advance(1_000);
    }
    let after = records_from_zero(&mut h);
    let kept: i32 = after.iter().map(|b| b.1).sum();
    assert!(kept < 20, "nothing was compacted: {after:?}");
    // The active segment is never compacted, and offsets never move: the last two records
    // (the latest of each key) are where they were written.
    let last = after.last().unwrap();
    assert_eq!(last.0 + i64::from(last.1) - 1, 19);
    let (r, _) = h.call(fetch("c", 0, 18, 0));
    let (batches, _) = crate::record::split_batches(&fetch_result(&r).records);
    let offsets: Vec<i64> = batches
        .iter()
        .map(|b| crate::record::BatchHeader::new(b).unwrap().base_offset())
        .collect();
    assert_eq!(&offsets[..2], &[18, 19]);
}

/// A peer message for a Raft group this node does not host (every group, on a single node)
/// is dropped and counted: no output, no panic, and the node goes on serving.
#[test]
fn a_peer_message_for_a_group_not_hosted_here_is_dropped_and_counted() {
    let mut h = Harness::new();
    h.create("t", 1);
    let topic = h.node.metadata.topics["t"].id;
    let raft = keel_raft::Message::PreVote {
        term: keel_raft::Term(3),
        last_log_index: keel_raft::Index(9),
        last_log_term: keel_raft::Term(2),
    };
    for group in [
        RaftGroup::Metadata,
        RaftGroup::Partition(PartitionId { topic, index: 0 }),
        RaftGroup::Partition(PartitionId { topic, index: 7 }),
    ] {
        h.node.handle(
            h.now,
            Input::Peer {
                from: NodeId(2),
                message: PeerMessage::Raft {
                    group,
                    message: raft.clone(),
                },
            },
        );
        assert!(
            h.outputs().is_empty(),
            "{group:?}: nothing to send or answer"
        );
    }
    assert_eq!(h.node.dropped_peer_messages(), 3);
    h.send(produce("t", 0, 1, batch(&["a"], T0 as i64)));
    h.complete_flushes();
    let (r, _) = h.call(fetch("t", 0, 0, 0));
    assert_eq!(fetch_result(&r).high_watermark, 1, "the node still serves");
}
