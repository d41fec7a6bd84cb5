//! `keel topic create|list|describe|alter|delete-records|delete`: topics through
//! CreateTopics, Metadata, ListOffsets, DescribeConfigs, IncrementalAlterConfigs (AlterConfigs
//! on brokers without it), CreatePartitions, DeleteRecords and DeleteTopics.

use super::cluster::{topic_info, Cluster, TopicInfo};
use super::errors::CliError;
use super::{millis_i32, parse_key_value, print_json, ConnArgs, Output};
use keel_core::api::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use keel_net::codec::{self, describe_configs::RESOURCE_TYPE_TOPIC, ApiKey};
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// `keel topic ...`
#[derive(clap::Args, Debug)]
pub struct TopicArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub command: TopicCommand,
}

/// The topic commands.
#[derive(clap::Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// The topic name.
        name: String,
        /// Partitions [default: the broker's num.partitions].
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Replicas of each partition [default: the broker's default.replication.factor].
        #[arg(long, value_parser = clap::value_parser!(i16).range(1..))]
        replication_factor: Option<i16>,
        /// A topic config, KEY=VALUE (repeatable), e.g. --config cleanup.policy=compact.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Succeed without change if the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topic names, one per line.
    List {
        /// Leave out internal topics such as __consumer_offsets.
        #[arg(long)]
        exclude_internal: bool,
        /// `json`: {"topics":[{"name","topicId","internal","partitionCount"}]}.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
    },
    /// Show partitions, leaders, replicas, offsets and configs [default: every topic].
    Describe {
        /// The topics to describe.
        names: Vec<String>,
        /// Show every config, defaults included (not only those set on the topic).
        #[arg(long)]
        all_configs: bool,
        /// `json`: {"topics":[{"name","topicId","internal","partitionCount",
        /// "replicationFactor","partitions":[{"partition","leader","leaderEpoch","replicas",
        /// "isr","offline","logStartOffset","highWatermark","sizeBytes","error"}],
        /// "configs":[{"name","value","source","sensitive"}]}]}; unknown values are null.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
    },
    /// Change a topic's configs or grow its partitions.
    Alter {
        /// The topic name.
        name: String,
        /// Set a config, KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Return a config to its default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
        /// The new, larger partition count.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
    },
    /// Delete the records before an offset (move the log start offset forward).
    DeleteRecords {
        /// The topic name.
        name: String,
        /// Delete every record below this offset, or `end` for all of them.
        #[arg(long, value_name = "OFFSET|end", value_parser = parse_before)]
        before: i64,
        /// Only in this partition (repeatable) [default: every partition].
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
        partition: Vec<i32>,
    },
    /// Delete a topic and all its records.
    Delete {
        /// The topic name.
        name: String,
        /// Succeed without change if the topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
}

/// Runs a `keel topic` command.
pub fn run(args: TopicArgs) -> ExitCode {
    let name = match &args.command {
        TopicCommand::Create { .. } => "topic create",
        TopicCommand::List { .. } => "topic list",
        TopicCommand::Describe { .. } => "topic describe",
        TopicCommand::Alter { .. } => "topic alter",
        TopicCommand::DeleteRecords { .. } => "topic delete-records",
        TopicCommand::Delete { .. } => "topic delete",
    };
    super::run(name, execute(args))
}

async fn execute(args: TopicArgs) -> Result<(), CliError> {
    let mut cluster = Cluster::connect(&args.conn).await?;
    let timeout_ms = millis_i32(args.conn.request_timeout());
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let topic = codec::CreatableTopic {
                name: name.clone(),
                num_partitions: partitions.unwrap_or(-1),
                replication_factor: replication_factor.unwrap_or(-1),
                assignments: Vec::new(),
                configs: configs
                    .into_iter()
                    .map(|(name, value)| codec::CreatableTopicConfig {
                        name,
                        value: Some(value),
                    })
                    .collect(),
            };
            let addr = cluster.bootstrap_addr();
            let result = cluster
                .any()
                .await?
                .create_topic(topic, timeout_ms, false)
                .await
                .map_err(CliError::request(format!("CreateTopics to {addr}")))?;
            match result.error_code {
                0 => say!("Created topic {name}."),
                36 if if_not_exists => say!("Topic {name} already exists."),
                code => return Err(CliError::kafka(&name, code, result.error_message)),
            }
            Ok(())
        }
        TopicCommand::List {
            exclude_internal,
            output,
        } => {
            let metadata = cluster.metadata(None, false).await?;
            let mut topics: Vec<ListedTopic> = metadata
                .topics
                .into_iter()
                .filter(|t| !(exclude_internal && t.is_internal))
                .filter_map(|t| {
                    Some(ListedTopic {
                        name: t.name?,
                        topic_id: uuid(&t.topic_id),
                        internal: t.is_internal,
                        partition_count: t.partitions.len(),
                    })
                })
                .collect();
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            match output {
                Output::Json => print_json(&TopicList { topics })?,
                Output::Text => {
                    for t in topics {
                        say!("{}", t.name);
                    }
                }
            }
            Ok(())
        }
        TopicCommand::Describe {
            names,
            all_configs,
            output,
        } => {
            let topics = describe(&mut cluster, names, all_configs).await?;
            match output {
                Output::Json => print_json(&TopicDescriptions { topics }),
                Output::Text => {
                    for t in &topics {
                        print_description(t, all_configs);
                    }
                    Ok(())
                }
            }
        }
        TopicCommand::Alter {
            name,
            configs,
            delete_configs,
            partitions,
        } => {
            if configs.is_empty() && delete_configs.is_empty() && partitions.is_none() {
                return Err(CliError::Usage(
                    "nothing to change: give --config, --delete-config or --partitions".into(),
                ));
            }
            // Fail early, with the Kafka error, if the topic does not exist.
            let info = cluster.topic(&name, false).await?;
            if let Some(count) = partitions {
                let current = info.partitions.len() as i32;
                if count == current {
                    say!("Topic {name} already has {count} partitions.");
                } else {
                    grow(&mut cluster, &name, count, timeout_ms).await?;
                    say!("Topic {name} now has {count} partitions (was {current}).");
                }
            }
            if !configs.is_empty() || !delete_configs.is_empty() {
                alter_configs(&mut cluster, &name, &configs, &delete_configs).await?;
                say!("Updated the configs of topic {name}.");
            }
            Ok(())
        }
        TopicCommand::DeleteRecords {
            name,
            before,
            partition,
        } => delete_records(&mut cluster, &name, before, &partition, timeout_ms).await,
        TopicCommand::Delete { name, if_exists } => {
            let addr = cluster.bootstrap_addr();
            let response = cluster
                .any()
                .await?
                .delete_topics(&[name.as_str()], timeout_ms)
                .await
                .map_err(CliError::request(format!("DeleteTopics to {addr}")))?;
            let Some(result) = response.responses.into_iter().next() else {
                return Err(CliError::Other(format!(
                    "{name}: the broker's DeleteTopics answer names no topic"
                )));
            };
            match result.error_code {
                0 => say!("Deleted topic {name}."),
                3 if if_exists => say!("Topic {name} does not exist."),
                code => return Err(CliError::kafka(&name, code, result.error_message)),
            }
            Ok(())
        }
    }
}

