//! Node tests for the topic configuration APIs (broker/configs.rs), CreatePartitions and
//! DescribeCluster (broker/admin.rs): every error path, validate_only, durability across a
//! reopen over the same storage, and the live effect of a change on open logs.

use crate::api::*;
use crate::error::ErrorCode;
use crate::node::*;
use crate::record::builder::{build_batch, Record};
use crate::storage::MemStorage;
use crate::storage::Storage;
use crate::testing::T0;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

crate::testing::wrap_harness!(
    /// The shared node harness, whose requests here complete their flushes before answering.
    Harness
);

impl Harness {
    fn new() -> Harness {
        Harness::with(NodeConfig::default(), MemStorage::new())
    }

    fn with(config: NodeConfig, disk: MemStorage) -> Harness {
        let storage = Arc::new(disk.clone());
        Harness(crate::testing::Harness::with_storage(config, storage, disk))
    }

    /// Stops this node (after making every write durable) and opens a new one over the
    /// same storage, as a restart does.
    fn reopen(mut self) -> Harness {
        self.node.flush_all();
        self.complete_flushes();
        Harness(self.0.restart())
    }

    /// Sends a request that is answered at once, performing any flushes it asks for.
    fn call(&mut self, request: Request) -> Response {
        let id = self.send(request);
        self.complete_flushes()
            .into_iter()
            .find(|(rid, _)| *rid == id)
            .map(|(_, r)| r)
            .expect("answered at once")
    }

    fn advance(&mut self, ms: u64) {
        let now = self.now + std::time::Duration::from_millis(ms);
        self.now = now;
        self.node.handle(now, Input::Tick);
        self.complete_flushes();
    }

    fn create(&mut self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let r = self.call(Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: -1,
                assignments: vec![],
                configs: configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                    .collect(),
            }],
            timeout_ms: 1000,
            validate_only: false,
        }));
        let Response::CreateTopics(r) = r else {
            panic!("{r:?}")
        };
        assert_eq!(r.topics[0].error_code, ErrorCode::NONE, "{r:?}");
    }

    fn describe(&mut self, resources: Vec<DescribeConfigsResource>) -> DescribeConfigsResponse {
        self.describe_with(resources, false, false)
    }

    fn describe_with(
        &mut self,
        resources: Vec<DescribeConfigsResource>,
        include_synonyms: bool,
        include_documentation: bool,
    ) -> DescribeConfigsResponse {
        match self.call(Request::DescribeConfigs(DescribeConfigsRequest {
            resources,
            include_synonyms,
            include_documentation,
        })) {
            Response::DescribeConfigs(r) => r,
            r => panic!("{r:?}"),
        }
    }

    /// The topic's configs as DescribeConfigs reports them: name → (value, source).
    fn topic_configs(&mut self, topic: &str) -> BTreeMap<String, (String, i8)> {
        let r = self.describe(vec![resource(RESOURCE_TYPE_TOPIC, topic, None)]);
        assert_eq!(r.results[0].error_code, ErrorCode::NONE, "{r:?}");
        r.results[0]
            .configs
            .iter()
            .map(|c| (c.name.clone(), (c.value.clone().unwrap(), c.config_source)))
            .collect()
    }

    fn alter(
        &mut self,
        topic: &str,
        configs: &[(&str, &str)],
        validate_only: bool,
    ) -> AlterConfigsResult {
        let r = self.call(Request::AlterConfigs(AlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: RESOURCE_TYPE_TOPIC,
                resource_name: topic.into(),
                configs: configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                    .collect(),
            }],
            validate_only,
        }));
        let Response::AlterConfigs(mut r) = r else {
            panic!("{r:?}")
        };
        assert_eq!(r.responses.len(), 1);
        r.responses.remove(0)
    }

    fn incremental(
        &mut self,
        resource_type: i8,
        name: &str,
        changes: &[(&str, i8, Option<&str>)],
        validate_only: bool,
    ) -> AlterConfigsResult {
        let r = self.call(Request::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest {
                resources: vec![IncrementalAlterConfigsResource {
                    resource_type,
                    resource_name: name.into(),
                    configs: changes
                        .iter()
                        .map(|(k, op, v)| ConfigChange {
                            name: k.to_string(),
                            operation: *op,
                            value: v.map(str::to_string),
                        })
                        .collect(),
                }],
                validate_only,
            },
        ));
        let Response::IncrementalAlterConfigs(mut r) = r else {
            panic!("{r:?}")
        };
        r.responses.remove(0)
    }

    fn create_partitions(
        &mut self,
        topics: Vec<CreatePartitionsTopic>,
        validate_only: bool,
    ) -> Vec<CreatePartitionsTopicResult> {
        match self.call(Request::CreatePartitions(CreatePartitionsRequest {
            topics,
            timeout_ms: 1000,
            validate_only,
        })) {
            Response::CreatePartitions(r) => r.results,
            r => panic!("{r:?}"),
        }
    }

    fn partition_count(&mut self, topic: &str) -> usize {
        let r = self.call(Request::Metadata(MetadataRequest {
            topics: Some(vec![TopicRef {
                name: Some(topic.into()),
                id: TopicId::ZERO,
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        }));
        let Response::Metadata(r) = r else {
            panic!("{r:?}")
        };
        r.topics[0].partitions.len()
    }

    fn produce(&mut self, topic: &str, partition: i32, records: Bytes) -> ProducePartitionResponse {
        self.produce_acks(topic, partition, 1, records)
    }

    fn produce_acks(
        &mut self,
        topic: &str,
        partition: i32,
        acks: i16,
        records: Bytes,
    ) -> ProducePartitionResponse {
        let r = self.call(Request::Produce(ProduceRequest {
            transactional_id: None,
            acks,
            timeout_ms: 30_000,
            topics: vec![ProduceTopic {
                name: topic.into(),
                partitions: vec![ProducePartition {
                    partition_index: partition,
                    records: Some(records),
                }],
            }],
        }));
        let Response::Produce(mut r) = r else {
            panic!("{r:?}")
        };
        r.topics.remove(0).partitions.remove(0)
    }

    fn log_config(&self, topic: &str, partition: i32) -> crate::log::LogConfig {
        *self
            .node
            .partition_named(topic, partition)
            .unwrap()
            .log
            .config()
    }
}

fn resource(resource_type: i8, name: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
    DescribeConfigsResource {
        resource_type,
        resource_name: name.into(),
        configuration_keys: keys.map(|k| k.iter().map(|s| s.to_string()).collect()),
    }
}

fn keyed(key: &str, value: &str, ts: i64) -> Bytes {
    build_batch(&[Record {
        key: Some(key.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: vec![],
        timestamp_ms: ts,
    }])
}

fn assert_refused(r: &AlterConfigsResult, code: ErrorCode, words: &[&str]) {
    assert_eq!(r.error_code, code, "{r:?}");
    let m = r.error_message.as_deref().unwrap_or_default();
    for w in words {
        assert!(m.contains(w), "message {m:?} lacks {w:?}");
    }
}

// ---- DescribeConfigs ----------------------------------------------------------------------

#[test]
fn describe_topic_shows_overrides_defaults_and_broker_values() {
    let config = NodeConfig {
        log: crate::log::LogConfig {
            segment_bytes: 1 << 20,
            ..Default::default()
        },
        ..NodeConfig::default()
    };
    let mut h = Harness::with(config, MemStorage::new());
    h.create("t", 1, &[("retention.ms", "1000")]);
    let all = h.topic_configs("t");
    assert_eq!(
        all["retention.ms"],
        ("1000".into(), CONFIG_SOURCE_DYNAMIC_TOPIC)
    );
    assert_eq!(
        all["cleanup.policy"],
        ("delete".into(), CONFIG_SOURCE_DEFAULT)
    );
    // Not set on the topic: the broker's log.segment.bytes, which was configured.
    assert_eq!(
        all["segment.bytes"],
        ((1 << 20).to_string(), CONFIG_SOURCE_STATIC_BROKER)
    );
    assert_eq!(
        all["max.message.bytes"],
        ("1048588".into(), CONFIG_SOURCE_DEFAULT)
    );
    assert!(all.contains_key("min.insync.replicas"));

    // A key list: only those keys, an unknown key is simply left out (as Kafka does).
    let r = h.describe_with(
        vec![resource(
            RESOURCE_TYPE_TOPIC,
            "t",
            Some(&["retention.ms", "no.such.config"]),
        )],
        true,
        true,
    );
    let c = &r.results[0].configs;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].name, "retention.ms");
    assert_eq!(c[0].config_type, CONFIG_TYPE_LONG);
    assert!(!c[0].read_only);
    assert!(c[0].documentation.as_deref().is_some_and(|d| !d.is_empty()));
    let synonyms: Vec<(&str, &str, i8)> = c[0]
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.value.as_deref().unwrap(), s.source))
        .collect();
    assert_eq!(
        synonyms,
        [
            ("retention.ms", "1000", CONFIG_SOURCE_DYNAMIC_TOPIC),
            ("log.retention.ms", "604800000", CONFIG_SOURCE_DEFAULT)
        ]
    );
    // Without the flags: no synonyms, no documentation.
    let r = h.describe(vec![resource(
        RESOURCE_TYPE_TOPIC,
        "t",
        Some(&["retention.ms"]),
    )]);
    assert!(r.results[0].configs[0].synonyms.is_empty());
    assert_eq!(r.results[0].configs[0].documentation, None);
}

