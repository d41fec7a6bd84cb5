//! The single node's cluster metadata: which topics exist, their ids, partition counts and
//! configs, persisted in one checksummed file that is replaced atomically on every change.
//!
//! Topic changes are rare and must be durable before they are acknowledged, so the table is
//! written whole with `Storage::replace` (durable on return). The controller's Raft log will
//! take this role once Keel runs as a cluster; the in-memory shape stays the same.

use crate::api::TopicId;
use crate::storage::Storage;
use std::collections::BTreeMap;

/// The file holding the topic table, at the data directory's root. Topic directories are
/// named `{topic}-{partition}`, so this name cannot collide with one.
pub const METADATA_FILE: &str = "cluster-metadata";
const MAGIC: &[u8; 8] = b"KEELMETA";
/// Version 2 added `TopicMeta::compacted_once`; version 1 files are still read.
const FORMAT_VERSION: u16 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub id: TopicId,
    pub partitions: i32,
    /// Only the configs the topic set explicitly; defaults come from `config::effective`.
    pub configs: BTreeMap<String, String>,
    /// The topic has had `cleanup.policy=compact` at some point, so its logs may hold the
    /// offset gaps compaction leaves, whatever its policy is now (`LogConfig::gaps_allowed`).
    /// Set, durably, before any of its logs is opened as compacted; never cleared.
    pub compacted_once: bool,
}

impl TopicMeta {
    /// A topic as created: `compacted_once` follows its initial policy.
    pub fn new(
        name: &str,
        id: TopicId,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Self {
        TopicMeta {
            name: name.to_string(),
            id,
            partitions,
            compacted_once: crate::config::compacts(&configs),
            configs,
        }
    }

    /// The topic with `configs` as its own settings, remembering whether it was ever compacted.
    pub fn with_configs(self, configs: BTreeMap<String, String>) -> Self {
        TopicMeta {
            compacted_once: self.compacted_once || crate::config::compacts(&configs),
            configs,
            ..self
        }
    }
}

/// The topic table: owns every topic's name, id, partition count and configs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub topics: BTreeMap<String, TopicMeta>,
}

impl Metadata {
    /// Reads the table; a missing file is an empty cluster. A damaged file is an error: the
    /// broker must not start and silently forget topics.
    pub fn load(storage: &dyn Storage) -> Result<Metadata, String> {
        let Some(len) = storage.len(METADATA_FILE).map_err(|e| e.to_string())? else {
            return Ok(Metadata::default());
        };
        let bytes = storage
            .read_at(METADATA_FILE, 0, len as usize)
            .map_err(|e| e.to_string())?;
        Metadata::decode(&bytes)
    }

    /// Writes the table durably (atomic replace).
    pub fn save(&self, storage: &dyn Storage) -> std::io::Result<()> {
        storage.replace(METADATA_FILE, &self.encode())
    }