/// `keel topic list -o json`.
#[derive(Debug, Serialize)]
struct TopicList {
    topics: Vec<ListedTopic>,
}

/// One topic of `keel topic list -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedTopic {
    name: String,
    topic_id: String,
    internal: bool,
    partition_count: usize,
}

/// `keel topic describe -o json`.
#[derive(Debug, Serialize)]
struct TopicDescriptions {
    topics: Vec<TopicDescription>,
}

/// What `keel topic describe` shows of one topic, in either output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TopicDescription {
    name: String,
    topic_id: String,
    internal: bool,
    partition_count: usize,
    replication_factor: usize,
    partitions: Vec<PartitionDescription>,
    /// `None` when the broker does not support DescribeConfigs.
    configs: Option<Vec<ConfigDescription>>,
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PartitionDescription {
    partition: i32,
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    offline: Vec<i32>,
    log_start_offset: Option<i64>,
    high_watermark: Option<i64>,
    /// Bytes on the leader, from DescribeLogDirs (`None` if it does not say).
    size_bytes: Option<i64>,
    /// Kafka's name of the partition's error, if it has one.
    error: Option<String>,
}

/// One config of a [`TopicDescription`]: those set on the topic, or all with
/// `--all-configs`.
#[derive(Debug, Serialize)]
struct ConfigDescription {
    name: String,
    /// `None` for a sensitive config or one without a value.
    value: Option<String>,
    source: &'static str,
    sensitive: bool,
}

