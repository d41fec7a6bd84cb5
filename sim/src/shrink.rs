//! Shrinking a failing run: [`ddmin`], Zeller and Hildebrandt's delta debugging
//! ("Simplifying and Isolating Failure-Inducing Input", TSE 2002), over any list of faults;
//! and [`shrink_seed`], which applies it to the faults one seed of a scenario injected and
//! writes the smallest failing schedule back as a scenario file (`keel-sim shrink`).

use crate::harness::{self, InjectedFault, RunOptions, RunReport};
use crate::report;
use crate::scenario::{FaultSpec, RandomFaults, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Delta debugging: the smallest sublist of `faults` found for which `fails` still holds,
/// **1-minimal**: removing any single element of the result makes `fails` false.
///
/// `fails(&faults)` must be true on entry (the caller has seen the whole list fail; it is
/// not tested again). Sublists keep the elements' original order. Each distinct sublist is
/// tested at most once (results are cached by the indices kept), and the empty list is
/// tried first, so a failure that needs no fault at all shrinks to `[]` in one test. Costs
/// O(n log n) tests when one or two elements matter, O(n²) in the worst case.
///
/// The predicate may be anything deterministic (a simulated run, a synthetic check); a
/// non-monotone one (a subset failing while a superset passes) is fine: the result is still
/// 1-minimal with respect to it.
pub fn ddmin<F: Clone>(faults: Vec<F>, mut fails: impl FnMut(&[F]) -> bool) -> Vec<F> {
    let mut cache: BTreeMap<Vec<usize>, bool> = BTreeMap::new();
    let mut test = |kept: &[usize]| -> bool {
        if let Some(&verdict) = cache.get(kept) {
            return verdict;
        }
        let subset: Vec<F> = kept.iter().map(|&i| faults[i].clone()).collect();
        let verdict = fails(&subset);
        cache.insert(kept.to_vec(), verdict);
        verdict
    };
    let mut current: Vec<usize> = (0..faults.len()).collect();
    if current.is_empty() || test(&[]) {
        return Vec::new();
    }
    let mut n = 2usize;
    while current.len() >= 2 {
        let chunks = split(&current, n);
        // Reduce to a subset: one chunk alone fails.
        if let Some(chunk) = chunks.iter().find(|c| test(c)) {
            current = chunk.clone();
            n = 2;
            continue;
        }
        // Reduce to a complement: everything but one chunk fails. With two chunks the
        // complements are the chunks themselves, already tested.
        if n > 2 {
            let complement = (0..chunks.len()).find_map(|skip| {
                let rest: Vec<usize> = chunks
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .flat_map(|(_, c)| c.iter().copied())
                    .collect();
                test(&rest).then_some(rest)
            });
            if let Some(rest) = complement {
                current = rest;
                n = (n - 1).max(2);
                continue;
            }
        }
        // Increase granularity, or stop: every single element was removed in turn.
        if n >= current.len() {
            break;
        }
        n = (2 * n).min(current.len());
    }
    current.into_iter().map(|i| faults[i].clone()).collect()
}

/// `items` cut into `n` contiguous chunks whose lengths differ by at most one.
fn split(items: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, items.len().max(1));
    let (base, extra) = (items.len() / n, items.len() % n);
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        chunks.push(items[start..start + len].to_vec());
        start += len;
    }
    chunks
}

/// A failing seed shrunk: the faults its run injected and the fewest that still fail.
#[derive(Debug)]
pub struct Shrunk {
    /// Every fault the seed's own run injected (scheduled and random).
    pub original: Vec<InjectedFault>,
    /// The 1-minimal sublist that still fails with one of [`Shrunk::kinds`].
    pub faults: Vec<InjectedFault>,
    /// What the seed's run failed with: its untolerated anomaly kinds (`simulation-error`
    /// for a simulation that failed outright).
    pub kinds: BTreeSet<String>,
    /// Simulated runs made, the seed's own included.
    pub runs: usize,
    /// The run of [`Shrunk::scenario`] with the seed: fails, as the written file does.
    pub report: RunReport,
    /// The scenario that replays the shrunk schedule: `[random]` off, `faults` listed.
    pub scenario: Scenario,
}

