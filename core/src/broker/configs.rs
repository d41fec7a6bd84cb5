//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: a topic's configs, which are
//! durable in the metadata table before the answer and take effect on its open logs at once,
//! and the broker's own settings, which are read-only.
//!
//! Keel reads its broker settings once, at start (flags, KEEL_* variables, keel.toml), so a
//! request to change one is refused with INVALID_CONFIG saying so, never pretended to apply.
//! A broker setting is reported as STATIC_BROKER_CONFIG when it differs from Keel's built-in
//! default (it must have been configured) and DEFAULT_CONFIG otherwise.
//!
//! A topic config the topic did not set takes the broker's value where Keel has a broker-wide
//! setting for it (`log.segment.bytes` for `segment.bytes`, `message.max.bytes` for
//! `max.message.bytes`, ...), else Kafka's default; DescribeConfigs reports exactly the value
//! the logs use, with its source and (on request) its synonyms, as Kafka does.
//!
//! cleanup.policy may change either way, as in Kafka. Compaction leaves offset gaps in sealed
//! segments, which a log never compacted treats as corruption; so a topic remembers, durably
//! and before any log of it is compacted, that it was compacted once
//! (`TopicMeta::compacted_once`), and its logs keep accepting gaps after the policy went back
//! to `delete` (`LogConfig::gaps_allowed`), while the cleaner and the refusal of keyless
//! records follow the current policy.

