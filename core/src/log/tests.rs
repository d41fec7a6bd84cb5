//! Tests of the partition log: offsets, reads, timestamp lookups, truncation, durability
//! bookkeeping, and recovery from torn, corrupt and lost bytes (unit cases and a proptest).

use super::*;
use crate::record::builder::{build_batch, Record};
use crate::record::{split_batches, verify_batch, HEADER_LEN, LEADER_EPOCH_AT};
use crate::storage::MemStorage;
use crate::testing::{Failure, Fault, FaultyStorage, Op};

const DIR: &str = "orders-0";

fn config(segment_bytes: u64, index_interval_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes,
        ..LogConfig::default()
    }
}

/// A batch of `timestamps.len()` records, each with a `value_len`-byte value.
fn batch(timestamps: &[i64], value_len: usize) -> Bytes {
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(i, &ts)| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![(ts as u8).wrapping_add(i as u8); value_len]),
            headers: vec![],
            timestamp_ms: ts,
        })
        .collect();
    build_batch(&records)
}

/// What the log must store for `batch` appended at `base` in `epoch` (CreateTime).
fn stored(batch: &Bytes, base: i64, epoch: i32) -> Vec<u8> {
    let mut b = batch.to_vec();
    b[..8].copy_from_slice(&base.to_be_bytes());
    b[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
    b
}

fn open(disk: &Arc<dyn Storage>, config: LogConfig) -> (PartitionLog, RecoveryReport) {
    PartitionLog::open(Arc::clone(disk), DIR, config).expect("open")
}

fn mem() -> (MemStorage, Arc<dyn Storage>) {
    let disk = MemStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(disk.clone());
    (disk, shared)
}

/// One appended batch as the test remembers it.
#[derive(Debug, Clone)]
struct Appended {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
    /// (offset, timestamp) of each record.
    records: Vec<(i64, i64)>,
}

fn append_all(log: &mut PartitionLog, batches: &[(Vec<i64>, usize)], epoch: i32) -> Vec<Appended> {
    let mut out = Vec::new();
    for (timestamps, value_len) in batches {
        let b = batch(timestamps, *value_len);
        let expected_base = log.log_end_offset();
        let info = log.append(&b, 1_000, epoch).expect("append");
        assert_eq!(
            info.base_offset, expected_base,
            "offsets are assigned from the log end"
        );
        assert_eq!(
            info.last_offset,
            expected_base + timestamps.len() as i64 - 1
        );
        assert_eq!(info.log_append_time_ms, -1);
        assert_eq!(info.max_timestamp, *timestamps.iter().max().unwrap());
        log.check();
        out.push(Appended {
            base: info.base_offset,
            last: info.last_offset,
            bytes: stored(&b, info.base_offset, epoch),
            records: timestamps
                .iter()
                .enumerate()
                .map(|(i, &ts)| (info.base_offset + i as i64, ts))
                .collect(),
        });
    }
    out
}

/// Batches with 1..=5 records of assorted sizes and non-monotonic timestamps.
fn assorted(n: usize) -> Vec<(Vec<i64>, usize)> {
    (0..n)
        .map(|i| {
            let count = 1 + i % 5;
            let ts = (0..count)
                .map(|j| 1_000 + ((i * 37 + j * 11) % 97) as i64 * 10)
                .collect();
            (ts, 5 + (i * 13) % 60)
        })
        .collect()
}

/// Reads every batch of the log through `read`, one at a time.
fn read_all(log: &PartitionLog) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1, i64::MAX).expect("read");
        let (batches, covered) = split_batches(&bytes);
        assert_eq!(
            (batches.len(), covered),
            (1, bytes.len()),
            "max_bytes 1 still gives exactly one whole batch"
        );
        let header = verify_batch(&batches[0]).expect("a read returns valid batches");
        assert!(header.base_offset() <= offset && offset <= header.last_offset());
        offset = header.last_offset() + 1;
        out.push(bytes.to_vec());
    }
    out
}

/// The oracle for offset_for_timestamp: first record at or after lso, below upto, with ts >= target.
fn oracle(appended: &[Appended], lso: i64, ts: i64, upto: i64) -> Option<(i64, i64)> {
    appended
        .iter()
        .flat_map(|a| a.records.iter().copied())
        .find(|&(o, t)| o >= lso && o < upto && t >= ts)
}

