//! Node tests for running out of disk: the free-space floor (disk.rs), logs stopped by
//! ENOSPC and reopened once space is back, and topics created whole or not at all.

use super::tests::{batch, fetch, fetch_result, produce, produce_result, Harness, T0};
use super::*;
use crate::api::*;
use crate::error::ErrorCode;
use crate::node::*;
use crate::storage::MemStorage;
use crate::storage::Storage;
use crate::testing::{Failure, Fault, FaultyStorage};
use bytes::Bytes;
use std::sync::Arc;

const MIB: u64 = 1 << 20;

fn floor_config(min_free_bytes: u64) -> NodeConfig {
    NodeConfig {
        min_free_bytes: Some(min_free_bytes),
        ..NodeConfig::default()
    }
}

fn harness_with_floor(min_free_bytes: u64) -> Harness {
    let disk = MemStorage::new();
    Harness::with_storage(floor_config(min_free_bytes), Arc::new(disk.clone()), disk)
}

/// `Harness::call`, then the Flushes it asked for, as the driver would do them.
fn call_flushed(h: &mut Harness, request: Request) -> Response {
    let (r, flushes) = h.call(request);
    for (log, _, upto) in flushes {
        h.node.handle(h.now, Input::Flushed { log, upto });
    }
    h.complete_flushes();
    r
}

fn sample(h: &mut Harness, free_bytes: u64) {
    h.node.handle(
        h.now,
        Input::DiskSpace {
            free_bytes,
            total_bytes: 100 * MIB,
        },
    );
}

fn log_end(h: &Harness, topic: &str) -> i64 {
    h.node
        .partition_named(topic, 0)
        .unwrap()
        .log
        .log_end_offset()
}

fn create_topics(h: &mut Harness, name: &str) -> CreatableTopicResult {
    let (r, _) = h.call(Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: 3,
            replication_factor: -1,
            ..Default::default()
        }],
        timeout_ms: 1000,
        validate_only: false,
    }));
    let Response::CreateTopics(mut r) = r else {
        panic!()
    };
    r.topics.remove(0)
}

fn metadata(h: &mut Harness, topic: &str) -> MetadataTopic {
    let (r, _) = h.call(Request::Metadata(MetadataRequest {
        topics: Some(vec![TopicRef {
            name: Some(topic.into()),
            id: TopicId::ZERO,
        }]),
        allow_auto_topic_creation: true,
        ..Default::default()
    }));
    let Response::Metadata(mut r) = r else {
        panic!()
    };
    r.topics.remove(0)
}

#[test]
fn below_the_floor_a_produce_is_refused_before_anything_is_written() {
    let mut h = harness_with_floor(20 * MIB);
    h.create("t", 1);
    let r = call_flushed(&mut h, produce("t", 0, 1, batch(&["a"], T0 as i64)));
    assert_eq!(
        produce_result(&r).error_code,
        ErrorCode::NONE,
        "no sample yet"
    );

    sample(&mut h, 10 * MIB);
    let (r, flushes) = h.call(produce("t", 0, -1, batch(&["b"], T0 as i64)));
    let refused = produce_result(&r);
    assert_eq!(refused.error_code, disk::NO_SPACE);
    let message = refused.error_message.as_deref().unwrap();
    assert!(
        message.contains("below its free-space floor: 10.0 MiB free of 100.0 MiB, floor 20.0 MiB"),
        "{message}"
    );
    assert!(flushes.is_empty());
    assert_eq!(log_end(&h, "t"), 1, "nothing was written");

    // Reads go on.
    let (r, _) = h.call(fetch("t", 0, 0, 0));
    assert_eq!(fetch_result(&r).high_watermark, 1);
    assert!(h.node.disk_report().unwrap().low_space);
}

/// aiokafka does not resend a refused batch's sequences: once writes resume, its next batch
/// starts past them, and must not be OUT_OF_ORDER_SEQUENCE_NUMBER for the producer's life.
#[test]
fn an_idempotent_producer_may_skip_the_sequences_refused_below_the_floor() {
    let mut h = harness_with_floor(20 * MIB);
    h.create("t", 1);
    let idempotent = |seq, value: &str| {
        crate::record::builder::build_producer_batch(
            &super::tests::records(&[value], T0 as i64),
            7,
            0,
            seq,
        )
    };
    let code = |h: &mut Harness, seq, value| {
        produce_result(&call_flushed(h, produce("t", 0, 1, idempotent(seq, value)))).error_code
    };
    assert_eq!(code(&mut h, 0, "a"), ErrorCode::NONE);
    sample(&mut h, 10 * MIB);
    assert_eq!(code(&mut h, 1, "refused"), disk::NO_SPACE);
    assert_eq!(code(&mut h, 2, "refused"), disk::NO_SPACE);
    sample(&mut h, 30 * MIB);
    assert_eq!(code(&mut h, 3, "b"), ErrorCode::NONE);
    assert_eq!(
        code(&mut h, 5, "c"),
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "only the refused sequences may be skipped"
    );
    assert_eq!(log_end(&h, "t"), 2);
}

