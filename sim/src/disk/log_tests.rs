//! End to end: keel-core's `PartitionLog` on a [`SimDisk`] survives every crash mode, and
//! its recovery catches what the disk's silent faults do to segment data.

use super::*;
use keel_core::log::{LogConfig, PartitionLog};
use keel_core::record::builder::{build_batch, Record};
use keel_core::record::{verify_batch, LEADER_EPOCH_AT};
use proptest::prelude::*;

const DIR: &str = "orders-0";
const EPOCH: i32 = 3;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 150,
        ..LogConfig::default()
    }
}

fn batch(records: usize, value_len: usize, tag: u8) -> Bytes {
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            key: Some(vec![tag, i as u8]),
            value: Some(vec![tag.wrapping_add(i as u8); value_len]),
            headers: vec![],
            timestamp_ms: 1_000 + i as i64,
        })
        .collect();
    build_batch(&records)
}

/// What the log must store for `batch` appended at `base` (CreateTime).
fn stored(batch: &Bytes, base: i64) -> Vec<u8> {
    let mut b = batch.to_vec();
    b[..8].copy_from_slice(&base.to_be_bytes());
    b[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&EPOCH.to_be_bytes());
    b
}

/// Opens the log, crashing and retrying while the disk fails it (as a restarting node
/// would); after a few tries the disk is healed so the test always gets a log.
fn open_log(disk: &SimDisk, loss: CrashLoss) -> PartitionLog {
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    for attempt in 0.. {
        if attempt == 5 {
            disk.set_faults(DiskFaults::default());
        }
        match PartitionLog::open(Arc::clone(&storage), DIR, config()) {
            Ok((log, _)) => return log,
            Err(_) => {
                disk.crash(loss);
            }
        }
    }
    unreachable!()
}

/// Every batch the log serves, by base offset, each checked to be a whole valid batch.
fn served(log: &PartitionLog) -> BTreeMap<i64, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1, i64::MAX).expect("read");
        let header = verify_batch(&bytes).expect("the log serves only valid batches");
        assert_eq!(header.base_offset(), offset, "contiguous offsets");
        offset = header.last_offset() + 1;
        out.insert(header.base_offset(), bytes.to_vec());
    }
    out
}

/// The driver's flush: fsync every unflushed file, then report durability. `false` if an
/// fsync failed: the node must treat that as fatal and restart.
fn flush(disk: &SimDisk, log: &mut PartitionLog) -> bool {
    let upto = log.log_end_offset();
    for file in log.unflushed_files() {
        if disk.sync(&file).is_err() {
            return false;
        }
    }
    log.mark_flushed(upto);
    true
}

const LOSSES: [CrashLoss; 4] = [
    CrashLoss::LoseAll,
    CrashLoss::KeepAll,
    CrashLoss::TearAnywhere,
    CrashLoss::Mixed,
];

/// What a run went through, so tests can show they were not vacuous.
#[derive(Debug, Default)]
struct Outcome {
    /// Reopens whose log ended below where it ended before the crash.
    lost_tails: u64,
    /// Batches that were reported durable, summed over the checks after each reopen.
    durable_checked: u64,
    /// Flushes an fsync failure cut short.
    failed_flushes: u64,
}