#[test]
fn describe_errors_are_per_resource() {
    let mut h = Harness::new();
    h.create("t", 1, &[]);
    let r = h.describe(vec![
        resource(RESOURCE_TYPE_TOPIC, "missing", None),
        resource(RESOURCE_TYPE_TOPIC, "t", Some(&["cleanup.policy"])),
        resource(RESOURCE_TYPE_BROKER, "2", None),
        resource(RESOURCE_TYPE_BROKER, "one", None),
        resource(8, "1", None),
        resource(RESOURCE_TYPE_BROKER, "", None),
    ]);
    let codes: Vec<ErrorCode> = r.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode::NONE,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::NONE,
        ]
    );
    assert_eq!(r.results[1].configs.len(), 1);
    assert!(r.results[2]
        .error_message
        .as_deref()
        .unwrap()
        .contains("expected 1"));
    assert!(r.results[3]
        .error_message
        .as_deref()
        .unwrap()
        .contains("integer"));
    // "" is the cluster-wide dynamic default: Keel has none.
    assert!(r.results[5].configs.is_empty());
    assert_eq!(r.results[0].resource_name, "missing");
    assert_eq!(r.results[4].resource_type, 8);
}

#[test]
fn describe_broker_reports_real_values_read_only_with_sources() {
    let config = NodeConfig {
        node_id: crate::ids::NodeId(3),
        default_num_partitions: 4,
        ..NodeConfig::default()
    };
    let mut h = Harness::with(config, MemStorage::new());
    let r = h.describe_with(vec![resource(RESOURCE_TYPE_BROKER, "3", None)], true, false);
    assert_eq!(r.results[0].error_code, ErrorCode::NONE);
    let by_name: BTreeMap<&str, &DescribedConfig> = r.results[0]
        .configs
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let num = by_name["num.partitions"];
    assert_eq!(num.value.as_deref(), Some("4"));
    assert_eq!(num.config_source, CONFIG_SOURCE_STATIC_BROKER);
    assert!(num.read_only);
    assert_eq!(num.synonyms.len(), 1);
    assert_eq!(by_name["broker.id"].value.as_deref(), Some("3"));
    assert_eq!(by_name["node.id"].value.as_deref(), Some("3"));
    let auto = by_name["auto.create.topics.enable"];
    assert_eq!(auto.value.as_deref(), Some("true"));
    assert_eq!(auto.config_source, CONFIG_SOURCE_DEFAULT);
    assert_eq!(auto.config_type, CONFIG_TYPE_BOOLEAN);
    for name in [
        "log.segment.bytes",
        "message.max.bytes",
        "log.cleaner.backoff.ms",
        "log.retention.ms",
        "group.initial.rebalance.delay.ms",
        "offsets.topic.num.partitions",
    ] {
        assert!(by_name.contains_key(name), "{name} missing");
    }
}

// ---- AlterConfigs ---------------------------------------------------------------------------