#[test]
fn writes_resume_once_a_sample_shows_the_floor_and_a_margin_free() {
    let mut h = harness_with_floor(20 * MIB);
    h.create("t", 1);
    sample(&mut h, 10 * MIB);
    sample(&mut h, 21 * MIB);
    let (r, _) = h.call(produce("t", 0, 1, batch(&["a"], T0 as i64)));
    assert_eq!(
        produce_result(&r).error_code,
        disk::NO_SPACE,
        "above the floor but within the margin"
    );
    sample(&mut h, 22 * MIB);
    let (r, _) = h.call(produce("t", 0, 1, batch(&["a"], T0 as i64)));
    assert_eq!(produce_result(&r).error_code, ErrorCode::NONE);
    assert!(!h.node.disk_report().unwrap().low_space);
}

#[test]
fn the_node_counts_its_own_appends_between_samples() {
    let value = "x".repeat(4000);
    let mut h = harness_with_floor(MIB);
    h.create("t", 1);
    sample(&mut h, MIB + 10_000);
    let mut accepted = 0;
    for _ in 0..4 {
        let (r, _) = h.call(produce("t", 0, 1, batch(&[&value], T0 as i64)));
        if produce_result(&r).error_code.is_ok() {
            accepted += 1;
        } else {
            assert_eq!(produce_result(&r).error_code, disk::NO_SPACE);
        }
    }
    // 10,000 bytes above the floor take three 4 KB batches: the third crosses it, the
    // fourth is refused without waiting for the next sample.
    assert_eq!(accepted, 3);
}

#[test]
fn offset_commits_use_a_reserve_below_the_floor() {
    let mut h = harness_with_floor(20 * MIB);
    h.create("t", 1);
    let commit = |h: &mut Harness, offset: i64| {
        let id = h.send(Request::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    committed_leader_epoch: 0,
                    committed_metadata: None,
                }],
            }],
        }));
        let released = h.complete_flushes();
        let (_, r) = released
            .into_iter()
            .find(|(rid, _)| *rid == id)
            .expect("answered");
        let Response::OffsetCommit(r) = r else {
            panic!()
        };
        r.topics[0].partitions[0].error_code
    };
    assert_eq!(commit(&mut h, 1), ErrorCode::NONE);
    sample(&mut h, 15 * MIB);
    assert_eq!(commit(&mut h, 2), ErrorCode::NONE, "within the reserve");
    sample(&mut h, 9 * MIB);
    assert_eq!(commit(&mut h, 3), disk::NO_SPACE, "below half the floor");
}

#[test]
fn topic_creation_is_refused_below_the_floor_and_auto_create_stays_quiet() {
    let mut h = harness_with_floor(20 * MIB);
    h.create("t", 1);
    sample(&mut h, 10 * MIB);
    let created = create_topics(&mut h, "new");
    assert_eq!(created.error_code, disk::NO_SPACE);
    assert!(created.error_message.unwrap().contains("free-space floor"));

    let (r, _) = h.call(Request::CreatePartitions(CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: "t".into(),
            count: 4,
            assignments: None,
        }],
        timeout_ms: 1000,
        validate_only: false,
    }));
    let Response::CreatePartitions(r) = r else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, disk::NO_SPACE);

    // Auto-creation writes only metadata and empty files: it may use the reserve, so that
    // the producer then meets Produce's refusal, which every client shows at once.
    assert_eq!(metadata(&mut h, "auto").error_code, ErrorCode::NONE);
    let (r, _) = h.call(produce("auto", 0, 1, batch(&["a"], T0 as i64)));
    assert_eq!(produce_result(&r).error_code, disk::NO_SPACE);
    sample(&mut h, 9 * MIB);
    for _ in 0..3 {
        assert_eq!(metadata(&mut h, "auto-2").error_code, disk::NO_SPACE);
    }
    sample(&mut h, 30 * MIB);
    assert_eq!(metadata(&mut h, "auto-2").error_code, ErrorCode::NONE);
    assert_eq!(create_topics(&mut h, "new").error_code, ErrorCode::NONE);
}

/// Fills a bounded disk through acks=1 produces until the log refuses; returns the offsets
/// acknowledged.
fn fill(h: &mut Harness, value: &str) -> Vec<i64> {
    let mut acked = Vec::new();
    for _ in 0..1000 {
        let r = call_flushed(h, produce("t", 0, 1, batch(&[value], T0 as i64)));
        let r = produce_result(&r);
        if !r.error_code.is_ok() {
            // The batch that met ENOSPC may be partly written: retriable. Later ones are
            // refused before writing.
            assert_eq!(
                r.error_code,
                ErrorCode::KAFKA_STORAGE_ERROR,
                "{:?}",
                r.error_message
            );
            assert!(
                r.error_message.as_deref().unwrap().contains("disk is full"),
                "{:?}",
                r.error_message
            );
            return acked;
        }
        acked.push(r.base_offset);
    }
    panic!("the disk never filled");
}

