//! Issue 11, item 5: Keel answers configs and admin requests as Apache Kafka 3.9 does, checked
//! with real clients against a real `keel serve`. One test per difference a client library's
//! suite found; each fails on the Keel before the fix.
//!
//! - confluent-kafka 2.16 (librdkafka 2.16) through tests/python/kafka_answers.py: cleanup.policy
//!   as a list under IncrementalAlterConfigs APPEND/SUBTRACT, the deprecated
//!   message.format.version, every compression.type read back exactly, authorized operations
//!   of topics and the cluster, ListGroups v5's type filter, and the committed leader epoch
//!   (also after a restart), and the ACL APIs' SECURITY_DISABLED. Without python3 or confluent_kafka these print SKIPPED (or fail
//!   when `CI` is set), like tests/tests/python_clients.rs.
//! - Keel's own client (keel-net) for what librdkafka does not show its application: the codec
//!   each batch is stored in (the raw fetched batch), and Produce v8+ `record_errors`.

use bytes::Bytes;
use keel_core::record::builder::{build_batch, Record};
use keel_core::record::{split_batches, verify_batch};
use keel_net::client::{connect_tcp, ClientOptions};
use keel_net::codec::{self, RequestBody, ResponseBody};
use keel_tests::{
    missing_python_modules, require, run_python_script, temp_data_dir, Keel, PYTHON_INSTALL,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use std::path::PathBuf;
use std::time::Duration;

const INSTALL: &str = PYTHON_INSTALL;
const TIMEOUT: Duration = Duration::from_secs(120);

fn missing_confluent() -> Option<String> {
    missing_python_modules(&["confluent_kafka"])
}

/// Runs one check of kafka_answers.py against `keel`, asserting it passes.
fn run_check(keel: &Keel, check: &str) {
    run_python_script(keel, "kafka_answers.py", &["--check", check], TIMEOUT);
}

/// A broker and one check on it; `None` (after printing SKIPPED) without confluent-kafka.
fn with_checks(name: &str, checks: &[&str]) -> Option<(Keel, PathBuf)> {
    if !require(name, missing_confluent(), INSTALL) {
        return None;
    }
    let dir = temp_data_dir(name);
    let keel = Keel::start(&dir, &["--group-initial-rebalance-delay-ms", "0"]);
    for check in checks {
        run_check(&keel, check);
    }
    Some((keel, dir))
}

fn done(keel: Keel, dir: PathBuf) {
    drop(keel);
    let _ = std::fs::remove_dir_all(&dir);
}

/// cleanup.policy is a LIST in Kafka: APPEND of compact to the default gives delete,compact.
#[test]
fn cleanup_policy_is_a_list() {
    if let Some((keel, dir)) = with_checks("answers-cleanup-policy", &["cleanup_policy"]) {
        done(keel, dir);
    }
}

/// message.format.version: deprecated since 3.0 and ignored, but accepted by Kafka 3.9.
#[test]
fn deprecated_configs_are_accepted() {
    if let Some((keel, dir)) = with_checks("answers-deprecated", &["deprecated"]) {
        assert!(
            keel.log().contains("message.format.version"),
            "the deprecated config is warned about:\n{}",
            keel.log()
        );
        done(keel, dir);
    }
}

/// Every compression.type: librdkafka reads back exactly what it produced (in lz4 and plain,
/// idempotently), and each batch is stored in the topic's codec (`producer`: as sent).
#[test]
fn compression_type_recompresses_and_librdkafka_reads_it() {
    let Some((keel, dir)) = with_checks("answers-compression", &["compression"]) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut client = connect_tcp(keel.addr, ClientOptions::default())
            .await
            .expect("connect");
        for (topic, codecs) in [
            ("codec-uncompressed", vec![0]),
            ("codec-gzip", vec![1]),
            ("codec-snappy", vec![2]),
            ("codec-lz4", vec![3]),
            ("codec-zstd", vec![4]),
            // lz4 batches first, then plain ones, as the producer sent them.
            ("codec-producer", vec![3, 0]),
        ] {
            let mut seen = Vec::new();
            let mut offset = 0;
            while offset < 600 {
                let p = client
                    .fetch(topic, 0, offset, Duration::from_millis(100), 1 << 20)
                    .await
                    .expect("fetch");
                assert_eq!(p.error_code, 0, "{topic}");
                let records = p.records.unwrap_or_default();
                let (batches, _) = split_batches(&records);
                assert!(!batches.is_empty(), "{topic}: nothing at {offset}");
                for b in &batches {
                    let h = verify_batch(b).expect("a stored batch verifies");
                    if seen.last() != Some(&h.compression()) {
                        seen.push(h.compression());
                    }
                    offset = h.last_offset() + 1;
                }
            }
            assert_eq!(seen, codecs, "{topic}: stored codecs");
        }
    });
    done(keel, dir);
}

