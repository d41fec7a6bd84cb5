//! The `keel` binary: `keel serve` runs a broker; `keel topic|produce|consume|group` are the
//! admin commands (`cli/`); `keel bench` measures a broker from a client's side; `keel
//! completions` prints a shell's completion script.
//!
//! Logs go to stderr, coloured only when stderr is a terminal and `NO_COLOR` is unset or
//! empty (no-color.org), so a log file or pipe gets plain text; `--log-format json` writes one
//! JSON object per line for log shippers.

mod bench;
mod cli;
mod config;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "keel",
    version,
    about = "Keel: a Kafka-compatible event streaming broker"
)]
struct Cli {
    /// How log lines are written to stderr: `text` for people (coloured on a terminal unless
    /// NO_COLOR is set), `json` for log shippers (one object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "KEEL_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: timestamp, level, target, message and the event's fields.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no flags: a single node on 127.0.0.1:9092 storing data in ./keel-data.
    Serve(config::ServeArgs),
    /// Measure a broker from a client's side: `keel bench produce` or `keel bench consume`.
    Bench(bench::BenchArgs),
    /// Create, list, describe, alter and delete topics.
    Topic(cli::topic::TopicArgs),
    /// Produce records from stdin, one per line.
    Produce(cli::produce::ProduceArgs),
    /// Print the records of a topic, alone or as a member of a consumer group.
    Consume(cli::consume::ConsumeArgs),
    /// List, describe and delete consumer groups; reset their offsets.
    Group(cli::group::GroupArgs),
    /// A cluster's brokers, controller, voters and unhealthy partitions: `keel cluster status`.
    Cluster(cli::status::ClusterArgs),
    /// Print a shell completion script, e.g. `keel completions bash > /etc/bash_completion.d/keel`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Admin commands print their own one-line results and errors: only warnings are logged.
    let default_filter = match cli.command {
        Command::Serve(_) | Command::Bench(_) => "info",
        _ => "warn",
    };
    init_logging(cli.log_format, default_filter);
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench::run(args),
        Command::Topic(args) => cli::topic::run(args),
        Command::Produce(args) => cli::produce::run(args),
        Command::Consume(args) => cli::consume::run(args),
        Command::Group(args) => cli::group::run(args),
        Command::Cluster(args) => cli::status::run(args),
        Command::Completions { shell } => completions(shell),
    }
}

/// Installs the stderr log subscriber: `RUST_LOG` or `default_filter` picks the events.
fn init_logging(format: LogFormat, default_filter: &str) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .init(),
        // Flattened, so `message` and the event's fields sit at the top level beside
        // `timestamp`, `level` and `target`, where log shippers look for them.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Whether log lines are coloured: on a terminal, unless `NO_COLOR` is set to anything
/// non-empty (no-color.org).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && !matches!(no_color, Some(v) if !v.is_empty())
}

/// `keel completions SHELL`: the script on stdout (a closed stdout is not an error).
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use std::io::Write;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "keel", &mut script);
    let _ = std::io::stdout().lock().write_all(&script);
    ExitCode::SUCCESS
}

fn serve(args: config::ServeArgs) -> ExitCode {
    let (config, metrics_listen) = match config::resolve_with_metrics(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keel serve: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keel serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = {
        let _inside = runtime.enter();
        shutdown_signal()
    };
    let serving = keel_net::driver::serve_with_metrics(config, metrics_listen, shutdown);
    match runtime.block_on(serving) {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        // One line on stderr, not a log event and then the same words again.
        Err(e) => {
            eprintln!("keel serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT: the broker then stops accepting, flushes and exits 0.
///
/// The handlers are installed when this is called, not when the future is first polled:
/// the driver polls it only once it serves, and a SIGTERM in between (a supervisor stopping
/// a broker that just started) would otherwise kill the process without a flush. Must be
/// called inside the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    biased;
                    _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                },
                (term, int) => {
                    let e = term.err().or(int.err()).map(|e| e.to_string());
                    tracing::warn!(error = ?e, "cannot listen for SIGTERM or SIGINT; falling back to Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        // no-color.org: an empty NO_COLOR does not count.
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("".into())));
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
