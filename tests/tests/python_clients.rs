//! Python Kafka clients from PyPI against a real `keel serve`: kafka-python, aiokafka and
//! confluent-kafka (librdkafka 2.x in its wheel), pinned in tests/python/requirements.txt.
//! Each test runs tests/python/compat.py for one client: admin create/list/delete, ~2000 keyed
//! records with headers in every codec, manual-assignment consume with exact checks, and
//! earliest/latest/by-time offset lookups, and for kafka-python a consumer group that commits
//! and resumes. The script's output is printed on failure.
//!
//! Without python3 or the client's modules these tests print a SKIPPED line, or fail when
//! `CI` is set (README: `python3 -m venv .venv && .venv/bin/pip install -r
//! tests/python/requirements.txt`; the tests use `.venv/bin/python3` when it exists).

use keel_tests::{
    missing_python_modules, require, run_python_script, temp_data_dir, Keel, PYTHON_INSTALL,
};
use std::time::Duration;

const INSTALL: &str = PYTHON_INSTALL;
const TIMEOUT: Duration = Duration::from_secs(60);

fn run_client(client: &str, modules: &[&str]) {
    if !require(client, missing_python_modules(modules), INSTALL) {
        return;
    }
    let dir = temp_data_dir(&format!("py-{client}"));
    let keel = Keel::start(&dir, &["--group-initial-rebalance-delay-ms", "0"]);
    run_python_script(&keel, "compat.py", &["--client", client], TIMEOUT);
    drop(keel);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kafka_python() {
    // snappy (python-snappy), lz4 and zstandard give kafka-python every codec.
    run_client(
        "kafka-python",
        &["kafka", "snappy", "lz4.frame", "zstandard"],
    );
}

/// kafka-python told the broker is an older Kafka uses that release's request versions, so
/// the older versions Keel advertises meet a real client too (seen on the wire):
/// 0.11 → Produce v3, Fetch v5, ListOffsets v2, Metadata v4, CreateTopics v2, DeleteTopics v1,
/// ApiVersions v1; 1.0 → Produce v5, Fetch v6, Metadata v5; 2.0 → Produce v6, Fetch v8,
/// ListOffsets v3, Metadata v6, CreateTopics v3, DeleteTopics v2, ApiVersions v2; 2.4 → Produce
/// v8, Fetch v11, ListOffsets v5, Metadata v9 (the first flexible one), CreateTopics v5,
/// DeleteTopics v4, ApiVersions v3. (Pinning 3.5 or later makes kafka-python send ListOffsets
/// v8, above what Keel advertises, regardless of ApiVersions: a client misconfiguration.)
#[test]
fn kafka_python_as_older_kafka_versions() {
    if !require(
        "kafka-python",
        missing_python_modules(&["kafka", "snappy", "lz4.frame", "zstandard"]),
        INSTALL,
    ) {
        return;
    }
    let dir = temp_data_dir("py-kafka-python-old");
    let keel = Keel::start(&dir, &["--group-initial-rebalance-delay-ms", "0"]);
    for version in ["0.11", "1.0", "2.0", "2.4"] {
        let topic = format!("compat-kafka-python-{version}");
        run_python_script(
            &keel,
            "compat.py",
            &[
                "--client",
                "kafka-python",
                "--api-version",
                version,
                "--records",
                "600",
                "--topic",
                &topic,
            ],
            TIMEOUT,
        );
    }
    drop(keel);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn aiokafka() {
    // aiokafka compresses snappy, lz4 and zstd with cramjam.
    run_client("aiokafka", &["aiokafka", "cramjam"]);
}

#[test]
fn confluent_kafka() {
    run_client("confluent-kafka", &["confluent_kafka"]);
}

/// A transactional producer in each Python client fails at once with a fatal error while Keel
/// has no transactions (tests/python/transactions_refused.py), instead of retrying
/// FindCoordinator for its whole timeout.
#[test]
fn transactional_producers_fail_fast() {
    let modules = ["kafka", "aiokafka", "confluent_kafka"];
    if !require(
        "transactional_producers_fail_fast",
        missing_python_modules(&modules),
        INSTALL,
    ) {
        return;
    }
    let dir = temp_data_dir("py-txn");
    let keel = Keel::start(&dir, &[]);
    run_python_script(&keel, "transactions_refused.py", &[], TIMEOUT);
}
