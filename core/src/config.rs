//! Topic configurations: which Kafka topic config names Keel knows, what values each allows,
//! their types and documentation (DescribeConfigs v3+), and which of them change how Keel
//! behaves.
//!
//! The table is Apache Kafka 3.9's topic config table (`LogConfig`'s `CONFIG`, KRaft mode),
//! name for name, with 3.9's defaults and validators: the release whose classic group
//! protocol Keel follows. A name Kafka 3.9 does not know is refused with INVALID_CONFIG, as
//! Kafka does. A known name whose behaviour Keel does not implement is refused too when its
//! value would ask for that behaviour (`remote.storage.enable=true`): accepting it silently
//! would promise what the broker does not do. Every refusal says what is allowed, so a client
//! can show the user a useful message.
//!
//! Deprecated configs that Kafka 3.9 still accepts and ignores (`message.format.version`,
//! ignored since inter.broker.protocol 3.0) are accepted, stored and described like any
//! other, and each change of one is logged with a warning that it has no effect
//! ([`deprecation`]); DescribeConfigs lists them, as 3.9 does.
//!
//! `cleanup.policy` is a list of `delete` and `compact` (either, both, or neither as in 3.9:
//! an empty list deletes nothing and compacts nothing); compaction is `log/compaction.rs`,
//! retention `log/retention.rs`. `compression.type` other than `producer` makes the broker
//! recompress produced batches to that codec (broker/produce.rs, `compression.rs`), at the
//! topic's `compression.{gzip,zstd}.level`.

use crate::api::{
    CONFIG_TYPE_BOOLEAN, CONFIG_TYPE_DOUBLE, CONFIG_TYPE_INT, CONFIG_TYPE_LIST, CONFIG_TYPE_LONG,
    CONFIG_TYPE_STRING,
};
use std::collections::BTreeMap;

/// What values a config accepts.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A 64-bit integer in `[min, max]`.
    Long {
        min: i64,
        max: i64,
    },
    /// A 32-bit integer in `[min, max]`.
    Int {
        min: i64,
        max: i64,
    },
    /// A number in [0, 1].
    Ratio,
    Bool,
    /// Exactly one of the listed words.
    OneOf(&'static [&'static str]),
    /// A comma-separated list (Kafka type LIST) whose items are each one of the listed words
    /// (Kafka's `ValidList.in`: duplicates and the empty list pass).
    ListOf(&'static [&'static str]),
    /// An int in `[min, max]` or `-1`, the codec's own default (`compression.gzip.level`).
    IntOrMinusOne {
        min: i64,
        max: i64,
    },
    /// A Kafka release version such as `2.8`, `3.0` or `3.0-IV1` (`message.format.version`;
    /// Kafka's `MetadataVersionValidator`).
    Version,
    /// A comma-separated list of anything (replication throttles, which Keel ignores: with
    /// one replica per partition nothing is replicated).
    List,
}

/// One topic config as Kafka documents it.
struct Def {
    name: &'static str,
    kind: Kind,
    default: &'static str,
    doc: &'static str,
    /// Why setting it does nothing, for a config Kafka 3.9 keeps only for compatibility.
    deprecated: Option<&'static str>,
}

const I32: i64 = i32::MAX as i64;
const I64: i64 = i64::MAX;

const fn def(name: &'static str, kind: Kind, default: &'static str, doc: &'static str) -> Def {
    Def {
        name,
        kind,
        default,
        doc,
        deprecated: None,
    }
}

const fn deprecated(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    doc: &'static str,
    why: &'static str,
) -> Def {
    Def {
        name,
        kind,
        default,
        doc,
        deprecated: Some(why),
    }
}