#[test]
fn alter_configs_replaces_the_whole_set_durably() {
    let mut h = Harness::new();
    h.create(
        "t",
        2,
        &[("retention.ms", "1000"), ("segment.bytes", "2000")],
    );
    let r = h.alter(
        "t",
        &[("retention.ms", "5000"), ("cleanup.policy", "delete")],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert_eq!(
        (r.resource_type, r.resource_name.as_str()),
        (RESOURCE_TYPE_TOPIC, "t")
    );
    let c = h.topic_configs("t");
    assert_eq!(
        c["retention.ms"],
        ("5000".into(), CONFIG_SOURCE_DYNAMIC_TOPIC)
    );
    assert_eq!(
        c["cleanup.policy"],
        ("delete".into(), CONFIG_SOURCE_DYNAMIC_TOPIC)
    );
    // Not named: back to the default, on the open logs too.
    assert_eq!(
        c["segment.bytes"],
        ("1073741824".into(), CONFIG_SOURCE_DEFAULT)
    );
    assert_eq!(h.log_config("t", 1).segment_bytes, 1 << 30);
    let mut h = h.reopen();
    let c = h.topic_configs("t");
    assert_eq!(
        c["retention.ms"],
        ("5000".into(), CONFIG_SOURCE_DYNAMIC_TOPIC)
    );
    assert_eq!(c["segment.bytes"].1, CONFIG_SOURCE_DEFAULT);
}

#[test]
fn an_invalid_value_is_refused_with_what_is_allowed_and_changes_nothing() {
    let mut h = Harness::new();
    h.create("t", 1, &[("retention.ms", "1000")]);
    let before = h.topic_configs("t");
    let r = h.alter(
        "t",
        &[("segment.bytes", "1000"), ("retention.ms", "forever")],
        false,
    );
    assert_refused(
        &r,
        ErrorCode::INVALID_CONFIG,
        &["retention.ms", "forever", "integer in [-1,"],
    );
    let r = h.alter("t", &[("cleanup.policy", "compact,archive")], false);
    assert_refused(
        &r,
        ErrorCode::INVALID_CONFIG,
        &["cleanup.policy", "list of compact, delete"],
    );
    let r = h.alter("t", &[("no.such.config", "1")], false);
    assert_refused(
        &r,
        ErrorCode::INVALID_CONFIG,
        &["Unknown topic config", "no.such.config"],
    );
    let r = h.alter("t", &[("retention.ms", "1"), ("retention.ms", "2")], false);
    assert_refused(&r, ErrorCode::INVALID_REQUEST, &["duplicate"]);
    let r = h.alter("missing", &[("retention.ms", "1")], false);
    assert_refused(&r, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, &["missing"]);
    assert_eq!(h.topic_configs("t"), before);
}

#[test]
fn validate_only_changes_nothing() {
    let mut h = Harness::new();
    h.create("t", 1, &[("retention.ms", "1000")]);
    let before = h.topic_configs("t");
    let r = h.alter("t", &[("segment.bytes", "5000")], true);
    assert_eq!(r.error_code, ErrorCode::NONE);
    let r = h.alter("t", &[("segment.bytes", "1")], true);
    assert_eq!(
        r.error_code,
        ErrorCode::INVALID_CONFIG,
        "validation still runs"
    );
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("retention.ms", CONFIG_OP_DELETE, None)],
        true,
    );
    assert_eq!(r.error_code, ErrorCode::NONE);
    assert_eq!(h.topic_configs("t"), before);
    assert_eq!(h.log_config("t", 0).segment_bytes, 1 << 30);
    let h = h.reopen();
    assert_eq!(h.node.metadata.topics["t"].configs["retention.ms"], "1000");
}

#[test]
fn duplicate_resources_are_refused() {
    let mut h = Harness::new();
    h.create("t", 1, &[]);
    let one = AlterConfigsResource {
        resource_type: RESOURCE_TYPE_TOPIC,
        resource_name: "t".into(),
        configs: vec![("retention.ms".into(), Some("1".into()))],
    };
    let r = h.call(Request::AlterConfigs(AlterConfigsRequest {
        resources: vec![one.clone(), one],
        validate_only: false,
    }));
    let Response::AlterConfigs(r) = r else {
        panic!()
    };
    assert!(r
        .responses
        .iter()
        .all(|r| r.error_code == ErrorCode::INVALID_REQUEST));
    assert_eq!(
        h.topic_configs("t")["retention.ms"].1,
        CONFIG_SOURCE_DEFAULT
    );
}

// ---- IncrementalAlterConfigs ----------------------------------------------------------------

#[test]
fn incremental_set_delete_append_subtract() {
    let mut h = Harness::new();
    h.create(
        "t",
        1,
        &[("retention.ms", "1000"), ("segment.bytes", "4096")],
    );
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[
            ("retention.bytes", CONFIG_OP_SET, Some("123456")),
            ("segment.bytes", CONFIG_OP_DELETE, None),
        ],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    let c = h.topic_configs("t");
    assert_eq!(c["retention.ms"].0, "1000", "untouched keys stay");
    assert_eq!(c["retention.bytes"].0, "123456");
    assert_eq!(c["segment.bytes"].1, CONFIG_SOURCE_DEFAULT);

    // cleanup.policy is a list (Kafka's ConfigDef LIST): APPEND of compact to the default
    // gives delete,compact, and both policies then apply.
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("cleanup.policy", CONFIG_OP_APPEND, Some("compact"))],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert_eq!(h.topic_configs("t")["cleanup.policy"].0, "delete,compact");
    let c = h.log_config("t", 0);
    assert!(c.compacted && c.cleanup_delete, "{c:?}");
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("cleanup.policy", CONFIG_OP_APPEND, Some("delete"))],
        false,
    );
    assert_eq!(
        r.error_code,
        ErrorCode::NONE,
        "appending a present item changes nothing"
    );
    assert_eq!(h.topic_configs("t")["cleanup.policy"].0, "delete,compact");
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("cleanup.policy", CONFIG_OP_SUBTRACT, Some("delete"))],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert_eq!(h.topic_configs("t")["cleanup.policy"].0, "compact");
    let c = h.log_config("t", 0);
    assert!(c.compacted && !c.cleanup_delete, "{c:?}");
    // Kafka 3.9 takes the empty list too: neither compaction nor retention.
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("cleanup.policy", CONFIG_OP_SUBTRACT, Some("compact"))],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert_eq!(h.topic_configs("t")["cleanup.policy"].0, "");
    let c = h.log_config("t", 0);
    assert!(!c.compacted && !c.cleanup_delete, "{c:?}");
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("cleanup.policy", CONFIG_OP_APPEND, Some("compact,archive"))],
        false,
    );
    assert_refused(
        &r,
        ErrorCode::INVALID_CONFIG,
        &["cleanup.policy", "archive"],
    );
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("cleanup.policy", CONFIG_OP_DELETE, None)],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert_eq!(
        h.topic_configs("t")["cleanup.policy"],
        ("delete".into(), CONFIG_SOURCE_DEFAULT)
    );

    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("retention.ms", CONFIG_OP_APPEND, Some("5"))],
        false,
    );
    assert_refused(
        &r,
        ErrorCode::INVALID_CONFIG,
        &["append is not allowed", "retention.ms"],
    );
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("retention.ms", CONFIG_OP_SUBTRACT, Some("5"))],
        false,
    );
    assert_refused(&r, ErrorCode::INVALID_CONFIG, &["subtract is not allowed"]);
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("retention.ms", 9, Some("5"))],
        false,
    );
    assert_refused(
        &r,
        ErrorCode::INVALID_REQUEST,
        &["Unknown config operation 9"],
    );
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("retention.ms", CONFIG_OP_SET, Some("-5"))],
        false,
    );
    assert_refused(&r, ErrorCode::INVALID_CONFIG, &["retention.ms", "-5"]);
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("bogus", CONFIG_OP_DELETE, None)],
        false,
    );
    assert_refused(
        &r,
        ErrorCode::INVALID_CONFIG,
        &["Unknown topic config name: bogus"],
    );
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "nope",
        &[("retention.ms", CONFIG_OP_SET, Some("5"))],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    // A refused request changed nothing, even its valid parts.
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[
            ("retention.ms", CONFIG_OP_SET, Some("7")),
            ("segment.bytes", CONFIG_OP_SET, Some("1")),
        ],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::INVALID_CONFIG);
    let mut h = h.reopen();
    let c = h.topic_configs("t");
    assert_eq!(c["retention.ms"].0, "1000");
    assert_eq!(c["retention.bytes"].0, "123456");
}

