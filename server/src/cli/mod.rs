//! The admin commands of the `keel` binary: `keel topic`, `keel produce`, `keel consume` and
//! `keel group`, talking to any Kafka-compatible broker named by `--bootstrap-server` (the
//! flag Kafka's own tools use).
//!
//! Listings and descriptions (`topic list|describe`, `group list|describe`) print lines for
//! people or, with `--output json`, one JSON document whose field names are kept stable for
//! scripts.
//!
//! Each command is a client-side program over keel-net's [`Client`](keel_net::client::Client):
//! [`cluster::Cluster`] holds the connections and routes each request where Kafka says it
//! must go (produce and fetch to the partition's leader from Metadata, group calls to the
//! coordinator from FindCoordinator), so the commands work against a multi-broker Kafka as
//! well as a single `keel serve`. A failure is one line on stderr, `keel <command>: <why>`,
//! naming the Kafka error by its name, and a non-zero exit; broker output is never trusted
//! enough to panic on.

/// `println!` for command output that never panics: a closed stdout (`keel topic list | head
/// -1`) loses the rest of the output but the command still runs to its end (a reset it was
/// asked to execute is still committed).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::print_line(format_args!($($arg)*))
    };
}

pub mod cluster;
pub mod consume;
pub mod errors;
pub mod format;
pub mod group;
pub mod member;
pub mod produce;
pub mod records;
pub mod status;
pub mod time;
pub mod topic;

use errors::CliError;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

/// Where the brokers are and how long to wait for them; shared by every admin command.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnArgs {
    /// Broker to bootstrap from, HOST:PORT (a comma-separated list is tried in order).
    #[arg(
        long,
        global = true,
        default_value = "127.0.0.1:9092",
        env = "KEEL_BOOTSTRAP_SERVER",
        value_name = "HOST:PORT"
    )]
    pub bootstrap_server: String,
    /// How long one request (and one connection attempt) may take, in milliseconds.
    #[arg(
        long,
        global = true,
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000)
    )]
    pub request_timeout_ms: u64,
}

impl ConnArgs {
    /// The per-request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Runs one admin command to completion on a current-thread runtime and turns its outcome
/// into the process exit status, printing a failure as `keel <name>: <error>`.
pub fn run<F>(name: &str, command: F) -> ExitCode
where
    F: Future<Output = Result<(), CliError>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keel {name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel {name}: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}

/// How a listing or description is printed (`--output`, `-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Lines for people, tab-separated as Kafka's tools print them.
    #[default]
    Text,
    /// One JSON document on stdout, with stable camelCase field names.
    Json,
}

/// Prints `value` as one JSON document on one line of stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let json = serde_json::to_string(value)
        .map_err(|e| CliError::Other(format!("cannot render JSON: {e}")))?;
    say!("{json}");
    Ok(())
}

/// Writes one line to stdout, ignoring a failure (see `say!`).
pub fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Parses `key=value` (the value may hold further `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// The milliseconds of `d` as an i32, saturating.
pub fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