#[test]
fn append_assigns_consecutive_offsets_across_segment_rolls() {
    let (disk, shared) = mem();
    let (mut log, report) = open(&shared, config(400, 100));
    assert_eq!(
        report,
        RecoveryReport {
            truncated_bytes: 0,
            reason: None,
            segments: 1,
            log_end_offset: 0,
            out_of_space: None,
        }
    );
    let appended = append_all(&mut log, &assorted(60), 3);
    let mut next = 0;
    for a in &appended {
        assert_eq!(a.base, next, "no gap and no overlap between batches");
        next = a.last + 1;
    }
    assert_eq!(log.log_end_offset(), next);
    assert!(log.segment_count() > 5, "tiny segment_bytes rolls often");
    // Every segment starts at a batch boundary and its files exist; only the active one may
    // exceed segment_bytes... and only when a single batch is larger.
    let bases: BTreeSet<i64> = appended.iter().map(|a| a.base).collect();
    for base in log.segment_base_offsets() {
        assert!(bases.contains(&base));
        let len = disk
            .contents(&segment::log_file_name(DIR, base))
            .unwrap()
            .len();
        assert!(
            len <= 400
                || appended
                    .iter()
                    .any(|a| a.base == base && a.bytes.len() == len)
        );
        assert!(disk
            .contents(&segment::index_file_name(DIR, base))
            .is_some());
        assert!(disk
            .contents(&segment::time_index_file_name(DIR, base))
            .is_some());
    }
    assert_eq!(
        read_all(&log),
        appended.iter().map(|a| a.bytes.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn read_returns_the_whole_batch_containing_any_offset() {
    let (_disk, shared) = mem();
    let (mut log, _) = open(&shared, config(700, 150));
    let appended = append_all(&mut log, &assorted(40), 1);
    for a in &appended {
        for offset in a.base..=a.last {
            let bytes = log.read(offset, 1, i64::MAX).unwrap();
            assert_eq!(
                &bytes[..],
                &a.bytes[..],
                "offset {offset} is served from the batch holding it"
            );
        }
    }
}

#[test]
fn read_respects_max_bytes_but_always_returns_one_batch_and_stays_in_one_segment() {
    let (_disk, shared) = mem();
    let (mut log, _) = open(&shared, config(1_000, 100));
    let appended = append_all(&mut log, &assorted(40), 1);
    let segments = log.segment_base_offsets();
    for (i, a) in appended.iter().enumerate() {
        for max_bytes in [0, 1, a.bytes.len(), a.bytes.len() + 1, 250, 600, 5_000] {
            let bytes = log.read(a.base, max_bytes, i64::MAX).unwrap();
            // KIP-74: the first batch even if larger, then whole batches that fit, not past
            // the end of the segment.
            let seg_end = segments
                .iter()
                .find(|&&b| b > a.base)
                .copied()
                .unwrap_or(i64::MAX);
            let mut expect = a.bytes.clone();
            for b in &appended[i + 1..] {
                if b.base >= seg_end || expect.len() + b.bytes.len() > max_bytes {
                    break;
                }
                expect.extend_from_slice(&b.bytes);
            }
            assert_eq!(
                bytes.to_vec(),
                expect,
                "offset {} max_bytes {max_bytes}",
                a.base
            );
        }
    }
}

#[test]
fn read_never_returns_a_batch_at_or_beyond_upto() {
    let (_disk, shared) = mem();
    let (mut log, _) = open(&shared, config(1 << 20, 100));
    let appended = append_all(&mut log, &assorted(20), 1);
    let end = log.log_end_offset();
    for upto in 0..=end {
        for a in &appended {
            let bytes = log.read(a.base, usize::MAX, upto).unwrap();
            if a.base >= upto {
                assert!(bytes.is_empty(), "offset {} upto {upto}", a.base);
                continue;
            }
            let (batches, _) = split_batches(&bytes);
            assert!(!batches.is_empty());
            for b in batches {
                assert!(
                    verify_batch(&b).unwrap().base_offset() < upto,
                    "a batch starting at or past upto"
                );
            }
        }
    }
    assert!(
        log.read(end, 100, end).unwrap().is_empty(),
        "offset == upto gives nothing"
    );
}

#[test]
fn reads_outside_the_log_are_offset_out_of_range() {
    let (_disk, shared) = mem();
    let (mut log, _) = open(&shared, config(1 << 20, 100));
    append_all(&mut log, &assorted(5), 1);
    let end = log.log_end_offset();
    assert!(matches!(
        log.read(end + 1, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { requested, log_start: 0, log_end }) if requested == end + 1 && log_end == end
    ));
    assert!(matches!(
        log.read(-1, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(
        log.read(end, 100, i64::MAX).unwrap().is_empty(),
        "reading at the log end waits for data"
    );

    // A log start offset inside the log (from the checkpoint) makes older offsets out of range.
    shared
        .replace(
            &join(DIR, CHECKPOINT_FILE),
            &encode_checkpoint(Checkpoint {
                recovery_point: 5,
                log_start_offset: 5,
            }),
        )
        .unwrap();
    drop(log);
    let (log, _) = open(&shared, config(1 << 20, 100));
    assert_eq!(log.log_start_offset(), 5);
    assert!(matches!(
        log.read(4, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { log_start: 5, .. })
    ));
    let bytes = log.read(5, 1, i64::MAX).unwrap();
    let h = verify_batch(&bytes).unwrap();
    assert!(h.base_offset() <= 5 && 5 <= h.last_offset());
}

#[test]
fn offset_for_timestamp_is_exact_across_records_and_segments() {
    let (_disk, shared) = mem();
    let (mut log, _) = open(&shared, config(600, 120));
    let appended = append_all(&mut log, &assorted(50), 1);
    assert!(log.segment_count() > 3);
    let end = log.log_end_offset();
    for upto in [end, end / 2, 7, 0] {
        for ts in (900..2_000).step_by(7) {
            assert_eq!(
                log.offset_for_timestamp(ts, upto).unwrap(),
                oracle(&appended, 0, ts, upto),
                "ts {ts} upto {upto}"
            );
        }
    }
}

#[test]
fn max_timestamp_offset_finds_the_first_record_with_the_largest_timestamp() {
    let (_disk, shared) = mem();
    let (mut log, _) = open(&shared, config(600, 120));
    assert_eq!(log.max_timestamp_offset(i64::MAX).unwrap(), None);
    let appended = append_all(&mut log, &assorted(50), 1);
    // KIP-734 against an oracle, for every batch-boundary high watermark.
    for upto in appended.iter().map(|a| a.last + 1).chain([0]) {
        let records: Vec<(i64, i64)> = appended
            .iter()
            .flat_map(|a| a.records.iter().copied())
            .filter(|&(o, _)| o < upto)
            .collect();
        let expect = records
            .iter()
            .map(|r| r.1)
            .max()
            .and_then(|m| records.iter().copied().find(|r| r.1 == m));
        assert_eq!(
            log.max_timestamp_offset(upto).unwrap(),
            expect,
            "upto {upto}"
        );
    }
}

/// Rewrites an uncompressed batch as a gzip one, as a producer would have sent it.
fn gzip_batch(plain: &Bytes) -> Bytes {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain[record::HEADER_LEN..]).unwrap();
    let payload = gz.finish().unwrap();
    let mut b = plain[..record::HEADER_LEN].to_vec();
    b.extend_from_slice(&payload);
    let batch_len = (b.len() - record::LOG_OVERHEAD) as i32;
    b[record::BATCH_LENGTH_AT..record::BATCH_LENGTH_AT + 4]
        .copy_from_slice(&batch_len.to_be_bytes());
    b[ATTRIBUTES_AT + 1] |= 1;
    let crc = record::batch_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

#[test]
fn offset_for_timestamp_is_exact_inside_a_compressed_batch() {
    let (_disk, shared) = mem();
    let (mut log, _) = open(&shared, LogConfig::default());
    append_all(&mut log, &[(vec![10, 20], 5)], 1);
    // Offsets 2, 3, 4 carry timestamps 30, 50, 40 inside one gzip batch: Kafka answers the
    // exact record, not the batch's base offset.
    log.append(&gzip_batch(&batch(&[30, 50, 40], 5)), 0, 1)
        .unwrap();
    assert_eq!(
        log.offset_for_timestamp(45, i64::MAX).unwrap(),
        Some((3, 50))
    );
    assert_eq!(
        log.offset_for_timestamp(30, i64::MAX).unwrap(),
        Some((2, 30))
    );
    assert_eq!(
        log.offset_for_timestamp(15, i64::MAX).unwrap(),
        Some((1, 20))
    );
    assert_eq!(log.offset_for_timestamp(51, i64::MAX).unwrap(), None);
    assert_eq!(log.max_timestamp_offset(i64::MAX).unwrap(), Some((3, 50)));
}

#[test]
fn a_compressed_batch_that_does_not_inflate_answers_its_base_offset() {
    let (_disk, shared) = mem();
    let (mut log, _) = open(&shared, LogConfig::default());
    append_all(&mut log, &[(vec![10, 20], 5)], 1);
    // Marked gzip but not gzip: the CRC is valid, so it was stored as sent; the lookup falls
    // back to batch granularity instead of failing.
    let mut b = batch(&[30, 50, 40], 5).to_vec();
    b[ATTRIBUTES_AT + 1] |= 1;
    let crc = record::batch_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    log.append(&Bytes::from(b), 0, 1).unwrap();
    assert_eq!(
        log.offset_for_timestamp(45, i64::MAX).unwrap(),
        Some((2, 50))
    );
}

#[test]
fn log_append_time_rewrites_attributes_and_max_timestamp_with_a_valid_crc() {
    let (_disk, shared) = mem();
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let (mut log, _) = open(&shared, config);
    let b = batch(&[10, 30, 20], 8);
    let info = log.append(&b, 777_000, 4).unwrap();
    assert_eq!(
        info,
        AppendInfo {
            base_offset: 0,
            last_offset: 2,
            log_append_time_ms: 777_000,
            max_timestamp: 777_000,
            rolled: false,
        }
    );
    let stored = log.read(0, 1, i64::MAX).unwrap();
    let h =
        verify_batch(&stored).expect("CRC-32C recomputed over the new attributes and maxTimestamp");
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp(), 777_000);
    assert_eq!(h.leader_epoch(), 4);
    assert_eq!(
        h.base_timestamp(),
        10,
        "only attributes and maxTimestamp change (Kafka setMaxTimestamp)"
    );
    assert_eq!(&stored[HEADER_LEN..], &b[HEADER_LEN..], "records untouched");
    // Every record of a LogAppendTime batch has the append time.
    assert_eq!(
        log.offset_for_timestamp(5, i64::MAX).unwrap(),
        Some((0, 777_000))
    );
    assert_eq!(log.offset_for_timestamp(777_001, i64::MAX).unwrap(), None);
}

#[test]
fn create_time_append_writes_a_rewritten_prefix_and_the_callers_bytes_uncopied() {
    let probe = FaultyStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(probe.clone());
    let (mut log, _) = open(&shared, LogConfig::default());
    probe.clear_calls();
    let b = batch(&[1, 2], 10);
    log.append(&b, 0, 9).unwrap();
    let appends = probe.calls().appends;
    let (file, shape) = &appends[0];
    assert_eq!(file, &segment::log_file_name(DIR, 0));
    assert_eq!(shape.len(), 2, "one vectored append: prefix + rest");
    assert_eq!(shape[0].1, 17);
    assert_eq!(
        shape[1],
        (b.as_ptr() as usize + 17, b.len() - 17),
        "the rest is the caller's buffer itself"
    );
}

#[test]
fn a_write_error_fails_the_log_but_reads_continue_and_reopen_recovers() {
    let probe = FaultyStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(probe.clone());
    let (mut log, _) = open(&shared, config(1 << 20, 100));
    let appended = append_all(&mut log, &assorted(10), 1);
    probe.inject(Fault::every(Op::Append, Failure::Torn));
    assert!(matches!(
        log.append(&batch(&[1], 10), 0, 1),
        Err(LogError::Storage(_))
    ));
    probe.heal();
    // fsyncgate: the disk works again, but the log may hold a torn write: no more writes.
    assert!(matches!(
        log.append(&batch(&[1], 10), 0, 1),
        Err(LogError::Failed { .. })
    ));
    assert!(matches!(log.truncate_to(0), Err(LogError::Failed { .. })));
    assert!(log.failure().is_some());
    assert_eq!(
        read_all(&log),
        appended.iter().map(|a| a.bytes.clone()).collect::<Vec<_>>()
    );
    log.check();
    drop(log);

    let (mut log, report) = open(&shared, config(1 << 20, 100));
    assert_eq!(
        report.truncated_bytes, 0,
        "the failed append cut its half-batch back itself, so a refused batch never returns"
    );
    assert_eq!(log.log_end_offset(), appended.last().unwrap().last + 1);
    let more = append_all(&mut log, &assorted(2), 2);
    assert_eq!(more[0].base, appended.last().unwrap().last + 1);
}

#[test]
fn reopen_after_clean_close_gives_the_same_log() {
    for flushed in [false, true] {
        let (_disk, shared) = mem();
        let cfg = config(500, 90);
        let (mut log, _) = open(&shared, cfg);
        let appended = append_all(&mut log, &assorted(45), 2);
        if flushed {
            log.mark_flushed(log.log_end_offset());
        }
        let before = read_all(&log);
        let lookups: Vec<_> = (900..2_000)
            .step_by(13)
            .map(|ts| log.offset_for_timestamp(ts, i64::MAX).unwrap())
            .collect();
        let (end, segments) = (log.log_end_offset(), log.segment_base_offsets());
        drop(log);

        let (log, report) = open(&shared, cfg);
        assert_eq!(
            report,
            RecoveryReport {
                truncated_bytes: 0,
                reason: None,
                segments: segments.len(),
                log_end_offset: end,
                out_of_space: None,
            }
        );
        assert_eq!(log.segment_base_offsets(), segments);
        assert_eq!(read_all(&log), before);
        let after: Vec<_> = (900..2_000)
            .step_by(13)
            .map(|ts| log.offset_for_timestamp(ts, i64::MAX).unwrap())
            .collect();
        assert_eq!(after, lookups);
        assert_eq!(
            lookups,
            (900..2_000)
                .step_by(13)
                .map(|ts| oracle(&appended, 0, ts, i64::MAX))
                .collect::<Vec<_>>()
        );
        assert_eq!(log.recovery_point(), if flushed { end } else { 0 });
        assert_eq!(
            log.unflushed_files().is_empty(),
            flushed,
            "nothing to flush after a clean flushed close"
        );
    }
}

#[test]
fn the_checkpoint_spares_reopen_from_rescanning_flushed_segments() {
    let (disk, shared) = mem();
    let cfg = config(2_000, 200);
    let (mut log, _) = open(&shared, cfg);
    append_all(&mut log, &assorted(300), 1);
    assert!(log.segment_count() > 10);
    log.mark_flushed(log.log_end_offset());
    let total: u64 = log.segments.values().map(|s| s.size).sum();
    drop(log);
    let probe = FaultyStorage::over(disk.clone());
    let shared: Arc<dyn Storage> = Arc::new(probe.clone());
    let (log, report) = open(&shared, cfg);
    assert_eq!(report.truncated_bytes, 0);
    let read = probe.calls().bytes_read;
    // Indexes plus one index interval (+ a batch, + read-ahead) per trusted segment and the
    // last segment: far below the whole log.
    assert!(read < total / 4, "reopen read {read} of {total} bytes");
    log.check();
}

/// The fetch path reads the bytes it serves once: the walk over batch headers and the
/// answer share one read, which covers at most an index interval and a header beyond them.
#[test]
fn a_read_takes_one_storage_read_of_little_more_than_it_serves() {
    let probe = FaultyStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(probe.clone());
    let interval = 4096;
    let (mut log, _) = open(&shared, config(8 << 20, interval));
    let appended = append_all(&mut log, &assorted(2_000), 1);
    let end = log.log_end_offset();
    for (offset, max_bytes) in [
        (0, 1 << 20),
        (appended[700].base + 1, 64 << 10),
        (end - 1, 1),
    ] {
        probe.clear_calls();
        let served = log.read(offset, max_bytes, end).unwrap();
        assert!(!served.is_empty());
        assert_eq!(probe.calls().reads, 1, "read at {offset}");
        let read = probe.calls().bytes_read;
        assert!(
            read <= max_bytes.max(served.len()) as u64 + interval + HEADER_LEN as u64,
            "read {read} bytes to serve {} at {offset}",
            served.len()
        );
    }
    // What is served is still exactly the stored batches.
    let whole = log.read(0, 1 << 20, end).unwrap();
    let (batches, _) = split_batches(&whole);
    for (b, a) in batches.iter().zip(&appended) {
        assert_eq!(&b[..], &a.bytes[..]);
    }
}

#[test]
fn unflushed_files_name_what_was_written_and_mark_flushed_forgets_them() {
    let (disk, shared) = mem();
    let (mut log, _) = open(&shared, config(300, 50));
    assert!(log.unflushed_files().is_empty());
    append_all(&mut log, &assorted(1), 1);
    assert_eq!(log.segment_count(), 1);
    let files = log.unflushed_files();
    assert!(files.contains(&segment::log_file_name(DIR, 0)));
    let mid = log.log_end_offset();
    append_all(&mut log, &assorted(10), 1);
    assert!(log.segment_count() > 2);
    let checkpoint =
        || decode_checkpoint(&disk.contents(&join(DIR, CHECKPOINT_FILE)).unwrap()).unwrap();
    // A flush inside the first segment: durable in memory, checkpoint not written (no
    // segment boundary passed; a new log has none until then), later segments' files
    // still unflushed.
    log.mark_flushed(mid);
    assert_eq!(log.recovery_point(), mid);
    assert!(disk.contents(&join(DIR, CHECKPOINT_FILE)).is_none());
    let active = log.active().log_file.clone();
    assert!(log.unflushed_files().contains(&active));
    log.mark_flushed(log.log_end_offset() + 100);
    assert_eq!(
        log.recovery_point(),
        log.log_end_offset(),
        "a flush never vouches past the log end"
    );
    assert_eq!(checkpoint().recovery_point, log.log_end_offset());
    assert!(log.unflushed_files().is_empty());
    log.check();
}

#[test]
fn truncate_to_cuts_whole_batches_and_appends_continue_from_the_cut() {
    let (disk, shared) = mem();
    let cfg = config(400, 60);
    let (mut log, _) = open(&shared, cfg);
    let appended = append_all(&mut log, &assorted(40), 1);
    log.mark_flushed(log.log_end_offset());
    let target = &appended[25];
    // Inside a multi-record batch: the whole batch goes (Kafka truncates to batch boundaries).
    let inside = if target.last > target.base {
        target.base + 1
    } else {
        target.base
    };
    log.truncate_to(inside).unwrap();
    log.check();
    assert_eq!(log.log_end_offset(), target.base);
    assert_eq!(
        log.recovery_point(),
        target.base,
        "the recovery point follows the cut"
    );
    assert_eq!(
        read_all(&log),
        appended[..25]
            .iter()
            .map(|a| a.bytes.clone())
            .collect::<Vec<_>>()
    );
    for base in appended[26..].iter().map(|a| a.base) {
        if !log.segment_base_offsets().contains(&base) {
            assert!(
                disk.contents(&segment::log_file_name(DIR, base)).is_none(),
                "later segments are deleted"
            );
        }
    }
    let lookups = |log: &PartitionLog| {
        (900..2_000)
            .step_by(9)
            .map(|ts| log.offset_for_timestamp(ts, i64::MAX).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lookups(&log),
        (900..2_000)
            .step_by(9)
            .map(|ts| oracle(&appended[..25], 0, ts, i64::MAX))
            .collect::<Vec<_>>()
    );
    let more = append_all(&mut log, &assorted(5), 2);
    assert_eq!(more[0].base, target.base);
    let mut all = appended[..25].to_vec();
    all.extend(more);
    let expect: Vec<_> = all.iter().map(|a| a.bytes.clone()).collect();
    assert_eq!(read_all(&log), expect);
    drop(log);
    let (mut log, report) = open(&shared, cfg);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(read_all(&log), expect);
    // Truncating to a segment's exact base keeps it as an empty active segment.
    let base = *log.segment_base_offsets().last().unwrap();
    log.truncate_to(base).unwrap();
    assert_eq!(log.log_end_offset(), base);
    // Truncating to the end or beyond is a no-op; below the start restarts the log.
    log.truncate_to(base + 100).unwrap();
    assert_eq!(log.log_end_offset(), base);
    log.truncate_to(0).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (0, 0, 1)
    );
    log.check();
    assert!(matches!(
        log.truncate_to(-1),
        Err(LogError::InvalidOffset(-1))
    ));
}

#[test]
fn truncate_below_the_log_start_restarts_the_log_there() {
    let (disk, shared) = mem();
    shared
        .replace(
            &join(DIR, CHECKPOINT_FILE),
            &encode_checkpoint(Checkpoint {
                recovery_point: 50,
                log_start_offset: 50,
            }),
        )
        .unwrap();
    let (mut log, _) = open(&shared, LogConfig::default());
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (50, 50),
        "an empty log starts at the checkpointed start"
    );
    append_all(&mut log, &assorted(3), 1);
    log.truncate_to(20).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_base_offsets()
        ),
        (20, 20, vec![20])
    );
    assert!(disk.contents(&segment::log_file_name(DIR, 50)).is_none());
    let more = append_all(&mut log, &assorted(1), 1);
    assert_eq!(more[0].base, 20);
}

#[test]
fn delete_removes_every_file_of_the_log() {
    let (disk, shared) = mem();
    let (mut log, _) = open(&shared, config(300, 50));
    append_all(&mut log, &assorted(10), 1);
    log.mark_flushed(log.log_end_offset());
    shared
        .append("other-0/00000000000000000000.log", &[b"x"])
        .unwrap();
    log.delete().unwrap();
    assert!(disk.list(DIR).unwrap().is_empty());
    assert_eq!(disk.list("").unwrap(), vec!["other-0"]);
}

#[test]
fn leftovers_of_ours_are_removed_and_foreign_files_kept() {
    let (disk, shared) = mem();
    let (mut log, _) = open(&shared, LogConfig::default());
    append_all(&mut log, &assorted(3), 1);
    drop(log);
    shared
        .append(&join(DIR, "log-checkpoint.tmp"), &[b"half"])
        .unwrap();
    shared
        .append(&join(DIR, "00000000000000000099.index"), &[b"orphan"])
        .unwrap();
    shared
        .append(&join(DIR, "leader-epoch-checkpoint"), &[b"not ours"])
        .unwrap();
    let (log, report) = open(&shared, LogConfig::default());
    assert_eq!(report.truncated_bytes, 0);
    let names = disk.list(DIR).unwrap();
    assert!(!names
        .iter()
        .any(|n| n.ends_with(".tmp") || n.starts_with("00000000000000000099")));
    assert!(names.contains(&"leader-epoch-checkpoint".to_string()));
    assert_eq!(log.log_end_offset(), 6);
}

// ---- recovery ----

/// A log of `n` batches in a few segments; returns the disk and what was appended.
fn build_log(
    n: usize,
    cfg: LogConfig,
    flush: bool,
) -> (MemStorage, Arc<dyn Storage>, Vec<Appended>) {
    build_log_of(&assorted(n), cfg, flush)
}

fn build_log_of(
    batches: &[(Vec<i64>, usize)],
    cfg: LogConfig,
    flush: bool,
) -> (MemStorage, Arc<dyn Storage>, Vec<Appended>) {
    let (disk, shared) = mem();
    let (mut log, _) = open(&shared, cfg);
    let appended = append_all(&mut log, batches, 1);
    if flush {
        log.mark_flushed(log.log_end_offset());
    }
    (disk, shared, appended)
}

fn bytes_of(appended: &[Appended]) -> Vec<Vec<u8>> {
    appended.iter().map(|a| a.bytes.clone()).collect()
}

#[test]
fn a_tail_torn_at_any_byte_is_cut_back_to_the_previous_batch() {
    let cfg = config(1 << 20, 100);
    let (disk, shared, appended) = build_log(6, cfg, false);
    let file = segment::log_file_name(DIR, 0);
    let full = disk.contents(&file).unwrap();
    let last = appended.last().unwrap();
    let start = full.len() - last.bytes.len();
    for cut in start..full.len() {
        disk.set_contents(&file, full[..cut].to_vec());
        let (mut log, report) = open(&shared, cfg);
        assert_eq!(log.log_end_offset(), last.base, "cut at byte {cut}");
        assert_eq!(report.truncated_bytes, (cut - start) as u64);
        assert_eq!(report.reason.is_some(), cut > start);
        assert_eq!(
            disk.contents(&file).unwrap().len(),
            start,
            "the torn bytes are gone from disk"
        );
        assert_eq!(read_all(&log), bytes_of(&appended[..appended.len() - 1]));
        // The log continues where the torn batch began.
        let again = log.append(&batch(&[5], 3), 0, 1).unwrap();
        assert_eq!(again.base_offset, last.base);
        disk.set_contents(&file, full.clone());
        for f in [
            segment::index_file_name(DIR, 0),
            segment::time_index_file_name(DIR, 0),
        ] {
            disk.set_contents(&f, vec![]);
        }
    }
}

#[test]
fn a_flipped_bit_cuts_its_batch_and_everything_after() {
    let cfg = config(600, 100);
    let (disk, shared, appended) = build_log(30, cfg, false);
    let (log, _) = open(&shared, cfg);
    let bases = log.segment_base_offsets();
    drop(log);
    assert!(bases.len() > 3);
    // A bit in the middle of a batch of a middle segment, past the (absent) recovery point.
    let victim_segment = bases[bases.len() / 2];
    let victim = appended
        .iter()
        .position(|a| a.base > victim_segment)
        .unwrap();
    let file = segment::log_file_name(DIR, victim_segment);
    let mut data = disk.contents(&file).unwrap();
    let pos = appended
        .iter()
        .filter(|a| a.base >= victim_segment && a.base < appended[victim].base)
        .map(|a| a.bytes.len())
        .sum::<usize>();
    data[pos + 40] ^= 0x10;
    disk.set_contents(&file, data);
    let (log, report) = open(&shared, cfg);
    assert_eq!(log.log_end_offset(), appended[victim].base);
    assert!(
        report.reason.as_deref().unwrap().contains("CRC"),
        "{report:?}"
    );
    assert_eq!(
        log.segment_base_offsets(),
        bases
            .iter()
            .copied()
            .filter(|&b| b <= victim_segment)
            .collect::<Vec<_>>()
    );
    for &b in bases.iter().filter(|&&b| b > victim_segment) {
        assert!(disk.contents(&segment::log_file_name(DIR, b)).is_none());
        assert!(disk.contents(&segment::index_file_name(DIR, b)).is_none());
    }
    assert_eq!(read_all(&log), bytes_of(&appended[..victim]));
}

#[test]
fn garbage_after_the_last_batch_is_cut() {
    let cfg = config(1 << 20, 100);
    for garbage in [
        vec![0u8; 3],
        vec![0u8; 200],
        vec![0xff; 100],
        b"not a record batch at all, just text".repeat(3),
    ] {
        let (disk, shared, appended) = build_log(5, cfg, true);
        let file = segment::log_file_name(DIR, 0);
        let mut data = disk.contents(&file).unwrap();
        data.extend_from_slice(&garbage);
        disk.set_contents(&file, data);
        let (log, report) = open(&shared, cfg);
        assert_eq!(report.truncated_bytes, garbage.len() as u64);
        assert_eq!(read_all(&log), bytes_of(&appended));
        assert_eq!(log.log_end_offset(), appended.last().unwrap().last + 1);
    }
}

#[test]
fn a_valid_batch_at_the_wrong_offset_is_cut() {
    let cfg = config(1 << 20, 100);
    let (disk, shared, appended) = build_log(5, cfg, false);
    let file = segment::log_file_name(DIR, 0);
    let mut data = disk.contents(&file).unwrap();
    // A replayed (stale) copy of the first batch: CRC-valid, but offsets go backwards.
    data.extend_from_slice(&appended[0].bytes);
    disk.set_contents(&file, data);
    let (log, report) = open(&shared, cfg);
    assert!(report.reason.unwrap().contains("base offset 0"));
    assert_eq!(read_all(&log), bytes_of(&appended));
}

#[test]
fn missing_or_garbage_indexes_are_rebuilt_and_reads_stay_correct() {
    let cfg = config(2_000, 64);
    // With the checkpoint past every segment but the last, the old segments are "trusted"
    // and go through the index sanity check; without it everything is rebuilt by scanning.
    for flush in [true, false] {
        // Rising timestamps, so every index point also adds a time index entry.
        let rising: Vec<(Vec<i64>, usize)> = assorted(100)
            .into_iter()
            .enumerate()
            .map(|(i, (ts, len))| (ts.iter().map(|t| t + i as i64 * 1_000).collect(), len))
            .collect();
        let (disk, shared, appended) = build_log_of(&rising, cfg, flush);
        let (log, _) = open(&shared, cfg);
        let bases = log.segment_base_offsets();
        drop(log);
        assert!(bases.len() >= 5);
        let originals: Vec<_> = bases
            .iter()
            .map(|&b| {
                (
                    disk.contents(&segment::index_file_name(DIR, b)).unwrap(),
                    disk.contents(&segment::time_index_file_name(DIR, b))
                        .unwrap(),
                )
            })
            .collect();
        assert!(
            originals
                .iter()
                .all(|(i, t)| !i.is_empty() && !t.is_empty()),
            "the test needs real index entries"
        );
        shared
            .remove(&segment::index_file_name(DIR, bases[0]))
            .unwrap();
        shared
            .remove(&segment::time_index_file_name(DIR, bases[1]))
            .unwrap();
        disk.set_contents(
            &segment::index_file_name(DIR, bases[2]),
            b"garbage!garbage!".to_vec(),
        );
        disk.set_contents(
            &segment::time_index_file_name(DIR, bases[3]),
            vec![0xff; 13],
        );
        // Non-monotonic: the first entry repeated at the end.
        let mut swapped = originals[4].0.clone();
        swapped.extend_from_slice(&originals[4].0[..8]);
        disk.set_contents(&segment::index_file_name(DIR, bases[4]), swapped);
        let (log, report) = open(&shared, cfg);
        assert_eq!(
            report.truncated_bytes, 0,
            "derived data is rebuilt, never a reason to cut"
        );
        assert_eq!(read_all(&log), bytes_of(&appended));
        for a in &appended {
            assert_eq!(&log.read(a.last, 1, i64::MAX).unwrap()[..], &a.bytes[..]);
        }
        for ts in (900..102_000).step_by(97) {
            assert_eq!(
                log.offset_for_timestamp(ts, i64::MAX).unwrap(),
                oracle(&appended, 0, ts, i64::MAX)
            );
        }
        for (i, &b) in bases.iter().enumerate() {
            let index = disk.contents(&segment::index_file_name(DIR, b)).unwrap();
            let time_index = disk
                .contents(&segment::time_index_file_name(DIR, b))
                .unwrap();
            assert_eq!(
                (index, time_index),
                originals[i].clone(),
                "a rebuilt index is byte-identical"
            );
        }
    }
}

#[test]
fn a_trusted_segment_that_does_not_reach_the_next_one_cuts_the_log() {
    let cfg = config(800, 64);
    let (disk, shared, appended) = build_log(60, cfg, true);
    let (log, _) = open(&shared, cfg);
    let bases = log.segment_base_offsets();
    drop(log);
    // Lose the last batch of the second segment (below the recovery point): the trusted
    // segment's tail check sees it end short of the third segment's base offset.
    let file = segment::log_file_name(DIR, bases[1]);
    let data = disk.contents(&file).unwrap();
    let last = appended.iter().rfind(|a| a.base < bases[2]).unwrap();
    let new_len = data.len() - last.bytes.len();
    disk.set_contents(&file, data[..new_len].to_vec());
    // Keep its indexes sane for the shorter file, so only the tail check can notice.
    let index_file = segment::index_file_name(DIR, bases[1]);
    let mut index =
        OffsetIndex::parse(&disk.contents(&index_file).unwrap(), u64::MAX, u64::MAX).unwrap();
    index.truncate_at_pos(new_len as u64);
    disk.set_contents(&index_file, index.encode());
    let time_file = segment::time_index_file_name(DIR, bases[1]);
    let mut time_index = TimeIndex::parse(&disk.contents(&time_file).unwrap(), u64::MAX).unwrap();
    time_index.truncate_at_rel((last.base - bases[1]) as u64);
    disk.set_contents(&time_file, time_index.encode());
    let (log, report) = open(&shared, cfg);
    assert_eq!(log.log_end_offset(), last.base);
    assert!(report.reason.is_some());
    assert_eq!(
        read_all(&log),
        bytes_of(
            &appended
                .iter()
                .filter(|a| a.base < last.base)
                .cloned()
                .collect::<Vec<_>>()
        )
    );
    assert!(log.recovery_point() <= log.log_end_offset());
}

// ---- proptest: crash anywhere after the last flush ----

mod crash {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Append a batch: record timestamps and value size.
        Append(Vec<i64>, usize),
        /// The driver flushed everything and reported it.
        Flush,
        /// Truncate to this fraction of the log end (replication cutting a divergent suffix).
        Truncate(f64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (prop::collection::vec(0i64..10_000, 1..6), 0usize..300).prop_map(|(ts, len)| Op::Append(ts, len)),
            1 => Just(Op::Flush),
            1 => (0.0f64..1.0).prop_map(Op::Truncate),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Crash consistency: after a crash that tears the active segment anywhere at or
        /// after the flushed point (and maybe flips a bit past it), reopen keeps every
        /// flushed batch at its offset, keeps a prefix of what was appended, serves only
        /// valid batches, and appends continue at the log end.
        #[test]
        fn reopen_after_a_crash_keeps_every_flushed_batch(
            ops in prop::collection::vec(op(), 1..80),
            segment_bytes in 200u64..3_000,
            index_interval_bytes in 0u64..600,
            // Half the crashes keep every written byte, so that bit flips land in whole batches.
            cut_fraction in prop_oneof![Just(1.0f64), 0.0f64..=1.0],
            flip in prop::option::of((0.0f64..1.0, 0u8..8)),
            index_cut in prop::option::of((0.0f64..1.0, 0.0f64..1.0)),
        ) {
            let cfg = config(segment_bytes, index_interval_bytes);
            let (disk, shared) = mem();
            let (mut log, _) = open(&shared, cfg);
            let mut appended: Vec<Appended> = Vec::new();
            let mut flushed_offset = 0;
            for op in &ops {
                match op {
                    Op::Append(ts, len) => appended.extend(append_all(&mut log, &[(ts.clone(), *len)], 7)),
                    Op::Flush => {
                        flushed_offset = log.log_end_offset();
                        log.mark_flushed(flushed_offset);
                    }
                    Op::Truncate(fraction) => {
                        let to = (log.log_end_offset() as f64 * fraction) as i64;
                        log.truncate_to(to).unwrap();
                        let end = log.log_end_offset();
                        prop_assert!(end <= to);
                        appended.retain(|a| a.base < end);
                        prop_assert!(appended.last().map_or(end == 0, |a| a.last + 1 == end));
                        flushed_offset = flushed_offset.min(end);
                        prop_assert_eq!(log.recovery_point(), flushed_offset);
                    }
                }
                log.check();
            }
            // The crash: the active segment keeps at least its flushed bytes.
            let active = log.active().clone();
            drop(log);
            let file = active.log_file.clone();
            let data = disk.contents(&file).unwrap();
            let flushed_len: usize = appended
                .iter()
                .filter(|a| a.base >= active.base_offset && a.last < flushed_offset)
                .map(|a| a.bytes.len())
                .sum();
            let keep = flushed_len + ((data.len() - flushed_len) as f64 * cut_fraction) as usize;
            let mut torn = data[..keep.min(data.len())].to_vec();
            if let Some((at, bit)) = flip {
                if torn.len() > flushed_len {
                    let mut pos = flushed_len + ((torn.len() - flushed_len) as f64 * at) as usize;
                    // partitionLeaderEpoch is outside the CRC in Kafka's format (module doc):
                    // move a flip that lands there onto the magic byte instead.
                    let mut batch_start = 0;
                    for a in appended.iter().filter(|a| a.base >= active.base_offset) {
                        if pos < batch_start + a.bytes.len() {
                            break;
                        }
                        batch_start += a.bytes.len();
                    }
                    if (batch_start + LEADER_EPOCH_AT..batch_start + LEADER_EPOCH_AT + 4).contains(&pos) {
                        pos = batch_start + MAGIC_AT;
                    }
                    if pos < torn.len() {
                        torn[pos] ^= 1 << bit;
                    }
                }
            }
            disk.set_contents(&file, torn);
            if let Some((index_fraction, time_fraction)) = index_cut {
                // The active segment's indexes were not flushed either: torn mid-entry.
                for (f, fraction) in [(&active.index_file, index_fraction), (&active.time_index_file, time_fraction)] {
                    let bytes = disk.contents(f).unwrap();
                    disk.set_contents(f, bytes[..(bytes.len() as f64 * fraction) as usize].to_vec());
                }
            }

            let (mut log, report) = open(&shared, cfg);
            log.check();
            let end = log.log_end_offset();
            prop_assert!(end >= flushed_offset, "flushed data lost: end {} < flushed {}", end, flushed_offset);
            prop_assert_eq!(report.log_end_offset, end);
            // A prefix of what was appended, in whole batches, identical bytes.
            let kept: Vec<Appended> = appended.iter().filter(|a| a.base < end).cloned().collect();
            prop_assert!(kept.last().map_or(end == 0, |a| a.last + 1 == end), "log end inside a batch");
            prop_assert_eq!(read_all(&log), bytes_of(&kept));
            for ts in [0, 2_500, 5_000, 9_999, 10_000] {
                prop_assert_eq!(log.offset_for_timestamp(ts, i64::MAX).unwrap(), oracle(&kept, 0, ts, i64::MAX));
            }
            // And the log takes writes again at its end.
            let more = append_all(&mut log, &[(vec![1, 2], 10)], 8);
            prop_assert_eq!(more[0].base, end);
            log.mark_flushed(log.log_end_offset());
            drop(log);
            let (log, report) = open(&shared, cfg);
            prop_assert_eq!(report.truncated_bytes, 0);
            prop_assert_eq!(log.log_end_offset(), end + 2);
        }
    }
}

#[test]
fn a_batch_that_rots_at_rest_is_never_served() {
    let (disk, shared) = mem();
    let (mut log, _) = open(&shared, LogConfig::default());
    append_all(&mut log, &[(vec![10], 5), (vec![20], 5), (vec![30], 5)], 1);
    let whole = read_all(&log).concat();
    let file = format!("{DIR}/{:020}.log", 0);
    // Flip a bit inside the second batch's records, after the log verified it at append.
    let mut bytes = disk.contents(&file).unwrap();
    let second_at = whole.len() / 3;
    bytes[second_at + record::HEADER_LEN + 2] ^= 0x10;
    disk.set_contents(&file, bytes);
    // From the start: only the first batch, the good prefix.
    let served = log.read(0, 1 << 20, i64::MAX).unwrap();
    assert_eq!(verify_batch(&served).unwrap().base_offset(), 0);
    // At the rotten batch: an error, not the bytes.
    assert!(matches!(
        log.read(1, 1 << 20, i64::MAX),
        Err(LogError::Corrupt { .. })
    ));
    // Past it: served.
    assert_eq!(
        verify_batch(&log.read(2, 1 << 20, i64::MAX).unwrap())
            .unwrap()
            .base_offset(),
        2
    );
}

#[test]
fn a_flush_syncs_only_segment_data_until_the_segment_rolls() {
    let (_disk, shared) = mem();
    let (mut log, _) = open(&shared, config(4096, 64));
    log.mark_flushed(log.log_end_offset());
    append_all(&mut log, &[(vec![1], 50), (vec![2], 50), (vec![3], 50)], 1);
    // Index entries were written (interval 64 bytes), but only the data needs an fsync per
    // produce: recovery rebuilds the active segment's indexes.
    assert_eq!(log.unflushed_files(), vec![format!("{DIR}/{:020}.log", 0)]);
    log.mark_flushed(log.log_end_offset());
    let before_roll = log.log_end_offset();
    while log.segment_count() == 1 {
        append_all(&mut log, &[(vec![4], 500)], 1);
    }
    let files = log.unflushed_files();
    for sealed in [".index", ".timeindex"] {
        assert!(
            files.contains(&format!("{DIR}/{:020}{sealed}", 0)),
            "{files:?}"
        );
    }
    assert!(before_roll < log.log_end_offset());
}

#[test]
fn a_rotted_header_further_on_does_not_hide_the_good_batches_before_it() {
    // Found by keel-sim (scenarios/bit-rot.toml, seed 0): a large fetch failed outright when
    // a batch header beyond the first batches had rotted, though those batches were intact.
    let (disk, shared) = mem();
    let (mut log, _) = open(&shared, LogConfig::default());
    append_all(&mut log, &[(vec![10], 5), (vec![20], 5), (vec![30], 5)], 1);
    let one = read_all(&log)[0].len();
    let file = format!("{DIR}/{:020}.log", 0);
    let mut bytes = disk.contents(&file).unwrap();
    // Rot the third batch's baseOffset: its header no longer follows on.
    bytes[2 * one + 3] ^= 0x01;
    disk.set_contents(&file, bytes);
    let served = log.read(0, 1 << 20, i64::MAX).unwrap();
    assert_eq!(served.len(), 2 * one, "both intact batches are served");
    assert!(
        log.read(2, 1 << 20, i64::MAX).is_err(),
        "the rotted one is refused"
    );
}

/// Issue 15: a checkpoint written on demand (the broker's timer and clean shutdown, like
/// Kafka's recovery-point-offset-checkpoint) records the durable point inside the active
/// segment, so a reopen after a clean stop has nothing to flush; it never records writes
/// that were not reported durable, and an unchanged log does not rewrite it.
#[test]
fn an_explicit_checkpoint_records_only_what_is_durable_and_is_written_once() {
    let probe = FaultyStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(probe.clone());
    let (mut log, _) = open(&shared, config(1 << 20, 100));
    let appended = append_all(&mut log, &assorted(20), 1);
    let durable = appended[9].last + 1;
    log.mark_flushed(durable);
    assert!(
        log.checkpoint_stale(),
        "the recovery point moved inside the one segment"
    );
    let before = probe.calls().replaces;
    assert!(log.checkpoint().unwrap());
    assert!(
        !log.checkpoint().unwrap(),
        "nothing moved: no second replace"
    );
    assert!(!log.checkpoint_stale());
    assert_eq!(probe.calls().replaces, before + 1);
    let end = log.log_end_offset();
    drop(log);

    // Reopened with writes past the durable point: they are not vouched for.
    let (log, _) = open(&shared, config(1 << 20, 100));
    assert_eq!(log.recovery_point(), durable);
    assert_eq!(log.log_end_offset(), end);
    assert!(
        !log.unflushed_files().is_empty(),
        "the tail must be flushed first"
    );
    let mut log = log;
    log.mark_flushed(end);
    log.checkpoint().unwrap();
    drop(log);

    // After a clean stop (all flushed, checkpointed): nothing to flush, nothing rewritten.
    let before = probe.calls().replaces;
    let (log, report) = open(&shared, config(1 << 20, 100));
    assert_eq!((log.recovery_point(), report.out_of_space), (end, None));
    assert!(
        log.unflushed_files().is_empty(),
        "{:?}",
        log.unflushed_files()
    );
    assert_eq!(probe.calls().replaces, before);
    assert_eq!(read_all(&log).len(), appended.len());
}

/// Issue 15 (disk-full-power-cut): recovery on a full disk finds a stale index. The rebuilt
/// index cannot be written (`replace` needs room for a scratch copy), so it is kept in
/// memory, both stale files are cut to nothing and the log opens out of space: everything
/// is read as before, and once there is room a reopen writes the indexes and takes writes.
#[test]
fn a_stale_index_on_a_full_disk_is_rebuilt_in_memory_and_the_log_opens_out_of_space() {
    let probe = FaultyStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(probe.clone());
    let cfg = config(2_000, 100);
    let (mut log, _) = open(&shared, cfg);
    let appended = append_all(&mut log, &assorted(60), 1);
    let end = log.log_end_offset();
    let segments = log.segment_base_offsets();
    assert!(segments.len() > 2, "{segments:?}");
    let before = read_all(&log);
    // Nothing was reported durable, so recovery scans every segment, the first one too.
    let index = segment::index_file_name(DIR, 0);
    let time_index = segment::time_index_file_name(DIR, 0);
    let good_index = probe.files().contents(&index).unwrap();
    let good_time_index = probe.files().contents(&time_index).unwrap();
    assert!(
        good_index.len() >= 2 * index::OFFSET_ENTRY_LEN,
        "the test needs index entries"
    );
    drop(log);
    // A power cut tore the segment's unsynced time index: its last entry is half there.
    probe.files().set_contents(
        &time_index,
        good_time_index[..good_time_index.len() - 3].to_vec(),
    );

    probe.inject(Fault::every(Op::Replace, Failure::NoSpace));
    let (log, report) = open(&shared, cfg);
    let why = report.out_of_space.clone().expect("reported out of space");
    assert!(why.contains("injected ENOSPC"), "{why}");
    assert_eq!(report.truncated_bytes, 0, "no data is cut");
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(log.recovery_point(), 0);
    assert_eq!(
        probe.files().contents(&index),
        Some(vec![]),
        "never trusted again"
    );
    assert_eq!(probe.files().contents(&time_index), Some(vec![]));
    assert_eq!(
        read_all(&log),
        before,
        "the rebuilt index serves every read"
    );
    for a in &appended {
        for &(offset, ts) in &a.records {
            let found = log.offset_for_timestamp(ts, i64::MAX).unwrap().unwrap();
            assert_eq!(
                found,
                oracle(&appended, 0, ts, i64::MAX).unwrap(),
                "{offset}"
            );
        }
    }
    log.check();
    drop(log);

    // Still full: a reopen (the broker's, at the next measurement) finds two empty indexes,
    // which are true, and still cannot write the rebuilt ones.
    let (log, report) = open(&shared, cfg);
    assert!(report.out_of_space.is_some());
    assert_eq!(read_all(&log), before);
    drop(log);

    // Space is back: the reopen writes the rebuilt indexes, as they were before the tear.
    probe.heal();
    let (mut log, report) = open(&shared, cfg);
    assert_eq!(report.out_of_space, None);
    assert_eq!(probe.files().contents(&index), Some(good_index));
    assert_eq!(probe.files().contents(&time_index), Some(good_time_index));
    assert_eq!(read_all(&log), before);
    log.append(&batch(&[5_000], 10), 0, 1)
        .expect("takes writes");
    log.check();
}

/// Issue 15: on a full disk a checkpoint that claims more than the recovered log holds
/// (bytes it vouched for are gone) cannot be corrected, so the log opens out of space: a
/// write past the cut could otherwise later be taken for durable.
#[test]
fn a_checkpoint_that_claims_too_much_and_cannot_be_corrected_opens_the_log_out_of_space() {
    let probe = FaultyStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(probe.clone());
    let cfg = config(1 << 20, 100);
    let (mut log, _) = open(&shared, cfg);
    append_all(&mut log, &assorted(10), 1);
    let end = log.log_end_offset();
    log.mark_flushed(end);
    log.checkpoint().unwrap();
    drop(log);
    // The durable tail is gone (a lying disk): cut the segment to half.
    let file = segment::log_file_name(DIR, 0);
    let data = probe.files().contents(&file).unwrap();
    probe
        .files()
        .set_contents(&file, data[..data.len() / 2].to_vec());

    probe.inject(Fault::every(Op::Replace, Failure::NoSpace));
    let (mut log, report) = open(&shared, cfg);
    assert!(report.out_of_space.is_some(), "{report:?}");
    assert!(log.log_end_offset() < end);
    assert!(
        log.checkpoint_stale(),
        "the old claim is not taken for the file's contents"
    );
    assert!(
        matches!(log.checkpoint(), Err(LogError::Storage(e)) if e.kind() == io::ErrorKind::StorageFull)
    );
    log.check();
    drop(log);

    // A checkpoint merely behind the log is true: on a full disk the log still takes writes.
    probe.heal();
    let (mut log, _) = open(&shared, cfg);
    append_all(&mut log, &assorted(3), 1);
    drop(log);
    probe.inject(Fault::every(Op::Replace, Failure::NoSpace));
    let (_, report) = open(&shared, cfg);
    assert_eq!(report.out_of_space, None);
}
