//! `keel bench produce` and `keel bench consume` with `--spawn`, at tiny sizes: the programs
//! must run to a clean end, print summaries whose numbers parse, and count exactly the records
//! they were asked for. Nothing here looks at speed (never assert wall-clock time).

use keel_tests::{keel_bin, run_with_timeout, temp_data_dir, Keel};
use std::process::{Command, Output};
use std::time::Duration;

/// The number right before `token` in `line` (e.g. `"123 records/s"` → 123).
fn number_before(line: &str, token: &str) -> f64 {
    let at = line
        .find(token)
        .unwrap_or_else(|| panic!("no {token:?} in {line:?}"));
    let word = line[..at]
        .split_whitespace()
        .last()
        .unwrap_or_else(|| panic!("nothing before {token:?} in {line:?}"));
    word.trim_start_matches('+')
        .parse()
        .unwrap_or_else(|e| panic!("{word:?} before {token:?} in {line:?}: {e}"))
}

/// The milliseconds after `label` (e.g. `"p99 1.25 ms"` → 1.25).
fn ms_after(line: &str, label: &str) -> f64 {
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    let mut words = line[at + label.len()..].split_whitespace();
    let value = words.next().expect("a value");
    assert_eq!(words.next(), Some("ms"), "{line}");
    value
        .parse()
        .unwrap_or_else(|e| panic!("{value:?} after {label:?}: {e}"))
}

fn line_starting<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
}

/// The indented detail line right after the line starting with `prefix`.
fn detail_after<'a>(out: &'a str, prefix: &str) -> &'a str {
    let mut lines = out.lines().skip_while(|l| !l.starts_with(prefix));
    lines.next();
    lines
        .next()
        .filter(|l| l.starts_with("    "))
        .unwrap_or_else(|| panic!("no detail line after {prefix:?} in:\n{out}"))
}

fn bench(args: &[&str]) -> String {
    bench_with_env(args, &[])
}

/// `keel bench ARGS` with `env` set (and KEEL_BOOTSTRAP_SERVER unset unless given there).
fn bench_output(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(keel_bin());
    cmd.arg("bench")
        .args(args)
        .env_remove("KEEL_BOOTSTRAP_SERVER")
        .envs(env.iter().copied());
    run_with_timeout(&mut cmd, b"", Duration::from_secs(300))
}

fn bench_with_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = bench_output(args, env);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "keel bench {args:?}: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

/// Checks the percentile trio and the server RSS of a headline.
fn check_latency_and_memory(headline: &str) {
    let (p50, p99, p999) = (
        ms_after(headline, "p50"),
        ms_after(headline, "p99"),
        ms_after(headline, "p99.9"),
    );
    assert!(p50 <= p99 && p99 <= p999, "percentiles ordered: {headline}");
    let rss = number_before(headline, "MiB");
    assert!(rss > 0.0, "server RSS read: {headline}");
}

#[test]
fn bench_produce_spawned_counts_every_record() {
    let out = bench(&[
        "produce",
        "--spawn",
        "--count",
        "3000",
        "--record-size",
        "64",
        "--batch-records",
        "50",
        "--partitions",
        "2",
        "--concurrency",
        "3",
        "--acks",
        "all",
        "--compression",
        "gzip",
        "--baseline-mib",
        "1",
    ]);
    let baseline = line_starting(&out, "disk baseline: sequential write");
    assert!(number_before(baseline, "MB/s") > 0.0, "{baseline}");
    let headline = line_starting(&out, "produce  record=64B acks=-1 compression=gzip conc=3");
    assert!(number_before(headline, "records/s") > 0.0, "{headline}");
    assert!(number_before(headline, "MB/s") > 0.0, "{headline}");
    check_latency_and_memory(headline);
    let detail = detail_after(&out, "produce  record=");
    assert_eq!(number_before(detail, "records in"), 3000.0, "{detail}");
    assert_eq!(
        number_before(detail, "requests"),
        60.0,
        "3000 / 50: {detail}"
    );
    assert!(detail.contains("errors 0"), "{detail}");
    assert!(detail.contains("end offsets +3000 (match)"), "{detail}");
    assert!(!out.contains("UNHEALTHY"), "{out}");
}

