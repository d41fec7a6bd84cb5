//! The raft-* scenarios over the CI seed range, their regression seeds, determinism, and
//! planted raft bugs caught (with `--features planted-bugs`).

use keel_sim::raft::{self, RaftScenario};
use std::path::PathBuf;

/// Raft runs overlap freely here (libtest runs these tests on several threads): a seed's
/// history must not depend on what else the process runs, and
/// `a_seed_replays_while_another_thread_spawns_tasks` pins the leak that once broke that.
fn run(s: &RaftScenario, seed: u64, tweak: Option<raft::RaftTweak>) -> raft::RaftReport {
    raft::run(s, seed, tweak)
}

/// Seeds per scenario in CI: a few minutes at most on two cores for all of them.
const CI_SEEDS: u64 = 8;

fn scenario(name: &str) -> RaftScenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    RaftScenario::load(&path).expect("scenario loads")
}

fn sweep(name: &str) {
    let s = scenario(name);
    let seeds: Vec<u64> = (0..CI_SEEDS)
        .chain(s.raft.regression_seeds.iter().copied())
        .collect();
    let mut failed = Vec::new();
    for seed in seeds {
        let r = run(&s, seed, None);
        if !r.passed {
            eprintln!("{}", raft::render(&r, &format!("scenarios/{name}.toml")));
            failed.push(seed);
        }
    }
    assert!(failed.is_empty(), "{name}: failing seeds {failed:?}");
}

#[test]
fn raft_leader_crash() {
    sweep("raft-leader-crash");
}

#[test]
fn a_raft_seed_replays_bit_for_bit() {
    let s = scenario("raft-leader-crash");
    let a = run(&s, 3, None);
    let b = run(&s, 3, None);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.injected, b.injected);
    assert_ne!(
        a.trace_hash,
        run(&s, 4, None).trace_hash,
        "another seed, another history"
    );
    assert!(
        !a.injected.is_empty() && a.ops.0 > 0,
        "the run did something"
    );
}

/// Runs `f` while another thread spawns tokio tasks without pause, as other tests' runtimes
/// do: every task id drawn in `f` is then some way past the one before. The thread is the
/// point: it stands for the process outside the simulation.
#[allow(clippy::disallowed_methods)]
fn with_a_noisy_neighbour<T>(f: impl FnOnce() -> T) -> T {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let noise = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = tokio::spawn(async {}).await;
            }
        });
    });
    let out = f();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.join().expect("the noise thread");
    out
}

/// A seed's history does not depend on what else the process runs. tokio's task ids are
/// process-wide (every runtime on every thread draws from one counter), and a runtime keeps
/// its tasks in four lists by id and drops them list by list when it shuts down, which is
/// what a turmoil crash does. With the drivers' tasks on the hosts' runtimes, the order in
/// which a crashed node's streams sent their FINs and its listeners unbound followed the
/// ids, so a seed's run changed whenever another thread spawned tasks meanwhile (three or
/// four of these eight seeds did, every time). They now run on each host's `LocalSet`
/// (`Network::spawn`), which drops them in spawn order.
#[test]
fn a_seed_replays_while_another_thread_spawns_tasks() {
    let s = scenario("raft-leader-crash");
    let mut differ = Vec::new();
    for seed in 0..8 {
        let quiet = run(&s, seed, None);
        let noisy = with_a_noisy_neighbour(|| run(&s, seed, None));
        if quiet.trace_hash != noisy.trace_hash {
            differ.push(seed);
        }
    }
    assert!(differ.is_empty(), "seeds {differ:?} replay differently");
}

#[test]
fn the_injected_faults_replay_as_a_schedule() {
    let s = scenario("raft-leader-crash");
    let a = run(&s, 5, None);
    let replay = run(&s.with_faults(&a.injected), 5, None);
    assert!(replay.passed, "{}", raft::render(&replay, "replay"));
    assert_eq!(replay.injected.len(), a.injected.len());
}

#[test]
fn raft_partitions_5() {
    sweep("raft-partitions-5");
}

#[test]
fn raft_oneway() {
    sweep("raft-oneway");
}

#[test]
fn raft_flapping() {
    sweep("raft-flapping");
}

#[test]
fn raft_unflushed_loss() {
    sweep("raft-unflushed-loss");
}

#[test]
fn raft_slow_disk_skew() {
    sweep("raft-slow-disk-skew");
}

/// The first seed below `limit` at which `bug` planted in every node fails `name`.
#[cfg(feature = "planted-bugs")]
fn first_catch(name: &str, bug: keel_raft::PlantedBug, limit: u64) -> Option<(u64, Vec<String>)> {
    let s = scenario(name);
    let tweak: raft::RaftTweak = std::sync::Arc::new(move |c| c.planted_bug = Some(bug));
    (0..limit).find_map(|seed| {
        let r = run(&s, seed, Some(tweak.clone()));
        (!r.passed).then_some((seed, r.anomalies))
    })
}

#[cfg(feature = "planted-bugs")]
#[test]
fn a_vote_sent_before_its_flush_is_caught_within_200_seeds() {
    let caught = first_catch(
        "raft-unflushed-loss",
        keel_raft::PlantedBug::VoteBeforeFlush,
        200,
    );
    eprintln!("VoteBeforeFlush: {caught:?}");
    assert!(caught.is_some(), "VoteBeforeFlush not caught in 200 seeds");
}

/// `keel-sim shrink` for raft: the planted VoteBeforeFlush's failing seed replays from its
/// injected faults as a schedule and shrinks to a 1-minimal subset that still shows the same
/// anomaly (seed 7: seven faults to three, the slow disks and two power cuts 15 ms apart
/// that together take down every node).
#[cfg(feature = "planted-bugs")]
#[test]
fn a_planted_bug_failure_shrinks_and_still_fails_the_same_way() {
    let s = scenario("raft-unflushed-loss");
    let bug = keel_raft::PlantedBug::VoteBeforeFlush;
    let tweak: raft::RaftTweak = std::sync::Arc::new(move |c| c.planted_bug = Some(bug));
    let before = run(&s, 7, Some(tweak.clone()));
    assert!(!before.passed, "seed 7 fails with the bug planted");
    let (shrunk, report) = raft::shrink_seed(&s, 7, Some(tweak)).expect("it fails");
    eprintln!(
        "shrunk {} faults to {}: {:?}",
        before.injected.len(),
        shrunk.raft.faults.len(),
        report.anomalies
    );
    assert!(!report.passed);
    assert!(shrunk.raft.faults.len() <= before.injected.len());
    assert!(!raft::anomaly_kinds(&report).is_disjoint(&raft::anomaly_kinds(&before)));
}