/// Appends `steps` in rounds separated by crashes; after each reopen, every batch that was
/// reported durable is still served at its offset, byte for byte.
fn run(
    seed: u64,
    loss: CrashLoss,
    fsync_errors: bool,
    rounds: &[Vec<(usize, usize, bool)>],
) -> Outcome {
    let disk = SimDisk::new(seed, DiskFaults::default());
    let mut outcome = Outcome::default();
    // Batches known to be in the log (some durable, some not) by base offset.
    let mut expected: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
    let mut durable_upto = 0i64;
    let mut end_before_crash = 0i64;
    let mut tag = 0u8;
    for steps in rounds {
        let mut log = open_log(&disk, loss);
        let found = served(&log);
        assert!(
            log.log_end_offset() >= durable_upto,
            "{loss:?}: log ends at {} but {durable_upto} was reported durable",
            log.log_end_offset()
        );
        for (base, bytes) in expected.range(..durable_upto) {
            assert_eq!(
                found.get(base),
                Some(bytes),
                "{loss:?}: durable batch at {base} lost or changed"
            );
            outcome.durable_checked += 1;
        }
        outcome.lost_tails += u64::from(log.log_end_offset() < end_before_crash);
        // Whatever survived beyond the durable point is what the log now holds.
        expected = found;
        disk.set_faults(DiskFaults {
            fsync_error_probability: if fsync_errors { 0.15 } else { 0.0 },
            ..DiskFaults::default()
        });
        for &(records, value_len, sync) in steps {
            tag = tag.wrapping_add(1);
            let b = batch(records, value_len, tag);
            let info = log.append(&b, 0, EPOCH).expect("append");
            expected.insert(info.base_offset, stored(&b, info.base_offset));
            if sync {
                let upto = log.log_end_offset();
                if !flush(&disk, &mut log) {
                    outcome.failed_flushes += 1;
                    break;
                }
                durable_upto = durable_upto.max(upto);
            }
        }
        end_before_crash = log.log_end_offset();
        disk.set_faults(DiskFaults::default());
        drop(log);
        disk.crash(loss);
        disk.check();
    }
    outcome
}

fn step() -> impl Strategy<Value = (usize, usize, bool)> {
    (1usize..5, 0usize..120, prop::bool::weighted(0.3))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn synced_batches_survive_every_crash_mode(
        seed in any::<u64>(),
        rounds in prop::collection::vec(prop::collection::vec(step(), 0..30), 1..5),
    ) {
        for loss in LOSSES {
            run(seed, loss, false, &rounds);
        }
    }

    #[test]
    fn synced_batches_survive_failed_fsyncs_when_the_failure_is_fatal(
        seed in any::<u64>(),
        rounds in prop::collection::vec(prop::collection::vec(step(), 0..30), 1..5),
    ) {
        for loss in LOSSES {
            run(seed, loss, true, &rounds);
        }
    }
}

#[test]
fn the_log_survives_each_crash_mode_over_many_seeds() {
    let rounds: Vec<Vec<(usize, usize, bool)>> = (0..4)
        .map(|r| {
            (0..25)
                .map(|i| (1 + (i + r) % 4, (i * 37 + r * 11) % 110, i % 4 == 1))
                .collect()
        })
        .collect();
    for loss in LOSSES {
        let mut total = Outcome::default();
        for seed in 0..40 {
            let fsync_errors = seed % 2 == 1;
            let o = run(seed, loss, fsync_errors, &rounds);
            if loss == CrashLoss::KeepAll && !fsync_errors {
                assert_eq!(o.lost_tails, 0, "KeepAll loses nothing");
            }
            total.lost_tails += o.lost_tails;
            total.durable_checked += o.durable_checked;
            total.failed_flushes += o.failed_flushes;
        }
        assert!(total.durable_checked > 1000, "{loss:?}: {total:?}");
        assert!(total.failed_flushes > 10, "{loss:?}: {total:?}");
        if loss != CrashLoss::KeepAll {
            assert!(total.lost_tails > 10, "{loss:?}: {total:?}");
        }
    }
}

/// Appends `n` batches and flushes them; returns the log and what it stored.
fn durable_log(disk: &SimDisk, n: u8) -> (PartitionLog, BTreeMap<i64, Vec<u8>>) {
    let mut log = open_log(disk, CrashLoss::LoseAll);
    let mut stored_batches = BTreeMap::new();
    for tag in 0..n {
        let b = batch(2, 40, tag);
        let info = log.append(&b, 0, EPOCH).unwrap();
        stored_batches.insert(info.base_offset, stored(&b, info.base_offset));
    }
    assert!(flush(disk, &mut log));
    (log, stored_batches)
}

