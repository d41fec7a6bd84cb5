//! Bug-finding power: each bug planted in keel-core (behind its `planted-bugs` feature) must
//! be caught by its scenario within a bounded number of seeds, as the anomalies the bug
//! should cause. Run with `cargo test -p keel-sim --features planted-bugs --test planted_bugs`.
#![cfg(feature = "planted-bugs")]

use keel_core::bugs::PlantedBug;
use keel_sim::checker::Anomaly;
use keel_sim::harness::{self, RunOptions};
use keel_sim::scenario::Scenario;
use std::path::Path;
use std::sync::Arc;

/// Seeds tried before a bug counts as missed.
const MAX_SEEDS: u64 = 8;

fn catches(bug: PlantedBug, file: &str, expected: &[Anomaly]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Vec::new();
    for seed in 0..MAX_SEEDS {
        let options = RunOptions {
            seed,
            tweak: Some(Arc::new(move |c| c.planted_bug = Some(bug))),
        };
        let report = harness::run(&scenario, &options);
        let found = report.anomalies();
        if !report.passed && expected.iter().any(|a| found.contains(a)) {
            eprintln!("{bug:?}: caught by {file} at seed {seed}: {found:?}");
            return;
        }
        seen.push((seed, found));
    }
    panic!("{bug:?} not caught by {file} in {MAX_SEEDS} seeds (expected one of {expected:?}); found {seen:?}");
}

#[test]
fn ack_before_flush_loses_acknowledged_writes() {
    catches(
        PlantedBug::AckBeforeFlush,
        "slow-disk.toml",
        &[Anomaly::LostWrite],
    );
}

#[test]
fn high_watermark_past_flushed_serves_what_a_crash_takes_back() {
    catches(
        PlantedBug::HighWatermarkPastFlushed,
        "slow-disk.toml",
        &[
            Anomaly::InconsistentOffsets,
            Anomaly::NonmonotonicPoll,
            Anomaly::LostWrite,
        ],
    );
}

#[test]
fn fetch_beyond_high_watermark_serves_what_a_crash_takes_back() {
    catches(
        PlantedBug::FetchBeyondHighWatermark,
        "slow-disk.toml",
        &[Anomaly::InconsistentOffsets, Anomaly::NonmonotonicPoll],
    );
}

#[test]
#[ignore = "no scenario yet leaves a corrupt tail that still looks whole: a torn write is a \
            prefix, which recovery's length check catches without CRCs; this needs misdirected \
            writes in a scenario that tolerates their single-copy losses"]
fn skipping_recovery_checksums_serves_torn_batches() {
    catches(
        PlantedBug::SkipRecoveryChecksum,
        "torn-write-recovery.toml",
        &[
            Anomaly::CorruptRead,
            Anomaly::Garbage,
            Anomaly::IncompleteRead,
            Anomaly::InconsistentOffsets,
        ],
    );
}

#[test]
fn reusing_offsets_after_truncation_is_caught() {
    catches(
        PlantedBug::ReuseOffsetAfterTruncation,
        "crash-restart-under-load.toml",
        &[
            Anomaly::LostWrite,
            Anomaly::InconsistentOffsets,
            Anomaly::NonmonotonicSend,
        ],
    );
}