/// Gathers what `keel topic describe` shows of `names` (every topic if empty).
async fn describe(
    cluster: &mut Cluster,
    names: Vec<String>,
    all_configs: bool,
) -> Result<Vec<TopicDescription>, CliError> {
    let topics: Vec<TopicInfo> = if names.is_empty() {
        let metadata = cluster.metadata(None, false).await?;
        let mut all: Vec<TopicInfo> = metadata
            .topics
            .into_iter()
            .filter_map(|t| {
                let name = t.name.clone()?;
                Some(topic_info(&name, t))
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    } else {
        let mut out = Vec::new();
        for name in &names {
            out.push(cluster.topic(name, false).await?);
        }
        out
    };
    let configs_supported = cluster
        .any()
        .await?
        .version(ApiKey::DescribeConfigs)
        .is_some();
    let mut described = Vec::with_capacity(topics.len());
    for topic in topics {
        let offsets = log_offsets(cluster, &topic).await?;
        let sizes = log_sizes(cluster, &topic).await;
        let configs = if configs_supported {
            let configs = topic_configs(cluster, &topic.name).await?;
            Some(
                configs
                    .into_iter()
                    .filter(|c| all_configs || c.config_source == CONFIG_SOURCE_TOPIC)
                    .map(|c| ConfigDescription {
                        value: c.value.filter(|_| !c.is_sensitive),
                        name: c.name,
                        source: source_name(c.config_source),
                        sensitive: c.is_sensitive,
                    })
                    .collect(),
            )
        } else {
            None
        };
        let partitions = topic
            .partitions
            .iter()
            .map(|p| PartitionDescription {
                partition: p.partition,
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                offline: p.offline.clone(),
                log_start_offset: offsets.get(&p.partition).map(|&(s, _)| s),
                high_watermark: offsets.get(&p.partition).map(|&(_, e)| e),
                size_bytes: sizes.get(&p.partition).copied(),
                error: (p.error_code != 0).then(|| super::errors::error_name(p.error_code)),
            })
            .collect();
        described.push(TopicDescription {
            topic_id: uuid(&topic.topic_id),
            internal: topic.is_internal,
            partition_count: topic.partitions.len(),
            replication_factor: topic.partitions.first().map_or(0, |p| p.replicas.len()),
            name: topic.name,
            partitions,
            configs,
        });
    }
    Ok(described)
}

/// Prints one topic as `keel topic describe` does (Kafka's `kafka-topics --describe` layout).
fn print_description(topic: &TopicDescription, all_configs: bool) {
    say!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}",
        topic.name,
        topic.topic_id,
        topic.partition_count,
        topic.replication_factor
    );
    let known = |o: Option<i64>| o.map_or_else(|| "?".to_string(), |o| o.to_string());
    for p in &topic.partitions {
        let mut line = format!(
            "\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tLogStartOffset: {}\tHighWatermark: {}",
            p.partition,
            p.leader,
            list(&p.replicas),
            list(&p.isr),
            known(p.log_start_offset),
            known(p.high_watermark)
        );
        if let Some(size) = p.size_bytes {
            line.push_str(&format!("\tSize: {size}"));
        }
        if !p.offline.is_empty() {
            line.push_str(&format!("\tOffline: {}", list(&p.offline)));
        }
        if let Some(error) = &p.error {
            line.push_str(&format!("\tError: {error}"));
        }
        say!("{line}");
    }
    let Some(configs) = &topic.configs else {
        say!("\tConfigs: (the broker does not support DescribeConfigs)");
        return;
    };
    say!(
        "\tConfigs:{}",
        if configs.is_empty() {
            " (none set)"
        } else {
            ""
        }
    );
    for c in configs {
        let value = if c.sensitive {
            "(sensitive)"
        } else {
            c.value.as_deref().unwrap_or("null")
        };
        if all_configs {
            say!("\t\t{}={}\t({})", c.name, value, c.source);
        } else {
            say!("\t\t{}={}", c.name, value);
        }
    }
}

/// `--before`: an offset, or `end` (-1: the high watermark, in DeleteRecords' words).
fn parse_before(s: &str) -> Result<i64, String> {
    match s {
        "end" => Ok(-1),
        _ => s
            .parse::<i64>()
            .ok()
            .filter(|&o| o >= 0)
            .ok_or_else(|| format!("'{s}': expected an offset or 'end'")),
    }
}

