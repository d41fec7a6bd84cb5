//! How a run is shown: the verdict, the trace hash, the timeline, the anomalies and the
//! command that replays it. Shared by the `keel-sim` binary and the tests.

use crate::harness::{format_timeline, RunReport};
use crate::history::fmt_ms;
use crate::scenario::Scenario;
use std::fmt::Write;

/// Findings shown per anomaly kind; the rest are counted.
const SHOWN_PER_KIND: usize = 5;

/// The command that replays `seed` of the scenario at `path`.
pub fn replay_command(path: &str, seed: u64) -> String {
    format!("keel-sim run {path} --seed {seed}")
}

/// The full report of one run, as `keel-sim run` prints it.
pub fn render(report: &RunReport, scenario: &Scenario, path: &str) -> String {
    let mut out = String::new();
    let h = &report.history;
    let s = &report.check.stats;
    let _ = writeln!(out, "scenario {} (seed {})", report.scenario, report.seed);
    let _ = writeln!(out, "timeline (simulated time: event):");
    out.push_str(&format_timeline(h));
    let _ = writeln!(
        out,
        "history: {} produces ({} values acknowledged, {} failed, {} unknown), {} polls ({} records), final read {} records, {} simulated",
        s.produces,
        s.acked_values,
        s.failed_produces,
        s.unknown_produces,
        s.polls,
        s.polled_records,
        s.final_records,
        fmt_ms(report.sim_ms)
    );
    let _ = writeln!(
        out,
        "{} (--trace lists them; keel-sim shrink minimizes them)",
        crate::harness::summarize_faults(&report.faults)
    );
    if s.commits > 0 || s.group_starts > 0 {
        let _ = writeln!(
            out,
            "groups: {} partition commits ({} acknowledged), {} partition starts from OffsetFetch",
            s.commits, s.acked_commits, s.group_starts
        );
    }
    if let Some(e) = &report.error {
        let _ = writeln!(out, "simulation error: {e}");
    }
    let counts = report.check.counts();
    if counts.is_empty() {
        let _ = writeln!(out, "anomalies: none");
    } else {
        let _ = writeln!(out, "anomalies:");
        for (kind, n) in &counts {
            let tolerated = scenario.expect.tolerate.contains(kind);
            let _ = writeln!(
                out,
                "  {kind}: {n}{}",
                if tolerated { " (tolerated)" } else { "" }
            );
            for f in report
                .check
                .findings
                .iter()
                .filter(|f| f.anomaly == *kind)
                .take(SHOWN_PER_KIND)
            {
                let _ = writeln!(out, "    {f}");
            }
            if *n > SHOWN_PER_KIND {
                let _ = writeln!(out, "    ... and {} more (see --trace)", n - SHOWN_PER_KIND);
            }
        }
        if !report.tolerated.is_empty() && !scenario.expect.why.is_empty() {
            let _ = writeln!(out, "tolerated because: {}", scenario.expect.why);
        }
    }
    let _ = writeln!(out, "trace hash: {:#018x}", report.trace_hash);
    if report.passed {
        let _ = writeln!(out, "PASS");
    } else {
        let _ = writeln!(out, "FAIL");
        let _ = writeln!(out, "replay: {}", replay_command(path, report.seed));
    }
    out
}

/// Everything the run recorded, for `--trace FILE`.
pub fn render_trace(report: &RunReport) -> String {
    let mut out = String::new();
    let h = &report.history;
    let _ = writeln!(
        out,
        "# keel-sim trace: scenario {} seed {}",
        report.scenario, report.seed
    );
    let _ = writeln!(out, "# trace hash {:#018x}", report.trace_hash);
    let _ = writeln!(out, "\n## timeline");
    out.push_str(&format_timeline(h));
    let _ = writeln!(
        out,
        "\n## faults ({})",
        crate::harness::summarize_faults(&report.faults)
    );
    for f in &report.faults {
        let _ = writeln!(out, "{f}");
    }
    let _ = writeln!(out, "\n## operations (invoked→completed)");
    for op in &h.ops {
        let _ = writeln!(out, "{op}");
    }
    let _ = writeln!(out, "\n## final read");
    for (tp, read) in &h.final_read {
        let _ = writeln!(
            out,
            "{}-{}: complete={} log_start={} high_watermark={} corrupt={:?} unreadable={:?}",
            tp.0,
            tp.1,
            read.complete,
            read.log_start_offset,
            read.high_watermark,
            read.corrupt,
            read.unreadable
        );
        for (offset, value) in &read.records {
            let _ = writeln!(out, "  {offset}: {value}");
        }
    }
    let _ = writeln!(out, "\n## findings");
    for f in &report.check.findings {
        let _ = writeln!(out, "{f}");
    }
    out
}
