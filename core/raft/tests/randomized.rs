//! The randomized harness over many seeds (3 and 5 replicas alternately): every safety
//! property after every step, then convergence once faults heal. `KEEL_RAFT_SEEDS=a..b`
//! runs another range.

mod common;

use common::{run_seed, Outcome, SimConfig};

fn seeds() -> std::ops::Range<u64> {
    std::env::var("KEEL_RAFT_SEEDS")
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once("..")?;
            Some(a.parse().ok()?..b.parse().ok()?)
        })
        .unwrap_or(0..40)
}

#[test]
fn randomized_clusters_keep_every_safety_property_and_converge() {
    let mut failures = Vec::new();
    let mut t = Outcome::default();
    let mut runs = 0;
    for seed in seeds() {
        match run_seed(SimConfig::new(seed)) {
            Ok(o) => {
                t.committed += o.committed;
                t.reads += o.reads;
                t.lease_reads += o.lease_reads;
                t.crashes += o.crashes;
                t.conf_changes += o.conf_changes;
                t.transfers += o.transfers;
                t.leader_removals += o.leader_removals;
                t.snapshots_installed += o.snapshots_installed;
                runs += 1;
            }
            Err(e) => failures.push(e),
        }
    }
    eprintln!(
        "{runs} runs ok: {} entries committed, {} reads served ({} from the lease), {} crashes, {} membership changes committed ({} removing the leader), {} transfers completed, {} snapshots installed from chunks",
        t.committed, t.reads, t.lease_reads, t.crashes, t.conf_changes, t.leader_removals, t.transfers, t.snapshots_installed
    );
    let committed = t.committed;
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(committed > runs * 20, "the workload commits");
}

#[test]
fn a_seed_replays_exactly() {
    let a = format!("{:?}", run_seed(SimConfig::new(7)));
    let b = format!("{:?}", run_seed(SimConfig::new(7)));
    assert_eq!(a, b);
}