/// The compression.type values (Kafka's `BrokerCompressionType`): a codec to recompress
/// every produced batch to, or `producer` to keep the producer's.
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Kafka 3.9's topic configs with their defaults, as Kafka 3.9 documents them.
const TOPIC_CONFIGS: &[Def] = &[
    def(
        "cleanup.policy",
        Kind::ListOf(&["compact", "delete"]),
        "delete",
        "A list of delete (discard old segments by retention time or size) and compact (keep the latest record per key); both: compact, and delete by retention.",
    ),
    def(
        "compression.gzip.level",
        Kind::IntOrMinusOne { min: 1, max: 9 },
        "-1",
        "The gzip level batches are recompressed at when compression.type is gzip; -1: the codec's default (6).",
    ),
    def(
        "compression.lz4.level",
        Kind::Int { min: 1, max: 17 },
        "9",
        "The lz4 level when compression.type is lz4 (accepted; Keel's lz4 encoder has one level).",
    ),
    def(
        "compression.type",
        Kind::OneOf(COMPRESSION_TYPES),
        "producer",
        "The codec batches are stored in: producer keeps the producer's; uncompressed, gzip, snappy, lz4 or zstd makes the broker recompress each batch to it.",
    ),
    def(
        "compression.zstd.level",
        Kind::Int { min: -131072, max: 22 },
        "3",
        "The zstd level batches are recompressed at when compression.type is zstd.",
    ),
    def(
        "delete.retention.ms",
        Kind::Long { min: 0, max: I64 },
        "86400000",
        "How long delete markers (tombstones) are kept in a compacted topic.",
    ),
    def(
        "file.delete.delay.ms",
        Kind::Long { min: 0, max: I64 },
        "60000",
        "The time to wait before deleting a file from the filesystem.",
    ),
    def(
        "flush.messages",
        Kind::Long { min: 1, max: I64 },
        "9223372036854775807",
        "Messages between forced fsyncs (Keel flushes by group commit regardless).",
    ),
    def(
        "flush.ms",
        Kind::Long { min: 0, max: I64 },
        "9223372036854775807",
        "Time between forced fsyncs (Keel flushes by group commit regardless).",
    ),
    def(
        "index.interval.bytes",
        Kind::Int { min: 0, max: I32 },
        "4096",
        "Bytes of log between offset index entries.",
    ),
    def(
        "local.retention.bytes",
        Kind::Long { min: -2, max: I64 },
        "-2",
        "Local retention with tiered storage (Keel has none).",
    ),
    def(
        "local.retention.ms",
        Kind::Long { min: -2, max: I64 },
        "-2",
        "Local retention with tiered storage (Keel has none).",
    ),
    def(
        "max.compaction.lag.ms",
        Kind::Long { min: 1, max: I64 },
        "9223372036854775807",
        "The longest a record stays ineligible for compaction.",
    ),
    def(
        "max.message.bytes",
        Kind::Int { min: 0, max: I32 },
        "1048588",
        "The largest record batch size allowed in this topic.",
    ),
    deprecated(
        "message.format.version",
        Kind::Version,
        "3.0-IV1",
        "[DEPRECATED] The message format version; always 3.0 (record batch v2) since inter.broker.protocol.version 3.0.",
        "deprecated since Kafka 3.0 and ignored: every batch is stored in the v2 format",
    ),
    def(
        "message.downconversion.enable",
        Kind::Bool,
        "true",
        "Whether fetches may down-convert message formats.",
    ),
    def(
        "message.timestamp.after.max.ms",
        Kind::Long { min: 0, max: I64 },
        "3600000",
        "How far in the future a CreateTime timestamp may lie.",
    ),
    def(
        "message.timestamp.before.max.ms",
        Kind::Long { min: 0, max: I64 },
        "9223372036854775807",
        "How far in the past a CreateTime timestamp may lie.",
    ),
    def(
        "message.timestamp.difference.max.ms",
        Kind::Long { min: 0, max: I64 },
        "9223372036854775807",
        "Deprecated: the largest difference between a record's timestamp and the broker's.",
    ),
    def(
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
        "Whether record timestamps are the producer's (CreateTime) or the broker's append time.",
    ),
    def(
        "min.cleanable.dirty.ratio",
        Kind::Ratio,
        "0.5",
        "How much of a compacted log must be uncleaned before it is compacted.",
    ),
    def(
        "min.compaction.lag.ms",
        Kind::Long { min: 0, max: I64 },
        "0",
        "The least time a record stays uncompacted.",
    ),
    def(
        "min.insync.replicas",
        Kind::Int { min: 1, max: I32 },
        "1",
        "Replicas that must acknowledge an acks=all write.",
    ),
    def(
        "preallocate",
        Kind::Bool,
        "false",
        "Whether to preallocate segment files.",
    ),
    def(
        "remote.log.copy.disable",
        Kind::Bool,
        "false",
        "Tiered storage: stop copying segments to remote storage (Keel has none).",
    ),
    def(
        "remote.log.delete.on.disable",
        Kind::Bool,
        "false",
        "Tiered storage: delete remote data when tiering is disabled (Keel has none).",
    ),
    def(
        "remote.storage.enable",
        Kind::OneOf(&["false"]),
        "false",
        "Tiered storage (Keel has none).",
    ),
    def(
        "retention.bytes",
        Kind::Long { min: -1, max: I64 },
        "-1",
        "The largest a partition may grow before old segments are deleted; -1: no limit.",
    ),
    def(
        "retention.ms",
        Kind::Long { min: -1, max: I64 },
        "604800000",
        "How long records are kept before old segments are deleted; -1: no limit.",
    ),
    def(
        "segment.bytes",
        Kind::Int { min: 14, max: I32 },
        "1073741824",
        "The segment file size at which the log rolls to a new segment.",
    ),
    def(
        "segment.index.bytes",
        Kind::Int { min: 4, max: I32 },
        "10485760",
        "The size of each segment's offset index.",
    ),
    def(
        "segment.jitter.ms",
        Kind::Long { min: 0, max: I64 },
        "0",
        "Random jitter subtracted from segment.ms.",
    ),
    def(
        "segment.ms",
        Kind::Long { min: 1, max: I64 },
        "604800000",
        "The time after which the log rolls to a new segment even if it is not full.",
    ),
    def(
        "unclean.leader.election.enable",
        Kind::Bool,
        "false",
        "Whether an out-of-sync replica may become leader.",
    ),
    def(
        "follower.replication.throttled.replicas",
        Kind::List,
        "",
        "Replicas throttled on the follower side.",
    ),
    def(
        "leader.replication.throttled.replicas",
        Kind::List,
        "",
        "Replicas throttled on the leader side.",
    ),
];

