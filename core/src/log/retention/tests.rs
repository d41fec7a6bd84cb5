//! Retention, segment.ms rolls and the log start offset at the log level, on a fake clock
//! (`now_ms` arguments) over an in-memory disk.

use super::super::*;
use crate::record::builder::{build_batch, Record};
use crate::storage::MemStorage;

const DIR: &str = "events-0";
/// A wall-clock millisecond value for "now" at the start of each test.
const T0: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        // Small enough that every test batch below gets a segment of its own.
        segment_bytes: 100,
        index_interval_bytes: 50,
        ..LogConfig::default()
    }
}

/// One batch of two records at `ts`, 100+ bytes, so each fills a segment under `config()`.
fn batch(ts: i64) -> Bytes {
    let records: Vec<Record> = (0..2)
        .map(|i| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'v'; 20]),
            headers: vec![],
            timestamp_ms: ts,
        })
        .collect();
    build_batch(&records)
}

fn mem() -> (MemStorage, Arc<dyn Storage>) {
    let disk = MemStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(disk.clone());
    (disk, shared)
}

fn open(disk: &Arc<dyn Storage>, config: LogConfig) -> PartitionLog {
    PartitionLog::open(Arc::clone(disk), DIR, config)
        .expect("open")
        .0
}

/// A log with one two-record batch per segment at `T0 + i * 1000` for each `i` in
/// `0..batches`, all durable: segments start at offsets 0, 2, 4, ...
fn log_with(disk: &Arc<dyn Storage>, config: LogConfig, batches: i64) -> PartitionLog {
    let mut log = open(disk, config);
    for i in 0..batches {
        log.append(&batch(T0 + i * 1_000), T0 + i * 1_000, 0)
            .expect("append");
    }
    let end = log.log_end_offset();
    log.mark_flushed(end);
    assert_eq!(log.segment_count() as i64, batches.max(1));
    log
}