#[test]
fn broker_configs_cannot_change_at_runtime() {
    let mut h = Harness::new();
    for name in ["1", ""] {
        let r = h.incremental(
            RESOURCE_TYPE_BROKER,
            name,
            &[("log.segment.bytes", CONFIG_OP_SET, Some("1000"))],
            false,
        );
        assert_refused(
            &r,
            ErrorCode::INVALID_CONFIG,
            &["log.segment.bytes", "dynamically", "restart"],
        );
    }
    let r = h.incremental(
        RESOURCE_TYPE_BROKER,
        "9",
        &[("log.segment.bytes", CONFIG_OP_SET, Some("1000"))],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::INVALID_REQUEST);
    let r = h.call(Request::AlterConfigs(AlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: RESOURCE_TYPE_BROKER,
            resource_name: "1".into(),
            configs: vec![("num.partitions".into(), Some("3".into()))],
        }],
        validate_only: true,
    }));
    let Response::AlterConfigs(r) = r else {
        panic!()
    };
    assert_refused(
        &r.responses[0],
        ErrorCode::INVALID_CONFIG,
        &["num.partitions"],
    );
    assert_eq!(h.node.config().default_num_partitions, 1);
}

// ---- live effect on open logs ---------------------------------------------------------------

#[test]
fn changes_take_effect_on_open_logs() {
    let mut h = Harness::new();
    h.create("t", 2, &[]);
    let ts = T0 as i64;
    assert_eq!(
        h.produce("t", 0, keyed("k", &"x".repeat(500), ts))
            .error_code,
        ErrorCode::NONE
    );
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[
            ("max.message.bytes", CONFIG_OP_SET, Some("200")),
            ("retention.ms", CONFIG_OP_SET, Some("60000")),
            ("retention.bytes", CONFIG_OP_SET, Some("100000")),
            ("segment.ms", CONFIG_OP_SET, Some("30000")),
            ("segment.bytes", CONFIG_OP_SET, Some("1000")),
            (
                "message.timestamp.type",
                CONFIG_OP_SET,
                Some("LogAppendTime"),
            ),
        ],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    for p in 0..2 {
        let c = h.log_config("t", p);
        assert_eq!(c.segment_bytes, 1000);
        assert_eq!(
            (c.retention_ms, c.retention_bytes, c.segment_ms),
            (60_000, 100_000, 30_000)
        );
        assert_eq!(
            c.message_timestamp_type,
            crate::log::TimestampType::LogAppendTime
        );
    }
    let p = h.produce("t", 0, keyed("k", &"x".repeat(500), ts));
    assert_eq!(p.error_code, ErrorCode::MESSAGE_TOO_LARGE, "{p:?}");
    let p = h.produce("t", 1, keyed("k", "small", ts));
    assert_eq!(p.error_code, ErrorCode::NONE);
    assert!(
        p.log_append_time_ms >= T0 as i64,
        "LogAppendTime applies: {p:?}"
    );
    // And after a restart.
    let h = h.reopen();
    assert_eq!(h.log_config("t", 1).segment_bytes, 1000);
    assert_eq!(h.log_config("t", 1).retention_ms, 60_000);
    assert_eq!(
        h.node
            .partition_named("t", 0)
            .unwrap()
            .limits
            .max_message_bytes,
        200
    );
}

/// Compaction leaves offset gaps in sealed segments, which reads and recovery of a log never
/// compacted treat as corruption. A compacted topic may still go back to delete, as in Kafka
/// (by AlterConfigs, or IncrementalAlterConfigs deleting cleanup.policy): the topic remembers
/// it was compacted, so its thinned data stays readable, also across a restart that rescans
/// every segment, while the cleaner stops and keyless records are taken again.
#[test]
fn compacted_topics_can_turn_compaction_off_and_keep_their_gaps() {
    let config = NodeConfig {
        log_cleaner_interval_ms: 1_000,
        ..NodeConfig::default()
    };
    let mut h = Harness::with(config, MemStorage::new());
    h.create(
        "c",
        1,
        &[("cleanup.policy", "compact"), ("segment.bytes", "200")],
    );
    let ts = T0 as i64;
    for i in 0..20 {
        let key = if i % 2 == 0 { "even" } else { "odd" };
        let p = h.produce("c", 0, keyed(key, &format!("v{i}"), ts));
        assert_eq!(p.base_offset, i);
    }
    for _ in 0..20 {
        h.advance(1_000);
    }
    let offsets = |h: &Harness| -> Vec<i64> {
        let p = &h.node.partition_named("c", 0).unwrap();
        let mut out = Vec::new();
        let mut next = p.log.log_start_offset();
        while next < p.log.log_end_offset() {
            let read = p.log.read(next, 1 << 20, p.log.log_end_offset()).unwrap();
            let (batches, _) = crate::record::split_batches(&read);
            assert!(!batches.is_empty());
            for b in &batches {
                let header = crate::record::BatchHeader::new(b).unwrap();
                out.push(header.base_offset());
                next = header.last_offset() + 1;
            }
        }
        out
    };
    let before = offsets(&h);
    assert!(before.len() < 20, "compaction ran: {before:?}");

    // validate_only changes nothing; then AlterConfigs without cleanup.policy resets it to
    // Kafka's default, delete.
    let r = h.alter("c", &[("segment.bytes", "300")], true);
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert!(h.log_config("c", 0).compacted);
    let r = h.alter("c", &[("segment.bytes", "300")], false);
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    let config = h.log_config("c", 0);
    assert!(!config.compacted && config.cleanup_delete && config.gaps_allowed);
    assert_eq!(
        offsets(&h),
        before,
        "the thinned data is still read as it is"
    );

    // A delete topic takes keyless records, and the cleaner leaves it alone.
    let keyless = build_batch(&[Record {
        key: None,
        value: Some(b"no key".to_vec()),
        headers: vec![],
        timestamp_ms: ts,
    }]);
    let p = h.produce("c", 0, keyless);
    assert_eq!(p.error_code, ErrorCode::NONE, "{p:?}");
    for i in 0..10 {
        h.produce("c", 0, keyed("even", &format!("w{i}"), ts));
    }
    let written = offsets(&h);
    for _ in 0..20 {
        h.advance(1_000);
    }
    assert_eq!(
        offsets(&h),
        written,
        "no compaction under cleanup.policy=delete"
    );

    let end = h.node.partition_named("c", 0).unwrap().log.log_end_offset();
    // Make recovery scan every segment, as after a crash: drop the index files.
    for f in h.disk.list("c-0").unwrap() {
        if f.ends_with(".index") || f.ends_with(".timeindex") {
            h.disk.remove(&format!("c-0/{f}")).unwrap();
        }
    }
    let mut h = h.reopen();
    let config = h.log_config("c", 0);
    assert!(!config.compacted && config.gaps_allowed);
    assert_eq!(config.segment_bytes, 300);
    assert_eq!(
        h.node.partition_named("c", 0).unwrap().log.log_end_offset(),
        end
    );
    assert_eq!(
        offsets(&h),
        written,
        "recovery kept every batch past the gaps"
    );

    // And back to compact, by IncrementalAlterConfigs.
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "c",
        &[("cleanup.policy", CONFIG_OP_SET, Some("compact"))],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert!(h.log_config("c", 0).compacted);
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "c",
        &[("cleanup.policy", CONFIG_OP_DELETE, None)],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert!(!h.log_config("c", 0).compacted);
    assert!(h.log_config("c", 0).gaps_allowed);
}

