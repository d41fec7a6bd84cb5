//! The `keel` binary: `keel serve` runs a broker; `keel topic|produce|consume|group` are the
//! admin commands (`cli/`); `keel bench` measures a broker from a client's side.

mod bench;
mod cli;
mod config;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "keel",
    version,
    about = "Keel: a Kafka-compatible event streaming broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// List and describe consumer groups; reset their offsets.
    Group(cli::group::GroupArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Admin commands print their own one-line results and errors: only warnings are logged.
    let default_filter = match cli.command {
        Command::Serve(_) | Command::Bench(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench::run(args),
        Command::Topic(args) => cli::topic::run(args),
        Command::Produce(args) => cli::produce::run(args),
        Command::Consume(args) => cli::consume::run(args),
        Command::Group(args) => cli::group::run(args),
    }
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
    let serving = keel_net::driver::serve_with_metrics(config, metrics_listen, shutdown_signal());
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
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the broker");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            biased;
            _ = ctrl_c => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