fn out_of_range(log: &PartitionLog, offset: i64) -> bool {
    matches!(
        log.read(offset, 1 << 20, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    )
}

/// The base offset of the first batch `read` returns at `offset`.
fn first_batch_at(log: &PartitionLog, offset: i64) -> i64 {
    let bytes = log.read(offset, 1, i64::MAX).expect("read");
    crate::record::BatchHeader::new(&bytes)
        .expect("a whole batch")
        .base_offset()
}

/// Kafka: a segment goes when its largest timestamp is more than retention.ms before now;
/// the log start offset becomes the first remaining segment's base.
#[test]
fn segments_older_than_retention_ms_go_and_the_log_start_follows() {
    let (disk, shared) = mem();
    let config = LogConfig {
        retention_ms: 5_000,
        ..config()
    };
    let mut log = log_with(&shared, config, 5);
    // Batch i has timestamp T0 + 1000 i. Exactly 5000 ms old is not "older than"; at
    // T0 + 6500, batches 0 and 1 are.
    let report = log.apply_retention(T0 + 5_000, 10).unwrap();
    assert_eq!(report.segments_deleted, 0, "{report:?}");
    let report = log.apply_retention(T0 + 6_500, 10).unwrap();
    assert_eq!(
        (
            report.segments_deleted,
            report.log_start_offset,
            report.rolled
        ),
        (2, 4, false)
    );
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(log.segment_base_offsets(), vec![4, 6, 8]);
    assert_eq!(log.log_end_offset(), 10);
    assert!(out_of_range(&log, 3));
    assert_eq!(first_batch_at(&log, 4), 4);
    for gone in [0, 2] {
        for ext in ["log", "index", "timeindex"] {
            let file = format!("{DIR}/{gone:020}.{ext}");
            assert_eq!(disk.contents(&file), None, "{file} removed");
        }
    }
    // The removal is a directory change: the active file is queued for a sync so the next
    // flush makes the directory durable.
    assert!(log
        .unflushed_files()
        .contains(&format!("{DIR}/{:020}.log", 8)));
    log.check();
}

/// Only segments wholly below the high watermark go, even when they are expired.
#[test]
fn retention_never_deletes_past_the_high_watermark() {
    let (_disk, shared) = mem();
    let config = LogConfig {
        retention_ms: 0,
        ..config()
    };
    let mut log = log_with(&shared, config, 4);
    // Segments [0,2) [2,4) [4,6) [6,8): with upto 5 only the first two lie wholly below.
    let report = log.apply_retention(T0 + 100_000, 5).unwrap();
    assert_eq!((report.segments_deleted, log.log_start_offset()), (2, 4));
    // The recovery point bounds `upto` too: unflushed data is never deleted.
    log.append(&batch(T0), T0, 0).unwrap();
    let report = log.apply_retention(T0 + 100_000, i64::MAX).unwrap();
    assert_eq!((report.segments_deleted, log.log_start_offset()), (2, 8));
    assert_eq!(log.log_end_offset(), 10);
}

/// Kafka: with retention.bytes, the oldest segments go while the log stays at least that
/// large without them.
#[test]
fn segments_go_by_size_while_the_log_stays_at_least_retention_bytes() {
    let (_disk, shared) = mem();
    let mut log = log_with(&shared, config(), 5);
    let seg = {
        let s = log.segments.values().next().unwrap();
        s.size
    };
    assert!(log.segments.values().all(|s| s.size == seg));
    // 5 segments; a limit of 2.5 segments keeps 3 (dropping a third would leave 2 < 2.5).
    log.set_config(LogConfig {
        retention_bytes: (seg * 5 / 2) as i64,
        ..config()
    });
    let report = log.apply_retention(T0, 10).unwrap();
    assert_eq!(
        (report.segments_deleted, report.bytes_deleted),
        (2, 2 * seg)
    );
    assert_eq!(log.log_start_offset(), 4);
    // Exactly at the limit: a segment goes only if what stays is still >= the limit.
    log.set_config(LogConfig {
        retention_bytes: (seg * 2) as i64,
        ..config()
    });
    let report = log.apply_retention(T0, 10).unwrap();
    assert_eq!(report.segments_deleted, 1);
    assert_eq!(log.segment_base_offsets(), vec![6, 8]);
    // -1: no size limit.
    log.set_config(LogConfig {
        retention_bytes: -1,
        ..config()
    });
    assert_eq!(log.apply_retention(T0, 10).unwrap().segments_deleted, 0);
}

/// Kafka never leaves a log without an active segment: when every segment expired, a new
/// empty one is rolled at the log end first, the log end never goes back, appends continue
/// there, and the empty active segment is never itself deleted.
#[test]
fn when_every_segment_expired_an_empty_active_segment_starts_at_the_log_end() {
    let (_disk, shared) = mem();
    let config = LogConfig {
        retention_ms: 1_000,
        segment_bytes: 1 << 20,
        ..config()
    };
    let mut log = open(&shared, config);
    for i in 0..3 {
        log.append(&batch(T0 + i), T0, 0).unwrap();
    }
    log.mark_flushed(6);
    assert_eq!(
        log.segment_count(),
        1,
        "one active segment holds everything"
    );
    let report = log.apply_retention(T0 + 10_000, 6).unwrap();
    assert_eq!(
        (
            report.segments_deleted,
            report.rolled,
            report.log_start_offset
        ),
        (1, true, 6)
    );
    assert_eq!(log.segment_base_offsets(), vec![6]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (6, 6));
    assert!(out_of_range(&log, 0));
    // An empty log reads nothing at its end, and takes appends there.
    assert!(log.read(6, 1 << 20, i64::MAX).unwrap().is_empty());
    let report = log.apply_retention(T0 + 20_000, 6).unwrap();
    assert_eq!((report.segments_deleted, report.rolled), (0, false));
    assert_eq!(
        log.append(&batch(T0 + 20_000), T0, 0).unwrap().base_offset,
        6
    );
    drop(log);
    let log = open(&shared, config);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (6, 8));
}

/// The log start offset is in the checkpoint, durable before any file goes: it survives a
/// reopen, after retention and after DeleteRecords inside a segment.
#[test]
fn the_log_start_offset_survives_a_reopen() {
    let (_disk, shared) = mem();
    let config = LogConfig {
        retention_ms: 2_500,
        ..config()
    };
    let mut log = log_with(&shared, config, 5);
    log.apply_retention(T0 + 3_000, 10).unwrap();
    assert_eq!(log.log_start_offset(), 2);
    drop(log);
    let mut log = open(&shared, config);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 10));
    // DeleteRecords to offset 5, inside segment [4, 6): the segment stays, its first record
    // is no longer served, and the batch holding 5 is.
    let report = log.advance_log_start(5).unwrap();
    assert_eq!((report.segments_deleted, report.log_start_offset), (1, 5));
    drop(log);
    let log = open(&shared, config);
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(log.segment_base_offsets(), vec![4, 6, 8]);
    assert!(out_of_range(&log, 4));
    assert_eq!(
        first_batch_at(&log, 5),
        4,
        "the batch holding offset 5 is served whole"
    );
    let mut timestamps = Vec::new();
    log.producer_batches_from(log.log_start_offset(), |b| timestamps.push(b.base_offset))
        .unwrap();
    assert!(
        timestamps.is_empty(),
        "the test batches carry no producer id"
    );
}