// ---- CreatePartitions -----------------------------------------------------------------------

fn grow(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
    CreatePartitionsTopic {
        name: name.into(),
        count,
        assignments,
    }
}

#[test]
fn create_partitions_adds_durable_logs_at_once() {
    let mut h = Harness::new();
    h.create("t", 2, &[("segment.bytes", "5000")]);
    let r = h.create_partitions(vec![grow("t", 3, None)], true);
    assert_eq!(r[0].error_code, ErrorCode::NONE);
    assert_eq!(h.partition_count("t"), 2, "validate_only adds nothing");
    let r = h.create_partitions(
        vec![grow("t", 5, Some(vec![vec![1], vec![1], vec![1]]))],
        false,
    );
    assert_eq!(
        (r[0].name.as_str(), r[0].error_code),
        ("t", ErrorCode::NONE),
        "{r:?}"
    );
    assert_eq!(h.partition_count("t"), 5);
    // The new partitions take writes at once, with the topic's configs.
    let p = h.produce("t", 4, keyed("k", "v", T0 as i64));
    assert_eq!((p.error_code, p.base_offset), (ErrorCode::NONE, 0));
    assert_eq!(h.log_config("t", 4).segment_bytes, 5000);
    let mut h = h.reopen();
    assert_eq!(h.partition_count("t"), 5);
    assert_eq!(
        h.node.partition_named("t", 4).unwrap().log.log_end_offset(),
        1
    );
}

#[test]
fn create_partitions_refuses_like_kafka() {
    let mut h = Harness::new();
    h.create("t", 3, &[]);
    h.create("u", 1, &[]);
    // Make the offsets topic exist.
    let _ = h.call(Request::FindCoordinator(FindCoordinatorRequest {
        key_type: 0,
        keys: vec!["g".into()],
    }));
    let r = h.create_partitions(
        vec![
            grow("t", 3, None),
            grow("t", 2, None),
            grow("missing", 4, None),
            grow("u", 3, Some(vec![vec![1]])),
            grow("u", 2, Some(vec![vec![1, 2]])),
            grow("__consumer_offsets", 100, None),
        ],
        false,
    );
    let codes: Vec<(&str, ErrorCode)> = r.iter().map(|r| (r.name.as_str(), r.error_code)).collect();
    assert_eq!(
        codes,
        [
            ("t", ErrorCode::INVALID_REQUEST),
            ("t", ErrorCode::INVALID_REQUEST),
            ("missing", ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            ("u", ErrorCode::INVALID_REQUEST),
            ("u", ErrorCode::INVALID_REQUEST),
            ("__consumer_offsets", ErrorCode::INVALID_REQUEST),
        ],
        "a topic named twice is refused both times"
    );
    let one = |h: &mut Harness, t| h.create_partitions(vec![t], false).remove(0);
    let r = one(&mut h, grow("t", 3, None));
    assert_eq!(r.error_code, ErrorCode::INVALID_PARTITIONS);
    assert_eq!(
        r.error_message.as_deref(),
        Some("Topic already has 3 partitions.")
    );
    let r = one(&mut h, grow("t", 2, None));
    assert_eq!(r.error_code, ErrorCode::INVALID_PARTITIONS);
    assert!(r
        .error_message
        .unwrap()
        .contains("would not be an increase"));
    let r = one(&mut h, grow("u", 3, Some(vec![vec![1]])));
    assert_eq!(r.error_code, ErrorCode::INVALID_REPLICA_ASSIGNMENT);
    assert!(r
        .error_message
        .unwrap()
        .contains("add 2 additional partition(s)"));
    let r = one(&mut h, grow("u", 2, Some(vec![vec![1, 2]])));
    assert_eq!(r.error_code, ErrorCode::INVALID_REPLICA_ASSIGNMENT);
    let r = one(&mut h, grow("u", 2, Some(vec![vec![7]])));
    assert_eq!(r.error_code, ErrorCode::INVALID_REPLICA_ASSIGNMENT);
    assert!(r.error_message.unwrap().contains("broker 1"));
    let r = one(&mut h, grow("__consumer_offsets", 100, None));
    assert_eq!(r.error_code, ErrorCode::INVALID_REQUEST);
    assert!(r.error_message.unwrap().contains("internal topic"));
    let r = one(&mut h, grow("u", 100_001, None));
    assert_eq!(r.error_code, ErrorCode::INVALID_PARTITIONS);
    assert_eq!(h.partition_count("t"), 3);
    assert_eq!(h.partition_count("u"), 1);
}

// ---- DescribeCluster ------------------------------------------------------------------------

#[test]
fn describe_cluster_lists_this_broker() {
    let config = NodeConfig {
        node_id: crate::ids::NodeId(5),
        advertised_host: "keel.example".into(),
        advertised_port: 19092,
        cluster_id: "c-1".into(),
        ..NodeConfig::default()
    };
    let mut h = Harness::with(config, MemStorage::new());
    let call =
        |h: &mut Harness, r: DescribeClusterRequest| match h.call(Request::DescribeCluster(r)) {
            Response::DescribeCluster(r) => r,
            r => panic!("{r:?}"),
        };
    let r = call(&mut h, DescribeClusterRequest::default());
    assert_eq!(r.error_code, ErrorCode::NONE);
    assert_eq!(
        (r.cluster_id.as_str(), r.controller_id, r.endpoint_type),
        ("c-1", 5, ENDPOINT_TYPE_BROKERS)
    );
    assert_eq!(
        r.brokers,
        [DescribeClusterBroker {
            broker_id: 5,
            host: "keel.example".into(),
            port: 19092,
            rack: None,
            is_fenced: false,
        }]
    );
    assert_eq!(
        r.cluster_authorized_operations,
        AUTHORIZED_OPERATIONS_OMITTED
    );
    let r = call(
        &mut h,
        DescribeClusterRequest {
            include_cluster_authorized_operations: true,
            include_fenced_brokers: true,
            ..Default::default()
        },
    );
    assert_eq!(r.brokers.len(), 1);
    // DESCRIBE (8) and ALTER_CONFIGS (11) among them.
    assert_ne!(r.cluster_authorized_operations & (1 << 8), 0);
    assert_ne!(r.cluster_authorized_operations & (1 << 11), 0);
    let r = call(
        &mut h,
        DescribeClusterRequest {
            endpoint_type: ENDPOINT_TYPE_CONTROLLERS,
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, ErrorCode(114));
    assert!(r.brokers.is_empty());
    let r = call(
        &mut h,
        DescribeClusterRequest {
            endpoint_type: 9,
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, ErrorCode(115));
}

#[test]
fn delete_topics_can_become_compacted_live() {
    let mut h = Harness::new();
    h.create("t", 1, &[]);
    assert!(!h.log_config("t", 0).compacted);
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("cleanup.policy", CONFIG_OP_SET, Some("compact"))],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert!(h.log_config("t", 0).compacted);
    let h = h.reopen();
    assert!(h.log_config("t", 0).compacted);
}

/// A single node is each partition's only in-sync replica, so a topic asking for more gets
/// NOT_ENOUGH_REPLICAS on acks=all writes, before anything is appended, as Kafka answers
/// when its ISR shrinks below min.insync.replicas; acks=1 writes are not affected, and the
/// limit follows the config as it changes and across a restart.
#[test]
fn acks_all_needs_min_insync_replicas() {
    let mut h = Harness::new();
    h.create("t", 1, &[("min.insync.replicas", "2")]);
    let ts = T0 as i64;
    let p = h.produce_acks("t", 0, -1, keyed("k", "refused", ts));
    assert_eq!(p.error_code, ErrorCode::NOT_ENOUGH_REPLICAS, "{p:?}");
    let message = p.error_message.clone().unwrap_or_default();
    assert!(message.contains("min.isr requirement of 2"), "{message}");
    assert_eq!(
        h.node.partition_named("t", 0).unwrap().log.log_end_offset(),
        0
    );
    let p = h.produce_acks("t", 0, 1, keyed("k", "leader only", ts));
    assert_eq!((p.error_code, p.base_offset), (ErrorCode::NONE, 0), "{p:?}");

    let mut h = h.reopen();
    let p = h.produce_acks("t", 0, -1, keyed("k", "refused", ts));
    assert_eq!(p.error_code, ErrorCode::NOT_ENOUGH_REPLICAS, "{p:?}");
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "t",
        &[("min.insync.replicas", CONFIG_OP_DELETE, None)],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    let p = h.produce_acks("t", 0, -1, keyed("k", "taken", ts));
    assert_eq!((p.error_code, p.base_offset), (ErrorCode::NONE, 1), "{p:?}");
}

// ---- DescribeLogDirs ------------------------------------------------------------------------

/// One log directory, named as configured, with every partition (or those asked for) and
/// the bytes its segments hold; partitions the node does not host are left out.
#[test]
fn describe_log_dirs_reports_partition_sizes() {
    let mut h = Harness::with(
        NodeConfig {
            log_dir: "/data/keel".into(),
            ..NodeConfig::default()
        },
        MemStorage::new(),
    );
    h.create("a", 2, &[]);
    h.create("b", 1, &[]);
    let ts = T0 as i64;
    let records = keyed("k", "some value", ts);
    let p = h.produce("a", 1, records.clone());
    assert_eq!(p.error_code, ErrorCode::NONE);
    let p = h.produce("a", 1, records.clone());
    assert_eq!(p.error_code, ErrorCode::NONE);
    let mut describe = |topics: Option<Vec<DescribableLogDirTopic>>| {
        let Response::DescribeLogDirs(r) =
            h.call(Request::DescribeLogDirs(DescribeLogDirsRequest { topics }))
        else {
            panic!()
        };
        assert_eq!(r.error_code, ErrorCode::NONE);
        assert_eq!(r.results.len(), 1);
        let dir = r.results.into_iter().next().unwrap();
        assert_eq!(
            (dir.error_code, dir.log_dir.as_str()),
            (ErrorCode::NONE, "/data/keel")
        );
        assert_eq!((dir.total_bytes, dir.usable_bytes), (-1, -1));
        dir.topics
            .into_iter()
            .map(|t| {
                let sizes: Vec<(i32, i64)> = t
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.partition_size))
                    .collect();
                assert!(t
                    .partitions
                    .iter()
                    .all(|p| p.offset_lag == 0 && !p.is_future_key));
                (t.name, sizes)
            })
            .collect::<Vec<_>>()
    };
    let batch = records.len() as i64;
    assert_eq!(
        describe(None),
        vec![
            ("a".to_string(), vec![(0, 0), (1, 2 * batch)]),
            ("b".to_string(), vec![(0, 0)]),
        ]
    );
    let asked = vec![
        DescribableLogDirTopic {
            topic: "a".into(),
            partitions: vec![1, 7],
        },
        DescribableLogDirTopic {
            topic: "nope".into(),
            partitions: vec![0],
        },
    ];
    assert_eq!(
        describe(Some(asked)),
        vec![("a".to_string(), vec![(1, 2 * batch)])]
    );
    assert_eq!(describe(Some(vec![])), vec![]);
}

