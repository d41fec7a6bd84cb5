//! Same seed, same history: every scenario runs twice with one seed and must print the same
//! trace hash, and once with another seed, which must change it (a hash that never changes
//! proves nothing).
//!
//! The known ways determinism leaks (TURMOIL.md) are kept out of keel-core and keel-sim by
//! the compiler: their `clippy.toml` disallows the real clock, OS entropy, threads and
//! `HashMap`/`HashSet`, and CI runs clippy with `-D warnings`; a test here checks those
//! files still ban them. keel-net's driver, client and network trait also run inside the
//! simulation but hold production paths (fsyncs on blocking threads, the wall clock read
//! once at start), so for them a scan remains, with the allowed lines listed; and clippy
//! cannot see a `select!` without `biased;`, so the scan checks that everywhere.

use keel_sim::harness::{self, RunOptions};
use keel_sim::scenario::Scenario;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scenarios() -> Vec<(PathBuf, Scenario)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        // The raft-* scenarios have their own runner and determinism test (tests/raft.rs).
        .filter(|p| !keel_sim::raft::is_raft_scenario(p))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    paths
        .into_iter()
        .map(|p| {
            let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, s)
        })
        .collect()
}

#[test]
fn same_seed_same_trace_hash_other_seed_other_hash() {
    for (path, scenario) in scenarios() {
        let run = |seed| harness::run(&scenario, &RunOptions { seed, tweak: None });
        let first = run(7);
        let again = run(7);
        assert_eq!(
            first.trace_hash,
            again.trace_hash,
            "{}: seed 7 gave two histories",
            path.display()
        );
        assert_eq!(first.history.ops, again.history.ops);
        assert_eq!(first.history.timeline, again.history.timeline);
        let other = run(8);
        assert_ne!(
            first.trace_hash,
            other.trace_hash,
            "{}: seeds 7 and 8 hash alike",
            path.display()
        );
    }
}

/// Code that runs inside a simulation: the simulator, the core, and keel-net's driver,
/// client and network trait. `sim/src/main.rs` is left out: it runs outside the simulation
/// (its bench reads the wall clock to measure the simulator, never to feed it).
fn simulated_sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("source dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("sim/src"), &mut out);
    walk(&root().join("core/src"), &mut out);
    for f in ["driver.rs", "network.rs", "metrics.rs"] {
        out.push(root().join("net/src").join(f));
    }
    // The client the workloads run (mod.rs, group.rs, admin.rs).
    walk(&root().join("net/src/client"), &mut out);
    out.retain(|p| !p.ends_with("sim/src/main.rs"));
    out.sort();
    out
}

/// Production-only code paths the simulator never takes, by file and line content.
const ALLOWED: &[(&str, &str)] = &[
    // `keel serve`'s entry point reads the wall clock once; the simulator passes its epoch.
    ("net/src/driver.rs", "std::time::SystemTime::now()"),
    // Production's fsync mode; the simulator uses SyncMode::InlineAfter.
    ("net/src/network.rs", "tokio::task::spawn_blocking(f)"),
    ("net/src/network.rs", "map(tokio::task::spawn_blocking)"),
];

#[test]
fn core_and_sim_ban_the_determinism_pitfalls_through_clippy() {
    let methods = [
        "std::time::Instant::now",
        "std::time::SystemTime::now",
        "std::thread::spawn",
        "rand::thread_rng",
        "rand::random",
        "rand::SeedableRng::from_entropy",
    ];
    let types = [
        "std::collections::HashMap",
        "std::collections::HashSet",
        "rand::rngs::ThreadRng",
        "rand::rngs::OsRng",
    ];
    for krate in ["core", "sim"] {
        let path = root().join(krate).join("clippy.toml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for banned in methods.iter().chain(&types) {
            assert!(
                text.contains(&format!("path = \"{banned}\"")),
                "{krate}/clippy.toml no longer disallows {banned}"
            );
        }
    }
    let sim = std::fs::read_to_string(root().join("sim/clippy.toml")).unwrap();
    assert!(sim.contains("path = \"tokio::task::spawn_blocking\""));
}

/// Whether clippy's disallowed lists (core/ and sim/clippy.toml) cover `path`.
fn clippy_covers(path: &Path) -> bool {
    path.starts_with(root().join("core")) || path.starts_with(root().join("sim"))
}

#[test]
fn no_determinism_pitfalls_in_simulated_code() {
    const BANNED: &[(&str, &str)] = &[
        ("std::time::Instant", "real time: use tokio::time::Instant"),
        ("Instant::now()", "real time unless tokio's"),
        ("SystemTime::now", "the wall clock"),
        ("HashMap", "random iteration order: use BTreeMap"),
        ("HashSet", "random iteration order: use BTreeSet"),
        ("thread_rng", "OS entropy"),
        ("OsRng", "OS entropy"),
        ("getrandom", "OS entropy"),
        ("from_entropy", "OS entropy"),
        ("spawn_blocking", "escapes the simulated clock"),
        ("std::thread::spawn", "escapes the simulated clock"),
    ];
    let mut problems = Vec::new();
    for path in simulated_sources() {
        let text = std::fs::read_to_string(&path).expect("readable source");
        let shown = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string()
            .replace('\\', "/");
        let lines: Vec<&str> = text.lines().collect();
        let banned = if clippy_covers(&path) {
            &[][..]
        } else {
            BANNED
        };
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (pattern, why) in banned {
                if !code.contains(pattern) {
                    continue;
                }
                if *pattern == "Instant::now()" && code.contains("tokio::time::Instant::now()") {
                    continue;
                }
                if ALLOWED
                    .iter()
                    .any(|(f, l)| shown.ends_with(f) && code.contains(l))
                {
                    continue;
                }
                problems.push(format!("{shown}:{}: {pattern} ({why})", i + 1));
            }
            if code.contains("select!") && code.trim_end().ends_with('{') {
                let next = lines[i + 1..].iter().find(|l| !l.trim().is_empty());
                if next.map(|l| l.trim()) != Some("biased;") {
                    problems.push(format!(
                        "{shown}:{}: select! without `biased;` (tokio's branch order is random)",
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "determinism pitfalls:\n{}",
        problems.join("\n")
    );
}