/// A removal that did not survive a crash (the directory was not synced) brings segments
/// back below the durable log start: reopening hides them and the next pass removes them.
#[test]
fn segments_a_crash_brings_back_below_the_log_start_are_hidden_and_removed_again() {
    let (disk, shared) = mem();
    let config = LogConfig {
        retention_ms: 1_500,
        ..config()
    };
    let mut log = log_with(&shared, config, 4);
    let names: Vec<String> = shared.list(DIR).unwrap();
    let saved: Vec<(String, Vec<u8>)> = names
        .iter()
        .filter(|n| n.starts_with(&format!("{:020}", 0)) || n.starts_with(&format!("{:020}", 2)))
        .map(|n| {
            let file = format!("{DIR}/{n}");
            (file.clone(), disk.contents(&file).unwrap())
        })
        .collect();
    assert_eq!(saved.len(), 6);
    log.apply_retention(T0 + 3_000, 8).unwrap();
    assert_eq!(log.log_start_offset(), 4);
    drop(log);
    for (file, data) in saved {
        disk.set_contents(&file, data);
    }
    let mut log = open(&shared, config);
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4, 6]);
    assert_eq!(log.log_start_offset(), 4);
    assert!(out_of_range(&log, 0) && out_of_range(&log, 3));
    // Not expired by time any more at this `now`, but wholly below the log start.
    let report = log.apply_retention(T0, 8).unwrap();
    assert_eq!((report.segments_deleted, report.log_start_offset), (2, 4));
    assert_eq!(log.segment_base_offsets(), vec![4, 6]);
}