// ---- Kafka 3.9's config table ---------------------------------------------------------------

/// cleanup.policy=delete,compact: the cleaner compacts and retention deletes, on one log.
#[test]
fn delete_and_compact_both_apply() {
    let config = NodeConfig {
        log_cleaner_interval_ms: 1_000,
        log_retention_check_interval_ms: 1_000,
        ..NodeConfig::default()
    };
    let mut h = Harness::with(config, MemStorage::new());
    h.create(
        "dc",
        1,
        &[
            ("cleanup.policy", "delete, compact"),
            ("segment.bytes", "200"),
            ("retention.ms", "60000"),
        ],
    );
    assert_eq!(h.topic_configs("dc")["cleanup.policy"].0, "delete,compact");
    let c = h.log_config("dc", 0);
    assert!(c.compacted && c.cleanup_delete && c.gaps_allowed, "{c:?}");
    let ts = T0 as i64;
    for i in 0..20 {
        let key = if i % 2 == 0 { "even" } else { "odd" };
        assert_eq!(
            h.produce("dc", 0, keyed(key, &format!("v{i}"), ts))
                .base_offset,
            i
        );
    }
    let keyless = build_batch(&[Record {
        key: None,
        value: Some(b"no key".to_vec()),
        headers: vec![],
        timestamp_ms: ts,
    }]);
    assert_eq!(
        h.produce("dc", 0, keyless).error_code,
        ErrorCode::INVALID_RECORD
    );
    let size = |h: &Harness| {
        let p = &h.node.partition_named("dc", 0).unwrap();
        (p.log.log_start_offset(), p.log.size_bytes())
    };
    let (start0, size0) = size(&h);
    for _ in 0..10 {
        h.advance(1_000);
    }
    let (start1, size1) = size(&h);
    assert_eq!(start1, start0, "nothing is past retention.ms yet");
    assert!(
        size1 < size0,
        "compaction thinned the log: {size0} -> {size1}"
    );
    for _ in 0..70 {
        h.advance(1_000);
    }
    let (start2, _) = size(&h);
    assert!(
        start2 > start1,
        "retention.ms deleted old segments: {start1} -> {start2}"
    );
}