    pub fn by_id(&self, id: TopicId) -> Option<&TopicMeta> {
        self.topics.values().find(|t| t.id == id)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&(self.topics.len() as u32).to_be_bytes());
        for t in self.topics.values() {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&t.id.0);
            out.extend_from_slice(&t.partitions.to_be_bytes());
            out.extend_from_slice(&(t.configs.len() as u32).to_be_bytes());
            for (k, v) in &t.configs {
                put_str(&mut out, k);
                put_str(&mut out, v);
            }
            out.push(u8::from(t.compacted_once));
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Metadata, String> {
        if bytes.len() < MAGIC.len() + 2 + 4 + 4 {
            return Err("file too short".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != stored {
            return Err("checksum mismatch".into());
        }
        let mut r = Cursor { buf: body, pos: 0 };
        if r.take(8)? != MAGIC {
            return Err("not a Keel metadata file".into());
        }
        let version = u16::from_be_bytes(r.array()?);
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(format!("unsupported metadata format version {version}"));
        }
        let count = u32::from_be_bytes(r.array()?);
        let mut topics = BTreeMap::new();
        for _ in 0..count {
            let name = r.string()?;
            let id = TopicId(r.array()?);
            let partitions = i32::from_be_bytes(r.array()?);
            let config_count = u32::from_be_bytes(r.array()?);
            let mut configs = BTreeMap::new();
            for _ in 0..config_count {
                let k = r.string()?;
                let v = r.string()?;
                configs.insert(k, v);
            }
            // Before version 2 compaction could not be turned off, so a topic had been
            // compacted exactly if it still was.
            let compacted_once = match version {
                1 => crate::config::compacts(&configs),
                _ => match r.take(1)?[0] {
                    0 => false,
                    1 => true,
                    b => return Err(format!("invalid compacted flag {b}")),
                },
            };
            topics.insert(
                name.clone(),
                TopicMeta {
                    name,
                    id,
                    partitions,
                    configs,
                    compacted_once,
                },
            );
        }
        if r.pos != body.len() {
            return Err("trailing bytes".into());
        }
        Ok(Metadata { topics })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.buf.len() - self.pos < n {
            return Err("truncated".into());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn string(&mut self) -> Result<String, String> {
        let len = u32::from_be_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| "invalid UTF-8".to_string())
    }
}

/// Kafka's rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    // The metadata quorum's log lives in the directory this name's partition 0 would use.
    if name == crate::controller::METADATA_TOPIC {
        return Err(format!(
            "Topic name {name} is reserved for the cluster's metadata log"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    fn sample() -> Metadata {
        let mut m = Metadata::default();
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        m.topics.insert(
            "orders".into(),
            TopicMeta::new("orders", TopicId([7; 16]), 3, configs),
        );
        // Compacted once, then switched back to delete.
        let mut was_compacted = TopicMeta::new(
            "users",
            TopicId([9; 16]),
            1,
            BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        );
        was_compacted = was_compacted.with_configs(BTreeMap::new());
        assert!(was_compacted.compacted_once);
        m.topics.insert("users".into(), was_compacted);
        m
    }

    /// `m` as a version 1 file (no `compacted_once` byte), as brokers before it wrote.
    fn encode_v1(m: &Metadata) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(m.topics.len() as u32).to_be_bytes());
        for t in m.topics.values() {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&t.id.0);
            out.extend_from_slice(&t.partitions.to_be_bytes());
            out.extend_from_slice(&(t.configs.len() as u32).to_be_bytes());
            for (k, v) in &t.configs {
                put_str(&mut out, k);
                put_str(&mut out, v);
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn version_1_files_load_with_compaction_history_from_the_policy() {
        let mut m = Metadata::default();
        let compact =
            BTreeMap::from([("cleanup.policy".to_string(), "compact,delete".to_string())]);
        m.topics.insert(
            "a".into(),
            TopicMeta::new("a", TopicId([1; 16]), 1, compact),
        );
        m.topics.insert(
            "b".into(),
            TopicMeta::new("b", TopicId([2; 16]), 2, BTreeMap::new()),
        );
        let loaded = Metadata::decode(&encode_v1(&m)).unwrap();
        assert_eq!(loaded, m);
        assert!(loaded.topics["a"].compacted_once);
        assert!(!loaded.topics["b"].compacted_once);
    }

    #[test]
    fn compacted_once_is_never_cleared() {
        let t = TopicMeta::new("t", TopicId([3; 16]), 1, BTreeMap::new());
        assert!(!t.compacted_once);
        let compact = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        let t = t.with_configs(compact);
        assert!(t.compacted_once);
        assert!(t.with_configs(BTreeMap::new()).compacted_once);
    }

    #[test]
    fn round_trips_through_storage() {
        let disk = MemStorage::new();
        sample().save(&disk).unwrap();
        assert_eq!(Metadata::load(&disk).unwrap(), sample());
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(Metadata::decode(&b).is_err(), "bit {i} flipped unnoticed");
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            assert!(Metadata::decode(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("__cluster_metadata").is_err());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
