//! `keel-sim`: run one scenario seed, sweep a seed range, or measure simulation speed.
//!
//! Exit codes, for CI: 0 every run passed, 1 a run failed (a finding the scenario does not
//! tolerate, a panic, a stuck simulation), 2 a usage or scenario-file error.

use clap::{Parser, Subcommand};
use keel_sim::harness::{self, RunOptions};
use keel_sim::report;
use keel_sim::scenario::Scenario;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "keel-sim", version, about = "Keel's deterministic simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed of a scenario: verdict, trace hash, timeline, anomalies.
    Run {
        /// The scenario file (scenarios/*.toml).
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        /// Write the full history (every operation, the final read, the findings) here.
        #[arg(long)]
        trace: Option<PathBuf>,
    },
    /// Run a range of seeds (`A..B`, end excluded; or `A..=B`) and list the failing ones.
    Sweep {
        scenario: PathBuf,
        #[arg(long, value_parser = parse_seeds)]
        seeds: Range<u64>,
    },
    /// Shrink a failing seed: replay it with subsets of the faults it injected (delta
    /// debugging) and write the smallest schedule that still fails the same way as a
    /// scenario file (random faults off, the kept faults listed, the seed recorded).
    Shrink {
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        /// Where to write it (default: scenarios/shrunk/NAME-seedN.toml).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Simulated seconds per wall second, per scenario (all of scenarios/ by default).
    Bench {
        scenarios: Vec<PathBuf>,
        /// Seeds run per scenario.
        #[arg(long, default_value_t = 3)]
        seeds: u64,
    },
}

fn parse_seeds(s: &str) -> Result<Range<u64>, String> {
    let parse = |x: &str| x.trim().parse::<u64>().map_err(|e| format!("{x:?}: {e}"));
    if let Some((a, b)) = s.split_once("..=") {
        Ok(parse(a)?..parse(b)?.saturating_add(1))
    } else if let Some((a, b)) = s.split_once("..") {
        Ok(parse(a)?..parse(b)?)
    } else {
        let a = parse(s)?;
        Ok(a..a.saturating_add(1))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEEL_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    match cli.command {
        Command::Run {
            scenario,
            seed,
            trace,
        } => run(&scenario, seed, trace.as_deref()),
        Command::Sweep { scenario, seeds } => sweep(&scenario, seeds),
        Command::Bench { scenarios, seeds } => bench(scenarios, seeds),
        Command::Shrink {
            scenario,
            seed,
            out,
        } => shrink(&scenario, seed, out),
    }
}

fn load(path: &Path) -> Result<Scenario, ExitCode> {
    Scenario::load(path).map_err(|e| {
        eprintln!("keel-sim: {e}");
        ExitCode::from(2)
    })
}

fn run(path: &Path, seed: u64, trace: Option<&Path>) -> ExitCode {
    if keel_sim::raft::is_raft_scenario(path) {
        return keel_sim::raft::cli_run(path, seed);
    }
    let scenario = match load(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = harness::run(&scenario, &RunOptions { seed, tweak: None });
    print!(
        "{}",
        report::render(&result, &scenario, &path.display().to_string())
    );
    if let Some(file) = trace {
        if let Err(e) = std::fs::write(file, report::render_trace(&result)) {
            eprintln!("keel-sim: cannot write {}: {e}", file.display());
            return ExitCode::from(2);
        }
        println!("trace written to {}", file.display());
    }
    if result.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn sweep(path: &Path, seeds: Range<u64>) -> ExitCode {
    if keel_sim::raft::is_raft_scenario(path) {
        return keel_sim::raft::cli_sweep(path, seeds);
    }
    let scenario = match load(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let shown = path.display().to_string();
    let mut failing = Vec::new();
    for seed in seeds.clone() {
        let result = harness::run(&scenario, &RunOptions { seed, tweak: None });
        let kinds: Vec<String> = result
            .unexpected
            .iter()
            .map(|f| f.anomaly.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if result.passed {
            println!("seed {seed}: pass {:#018x}", result.trace_hash);
        } else {
            let why = result.error.clone().unwrap_or_else(|| kinds.join(", "));
            println!("seed {seed}: FAIL {:#018x} {why}", result.trace_hash);
            failing.push(seed);
        }
    }
    println!(
        "{} of {} seeds failed{}",
        failing.len(),
        seeds.end.saturating_sub(seeds.start),
        if failing.is_empty() { "" } else { ":" }
    );
    for seed in &failing {
        println!("  {}", report::replay_command(&shown, *seed));
    }
    if failing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn shrink(path: &Path, seed: u64, out: Option<PathBuf>) -> ExitCode {
    if keel_sim::raft::is_raft_scenario(path) {
        return keel_sim::raft::cli_shrink(path, seed, out.as_deref());
    }
    let scenario = match load(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = RunOptions { seed, tweak: None };
    let shrunk = match keel_sim::shrink::shrink_seed(&scenario, &options) {
        Ok(shrunk) => shrunk,
        Err(report) => {
            eprintln!(
                "keel-sim: seed {seed} of {} passes ({}): nothing to shrink",
                path.display(),
                harness::summarize_faults(&report.faults)
            );
            return ExitCode::from(2);
        }
    };
    let out = out.unwrap_or_else(|| {
        PathBuf::from(format!(
            "scenarios/shrunk/{}-seed{seed}.toml",
            scenario.name
        ))
    });
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let file = match keel_sim::shrink::shrunk_file(
        &text,
        &path.display().to_string(),
        &out.display().to_string(),
        seed,
        &shrunk,
    ) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("keel-sim: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("keel-sim: cannot create {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    if let Err(e) = std::fs::write(&out, file) {
        eprintln!("keel-sim: cannot write {}: {e}", out.display());
        return ExitCode::from(2);
    }
    let kinds: Vec<String> = shrunk.kinds.iter().cloned().collect();
    println!(
        "seed {seed} fails with {}: {} faults -> {} faults in {} runs",
        kinds.join(", "),
        shrunk.original.len(),
        shrunk.faults.len(),
        shrunk.runs
    );
    for f in &shrunk.faults {
        println!("  {f}");
    }
    println!("written to {}", out.display());
    println!(
        "replay: {}",
        report::replay_command(&out.display().to_string(), seed)
    );
    ExitCode::SUCCESS
}

fn bench(mut paths: Vec<PathBuf>, seeds: u64) -> ExitCode {
    if paths.is_empty() {
        let Ok(dir) = std::fs::read_dir("scenarios") else {
            eprintln!("keel-sim: no scenarios given and no scenarios/ directory here");
            return ExitCode::from(2);
        };
        paths = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
    }
    println!(
        "{:<28} {:>6} {:>10} {:>9} {:>12}",
        "scenario", "seeds", "sim s", "wall s", "sim s/wall s"
    );
    for path in paths {
        let scenario = match load(&path) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let mut sim_ms = 0u64;
        // Wall time is measured outside the simulation only: it never feeds a run.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        for seed in 0..seeds {
            sim_ms += harness::run(&scenario, &RunOptions { seed, tweak: None }).sim_ms;
        }
        let wall = started.elapsed().as_secs_f64();
        let sim = sim_ms as f64 / 1_000.0;
        println!(
            "{:<28} {:>6} {:>10.1} {:>9.2} {:>12.2}",
            scenario.name,
            seeds,
            sim,
            wall,
            sim / wall.max(1e-9)
        );
    }
    ExitCode::SUCCESS
}