fn find(name: &str) -> Option<&'static Def> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Whether `name` is a topic config Kafka knows.
pub fn is_topic_config(name: &str) -> bool {
    find(name).is_some()
}

/// Every known topic config name, in Kafka's alphabetical-ish order above.
pub fn topic_config_names() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIGS.iter().map(|d| d.name)
}

/// Kafka's default for a topic config.
pub fn kafka_default(name: &str) -> Option<&'static str> {
    find(name).map(|d| d.default)
}

/// Kafka's `ConfigType` of a topic config (DescribeConfigs v3+).
pub fn config_type(name: &str) -> i8 {
    match find(name).map(|d| d.kind) {
        Some(Kind::Long { .. }) => CONFIG_TYPE_LONG,
        Some(Kind::Int { .. } | Kind::IntOrMinusOne { .. }) => CONFIG_TYPE_INT,
        Some(Kind::Ratio) => CONFIG_TYPE_DOUBLE,
        Some(Kind::Bool) => CONFIG_TYPE_BOOLEAN,
        Some(Kind::ListOf(_) | Kind::List) => CONFIG_TYPE_LIST,
        Some(Kind::OneOf(_) | Kind::Version) | None => CONFIG_TYPE_STRING,
    }
}

/// Whether a config holds a list, so IncrementalAlterConfigs may APPEND to or SUBTRACT from it.
pub fn is_list(name: &str) -> bool {
    matches!(
        find(name).map(|d| d.kind),
        Some(Kind::ListOf(_) | Kind::List)
    )
}

/// Why a deprecated config has no effect, for the warning logged when a topic sets it.
pub fn deprecation(name: &str) -> Option<&'static str> {
    find(name).and_then(|d| d.deprecated)
}

/// Logs a warning for each deprecated config in `names` that `topic` is given: Kafka 3.9
/// accepts them, and so does Keel, but the operator should know they do nothing.
pub fn warn_deprecated<'a>(topic: &str, names: impl IntoIterator<Item = &'a str>) {
    for name in names {
        if let Some(why) = deprecation(name) {
            tracing::warn!(topic, config = name, "topic config {name} is {why}");
        }
    }
}

