//! Each planted bug (feature `planted-bugs`) is caught by the randomized harness within 200
//! seeds: the harness has the power to find the bugs it exists to find.

#![cfg(feature = "planted-bugs")]

mod common;

use common::{run_seed, SimConfig};
use keel_raft::PlantedBug;

fn first_failing_seed(bug: PlantedBug) -> Option<(u64, String)> {
    (0..200).find_map(|seed| {
        let mut cfg = SimConfig::new(seed);
        cfg.bug = Some(bug);
        run_seed(cfg)
            .err()
            .filter(|e| !e.contains("liveness"))
            .map(|e| (seed, e))
    })
}

/// The bug is caught within 200 seeds, and the clean build passes every seed up to the one
/// that caught it: what the harness reports is the bug, not the harness.
fn caught(bug: PlantedBug) {
    let found = first_failing_seed(bug);
    eprintln!("{bug:?}: {found:?}");
    let Some((seed, _)) = found else {
        panic!("{bug:?} survived 200 seeds");
    };
    for s in 0..=seed {
        if let Err(e) = run_seed(SimConfig::new(s)) {
            panic!("the clean build fails seed {s}, which caught {bug:?}: {e}");
        }
    }
}

#[test]
fn planted_vote_before_flush_is_caught() {
    caught(PlantedBug::VoteBeforeFlush);
}

#[test]
fn planted_commit_older_term_by_counting_is_caught() {
    caught(PlantedBug::CommitOlderTermByCounting);
}

#[test]
fn planted_no_truncate_divergent_suffix_is_caught() {
    caught(PlantedBug::NoTruncateDivergentSuffix);
}

#[test]
fn planted_no_check_quorum_is_caught() {
    caught(PlantedBug::NoCheckQuorum);
}

#[test]
fn planted_prevote_bumps_term_is_caught() {
    caught(PlantedBug::PreVoteBumpsTerm);
}