/// include_*_authorized_operations: Kafka without an authorizer grants every operation.
#[test]
fn authorized_operations_as_kafka_without_an_authorizer() {
    if let Some((keel, dir)) = with_checks("answers-authorized", &["authorized_operations"]) {
        done(keel, dir);
    }
}

/// ListGroups v5: admin clients filter by group type and see "classic".
#[test]
fn list_groups_v5_types() {
    if let Some((keel, dir)) = with_checks("answers-list-groups", &["list_groups_types"]) {
        done(keel, dir);
    }
}

/// The ACL APIs answer SECURITY_DISABLED as a Kafka without an authorizer (librdkafka failed
/// them locally before, with "not supported by broker", since Keel did not advertise them).
#[test]
fn acl_apis_answer_as_kafka_without_an_authorizer() {
    let Some((keel, dir)) = with_checks("answers-acls", &["acls"]) else {
        return;
    };
    // librdkafka drops DescribeAcls' top-level error: read it off the wire.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut client = connect_tcp(keel.addr, ClientOptions::default())
            .await
            .expect("connect");
        let r = client
            .call(
                RequestBody::DescribeAcls(codec::DescribeAclsRequest::default()),
                Duration::ZERO,
            )
            .await
            .expect("describe acls");
        let Some(ResponseBody::DescribeAcls(r)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(r.error_code, 54, "SECURITY_DISABLED: {r:?}");
        assert_eq!(
            r.error_message.as_deref(),
            Some("No Authorizer is configured on the broker")
        );
        assert!(r.resources.is_empty());
    });
    done(keel, dir);
}

/// OffsetCommit's leader epoch comes back from OffsetFetch, also after a restart.
#[test]
fn committed_leader_epoch_survives_a_restart() {
    let Some((mut keel, dir)) = with_checks("answers-leader-epoch", &["leader_epoch"]) else {
        return;
    };
    assert!(keel.stop(), "a clean shutdown");
    keel.restart();
    run_check(&keel, "leader_epoch_after_restart");
    done(keel, dir);
}

/// Produce v8+ record_errors (KIP-467): each keyless record sent to a compacted topic is named
/// by its index, with Kafka's message, and error_message summarises them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_to_a_compacted_topic_are_each_reported() {
    let dir = temp_data_dir("answers-record-errors");
    let keel = Keel::start(&dir, &[]);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", keel.bootstrap())
        .create()
        .expect("admin");
    let topic =
        NewTopic::new("compacted", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    for r in admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create_topics")
    {
        r.expect("created");
    }
    let mut client = connect_tcp(keel.addr, ClientOptions::default())
        .await
        .expect("connect");
    let record = |key: Option<&str>| Record {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: Some(b"v".to_vec()),
        headers: vec![],
        timestamp_ms: chrono::Utc::now().timestamp_millis(),
    };
    let batch: Bytes = build_batch(&[
        record(Some("a")),
        record(None),
        record(Some("b")),
        record(None),
    ]);
    let p = client
        .produce("compacted", 0, batch, 1)
        .await
        .expect("produce")
        .expect("acks=1 answers");
    assert_eq!(p.error_code, 87, "INVALID_RECORD: {p:?}");
    let each = "Compacted topic cannot accept message without key in topic partition compacted-0.";
    let errors: Vec<(i32, Option<&str>)> = p
        .record_errors
        .iter()
        .map(|e| (e.batch_index, e.batch_index_error_message.as_deref()))
        .collect();
    assert_eq!(errors, vec![(1, Some(each)), (3, Some(each))], "{p:?}");
    let message = p.error_message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with("One or more records have been rejected due to 2 record errors"),
        "{message}"
    );
    drop(keel);
    let _ = std::fs::remove_dir_all(&dir);
}