/// One line on what a topic config does.
pub fn documentation(name: &str) -> Option<&'static str> {
    find(name).map(|d| d.doc)
}

/// Checks one topic config; the error is the message for an INVALID_CONFIG answer.
pub fn validate_topic_config(name: &str, value: Option<&str>) -> Result<(), String> {
    let Some(def) = find(name) else {
        return Err(format!("Unknown topic config name: {name}"));
    };
    let Some(value) = value else {
        return Err(format!("Null value not supported for topic config {name}"));
    };
    let bad = |allowed: String| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {allowed}"
        ))
    };
    match def.kind {
        Kind::Long { min, max } | Kind::Int { min, max } => match value.trim().parse::<i64>() {
            Ok(v) if v >= min && v <= max => Ok(()),
            _ => bad(format!("must be an integer in [{min}, {max}]")),
        },
        Kind::Ratio => match value.trim().parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(()),
            _ => bad("must be a number in [0, 1]".to_string()),
        },
        Kind::Bool => match value.trim() {
            "true" | "false" => Ok(()),
            _ => bad("must be true or false".to_string()),
        },
        Kind::OneOf(allowed) => {
            if allowed.contains(&value.trim()) {
                Ok(())
            } else {
                bad(format!("Keel supports {}", allowed.join(", ")))
            }
        }
        Kind::IntOrMinusOne { min, max } => match value.trim().parse::<i64>() {
            Ok(v) if v == -1 || (v >= min && v <= max) => Ok(()),
            _ => bad(format!("must be -1 or an integer in [{min}, {max}]")),
        },
        Kind::ListOf(allowed) => {
            // Kafka splits on commas and checks every item, so `delete,` has a bad "" item.
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            let empty = items.len() == 1 && items[0].is_empty();
            match items.iter().find(|i| !allowed.contains(i)) {
                Some(_) if !empty => {
                    bad(format!("a comma-separated list of {}", allowed.join(", ")))
                }
                _ => Ok(()),
            }
        }
        Kind::List => Ok(()),
        Kind::Version => {
            let (release, iv) = match value.trim().split_once("-IV") {
                Some((r, iv)) => (r, Some(iv)),
                None => (value.trim(), None),
            };
            let parts: Vec<&str> = release.split('.').collect();
            let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if (2..=3).contains(&parts.len())
                && parts.iter().all(|p| numeric(p))
                && iv.into_iter().all(numeric)
            {
                Ok(())
            } else {
                bad(format!("Version `{value}` is not a valid version"))
            }
        }
    }
}

/// The items of a comma-separated list value, trimmed, without empty ones.
pub fn list_items(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A value as stored: trimmed, and for lists normalised to `a,b`.
pub fn normalize(name: &str, value: &str) -> String {
    if is_list(name) {
        list_items(value).join(",")
    } else {
        value.trim().to_string()
    }
}

/// Whether a topic's configs ask for compaction (`cleanup.policy` includes `compact`).
pub fn compacts(configs: &BTreeMap<String, String>) -> bool {
    has_cleanup_policy(configs, "compact")
}

/// Whether a topic's configs ask for retention (`cleanup.policy` includes `delete`).
pub fn deletes(configs: &BTreeMap<String, String>) -> bool {
    has_cleanup_policy(configs, "delete")
}

fn has_cleanup_policy(configs: &BTreeMap<String, String>, policy: &str) -> bool {
    effective(configs, "cleanup.policy").is_some_and(|p| list_items(p).iter().any(|i| i == policy))
}

/// A topic's effective value of `name`: its own setting, else Kafka's default.
pub fn effective<'a>(configs: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    configs
        .get(name)
        .map(String::as_str)
        .or_else(|| kafka_default(name))
}