#[test]
fn recovery_catches_every_misdirected_append() {
    for seed in 0..60 {
        let disk = SimDisk::new(seed, DiskFaults::default());
        let (mut log, before) = durable_log(&disk, 6);
        disk.set_faults(DiskFaults {
            misdirected_write_probability: 1.0,
            ..DiskFaults::default()
        });
        let b = batch(1, 30, 99);
        let info = log.append(&b, 0, EPOCH).unwrap();
        let events = disk.take_events();
        // The segment append is misdirected (and so is the index entry, if one is due).
        assert!(
            matches!(&events[0], DiskEvent::Misdirected { file, .. } if file.ends_with(".log")),
            "{events:?}"
        );
        assert!(events
            .iter()
            .all(|e| matches!(e, DiskEvent::Misdirected { .. })));
        disk.set_faults(DiskFaults::default());
        flush(&disk, &mut log);
        drop(log);
        disk.crash(CrashLoss::KeepAll);
        let storage: Arc<dyn Storage> = Arc::new(disk.clone());
        let (log, report) = PartitionLog::open(storage, DIR, config()).unwrap();
        assert!(
            report.reason.is_some(),
            "seed {seed}: recovery noticed nothing"
        );
        let after = served(&log);
        assert!(
            after.get(&info.base_offset) != Some(&stored(&b, info.base_offset)),
            "the misdirected batch cannot be where it was meant to be"
        );
        // Whatever is still served is exactly what was written, as a prefix of the log.
        for (base, bytes) in &after {
            assert_eq!(before.get(base), Some(bytes));
        }
    }
}

#[test]
fn recovery_catches_bit_flips_at_rest_in_the_segments_it_scans() {
    for seed in 0..60 {
        let disk = SimDisk::new(seed, DiskFaults::default());
        let (log, before) = durable_log(&disk, 8);
        // Recovery scans the segment holding the recovery point (the active one, here);
        // older segments are trusted after an index and tail check (see the log's docs).
        let active = log.unflushed_files();
        assert!(active.is_empty());
        let active = format!(
            "{DIR}/{:020}.log",
            log.segment_base_offsets().last().unwrap()
        );
        drop(log);
        let original = disk.durable_contents(&active).unwrap();
        let event = disk.flip_bit_at_rest(|f| f == active).unwrap();
        let DiskEvent::BitFlip { pos, .. } = event else {
            panic!("{event:?}");
        };
        disk.crash(CrashLoss::LoseAll);
        let storage: Arc<dyn Storage> = Arc::new(disk.clone());
        let (log, report) = PartitionLog::open(storage, DIR, config()).unwrap();
        // partitionLeaderEpoch lies outside the CRC (a known limit of Kafka's format).
        let mut at = 0usize;
        let mut in_epoch = false;
        while at < original.len() {
            let len =
                12 + i32::from_be_bytes(original[at + 8..at + 12].try_into().unwrap()) as usize;
            let epoch = at + LEADER_EPOCH_AT..at + LEADER_EPOCH_AT + 4;
            in_epoch |= epoch.contains(&(pos as usize));
            at += len;
        }
        if in_epoch {
            continue;
        }
        assert!(
            report.reason.is_some(),
            "seed {seed}: {event} went unnoticed"
        );
        for (base, bytes) in served(&log) {
            assert_eq!(
                before.get(&base),
                Some(&bytes),
                "only intact batches are served"
            );
        }
    }
}

/// Found by this disk: `truncate_to` removed the later segments, but nothing made the
/// removal durable, so when the refilled log ended exactly at the old next segment's base, a
/// power cut resurrected the truncated suffix and recovery accepted it (contiguous offsets,
/// valid CRCs): a Raft follower's divergent entries would return. Removals now dirty their
/// directory, which the next sync of a file in it fsyncs (FsStorage and SimDisk alike).
#[test]
fn a_truncated_suffix_stays_gone_after_a_crash() {
    let disk = SimDisk::new(1, DiskFaults::default());
    let mut log = open_log(&disk, CrashLoss::LoseAll);
    for tag in 0..12u8 {
        log.append(&batch(1, 100, tag), 0, 1).unwrap();
    }
    assert!(flush(&disk, &mut log));
    let second = log.segment_base_offsets()[1];
    log.truncate_to(second - 2).unwrap();
    for tag in 100..102u8 {
        log.append(&batch(1, 100, tag), 0, 2).unwrap();
    }
    assert_eq!(
        log.log_end_offset(),
        second,
        "refilled up to the old segment boundary"
    );
    assert!(flush(&disk, &mut log));
    drop(log);
    disk.crash(CrashLoss::LoseAll);
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let (log, _) = PartitionLog::open(storage, DIR, config()).unwrap();
    assert_eq!(
        log.log_end_offset(),
        second,
        "batches the log truncated are served again: {:?}",
        served(&log).keys().collect::<Vec<_>>()
    );
}