use crate::api::*;
use crate::config::{self, validate_topic_config};
use crate::error::ErrorCode;
use crate::log::TimestampType;
use crate::metadata::TopicMeta;
use crate::node::Node;
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's broker-level synonym of each topic config (Kafka's `ServerTopicConfigSynonyms`).
const BROKER_SYNONYMS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("compression.type", "compression.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("local.retention.bytes", "log.local.retention.bytes"),
    ("local.retention.ms", "log.local.retention.ms"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
    ("max.message.bytes", "message.max.bytes"),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
    ),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
    ),
    ("message.timestamp.type", "log.message.timestamp.type"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("preallocate", "log.preallocate"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("segment.jitter.ms", "log.roll.jitter.ms"),
    ("segment.ms", "log.roll.ms"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

/// One broker setting as DescribeConfigs shows it.
struct BrokerSetting {
    name: &'static str,
    value: String,
    /// Keel's built-in default, to tell a configured value from a default one.
    default: String,
    config_type: i8,
    doc: &'static str,
}

type Refusal = (ErrorCode, String);

fn refusal(code: ErrorCode, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

impl Node {
    pub(crate) fn describe_configs(
        &self,
        request: DescribeConfigsRequest,
    ) -> DescribeConfigsResponse {
        let results = request
            .resources
            .into_iter()
            .map(|resource| {
                // No key list: every config; unknown keys in a list are simply left out.
                let wanted = |name: &str| match &resource.configuration_keys {
                    None => true,
                    Some(keys) => keys.iter().any(|k| k == name),
                };
                let found = match resource.resource_type {
                    RESOURCE_TYPE_TOPIC => self.describe_topic_configs(
                        &resource.resource_name,
                        &wanted,
                        request.include_synonyms,
                    ),
                    RESOURCE_TYPE_BROKER => self
                        .check_broker_resource(&resource.resource_name)
                        .map(|own| {
                            if own {
                                self.describe_broker_configs(&wanted, request.include_synonyms)
                            } else {
                                // "" is the cluster-wide dynamic default: Keel has none.
                                Vec::new()
                            }
                        }),
                    other => Err(unsupported_resource_type(other)),
                };
                let mut result = DescribeConfigsResult {
                    resource_type: resource.resource_type,
                    resource_name: resource.resource_name,
                    ..Default::default()
                };
                match found {
                    Ok(mut configs) => {
                        if !request.include_documentation {
                            for c in &mut configs {
                                c.documentation = None;
                            }
                        }
                        result.configs = configs;
                    }
                    Err((code, message)) => {
                        result.error_code = code;
                        result.error_message = Some(message);
                    }
                }
                result
            })
            .collect();
        DescribeConfigsResponse { results }
    }

    pub(crate) fn alter_configs(&mut self, request: AlterConfigsRequest) -> AlterConfigsResponse {
        let counts = resource_counts(
            request
                .resources
                .iter()
                .map(|r| (r.resource_type, r.resource_name.as_str())),
        );
        let responses = request
            .resources
            .into_iter()
            .map(|resource| {
                let key = (resource.resource_type, resource.resource_name.clone());
                let outcome = if counts[&key] > 1 {
                    Err(duplicate_resource())
                } else {
                    self.alter_resource(&resource, request.validate_only)
                };
                alter_result(resource.resource_type, resource.resource_name, outcome)
            })
            .collect();
        AlterConfigsResponse { responses }
    }

    pub(crate) fn incremental_alter_configs(
        &mut self,
        request: IncrementalAlterConfigsRequest,
    ) -> AlterConfigsResponse {
        let counts = resource_counts(
            request
                .resources
                .iter()
                .map(|r| (r.resource_type, r.resource_name.as_str())),
        );
        let responses = request
            .resources
            .into_iter()
            .map(|resource| {
                let key = (resource.resource_type, resource.resource_name.clone());
                let outcome = if counts[&key] > 1 {
                    Err(duplicate_resource())
                } else {
                    self.incremental_alter_resource(&resource, request.validate_only)
                };
                alter_result(resource.resource_type, resource.resource_name, outcome)
            })
            .collect();
        AlterConfigsResponse { responses }
    }

    // --- topics ---

    fn describe_topic_configs(
        &self,
        topic: &str,
        wanted: &dyn Fn(&str) -> bool,
        include_synonyms: bool,
    ) -> Result<Vec<DescribedConfig>, Refusal> {
        let meta = self.known_topic(topic)?;
        Ok(self.topic_config_entries(&meta.configs, wanted, include_synonyms))
    }

    /// Every topic config `wanted` with the value a topic with these own `configs` runs
    /// with, and where it comes from (also CreateTopics' answer, v5+).
    pub(crate) fn topic_config_entries(
        &self,
        configs: &BTreeMap<String, String>,
        wanted: &dyn Fn(&str) -> bool,
        include_synonyms: bool,
    ) -> Vec<DescribedConfig> {
        config::topic_config_names()
            .filter(|name| wanted(name))
            .map(|name| {
                let broker = BROKER_SYNONYMS
                    .iter()
                    .find(|(t, _)| *t == name)
                    .map(|(_, b)| *b);
                // The broker-level value and its source: a Keel setting where there is one.
                let (broker_value, broker_source) = match self.broker_value_for_topic(name) {
                    Some(v) if Some(v.as_str()) != config::kafka_default(name) => {
                        (v, CONFIG_SOURCE_STATIC_BROKER)
                    }
                    _ => (
                        config::kafka_default(name).unwrap_or_default().to_string(),
                        CONFIG_SOURCE_DEFAULT,
                    ),
                };
                let own = configs.get(name);
                let (value, source) = match own {
                    Some(v) => (v.clone(), CONFIG_SOURCE_DYNAMIC_TOPIC),
                    None => (broker_value.clone(), broker_source),
                };
                let mut synonyms = Vec::new();
                if include_synonyms {
                    if let Some(v) = own {
                        synonyms.push(ConfigSynonym {
                            name: name.to_string(),
                            value: Some(v.clone()),
                            source: CONFIG_SOURCE_DYNAMIC_TOPIC,
                        });
                    }
                    synonyms.push(ConfigSynonym {
                        name: broker.unwrap_or(name).to_string(),
                        value: Some(broker_value),
                        source: broker_source,
                    });
                }
                DescribedConfig {
                    name: name.to_string(),
                    value: Some(value),
                    read_only: false,
                    config_source: source,
                    is_sensitive: false,
                    synonyms,
                    config_type: config::config_type(name),
                    documentation: config::documentation(name).map(str::to_string),
                }
            })
            .collect()
    }

    /// The value a topic that does not set `name` gets from this broker's own settings, for
    /// the topic configs Keel has a broker-wide setting of.
    fn broker_value_for_topic(&self, name: &str) -> Option<String> {
        let c = &self.config;
        Some(match name {
            "segment.bytes" => c.log.segment_bytes.to_string(),
            "index.interval.bytes" => c.log.index_interval_bytes.to_string(),
            "segment.ms" => c.log.segment_ms.to_string(),
            "retention.ms" => c.log.retention_ms.to_string(),
            "retention.bytes" => c.log.retention_bytes.to_string(),
            "max.message.bytes" => c.max_message_bytes.to_string(),
            "message.timestamp.after.max.ms" => c.timestamp_after_max_ms.to_string(),
            "message.timestamp.type" => match c.log.message_timestamp_type {
                TimestampType::CreateTime => "CreateTime".to_string(),
                TimestampType::LogAppendTime => "LogAppendTime".to_string(),
            },
            _ => return None,
        })
    }

    fn known_topic(&self, topic: &str) -> Result<&TopicMeta, Refusal> {
        self.metadata.topics.get(topic).ok_or_else(|| {
            refusal(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("Topic {topic} does not exist."),
            )
        })
    }

    fn alter_resource(
        &mut self,
        resource: &AlterConfigsResource,
        validate_only: bool,
    ) -> Result<(), Refusal> {
        match resource.resource_type {
            RESOURCE_TYPE_TOPIC => {
                self.known_topic(&resource.resource_name)?;
                check_no_duplicate_keys(resource.configs.iter().map(|(k, _)| k.as_str()))?;
                let mut configs = BTreeMap::new();
                for (name, value) in &resource.configs {
                    validate_topic_config(name, value.as_deref())
                        .map_err(|m| refusal(ErrorCode::INVALID_CONFIG, m))?;
                    if let Some(v) = value {
                        configs.insert(name.clone(), config::normalize(name, v));
                    }
                }
                self.set_topic_configs(&resource.resource_name, configs, validate_only)
            }
            RESOURCE_TYPE_BROKER => {
                self.check_broker_resource(&resource.resource_name)?;
                refuse_broker_changes(resource.configs.iter().map(|(k, _)| k.as_str()))
            }
            other => Err(unsupported_resource_type(other)),
        }
    }

    fn incremental_alter_resource(
        &mut self,
        resource: &IncrementalAlterConfigsResource,
        validate_only: bool,
    ) -> Result<(), Refusal> {
        match resource.resource_type {
            RESOURCE_TYPE_TOPIC => {
                let mut configs = self.known_topic(&resource.resource_name)?.configs.clone();
                check_no_duplicate_keys(resource.configs.iter().map(|c| c.name.as_str()))?;
                for change in &resource.configs {
                    apply_change(&mut configs, change)?;
                }
                self.set_topic_configs(&resource.resource_name, configs, validate_only)
            }
            RESOURCE_TYPE_BROKER => {
                self.check_broker_resource(&resource.resource_name)?;
                refuse_broker_changes(resource.configs.iter().map(|c| c.name.as_str()))
            }
            other => Err(unsupported_resource_type(other)),
        }
    }

    /// Makes `configs` the topic's own settings: durable in the metadata table first, then
    /// applied to every open partition log. Nothing changes when `validate_only`.
    fn set_topic_configs(
        &mut self,
        topic: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), Refusal> {
        let old = self.known_topic(topic)?.clone();
        if validate_only || old.configs == configs {
            return Ok(());
        }
        let changed: Vec<String> = configs
            .iter()
            .filter(|(k, v)| old.configs.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        if self.quorum.is_some() {
            // The controller records it; every broker applies it (node/cluster.rs).
            let record = crate::controller::MetadataRecord::SetTopicConfigs {
                id: old.id,
                configs,
            };
            self.staged.push((topic.to_string(), record));
            return Ok(());
        }
        let meta = old.with_configs(configs);
        let mut next = self.metadata.clone();
        next.topics.insert(topic.to_string(), meta.clone());
        next.save(self.storage.as_ref()).map_err(|e| {
            refusal(
                ErrorCode::KAFKA_STORAGE_ERROR,
                format!("could not persist the topic configs: {e}"),
            )
        })?;
        self.metadata = next;
        self.apply_topic_configs(&meta);
        tracing::info!(topic, configs = ?meta.configs, "altered topic configs");
        // Kafka 3.9 accepts its deprecated configs and ignores them; say so when one changes.
        config::warn_deprecated(topic, changed.iter().map(String::as_str));
        Ok(())
    }

    /// Puts a topic's current configs into effect on its open partitions.
    pub(crate) fn apply_topic_configs(&mut self, meta: &TopicMeta) {
        let log_config = crate::node::topic_log_config(&self.config.log, meta);
        let limits = crate::partition::ProduceLimits::of(&self.config, meta);
        for index in 0..meta.partitions {
            let key = crate::ids::PartitionId {
                topic: meta.id,
                index,
            };
            let Some(p) = self.partitions.get_mut(&key) else {
                continue;
            };
            let mut c = log_config;
            // A planted-bug switch of the simulator, not a topic config: keep it.
            c.skip_recovery_crc = p.log.config().skip_recovery_crc;
            p.log.set_config(c);
            p.limits = limits;
        }
    }

    // --- the broker ---

    /// Whether a broker resource name is this broker (`true`) or the cluster default ""
    /// (`false`); anything else is refused as Kafka does.
    fn check_broker_resource(&self, name: &str) -> Result<bool, Refusal> {
        if name.is_empty() {
            return Ok(false);
        }
        let node = self.config.node_id.0;
        match name.parse::<i32>() {
            Ok(id) if id == node => Ok(true),
            Ok(_) => Err(refusal(
                ErrorCode::INVALID_REQUEST,
                format!(
                    "Unexpected broker id, expected {node} or empty string, but received {name}"
                ),
            )),
            Err(_) => Err(refusal(
                ErrorCode::INVALID_REQUEST,
                format!("Broker id must be an integer, but it is: {name}"),
            )),
        }
    }

    fn describe_broker_configs(
        &self,
        wanted: &dyn Fn(&str) -> bool,
        include_synonyms: bool,
    ) -> Vec<DescribedConfig> {
        self.broker_settings()
            .into_iter()
            .filter(|s| wanted(s.name))
            .map(|s| {
                let source = if s.value == s.default {
                    CONFIG_SOURCE_DEFAULT
                } else {
                    CONFIG_SOURCE_STATIC_BROKER
                };
                let synonyms = if include_synonyms {
                    vec![ConfigSynonym {
                        name: s.name.to_string(),
                        value: Some(s.value.clone()),
                        source,
                    }]
                } else {
                    Vec::new()
                };
                DescribedConfig {
                    name: s.name.to_string(),
                    value: Some(s.value),
                    // Keel applies broker settings only at start.
                    read_only: true,
                    config_source: source,
                    is_sensitive: false,
                    synonyms,
                    config_type: s.config_type,
                    documentation: Some(s.doc.to_string()),
                }
            })
            .collect()
    }

    /// This broker's settings under Kafka's names, with the values it runs with.
    fn broker_settings(&self) -> Vec<BrokerSetting> {
        let c = &self.config;
        let d = crate::node::NodeConfig::default();
        let minutes = |ms: i64| if ms < 0 { ms } else { ms / 60_000 }.to_string();
        let timestamp_type = |t: TimestampType| match t {
            TimestampType::CreateTime => "CreateTime".to_string(),
            TimestampType::LogAppendTime => "LogAppendTime".to_string(),
        };
        let s = |name, value: String, default: String, config_type, doc| BrokerSetting {
            name,
            value,
            default,
            config_type,
            doc,
        };
        vec![
            s(
                "advertised.listeners",
                format!("PLAINTEXT://{}:{}", c.advertised_host, c.advertised_port),
                format!("PLAINTEXT://{}:{}", d.advertised_host, d.advertised_port),
                CONFIG_TYPE_STRING,
                "The address clients are told to connect to (keel serve --advertise).",
            ),
            s(
                "auto.create.topics.enable",
                c.auto_create_topics.to_string(),
                d.auto_create_topics.to_string(),
                CONFIG_TYPE_BOOLEAN,
                "Whether a topic is created when a client first names it.",
            ),
            s(
                "broker.id",
                c.node_id.to_string(),
                d.node_id.to_string(),
                CONFIG_TYPE_INT,
                "This broker's id (keel serve --node-id).",
            ),
            s(
                "group.initial.rebalance.delay.ms",
                c.group.initial_rebalance_delay_ms.to_string(),
                d.group.initial_rebalance_delay_ms.to_string(),
                CONFIG_TYPE_INT,
                "How long a new group waits for more members before its first rebalance.",
            ),
            s(
                "group.max.session.timeout.ms",
                c.group.max_session_timeout_ms.to_string(),
                d.group.max_session_timeout_ms.to_string(),
                CONFIG_TYPE_INT,
                "The longest session timeout a group member may ask for.",
            ),
            s(
                "group.max.size",
                c.group.max_size.to_string(),
                d.group.max_size.to_string(),
                CONFIG_TYPE_INT,
                "The most members one consumer group may have.",
            ),
            s(
                "group.min.session.timeout.ms",
                c.group.min_session_timeout_ms.to_string(),
                d.group.min_session_timeout_ms.to_string(),
                CONFIG_TYPE_INT,
                "The shortest session timeout a group member may ask for.",
            ),
            s(
                "log.cleaner.backoff.ms",
                c.log_cleaner_interval_ms.to_string(),
                d.log_cleaner_interval_ms.to_string(),
                CONFIG_TYPE_LONG,
                "How often the log cleaner compacts one segment of each compacted partition.",
            ),
            s(
                "log.cleaner.enable",
                "true".to_string(),
                "true".to_string(),
                CONFIG_TYPE_BOOLEAN,
                "Keel always runs the log cleaner for topics with cleanup.policy=compact.",
            ),
            s(
                "log.index.interval.bytes",
                c.log.index_interval_bytes.to_string(),
                d.log.index_interval_bytes.to_string(),
                CONFIG_TYPE_INT,
                "Bytes of log between offset index entries.",
            ),
            s(
                "log.message.timestamp.after.max.ms",
                c.timestamp_after_max_ms.to_string(),
                d.timestamp_after_max_ms.to_string(),
                CONFIG_TYPE_LONG,
                "How far in the future a CreateTime timestamp may lie.",
            ),
            s(
                "log.message.timestamp.type",
                timestamp_type(c.log.message_timestamp_type),
                timestamp_type(d.log.message_timestamp_type),
                CONFIG_TYPE_STRING,
                "Default message.timestamp.type of topics.",
            ),
            s(
                "log.retention.bytes",
                c.log.retention_bytes.to_string(),
                d.log.retention_bytes.to_string(),
                CONFIG_TYPE_LONG,
                "Default retention.bytes of topics; -1: no size limit.",
            ),
            s(
                "log.retention.check.interval.ms",
                c.log_retention_check_interval_ms.to_string(),
                d.log_retention_check_interval_ms.to_string(),
                CONFIG_TYPE_LONG,
                "How often segments past retention.ms or retention.bytes are deleted.",
            ),
            s(
                "log.retention.ms",
                c.log.retention_ms.to_string(),
                d.log.retention_ms.to_string(),
                CONFIG_TYPE_LONG,
                "Default retention.ms of topics; -1: no time limit.",
            ),
            s(
                "log.roll.ms",
                c.log.segment_ms.to_string(),
                d.log.segment_ms.to_string(),
                CONFIG_TYPE_LONG,
                "Default segment.ms of topics.",
            ),
            s(
                "log.segment.bytes",
                c.log.segment_bytes.to_string(),
                d.log.segment_bytes.to_string(),
                CONFIG_TYPE_INT,
                "Default segment.bytes of topics (keel serve --segment-bytes).",
            ),
            s(
                "message.max.bytes",
                c.max_message_bytes.to_string(),
                d.max_message_bytes.to_string(),
                CONFIG_TYPE_INT,
                "The largest record batch a producer may send (keel serve --message-max-bytes).",
            ),
            s(
                "node.id",
                c.node_id.to_string(),
                d.node_id.to_string(),
                CONFIG_TYPE_INT,
                "This broker's id (keel serve --node-id).",
            ),
            s(
                "num.partitions",
                c.default_num_partitions.to_string(),
                d.default_num_partitions.to_string(),
                CONFIG_TYPE_INT,
                "Partitions of an auto-created topic (keel serve --num-partitions).",
            ),
            s(
                "offset.metadata.max.bytes",
                c.group.offset_metadata_max_bytes.to_string(),
                d.group.offset_metadata_max_bytes.to_string(),
                CONFIG_TYPE_INT,
                "The largest metadata string a committed offset may carry.",
            ),
            s(
                "offsets.commit.timeout.ms",
                c.group.offset_commit_timeout_ms.to_string(),
                d.group.offset_commit_timeout_ms.to_string(),
                CONFIG_TYPE_INT,
                "How long an offset commit may wait to become durable.",
            ),
            s(
                "offsets.retention.check.interval.ms",
                c.group.cleanup_interval_ms.to_string(),
                d.group.cleanup_interval_ms.to_string(),
                CONFIG_TYPE_LONG,
                "How often expired offsets are deleted and empty groups without offsets forgotten.",
            ),
            s(
                "offsets.retention.minutes",
                minutes(c.group.offsets_retention_ms),
                minutes(d.group.offsets_retention_ms),
                CONFIG_TYPE_INT,
                "How long an empty group's committed offsets (or a standalone commit) are kept.",
            ),
            s(
                "offsets.topic.num.partitions",
                c.group.offsets_topic_num_partitions.to_string(),
                d.group.offsets_topic_num_partitions.to_string(),
                CONFIG_TYPE_INT,
                "Partitions of __consumer_offsets when the broker creates it.",
            ),
            s(
                "offsets.topic.segment.bytes",
                c.group.offsets_topic_segment_bytes.to_string(),
                d.group.offsets_topic_segment_bytes.to_string(),
                CONFIG_TYPE_INT,
                "segment.bytes of __consumer_offsets.",
            ),
        ]
    }
}

/// Applies one IncrementalAlterConfigs operation (KIP-339) to a topic's own configs.
fn apply_change(
    configs: &mut BTreeMap<String, String>,
    change: &ConfigChange,
) -> Result<(), Refusal> {
    let name = change.name.as_str();
    if !config::is_topic_config(name) {
        return Err(refusal(
            ErrorCode::INVALID_CONFIG,
            format!("Unknown topic config name: {name}"),
        ));
    }
    let invalid = |m: String| refusal(ErrorCode::INVALID_CONFIG, m);
    match change.operation {
        CONFIG_OP_SET => {
            validate_topic_config(name, change.value.as_deref()).map_err(invalid)?;
            let value = change.value.as_deref().unwrap_or_default();
            configs.insert(name.to_string(), config::normalize(name, value));
        }
        CONFIG_OP_DELETE => {
            configs.remove(name);
        }
        op @ (CONFIG_OP_APPEND | CONFIG_OP_SUBTRACT) => {
            let verb = if op == CONFIG_OP_APPEND {
                "append"
            } else {
                "subtract"
            };
            if !config::is_list(name) {
                return Err(invalid(format!(
                    "Config value {verb} is not allowed for config key: {name}; \
                     only list configs (such as cleanup.policy) take {verb}"
                )));
            }
            let Some(value) = change.value.as_deref() else {
                return Err(invalid(format!(
                    "Null value not supported for {verb} to topic config {name}"
                )));
            };
            let mut items =
                config::list_items(config::effective(configs, name).unwrap_or_default());
            for item in config::list_items(value) {
                if op == CONFIG_OP_APPEND {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                } else {
                    items.retain(|i| *i != item);
                }
            }
            let joined = items.join(",");
            validate_topic_config(name, Some(&joined)).map_err(invalid)?;
            configs.insert(name.to_string(), joined);
        }
        other => {
            return Err(refusal(
                ErrorCode::INVALID_REQUEST,
                format!("Unknown config operation {other} for {name}: expected 0 (SET), 1 (DELETE), 2 (APPEND) or 3 (SUBTRACT)"),
            ))
        }
    }
    Ok(())
}

/// Keel's broker settings cannot change while it runs: any change is refused, naming them.
fn refuse_broker_changes<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), Refusal> {
    let names: BTreeSet<&str> = names.collect();
    if names.is_empty() {
        return Ok(());
    }
    let list: Vec<&str> = names.into_iter().collect();
    Err(refusal(
        ErrorCode::INVALID_CONFIG,
        format!(
            "Cannot update these configs dynamically: {}. Keel reads broker settings only at \
             start: set them in keel.toml, KEEL_* variables or keel serve flags and restart.",
            list.join(", ")
        ),
    ))
}

fn check_no_duplicate_keys<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), Refusal> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(refusal(
                ErrorCode::INVALID_REQUEST,
                format!("Error due to duplicate config keys: {name}"),
            ));
        }
    }
    Ok(())
}

fn unsupported_resource_type(resource_type: i8) -> Refusal {
    refusal(
        ErrorCode::INVALID_REQUEST,
        format!(
            "Unsupported resource type: {resource_type}; Keel serves configs of topics (2) \
             and brokers (4)"
        ),
    )
}

fn duplicate_resource() -> Refusal {
    refusal(
        ErrorCode::INVALID_REQUEST,
        "Duplicate resource in request: each resource may appear once",
    )
}

fn resource_counts<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> BTreeMap<(i8, String), usize> {
    let mut counts = BTreeMap::new();
    for (t, name) in resources {
        *counts.entry((t, name.to_string())).or_insert(0) += 1;
    }
    counts
}

fn alter_result(
    resource_type: i8,
    resource_name: String,
    outcome: Result<(), Refusal>,
) -> AlterConfigsResult {
    let (error_code, error_message) = match outcome {
        Ok(()) => (ErrorCode::NONE, None),
        Err((code, message)) => (code, Some(message)),
    };
    AlterConfigsResult {
        error_code,
        error_message,
        resource_type,
        resource_name,
    }
}