/// What a run failed with, for "the same kind of finding": each untolerated anomaly kind,
/// and `simulation-error` if the simulation itself failed.
pub fn failure_kinds(report: &RunReport) -> BTreeSet<String> {
    let mut kinds: BTreeSet<String> = report
        .unexpected
        .iter()
        .map(|f| f.anomaly.to_string())
        .collect();
    if report.error.is_some() {
        kinds.insert("simulation-error".to_string());
    }
    kinds
}

/// `scenario` with its random faults off and exactly `faults` scheduled, in their order.
/// With the same seed it replays them: the random faults are drawn last from the seed's
/// stream, so every other seed-drawn stream (turmoil's, each disk's, driver's and client's)
/// is unchanged.
pub fn replaying(scenario: &Scenario, faults: &[InjectedFault]) -> Scenario {
    let mut replay = scenario.clone();
    replay.random = RandomFaults::default();
    replay.faults = faults.iter().map(InjectedFault::to_spec).collect();
    replay
}

/// Runs `options.seed` of `scenario`; if it fails, shrinks the faults it injected with
/// [`ddmin`], keeping "fails with one of the original run's failure kinds". `Err` holds
/// the seed's report when it passed (nothing to shrink).
pub fn shrink_seed(scenario: &Scenario, options: &RunOptions) -> Result<Shrunk, Box<RunReport>> {
    let first = harness::run(scenario, options);
    if first.passed {
        return Err(Box::new(first));
    }
    let kinds = failure_kinds(&first);
    let original = first.faults.clone();
    let mut runs = 1;
    let faults = ddmin(original.clone(), |subset| {
        runs += 1;
        let report = harness::run(&replaying(scenario, subset), options);
        !report.passed && !failure_kinds(&report).is_disjoint(&kinds)
    });
    let replay = replaying(scenario, &faults);
    let report = harness::run(&replay, options);
    runs += 1;
    Ok(Shrunk {
        original,
        faults,
        kinds,
        runs,
        report,
        scenario: replay,
    })
}