#[test]
fn bench_consume_spawned_reads_every_record_once() {
    let out = bench(&[
        "consume",
        "--spawn",
        "--count",
        "5000",
        "--record-size",
        "80",
        "--partitions",
        "3",
        // More consumers than partitions: the ranges are split.
        "--concurrency",
        "5",
        "--fetch-max-bytes",
        "16384",
    ]);
    let fill = line_starting(&out, "fill: ");
    assert_eq!(number_before(fill, "records of 80B"), 5000.0, "{fill}");
    let baseline = line_starting(&out, "read baseline: sequential read");
    assert!(
        number_before(baseline, "MB/s (page cache") > 0.0,
        "{baseline}"
    );
    let headline = line_starting(&out, "consume  conc=5 partitions=3 fetch_max_bytes=16384:");
    assert!(number_before(headline, "records/s") > 0.0, "{headline}");
    assert!(number_before(headline, "MB/s") > 0.0, "{headline}");
    check_latency_and_memory(headline);
    let detail = detail_after(&out, "consume  conc=");
    assert_eq!(number_before(detail, "records in"), 5000.0, "{detail}");
    assert!(
        number_before(detail, "fetches") >= 6.0,
        "5000 x ~100 B in 16 KiB fetches over 6 ranges: {detail}"
    );
    assert!(detail.contains("gaps 0"), "{detail}");
    assert!(detail.contains("records match (5000 of 5000)"), "{detail}");
    assert!(!out.contains("UNHEALTHY"), "{out}");
}

/// `keel ARGS --bootstrap-server <keel>`, which must succeed; its stdout.
fn keel_ok(keel: &Keel, args: &[&str]) -> String {
    let output = run_with_timeout(
        Command::new(keel_bin())
            .args(args)
            .args(["--bootstrap-server", &keel.bootstrap()]),
        b"",
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "keel {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn bench_reads_the_broker_from_keel_bootstrap_server_as_every_command_does() {
    let keel = Keel::start(&temp_data_dir("bench-env"), &[]);
    let out = bench_with_env(
        &[
            "produce",
            "--topic",
            "bench-env",
            "--count",
            "500",
            "--partitions",
            "1",
            "--concurrency",
            "1",
        ],
        &[("KEEL_BOOTSTRAP_SERVER", &keel.bootstrap())],
    );
    let detail = detail_after(&out, "produce  record=");
    assert!(detail.contains("end offsets +500 (match)"), "{detail}");
    // The records went to this broker, not to a default 127.0.0.1:9092.
    let topics = keel_ok(&keel, &["topic", "list"]);
    assert!(topics.lines().any(|t| t == "bench-env"), "{topics}");
    // With --spawn the variable names no broker to bench: it does not conflict.
    let out = bench_with_env(
        &[
            "produce",
            "--spawn",
            "--count",
            "100",
            "--baseline-mib",
            "0",
        ],
        &[("KEEL_BOOTSTRAP_SERVER", "127.0.0.1:1")],
    );
    assert!(out.contains("end offsets +100 (match)"), "{out}");
}

#[test]
fn bench_produce_creates_its_topic_with_the_topic_configs_given() {
    let keel = Keel::start(&temp_data_dir("bench-topic-config"), &[]);
    let broker = keel.bootstrap();
    let out = bench(&[
        "produce",
        "--bootstrap-server",
        &broker,
        "--topic",
        "recompressed",
        "--topic-config",
        "compression.type=zstd",
        "--payload",
        "text",
        "--count",
        "1000",
        "--partitions",
        "2",
    ]);
    let headline = line_starting(
        &out,
        "produce  record=100B acks=1 compression=none payload=text topic:compression.type=zstd \
         conc=4",
    );
    assert!(number_before(headline, "records/s") > 0.0, "{headline}");
    let detail = detail_after(&out, "produce  record=");
    assert!(detail.contains("end offsets +1000 (match)"), "{detail}");
    assert!(
        number_before(detail, "MB (") > 0.0,
        "stored bytes: {detail}"
    );
    // The broker recompressed the plain text batches: far fewer bytes stored than sent.
    let stored = detail
        .split("MB (")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|pct| pct.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no stored share in {detail}"));
    assert!(
        stored > 0.0 && stored < 60.0,
        "zstd at the broker stored {stored}% of the wire bytes: {detail}"
    );
    let describe = keel_ok(&keel, &["topic", "describe", "recompressed"]);
    assert!(
        describe
            .lines()
            .any(|l| l.trim() == "compression.type=zstd"),
        "{describe}"
    );
    // An existing topic without the config is refused rather than benched as if it had it.
    let failed = bench_output(
        &[
            "produce",
            "--bootstrap-server",
            &broker,
            "--topic",
            "recompressed",
            "--topic-config",
            "compression.type=lz4",
            "--count",
            "10",
            "--partitions",
            "2",
        ],
        &[],
    );
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(
        stderr.trim_end(),
        "keel bench produce: topic: recompressed exists with compression.type=zstd, not lz4: \
         give another --topic or delete it"
    );
}
