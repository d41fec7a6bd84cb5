//! Topic configurations: which Kafka topic config names Keel knows, what values each allows,
//! and which of them change how Keel behaves.
//!
//! A name Kafka does not know is refused with INVALID_CONFIG, as Kafka does. A known name whose
//! behaviour Keel does not implement yet is refused too when its value would ask for that
//! behaviour (compression.type other than producer, cleanup.policy=compact,delete): accepting
//! it silently would promise what the broker does not do. `cleanup.policy=compact` is
//! implemented by `log/compaction.rs`, run on a timer by the node.

use std::collections::BTreeMap;

/// What values a config accepts.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Long { min: i64 },
    Int { min: i64 },
    Double,
    Bool,
    OneOf(&'static [&'static str]),
    Text,
}

/// Kafka's topic configs with their defaults, as Kafka documents them.
const TOPIC_CONFIGS: &[(&str, Kind, &str)] = &[
    (
        "cleanup.policy",
        Kind::OneOf(&["delete", "compact"]),
        "delete",
    ),
    ("compression.type", Kind::OneOf(&["producer"]), "producer"),
    ("delete.retention.ms", Kind::Long { min: 0 }, "86400000"),
    ("file.delete.delay.ms", Kind::Long { min: 0 }, "60000"),
    (
        "flush.messages",
        Kind::Long { min: 1 },
        "9223372036854775807",
    ),
    ("flush.ms", Kind::Long { min: 0 }, "9223372036854775807"),
    ("index.interval.bytes", Kind::Int { min: 0 }, "4096"),
    ("local.retention.bytes", Kind::Long { min: -2 }, "-2"),
    ("local.retention.ms", Kind::Long { min: -2 }, "-2"),
    (
        "max.compaction.lag.ms",
        Kind::Long { min: 1 },
        "9223372036854775807",
    ),
    ("max.message.bytes", Kind::Int { min: 0 }, "1048588"),
    ("message.downconversion.enable", Kind::Bool, "true"),
    (
        "message.timestamp.after.max.ms",
        Kind::Long { min: 0 },
        "3600000",
    ),
    (
        "message.timestamp.before.max.ms",
        Kind::Long { min: 0 },
        "9223372036854775807",
    ),
    (
        "message.timestamp.difference.max.ms",
        Kind::Long { min: 0 },
        "9223372036854775807",
    ),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
    ),
    ("min.cleanable.dirty.ratio", Kind::Double, "0.5"),
    ("min.compaction.lag.ms", Kind::Long { min: 0 }, "0"),
    ("min.insync.replicas", Kind::Int { min: 1 }, "1"),
    ("preallocate", Kind::Bool, "false"),
    ("remote.storage.enable", Kind::OneOf(&["false"]), "false"),
    ("retention.bytes", Kind::Long { min: -1 }, "-1"),
    ("retention.ms", Kind::Long { min: -1 }, "604800000"),
    ("segment.bytes", Kind::Int { min: 14 }, "1073741824"),
    ("segment.index.bytes", Kind::Int { min: 4 }, "10485760"),
    ("segment.jitter.ms", Kind::Long { min: 0 }, "0"),
    ("segment.ms", Kind::Long { min: 1 }, "604800000"),
    ("unclean.leader.election.enable", Kind::Bool, "false"),
    ("follower.replication.throttled.replicas", Kind::Text, ""),
    ("leader.replication.throttled.replicas", Kind::Text, ""),
];

/// Checks one topic config; the error is the message for an INVALID_CONFIG answer.
pub fn validate_topic_config(name: &str, value: Option<&str>) -> Result<(), String> {
    let Some((_, kind, _)) = TOPIC_CONFIGS.iter().find(|(n, _, _)| *n == name) else {
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
    match *kind {
        Kind::Long { min } | Kind::Int { min } => {
            let max = if matches!(kind, Kind::Int { .. }) {
                i32::MAX as i64
            } else {
                i64::MAX
            };
            match value.trim().parse::<i64>() {
                Ok(v) if v >= min && v <= max => Ok(()),
                _ => bad(format!("must be an integer in [{min}, {max}]")),
            }
        }
        Kind::Double => match value.trim().parse::<f64>() {
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
        Kind::Text => Ok(()),
    }
}

/// A topic's effective value of `name`: its own setting, else Kafka's default.
pub fn effective<'a>(configs: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    configs.get(name).map(String::as_str).or_else(|| {
        TOPIC_CONFIGS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, d)| *d)
    })
}

/// Every known topic config with its effective value and whether the topic set it.
pub fn describe(configs: &BTreeMap<String, String>) -> Vec<(String, String, bool)> {
    TOPIC_CONFIGS
        .iter()
        .map(|(name, _, default)| match configs.get(*name) {
            Some(v) => (name.to_string(), v.clone(), true),
            None => (name.to_string(), default.to_string(), false),
        })
        .collect()
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
        assert!(validate_topic_config("cleanup.policy", Some("compact,delete")).is_err());
        assert!(validate_topic_config("retention.ms", None).is_err());
    }
}