/// The shrunk scenario file: `original_text` (the scenario's file) with `[random]` removed,
/// `[[faults]]` replaced by `shrunk.faults` (in schedule order: ties at one millisecond
/// fire in file order), `regression_seeds = [seed]`, and a header saying where it came from,
/// what it replays and the command that does. Checked to parse back to `shrunk.scenario`.
pub fn shrunk_file(
    original_text: &str,
    original_path: &str,
    out_path: &str,
    seed: u64,
    shrunk: &Shrunk,
) -> Result<String, String> {
    let mut table: toml::Table = toml::from_str(original_text).map_err(|e| e.to_string())?;
    table.remove("random");
    let specs: Vec<FaultSpec> = shrunk.faults.iter().map(InjectedFault::to_spec).collect();
    table.insert(
        "faults".into(),
        toml::Value::try_from(&specs).map_err(|e| e.to_string())?,
    );
    table.insert(
        "regression_seeds".into(),
        toml::Value::Array(vec![toml::Value::Integer(seed as i64)]),
    );
    let body = toml::to_string(&table).map_err(|e| e.to_string())?;
    let kinds: Vec<&str> = shrunk.kinds.iter().map(String::as_str).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Shrunk by `keel-sim shrink {original_path} --seed {seed}`: {} faults -> {} in {} runs.",
        shrunk.original.len(),
        shrunk.faults.len(),
        shrunk.runs
    );
    let _ = writeln!(
        out,
        "# Fails with {} (the seed failed with one of: {}).",
        failure_kinds(&shrunk.report)
            .into_iter()
            .collect::<Vec<_>>()
            .join(", "),
        kinds.join(", ")
    );
    let _ = writeln!(out, "# Replay: {}", report::replay_command(out_path, seed));
    let _ = writeln!(
        out,
        "#   (trace hash {:#018x}). The seed is needed: it still draws turmoil's message",
        shrunk.report.trace_hash
    );
    out.push_str(
        "#   latencies, every client's choices, group members' crashes, and each disk's own\n\
         #   draws (which files a Mixed crash tears and where, fsync/read errors at the set\n\
         #   rates, which bit rots). The random faults are off: the [[faults]] below are\n\
         #   exactly the ones kept. Another seed replays the same faults over other draws.\n",
    );
    let header: Vec<&str> = original_text
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .collect();
    if !header.is_empty() {
        out.push_str("#\n# The original scenario's header:\n");
        for line in header {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(&body);
    let back = Scenario::parse(&out).map_err(|e| format!("the shrunk file does not parse: {e}"))?;
    if back.faults != shrunk.scenario.faults || back.random.crash_rate != 0.0 {
        return Err("the shrunk file does not read back as the shrunk schedule".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removing any one element of `result` makes `fails` false.
    fn one_minimal(result: &[u32], fails: impl Fn(&[u32]) -> bool) -> bool {
        (0..result.len()).all(|skip| {
            let rest: Vec<u32> = result
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, x)| *x)
                .collect();
            !fails(&rest)
        })
    }

    #[test]
    fn finds_the_two_elements_a_failure_needs_in_few_tests() {
        let needs = |s: &[u32]| s.contains(&17) && s.contains(&42);
        let mut tests = 0;
        let result = ddmin((0..100).collect(), |s| {
            tests += 1;
            needs(s)
        });
        assert_eq!(result, vec![17, 42]);
        // About 2·2·log2(100) tests for two needed elements, far from 2^100.
        assert!(tests <= 60, "{tests} tests");
    }

    #[test]
    fn keeps_order_and_finds_a_single_culprit() {
        let result = ddmin(vec!['a', 'b', 'c', 'd', 'e'], |s| s.contains(&'d'));
        assert_eq!(result, vec!['d']);
        let result = ddmin(vec![5u32, 3, 9, 1], |s| s.contains(&9) && s.contains(&5));
        assert_eq!(result, vec![5, 9]);
    }

    #[test]
    fn a_failure_needing_no_fault_shrinks_to_nothing_in_one_test() {
        let mut tests = 0;
        let result = ddmin((0..50).collect::<Vec<u32>>(), |_| {
            tests += 1;
            true
        });
        assert!(result.is_empty());
        assert_eq!(tests, 1);
        assert!(ddmin(Vec::<u32>::new(), |_| unreachable!()).is_empty());
    }

    #[test]
    fn results_are_one_minimal_for_threshold_and_non_monotone_predicates() {
        // At least three multiples of seven.
        let threshold = |s: &[u32]| s.iter().filter(|x| *x % 7 == 0).count() >= 3;
        let result = ddmin((0..64).collect(), threshold);
        assert_eq!(result.len(), 3);
        assert!(threshold(&result) && one_minimal(&result, threshold));
        // Fails with 3 unless 5 is there too: removing 5 from a failing list never passes.
        let non_monotone = |s: &[u32]| s.contains(&3) && !s.contains(&5) || s.len() == 2;
        let result = ddmin((0..16).collect(), non_monotone);
        assert!(non_monotone(&result) && one_minimal(&result, non_monotone));
    }

    #[test]
    fn each_distinct_subset_is_tested_once() {
        let mut seen = std::collections::BTreeSet::new();
        let mut repeated = 0;
        ddmin((0..40).collect::<Vec<u32>>(), |s| {
            if !seen.insert(s.to_vec()) {
                repeated += 1;
            }
            s.contains(&1) && s.contains(&38) && s.contains(&20)
        });
        assert_eq!(repeated, 0);
    }

    #[test]
    fn split_covers_every_item_in_order() {
        let items: Vec<usize> = (0..10).collect();
        for n in 1..=10 {
            let chunks = split(&items, n);
            assert_eq!(chunks.len(), n);
            assert_eq!(chunks.concat(), items);
            let lens: Vec<usize> = chunks.iter().map(Vec::len).collect();
            assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
        }
    }
}