/// Moves the log start offset of each chosen partition to `before`, asking each leader, and
/// prints the new log start offsets.
async fn delete_records(
    cluster: &mut Cluster,
    topic: &str,
    before: i64,
    partitions: &[i32],
    timeout_ms: i32,
) -> Result<(), CliError> {
    let info = cluster.topic(topic, false).await?;
    let chosen: Vec<i32> = if partitions.is_empty() {
        info.partitions.iter().map(|p| p.partition).collect()
    } else {
        partitions.to_vec()
    };
    let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
    for &p in &chosen {
        if !info.has(p) {
            return Err(CliError::kafka(format!("{topic}/{p}"), 3, None));
        }
        let leader = info
            .leader(p)
            .ok_or_else(|| CliError::kafka(format!("{topic}/{p}"), 5, None))?;
        by_leader.entry(leader).or_default().push((p, before));
    }
    let mut low_watermarks = BTreeMap::new();
    for (leader, parts) in by_leader {
        let addr = cluster.broker_addr(leader);
        let client = cluster.node(leader).await?;
        if client.version(ApiKey::DeleteRecords).is_none() {
            return Err(CliError::Other(format!(
                "{topic}: the broker at {addr} does not support DeleteRecords"
            )));
        }
        let result = client.delete_records(topic, &parts, timeout_ms).await;
        let results = match result {
            Ok(r) => r,
            Err(e) => {
                cluster.reset_connections();
                return Err(CliError::request(format!("DeleteRecords to {addr}"))(e));
            }
        };
        for (p, low_watermark, code) in results {
            low_watermarks.insert(p, (low_watermark, code));
        }
    }
    // The partitions that moved are printed even when another one failed.
    let mut failure = None;
    for p in chosen {
        match low_watermarks.get(&p) {
            Some((low, 0)) => say!("{topic}\t{p}\tLogStartOffset: {low}"),
            Some((_, code)) => {
                failure.get_or_insert(CliError::kafka(format!("{topic}/{p}"), *code, None));
            }
            None => {
                failure.get_or_insert(CliError::Other(format!(
                    "{topic}/{p}: the broker's DeleteRecords answer left the partition out"
                )));
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// `config_source` of a config set on the topic itself (DYNAMIC_TOPIC_CONFIG).
const CONFIG_SOURCE_TOPIC: i8 = 1;

fn source_name(source: i8) -> &'static str {
    match source {
        1 => "topic",
        2 => "dynamic broker",
        3 => "dynamic default broker",
        4 => "static broker",
        5 => "default",
        6 => "dynamic broker logger",
        7 => "client metrics",
        8 => "group",
        _ => "unknown source",
    }
}

fn list(ids: &[i32]) -> String {
    let s: Vec<String> = ids.iter().map(i32::to_string).collect();
    s.join(",")
}

/// A topic id as Kafka prints it: URL-safe base64 without padding (`Uuid.toString()`).
fn uuid(id: &codec::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in id.0.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// (log start offset, high watermark) per partition, asked of each partition's leader.
pub async fn log_offsets(
    cluster: &mut Cluster,
    topic: &TopicInfo,
) -> Result<BTreeMap<i32, (i64, i64)>, CliError> {
    let earliest = offsets_at(cluster, topic, EARLIEST_TIMESTAMP).await?;
    let latest = offsets_at(cluster, topic, LATEST_TIMESTAMP).await?;
    Ok(earliest
        .into_iter()
        .filter_map(|(p, s)| latest.get(&p).map(|&e| (p, (s, e))))
        .collect())
}

/// The size in bytes of every partition of `topic` on its leader, from DescribeLogDirs.
/// Sizes are a courtesy: a leader that does not serve the API, or fails, leaves its
/// partitions out rather than failing the command.
async fn log_sizes(cluster: &mut Cluster, topic: &TopicInfo) -> BTreeMap<i32, i64> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in &topic.partitions {
        if let Some(leader) = topic.leader(p.partition) {
            by_leader.entry(leader).or_default().push(p.partition);
        }
    }
    let mut out = BTreeMap::new();
    for (leader, partitions) in by_leader {
        let Ok(client) = cluster.node(leader).await else {
            continue;
        };
        if client.version(ApiKey::DescribeLogDirs).is_none() {
            continue;
        }
        match client.describe_log_dirs(&topic.name, &partitions).await {
            Ok(sizes) => {
                for (p, size) in sizes {
                    *out.entry(p).or_insert(0) += size;
                }
            }
            Err(_) => cluster.reset_connections(),
        }
    }
    out
}

/// The offset for `timestamp` of every partition of `topic`, asking each leader once; -1
/// where no record is that late. A partition error is a Kafka error naming the partition.
pub async fn offsets_at(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    offsets_of(cluster, topic, &partitions, timestamp).await
}

/// Like [`offsets_at`] for some `partitions` of `topic`.
pub async fn offsets_of(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
    for &p in partitions {
        let leader = topic
            .leader(p)
            .ok_or_else(|| CliError::kafka(format!("{}/{p}", topic.name), 5, None))?;
        by_leader.entry(leader).or_default().push((p, timestamp));
    }
    let mut out = BTreeMap::new();
    for (leader, parts) in by_leader {
        let addr = cluster.broker_addr(leader);
        let result = cluster
            .node(leader)
            .await?
            .list_offsets_of(&topic.name, &parts)
            .await;
        let answers = match result {
            Ok(a) => a,
            Err(e) => {
                cluster.reset_connections();
                return Err(CliError::request(format!("ListOffsets to {addr}"))(e));
            }
        };
        for a in answers {
            if a.error_code != 0 {
                return Err(CliError::kafka(
                    format!("{}/{}", topic.name, a.partition_index),
                    a.error_code,
                    None,
                ));
            }
            out.insert(a.partition_index, a.offset);
        }
    }
    for &p in partitions {
        if !out.contains_key(&p) {
            return Err(CliError::Other(format!(
                "{}/{p}: the broker's ListOffsets answer left the partition out",
                topic.name
            )));
        }
    }
    Ok(out)
}

/// Every config of `topic`, from DescribeConfigs.
async fn topic_configs(
    cluster: &mut Cluster,
    topic: &str,
) -> Result<Vec<codec::DescribeConfigsResourceResult>, CliError> {
    let addr = cluster.bootstrap_addr();
    let result = cluster
        .any()
        .await?
        .describe_configs(RESOURCE_TYPE_TOPIC, topic, None)
        .await
        .map_err(CliError::request(format!("DescribeConfigs to {addr}")))?;
    if result.error_code != 0 {
        return Err(CliError::kafka(
            topic,
            result.error_code,
            result.error_message,
        ));
    }
    let mut configs = result.configs;
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(configs)
}

async fn grow(
    cluster: &mut Cluster,
    topic: &str,
    count: i32,
    timeout_ms: i32,
) -> Result<(), CliError> {
    let addr = cluster.bootstrap_addr();
    let client = cluster.any().await?;
    if client.version(ApiKey::CreatePartitions).is_none() {
        return Err(CliError::Other(format!(
            "{topic}: the broker at {addr} does not support CreatePartitions"
        )));
    }
    let result = client
        .create_partitions(topic, count, timeout_ms, false)
        .await
        .map_err(CliError::request(format!("CreatePartitions to {addr}")))?;
    if result.error_code != 0 {
        return Err(CliError::kafka(
            topic,
            result.error_code,
            result.error_message,
        ));
    }
    Ok(())
}

/// Sets and deletes single configs: with IncrementalAlterConfigs where the broker has it,
/// else by reading the topic's own configs, changing them, and writing them all back with
/// AlterConfigs (which replaces the whole set), as Kafka's tools did before KIP-339.
async fn alter_configs(
    cluster: &mut Cluster,
    topic: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), CliError> {
    use codec::incremental_alter_configs::{CONFIG_OPERATION_DELETE, CONFIG_OPERATION_SET};
    let addr = cluster.bootstrap_addr();
    let client = cluster.any().await?;
    let incremental = client.version(ApiKey::IncrementalAlterConfigs).is_some();
    let legacy = client.version(ApiKey::AlterConfigs).is_some()
        && client.version(ApiKey::DescribeConfigs).is_some();
    let (code, message) = if incremental {
        let mut changes: Vec<(String, i8, Option<String>)> = set
            .iter()
            .map(|(k, v)| (k.clone(), CONFIG_OPERATION_SET, Some(v.clone())))
            .collect();
        changes.extend(
            delete
                .iter()
                .map(|k| (k.clone(), CONFIG_OPERATION_DELETE, None)),
        );
        client
            .incremental_alter_configs(RESOURCE_TYPE_TOPIC, topic, &changes, false)
            .await
            .map_err(CliError::request(format!(
                "IncrementalAlterConfigs to {addr}"
            )))?
    } else if legacy {
        let current = topic_configs(cluster, topic).await?;
        let mut merged: BTreeMap<String, Option<String>> = current
            .into_iter()
            .filter(|c| c.config_source == CONFIG_SOURCE_TOPIC)
            .map(|c| (c.name, c.value))
            .collect();
        for k in delete {
            merged.remove(k);
        }
        for (k, v) in set {
            merged.insert(k.clone(), Some(v.clone()));
        }
        let configs: Vec<(String, Option<String>)> = merged.into_iter().collect();
        cluster
            .any()
            .await?
            .alter_configs(RESOURCE_TYPE_TOPIC, topic, &configs, false)
            .await
            .map_err(CliError::request(format!("AlterConfigs to {addr}")))?
    } else {
        return Err(CliError::Other(format!(
            "{topic}: the broker at {addr} supports neither IncrementalAlterConfigs nor \
             AlterConfigs"
        )));
    };
    if code != 0 {
        return Err(CliError::kafka(topic, code, message));
    }
    Ok(())
}