#[test]
fn a_log_stopped_by_enospc_reopens_when_space_returns_and_keeps_what_it_acknowledged() {
    let disk = FaultyStorage::new();
    let mut h = Harness::with_storage(
        floor_config(0),
        Arc::new(disk.clone()),
        disk.files().clone(),
    );
    h.create("t", 1);
    h.complete_flushes();
    disk.set_capacity(Some(disk.written_bytes() + 20_000));
    let value = "v".repeat(700);
    let acked = fill(&mut h, &value);
    assert!(acked.len() > 10);
    // Stopped, not failed: a later produce is told the same, nothing is flushed in vain.
    let r = call_flushed(&mut h, produce("t", 0, 1, batch(&["again"], T0 as i64)));
    assert_eq!(produce_result(&r).error_code, disk::NO_SPACE);
    assert!(h.node.fatal_error().is_none());

    // Another program frees space; the next measurement reopens the log.
    disk.set_capacity(None);
    sample(&mut h, 50 * MIB);
    h.complete_flushes();
    let r = call_flushed(&mut h, produce("t", 0, 1, batch(&["after"], T0 as i64)));
    let after = produce_result(&r);
    assert_eq!(
        after.error_code,
        ErrorCode::NONE,
        "{:?}",
        after.error_message
    );
    assert_eq!(
        after.base_offset,
        acked.last().unwrap() + 1,
        "the torn batch was cut and no acknowledged offset is reused"
    );
    h.complete_flushes();
    let (r, _) = h.call(fetch("t", 0, 0, 0));
    assert_eq!(fetch_result(&r).high_watermark, after.base_offset + 1);
    let (stored, _) =
        crate::record::split_batches(&Bytes::copy_from_slice(fetch_result(&r).records.as_ref()));
    let last = crate::record::BatchHeader::new(stored.last().unwrap()).unwrap();
    assert_eq!(last.base_offset(), after.base_offset);
}

#[test]
fn a_log_stopped_by_eio_stays_stopped_when_space_returns() {
    let disk = FaultyStorage::new();
    let mut h = Harness::with_storage(
        floor_config(0),
        Arc::new(disk.clone()),
        disk.files().clone(),
    );
    h.create("t", 1);
    // EIO on every write, as a broken device gives.
    disk.inject(Fault::every_write(Failure::Eio));
    let (r, _) = h.call(produce("t", 0, 1, batch(&["a"], T0 as i64)));
    assert_eq!(
        produce_result(&r).error_code,
        ErrorCode::KAFKA_STORAGE_ERROR
    );
    disk.heal();
    sample(&mut h, 50 * MIB);
    let (r, _) = h.call(produce("t", 0, 1, batch(&["b"], T0 as i64)));
    assert_eq!(
        produce_result(&r).error_code,
        ErrorCode::KAFKA_STORAGE_ERROR,
        "after EIO nothing the page cache holds can be trusted: only a restart reopens"
    );
}

#[test]
fn a_topic_whose_creation_failed_is_not_there_after_a_restart() {
    let disk = FaultyStorage::new();
    let mut h = Harness::with_storage(
        floor_config(0),
        Arc::new(disk.clone()),
        disk.files().clone(),
    );
    h.create("t", 1);
    h.complete_flushes();
    // The third partition's files cannot be created; the first two and the metadata could.
    disk.inject(Fault::every_write(Failure::NoSpace).under("half-2/"));
    let created = create_topics(&mut h, "half");
    assert_eq!(
        created.error_code,
        disk::NO_SPACE,
        "{:?}",
        created.error_message
    );
    assert!(!h.node.metadata.topics.contains_key("half"));
    assert!(!h.node.partitions.values().any(|p| p.topic == "half"));
    // The same once the metadata is what cannot be written.
    disk.heal();
    disk.inject(Fault::every_write(Failure::NoSpace).under(crate::metadata::METADATA_FILE));
    let created = create_topics(&mut h, "half");
    assert_eq!(
        created.error_code,
        disk::NO_SPACE,
        "{:?}",
        created.error_message
    );
    assert!(!h.node.partitions.values().any(|p| p.topic == "half"));
    disk.heal();
    drop(h);
    let h = Harness::with_storage(
        NodeConfig {
            auto_create_topics: false,
            ..floor_config(0)
        },
        Arc::new(disk.clone()),
        disk.files().clone(),
    );
    assert!(!h.node.metadata.topics.contains_key("half"));
    let left: Vec<String> = disk
        .list("")
        .unwrap()
        .into_iter()
        .filter(|d| d.starts_with("half-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
