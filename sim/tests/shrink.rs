//! `keel-sim shrink`: the faults a run records, written back as `[[faults]]` with the
//! random faults off, replay the very same run (same trace hash); and a planted bug's
//! failing seed with dozens of injected faults shrinks to a few that, run from the written
//! file, still fail the same way. The planted-bug test needs
//! `cargo test -p keel-sim --features planted-bugs --test shrink` (CI runs it).

use keel_sim::harness::{self, RunOptions};
use keel_sim::scenario::{FaultSpec, Scenario};
use keel_sim::shrink;
use std::path::{Path, PathBuf};

fn scenario(file: &str) -> (PathBuf, Scenario) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    (path, s)
}

#[test]
fn recorded_faults_replay_the_same_run_without_the_random_ones() {
    // Random crashes (Mixed loss), pauses, partitions, flaky links, disconnects, bit rot,
    // disk bursts, scheduled faults among them.
    for file in [
        "crash-restart-under-load.toml",
        "disconnect-storm.toml",
        "bit-rot.toml",
        "fsync-failure.toml",
        "bad-sectors.toml",
    ] {
        let (_, s) = scenario(file);
        for seed in 0..2 {
            let options = RunOptions { seed, tweak: None };
            let original = harness::run(&s, &options);
            assert!(!original.faults.is_empty(), "{file} seed {seed}: no faults");
            let replay = harness::run(&shrink::replaying(&s, &original.faults), &options);
            assert_eq!(
                replay.trace_hash, original.trace_hash,
                "{file} seed {seed}: the recorded faults replay another run"
            );
            assert_eq!(replay.faults, original.faults, "{file} seed {seed}");
            // And through the file format: every entry serializes and parses back.
            let specs: Vec<FaultSpec> = original.faults.iter().map(|f| f.to_spec()).collect();
            #[derive(serde::Serialize)]
            struct Faults<'a> {
                faults: &'a [FaultSpec],
            }
            let text = toml::to_string(&Faults { faults: &specs }).unwrap();
            let mut full = format!(
                "name = \"x\"\nduration = \"{}ms\"\nnodes = {}\n",
                s.duration.ms(),
                s.nodes
            );
            full.push_str(&text);
            let back = Scenario::parse(&full).unwrap_or_else(|e| panic!("{e}\n{full}"));
            assert_eq!(back.faults, specs, "{file} seed {seed}");
        }
    }
}

#[cfg(feature = "planted-bugs")]
mod planted {
    use super::*;
    use keel_core::bugs::PlantedBug;
    use std::sync::Arc;

    fn planted(seed: u64) -> RunOptions {
        RunOptions {
            seed,
            tweak: Some(Arc::new(|c: &mut keel_core::node::NodeConfig| {
                c.planted_bug = Some(PlantedBug::ReuseOffsetAfterTruncation);
            }) as harness::ConfigTweak),
        }
    }

    /// crash-restart-under-load made noisy: two nodes (a second topic on node 2) and
    /// pauses, partitions, slow links and disconnects at random on top of its crashes.
    fn noisy() -> (String, Scenario) {
        let (path, _) = scenario("crash-restart-under-load.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let text = text
            .replace("nodes = 1", "nodes = 2")
            .replace(
                "[random]\ncrash_rate = 0.3",
                "[random]\ncrash_rate = 0.6\ndisconnect_rate = 2.0\npause_rate = 1.0\n\
                 partition_rate = 0.6\nslow_link_rate = 1.0",
            )
            .replace(
                "[[consumers]]",
                "[[topics]]\nname = \"other\"\nnode = 2\n\n[[producers]]\ntopic = \"other\"\n\
                 acks = -1\nrate = 50\n\n[[consumers]]",
            );
        let s = Scenario::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        (text, s)
    }

    #[test]
    fn a_planted_bugs_failing_seed_shrinks_to_a_few_faults_that_still_fail() {
        let (text, s) = noisy();
        let seed = (0..40)
            .find(|&seed| {
                let r = harness::run(&s, &planted(seed));
                !r.passed && r.faults.len() >= 15
            })
            .expect("the planted bug fails some noisy seed with many faults");
        let shrunk = shrink::shrink_seed(&s, &planted(seed)).expect("the seed fails");
        eprintln!(
            "seed {seed}: {} faults -> {} in {} runs: {:?}",
            shrunk.original.len(),
            shrunk.faults.len(),
            shrunk.runs,
            shrunk
                .faults
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
        );
        assert!(shrunk.original.len() >= 15);
        // Reusing offsets after a truncation needs a crash to truncate.
        assert!(shrunk.faults.iter().any(|f| f.fault.kind() == "crash"));
        assert!(
            shrunk.faults.len() <= 4,
            "{} faults left",
            shrunk.faults.len()
        );
        let dir = std::env::temp_dir().join(format!("keel-sim-shrink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("noisy-shrunk.toml");
        let file = shrink::shrunk_file(
            &text,
            "noisy.toml",
            &out.display().to_string(),
            seed,
            &shrunk,
        )
        .unwrap();
        std::fs::write(&out, &file).unwrap();
        let written = Scenario::load(&out).unwrap_or_else(|e| panic!("{e}\n{file}"));
        assert_eq!(written.regression_seeds, vec![seed]);
        assert_eq!(written.random.crash_rate, 0.0);
        assert_eq!(written.random.disconnect_rate, 0.0);
        assert_eq!(written.faults.len(), shrunk.faults.len());
        let replay = harness::run(&written, &planted(seed));
        assert!(!replay.passed, "the shrunk file passes:\n{file}");
        assert_eq!(replay.trace_hash, shrunk.report.trace_hash);
        assert!(
            !shrink::failure_kinds(&replay).is_disjoint(&shrunk.kinds),
            "{:?} vs {:?}",
            shrink::failure_kinds(&replay),
            shrunk.kinds
        );
        // 1-minimal: without any one of its faults the file's run no longer fails that way.
        for skip in 0..shrunk.faults.len() {
            let mut fewer = shrunk.faults.clone();
            fewer.remove(skip);
            let r = harness::run(&shrink::replaying(&s, &fewer), &planted(seed));
            assert!(
                r.passed || shrink::failure_kinds(&r).is_disjoint(&shrunk.kinds),
                "still fails without fault {skip}"
            );
        }
        // The clean build passes the shrunk schedule: the failure is the bug's.
        assert!(harness::run(&written, &RunOptions { seed, tweak: None }).passed);
        let _ = std::fs::remove_dir_all(dir);
    }
}
