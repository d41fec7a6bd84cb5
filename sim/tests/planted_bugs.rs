//! Bug-finding power: each bug planted in keel-core (behind its `planted-bugs` feature) must
//! be caught by its scenario within [`MAX_SEEDS`] seeds, as an anomaly the bug should cause
//! and the scenario does not tolerate, while the clean build (no bug planted) passes every
//! seed up to the one that caught it. Run with
//! `cargo test -p keel-sim --features planted-bugs --test planted_bugs` (CI does).
#![cfg(feature = "planted-bugs")]

use keel_core::bugs::PlantedBug;
use keel_sim::checker::Anomaly;
use keel_sim::harness::{self, RunOptions, RunReport};
use keel_sim::report;
use keel_sim::scenario::Scenario;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Seeds tried before a bug counts as missed (the bound).
const MAX_SEEDS: u64 = 200;

fn run(scenario: &Scenario, seed: u64, bug: Option<PlantedBug>) -> RunReport {
    let options = RunOptions {
        seed,
        tweak: bug.map(|bug| {
            Arc::new(move |c: &mut keel_core::node::NodeConfig| {
                c.planted_bug = Some(bug);
            }) as harness::ConfigTweak
        }),
    };
    harness::run(scenario, &options)
}

/// Sweeps seeds `0..MAX_SEEDS` of `file` with `bug` planted until a run fails with one of
/// `expected` among the findings the scenario does not tolerate; then runs the clean build
/// on seeds `0..=` that one, which must all pass. Returns the catching seed.
fn catches(bug: PlantedBug, file: &str, expected: &[Anomaly]) -> u64 {
    let shown = format!("scenarios/{file}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut missed = Vec::new();
    for seed in 0..MAX_SEEDS {
        let planted = run(&scenario, seed, Some(bug));
        let caught: BTreeSet<Anomaly> = planted
            .unexpected
            .iter()
            .map(|f| f.anomaly)
            .filter(|a| expected.contains(a))
            .collect();
        if planted.passed || caught.is_empty() {
            missed.push((seed, planted.anomalies()));
            continue;
        }
        eprintln!(
            "{bug:?}: caught by {shown} at seed {seed} as {caught:?} (all findings: {:?})",
            planted.anomalies()
        );
        let failures: Vec<String> = (0..=seed)
            .map(|s| run(&scenario, s, None))
            .filter(|clean| !clean.passed)
            .map(|clean| report::render(&clean, &scenario, &shown))
            .collect();
        assert!(
            failures.is_empty(),
            "{bug:?} was caught at seed {seed}, but the clean build fails {shown} too:\n{}",
            failures.join("\n")
        );
        return seed;
    }
    panic!(
        "{bug:?} not caught by {shown} in {MAX_SEEDS} seeds (expected one of {expected:?} \
         untolerated); found {missed:?}"
    );
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
fn skipping_recovery_checksums_keeps_a_rotten_batch_inside_the_log() {
    catches(
        PlantedBug::SkipRecoveryChecksum,
        "rot-then-restart.toml",
        &[
            Anomaly::Unreadable,
            Anomaly::CorruptRead,
            Anomaly::Garbage,
            Anomaly::IncompleteRead,
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

#[test]
fn commit_before_flush_lets_committed_offsets_regress() {
    catches(
        PlantedBug::CommitBeforeFlush,
        "group-broker-crash.toml",
        &[Anomaly::CommitRegression],
    );
}

#[test]
fn producer_state_from_the_snapshot_alone_duplicates_a_retry() {
    catches(
        PlantedBug::ProducerStateFromSnapshotOnly,
        "idempotent-retries.toml",
        &[Anomaly::Duplicate],
    );
}

#[test]
fn incremental_fetches_that_drop_records_stall_a_consumer() {
    catches(
        PlantedBug::IncrementalFetchDropsRecords,
        "fetch-sessions.toml",
        &[Anomaly::Unseen],
    );
}

#[test]
fn a_fetch_session_stuck_at_its_first_position_stalls_a_consumer() {
    catches(
        PlantedBug::FetchSessionKeepsStalePosition,
        "fetch-sessions.toml",
        &[Anomaly::Unseen, Anomaly::PollSkip],
    );
}

/// Cluster mode keeps each partition on its broker's own log: an acks=-1 answer before the
/// fsync loses acknowledged records there too (the slow syncs of cluster-unflushed-loss keep
/// the window open; cluster-controller-crash's instant syncs all but close it).
#[test]
fn ack_before_flush_loses_acknowledged_writes_in_a_cluster() {
    catches(
        PlantedBug::AckBeforeFlush,
        "cluster-unflushed-loss.toml",
        &[Anomaly::LostWrite],
    );
}