/// DeleteRecords semantics at the log level: at most the recovery point (the node checks
/// the high watermark), never backwards, segments wholly below go, the active one stays.
#[test]
fn advance_log_start_moves_forward_only_and_up_to_the_durable_end() {
    let (_disk, shared) = mem();
    let mut log = log_with(&shared, config(), 3);
    log.append(&batch(T0), T0, 0).unwrap(); // offsets 6..8, not durable
    assert!(matches!(
        log.advance_log_start(7),
        Err(LogError::OffsetOutOfRange { requested: 7, .. })
    ));
    assert!(matches!(
        log.advance_log_start(-1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.log_start_offset(), 0);
    let report = log.advance_log_start(3).unwrap();
    assert_eq!((report.segments_deleted, report.log_start_offset), (1, 3));
    // Lower than the current start: nothing moves back.
    let report = log.advance_log_start(1).unwrap();
    assert_eq!((report.segments_deleted, log.log_start_offset()), (0, 3));
    log.mark_flushed(8);
    // Up to the log end: every sealed segment goes; the active one holds no offset below
    // the start but stays (an empty-looking log still has its active segment).
    let report = log.advance_log_start(8).unwrap();
    assert_eq!((report.segments_deleted, log.log_start_offset()), (2, 8));
    assert_eq!(log.segment_base_offsets(), vec![6]);
    assert!(out_of_range(&log, 7));
    assert!(log.read(8, 100, i64::MAX).unwrap().is_empty());
    assert_eq!(log.append(&batch(T0), T0, 0).unwrap().base_offset, 8);
    log.check();
}

/// Kafka's segment.ms: the active segment rolls before a batch whose timestamp is more than
/// segment.ms after the segment's first batch's, also after a reopen (first timestamp read
/// back from the file).
#[test]
fn segment_ms_rolls_the_active_segment_by_batch_timestamps() {
    let (_disk, shared) = mem();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        segment_ms: 10_000,
        ..config()
    };
    let mut log = open(&shared, config);
    log.append(&batch(T0), T0, 0).unwrap();
    log.append(&batch(T0 + 10_000), T0, 0).unwrap();
    assert_eq!(
        log.segment_count(),
        1,
        "exactly segment.ms later does not roll"
    );
    log.append(&batch(T0 + 10_001), T0, 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    log.mark_flushed(6);
    drop(log);
    let mut log = open(&shared, config);
    log.append(&batch(T0 + 20_001), T0, 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    log.append(&batch(T0 + 20_002), T0, 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4, 8]);
    // A truncation can make a segment active that was loaded from its indexes, without
    // its first timestamp: it is read back from the file.
    log.mark_flushed(10);
    drop(log);
    let mut log = open(&shared, config);
    log.truncate_to(6).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    log.append(&batch(T0 + 20_002), T0, 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4, 6]);
}

/// With LogAppendTime the broker's clock is the batch timestamp, so segment.ms and
/// retention.ms both follow `now`.
#[test]
fn log_append_time_rolls_and_expires_by_the_broker_clock() {
    let (_disk, shared) = mem();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        segment_ms: 1_000,
        retention_ms: 5_000,
        message_timestamp_type: TimestampType::LogAppendTime,
        ..config()
    };
    let mut log = open(&shared, config);
    // The producer's timestamps are far in the past; the broker's clock decides.
    log.append(&batch(5), T0, 0).unwrap();
    log.append(&batch(5), T0 + 1_000, 0).unwrap();
    log.append(&batch(5), T0 + 1_001, 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    log.mark_flushed(6);
    assert_eq!(
        log.apply_retention(T0 + 6_000, 6).unwrap().segments_deleted,
        0
    );
    assert_eq!(
        log.apply_retention(T0 + 6_001, 6).unwrap().segments_deleted,
        1
    );
    assert_eq!(log.log_start_offset(), 4);
}

/// cleanup.policy=compact: retention.ms/bytes do not apply, the log start offset does.
#[test]
fn compacted_logs_keep_old_segments_but_honour_the_log_start() {
    let (_disk, shared) = mem();
    let config = LogConfig {
        compacted: true,
        gaps_allowed: true,
        cleanup_delete: false,
        retention_ms: 0,
        retention_bytes: 0,
        ..config()
    };
    let mut log = log_with(&shared, config, 4);
    assert_eq!(
        log.apply_retention(T0 + (1 << 40), 8)
            .unwrap()
            .segments_deleted,
        0
    );
    assert_eq!(log.advance_log_start(4).unwrap().segments_deleted, 2);
    assert_eq!(log.segment_base_offsets(), vec![4, 6]);
}

/// A log that failed a write takes no retention or DeleteRecords either.
#[test]
fn a_failed_log_refuses_retention_and_delete_records() {
    let (_disk, shared) = mem();
    let mut log = log_with(&shared, config(), 2);
    log.stop("test".into());
    assert!(matches!(
        log.apply_retention(T0, 4),
        Err(LogError::Failed { .. })
    ));
    assert!(matches!(
        log.advance_log_start(2),
        Err(LogError::Failed { .. })
    ));
}

/// Records without timestamps (-1): Kafka ages such a segment by its file's modification
/// time. Keel ages it by the broker time of its last append, and a segment loaded at open
/// from the first retention pass after the open, never earlier.
#[test]
fn segments_without_timestamps_age_by_their_last_append() {
    let (_disk, shared) = mem();
    let config = LogConfig {
        retention_ms: 5_000,
        ..config()
    };
    let mut log = open(&shared, config);
    for i in 0..3 {
        log.append(&batch(-1), T0 + i * 1_000, 0).expect("append");
    }
    let end = log.log_end_offset();
    log.mark_flushed(end);
    assert_eq!(log.segment_count(), 3);
    // Appended at T0, T0 + 1000, T0 + 2000.
    assert_eq!(
        log.apply_retention(T0 + 5_000, end)
            .unwrap()
            .segments_deleted,
        0
    );
    let report = log.apply_retention(T0 + 6_500, end).unwrap();
    assert_eq!((report.segments_deleted, report.log_start_offset), (2, 4));

    // Reopened, the remaining segment has no known append time: it counts from the first
    // pass, so nothing goes before retention.ms after that.
    drop(log);
    let mut log = open(&shared, config);
    let later = T0 + 60_000;
    assert_eq!(log.apply_retention(later, end).unwrap().segments_deleted, 0);
    assert_eq!(
        log.apply_retention(later + 5_000, end)
            .unwrap()
            .segments_deleted,
        0
    );
    let report = log.apply_retention(later + 5_001, end).unwrap();
    assert_eq!((report.segments_deleted, report.rolled), (1, true));
}

/// segment.ms with records without timestamps: measured on the broker's clock from when
/// the active segment took its first batch (Kafka's `now - created`).
#[test]
fn segment_ms_without_timestamps_uses_the_broker_clock() {
    let (_disk, shared) = mem();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        segment_ms: 1_000,
        ..config()
    };
    let mut log = open(&shared, config);
    log.append(&batch(-1), T0, 0).expect("append");
    log.append(&batch(-1), T0 + 1_000, 0).expect("append");
    assert_eq!(log.segment_count(), 1, "exactly segment.ms later: no roll");
    log.append(&batch(-1), T0 + 1_001, 0).expect("append");
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    // The new segment is measured from its own first batch.
    log.append(&batch(-1), T0 + 2_000, 0).expect("append");
    assert_eq!(log.segment_count(), 2);
    log.append(&batch(-1), T0 + 2_002, 0).expect("append");
    assert_eq!(log.segment_base_offsets(), vec![0, 4, 8]);
}