/// Kafka 3.9 accepts message.format.version (deprecated since 3.0, ignored) on CreateTopics,
/// AlterConfigs and IncrementalAlterConfigs, and DescribeConfigs lists it with its default;
/// its other 3.8/3.9 topic configs are known too.
#[test]
fn deprecated_and_recent_kafka_configs_are_accepted() {
    let mut h = Harness::new();
    h.create("old", 1, &[("message.format.version", "2.8")]);
    let c = h.topic_configs("old");
    assert_eq!(
        c["message.format.version"],
        ("2.8".into(), CONFIG_SOURCE_DYNAMIC_TOPIC)
    );
    h.create("new", 1, &[]);
    assert_eq!(
        h.topic_configs("new")["message.format.version"],
        ("3.0-IV1".into(), CONFIG_SOURCE_DEFAULT)
    );
    let r = h.alter("new", &[("message.format.version", "0.10.2")], false);
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "new",
        &[
            ("message.format.version", CONFIG_OP_SET, Some("3.0")),
            (
                "message.downconversion.enable",
                CONFIG_OP_SET,
                Some("false"),
            ),
            ("remote.log.copy.disable", CONFIG_OP_SET, Some("true")),
            ("compression.zstd.level", CONFIG_OP_SET, Some("9")),
        ],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert_eq!(h.topic_configs("new")["message.format.version"].0, "3.0");
    let r = h.alter("new", &[("message.format.version", "latest")], false);
    assert_refused(
        &r,
        ErrorCode::INVALID_CONFIG,
        &["message.format.version", "not a valid version"],
    );
    // Stored like any other, so it survives a restart.
    let mut h = h.reopen();
    assert_eq!(h.topic_configs("new")["compression.zstd.level"].0, "9");
}

fn produce_records(records: &[Record]) -> Bytes {
    build_batch(records)
}

fn record(key: Option<&str>, value: &str, ts: i64) -> Record {
    Record {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: vec![("h".into(), Some(b"x".to_vec()))],
        timestamp_ms: ts,
    }
}