/// Parses an integer config already validated; falls back to `default` if absent.
pub fn int_config(configs: &BTreeMap<String, String>, name: &str, default: i64) -> i64 {
    configs
        .get(name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_bad_values_are_refused_with_a_reason() {
        assert!(validate_topic_config("retention.ms", Some("1000")).is_ok());
        assert!(validate_topic_config("segment.bytes", Some("13"))
            .unwrap_err()
            .contains("[14,"));
        assert!(validate_topic_config("no.such.config", Some("1"))
            .unwrap_err()
            .contains("Unknown"));
        assert!(validate_topic_config("message.timestamp.type", Some("LogAppendTime")).is_ok());
        assert!(validate_topic_config("cleanup.policy", Some("compact")).is_ok());
        assert!(validate_topic_config("cleanup.policy", Some(" compact ")).is_ok());
        // Kafka 3.9's ValidList: any list of the two words, even empty; no other word.
        assert!(validate_topic_config("cleanup.policy", Some("compact,delete")).is_ok());
        assert!(validate_topic_config("cleanup.policy", Some("delete, compact")).is_ok());
        assert!(validate_topic_config("cleanup.policy", Some("")).is_ok());
        assert!(validate_topic_config("cleanup.policy", Some("delete,")).is_err());
        assert!(
            validate_topic_config("cleanup.policy", Some("compact,archive"))
                .unwrap_err()
                .contains("list of compact, delete")
        );
        assert!(validate_topic_config("retention.ms", None).is_err());
        let m = validate_topic_config("retention.ms", Some("soon")).unwrap_err();
        assert_eq!(
            m,
            "Invalid value soon for configuration retention.ms: must be an integer in \
             [-1, 9223372036854775807]"
        );
        assert!(validate_topic_config("max.message.bytes", Some("2147483648")).is_err());
    }

    /// Kafka 3.9 accepts every BrokerCompressionType name, and the codec levels of KIP-390.
    #[test]
    fn compression_types_and_levels_are_kafkas() {
        for t in ["uncompressed", "gzip", "snappy", "lz4", "zstd", "producer"] {
            assert!(
                validate_topic_config("compression.type", Some(t)).is_ok(),
                "{t}"
            );
        }
        assert!(validate_topic_config("compression.type", Some("brotli")).is_err());
        assert!(validate_topic_config("compression.gzip.level", Some("-1")).is_ok());
        assert!(validate_topic_config("compression.gzip.level", Some("9")).is_ok());
        assert!(validate_topic_config("compression.gzip.level", Some("0")).is_err());
        assert!(validate_topic_config("compression.zstd.level", Some("-5")).is_ok());
        assert!(validate_topic_config("compression.zstd.level", Some("23")).is_err());
    }

    /// message.format.version is deprecated and ignored in Kafka 3.9, but still validated as a
    /// release version; the others of the table are not deprecated.
    #[test]
    fn deprecated_configs_are_known_and_say_why() {
        for v in ["0.10.0", "2.8", "3.0", "3.0-IV1", "3.9"] {
            assert!(
                validate_topic_config("message.format.version", Some(v)).is_ok(),
                "{v}"
            );
        }
        for v in ["", "three", "3", "3.0-IV", "3.x"] {
            let e = validate_topic_config("message.format.version", Some(v)).unwrap_err();
            assert!(e.contains("is not a valid version"), "{v}: {e}");
        }
        assert!(deprecation("message.format.version")
            .unwrap()
            .contains("ignored"));
        assert_eq!(deprecation("retention.ms"), None);
        assert_eq!(config_type("message.format.version"), CONFIG_TYPE_STRING);
    }

    #[test]
    fn every_default_is_valid() {
        for d in TOPIC_CONFIGS {
            let r = validate_topic_config(d.name, Some(d.default));
            assert!(r.is_ok(), "{}: {r:?}", d.name);
            assert!(!d.doc.is_empty());
        }
    }

    #[test]
    fn lists_are_normalised_and_typed() {
        assert!(is_list("cleanup.policy"));
        assert!(!is_list("retention.ms"));
        assert_eq!(normalize("cleanup.policy", " compact , "), "compact");
        assert_eq!(normalize("retention.ms", " 5 "), "5");
        assert_eq!(config_type("retention.ms"), CONFIG_TYPE_LONG);
        assert_eq!(config_type("segment.bytes"), CONFIG_TYPE_INT);
        assert_eq!(config_type("cleanup.policy"), CONFIG_TYPE_LIST);
        let mut c = BTreeMap::new();
        assert!(!compacts(&c));
        c.insert("cleanup.policy".to_string(), "compact".to_string());
        assert!(compacts(&c));
    }
}