/// KIP-467: a batch refused for its records names each bad one by index, with Kafka's
/// message, and the partition's error_message summarises them (LogValidator.validateKey,
/// processRecordErrors).
#[test]
fn keyless_records_on_a_compacted_topic_are_each_named() {
    let mut h = Harness::new();
    h.create("c", 1, &[("cleanup.policy", "compact")]);
    let ts = T0 as i64;
    let batch = produce_records(&[
        record(None, "a", ts),
        record(Some("k"), "b", ts),
        record(None, "c", ts),
        record(None, "d", ts),
        record(None, "e", ts),
    ]);
    let p = h.produce("c", 0, batch);
    assert_eq!(p.error_code, ErrorCode::INVALID_RECORD, "{p:?}");
    let each = "Compacted topic cannot accept message without key in topic partition c-0.";
    assert_eq!(
        p.record_errors,
        [0, 2, 3, 4]
            .iter()
            .map(|&i| RecordError {
                batch_index: i,
                message: Some(each.to_string()),
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(
        p.error_message.as_deref(),
        Some(
            "One or more records have been rejected due to 4 record errors in total, and only \
             showing the first three errors at most: [RecordError(batchIndex=0, message='Compacted \
             topic cannot accept message without key in topic partition c-0.'), \
             RecordError(batchIndex=2, message='Compacted topic cannot accept message without \
             key in topic partition c-0.'), RecordError(batchIndex=3, message='Compacted topic \
             cannot accept message without key in topic partition c-0.')]"
        )
    );
    assert_eq!(
        h.node.partition_named("c", 0).unwrap().log.log_end_offset(),
        0,
        "nothing of the batch was appended"
    );
    let ok = h.produce("c", 0, produce_records(&[record(Some("k"), "v", ts)]));
    assert_eq!(
        (ok.error_code, ok.record_errors.len()),
        (ErrorCode::NONE, 0)
    );
}

/// The stored batches of a partition, as a fetch returns them.
fn stored_batches(h: &Harness, topic: &str) -> Vec<Bytes> {
    let p = &h.node.partition_named(topic, 0).unwrap();
    let read = p
        .log
        .read(p.log.log_start_offset(), 1 << 24, p.log.log_end_offset())
        .unwrap();
    crate::record::split_batches(&read).0
}

/// compression.type names the codec batches are stored in (Kafka's LogValidator recompresses
/// on append): the stored batch has the topic's codec, a valid CRC and the producer's records,
/// base sequence and timestamps; `producer` and a batch already in the codec are stored as
/// sent, byte for byte.
#[test]
fn compression_type_recompresses_on_append() {
    use crate::compression::{decompress, recompress_batch, Recompression};
    use crate::record::{verify_batch, HEADER_LEN};
    let mut h = Harness::new();
    let ts = T0 as i64;
    let records: Vec<Record> = (0..50)
        .map(|i| record(Some(&format!("k{i}")), &"payload ".repeat(20), ts + i))
        .collect();
    let plain = crate::record::builder::build_producer_batch(&records, -1, -1, -1);
    for (name, codec) in [
        ("uncompressed", 0),
        ("gzip", 1),
        ("snappy", 2),
        ("lz4", 3),
        ("zstd", 4),
    ] {
        h.create(name, 1, &[("compression.type", name)]);
        // Sent once plain and once in lz4, so every topic sees a foreign codec.
        let lz4 = recompress_batch(
            &plain,
            Recompression {
                codec: 3,
                level: None,
            },
            1 << 24,
        )
        .unwrap()
        .unwrap();
        for sent in [plain.clone(), Bytes::from(lz4)] {
            let p = h.produce(name, 0, sent.clone());
            assert_eq!(p.error_code, ErrorCode::NONE, "{name}: {p:?}");
            let stored = stored_batches(&h, name).pop().unwrap();
            let header = verify_batch(&stored).unwrap();
            assert_eq!(header.compression(), codec, "{name}");
            assert_eq!(header.base_offset(), p.base_offset);
            assert_eq!(header.records_count(), 50);
            assert_eq!(
                (header.base_timestamp(), header.max_timestamp()),
                (ts, ts + 49)
            );
            assert_eq!(
                decompress(codec, &stored[HEADER_LEN..], 1 << 24).unwrap(),
                &plain[HEADER_LEN..],
                "{name}: the records are the producer's"
            );
            if BatchHeaderCodec::of(&sent) == codec {
                assert_eq!(
                    &stored[HEADER_LEN..],
                    &sent[HEADER_LEN..],
                    "{name}: stored as sent"
                );
            }
        }
    }
    h.create("producer", 1, &[]);
    let lz4 = recompress_batch(
        &plain,
        Recompression {
            codec: 3,
            level: None,
        },
        1 << 24,
    )
    .unwrap()
    .unwrap();
    h.produce("producer", 0, Bytes::from(lz4.clone()));
    assert_eq!(
        &stored_batches(&h, "producer")[0][HEADER_LEN..],
        &lz4[HEADER_LEN..]
    );

    // A topic changed to a codec recompresses from then on, also after a restart.
    let r = h.incremental(
        RESOURCE_TYPE_TOPIC,
        "producer",
        &[("compression.type", CONFIG_OP_SET, Some("gzip"))],
        false,
    );
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    let mut h = h.reopen();
    h.produce("producer", 0, plain.clone());
    let stored = stored_batches(&h, "producer");
    assert_eq!(
        crate::record::BatchHeader::new(&stored[1])
            .unwrap()
            .compression(),
        1
    );
}

struct BatchHeaderCodec;
impl BatchHeaderCodec {
    fn of(batch: &[u8]) -> i16 {
        crate::record::BatchHeader::new(batch)
            .unwrap()
            .compression()
    }
}

/// Idempotence on a recompressing topic: the sequence checks see the producer's header, and a
/// retried batch is recognised as the duplicate it is and answered with its first offset.
#[test]
fn recompressed_idempotent_batches_dedup_on_retry() {
    let mut h = Harness::new();
    h.create("z", 1, &[("compression.type", "zstd")]);
    let ts = T0 as i64;
    let r = h.call(Request::InitProducerId(InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    }));
    let Response::InitProducerId(pid) = r else {
        panic!("{r:?}")
    };
    let batch = |seq: i32| {
        crate::record::builder::build_producer_batch(
            &[record(Some("k"), "v", ts), record(Some("k"), "w", ts)],
            pid.producer_id,
            pid.producer_epoch,
            seq,
        )
    };
    let first = h.produce("z", 0, batch(0));
    let second = h.produce("z", 0, batch(2));
    let retried = h.produce("z", 0, batch(0));
    assert_eq!((first.base_offset, second.base_offset), (0, 2));
    assert_eq!(
        (retried.error_code, retried.base_offset),
        (ErrorCode::NONE, 0)
    );
    let gap = h.produce("z", 0, batch(7));
    assert_eq!(gap.error_code, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER);
    let stored = stored_batches(&h, "z");
    assert_eq!(stored.len(), 2, "the retry was not appended");
    let header = crate::record::verify_batch(&stored[1]).unwrap();
    assert_eq!(
        (
            header.compression(),
            header.producer_id(),
            header.producer_epoch(),
            header.base_sequence()
        ),
        (4, pid.producer_id, pid.producer_epoch, 2)
    );
}

/// Metadata with include_*_authorized_operations, as Kafka without an authorizer answers it:
/// every operation the resource type supports (AuthHelper.authorizedOperations with no
/// authorizer), on every topic of the answer; i32::MIN when not asked for.
#[test]
fn metadata_authorized_operations_are_kafkas_without_an_authorizer() {
    let mut h = Harness::new();
    h.create("t", 1, &[]);
    let ask = |h: &mut Harness, include: bool| {
        let r = h.call(Request::Metadata(MetadataRequest {
            topics: Some(vec![
                TopicRef {
                    name: Some("t".into()),
                    id: TopicId::ZERO,
                },
                TopicRef {
                    name: Some("missing".into()),
                    id: TopicId::ZERO,
                },
            ]),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: include,
            include_topic_authorized_operations: include,
        }));
        let Response::Metadata(m) = r else {
            panic!("{r:?}")
        };
        m
    };
    let m = ask(&mut h, false);
    assert_eq!(
        m.cluster_authorized_operations,
        AUTHORIZED_OPERATIONS_OMITTED
    );
    assert!(m
        .topics
        .iter()
        .all(|t| t.topic_authorized_operations == AUTHORIZED_OPERATIONS_OMITTED));
    let m = ask(&mut h, true);
    // READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    let topic_ops = [3, 4, 5, 6, 7, 8, 10, 11].iter().fold(0, |a, b| a | 1 << b);
    assert_eq!(m.topics.len(), 2);
    assert!(
        m.topics
            .iter()
            .all(|t| t.topic_authorized_operations == topic_ops),
        "{m:?}"
    );
    // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
    let cluster_ops = [5, 7, 8, 9, 10, 11, 12].iter().fold(0, |a, b| a | 1 << b);
    assert_eq!(m.cluster_authorized_operations, cluster_ops);
}

/// The ACL APIs as Kafka 3.9 with no authorizer answers them (AclApis.scala): every answer
/// SECURITY_DISABLED, one per creation and per filter.
#[test]
fn acl_apis_answer_security_disabled_as_kafka_without_an_authorizer() {
    let mut h = Harness::new();
    let disabled = |m: &str| AclResult {
        error_code: ErrorCode(54),
        error_message: Some(m.to_string()),
    };
    let r = h.call(Request::Acls(AclRequest::Describe));
    assert_eq!(
        r,
        Response::Acls(AclResponse::Describe(disabled(
            "No Authorizer is configured on the broker"
        )))
    );
    let r = h.call(Request::Acls(AclRequest::Create { creations: 2 }));
    assert_eq!(
        r,
        Response::Acls(AclResponse::Create(vec![
            disabled("No Authorizer is configured."),
            disabled("No Authorizer is configured."),
        ]))
    );
    let r = h.call(Request::Acls(AclRequest::Delete { filters: 1 }));
    assert_eq!(
        r,
        Response::Acls(AclResponse::Delete(vec![disabled(
            "No Authorizer is configured."
        )]))
    );
}

/// The delegation token APIs as Kafka 3.9 answers them on a PLAINTEXT listener
/// (KafkaApis.allowTokenRequests false): DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, the owner
/// User:ANONYMOUS unless CreateDelegationToken names one, timestamps -1, no tokens.
#[test]
fn delegation_token_apis_are_not_allowed_as_kafka_on_plaintext() {
    let mut h = Harness::new();
    let user = |name: &str| Principal {
        principal_type: "User".to_string(),
        name: name.to_string(),
    };
    let not_allowed = ErrorCode(64);
    let created = |owner: Principal| {
        Response::DelegationToken(DelegationTokenResponse::Create {
            error_code: not_allowed,
            owner,
            requester: user("ANONYMOUS"),
            issue_timestamp_ms: -1,
            expiry_timestamp_ms: -1,
            max_timestamp_ms: -1,
        })
    };
    let r = h.call(Request::DelegationToken(DelegationTokenRequest::Create {
        owner_principal_type: None,
        owner_principal_name: None,
    }));
    assert_eq!(r, created(user("ANONYMOUS")));
    let r = h.call(Request::DelegationToken(DelegationTokenRequest::Create {
        owner_principal_type: Some(String::new()),
        owner_principal_name: Some(String::new()),
    }));
    assert_eq!(r, created(user("ANONYMOUS")));
    let r = h.call(Request::DelegationToken(DelegationTokenRequest::Create {
        owner_principal_type: Some("User".to_string()),
        owner_principal_name: Some("alice".to_string()),
    }));
    assert_eq!(r, created(user("alice")));
    let r = h.call(Request::DelegationToken(DelegationTokenRequest::Renew));
    assert_eq!(
        r,
        Response::DelegationToken(DelegationTokenResponse::Renew {
            error_code: not_allowed,
            expiry_timestamp_ms: -1,
        })
    );
    let r = h.call(Request::DelegationToken(DelegationTokenRequest::Expire));
    assert_eq!(
        r,
        Response::DelegationToken(DelegationTokenResponse::Expire {
            error_code: not_allowed,
            expiry_timestamp_ms: -1,
        })
    );
    let r = h.call(Request::DelegationToken(DelegationTokenRequest::Describe));
    assert_eq!(
        r,
        Response::DelegationToken(DelegationTokenResponse::Describe {
            error_code: not_allowed
        })
    );
}
